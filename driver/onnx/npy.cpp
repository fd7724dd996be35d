// NumPy .npy files: the header's Python dict literal read by a small strict
// parser (descr, fortran_order, shape, nothing else), the data converted to
// float32.
#include "npu/npy.h"

#include <errno.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <utility>
#include <vector>

#include "common/unique_fd.h"

namespace {

int fail(char *why, size_t n, int err, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
int fail(char *why, size_t n, int err, const char *fmt, ...)
{
        if (why && n) {
                va_list ap;
                va_start(ap, fmt);
                vsnprintf(why, n, fmt, ap);
                va_end(ap);
        }
        return err;
}

struct Header {
        std::string descr;
        bool fortran = false;
        std::vector<int64_t> shape;
};

// The dict literal: {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }
class DictParser {
public:
        explicit DictParser(const std::string &s) : s_(s) {}

        bool parse(Header *h, std::string *err)
        {
                bool seen_descr = false, seen_fortran = false, seen_shape = false;
                skip();
                if (!eat('{'))
                        return bad(err, "the header is not a dict");
                for (;;) {
                        skip();
                        if (eat('}'))
                                break;
                        std::string key;
                        if (!string(&key))
                                return bad(err, "a key of the header is not a string");
                        skip();
                        if (!eat(':'))
                                return bad(err, "no ':' after '" + key + "'");
                        skip();
                        if (key == "descr" && !seen_descr) {
                                if (!string(&h->descr))
                                        return bad(err, "'descr' is not a string");
                                seen_descr = true;
                        } else if (key == "fortran_order" && !seen_fortran) {
                                if (word("True"))
                                        h->fortran = true;
                                else if (word("False"))
                                        h->fortran = false;
                                else
                                        return bad(err, "'fortran_order' is not True or False");
                                seen_fortran = true;
                        } else if (key == "shape" && !seen_shape) {
                                if (!tuple(&h->shape, err))
                                        return false;
                                seen_shape = true;
                        } else {
                                return bad(err, "unexpected or repeated key '" + key + "'");
                        }
                        skip();
                        if (eat(','))
                                continue;
                        skip();
                        if (eat('}'))
                                break;
                        return bad(err, "no ',' or '}' after '" + key + "'");
                }
                skip();
                if (pos_ != s_.size())
                        return bad(err, "text after the header's dict");
                if (!seen_descr || !seen_fortran || !seen_shape)
                        return bad(err, "the header lacks 'descr', 'fortran_order' or 'shape'");
                return true;
        }

private:
        bool bad(std::string *err, const std::string &what)
        {
                *err = what;
                return false;
        }
        void skip()
        {
                while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\t' || s_[pos_] == '\n'))
                        pos_++;
        }
        bool eat(char c)
        {
                if (pos_ < s_.size() && s_[pos_] == c) {
                        pos_++;
                        return true;
                }
                return false;
        }
        bool word(const char *w)
        {
                size_t n = strlen(w);
                if (s_.compare(pos_, n, w) == 0) {
                        pos_ += n;
                        return true;
                }
                return false;
        }
        bool string(std::string *out)
        {
                if (pos_ >= s_.size() || (s_[pos_] != '\'' && s_[pos_] != '"'))
                        return false;
                char q = s_[pos_++];
                size_t end = s_.find(q, pos_);
                if (end == std::string::npos || end - pos_ > 64)
                        return false;
                *out = s_.substr(pos_, end - pos_);
                pos_ = end + 1;
                return true;
        }
        bool tuple(std::vector<int64_t> *out, std::string *err)
        {
                if (!eat('('))
                        return bad(err, "'shape' is not a tuple");
                for (;;) {
                        skip();
                        if (eat(')'))
                                return true;
                        if (out->size() >= NPU_NPY_MAX_RANK)
                                return bad(err, "'shape' has more than " + std::to_string(NPU_NPY_MAX_RANK) + " dimensions");
                        size_t start = pos_;
                        while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9')
                                pos_++;
                        if (pos_ == start || pos_ - start > 12)
                                return bad(err, "a dimension of 'shape' is not a non-negative integer");
                        out->push_back(std::strtoll(s_.substr(start, pos_ - start).c_str(), nullptr, 10));
                        skip();
                        if (eat(','))
                                continue;
                        skip();
                        if (eat(')'))
                                return true;
                        return bad(err, "'shape' is not a tuple of integers");
                }
        }

        const std::string &s_;
        size_t pos_ = 0;
};

// IEEE half to float.
float half_to_float(uint16_t h)
{
        uint32_t sign = uint32_t(h >> 15) << 31, exp = (h >> 10) & 0x1f, man = h & 0x3ff;
        uint32_t bits;
        if (exp == 0) {
                if (man == 0) {
                        bits = sign;
                } else {  // subnormal: renormalise
                        int e = -1;
                        do {
                                e++;
                                man <<= 1;
                        } while (!(man & 0x400));
                        bits = sign | uint32_t(127 - 15 - e) << 23 | (man & 0x3ff) << 13;
                }
        } else if (exp == 31) {
                bits = sign | 0x7f800000u | man << 13;
        } else {
                bits = sign | (exp + 127 - 15) << 23 | man << 13;
        }
        float f;
        std::memcpy(&f, &bits, 4);
        return f;
}

template <class T> T load(const uint8_t *p, bool swap)
{
        uint8_t b[sizeof(T)];
        std::memcpy(b, p, sizeof b);
        if (swap)
                for (size_t i = 0; i < sizeof b / 2; i++)
                        std::swap(b[i], b[sizeof b - 1 - i]);
        T v;
        std::memcpy(&v, b, sizeof v);
        return v;
}

} // namespace

extern "C" int npu_npy_parse(const void *bytes, size_t size, npu_npy *ret, char *why, size_t why_size)
{
        if (!ret || (!bytes && size))
                return fail(why, why_size, -EINVAL, "no array to read");
        const uint8_t *p = static_cast<const uint8_t *>(bytes);
        if (size < 10 || std::memcmp(p, "\x93NUMPY", 6) != 0)
                return fail(why, why_size, -EPROTO, "not a .npy file (no \\x93NUMPY magic)");
        unsigned major = p[6], minor = p[7];
        size_t hlen, hstart;
        if (major == 1) {
                hlen = size_t(p[8]) | size_t(p[9]) << 8;
                hstart = 10;
        } else if (major == 2 || major == 3) {
                if (size < 12)
                        return fail(why, why_size, -EPROTO, "the .npy header is truncated");
                hlen = size_t(p[8]) | size_t(p[9]) << 8 | size_t(p[10]) << 16 | size_t(p[11]) << 24;
                hstart = 12;
        } else {
                return fail(why, why_size, -EPROTO, "unknown .npy format version %u.%u", major, minor);
        }
        if (hlen > 65536 || hstart + hlen > size)
                return fail(why, why_size, -EPROTO, "the .npy header (%zu bytes) does not fit the file (%zu bytes)", hlen, size);
        std::string text(reinterpret_cast<const char *>(p + hstart), hlen);
        while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\0'))
                text.pop_back();
        Header h;
        std::string err;
        if (!DictParser(text).parse(&h, &err))
                return fail(why, why_size, -EPROTO, ".npy header: %s", err.c_str());
        if (h.fortran)
                return fail(why, why_size, -ENOTSUP, "the array is in Fortran order; save it in C order (numpy.ascontiguousarray)");
        if (h.descr.size() < 3)
                return fail(why, why_size, -ENOTSUP, "unsupported dtype '%s'", h.descr.c_str());
        char order = h.descr[0], kind = h.descr[1];
        int width = std::atoi(h.descr.c_str() + 2);
        bool swap = order == '>';
        if ((order != '<' && order != '>' && order != '|' && order != '=') ||
            h.descr.find_first_not_of("0123456789", 2) != std::string::npos) {
                return fail(why, why_size, -ENOTSUP, "unsupported dtype '%s'", h.descr.c_str());
        }
        bool ok = (kind == 'f' && (width == 2 || width == 4 || width == 8)) ||
                  ((kind == 'i' || kind == 'u') && (width == 1 || width == 2 || width == 4 || width == 8)) ||
                  (kind == 'b' && width == 1);
        if (!ok)
                return fail(why, why_size, -ENOTSUP, "unsupported dtype '%s' (floats, integers and bool are read)", h.descr.c_str());
        uint64_t n = 1;
        for (int64_t d : h.shape) {
                if (d == 0) {
                        n = 0;
                        break;
                }
                if (uint64_t(d) > NPU_NPY_MAX_ELEMENTS || n * uint64_t(d) > NPU_NPY_MAX_ELEMENTS)
                        return fail(why, why_size, -E2BIG, "the array has over %llu elements",
                                    (unsigned long long)NPU_NPY_MAX_ELEMENTS);
                n *= uint64_t(d);
        }
        size_t data = hstart + hlen;
        if (uint64_t(size - data) != n * uint64_t(width))
                return fail(why, why_size, -EPROTO, "the data is %zu bytes; shape and dtype '%s' want %llu", size - data,
                            h.descr.c_str(), (unsigned long long)(n * uint64_t(width)));
        float *out = static_cast<float *>(std::malloc(std::max<uint64_t>(n, 1) * sizeof(float)));
        if (!out)
                return fail(why, why_size, -ENOMEM, "no memory for %llu elements", (unsigned long long)n);
        const uint8_t *d = p + data;
        for (uint64_t i = 0; i < n; i++, d += width) {
                float v;
                switch (kind == 'f' ? width : kind == 'b' ? 100 : kind == 'i' ? 10 + width : 20 + width) {
                case 2: v = half_to_float(load<uint16_t>(d, swap)); break;
                case 4: v = load<float>(d, swap); break;
                case 8: v = float(load<double>(d, swap)); break;
                case 11: v = float(int8_t(*d)); break;
                case 12: v = float(load<int16_t>(d, swap)); break;
                case 14: v = float(load<int32_t>(d, swap)); break;
                case 18: v = float(load<int64_t>(d, swap)); break;
                case 21: v = float(*d); break;
                case 22: v = float(load<uint16_t>(d, swap)); break;
                case 24: v = float(load<uint32_t>(d, swap)); break;
                case 28: v = float(load<uint64_t>(d, swap)); break;
                default: v = *d ? 1.0f : 0.0f; break;
                }
                out[i] = v;
        }
        *ret = npu_npy{};
        ret->rank = uint32_t(h.shape.size());
        for (size_t i = 0; i < h.shape.size(); i++)
                ret->dims[i] = h.shape[i];
        ret->elements = n;
        ret->data = out;
        return 0;
}

extern "C" int npu_npy_read(const char *path, npu_npy *ret, char *why, size_t why_size)
{
        if (!path || !ret)
                return fail(why, why_size, -EINVAL, "no file to read");
        bwq::unique_fd fd(open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK));
        if (!fd)
                return fail(why, why_size, -errno, "%s: %s", path, strerror(errno));
        struct stat st;
        if (fstat(fd.get(), &st) < 0)
                return fail(why, why_size, -errno, "%s: %s", path, strerror(errno));
        if (!S_ISREG(st.st_mode))
                return fail(why, why_size, -EINVAL, "%s: not a regular file", path);
        uint64_t limit = NPU_NPY_MAX_ELEMENTS * 8 + 65536 + 12;
        if (uint64_t(st.st_size) > limit)
                return fail(why, why_size, -E2BIG, "%s: %lld bytes is larger than any array read", path, (long long)st.st_size);
        std::vector<uint8_t> buf(size_t(st.st_size));
        size_t got = 0;
        while (got < buf.size()) {
                ssize_t n = read(fd.get(), buf.data() + got, buf.size() - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0)
                        return fail(why, why_size, -errno, "%s: %s", path, strerror(errno));
                if (n == 0)
                        break;
                got += size_t(n);
        }
        buf.resize(got);
        char inner[256] = "";
        int r = npu_npy_parse(buf.data(), buf.size(), ret, inner, sizeof inner);
        if (r < 0)
                return fail(why, why_size, r, "%s: %s", path, inner);
        return 0;
}

extern "C" void npu_npy_free(npu_npy *a)
{
        if (!a)
                return;
        std::free(a->data);
        a->data = nullptr;
}

extern "C" int npu_npy_write(const char *path, uint32_t rank, const int64_t *dims, const float *data, char *why,
                             size_t why_size)
{
        if (!path || rank > NPU_NPY_MAX_RANK || (rank && !dims))
                return fail(why, why_size, -EINVAL, "no array to write");
        uint64_t n = 1;
        std::string shape = "(";
        for (uint32_t i = 0; i < rank; i++) {
                if (dims[i] < 0)
                        return fail(why, why_size, -EINVAL, "dimension %u is negative", i);
                n *= uint64_t(dims[i]);
                shape += std::to_string(dims[i]) + (rank == 1 ? "," : i + 1 < rank ? ", " : "");
        }
        shape += ")";
        if (n && !data)
                return fail(why, why_size, -EINVAL, "no data to write");
        std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape + ", }";
        // Magic, version, length, header: padded with spaces to 64 bytes, ending in '\n'.
        size_t total = 10 + header.size() + 1;
        header.append((64 - total % 64) % 64, ' ');
        header += '\n';
        std::string tmp = std::string(path) + ".tmp";
        bwq::unique_fd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644));
        if (!fd)
                return fail(why, why_size, -errno, "%s: %s", tmp.c_str(), strerror(errno));
        std::string head = std::string("\x93NUMPY\x01\x00", 8);
        head += char(header.size() & 0xff);
        head += char(header.size() >> 8);
        head += header;
        auto put = [&](const void *p, size_t len) {
                const char *c = static_cast<const char *>(p);
                while (len) {
                        ssize_t w = write(fd.get(), c, len);
                        if (w < 0 && errno == EINTR)
                                continue;
                        if (w <= 0)
                                return false;
                        c += w;
                        len -= size_t(w);
                }
                return true;
        };
        if (!put(head.data(), head.size()) || !put(data, n * sizeof(float)) || fsync(fd.get()) < 0) {
                int e = errno ? errno : EIO;
                unlink(tmp.c_str());
                return fail(why, why_size, -e, "%s: %s", path, strerror(e));
        }
        fd.reset();
        if (rename(tmp.c_str(), path) < 0) {
                int e = errno;
                unlink(tmp.c_str());
                return fail(why, why_size, -e, "%s: %s", path, strerror(e));
        }
        return 0;
}

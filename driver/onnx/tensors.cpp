// ONNX tensors and attributes as the frontend's constants: raw, typed and
// external data, each size and type checked against the shape.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/unique_fd.h"
#include "proto.h"

namespace onnxfe {

namespace {

Error err(int code, const std::string &m) { return Error{code, m}; }

} // namespace

bool read_file(const std::string &path, uint64_t limit, std::string *out, std::string *why)
{
        bwq::unique_fd fd(open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
        if (!fd) {
                *why = path + ": " + strerror(errno);
                return false;
        }
        struct stat st;
        if (fstat(fd.get(), &st) < 0 || !S_ISREG(st.st_mode)) {
                *why = path + ": not a regular file";
                return false;
        }
        if (uint64_t(st.st_size) > limit) {
                *why = path + ": " + std::to_string(st.st_size) + " bytes is over the limit of " + std::to_string(limit);
                return false;
        }
        out->resize(size_t(st.st_size));
        size_t got = 0;
        while (got < out->size()) {
                ssize_t n = read(fd.get(), out->data() + got, out->size() - got);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0)
                        break;
                got += size_t(n);
        }
        out->resize(got);
        return true;
}

// The data of an initializer or a Constant's tensor.
std::optional<Error> read_tensor(const onnx::TensorProto &t, const std::string &dir, const std::string &what, Constant *c)
{
        c->shape.clear();
        int64_t n = 1;
        for (int64_t d : t.dims()) {
                if (d < 0 || d > kMaxElements || (d && n > kMaxElements / d))
                        return err(-E2BIG, what + ": dimensions " + dims_text({t.dims().begin(), t.dims().end()}) +
                                                   " are negative or over the limit");
                c->shape.push_back(d);
                n *= d;
        }
        if (t.dims_size() > int(kMaxRank))
                return err(-E2BIG, what + ": rank " + std::to_string(t.dims_size()) + " is over the limit");
        std::string raw;
        bool have_raw = t.has_raw_data();
        if (t.data_location() == onnx::TensorProto::EXTERNAL) {
                std::string loc;
                int64_t offset = 0, length = -1;
                for (const auto &kv : t.external_data()) {
                        if (kv.key() == "location")
                                loc = kv.value();
                        else if (kv.key() == "offset")
                                offset = std::atoll(kv.value().c_str());
                        else if (kv.key() == "length")
                                length = std::atoll(kv.value().c_str());
                }
                if (loc.empty() || loc[0] == '/' || loc.find("..") != std::string::npos)
                        return err(-EINVAL, what + ": external data location '" + loc + "' is not a file beside the model");
                std::string file, why;
                if (!read_file(dir + "/" + loc, kMaxFile, &file, &why))
                        return err(-ENOENT, what + ": external data: " + why);
                if (offset < 0 || uint64_t(offset) > file.size() ||
                    (length >= 0 && uint64_t(length) > file.size() - uint64_t(offset)))
                        return err(-EINVAL, what + ": external data range is outside " + loc);
                raw = file.substr(size_t(offset), length < 0 ? std::string::npos : size_t(length));
                have_raw = true;
        } else if (have_raw) {
                raw = t.raw_data();
        }
        auto size_error = [&](size_t got, const char *type) {
                return err(-EINVAL, what + ": " + std::to_string(got) + " values of " + type + " for shape " +
                                            dims_text(c->shape) + " (" + std::to_string(n) + " elements)");
        };
        auto from_raw = [&](size_t width, auto conv) -> std::optional<Error> {
                if (raw.size() != size_t(n) * width)
                        return err(-EINVAL, what + ": " + std::to_string(raw.size()) + " bytes of data for shape " +
                                                    dims_text(c->shape) + " of " + std::to_string(width) + "-byte elements");
                for (int64_t k = 0; k < n; k++)
                        conv(raw.data() + size_t(k) * width);
                return std::nullopt;
        };
        switch (t.data_type()) {
        case onnx::TensorProto::FLOAT:
        case onnx::TensorProto::DOUBLE: {
                c->type = DType::Float;
                bool dbl = t.data_type() == onnx::TensorProto::DOUBLE;
                if (have_raw) {
                        if (auto e = from_raw(dbl ? 8 : 4, [&](const char *p) {
                                    if (dbl) {
                                            double x;
                                            std::memcpy(&x, p, 8);
                                            c->f.push_back(float(x));
                                    } else {
                                            float x;
                                            std::memcpy(&x, p, 4);
                                            c->f.push_back(x);
                                    }
                            }))
                                return e;
                } else if (dbl) {
                        for (double x : t.double_data())
                                c->f.push_back(float(x));
                } else {
                        c->f.assign(t.float_data().begin(), t.float_data().end());
                }
                if (int64_t(c->f.size()) != n)
                        return size_error(c->f.size(), "float");
                return std::nullopt;
        }
        case onnx::TensorProto::INT64:
        case onnx::TensorProto::INT32:
        case onnx::TensorProto::INT8:
        case onnx::TensorProto::UINT8:
        case onnx::TensorProto::BOOL: {
                c->type = t.data_type() == onnx::TensorProto::BOOL ? DType::Bool : DType::Int64;
                int dt = t.data_type();
                size_t width = dt == onnx::TensorProto::INT64 ? 8 : dt == onnx::TensorProto::INT32 ? 4 : 1;
                if (have_raw) {
                        if (auto e = from_raw(width, [&](const char *p) {
                                    int64_t v;
                                    if (width == 8) {
                                            std::memcpy(&v, p, 8);
                                    } else if (width == 4) {
                                            int32_t x;
                                            std::memcpy(&x, p, 4);
                                            v = x;
                                    } else {
                                            v = dt == onnx::TensorProto::INT8 ? int64_t(int8_t(*p)) : int64_t(uint8_t(*p));
                                    }
                                    c->i.push_back(v);
                            }))
                                return e;
                } else if (dt == onnx::TensorProto::INT64) {
                        c->i.assign(t.int64_data().begin(), t.int64_data().end());
                } else {
                        c->i.assign(t.int32_data().begin(), t.int32_data().end());
                }
                if (int64_t(c->i.size()) != n)
                        return size_error(c->i.size(), "integers");
                return std::nullopt;
        }
        default:
                return err(-ENOTSUP, what + ": tensor data type " + std::to_string(t.data_type()) + " is not supported");
        }
}

std::optional<Error> read_attr(const onnx::AttributeProto &a, const std::string &dir, const std::string &what, Attr *out)
{
        switch (a.type()) {
        case onnx::AttributeProto::INT: out->kind = Attr::Int, out->i = a.i(); break;
        case onnx::AttributeProto::FLOAT: out->kind = Attr::Float, out->f = a.f(); break;
        case onnx::AttributeProto::STRING: out->kind = Attr::String, out->s = a.s(); break;
        case onnx::AttributeProto::INTS:
                out->kind = Attr::Ints;
                out->ints.assign(a.ints().begin(), a.ints().end());
                break;
        case onnx::AttributeProto::FLOATS:
                out->kind = Attr::Floats;
                out->floats.assign(a.floats().begin(), a.floats().end());
                break;
        case onnx::AttributeProto::TENSOR: {
                out->kind = Attr::Tensor;
                Constant c;
                if (auto e = read_tensor(a.t(), dir, what + " attribute " + a.name(), &c))
                        return e;
                out->t = std::move(c);
                break;
        }
        default: out->kind = Attr::Other; break;
        }
        return std::nullopt;
}

std::optional<Error> load_tensor_file(const std::string &path, Constant *c, int *type)
{
        std::string bytes, why;
        if (!read_file(path, kMaxFile, &bytes, &why))
                return err(-ENOENT, why);
        onnx::TensorProto t;
        if (!t.ParseFromString(bytes))
                return err(-EPROTO, path + ": not an ONNX TensorProto");
        size_t slash = path.rfind('/');
        *type = t.data_type();
        return read_tensor(t, slash == std::string::npos ? "." : path.substr(0, slash), path, c);
}

} // namespace onnxfe

#include "file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "text.h"
#include "unique_fd.h"

namespace bwq {

std::string format_size(size_t bytes)
{
        if (bytes >= (1u << 20) && bytes % (1u << 20) == 0)
                return std::to_string(bytes >> 20) + " MiB";
        if (bytes >= 1024 && bytes % 1024 == 0)
                return std::to_string(bytes >> 10) + " KiB";
        return std::to_string(bytes) + " bytes";
}

static const char *file_kind(mode_t m)
{
        if (S_ISDIR(m))
                return "a directory";
        if (S_ISFIFO(m))
                return "a FIFO";
        if (S_ISSOCK(m))
                return "a socket";
        if (S_ISCHR(m))
                return "a character device";
        if (S_ISBLK(m))
                return "a block device";
        return "not a regular file";
}

int read_regular_file(const std::string &path, size_t limit, std::string *ret, std::string *why)
{
        const std::string name = escape_text(path);
        // O_NONBLOCK: opening a FIFO with no writer returns at once instead
        // of waiting for one; we refuse it below without reading.
        unique_fd fd(open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY));
        if (!fd) {
                int e = errno;
                *why = name + ": " + (e == ELOOP ? "too many levels of symbolic links" : strerror(e));
                return -e;
        }
        struct stat st;
        if (fstat(fd.get(), &st) < 0) {
                int e = errno;
                *why = name + ": " + strerror(e);
                return -e;
        }
        if (!S_ISREG(st.st_mode)) {
                *why = name + ": " + file_kind(st.st_mode) + ", not a regular file";
                return S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
        }
        // st_size may lie (procfs, sysfs, a file growing under us): read
        // until end of file, but never past the limit.
        std::string s;
        s.resize(std::min<size_t>(limit + 1, st.st_size > 0 ? size_t(st.st_size) + 1 : 4096));
        size_t have = 0;
        for (;;) {
                if (have == s.size()) {
                        if (s.size() > limit)
                                break;
                        s.resize(std::min(limit + 1, s.size() * 2));
                }
                ssize_t n = read(fd.get(), s.data() + have, s.size() - have);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n < 0) {
                        int e = errno;
                        *why = name + ": " + strerror(e);
                        return -e;
                }
                if (n == 0)
                        break;
                have += size_t(n);
        }
        if (have > limit) {
                *why = name + ": larger than " + format_size(limit);
                return -EFBIG;
        }
        s.resize(have);
        *ret = std::move(s);
        return 0;
}

} // namespace bwq

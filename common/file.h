// Reading files that someone else may have put in our way: only regular
// files, opened so that a FIFO or a device cannot block the caller, and
// read up to a limit.
#pragma once

#include <cstddef>
#include <string>

namespace bwq {

// Reads the regular file at path whole into *ret.  Returns 0, or a negative
// errno with *why "PATH: reason": -ENOENT, -EISDIR / -EINVAL for something
// that is not a regular file (a directory, FIFO, socket or device), -ELOOP,
// -EACCES, -EFBIG past limit bytes, or the read's error.  Symbolic links
// are followed (a packaged /etc may use them), and the file they reach must
// be regular too.
int read_regular_file(const std::string &path, size_t limit, std::string *ret, std::string *why);

// "1 MiB", "64 bytes": a limit as read_regular_file's errors print it.
std::string format_size(size_t bytes);

} // namespace bwq

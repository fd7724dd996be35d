// Logging of bwqd: to stderr, with sd-daemon priority prefixes when stderr
// goes to the journal.
#pragma once

#include <cstring>

namespace bwq {

void log_at(int priority, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_error(...) ::bwq::log_at(3, __VA_ARGS__)
#define log_warning(...) ::bwq::log_at(4, __VA_ARGS__)
#define log_info(...) ::bwq::log_at(6, __VA_ARGS__)
#define log_debug(...) ::bwq::log_at(7, __VA_ARGS__)
// Logs "...: <strerror>" and returns r (negative errno).
int log_errno_at(int r, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
#define log_errno(r, ...) ::bwq::log_errno_at((r), __VA_ARGS__)

} // namespace bwq

#include "log.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>

namespace bwq {

static void vlog(int priority, const char *fmt, va_list ap, const char *suffix)
{
        static const bool journal = getenv("JOURNAL_STREAM") != nullptr;
        static const int max_level = getenv("BWQ_DEBUG") ? 7 : 6;
        if (priority > max_level)
                return;
        char raw[2048];
        vsnprintf(raw, sizeof raw, fmt, ap);
        // Whatever a message quotes, no control byte reaches the log: a
        // newline would forge a line, an escape sequence a terminal.
        char buf[sizeof raw * 4];
        size_t o = 0;
        for (const char *p = raw; *p; p++) {
                unsigned char ch = static_cast<unsigned char>(*p);
                if (ch < 0x20 || ch == 0x7f)
                        o += size_t(snprintf(buf + o, sizeof buf - o, "\\x%02x", ch));
                else
                        buf[o++] = char(ch);
        }
        buf[o] = 0;
        if (journal)
                fprintf(stderr, "<%d>%s%s%s\n", priority, buf, suffix ? ": " : "", suffix ? suffix : "");
        else
                fprintf(stderr, "bwqd: %s%s%s\n", buf, suffix ? ": " : "", suffix ? suffix : "");
}

void log_at(int priority, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vlog(priority, fmt, ap, nullptr);
        va_end(ap);
}

int log_errno_at(int r, const char *fmt, ...)
{
        va_list ap;
        va_start(ap, fmt);
        vlog(3, fmt, ap, strerror(r < 0 ? -r : r));
        va_end(ap);
        return r;
}

} // namespace bwq

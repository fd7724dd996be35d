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
        char buf[2048];
        vsnprintf(buf, sizeof buf, fmt, ap);
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

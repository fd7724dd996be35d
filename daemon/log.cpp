#include "log.h"

#include <cstdarg>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace bwq {

static void vlog(int priority, const char *fmt, va_list ap, const char *suffix)
{
        static const bool journal = getenv("JOURNAL_STREAM") != nullptr;
        static const int max_level = getenv("BWQ_DEBUG") ? 7 : 6;
        if (priority > max_level)
                return;
        std::string line = journal ? "<" + std::to_string(priority) + ">" : std::string("bwqd: ");
        char buf[2048];
        vsnprintf(buf, sizeof buf, fmt, ap);
        line += buf;
        if (suffix)
                line += std::string(": ") + suffix;
        line += "\n";
        fputs(line.c_str(), stderr);
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

#include "units.h"

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <string>

namespace bwq {

namespace {

std::string_view trim(std::string_view s)
{
        while (!s.empty() && (s.front() == ' ' || s.front() == '\t'))
                s.remove_prefix(1);
        while (!s.empty() && (s.back() == ' ' || s.back() == '\t'))
                s.remove_suffix(1);
        return s;
}

// A non-negative decimal number at the start of s; the rest is the unit.
int parse_number(std::string_view s, double *ret, std::string_view *ret_unit)
{
        s = trim(s);
        size_t i = 0;
        bool digits = false, dot = false;
        for (; i < s.size(); i++) {
                if (s[i] >= '0' && s[i] <= '9')
                        digits = true;
                else if (s[i] == '.' && !dot)
                        dot = true;
                else
                        break;
        }
        if (!digits)
                return -EINVAL;
        std::string num(s.substr(0, i));
        char *end;
        errno = 0;
        double v = strtod(num.c_str(), &end);
        if (errno || *end || !std::isfinite(v))
                return -EINVAL;
        *ret = v;
        *ret_unit = trim(s.substr(i));
        return 0;
}

struct Unit {
        const char *name;
        double mult;
};

// A number with one of `units`, scaled, below `limit`.
template <size_t N> int parse_scaled(std::string_view s, const Unit (&units)[N], double limit, uint64_t *ret)
{
        double v;
        std::string_view unit;
        if (int r = parse_number(s, &v, &unit); r < 0)
                return r;
        for (const auto &u : units)
                if (unit == u.name) {
                        double x = v * u.mult;
                        if (x >= limit)
                                return -ERANGE;
                        // Whole numbers of the base unit exactly (a double
                        // holds 53 bits); the rest rounded, in range.
                        const std::string_view all = trim(s);
                        const std::string_view num = trim(all.substr(0, all.size() - unit.size()));
                        if (u.mult == 1 && num.find('.') == std::string_view::npos) {
                                std::string n(num);
                                errno = 0;
                                unsigned long long w = strtoull(n.c_str(), nullptr, 10);
                                if (errno)
                                        return -ERANGE;
                                if (double(w) >= limit)
                                        return -ERANGE;
                                *ret = w;
                                return 0;
                        }
                        *ret = uint64_t(x + 0.5);
                        return 0;
                }
        return -EINVAL;
}

} // namespace

int parse_bandwidth(std::string_view s, uint64_t *ret_bps)
{
        static const Unit units[] = {
                {"", 1},           {"B/s", 1},        {"KB/s", 1e3},           {"MB/s", 1e6},
                {"GB/s", 1e9},     {"TB/s", 1e12},    {"KiB/s", 1024.0},       {"MiB/s", 1048576.0},
                {"GiB/s", 1073741824.0}, {"TiB/s", 1099511627776.0},
        };
        return parse_scaled(s, units, 18446744073709551616.0, ret_bps);
}

int parse_level(std::string_view s, Level *ret)
{
        s = trim(s);
        if (!s.empty() && s.back() == '%') {
                double v;
                std::string_view unit;
                if (parse_number(s.substr(0, s.size() - 1), &v, &unit) < 0 || !unit.empty())
                        return -EINVAL;
                if (v > 100)
                        return -ERANGE;
                *ret = Level{true, v, 0};
                return 0;
        }
        uint64_t b;
        if (int r = parse_bandwidth(s, &b); r < 0)
                return r;
        *ret = Level{false, 0, b};
        return 0;
}

int parse_duration(std::string_view s, uint64_t *ret_usec)
{
        static const Unit units[] = {{"", 1e6}, {"s", 1e6}, {"sec", 1e6}, {"ms", 1e3}, {"msec", 1e3}, {"us", 1}, {"usec", 1},
                                     {"min", 6e7}};
        return parse_scaled(s, units, 9.2e18, ret_usec);
}

std::string format_bandwidth(uint64_t bps)
{
        char buf[64];
        if (bps >= 1000000000ull)
                snprintf(buf, sizeof buf, "%.2f GB/s", bps / 1e9);
        else if (bps >= 1000000ull)
                snprintf(buf, sizeof buf, "%.2f MB/s", bps / 1e6);
        else
                snprintf(buf, sizeof buf, "%llu B/s", (unsigned long long)bps);
        return buf;
}

std::string format_duration(uint64_t usec)
{
        char buf[64];
        if (usec % 1000000 == 0)
                snprintf(buf, sizeof buf, "%llus", (unsigned long long)(usec / 1000000));
        else if (usec % 1000 == 0)
                snprintf(buf, sizeof buf, "%llums", (unsigned long long)(usec / 1000));
        else
                snprintf(buf, sizeof buf, "%lluus", (unsigned long long)usec);
        return buf;
}

std::string Level::to_string() const
{
        if (percent) {
                char buf[32];
                snprintf(buf, sizeof buf, "%g%%", pct);
                return buf;
        }
        return format_bandwidth(bps);
}

} // namespace bwq

// Bandwidth and duration values of the config, the CLI and D-Bus (DESIGN §4.2).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace bwq {

// "44GB/s" (10^9), "41GiB/s" (2^30), "MB/s", "MiB/s", "KB/s", "KiB/s",
// "B/s" or a plain number of bytes per second.  Returns 0, -EINVAL for text
// that is not one, -ERANGE past 2^64.
int parse_bandwidth(std::string_view s, uint64_t *ret_bps);

// A bandwidth or a percentage of the maximum ("75%").
struct Level {
        bool percent = false;
        double pct = 0;       // 0..100 when percent
        uint64_t bps = 0;     // otherwise
        uint64_t resolve(uint64_t max_bps) const
        {
                return percent ? uint64_t(double(max_bps) * pct / 100.0 + 0.5) : bps;
        }
        std::string to_string() const;
        bool operator==(const Level &) const = default;
};
int parse_level(std::string_view s, Level *ret);

// "500us", "100ms", "1s", "2min"; a plain number is seconds.  Returns 0 or
// -EINVAL / -ERANGE.
int parse_duration(std::string_view s, uint64_t *ret_usec);

std::string format_bandwidth(uint64_t bps);  // "33.00 GB/s"
std::string format_duration(uint64_t usec);  // "100ms"

} // namespace bwq

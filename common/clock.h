// CLOCK_MONOTONIC, the clock of every interval, deadline and timestamp here
// (DESIGN §4.3, uapi timeouts).
#pragma once

#include <time.h>

#include <cstdint>

namespace bwq {

inline uint64_t monotonic_ns()
{
        timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

inline uint64_t monotonic_usec() { return monotonic_ns() / 1000; }

inline double monotonic_s() { return double(monotonic_ns()) * 1e-9; }

} // namespace bwq

// npu-run's --fps loop, shared by the synthetic network and --model: frame
// k's slot starts at t0 + k / fps, the loop ends after `seconds`, and each
// frame's latency is counted against its period.
#pragma once

#include <time.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <vector>

#include "common/clock.h"

namespace tools {

// The frame rates --fps takes: at most 1000, and at least one frame in
// 1000 s (a slower rate is a typo, and its period would overflow a sleep).
constexpr double kMinFps = 0.001, kMaxFps = 1000;

class DeadlineLoop {
public:
        // seconds <= 0: until stop() (Ctrl-C).
        DeadlineLoop(double fps, double seconds) : period_(1.0 / fps), seconds_(seconds), t0_(bwq::monotonic_s()) {}

        // Sleeps until the slot of `frame`, or until the loop's end if that
        // comes first; false when the loop has ended (or stop() was called).
        // A slow frame rate never sleeps past the end: --fps 0.02
        // --seconds 1 runs one frame and ends after 1 s.
        bool wait(uint64_t frame, const volatile int *stop = nullptr) const
        {
                for (;;) {
                        if (stop && *stop)
                                return false;
                        const double now = bwq::monotonic_s();
                        if (seconds_ > 0 && now - t0_ >= seconds_)
                                return false;
                        double until = t0_ + double(frame) * period_;
                        if (seconds_ > 0)
                                until = std::min(until, t0_ + seconds_);
                        double wait = until - now;
                        if (wait <= 0)
                                return !(seconds_ > 0 && now - t0_ >= seconds_);
                        // In slices of at most 100 ms, so that Ctrl-C is seen.
                        wait = std::min(wait, 0.1);
                        timespec ts{time_t(wait), long((wait - std::floor(wait)) * 1e9)};
                        nanosleep(&ts, nullptr);
                }
        }
        double t0() const { return t0_; }
        double period_ms() const { return period_ * 1e3; }

private:
        double period_, seconds_, t0_;
};

// Frame latencies against the period: misses, median and 99th percentile.
struct Latencies {
        std::vector<double> ms;
        uint64_t misses = 0;
        void add(double frame_ms, double period_ms)
        {
                ms.push_back(frame_ms);
                misses += frame_ms > period_ms;
        }
        double percentile(double p) const
        {
                if (ms.empty())
                        return 0;
                std::vector<double> s = ms;
                std::sort(s.begin(), s.end());
                return s[std::min(s.size() - 1, size_t(double(s.size()) * p))];
        }
};

} // namespace tools

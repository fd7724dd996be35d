// A streaming memory copy on threads of its own: the antagonist of the probe's
// calibration, bwqctl calibrate and bwq-stream.  Every copied byte counts
// twice (read once, written once).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <thread>
#include <vector>

namespace bwq {

class Streamer {
public:
        struct Options {
                unsigned threads = 1;
                size_t buffer_bytes = 64u << 20;  // per thread, two of them
                unsigned duty_pct = 100;          // stream this share of every 10 ms
                int avoid_cpu = -1;               // >= 0: run on the other allowed CPUs
        };
        explicit Streamer(const Options &o);
        ~Streamer();
        Streamer(const Streamer &) = delete;
        Streamer &operator=(const Streamer &) = delete;

        // Bytes read and written so far.
        uint64_t moved() const { return moved_.load(std::memory_order_relaxed); }
        // Blocks until every thread has copied once (pages faulted in), or
        // up to two seconds.
        void wait_started() const;
        void stop();

private:
        void run(const Options &o);
        std::atomic<bool> stop_{false};
        std::atomic<uint64_t> moved_{0};
        std::atomic<unsigned> started_{0};
        unsigned threads_;
        std::vector<std::thread> ts_;
};

} // namespace bwq

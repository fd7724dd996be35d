#include "stream.h"

#include <sched.h>
#include <time.h>

#include <chrono>
#include <cstring>

#include "clock.h"

namespace bwq {

static constexpr size_t kChunk = 1u << 20;
static constexpr uint64_t kSlotNs = 10000000;

Streamer::Streamer(const Options &o) : threads_(o.threads)
{
        for (unsigned i = 0; i < o.threads; i++)
                ts_.emplace_back([this, o] { run(o); });
}

Streamer::~Streamer() { stop(); }

void Streamer::run(const Options &o)
{
        if (o.avoid_cpu >= 0) {
                // Off the CPU given (the probe's, while it calibrates): sharing
                // it, the two would take turns instead of meeting in memory.
                cpu_set_t set;
                if (sched_getaffinity(0, sizeof set, &set) == 0 && o.avoid_cpu < CPU_SETSIZE && CPU_ISSET(o.avoid_cpu, &set) &&
                    CPU_COUNT(&set) > 1) {
                        CPU_CLR(o.avoid_cpu, &set);
                        (void)sched_setaffinity(0, sizeof set, &set);
                }
        }
        const size_t n = o.buffer_bytes < kChunk ? kChunk : o.buffer_bytes;
        std::vector<uint8_t> a(n, 1), b(n, 2);
        std::memcpy(b.data(), a.data(), n);  // fault the pages in first
        started_.fetch_add(1);
        size_t off = 0;
        const uint64_t busy = kSlotNs * (o.duty_pct > 100 ? 100 : o.duty_pct) / 100;
        while (!stop_.load(std::memory_order_relaxed)) {
                const uint64_t slot = monotonic_ns();
                while (monotonic_ns() - slot < busy && !stop_.load(std::memory_order_relaxed)) {
                        size_t len = n - off < kChunk ? n - off : kChunk;
                        std::memcpy(b.data() + off, a.data() + off, len);
                        moved_.fetch_add(2 * len, std::memory_order_relaxed);
                        off = (off + len) % n;
                }
                if (o.duty_pct < 100) {
                        int64_t rest = int64_t(kSlotNs) - int64_t(monotonic_ns() - slot);
                        if (rest > 0) {
                                timespec d = {0, long(rest)};
                                nanosleep(&d, nullptr);
                        }
                }
        }
}

void Streamer::wait_started() const
{
        for (int i = 0; i < 2000 && started_.load() < threads_; i++)
                std::this_thread::sleep_for(std::chrono::milliseconds(1));
}

void Streamer::stop()
{
        stop_ = true;
        for (auto &t : ts_)
                if (t.joinable())
                        t.join();
}

} // namespace bwq

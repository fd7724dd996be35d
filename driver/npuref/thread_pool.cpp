#include "thread_pool.h"

#include <pthread.h>
#include <sched.h>

#include <algorithm>
#include <chrono>

namespace npuref {

static inline void cpu_relax()
{
#if defined(__x86_64__) || defined(__i386__)
        __builtin_ia32_pause();
#elif defined(__aarch64__)
        asm volatile("yield");
#endif
}

// Spins while busy() holds, for up to `us` microseconds (the clock read
// every 64 turns); returns whether it still holds.
template <typename Busy> static bool spin_while(Busy busy, unsigned us)
{
        const auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(us);
        for (unsigned k = 0; busy(); k++) {
                if (k % 64 == 63 && std::chrono::steady_clock::now() >= until)
                        return true;
                cpu_relax();
        }
        return false;
}

static void pin_self(int cpu)
{
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        // Best effort: a refused pin leaves the thread where the scheduler puts it.
        (void)pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

ThreadPool::ThreadPool(unsigned threads, std::vector<int> cpus) : cpus_(std::move(cpus))
{
        if (cpus_.size() < threads)
                cpus_.clear();
        shares_ = std::make_unique<Share[]>(std::max(threads, 1u));
        for (unsigned i = 1; i < threads; i++)
                workers_.emplace_back([this, i] {
                        if (!cpus_.empty())
                                pin_self(cpus_[i]);
                        run(i);
                });
}

void ThreadPool::pin_caller() const
{
        if (!cpus_.empty())
                pin_self(cpus_[0]);
}

ThreadPool::CallerPin::CallerPin(const ThreadPool &pool)
{
        if (pool.cpus_.empty() || pthread_getaffinity_np(pthread_self(), sizeof saved_, &saved_) != 0)
                return;
        restore_ = true;
        pool.pin_caller();
}

ThreadPool::CallerPin::~CallerPin()
{
        if (restore_)
                (void)pthread_setaffinity_np(pthread_self(), sizeof saved_, &saved_);
}

ThreadPool::~ThreadPool()
{
        stopping_.store(true);
        {
                // A worker between its check of stopping_ and its wait holds
                // mu_: taking it here means the notify below reaches it.
                std::lock_guard<std::mutex> lk(mu_);
        }
        start_cv_.notify_all();
        for (auto &t : workers_)
                t.join();
}

static inline uint64_t pack_range(uint64_t next, uint64_t end)
{
        return next << 32 | end;
}

// The next item of thread t's own share, from the front.
bool ThreadPool::claim_own(unsigned t, size_t &item)
{
        const uint64_t old = shares_[t].range.fetch_add(uint64_t(1) << 32, std::memory_order_relaxed);
        item = size_t(old >> 32);
        return item < (old & 0xffffffffu);
}

// An item from the back of another thread's share.
bool ThreadPool::claim_other(unsigned t, size_t &item)
{
        const unsigned n = threads();
        for (unsigned k = 1; k < n; k++) {
                std::atomic<uint64_t> &r = shares_[(t + k) % n].range;
                uint64_t old = r.load(std::memory_order_relaxed);
                for (;;) {
                        const uint64_t next = old >> 32, end = old & 0xffffffffu;
                        if (next >= end)
                                break;
                        if (r.compare_exchange_weak(old, pack_range(next, end - 1), std::memory_order_relaxed)) {
                                item = size_t(end - 1);
                                return true;
                        }
                }
        }
        return false;
}

void ThreadPool::run_items(unsigned t, const std::function<void(size_t)> &fn)
{
        size_t i;
        while (claim_own(t, i))
                fn(i);
        while (claim_other(t, i))
                fn(i);
}

void ThreadPool::leave_batch()
{
        if (busy_.fetch_sub(1) == 1 && caller_asleep_.load()) {
                std::lock_guard<std::mutex> lk(mu_);
                done_cv_.notify_all();
        }
}

void ThreadPool::run(unsigned id)
{
        uint64_t joined = 0;  // the last generation this worker took part in
        for (;;) {
                const uint64_t s = published_.load(std::memory_order_acquire);
                if (!(s & 1) || s >> 1 == joined) {
                        // No batch for this worker.  A layer's batches come
                        // back to back, and a model's jobs follow each other
                        // after the host's own work on the previous one: spin
                        // up to a millisecond before sleeping, since waking a
                        // sleeping thread (tens of microseconds in a VM)
                        // costs as much as a small layer.
                        spin_while([&] { return published_.load(std::memory_order_acquire) == s && !stopping_.load(std::memory_order_relaxed); },
                                   1000);
                        std::unique_lock<std::mutex> lk(mu_);
                        sleepers_.fetch_add(1);
                        start_cv_.wait(lk, [&] { return published_.load() != s || stopping_.load(); });
                        sleepers_.fetch_sub(1);
                        if (stopping_.load())
                                return;
                        continue;
                }
                // Join, then check that the batch is still the one seen: a
                // batch closed in between may have its shares reset.
                busy_.fetch_add(1);
                if (published_.load() != s) {
                        leave_batch();
                        continue;
                }
                joined = s >> 1;
                run_items(id, *fn_);
                leave_batch();
        }
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t)> &fn)
{
        if (workers_.empty() || n <= 1) {
                for (size_t i = 0; i < n; i++)
                        fn(i);
                return;
        }
        // A share's bounds are 32-bit: longer batches go in pieces.
        constexpr size_t kMax = 0xffffffffu;
        if (n > kMax) {
                for (size_t base = 0; base < n; base += kMax)
                        parallel_for(std::min(kMax, n - base), [&](size_t i) { fn(base + i); });
                return;
        }
        const unsigned T = threads();
        fn_ = &fn;
        for (unsigned t = 0; t < T; t++)
                shares_[t].range.store(pack_range(n * t / T, n * (t + 1) / T), std::memory_order_relaxed);
        generation_++;
        published_.store(generation_ << 1 | 1);
        if (sleepers_.load() > 0) {
                { std::lock_guard<std::mutex> lk(mu_); }
                start_cv_.notify_all();
        }
        run_items(0, fn);
        // Every item is claimed: close the batch, then wait for the workers
        // still running theirs (a short spin, since they are finishing
        // their last item, then the condition variable).
        published_.store(generation_ << 1);
        if (spin_while([&] { return busy_.load(std::memory_order_acquire) != 0; }, 200)) {
                std::unique_lock<std::mutex> lk(mu_);
                caller_asleep_.store(true);
                done_cv_.wait(lk, [&] { return busy_.load() == 0; });
                caller_asleep_.store(false);
        }
        fn_ = nullptr;
}

void parallel_for(ThreadPool *pool, size_t n, const std::function<void(size_t)> &fn)
{
        if (pool)
                pool->parallel_for(n, fn);
        else
                for (size_t i = 0; i < n; i++)
                        fn(i);
}

} // namespace npuref

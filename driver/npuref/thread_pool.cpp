#include "thread_pool.h"

#include <pthread.h>
#include <sched.h>

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
        {
                std::lock_guard<std::mutex> lk(mu_);
                stop_ = true;
                stopping_ = true;
        }
        start_cv_.notify_all();
        for (auto &t : workers_)
                t.join();
}

void ThreadPool::run(unsigned)
{
        unsigned long seen = 0;
        std::unique_lock<std::mutex> lk(mu_);
        for (;;) {
                // A layer's batches come back to back, and a model's jobs
                // follow each other after the host's own work on the
                // previous one: spin up to a millisecond before sleeping,
                // since waking a sleeping thread (tens of microseconds in a
                // VM) costs as much as a small layer.
                if (!stop_ && generation_ == seen) {
                        lk.unlock();
                        auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(1000);
                        while (published_.load(std::memory_order_acquire) == seen && !stopping_.load(std::memory_order_relaxed) &&
                               std::chrono::steady_clock::now() < until)
                                cpu_relax();
                        lk.lock();
                }
                start_cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
                if (stop_)
                        return;
                seen = generation_;
                busy_.fetch_add(1, std::memory_order_relaxed);
                const auto *fn = fn_;
                const size_t n = n_;
                lk.unlock();
                for (size_t i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < n;)
                        (*fn)(i);
                if (busy_.fetch_sub(1, std::memory_order_acq_rel) == 1) {
                        lk.lock();
                        done_cv_.notify_all();
                } else {
                        lk.lock();
                }
        }
}

// Waits (lk held) until no thread is inside a batch: a short spin, since
// the others are finishing their last item, then the condition variable.
void ThreadPool::wait_idle(std::unique_lock<std::mutex> &lk)
{
        if (busy_.load(std::memory_order_acquire) == 0)
                return;
        lk.unlock();
        auto until = std::chrono::steady_clock::now() + std::chrono::microseconds(200);
        while (busy_.load(std::memory_order_acquire) != 0 && std::chrono::steady_clock::now() < until)
                cpu_relax();
        lk.lock();
        done_cv_.wait(lk, [&] { return busy_.load(std::memory_order_acquire) == 0; });
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t)> &fn)
{
        if (workers_.empty() || n <= 1) {
                for (size_t i = 0; i < n; i++)
                        fn(i);
                return;
        }
        std::unique_lock<std::mutex> lk(mu_);
        // A worker that joined the last batch late may still be looking
        // for items: the counter is reset only once it has left.
        wait_idle(lk);
        fn_ = &fn;
        n_ = n;
        next_.store(0, std::memory_order_relaxed);
        busy_.store(1, std::memory_order_relaxed);
        generation_++;
        published_.store(generation_, std::memory_order_release);
        lk.unlock();
        start_cv_.notify_all();
        for (size_t i; (i = next_.fetch_add(1, std::memory_order_relaxed)) < n;)
                fn(i);
        busy_.fetch_sub(1, std::memory_order_acq_rel);
        lk.lock();
        wait_idle(lk);
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

// A fixed set of compute threads that split one layer's work.
#pragma once

#include <sched.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace npuref {

class ThreadPool {
public:
        // cpus: empty, or one CPU per thread: [0] for the caller of
        // parallel_for (pin_caller), [i] for worker i.
        explicit ThreadPool(unsigned threads, std::vector<int> cpus = {});
        ~ThreadPool();
        ThreadPool(const ThreadPool &) = delete;
        ThreadPool &operator=(const ThreadPool &) = delete;

        unsigned threads() const { return unsigned(workers_.size()) + 1; }
        // Pins the calling thread (the one that will call parallel_for) to
        // cpus[0]; nothing without cpus.
        void pin_caller() const;
        // The same for a thread that calls parallel_for for a while (a
        // waiter running jobs): pinned while it lives, then given back the
        // CPUs it had.  Nothing without cpus.
        class CallerPin {
        public:
                explicit CallerPin(const ThreadPool &pool);
                ~CallerPin();
                CallerPin(const CallerPin &) = delete;
                CallerPin &operator=(const CallerPin &) = delete;

        private:
                bool restore_ = false;
                cpu_set_t saved_;
        };
        // Calls fn(i) for i in [0, n), spread over the pool and the caller;
        // returns when all calls have returned.
        void parallel_for(size_t n, const std::function<void(size_t)> &fn);

private:
        void run(unsigned id);

        std::vector<std::thread> workers_;
        std::vector<int> cpus_;
        void wait_idle(std::unique_lock<std::mutex> &lk);

        // mu_ guards fn_, n_, generation_, stop_ and joining a batch (busy_
        // up); items are claimed from next_ and busy_ goes down without it.
        std::mutex mu_;
        std::condition_variable start_cv_, done_cv_;
        const std::function<void(size_t)> *fn_ = nullptr;
        size_t n_ = 0;
        std::atomic<size_t> next_{0};
        std::atomic<unsigned> busy_{0};  // threads inside the current batch
        unsigned long generation_ = 0;
        // Mirrors generation_ for workers spinning between batches.
        std::atomic<unsigned long> published_{0};
        bool stop_ = false;
        std::atomic<bool> stopping_{false};
};

// parallel_for without a pool: runs inline.
void parallel_for(ThreadPool *pool, size_t n, const std::function<void(size_t)> &fn);

} // namespace npuref

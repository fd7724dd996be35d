// A fixed set of compute threads that split one layer's work.
#pragma once

#include <sched.h>

#include <atomic>
#include <condition_variable>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
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
        // returns when all calls have returned.  Thread t starts on the
        // t-th contiguous share of [0, n) (the caller is thread 0), so the
        // same rows go to the same CPU from one layer to the next; a thread
        // done with its share takes items from the end of the others'.
        void parallel_for(size_t n, const std::function<void(size_t)> &fn);

private:
        // One thread's share of a batch, [next, end) in one word so that
        // its owner (from the front) and the others (from the back) claim
        // items with one atomic operation each; a cache line of its own,
        // so the owner's claims stay in its core.
        struct alignas(64) Share {
                std::atomic<uint64_t> range{0};
        };
        bool claim_own(unsigned t, size_t &item);
        bool claim_other(unsigned t, size_t &item);
        void run_items(unsigned t, const std::function<void(size_t)> &fn);
        void leave_batch();
        void run(unsigned id);

        std::vector<std::thread> workers_;
        std::vector<int> cpus_;
        std::unique_ptr<Share[]> shares_;

        // The batch: written by the caller before it opens the batch.
        const std::function<void(size_t)> *fn_ = nullptr;
        // (generation << 1) | open.  A worker joins an open batch by raising
        // busy_ and reading published_ again; the caller closes the batch
        // once every item is claimed and then waits for busy_ to reach 0, so
        // no worker still in a batch sees the next one's shares.
        alignas(64) std::atomic<uint64_t> published_{0};
        alignas(64) std::atomic<unsigned> busy_{0};
        alignas(64) std::atomic<unsigned> sleepers_{0};  // workers asleep on start_cv_
        std::atomic<bool> caller_asleep_{false};         // the caller asleep on done_cv_
        std::atomic<bool> stopping_{false};
        uint64_t generation_ = 0;  // the caller's
        std::mutex mu_;            // only for sleeping and waking
        std::condition_variable start_cv_, done_cv_;
};

// parallel_for without a pool: runs inline.
void parallel_for(ThreadPool *pool, size_t n, const std::function<void(size_t)> &fn);

} // namespace npuref

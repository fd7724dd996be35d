#include "thread_pool.h"

namespace npuref {

ThreadPool::ThreadPool(unsigned threads)
{
        for (unsigned i = 1; i < threads; i++)
                workers_.emplace_back([this, i] { run(i); });
}

ThreadPool::~ThreadPool()
{
        {
                std::lock_guard<std::mutex> lk(mu_);
                stop_ = true;
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
                start_cv_.wait(lk, [&] { return stop_ || generation_ != seen; });
                if (stop_)
                        return;
                seen = generation_;
                busy_++;
                while (next_ < n_) {
                        size_t i = next_++;
                        const auto *fn = fn_;
                        lk.unlock();
                        (*fn)(i);
                        lk.lock();
                }
                if (--busy_ == 0)
                        done_cv_.notify_all();
        }
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t)> &fn)
{
        if (workers_.empty() || n <= 1) {
                for (size_t i = 0; i < n; i++)
                        fn(i);
                return;
        }
        std::unique_lock<std::mutex> lk(mu_);
        fn_ = &fn;
        n_ = n;
        next_ = 0;
        generation_++;
        busy_++;
        start_cv_.notify_all();
        while (next_ < n_) {
                size_t i = next_++;
                lk.unlock();
                fn(i);
                lk.lock();
        }
        busy_--;
        done_cv_.wait(lk, [&] { return busy_ == 0; });
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

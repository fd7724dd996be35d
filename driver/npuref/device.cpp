// The npuref device: buffer objects on memfd, a job queue served by a
// runner thread (with a compute pool for each layer), completion on eventfd.
#include <sched.h>
#include <fcntl.h>
#include <sys/eventfd.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <condition_variable>
#include <cstring>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <thread>

#include "common/clock.h"
#include "uapi/bwq_page.h"
#include "job.h"
#include "kernels.h"
#include "uapi/npu_accel.h"
#include "npuref.h"
#include "thread_pool.h"
#include "common/depth.h"
#include "common/mapping.h"
#include "common/unique_fd.h"

using namespace npuref;

namespace {

constexpr uint32_t kMaxBos = 4096;
constexpr uint64_t kMaxBoSize = 1ull << 30;
constexpr uint32_t kMaxJobs = 256;
constexpr uint32_t kMaxBosPerJob = 256;

struct Bo {
        uint32_t handle = 0;
        uint32_t flags = 0;
        bwq::unique_fd fd;
        bwq::Mapping mapping;
        uint8_t *data = nullptr;  // mapping's, for the executor
        uint64_t size = 0;

        bool is_page() const { return flags & DRM_NPU_BO_IMPORT_DECISION_PAGE; }
        uint64_t mmap_offset() const { return uint64_t(handle) << 32; }
};

struct JobState {
        uint32_t id = 0;
        Job job;
        std::vector<std::shared_ptr<Bo>> bos;
        std::shared_ptr<Bo> page;
        bwq::unique_fd fence;  // the job's own end of its completion eventfd
        bool done = false;
        int status = 0;
};

} // namespace

struct npuref_device {
        const Kernels *kernels = nullptr;
        std::unique_ptr<ThreadPool> pool;
        std::mutex mu;
        std::condition_variable queue_cv, done_cv;
        std::map<uint32_t, std::shared_ptr<Bo>> bos;
        std::map<uint32_t, std::shared_ptr<JobState>> jobs;
        std::deque<std::shared_ptr<JobState>> queue;
        uint32_t next_handle = 1, next_job = 1;
        uint64_t bo_bytes = 0, bo_limit = 0;  // all BOs but pages, and their cap
        bool stopping = false;
        bool executing = false;  // a thread is running the queue's first job
        std::thread runner;

        void run();
        void execute_front(std::unique_lock<std::mutex> &lk);
        int get_param(drm_npu_param *p);
        int bo_create(drm_npu_bo_create *a);
        int bo_info(drm_npu_bo_info *a);
        int gem_close(drm_gem_close *a);
        int submit(drm_npu_submit *a);
        int wait(drm_npu_wait *a);
};

// Runs the queue's first job (lk held on entry and on return).  One job at
// a time, in submission order, on the runner or on a thread waiting for
// its job (wait()).
void npuref_device::execute_front(std::unique_lock<std::mutex> &lk)
{
        auto js = queue.front();
        queue.pop_front();
        executing = true;
        lk.unlock();
        std::vector<BufferView> views;
        for (auto &b : js->bos)
                views.push_back({b->data, b->size});
        const bwq_page *page = js->page ? reinterpret_cast<const bwq_page *>(js->page->data) : nullptr;
        int status = execute_job(js->job, views.data(), page, *kernels, pool.get());
        lk.lock();
        executing = false;
        js->status = status;
        js->done = true;
        js->bos.clear();
        js->page.reset();
        if (js->fence) {
                uint64_t one = 1;
                (void)!write(js->fence.get(), &one, sizeof one);
                js->fence.reset();
        }
        done_cv.notify_all();
        if (!queue.empty())
                queue_cv.notify_one();
}

void npuref_device::run()
{
        pool->pin_caller();
        std::unique_lock<std::mutex> lk(mu);
        for (;;) {
                queue_cv.wait(lk, [&] { return stopping || (!queue.empty() && !executing); });
                if (queue.empty())
                        return;
                execute_front(lk);
        }
}

int npuref_device::get_param(drm_npu_param *p)
{
        if (p->pad)
                return -EINVAL;
        switch (p->param) {
        case DRM_NPU_PARAM_API_VERSION: p->value = NPU_ACCEL_API_VERSION; return 0;
        case DRM_NPU_PARAM_THREADS: p->value = pool->threads(); return 0;
        case DRM_NPU_PARAM_MAX_LAYERS: p->value = kMaxLayers; return 0;
        case DRM_NPU_PARAM_MAX_TENSORS: p->value = kMaxTensors; return 0;
        case DRM_NPU_PARAM_MAX_BOS: p->value = kMaxBos; return 0;
        case DRM_NPU_PARAM_MAX_BO_SIZE: p->value = kMaxBoSize; return 0;
        case DRM_NPU_PARAM_BIT_DEPTHS: p->value = bwq::depth_mask(); return 0;
        case DRM_NPU_PARAM_ISA: p->value = uint64_t(kernels->isa); return 0;
        case DRM_NPU_PARAM_MAX_JOBS: p->value = kMaxJobs; return 0;
        default: return -EINVAL;
        }
}

int npuref_device::bo_create(drm_npu_bo_create *a)
{
        if (a->pad || (a->flags & ~DRM_NPU_BO_CREATE_FLAGS))
                return -EINVAL;
        auto bo = std::make_shared<Bo>();
        bo->flags = a->flags;
        if (a->flags & DRM_NPU_BO_IMPORT_DECISION_PAGE) {
                struct stat st;
                if (a->fd < 0 || fstat(a->fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < BWQ_PAGE_SIZE)
                        return -EINVAL;
                // A page its owner could truncate would kill us with SIGBUS
                // at the next read: only one sealed against shrinking, as
                // bwqd's is (a file that cannot be sealed is refused too).
                int seals = fcntl(a->fd, F_GET_SEALS);
                if (seals < 0 || !(seals & F_SEAL_SHRINK))
                        return -EPERM;
                bo->mapping = bwq::Mapping::map(BWQ_PAGE_SIZE, PROT_READ, MAP_SHARED, a->fd, 0);
                if (!bo->mapping)
                        return -errno;
                bo->data = bo->mapping.as<uint8_t>();
                bo->size = BWQ_PAGE_SIZE;
                const bwq_page *pg = bo->mapping.as<const bwq_page>();
                if (pg->magic != BWQ_PAGE_MAGIC || pg->version != BWQ_PAGE_VERSION)
                        return -EPROTO;
                bo->fd.reset(fcntl(a->fd, F_DUPFD_CLOEXEC, 3));
                if (!bo->fd)
                        return -errno;
        } else {
                if (a->fd != -1 || a->size == 0)
                        return -EINVAL;
                if (a->size > kMaxBoSize)
                        return -E2BIG;
                bo->fd.reset(memfd_create("npuref-bo", MFD_CLOEXEC));
                if (!bo->fd)
                        return -errno;
                if (ftruncate(bo->fd.get(), off_t(a->size)) < 0)
                        return -errno;
                bo->mapping = bwq::Mapping::map(a->size, PROT_READ | PROT_WRITE, MAP_SHARED, bo->fd.get(), 0);
                if (!bo->mapping)
                        return -errno;
                bo->data = bo->mapping.as<uint8_t>();
                bo->size = a->size;
        }
        std::lock_guard<std::mutex> lk(mu);
        if (bos.size() >= kMaxBos)
                return -ENOSPC;
        // The memfds are sparse: without a total, 4096 BOs of 1 GiB each
        // would be accepted and fail only when touched.
        if (!bo->is_page() && bo_bytes + bo->size > bo_limit)
                return -ENOMEM;
        if (!bo->is_page())
                bo_bytes += bo->size;
        while (!next_handle || bos.count(next_handle))
                next_handle++;
        bo->handle = next_handle++;
        bos[bo->handle] = bo;
        a->handle = bo->handle;
        a->mmap_offset = bo->mmap_offset();
        if (bo->is_page())
                a->size = bo->size;
        return 0;
}

int npuref_device::bo_info(drm_npu_bo_info *a)
{
        if (a->pad || a->pad2)
                return -EINVAL;
        std::lock_guard<std::mutex> lk(mu);
        auto it = bos.find(a->handle);
        if (it == bos.end())
                return -ENOENT;
        a->size = it->second->size;
        a->mmap_offset = it->second->mmap_offset();
        a->flags = it->second->flags;
        return 0;
}

int npuref_device::gem_close(drm_gem_close *a)
{
        if (a->pad)
                return -EINVAL;
        std::lock_guard<std::mutex> lk(mu);
        // Jobs in flight hold their own references; memory goes with the last.
        auto it = bos.find(a->handle);
        if (it == bos.end())
                return -ENOENT;
        if (!it->second->is_page())
                bo_bytes -= it->second->size;
        bos.erase(it);
        return 0;
}

int npuref_device::submit(drm_npu_submit *a)
{
        a->error = DRM_NPU_JOB_OK;
        a->error_index = 0;
        a->out_fence_fd = -1;
        auto fail = [&](int err, uint32_t code, uint32_t index) {
                a->error = code;
                a->error_index = index;
                return err;
        };
        if (a->flags & ~DRM_NPU_SUBMIT_FLAGS)
                return -EINVAL;
        if (a->bo_handle_count == 0 || a->bo_handles == 0)
                return fail(-EINVAL, DRM_NPU_JOB_ERR_BAD_BO_INDEX, 0);
        if (a->bo_handle_count > kMaxBosPerJob)
                return fail(-E2BIG, DRM_NPU_JOB_ERR_TOO_MANY, 0);

        std::vector<uint32_t> handles(a->bo_handle_count);
        std::memcpy(handles.data(), reinterpret_cast<const void *>(uintptr_t(a->bo_handles)),
                    handles.size() * sizeof(uint32_t));
        auto js = std::make_shared<JobState>();
        std::vector<BufferView> views;
        {
                std::lock_guard<std::mutex> lk(mu);
                for (uint32_t i = 0; i < handles.size(); i++) {
                        auto it = bos.find(handles[i]);
                        if (it == bos.end())
                                return fail(-ENOENT, DRM_NPU_JOB_ERR_BAD_HANDLE, i);
                        if (it->second->is_page())
                                return fail(-EINVAL, DRM_NPU_JOB_ERR_BAD_HANDLE, i);
                        js->bos.push_back(it->second);
                }
                if (a->page_handle) {
                        auto it = bos.find(a->page_handle);
                        if (it == bos.end())
                                return fail(-ENOENT, DRM_NPU_JOB_ERR_BAD_PAGE, 0);
                        if (!it->second->is_page())
                                return fail(-EINVAL, DRM_NPU_JOB_ERR_BAD_PAGE, 0);
                        js->page = it->second;
                }
                if (jobs.size() >= kMaxJobs)
                        return -EBUSY;
        }
        for (auto &b : js->bos)
                views.push_back({b->data, b->size});
        if (a->cmd_bo_index >= views.size())
                return fail(-EINVAL, DRM_NPU_JOB_ERR_BAD_BO_INDEX, 0);
        const BufferView &cmd = views[a->cmd_bo_index];
        if (a->cmd_offset > cmd.size || a->cmd_size > cmd.size - a->cmd_offset)
                return fail(-EINVAL, DRM_NPU_JOB_ERR_OUT_OF_BOUNDS, 0);
        JobError err;
        int r = validate_job(cmd.data + a->cmd_offset, a->cmd_size, views.data(), views.size(), js->page != nullptr,
                             &js->job, &err);
        if (r < 0)
                return fail(r, err.code, err.index);

        int user_fence = -1;
        if (a->flags & DRM_NPU_SUBMIT_FENCE_FD) {
                js->fence.reset(eventfd(0, EFD_CLOEXEC));
                if (!js->fence)
                        return -errno;
                user_fence = fcntl(js->fence.get(), F_DUPFD_CLOEXEC, 3);
                if (user_fence < 0)
                        return -errno;
        }
        std::lock_guard<std::mutex> lk(mu);
        while (!next_job || jobs.count(next_job))
                next_job++;
        js->id = next_job++;
        jobs[js->id] = js;
        queue.push_back(js);
        // A job its submitter waits for next is run by that WAIT.
        if (!(a->flags & DRM_NPU_SUBMIT_WAITED))
                queue_cv.notify_one();
        a->job_id = js->id;
        a->out_fence_fd = user_fence;
        return 0;
}

int npuref_device::wait(drm_npu_wait *a)
{
        if (a->flags || a->pad)
                return -EINVAL;
        std::unique_lock<std::mutex> lk(mu);
        auto it = jobs.find(a->job_id);
        if (it == jobs.end())
                return -ENOENT;
        auto js = it->second;
        // A wait without a deadline runs the queue itself while the runner
        // has not started (its job, and those before it): a synchronous run
        // then costs no hand-over to the runner and back, which in a VM
        // takes tens of microseconds each way.  A wait with a deadline only
        // waits, since a job it started could not be left at the deadline;
        // it wakes the runner, which a WAITED job's SUBMIT did not.
        if (a->timeout_ns == INT64_MAX && !js->done && !executing && !queue.empty()) {
                ThreadPool::CallerPin pin(*pool);
                while (!js->done && !executing && !queue.empty())
                        execute_front(lk);
        } else if (!js->done && !executing && !queue.empty()) {
                queue_cv.notify_one();
        }
        while (!js->done) {
                uint64_t now = bwq::monotonic_ns();
                if (a->timeout_ns <= 0 || uint64_t(a->timeout_ns) <= now)
                        return -ETIME;
                // In slices, so that a far deadline cannot overflow the clock.
                uint64_t left = std::min<uint64_t>(uint64_t(a->timeout_ns) - now, 1000000000ull);
                done_cv.wait_for(lk, std::chrono::nanoseconds(left));
        }
        a->job_status = js->status;
        jobs.erase(js->id);
        return 0;
}

int npuref_open(const npuref_options *opts, npuref_device **ret)
{
        Isa isa = isa_best();
        if (opts && opts->isa >= 0) {
                if (opts->isa > int(Isa::Avx512Vnni) || !isa_supported(Isa(opts->isa)))
                        return -ENOTSUP;
                isa = Isa(opts->isa);
        }
        // Compute threads spin between layers: more of them than CPUs to run
        // on makes a run hundreds of times slower, so that is refused.
        cpu_set_t allowed;
        unsigned ncpu = sched_getaffinity(0, sizeof allowed, &allowed) == 0 ? unsigned(CPU_COUNT(&allowed)) : 0;
        if (!ncpu)
                ncpu = std::max(1u, std::thread::hardware_concurrency());
        unsigned threads = opts && opts->threads ? opts->threads : ncpu;
        if (threads > ncpu)
                return -ERANGE;
        // Compute threads on distinct CPUs of those this process may use:
        // left to the scheduler, two of them sometimes share one CPU for a
        // whole run (the job's waker and the spinning worker), which halves
        // a 2-thread device.
        std::vector<int> cpus;
        const int pin = opts ? opts->pin : -1;
        if (pin == 1 || (pin < 0 && threads > 1)) {
                cpu_set_t set;
                if (sched_getaffinity(0, sizeof set, &set) == 0)
                        for (int c = 0; c < CPU_SETSIZE && cpus.size() < threads; c++)
                                if (CPU_ISSET(c, &set))
                                        cpus.push_back(c);
        }
        auto dev = std::make_unique<npuref_device>();
        dev->bo_limit = opts && opts->bo_limit ? opts->bo_limit : uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGESIZE)) / 2;
        dev->kernels = &kernels_for(isa);
        dev->pool = std::make_unique<ThreadPool>(threads, cpus);
        dev->runner = std::thread([d = dev.get()] { d->run(); });
        *ret = dev.release();
        return 0;
}

void npuref_close(npuref_device *dev)
{
        if (!dev)
                return;
        {
                std::lock_guard<std::mutex> lk(dev->mu);
                dev->stopping = true;
        }
        dev->queue_cv.notify_all();
        if (dev->runner.joinable())
                dev->runner.join();
        delete dev;  // unfinished jobs' fences close with them
}

int npuref_ioctl(npuref_device *dev, unsigned long request, void *arg)
{
        if (!dev || !arg)
                return -EFAULT;
        switch (request) {
        case DRM_IOCTL_NPU_GET_PARAM: return dev->get_param(static_cast<drm_npu_param *>(arg));
        case DRM_IOCTL_NPU_BO_CREATE: return dev->bo_create(static_cast<drm_npu_bo_create *>(arg));
        case DRM_IOCTL_NPU_BO_INFO: return dev->bo_info(static_cast<drm_npu_bo_info *>(arg));
        case DRM_IOCTL_NPU_SUBMIT: return dev->submit(static_cast<drm_npu_submit *>(arg));
        case DRM_IOCTL_NPU_WAIT: return dev->wait(static_cast<drm_npu_wait *>(arg));
        case DRM_IOCTL_GEM_CLOSE: return dev->gem_close(static_cast<drm_gem_close *>(arg));
        default: return -ENOTTY;
        }
}

int npuref_mmap(npuref_device *dev, uint64_t offset, size_t length, int prot, void **ret)
{
        std::shared_ptr<Bo> bo;
        {
                std::lock_guard<std::mutex> lk(dev->mu);
                auto it = dev->bos.find(uint32_t(offset >> 32));
                if (it == dev->bos.end() || (offset & 0xffffffffu))
                        return -EINVAL;
                bo = it->second;
        }
        if (length == 0 || length > bo->size)
                return -EINVAL;
        if (bo->is_page() && (prot & PROT_WRITE))
                return -EACCES;
        void *m = mmap(nullptr, length, prot, MAP_SHARED, bo->fd.get(), 0);
        if (m == MAP_FAILED)
                return -errno;
        *ret = m;
        return 0;
}

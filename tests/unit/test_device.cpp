// The ioctl line of the software device: params, buffer objects, submit,
// fences and wait, decision pages, and the errors of each.
#include <dirent.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/clock.h"
#include "npu/npu.h"
#include "test_util.h"

namespace {

npu_device *open_dev()
{
        npu_device *d;
        assert_int_equal(npu_device_open("soft:threads=2", &d), 0);
        return d;
}

int64_t now_ns() { return int64_t(bwq::monotonic_ns()); }

// BOs and a valid one-layer job (1x1 conv, 8 -> 16 channels) in them.
struct Setup {
        npu_device *dev;
        npu_bo *job, *act, *par;
        std::vector<uint8_t> cmd;
        explicit Setup(npu_device *d) : dev(d)
        {
                test::RawJob j = test::conv1x1_job();
                j.h.result_offset = 0;
                cmd = j.bytes();
                assert_int_equal(npu_bo_create(dev, 8192, &job), 0);
                assert_int_equal(npu_bo_create(dev, 8192, &act), 0);
                assert_int_equal(npu_bo_create(dev, 4096, &par), 0);
                std::memcpy(static_cast<uint8_t *>(npu_bo_map(job)) + 1024, cmd.data(), cmd.size());
        }
        drm_npu_submit submit_args(uint32_t *handles) const
        {
                handles[0] = npu_bo_handle(job);
                handles[1] = npu_bo_handle(act);
                handles[2] = npu_bo_handle(par);
                drm_npu_submit s{};
                s.bo_handles = uint64_t(uintptr_t(handles));
                s.bo_handle_count = 3;
                s.cmd_offset = 1024;
                s.cmd_size = cmd.size();
                return s;
        }
        ~Setup()
        {
                npu_bo_free(job);
                npu_bo_free(act);
                npu_bo_free(par);
        }
};

} // namespace

static void get_param(void **)
{
        npu_device *d = open_dev();
        uint64_t v;
        assert_int_equal(npu_device_get_param(d, DRM_NPU_PARAM_API_VERSION, &v), 0);
        assert_int_equal(v, NPU_ACCEL_API_VERSION);
        assert_int_equal(npu_device_get_param(d, DRM_NPU_PARAM_BIT_DEPTHS, &v), 0);
        assert_int_equal(v, (1u << 4) | (1u << 6) | (1u << 8) | (1u << 16));
        assert_int_equal(npu_device_get_param(d, DRM_NPU_PARAM_THREADS, &v), 0);
        assert_int_equal(v, 2);
        assert_int_equal(npu_device_get_param(d, 999, &v), -EINVAL);
        drm_npu_param p{};
        p.param = DRM_NPU_PARAM_MAX_LAYERS;
        p.pad = 1;
        assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_GET_PARAM, &p), -EINVAL);
        assert_int_equal(npu_ioctl(d, 0x1234, &p), -ENOTTY);
        npu_device_close(d);
}

static void buffer_objects(void **)
{
        npu_device *d = open_dev();
        npu_bo *bo;
        assert_int_equal(npu_bo_create(d, 0, &bo), -EINVAL);
        assert_int_equal(npu_bo_create(d, (1ull << 30) + 1, &bo), -E2BIG);
        assert_int_equal(npu_bo_create(d, 100, &bo), 0);
        // The device and the host see the same memory.
        std::memset(npu_bo_map(bo), 0x5a, 100);
        drm_npu_bo_info info{};
        info.handle = npu_bo_handle(bo);
        assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_BO_INFO, &info), 0);
        assert_int_equal(info.size, 100);
        drm_npu_bo_create bad{};
        bad.size = 64;
        bad.fd = -1;
        bad.flags = 0x80;
        assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_BO_CREATE, &bad), -EINVAL);
        bad.flags = 0;
        bad.pad = 1;
        assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_BO_CREATE, &bad), -EINVAL);
        uint32_t h = npu_bo_handle(bo);
        npu_bo_free(bo);
        drm_gem_close gc{h, 0};
        assert_int_equal(npu_ioctl(d, DRM_IOCTL_GEM_CLOSE, &gc), -ENOENT);  // already freed
        info.handle = h;
        assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_BO_INFO, &info), -ENOENT);
        npu_device_close(d);
}

static void submit_fence_wait(void **)
{
        npu_device *d = open_dev();
        {
                Setup s(d);
                uint32_t handles[3];
                drm_npu_submit a = s.submit_args(handles);
                a.flags = DRM_NPU_SUBMIT_FENCE_FD;
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_SUBMIT, &a), 0);
                assert_true(a.job_id != 0);
                assert_true(a.out_fence_fd >= 0);
                pollfd p{a.out_fence_fd, POLLIN, 0};
                assert_int_equal(poll(&p, 1, 10000), 1);  // the fence fires
                drm_npu_wait w{};
                w.job_id = a.job_id;
                w.timeout_ns = 0;  // done: no wait needed
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_WAIT, &w), 0);
                assert_int_equal(w.job_status, 0);
                close(a.out_fence_fd);
                npu_job_result jr;
                std::memcpy(&jr, npu_bo_map(s.job), sizeof jr);
                assert_int_equal(jr.magic, NPU_RESULT_MAGIC);
                assert_int_equal(jr.layer_count, 1);
                // A reaped job is gone; unknown flags are refused.
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_WAIT, &w), -ENOENT);
                w.flags = 1;
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_WAIT, &w), -EINVAL);
                a = s.submit_args(handles);
                a.flags = 0x100;
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_SUBMIT, &a), -EINVAL);
        }
        npu_device_close(d);
}

// A WAITED job (no fence, the runner not woken) runs in a WAIT without a
// deadline, or on the runner when a WAIT with one or a later plain job
// wakes it; either way in submission order.
static void submit_waited(void **)
{
        npu_device *d = open_dev();
        {
                Setup s(d);
                uint32_t handles[3];
                auto result_magic = [&] {
                        npu_job_result jr;
                        std::memcpy(&jr, npu_bo_map(s.job), sizeof jr);
                        return jr.magic;
                };
                auto clear_result = [&] { std::memset(npu_bo_map(s.job), 0, sizeof(npu_job_result)); };
                drm_npu_wait w{};
                // A WAITED job waited for until `deadline` ends and writes its result.
                auto run_waited = [&](int64_t deadline) {
                        clear_result();
                        drm_npu_submit a = s.submit_args(handles);
                        a.flags = DRM_NPU_SUBMIT_WAITED;
                        assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_SUBMIT, &a), 0);
                        assert_int_equal(a.out_fence_fd, -1);
                        w.job_id = a.job_id;
                        w.timeout_ns = deadline;
                        assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_WAIT, &w), 0);
                        assert_int_equal(w.job_status, 0);
                        assert_int_equal(result_magic(), NPU_RESULT_MAGIC);
                };
                run_waited(INT64_MAX);                  // run by the WAIT itself
                run_waited(now_ns() + 10000000000ll);  // the runner, woken by a WAIT with a deadline
                // A later plain job starts the queue: both end, in order.
                clear_result();
                drm_npu_submit a = s.submit_args(handles);
                a.flags = DRM_NPU_SUBMIT_WAITED;
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_SUBMIT, &a), 0);
                const uint32_t first = a.job_id;
                a = s.submit_args(handles);
                a.flags = DRM_NPU_SUBMIT_FENCE_FD;
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_SUBMIT, &a), 0);
                pollfd p{a.out_fence_fd, POLLIN, 0};
                assert_int_equal(poll(&p, 1, 10000), 1);
                close(a.out_fence_fd);
                w.job_id = first;
                w.timeout_ns = 0;  // already done: the poll needs no wait
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_WAIT, &w), 0);
                w.job_id = a.job_id;
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_WAIT, &w), 0);
                // One never waited for does not hold up closing the device.
                a = s.submit_args(handles);
                a.flags = DRM_NPU_SUBMIT_WAITED;
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_SUBMIT, &a), 0);
        }
        npu_device_close(d);
}

static void bad_and_freed_handles(void **)
{
        npu_device *d = open_dev();
        {
                Setup s(d);
                uint32_t handles[3];
                drm_npu_submit a = s.submit_args(handles);
                handles[2] = 4242;
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_SUBMIT, &a), -ENOENT);
                uint32_t code, index;
                assert_int_equal(npu_device_last_job_error(d, &code, &index), 0);
                assert_int_equal(code, DRM_NPU_JOB_ERR_BAD_HANDLE);
                assert_int_equal(index, 2);
                assert_string_equal(npu_job_error_name(code), "bad buffer object handle");
                // A freed handle is as unknown as one never created.
                npu_bo *tmp;
                assert_int_equal(npu_bo_create(d, 64, &tmp), 0);
                uint32_t freed = npu_bo_handle(tmp);
                npu_bo_free(tmp);
                a = s.submit_args(handles);
                handles[1] = freed;
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_SUBMIT, &a), -ENOENT);
                assert_int_equal(a.error, DRM_NPU_JOB_ERR_BAD_HANDLE);
                assert_int_equal(a.error_index, 1);
                // The command buffer past the end of its BO.
                a = s.submit_args(handles);
                a.cmd_offset = 8192 - 16;
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_SUBMIT, &a), -EINVAL);
                assert_int_equal(a.error, DRM_NPU_JOB_ERR_OUT_OF_BOUNDS);
                a = s.submit_args(handles);
                a.cmd_bo_index = 3;
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_SUBMIT, &a), -EINVAL);
                assert_int_equal(a.error, DRM_NPU_JOB_ERR_BAD_BO_INDEX);
                a = s.submit_args(handles);
                a.bo_handle_count = 300;
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_SUBMIT, &a), -E2BIG);
        }
        npu_device_close(d);
}

// Freeing a BO while a job uses it is safe: the job holds its own reference.
static void free_during_job(void **)
{
        npu_device *d = open_dev();
        Setup *s = new Setup(d);
        uint32_t handles[3];
        drm_npu_submit a = s->submit_args(handles);
        assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_SUBMIT, &a), 0);
        npu_bo_free(s->act);
        npu_bo_free(s->par);
        s->act = s->par = nullptr;
        drm_npu_wait w{};
        w.job_id = a.job_id;
        w.timeout_ns = now_ns() + 10000000000ll;
        assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_WAIT, &w), 0);
        assert_int_equal(w.job_status, 0);
        delete s;
        npu_device_close(d);
}

static void decision_pages(void **)
{
        npu_device *d = open_dev();
        // A memfd that is not a decision page is refused: unsealed, for
        // that (its owner could truncate it under us: SIGBUS), and sealed,
        // for its contents.
        int fd = memfd_create("not-a-page", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        assert_int_equal(ftruncate(fd, 4096), 0);
        drm_npu_bo_create c{};
        c.flags = DRM_NPU_BO_IMPORT_DECISION_PAGE;
        c.fd = fd;
        assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_BO_CREATE, &c), -EPERM);
        assert_int_equal(fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK), 0);
        assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_BO_CREATE, &c), -EPROTO);
        close(fd);
        {
                // A real page, but unsealed: refused, and truncating it
                // afterwards harms no one.
                test::Page open_page(false);
                c.fd = open_page.fd;
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_BO_CREATE, &c), -EPERM);
                assert_int_equal(ftruncate(open_page.fd, 0), 0);
                // A regular file cannot be sealed at all.
                char path[] = "/tmp/bwq-page-XXXXXX";
                int ffd = mkstemp(path);
                assert_true(ffd >= 0);
                unlink(path);
                assert_int_equal(ftruncate(ffd, 4096), 0);
                c.fd = ffd;
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_BO_CREATE, &c), -EPERM);
                close(ffd);
        }
        c.fd = -1;
        assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_BO_CREATE, &c), -EINVAL);
        {
                test::Page page;
                c.fd = page.fd;
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_BO_CREATE, &c), 0);
                uint32_t ph = c.handle;
                // Read-only for everyone but bwqd, and not a buffer a job may name.
                Setup s(d);
                uint32_t handles[3];
                drm_npu_submit a = s.submit_args(handles);
                handles[1] = ph;
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_SUBMIT, &a), -EINVAL);
                assert_int_equal(a.error, DRM_NPU_JOB_ERR_BAD_HANDLE);
                a = s.submit_args(handles);
                a.page_handle = npu_bo_handle(s.act);  // not a page
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_SUBMIT, &a), -EINVAL);
                assert_int_equal(a.error, DRM_NPU_JOB_ERR_BAD_PAGE);
                drm_gem_close gc{ph, 0};
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_GEM_CLOSE, &gc), 0);
        }
        npu_device_close(d);
}

// DYNAMIC layers take the page's depth, clamped to their [min, max].
static void dynamic_layers_follow_page(void **)
{
        npu_device *d = open_dev();
        test::Page page;
        drm_npu_bo_create c{};
        c.flags = DRM_NPU_BO_IMPORT_DECISION_PAGE;
        c.fd = page.fd;
        assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_BO_CREATE, &c), 0);
        // Three 1x1 convs: DYNAMIC [4,16], [6,8], [8,16].
        test::RawJob j;
        uint32_t t0 = j.tensor(1, 0, 1, 4, 4, 8, 8), t1 = j.tensor(1, 1024, 1, 4, 4, 16),
                 t2 = j.tensor(1, 2048, 1, 4, 4, 16), t3 = j.tensor(1, 3072, 1, 4, 4, 16);
        const uint8_t ranges[3][2] = {{4, 16}, {6, 8}, {8, 16}};
        uint32_t ins[3] = {t0, t1, t2}, outs[3] = {t1, t2, t3};
        for (int i = 0; i < 3; i++) {
                auto &L = j.layer(NPU_OP_CONV2D, ins[i], outs[i], 0);
                L.policy = NPU_POLICY_DYNAMIC;
                L.min_bits = ranges[i][0];
                L.max_bits = ranges[i][1];
                L.kernel_h = L.kernel_w = L.stride_h = L.stride_w = L.dilation_h = L.dilation_w = 1;
                L.groups = 1;
                L.param_bo_index = 2;
                L.weight_offset = 0;
                L.weight_size = i == 0 ? 8 * 16 : 16 * 16;
                L.scale_offset = 1024;
                L.bias_offset = 1536;
        }
        j.h.result_offset = 0;
        auto cmd = j.bytes();
        npu_bo *jb, *ab, *pb;
        assert_int_equal(npu_bo_create(d, 8192, &jb), 0);
        assert_int_equal(npu_bo_create(d, 8192, &ab), 0);
        assert_int_equal(npu_bo_create(d, 4096, &pb), 0);
        std::memcpy(static_cast<uint8_t *>(npu_bo_map(jb)) + 1024, cmd.data(), cmd.size());
        // Runs the job with the page at `bits`; layer l's result record.
        auto run_at = [&](unsigned bits) {
                page.set_bits(bits);
                uint32_t handles[3] = {npu_bo_handle(jb), npu_bo_handle(ab), npu_bo_handle(pb)};
                drm_npu_submit a{};
                a.bo_handles = uint64_t(uintptr_t(handles));
                a.bo_handle_count = 3;
                a.cmd_offset = 1024;
                a.cmd_size = cmd.size();
                a.page_handle = c.handle;
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_SUBMIT, &a), 0);
                drm_npu_wait w{};
                w.job_id = a.job_id;
                w.timeout_ns = INT64_MAX;
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_WAIT, &w), 0);
        };
        auto result = [&](int l) {
                npu_layer_result lr;
                std::memcpy(&lr, static_cast<const uint8_t *>(npu_bo_map(jb)) + sizeof(npu_job_result) + l * sizeof lr,
                            sizeof lr);
                return lr;
        };
        const unsigned page_bits[] = {4, 6, 8, 16};
        const unsigned want[4][3] = {{4, 6, 8}, {6, 6, 8}, {8, 8, 8}, {16, 8, 16}};
        for (int k = 0; k < 4; k++) {
                run_at(page_bits[k]);
                for (int l = 0; l < 3; l++) {
                        assert_int_equal(result(l).bits, want[k][l]);
                        assert_int_equal(result(l).bytes_written, (256 * want[k][l] + 7) / 8);
                }
        }
        // A page with a depth the NPU lacks (5) takes the largest supported
        // depth below it within the clamp.
        run_at(5);
        assert_int_equal(result(0).bits, 4);
        npu_bo_free(jb);
        npu_bo_free(ab);
        npu_bo_free(pb);
        npu_device_close(d);
}

// Threads of this process allowed on exactly one CPU (/proc task status).
static int pinned_threads()
{
        int n = 0;
        DIR *dir = opendir("/proc/self/task");
        if (!dir)
                return -1;
        while (dirent *e = readdir(dir)) {
                if (e->d_name[0] == '.')
                        continue;
                std::string path = std::string("/proc/self/task/") + e->d_name + "/status";
                FILE *f = fopen(path.c_str(), "r");
                if (!f)
                        continue;
                char line[256];
                while (fgets(line, sizeof line, f))
                        if (!strncmp(line, "Cpus_allowed_list:", 18)) {
                                const char *v = line + 18;
                                while (*v == ' ' || *v == '\t')
                                        v++;
                                if (!strpbrk(v, ",-"))
                                        n++;
                        }
                fclose(f);
        }
        closedir(dir);
        return n;
}

// A 2-thread device pins its two compute threads to distinct CPUs by
// default; pin=0 leaves them alone.
static void pinning(void **)
{
        cpu_set_t set;
        assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
        if (CPU_COUNT(&set) < 2) {
                print_message("skipped: this process may use %d CPU, pinning needs 2\n", CPU_COUNT(&set));
                skip();
        }
        const int before = pinned_threads();
        npu_device *d;
        assert_int_equal(npu_device_open("soft:threads=2,pin=0", &d), 0);
        usleep(20000);  // the threads pin themselves as they start
        assert_int_equal(pinned_threads(), before);
        npu_device_close(d);
        assert_int_equal(npu_device_open("soft:threads=2", &d), 0);
        int now = before;
        for (int i = 0; i < 100 && now < before + 2; i++) {
                usleep(10000);
                now = pinned_threads();
        }
        assert_int_equal(now, before + 2);
        npu_device_close(d);
}

// The BOs of a device together stay under its limit (bo_limit=MiB): the
// memfds are sparse, and 4096 of 1 GiB each would be accepted otherwise.
static void buffer_object_total(void **)
{
        npu_device *d;
        assert_int_equal(npu_device_open("soft:threads=1,bo_limit=3", &d), 0);
        drm_npu_bo_create c{};
        c.fd = -1;
        c.size = 1u << 20;
        uint32_t h[3];
        for (int i = 0; i < 3; i++) {
                assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_BO_CREATE, &c), 0);
                h[i] = c.handle;
        }
        assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_BO_CREATE, &c), -ENOMEM);
        c.size = 1;
        assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_BO_CREATE, &c), -ENOMEM);
        drm_gem_close gc{h[1], 0};
        assert_int_equal(npu_ioctl(d, DRM_IOCTL_GEM_CLOSE, &gc), 0);
        c.size = 1u << 20;
        assert_int_equal(npu_ioctl(d, DRM_IOCTL_NPU_BO_CREATE, &c), 0);
        npu_device_close(d);
        // The default: half the machine's memory, so 4096 BOs of 1 GiB fail
        // long before the last.
        assert_int_equal(npu_device_open("soft:threads=1", &d), 0);
        c.size = 1ull << 30;
        unsigned made = 0;
        while (made < 4096 && npu_ioctl(d, DRM_IOCTL_NPU_BO_CREATE, &c) == 0)
                made++;
        const uint64_t mem = uint64_t(sysconf(_SC_PHYS_PAGES)) * uint64_t(sysconf(_SC_PAGESIZE));
        assert_true(made < 4096);
        assert_true(uint64_t(made) << 30 <= mem / 2);
        npu_device_close(d);
        assert_int_equal(npu_device_open("soft:bo_limit=0", &d), -EINVAL);
        assert_int_equal(npu_device_open("soft:bo_limit=-1", &d), -EINVAL);
}

static void device_names(void **)
{
        npu_device *d;
        // More compute threads than CPUs to run on: refused (they spin
        // between layers; 256 on 2 CPUs ran 600 times slower).
        cpu_set_t set;
        assert_int_equal(sched_getaffinity(0, sizeof set, &set), 0);
        std::string too_many = "soft:threads=" + std::to_string(CPU_COUNT(&set) + 1);
        assert_int_equal(npu_device_open(too_many.c_str(), &d), -ERANGE);
        assert_int_equal(npu_device_open("soft:threads=256", &d), CPU_COUNT(&set) >= 256 ? 0 : -ERANGE);
        assert_int_equal(npu_device_open("soft:threads=0", &d), -EINVAL);
        assert_int_equal(npu_device_open("soft:isa=sse9", &d), -EINVAL);
        assert_int_equal(npu_device_open("soft:bogus", &d), -EINVAL);
        assert_int_equal(npu_device_open("soft:pin=2", &d), -EINVAL);
        assert_int_equal(npu_device_open("soft:pin=", &d), -EINVAL);
        // Not a DRM node: refused by name check, not crashed on.
        assert_int_equal(npu_device_open("/dev/null", &d), -ENODEV);
        assert_int_equal(npu_device_open("/nonexistent/accel0", &d), -ENOENT);
        setenv("NPU_DEVICE", "soft:threads=1,isa=portable", 1);
        assert_int_equal(npu_device_open(nullptr, &d), 0);
        uint64_t isa;
        assert_int_equal(npu_device_get_param(d, DRM_NPU_PARAM_ISA, &isa), 0);
        assert_int_equal(isa, DRM_NPU_ISA_PORTABLE);
        npu_device_close(d);
        unsetenv("NPU_DEVICE");
}

int main()
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(get_param),         cmocka_unit_test(pinning),         cmocka_unit_test(buffer_objects),
                cmocka_unit_test(buffer_object_total),
                cmocka_unit_test(submit_fence_wait), cmocka_unit_test(submit_waited), cmocka_unit_test(bad_and_freed_handles),
                cmocka_unit_test(free_during_job),   cmocka_unit_test(decision_pages),
                cmocka_unit_test(dynamic_layers_follow_page), cmocka_unit_test(device_names),
        };
        return cmocka_run_group_tests_name("device", tests, nullptr, nullptr);
}

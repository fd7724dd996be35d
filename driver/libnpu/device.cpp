// Device open and the ioctl line: the in-process npuref device or a DRM
// accel node driven through libdrm.
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include <string>
#include <xf86drm.h>

#include "bwq_link.h"
#include "internal.h"
#include "common/job_error.h"
#include "driver/npuref/npuref.h"

// Name the kernel driver of a real NPU reports through drmGetVersion().
static const char kDrmDriverName[] = "npu";

npu_device::npu_device() = default;
npu_device::~npu_device() = default;

npu::BwqLink *npu_device::bwq_link()
{
        std::lock_guard<std::mutex> lk(link_mu);
        if (!link_tried) {
                link_tried = true;
                const char *bus = getenv("BWQ_BUS");
                std::string spec = bus && *bus ? bus : "system";
                if (spec != "none")
                        link = std::make_unique<npu::BwqLink>(spec);
        }
        return link.get();
}

int npu_device::ioctl(unsigned long request, void *arg)
{
        if (soft)
                return npuref_ioctl(soft, request, arg);
        // drmIoctl restarts on EINTR/EAGAIN itself and reports with errno.
        if (drmIoctl(fd.get(), request, arg) < 0)
                return -errno;
        return 0;
}

int npu_device::map(uint64_t offset, size_t length, int prot, void **ret)
{
        if (soft)
                return npuref_mmap(soft, offset, length, prot, ret);
        void *m = mmap(nullptr, length, prot, MAP_SHARED, fd.get(), off_t(offset));
        if (m == MAP_FAILED)
                return -errno;
        *ret = m;
        return 0;
}

static int parse_soft_options(const char *opts, npuref_options *o)
{
        std::string s(opts);
        size_t pos = 0;
        while (pos < s.size()) {
                size_t end = s.find(',', pos);
                if (end == std::string::npos)
                        end = s.size();
                std::string kv = s.substr(pos, end - pos);
                pos = end + 1;
                size_t eq = kv.find('=');
                if (eq == std::string::npos)
                        return -EINVAL;
                std::string k = kv.substr(0, eq), v = kv.substr(eq + 1);
                if (k == "threads") {
                        char *e;
                        errno = 0;
                        unsigned long n = strtoul(v.c_str(), &e, 10);
                        if (errno || *e || v.empty() || n == 0 || n > 256)
                                return -EINVAL;
                        o->threads = unsigned(n);
                } else if (k == "bo_limit") {
                        // MiB, as a size a user types.
                        char *e;
                        errno = 0;
                        unsigned long long n = strtoull(v.c_str(), &e, 10);
                        if (errno || *e || v.empty() || v[0] == '-' || n == 0 || n > (1ull << 40))
                                return -EINVAL;
                        o->bo_limit = uint64_t(n) << 20;
                } else if (k == "pin") {
                        if (v != "0" && v != "1")
                                return -EINVAL;
                        o->pin = v == "1";
                } else if (k == "isa") {
                        if (v == "portable")
                                o->isa = DRM_NPU_ISA_PORTABLE;
                        else if (v == "avx2")
                                o->isa = DRM_NPU_ISA_AVX2;
                        else if (v == "avx512vnni")
                                o->isa = DRM_NPU_ISA_AVX512_VNNI;
                        else
                                return -EINVAL;
                } else {
                        return -EINVAL;
                }
        }
        return 0;
}

extern "C" int npu_device_open(const char *name, npu_device **ret)
{
        if (!ret)
                return -EINVAL;
        if (!name)
                name = getenv("NPU_DEVICE");
        if (!name || !*name)
                name = "soft";
        auto *dev = new npu_device;
        int r;
        if (strcmp(name, "soft") == 0 || strncmp(name, "soft:", 5) == 0) {
                npuref_options o{0, -1, -1, 0};
                r = name[4] == ':' ? parse_soft_options(name + 5, &o) : 0;
                if (r == 0)
                        r = npuref_open(&o, &dev->soft);
        } else {
                dev->fd.reset(open(name, O_RDWR | O_CLOEXEC));
                if (!dev->fd) {
                        r = -errno;
                } else {
                        drmVersionPtr v = drmGetVersion(dev->fd.get());
                        r = v && v->name && strcmp(v->name, kDrmDriverName) == 0 ? 0 : -ENODEV;
                        if (v)
                                drmFreeVersion(v);
                }
        }
        if (r < 0) {
                npu_device_close(dev);
                return r;
        }
        *ret = dev;
        return 0;
}

extern "C" void npu_device_close(npu_device *dev)
{
        if (!dev)
                return;
        dev->link.reset();  // unregisters the device's clients
        if (dev->soft)
                npuref_close(dev->soft);
        delete dev;
}

extern "C" int npu_ioctl(npu_device *dev, unsigned long request, void *arg)
{
        if (!dev || !arg)
                return -EINVAL;
        int r = dev->ioctl(request, arg);
        if (request == DRM_IOCTL_NPU_SUBMIT) {
                auto *s = static_cast<drm_npu_submit *>(arg);
                dev->last_error = r < 0 ? s->error : 0;
                dev->last_error_index = r < 0 ? s->error_index : 0;
        }
        return r;
}

extern "C" int npu_device_get_param(npu_device *dev, uint32_t param, uint64_t *ret)
{
        if (!dev || !ret)
                return -EINVAL;
        drm_npu_param p{};
        p.param = param;
        int r = dev->ioctl(DRM_IOCTL_NPU_GET_PARAM, &p);
        if (r < 0)
                return r;
        *ret = p.value;
        return 0;
}

extern "C" int npu_bo_create(npu_device *dev, uint64_t size, npu_bo **ret)
{
        if (!dev || !ret || size == 0)
                return -EINVAL;
        drm_npu_bo_create c{};
        c.size = size;
        c.fd = -1;
        int r = dev->ioctl(DRM_IOCTL_NPU_BO_CREATE, &c);
        if (r < 0)
                return r;
        void *m;
        r = dev->map(c.mmap_offset, size, PROT_READ | PROT_WRITE, &m);
        if (r < 0) {
                drm_gem_close gc{c.handle, 0};
                (void)dev->ioctl(DRM_IOCTL_GEM_CLOSE, &gc);
                return r;
        }
        *ret = new npu_bo{dev, c.handle, size, bwq::Mapping(m, size)};
        return 0;
}

extern "C" void npu_bo_free(npu_bo *bo)
{
        if (!bo)
                return;
        bo->mapping.reset();
        drm_gem_close gc{bo->handle, 0};
        (void)bo->dev->ioctl(DRM_IOCTL_GEM_CLOSE, &gc);
        delete bo;
}

extern "C" void *npu_bo_map(npu_bo *bo) { return bo ? bo->mapping.get() : nullptr; }
extern "C" uint64_t npu_bo_size(const npu_bo *bo) { return bo ? bo->size : 0; }
extern "C" uint32_t npu_bo_handle(const npu_bo *bo) { return bo ? bo->handle : 0; }

extern "C" int npu_device_last_job_error(const npu_device *dev, uint32_t *ret_code, uint32_t *ret_index)
{
        if (!dev || !ret_code || !ret_index)
                return -EINVAL;
        *ret_code = dev->last_error;
        *ret_index = dev->last_error_index;
        return 0;
}

extern "C" const char *npu_job_error_name(uint32_t code) { return bwq::job_error_name(code); }

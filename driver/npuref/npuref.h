// npuref: the software NPU behind the ioctl line of uapi/npu_accel.h.
//
// libnpu drives it in-process exactly as it would drive a /dev/accel node:
// through npuref_ioctl() with DRM_IOCTL_NPU_* requests and npuref_mmap()
// with the fake mmap offsets that BO_CREATE returns.
#pragma once

#include <cstddef>
#include <cstdint>

struct npuref_device;

struct npuref_options {
        unsigned threads;  // compute threads; 0 = one per online CPU
        int isa;           // enum drm_npu_isa, or -1 for the best this CPU runs
        int pin;           // 1: each compute thread on its own CPU, 0: not, -1: when threads > 1
        uint64_t bo_limit; // bytes all BOs may take together; 0 = half the machine's memory
};

// Returns 0 or a negative errno (-ENOTSUP: the requested ISA is missing;
// -ERANGE: more threads than the CPUs this process may run on).
int npuref_open(const npuref_options *opts, npuref_device **ret);
void npuref_close(npuref_device *dev);
// Returns 0 or a negative errno.
int npuref_ioctl(npuref_device *dev, unsigned long request, void *arg);
// Maps `length` bytes of the BO at fake offset `offset`; prot as for mmap().
int npuref_mmap(npuref_device *dev, uint64_t offset, size_t length, int prot, void **ret);

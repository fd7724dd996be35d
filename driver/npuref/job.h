// A job of npuref: validation of a command buffer against its buffer
// objects (DESIGN §5.4) and execution of a validated job.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "uapi/npu_accel.h"

struct bwq_page;

namespace npuref {

struct Kernels;
class ThreadPool;

// Limits of one job; the device reports them through GET_PARAM.
constexpr uint32_t kMaxLayers = 1024;
constexpr uint32_t kMaxTensors = 2048;
constexpr uint32_t kMaxKernel = 256;           // kernel, stride, dilation, padding
constexpr uint64_t kMaxElements = 1ull << 30;  // per tensor

// Memory of one submitted buffer object, as the job sees it.
struct BufferView {
        uint8_t *data;
        uint64_t size;
};

struct JobError {
        uint32_t code = DRM_NPU_JOB_OK;
        uint32_t index = 0;
};

// A validated job: descriptors copied out of the command buffer, so the
// submitter cannot change them after validation.
struct Job {
        npu_job_header header{};
        std::vector<npu_tensor_desc> tensors;
        std::vector<npu_layer_desc> layers;
        bool dynamic = false;  // some layer reads the decision page
};

// Checks every field, handle index, offset, shape and size of the job at
// cmd[0..size) against bos[0..nbos) before anything touches them.  Returns
// 0, or a negative errno with *err naming the problem and the layer/tensor.
int validate_job(const void *cmd, size_t size, const BufferView *bos, size_t nbos, bool have_page,
                 Job *ret, JobError *err);

// Runs a validated job.  `page` may be null when no layer is DYNAMIC.
// Writes the result record; returns the job status (0 or negative errno).
int execute_job(const Job &job, const BufferView *bos, const bwq_page *page, const Kernels &k,
                ThreadPool *pool);

// Elements of a tensor.
inline uint64_t tensor_elements(const npu_tensor_desc &t) { return uint64_t(t.n) * t.h * t.w * t.c; }

} // namespace npuref

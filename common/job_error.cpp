#include "job_error.h"

#include "uapi/npu_accel.h"

namespace bwq {

const char *job_error_name(uint32_t code)
{
        static const char *const names[] = {
                "ok",
                "bad job header",
                "nonzero reserved field",
                "bad buffer object handle",
                "buffer object index out of range",
                "offset out of bounds",
                "unknown op or activation",
                "shape mismatch",
                "unsupported bit depth or policy",
                "too many layers, tensors or buffer objects",
                "bad tensor index or tensor read before written",
                "size too small",
                "output overlaps an input",
                "bad or missing decision page",
                "bad quantization range",
        };
        static_assert(sizeof names / sizeof names[0] == DRM_NPU_JOB_ERR_MAX, "a name for every job error");
        return code < sizeof names / sizeof names[0] ? names[code] : "unknown job error";
}

} // namespace bwq

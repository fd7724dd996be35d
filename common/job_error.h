// Names of the job errors of uapi/npu_accel.h (enum drm_npu_job_error), for
// the device's messages and npu_job_error_name().
#pragma once

#include <cstdint>

namespace bwq {

const char *job_error_name(uint32_t code);

} // namespace bwq

// Row epilogues shared by every instruction set: accumulators to floats and
// the fused activation (quantization to the output depth: quant.h).  One
// definition for all paths, so results are bit-identical; the clones only
// change vector width, never the arithmetic.
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant.h"

namespace npuref {

// y[i] = float(acc[i]) * mul[i] + add[i]
void scale_row(const int32_t *acc, const float *mul, const float *add, size_t n, float *y);
// y[i] = float(acc[i] - off[i]) * mul[i] + add[i]: the zero-point term folded in
void scale_row_offset(const int32_t *acc, const int32_t *off, const float *mul, const float *add, size_t n, float *y);
void scale_row64(const int64_t *acc, const float *mul, const float *add, size_t n, float *y);
// y[i] = act(y[i]), enum npu_act
void activate_row(float *y, size_t n, uint8_t act);

} // namespace npuref

// Layer epilogues shared by every instruction set: accumulators to floats,
// the fused activation and the quantization to the output depth, in one pass
// over a tile.  One definition for all paths, so results are bit-identical;
// the clones only change vector width, never the arithmetic.
#pragma once

#include <cstddef>
#include <cstdint>

#include "quant.h"

namespace npuref {

// A layer's output quantizer: q = clamp(nearbyint(y * inv) + zero, 0, qmax),
// NaN -> 0.  It multiplies by the reciprocal of the step instead of dividing
// (quantize_one, the host's ONNX-exact path): the quotient can differ by one
// float ulp, so a value within an ulp of a rounding tie may land one step
// away; either result is within half a step and a rounding error of y.
struct OutQuant {
        float inv, zero, qmax;
};
OutQuant out_quant(const QParams &p);

// The epilogue of a tile of accumulators (rows x n, row stride ldc):
//   q[r * ldq + c] = quantize(act(float(acc[r * ldc + c] - off[c]) * mul[c] + add[c]))
// off may be null (no zero-point term).  u8 output for depths up to 8 bits.
void epilogue_tile(const int32_t *acc, size_t ldc, size_t rows, size_t n, const int32_t *off, const float *mul,
                   const float *add, uint8_t act, const OutQuant &o, uint8_t *q, size_t ldq);
void epilogue_tile(const int32_t *acc, size_t ldc, size_t rows, size_t n, const int32_t *off, const float *mul,
                   const float *add, uint8_t act, const OutQuant &o, uint16_t *q, size_t ldq);
void epilogue_tile(const int64_t *acc, size_t ldc, size_t rows, size_t n, const int64_t *off, const float *mul,
                   const float *add, uint8_t act, const OutQuant &o, uint16_t *q, size_t ldq);

// One row of values computed in float (pools, ADD, MUL, CONCAT):
// q[i] = quantize(act(y[i])); y is overwritten.
void epilogue_float(float *y, size_t n, uint8_t act, const OutQuant &o, uint16_t *q);

} // namespace npuref

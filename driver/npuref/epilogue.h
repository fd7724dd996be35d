// Layer epilogues shared by every instruction set: accumulators to floats,
// the fused activation and the quantization to the output depth, in one pass
// over a tile.  One definition for all paths, so results are bit-identical;
// the clones only change vector width, never the arithmetic.
#pragma once

#include <cstddef>
#include <cstdint>
#include <type_traits>

#include "uapi/npu_accel.h"
#include "common/quant.h"

namespace npuref {

// A layer's output quantizer.  Division-free: it multiplies by the
// reciprocal of the output step (quantize_one, the host's ONNX-exact path,
// divides), so a value within a float rounding of a rounding tie may land
// one step away; either result is within half a step and a rounding error.
//
// For NONE, RELU and RELU6 the step and zero point fold into the channel
// constants (fold_channels) and the activation becomes the clamp:
//   q = round(clamp(fma(float(acc - off), mul', add'), lo, hi))
//   mul' = mul / step, add' = add / step + zero, lo = 0 (NONE) or zero,
//   hi = qmax or, for RELU6, min(qmax, 6 / step + zero).
// Other activations need the value itself:
//   q = round(clamp(act(fma(float(acc - off), mul, add)) * (1 / step) + zero, 0, qmax))
// fma rounds once; round is round-half-even; clamp sends NaN to lo.
struct OutQuant {
        float inv, zero, qmax;
        bool folded;
        float lo, hi;
};
OutQuant out_quant(const bwq::QParams &p, uint8_t act);

// The activation as a compile-time constant for the epilogue templates:
// f(std::integral_constant<int, A>{}) with A = kActFolded when the
// quantizer folds it (o.folded), else the enum npu_act value (unknown
// values as NONE).  Inlined, so a multiversioned caller compiles f's body
// for its own instruction set.
constexpr int kActFolded = -1;
template <typename F> inline __attribute__((always_inline)) decltype(auto) with_act(uint8_t act, bool folded, F &&f)
{
        using std::integral_constant;
        if (folded)
                return f(integral_constant<int, kActFolded>{});
        switch (act) {
        case NPU_ACT_RELU: return f(integral_constant<int, NPU_ACT_RELU>{});
        case NPU_ACT_RELU6: return f(integral_constant<int, NPU_ACT_RELU6>{});
        case NPU_ACT_HARDSWISH: return f(integral_constant<int, NPU_ACT_HARDSWISH>{});
        case NPU_ACT_HARDSIGMOID: return f(integral_constant<int, NPU_ACT_HARDSIGMOID>{});
        case NPU_ACT_SIGMOID: return f(integral_constant<int, NPU_ACT_SIGMOID>{});
        default: return f(integral_constant<int, NPU_ACT_NONE>{});
        }
}
// Folds the quantizer into per-channel mul and add when o.folded.
void fold_channels(const OutQuant &o, float *mul, float *add, size_t n);
// Whether fma(float(acc), mul[c], add[c]) is finite and below 2^30 in
// magnitude for every channel c < n and every |acc| <= acc_max
// (GemmEpilogue::bounded).
bool folded_bounded(const float *mul, const float *add, size_t n, double acc_max);

// A residual (NPU_LAYER_RESIDUAL): the value res[r * ldr + c] of each
// output of the first rc columns, already dequantized (its real value),
// added before the activation; the columns from rc on have none (they add
// nothing: the same bytes as adding 0).  res null: none.
struct Residual {
        const float *res = nullptr;
        size_t ldr = 0, rc = 0;
        // How many of the columns from col on have a residual value.
        size_t cols_from(size_t col) const { return rc > col ? rc - col : 0; }
        // The residual of the tile from (row, col) on.
        Residual at(size_t row, size_t col) const { return res ? Residual{res + row * ldr + col, ldr, cols_from(col)} : Residual{}; }
};

// The epilogue of a tile of accumulators (rows x n, row stride ldc):
//   q[r * ldq + c] from acc[r * ldc + c] as OutQuant says, with the
//   channel constants mul[c], add[c] (folded when o.folded) and off[c]
// off may be null (no zero-point term).  u8 output for depths up to 8 bits.
// With a residual v = res[r * ldr + c] (c < rc), y = fma(float(acc - off),
// mul, add) becomes fma(v, 1 / step, y) when folded, else y + v before act().
void epilogue_tile(const int32_t *acc, size_t ldc, size_t rows, size_t n, const int32_t *off, const float *mul,
                   const float *add, uint8_t act, const OutQuant &o, uint8_t *q, size_t ldq, Residual res = {});
void epilogue_tile(const int32_t *acc, size_t ldc, size_t rows, size_t n, const int32_t *off, const float *mul,
                   const float *add, uint8_t act, const OutQuant &o, uint16_t *q, size_t ldq, Residual res = {});
void epilogue_tile(const int64_t *acc, size_t ldc, size_t rows, size_t n, const int64_t *off, const float *mul,
                   const float *add, uint8_t act, const OutQuant &o, uint16_t *q, size_t ldq, Residual res = {});

// 16-bit inputs as two u8 planes: acc = 256 * hi + lo - off in int64, then
// as epilogue_tile.
void epilogue_wide(const int32_t *hi, const int32_t *lo, size_t ldc, size_t rows, size_t n, const int64_t *off,
                   const float *mul, const float *add, uint8_t act, const OutQuant &o, uint16_t *q, size_t ldq,
                   Residual res);

// One row of values computed in float (pools, ADD, MUL, CONCAT): q[i] from
// y[i] as OutQuant's unfolded form says (o.folded is ignored).
void epilogue_float(float *y, size_t n, uint8_t act, const OutQuant &o, uint16_t *q);
void epilogue_float(float *y, size_t n, uint8_t act, const OutQuant &o, uint8_t *q);

// The float layers' element loops, in the clones' vector widths, each
// value computed as the scalar expression says (no contraction):
//   dequantize_row: y[i] = p.scale * float(int32_t(q[i]) - p.zero)
//   add_rows: y[i] = y[i] + b[i];  mul_rows: y[i] = y[i] * b[i]
//   lerp_row: y[i] = (1 - fy) * ((1 - fx) * a[i] + fx * b[i]) + fy * ((1 - fx) * c[i] + fx * d[i])
void dequantize_row(const uint8_t *q, size_t n, const bwq::QParams &p, float *y);
void dequantize_row(const uint16_t *q, size_t n, const bwq::QParams &p, float *y);
void add_rows(float *y, const float *b, size_t n);
void mul_rows(float *y, const float *b, size_t n);
void lerp_row(float *y, const float *a, const float *b, const float *c, const float *d, float fx, float fy, size_t n);
// ADD of two u8 inputs in one pass: dequantize_row of each, add_rows and
// epilogue_float's u8 form, with the same arithmetic.
void add_quantize(const uint8_t *a, const bwq::QParams &pa, const uint8_t *b, const bwq::QParams &pb, size_t n, uint8_t act,
                  const OutQuant &o, uint8_t *q);

} // namespace npuref

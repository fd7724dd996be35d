#include "epilogue.h"

#include <algorithm>
#include <cmath>

#include "uapi/npu_accel.h"

namespace npuref {

OutQuant out_quant(const bwq::QParams &p, uint8_t act)
{
        OutQuant o{1.0f / p.scale, float(p.zero), float(p.qmax), false, 0.0f, float(p.qmax)};
        if (act == NPU_ACT_NONE || act == NPU_ACT_RELU || act == NPU_ACT_RELU6) {
                o.folded = true;
                if (act != NPU_ACT_NONE)
                        o.lo = o.zero;
                if (act == NPU_ACT_RELU6)
                        o.hi = std::fmin(o.qmax, 6.0f * o.inv + o.zero);
        }
        return o;
}

void fold_channels(const OutQuant &o, float *mul, float *add, size_t n)
{
        if (!o.folded)
                return;
        for (size_t c = 0; c < n; c++) {
                mul[c] = mul[c] * o.inv;
                add[c] = add[c] * o.inv + o.zero;
        }
}

bool folded_bounded(const float *mul, const float *add, size_t n, double acc_max)
{
        // In doubles, with room for the float rounding of acc and of the fma.
        const double limit = 0.99 * double(1 << 30);
        for (size_t c = 0; c < n; c++)
                if (!std::isfinite(mul[c]) || !std::isfinite(add[c]) ||
                    !(std::fabs(double(mul[c])) * acc_max + std::fabs(double(add[c])) < limit))
                        return false;
        return true;
}

namespace {

// Inlined into each clone, which compiles them for its own instruction set.
#define NPU_INLINE inline __attribute__((always_inline))
#define NPU_INLINE_LAMBDA __attribute__((always_inline))

template <int ACT> NPU_INLINE float activate(float y)
{
        if constexpr (ACT == NPU_ACT_RELU) {
                return y > 0.0f ? y : 0.0f;
        } else if constexpr (ACT == NPU_ACT_RELU6) {
                float v = y > 0.0f ? y : 0.0f;
                return v < 6.0f ? v : 6.0f;
        } else if constexpr (ACT == NPU_ACT_HARDSWISH) {
                float t = y + 3.0f;
                t = t > 0.0f ? t : 0.0f;
                t = t < 6.0f ? t : 6.0f;
                return y * t / 6.0f;
        } else if constexpr (ACT == NPU_ACT_HARDSIGMOID) {
                float t = y / 6.0f + 0.5f;
                t = t > 0.0f ? t : 0.0f;
                return t < 1.0f ? t : 1.0f;
        } else if constexpr (ACT == NPU_ACT_SIGMOID) {
                // Scalar libm exp: the same in every path.
                return 1.0f / (1.0f + std::exp(-y));
        } else {
                return y;
        }
}

// round(clamp(v, lo, hi)), NaN -> lo.
NPU_INLINE int32_t round_clamped(float v, float lo, float hi)
{
        v = !(v >= lo) ? lo : v > hi ? hi : v;
        return int32_t(std::nearbyint(v));
}

// The quantized value of y = float(acc - off) * mul + add: kActFolded for
// the linear activations folded into mul and add, else the activation's own.
template <int ACT> NPU_INLINE int32_t finish(float y, const OutQuant &o)
{
        if constexpr (ACT == kActFolded)
                return round_clamped(y, o.lo, o.hi);
        else
                return round_clamped(activate<ACT>(y) * o.inv + o.zero, 0.0f, o.qmax);
}

// y with the residual's value v added: in the folded form y is in output
// steps, so v is scaled by 1 / step in the same rounding.
template <int ACT> NPU_INLINE float plus_residual(float y, float v, const OutQuant &o)
{
        if constexpr (ACT == kActFolded)
                return std::fma(v, o.inv, y);
        else
                return y + v;
}

template <int ACT, typename A, typename Q>
NPU_INLINE void tile(const A *__restrict acc, size_t ldc, size_t rows, size_t n, const A *__restrict off,
                     const float *__restrict mul, const float *__restrict add, const OutQuant &o, Q *__restrict q, size_t ldq,
                     Residual res)
{
        const OutQuant oc = o;  // by value: no aliasing with the outputs
        for (size_t r = 0; r < rows; r++) {
                const A *a = acc + r * ldc;
                Q *d = q + r * ldq;
                // The columns with a residual value first, then the others.
                const size_t c0 = res.res ? std::min(n, res.rc) : 0;
                const float *__restrict v = res.res + r * res.ldr;
                for (size_t c = 0; c < c0; c++) {
                        float y = std::fma(float(off ? a[c] - off[c] : a[c]), mul[c], add[c]);
                        d[c] = Q(finish<ACT>(plus_residual<ACT>(y, v[c], oc), oc));
                }
                if (off) {
                        for (size_t c = c0; c < n; c++)
                                d[c] = Q(finish<ACT>(std::fma(float(a[c] - off[c]), mul[c], add[c]), oc));
                } else {
                        for (size_t c = c0; c < n; c++)
                                d[c] = Q(finish<ACT>(std::fma(float(a[c]), mul[c], add[c]), oc));
                }
        }
}

template <int ACT>
NPU_INLINE void tile_wide(const int32_t *__restrict hi, const int32_t *__restrict lo, size_t ldc, size_t rows, size_t n,
                          const int64_t *__restrict off, const float *__restrict mul, const float *__restrict add,
                          const OutQuant &o, uint16_t *__restrict q, size_t ldq, Residual res)
{
        const OutQuant oc = o;
        for (size_t r = 0; r < rows; r++)
                for (size_t c = 0; c < n; c++) {
                        const int64_t a = int64_t(hi[r * ldc + c]) * 256 + lo[r * ldc + c] - off[c];
                        float y = std::fma(float(a), mul[c], add[c]);
                        if (res.res && c < res.rc)
                                y = plus_residual<ACT>(y, res.res[r * res.ldr + c], oc);
                        q[r * ldq + c] = uint16_t(finish<ACT>(y, oc));
                }
}

template <typename A, typename Q>
NPU_INLINE void tile_act(const A *acc, size_t ldc, size_t rows, size_t n, const A *off, const float *mul, const float *add,
                         uint8_t act, const OutQuant &o, Q *q, size_t ldq, Residual res)
{
        with_act(act, o.folded,
                 [&](auto a) NPU_INLINE_LAMBDA { tile<decltype(a)::value>(acc, ldc, rows, n, off, mul, add, o, q, ldq, res); });
}

template <int ACT, typename Q> NPU_INLINE void row_float(const float *__restrict y, size_t n, const OutQuant &o, Q *__restrict q)
{
        const OutQuant oc = o;
        for (size_t i = 0; i < n; i++)
                q[i] = Q(finish<ACT>(y[i], oc));
}

template <int ACT>
NPU_INLINE void add_q(const uint8_t *__restrict a, const bwq::QParams &pa, const uint8_t *__restrict b, const bwq::QParams &pb,
                      size_t n, const OutQuant &o, uint8_t *__restrict q)
{
        const OutQuant oc = o;
        const float sa = pa.scale, sb = pb.scale;
        const int32_t za = pa.zero, zb = pb.zero;
        for (size_t i = 0; i < n; i++) {
                const float y = sa * float(int32_t(a[i]) - za) + sb * float(int32_t(b[i]) - zb);
                q[i] = uint8_t(finish<ACT>(y, oc));
        }
}

template <typename T> NPU_INLINE void deq_row(const T *__restrict q, size_t n, const bwq::QParams &p, float *__restrict y)
{
        const float s = p.scale;
        const int32_t z = p.zero;
        for (size_t i = 0; i < n; i++)
                y[i] = s * float(int32_t(q[i]) - z);
}

} // namespace

// Multiversioned instances (clang multiversions no templates).  The scale
// is one fused multiply-add: the x86-64-v3 and v4 clones have the
// instruction, the baseline clone calls libm's fmaf (exact, slower), so
// every clone rounds the same.
// Clang 14 builds a function that a header declared without the
// attribute as one version, for the first target, called on every CPU
// (an AVX-512 instruction on an AVX2 machine): the fuzz build, clang's,
// compiles the baseline only.
#if defined(__clang__)
#define NPU_CLONES
#else
#define NPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "arch=x86-64-v3", "default")))
#endif

NPU_CLONES
void epilogue_tile(const int32_t *acc, size_t ldc, size_t rows, size_t n, const int32_t *off, const float *mul,
                   const float *add, uint8_t act, const OutQuant &o, uint8_t *q, size_t ldq, Residual res)
{
        tile_act(acc, ldc, rows, n, off, mul, add, act, o, q, ldq, res);
}

NPU_CLONES
void epilogue_tile(const int32_t *acc, size_t ldc, size_t rows, size_t n, const int32_t *off, const float *mul,
                   const float *add, uint8_t act, const OutQuant &o, uint16_t *q, size_t ldq, Residual res)
{
        tile_act(acc, ldc, rows, n, off, mul, add, act, o, q, ldq, res);
}

NPU_CLONES
void epilogue_tile(const int64_t *acc, size_t ldc, size_t rows, size_t n, const int64_t *off, const float *mul,
                   const float *add, uint8_t act, const OutQuant &o, uint16_t *q, size_t ldq, Residual res)
{
        tile_act(acc, ldc, rows, n, off, mul, add, act, o, q, ldq, res);
}

NPU_CLONES
void epilogue_wide(const int32_t *hi, const int32_t *lo, size_t ldc, size_t rows, size_t n, const int64_t *off,
                   const float *mul, const float *add, uint8_t act, const OutQuant &o, uint16_t *q, size_t ldq,
                   Residual res)
{
        with_act(act, o.folded,
                 [&](auto a) NPU_INLINE_LAMBDA { tile_wide<decltype(a)::value>(hi, lo, ldc, rows, n, off, mul, add, o, q, ldq, res); });
}

NPU_CLONES
void epilogue_float(float *y, size_t n, uint8_t act, const OutQuant &o, uint16_t *q)
{
        // The unfolded form: float layers quantize the value itself.
        with_act(act, false, [&](auto a) NPU_INLINE_LAMBDA { row_float<decltype(a)::value>(y, n, o, q); });
}

NPU_CLONES
void epilogue_float(float *y, size_t n, uint8_t act, const OutQuant &o, uint8_t *q)
{
        with_act(act, false, [&](auto a) NPU_INLINE_LAMBDA { row_float<decltype(a)::value>(y, n, o, q); });
}

NPU_CLONES
void dequantize_row(const uint8_t *q, size_t n, const bwq::QParams &p, float *y) { deq_row(q, n, p, y); }

NPU_CLONES
void dequantize_row(const uint16_t *q, size_t n, const bwq::QParams &p, float *y) { deq_row(q, n, p, y); }

NPU_CLONES
void add_quantize(const uint8_t *a, const bwq::QParams &pa, const uint8_t *b, const bwq::QParams &pb, size_t n, uint8_t act,
                  const OutQuant &o, uint8_t *q)
{
        with_act(act, false, [&](auto A) NPU_INLINE_LAMBDA { add_q<decltype(A)::value>(a, pa, b, pb, n, o, q); });
}

NPU_CLONES
void add_rows(float *__restrict y, const float *__restrict b, size_t n)
{
        for (size_t i = 0; i < n; i++)
                y[i] = y[i] + b[i];
}

NPU_CLONES
void lerp_row(float *__restrict y, const float *__restrict a, const float *__restrict b, const float *__restrict c,
              const float *__restrict d, float fx, float fy, size_t n)
{
        for (size_t i = 0; i < n; i++)
                y[i] = (1 - fy) * ((1 - fx) * a[i] + fx * b[i]) + fy * ((1 - fx) * c[i] + fx * d[i]);
}

NPU_CLONES
void mul_rows(float *__restrict y, const float *__restrict b, size_t n)
{
        for (size_t i = 0; i < n; i++)
                y[i] = y[i] * b[i];
}

} // namespace npuref

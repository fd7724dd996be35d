// The epilogue of an int32 tile with AVX-512: offset, scale, activation,
// clamp and store, 16 channels per register.
#include <immintrin.h>

#include <type_traits>

// GCC 12 warns that the masked loads' undefined pass-through vector "may be"
// or "is used uninitialized" (it is never read: the zero-masking forms zero it).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include "kernels.h"
#include "uapi/npu_accel.h"
#include "kernels_avx512.h"

namespace npuref {


// The epilogue, 16 channels per register.  Each step is the IEEE operation
// of epilogue.cpp's scalar expression: the scale is one fused multiply-add
// like its std::fma, max/min select exactly as its conditionals do (vmaxps
// returns its second operand for NaN), rounding uses the current mode like
// nearbyint.
template <int ACT> static inline __m512 activate(__m512 y)
{
        const __m512 zero = _mm512_setzero_ps(), six = _mm512_set1_ps(6.0f);
        if constexpr (ACT == NPU_ACT_RELU) {
                return _mm512_max_ps(y, zero);
        } else if constexpr (ACT == NPU_ACT_RELU6) {
                return _mm512_min_ps(_mm512_max_ps(y, zero), six);
        } else if constexpr (ACT == NPU_ACT_HARDSWISH) {
                __m512 t = _mm512_min_ps(_mm512_max_ps(_mm512_add_ps(y, _mm512_set1_ps(3.0f)), zero), six);
                return _mm512_div_ps(_mm512_mul_ps(y, t), six);
        } else if constexpr (ACT == NPU_ACT_HARDSIGMOID) {
                __m512 t = _mm512_add_ps(_mm512_div_ps(y, six), _mm512_set1_ps(0.5f));
                return _mm512_min_ps(_mm512_max_ps(t, zero), _mm512_set1_ps(1.0f));
        } else {
                return y;
        }
}


// y with the residual's values added, as epilogue.cpp's plus_residual
// (16 lanes, and 8 for the 16-bit inputs' int64 lanes).
template <int ACT> static inline __m512 plus_residual(__m512 y, __m512 v, __m512 inv)
{
        if constexpr (ACT == kActFolded)
                return _mm512_fmadd_ps(v, inv, y);
        else
                return _mm512_add_ps(y, v);
}
template <int ACT> static inline __m256 plus_residual(__m256 y, __m256 v, __m256 inv)
{
        if constexpr (ACT == kActFolded)
                return _mm256_fmadd_ps(v, inv, y);
        else
                return _mm256_add_ps(y, v);
}

template <int ACT, bool OFF, typename Q>
static void epilogue(const int32_t *acc, size_t ldc, size_t rows, size_t n, const int32_t *off, const float *mul,
                     const float *add, const OutQuant &o, Q *q, size_t ldq, Residual res)
{
        const __m512 inv = _mm512_set1_ps(o.inv), zp = _mm512_set1_ps(o.zero);
        const __m512 lo = _mm512_set1_ps(ACT == kActFolded ? o.lo : 0.0f), hi = _mm512_set1_ps(ACT == kActFolded ? o.hi : o.qmax);
        for (size_t c = 0; c < n; c += 16) {
                const bool full = n - c >= 16;
                const __mmask16 m = full ? __mmask16(0xffff) : __mmask16((1u << (n - c)) - 1);
                const __m512 mv = _mm512_maskz_loadu_ps(m, mul + c), av = _mm512_maskz_loadu_ps(m, add + c);
                const __m512i ov = OFF ? _mm512_maskz_loadu_epi32(m, off + c) : _mm512_setzero_si512();
                const __mmask16 rm = column_mask(res.cols_from(c));  // the residual's columns
                for (size_t r = 0; r < rows; r++) {
                        __m512i a = _mm512_maskz_loadu_epi32(m, acc + r * ldc + c);
                        if (OFF)
                                a = _mm512_sub_epi32(a, ov);
                        __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), mv, av);
                        if (res.res)
                                y = plus_residual<ACT>(y, _mm512_maskz_loadu_ps(m & rm, res.res + r * res.ldr + c), inv);
                        if constexpr (ACT != kActFolded)
                                y = _mm512_add_ps(_mm512_mul_ps(activate<ACT>(y), inv), zp);
                        // vmaxps returns its second operand for NaN: NaN -> lo.
                        y = _mm512_min_ps(_mm512_max_ps(y, lo), hi);
                        store_q(q + r * ldq + c, m, full, _mm512_cvtps_epi32(y));
                }
        }
}

template <bool OFF, typename Q>
static void epilogue_act(const int32_t *acc, size_t ldc, size_t rows, size_t n, const int32_t *off, const float *mul,
                         const float *add, uint8_t act, const OutQuant &o, Q *q, size_t ldq, Residual res)
{
        with_act(act, o.folded, [&](auto a) {
                if constexpr (decltype(a)::value == NPU_ACT_SIGMOID)  // libm's exp, in the generic loop
                        epilogue_tile(acc, ldc, rows, n, off, mul, add, act, o, q, ldq, res);
                else
                        epilogue<decltype(a)::value, OFF>(acc, ldc, rows, n, off, mul, add, o, q, ldq, res);
        });
}

template <typename Q>
static void epilogue_any(const int32_t *acc, size_t ldc, size_t rows, size_t n, const int32_t *off, const float *mul,
                         const float *add, uint8_t act, const OutQuant &o, Q *q, size_t ldq, Residual res)
{
        if (off)
                epilogue_act<true>(acc, ldc, rows, n, off, mul, add, act, o, q, ldq, res);
        else
                epilogue_act<false>(acc, ldc, rows, n, off, mul, add, act, o, q, ldq, res);
}

void epilogue_u8_avx512(const int32_t *acc, size_t ldc, size_t rows, size_t n, const int32_t *off, const float *mul,
                        const float *add, uint8_t act, const OutQuant &o, uint8_t *q, size_t ldq, Residual res)
{
        epilogue_any(acc, ldc, rows, n, off, mul, add, act, o, q, ldq, res);
}

void epilogue_u16_avx512(const int32_t *acc, size_t ldc, size_t rows, size_t n, const int32_t *off, const float *mul,
                         const float *add, uint8_t act, const OutQuant &o, uint16_t *q, size_t ldq, Residual res)
{
        epilogue_any(acc, ldc, rows, n, off, mul, add, act, o, q, ldq, res);
}

// 16-bit inputs: 8 channels per step in int64 lanes (vcvtqq2ps converts
// exactly as the scalar int64 -> float conversion: current rounding mode).
template <int ACT>
static void epilogue_wide(const int32_t *hi, const int32_t *lo, size_t ldc, size_t rows, size_t n, const int64_t *off,
                          const float *mul, const float *add, const OutQuant &o, uint16_t *q, size_t ldq, Residual res)
{
        const __m256 inv = _mm256_set1_ps(o.inv), zp = _mm256_set1_ps(o.zero);
        const __m256 lov = _mm256_set1_ps(ACT == kActFolded ? o.lo : 0.0f), hiv = _mm256_set1_ps(ACT == kActFolded ? o.hi : o.qmax);
        for (size_t c = 0; c < n; c += 8) {
                const __mmask8 m = n - c >= 8 ? __mmask8(0xff) : __mmask8((1u << (n - c)) - 1);
                const __m256 mv = _mm256_maskz_loadu_ps(m, mul + c), av = _mm256_maskz_loadu_ps(m, add + c);
                const __m512i ov = _mm512_maskz_loadu_epi64(m, off + c);
                for (size_t r = 0; r < rows; r++) {
                        const __m512i h = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(m, hi + r * ldc + c));
                        const __m512i l = _mm512_cvtepi32_epi64(_mm256_maskz_loadu_epi32(m, lo + r * ldc + c));
                        const __m512i a = _mm512_sub_epi64(_mm512_add_epi64(_mm512_slli_epi64(h, 8), l), ov);
                        __m256 y = _mm256_fmadd_ps(_mm512_cvtepi64_ps(a), mv, av);
                        if (res.res) {
                                const __mmask8 rm = __mmask8(column_mask(res.cols_from(c)));
                                y = plus_residual<ACT>(y, _mm256_maskz_loadu_ps(m & rm, res.res + r * res.ldr + c), inv);
                        }
                        if constexpr (ACT != kActFolded) {
                                // The activations on 8 lanes: the 16-lane forms, upper half unused.
                                y = _mm512_castps512_ps256(activate<ACT>(_mm512_zextps256_ps512(y)));
                                y = _mm256_add_ps(_mm256_mul_ps(y, inv), zp);
                        }
                        y = _mm256_min_ps(_mm256_max_ps(y, lov), hiv);
                        _mm_mask_storeu_epi16(q + r * ldq + c, m, _mm256_cvtusepi32_epi16(_mm256_cvtps_epi32(y)));
                }
        }
}

void epilogue_wide_avx512(const int32_t *hi, const int32_t *lo, size_t ldc, size_t rows, size_t n, const int64_t *off,
                          const float *mul, const float *add, uint8_t act, const OutQuant &o, uint16_t *q, size_t ldq,
                          Residual res)
{
        with_act(act, o.folded, [&](auto a) {
                if constexpr (decltype(a)::value == NPU_ACT_SIGMOID)  // libm's exp, in the generic loop
                        npuref::epilogue_wide(hi, lo, ldc, rows, n, off, mul, add, act, o, q, ldq, res);
                else
                        epilogue_wide<decltype(a)::value>(hi, lo, ldc, rows, n, off, mul, add, o, q, ldq, res);
        });
}

void lookup4_avx512(const uint8_t *packed, size_t first, size_t n, const float lut[16], float *y)
{
        auto one = [&](size_t e) { return lut[packed[e >> 1] >> (4 * (e & 1)) & 15]; };
        size_t i = 0;
        if ((first & 1) && n)
                y[i++] = one(first);
        const __m512 table = _mm512_loadu_ps(lut);
        const __m128i low = _mm_set1_epi8(15);
        const uint8_t *src = packed + (first + i) / 2;
        for (; i + 32 <= n; i += 32, src += 16) {
                const __m128i x = _mm_loadu_si128(reinterpret_cast<const __m128i *>(src));
                const __m128i lo = _mm_and_si128(x, low), hi = _mm_and_si128(_mm_srli_epi16(x, 4), low);
                _mm512_storeu_ps(y + i, _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi)), table));
                _mm512_storeu_ps(y + i + 16, _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpackhi_epi8(lo, hi)), table));
        }
        // The last up to 31: 16 at a time, the bytes and floats masked.
        for (; i < n; i += 16, src += 8) {
                const size_t k = n - i < 16 ? n - i : 16;
                const __m128i x = _mm_maskz_loadu_epi8(__mmask16((1u << (k + 1) / 2) - 1), src);
                const __m128i lo = _mm_and_si128(x, low), hi = _mm_and_si128(_mm_srli_epi16(x, 4), low);
                _mm512_mask_storeu_ps(y + i, __mmask16((1u << k) - 1),
                                      _mm512_permutexvar_ps(_mm512_cvtepu8_epi32(_mm_unpacklo_epi8(lo, hi)), table));
        }
}

// 64 bytes of codes from the nibbles of 32 (x, zero-extended to words),
// through `map` (in each 128-bit lane).
static inline __m512i map_words(__m512i x, __m512i map)
{
        const __m512i v = _mm512_ternarylogic_epi32(x, _mm512_slli_epi16(x, 4), _mm512_set1_epi16(0x000f), 0xe4);
        return _mm512_shuffle_epi8(map, _mm512_and_si512(v, _mm512_set1_epi16(0x0f0f)));
}

void map4_avx512(const uint8_t *packed, size_t first, size_t n, const uint8_t map[16], uint8_t *y)
{
        size_t i = 0;
        if ((first & 1) && n)
                y[i++] = map[packed[first >> 1] >> 4];
        const __m512i m = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i *>(map)));
        const uint8_t *src = packed + (first + i) / 2;
        for (; i + 64 <= n; i += 64, src += 32)
                _mm512_storeu_si512(y + i, map_words(_mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(src))), m));
        if (i < n) {
                const size_t k = n - i;
                const __m256i x = _mm256_maskz_loadu_epi8(__mmask32((uint64_t(1) << (k + 1) / 2) - 1), src);
                _mm512_mask_storeu_epi8(y + i, (uint64_t(1) << k) - 1, map_words(_mm512_cvtepu8_epi16(x), m));
        }
}

#define NPU_VBMI __attribute__((target("avx512vbmi")))

// table[idx] of 64 index bytes: bits 0-6 pick from t0:t1 or t2:t3, bit 7
// which pair.
NPU_VBMI static inline __m512i look256(__m512i idx, const __m512i (&t)[4])
{
        return _mm512_mask_blend_epi8(_mm512_movepi8_mask(idx), _mm512_permutex2var_epi8(t[0], idx, t[1]),
                                      _mm512_permutex2var_epi8(t[2], idx, t[3]));
}

// 64 bytes of results from 64 bytes of each input (128 elements).  0xe4:
// the first operand's bits where the third's are set, else the second's.
NPU_VBMI static inline __m512i look2x4(__m512i va, __m512i vb, const __m512i (&t)[4])
{
        const __m512i low = _mm512_set1_epi8(15);
        const __m512i even = _mm512_ternarylogic_epi32(va, _mm512_slli_epi16(vb, 4), low, 0xe4);
        const __m512i odd = _mm512_ternarylogic_epi32(_mm512_srli_epi16(va, 4), vb, low, 0xe4);
        return _mm512_or_si512(look256(even, t), _mm512_slli_epi16(look256(odd, t), 4));
}

NPU_VBMI static void lookup2x4(const uint8_t *a, const uint8_t *b, size_t first, size_t n, const uint8_t table[256], uint8_t *y)
{
        const __m512i t[4] = {_mm512_loadu_si512(table), _mm512_loadu_si512(table + 64), _mm512_loadu_si512(table + 128),
                              _mm512_loadu_si512(table + 192)};
        const size_t bytes = n / 2;
        a += first / 2, b += first / 2, y += first / 2;
        size_t i = 0;
        for (; i + 64 <= bytes; i += 64)
                _mm512_storeu_si512(y + i, look2x4(_mm512_loadu_si512(a + i), _mm512_loadu_si512(b + i), t));
        if (i < bytes) {
                const __mmask64 m = (uint64_t(1) << (bytes - i)) - 1;
                _mm512_mask_storeu_epi8(y + i, m, look2x4(_mm512_maskz_loadu_epi8(m, a + i), _mm512_maskz_loadu_epi8(m, b + i), t));
        }
        if (n % 2)
                y[bytes] = uint8_t((y[bytes] & 0xf0) | table[(a[bytes] & 15) | (b[bytes] & 15) << 4]);
}

Lookup2x4Fn lookup2x4_vbmi()
{
        static const bool vbmi = __builtin_cpu_supports("avx512vbmi");
        return vbmi ? lookup2x4 : nullptr;
}

} // namespace npuref

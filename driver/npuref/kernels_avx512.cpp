// u8 x s8 GEMM with AVX-512 VNNI (vpdpbusd): one broadcast of four
// activation bytes times 16 output channels x 4 weights per instruction.
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

namespace npuref {

// The accumulators of an MR x 32 tile (x 16 when `two` is false) over all
// of A's K blocks.
template <int MR>
static inline __attribute__((always_inline)) void accumulate(const GemmA &A, size_t m0, const int8_t *b0, const int8_t *b1,
                                                             bool two, __m512i (&acc0)[MR], __m512i (&acc1)[MR],
                                                             __m512i init0 = _mm512_setzero_si512(),
                                                             __m512i init1 = _mm512_setzero_si512())
{
        const size_t lda = A.lda;
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
                acc0[r] = init0;
                acc1[r] = init1;
        }
        for (unsigned t = 0; t < A.taps; t++) {
                const uint8_t *a = A.base + m0 * lda + A.tap_off[t];
                const size_t kt = t * A.kbt * 64;
                if (two) {
                        for (size_t kb = 0; kb < A.kbt; kb++) {
                                __m512i w0 = _mm512_loadu_si512(b0 + kt + kb * 64);
                                __m512i w1 = _mm512_loadu_si512(b1 + kt + kb * 64);
                                _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
                                        int32_t a4;
                                        __builtin_memcpy(&a4, a + r * lda + 4 * kb, 4);
                                        __m512i av = _mm512_set1_epi32(a4);
                                        acc0[r] = _mm512_dpbusd_epi32(acc0[r], av, w0);
                                        acc1[r] = _mm512_dpbusd_epi32(acc1[r], av, w1);
                                }
                        }
                } else {
                        for (size_t kb = 0; kb < A.kbt; kb++) {
                                __m512i w0 = _mm512_loadu_si512(b0 + kt + kb * 64);
                                _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
                                        int32_t a4;
                                        __builtin_memcpy(&a4, a + r * lda + 4 * kb, 4);
                                        acc0[r] = _mm512_dpbusd_epi32(acc0[r], _mm512_set1_epi32(a4), w0);
                                }
                        }
                }
        }
}

static inline __mmask16 column_mask(size_t left) { return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1); }

template <int MR>
static inline void tile(const GemmA &A, size_t m0, const int8_t *B, size_t K4, size_t N, size_t n0, size_t kb0,
                        int32_t *C, size_t ldc)
{
        const int8_t *b0 = B + (n0 / 16) * K4 * 16 + kb0 * 64;
        const bool two = n0 + 16 < N;
        __m512i acc0[MR], acc1[MR];
        accumulate<MR>(A, m0, b0, b0 + K4 * 16, two, acc0, acc1);
        const __mmask16 m0k = column_mask(N - n0), m1k = two ? column_mask(N - n0 - 16) : 0;
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
                _mm512_mask_storeu_epi32(C + r * ldc + n0, m0k, acc0[r]);
                if (two)
                        _mm512_mask_storeu_epi32(C + r * ldc + n0 + 16, m1k, acc1[r]);
        }
}

// The register tiles of a 32-column slice, columns outer: the slice of B
// stays in cache while the rows of A stream past it.  tile(R, m) runs rows
// [m, m + R) with R a compile-time constant: kMR rows at a time, the last
// rows in one tile, so B is read once more, not once per row.
constexpr int kMR = 8;
template <typename Tile> static inline void for_tiles(size_t M, size_t N, Tile tile)
{
        for (size_t n0 = 0; n0 < N; n0 += 32) {
                size_t m = 0;
                for (; m + kMR <= M; m += kMR)
                        tile(std::integral_constant<int, kMR>{}, m, n0);
                switch (M - m) {
                case 7: tile(std::integral_constant<int, 7>{}, m, n0); break;
                case 6: tile(std::integral_constant<int, 6>{}, m, n0); break;
                case 5: tile(std::integral_constant<int, 5>{}, m, n0); break;
                case 4: tile(std::integral_constant<int, 4>{}, m, n0); break;
                case 3: tile(std::integral_constant<int, 3>{}, m, n0); break;
                case 2: tile(std::integral_constant<int, 2>{}, m, n0); break;
                case 1: tile(std::integral_constant<int, 1>{}, m, n0); break;
                default: break;
                }
        }
}

void gemm_u8s8_avx512vnni(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, size_t kb0, int32_t *C,
                          size_t ldc)
{
        for_tiles(M, N, [&](auto rows, size_t m, size_t n0) {
                tile<decltype(rows)::value>(A, m, B, K4, N, n0, kb0, C + m * ldc, ldc);
        });
}

// Depthwise sums of four output pixels (pixel stride `step`) over nt taps
// at offsets off[] with the taps' weights widened to int32 in wv, 16 per
// tap; one pixel in dw_pixel1.
template <typename Load>
static inline __attribute__((always_inline)) void dw_pixels4(const uint8_t *xj, size_t step, const ptrdiff_t *off, unsigned nt,
                                                             const int32_t *wv, Load load_x, __m512i (&a)[4])
{
        for (unsigned t = 0; t < nt; t++) {
                const __m512i wt = _mm512_load_si512(wv + 16 * t);
                const uint8_t *p = xj + off[t];
                _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++)
                        a[i] = _mm512_add_epi32(a[i], _mm512_mullo_epi32(load_x(p + i * step), wt));
        }
}

template <typename Load>
static inline __attribute__((always_inline)) __m512i dw_pixel1(const uint8_t *xj, const ptrdiff_t *off, unsigned nt,
                                                               const int32_t *wv, Load load_x, __m512i a)
{
        for (unsigned t = 0; t < nt; t++)
                a = _mm512_add_epi32(a, _mm512_mullo_epi32(load_x(xj + off[t]), _mm512_load_si512(wv + 16 * t)));
        return a;
}

// 16 channels per register, four output pixels at a time sharing each
// tap's weights; the taps' weights widened to int32 once per channel block.
void depthwise_rows_avx512(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                           size_t C, size_t count, int32_t *acc)
{
        constexpr unsigned kChunk = 32;  // taps whose weights sit on the stack at once
        alignas(64) int32_t wv[kChunk * 16];
        for (size_t c = 0; c < C; c += 16) {
                const size_t left = C - c;
                const __mmask16 m = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
                auto load_x = [&](const uint8_t *p) { return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p)); };
                for (unsigned t0 = 0; t0 < taps; t0 += kChunk) {
                        const unsigned nt = taps - t0 < kChunk ? taps - t0 : kChunk;
                        for (unsigned t = 0; t < nt; t++)
                                _mm512_store_si512(wv + 16 * t,
                                                   _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, w + size_t(t0 + t) * C + c)));
                        const ptrdiff_t *off = tap_off + t0;
                        size_t j = 0;
                        for (; j + 4 <= count; j += 4) {
                                int32_t *a = acc + j * C + c;
                                __m512i v[4];
                                for (int i = 0; i < 4; i++)
                                        v[i] = t0 == 0 ? _mm512_setzero_si512() : _mm512_maskz_loadu_epi32(m, a + i * C);
                                dw_pixels4(x + j * step + c, step, off, nt, wv, load_x, v);
                                for (int i = 0; i < 4; i++)
                                        _mm512_mask_storeu_epi32(a + i * C, m, v[i]);
                        }
                        for (; j < count; j++) {
                                int32_t *a = acc + j * C + c;
                                __m512i a0 = t0 == 0 ? _mm512_setzero_si512() : _mm512_maskz_loadu_epi32(m, a);
                                _mm512_mask_storeu_epi32(a, m, dw_pixel1(x + j * step + c, off, nt, wv, load_x, a0));
                        }
                }
        }
}

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

static inline void store_q(uint8_t *d, __mmask16 m, bool full, __m512i q)
{
        if (full)
                _mm_storeu_si128(reinterpret_cast<__m128i *>(d), _mm512_cvtusepi32_epi8(q));
        else
                _mm512_mask_cvtusepi32_storeu_epi8(d, m, q);
}

static inline void store_q(uint16_t *d, __mmask16 m, bool full, __m512i q)
{
        if (full)
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(d), _mm512_cvtusepi32_epi16(q));
        else
                _mm512_mask_cvtusepi32_storeu_epi16(d, m, q);
}

template <int ACT, bool OFF, typename Q>
static void epilogue(const int32_t *acc, size_t ldc, size_t rows, size_t n, const int32_t *off, const float *mul,
                     const float *add, const OutQuant &o, Q *q, size_t ldq)
{
        const __m512 inv = _mm512_set1_ps(o.inv), zp = _mm512_set1_ps(o.zero);
        const __m512 lo = _mm512_set1_ps(ACT == kActFolded ? o.lo : 0.0f), hi = _mm512_set1_ps(ACT == kActFolded ? o.hi : o.qmax);
        for (size_t c = 0; c < n; c += 16) {
                const bool full = n - c >= 16;
                const __mmask16 m = full ? __mmask16(0xffff) : __mmask16((1u << (n - c)) - 1);
                const __m512 mv = _mm512_maskz_loadu_ps(m, mul + c), av = _mm512_maskz_loadu_ps(m, add + c);
                const __m512i ov = OFF ? _mm512_maskz_loadu_epi32(m, off + c) : _mm512_setzero_si512();
                for (size_t r = 0; r < rows; r++) {
                        __m512i a = _mm512_maskz_loadu_epi32(m, acc + r * ldc + c);
                        if (OFF)
                                a = _mm512_sub_epi32(a, ov);
                        __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(a), mv, av);
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
                         const float *add, uint8_t act, const OutQuant &o, Q *q, size_t ldq)
{
        with_act(act, o.folded, [&](auto a) {
                if constexpr (decltype(a)::value == NPU_ACT_SIGMOID)  // libm's exp, in the generic loop
                        epilogue_tile(acc, ldc, rows, n, off, mul, add, act, o, q, ldq);
                else
                        epilogue<decltype(a)::value, OFF>(acc, ldc, rows, n, off, mul, add, o, q, ldq);
        });
}

template <typename Q>
static void epilogue_any(const int32_t *acc, size_t ldc, size_t rows, size_t n, const int32_t *off, const float *mul,
                         const float *add, uint8_t act, const OutQuant &o, Q *q, size_t ldq)
{
        if (off)
                epilogue_act<true>(acc, ldc, rows, n, off, mul, add, act, o, q, ldq);
        else
                epilogue_act<false>(acc, ldc, rows, n, off, mul, add, act, o, q, ldq);
}

void epilogue_u8_avx512(const int32_t *acc, size_t ldc, size_t rows, size_t n, const int32_t *off, const float *mul,
                        const float *add, uint8_t act, const OutQuant &o, uint8_t *q, size_t ldq)
{
        epilogue_any(acc, ldc, rows, n, off, mul, add, act, o, q, ldq);
}

void epilogue_u16_avx512(const int32_t *acc, size_t ldc, size_t rows, size_t n, const int32_t *off, const float *mul,
                         const float *add, uint8_t act, const OutQuant &o, uint16_t *q, size_t ldq)
{
        epilogue_any(acc, ldc, rows, n, off, mul, add, act, o, q, ldq);
}

// 16-bit inputs: 8 channels per step in int64 lanes (vcvtqq2ps converts
// exactly as the scalar int64 -> float conversion: current rounding mode).
template <int ACT>
static void epilogue_wide(const int32_t *hi, const int32_t *lo, size_t ldc, size_t rows, size_t n, const int64_t *off,
                          const float *mul, const float *add, const OutQuant &o, uint16_t *q, size_t ldq)
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
                          const float *mul, const float *add, uint8_t act, const OutQuant &o, uint16_t *q, size_t ldq)
{
        with_act(act, o.folded, [&](auto a) {
                if constexpr (decltype(a)::value == NPU_ACT_SIGMOID)  // libm's exp, in the generic loop
                        npuref::epilogue_wide(hi, lo, ldc, rows, n, off, mul, add, act, o, q, ldq);
                else
                        epilogue_wide<decltype(a)::value>(hi, lo, ldc, rows, n, off, mul, add, o, q, ldq);
        });
}

// The GEMM with the folded epilogue applied to the tile in registers.
template <typename Q>
static inline void finish16(__m512i a, __m512i ov, __m512 mv, __m512 av, __m512 lo, __m512 hi, Q *d, __mmask16 m, bool full)
{
        __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(a, ov)), mv, av);
        y = _mm512_min_ps(_mm512_max_ps(y, lo), hi);
        store_q(d, m, full, _mm512_cvtps_epi32(y));
}

template <int MR, typename Q>
static inline void tile_epilogue(const GemmA &A, size_t m0, const int8_t *B, size_t K4, size_t N, size_t n0,
                                 const GemmEpilogue &e, Q *q)
{
        const int8_t *b0 = B + (n0 / 16) * K4 * 16;
        const bool two = n0 + 16 < N;
        const size_t left0 = N - n0, n1 = n0 + 16, left1 = two ? N - n1 : 0;
        const __mmask16 k0 = column_mask(left0), k1 = two ? column_mask(left1) : 0;
        // The zero-point term starts the sums (int32 wraps alike either way).
        const __m512i zero = _mm512_setzero_si512();
        const __m512i o0 = e.off ? _mm512_sub_epi32(zero, _mm512_maskz_loadu_epi32(k0, e.off + n0)) : zero;
        const __m512i o1 = e.off && two ? _mm512_sub_epi32(zero, _mm512_maskz_loadu_epi32(k1, e.off + n1)) : zero;
        __m512i acc0[MR], acc1[MR];
        accumulate<MR>(A, m0, b0, b0 + K4 * 16, two, acc0, acc1, o0, o1);
        const __m512 lo = _mm512_set1_ps(e.o->lo), hi = _mm512_set1_ps(e.o->hi);
        const __m512 mv0 = _mm512_maskz_loadu_ps(k0, e.mul + n0), av0 = _mm512_maskz_loadu_ps(k0, e.add + n0);
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++)
                finish16(acc0[r], zero, mv0, av0, lo, hi, q + (m0 + r) * e.ldq + n0, k0, left0 >= 16);
        if (two) {
                const __m512 mv1 = _mm512_maskz_loadu_ps(k1, e.mul + n1), av1 = _mm512_maskz_loadu_ps(k1, e.add + n1);
                _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++)
                        finish16(acc1[r], zero, mv1, av1, lo, hi, q + (m0 + r) * e.ldq + n1, k1, left1 >= 16);
        }
}

template <typename Q>
static void gemm_epilogue_fused(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, const GemmEpilogue &e, Q *q)
{
        for_tiles(M, N, [&](auto rows, size_t m, size_t n0) { tile_epilogue<decltype(rows)::value>(A, m, B, K4, N, n0, e, q); });
}

void gemm_epilogue_avx512(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, const GemmEpilogue &e,
                          int32_t *C, size_t ldc)
{
        if (e.o->folded) {
                if (e.q8)
                        gemm_epilogue_fused(A, M, B, K4, N, e, e.q8);
                else
                        gemm_epilogue_fused(A, M, B, K4, N, e, e.q16);
                return;
        }
        // Other activations: the tile through memory.
        gemm_u8s8_avx512vnni(A, M, B, K4, N, 0, C, ldc);
        if (e.q8)
                epilogue_u8_avx512(C, ldc, M, N, e.off, e.mul, e.add, e.act, *e.o, e.q8, e.ldq);
        else
                epilogue_u16_avx512(C, ldc, M, N, e.off, e.mul, e.add, e.act, *e.o, e.q16, e.ldq);
}

// Depthwise rows with the folded epilogue from registers: 16 channels by
// four output pixels at a time, the taps' weights widened once per block.
template <typename Q>
static void depthwise_fused(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                            size_t C, size_t count, const GemmEpilogue &e, Q *q)
{
        alignas(64) int32_t wv[32 * 16];
        const __m512 lo = _mm512_set1_ps(e.o->lo), hi = _mm512_set1_ps(e.o->hi);
        for (size_t c = 0; c < C; c += 16) {
                const bool full = C - c >= 16;
                const __mmask16 m = column_mask(C - c);
                for (unsigned t = 0; t < taps; t++)
                        _mm512_store_si512(wv + 16 * t, _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, w + size_t(t) * C + c)));
                const __m512i ov = _mm512_maskz_loadu_epi32(m, e.off + c);
                const __m512 mv = _mm512_maskz_loadu_ps(m, e.mul + c), av = _mm512_maskz_loadu_ps(m, e.add + c);
                // Full blocks load 16 bytes straight into the widening move.
                auto load_x = [&](const uint8_t *p) {
                        return full ? _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)))
                                    : _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p));
                };
                size_t j = 0;
                const __m512i zero = _mm512_setzero_si512();
                for (; j + 4 <= count; j += 4) {
                        __m512i v[4] = {zero, zero, zero, zero};
                        dw_pixels4(x + j * step + c, step, tap_off, taps, wv, load_x, v);
                        for (int i = 0; i < 4; i++)
                                finish16(v[i], ov, mv, av, lo, hi, q + (j + i) * e.ldq + c, m, full);
                }
                for (; j < count; j++)
                        finish16(dw_pixel1(x + j * step + c, tap_off, taps, wv, load_x, zero), ov, mv, av, lo, hi,
                                 q + j * e.ldq + c, m, full);
        }
}

// 3x3, stride 1, dilation 1 over the input in place: four output pixels
// read six input columns per kernel row, each loaded once for the up to
// three pixels whose windows hold it; the nine weights stay in registers.
template <typename Q>
static void depthwise3x3_fused(const uint8_t *x, const ptrdiff_t rows[3], const int8_t *w, size_t C, size_t count,
                               const GemmEpilogue &e, Q *q)
{
        const __m512 lo = _mm512_set1_ps(e.o->lo), hi = _mm512_set1_ps(e.o->hi);
        for (size_t c = 0; c < C; c += 16) {
                const bool full = C - c >= 16;
                const __mmask16 m = column_mask(C - c);
                __m512i wt[9];
                for (int t = 0; t < 9; t++)
                        wt[t] = _mm512_cvtepi8_epi32(_mm_maskz_loadu_epi8(m, w + size_t(t) * C + c));
                const __m512i ov = _mm512_maskz_loadu_epi32(m, e.off + c);
                const __m512 mv = _mm512_maskz_loadu_ps(m, e.mul + c), av = _mm512_maskz_loadu_ps(m, e.add + c);
                auto load_x = [&](const uint8_t *p) {
                        return full ? _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)))
                                    : _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p));
                };
                auto madd = [](__m512i a, __m512i v, __m512i wv) { return _mm512_add_epi32(a, _mm512_mullo_epi32(v, wv)); };
                size_t j = 0;
                for (; j + 4 <= count; j += 4) {
                        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
                        for (int ky = 0; ky < 3; ky++) {
                                const uint8_t *p = x + j * C + rows[ky] + c;
                                const __m512i w0 = wt[3 * ky], w1 = wt[3 * ky + 1], w2 = wt[3 * ky + 2];
                                __m512i v0 = load_x(p), v1 = load_x(p + C), v2 = load_x(p + 2 * C);
                                a0 = madd(madd(madd(a0, v0, w0), v1, w1), v2, w2);
                                __m512i v3 = load_x(p + 3 * C);
                                a1 = madd(madd(madd(a1, v1, w0), v2, w1), v3, w2);
                                __m512i v4 = load_x(p + 4 * C);
                                a2 = madd(madd(madd(a2, v2, w0), v3, w1), v4, w2);
                                __m512i v5 = load_x(p + 5 * C);
                                a3 = madd(madd(madd(a3, v3, w0), v4, w1), v5, w2);
                        }
                        Q *d = q + j * e.ldq + c;
                        finish16(a0, ov, mv, av, lo, hi, d, m, full);
                        finish16(a1, ov, mv, av, lo, hi, d + e.ldq, m, full);
                        finish16(a2, ov, mv, av, lo, hi, d + 2 * e.ldq, m, full);
                        finish16(a3, ov, mv, av, lo, hi, d + 3 * e.ldq, m, full);
                }
                for (; j < count; j++) {
                        __m512i a0 = _mm512_setzero_si512();
                        for (int ky = 0; ky < 3; ky++) {
                                const uint8_t *p = x + j * C + rows[ky] + c;
                                a0 = madd(madd(madd(a0, load_x(p), wt[3 * ky]), load_x(p + C), wt[3 * ky + 1]), load_x(p + 2 * C),
                                          wt[3 * ky + 2]);
                        }
                        finish16(a0, ov, mv, av, lo, hi, q + j * e.ldq + c, m, full);
                }
        }
}

// Taps of a 3x3 window at stride 1 and dilation 1 read in place: three
// kernel rows of three adjacent pixels.
static bool taps_3x3_s1(size_t step, const ptrdiff_t *tap_off, unsigned taps, size_t C)
{
        if (taps != 9 || step != C)
                return false;
        for (int ky = 0; ky < 3; ky++)
                for (int kx = 1; kx < 3; kx++)
                        if (tap_off[3 * ky + kx] != tap_off[3 * ky] + ptrdiff_t(kx * C))
                                return false;
        return true;
}

void depthwise_epilogue_avx512(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                               size_t C, size_t count, const GemmEpilogue &e, int32_t *acc)
{
        if (e.o->folded && e.off && taps_3x3_s1(step, tap_off, taps, C)) {
                const ptrdiff_t rows[3] = {tap_off[0], tap_off[3], tap_off[6]};
                if (e.q8)
                        depthwise3x3_fused(x, rows, w, C, count, e, e.q8);
                else
                        depthwise3x3_fused(x, rows, w, C, count, e, e.q16);
                return;
        }
        if (e.o->folded && e.off && taps <= 32) {
                if (e.q8)
                        depthwise_fused(x, step, tap_off, taps, w, C, count, e, e.q8);
                else
                        depthwise_fused(x, step, tap_off, taps, w, C, count, e, e.q16);
                return;
        }
        depthwise_rows_avx512(x, step, tap_off, taps, w, C, count, acc);
        if (e.q8)
                epilogue_u8_avx512(acc, C, count, C, e.off, e.mul, e.add, e.act, *e.o, e.q8, e.ldq);
        else
                epilogue_u16_avx512(acc, C, count, C, e.off, e.mul, e.add, e.act, *e.o, e.q16, e.ldq);
}

// Weight sums of 16 channels per step: vpdpbusd against bytes of 1 adds
// each channel's four weights of a K block into its int32 lane (2^16
// blocks of |w| <= 128 per int32 piece), pieces summed in int64.
void column_sums_avx512(const int8_t *B, size_t K4, size_t N, int64_t *sums)
{
        const size_t KB = K4 / 4;
        const __m512i ones = _mm512_set1_epi8(1);
        for (size_t nb = 0; nb * 16 < N; nb++) {
                const int8_t *block = B + nb * K4 * 16;
                __m512i lo = _mm512_setzero_si512(), hi = lo;
                for (size_t kb0 = 0; kb0 < KB; kb0 += 65536) {
                        const size_t kb1 = KB - kb0 < 65536 ? KB : kb0 + 65536;
                        __m512i part = _mm512_setzero_si512();
                        for (size_t kb = kb0; kb < kb1; kb++)
                                part = _mm512_dpbusd_epi32(part, ones, _mm512_loadu_si512(block + kb * 64));
                        lo = _mm512_add_epi64(lo, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(part)));
                        hi = _mm512_add_epi64(hi, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(part, 1)));
                }
                const size_t left = N - nb * 16;
                const __mmask8 m0 = left >= 8 ? __mmask8(0xff) : __mmask8((1u << left) - 1);
                const __mmask8 m1 = left >= 16 ? __mmask8(0xff) : left > 8 ? __mmask8((1u << (left - 8)) - 1) : 0;
                _mm512_mask_storeu_epi64(sums + nb * 16, m0, lo);
                _mm512_mask_storeu_epi64(sums + nb * 16 + 8, m1, hi);
        }
}

} // namespace npuref

// Depthwise convolution rows with AVX-512: 16 channels by four output
// pixels at a time, with or without the folded epilogue.
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
// three pixels whose windows hold it.  A kernel row's three taps of a
// channel share one int32 lane: the activations as bytes 0-2 of the lane
// (byte 3 zero), the row's weights likewise, so one vpdpbusd adds the
// row's three products (exactly: u8 x s8 into int32).
template <typename Q>
static void depthwise3x3_fused(const uint8_t *x, const ptrdiff_t rows[3], const int8_t *w, size_t C, size_t count,
                               const GemmEpilogue &e, Q *q)
{
        const __m512 lo = _mm512_set1_ps(e.o->lo), hi = _mm512_set1_ps(e.o->hi);
        // a | b << 8 | c << 16 of three zero-extended byte lanes.
        auto lanes3 = [](__m512i a, __m512i b, __m512i c) {
                return _mm512_ternarylogic_epi32(a, _mm512_slli_epi32(b, 8), _mm512_slli_epi32(c, 16), 0xfe);
        };
        for (size_t c = 0; c < C; c += 16) {
                const bool full = C - c >= 16;
                const __mmask16 m = column_mask(C - c);
                auto bytes = [&](const void *p) { return _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p)); };
                __m512i wr[3];
                for (int ky = 0; ky < 3; ky++)
                        wr[ky] = lanes3(bytes(w + size_t(3 * ky) * C + c), bytes(w + size_t(3 * ky + 1) * C + c),
                                        bytes(w + size_t(3 * ky + 2) * C + c));
                // The zero-point term starts the sums (int32 wraps alike either way).
                const __m512i zero = _mm512_setzero_si512();
                const __m512i start = _mm512_sub_epi32(zero, _mm512_maskz_loadu_epi32(m, e.off + c)), ov = zero;
                const __m512 mv = _mm512_maskz_loadu_ps(m, e.mul + c), av = _mm512_maskz_loadu_ps(m, e.add + c);
                auto load_x = [&](const uint8_t *p) {
                        return full ? _mm512_cvtepu8_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p)))
                                    : _mm512_cvtepu8_epi32(_mm_maskz_loadu_epi8(m, p));
                };
                size_t j = 0;
                for (; j + 4 <= count; j += 4) {
                        __m512i a0 = start, a1 = a0, a2 = a0, a3 = a0;
                        for (int ky = 0; ky < 3; ky++) {
                                const uint8_t *p = x + j * C + rows[ky] + c;
                                const __m512i v0 = load_x(p), v1 = load_x(p + C), v2 = load_x(p + 2 * C);
                                const __m512i v3 = load_x(p + 3 * C), v4 = load_x(p + 4 * C), v5 = load_x(p + 5 * C);
                                a0 = _mm512_dpbusd_epi32(a0, lanes3(v0, v1, v2), wr[ky]);
                                a1 = _mm512_dpbusd_epi32(a1, lanes3(v1, v2, v3), wr[ky]);
                                a2 = _mm512_dpbusd_epi32(a2, lanes3(v2, v3, v4), wr[ky]);
                                a3 = _mm512_dpbusd_epi32(a3, lanes3(v3, v4, v5), wr[ky]);
                        }
                        Q *d = q + j * e.ldq + c;
                        finish16(a0, ov, mv, av, lo, hi, d, m, full);
                        finish16(a1, ov, mv, av, lo, hi, d + e.ldq, m, full);
                        finish16(a2, ov, mv, av, lo, hi, d + 2 * e.ldq, m, full);
                        finish16(a3, ov, mv, av, lo, hi, d + 3 * e.ldq, m, full);
                }
                for (; j < count; j++) {
                        __m512i a0 = start;
                        for (int ky = 0; ky < 3; ky++) {
                                const uint8_t *p = x + j * C + rows[ky] + c;
                                a0 = _mm512_dpbusd_epi32(a0, lanes3(load_x(p), load_x(p + C), load_x(p + 2 * C)), wr[ky]);
                        }
                        finish16(a0, ov, mv, av, lo, hi, q + j * e.ldq + c, m, full);
                }
        }
}

// 16-bit inputs (u16, little-endian) read as they are: each value shifted
// into int16 (x ^ 0x8000, unless the layer's copy did it), two taps of a
// channel paired in a 32-bit lane (vpunpcklwd / vpunpckhwd of the two
// taps' 32 channels), one vpdpwssd adding both products to the lane: 32
// products per instruction, exact (2 x 32768 x 128 per pair; (32768 - z)
// times the weight sums, at most 2^27, start the sums; 16 pairs fit int32).
// The unpacks leave channels 0-3, 8-11, 16-19, 24-27 in `lo` and the others
// in `hi`; two vpermt2q put them back in order for the epilogue.
struct Dw16Taps {
        static constexpr unsigned kMax = kDepthwise16MaxTaps;
        __m512i w[kMax / 2][2];  // per tap pair: lo's and hi's weight pairs

        Dw16Taps(const int8_t *wts, unsigned taps, size_t C, size_t c, __mmask32 m)
        {
                for (unsigned p = 0; p < (taps + 1) / 2; p++) {
                        const unsigned t0 = 2 * p, t1 = t0 + 1;
                        const __m512i a = _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, wts + size_t(t0) * C + c));
                        const __m512i b = t1 < taps ? _mm512_cvtepi8_epi16(_mm256_maskz_loadu_epi8(m, wts + size_t(t1) * C + c))
                                                    : _mm512_setzero_si512();
                        w[p][0] = _mm512_unpacklo_epi16(a, b);
                        w[p][1] = _mm512_unpackhi_epi16(a, b);
                }
        }
};

// lo | hi's lanes (see Dw16Taps) as channels 0-15 and 16-31, and back.
static inline void dw16_order(__m512i lo, __m512i hi, __m512i &c0, __m512i &c1)
{
        c0 = _mm512_permutex2var_epi64(lo, _mm512_setr_epi64(0, 1, 8, 9, 2, 3, 10, 11), hi);
        c1 = _mm512_permutex2var_epi64(lo, _mm512_setr_epi64(4, 5, 12, 13, 6, 7, 14, 15), hi);
}
static inline void dw16_lanes(__m512i c0, __m512i c1, __m512i &lo, __m512i &hi)
{
        lo = _mm512_permutex2var_epi64(c0, _mm512_setr_epi64(0, 1, 4, 5, 8, 9, 12, 13), c1);
        hi = _mm512_permutex2var_epi64(c0, _mm512_setr_epi64(2, 3, 6, 7, 10, 11, 14, 15), c1);
}

// Channels [c, c + 32) of count pixels, NP at a time; with Q = int32_t the
// exact sums go to q (ldq C) for the generic epilogue instead.
template <bool SHIFTED, typename Q>
static void depthwise16_block(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                              size_t C, size_t c, size_t count, const GemmEpilogue &e, Q *q)
{
        const size_t left = C - c < 32 ? C - c : 32;
        const __mmask32 m = left == 32 ? ~__mmask32(0) : (__mmask32(1) << left) - 1;
        const __mmask16 m0 = column_mask(left), m1 = column_mask(left > 16 ? left - 16 : 0);
        const Dw16Taps wt(w, taps, C, c, m);
        // The shift terms (below 2^27) narrowed to int32, in the lanes' order.
        auto shift = [&](size_t k, __mmask16 mk) {
                const __mmask8 a = __mmask8(mk), b = __mmask8(mk >> 8);
                const __m256i s0 = _mm512_cvtepi64_epi32(_mm512_maskz_loadu_epi64(a, e.shift64 + c + k));
                const __m256i s1 = _mm512_cvtepi64_epi32(_mm512_maskz_loadu_epi64(b, e.shift64 + c + k + 8));
                return _mm512_inserti64x4(_mm512_castsi256_si512(s0), s1, 1);
        };
        __m512i start_lo, start_hi;
        dw16_lanes(shift(0, m0), shift(16, m1), start_lo, start_hi);
        const __m512i x8000 = _mm512_set1_epi16(-32768);
        auto load = [&](const uint8_t *p) {
                const __m512i v = _mm512_maskz_loadu_epi16(m, p);
                return SHIFTED ? v : _mm512_xor_si512(v, x8000);  // lanes past C: weights 0
        };
        const __m512 lo = _mm512_set1_ps(e.o->lo), hi = _mm512_set1_ps(e.o->hi);
        const __m512 mv0 = _mm512_maskz_loadu_ps(m0, e.mul + c), av0 = _mm512_maskz_loadu_ps(m0, e.add + c);
        const __m512 mv1 = _mm512_maskz_loadu_ps(m1, e.mul + c + 16), av1 = _mm512_maskz_loadu_ps(m1, e.add + c + 16);
        const __m512i zero = _mm512_setzero_si512();
        auto finish = [&](__m512i a_lo, __m512i a_hi, Q *d) {
                __m512i c0, c1;
                dw16_order(a_lo, a_hi, c0, c1);
                if constexpr (std::is_same_v<Q, int32_t>) {
                        _mm512_mask_storeu_epi32(d, m0, c0);
                        _mm512_mask_storeu_epi32(d + 16, m1, c1);
                } else {
                        finish16(c0, zero, mv0, av0, lo, hi, d, m0, left >= 16);
                        if (left > 16)
                                finish16(c1, zero, mv1, av1, lo, hi, d + 16, m1, left == 32);
                }
        };
        auto sums = [&](auto np, size_t j0) {
                constexpr int NP = decltype(np)::value;
                __m512i a_lo[NP], a_hi[NP];
                for (int i = 0; i < NP; i++) {
                        a_lo[i] = start_lo;
                        a_hi[i] = start_hi;
                }
                const uint8_t *xj = x + j0 * step + 2 * c;
                for (unsigned p = 0; p < taps / 2; p++) {
                        const ptrdiff_t d0 = tap_off[2 * p], d1 = tap_off[2 * p + 1];
                        _Pragma("GCC unroll 4") for (int i = 0; i < NP; i++) {
                                const __m512i a = load(xj + i * step + d0), b = load(xj + i * step + d1);
                                a_lo[i] = _mm512_dpwssd_epi32(a_lo[i], _mm512_unpacklo_epi16(a, b), wt.w[p][0]);
                                a_hi[i] = _mm512_dpwssd_epi32(a_hi[i], _mm512_unpackhi_epi16(a, b), wt.w[p][1]);
                        }
                }
                if (taps % 2) {  // the last tap, paired with zeros (its pair's weights are zero)
                        const unsigned p = taps / 2;
                        _Pragma("GCC unroll 4") for (int i = 0; i < NP; i++) {
                                const __m512i a = load(xj + i * step + tap_off[2 * p]);
                                a_lo[i] = _mm512_dpwssd_epi32(a_lo[i], _mm512_unpacklo_epi16(a, zero), wt.w[p][0]);
                                a_hi[i] = _mm512_dpwssd_epi32(a_hi[i], _mm512_unpackhi_epi16(a, zero), wt.w[p][1]);
                        }
                }
                for (int i = 0; i < NP; i++)
                        finish(a_lo[i], a_hi[i], q + (j0 + i) * (std::is_same_v<Q, int32_t> ? C : e.ldq) + c);
        };
        size_t j = 0;
        for (; j + 4 <= count; j += 4)
                sums(std::integral_constant<int, 4>{}, j);
        for (; j < count; j++)
                sums(std::integral_constant<int, 1>{}, j);
}

template <bool SHIFTED, typename Q>
static void depthwise16_fused(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                              size_t C, size_t count, const GemmEpilogue &e, Q *q)
{
        for (size_t c = 0; c < C; c += 32)
                depthwise16_block<SHIFTED>(x, step, tap_off, taps, w, C, c, count, e, q);
}

template <typename Q>
static void depthwise16_fused(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                              size_t C, size_t count, const GemmEpilogue &e, Q *q, bool shifted)
{
        if (shifted)
                depthwise16_fused<true>(x, step, tap_off, taps, w, C, count, e, q);
        else
                depthwise16_fused<false>(x, step, tap_off, taps, w, C, count, e, q);
}

void depthwise16_epilogue_avx512(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                                 size_t C, size_t count, const GemmEpilogue &e, int32_t *acc, bool shifted)
{
        depthwise16_finish([&](auto *q) { depthwise16_fused(x, step, tap_off, taps, w, C, count, e, q, shifted); }, e, acc, C,
                           count);
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
                               size_t C, size_t count, const GemmEpilogue &e, int32_t *acc, uint8_t)
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
                epilogue_u8_avx512(acc, C, count, C, e.off, e.mul, e.add, e.act, *e.o, e.q8, e.ldq, e.res);
        else
                epilogue_u16_avx512(acc, C, count, C, e.off, e.mul, e.add, e.act, *e.o, e.q16, e.ldq, e.res);
}

} // namespace npuref

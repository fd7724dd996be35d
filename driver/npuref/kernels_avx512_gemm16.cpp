// The 16-bit GEMM with AVX-512 VNNI (vpdpwssd): A's values are u16, read
// as they are.  A pair of values is broadcast as 4 bytes, shifted into
// int16 (x ^ 0x8000, once per call over the span the rows read, or by the
// layer's copy); a slice's weights, widened to int16 (Weights16), hold 16
// columns x the same pair of K per register, so one vpdpwssd adds both
// products of a pair into each column's int32 lane: 32 products per
// instruction, half of vpdpbusd's 64 bytes, as many as the two byte planes
// the layer would otherwise split the values into.  Tiles of 8 rows x 32
// columns (16 accumulators, 4 weight registers), as the 8-bit GEMM's.
// The sum of (x - z) w is those sums plus (32768 - z) times the column's
// weight sum (GemmEpilogue::shift64), exact as gemm16.h says.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

// GCC 12 warns that the masked loads' undefined pass-through vector "may be"
// or "is used uninitialized" (it is never read: the zero-masking forms zero it).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#pragma GCC diagnostic ignored "-Wuninitialized"
#endif

#include "gemm16.h"
#include "kernels.h"
#include "per_thread.h"
#include "kernels_avx512.h"

namespace npuref {
namespace {

// One slice's weights as int16: per K block, K pair (0, 1) of columns
// 0-15, then pair (2, 3), each column's two weights side by side in its
// 32-bit lane.
void lay_out16_avx512(const int8_t *b0, size_t nkb, int16_t *d)
{
        // Per 128-bit lane (4 columns x 4 bytes): pair (0, 1) of each
        // column into the low 8 bytes, pair (2, 3) into the high 8; then the
        // low halves of the four lanes, and the high halves.
        const __m512i pick = _mm512_broadcast_i32x4(_mm_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15));
        const __m512i halves = _mm512_setr_epi64(0, 2, 4, 6, 1, 3, 5, 7);
        for (size_t kb = 0; kb < nkb; kb++) {
                const __m512i v = _mm512_permutexvar_epi64(halves, _mm512_shuffle_epi8(_mm512_loadu_si512(b0 + kb * 64), pick));
                _mm512_storeu_si512(d + kb * 64, _mm512_cvtepi8_epi16(_mm512_castsi512_si256(v)));
                _mm512_storeu_si512(d + kb * 64 + 32, _mm512_cvtepi8_epi16(_mm512_extracti64x4_epi64(v, 1)));
        }
}

inline bool shifted16(const GemmA &A, size_t M, GemmA &out)
{
        return shifted_span(A, M, out, [](const uint8_t *src, uint8_t *d, size_t n) {
                const __m512i x8000 = _mm512_set1_epi16(-32768);
                size_t i = 0;
                for (; i + 64 <= n; i += 64)
                        _mm512_storeu_si512(d + i, _mm512_xor_si512(_mm512_loadu_si512(src + i), x8000));
                return i;
        });
}

inline __m512i bcast4(const uint8_t *p)
{
        int32_t v;
        std::memcpy(&v, p, 4);
        return _mm512_set1_epi32(v);
}

// The column sums of MR rows x 32 columns (16 with w1 null) over K blocks
// [kb0, kb1) of the runs (block index over all taps), from zero.
// SHIFTED: A's values already shifted into int16.
template <int MR, bool SHIFTED>
inline __attribute__((always_inline)) void sums16(const GemmA &A, size_t m0, const int16_t *w0, const int16_t *w1,
                                                  size_t kb0, size_t kb1, __m512i (&acc0)[MR], __m512i (&acc1)[MR])
{
        const __m512i x8000 = _mm512_set1_epi16(-32768);
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) acc0[r] = acc1[r] = _mm512_setzero_si512();
        const bool two = w1 != nullptr;
        // Run t holds blocks [t * kbt, (t + 1) * kbt); the part of it in [kb0, kb1).
        for (unsigned t = 0; t < A.taps; t++) {
                const size_t first = size_t(t) * A.kbt, lo = std::max(kb0, first), hi = std::min(kb1, first + A.kbt);
                if (lo >= hi)
                        continue;
                const uint8_t *a = A.base + m0 * A.lda + A.tap_off[t] + 8 * (lo - first);
                const int16_t *b0 = w0 + lo * 64, *b1 = two ? w1 + lo * 64 : nullptr;
                auto step = [&](auto both) {
                        constexpr bool TWO = decltype(both)::value;
                        for (size_t j = 0; j < hi - lo; j++) {
                                const __m512i p0 = _mm512_loadu_si512(b0 + j * 64), q0 = _mm512_loadu_si512(b0 + j * 64 + 32);
                                __m512i p1 = p0, q1 = q0;
                                if constexpr (TWO) {
                                        p1 = _mm512_loadu_si512(b1 + j * 64);
                                        q1 = _mm512_loadu_si512(b1 + j * 64 + 32);
                                }
                                _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
                                        __m512i x01 = bcast4(a + r * A.lda + 8 * j), x23 = bcast4(a + r * A.lda + 8 * j + 4);
                                        if constexpr (!SHIFTED) {
                                                x01 = _mm512_xor_si512(x01, x8000);
                                                x23 = _mm512_xor_si512(x23, x8000);
                                        }
                                        acc0[r] = _mm512_dpwssd_epi32(acc0[r], x01, p0);
                                        if constexpr (TWO)
                                                acc1[r] = _mm512_dpwssd_epi32(acc1[r], x01, p1);
                                        acc0[r] = _mm512_dpwssd_epi32(acc0[r], x23, q0);
                                        if constexpr (TWO)
                                                acc1[r] = _mm512_dpwssd_epi32(acc1[r], x23, q1);
                                }
                        }
                };
                if (two)
                        step(std::true_type{});
                else
                        step(std::false_type{});
        }
}

// 16 int64 values known to fit int32, narrowed (lanes off in m: 0).
inline __m512i narrow16(const int64_t *p, __mmask16 m)
{
        const __m256i a = _mm512_cvtepi64_epi32(_mm512_maskz_loadu_epi64(__mmask8(m), p));
        const __m256i b = _mm512_cvtepi64_epi32(_mm512_maskz_loadu_epi64(__mmask8(m >> 8), p + 8));
        return _mm512_inserti64x4(_mm512_castsi256_si512(a), b, 1);
}

// The exact sums of (x - z) w of MR rows x 32 columns (16 with w1 null),
// row r's passed to out(r, sums 0-15, sums 16-31): as int32 (one chunk) or
// rounded to float (several); or, with C, stored there as int64.
// shift: the columns' shift terms (zero past the columns); st: the same
// narrowed to int32 (used where it fits: one chunk).
template <int MR, bool SHIFTED, typename Out>
inline __attribute__((always_inline)) void tile16(const GemmA &A, size_t m0, const int16_t *w0, const int16_t *w1,
                                                  const int64_t *shift, const __m512i (&st)[2], int64_t *C, size_t ldc,
                                                  size_t left, Out out)
{
        const size_t nkb = size_t(A.taps) * A.kbt;
        __m512i acc0[MR], acc1[MR];
        if (nkb <= kInt16Blocks && !C) {
                sums16<MR, SHIFTED>(A, m0, w0, w1, 0, nkb, acc0, acc1);
                _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++)
                        out(r, _mm512_add_epi32(acc0[r], st[0]), _mm512_add_epi32(acc1[r], st[1]));
                return;
        }
        // Per row, columns 0-31 in four vectors of 8 doubles.
        __m512d tot[MR][4];
        for (int r = 0; r < MR; r++)
                for (int h = 0; h < 4; h++)
                        tot[r][h] = _mm512_cvtepi64_pd(_mm512_loadu_si512(shift + 8 * h));
        for (size_t kb0 = 0; kb0 < nkb; kb0 += kChunk16) {
                sums16<MR, SHIFTED>(A, m0, w0, w1, kb0, std::min(nkb, kb0 + kChunk16), acc0, acc1);
                _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
                        tot[r][0] = _mm512_add_pd(tot[r][0], _mm512_cvtepi32_pd(_mm512_castsi512_si256(acc0[r])));
                        tot[r][1] = _mm512_add_pd(tot[r][1], _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(acc0[r], 1)));
                        tot[r][2] = _mm512_add_pd(tot[r][2], _mm512_cvtepi32_pd(_mm512_castsi512_si256(acc1[r])));
                        tot[r][3] = _mm512_add_pd(tot[r][3], _mm512_cvtepi32_pd(_mm512_extracti64x4_epi64(acc1[r], 1)));
                }
        }
        if (C) {
                for (int r = 0; r < MR; r++) {
                        alignas(64) int64_t v[32];
                        for (int h = 0; h < 4; h++)
                                _mm512_store_si512(v + 8 * h, _mm512_cvtpd_epi64(tot[r][h]));
                        std::memcpy(C + (m0 + r) * ldc, v, 8 * left);
                }
                return;
        }
        auto f32 = [](__m512d a, __m512d b) {
                return _mm512_insertf32x8(_mm512_castps256_ps512(_mm512_cvtpd_ps(a)), _mm512_cvtpd_ps(b), 1);
        };
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) out(r, f32(tot[r][0], tot[r][1]), f32(tot[r][2], tot[r][3]));
}

constexpr int kMR16 = 8;

} // namespace

void gemm16_epilogue_avx512(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, const GemmEpilogue &e,
                            int64_t *C, size_t ldc)
{
        // Unfolded activations: the exact sums through C, then the generic epilogue.
        int64_t *c64 = e.o->folded ? nullptr : C;
        const size_t nkb = size_t(A.taps) * A.kbt;
        // The values shifted once for all slices and taps (by the layer's
        // copy, or here) where that pays.
        GemmA S;
        const bool pre = A.shifted || shifted16(A, M, S);
        const GemmA &a = A.shifted || !pre ? A : S;
        const __m512 lo = _mm512_set1_ps(e.o->lo), hi = _mm512_set1_ps(e.o->hi), inv = _mm512_set1_ps(e.o->inv);
        Weights16<lay_out16_avx512> &slices = PerThread<Weights16<lay_out16_avx512>>::get();
        for (size_t n0 = 0; n0 < N; n0 += 32) {
                const bool two = n0 + 16 < N;
                const int16_t *w0 = slices.slice(B, K4, N, n0, nkb, e.stamp, 0);
                const int16_t *w1 = two ? slices.slice(B, K4, N, n0 + 16, nkb, e.stamp, 1) : nullptr;
                const size_t left = std::min<size_t>(N - n0, 32), n1 = n0 + 16;
                const __mmask16 k0 = column_mask(left), k1 = column_mask(left > 16 ? left - 16 : 0);
                // The shift terms, zero past the columns; at most 2^15 x 256 x
                // 128 in int32 where K is one chunk.
                alignas(64) int64_t shift[32] = {};
                std::memcpy(shift, e.shift64 + n0, 8 * left);
                const __m512i st[2] = {narrow16(shift, k0), narrow16(shift + 16, k1)};
                const __m512 mv0 = _mm512_maskz_loadu_ps(k0, e.mul + n0), av0 = _mm512_maskz_loadu_ps(k0, e.add + n0);
                const __m512 mv1 = _mm512_maskz_loadu_ps(k1, e.mul + n1), av1 = _mm512_maskz_loadu_ps(k1, e.add + n1);
                const __mmask16 r0 = column_mask(e.res.cols_from(n0)), r1 = column_mask(e.res.cols_from(n1));
                auto rows = [&](auto mr, size_t m) {
                        constexpr int MR = decltype(mr)::value;
                        auto out = [&](int r, auto s0, auto s1) {
                                const float *res = e.res.res ? e.res.res + (m + r) * e.res.ldr : nullptr;
                                auto put = [&](auto *q) {
                                        q += (m + r) * e.ldq;
                                        store_q(q + n0, k0, left >= 16,
                                                folded16<false>(s0, mv0, av0, lo, hi, res ? res + n0 : nullptr, k0 & r0, inv));
                                        if (two)
                                                store_q(q + n1, k1, left == 32,
                                                        folded16<false>(s1, mv1, av1, lo, hi, res ? res + n1 : nullptr, k1 & r1, inv));
                                };
                                if (e.q8)
                                        put(e.q8);
                                else
                                        put(e.q16);
                        };
                        int64_t *c = c64 ? c64 + n0 : nullptr;
                        if (pre)
                                tile16<MR, true>(a, m, w0, w1, shift, st, c, ldc, left, out);
                        else
                                tile16<MR, false>(a, m, w0, w1, shift, st, c, ldc, left, out);
                };
                size_t m = 0;
                for (; m + kMR16 <= M; m += kMR16)
                        rows(std::integral_constant<int, kMR16>{}, m);
                with_rows(M - m, [&](auto mr) { rows(mr, m); });
        }
        if (c64)
                epilogue_tile(c64, ldc, M, N, nullptr, e.mul, e.add, e.act, *e.o, e.q16, e.ldq, e.res);
}

} // namespace npuref

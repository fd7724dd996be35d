// u8 x s8 GEMM with AVX-512 VNNI (vpdpbusd): one broadcast of four
// activation bytes times 16 output channels x 4 weights per instruction;
// the GEMM with its epilogue in registers, and the weights' column sums.
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
                if (A.nibbles) {
                        // Four bytes of 4-bit values a row per pair of K
                        // blocks: their low nibbles, and their high ones
                        // shifted down (a vpandd and a vpsrld, which run
                        // beside vpdpbusd), instead of a pass that writes
                        // them out as bytes and this loop reading those.
                        auto pairs = [&](auto two_c) {
                                constexpr bool TWO = decltype(two_c)::value;
                                const __m512i low = _mm512_set1_epi8(15);
                                for (size_t kb = 0; kb < A.kbt; kb += 2) {
                                        const int8_t *p0 = b0 + kt + kb * 64, *p1 = b1 + kt + kb * 64;
                                        const __m512i w0 = _mm512_loadu_si512(p0), w0h = _mm512_loadu_si512(p0 + 64);
                                        __m512i w1 = w0, w1h = w0h;
                                        if constexpr (TWO) {
                                                w1 = _mm512_loadu_si512(p1);
                                                w1h = _mm512_loadu_si512(p1 + 64);
                                        }
                                        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
                                                int32_t a4;
                                                __builtin_memcpy(&a4, a + r * lda + 2 * kb, 4);
                                                const __m512i av = _mm512_set1_epi32(a4);
                                                const __m512i lo = _mm512_and_si512(av, low);
                                                const __m512i hi = _mm512_and_si512(_mm512_srli_epi32(av, 4), low);
                                                acc0[r] = _mm512_dpbusd_epi32(acc0[r], lo, w0);
                                                if constexpr (TWO)
                                                        acc1[r] = _mm512_dpbusd_epi32(acc1[r], lo, w1);
                                                acc0[r] = _mm512_dpbusd_epi32(acc0[r], hi, w0h);
                                                if constexpr (TWO)
                                                        acc1[r] = _mm512_dpbusd_epi32(acc1[r], hi, w1h);
                                        }
                                }
                        };
                        if (two)
                                pairs(std::true_type{});
                        else
                                pairs(std::false_type{});
                } else if (two) {
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
                with_rows(M - m, [&](auto rows) { tile(rows, m, n0); });
        }
}

void gemm_u8s8_avx512vnni(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, size_t kb0, int32_t *C,
                          size_t ldc)
{
        for_tiles(M, N, [&](auto rows, size_t m, size_t n0) {
                tile<decltype(rows)::value>(A, m, B, K4, N, n0, kb0, C + m * ldc, ldc);
        });
}

template <int MR, bool RES, typename Q>
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
        const __m512 inv = _mm512_set1_ps(e.o->inv);
        auto res = [&](int r, size_t n) { return RES ? e.res.res + (m0 + r) * e.res.ldr + n : nullptr; };
        const __mmask16 r0 = column_mask(e.res.cols_from(n0)), r1 = column_mask(e.res.cols_from(n1));
        if constexpr (std::is_same_v<Q, uint8_t>) {
                // One whole block of 16 columns (a layer or group of 16
                // outputs): four rows narrowed together.
                const bool quad = !two && left0 == 16;
                if (left1 >= 16 || e.pack_bits || quad) {
                        // 32 u8 columns, or 4-bit ones: rows in pairs, packed
                        // together; 16 columns: rows in fours.
                        const __m512 mv1 = _mm512_maskz_loadu_ps(k1, e.mul + n1), av1 = _mm512_maskz_loadu_ps(k1, e.add + n1);
                        __m512i y0[MR], y1[MR];
                        auto rows = [&](auto lo0, auto hi_bytes) {
                                constexpr bool LO0 = decltype(lo0)::value, HI_BYTES = decltype(hi_bytes)::value;
                                _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
                                        y0[r] = folded16<LO0, HI_BYTES>(acc0[r], mv0, av0, lo, hi, res(r, n0), k0 & r0, inv);
                                        // A last slice of up to 16 columns (4-bit
                                        // outputs) has no second group to finish.
                                        y1[r] = two ? folded16<LO0, HI_BYTES>(acc1[r], mv1, av1, lo, hi, res(r, n1), k1 & r1, inv)
                                                    : zero;
                                }
                        };
                        // Values within int32: the upper bound as a byte
                        // minimum after the narrowing, one per 64 outputs
                        // instead of a vminps per 16.
                        const bool hi_bytes = !RES && e.bounded;
                        if (e.o->lo == 0.0f && hi_bytes)
                                rows(std::true_type{}, std::true_type{});
                        else if (e.o->lo == 0.0f)
                                rows(std::true_type{}, std::false_type{});
                        else if (hi_bytes)
                                rows(std::false_type{}, std::true_type{});
                        else
                                rows(std::false_type{}, std::false_type{});
                        // Two rows' bytes, their upper bound applied (a no-op
                        // without HI_BYTES: vminps did it).
                        const __m512i hb = _mm512_set1_epi8(char(hi_bytes ? bound_byte(e.o->hi) : 255));
                        auto bytes2 = [&](int r, __m512i c0, __m512i c1) {
                                return _mm512_min_epu8(rows32_bytes(y0[r], y1[r], c0, c1), hb);
                        };
                        if (quad) {
                                // rows32_bytes of four rows' one vector each:
                                // rows r..r+3 in bytes 0-15, 16-31, 32-47, 48-63.
                                auto y = [&](int r) { return r < MR ? y0[r] : zero; };
                                _Pragma("GCC unroll 2") for (int r = 0; r < MR; r += 4) {
                                        const __m512i b = _mm512_min_epu8(rows32_bytes(y(r), y(r + 1), y(r + 2), y(r + 3)), hb);
                                        const int n = MR - r < 4 ? MR - r : 4;
                                        if (e.pack_bits)
                                                store_packed4_rows16x4(b, q + (e.pack_first + (m0 + r) * e.ldq + n0) / 2, e.ldq / 2, n);
                                        else
                                                store_rows16x4(b, q + (m0 + r) * e.ldq + n0, e.ldq, n);
                                }
                                return;
                        }
                        if (e.pack_bits) {  // 4 bits (gemm_packs)
                                auto dst = [&](int r) { return q + (e.pack_first + (m0 + r) * e.ldq + n0) / 2; };
                                const size_t bytes = (left0 < 32 ? left0 : 32) / 2;
                                _Pragma("GCC unroll 4") for (int r = 0; r + 1 < MR; r += 2)
                                        store_packed4_rows32(bytes2(r, y0[r + 1], y1[r + 1]), dst(r), dst(r + 1), bytes);
                                if (MR % 2)
                                        store_packed4_rows32(bytes2(MR - 1, zero, zero), dst(MR - 1), nullptr, bytes);
                                return;
                        }
                        Q *d = q + m0 * e.ldq + n0;
                        _Pragma("GCC unroll 4") for (int r = 0; r + 1 < MR; r += 2)
                                store_rows32(d + r * e.ldq, d + (r + 1) * e.ldq, bytes2(r, y0[r + 1], y1[r + 1]));
                        if (MR % 2)
                                _mm256_storeu_si256(reinterpret_cast<__m256i *>(d + (MR - 1) * e.ldq),
                                                    _mm512_castsi512_si256(bytes2(MR - 1, zero, zero)));
                        return;
                }
        }
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++)
                finish16(acc0[r], zero, mv0, av0, lo, hi, q + (m0 + r) * e.ldq + n0, k0, left0 >= 16, res(r, n0), r0, inv);
        if (two) {
                const __m512 mv1 = _mm512_maskz_loadu_ps(k1, e.mul + n1), av1 = _mm512_maskz_loadu_ps(k1, e.add + n1);
                _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++)
                        finish16(acc1[r], zero, mv1, av1, lo, hi, q + (m0 + r) * e.ldq + n1, k1, left1 >= 16, res(r, n1), r1, inv);
        }
}

template <bool RES, typename Q>
static void gemm_epilogue_fused(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, const GemmEpilogue &e, Q *q)
{
        for_tiles(M, N,
                  [&](auto rows, size_t m, size_t n0) { tile_epilogue<decltype(rows)::value, RES>(A, m, B, K4, N, n0, e, q); });
}

template <typename Q>
static void gemm_epilogue_fused(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, const GemmEpilogue &e, Q *q)
{
        if (e.res.res)
                gemm_epilogue_fused<true>(A, M, B, K4, N, e, q);
        else
                gemm_epilogue_fused<false>(A, M, B, K4, N, e, q);
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
                epilogue_u8_avx512(C, ldc, M, N, e.off, e.mul, e.add, e.act, *e.o, e.q8, e.ldq, e.res);
        else
                epilogue_u16_avx512(C, ldc, M, N, e.off, e.mul, e.add, e.act, *e.o, e.q16, e.ldq, e.res);
}

// Weight sums of 16 channels per step: vpdpbusd against bytes of 1 adds
// each channel's four weights of a K block into its int32 lane (2^16
// blocks of |w| <= 128 per int32 piece), pieces summed in int64.  Four
// chains of K blocks, not one: a single chain waits out vpdpbusd's latency
// on every block (a 1024 x 1024 layer's 1 MB took 24 us, against its
// 2-thread time of some 340).  The least byte seen answers the -128
// question on the way.
bool column_sums_avx512(const int8_t *B, size_t K4, size_t N, int64_t *sums)
{
        const size_t KB = K4 / 4;
        const __m512i ones = _mm512_set1_epi8(1);
        __m512i least = _mm512_set1_epi8(127);
        for (size_t nb = 0; nb * 16 < N; nb++) {
                const int8_t *block = B + nb * K4 * 16;
                __m512i lo = _mm512_setzero_si512(), hi = lo;
                for (size_t kb0 = 0; kb0 < KB; kb0 += 65536) {
                        const size_t kb1 = KB - kb0 < 65536 ? KB : kb0 + 65536;
                        __m512i p[4] = {_mm512_setzero_si512(), _mm512_setzero_si512(), _mm512_setzero_si512(),
                                        _mm512_setzero_si512()};
                        size_t kb = kb0;
                        for (; kb + 4 <= kb1; kb += 4) {
                                __m512i w[4];
                                _Pragma("GCC unroll 4") for (int j = 0; j < 4; j++) {
                                        w[j] = _mm512_loadu_si512(block + (kb + j) * 64);
                                        p[j] = _mm512_dpbusd_epi32(p[j], ones, w[j]);
                                }
                                least = _mm512_min_epi8(least, _mm512_min_epi8(_mm512_min_epi8(w[0], w[1]), _mm512_min_epi8(w[2], w[3])));
                        }
                        for (; kb < kb1; kb++) {
                                const __m512i w = _mm512_loadu_si512(block + kb * 64);
                                p[0] = _mm512_dpbusd_epi32(p[0], ones, w);
                                least = _mm512_min_epi8(least, w);
                        }
                        // 4 x 2^14 blocks of 4 x 128 at most: within int32.
                        const __m512i part = _mm512_add_epi32(_mm512_add_epi32(p[0], p[1]), _mm512_add_epi32(p[2], p[3]));
                        lo = _mm512_add_epi64(lo, _mm512_cvtepi32_epi64(_mm512_castsi512_si256(part)));
                        hi = _mm512_add_epi64(hi, _mm512_cvtepi32_epi64(_mm512_extracti64x4_epi64(part, 1)));
                }
                const size_t left = N - nb * 16;
                const __mmask8 m0 = left >= 8 ? __mmask8(0xff) : __mmask8((1u << left) - 1);
                const __mmask8 m1 = left >= 16 ? __mmask8(0xff) : left > 8 ? __mmask8((1u << (left - 8)) - 1) : 0;
                _mm512_mask_storeu_epi64(sums + nb * 16, m0, lo);
                _mm512_mask_storeu_epi64(sums + nb * 16 + 8, m1, hi);
        }
        return _mm512_cmpeq_epi8_mask(least, _mm512_set1_epi8(-128)) != 0;
}

} // namespace npuref

// u8 x s8 GEMM and depthwise rows with AVX2 (no VNNI), exact, with the
// folded epilogue in registers.
//
// The AVX2 multiply-add of bytes, vpmaddubsw, adds two u8 x s8 products
// into an int16 with saturation: exact while a pair's sum fits, that is
// for activations below 128 (127 * 128 * 2 = 32512), which 4- and 6-bit
// inputs always are.  vpmaddwd against ones then widens the pairs into the
// int32 sums.  Activations of up to 255 are shifted by 128 to s = a - 128
// and multiplied as |s| times w with s's sign (vpsignb): |s| <= 128 and
// |w| <= 127 keep every pair inside int16, and the shift comes back as 128
// times each column's weight sum (the layer's, GemmEpilogue::sums128, or
// summed here).  A weight of -128 (which vpsignb cannot negate) sends its
// 16-column slice to the widening kernel: both bytes widened to int16 and
// multiplied pairwise with vpmaddwd.
//
// Bytes below 64 (4 and 6 bits) add two K blocks' pairs in int16 (2 x
// 63 x 128 x 2 = 32256 fits) before widening, so a lower depth takes fewer
// instructions than 8 bits, not more.  The depthwise rows do the same
// below 128 (four taps of a channel gathered into a dword) and multiply
// int16 pairs of any bytes with vpmaddwd otherwise; a last block of fewer
// than 16 channels reads them with masks or shifts (Part), not copies.
// 16-bit inputs are read as u16, shifted into int16 and multiplied in
// pairs with vpmaddwd (depthwise16_block, and the 16-bit GEMM's sums16),
// not split into two byte planes.
#include <immintrin.h>

#include <algorithm>
#include <cstring>
#include <type_traits>
#include <vector>

#include "kernels.h"
#include "per_thread.h"
#include "gemm16.h"

namespace npuref {

namespace {

// How a slice's products are formed (see the file's comment).
enum class Mode { Small2, Small, Sign, SignPre };

constexpr int kMR = 4;  // rows per register tile (16 columns: 2 x 8 int32 each)

inline __m256i bcast4(const uint8_t *p)
{
        int32_t v;
        std::memcpy(&v, p, 4);
        return _mm256_set1_epi32(v);
}

// The sums of an MR x 16 tile over A's K blocks, added to init (per column).
// SignPre reads |a - 128| at A's bytes and a - 128 at `delta` bytes on
// (sign_planes), instead of forming them from a.
template <Mode MODE, int MR>
inline __attribute__((always_inline)) void accumulate(const GemmA &A, size_t m0, const int8_t *b0, __m256i init0,
                                                      __m256i init1, __m256i (&acc)[MR][2], ptrdiff_t delta = 0)
{
        const size_t lda = A.lda;
        const __m256i ones = _mm256_set1_epi16(1), x80 = _mm256_set1_epi8(-128);
        _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++) {
                acc[r][0] = init0;
                acc[r][1] = init1;
        }
        for (unsigned t = 0; t < A.taps; t++) {
                const uint8_t *a = A.base + m0 * lda + A.tap_off[t];
                const int8_t *b = b0 + t * A.kbt * 64;
                size_t kb = 0;
                if constexpr (MODE == Mode::Small2) {
                        for (; kb + 2 <= A.kbt; kb += 2) {
                                const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(b + kb * 64));
                                const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(b + kb * 64 + 32));
                                const __m256i w2 = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(b + kb * 64 + 64));
                                const __m256i w3 = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(b + kb * 64 + 96));
                                _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++) {
                                        const __m256i u0 = bcast4(a + r * lda + 4 * kb), u1 = bcast4(a + r * lda + 4 * kb + 4);
                                        const __m256i p0 = _mm256_add_epi16(_mm256_maddubs_epi16(u0, w0), _mm256_maddubs_epi16(u1, w2));
                                        const __m256i p1 = _mm256_add_epi16(_mm256_maddubs_epi16(u0, w1), _mm256_maddubs_epi16(u1, w3));
                                        acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(p0, ones));
                                        acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(p1, ones));
                                }
                        }
                }
                for (; kb < A.kbt; kb++) {
                        const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(b + kb * 64));
                        const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(b + kb * 64 + 32));
                        _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++) {
                                __m256i u = bcast4(a + r * lda + 4 * kb), v0 = w0, v1 = w1;
                                if constexpr (MODE == Mode::Sign) {
                                        const __m256i s = _mm256_xor_si256(u, x80);
                                        u = _mm256_abs_epi8(s);
                                        v0 = _mm256_sign_epi8(w0, s);
                                        v1 = _mm256_sign_epi8(w1, s);
                                } else if constexpr (MODE == Mode::SignPre) {
                                        const __m256i s = bcast4(a + r * lda + 4 * kb + delta);
                                        v0 = _mm256_sign_epi8(w0, s);
                                        v1 = _mm256_sign_epi8(w1, s);
                                }
                                acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(_mm256_maddubs_epi16(u, v0), ones));
                                acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(_mm256_maddubs_epi16(u, v1), ones));
                        }
                }
        }
}

// 128 times the weight sums of one 16-column slice over nkb K blocks (int32
// wraps alike), and whether any of its weights is -128.
inline bool slice_sums128(const int8_t *b0, size_t nkb, __m256i &s0, __m256i &s1)
{
        const __m256i u128 = _mm256_set1_epi8(-128), ones = _mm256_set1_epi16(1);
        __m256i any = _mm256_setzero_si256();
        s0 = s1 = _mm256_setzero_si256();
        for (size_t kb = 0; kb < nkb; kb++) {
                const __m256i w0 = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(b0 + kb * 64));
                const __m256i w1 = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(b0 + kb * 64 + 32));
                // 128 x w pairs: at most 2 x 128 x 128 = 32768 in size, which
                // only two -128s reach (-32768 fits; their slice is not used).
                s0 = _mm256_add_epi32(s0, _mm256_madd_epi16(_mm256_maddubs_epi16(u128, w0), ones));
                s1 = _mm256_add_epi32(s1, _mm256_madd_epi16(_mm256_maddubs_epi16(u128, w1), ones));
                any = _mm256_or_si256(any, _mm256_or_si256(_mm256_cmpeq_epi8(w0, u128), _mm256_cmpeq_epi8(w1, u128)));
        }
        return !_mm256_testz_si256(any, any);
}

// The widening kernel's MR x 16 tile (any bytes, any weights), C stored.
template <int MR>
inline void widened_tile(const GemmA &A, size_t m0, const int8_t *b0, int32_t *C, size_t ldc, size_t left)
{
        const size_t lda = A.lda;
        // acc[r][q]: int32 pair sums for channels 4q..4q+3 (two per channel).
        __m256i acc[MR][4];
        _Pragma("GCC unroll 2") for (int r = 0; r < MR; r++)
                _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
                        acc[r][q] = _mm256_setzero_si256();
        for (unsigned t = 0; t < A.taps; t++) {
                const uint8_t *at = A.base + m0 * lda + A.tap_off[t];
                const int8_t *b = b0 + t * A.kbt * 64;
                for (size_t kb = 0; kb < A.kbt; kb++) {
                        __m256i w[4];
                        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
                                w[q] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(b + kb * 64 + 16 * q)));
                        _Pragma("GCC unroll 2") for (int r = 0; r < MR; r++) {
                                const __m256i a = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(bcast4(at + r * lda + 4 * kb)));
                                _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
                                        acc[r][q] = _mm256_add_epi32(acc[r][q], _mm256_madd_epi16(a, w[q]));
                        }
                }
        }
        _Pragma("GCC unroll 2") for (int r = 0; r < MR; r++) {
                alignas(32) int32_t t[32];
                _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
                        _mm256_store_si256(reinterpret_cast<__m256i *>(t + 8 * q), acc[r][q]);
                for (size_t n = 0; n < left; n++)
                        C[r * ldc + n] = t[2 * n] + t[2 * n + 1];
        }
}

// Rows [0, M) in tiles of kMR, the last rows in one tile of their own.
template <typename Tile> inline void for_rows(size_t M, Tile tile)
{
        size_t m = 0;
        for (; m + kMR <= M; m += kMR)
                tile(std::integral_constant<int, kMR>{}, m);
        switch (M - m) {
        case 3: tile(std::integral_constant<int, 3>{}, m); break;
        case 2: tile(std::integral_constant<int, 2>{}, m); break;
        case 1: tile(std::integral_constant<int, 1>{}, m); break;
        default: break;
        }
}

// Eight int64 values known to fit int32, narrowed (lanes off in k: 0).
// In registers: a vector load of eight scalar stores would wait for them.
inline __m256i narrow8(const int64_t *p, __m256i k)
{
        const __m256 a = _mm256_castsi256_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p)));
        const __m256 b = _mm256_castsi256_ps(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(p + 4)));
        // Low dwords: a0 a1 b0 b1 | a2 a3 b2 b3, then in order.
        const __m256i lo = _mm256_castps_si256(_mm256_shuffle_ps(a, b, _MM_SHUFFLE(2, 0, 2, 0)));
        return _mm256_and_si256(_mm256_permute4x64_epi64(lo, 0xd8), k);
}

// The 8-lane column mask of columns [j, j + 8) when `left` remain.
inline __m256i lanes_mask(size_t left, size_t j)
{
        const __m256i idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
        const int n = left > j ? int(left - j < 8 ? left - j : 8) : 0;
        return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), idx);
}

// The bytes A's rows read, as |a - 128| followed by a - 128 (the same
// length on), into thread-local scratch: formed once for all the GEMM's
// column slices instead of in every slice's inner loop.  False (nothing
// formed) where the rows read much less than the span they cover.
struct SignPlanes {
        std::vector<uint8_t> bytes;
        std::vector<ptrdiff_t> taps;
};

inline bool sign_planes(const GemmA &A, size_t M, GemmA &out, ptrdiff_t &delta)
{
        ptrdiff_t lo;
        size_t span;
        if (!read_span(A, M, 4 * A.kbt, lo, span))
                return false;
        SignPlanes &sp = PerThread<SignPlanes>::get();
        const uint8_t *src = A.base + lo;
        uint8_t *u = grown(sp.bytes, 2 * span + 32), *s = u + span;
        const __m256i x80 = _mm256_set1_epi8(-128);
        size_t i = 0;
        for (; i + 32 <= span; i += 32) {
                const __m256i v = _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(src + i)), x80);
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(u + i), _mm256_abs_epi8(v));
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(s + i), v);
        }
        for (; i < span; i++) {
                const int8_t v = int8_t(src[i] ^ 0x80);
                u[i] = uint8_t(v < 0 ? -v : v);
                s[i] = uint8_t(v);
        }
        out = moved(A, lo, u, sp.taps);
        delta = ptrdiff_t(span);
        return true;
}

// Each 16-column slice of the GEMM: its mode chosen, then tile(mode, rows,
// m, n0, init0, init1, A, delta) for its row tiles (A as the tile reads
// it), or widened(n0) for a slice the byte kernels cannot take.
// sums128: GemmEpilogue's (null: each slice's weights are summed here).
template <typename Tile, typename Widened>
inline void for_slices(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, size_t kb0, const int32_t *sums128,
                       Tile tile, Widened widened)
{
        const __m256i zero = _mm256_setzero_si256();
        // Bytes up to 255 with more than one slice: their sign planes once.
        GemmA P;
        ptrdiff_t delta = 0;
        const bool pre = A.amax >= 128 && N > 16 && sign_planes(A, M, P, delta);
        for (size_t n0 = 0; n0 < N; n0 += 16) {
                const int8_t *b0 = B + (n0 / 16) * K4 * 16 + kb0 * 64;
                auto rows_of = [&](auto mode, const GemmA &a, __m256i i0, __m256i i1) {
                        for_rows(M, [&](auto rows, size_t m) { tile(mode, rows, m, n0, i0, i1, a, delta); });
                };
                if (A.amax < 64) {
                        rows_of(std::integral_constant<Mode, Mode::Small2>{}, A, zero, zero);
                } else if (A.amax < 128) {
                        rows_of(std::integral_constant<Mode, Mode::Small>{}, A, zero, zero);
                } else {
                        __m256i s0, s1;
                        if (sums128) {
                                s0 = _mm256_maskload_epi32(sums128 + n0, lanes_mask(N - n0, 0));
                                s1 = _mm256_maskload_epi32(sums128 + n0 + 8, lanes_mask(N - n0, 8));
                        }
                        if (!sums128 && slice_sums128(b0, A.taps * A.kbt, s0, s1))
                                widened(n0);
                        else if (pre)
                                rows_of(std::integral_constant<Mode, Mode::SignPre>{}, P, s0, s1);
                        else
                                rows_of(std::integral_constant<Mode, Mode::Sign>{}, A, s0, s1);
                }
        }
}

void gemm_widened(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, size_t n0, size_t kb0, int32_t *C,
                  size_t ldc)
{
        const int8_t *b0 = B + (n0 / 16) * K4 * 16 + kb0 * 64;
        const size_t left = N - n0 < 16 ? N - n0 : 16;
        size_t m = 0;
        for (; m + 2 <= M; m += 2)
                widened_tile<2>(A, m, b0, C + m * ldc + n0, ldc, left);
        if (m < M)
                widened_tile<1>(A, m, b0, C + m * ldc + n0, ldc, left);
}

// The folded epilogue of 16 columns of one row in registers, as
// epilogue.cpp's: y = fma(float(acc), mul, add) (the zero-point term
// already in acc), the residual's fma, the clamp (vmaxps gives its second
// operand, lo, for NaN), rounding in the current mode, saturating packs.
struct Folded16 {
        __m256 m0, m1, a0, a1, lo, hi, inv;
        __m256i k0, k1, rk0, rk1;  // lanes of the columns, and of the residual's
        size_t left, rleft;

        // Partial rows of whole dwords (left a multiple of 4 bytes at u8, of
        // 2 at u16) are stored with dword masks, others through memcpy.
        __m128i store8;
        __m256i store16;

        Folded16(const GemmEpilogue &e, size_t n0, size_t N)
        {
                left = N - n0 < 16 ? N - n0 : 16;
                store8 = _mm256_castsi256_si128(lanes_mask(left % 4 ? 0 : left / 4, 0));
                store16 = lanes_mask(left % 2 ? 0 : left / 2, 0);
                rleft = e.res.cols_from(n0);
                k0 = lanes_mask(left, 0);
                k1 = lanes_mask(left, 8);
                rk0 = lanes_mask(rleft, 0);
                rk1 = lanes_mask(rleft, 8);
                m0 = _mm256_maskload_ps(e.mul + n0, k0);
                m1 = _mm256_maskload_ps(e.mul + n0 + 8, k1);
                a0 = _mm256_maskload_ps(e.add + n0, k0);
                a1 = _mm256_maskload_ps(e.add + n0 + 8, k1);
                lo = _mm256_set1_ps(e.o->lo);
                hi = _mm256_set1_ps(e.o->hi);
                inv = _mm256_set1_ps(e.o->inv);
        }

        // The 16 columns' values, clamped, before rounding.
        inline void values(__m256i acc0, __m256i acc1, const float *res, __m256 &y0, __m256 &y1) const
        {
                values(_mm256_cvtepi32_ps(acc0), _mm256_cvtepi32_ps(acc1), res, y0, y1);
        }
        // The same from the sums already rounded to float.
        inline void values(__m256 s0, __m256 s1, const float *res, __m256 &y0, __m256 &y1) const
        {
                y0 = _mm256_fmadd_ps(s0, m0, a0);
                y1 = _mm256_fmadd_ps(s1, m1, a1);
                if (res) {
                        y0 = _mm256_fmadd_ps(_mm256_maskload_ps(res, _mm256_and_si256(k0, rk0)), inv, y0);
                        y1 = _mm256_fmadd_ps(_mm256_maskload_ps(res + 8, _mm256_and_si256(k1, rk1)), inv, y1);
                }
                y0 = _mm256_min_ps(_mm256_max_ps(y0, lo), hi);
                y1 = _mm256_min_ps(_mm256_max_ps(y1, lo), hi);
        }

        // One row's outputs from its int32 sums (ACC __m256i) or float sums (__m256).
        template <typename Q, typename ACC> inline void row(ACC acc0, ACC acc1, const float *res, Q *q) const
        {
                __m256 y0, y1;
                values(acc0, acc1, res, y0, y1);
                // Columns 0-15 as u16, in order.
                const __m256i w = _mm256_permute4x64_epi64(_mm256_packus_epi32(_mm256_cvtps_epi32(y0), _mm256_cvtps_epi32(y1)), 0xd8);
                if constexpr (std::is_same_v<Q, uint8_t>) {
                        const __m128i b = _mm_packus_epi16(_mm256_castsi256_si128(w), _mm256_extracti128_si256(w, 1));
                        if (left == 16)
                                _mm_storeu_si128(reinterpret_cast<__m128i *>(q), b);
                        else if (left % 4 == 0)
                                _mm_maskstore_epi32(reinterpret_cast<int *>(q), store8, b);
                        else {
                                alignas(16) uint8_t t[16];
                                _mm_store_si128(reinterpret_cast<__m128i *>(t), b);
                                std::memcpy(q, t, left);
                        }
                } else {
                        if (left == 16)
                                _mm256_storeu_si256(reinterpret_cast<__m256i *>(q), w);
                        else if (left % 2 == 0)
                                _mm256_maskstore_epi32(reinterpret_cast<int *>(q), store16, w);
                        else {
                                alignas(32) uint16_t t[16];
                                _mm256_store_si256(reinterpret_cast<__m256i *>(t), w);
                                std::memcpy(q, t, left * 2);
                        }
                }
        }
};

// 32 columns of u8 outputs of one row, all present (f0: columns 0-15, f1:
// 16-31, acc in column order), packed in registers and stored at once.
inline void row32(const Folded16 &f0, const Folded16 &f1, const __m256i (&acc)[4], uint8_t *q)
{
        __m256 y[4];
        f0.values(acc[0], acc[1], nullptr, y[0], y[1]);
        f1.values(acc[2], acc[3], nullptr, y[2], y[3]);
        const __m256i p01 = _mm256_packus_epi32(_mm256_cvtps_epi32(y[0]), _mm256_cvtps_epi32(y[1]));
        const __m256i p23 = _mm256_packus_epi32(_mm256_cvtps_epi32(y[2]), _mm256_cvtps_epi32(y[3]));
        // Dwords of columns 0-3, 8-11, 16-19, 24-27 | 4-7, 12-15, 20-23, 28-31.
        const __m256i b = _mm256_packus_epi16(p01, p23);
        _mm256_storeu_si256(reinterpret_cast<__m256i *>(q), _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7)));
}
inline void row32(const Folded16 &f0, const Folded16 &f1, const __m256i (&acc)[4], uint16_t *q)
{
        f0.row(acc[0], acc[1], nullptr, q);
        f1.row(acc[2], acc[3], nullptr, q + 16);
}

template <typename Q>
void gemm_epilogue_fused(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, const GemmEpilogue &e, Q *q,
                         int32_t *C, size_t ldc)
{
        for_slices(
                A, M, B, K4, N, 0, e.sums128,
                [&, f = Folded16(e, 0, N), start0 = __m256i(), start1 = __m256i()](
                        auto mode, auto rows, size_t m, size_t n0, __m256i init0, __m256i init1, const GemmA &a,
                        ptrdiff_t delta) mutable {
                        constexpr int MR = decltype(rows)::value;
                        if (m == 0) {  // a new slice: its constants, and the zero-point term
                                       // starting its sums (int32 wraps alike either way)
                                f = Folded16(e, n0, N);
                                start0 = e.off ? _mm256_sub_epi32(init0, _mm256_maskload_epi32(e.off + n0, f.k0)) : init0;
                                start1 = e.off ? _mm256_sub_epi32(init1, _mm256_maskload_epi32(e.off + n0 + 8, f.k1)) : init1;
                        }
                        __m256i acc[MR][2];
                        accumulate<decltype(mode)::value, MR>(a, m, B + (n0 / 16) * K4 * 16, start0, start1, acc, delta);
                        _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++)
                                f.row(acc[r][0], acc[r][1], e.res.res ? e.res.res + (m + r) * e.res.ldr + n0 : nullptr,
                                      q + (m + r) * e.ldq + n0);
                },
                [&](size_t n0) {
                        // The slice's sums through C, then the generic epilogue.
                        const size_t left = N - n0 < 16 ? N - n0 : 16;
                        gemm_widened(A, M, B, K4, N, n0, 0, C, ldc);
                        epilogue_tile(C + n0, ldc, M, left, e.off ? e.off + n0 : nullptr, e.mul + n0, e.add + n0, e.act, *e.o,
                                      q + n0, e.ldq, e.res.at(0, n0));
                });
}

// Depthwise rows with the folded epilogue: 16 channels by four output
// pixels at a time.  Two taps' bytes of a channel share a 32-bit lane as
// int16, so one vpmaddwd adds both products (exact: 255 x 128 fits);
// unpacking the two taps' 16 channels puts channels 0-3 and 8-11 in one
// register and 4-7 and 12-15 in the other, the weights likewise.
inline __m128i load16(const uint8_t *p, size_t left);

struct DwTaps {
        static constexpr unsigned kMax = 32;
        alignas(32) int16_t w[kMax / 2][2][16];  // per tap pair: the two registers' weights

        // Channels [c, c + 16) of weights [taps][C], zero past C.
        DwTaps(const int8_t *wts, unsigned taps, size_t C, size_t c)
        {
                const size_t left = C - c;
                for (unsigned p = 0; p < (taps + 1) / 2; p++) {
                        const unsigned t0 = 2 * p, t1 = t0 + 1;
                        const __m128i w0 = load16(reinterpret_cast<const uint8_t *>(wts + size_t(t0) * C + c), left);
                        const __m128i w1 = t1 < taps ? load16(reinterpret_cast<const uint8_t *>(wts + size_t(t1) * C + c), left)
                                                     : _mm_setzero_si128();
                        const __m256i a = _mm256_cvtepi8_epi16(w0), b = _mm256_cvtepi8_epi16(w1);
                        _mm256_store_si256(reinterpret_cast<__m256i *>(w[p][0]), _mm256_unpacklo_epi16(a, b));
                        _mm256_store_si256(reinterpret_cast<__m256i *>(w[p][1]), _mm256_unpackhi_epi16(a, b));
                }
        }
};

inline __m128i load16(const uint8_t *p, size_t left)
{
        if (left >= 16)
                return _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
        alignas(16) uint8_t t[16] = {};
        std::memcpy(t, p, left);
        return _mm_load_si128(reinterpret_cast<const __m128i *>(t));
}

// How a 16-channel depthwise block reads its pixels' bytes: all 16; fewer
// in whole dwords (a masked load); fewer, from the 16 bytes that end where
// the block does (the pixel's earlier channels, shifted down); or through
// a copy.  Lanes past the block's channels are zero but for Dwords, whose
// weights there are zero.
enum class Part { Full, Dwords, Back, Copy };

struct PartLoad {
        size_t left;
        __m128i dwords, shift;

        explicit PartLoad(size_t left_) : left(left_)
        {
                dwords = _mm256_castsi256_si128(lanes_mask(left / 4, 0));
                alignas(16) int8_t t[16];
                for (size_t i = 0; i < 16; i++)
                        t[i] = int8_t(i < left ? int(i + 16 - left) : -128);
                shift = _mm_load_si128(reinterpret_cast<const __m128i *>(t));
        }

        template <Part P> inline __m128i load(const uint8_t *p) const
        {
                if constexpr (P == Part::Full)
                        return _mm_loadu_si128(reinterpret_cast<const __m128i *>(p));
                else if constexpr (P == Part::Dwords)
                        return _mm_maskload_epi32(reinterpret_cast<const int *>(p), dwords);
                else if constexpr (P == Part::Back)
                        return _mm_shuffle_epi8(_mm_loadu_si128(reinterpret_cast<const __m128i *>(p + left - 16)), shift);
                else
                        return load16(p, left);
        }
};

inline void dw_pair(__m128i x0, __m128i x1, __m256i &lo, __m256i &hi)
{
        const __m256i a = _mm256_cvtepu8_epi16(x0), b = _mm256_cvtepu8_epi16(x1);
        lo = _mm256_unpacklo_epi16(a, b);
        hi = _mm256_unpackhi_epi16(a, b);
}

// The sums of NP pixels (stride step) from x, 16 channels read as P says,
// over the taps in pairs.
template <int NP, Part P>
inline __attribute__((always_inline)) void dw_sums(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps,
                                                   const DwTaps &wt, const PartLoad &pl, __m256i start_lo, __m256i start_hi,
                                                   __m256i (&lo)[NP], __m256i (&hi)[NP])
{
        _Pragma("GCC unroll 4") for (int i = 0; i < NP; i++) {
                lo[i] = start_lo;
                hi[i] = start_hi;
        }
        const unsigned pairs = (taps + 1) / 2;
        for (unsigned p = 0; p < pairs; p++) {
                const ptrdiff_t d0 = tap_off[2 * p], d1 = 2 * p + 1 < taps ? tap_off[2 * p + 1] : d0;
                const __m256i wl = _mm256_load_si256(reinterpret_cast<const __m256i *>(wt.w[p][0]));
                const __m256i wh = _mm256_load_si256(reinterpret_cast<const __m256i *>(wt.w[p][1]));
                _Pragma("GCC unroll 4") for (int i = 0; i < NP; i++) {
                        const uint8_t *xp = x + i * step;
                        __m256i l, h;
                        dw_pair(pl.load<P>(xp + d0), pl.load<P>(xp + d1), l, h);
                        lo[i] = _mm256_add_epi32(lo[i], _mm256_madd_epi16(l, wl));
                        hi[i] = _mm256_add_epi32(hi[i], _mm256_madd_epi16(h, wh));
                }
        }
}

// Channels [c, c + 16) of count pixels, of which `left` exist (P: how
// they are read).
template <Part P, typename Q>
inline void depthwise_block(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                            size_t C, size_t c, size_t count, const GemmEpilogue &e, Q *q)
{
        const size_t left = C - c;
        const DwTaps wt(w, taps, C, c);
        const Folded16 f(e, c, C);
        const PartLoad pl(left);
        // The zero-point terms, negated, in the two lane orders (channels 0-3 |
        // 8-11 and 4-7 | 12-15), start the sums.
        const __m256i zero = _mm256_setzero_si256();
        const __m256i o0 = _mm256_sub_epi32(zero, _mm256_maskload_epi32(e.off + c, f.k0));
        const __m256i o1 = _mm256_sub_epi32(zero, _mm256_maskload_epi32(e.off + c + 8, f.k1));
        const __m256i start_lo = _mm256_permute2x128_si256(o0, o1, 0x20), start_hi = _mm256_permute2x128_si256(o0, o1, 0x31);
        // Channels 0-7 and 8-15 in order from the two lane orders.
        auto finish = [&](__m256i lo, __m256i hi, Q *d) {
                f.row(_mm256_permute2x128_si256(lo, hi, 0x20), _mm256_permute2x128_si256(lo, hi, 0x31), nullptr, d);
        };
        size_t j = 0;
        for (; j + 4 <= count; j += 4) {
                __m256i lo[4], hi[4];
                dw_sums<4, P>(x + j * step + c, step, tap_off, taps, wt, pl, start_lo, start_hi, lo, hi);
                _Pragma("GCC unroll 4") for (int i = 0; i < 4; i++) finish(lo[i], hi[i], q + (j + i) * e.ldq + c);
        }
        for (; j < count; j++) {
                __m256i lo[1], hi[1];
                dw_sums<1, P>(x + j * step + c, step, tap_off, taps, wt, pl, start_lo, start_hi, lo, hi);
                finish(lo[0], hi[0], q + j * e.ldq + c);
        }
}

// Inputs below 128 (4 and 6 bits): 32 channels at a time as bytes, four
// taps of a channel gathered into one dword (two byte unpacks and one word
// unpack), so vpmaddubsw and vpmaddwd against ones add the four products as
// the GEMM's byte kernel does (exact below 128).  The unpacks leave
// channels 0-3 | 16-19, 4-7 | 20-23, 8-11 | 24-27 and 12-15 | 28-31 in the
// four registers; the weights are gathered the same way once per block.
struct DwQuads {
        static constexpr unsigned kMax = 32;
        alignas(32) int8_t w[kMax / 4][4][32];
};

// The four registers of 32 channels x 4 taps from four tap vectors.
inline void dw_quads(__m256i t0, __m256i t1, __m256i t2, __m256i t3, __m256i (&q)[4])
{
        const __m256i lo01 = _mm256_unpacklo_epi8(t0, t1), hi01 = _mm256_unpackhi_epi8(t0, t1);
        const __m256i lo23 = _mm256_unpacklo_epi8(t2, t3), hi23 = _mm256_unpackhi_epi8(t2, t3);
        q[0] = _mm256_unpacklo_epi16(lo01, lo23);
        q[1] = _mm256_unpackhi_epi16(lo01, lo23);
        q[2] = _mm256_unpacklo_epi16(hi01, hi23);
        q[3] = _mm256_unpackhi_epi16(hi01, hi23);
}

template <int NP>
inline __attribute__((always_inline)) void dw_sums_quads(const uint8_t *x, size_t step, const ptrdiff_t *tap_off,
                                                         unsigned taps, const DwQuads &wt, const __m256i (&start)[4],
                                                         __m256i (&acc)[NP][4])
{
        const __m256i ones = _mm256_set1_epi16(1);
        _Pragma("GCC unroll 2") for (int i = 0; i < NP; i++)
                _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) acc[i][k] = start[k];
        const unsigned groups = (taps + 3) / 4;
        for (unsigned g = 0; g < groups; g++) {
                ptrdiff_t d[4];
                for (unsigned k = 0; k < 4; k++)
                        d[k] = 4 * g + k < taps ? tap_off[4 * g + k] : tap_off[0];  // zero weights there
                _Pragma("GCC unroll 2") for (int i = 0; i < NP; i++) {
                        const uint8_t *xp = x + i * step;
                        auto ld = [&](int k) { return _mm256_loadu_si256(reinterpret_cast<const __m256i *>(xp + d[k])); };
                        __m256i q[4];
                        dw_quads(ld(0), ld(1), ld(2), ld(3), q);
                        _Pragma("GCC unroll 4") for (int k = 0; k < 4; k++) {
                                const __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i *>(wt.w[g][k]));
                                acc[i][k] = _mm256_add_epi32(acc[i][k], _mm256_madd_epi16(_mm256_maddubs_epi16(q[k], w), ones));
                        }
                }
        }
}

// Whole 32-channel blocks [c, c + 32) of count pixels with bytes below 128.
template <typename Q>
void depthwise_quads(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w, size_t C,
                     size_t c, size_t count, const GemmEpilogue &e, Q *q)
{
        DwQuads wt;
        const unsigned groups = (taps + 3) / 4;
        for (unsigned g = 0; g < groups; g++) {
                auto tap = [&](unsigned t) {
                        return t < taps ? _mm256_loadu_si256(reinterpret_cast<const __m256i *>(w + size_t(t) * C + c))
                                        : _mm256_setzero_si256();
                };
                __m256i v[4];
                dw_quads(tap(4 * g), tap(4 * g + 1), tap(4 * g + 2), tap(4 * g + 3), v);
                for (int k = 0; k < 4; k++)
                        _mm256_store_si256(reinterpret_cast<__m256i *>(wt.w[g][k]), v[k]);
        }
        const Folded16 f0(e, c, C), f1(e, c + 16, C);
        // The zero-point terms, negated, in the accumulators' lane order
        // (columns 0-3 | 16-19, 4-7 | 20-23, 8-11 | 24-27, 12-15 | 28-31).
        __m256i o[4], start[4];
        for (int k = 0; k < 4; k++)
                o[k] = _mm256_sub_epi32(_mm256_setzero_si256(), _mm256_loadu_si256(reinterpret_cast<const __m256i *>(e.off + c + 8 * k)));
        start[0] = _mm256_permute2x128_si256(o[0], o[2], 0x20);
        start[1] = _mm256_permute2x128_si256(o[0], o[2], 0x31);
        start[2] = _mm256_permute2x128_si256(o[1], o[3], 0x20);
        start[3] = _mm256_permute2x128_si256(o[1], o[3], 0x31);
        auto finish = [&](const __m256i (&a)[4], Q *d) {
                const __m256i ordered[4] = {_mm256_permute2x128_si256(a[0], a[1], 0x20), _mm256_permute2x128_si256(a[2], a[3], 0x20),
                                            _mm256_permute2x128_si256(a[0], a[1], 0x31), _mm256_permute2x128_si256(a[2], a[3], 0x31)};
                row32(f0, f1, ordered, d);
        };
        size_t j = 0;
        for (; j + 2 <= count; j += 2) {
                __m256i acc[2][4];
                dw_sums_quads<2>(x + j * step + c, step, tap_off, taps, wt, start, acc);
                finish(acc[0], q + j * e.ldq + c);
                finish(acc[1], q + (j + 1) * e.ldq + c);
        }
        if (j < count) {
                __m256i acc[1][4];
                dw_sums_quads<1>(x + j * step + c, step, tap_off, taps, wt, start, acc);
                finish(acc[0], q + j * e.ldq + c);
        }
}

template <typename Q>
void depthwise_fused(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w, size_t C,
                     size_t count, const GemmEpilogue &e, Q *q, uint8_t xmax)
{
        size_t c = 0;
        if (xmax < 128)  // whole 32-channel blocks as bytes
                for (; c + 32 <= C; c += 32)
                        depthwise_quads(x, step, tap_off, taps, w, C, c, count, e, q);
        for (; c < C; c += 16)
                if (C - c >= 16)
                        depthwise_block<Part::Full>(x, step, tap_off, taps, w, C, c, count, e, q);
                else if ((C - c) % 4 == 0)
                        depthwise_block<Part::Dwords>(x, step, tap_off, taps, w, C, c, count, e, q);
                else if (c >= 16)  // the 16 bytes before the block's end are the pixel's
                        depthwise_block<Part::Back>(x, step, tap_off, taps, w, C, c, count, e, q);
                else
                        depthwise_block<Part::Copy>(x, step, tap_off, taps, w, C, c, count, e, q);
}

// 16-bit inputs (u16, little-endian) read as they are, not split into
// two byte planes: each value shifted by 32768 into int16 (x ^ 0x8000),
// two taps of a channel paired in a 32-bit lane as in depthwise_block, one
// vpmaddwd adding both products (2 x 32768 x 128 fits).  (32768 - z)
// times each channel's weight sum (GemmEpilogue::shift64) starts the sums,
// which are then those of (x - z) * w: exact in int32 up to 255 taps, so
// float(sum) is the wide epilogue's float of its int64.
enum class Part16 { Full, Dwords, Copy };

// SHIFTED: the values come shifted (x ^ 0x8000 done by the layer's copy).
template <Part16 P, bool SHIFTED> inline __m256i load16x16(const uint8_t *p, size_t left, __m256i dwords)
{
        const __m256i x8000 = _mm256_set1_epi16(-32768);
        __m256i v;
        if constexpr (P == Part16::Full) {
                v = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(p));
        } else if constexpr (P == Part16::Dwords) {
                v = _mm256_maskload_epi32(reinterpret_cast<const int *>(p), dwords);
        } else {
                alignas(32) uint16_t t[16] = {};
                std::memcpy(t, p, 2 * left);
                v = _mm256_load_si256(reinterpret_cast<const __m256i *>(t));
        }
        return SHIFTED ? v : _mm256_xor_si256(v, x8000);
}

// Channels [c, c + 16) of count pixels; with Q = int32_t the exact sums
// go to q (ldq C) for the generic epilogue instead.
template <Part16 P, bool SHIFTED, typename Q>
inline void depthwise16_block(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                              size_t C, size_t c, size_t count, const GemmEpilogue &e, Q *q)
{
        const size_t left = C - c;
        const DwTaps wt(w, taps, C, c);
        const __m256i k0 = lanes_mask(left, 0), k1 = lanes_mask(left, 8);
        // (32768 - z) x the weight sums (at most 2^15 x 32 x 128) start the
        // sums, in the lanes' order (channels 0-3 | 8-11 and 4-7 | 12-15).
        alignas(32) int64_t sh[16] = {};
        std::memcpy(sh, e.shift64 + c, 8 * (left < 16 ? left : 16));
        const __m256i o0 = narrow8(sh, k0), o1 = narrow8(sh + 8, k1);
        const __m256i start_lo = _mm256_permute2x128_si256(o0, o1, 0x20), start_hi = _mm256_permute2x128_si256(o0, o1, 0x31);
        const __m256i dwords = lanes_mask(left / 2, 0);
        const Folded16 f(e, c, C);
        auto finish = [&](__m256i lo, __m256i hi, Q *d) {
                const __m256i a0 = _mm256_permute2x128_si256(lo, hi, 0x20), a1 = _mm256_permute2x128_si256(lo, hi, 0x31);
                if constexpr (std::is_same_v<Q, int32_t>) {
                        _mm256_maskstore_epi32(d, k0, a0);
                        _mm256_maskstore_epi32(d + 8, k1, a1);
                } else {
                        f.row(a0, a1, nullptr, d);
                }
        };
        size_t j = 0;
        auto sums = [&](auto np, size_t j0) {
                constexpr int NP = decltype(np)::value;
                __m256i lo[NP], hi[NP];
                for (int i = 0; i < NP; i++) {
                        lo[i] = start_lo;
                        hi[i] = start_hi;
                }
                for (unsigned p = 0; p < taps / 2; p++) {
                        const ptrdiff_t d0 = tap_off[2 * p], d1 = tap_off[2 * p + 1];
                        const __m256i wl = _mm256_load_si256(reinterpret_cast<const __m256i *>(wt.w[p][0]));
                        const __m256i wh = _mm256_load_si256(reinterpret_cast<const __m256i *>(wt.w[p][1]));
                        _Pragma("GCC unroll 4") for (int i = 0; i < NP; i++) {
                                const uint8_t *xp = x + (j0 + i) * step + 2 * c;
                                const __m256i a = load16x16<P, SHIFTED>(xp + d0, left, dwords), b = load16x16<P, SHIFTED>(xp + d1, left, dwords);
                                lo[i] = _mm256_add_epi32(lo[i], _mm256_madd_epi16(_mm256_unpacklo_epi16(a, b), wl));
                                hi[i] = _mm256_add_epi32(hi[i], _mm256_madd_epi16(_mm256_unpackhi_epi16(a, b), wh));
                        }
                }
                if (taps % 2) {  // the last tap, paired with zeros (its pair's weights are zero)
                        const unsigned p = taps / 2;
                        const __m256i wl = _mm256_load_si256(reinterpret_cast<const __m256i *>(wt.w[p][0]));
                        const __m256i wh = _mm256_load_si256(reinterpret_cast<const __m256i *>(wt.w[p][1]));
                        const __m256i zero = _mm256_setzero_si256();
                        _Pragma("GCC unroll 4") for (int i = 0; i < NP; i++) {
                                const __m256i a = load16x16<P, SHIFTED>(x + (j0 + i) * step + 2 * c + tap_off[2 * p], left, dwords);
                                lo[i] = _mm256_add_epi32(lo[i], _mm256_madd_epi16(_mm256_unpacklo_epi16(a, zero), wl));
                                hi[i] = _mm256_add_epi32(hi[i], _mm256_madd_epi16(_mm256_unpackhi_epi16(a, zero), wh));
                        }
                }
                for (int i = 0; i < NP; i++)
                        finish(lo[i], hi[i], q + (j0 + i) * (std::is_same_v<Q, int32_t> ? C : e.ldq) + c);
        };
        for (; j + 4 <= count; j += 4)
                sums(std::integral_constant<int, 4>{}, j);
        for (; j < count; j++)
                sums(std::integral_constant<int, 1>{}, j);
}

template <bool SHIFTED, typename Q>
void depthwise16_fused(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w, size_t C,
                       size_t count, const GemmEpilogue &e, Q *q)
{
        for (size_t c = 0; c < C; c += 16)
                if (C - c >= 16)
                        depthwise16_block<Part16::Full, SHIFTED>(x, step, tap_off, taps, w, C, c, count, e, q);
                else if ((C - c) % 2 == 0)
                        depthwise16_block<Part16::Dwords, SHIFTED>(x, step, tap_off, taps, w, C, c, count, e, q);
                else
                        depthwise16_block<Part16::Copy, SHIFTED>(x, step, tap_off, taps, w, C, c, count, e, q);
}
template <typename Q>
void depthwise16_fused(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w, size_t C,
                       size_t count, const GemmEpilogue &e, Q *q, bool shifted)
{
        if (shifted)
                depthwise16_fused<true>(x, step, tap_off, taps, w, C, count, e, q);
        else
                depthwise16_fused<false>(x, step, tap_off, taps, w, C, count, e, q);
}

// The 16-bit GEMM: A's values are u16, read as they are.  A pair of
// values is broadcast as 4 bytes, shifted into int16 (x ^ 0x8000, once per
// call over the span the rows read: shifted16); the slice's weights,
// widened to int16 (Weights16), hold 8 columns x the same pair of K per
// register, so one vpmaddwd adds both products of a pair into each
// column's int32 lane: 2 accumulators per row for 16 columns, 3 or 4 rows
// (kMR16) with 4 weight registers.  The sum of (x - z) w is those sums
// plus (32768 - z) times the column's weight sum (GemmEpilogue::shift64).
// That sum is exact as gemm16.h says.
// Rows per tile: 3 with the shift in the loop (its constant takes a
// register), 4 where the values come shifted.
constexpr int kMR16 = 3, kMR16Shifted = 4;

// One slice's weights as int16: per K block, for K pairs (0, 1) and (2, 3),
// columns 0-7 and 8-15, each column's two weights side by side.
inline void lay_out16(const int8_t *b0, size_t nkb, int16_t *d)
{
        // Per 128-bit lane (4 columns x 4 bytes): pair (0, 1) of each
        // column into the low 8 bytes, pair (2, 3) into the high 8.
        const __m256i pick = _mm256_setr_epi8(0, 1, 4, 5, 8, 9, 12, 13, 2, 3, 6, 7, 10, 11, 14, 15, 0, 1, 4, 5, 8, 9, 12,
                                              13, 2, 3, 6, 7, 10, 11, 14, 15);
        for (size_t kb = 0; kb < nkb; kb++)
                for (int h = 0; h < 2; h++) {
                        // Columns 8h..8h+7: 64-bit order (pair 0: 0-3, 4-7; pair 1: 0-3, 4-7).
                        const __m256i v = _mm256_permute4x64_epi64(
                                _mm256_shuffle_epi8(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(b0 + kb * 64 + 32 * h)), pick),
                                0xd8);
                        int16_t *o = d + kb * 64;
                        _mm256_storeu_si256(reinterpret_cast<__m256i *>(o + 16 * h), _mm256_cvtepi8_epi16(_mm256_castsi256_si128(v)));
                        _mm256_storeu_si256(reinterpret_cast<__m256i *>(o + 32 + 16 * h),
                                            _mm256_cvtepi8_epi16(_mm256_extracti128_si256(v, 1)));
                }
}

// The values shifted once per call (the thread's int16 slices of the
// weights: PerThread<Weights16<lay_out16>>).
inline bool shifted16(const GemmA &A, size_t M, GemmA &out)
{
        return shifted_span(A, M, out, [](const uint8_t *src, uint8_t *d, size_t n) {
                const __m256i x8000 = _mm256_set1_epi16(-32768);
                size_t i = 0;
                for (; i + 32 <= n; i += 32)
                        _mm256_storeu_si256(reinterpret_cast<__m256i *>(d + i),
                                            _mm256_xor_si256(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(src + i)), x8000));
                return i;
        });
}

// The column sums of MR rows x 16 columns (columns 0-7, 8-15) over K blocks
// [kb0, kb1) of the runs (block index over all taps), from zero.
// SHIFTED: A's values already shifted into int16 (shifted16).
template <int MR, bool SHIFTED>
inline __attribute__((always_inline)) void sums16(const GemmA &A, size_t m0, const int16_t *w16, size_t kb0, size_t kb1,
                                                  __m256i (&acc)[MR][2])
{
        const __m256i x8000 = _mm256_set1_epi16(-32768);
        _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++) acc[r][0] = acc[r][1] = _mm256_setzero_si256();
        // Run t holds blocks [t * kbt, (t + 1) * kbt); the part of it in [kb0, kb1).
        for (unsigned t = 0; t < A.taps; t++) {
                const size_t first = size_t(t) * A.kbt, lo = std::max(kb0, first), hi = std::min(kb1, first + A.kbt);
                if (lo >= hi)
                        continue;
                const uint8_t *a = A.base + m0 * A.lda + A.tap_off[t] + 8 * (lo - first);
                const int16_t *b = w16 + lo * 64;
                for (size_t j = 0; j < hi - lo; j++) {
                        __m256i w[4];
                        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
                                w[q] = _mm256_loadu_si256(reinterpret_cast<const __m256i *>(b + j * 64 + 16 * q));
                        _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++) {
                                __m256i x01 = bcast4(a + r * A.lda + 8 * j), x23 = bcast4(a + r * A.lda + 8 * j + 4);
                                if constexpr (!SHIFTED) {
                                        x01 = _mm256_xor_si256(x01, x8000);
                                        x23 = _mm256_xor_si256(x23, x8000);
                                }
                                acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(x01, w[0]));
                                acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(x01, w[1]));
                                acc[r][0] = _mm256_add_epi32(acc[r][0], _mm256_madd_epi16(x23, w[2]));
                                acc[r][1] = _mm256_add_epi32(acc[r][1], _mm256_madd_epi16(x23, w[3]));
                        }
                }
        }
}

// The exact sums of (x - z) w of MR rows x 16 columns, row r's passed to
// out(r, sums 0-7, sums 8-15): as int32 (one chunk) or rounded to float
// (several); or, with C, stored there as int64.
// st: the shift narrowed to int32 (used where it fits: one chunk).
template <int MR, bool SHIFTED, typename Out>
inline __attribute__((always_inline)) void tile16(const GemmA &A, size_t m0, const int16_t *w16, const int64_t *shift, const __m256i (&st)[2], int64_t *C,
                   size_t ldc, size_t left, Out out)
{
        const size_t nkb = size_t(A.taps) * A.kbt;
        __m256i acc[MR][2];
        if (nkb <= kInt16Blocks && !C) {
                sums16<MR, SHIFTED>(A, m0, w16, 0, nkb, acc);
                _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++)
                        out(r, _mm256_add_epi32(acc[r][0], st[0]), _mm256_add_epi32(acc[r][1], st[1]));
                return;
        }
        alignas(32) double tot[MR][16];
        for (int r = 0; r < MR; r++)
                for (size_t c = 0; c < 16; c++)
                        tot[r][c] = c < left ? double(shift[c]) : 0.0;
        for (size_t kb0 = 0; kb0 < nkb; kb0 += kChunk16) {
                sums16<MR, SHIFTED>(A, m0, w16, kb0, std::min(nkb, kb0 + kChunk16), acc);
                _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++)
                        for (int h = 0; h < 4; h++) {
                                const __m128i part = h % 2 ? _mm256_extracti128_si256(acc[r][h / 2], 1) : _mm256_castsi256_si128(acc[r][h / 2]);
                                double *d = tot[r] + 4 * h;
                                _mm256_store_pd(d, _mm256_add_pd(_mm256_load_pd(d), _mm256_cvtepi32_pd(part)));
                        }
        }
        if (C) {
                for (int r = 0; r < MR; r++)
                        for (size_t c = 0; c < left; c++)
                                C[(m0 + r) * ldc + c] = int64_t(tot[r][c]);
                return;
        }
        auto f32 = [&](const double *d) {
                return _mm256_set_m128(_mm256_cvtpd_ps(_mm256_load_pd(d + 4)), _mm256_cvtpd_ps(_mm256_load_pd(d)));
        };
        _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++) out(r, f32(tot[r]), f32(tot[r] + 8));
}

} // namespace

void gemm16_epilogue_avx2(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, const GemmEpilogue &e, int64_t *C,
                          size_t ldc)
{
        // Unfolded activations: the exact sums through C, then the generic epilogue.
        int64_t *c64 = e.o->folded ? nullptr : C;
        const size_t nkb = size_t(A.taps) * A.kbt;
        // The values shifted once for all slices and taps (by the layer's
        // copy, or here) where that pays.
        GemmA S;
        const bool pre = A.shifted || shifted16(A, M, S);
        const GemmA &a = A.shifted || !pre ? A : S;
        Weights16<lay_out16> &slices = PerThread<Weights16<lay_out16>>::get();
        for (size_t n0 = 0; n0 < N; n0 += 16) {
                const int16_t *w16 = slices.slice(B, K4, N, n0, nkb, e.stamp);
                const size_t left = N - n0 < 16 ? N - n0 : 16;
                const Folded16 f(e, n0, N);
                const int64_t *shift = e.shift64 + n0;
                alignas(32) int64_t sh[16] = {};
                if (left < 16) {  // the shift read within its N columns
                        std::memcpy(sh, shift, 8 * left);
                        shift = sh;
                }
                // (32768 - z) x the weight sums, at most 2^15 x 256 x 128 in
                // int32 where K is one chunk.
                const __m256i st[2] = {narrow8(shift, f.k0), narrow8(shift + 8, f.k1)};
                auto rows = [&](auto mr, size_t m) {
                        constexpr int MR = decltype(mr)::value;
                        auto out = [&](int r, auto s0, auto s1) {
                                const float *res = e.res.res ? e.res.res + (m + r) * e.res.ldr + n0 : nullptr;
                                if (e.q8)
                                        f.row(s0, s1, res, e.q8 + (m + r) * e.ldq + n0);
                                else
                                        f.row(s0, s1, res, e.q16 + (m + r) * e.ldq + n0);
                        };
                        int64_t *c = c64 ? c64 + n0 : nullptr;
                        if constexpr (MR == kMR16Shifted)  // only where the values come shifted
                                tile16<MR, true>(a, m, w16, shift, st, c, ldc, left, out);
                        else if (pre)
                                tile16<MR, true>(a, m, w16, shift, st, c, ldc, left, out);
                        else
                                tile16<MR, false>(a, m, w16, shift, st, c, ldc, left, out);
                };
                size_t m = 0;
                if (pre)
                        for (; m + kMR16Shifted <= M; m += kMR16Shifted)
                                rows(std::integral_constant<int, kMR16Shifted>{}, m);
                for (; m + kMR16 <= M; m += kMR16)
                        rows(std::integral_constant<int, kMR16>{}, m);
                if (M - m == 2)
                        rows(std::integral_constant<int, 2>{}, m);
                else if (M - m == 1)
                        rows(std::integral_constant<int, 1>{}, m);
        }
        if (c64)
                epilogue_tile(c64, ldc, M, N, nullptr, e.mul, e.add, e.act, *e.o, e.q16, e.ldq, e.res);
}

void depthwise16_epilogue_avx2(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                               size_t C, size_t count, const GemmEpilogue &e, int32_t *acc, bool shifted)
{
        depthwise16_finish([&](auto *q) { depthwise16_fused(x, step, tap_off, taps, w, C, count, e, q, shifted); }, e, acc, C,
                           count);
}

void gemm_u8s8_avx2(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, size_t kb0, int32_t *C, size_t ldc)
{
        for_slices(
                A, M, B, K4, N, kb0, nullptr,
                [&](auto mode, auto rows, size_t m, size_t n0, __m256i init0, __m256i init1, const GemmA &a, ptrdiff_t delta) {
                        constexpr int MR = decltype(rows)::value;
                        __m256i acc[MR][2];
                        accumulate<decltype(mode)::value, MR>(a, m, B + (n0 / 16) * K4 * 16 + kb0 * 64, init0, init1, acc, delta);
                        const size_t left = N - n0 < 16 ? N - n0 : 16;
                        const __m256i k0 = lanes_mask(left, 0), k1 = lanes_mask(left, 8);
                        _Pragma("GCC unroll 4") for (int r = 0; r < MR; r++) {
                                _mm256_maskstore_epi32(C + (m + r) * ldc + n0, k0, acc[r][0]);
                                _mm256_maskstore_epi32(C + (m + r) * ldc + n0 + 8, k1, acc[r][1]);
                        }
                },
                [&](size_t n0) { gemm_widened(A, M, B, K4, N, n0, kb0, C, ldc); });
}

void gemm_epilogue_avx2(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, const GemmEpilogue &e, int32_t *C,
                        size_t ldc)
{
        if (e.o->folded) {
                if (e.q8)
                        gemm_epilogue_fused(A, M, B, K4, N, e, e.q8, C, ldc);
                else
                        gemm_epilogue_fused(A, M, B, K4, N, e, e.q16, C, ldc);
                return;
        }
        // Other activations: the sums through C, then the generic epilogue.
        gemm_u8s8_avx2(A, M, B, K4, N, 0, C, ldc);
        finish_gemm(C, ldc, M, N, e);
}

void depthwise_epilogue_avx2(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                             size_t C, size_t count, const GemmEpilogue &e, int32_t *acc, uint8_t xmax)
{
        if (e.o->folded && e.off && !e.res.res && taps <= DwTaps::kMax) {
                if (e.q8)
                        depthwise_fused(x, step, tap_off, taps, w, C, count, e, e.q8, xmax);
                else
                        depthwise_fused(x, step, tap_off, taps, w, C, count, e, e.q16, xmax);
                return;
        }
        depthwise_epilogue_generic(x, step, tap_off, taps, w, C, count, e, acc, xmax);
}

} // namespace npuref

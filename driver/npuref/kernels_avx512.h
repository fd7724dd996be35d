// Register-level pieces shared by the AVX-512 kernels (the GEMM, its
// epilogue and the depthwise rows); compiled only with the AVX-512 flags.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>
#include <type_traits>

namespace npuref {

// f(std::integral_constant<int, R>{}) for R = rows, 1 to 8: a row tile's
// height as a compile-time constant (the last tile's too).
template <typename F> static inline void with_rows(size_t rows, F f)
{
        switch (rows) {
        case 8: f(std::integral_constant<int, 8>{}); break;
        case 7: f(std::integral_constant<int, 7>{}); break;
        case 6: f(std::integral_constant<int, 6>{}); break;
        case 5: f(std::integral_constant<int, 5>{}); break;
        case 4: f(std::integral_constant<int, 4>{}); break;
        case 3: f(std::integral_constant<int, 3>{}); break;
        case 2: f(std::integral_constant<int, 2>{}); break;
        case 1: f(std::integral_constant<int, 1>{}); break;
        default: break;
        }
}

// The lanes of a 16-channel group that exist when `left` channels remain.
static inline __mmask16 column_mask(size_t left) { return left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1); }

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

static inline __m512 as_float(__m512 s) { return s; }
static inline __m512 as_float(__m512i s) { return _mm512_cvtepi32_ps(s); }

// The folded epilogue's rounded value of 16 sums (int32 lanes, or floats
// rounded once from exact wider sums), not yet saturated to the output's
// width; with a residual row `res`, its
// values times inv (1 / step) added in one fused multiply-add, as
// epilogue.cpp's plus_residual, in the lanes of rm.  LO0: the lower bound
// is 0 and the caller saturates to unsigned, which then does the max's
// work: vminps(hi, y) passes a NaN on (its second operand), which converts
// to INT32_MIN and saturates to 0 = lo, as round_clamped's !(v >= lo); a
// negative y rounds to at most 0 and saturates to 0.  HI_BYTES: y, unless
// a NaN, is within int32 (GemmEpilogue::bounded) and the caller narrows to
// unsigned bytes with saturation and then takes their minimum with the
// byte of hi rounded (bound_byte): rounding and saturating never decrease, so
// they commute with the minimum and give the bytes vminps(hi, y) would
// have given.  A NaN still converts to INT32_MIN and saturates to 0 (LO0)
// or becomes lo in vmaxps(y, lo), which passes its second operand on.
template <bool LO0, bool HI_BYTES = false, typename S>
static inline __m512i folded16(S a, __m512 mv, __m512 av, __m512 lo, __m512 hi, const float *res, __mmask16 rm, __m512 inv)
{
        __m512 y = _mm512_fmadd_ps(as_float(a), mv, av);
        if (res)
                y = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(rm, res), inv, y);
        if constexpr (!LO0)
                y = _mm512_max_ps(y, lo);
        if constexpr (!HI_BYTES)
                y = _mm512_min_ps(hi, y);  // a NaN left (LO0) passes on
        return _mm512_cvtps_epi32(y);
}

// Two rows of 32 u8 outputs from their four vectors of folded16 values
// (row r, columns 0-15 and 16-31), saturated as store_q does: two
// vpackssdw and a vpackuswb leave each 128-bit lane L holding the dwords
// of r0c0, r0c1, r1c0, r1c1 for columns 4L..4L+3, and one vpermd puts
// them in row order.  Four vpmovusdb cost more on every AVX-512 core.
static inline __m512i rows32_bytes(__m512i r0c0, __m512i r0c1, __m512i r1c0, __m512i r1c1)
{
        const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
        const __m512i b = _mm512_packus_epi16(_mm512_packs_epi32(r0c0, r0c1), _mm512_packs_epi32(r1c0, r1c1));
        return _mm512_permutexvar_epi32(order, b);
}
// Two rows of rows32_bytes to d0 and d1.
static inline void store_rows32(uint8_t *d0, uint8_t *d1, __m512i b)
{
        _mm256_storeu_si256(reinterpret_cast<__m256i *>(d0), _mm512_castsi512_si256(b));
        _mm256_storeu_si256(reinterpret_cast<__m256i *>(d1), _mm512_extracti64x4_epi64(b, 1));
}

// 64 values below 16 packed at 4 bits as bwq::pack_u8 packs a tensor
// (32 bytes): a 16-bit shift and an or make lo | hi << 4 in the low byte
// of each byte pair (both below 16), vpmovwb keeps the low bytes; no
// multiply, which would take a slot of vpdpbusd's pipes.  (6 bits packed
// in the kernel took 1.00-1.07 of the time of the tile packed from L1
// after it with two multiply-adds, vpshufb and vpermd, and 1.06-1.10 with
// one multiply-add and shifts: the pass's vpermb does in one step what
// those do, and its multiplies run while vpdpbusd's pipes are idle.)
static inline __m256i packed4_bytes(__m512i b) { return _mm512_cvtepi16_epi8(_mm512_or_si512(b, _mm512_srli_epi16(b, 4))); }

// Two rows of up to 32 values below 16, as rows32_bytes leaves them,
// packed (packed4_bytes) and stored to d0 and d1 (d1 null: row 0 only),
// `bytes` bytes each (left / 2 of `left` columns).  Whole rows of 32
// values without masks (a masked store costs more on some cores).
static inline void store_packed4_rows32(__m512i b, uint8_t *d0, uint8_t *d1, size_t bytes)
{
        const __m256i v = packed4_bytes(b);
        if (bytes == 16) {
                _mm_storeu_si128(reinterpret_cast<__m128i *>(d0), _mm256_castsi256_si128(v));
                if (d1)
                        _mm_storeu_si128(reinterpret_cast<__m128i *>(d1), _mm256_extracti128_si256(v, 1));
                return;
        }
        const __mmask16 m = __mmask16((1u << bytes) - 1);
        _mm_mask_storeu_epi8(d0, m, _mm256_castsi256_si128(v));
        if (d1)
                _mm_mask_storeu_epi8(d1, m, _mm256_extracti128_si256(v, 1));
}

// Four rows of 16 u8 outputs, as rows32_bytes leaves them from one vector
// a row, stored to d, d + ld, ...: the first n rows (1-4), as one 64-byte
// store where the rows lie back to back.
static inline void store_rows16x4(__m512i b, uint8_t *d, size_t ld, int n)
{
        if (ld == 16) {
                _mm512_mask_storeu_epi8(d, n == 4 ? ~__mmask64(0) : (__mmask64(1) << (16 * n)) - 1, b);
                return;
        }
        _mm_storeu_si128(reinterpret_cast<__m128i *>(d), _mm512_castsi512_si128(b));
        if (n > 1)
                _mm_storeu_si128(reinterpret_cast<__m128i *>(d + ld), _mm512_extracti32x4_epi32(b, 1));
        if (n > 2)
                _mm_storeu_si128(reinterpret_cast<__m128i *>(d + 2 * ld), _mm512_extracti32x4_epi32(b, 2));
        if (n > 3)
                _mm_storeu_si128(reinterpret_cast<__m128i *>(d + 3 * ld), _mm512_extracti32x4_epi32(b, 3));
}

// The same four rows' values (below 16) packed (packed4_bytes), 8 bytes a
// row, to d, d + ld (bytes), ...: one 32-byte store where the rows lie
// back to back.
static inline void store_packed4_rows16x4(__m512i b, uint8_t *d, size_t ld, int n)
{
        const __m256i v = packed4_bytes(b);
        if (ld == 8) {
                _mm256_mask_storeu_epi8(d, n == 4 ? ~__mmask32(0) : (__mmask32(1) << (8 * n)) - 1, v);
                return;
        }
        const __m128i lo = _mm256_castsi256_si128(v), hi = _mm256_extracti128_si256(v, 1);
        _mm_storel_epi64(reinterpret_cast<__m128i *>(d), lo);
        if (n > 1)
                _mm_storeh_pd(reinterpret_cast<double *>(d + ld), _mm_castsi128_pd(lo));
        if (n > 2)
                _mm_storel_epi64(reinterpret_cast<__m128i *>(d + 2 * ld), hi);
        if (n > 3)
                _mm_storeh_pd(reinterpret_cast<double *>(d + 3 * ld), _mm_castsi128_pd(hi));
}

// The folded epilogue applied to 16 accumulators in registers; with a
// residual row `res`, its values times inv (1 / step) added in one fused
// multiply-add, as epilogue.cpp's plus_residual, in the lanes of rm.
template <typename Q>
static inline void finish16(__m512i a, __m512i ov, __m512 mv, __m512 av, __m512 lo, __m512 hi, Q *d, __mmask16 m, bool full,
                            const float *res = nullptr, __mmask16 rm = 0, __m512 inv = _mm512_setzero_ps())
{
        store_q(d, m, full, folded16<false>(_mm512_sub_epi32(a, ov), mv, av, lo, hi, res, m & rm, inv));
}

} // namespace npuref

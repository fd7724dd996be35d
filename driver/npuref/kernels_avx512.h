// Register-level pieces shared by the AVX-512 kernels (the GEMM, its
// epilogue and the depthwise rows); compiled only with the AVX-512 flags.
#pragma once

#include <immintrin.h>

#include <cstddef>
#include <cstdint>

namespace npuref {

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

// Element `at` of a tensor packed at BITS (4 or 6): where the fused
// epilogues store a 16-channel block as whole bytes (GemmEpilogue::pk,
// `at` a multiple of 16, every block full).  Moves like a pointer.
template <unsigned BITS> struct PackedOut {
        uint8_t *base;
        size_t at;
        PackedOut operator+(size_t n) const { return {base, at + n}; }
};

// 16 values of up to 4 bits, one per int32 lane, as 8 bytes (element 2i
// in the low nibble of byte i): each 64-bit lane's high value moved next
// to its low one, then one byte per lane.
static inline void store_q(PackedOut<4> d, __mmask16, bool, __m512i q)
{
        const __m512i pairs = _mm512_or_si512(q, _mm512_srli_epi64(q, 28));
        _mm512_mask_cvtepi64_storeu_epi8(d.base + d.at / 2, __mmask8(0xff), pairs);
}

// 16 values of up to 6 bits as 12 bytes (each group of four the 24-bit
// little-endian word v0 | v1 << 6 | v2 << 12 | v3 << 18): pairs joined in
// each 64-bit lane, pairs of pairs in each 128-bit lane, then the three
// low bytes of each 128-bit lane.
static inline void store_q(PackedOut<6> d, __mmask16, bool, __m512i q)
{
        const __m512i pairs = _mm512_or_si512(q, _mm512_srli_epi64(q, 26));
        const __m512i quads = _mm512_or_si512(pairs, _mm512_slli_epi64(_mm512_bsrli_epi128(pairs, 8), 12));
        const __m128i words = _mm512_castsi512_si128(_mm512_permutexvar_epi32(_mm512_setr_epi32(0, 4, 8, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0), quads));
        const __m128i bytes = _mm_shuffle_epi8(words, _mm_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1));
        _mm_mask_storeu_epi8(d.base + d.at / 4 * 3, __mmask16(0x0fff), bytes);
}

// The folded epilogue applied to 16 accumulators in registers; with a
// residual row `res`, its values times inv (1 / step) added in one fused
// multiply-add, as epilogue.cpp's plus_residual, in the lanes of rm.
template <typename Q>
static inline void finish16(__m512i a, __m512i ov, __m512 mv, __m512 av, __m512 lo, __m512 hi, Q d, __mmask16 m, bool full,
                            const float *res = nullptr, __mmask16 rm = 0, __m512 inv = _mm512_setzero_ps())
{
        __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(a, ov)), mv, av);
        if (res)
                y = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m & rm, res), inv, y);
        y = _mm512_min_ps(_mm512_max_ps(y, lo), hi);
        store_q(d, m, full, _mm512_cvtps_epi32(y));
}

} // namespace npuref

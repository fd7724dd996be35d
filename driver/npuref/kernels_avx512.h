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

// The folded epilogue applied to 16 accumulators in registers; with a
// residual row `res`, its values times inv (1 / step) added in one fused
// multiply-add, as epilogue.cpp's plus_residual, in the lanes of rm.
template <typename Q>
static inline void finish16(__m512i a, __m512i ov, __m512 mv, __m512 av, __m512 lo, __m512 hi, Q *d, __mmask16 m, bool full,
                            const float *res = nullptr, __mmask16 rm = 0, __m512 inv = _mm512_setzero_ps())
{
        __m512 y = _mm512_fmadd_ps(_mm512_cvtepi32_ps(_mm512_sub_epi32(a, ov)), mv, av);
        if (res)
                y = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m & rm, res), inv, y);
        y = _mm512_min_ps(_mm512_max_ps(y, lo), hi);
        store_q(d, m, full, _mm512_cvtps_epi32(y));
}

} // namespace npuref

// u8 x s8 GEMM with AVX-512 VNNI (vpdpbusd): one broadcast of four
// activation bytes times 16 output channels x 4 weights per instruction.
#include <immintrin.h>

#include "kernels.h"

namespace npuref {

template <int MR>
static inline void tile(const uint8_t *A, size_t lda, const int8_t *B, size_t K4, size_t N, size_t n0,
                        size_t kb0, size_t kb1, int32_t *C, size_t ldc)
{
        const int8_t *b0 = B + (n0 / 16) * K4 * 16;
        const int8_t *b1 = b0 + K4 * 16;
        const bool two = n0 + 16 < N;
        __m512i acc0[MR], acc1[MR];
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
                acc0[r] = _mm512_setzero_si512();
                acc1[r] = _mm512_setzero_si512();
        }
        if (two) {
                for (size_t kb = kb0; kb < kb1; kb++) {
                        __m512i w0 = _mm512_loadu_si512(b0 + kb * 64);
                        __m512i w1 = _mm512_loadu_si512(b1 + kb * 64);
                        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
                                int32_t a4;
                                __builtin_memcpy(&a4, A + r * lda + 4 * kb, 4);
                                __m512i a = _mm512_set1_epi32(a4);
                                acc0[r] = _mm512_dpbusd_epi32(acc0[r], a, w0);
                                acc1[r] = _mm512_dpbusd_epi32(acc1[r], a, w1);
                        }
                }
        } else {
                for (size_t kb = kb0; kb < kb1; kb++) {
                        __m512i w0 = _mm512_loadu_si512(b0 + kb * 64);
                        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
                                int32_t a4;
                                __builtin_memcpy(&a4, A + r * lda + 4 * kb, 4);
                                acc0[r] = _mm512_dpbusd_epi32(acc0[r], _mm512_set1_epi32(a4), w0);
                        }
                }
        }
        size_t left = N - n0;
        __mmask16 m0 = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
        __mmask16 m1 = left >= 32 ? __mmask16(0xffff) : left > 16 ? __mmask16((1u << (left - 16)) - 1) : 0;
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
                _mm512_mask_storeu_epi32(C + r * ldc + n0, m0, acc0[r]);
                if (two)
                        _mm512_mask_storeu_epi32(C + r * ldc + n0 + 16, m1, acc1[r]);
        }
}

void gemm_u8s8_avx512vnni(const uint8_t *A, size_t lda, size_t M, const int8_t *B, size_t K4, size_t N,
                          size_t kb0, size_t kb1, int32_t *C, size_t ldc)
{
        constexpr int MR = 6;
        // Columns outer: a 32-column slice of B stays in cache while the rows
        // of A stream past it.
        for (size_t n0 = 0; n0 < N; n0 += 32) {
                size_t m = 0;
                for (; m + MR <= M; m += MR)
                        tile<MR>(A + m * lda, lda, B, K4, N, n0, kb0, kb1, C + m * ldc, ldc);
                for (; m < M; m++)
                        tile<1>(A + m * lda, lda, B, K4, N, n0, kb0, kb1, C + m * ldc, ldc);
        }
}

// 16 channels per register, the taps summed in registers.
void depthwise_pixel_avx512(const uint16_t *const *xs, const int8_t *const *ws, unsigned taps, int32_t z, size_t C,
                            int32_t *acc)
{
        const __m512i zv = _mm512_set1_epi32(z);
        for (size_t c = 0; c < C; c += 16) {
                const size_t left = C - c;
                const __mmask16 m = left >= 16 ? __mmask16(0xffff) : __mmask16((1u << left) - 1);
                __m512i a = _mm512_setzero_si512();
                for (unsigned t = 0; t < taps; t++) {
                        __m256i x16 = _mm256_maskz_loadu_epi16(m, xs[t] + c);
                        __m128i w8 = _mm_maskz_loadu_epi8(m, ws[t] + c);
                        __m512i x = _mm512_sub_epi32(_mm512_maskz_cvtepu16_epi32(m, x16), zv);
                        a = _mm512_add_epi32(a, _mm512_mullo_epi32(x, _mm512_maskz_cvtepi8_epi32(m, w8)));
                }
                _mm512_mask_storeu_epi32(acc + c, m, a);
        }
}

} // namespace npuref

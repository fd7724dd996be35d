// u8 x s8 GEMM with AVX2: bytes widened to int16 and multiplied pairwise
// with vpmaddwd (exact: no int16 saturation, unlike vpmaddubsw).
#include <immintrin.h>

#include "kernels.h"

namespace npuref {

template <int MR>
static inline void tile(const GemmA &A, size_t m0, const int8_t *B, size_t K4, size_t N, size_t n0, size_t kb0,
                        int32_t *C, size_t ldc)
{
        const size_t lda = A.lda;
        const int8_t *b0 = B + (n0 / 16) * K4 * 16 + kb0 * 64;
        // acc[r][q]: int32 pair sums for channels 4q..4q+3 (two per channel).
        __m256i acc[MR][4];
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++)
                _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
                        acc[r][q] = _mm256_setzero_si256();
        for (unsigned t = 0; t < A.taps; t++) {
                const uint8_t *at = A.base + m0 * lda + A.tap_off[t];
                const int8_t *b = b0 + t * A.kbt * 64;
                for (size_t kb = 0; kb < A.kbt; kb++) {
                        __m256i w[4];
                        _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
                                w[q] = _mm256_cvtepi8_epi16(_mm_loadu_si128(reinterpret_cast<const __m128i *>(b + kb * 64 + 16 * q)));
                        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
                                uint32_t a4;
                                __builtin_memcpy(&a4, at + r * lda + 4 * kb, 4);
                                __m256i a = _mm256_cvtepu8_epi16(_mm_set1_epi32(int32_t(a4)));
                                _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
                                        acc[r][q] = _mm256_add_epi32(acc[r][q], _mm256_madd_epi16(a, w[q]));
                        }
                }
        }
        size_t left = N - n0 < 16 ? N - n0 : 16;
        _Pragma("GCC unroll 8") for (int r = 0; r < MR; r++) {
                alignas(32) int32_t t[32];
                _Pragma("GCC unroll 4") for (int q = 0; q < 4; q++)
                        _mm256_store_si256(reinterpret_cast<__m256i *>(t + 8 * q), acc[r][q]);
                for (size_t n = 0; n < left; n++)
                        C[r * ldc + n0 + n] = t[2 * n] + t[2 * n + 1];
        }
}

void gemm_u8s8_avx2(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, size_t kb0, int32_t *C, size_t ldc)
{
        constexpr int MR = 2;
        for (size_t n0 = 0; n0 < N; n0 += 16) {
                size_t m = 0;
                for (; m + MR <= M; m += MR)
                        tile<MR>(A, m, B, K4, N, n0, kb0, C + m * ldc, ldc);
                for (; m < M; m++)
                        tile<1>(A, m, B, K4, N, n0, kb0, C + m * ldc, ldc);
        }
}

} // namespace npuref

// Integer compute kernels of npuref, one table per instruction set.
//
// All kernels are exact integer arithmetic, so every instruction set gives
// bit-identical results (tests compare them).
#pragma once

#include <cstddef>
#include <cstdint>

namespace npuref {

enum class Isa { Portable = 0, Avx2 = 1, Avx512Vnni = 2 };

// Weights of one group in the blocked layout [N16/16][K4/4][16][4] (int8).
// C[m * ldc + n] = sum over k in [4*kb0, 4*kb1) of A[m * lda + k] * B(n, k)
// for m < M, n < N.  A rows hold K4 bytes (padding may hold anything: its
// weights are zero).
using GemmU8S8Fn = void (*)(const uint8_t *A, size_t lda, size_t M, const int8_t *B, size_t K4,
                            size_t N, size_t kb0, size_t kb1, int32_t *C, size_t ldc);

// acc[c] = sum over t < taps of (xs[t][c] - z) * ws[t][c] for c < C, in
// int32 (inputs of at most 8 bits): one output pixel of a depthwise window.
using DepthwisePixelFn = void (*)(const uint16_t *const *xs, const int8_t *const *ws, unsigned taps, int32_t z, size_t C,
                                  int32_t *acc);

struct Kernels {
        Isa isa;
        const char *name;
        GemmU8S8Fn gemm_u8s8;
        DepthwisePixelFn depthwise_pixel;
};

// The best table this CPU runs, or the one NPUREF_ISA (portable, avx2,
// avx512vnni) asks for if the CPU has it.
const Kernels &kernels_for(Isa isa);
bool isa_supported(Isa isa);
Isa isa_best();

void gemm_u8s8_portable(const uint8_t *A, size_t lda, size_t M, const int8_t *B, size_t K4, size_t N,
                        size_t kb0, size_t kb1, int32_t *C, size_t ldc);
void gemm_u8s8_avx2(const uint8_t *A, size_t lda, size_t M, const int8_t *B, size_t K4, size_t N,
                    size_t kb0, size_t kb1, int32_t *C, size_t ldc);
void depthwise_pixel_portable(const uint16_t *const *xs, const int8_t *const *ws, unsigned taps, int32_t z, size_t C,
                              int32_t *acc);
void depthwise_pixel_avx512(const uint16_t *const *xs, const int8_t *const *ws, unsigned taps, int32_t z, size_t C,
                            int32_t *acc);
void gemm_u8s8_avx512vnni(const uint8_t *A, size_t lda, size_t M, const int8_t *B, size_t K4, size_t N,
                          size_t kb0, size_t kb1, int32_t *C, size_t ldc);

// lanes[j] = sum over kb < KB of block[kb * 64 + j]: per-byte sums of one
// 16-channel block of the blocked weight layout.
void block_column_sums(const int8_t *block, size_t KB, int64_t lanes[64]);

// acc[c] += (x[c] - z) * w[c] for c < C: one tap of a depthwise window.
void depthwise_tap(const uint16_t *x, const int8_t *w, int32_t z, size_t C, int32_t *acc);
void depthwise_tap(const uint16_t *x, const int8_t *w, int32_t z, size_t C, int64_t *acc);

} // namespace npuref

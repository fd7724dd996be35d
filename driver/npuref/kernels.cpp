#include "kernels.h"

#include <cstring>

namespace npuref {

void gemm_u8s8_portable(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, size_t kb0, int32_t *C,
                        size_t ldc)
{
        for (size_t m = 0; m < M; m++) {
                for (size_t n = 0; n < N; n++) {
                        const int8_t *b = B + (n / 16) * K4 * 16 + (n % 16) * 4 + kb0 * 64;
                        int32_t acc = 0;
                        for (unsigned t = 0; t < A.taps; t++) {
                                const uint8_t *a = A.base + m * A.lda + A.tap_off[t];
                                const int8_t *bt = b + t * A.kbt * 64;
                                if (A.nibbles) {
                                        for (size_t j = 0; j < A.kbt; j++)
                                                for (size_t i = 0; i < 4; i++)
                                                        acc += (a[2 * (j & ~size_t(1)) + i] >> (4 * (j & 1)) & 15) *
                                                               int32_t(bt[j * 64 + i]);
                                        continue;
                                }
                                for (size_t j = 0; j < A.kbt; j++)
                                        for (size_t i = 0; i < 4; i++)
                                                acc += int32_t(a[4 * j + i]) * int32_t(bt[j * 64 + i]);
                        }
                        C[m * ldc + n] = acc;
                }
        }
}

// Clang 14 builds a function that a header declared without the
// attribute as one version, for the first target, called on every CPU
// (an AVX-512 instruction on an AVX2 machine): the fuzz build, clang's,
// compiles the baseline only.
#if defined(__clang__)
#define NPU_CLONES
#else
#define NPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))
#endif

NPU_CLONES
void depthwise_tap(const uint16_t *__restrict x, const int8_t *__restrict w, int32_t z, size_t C, int64_t *__restrict acc)
{
        for (size_t c = 0; c < C; c++)
                acc[c] += int64_t(int32_t(x[c]) - z) * w[c];
}

// Per-byte sums of one 16-channel block: lanes[j] = sum over kb < KB of
// block[kb * 64 + j] (channel j / 4).
NPU_CLONES
static void block_lanes(const int8_t *block, size_t KB, int64_t lanes[64])
{
        // int32 partial sums: 2^16 blocks of |w| <= 128 cannot overflow.
        for (int j = 0; j < 64; j++)
                lanes[j] = 0;
        for (size_t kb0 = 0; kb0 < KB; kb0 += 65536) {
                int32_t part[64] = {};
                size_t kb1 = KB - kb0 < 65536 ? KB : kb0 + 65536;
                for (size_t kb = kb0; kb < kb1; kb++)
                        for (int j = 0; j < 64; j++)
                                part[j] += block[kb * 64 + j];
                for (int j = 0; j < 64; j++)
                        lanes[j] += part[j];
        }
}

bool column_sums_portable(const int8_t *B, size_t K4, size_t N, int64_t *sums)
{
        for (size_t nb = 0; nb * 16 < N; nb++) {
                int64_t lanes[64];
                block_lanes(B + nb * K4 * 16, K4 / 4, lanes);
                for (size_t j = 0; j < 16 && nb * 16 + j < N; j++)
                        sums[nb * 16 + j] = lanes[4 * j] + lanes[4 * j + 1] + lanes[4 * j + 2] + lanes[4 * j + 3];
        }
        return std::memchr(B, 0x80, (N + 15) / 16 * 16 * K4) != nullptr;
}

NPU_CLONES
void depthwise_rows_portable(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                             size_t C, size_t count, int32_t *acc)
{
        for (size_t j = 0; j < count; j++) {
                int32_t *__restrict a = acc + j * C;
                for (size_t c = 0; c < C; c++)
                        a[c] = 0;
                for (unsigned t = 0; t < taps; t++) {
                        const uint8_t *__restrict xt = x + j * step + tap_off[t];
                        const int8_t *__restrict wt = w + size_t(t) * C;
                        for (size_t c = 0; c < C; c++)
                                a[c] += int32_t(xt[c]) * int32_t(wt[c]);
                }
        }
}

void nibble_order(const int8_t *B, size_t K4, size_t N16, int8_t *dst)
{
        // K value k of a pair's 8 is at block k / 4, byte k % 4 of its lane.
        for (size_t nb = 0; nb < N16 / 16; nb++)
                for (size_t kb = 0; kb < K4 / 4; kb += 2) {
                        const int8_t *s = B + nb * K4 * 16 + kb * 64;
                        int8_t *d = dst + nb * K4 * 16 + kb * 64;
                        for (size_t n = 0; n < 16; n++)
                                for (size_t i = 0; i < 4; i++) {
                                        d[n * 4 + i] = s[(2 * i / 4) * 64 + n * 4 + 2 * i % 4];
                                        d[64 + n * 4 + i] = s[((2 * i + 1) / 4) * 64 + n * 4 + (2 * i + 1) % 4];
                                }
                }
}

void finish_gemm(const int32_t *C, size_t ldc, size_t M, size_t N, const GemmEpilogue &e)
{
        if (e.q8)
                epilogue_tile(C, ldc, M, N, e.off, e.mul, e.add, e.act, *e.o, e.q8, e.ldq, e.res);
        else
                epilogue_tile(C, ldc, M, N, e.off, e.mul, e.add, e.act, *e.o, e.q16, e.ldq, e.res);
}

void depthwise_epilogue_generic(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                                size_t C, size_t count, const GemmEpilogue &e, int32_t *acc, uint8_t)
{
        depthwise_rows_portable(x, step, tap_off, taps, w, C, count, acc);
        finish_gemm(acc, C, count, C, e);
}

void gemm_epilogue_portable(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, const GemmEpilogue &e,
                            int32_t *C, size_t ldc)
{
        gemm_u8s8_portable(A, M, B, K4, N, 0, C, ldc);
        finish_gemm(C, ldc, M, N, e);
}

bool isa_supported(Isa isa)
{
        switch (isa) {
        case Isa::Portable:
                return true;
        case Isa::Avx2:
                return __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
        case Isa::Avx512Vnni:
                return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
                       __builtin_cpu_supports("avx512vl") && __builtin_cpu_supports("avx512dq") &&
                       __builtin_cpu_supports("avx512vnni") && __builtin_cpu_supports("fma");
        }
        return false;
}

Isa isa_best()
{
        if (isa_supported(Isa::Avx512Vnni))
                return Isa::Avx512Vnni;
        if (isa_supported(Isa::Avx2))
                return Isa::Avx2;
        return Isa::Portable;
}

const Kernels &kernels_for(Isa isa)
{
        // The generic epilogues are multiversioned by themselves.
        static const Kernels portable = {Isa::Portable,          "portable",         gemm_u8s8_portable,
                                         depthwise_rows_portable, epilogue_wide,      gemm_epilogue_portable,
                                         depthwise_epilogue_generic, column_sums_portable,
                                         nullptr, nullptr, 0, 0, false, false};
        static const Kernels avx2 = {Isa::Avx2,      "avx2",        gemm_u8s8_avx2,           depthwise_rows_portable,
                                     epilogue_wide, gemm_epilogue_avx2, depthwise_epilogue_avx2, column_sums_portable,
                                     depthwise16_epilogue_avx2, gemm16_epilogue_avx2, 0, 0, false, false};
        static const Kernels avx512 = {Isa::Avx512Vnni,    "avx512vnni",        gemm_u8s8_avx512vnni,
                                       depthwise_rows_avx512, epilogue_wide_avx512, gemm_epilogue_avx512,
                                       depthwise_epilogue_avx512, column_sums_avx512, depthwise16_epilogue_avx512, gemm16_epilogue_avx512,
                                       kGemm16MaxWeightsAvx512, 1u << 4, true, true};
        switch (isa) {
        case Isa::Avx512Vnni:
                return avx512;
        case Isa::Avx2:
                return avx2;
        default:
                return portable;
        }
}

} // namespace npuref

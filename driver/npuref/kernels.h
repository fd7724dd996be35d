// Compute kernels of npuref, one table per instruction set.
//
// The sums are exact integer arithmetic and the epilogues the same IEEE
// float operations in the same order (epilogue.h), so every instruction set
// gives bit-identical results (tests compare them).
#pragma once

#include <cstddef>
#include <cstdint>

#include "epilogue.h"

namespace npuref {

enum class Isa { Portable = 0, Avx2 = 1, Avx512Vnni = 2 };

// The activation operand of a GEMM call, read in K blocks of 4 bytes.  The
// K blocks are split into `taps` runs of kbt blocks; block j of run t of
// row m is at base + m * lda + tap_off[t] + 4 * j.  One run over a plain
// matrix; a direct convolution has one run per kernel tap, each pointing at
// the input pixel that tap reads (so no im2col copy).
struct GemmA {
        const uint8_t *base;
        size_t lda;
        const ptrdiff_t *tap_off;
        unsigned taps;
        size_t kbt;
        // The largest value A's bytes may hold (63 for 6-bit inputs, say):
        // kernels whose byte products saturate above 127 use it.
        uint8_t amax = 255;
        // 16-bit kernels (gemm16_epilogue): the u16 values come already
        // shifted into int16 (x ^ 0x8000), as the layers' copies hold them.
        bool shifted = false;
        // 4-bit values, two to a byte (bwq::pack_u8's layout, the low
        // nibble first), for tables with gemm_nibbles: lda and tap_off
        // count bytes, kbt is even, and K blocks 2i and 2i + 1 of a run
        // are the low and the high nibbles of its 4 bytes at 4i (values
        // 8i, 8i + 2, 8i + 4, 8i + 6 and 8i + 1, ..., 8i + 7).  B holds
        // each pair of K blocks in that order (nibble_order).
        bool nibbles = false;
};

// Weights of one group in the blocked layout [N16/16][K4/4][16][4] (int8).
// C[m * ldc + n] = sum over the taps * kbt K blocks of A of A's bytes times
// the weights of K blocks [kb0, kb0 + taps * kbt), for m < M, n < N.
// Padding bytes of A may hold anything: their weights are zero.
using GemmU8S8Fn = void (*)(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, size_t kb0, int32_t *C,
                            size_t ldc);

// Depthwise rows: for j < count and c < C,
//   acc[j * C + c] = sum over t < taps of x[j * step + tap_off[t] + c] * w[t * C + c]
// count output pixels of one row of a depthwise window over a padded u8
// input, weights [tap][C] int8; int32 holds up to 65536 taps.
using DepthwiseRowsFn = void (*)(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                                 size_t C, size_t count, int32_t *acc);
constexpr unsigned kDepthwiseMaxTaps32 = 65536;

using EpilogueWideFn = void (*)(const int32_t *hi, const int32_t *lo, size_t ldc, size_t rows, size_t n,
                                const int64_t *off, const float *mul, const float *add, uint8_t act, const OutQuant &o,
                                uint16_t *q, size_t ldq, Residual res);

// The epilogue fused into a GEMM (int32 accumulators, K in one call):
// output row m, column n gets epilogue_tile's value of C[m][n] with off[n],
// mul[n], add[n] and the residual's res[m * ldr + n] (GEMM layers only),
// written to q8 (depths up to 8) or q16 at m * ldq + n.
struct GemmEpilogue {
        const int32_t *off;
        const float *mul, *add;
        uint8_t act;
        const OutQuant *o;
        uint8_t *q8;
        uint16_t *q16;
        size_t ldq;
        Residual res{};
        // 128 times each column's weight sum over the call's K blocks (int32
        // wraps alike), given only where no weight is -128; kernels that
        // shift 8-bit activations by 128 (AVX2) start their sums there
        // instead of summing the weights in every call.  Null: they do.
        const int32_t *sums128 = nullptr;
        // 16-bit kernels, which shift u16 inputs into int16 (x ^ 0x8000):
        // (32768 - z) times each column's (channel's) weight sum, which turns
        // their sums into those of (x - z) w.
        const int64_t *shift64 = nullptr;
        // 16-bit GEMM kernels, which lay B out anew as int16 pairs: a
        // nonzero stamp says that B's contents stay as they are for every
        // call with the same stamp and B (one stamp per layer run, say), so
        // each thread lays a slice out once for all those calls; 0: each
        // call lays out its own.
        uint64_t stamp = 0;
        // A depth below 8 (folded activations, where the table's
        // gemm_packs says so): q8 is a packed tensor (bwq::pack_u8's
        // layout), output (m, n) its element pack_first + m * ldq + n;
        // pack_first, ldq and N are whole bytes' worth of elements.
        uint8_t pack_bits = 0;
        size_t pack_first = 0;
        // Every value the folded epilogue computes, sum * mul + add (the
        // residual aside), is finite and below 2^30 in magnitude for any sum
        // the call can make (folded_bounded): converting it to int32 cannot
        // overflow, so a kernel that narrows to bytes with saturation may
        // apply the upper bound to the bytes instead (rounding and
        // saturating never decrease, so they commute with the minimum).
        bool bounded = false;
};

// A folded bound (OutQuant lo or hi, 0 to 255 at u8 outputs) as the byte
// that rounding (round-half-even, as cvtps2dq) and saturation make of it:
// where GemmEpilogue::bounded holds, the bytes' minimum and maximum with
// these are the clamp's.
inline uint8_t bound_byte(float v)
{
        return uint8_t(v >= 255.0f ? 255.0f : v <= 0.0f ? 0.0f : __builtin_nearbyintf(v));
}
// gemm_u8s8 over K blocks [0, taps * kbt), then the epilogue; C (ldc) is
// scratch for kernels that do not keep the tile in registers.
using GemmEpilogueFn = void (*)(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, const GemmEpilogue &e,
                                int32_t *C, size_t ldc);

// depthwise_rows and then the epilogue of GemmEpilogue on its count x C
// sums (acc: count x C scratch for kernels that keep them in registers);
// x's bytes are at most xmax (63 for 6-bit inputs, say).
using DepthwiseEpilogueFn = void (*)(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps,
                                     const int8_t *w, size_t C, size_t count, const GemmEpilogue &e, int32_t *acc,
                                     uint8_t xmax);

// depthwise_epilogue over 16-bit inputs: x holds u16 values (little-endian;
// with `shifted`, already shifted into int16: x ^ 0x8000) and step and
// tap_off count bytes; up to 32 taps (DwTaps); e.shift64 given, e.off
// unused; the sums are exact in int32, so the outputs are those of the two
// byte planes met in epilogue_wide.  Null in a table: the layer splits the
// input into planes.
using Depthwise16EpilogueFn = void (*)(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps,
                                       const int8_t *w, size_t C, size_t count, const GemmEpilogue &e, int32_t *acc,
                                       bool shifted);
constexpr unsigned kDepthwise16MaxTaps = 32;

// gemm_epilogue over 16-bit inputs: A's values are u16 (little-endian),
// its lda and tap offsets count bytes and a K block is 4 values (8
// bytes); e.shift64 given, e.off unused; exact for any K, so the outputs
// are those of the two byte planes met in epilogue_wide.  C (ldc): M x N
// int64 scratch for activations the kernel does not fold.  Outputs to q8
// only for folded activations.  Null in a table: the layer splits the
// input into planes.
using Gemm16EpilogueFn = void (*)(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, const GemmEpilogue &e,
                                  int64_t *C, size_t ldc);

// sums[n] = sum over k < K4 of B(n, k) for n < N: each output channel's
// weight sum in one group's blocked layout (for the zero-point term).
// Returns whether a byte of B's (N + 15) / 16 blocks is -128 (padding
// included), which GemmEpilogue::sums128 rules out: the same read of B.
using ColumnSumsFn = bool (*)(const int8_t *B, size_t K4, size_t N, int64_t *sums);

struct Kernels {
        Isa isa;
        const char *name;
        GemmU8S8Fn gemm_u8s8;
        DepthwiseRowsFn depthwise_rows;
        EpilogueWideFn epilogue_wide;
        GemmEpilogueFn gemm_epilogue;
        DepthwiseEpilogueFn depthwise_epilogue;
        ColumnSumsFn column_sums;
        Depthwise16EpilogueFn depthwise16_epilogue;
        Gemm16EpilogueFn gemm16_epilogue;
        // One group's int8 weight bytes (K4 x N16) above which a layer
        // splits 16-bit inputs into byte planes for gemm_epilogue instead
        // of gemm16_epilogue (0: never).  Where the 8-bit kernel runs at
        // twice the 16-bit one's rate (AVX-512 VNNI), the planes cost the
        // same MACs, and past what a thread keeps of int16 weights their
        // column chunks cost less.
        size_t gemm16_max_weights;
        // The output depths (bit d for d bits) whose packed tensors
        // gemm_epilogue writes itself (GemmEpilogue::pack_bits).
        unsigned gemm_packs;
        // gemm_u8s8 and gemm_epilogue take GemmA::nibbles, unpacking 4-bit
        // rows in registers.
        bool gemm_nibbles;
        // 4-bit codes looked up straight from the packed bytes: as floats
        // from a 16-float table (lookup4_avx512: residuals, float ops'
        // inputs), as bytes from a 16-byte map (map4_avx512: CONCAT,
        // nearest RESIZE, DEPTH_TO_SPACE to 4 bits), and pairs of them from
        // a 256-byte table (ADD to 4 bits, where lookup2x4_vbmi has a
        // kernel).  False: the layers unpack the codes and compute as at
        // other depths (the same bytes: the tables are computed by that
        // code).  The layers call the kernels directly: through a pointer
        // the per-row calls of a CONCAT took 7% longer.
        bool lookups4;
};

// B (one group's K4 x N16, K4 a multiple of 8) with each pair of K blocks
// in the order GemmA::nibbles reads them: the even K values of the pair's
// 8, then the odd ones.
void nibble_order(const int8_t *B, size_t K4, size_t N16, int8_t *dst);

// The best table this CPU runs, or the one NPUREF_ISA (portable, avx2,
// avx512vnni) asks for if the CPU has it.
const Kernels &kernels_for(Isa isa);
bool isa_supported(Isa isa);
Isa isa_best();

void gemm_u8s8_portable(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, size_t kb0, int32_t *C,
                        size_t ldc);
void gemm_u8s8_avx2(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, size_t kb0, int32_t *C, size_t ldc);
void depthwise_rows_portable(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                             size_t C, size_t count, int32_t *acc);
void depthwise_rows_avx512(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                           size_t C, size_t count, int32_t *acc);
void gemm_u8s8_avx512vnni(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, size_t kb0, int32_t *C,
                          size_t ldc);

// epilogue_tile written with AVX-512 intrinsics: the same IEEE operations
// in the same order, so the same bytes (the fallback of the AVX-512 GEMM
// and depthwise kernels for what they do not fuse).
void epilogue_u8_avx512(const int32_t *acc, size_t ldc, size_t rows, size_t n, const int32_t *off, const float *mul,
                        const float *add, uint8_t act, const OutQuant &o, uint8_t *q, size_t ldq, Residual res);
void epilogue_u16_avx512(const int32_t *acc, size_t ldc, size_t rows, size_t n, const int32_t *off, const float *mul,
                         const float *add, uint8_t act, const OutQuant &o, uint16_t *q, size_t ldq, Residual res);

void epilogue_wide_avx512(const int32_t *hi, const int32_t *lo, size_t ldc, size_t rows, size_t n, const int64_t *off,
                          const float *mul, const float *add, uint8_t act, const OutQuant &o, uint16_t *q, size_t ldq,
                          Residual res);

void depthwise_epilogue_generic(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                                size_t C, size_t count, const GemmEpilogue &e, int32_t *acc, uint8_t xmax = 255);
void depthwise_epilogue_avx2(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                             size_t C, size_t count, const GemmEpilogue &e, int32_t *acc, uint8_t xmax = 255);
void depthwise16_epilogue_avx2(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                               size_t C, size_t count, const GemmEpilogue &e, int32_t *acc, bool shifted);
void depthwise16_epilogue_avx512(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                                 size_t C, size_t count, const GemmEpilogue &e, int32_t *acc, bool shifted);
// The AVX-512 table's gemm16_max_weights: the int8 size of the int16
// weights a thread keeps laid out (gemm16.h's kCached16).
constexpr size_t kGemm16MaxWeightsAvx512 = size_t(128) << 10;
void gemm16_epilogue_avx512(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, const GemmEpilogue &e,
                            int64_t *C, size_t ldc);
void gemm16_epilogue_avx2(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, const GemmEpilogue &e, int64_t *C,
                          size_t ldc);
void depthwise_epilogue_avx512(const uint8_t *x, size_t step, const ptrdiff_t *tap_off, unsigned taps, const int8_t *w,
                               size_t C, size_t count, const GemmEpilogue &e, int32_t *acc, uint8_t xmax = 255);
// The end of a 16-bit depthwise kernel: fused(q) writes q8 or q16 where
// the epilogue folds (no residual), else the exact int32 sums to acc
// (count x C) for the generic epilogue.
template <typename Fused>
inline void depthwise16_finish(Fused fused, const GemmEpilogue &e, int32_t *acc, size_t C, size_t count)
{
        if (e.o->folded && !e.res.res) {
                if (e.q8)
                        fused(e.q8);
                else
                        fused(e.q16);
                return;
        }
        fused(acc);
        if (e.q8)
                epilogue_tile(acc, C, count, C, nullptr, e.mul, e.add, e.act, *e.o, e.q8, e.ldq, e.res);
        else
                epilogue_tile(acc, C, count, C, nullptr, e.mul, e.add, e.act, *e.o, e.q16, e.ldq, e.res);
}
// The generic epilogue of GemmEpilogue over C's M x N int32 sums.
void finish_gemm(const int32_t *C, size_t ldc, size_t M, size_t N, const GemmEpilogue &e);
void gemm_epilogue_portable(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, const GemmEpilogue &e,
                            int32_t *C, size_t ldc);
void gemm_epilogue_avx2(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, const GemmEpilogue &e, int32_t *C,
                        size_t ldc);
void gemm_epilogue_avx512(const GemmA &A, size_t M, const int8_t *B, size_t K4, size_t N, const GemmEpilogue &e,
                          int32_t *C, size_t ldc);

// Elements [first, first + n) of a packed 4-bit tensor (bwq::pack_u8's
// layout) as lut[value]: 32 at a time, the nibbles spread to dword
// indices for one vpermps each 16 (no unpacked bytes stored and read
// back), the last ones 16 at a time with masked loads and stores (no
// byte read past the elements' own).
void lookup4_avx512(const uint8_t *packed, size_t first, size_t n, const float lut[16], float *y);

// y[i] = map[code] for elements [first, first + n) of a packed 4-bit
// tensor, as bytes: 64 at a time, each byte widened to a word holding its
// two nibbles, one vpshufb through the 16-byte map; the last up to 63
// with masked loads and stores (no byte read past the elements' own).
void map4_avx512(const uint8_t *packed, size_t first, size_t n, const uint8_t map[16], uint8_t *y);

// y = table[a | b << 4] for elements [first, first + n) of three packed
// 4-bit tensors (first even; an odd n only where it reaches the end of y,
// whose last byte keeps its high nibble), with AVX-512 VBMI: the index
// bytes of 128 elements from 64 bytes of each input (two shifts, two
// vpternlogd), the 256-entry table in four registers (two vpermi2b and a
// blend on the index's top bit), the results' nibbles joined again.
// Null where the CPU lacks VBMI.
using Lookup2x4Fn = void (*)(const uint8_t *a, const uint8_t *b, size_t first, size_t n, const uint8_t table[256],
                             uint8_t *y);
Lookup2x4Fn lookup2x4_vbmi();

bool column_sums_portable(const int8_t *B, size_t K4, size_t N, int64_t *sums);
bool column_sums_avx512(const int8_t *B, size_t K4, size_t N, int64_t *sums);

// acc[c] += (x[c] - z) * w[c] for c < C: one tap of a depthwise window, in
// int64 (16-bit inputs, or more taps than int32 holds).
void depthwise_tap(const uint16_t *x, const int8_t *w, int32_t z, size_t C, int64_t *acc);

} // namespace npuref

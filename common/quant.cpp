#include "quant.h"

#include <immintrin.h>

#include <algorithm>
#include <cmath>
#include <cstring>

namespace bwq {

QParams qparams(float lo, float hi, unsigned bits)
{
        QParams p;
        p.qmax = int32_t((1u << bits) - 1);
        p.scale = (hi - lo) / float(p.qmax);
        // A zero-width range would divide by zero; any scale maps it to z.
        if (!(p.scale > 0.0f))
                p.scale = 1.0f;
        float z = std::nearbyint(-lo / p.scale);
        p.zero = int32_t(std::clamp(z, 0.0f, float(p.qmax)));
        return p;
}

uint32_t quantize_one(float x, const QParams &p)
{
        float q = std::nearbyint(x / p.scale) + float(p.zero);
        if (!(q >= 0.0f)) // also NaN
                return 0;
        return q > float(p.qmax) ? uint32_t(p.qmax) : uint32_t(q);
}

// Multiversioned: the loops vectorise, and every clone computes the same
// IEEE division and round-half-even, so results are bit-identical.
#define NPU_CLONES __attribute__((target_clones("arch=x86-64-v4", "avx2", "default")))

// quantize_one over a row, for any output width.
template <typename T> static inline void quantize_to(const float *src, size_t n, float scale, float zero, float qmax, T *dst)
{
        for (size_t i = 0; i < n; i++) {
                float q = std::nearbyint(src[i] / scale) + zero;
                q = !(q >= 0.0f) ? 0.0f : q > qmax ? qmax : q; // NaN -> 0
                dst[i] = T(q);
        }
}

// Multiversioned instances (clang multiversions no templates).
NPU_CLONES static void quantize_u16(const float *src, size_t n, float scale, float zero, float qmax, uint16_t *dst)
{
        quantize_to(src, n, scale, zero, qmax, dst);
}

NPU_CLONES static void quantize_u8(const float *src, size_t n, float scale, float zero, float qmax, uint8_t *dst)
{
        quantize_to(src, n, scale, zero, qmax, dst);
}

// Whole packing groups from one value per element (u8 or u16).
template <typename Q> static inline void pack4_groups(const Q *q, size_t pairs, uint8_t *dst)
{
        for (size_t i = 0; i < pairs; i++)
                dst[i] = uint8_t((q[2 * i] & 0xf) | (q[2 * i + 1] & 0xf) << 4);
}

template <typename Q> static inline void pack6_groups(const Q *q, size_t quads, uint8_t *dst)
{
        for (size_t i = 0; i < quads; i++) {
                uint32_t w = uint32_t(q[4 * i] & 63) | uint32_t(q[4 * i + 1] & 63) << 6 |
                             uint32_t(q[4 * i + 2] & 63) << 12 | uint32_t(q[4 * i + 3] & 63) << 18;
                dst[3 * i] = uint8_t(w);
                dst[3 * i + 1] = uint8_t(w >> 8);
                dst[3 * i + 2] = uint8_t(w >> 16);
        }
}

// 16 groups per instruction sequence: bytes a,b,c,d -> a | b<<6 | c<<12 |
// d<<18 with two multiply-adds, then vpermb packs three bytes of each word.
// GCC 12 warns that the masked intrinsics' undefined pass-through "may be used
// uninitialized" (never read).
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif
#define NPU_VBMI __attribute__((target("avx512f,avx512bw,avx512vbmi")))
NPU_VBMI static inline void pack6_block_vbmi(__m512i v, uint8_t *dst)
{
        alignas(64) static const uint8_t idx_bytes[64] = {0,  1,  2,  4,  5,  6,  8,  9,  10, 12, 13, 14, 16, 17, 18, 20,
                                                          21, 22, 24, 25, 26, 28, 29, 30, 32, 33, 34, 36, 37, 38, 40, 41,
                                                          42, 44, 45, 46, 48, 49, 50, 52, 53, 54, 56, 57, 58, 60, 61, 62};
        const __m512i idx = _mm512_load_si512(idx_bytes);
        const __m512i mul1 = _mm512_set1_epi16(0x4001);      // (1, 64) per byte pair
        const __m512i mul2 = _mm512_set1_epi32(0x10000001);  // (1, 4096) per 16-bit pair
        v = _mm512_and_si512(v, _mm512_set1_epi8(63));
        __m512i w = _mm512_madd_epi16(_mm512_maddubs_epi16(v, mul1), mul2);
        _mm512_mask_storeu_epi8(dst, 0xffffffffffffull, _mm512_maskz_permutexvar_epi8(~0ull, idx, w));
}

NPU_VBMI static void pack6_u8_vbmi(const uint8_t *q, size_t quads, uint8_t *dst)
{
        size_t i = 0;
        for (; i + 16 <= quads; i += 16)
                pack6_block_vbmi(_mm512_loadu_si512(q + 4 * i), dst + 3 * i);
        pack6_groups(q + 4 * i, quads - i, dst + 3 * i);
}

NPU_VBMI static void pack6_u16_vbmi(const uint16_t *q, size_t quads, uint8_t *dst)
{
        // The low bytes of 64 values of 16 bits (all below 64 at 6 bits).
        alignas(64) static const uint8_t low_bytes[64] = {
                0,  2,  4,  6,  8,  10, 12, 14, 16, 18, 20, 22, 24, 26, 28, 30, 32, 34, 36, 38, 40, 42,
                44, 46, 48, 50, 52, 54, 56, 58, 60, 62, 64, 66, 68, 70, 72, 74, 76, 78, 80, 82, 84, 86,
                88, 90, 92, 94, 96, 98, 100, 102, 104, 106, 108, 110, 112, 114, 116, 118, 120, 122, 124, 126};
        const __m512i idx = _mm512_load_si512(low_bytes);
        size_t i = 0;
        for (; i + 16 <= quads; i += 16) {
                __m512i a = _mm512_loadu_si512(q + 4 * i), b = _mm512_loadu_si512(q + 4 * i + 32);
                pack6_block_vbmi(_mm512_permutex2var_epi8(a, idx, b), dst + 3 * i);
        }
        pack6_groups(q + 4 * i, quads - i, dst + 3 * i);
}

// 64 4-bit elements into 32 bytes: vpmaddubsw makes lo + 16 hi of each
// byte pair, vpmovwb keeps the low byte of each word.
#define NPU_AVX512BW __attribute__((target("avx512f,avx512bw")))
NPU_AVX512BW static void pack4_u8_avx512(const uint8_t *q, size_t pairs, uint8_t *dst)
{
        const __m512i mul = _mm512_set1_epi16(0x1001), mask = _mm512_set1_epi8(15);
        size_t i = 0;
        for (; i + 32 <= pairs; i += 32) {
                __m512i v = _mm512_and_si512(_mm512_loadu_si512(q + 2 * i), mask);
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(dst + i), _mm512_cvtepi16_epi8(_mm512_maddubs_epi16(v, mul)));
        }
        pack4_groups(q + 2 * i, pairs - i, dst + i);
}

// AVX2: the same two multiply-adds per 8 groups a lane; vpshufb packs
// three bytes of each word within its 128-bit lane and vpermd closes the
// gap between the lanes: 32 values below 64 become the register's first 24
// bytes (the last 8 are left over).
#define NPU_AVX2 __attribute__((target("avx2")))
NPU_AVX2 static inline __m256i pack6_avx2(__m256i v)
{
        const __m256i mul1 = _mm256_set1_epi16(0x4001), mul2 = _mm256_set1_epi32(0x10000001);
        const __m256i three = _mm256_setr_epi8(0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1,  //
                                               0, 1, 2, 4, 5, 6, 8, 9, 10, 12, 13, 14, -1, -1, -1, -1);
        const __m256i join = _mm256_setr_epi32(0, 1, 2, 4, 5, 6, 3, 7);
        const __m256i w = _mm256_madd_epi16(_mm256_maddubs_epi16(v, mul1), mul2);
        return _mm256_permutevar8x32_epi32(_mm256_shuffle_epi8(w, three), join);
}

// Each step stores 32 bytes of which 24 are its own: it runs while the 8
// after them are still this call's to write.
NPU_AVX2 static void pack6_u8_avx2(const uint8_t *q, size_t quads, uint8_t *dst)
{
        size_t i = 0;
        for (; i + 11 <= quads; i += 8)
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(dst + 3 * i),
                                    pack6_avx2(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(q + 4 * i))));
        pack6_groups(q + 4 * i, quads - i, dst + 3 * i);
}

// 32 6-bit elements from 24 bytes: each lane takes 12 of them (the upper
// lane loaded from 12 bytes on), vpshufb puts each 3-byte group in a
// dword, and shifts move its four 6-bit fields to the dword's bytes.
// Each step reads 28 bytes: it runs while they are inside the tensor.
NPU_AVX2 static void unpack6_avx2(const uint8_t *src, size_t quads, uint8_t *dst)
{
        const __m256i groups = _mm256_setr_epi8(0, 1, 2, 2, 3, 4, 5, 5, 6, 7, 8, 8, 9, 10, 11, 11,  //
                                                0, 1, 2, 2, 3, 4, 5, 5, 6, 7, 8, 8, 9, 10, 11, 11);
        const __m256i m0 = _mm256_set1_epi32(0x3f), m1 = _mm256_set1_epi32(0x3f00), m2 = _mm256_set1_epi32(0x3f0000),
                      m3 = _mm256_set1_epi32(0x3f000000);
        size_t i = 0;
        for (; i + 10 <= quads; i += 8) {
                const __m128i a = _mm_loadu_si128(reinterpret_cast<const __m128i *>(src + 3 * i));
                const __m128i b = _mm_loadu_si128(reinterpret_cast<const __m128i *>(src + 3 * i + 12));
                const __m256i w = _mm256_shuffle_epi8(_mm256_inserti128_si256(_mm256_castsi128_si256(a), b, 1), groups);
                const __m256i v = _mm256_or_si256(
                        _mm256_or_si256(_mm256_and_si256(w, m0), _mm256_and_si256(_mm256_slli_epi32(w, 2), m1)),
                        _mm256_or_si256(_mm256_and_si256(_mm256_slli_epi32(w, 4), m2), _mm256_and_si256(_mm256_slli_epi32(w, 6), m3)));
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(dst + 4 * i), v);
        }
        for (; i < quads; i++) {
                const uint32_t w = src[3 * i] | uint32_t(src[3 * i + 1]) << 8 | uint32_t(src[3 * i + 2]) << 16;
                for (int j = 0; j < 4; j++)
                        dst[4 * i + j] = uint8_t((w >> (6 * j)) & 63);
        }
}

static bool have_avx512bw()
{
        static const bool yes = __builtin_cpu_supports("avx512bw");
        return yes;
}

static bool have_avx2()
{
        static const bool yes = __builtin_cpu_supports("avx2");
        return yes;
}

static bool have_vbmi()
{
        static const bool yes = __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vbmi");
        return yes;
}

// Multiversioned instances (clang multiversions no templates).
NPU_CLONES static void pack4_u8(const uint8_t *q, size_t n, uint8_t *dst) { pack4_groups(q, n, dst); }
NPU_CLONES static void pack4_u16(const uint16_t *q, size_t n, uint8_t *dst) { pack4_groups(q, n, dst); }
NPU_CLONES static void pack6_u8(const uint8_t *q, size_t n, uint8_t *dst) { pack6_groups(q, n, dst); }
NPU_CLONES static void pack6_u16(const uint16_t *q, size_t n, uint8_t *dst) { pack6_groups(q, n, dst); }

// Copies bytes to dst with non-temporal stores where dst is 64-byte
// aligned (the head and tail by memcpy): for outputs far larger than the
// caches, where an ordinary store first reads the line it writes.
NPU_AVX512BW static void stream_copy(uint8_t *dst, const uint8_t *src, size_t bytes)
{
        const size_t head = std::min(bytes, size_t(-reinterpret_cast<uintptr_t>(dst) & 63));
        std::memcpy(dst, src, head);
        size_t i = head;
        for (; i + 64 <= bytes; i += 64)
                _mm512_stream_si512(reinterpret_cast<__m512i *>(dst + i), _mm512_loadu_si512(src + i));
        std::memcpy(dst + i, src + i, bytes - i);
}

// Outputs past this many bytes are written with non-temporal stores (as
// memcpy does past a threshold of its own): they will not stay in the
// caches anyway.
constexpr size_t kStreamBytes = size_t(8) << 20;

// 4 and 6 bits with AVX2, 32 elements a step: quantize_to's operations on
// four registers of floats (the division, round to nearest in the current
// mode, the zero point, the clamp with NaN to 0), the bytes packed in
// registers (pack6_avx2, and pack4's multiply-add), no byte buffer between.
NPU_AVX2 static inline __m256i quantize32_avx2(const float *src, __m256 scale, __m256 zero, __m256 qmax)
{
        __m256i q[4];
        for (int k = 0; k < 4; k++) {
                __m256 v = _mm256_div_ps(_mm256_loadu_ps(src + 8 * k), scale);
                v = _mm256_add_ps(_mm256_round_ps(v, _MM_FROUND_CUR_DIRECTION), zero);
                v = _mm256_min_ps(_mm256_max_ps(v, _mm256_setzero_ps()), qmax);  // vmaxps gives 0 for NaN
                q[k] = _mm256_cvttps_epi32(v);
        }
        // Dwords of elements 0-3, 8-11, 16-19, 24-27 | 4-7, 12-15, 20-23, 28-31.
        const __m256i b = _mm256_packus_epi16(_mm256_packus_epi32(q[0], q[1]), _mm256_packus_epi32(q[2], q[3]));
        return _mm256_permutevar8x32_epi32(b, _mm256_setr_epi32(0, 4, 1, 5, 2, 6, 3, 7));
}

// Elements [0, n) with n a multiple of 32; returns how many it did (it stops
// where the next 32-byte store of 6-bit groups would pass the output).
NPU_AVX2 static size_t quantize_pack_avx2(const float *src, size_t n, float scale, float zero, float qmax, unsigned bits,
                                          uint8_t *dst)
{
        const __m256 s = _mm256_set1_ps(scale), z = _mm256_set1_ps(zero), m = _mm256_set1_ps(qmax);
        size_t i = 0;
        if (bits == 4) {
                const __m256i mul = _mm256_set1_epi16(0x1001);
                for (; i + 32 <= n; i += 32) {
                        const __m256i v = _mm256_maddubs_epi16(quantize32_avx2(src + i, s, z, m), mul);
                        const __m256i b = _mm256_permute4x64_epi64(_mm256_packus_epi16(v, v), 0xd8);
                        _mm_storeu_si128(reinterpret_cast<__m128i *>(dst + i / 2), _mm256_castsi256_si128(b));
                }
                return i;
        }
        for (; i + 44 <= n; i += 32)
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(dst + i / 4 * 3), pack6_avx2(quantize32_avx2(src + i, s, z, m)));
        return i;
}

void quantize_pack(const float *src, size_t count, const QParams &p, unsigned bits, uint8_t *dst)
{
        const float zero = float(p.zero), qmax = float(p.qmax);
        if (bits == 16) {
                // Little-endian hosts store u16 as the packed format itself.
                const bool stream = 2 * count >= kStreamBytes && have_avx512bw();
                uint16_t tmp[1024];
                for (size_t i = 0; i < count; i += 1024) {
                        size_t n = std::min<size_t>(1024, count - i);
                        quantize_u16(src + i, n, p.scale, zero, qmax, tmp);
                        if (stream)
                                stream_copy(dst + 2 * i, reinterpret_cast<const uint8_t *>(tmp), 2 * n);
                        else
                                std::memcpy(dst + 2 * i, tmp, 2 * n);
                }
                if (stream)
                        _mm_sfence();
                return;
        }
        if (bits == 8) {
                quantize_u8(src, count, p.scale, zero, qmax, dst);
                return;
        }
        // 4 and 6 bits: quantize a block to bytes, then pack it (blocks
        // start on group boundaries; the last one may end inside a group).
        size_t i0 = 0;
        if (have_avx2())
                i0 = quantize_pack_avx2(src, count / 32 * 32, p.scale, zero, qmax, bits, dst);
        uint8_t tmp[1024];
        for (size_t i = i0; i < count; i += 1024) {
                size_t n = std::min<size_t>(1024, count - i);
                quantize_u8(src + i, n, p.scale, zero, qmax, tmp);
                pack_u8(tmp, bits, i, n, dst);
        }
}

// One 6-bit element: bits 6e..6e+5 of the little-endian bit stream.  Only
// the one or two bytes the element occupies are touched, never the bytes
// past the tensor's ceil(elements * 6 / 8).
static inline uint8_t get6(const uint8_t *src, size_t e)
{
        size_t byte = 6 * e / 8;
        unsigned off = unsigned(6 * e % 8);
        uint32_t w = src[byte];
        if (off > 2)
                w |= uint32_t(src[byte + 1]) << 8;
        return uint8_t((w >> off) & 63);
}

// Sets the bits of `mask` in *byte to v's, leaving the others: atomically,
// because a caller packing the neighbouring range (another thread's tile
// whose boundary falls inside a packing group) may be setting the byte's
// other bits at the same time.  Each writer clears and sets only its own
// bits, so neither read-modify-write can lose the other's.
static inline void put_bits(uint8_t *byte, unsigned mask, unsigned v)
{
        __atomic_fetch_and(byte, uint8_t(~mask), __ATOMIC_RELAXED);
        __atomic_fetch_or(byte, uint8_t(v & mask), __ATOMIC_RELAXED);
}

static inline void put6(uint8_t *dst, size_t e, uint32_t v)
{
        const size_t byte = 6 * e / 8;
        const unsigned off = unsigned(6 * e % 8);
        v &= 63;
        put_bits(dst + byte, (63u << off) & 0xff, (v << off) & 0xff);
        if (off > 2)
                put_bits(dst + byte + 1, 63u >> (8 - off), v >> (8 - off));
}

// 64 4-bit elements from 32 bytes: each byte widened to 16 bits holds its
// low nibble in the low byte and its high nibble in the high byte.
NPU_AVX512BW static void unpack4_avx512(const uint8_t *src, size_t pairs, uint8_t *dst)
{
        const __m512i lo = _mm512_set1_epi16(0x000f), hi = _mm512_set1_epi16(0x00f0);
        size_t i = 0;
        for (; i + 32 <= pairs; i += 32) {
                __m512i b = _mm512_cvtepu8_epi16(_mm256_loadu_si256(reinterpret_cast<const __m256i *>(src + i)));
                __m512i v = _mm512_or_si512(_mm512_and_si512(b, lo), _mm512_slli_epi16(_mm512_and_si512(b, hi), 4));
                _mm512_storeu_si512(dst + 2 * i, v);
        }
        for (; i < pairs; i++) {
                dst[2 * i] = src[i] & 0xf;
                dst[2 * i + 1] = src[i] >> 4;
        }
}

// 64 6-bit elements from 48 bytes: vpermb puts each 3-byte group in its own
// dword, vpmultishiftqb picks the four 6-bit fields of each.
NPU_VBMI static void unpack6_vbmi(const uint8_t *src, size_t quads, uint8_t *dst)
{
        alignas(64) static const uint8_t groups[64] = {0,  1,  2,  2,  3,  4,  5,  5,  6,  7,  8,  8,  9,  10, 11, 11,
                                                       12, 13, 14, 14, 15, 16, 17, 17, 18, 19, 20, 20, 21, 22, 23, 23,
                                                       24, 25, 26, 26, 27, 28, 29, 29, 30, 31, 32, 32, 33, 34, 35, 35,
                                                       36, 37, 38, 38, 39, 40, 41, 41, 42, 43, 44, 44, 45, 46, 47, 47};
        const __m512i idx = _mm512_load_si512(groups);
        const __m512i shifts = _mm512_set1_epi64(0x322c2620120c0600);  // bit offsets 0,6,12,18,32,38,44,50
        const __m512i mask = _mm512_set1_epi8(63);
        size_t i = 0;
        // 64 bytes loaded for 48 used while 64 are inside the tensor; the
        // last blocks load only their own bytes (a masked load does not
        // touch the bytes it leaves out), the last partial one stores only
        // its own elements.
        for (; i + 22 <= quads; i += 16) {
                __m512i v = _mm512_permutexvar_epi8(idx, _mm512_loadu_si512(src + 3 * i));
                _mm512_storeu_si512(dst + 4 * i, _mm512_and_si512(_mm512_multishift_epi64_epi8(shifts, v), mask));
        }
        for (; i < quads; i += 16) {
                const size_t q = quads - i < 16 ? quads - i : 16;
                const __mmask64 in = (uint64_t(1) << (3 * q)) - 1, out = q == 16 ? ~uint64_t(0) : (uint64_t(1) << (4 * q)) - 1;
                __m512i v = _mm512_permutexvar_epi8(idx, _mm512_maskz_loadu_epi8(in, src + 3 * i));
                _mm512_mask_storeu_epi8(dst + 4 * i, out, _mm512_and_si512(_mm512_multishift_epi64_epi8(shifts, v), mask));
        }
}

NPU_CLONES static void unpack4_pairs(const uint8_t *__restrict src, size_t pairs, uint8_t *__restrict dst)
{
        for (size_t i = 0; i < pairs; i++) {
                dst[2 * i] = src[i] & 0xf;
                dst[2 * i + 1] = src[i] >> 4;
        }
}

NPU_CLONES static void unpack6_quads(const uint8_t *__restrict src, size_t quads, uint8_t *__restrict dst)
{
        for (size_t i = 0; i < quads; i++) {
                uint32_t w = src[3 * i] | uint32_t(src[3 * i + 1]) << 8 | uint32_t(src[3 * i + 2]) << 16;
                dst[4 * i] = uint8_t(w & 63);
                dst[4 * i + 1] = uint8_t((w >> 6) & 63);
                dst[4 * i + 2] = uint8_t((w >> 12) & 63);
                dst[4 * i + 3] = uint8_t((w >> 18) & 63);
        }
}

void unpack_u8(const uint8_t *src, unsigned bits, size_t first, size_t count, uint8_t *dst)
{
        switch (bits) {
        case 8:
                std::memcpy(dst, src + first, count);
                return;
        case 4: {
                size_t i = 0;
                if ((first & 1) && count) {
                        dst[0] = src[first >> 1] >> 4;
                        i = 1;
                }
                const size_t pairs = (count - i) / 2;
                (have_avx512bw() ? unpack4_avx512 : unpack4_pairs)(src + ((first + i) >> 1), pairs, dst + i);
                for (i += 2 * pairs; i < count; i++) {
                        size_t e = first + i;
                        dst[i] = uint8_t((src[e >> 1] >> ((e & 1) * 4)) & 0xf);
                }
                return;
        }
        case 6: {
                size_t i = 0;
                // Head up to a group boundary, whole groups, then the tail.
                for (; i < count && ((first + i) & 3); i++)
                        dst[i] = get6(src, first + i);
                const size_t quads = (count - i) / 4;
                (have_vbmi() ? unpack6_vbmi : have_avx2() ? unpack6_avx2 : unpack6_quads)(src + (first + i) / 4 * 3, quads, dst + i);
                for (i += 4 * quads; i < count; i++)
                        dst[i] = get6(src, first + i);
                return;
        }
        default: // 16 bits do not fit; callers use unpack_u16
                std::memset(dst, 0, count);
        }
}

NPU_AVX512BW static void split16_avx512(const uint8_t *src, size_t n, uint8_t *hi, uint8_t *lo)
{
        size_t i = 0;
        for (; i + 32 <= n; i += 32) {
                __m512i v = _mm512_loadu_si512(src + 2 * i);
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(lo + i), _mm512_cvtepi16_epi8(v));
                _mm256_storeu_si256(reinterpret_cast<__m256i *>(hi + i), _mm512_cvtepi16_epi8(_mm512_srli_epi16(v, 8)));
        }
        for (; i < n; i++) {
                lo[i] = src[2 * i];
                hi[i] = src[2 * i + 1];
        }
}

NPU_CLONES static void split16_plain(const uint8_t *__restrict src, size_t n, uint8_t *__restrict hi, uint8_t *__restrict lo)
{
        for (size_t i = 0; i < n; i++) {
                lo[i] = src[2 * i];
                hi[i] = src[2 * i + 1];
        }
}

void split_u16(const uint8_t *src, size_t n, uint8_t *hi, uint8_t *lo)
{
        (have_avx512bw() ? split16_avx512 : split16_plain)(src, n, hi, lo);
}

void unpack_u16(const uint8_t *src, unsigned bits, size_t first, size_t count, uint16_t *dst)
{
        if (bits == 16) {
                std::memcpy(dst, src + 2 * first, 2 * count);
                return;
        }
        uint8_t tmp[1024];
        for (size_t i = 0; i < count; i += 1024) {
                size_t n = std::min<size_t>(1024, count - i);
                unpack_u8(src, bits, first + i, n, tmp);
                for (size_t k = 0; k < n; k++)
                        dst[i + k] = tmp[k];
        }
}

NPU_CLONES
static void pack8(const uint16_t *q, size_t n, uint8_t *dst)
{
        for (size_t i = 0; i < n; i++)
                dst[i] = uint8_t(q[i]);
}

// Element by element, keeping the neighbours that share a byte (put_bits:
// a neighbouring range's caller may be writing them at the same time).
template <typename Q> static void pack_slow(const Q *src, unsigned bits, size_t first, size_t count, uint8_t *dst)
{
        for (size_t i = 0; i < count; i++) {
                const size_t e = first + i;
                const unsigned v = unsigned(src[i]);
                if (bits == 4)
                        put_bits(dst + (e >> 1), (e & 1) ? 0xf0u : 0x0fu, (e & 1) ? (v & 15) << 4 : v & 15);
                else
                        put6(dst, e, v);
        }
}

// 4 and 6 bits: the head up to a group boundary and the tail element by
// element, the whole groups between them by `groups4` / `groups6`.
template <typename Q, typename G4, typename G6>
static void pack_narrow(const Q *src, unsigned bits, size_t first, size_t count, uint8_t *dst, G4 groups4, G6 groups6)
{
        size_t g = pack_group(bits), head = std::min(count, (g - first % g) % g);
        pack_slow(src, bits, first, head, dst);
        size_t whole = (count - head) / g;
        if (bits == 4)
                groups4(src + head, whole, dst + (first + head) / 2);
        else
                groups6(src + head, whole, dst + (first + head) / 4 * 3);
        size_t done = head + whole * g;
        pack_slow(src + done, bits, first + done, count - done, dst);
}

void pack(const uint16_t *src, unsigned bits, size_t first, size_t count, uint8_t *dst)
{
        switch (bits) {
        case 16:
                std::memcpy(dst + 2 * first, src, 2 * count);
                return;
        case 8:
                pack8(src, count, dst + first);
                return;
        case 4:
        case 6:
                pack_narrow(src, bits, first, count, dst, pack4_u16, have_vbmi() ? pack6_u16_vbmi : pack6_u16);
                return;
        default:
                return;
        }
}

void pack_u8(const uint8_t *src, unsigned bits, size_t first, size_t count, uint8_t *dst)
{
        switch (bits) {
        case 8:
                std::memcpy(dst + first, src, count);
                return;
        case 4:
        case 6:
                pack_narrow(src, bits, first, count, dst, have_avx512bw() ? pack4_u8_avx512 : pack4_u8,
                            have_vbmi() ? pack6_u8_vbmi : have_avx2() ? pack6_u8_avx2 : pack6_u8);
                return;
        default:  // 16 bits do not fit in u8 values; callers use pack
                return;
        }
}

void unpack_dequantize(const uint8_t *src, size_t count, const QParams &p, unsigned bits, float *dst)
{
        uint16_t tmp[1024];
        for (size_t i = 0; i < count; i += 1024) {
                size_t n = std::min<size_t>(1024, count - i);
                unpack_u16(src, bits, i, n, tmp);
                for (size_t k = 0; k < n; k++)
                        dst[i + k] = dequantize_one(tmp[k], p);
        }
}

} // namespace bwq

// Activation quantization and bit packing (DESIGN §5.3).
#pragma once

#include <cstddef>
#include <cstdint>

#include "depth.h"

namespace bwq {

// Bytes of a tensor of `elements` activations at `bits`.
constexpr uint64_t packed_bytes(uint64_t elements, unsigned bits) { return (elements * bits + 7) / 8; }

// Unsigned affine parameters of a range [lo, hi] (lo <= 0 <= hi) at `bits`.
struct QParams {
        float scale;
        int32_t zero;
        int32_t qmax;
};
QParams qparams(float lo, float hi, unsigned bits);

// q = clamp(round_half_even(x / s) + z, 0, qmax).
uint32_t quantize_one(float x, const QParams &p);
inline float dequantize_one(uint32_t q, const QParams &p) { return p.scale * float(int32_t(q) - p.zero); }

// Unpack elements [first, first + count) of a packed tensor.
void unpack_u8(const uint8_t *src, unsigned bits, size_t first, size_t count, uint8_t *dst);
void unpack_u16(const uint8_t *src, unsigned bits, size_t first, size_t count, uint16_t *dst);
// 16-bit elements [0, n) of a tensor as two u8 planes: q = 256 hi + lo.
void split_u16(const uint8_t *src, size_t n, uint8_t *hi, uint8_t *lo);
// Pack count values into elements [first, first + count) of a packed tensor.
// Any range: where it starts or ends inside a packing group (2 elements at
// 4 bits, 4 at 6 bits) only its own elements' bits of the shared bytes
// change, atomically, so threads may pack neighbouring ranges at once.
void pack(const uint16_t *src, unsigned bits, size_t first, size_t count, uint8_t *dst);
// The same from u8 values, at 4, 6 or 8 bits.
void pack_u8(const uint8_t *src, unsigned bits, size_t first, size_t count, uint8_t *dst);

// Elements per indivisible packing group.
constexpr size_t pack_group(unsigned bits) { return bits == 4 ? 2 : bits == 6 ? 4 : 1; }

// Quantize and pack float values (the host's input path).
void quantize_pack(const float *src, size_t count, const QParams &p, unsigned bits, uint8_t *dst);
void unpack_dequantize(const uint8_t *src, size_t count, const QParams &p, unsigned bits, float *dst);

} // namespace bwq

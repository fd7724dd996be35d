// What the 16-bit GEMM kernels of every instruction set share: how long
// their int32 sums stay exact, the thread's int16 weight slices, and the
// values shifted into int16 once per call.  Internal linkage throughout:
// each kernel file compiles its own copy with its own instruction set
// (a shared inline copy could be the other file's, with instructions this
// CPU lacks).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

#include "kernels.h"
#include "per_thread.h"

namespace npuref {
namespace {

// The kernels add products of u16 values shifted into int16 (x ^ 0x8000)
// and int8 weights in int32 lanes.  Up to kInt16Blocks blocks (256 values)
// the sum of (x - z) w fits int32 (256 x 65535 x 128 < 2^31) and is formed
// there.  Longer rows add each chunk's sums, exact in int32 over up to
// kChunk16 blocks (508 x 32768 x 128 < 2^31), into doubles, exact below
// 2^53.  Either way the float, rounded once from the exact value, is the
// wide epilogue's float of its int64.
constexpr size_t kInt16Blocks = 64, kChunk16 = 127;

template <typename T> T *grown(std::vector<T> &v, size_t n)
{
        if (v.size() < n)
                v.resize(n);
        return v.data();
}

// The bytes [lo, lo + span) past A.base that rows [0, M) read, each run
// `run` bytes long; false where that span is much more than they read
// (more than 4 times), or more than 2 MB.
inline bool read_span(const GemmA &A, size_t M, size_t run, ptrdiff_t &lo, size_t &span)
{
        if (M == 0 || A.taps == 0)
                return false;
        lo = A.tap_off[0];
        ptrdiff_t hi = A.tap_off[0];
        for (unsigned t = 1; t < A.taps; t++) {
                lo = A.tap_off[t] < lo ? A.tap_off[t] : lo;
                hi = A.tap_off[t] > hi ? A.tap_off[t] : hi;
        }
        span = size_t(hi - lo) + (M - 1) * A.lda + run;
        const size_t used = M * A.taps * run;
        return span <= 4 * used && span <= (size_t(2) << 20);
}

// A copy of A (base and tap offsets) reading `bytes` instead of A.base + lo.
inline GemmA moved(const GemmA &A, ptrdiff_t lo, const uint8_t *bytes, std::vector<ptrdiff_t> &taps)
{
        taps.resize(A.taps);
        for (unsigned t = 0; t < A.taps; t++)
                taps[t] = A.tap_off[t] - lo;
        GemmA out = A;
        out.base = bytes;
        out.tap_off = taps.data();
        return out;
}

// A thread's int16 slices of 16 columns, 64 values per K block in the
// order LayOut(b0, nkb, d) writes them.  With GemmEpilogue::stamp, a
// group's slices (up to kCached16 bytes of them, which stay in its L2) are
// laid out once per stamp and B, as the calls first need them; otherwise
// (no stamp, or larger weights, which the int8 slices stream past at half
// the bytes) every call lays out its own, into buffer `which` (0 or 1: two
// slices in use at once).
constexpr size_t kCached16 = size_t(256) << 10;
using LayOut16 = void (*)(const int8_t *b0, size_t nkb, int16_t *d);
template <LayOut16 LayOut> struct Weights16 {
        std::vector<int16_t> cached, one[2];
        std::vector<uint8_t> ready;  // per slice of `cached`
        const int8_t *B = nullptr;
        size_t K4 = 0;
        uint64_t stamp = 0;

        // Slice n0 / 16 of B (N columns) over K blocks [0, nkb).
        const int16_t *slice(const int8_t *b, size_t k4, size_t N, size_t n0, size_t nkb, uint64_t st, int which = 0)
        {
                const size_t slices = (N + 15) / 16, s = n0 / 16;
                const int8_t *b0 = b + s * k4 * 16;
                if (!st || slices * k4 * 32 > kCached16) {
                        LayOut(b0, nkb, grown(one[which], nkb * 64));
                        return one[which].data();
                }
                if (st != stamp || b != B || k4 != K4) {
                        B = b;
                        K4 = k4;
                        stamp = st;
                        ready.assign(slices, 0);
                }
                if (ready.size() < slices)
                        ready.resize(slices, 0);
                int16_t *d = grown(cached, slices * k4 * 16) + s * k4 * 16;
                if (!ready[s]) {
                        LayOut(b0, k4 / 4, d);
                        ready[s] = 1;
                }
                return d;
        }
};

// A's values shifted into int16 (x ^ 0x8000) over the span its rows read,
// into thread-local scratch: once per call instead of in every slice's
// and every overlapping tap's inner loop.  False (nothing formed) where
// the rows read much less than the span they cover.  xor_bulk(src, d, n)
// shifts a prefix of the n bytes with vectors and returns its length.
struct Shifted16 {
        std::vector<uint8_t> bytes;
        std::vector<ptrdiff_t> taps;
};

template <typename XorBulk> inline bool shifted_span(const GemmA &A, size_t M, GemmA &out, XorBulk xor_bulk)
{
        ptrdiff_t lo;
        size_t span;
        if (!read_span(A, M, 8 * A.kbt, lo, span))
                return false;
        Shifted16 &sc = PerThread<Shifted16>::get();
        uint8_t *d = grown(sc.bytes, span + 64);
        const uint8_t *src = A.base + lo;
        for (size_t i = xor_bulk(src, d, span); i < span; i += 2) {  // whole values: lo, lda, the runs count even bytes
                d[i] = src[i];
                d[i + 1] = uint8_t(src[i + 1] ^ 0x80);
        }
        out = moved(A, lo, d, sc.taps);
        return true;
}

} // namespace
} // namespace npuref

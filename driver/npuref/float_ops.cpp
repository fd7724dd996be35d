// The ops npuref computes on dequantized values: pools, ADD, MUL, CONCAT,
// RESIZE, DEPTH_TO_SPACE.  Each reads its inputs where they lie (in place
// at 8 and 16 bits; at 4 and 6 unpacked to bytes once), dequantizes a tile
// of rows into floats, computes and quantizes the tile with the float
// epilogue, and writes it packed: no 16-bit copy of an input or output.
#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>

#include <emmintrin.h>

#include "layer.h"

namespace npuref {

namespace {

// One input as the op reads it: u8 values (8 bits in place, 4 and 6
// unpacked where the op reads them, or all at once for a MAXPOOL's
// windows) or u16 (16 bits in place, or copied when misaligned).
struct In {
        const uint8_t *b = nullptr;
        const uint16_t *w = nullptr;
        bwq::QParams qp{};
        size_t base = 0;                  // the element b[0] holds
        const uint8_t *packed = nullptr;  // 4 and 6 bits, unpacked by bytes()
        unsigned bits = 0;
        int slot = 0;  // its thread scratch for bytes()
        bool lookups4 = false;  // packed 4-bit codes looked up through lut
        float lut[16] = {};     // their floats (code_floats4), where lookups4

        // Elements [first, first + n) as u8 values: in place, or unpacked
        // into the calling thread's scratch (valid until its next call).
        const uint8_t *bytes(size_t first, size_t n) const
        {
                if (!packed)
                        return b + (first - base);
                uint8_t *u = scratch(tls().in8[slot], n);
                bwq::unpack_u8(packed, bits, first, n, u);
                return u;
        }
        // Elements [first, first + n) unpacked once for the reads that
        // follow (a tile's rows), in the thread's scratch of `slot`.
        In view(size_t first, size_t n) const
        {
                if (!packed)
                        return *this;
                In v = *this;
                v.b = bytes(first, n);
                v.base = first;
                v.packed = nullptr;
                return v;
        }
        void deq(size_t first, size_t n, float *y) const
        {
                if (packed)
                        dequantize_packed(lookups4 ? lut : nullptr, packed, bits, first, n, qp, y);
                else if (b)
                        dequantize_row(bytes(first, n), n, qp, y);
                else
                        dequantize_row(w + first, n, qp, y);
        }
};

In prepare_input(const uint8_t *src, const Act &a, size_t count, size_t i, ThreadPool *pool, bool whole, bool lookups4)
{
        In in;
        in.qp = a.qp;
        in.slot = int(i % 2);
        if ((a.bits == 4 || a.bits == 6) && !whole) {
                in.packed = src;
                in.bits = a.bits;
                in.lookups4 = lookups4 && a.bits == 4;
                if (in.lookups4)
                        code_floats4(a.qp, in.lut);
                return in;
        }
        if (a.bits == 8) {
                in.b = src;
        } else if (a.bits == 16 && reinterpret_cast<uintptr_t>(src) % alignof(uint16_t) == 0) {
                in.w = reinterpret_cast<const uint16_t *>(src);
        } else if (a.bits == 16) {
                rs().inq[i].resize(count);
                unpack_all(pool, src, 16, count, rs().inq[i].data());
                in.w = rs().inq[i].data();
        } else {
                rs().inq8[i].resize(count);
                unpack_all_u8(pool, src, a.bits, count, rs().inq8[i].data());
                in.b = rs().inq8[i].data();
        }
        return in;
}

// A bilinear source position: o's centre in the input, clamped to its
// edges, between pixels i0 and i1 at weight f of i1.
struct Lerp {
        size_t i0, i1;
        float f;
};

std::vector<Lerp> lerp_table(uint32_t out, uint32_t scale, uint32_t in)
{
        std::vector<Lerp> t(out);
        for (size_t o = 0; o < out; o++) {
                float v = (float(o) + 0.5f) / float(scale) - 0.5f;
                v = std::min(std::max(v, 0.0f), float(in - 1));
                t[o].i0 = size_t(v);
                t[o].i1 = std::min<size_t>(t[o].i0 + 1, in - 1);
                t[o].f = v - float(t[o].i0);
        }
        return t;
}

// best[i] = max(best[i], q[i]), in vectors.
template <typename T> inline void max_into(T *__restrict best, const T *__restrict q, size_t n)
{
        for (size_t i = 0; i < n; i++)
                best[i] = best[i] > q[i] ? best[i] : q[i];
}

// best[i] = f(best[i], q[i]) over bytes, 16 at a time with vf (SSE2, every
// x86-64 CPU), the last 16 overlapping the ones before where n is not a
// multiple: f is a maximum, which taken twice is the same, so a pixel's
// few channels (28, say) take two steps, not a vector and a scalar tail.
template <typename F, typename VF>
inline void max_bytes(uint8_t *__restrict best, const uint8_t *__restrict q, size_t n, F f, VF vf)
{
        if (n < 16) {
                for (size_t i = 0; i < n; i++)
                        best[i] = f(best[i], q[i]);
                return;
        }
        auto at = [&](size_t i) {
                __m128i *d = reinterpret_cast<__m128i *>(best + i);
                _mm_storeu_si128(d, vf(_mm_loadu_si128(d), _mm_loadu_si128(reinterpret_cast<const __m128i *>(q + i))));
        };
        size_t i = 0;
        for (; i + 16 <= n; i += 16)
                at(i);
        if (i < n)
                at(n - 16);
}

inline void max_into(uint8_t *__restrict best, const uint8_t *__restrict q, size_t n)
{
        max_bytes(best, q, n, [](uint8_t a, uint8_t b) { return a > b ? a : b; },
                  [](__m128i a, __m128i b) { return _mm_max_epu8(a, b); });
}

// max_into on bytes of two 4-bit codes each (bwq::pack_u8's layout): each
// nibble's maximum, the low ones and the high ones masked apart (a high
// nibble orders its byte when the low bits are zero).
inline void max_nibbles(uint8_t *__restrict best, const uint8_t *__restrict q, size_t n)
{
        const __m128i low = _mm_set1_epi8(0x0f), high = _mm_set1_epi8(char(0xf0));
        max_bytes(
                best, q, n, [](uint8_t a, uint8_t b) { return uint8_t(std::max(a & 0x0f, b & 0x0f) | std::max(a & 0xf0, b & 0xf0)); },
                [&](__m128i a, __m128i b) {
                        return _mm_or_si128(_mm_max_epu8(_mm_and_si128(a, low), _mm_and_si128(b, low)),
                                            _mm_max_epu8(_mm_and_si128(a, high), _mm_and_si128(b, high)));
                });
}

} // namespace

void run_float_layer(const npu_layer_desc &L, const std::vector<const npu_tensor_desc *> &tin,
                     const std::vector<const uint8_t *> &src, const std::vector<Act> &inact, const npu_tensor_desc &y,
                     const Act &ay, uint8_t *ydst, const Kernels &k, ThreadPool *pool)
{
        const npu_tensor_desc &x = *tin[0];
        const size_t M = size_t(y.n) * y.h * y.w, C = y.c;
        // A MAXPOOL whose output has its input's grid and no activation:
        // dequantizing a code and quantizing it back gives the code itself
        // (the two roundings err by far less than half a step) where the
        // scale is a normal float well inside the range (1 / scale finite).
        // At 4 bits with whole bytes per pixel it pools the packed bytes.
        const bwq::QParams &qx = inact[0].qp, &qy = ay.qp;
        const bool tied = L.op == NPU_OP_MAXPOOL && L.act == NPU_ACT_NONE && inact[0].bits == ay.bits &&
                          qx.scale == qy.scale && qx.zero == qy.zero && qx.qmax == qy.qmax && qx.scale >= 0x1p-100f &&
                          qx.scale <= 0x1p100f;
        const bool tied4 = tied && ay.bits == 4 && C % 2 == 0;
        // 4-bit inputs to a 4-bit output through an op that only moves
        // values (CONCAT, a nearest RESIZE, DEPTH_TO_SPACE): each input's
        // 16 codes' outputs (dequantize_row and epilogue_float of them, so
        // the same bytes by construction) make a map, and the tile's bytes
        // are mapped from the packed codes with no floats in between.
        bool mapped = ay.bits == 4 && k.lookups4 &&
                      (L.op == NPU_OP_CONCAT || (L.op == NPU_OP_RESIZE && L.kernel_h == 1) || L.op == NPU_OP_DEPTH_TO_SPACE);
        for (const Act &a : inact)
                mapped = mapped && a.bits == 4;
        // 4- and 6-bit inputs unpacked tile by tile where an op reads its
        // rows in order (ADD, MUL, CONCAT, bilinear RESIZE), else all at
        // once; mapped ones read packed.
        const bool whole = !(mapped || L.op == NPU_OP_ADD || L.op == NPU_OP_MUL || L.op == NPU_OP_CONCAT ||
                             (L.op == NPU_OP_RESIZE && L.kernel_h != 1));
        std::vector<In> in(tin.size());
        for (size_t i = 0; i < tin.size(); i++)
                in[i] = tied4 ? In{src[i], nullptr, qx}
                              : prepare_input(src[i], inact[i], tensor_elements(*tin[i]), i, pool, whole, k.lookups4);
        const OutQuant oq = out_quant(ay.qp, L.act);
        // The first input element that output pixel (b, oy, ox) of a
        // nearest RESIZE or a DEPTH_TO_SPACE copies, with the C after it.
        auto source = [&](size_t b, size_t oy, size_t ox) {
                const size_t px = (b * x.h + oy / L.stride_h) * x.w + ox / L.stride_w;
                if (L.op == NPU_OP_DEPTH_TO_SPACE)
                        return px * x.c + ((oy % L.stride_h) * L.stride_w + ox % L.stride_w) * C;
                return px * C;
        };
        // The input pixels of a pool's window (padding skipped), row by row.
        auto in_window = [&](size_t b, size_t oy, size_t ox, auto f) {
                for (uint32_t ky = 0; ky < L.kernel_h; ky++) {
                        int64_t iy = int64_t(oy * L.stride_h) - L.pad_top + ky;
                        if (iy < 0 || iy >= x.h)
                                continue;
                        for (uint32_t kx = 0; kx < L.kernel_w; kx++) {
                                int64_t ix = int64_t(ox * L.stride_w) - L.pad_left + kx;
                                if (ix >= 0 && ix < x.w)
                                        f((b * x.h + size_t(iy)) * x.w + size_t(ix));
                        }
                }
        };
        // A bilinear resize reads the input as floats, and each output row
        // and column's two source positions and weight from a table.
        // (rs is the runner's: the workers see the pointer, not their own.)
        std::vector<Lerp> lerp_x, lerp_y;
        float *xf = nullptr;
        if (L.op == NPU_OP_RESIZE && L.kernel_h != 1) {
                const size_t X = tensor_elements(x);
                rs().xf.resize(X);
                xf = rs().xf.data();
                constexpr size_t chunk = 1 << 16;
                parallel_for(pool, (X + chunk - 1) / chunk, [&](size_t c) {
                        const size_t first = c * chunk;
                        in[0].deq(first, std::min(chunk, X - first), xf + first);
                });
                lerp_x = lerp_table(y.w, L.stride_w, x.w);
                lerp_y = lerp_table(y.h, L.stride_h, x.h);
        }
        // Tiles of at least 2048 values where the rows are narrow (a
        // 16-channel RESIZE: 768 values a tile cost 10% in each tile's calls
        // and packing).
        const size_t tm = tile_rows(M, pool, (2048 + C - 1) / C);
        // ADD of two byte inputs to at most 8 bits: one pass, no float tile.
        const bool add8 = L.op == NPU_OP_ADD && (in[0].b || in[0].packed) && (in[1].b || in[1].packed) && ay.bits <= 8;
        // All three at 4 bits: 256 pairs of codes, so add_quantize's output
        // for each, looked up straight from the packed inputs.
        const Lookup2x4Fn lookup = add8 && in[0].bits == 4 && in[1].bits == 4 && ay.bits == 4 && k.lookups4 ? lookup2x4_vbmi() : nullptr;
        uint8_t table[256];
        if (lookup) {
                uint8_t qa[256], qb[256];
                for (unsigned i = 0; i < 256; i++)
                        qa[i] = uint8_t(i & 15), qb[i] = uint8_t(i >> 4);
                add_quantize(qa, in[0].qp, qb, in[1].qp, 256, L.act, oq, table);
        }
        // The code maps of `mapped` inputs.
        std::vector<std::array<uint8_t, 16>> &maps = rs().maps4;
        maps.resize(mapped ? in.size() : 0);
        for (size_t i = 0; i < maps.size(); i++) {
                float f[16];
                code_floats4(in[i].qp, f);
                epilogue_float(f, 16, L.act, oq, maps[i].data());
        }
        parallel_for(pool, (M + tm - 1) / tm, [&](size_t tile) {
                const size_t m0 = tile * tm, mt = std::min(tm, M - m0), n = mt * C;
                if (lookup) {
                        lookup(in[0].packed, in[1].packed, m0 * C, n, table, ydst);
                        return;
                }
                if (add8) {
                        uint8_t *q = ay.bits == 8 ? ydst + m0 * C : scratch(tls().q8, n);
                        add_quantize(in[0].bytes(m0 * C, n), in[0].qp, in[1].bytes(m0 * C, n), in[1].qp, n, L.act, oq, q);
                        if (ay.bits < 8)
                                store_tile(q, ay.bits, m0 * C, n, ydst);
                        return;
                }
                float *F = scratch(tls().f, n);
                // Each op leaves the tile's values in F, row r at F + r * C.
                auto each_row = [&](auto f) {
                        size_t ox = m0 % y.w, oy = (m0 / y.w) % y.h, b = m0 / (size_t(y.w) * y.h);
                        for (size_t r = 0; r < mt; r++) {
                                f(r, m0 + r, b, oy, ox);
                                if (++ox == y.w && (ox = 0, ++oy == y.h))
                                        oy = 0, b++;
                        }
                };
                if (mapped) {
                        uint8_t *Q8 = scratch(tls().q8, n);
                        auto map = [&](size_t i, size_t first, size_t count, uint8_t *d) {
                                map4_avx512(in[i].packed, first, count, maps[i].data(), d);
                        };
                        if (L.op != NPU_OP_CONCAT) {
                                each_row([&](size_t r, size_t, size_t b, size_t oy, size_t ox) { map(0, source(b, oy, ox), C, Q8 + r * C); });
                        } else {
                                size_t base = 0;
                                for (size_t i = 0; i < in.size(); i++) {
                                        const size_t ci = tin[i]->c;
                                        each_row([&](size_t r, size_t m, size_t, size_t, size_t) { map(i, m * ci, ci, Q8 + r * C + base); });
                                        base += ci;
                                }
                        }
                        store_tile(Q8, 4, m0 * C, n, ydst);
                        return;
                }
                switch (L.op) {
                case NPU_OP_ADD: {  // sa (qa - za) + sb (qb - zb): one rounding each
                        float *G = scratch(tls().f2, n);
                        in[0].deq(m0 * C, n, F);
                        in[1].deq(m0 * C, n, G);
                        add_rows(F, G, n);
                        break;
                }
                case NPU_OP_MUL: {
                        const bool bcast = tin[1]->h == 1 && tin[1]->w == 1 && (y.h != 1 || y.w != 1);
                        float *G = scratch(tls().f2, n);
                        in[0].deq(m0 * C, n, F);
                        if (bcast)
                                each_row([&](size_t r, size_t, size_t b, size_t, size_t) { in[1].deq(b * C, C, G + r * C); });
                        else
                                in[1].deq(m0 * C, n, G);
                        mul_rows(F, G, n);
                        break;
                }
                case NPU_OP_GLOBAL_AVGPOOL: {  // per channel, in double, pixels in order
                        const size_t hw = size_t(x.h) * x.w;
                        double *S = scratch(tls().d, C);
                        float *D = scratch(tls().f2, C);
                        each_row([&](size_t r, size_t, size_t b, size_t, size_t) {
                                std::fill(S, S + C, 0.0);
                                for (size_t q = 0; q < hw; q++) {
                                        in[0].deq((b * hw + q) * C, C, D);
                                        for (size_t c = 0; c < C; c++)
                                                S[c] += D[c];
                                }
                                for (size_t c = 0; c < C; c++)
                                        F[r * C + c] = float(S[c] / double(hw));
                        });
                        break;
                }
                case NPU_OP_MAXPOOL: {
                        // The scale is positive: the largest q dequantizes largest.
                        // Separable: for each run of pixels in one output row, the
                        // column maxima of the input rows its windows cover, then
                        // each pixel's maximum over its window's columns.  Pixels
                        // outside the input are skipped; an empty window gives 0.
                        // P elements per pixel (C, or C / 2 bytes of packed
                        // 4-bit codes), their maximum by mx.
                        auto pool_max = [&](auto *best, const auto *q, auto *V, size_t P, auto mx) {
                                const int64_t W = x.w, H = x.h, kw = L.kernel_w;
                                size_t ox = m0 % y.w, oy = (m0 / y.w) % y.h, b = m0 / (size_t(y.w) * y.h);
                                for (size_t r = 0; r < mt;) {
                                        const size_t len = std::min(mt - r, size_t(y.w) - ox);
                                        const int64_t x0 = int64_t(ox * L.stride_w) - L.pad_left;
                                        const int64_t lo = std::max<int64_t>(0, x0);
                                        const int64_t hi = std::clamp<int64_t>(x0 + int64_t((len - 1) * L.stride_w) + kw, lo, W);
                                        const size_t span = size_t(hi - lo) * P;
                                        std::fill(V, V + span, 0);
                                        for (uint32_t ky = 0; ky < L.kernel_h; ky++) {
                                                const int64_t iy = int64_t(oy * L.stride_h) - L.pad_top + ky;
                                                if (iy >= 0 && iy < H)
                                                        mx(V, q + ((b * x.h + size_t(iy)) * x.w + size_t(lo)) * P, span);
                                        }
                                        for (size_t i = 0; i < len; i++) {
                                                auto *d = best + (r + i) * P;
                                                const int64_t ix0 = x0 + int64_t(i * L.stride_w);
                                                const int64_t a = std::max(ix0, lo), e = std::min(ix0 + kw, hi);
                                                if (a >= e) {
                                                        std::fill(d, d + P, 0);
                                                        continue;
                                                }
                                                std::copy(V + size_t(a - lo) * P, V + size_t(a - lo + 1) * P, d);
                                                for (int64_t ix = a + 1; ix < e; ix++)
                                                        mx(d, V + size_t(ix - lo) * P, P);
                                        }
                                        r += len;
                                        if ((ox += len) == y.w && (ox = 0, ++oy == y.h))
                                                oy = 0, b++;
                                }
                        };
                        // Output codes on the input's grid (its ranges tied, as
                        // the compiler ties them, at the same depth) are the
                        // window's largest input code: the float path would
                        // dequantize and quantize it back to itself.
                        auto mx = [](auto *d, const auto *q, size_t k) { max_into(d, q, k); };
                        if (tied4) {  // m0 * C is even
                                pool_max(ydst + m0 * C / 2, in[0].b, scratch(tls().v8, size_t(x.w) * C / 2), C / 2, max_nibbles);
                                return;
                        }
                        if (tied && in[0].b) {
                                uint8_t *best = ay.bits == 8 ? ydst + m0 * C : scratch(tls().b8, n);
                                pool_max(best, in[0].b, scratch(tls().v8, size_t(x.w) * C), C, mx);
                                if (ay.bits < 8)
                                        store_tile(best, ay.bits, m0 * C, n, ydst);
                                return;
                        }
                        if (tied) {
                                uint16_t *best = scratch(tls().q2, n);
                                pool_max(best, in[0].w, scratch(tls().v16, size_t(x.w) * C), C, mx);
                                store_tile(best, ay.bits, m0 * C, n, ydst);
                                return;
                        }
                        if (in[0].b) {
                                uint8_t *best = scratch(tls().b8, n);
                                pool_max(best, in[0].b, scratch(tls().v8, size_t(x.w) * C), C, mx);
                                dequantize_row(best, n, in[0].qp, F);
                        } else {
                                uint16_t *best = scratch(tls().q2, n);
                                pool_max(best, in[0].w, scratch(tls().v16, size_t(x.w) * C), C, mx);
                                dequantize_row(best, n, in[0].qp, F);
                        }
                        break;
                }
                case NPU_OP_AVGPOOL: {  // per channel, in double, window pixels in order
                        double *S = scratch(tls().d, C);
                        float *D = scratch(tls().f2, C);
                        each_row([&](size_t r, size_t, size_t b, size_t oy, size_t ox) {
                                std::fill(S, S + C, 0.0);
                                size_t cnt = 0;
                                in_window(b, oy, ox, [&](size_t e) {
                                        in[0].deq(e * C, C, D);
                                        for (size_t c = 0; c < C; c++)
                                                S[c] += D[c];
                                        cnt++;
                                });
                                for (size_t c = 0; c < C; c++)
                                        F[r * C + c] = float(S[c] / double(cnt));
                        });
                        break;
                }
                case NPU_OP_RESIZE: {
                        auto px = [&](size_t b, size_t iy, size_t ix) { return ((b * x.h + iy) * x.w + ix) * C; };
                        if (L.kernel_h == 1) {  // nearest: the pixel it repeats
                                each_row([&](size_t r, size_t, size_t b, size_t oy, size_t ox) { in[0].deq(source(b, oy, ox), C, F + r * C); });
                                break;
                        }
                        // Bilinear, half-pixel centres, edges clamped (ONNX linear,
                        // half_pixel): from the input dequantized once.
                        each_row([&](size_t r, size_t, size_t b, size_t oy, size_t ox) {
                                const Lerp &ly = lerp_y[oy], &lx = lerp_x[ox];
                                lerp_row(F + r * C, xf + px(b, ly.i0, lx.i0), xf + px(b, ly.i0, lx.i1), xf + px(b, ly.i1, lx.i0),
                                         xf + px(b, ly.i1, lx.i1), lx.f, ly.f, C);
                        });
                        break;
                }
                case NPU_OP_DEPTH_TO_SPACE:
                        each_row([&](size_t r, size_t, size_t b, size_t oy, size_t ox) { in[0].deq(source(b, oy, ox), C, F + r * C); });
                        break;
                case NPU_OP_CONCAT: {
                        size_t base = 0;
                        for (size_t i = 0; i < in.size(); i++) {
                                const size_t ci = tin[i]->c;
                                const In v = in[i].view(m0 * ci, mt * ci);
                                each_row([&](size_t r, size_t m, size_t, size_t, size_t) { v.deq(m * ci, ci, F + r * C + base); });
                                base += ci;
                        }
                        break;
                }
                }
                // The tile quantized: in place at 8 bits, through a byte tile
                // at 4 and 6, a 16-bit one at 16.
                if (ay.bits == 8) {
                        epilogue_float(F, n, L.act, oq, ydst + m0 * C);
                } else if (ay.bits < 8) {
                        uint8_t *Q8 = scratch(tls().q8, n);
                        epilogue_float(F, n, L.act, oq, Q8);
                        store_tile(Q8, ay.bits, m0 * C, n, ydst);
                } else {
                        uint16_t *Q = scratch(tls().q, n);
                        epilogue_float(F, n, L.act, oq, Q);
                        store_tile(Q, ay.bits, m0 * C, n, ydst);
                }
        });
}

} // namespace npuref

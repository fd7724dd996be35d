// Execution of a validated job.  Each layer reads its packed inputs once,
// computes, and writes its output packed at the depth resolved for it, so a
// lower depth means fewer bytes moved, with no extra pass over memory.
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "uapi/bwq_page.h"
#include "epilogue.h"
#include "job.h"
#include "kernels.h"
#include "common/quant.h"
#include "thread_pool.h"
#include "common/depth.h"

namespace npuref {

namespace {

// Pixels per work item: a multiple of 4, so that a tile's first element
// starts a whole packing group at any depth and channel count.
constexpr size_t kTile = 48;

// Output pixels per work item of a layer of M pixels: kTile, halved (to 24
// or 12, still whole packing groups) while that leaves fewer than 16
// items per thread, so a small layer still spreads evenly.
size_t tile_rows(size_t M, const ThreadPool *pool)
{
        const size_t threads = pool ? pool->threads() : 1;
        size_t t = kTile;
        while (t > 12 && (M + t - 1) / t < 16 * threads)
                t /= 2;
        return t;
}

// K rows (of 4) per GEMM call: 65536 products of 255 x 127 fit in int32.
constexpr size_t kKBlocks = 16384;

uint64_t now_ns()
{
        timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
}

struct Act {
        unsigned bits;
        bwq::QParams qp;
};

// Grow-only scratch of one thread, kept across layers and jobs.
template <typename T> T *scratch(std::vector<T> &v, size_t n)
{
        if (v.size() < n)
                v.resize(n);
        return v.data();
}

struct ThreadScratch {
        std::vector<uint8_t> a;
        std::vector<int32_t> c32, c32lo;
        std::vector<int64_t> c64;
        std::vector<uint16_t> q;
        std::vector<float> f;
};
thread_local ThreadScratch tls;

// Grow-only scratch of a device's runner thread (the one that executes
// jobs), kept across layers and jobs: no allocation, and no fresh pages to
// fault in, per layer.  It grows to the largest layer the device has run.
struct RunnerScratch {
        std::vector<uint16_t> xq;
        std::vector<uint8_t> planes;
        std::vector<uint16_t> inq[NPU_MAX_INPUTS];
        std::vector<int64_t> wsum, zw64;
        std::vector<int32_t> zw;
        std::vector<ptrdiff_t> taps, window_taps;
        std::vector<float> mul, add;
};
thread_local RunnerScratch rs;

// Unpacks a whole tensor to u16, in parallel chunks.
void unpack_all(ThreadPool *pool, const uint8_t *src, unsigned bits, size_t count, uint16_t *dst)
{
        constexpr size_t chunk = 1 << 16;
        parallel_for(pool, (count + chunk - 1) / chunk, [&](size_t i) {
                size_t first = i * chunk;
                bwq::unpack_u16(src, bits, first, std::min(chunk, count - first), dst + first);
        });
}

// Writes one tile of quantized outputs and is the only writer of its groups.
void store_tile(const uint16_t *q, unsigned bits, size_t first, size_t count, uint8_t *dst)
{
        bwq::pack(q, bits, first, count, dst);
}

struct Geometry {
        uint32_t n, h, w, c;        // input
        uint32_t oh, ow, oc;        // output
        uint32_t kh, kw, sh, sw, dh, dw, pt, pl;
        uint32_t groups;
};

Geometry geometry(const npu_layer_desc &L, const npu_tensor_desc &x, const npu_tensor_desc &y)
{
        Geometry g{};
        if (L.op == NPU_OP_FULLY_CONNECTED) {
                g = {x.n, 1, 1, x.h * x.w * x.c, 1, 1, y.c, 1, 1, 1, 1, 1, 1, 0, 0, 1};
                return g;
        }
        g = {x.n, x.h, x.w, x.c, y.h, y.w, y.c, L.kernel_h, L.kernel_w, L.stride_h, L.stride_w,
             L.dilation_h, L.dilation_w, L.pad_top, L.pad_left, L.groups ? L.groups : 1};
        return g;
}

struct LayerIO {
        const uint8_t *x;
        Act ax;
        uint8_t *y;
        Act ay;
};

// Per-output-channel epilogue constants: y = float(acc) * mul[c] + add[c],
// with the output quantizer folded in where it folds (epilogue.h).
// (One layer at a time per runner thread: its vectors are the runner's.)
struct ChannelScale {
        std::vector<float> &mul, &add;
        OutQuant oq;
        ChannelScale(const uint8_t *scales, const uint8_t *bias, uint32_t n, float sa, const npu_layer_desc &L,
                     const bwq::QParams &out)
                : mul(rs.mul), add(rs.add), oq(out_quant(out, L.act))
        {
                mul.resize(n);
                add.resize(n);
                std::memcpy(mul.data(), scales, 4 * size_t(n));
                std::memcpy(add.data(), bias, 4 * size_t(n));
                for (uint32_t c = 0; c < n; c++)
                        mul[c] = sa * mul[c];
                fold_channels(oq, mul.data(), add.data(), n);
        }
};

// The input of a convolution as u8 planes: the tensor itself at 8 bits,
// unpacked up to 8 bits, or two planes at 16 bits (q = 256 hi + lo).
struct Planes {
        const uint8_t *plane[2];
};

Planes input_planes(const Geometry &G, const LayerIO &io, ThreadPool *pool, std::vector<uint8_t> &store)
{
        const size_t X = size_t(G.n) * G.h * G.w * G.c;
        if (io.ax.bits == 8)
                return {{io.x, nullptr}};
        const bool wide = io.ax.bits == 16;
        store.resize(X * (wide ? 2 : 1));
        parallel_for(pool, (X + 65535) / 65536, [&](size_t i) {
                size_t b = i * 65536, e = std::min(X, b + 65536);
                if (wide)
                        bwq::split_u16(io.x + 2 * b, e - b, store.data() + b, store.data() + X + b);
                else
                        bwq::unpack_u8(io.x, io.ax.bits, b, e - b, store.data() + b);
        });
        return {{store.data(), wide ? store.data() + X : nullptr}};
}

// The output pixels whose whole window lies inside the input: rows
// [oy0, oy1) x columns [ox0, ox1).  Those read the input in place, tap by
// tap; the others (the border) read a copy of their window with the zero
// point where it leaves the input.
struct Interior {
        size_t oy0, oy1, ox0, ox1;
};

Interior interior(const Geometry &G)
{
        auto range = [](size_t in, size_t out, size_t k, size_t s, size_t d, size_t pad, size_t &lo, size_t &hi) {
                lo = (pad + s - 1) / s;  // first o with o * s >= pad
                const size_t span = (k - 1) * d;
                hi = in + pad >= span + 1 ? std::min(out, (in - 1 + pad - span) / s + 1) : 0;
                if (hi < lo)
                        hi = lo = 0;
        };
        Interior r;
        range(G.h, G.oh, G.kh, G.sh, G.dh, G.pt, r.oy0, r.oy1);
        range(G.w, G.ow, G.kw, G.sw, G.dw, G.pl, r.ox0, r.ox1);
        return r;
}

// Calls inside(m, b, oy, ox, len) for the runs of interior pixels and
// border(m, len) for the runs of border pixels among output pixels
// [m0, m0 + mt), in order, each run within one output row.
template <typename Inside, typename Border>
void for_runs(const Geometry &G, const Interior &in, size_t m0, size_t mt, Inside inside, Border border)
{
        for (size_t m = m0; m < m0 + mt;) {
                const size_t ox = m % G.ow, oy = (m / G.ow) % G.oh, b = m / (size_t(G.ow) * G.oh);
                const size_t end = ox + std::min(m0 + mt - m, size_t(G.ow) - ox);
                if (oy < in.oy0 || oy >= in.oy1 || in.ox1 <= ox || in.ox0 >= end) {
                        border(m, end - ox);
                } else {
                        const size_t a = std::max(ox, in.ox0), e = std::min(end, in.ox1);
                        if (a > ox)
                                border(m, a - ox);
                        inside(m + (a - ox), b, oy, a, e - a);
                        if (end > e)
                                border(m + (e - ox), end - e);
                }
                m += end - ox;
        }
}

// The window of output pixel m, channels [c0, c0 + cn) of each tap, as one
// row [tap][cn] with the pad value outside the input (im2col).
void window_row(const Geometry &G, const uint8_t *plane, uint8_t pad, size_t m, size_t c0, size_t cn, uint8_t *row)
{
        const size_t ox = m % G.ow, oy = (m / G.ow) % G.oh, b = m / (size_t(G.ow) * G.oh);
        for (uint32_t ky = 0; ky < G.kh; ky++) {
                const int64_t iy = int64_t(oy * G.sh) - G.pt + int64_t(ky) * G.dh;
                for (uint32_t kx = 0; kx < G.kw; kx++) {
                        const int64_t ix = int64_t(ox * G.sw) - G.pl + int64_t(kx) * G.dw;
                        uint8_t *dst = row + (size_t(ky) * G.kw + kx) * cn;
                        if (iy < 0 || iy >= G.h || ix < 0 || ix >= G.w)
                                std::memset(dst, pad, cn);
                        else
                                std::memcpy(dst, plane + ((b * G.h + size_t(iy)) * G.w + size_t(ix)) * G.c + c0, cn);
                }
        }
}

// CONV2D (any groups but depthwise) and FULLY_CONNECTED on the GEMM kernel.
// A 1x1 convolution or FC reads the activation rows in place (or unpacked);
// a convolution whose groups hold whole 4-byte K blocks reads its interior
// pixels in place tap by tap and copies only the border pixels' windows;
// anything else copies every output pixel's window into a row (im2col).
void run_gemm_layer(const npu_layer_desc &L, const Geometry &G, const LayerIO &io, const uint8_t *params,
                    const Kernels &k, ThreadPool *pool, std::vector<uint8_t> &planes)
{
        const int8_t *W = reinterpret_cast<const int8_t *>(params + L.weight_offset);
        const uint32_t cin_g = G.c / G.groups, cout_g = G.oc / G.groups;
        const size_t K = size_t(G.kh) * G.kw * cin_g, K4 = (K + 3) / 4 * 4, N16 = (cout_g + 15) / 16 * 16;
        const size_t KB = K4 / 4;
        const int32_t z = io.ax.qp.zero;
        const bool wide = io.ax.bits == 16;
        const int nplanes = wide ? 2 : 1;

        // Sum of each output channel's weights, for the zero-point term.
        std::vector<int64_t> &wsum = rs.wsum;
        wsum.resize(G.oc);
        for (uint32_t g = 0; g < G.groups; g++)
                k.column_sums(W + g * K4 * N16, K4, cout_g, wsum.data() + size_t(g) * cout_g);
        // Up to 65536 K bytes each plane's sums fit int32: one plane is the
        // whole accumulator, two (16 bits) meet in the wide epilogue.
        // Longer rows add int32 pieces into int64.
        const bool split = KB > kKBlocks;
        const bool narrow = !wide && !split;
        std::vector<int32_t> &zw = rs.zw;
        std::vector<int64_t> &zw64 = rs.zw64;
        zw.resize(narrow ? G.oc : 0);
        zw64.resize(narrow ? 0 : G.oc);
        for (uint32_t c = 0; c < G.oc; c++)
                if (narrow)
                        zw[c] = int32_t(z * wsum[c]);
                else
                        zw64[c] = int64_t(z) * wsum[c];
        const ChannelScale cs(params + L.scale_offset, params + L.bias_offset, G.oc, io.ax.qp.scale, L, io.ay.qp);
        const OutQuant &oq = cs.oq;
        const bool out8 = io.ay.bits == 8;  // the epilogue writes the tensor itself

        const bool pointwise = G.kh == 1 && G.kw == 1 && G.sh == 1 && G.sw == 1 && G.pt == 0 && G.pl == 0 &&
                               G.groups == 1 && G.c % 4 == 0;
        // Tap by tap: each tap's K blocks hold whole input channels, and
        // one GEMM call covers K (no int32 split).
        const bool direct = !pointwise && cin_g % 4 == 0 && !split;
        const size_t M = size_t(G.n) * G.oh * G.ow;
        const Planes P = input_planes(G, io, pool, planes);
        const uint8_t pad_value[2] = {uint8_t(wide ? z >> 8 : z), uint8_t(z)};
        const Interior inner = interior(G);
        std::vector<ptrdiff_t> &taps = rs.taps;
        taps.clear();
        if (direct)
                for (uint32_t ky = 0; ky < G.kh; ky++)
                        for (uint32_t kx = 0; kx < G.kw; kx++)
                                taps.push_back(ptrdiff_t((size_t(ky) * G.dh * G.w + size_t(kx) * G.dw) * G.c));
        const ptrdiff_t zero_off = 0;

        const size_t tm = tile_rows(M, pool);
        parallel_for(pool, (M + tm - 1) / tm, [&](size_t item) {
                const size_t m0 = item * tm, mt = std::min(tm, M - m0);
                uint8_t *A = scratch(tls.a, pointwise ? 0 : kTile * K4);
                int32_t *Cp[2] = {scratch(tls.c32, kTile * cout_g), scratch(tls.c32lo, wide ? kTile * cout_g : 0)};
                int64_t *C64 = scratch(tls.c64, split ? kTile * cout_g : 0);
                uint16_t *Q = scratch(tls.q, out8 && narrow ? 0 : kTile * G.oc);
                for (uint32_t g = 0; g < G.groups; g++) {
                        const int8_t *Bg = W + g * K4 * N16;
                        const uint32_t c0 = g * cout_g;
                        const float *mul = cs.mul.data() + c0, *add = cs.add.data() + c0;
                        if (split)
                                std::fill(C64, C64 + mt * cout_g, 0);
                        for (int p = 0; p < nplanes; p++) {
                                const uint8_t *plane = P.plane[p];
                                int32_t *C32 = Cp[p];
                                // Output rows [m, m + rows) of the tile: with one int32
                                // plane the epilogue runs in the GEMM (its outputs go
                                // straight to the tensor at 8 bits), else sums to C32.
                                auto gemm = [&](const GemmA &a, size_t m, size_t rows) {
                                        int32_t *c = C32 + (m - m0) * cout_g;
                                        if (!narrow) {
                                                k.gemm_u8s8(a, rows, Bg, K4, cout_g, 0, c, cout_g);
                                                return;
                                        }
                                        GemmEpilogue e{zw.data() + c0, mul, add, L.act, &oq, nullptr, nullptr, G.oc};
                                        if (out8)
                                                e.q8 = io.y + m * G.oc + c0;
                                        else
                                                e.q16 = Q + (m - m0) * G.oc + c0;
                                        k.gemm_epilogue(a, rows, Bg, K4, cout_g, e, c, cout_g);
                                };
                                // Border windows copied into rows of A.
                                auto window_rows = [&](size_t m, size_t len) {
                                        for (size_t r = 0; r < len; r++) {
                                                uint8_t *row = A + (m - m0 + r) * K4;
                                                window_row(G, plane, pad_value[p], m + r, size_t(g) * cin_g, cin_g, row);
                                                std::memset(row + K, 0, K4 - K);
                                        }
                                };
                                if (direct) {
                                        for_runs(
                                                G, inner, m0, mt,
                                                [&](size_t m, size_t b, size_t oy, size_t ox, size_t len) {
                                                        const size_t iy = oy * G.sh - G.pt, ix = ox * G.sw - G.pl;
                                                        gemm(GemmA{plane + ((b * G.h + iy) * G.w + ix) * G.c + size_t(g) * cin_g,
                                                                   size_t(G.sw) * G.c, taps.data(), unsigned(taps.size()), cin_g / 4},
                                                             m, len);
                                                },
                                                [&](size_t m, size_t len) {
                                                        window_rows(m, len);
                                                        gemm(GemmA{A + (m - m0) * K4, K4, &zero_off, 1, KB}, m, len);
                                                });
                                        continue;
                                }
                                const uint8_t *Ap = A;
                                size_t lda = K4;
                                if (pointwise) {
                                        Ap = plane + m0 * G.c;
                                        lda = G.c;
                                } else {
                                        window_rows(m0, mt);
                                }
                                if (!split) {
                                        gemm(GemmA{Ap, lda, &zero_off, 1, KB}, m0, mt);
                                        continue;
                                }
                                // Rows past 65536 bytes in int32 pieces.
                                for (size_t kb0 = 0; kb0 < KB; kb0 += kKBlocks) {
                                        const size_t kb1 = std::min(KB, kb0 + kKBlocks);
                                        const ptrdiff_t off = ptrdiff_t(4 * kb0);
                                        k.gemm_u8s8(GemmA{Ap, lda, &off, 1, kb1 - kb0}, mt, Bg, K4, cout_g, kb0, C32, cout_g);
                                        for (size_t i = 0; i < mt * cout_g; i++)
                                                C64[i] += (p == 0 && wide ? 256 : 1) * int64_t(C32[i]);
                                }
                        }
                        if (split)
                                epilogue_tile(C64, cout_g, mt, cout_g, zw64.data() + c0, mul, add, L.act, oq, Q + c0, G.oc);
                        else if (wide)
                                k.epilogue_wide(Cp[0], Cp[1], cout_g, mt, cout_g, zw64.data() + c0, mul, add, L.act, oq, Q + c0,
                                                G.oc);
                }
                if (!out8 || !narrow)
                        store_tile(Q, io.ay.bits, m0 * G.oc, mt * G.oc, io.y);
        });
}

// Depthwise CONV2D: weights [kh][kw][c] and the input read in place for
// interior pixels (border pixels from a copy of their window), int32
// accumulators per u8 plane (two at 16 bits, met in the wide epilogue), the
// zero-point term (z * the sum of each channel's weights) folded into the
// epilogue.
void run_depthwise(const npu_layer_desc &L, const Geometry &G, const LayerIO &io, const uint8_t *params,
                   const Kernels &k, ThreadPool *pool, std::vector<uint8_t> &planes)
{
        const int8_t *W = reinterpret_cast<const int8_t *>(params + L.weight_offset);
        const size_t M = size_t(G.n) * G.oh * G.ow, C = G.c;
        const bool wide = io.ax.bits == 16;
        const int nplanes = wide ? 2 : 1;
        const Planes P = input_planes(G, io, pool, planes);
        const Interior inner = interior(G);
        const size_t ntaps = size_t(G.kh) * G.kw;
        std::vector<ptrdiff_t> &taps = rs.taps, &window_taps = rs.window_taps;
        taps.clear();
        window_taps.clear();
        for (uint32_t ky = 0; ky < G.kh; ky++)
                for (uint32_t kx = 0; kx < G.kw; kx++) {
                        taps.push_back(ptrdiff_t((size_t(ky) * G.dh * G.w + size_t(kx) * G.dw) * C));
                        window_taps.push_back(ptrdiff_t(window_taps.size() * C));
                }
        const int32_t z = io.ax.qp.zero;
        std::vector<int32_t> &zw = rs.zw;
        std::vector<int64_t> &zw64 = rs.zw64;
        zw.assign(C, 0);
        zw64.resize(wide ? C : 0);
        for (size_t t = 0; t < ntaps; t++)
                for (size_t c = 0; c < C; c++)
                        zw[c] += W[t * C + c];
        for (size_t c = 0; c < C; c++)
                if (wide)
                        zw64[c] = int64_t(z) * zw[c];
                else
                        zw[c] *= z;
        const ChannelScale cs(params + L.scale_offset, params + L.bias_offset, G.oc, io.ax.qp.scale, L, io.ay.qp);
        const OutQuant &oq = cs.oq;
        const bool out8 = io.ay.bits == 8;
        const uint8_t pad[2] = {uint8_t(wide ? z >> 8 : z), uint8_t(z)};
        const size_t tm = tile_rows(M, pool);
        parallel_for(pool, (M + tm - 1) / tm, [&](size_t tile) {
                const size_t m0 = tile * tm, mt = std::min(tm, M - m0);
                int32_t *acc[2] = {scratch(tls.c32, kTile * C), scratch(tls.c32lo, wide ? kTile * C : 0)};
                uint16_t *Q = scratch(tls.q, out8 && !wide ? 0 : kTile * C);
                // One u8 plane: the epilogue runs in the kernel, outputs go to
                // the tensor (8 bits) or Q; two planes meet in the wide epilogue.
                auto rows = [&](int p, const uint8_t *x, size_t step, const ptrdiff_t *offs, size_t m, size_t len) {
                        int32_t *a = acc[p] + (m - m0) * C;
                        if (wide) {
                                k.depthwise_rows(x, step, offs, unsigned(ntaps), W, C, len, a);
                                return;
                        }
                        GemmEpilogue e{zw.data(), cs.mul.data(), cs.add.data(), L.act, &oq, nullptr, nullptr, C};
                        if (out8)
                                e.q8 = io.y + m * C;
                        else
                                e.q16 = Q + (m - m0) * C;
                        k.depthwise_epilogue(x, step, offs, unsigned(ntaps), W, C, len, e, a);
                };
                for (int p = 0; p < nplanes; p++)
                        for_runs(
                                G, inner, m0, mt,
                                [&](size_t m, size_t b, size_t oy, size_t ox, size_t len) {
                                        const uint8_t *x = P.plane[p] + ((b * G.h + oy * G.sh - G.pt) * G.w + ox * G.sw - G.pl) * C;
                                        rows(p, x, size_t(G.sw) * C, taps.data(), m, len);
                                },
                                [&](size_t m, size_t len) {
                                        uint8_t *win = scratch(tls.a, len * ntaps * C);
                                        for (size_t r = 0; r < len; r++)
                                                window_row(G, P.plane[p], pad[p], m + r, 0, C, win + r * ntaps * C);
                                        rows(p, win, ntaps * C, window_taps.data(), m, len);
                                });
                if (out8 && !wide)
                        return;
                if (wide)
                        k.epilogue_wide(acc[0], acc[1], C, mt, C, zw64.data(), cs.mul.data(), cs.add.data(), L.act, oq, Q, C);
                store_tile(Q, io.ay.bits, m0 * C, mt * C, io.y);
        });
}

// Depthwise CONV2D in int64: 16-bit inputs, or more taps than int32 holds.
void run_depthwise64(const npu_layer_desc &L, const Geometry &G, const LayerIO &io, const uint8_t *params,
                     ThreadPool *pool, const uint16_t *xq)
{
        const int8_t *W = reinterpret_cast<const int8_t *>(params + L.weight_offset);
        const size_t M = size_t(G.n) * G.oh * G.ow, C = G.c;
        const int32_t z = io.ax.qp.zero;
        const ChannelScale cs(params + L.scale_offset, params + L.bias_offset, G.oc, io.ax.qp.scale, L, io.ay.qp);
        const OutQuant &oq = cs.oq;
        parallel_for(pool, (M + kTile - 1) / kTile, [&](size_t tile) {
                const size_t m0 = tile * kTile, mt = std::min(kTile, M - m0);
                uint16_t *Q = scratch(tls.q, kTile * C);
                int64_t *acc = scratch(tls.c64, C);
                for (size_t r = 0; r < mt; r++) {
                        size_t m = m0 + r;
                        size_t ox = m % G.ow, oy = (m / G.ow) % G.oh, b = m / (size_t(G.ow) * G.oh);
                        std::fill(acc, acc + C, int64_t(0));
                        for (uint32_t ky = 0; ky < G.kh; ky++) {
                                int64_t iy = int64_t(oy * G.sh) - G.pt + int64_t(ky) * G.dh;
                                if (iy < 0 || iy >= G.h)
                                        continue;
                                for (uint32_t kx = 0; kx < G.kw; kx++) {
                                        int64_t ix = int64_t(ox * G.sw) - G.pl + int64_t(kx) * G.dw;
                                        if (ix < 0 || ix >= G.w)
                                                continue;
                                        depthwise_tap(xq + ((b * G.h + size_t(iy)) * G.w + size_t(ix)) * C,
                                                      W + (size_t(ky) * G.kw + kx) * C, z, C, acc);
                                }
                        }
                        epilogue_tile(acc, C, 1, C, nullptr, cs.mul.data(), cs.add.data(), L.act, oq, Q + r * C, C);
                }
                store_tile(Q, io.ay.bits, m0 * C, mt * C, io.y);
        });
}

// Ops computed on dequantized values: pools, ADD, MUL, CONCAT.
void run_float_layer(const npu_layer_desc &L, const std::vector<const npu_tensor_desc *> &in,
                     const std::vector<const uint16_t *> &inq, const std::vector<Act> &inact,
                     const npu_tensor_desc &y, const Act &ay, uint8_t *ydst, ThreadPool *pool)
{
        const npu_tensor_desc &x = *in[0];
        const size_t M = size_t(y.n) * y.h * y.w, C = y.c;
        auto deq = [&](int i, size_t e) { return bwq::dequantize_one(inq[i][e], inact[i].qp); };
        const OutQuant oq = out_quant(ay.qp, L.act);
        parallel_for(pool, (M + kTile - 1) / kTile, [&](size_t tile) {
                const size_t m0 = tile * kTile, mt = std::min(kTile, M - m0);
                uint16_t *Q = scratch(tls.q, kTile * C);
                float *Y = scratch(tls.f, C);
                for (size_t r = 0; r < mt; r++) {
                        size_t m = m0 + r;
                        size_t ox = m % y.w, oy = (m / y.w) % y.h, b = m / (size_t(y.w) * y.h);
                        for (size_t c = 0; c < C; c++) {
                                float v = 0.0f;
                                switch (L.op) {
                                case NPU_OP_ADD:
                                        v = deq(0, m * C + c) + deq(1, m * C + c);
                                        break;
                                case NPU_OP_MUL: {
                                        bool bcast = in[1]->h == 1 && in[1]->w == 1 && (y.h != 1 || y.w != 1);
                                        v = deq(0, m * C + c) * deq(1, bcast ? b * C + c : m * C + c);
                                        break;
                                }
                                case NPU_OP_GLOBAL_AVGPOOL: {
                                        double s = 0;
                                        size_t hw = size_t(x.h) * x.w;
                                        for (size_t p = 0; p < hw; p++)
                                                s += deq(0, (b * hw + p) * C + c);
                                        v = float(s / double(hw));
                                        break;
                                }
                                case NPU_OP_MAXPOOL:
                                case NPU_OP_AVGPOOL: {
                                        bool isMax = L.op == NPU_OP_MAXPOOL;
                                        uint32_t best = 0;
                                        double s = 0;
                                        size_t cnt = 0;
                                        for (uint32_t ky = 0; ky < L.kernel_h; ky++) {
                                                int64_t iy = int64_t(oy * L.stride_h) - L.pad_top + ky;
                                                if (iy < 0 || iy >= x.h)
                                                        continue;
                                                for (uint32_t kx = 0; kx < L.kernel_w; kx++) {
                                                        int64_t ix = int64_t(ox * L.stride_w) - L.pad_left + kx;
                                                        if (ix < 0 || ix >= x.w)
                                                                continue;
                                                        size_t e = ((b * x.h + size_t(iy)) * x.w + size_t(ix)) * C + c;
                                                        // The scale is positive: the largest q dequantizes largest.
                                                        if (isMax)
                                                                best = std::max<uint32_t>(best, inq[0][e]);
                                                        else
                                                                s += deq(0, e);
                                                        cnt++;
                                                }
                                        }
                                        v = isMax ? bwq::dequantize_one(best, inact[0].qp) : float(s / double(cnt));
                                        break;
                                }
                                case NPU_OP_CONCAT: {
                                        size_t cc = c;
                                        for (size_t i = 0; i < in.size(); i++) {
                                                if (cc < in[i]->c) {
                                                        v = deq(int(i), m * in[i]->c + cc);
                                                        break;
                                                }
                                                cc -= in[i]->c;
                                        }
                                        break;
                                }
                                }
                                Y[c] = v;
                        }
                        epilogue_float(Y, C, L.act, oq, Q + r * C);
                }
                store_tile(Q, ay.bits, m0 * C, mt * C, ydst);
        });
}

// The depth a layer writes its output at.
unsigned resolve_bits(const npu_layer_desc &L, const bwq_page *page)
{
        if (L.policy == NPU_POLICY_FIXED)
                return L.bits;
        bwq_decision d;
        unsigned want = L.max_bits;  // an unreadable page keeps full quality
        if (page && bwq_page_read(page, &d) == 0)
                want = d.act_bits;
        return bwq::depth_clamp(want, L.min_bits, L.max_bits);
}

Act make_act(const npu_tensor_desc &t, unsigned bits)
{
        int i = bwq::depth_index(bits);
        return {bits, bwq::qparams(t.lo[i], t.hi[i], bits)};
}

} // namespace

int execute_job(const Job &job, const BufferView *bos, const bwq_page *page, const Kernels &k, ThreadPool *pool)
{
        const uint64_t t_job = now_ns();
        const npu_job_header &h = job.header;
        uint8_t *rbase = bos[h.result_bo_index].data + h.result_offset;
        std::vector<Act> act(job.tensors.size(), Act{0, {}});
        for (size_t i = 0; i < job.tensors.size(); i++)
                if (job.tensors[i].bits)
                        act[i] = make_act(job.tensors[i], job.tensors[i].bits);

        std::vector<uint16_t> &xq = rs.xq;
        std::vector<uint8_t> &planes = rs.planes;
        std::vector<uint16_t> *inq_store = rs.inq;
        for (size_t l = 0; l < job.layers.size(); l++) {
                const npu_layer_desc &L = job.layers[l];
                const uint64_t t0 = now_ns();
                const npu_tensor_desc &y = job.tensors[L.output];
                act[L.output] = make_act(y, resolve_bits(L, page));
                uint8_t *ydst = bos[y.bo_index].data + y.offset;

                npu_layer_result r{};
                r.start_ns = t0;
                r.bits = uint8_t(act[L.output].bits);
                for (unsigned i = 0; i < L.input_count; i++)
                        r.act_bytes_read += bwq::packed_bytes(tensor_elements(job.tensors[L.inputs[i]]), act[L.inputs[i]].bits);
                r.bytes_written = bwq::packed_bytes(tensor_elements(y), act[L.output].bits);

                if (L.op == NPU_OP_CONV2D || L.op == NPU_OP_FULLY_CONNECTED) {
                        const npu_tensor_desc &x = job.tensors[L.inputs[0]];
                        Geometry G = geometry(L, x, y);
                        LayerIO io{bos[x.bo_index].data + x.offset, act[L.inputs[0]], ydst, act[L.output]};
                        const uint8_t *params = bos[L.param_bo_index].data;
                        r.param_bytes_read = L.weight_size + 8ull * y.c;
                        bool depthwise = L.op == NPU_OP_CONV2D && G.groups > 1 && G.groups == G.c && G.groups == G.oc;
                        if (depthwise && uint64_t(G.kh) * G.kw <= kDepthwiseMaxTaps32) {
                                run_depthwise(L, G, io, params, k, pool, planes);
                        } else if (depthwise) {
                                xq.resize(tensor_elements(x));
                                unpack_all(pool, io.x, io.ax.bits, xq.size(), xq.data());
                                run_depthwise64(L, G, io, params, pool, xq.data());
                        } else {
                                run_gemm_layer(L, G, io, params, k, pool, planes);
                        }
                } else {
                        std::vector<const npu_tensor_desc *> in;
                        std::vector<const uint16_t *> inq;
                        std::vector<Act> inact;
                        for (unsigned i = 0; i < L.input_count; i++) {
                                const npu_tensor_desc &t = job.tensors[L.inputs[i]];
                                inq_store[i].resize(tensor_elements(t));
                                unpack_all(pool, bos[t.bo_index].data + t.offset, act[L.inputs[i]].bits,
                                           inq_store[i].size(), inq_store[i].data());
                                in.push_back(&t);
                                inq.push_back(inq_store[i].data());
                                inact.push_back(act[L.inputs[i]]);
                        }
                        run_float_layer(L, in, inq, inact, y, act[L.output], ydst, pool);
                }
                r.ns = now_ns() - t0;
                std::memcpy(rbase + sizeof(npu_job_result) + l * sizeof(npu_layer_result), &r, sizeof r);
        }

        npu_job_result jr{};
        jr.magic = NPU_RESULT_MAGIC;
        jr.layer_count = uint32_t(job.layers.size());
        jr.ns = now_ns() - t_job;
        std::memcpy(rbase, &jr, sizeof jr);
        return 0;
}

} // namespace npuref

// What the op families of execute.cpp share: work tiles, per-thread and
// per-runner scratch, a layer's geometry and packed I/O, per-channel
// epilogue constants, the input as u8 planes, and the interior/border walk
// of a convolution.  Private to npuref.
#pragma once

#include <algorithm>
#include <array>
#include <cstring>
#include <vector>

#include "common/quant.h"
#include "epilogue.h"
#include "job.h"
#include "kernels.h"
#include "per_thread.h"
#include "thread_pool.h"
#include "uapi/npu_accel.h"

namespace npuref {

// Pixels per work item: a multiple of 4, so that a tile's first element
// starts a whole packing group at any depth and channel count.
constexpr size_t kTile = 48;

// Output pixels per work item of a layer of M pixels: kTile, halved (to 24
// or 12, still whole packing groups) while that leaves fewer than 4 items
// per thread, so a small layer still spreads evenly (a thread done with
// its share takes the others' items, so a few per thread are enough).
// With `least`, doubled while below it and 8 items per thread remain:
// each item costs some 45 ns of its own (the claim, the scratch, the
// calls' setup), which narrow rows feel.
inline size_t tile_rows(size_t M, const ThreadPool *pool, size_t least = 0)
{
        const size_t threads = pool ? pool->threads() : 1;
        size_t t = kTile;
        while (t > 12 && (M + t - 1) / t < 4 * threads)
                t /= 2;
        while (t < least && M / (2 * t) >= 8 * threads)
                t *= 2;
        return t;
}

// K rows (of 4) per GEMM call: 65536 products of 255 x 127 fit in int32.
constexpr size_t kKBlocks = 16384;

struct Act {
        unsigned bits;
        bwq::QParams qp;
        // The largest byte its u8 planes hold: 4- and 6-bit values are
        // small, which byte kernels that saturate above 127 use.
        uint8_t max_byte() const { return bits < 8 ? uint8_t((1u << bits) - 1) : 255; }
};

// Grow-only scratch of one thread, kept across layers and jobs.
template <typename T> T *scratch(std::vector<T> &v, size_t n)
{
        if (v.size() < n)
                v.resize(n);
        return v.data();
}

struct ThreadScratch {
        std::vector<uint8_t> a, q8, b8, v8, band, in8[2];
        std::vector<int32_t> c32, c32lo;
        std::vector<int64_t> c64;
        std::vector<uint16_t> q, q2, v16;
        std::vector<float> f, f2, res;
        std::vector<uint8_t> r8;
        std::vector<uint16_t> r16;
        std::vector<double> d;
};
// The calling thread's scratch.
inline ThreadScratch &tls() { return PerThread<ThreadScratch>::get(); }

// Grow-only scratch of a device's runner thread (the one that executes
// jobs), kept across layers and jobs: no allocation, and no fresh pages to
// fault in, per layer.  It grows to the largest layer the device has run.
//
// A layer's per-channel constants and tap offsets, which the pool's threads
// read while the runner's own vectors are rewritten for the next layer,
// are published per layer index (LayerConsts) and rewritten only where a
// value changed: the next run of the same job then writes nothing there,
// and the other CPUs' cached copies stay valid (a line the runner rewrote
// costs another CPU a transfer of some hundreds of nanoseconds in a VM).
struct LayerConsts {
        std::vector<float> mul, add;
        std::vector<int8_t> wsrc, wnib;  // the weights, and in nibble_order
        std::vector<int32_t> zw, s128;
        std::vector<int64_t> zw64;
        std::vector<ptrdiff_t> taps, window_taps;
};
struct RunnerScratch {
        std::vector<uint16_t> xq;
        std::vector<uint8_t> planes;
        std::vector<uint16_t> inq[NPU_MAX_INPUTS];
        std::vector<uint8_t> inq8[NPU_MAX_INPUTS];
        std::vector<int64_t> wsum, zw64;
        std::vector<int32_t> zw, s128;
        std::vector<ptrdiff_t> taps, window_taps;
        std::vector<float> mul, add, xf;
        std::vector<std::array<uint8_t, 16>> maps4;  // float_ops' 4-bit code maps
        std::vector<uint8_t> padded;
        std::vector<int8_t> wpad;
        std::vector<LayerConsts> consts;
        size_t layer = 0;  // the index of the layer running (execute_job)
        LayerConsts &layer_consts()
        {
                if (consts.size() <= layer)
                        consts.resize(layer + 1);
                return consts[layer];
        }
};
// The runner thread's scratch.
inline RunnerScratch &rs() { return PerThread<RunnerScratch>::get(); }

// dst = src, writing dst only if a byte differs.
template <typename T> const std::vector<T> &publish(std::vector<T> &dst, const std::vector<T> &src)
{
        if (dst.size() != src.size() || (!src.empty() && std::memcmp(dst.data(), src.data(), src.size() * sizeof(T))))
                dst = src;
        return dst;
}

// Unpacks a whole tensor to u16, in parallel chunks.
inline void unpack_all(ThreadPool *pool, const uint8_t *src, unsigned bits, size_t count, uint16_t *dst)
{
        constexpr size_t chunk = 1 << 16;
        parallel_for(pool, (count + chunk - 1) / chunk, [&](size_t i) {
                size_t first = i * chunk;
                bwq::unpack_u16(src, bits, first, std::min(chunk, count - first), dst + first);
        });
}

// Unpacks a whole tensor of up to 8 bits to u8, in parallel chunks.
inline void unpack_all_u8(ThreadPool *pool, const uint8_t *src, unsigned bits, size_t count, uint8_t *dst)
{
        constexpr size_t chunk = 1 << 16;
        parallel_for(pool, (count + chunk - 1) / chunk, [&](size_t i) {
                size_t first = i * chunk;
                bwq::unpack_u8(src, bits, first, std::min(chunk, count - first), dst + first);
        });
}

// Writes one tile of quantized outputs.  Where its ends fall inside packing
// groups (a depthwise band's rows of 21 channels at 6 bits, say) the
// neighbouring tiles' threads share those bytes: the packers set only
// their own elements' bits of them, atomically (bwq::pack_u8).
inline void store_tile(const uint16_t *q, unsigned bits, size_t first, size_t count, uint8_t *dst)
{
        bwq::pack(q, bits, first, count, dst);
}
inline void store_tile(const uint8_t *q, unsigned bits, size_t first, size_t count, uint8_t *dst)
{
        bwq::pack_u8(q, bits, first, count, dst);
}

struct Geometry {
        uint32_t n, h, w, c;        // input
        uint32_t oh, ow, oc;        // output
        uint32_t kh, kw, sh, sw, dh, dw, pt, pl;
        uint32_t groups;
};

inline Geometry geometry(const npu_layer_desc &L, const npu_tensor_desc &x, const npu_tensor_desc &y)
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
        // NPU_LAYER_RESIDUAL: the residual tensor, its depth and channels.
        const uint8_t *r = nullptr;
        Act ar{};
        uint32_t rc = 0;
};

// The floats of the 16 4-bit codes at p: dequantize_row's own.
inline void code_floats4(const bwq::QParams &p, float lut[16])
{
        static const uint8_t codes[16] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15};
        dequantize_row(codes, 16, p, lut);
}

// Elements [first, first + n) of a packed 4- or 6-bit tensor as
// dequantize_row's floats.  4 bits with `lut` (code_floats4's, given where
// the table looks codes up: Kernels::lookups4): looked up straight from
// the nibbles; else unpacked into the thread's scratch first.
inline void dequantize_packed(const float *lut, const uint8_t *packed, unsigned bits, size_t first, size_t n,
                              const bwq::QParams &p, float *y)
{
        if (bits == 4 && lut) {
                lookup4_avx512(packed, first, n, lut, y);
                return;
        }
        uint8_t *u = scratch(tls().r8, n);
        bwq::unpack_u8(packed, bits, first, n, u);
        dequantize_row(u, n, p, y);
}

// Output rows [m0, m0 + rows) of a residual as floats, [rows][io.rc]:
// each value's real value (dequantize_row's).
inline Residual residual_rows(const LayerIO &io, const Kernels &k, size_t m0, size_t rows)
{
        const size_t rc = io.rc, first = m0 * rc, count = rows * rc;
        float *R = scratch(tls().res, count);
        if (io.ar.bits == 8) {
                dequantize_row(io.r + first, count, io.ar.qp, R);
        } else if (io.ar.bits == 16) {
                uint16_t *u = scratch(tls().r16, count);
                bwq::unpack_u16(io.r, 16, first, count, u);
                dequantize_row(u, count, io.ar.qp, R);
        } else {
                // 4-bit codes looked up where the table does (their 16
                // floats, per tile: cheaper than the tile's lookups).
                const bool look = k.lookups4 && io.ar.bits == 4;
                float lut[16];
                if (look)
                        code_floats4(io.ar.qp, lut);
                dequantize_packed(look ? lut : nullptr, io.r, io.ar.bits, first, count, io.ar.qp, R);
        }
        return Residual{R, rc, rc};
}

// Where a layer's bias starts in its parameter BO: its one row, or with
// NPU_LAYER_BIAS_PER_DEPTH the row of the depth its input was stored at.
inline uint64_t bias_row(const npu_layer_desc &L, unsigned input_bits, uint32_t cout)
{
        if (!(L.flags & NPU_LAYER_BIAS_PER_DEPTH))
                return L.bias_offset;
        return L.bias_offset + 4ull * cout * uint64_t(bwq::depth_index(input_bits));
}

// Per-output-channel epilogue constants: y = float(acc) * mul[c] + add[c],
// with the output quantizer folded in where it folds (epilogue.h).
// (One layer at a time per runner thread: its vectors are the runner's.)
// Computed in the runner's scratch, published in the layer's LayerConsts.
struct ChannelScale {
        const std::vector<float> &mul, &add;
        OutQuant oq;
        ChannelScale(const uint8_t *scales, const uint8_t *bias, uint32_t n, float sa, const npu_layer_desc &L,
                     const bwq::QParams &out)
                : mul(rs().layer_consts().mul), add(rs().layer_consts().add), oq(out_quant(out, L.act))
        {
                std::vector<float> &m = rs().mul, &a = rs().add;
                m.resize(n);
                a.resize(n);
                std::memcpy(m.data(), scales, 4 * size_t(n));
                std::memcpy(a.data(), bias, 4 * size_t(n));
                for (uint32_t c = 0; c < n; c++)
                        m[c] = sa * m[c];
                fold_channels(oq, m.data(), a.data(), n);
                publish(rs().layer_consts().mul, m);
                publish(rs().layer_consts().add, a);
        }
};

// The input of a convolution as u8 planes: the tensor itself at 8 bits,
// unpacked up to 8 bits, or two planes at 16 bits (q = 256 hi + lo).
struct Planes {
        const uint8_t *plane[2];
};

inline Planes input_planes(const Geometry &G, const LayerIO &io, ThreadPool *pool, std::vector<uint8_t> &store)
{
        const size_t X = size_t(G.n) * G.h * G.w * G.c;
        if (io.ax.bits == 8)
                return {{io.x, nullptr}};
        const bool wide = io.ax.bits == 16;
        store.resize(X * (wide ? 2 : 1));
        if (!wide) {
                unpack_all_u8(pool, io.x, io.ax.bits, X, store.data());
                return {{store.data(), nullptr}};
        }
        parallel_for(pool, (X + 65535) / 65536, [&](size_t i) {
                size_t b = i * 65536, e = std::min(X, b + 65536);
                bwq::split_u16(io.x + 2 * b, e - b, store.data() + b, store.data() + X + b);
        });
        return {{store.data(), wide ? store.data() + X : nullptr}};
}

// The padded input's rows and columns: every row and column a window reads.
inline size_t padded_h(const Geometry &G)
{
        return std::max<size_t>(size_t(G.h) + G.pt, size_t(G.oh - 1) * G.sh + size_t(G.kh - 1) * G.dh + 1);
}
inline size_t padded_w(const Geometry &G)
{
        return std::max<size_t>(size_t(G.w) + G.pl, size_t(G.ow - 1) * G.sw + size_t(G.kw - 1) * G.dw + 1);
}

// Where padded_plane pays, as measured: at 4 and 6 bits (the input is
// unpacked anyway); at 8 bits at stride 1 (the copy is about the output's
// size; a strided layer's copy of its larger input costs more than its
// border saves) for a depthwise layer (which writes it band by band,
// run_depthwise), and for a tap-by-tap GEMM layer on
// one thread (on two, the copy's own pass over the input cost what the
// border saved: 3x3 56x56 32->32 was 3-4% slower); and only where the
// padding at most doubles the input's rows and columns.
inline bool use_padded_plane(const Geometry &G, unsigned bits, bool depthwise, const ThreadPool *pool)
{
        const size_t hp = padded_h(G), wp = padded_w(G);
        if ((hp == G.h && wp == G.w) || hp > 2 * size_t(G.h) || wp > 2 * size_t(G.w))
                return false;
        if (bits == 4 || bits == 6)
                return true;
        return bits == 8 && G.sh == 1 && G.sw == 1 && (depthwise || !pool || pool->threads() == 1);
}

// Row y of image b of the padded input (zero padding pt above, pl left)
// at up to 8 bits as `row` u8 values: the zero point z where it is padding,
// the input's row copied or unpacked between.
inline void padded_row(const Geometry &G, const LayerIO &io, uint8_t z, size_t b, size_t y, size_t row, uint8_t *dst)
{
        if (y < G.pt || y >= size_t(G.pt) + G.h) {
                std::memset(dst, z, row);
                return;
        }
        const size_t C = G.c, left = size_t(G.pl) * C, inside = size_t(G.w) * C;
        std::memset(dst, z, left);
        const size_t first = (b * G.h + (y - G.pt)) * inside;
        if (io.ax.bits == 8)
                std::memcpy(dst + left, io.x + first, inside);
        else
                bwq::unpack_u8(io.x, io.ax.bits, first, inside, dst + left);
        std::memset(dst + left + inside, z, row - left - inside);
}

// The input of a padded convolution at up to 8 bits as one u8 plane with
// its zero padding written out (the zero point), copied or unpacked row by
// row into place; Gp is the geometry over that plane (no padding, so every
// output pixel's window lies inside it).  The border pixels then need no
// window copies and no kernel of their own, and the interior runs are
// whole output rows.
inline Planes padded_plane(const Geometry &G, const LayerIO &io, ThreadPool *pool, std::vector<uint8_t> &store, Geometry &Gp)
{
        const size_t hp = padded_h(G), wp = padded_w(G);
        Gp = G;
        Gp.h = uint32_t(hp);
        Gp.w = uint32_t(wp);
        Gp.pt = Gp.pl = 0;
        const size_t C = G.c, row = wp * C, rows = size_t(G.n) * hp;
        store.resize(rows * row);
        const uint8_t z = uint8_t(io.ax.qp.zero);
        parallel_for(pool, rows, [&](size_t r) { padded_row(G, io, z, r / hp, r % hp, row, store.data() + r * row); });
        return {{store.data(), nullptr}};
}

// n u16 values z from d on (a byte pointer: u16 tensors may be unaligned).
inline void fill_u16(uint8_t *d, uint16_t z, size_t n)
{
        for (size_t i = 0; i < n; i++)
                std::memcpy(d + 2 * i, &z, 2);
}

// n u16 values from s to d, shifted into int16 (x ^ 0x8000: x - 32768),
// as the 16-bit kernels multiply them (GemmA::shifted).
inline void copy_shifted16(uint8_t *d, const uint8_t *s, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                uint16_t v;
                std::memcpy(&v, s + 2 * i, 2);
                v ^= 0x8000;
                std::memcpy(d + 2 * i, &v, 2);
        }
}

// A 16-bit input (u16 values) with its padding written out (the zero
// point) where it has any, for the kernels that read u16 values as they
// are: every window lies inside it.  Gp is the geometry over it.  The
// copy holds the values shifted into int16 (copy_shifted16), the padding
// too, and `shifted` says so; where there is no padding the input itself
// is returned, as it is.
inline const uint8_t *padded_plane16(const Geometry &G, const LayerIO &io, ThreadPool *pool, std::vector<uint8_t> &store,
                                     Geometry &Gp, bool &shifted)
{
        const size_t hp = padded_h(G), wp = padded_w(G);
        Gp = G;
        shifted = false;
        if (hp == G.h && wp == G.w)
                return io.x;
        shifted = true;
        Gp.h = uint32_t(hp);
        Gp.w = uint32_t(wp);
        Gp.pt = Gp.pl = 0;
        const size_t C = G.c, row = wp * C, rows = size_t(G.n) * hp;
        store.resize(2 * rows * row);
        const uint16_t z = uint16_t(io.ax.qp.zero ^ 0x8000);
        parallel_for(pool, rows, [&](size_t r) {
                uint8_t *dst = store.data() + 2 * r * row;
                const size_t b = r / hp, y = r % hp;
                if (y < G.pt || y >= size_t(G.pt) + G.h) {
                        fill_u16(dst, z, row);
                        return;
                }
                const size_t left = size_t(G.pl) * C, inside = size_t(G.w) * C;
                fill_u16(dst, z, left);
                copy_shifted16(dst + 2 * left, io.x + 2 * (b * G.h + (y - G.pt)) * inside, inside);
                fill_u16(dst + 2 * (left + inside), z, row - left - inside);
        });
        return store.data();
}

// The output pixels whose whole window lies inside the input: rows
// [oy0, oy1) x columns [ox0, ox1).  Those read the input in place, tap by
// tap; the others (the border) read a copy of their window with the zero
// point where it leaves the input.
struct Interior {
        size_t oy0, oy1, ox0, ox1;
};

inline Interior interior(const Geometry &G)
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

// Calls inside(m, b, oy, ox, len) for the runs of interior pixels, each
// within one output row, and border(m, len) for the runs of border pixels
// among output pixels [m0, m0 + mt), in order.  A border run may span
// rows (a row's last pixels and the next row's first), so that the pixels
// between two interior runs are one run.
template <typename Inside, typename Border>
inline void for_runs(const Geometry &G, const Interior &in, size_t m0, size_t mt, Inside inside, Border border)
{
        size_t bm = m0, blen = 0;  // the border run not yet passed on
        auto add_border = [&](size_t m, size_t len) {
                if (blen && bm + blen == m) {
                        blen += len;
                        return;
                }
                if (blen)
                        border(bm, blen);
                bm = m, blen = len;
        };
        for (size_t m = m0; m < m0 + mt;) {
                const size_t ox = m % G.ow, oy = (m / G.ow) % G.oh, b = m / (size_t(G.ow) * G.oh);
                const size_t end = ox + std::min(m0 + mt - m, size_t(G.ow) - ox);
                if (oy < in.oy0 || oy >= in.oy1 || in.ox1 <= ox || in.ox0 >= end) {
                        add_border(m, end - ox);
                } else {
                        const size_t a = std::max(ox, in.ox0), e = std::min(end, in.ox1);
                        if (a > ox)
                                add_border(m, a - ox);
                        if (blen)
                                border(bm, blen);
                        blen = 0;
                        inside(m + (a - ox), b, oy, a, e - a);
                        if (end > e)
                                add_border(m + (e - ox), end - e);
                }
                m += end - ox;
        }
        if (blen)
                border(bm, blen);
}

// n bytes from s to d, n small (a window's row of taps): overlapping
// word moves instead of a library call for each.
inline void copy_small(uint8_t *d, const uint8_t *s, size_t n)
{
        auto mv = [&](auto w, size_t at) {
                decltype(w) v;
                std::memcpy(&v, s + at, sizeof v);
                std::memcpy(d + at, &v, sizeof v);
        };
        if (n >= 16 && n <= 32) {
                mv(uint64_t{}, 0), mv(uint64_t{}, 8), mv(uint64_t{}, n - 16), mv(uint64_t{}, n - 8);
        } else if (n >= 8 && n < 16) {
                mv(uint64_t{}, 0), mv(uint64_t{}, n - 8);
        } else if (n >= 4 && n < 8) {
                mv(uint32_t{}, 0), mv(uint32_t{}, n - 4);
        } else if (n < 4) {
                for (size_t i = 0; i < n; i++)
                        d[i] = s[i];
        } else {
                std::memcpy(d, s, n);
        }
}

// n bytes of d set to v, n small: word stores, no library call.
inline void fill_small(uint8_t *d, uint8_t v, size_t n)
{
        const uint64_t w = 0x0101010101010101ull * v;
        if (n >= 8 && n <= 16) {
                std::memcpy(d, &w, 8);
                std::memcpy(d + n - 8, &w, 8);
        } else if (n > 16) {
                std::memset(d, v, n);
        } else {
                for (size_t i = 0; i < n; i++)
                        d[i] = v;
        }
}

// The window of output pixel m, channels [c0, c0 + cn) of each tap, as one
// row [tap][cn] with the pad value outside the input (im2col).  With all
// channels and no dilation, a kernel row's taps inside the input are one
// run of bytes.
inline void window_row(const Geometry &G, const uint8_t *plane, uint8_t pad, size_t m, size_t c0, size_t cn, uint8_t *row)
{
        const size_t ox = m % G.ow, oy = (m / G.ow) % G.oh, b = m / (size_t(G.ow) * G.oh);
        const int64_t ix0 = int64_t(ox * G.sw) - G.pl;
        const bool runs = G.dw == 1 && cn == G.c;
        // Taps [klo, khi) of a kernel row lie inside the input (runs only).
        const int64_t kw = G.kw, klo = std::clamp<int64_t>(-ix0, 0, kw), khi = std::clamp<int64_t>(int64_t(G.w) - ix0, klo, kw);
        for (uint32_t ky = 0; ky < G.kh; ky++) {
                const int64_t iy = int64_t(oy * G.sh) - G.pt + int64_t(ky) * G.dh;
                uint8_t *dst = row + size_t(ky) * G.kw * cn;
                if (iy < 0 || iy >= G.h) {
                        fill_small(dst, pad, G.kw * cn);
                        continue;
                }
                const uint8_t *src = plane + (b * G.h + size_t(iy)) * G.w * G.c + c0;
                if (runs) {
                        fill_small(dst, pad, size_t(klo) * cn);
                        copy_small(dst + size_t(klo) * cn, src + size_t(ix0 + klo) * G.c, size_t(khi - klo) * cn);
                        fill_small(dst + size_t(khi) * cn, pad, size_t(kw - khi) * cn);
                        continue;
                }
                for (uint32_t kx = 0; kx < G.kw; kx++) {
                        const int64_t ix = ix0 + int64_t(kx) * G.dw;
                        if (ix < 0 || ix >= G.w)
                                fill_small(dst + size_t(kx) * cn, pad, cn);
                        else
                                copy_small(dst + size_t(kx) * cn, src + size_t(ix) * G.c, cn);
                }
        }
}

// window_row over a 16-bit input (u16 values, and z the zero point, as
// such; or both shifted, `shifted`): row [tap][cn] of 2-byte values,
// shifted into int16 (copy_shifted16).
inline void window_row16(const Geometry &G, const uint8_t *plane, bool shifted, uint16_t z, size_t m, size_t c0, size_t cn,
                         uint8_t *row)
{
        const uint16_t pad = shifted ? z : uint16_t(z ^ 0x8000);
        const size_t ox = m % G.ow, oy = (m / G.ow) % G.oh, b = m / (size_t(G.ow) * G.oh);
        for (uint32_t ky = 0; ky < G.kh; ky++) {
                const int64_t iy = int64_t(oy * G.sh) - G.pt + int64_t(ky) * G.dh;
                for (uint32_t kx = 0; kx < G.kw; kx++) {
                        const int64_t ix = int64_t(ox * G.sw) - G.pl + int64_t(kx) * G.dw;
                        uint8_t *dst = row + 2 * (size_t(ky) * G.kw + kx) * cn;
                        if (iy < 0 || iy >= G.h || ix < 0 || ix >= G.w) {
                                fill_u16(dst, pad, cn);
                                continue;
                        }
                        const uint8_t *src = plane + 2 * (((b * G.h + size_t(iy)) * G.w + size_t(ix)) * G.c + c0);
                        if (shifted)
                                std::memcpy(dst, src, 2 * cn);
                        else
                                copy_shifted16(dst, src, cn);
                }
        }
}

// The op families (conv_gemm.cpp, conv_depthwise.cpp, float_ops.cpp).
void run_gemm_layer(const npu_layer_desc &L, const Geometry &G, const LayerIO &io, const uint8_t *params,
                    const Kernels &k, ThreadPool *pool, std::vector<uint8_t> &planes);
void run_depthwise(const npu_layer_desc &L, const Geometry &G, const LayerIO &io, const uint8_t *params,
                   const Kernels &k, ThreadPool *pool, std::vector<uint8_t> &planes);
void run_depthwise64(const npu_layer_desc &L, const Geometry &G, const LayerIO &io, const uint8_t *params,
                     ThreadPool *pool, const uint16_t *xq);
// A float layer's inputs are the packed tensors (src[i] at inact[i]).
void run_float_layer(const npu_layer_desc &L, const std::vector<const npu_tensor_desc *> &in,
                     const std::vector<const uint8_t *> &src, const std::vector<Act> &inact,
                     const npu_tensor_desc &y, const Act &ay, uint8_t *ydst, const Kernels &k, ThreadPool *pool);

} // namespace npuref

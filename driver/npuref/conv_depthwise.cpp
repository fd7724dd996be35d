// Depthwise CONV2D on the depthwise row kernels, and its int64 form.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "layer.h"

namespace npuref {

namespace {

// A depthwise layer's tap offsets in place (taps) and in a window copy
// (window_taps), for values of `bytes` bytes, published in the layer's
// constants.
struct DepthwiseTaps {
        const std::vector<ptrdiff_t> &taps, &window_taps;
};
DepthwiseTaps depthwise_taps(const Geometry &G, size_t bytes)
{
        const size_t C = G.c;
        std::vector<ptrdiff_t> &taps_new = rs().taps, &window_taps_new = rs().window_taps;
        taps_new.clear();
        window_taps_new.clear();
        for (uint32_t ky = 0; ky < G.kh; ky++)
                for (uint32_t kx = 0; kx < G.kw; kx++) {
                        taps_new.push_back(ptrdiff_t(bytes * (size_t(ky) * G.dh * G.w + size_t(kx) * G.dw) * C));
                        window_taps_new.push_back(ptrdiff_t(bytes * window_taps_new.size() * C));
                }
        LayerConsts &lc = rs().layer_consts();
        return {publish(lc.taps, taps_new), publish(lc.window_taps, window_taps_new)};
}

// Each channel's weight sum over the taps of weights [taps][C].
void channel_weight_sums(const int8_t *W, size_t ntaps, size_t C, std::vector<int64_t> &sums)
{
        sums.assign(C, 0);
        for (size_t t = 0; t < ntaps; t++)
                for (size_t c = 0; c < C; c++)
                        sums[c] += W[t * C + c];
}

// 16-bit inputs on Kernels::depthwise16_epilogue, which reads the u16
// values as they are (no byte planes), the epilogue in the kernel: the
// interior pixels' windows in place, the border's from copies.
void run_depthwise16(const npu_layer_desc &L, const Geometry &G0, const LayerIO &io, const uint8_t *params,
                     const Kernels &k, ThreadPool *pool, std::vector<uint8_t> &store)
{
        const int8_t *W = reinterpret_cast<const int8_t *>(params + L.weight_offset);
        const size_t M = size_t(G0.n) * G0.oh * G0.ow, C = G0.c, ntaps = size_t(G0.kh) * G0.kw;
        const uint16_t z = uint16_t(io.ax.qp.zero);
        // The padding written out at stride 1 (the copy is about the
        // output's size); else border windows copied.  Copies hold the
        // values shifted into int16 (xs: X does).
        Geometry G = G0;
        bool xs = false;
        const uint8_t *X = G0.sh == 1 && G0.sw == 1 ? padded_plane16(G0, io, pool, store, G, xs) : io.x;
        const DepthwiseTaps dt = depthwise_taps(G, 2);
        // (32768 - z) times each channel's weight sum (GemmEpilogue::shift64).
        std::vector<int64_t> &shift_new = rs().wsum;
        channel_weight_sums(W, ntaps, C, shift_new);
        for (size_t c = 0; c < C; c++)
                shift_new[c] *= 32768 - int64_t(z);
        const std::vector<int64_t> &shift = publish(rs().layer_consts().zw64, shift_new);
        const ChannelScale cs(params + L.scale_offset, params + bias_row(L, io.ax.bits, G.oc), G.oc, io.ax.qp.scale, L, io.ay.qp);
        const OutQuant &oq = cs.oq;
        // 8 bits into the tensor, 16 into it where it is 2-byte aligned;
        // else a tile (u8 at 4 and 6 bits) packed from there.
        const bool out8 = io.ay.bits == 8, out16 = io.ay.bits == 16 && uintptr_t(io.y) % 2 == 0;
        const bool byte_tile = io.ay.bits == 4 || io.ay.bits == 6;
        const Interior inner = interior(G);
        const size_t tm = tile_rows(M, pool);
        parallel_for(pool, (M + tm - 1) / tm, [&](size_t tile) {
                const size_t m0 = tile * tm, mt = std::min(tm, M - m0);
                int32_t *acc = scratch(tls().c32, kTile * C);
                uint16_t *Q = scratch(tls().q, out8 || out16 || byte_tile ? 0 : kTile * C);
                uint8_t *Q8 = scratch(tls().q8, byte_tile ? kTile * C : 0);
                auto rows = [&](const uint8_t *x, bool shifted, size_t step, const ptrdiff_t *offs, size_t m, size_t len) {
                        GemmEpilogue e{nullptr, cs.mul.data(), cs.add.data(), L.act, &oq, nullptr, nullptr, C};
                        e.shift64 = shift.data();
                        if (out8)
                                e.q8 = io.y + m * C;
                        else if (byte_tile)
                                e.q8 = Q8 + (m - m0) * C;
                        else if (out16)
                                e.q16 = reinterpret_cast<uint16_t *>(io.y) + m * C;
                        else
                                e.q16 = Q + (m - m0) * C;
                        k.depthwise16_epilogue(x, step, offs, unsigned(ntaps), W, C, len, e, acc + (m - m0) * C, shifted);
                };
                for_runs(
                        G, inner, m0, mt,
                        [&](size_t m, size_t b, size_t oy, size_t ox, size_t len) {
                                const size_t iy = oy * G.sh - G.pt, ix = ox * G.sw - G.pl;
                                rows(X + 2 * ((b * G.h + iy) * G.w + ix) * C, xs, 2 * size_t(G.sw) * C, dt.taps.data(), m, len);
                        },
                        [&](size_t m, size_t len) {
                                uint8_t *win = scratch(tls().a, 2 * len * ntaps * C);
                                for (size_t r = 0; r < len; r++)
                                        window_row16(G, X, xs, xs ? uint16_t(z ^ 0x8000) : z, m + r, 0, C, win + 2 * r * ntaps * C);
                                rows(win, true, 2 * ntaps * C, dt.window_taps.data(), m, len);
                        });
                if (byte_tile)
                        store_tile(Q8, io.ay.bits, m0 * C, mt * C, io.y);
                else if (!out8 && !out16)
                        store_tile(Q, io.ay.bits, m0 * C, mt * C, io.y);
        });
}

} // namespace

// Depthwise CONV2D: weights [kh][kw][c] and the input read in place for
// interior pixels (border pixels from a copy of their window), int32
// accumulators per u8 plane (two at 16 bits, met in the wide epilogue), the
// zero-point term (z * the sum of each channel's weights) folded into the
// epilogue.
void run_depthwise(const npu_layer_desc &L, const Geometry &G0, const LayerIO &io, const uint8_t *params,
                   const Kernels &k, ThreadPool *pool, std::vector<uint8_t> &planes)
{
        if (io.ax.bits == 16 && k.depthwise16_epilogue && size_t(G0.kh) * G0.kw <= kDepthwise16MaxTaps) {
                run_depthwise16(L, G0, io, params, k, pool, planes);
                return;
        }
        const int8_t *W = reinterpret_cast<const int8_t *>(params + L.weight_offset);
        const size_t M = size_t(G0.n) * G0.oh * G0.ow, C = G0.c;
        const bool wide = io.ax.bits == 16;
        const int nplanes = wide ? 2 : 1;
        // 4- and 6-bit inputs in bands (below): no whole-tensor copy; 8-bit
        // ones too where the padding is worth writing out
        // (use_padded_plane).  At 8 bits a padded copy of the whole input
        // took 1.12-1.45 of the bands' time for 3x3 56x56x144 on one
        // thread, 1.24-1.30 on two (it leaves L2 before it is read).
        const bool bands = io.ax.bits == 4 || io.ax.bits == 6 || use_padded_plane(G0, io.ax.bits, true, pool);
        // The bands' geometry: the padded input's.
        Geometry G = G0;
        if (bands) {
                G.h = uint32_t(padded_h(G0));
                G.w = uint32_t(padded_w(G0));
                G.pt = G.pl = 0;
        }
        const Planes P = bands ? Planes{{nullptr, nullptr}} : input_planes(G0, io, pool, planes);
        const Interior inner = interior(G);
        const size_t ntaps = size_t(G.kh) * G.kw;
        LayerConsts &lc = rs().layer_consts();
        const DepthwiseTaps dt = depthwise_taps(G, 1);
        const std::vector<ptrdiff_t> &taps = dt.taps, &window_taps = dt.window_taps;
        const int32_t z = io.ax.qp.zero;
        std::vector<int64_t> &wsum = rs().wsum;
        channel_weight_sums(W, ntaps, C, wsum);
        std::vector<int32_t> &zw_new = rs().zw;
        std::vector<int64_t> &zw64_new = rs().zw64;
        zw_new.resize(wide ? 0 : C);
        zw64_new.resize(wide ? C : 0);
        for (size_t c = 0; c < C; c++)
                if (wide)
                        zw64_new[c] = int64_t(z) * wsum[c];
                else
                        zw_new[c] = int32_t(z * wsum[c]);
        const std::vector<int32_t> &zw = publish(lc.zw, zw_new);
        const std::vector<int64_t> &zw64 = publish(lc.zw64, zw64_new);
        const ChannelScale cs(params + L.scale_offset, params + bias_row(L, io.ax.bits, G.oc), G.oc, io.ax.qp.scale, L, io.ay.qp);
        const OutQuant &oq = cs.oq;
        const bool out8 = io.ay.bits == 8;
        // 4 and 6 bits from one plane: bytes into an L1 tile, packed from there.
        const bool byte_tile = !wide && (io.ay.bits == 4 || io.ay.bits == 6);
        const uint8_t pad[2] = {uint8_t(wide ? z >> 8 : z), uint8_t(z)};
        if (bands) {
                // Items of T whole output rows of one image.  Each unpacks the
                // padded input rows its windows read into a band of its
                // thread's (padded_row, as padded_plane writes them) and
                // runs every pixel of its rows as interior.  A band stays in
                // L2 and repeats (kh - 1) dh + 1 - sh of its rows with the
                // next item's: T is the least of the rows that keep that at
                // a quarter of the rows read, of those that leave each
                // thread 4 items, and of those whose band fits in 256 KB.
                const size_t sh = G0.sh, reach = size_t(G0.kh - 1) * G0.dh + 1, rowb = size_t(G.w) * C;
                const size_t threads = pool ? pool->threads() : 1, rows_all = size_t(G0.n) * G0.oh;
                size_t T = reach > sh ? (4 * (reach - sh) + sh - 1) / sh : 1;
                T = std::min(T, std::max<size_t>(1, rows_all / (4 * threads)));
                while (T > 1 && ((T - 1) * sh + reach) * rowb > (size_t(256) << 10))
                        T--;
                const size_t per_image = (G0.oh + T - 1) / T, ow = G0.ow;
                parallel_for(pool, size_t(G0.n) * per_image, [&](size_t item) {
                        const size_t b = item / per_image, oy0 = item % per_image * T;
                        const size_t oy1 = std::min<size_t>(G0.oh, oy0 + T), y0 = oy0 * sh, y1 = (oy1 - 1) * sh + reach;
                        uint8_t *band = scratch(tls().band, (y1 - y0) * rowb);
                        for (size_t y = y0; y < y1; y++)
                                padded_row(G0, io, uint8_t(z), b, y, rowb, band + (y - y0) * rowb);
                        int32_t *acc = scratch(tls().c32, ow * C);
                        uint16_t *Q = scratch(tls().q, out8 || byte_tile ? 0 : ow * C);
                        uint8_t *Q8 = scratch(tls().q8, byte_tile ? ow * C : 0);
                        for (size_t oy = oy0; oy < oy1; oy++) {
                                const size_t m = (b * G0.oh + oy) * ow;
                                GemmEpilogue e{zw.data(), cs.mul.data(), cs.add.data(), L.act, &oq, nullptr, nullptr, C};
                                if (out8)
                                        e.q8 = io.y + m * C;
                                else if (byte_tile)
                                        e.q8 = Q8;
                                else
                                        e.q16 = Q;
                                k.depthwise_epilogue(band + (oy * sh - y0) * rowb, size_t(G0.sw) * C, taps.data(), unsigned(ntaps), W,
                                                     C, ow, e, acc, io.ax.max_byte());
                                if (byte_tile)
                                        store_tile(Q8, io.ay.bits, m * C, ow * C, io.y);
                                else if (!out8)
                                        store_tile(Q, io.ay.bits, m * C, ow * C, io.y);
                        }
                });
                return;
        }
        const size_t tm = tile_rows(M, pool);
        parallel_for(pool, (M + tm - 1) / tm, [&](size_t tile) {
                const size_t m0 = tile * tm, mt = std::min(tm, M - m0);
                int32_t *acc[2] = {scratch(tls().c32, kTile * C), scratch(tls().c32lo, wide ? kTile * C : 0)};
                uint16_t *Q = scratch(tls().q, (out8 && !wide) || byte_tile ? 0 : kTile * C);
                uint8_t *Q8 = scratch(tls().q8, byte_tile ? kTile * C : 0);
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
                        else if (byte_tile)
                                e.q8 = Q8 + (m - m0) * C;
                        else
                                e.q16 = Q + (m - m0) * C;
                        k.depthwise_epilogue(x, step, offs, unsigned(ntaps), W, C, len, e, a, io.ax.max_byte());
                };
                for (int p = 0; p < nplanes; p++)
                        for_runs(
                                G, inner, m0, mt,
                                [&](size_t m, size_t b, size_t oy, size_t ox, size_t len) {
                                        const uint8_t *x = P.plane[p] + ((b * G.h + oy * G.sh - G.pt) * G.w + ox * G.sw - G.pl) * C;
                                        rows(p, x, size_t(G.sw) * C, taps.data(), m, len);
                                },
                                [&](size_t m, size_t len) {
                                        uint8_t *win = scratch(tls().a, len * ntaps * C);
                                        for (size_t r = 0; r < len; r++)
                                                window_row(G, P.plane[p], pad[p], m + r, 0, C, win + r * ntaps * C);
                                        rows(p, win, ntaps * C, window_taps.data(), m, len);
                                });
                if (out8 && !wide)
                        return;
                if (byte_tile) {
                        store_tile(Q8, io.ay.bits, m0 * C, mt * C, io.y);
                        return;
                }
                if (wide)
                        k.epilogue_wide(acc[0], acc[1], C, mt, C, zw64.data(), cs.mul.data(), cs.add.data(), L.act, oq, Q, C, {});
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
        const ChannelScale cs(params + L.scale_offset, params + bias_row(L, io.ax.bits, G.oc), G.oc, io.ax.qp.scale, L, io.ay.qp);
        const OutQuant &oq = cs.oq;
        parallel_for(pool, (M + kTile - 1) / kTile, [&](size_t tile) {
                const size_t m0 = tile * kTile, mt = std::min(kTile, M - m0);
                uint16_t *Q = scratch(tls().q, kTile * C);
                int64_t *acc = scratch(tls().c64, C);
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

} // namespace npuref

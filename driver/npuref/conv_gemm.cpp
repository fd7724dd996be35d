// CONV2D (any groups but depthwise) and FULLY_CONNECTED on the GEMM kernels.
#include <algorithm>
#include <atomic>
#include <cmath>
#include <cstdlib>
#include <cstring>

#include "layer.h"

namespace npuref {

namespace {

// A 1x1 convolution (or FC) whose rows are read in place: stride 1, no
// padding, one group, whole K blocks.
bool is_pointwise(const Geometry &G)
{
        return G.kh == 1 && G.kw == 1 && G.sh == 1 && G.sw == 1 && G.pt == 0 && G.pl == 0 && G.groups == 1 && G.c % 4 == 0;
}

// Each output channel's weight sum (the zero-point term) for the layer's
// groups, into wsum; returns whether a weight is -128.  Weights of 128 KB
// or more are summed on the pool's threads, 64 KB a work item: the sums
// are read again on every run, and one thread reading a 1 MB layer's
// weights while the others wait took a tenth of its 2-thread time.
bool weight_sums(const Kernels &k, ThreadPool *pool, const int8_t *W, uint32_t groups, size_t K4, size_t N16,
                 uint32_t cout_g, int64_t *wsum)
{
        const size_t per_group = N16 / 16, blocks = size_t(groups) * per_group, block_bytes = K4 * 16;
        const size_t step = std::max<size_t>(1, (size_t(64) << 10) / block_bytes);
        std::atomic<bool> m128{false};
        parallel_for(blocks * block_bytes >= (size_t(128) << 10) ? pool : nullptr, (blocks + step - 1) / step, [&](size_t i) {
                for (size_t b = i * step; b < std::min(blocks, (i + 1) * step); b++) {
                        const size_t g = b / per_group, n0 = b % per_group * 16;
                        if (k.column_sums(W + b * block_bytes, K4, std::min<size_t>(16, cout_g - n0), wsum + g * cout_g + n0))
                                m128.store(true, std::memory_order_relaxed);
                }
        });
        return m128.load(std::memory_order_relaxed);
}

// A tap-by-tap layer's runs: each tap's K blocks are its pixel's channels;
// where a window row's pixels lie side by side with nothing between their
// channels (no dilation, one group), the row's taps are one run of kw
// times as many blocks: fewer, longer inner loops.  The runs' offsets
// (values of `bytes` bytes) are published in the layer's constants; the
// return value is the K blocks per run.
size_t tap_runs(const Geometry &G, size_t bytes, const std::vector<ptrdiff_t> *&taps)
{
        const uint32_t cin_g = G.c / G.groups;
        const bool row_runs = G.dw == 1 && cin_g == G.c;
        std::vector<ptrdiff_t> &taps_new = rs().taps;
        taps_new.clear();
        for (uint32_t ky = 0; ky < G.kh; ky++)
                for (uint32_t kx = 0; kx < (row_runs ? 1 : G.kw); kx++)
                        taps_new.push_back(ptrdiff_t(bytes * (size_t(ky) * G.dh * G.w + size_t(kx) * G.dw) * G.c));
        taps = &publish(rs().layer_consts().taps, taps_new);
        return row_runs ? size_t(G.kw) * cin_g / 4 : cin_g / 4;
}

// Pixels [x0, x1) of an input of X pixels of cin values of type T (bytes,
// or u16 values little-endian), copied to dst with cpad values per pixel,
// those past cin zero.  Up to 4 channels a pixel is one word read (the
// values past its channels masked off) while the read stays inside the
// input.
template <typename T, typename Word>
void pad_channels(const uint8_t *src, uint8_t *dst, size_t X, uint32_t cin, uint32_t cpad, size_t x0, size_t x1)
{
        static_assert(sizeof(Word) == 4 * sizeof(T));
        constexpr size_t V = sizeof(T);
        size_t x = x0;
        if (cpad == 4 && cin < 4) {
                const size_t safe = X * cin >= 4 ? (X * cin - 4) / cin + 1 : 0;
                const Word keep = Word(~Word(0)) >> (8 * V * (4 - cin));
                for (; x < std::min(x1, safe); x++) {
                        Word v;
                        std::memcpy(&v, src + x * cin * V, sizeof v);
                        v &= keep;
                        std::memcpy(dst + x * 4 * V, &v, sizeof v);
                }
        }
        for (; x < x1; x++) {
                for (size_t b = 0; b < cin * V; b++)
                        dst[x * cpad * V + b] = src[x * cin * V + b];
                for (size_t b = cin * V; b < cpad * V; b++)
                        dst[x * cpad * V + b] = 0;
        }
}

// Whether 16-bit inputs of a group of K4 x N16 weights go to the table's
// gemm16_epilogue (else: byte planes).
bool gemm16_takes(const Kernels &k, size_t K4, size_t N16)
{
        return k.gemm16_epilogue && (!k.gemm16_max_weights || K4 * N16 <= k.gemm16_max_weights);
}

// 16-bit inputs on Kernels::gemm16_epilogue, which reads the u16 values as
// they are (no byte planes), the epilogue in the kernel: a 1x1 layer's rows
// in place, a convolution whose groups hold whole K blocks tap by tap
// (interior windows in place, the border's from copies).  False
// where the layer is not of that kind (or the table has no such kernel).
bool gemm16_layer(const npu_layer_desc &L, const Geometry &G0, const LayerIO &io, const int8_t *W, const uint8_t *params,
                  const Kernels &k, ThreadPool *pool, std::vector<uint8_t> &store)
{
        const uint32_t cin_g = G0.c / G0.groups, cout_g = G0.oc / G0.groups;
        const bool pointwise = is_pointwise(G0);
        const size_t K4 = size_t(G0.kh) * G0.kw * cin_g, N16 = (cout_g + 15) / 16 * 16;
        if (!gemm16_takes(k, K4, N16) || !(pointwise || cin_g % 4 == 0))
                return false;
        const int64_t z = io.ax.qp.zero;
        std::vector<int64_t> &wsum = rs().wsum;
        wsum.resize(G0.oc);
        weight_sums(k, pool, W, G0.groups, K4, N16, cout_g, wsum.data());
        LayerConsts &lc = rs().layer_consts();
        std::vector<int64_t> &shift_new = rs().zw64;
        shift_new.resize(G0.oc);
        for (uint32_t c = 0; c < G0.oc; c++)
                shift_new[c] = (32768 - z) * wsum[c];
        const std::vector<int64_t> &shift = publish(lc.zw64, shift_new);
        // W's contents hold for this run of the layer: one stamp for all its
        // calls (kernels that lay the weights out anew do it once per thread).
        static std::atomic<uint64_t> stamps{0};
        const uint64_t stamp = ++stamps;
        const ChannelScale cs(params + L.scale_offset, params + bias_row(L, io.ax.bits, G0.oc), G0.oc, io.ax.qp.scale, L, io.ay.qp);
        const OutQuant &oq = cs.oq;
        // Folded 8-bit outputs straight into the tensor, 16-bit ones too
        // where it is 2-byte aligned; others through a u16 tile packed from
        // there.
        const bool out8 = io.ay.bits == 8 && oq.folded, out16 = io.ay.bits == 16 && uintptr_t(io.y) % 2 == 0;
        // A convolution's padding written out at stride 1 (the copy is about
        // the output's size); else its border windows copied.  Copies hold
        // the values shifted into int16 (xs: X does).
        Geometry G = G0;
        bool xs = false;
        const uint8_t *X = !pointwise && G0.sh == 1 && G0.sw == 1 ? padded_plane16(G0, io, pool, store, G, xs) : io.x;
        // A 1x1 layer's rows are one run; a convolution's taps as tap_runs says.
        const ptrdiff_t zero_off = 0;
        const std::vector<ptrdiff_t> *taps = nullptr;
        const size_t kbt = pointwise ? K4 / 4 : tap_runs(G, 2, taps);
        const Interior inner = interior(G);
        const size_t M = size_t(G.n) * G.oh * G.ow, tm = tile_rows(M, pool);
        parallel_for(pool, (M + tm - 1) / tm, [&](size_t item) {
                const size_t m0 = item * tm, mt = std::min(tm, M - m0);
                uint16_t *Q = scratch(tls().q, out8 || out16 ? 0 : kTile * G.oc);
                int64_t *C64 = scratch(tls().c64, oq.folded ? 0 : kTile * cout_g);
                const Residual R = io.r ? residual_rows(io, k, m0, mt) : Residual{};
                for (uint32_t g = 0; g < G.groups; g++) {
                        const uint32_t c0 = g * cout_g;
                        auto gemm = [&](const GemmA &a, size_t m, size_t rows) {
                                GemmEpilogue e{nullptr, cs.mul.data() + c0, cs.add.data() + c0, L.act, &oq, nullptr, nullptr,
                                               G.oc, R.at(m - m0, c0)};
                                e.shift64 = shift.data() + c0;
                                e.stamp = stamp;
                                if (out8)
                                        e.q8 = io.y + m * G.oc + c0;
                                else if (out16)
                                        e.q16 = reinterpret_cast<uint16_t *>(io.y) + m * G.oc + c0;
                                else
                                        e.q16 = Q + (m - m0) * G.oc + c0;
                                k.gemm16_epilogue(a, rows, W + g * K4 * N16, K4, cout_g, e, C64, cout_g);
                        };
                        if (pointwise) {
                                gemm(GemmA{X + 2 * m0 * G.c, 2 * size_t(G.c), &zero_off, 1, kbt}, m0, mt);
                                continue;
                        }
                        for_runs(
                                G, inner, m0, mt,
                                [&](size_t m, size_t b, size_t oy, size_t ox, size_t len) {
                                        const size_t px = (b * G.h + oy * G.sh - G.pt) * G.w + ox * G.sw - G.pl;
                                        GemmA a{X + 2 * (px * G.c + size_t(g) * cin_g), 2 * size_t(G.sw) * G.c, taps->data(),
                                                unsigned(taps->size()), kbt};
                                        a.shifted = xs;
                                        gemm(a, m, len);
                                },
                                [&](size_t m, size_t len) {
                                        uint8_t *A = scratch(tls().a, 2 * len * K4);
                                        for (size_t r = 0; r < len; r++)
                                                window_row16(G, X, xs, uint16_t(xs ? z ^ 0x8000 : z), m + r, size_t(g) * cin_g, cin_g,
                                                             A + 2 * r * K4);
                                        GemmA a{A, 2 * K4, &zero_off, 1, K4 / 4};
                                        a.shifted = true;
                                        gemm(a, m, len);
                                });
                }
                if (!out8 && !out16)
                        store_tile(Q, io.ay.bits, m0 * G.oc, mt * G.oc, io.y);
        });
        return true;
}

// The layer on the GEMM kernel with weights W (K4 x N16 per group, in
// 16-column blocks of 4-byte K blocks) and, when `given` is set, its input
// already as u8 planes laid out as G0 says.
void gemm_layer(const npu_layer_desc &L, const Geometry &G0, const LayerIO &io, const int8_t *W, const uint8_t *params,
                const Kernels &k, ThreadPool *pool, std::vector<uint8_t> &planes, const Planes *given)
{
        if (io.ax.bits == 16 && !given && gemm16_layer(L, G0, io, W, params, k, pool, planes))
                return;
        // The geometry over the planes read: G0's, or a padded plane's.
        Geometry G = G0;
        const uint32_t cin_g = G.c / G.groups, cout_g = G.oc / G.groups;
        const size_t K = size_t(G.kh) * G.kw * cin_g, K4 = (K + 3) / 4 * 4, N16 = (cout_g + 15) / 16 * 16;
        const size_t KB = K4 / 4;
        const int32_t z = io.ax.qp.zero;
        const bool wide = io.ax.bits == 16;
        const int nplanes = wide ? 2 : 1;

        // Sum of each output channel's weights, for the zero-point term.
        std::vector<int64_t> &wsum = rs().wsum;
        wsum.resize(G.oc);
        const bool has_m128 = weight_sums(k, pool, W, G.groups, K4, N16, cout_g, wsum.data());
        // Up to 65536 K bytes each plane's sums fit int32: one plane is the
        // whole accumulator, two (16 bits) meet in the wide epilogue.
        // Longer rows add int32 pieces into int64.
        const bool split = KB > kKBlocks;
        const bool narrow = !wide && !split;
        LayerConsts &lc = rs().layer_consts();
        std::vector<int32_t> &zw_new = rs().zw;
        std::vector<int64_t> &zw64_new = rs().zw64;
        zw_new.resize(narrow ? G.oc : 0);
        zw64_new.resize(narrow ? 0 : G.oc);
        // (Loops without branches or calls in them: the compiler
        // vectorizes them, and a 1024-channel layer runs them every time.)
        if (narrow)
                for (uint32_t c = 0; c < G.oc; c++)
                        zw_new[c] = int32_t(z * wsum[c]);
        else
                for (uint32_t c = 0; c < G.oc; c++)
                        zw64_new[c] = int64_t(z) * wsum[c];
        const std::vector<int32_t> &zw = publish(lc.zw, zw_new);
        // 128 times the weight sums, for kernels that shift 8-bit inputs by
        // 128 (GemmEpilogue::sums128); none where a weight is -128.
        std::vector<int32_t> &s128_new = rs().s128;
        const uint8_t amax = io.ax.max_byte();
        s128_new.resize(narrow && amax >= 128 && !has_m128 ? G.oc : 0);
        for (size_t c = 0; c < s128_new.size(); c++)
                s128_new[c] = int32_t(uint32_t(wsum[c]) * 128u);
        const std::vector<int32_t> &s128 = publish(lc.s128, s128_new);
        const int32_t *sums128 = s128.empty() ? nullptr : s128.data();
        const std::vector<int64_t> &zw64 = publish(lc.zw64, zw64_new);
        const ChannelScale cs(params + L.scale_offset, params + bias_row(L, io.ax.bits, G.oc), G.oc, io.ax.qp.scale, L, io.ay.qp);
        const OutQuant &oq = cs.oq;
        const bool out8 = io.ay.bits == 8;  // the epilogue writes the tensor itself
        // GemmEpilogue::bounded: the folded values of the largest int32 sum
        // the kernel can make (|x w| over K values, and the zero-point term)
        // stay well within int32 in every channel.
        bool bounded = false;
        if (narrow && oq.folded) {
                int64_t zw_max = 0;
                for (int32_t v : zw)
                        zw_max = std::max<int64_t>(zw_max, std::llabs(int64_t(v)));
                const double acc_max = std::min(double(K) * amax * 128 + double(zw_max), 2147483648.0);
                bounded = folded_bounded(cs.mul.data(), cs.add.data(), G.oc, acc_max);
        }
        // 4 and 6 bits from one int32 plane: the epilogue writes bytes into a
        // tile that stays in L1, packed from there (no 16-bit tile).
        const bool byte_tile = narrow && (io.ay.bits == 4 || io.ay.bits == 6);
        // Or straight into the packed tensor, where the kernel packs them
        // in its registers (folded activations) and each group's rows are
        // whole 32-column slices, or one block of 16 (four rows a vector):
        // a last slice of fewer columns (24, 36 or 40 channels, say) stores
        // masked parts of rows, which took 1.05 to 1.5 times the layer's
        // time with the tile packed after it.
        const bool pack_out = byte_tile && oq.folded && (k.gemm_packs >> io.ay.bits & 1) && (cout_g % 32 == 0 || cout_g == 16);

        const bool pointwise = is_pointwise(G);
        // Tap by tap: each tap's K blocks hold whole input channels, and
        // one GEMM call covers K (no int32 split).
        const bool direct = !pointwise && cin_g % 4 == 0 && !split;
        const size_t M = size_t(G.n) * G.oh * G.ow;
        // Weights of more than half an L2 (a fully connected layer, a wide
        // 1x1): each thread's rows go column chunk by column chunk of up to
        // 256 KB of weights, which stay in its L2 while its row tiles stream
        // past them, instead of every tile reading all the weights again.
        // Packed outputs are stored row segment by row segment, which stay
        // whole bytes where the channels are a multiple of 4.
        const bool chunked = pointwise && narrow && !io.r && K4 * N16 > (size_t(512) << 10) &&
                             (!byte_tile || G.oc % 4 == 0);
        // A pointwise layer's 4- and 6-bit rows are unpacked tile by tile
        // into L1 as the tile's GEMM needs them, not in a pass of their own
        // (column chunks unpack them once, in a pass).
        // At 4 bits, kernels that unpack rows in registers read them packed
        // (GemmA::nibbles), with the weights' K blocks in the order they
        // need: the pass writes every unpacked byte and the GEMM reads it
        // back, which costs more than the vpandd and vpsrld on each row's 8
        // values per 32 output channels while the outputs are at most as
        // many as the inputs (56x56 64->32: 3.5% faster, 32->32: 2%,
        // 64->64: 0.5%; 40x40 64->128 and 28x28 32->48 0-3% slower); with
        // 16 or fewer channels those three serve two vpdpbusd instead of
        // four, and cost more than the pass.  The reordered weights are
        // compared with the job's on every run (2 K N bytes): from 512
        // rows on that is under 1% of the layer's M K N multiply-adds
        // (7x7 512->512 took 10% longer, 14x14 256->256 2%).
        const bool nibbles = !given && pointwise && !chunked && io.ax.bits == 4 && k.gemm_nibbles && narrow && cin_g % 8 == 0 &&
                             cout_g > 16 && cout_g <= K && M >= 512;
        const bool unpack_rows = pointwise && !chunked && !nibbles && (io.ax.bits == 4 || io.ax.bits == 6);
        const int8_t *Wk = W;
        if (nibbles) {
                // Reordered once for the weights a job brings, and again
                // only when they differ from the last job's.
                const size_t bytes = size_t(G.groups) * K4 * N16;
                if (lc.wsrc.size() != bytes || std::memcmp(lc.wsrc.data(), W, bytes)) {
                        lc.wsrc.assign(W, W + bytes);
                        lc.wnib.resize(bytes);
                        for (uint32_t g = 0; g < G.groups; g++)
                                nibble_order(W + g * K4 * N16, K4, N16, lc.wnib.data() + g * K4 * N16);
                }
                Wk = lc.wnib.data();
        }
        // A padded tap-by-tap layer reads its input with the padding written
        // out where that pays (padded_plane); from here on G is the plane's.
        const bool padded = !given && direct && use_padded_plane(G0, io.ax.bits, false, pool);
        const Planes P = given         ? *given
                         : unpack_rows || nibbles ? Planes{{nullptr, nullptr}}
                         : padded      ? padded_plane(G0, io, pool, planes, G)
                                       : input_planes(G0, io, pool, planes);
        const uint8_t pad_value[2] = {uint8_t(wide ? z >> 8 : z), uint8_t(z)};
        const Interior inner = interior(G);
        const std::vector<ptrdiff_t> *taps = nullptr;
        const size_t kbt = direct ? tap_runs(G, 1, taps) : 0;
        const ptrdiff_t zero_off = 0;

        if (chunked) {
                // Items: a block of rows per thread (its share: the rows it
                // wrote in the layer before and reads in the next stay in
                // its cache), in it each column chunk, in that the row tiles.
                const size_t NC = std::max<size_t>(32, (size_t(256) << 10) / K4 / 32 * 32);
                const size_t nchunks = (cout_g + NC - 1) / NC, T = pool ? pool->threads() : 1;
                const size_t block = (M + T - 1) / T, tiles = (block + kTile - 1) / kTile;
                parallel_for(pool, T * nchunks * tiles, [&](size_t item) {
                        const size_t b = item / (nchunks * tiles), in_b = item % (nchunks * tiles);
                        const size_t n0 = in_b / tiles * NC, nc = std::min(NC, size_t(cout_g) - n0);
                        const size_t m0 = b * block + in_b % tiles * kTile, end = std::min(M, (b + 1) * block);
                        if (m0 >= end)
                                return;
                        const size_t mt = std::min(kTile, end - m0);
                        int32_t *C32 = scratch(tls().c32, kTile * nc);
                        uint16_t *Q = scratch(tls().q, out8 || byte_tile ? 0 : kTile * nc);
                        uint8_t *Q8 = scratch(tls().q8, byte_tile ? kTile * nc : 0);
                        GemmEpilogue e{zw.data() + n0, cs.mul.data() + n0, cs.add.data() + n0, L.act, &oq, nullptr, nullptr,
                                       out8 ? G.oc : nc};
                        e.sums128 = sums128 ? sums128 + n0 : nullptr;
                        e.bounded = bounded;
                        if (out8)
                                e.q8 = io.y + m0 * G.oc + n0;
                        else if (byte_tile)
                                e.q8 = Q8;
                        else
                                e.q16 = Q;
                        k.gemm_epilogue(GemmA{P.plane[0] + m0 * G.c, G.c, &zero_off, 1, KB, amax}, mt, W + n0 * K4, K4, nc, e,
                                        C32, nc);
                        if (out8)
                                return;
                        for (size_t r = 0; r < mt; r++)
                                if (byte_tile)
                                        store_tile(Q8 + r * nc, io.ay.bits, (m0 + r) * G.oc + n0, nc, io.y);
                                else
                                        store_tile(Q + r * nc, io.ay.bits, (m0 + r) * G.oc + n0, nc, io.y);
                });
                return;
        }

        // A 1x1 layer on one int32 plane without a residual: items of twice
        // kTile rows (tile_rows' item cost is 2-7% of a 56x56 layer with
        // 32 to 64 channels, at any depth; with 128 to 512 it is lost in the
        // layer's time: 28x28 256->256, 512->128 and 56x56 128->128 took
        // the same).
        const size_t tm = tile_rows(M, pool, pointwise && narrow && !io.r ? 2 * kTile : 0);
        parallel_for(pool, (M + tm - 1) / tm, [&](size_t item) {
                const size_t m0 = item * tm, mt = std::min(tm, M - m0);
                uint8_t *A = scratch(tls().a, pointwise && !unpack_rows ? 0 : tm * K4);
                int32_t *Cp[2] = {scratch(tls().c32, tm * cout_g), scratch(tls().c32lo, wide ? tm * cout_g : 0)};
                int64_t *C64 = scratch(tls().c64, split ? tm * cout_g : 0);
                uint16_t *Q = scratch(tls().q, (out8 && narrow) || byte_tile ? 0 : tm * G.oc);
                uint8_t *Q8 = scratch(tls().q8, byte_tile ? tm * G.oc : 0);
                if (unpack_rows)
                        bwq::unpack_u8(io.x, io.ax.bits, m0 * G.c, mt * G.c, A);
                // The tile's residual, dequantized once for all groups and planes.
                const Residual R = io.r ? residual_rows(io, k, m0, mt) : Residual{};
                for (uint32_t g = 0; g < G.groups; g++) {
                        const int8_t *Bg = Wk + g * K4 * N16;
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
                                auto gemm = [&](GemmA a, size_t m, size_t rows) {
                                        a.amax = amax;
                                        int32_t *c = C32 + (m - m0) * cout_g;
                                        if (!narrow) {
                                                k.gemm_u8s8(a, rows, Bg, K4, cout_g, 0, c, cout_g);
                                                return;
                                        }
                                        GemmEpilogue e{zw.data() + c0, mul, add, L.act, &oq, nullptr, nullptr, G.oc,
                                                       R.at(m - m0, c0), sums128 ? sums128 + c0 : nullptr};
                                        e.bounded = bounded;
                                        if (out8) {
                                                e.q8 = io.y + m * G.oc + c0;
                                        } else if (pack_out) {
                                                e.q8 = io.y;
                                                e.pack_bits = uint8_t(io.ay.bits);
                                                e.pack_first = m * G.oc + c0;
                                        } else if (byte_tile) {
                                                e.q8 = Q8 + (m - m0) * G.oc + c0;
                                        } else {
                                                e.q16 = Q + (m - m0) * G.oc + c0;
                                        }
                                        k.gemm_epilogue(a, rows, Bg, K4, cout_g, e, c, cout_g);
                                };
                                // Border windows copied into rows of A.
                                auto window_rows = [&](size_t m, size_t len) {
                                        for (size_t r = 0; r < len; r++) {
                                                uint8_t *row = A + (m - m0 + r) * K4;
                                                window_row(G, plane, pad_value[p], m + r, size_t(g) * cin_g, cin_g, row);
                                                fill_small(row + K, 0, K4 - K);
                                        }
                                };
                                if (direct) {
                                        for_runs(
                                                G, inner, m0, mt,
                                                [&](size_t m, size_t b, size_t oy, size_t ox, size_t len) {
                                                        const size_t iy = oy * G.sh - G.pt, ix = ox * G.sw - G.pl;
                                                        gemm(GemmA{plane + ((b * G.h + iy) * G.w + ix) * G.c + size_t(g) * cin_g,
                                                                   size_t(G.sw) * G.c, taps->data(), unsigned(taps->size()), kbt},
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
                                if (nibbles) {
                                        GemmA a{io.x + (m0 * G.c + size_t(g) * cin_g) / 2, G.c / 2, &zero_off, 1, KB};
                                        a.nibbles = true;
                                        gemm(a, m0, mt);
                                        continue;
                                }
                                if (pointwise) {
                                        Ap = unpack_rows ? A : plane + m0 * G.c;
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
                                        k.gemm_u8s8(GemmA{Ap, lda, &off, 1, kb1 - kb0, amax}, mt, Bg, K4, cout_g, kb0, C32, cout_g);
                                        for (size_t i = 0; i < mt * cout_g; i++)
                                                C64[i] += (p == 0 && wide ? 256 : 1) * int64_t(C32[i]);
                                }
                        }
                        if (split)
                                epilogue_tile(C64, cout_g, mt, cout_g, zw64.data() + c0, mul, add, L.act, oq, Q + c0, G.oc,
                                              R.at(0, c0));
                        else if (wide)
                                k.epilogue_wide(Cp[0], Cp[1], cout_g, mt, cout_g, zw64.data() + c0, mul, add, L.act, oq, Q + c0,
                                                G.oc, R.at(0, c0));
                }
                if (pack_out)
                        return;
                if (byte_tile)
                        store_tile(Q8, io.ay.bits, m0 * G.oc, mt * G.oc, io.y);
                else if (!out8 || !narrow)
                        store_tile(Q, io.ay.bits, m0 * G.oc, mt * G.oc, io.y);
        });
}

} // namespace

// CONV2D (any groups but depthwise) and FULLY_CONNECTED on the GEMM kernel.
// A 1x1 convolution or FC reads the activation rows in place (or unpacked);
// a convolution whose groups hold whole 4-byte K blocks reads its interior
// pixels in place tap by tap and copies only the border pixels' windows; a
// convolution of a few input channels that do not (RGB, say) reads a copy
// of its input with the channels padded to 4 the same way, its weights
// padded with zeros to match; anything else copies every output pixel's
// window into a row (im2col).
void run_gemm_layer(const npu_layer_desc &L, const Geometry &G, const LayerIO &io, const uint8_t *params,
                    const Kernels &k, ThreadPool *pool, std::vector<uint8_t> &planes)
{
        const int8_t *W = reinterpret_cast<const int8_t *>(params + L.weight_offset);
        const uint32_t cin = G.c, cpad = (cin + 3) / 4 * 4, cout = G.oc;
        const size_t taps = size_t(G.kh) * G.kw, K4 = (taps * cin + 3) / 4 * 4, Kp = taps * cpad;
        // Padding pays where the GEMM grows by at most half (3 -> 4
        // channels: a third) and the rows stay within one int32 piece.
        const bool pad = L.op == NPU_OP_CONV2D && G.groups == 1 && cin % 4 != 0 && !(G.kh == 1 && G.kw == 1) &&
                         2 * Kp <= 3 * K4 && Kp / 4 <= kKBlocks;
        if (!pad) {
                gemm_layer(L, G, io, W, params, k, pool, planes, nullptr);
                return;
        }
        const size_t N16 = (cout + 15) / 16 * 16;
        // Weight k = tap * cin + c moves to tap * cpad + c; the pad rows are zero.
        std::vector<int8_t> &wp = rs().wpad;
        wp.assign(Kp * N16, 0);
        for (size_t nb = 0; nb < N16 / 16; nb++)
                for (size_t t = 0; t < taps; t++)
                        for (uint32_t c = 0; c < cin; c++) {
                                const size_t ko = t * cin + c, kn = t * cpad + c;
                                const int8_t *s = W + nb * K4 * 16 + ko / 4 * 64 + ko % 4;
                                int8_t *d = wp.data() + nb * Kp * 16 + kn / 4 * 64 + kn % 4;
                                for (int col = 0; col < 16; col++)
                                        d[col * 4] = s[col * 4];
                        }
        Geometry Gp = G;
        Gp.c = cpad;
        const size_t X = size_t(G.n) * G.h * G.w;
        const bool wide = io.ax.bits == 16;
        if (wide && gemm16_takes(k, Kp, N16)) {
                // 16 bits read as u16 (gemm16_layer): one copy, its pixels' pad
                // channels zero.
                std::vector<uint8_t> &store = rs().padded;
                store.resize(2 * X * cpad);
                parallel_for(pool, (X + 4095) / 4096, [&](size_t i) {
                        pad_channels<uint16_t, uint64_t>(io.x, store.data(), X, cin, cpad, i * 4096, std::min(X, (i + 1) * 4096));
                });
                LayerIO io16 = io;
                io16.x = store.data();
                gemm16_layer(L, Gp, io16, wp.data(), params, k, pool, planes);
                return;
        }
        const Planes P0 = input_planes(G, io, pool, planes);
        std::vector<uint8_t> &store = rs().padded;
        store.resize(X * cpad * (wide ? 2 : 1));
        Planes P{{store.data(), wide ? store.data() + X * cpad : nullptr}};
        for (int p = 0; p < (wide ? 2 : 1); p++) {
                const uint8_t *src = P0.plane[p];
                uint8_t *dst = const_cast<uint8_t *>(P.plane[p]);
                parallel_for(pool, (X + 4095) / 4096, [&](size_t i) {
                        pad_channels<uint8_t, uint32_t>(src, dst, X, cin, cpad, i * 4096, std::min(X, (i + 1) * 4096));
                });
        }
        gemm_layer(L, Gp, io, wp.data(), params, k, pool, planes, &P);
}

} // namespace npuref

// The ops npuref computes on dequantized values: pools, ADD, MUL, CONCAT,
// RESIZE, DEPTH_TO_SPACE.  Each reads its inputs where they lie (in place
// at 8 and 16 bits; at 4 and 6 unpacked to bytes once), dequantizes a tile
// of rows into floats, computes and quantizes the tile with the float
// epilogue, and writes it packed: no 16-bit copy of an input or output.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "layer.h"

namespace npuref {

namespace {

// One input as the op reads it: u8 values (8 bits in place, 4 and 6
// unpacked) or u16 (16 bits in place, or copied when misaligned).
struct In {
        const uint8_t *b = nullptr;
        const uint16_t *w = nullptr;
        bwq::QParams qp{};

        void deq(size_t first, size_t n, float *y) const
        {
                if (b)
                        dequantize_row(b + first, n, qp, y);
                else
                        dequantize_row(w + first, n, qp, y);
        }
        uint32_t at(size_t e) const { return b ? b[e] : w[e]; }
};

In prepare_input(const uint8_t *src, const Act &a, size_t count, size_t i, ThreadPool *pool)
{
        In in;
        in.qp = a.qp;
        if (a.bits == 8) {
                in.b = src;
        } else if (a.bits == 16 && reinterpret_cast<uintptr_t>(src) % alignof(uint16_t) == 0) {
                in.w = reinterpret_cast<const uint16_t *>(src);
        } else if (a.bits == 16) {
                rs.inq[i].resize(count);
                unpack_all(pool, src, 16, count, rs.inq[i].data());
                in.w = rs.inq[i].data();
        } else {
                std::vector<uint8_t> &v = rs.inq8[i];
                v.resize(count);
                constexpr size_t chunk = 1 << 16;
                parallel_for(pool, (count + chunk - 1) / chunk, [&](size_t c) {
                        size_t first = c * chunk;
                        bwq::unpack_u8(src, a.bits, first, std::min(chunk, count - first), v.data() + first);
                });
                in.b = v.data();
        }
        return in;
}

// best[i] = max(best[i], q[i]), in vectors.
template <typename T> inline void max_into(T *__restrict best, const T *__restrict q, size_t n)
{
        for (size_t i = 0; i < n; i++)
                best[i] = best[i] > q[i] ? best[i] : q[i];
}

} // namespace

void run_float_layer(const npu_layer_desc &L, const std::vector<const npu_tensor_desc *> &tin,
                     const std::vector<const uint8_t *> &src, const std::vector<Act> &inact, const npu_tensor_desc &y,
                     const Act &ay, uint8_t *ydst, ThreadPool *pool)
{
        const npu_tensor_desc &x = *tin[0];
        const size_t M = size_t(y.n) * y.h * y.w, C = y.c;
        std::vector<In> in(tin.size());
        for (size_t i = 0; i < tin.size(); i++)
                in[i] = prepare_input(src[i], inact[i], tensor_elements(*tin[i]), i, pool);
        const OutQuant oq = out_quant(ay.qp, L.act);
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
        const size_t tm = tile_rows(M, pool);
        parallel_for(pool, (M + tm - 1) / tm, [&](size_t tile) {
                const size_t m0 = tile * tm, mt = std::min(tm, M - m0), n = mt * C;
                float *F = scratch(tls.f, n);
                // Each op leaves the tile's values in F, row r at F + r * C.
                auto each_row = [&](auto f) {
                        size_t ox = m0 % y.w, oy = (m0 / y.w) % y.h, b = m0 / (size_t(y.w) * y.h);
                        for (size_t r = 0; r < mt; r++) {
                                f(r, m0 + r, b, oy, ox);
                                if (++ox == y.w && (ox = 0, ++oy == y.h))
                                        oy = 0, b++;
                        }
                };
                switch (L.op) {
                case NPU_OP_ADD: {  // sa (qa - za) + sb (qb - zb): one rounding each
                        float *G = scratch(tls.f2, n);
                        in[0].deq(m0 * C, n, F);
                        in[1].deq(m0 * C, n, G);
                        add_rows(F, G, n);
                        break;
                }
                case NPU_OP_MUL: {
                        const bool bcast = tin[1]->h == 1 && tin[1]->w == 1 && (y.h != 1 || y.w != 1);
                        float *G = scratch(tls.f2, n);
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
                        double *S = scratch(tls.d, C);
                        float *D = scratch(tls.f2, C);
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
                        auto pool_max = [&](auto *best, const auto *q) {
                                each_row([&](size_t r, size_t, size_t b, size_t oy, size_t ox) {
                                        auto *d = best + r * C;
                                        std::fill(d, d + C, 0);
                                        in_window(b, oy, ox, [&](size_t e) { max_into(d, q + e * C, C); });
                                });
                                dequantize_row(best, n, in[0].qp, F);
                        };
                        if (in[0].b)
                                pool_max(scratch(tls.b8, n), in[0].b);
                        else
                                pool_max(scratch(tls.q2, n), in[0].w);
                        break;
                }
                case NPU_OP_AVGPOOL: {  // per channel, in double, window pixels in order
                        double *S = scratch(tls.d, C);
                        float *D = scratch(tls.f2, C);
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
                                each_row([&](size_t r, size_t, size_t b, size_t oy, size_t ox) {
                                        in[0].deq(px(b, oy / L.stride_h, ox / L.stride_w), C, F + r * C);
                                });
                                break;
                        }
                        // Bilinear, half-pixel centres, edges clamped (ONNX linear, half_pixel).
                        auto srcpos = [](size_t o, uint32_t s, uint32_t len, size_t *i0, size_t *i1, float *f) {
                                float v = (float(o) + 0.5f) / float(s) - 0.5f;
                                v = std::min(std::max(v, 0.0f), float(len - 1));
                                *i0 = size_t(v);
                                *i1 = std::min<size_t>(*i0 + 1, len - 1);
                                *f = v - float(*i0);
                        };
                        float *Q4 = scratch(tls.f2, 4 * C);
                        each_row([&](size_t r, size_t, size_t b, size_t oy, size_t ox) {
                                size_t y0, y1, x0, x1;
                                float fy, fx;
                                srcpos(oy, L.stride_h, x.h, &y0, &y1, &fy);
                                srcpos(ox, L.stride_w, x.w, &x0, &x1, &fx);
                                const float *va = Q4, *vb = Q4 + C, *vc = Q4 + 2 * C, *vd = Q4 + 3 * C;
                                in[0].deq(px(b, y0, x0), C, Q4);
                                in[0].deq(px(b, y0, x1), C, Q4 + C);
                                in[0].deq(px(b, y1, x0), C, Q4 + 2 * C);
                                in[0].deq(px(b, y1, x1), C, Q4 + 3 * C);
                                for (size_t c = 0; c < C; c++)
                                        F[r * C + c] = (1 - fy) * ((1 - fx) * va[c] + fx * vb[c]) + fy * ((1 - fx) * vc[c] + fx * vd[c]);
                        });
                        break;
                }
                case NPU_OP_DEPTH_TO_SPACE:
                        each_row([&](size_t r, size_t, size_t b, size_t oy, size_t ox) {
                                const size_t blk = (oy % L.stride_h) * L.stride_w + ox % L.stride_w;
                                in[0].deq(((b * x.h + oy / L.stride_h) * x.w + ox / L.stride_w) * x.c + blk * C, C, F + r * C);
                        });
                        break;
                case NPU_OP_CONCAT:
                        each_row([&](size_t r, size_t m, size_t, size_t, size_t) {
                                size_t base = 0;
                                for (size_t i = 0; i < in.size(); i++) {
                                        const size_t ci = tin[i]->c;
                                        in[i].deq(m * ci, ci, F + r * C + base);
                                        base += ci;
                                }
                        });
                        break;
                }
                // The tile quantized: in place at 8 bits, through a byte tile
                // at 4 and 6, a 16-bit one at 16.
                if (ay.bits == 8) {
                        epilogue_float(F, n, L.act, oq, ydst + m0 * C);
                } else if (ay.bits < 8) {
                        uint8_t *Q8 = scratch(tls.q8, n);
                        epilogue_float(F, n, L.act, oq, Q8);
                        store_tile(Q8, ay.bits, m0 * C, n, ydst);
                } else {
                        uint16_t *Q = scratch(tls.q, n);
                        epilogue_float(F, n, L.act, oq, Q);
                        store_tile(Q, ay.bits, m0 * C, n, ydst);
                }
        });
}

} // namespace npuref

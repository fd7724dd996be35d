// The ops npuref computes on dequantized values: pools, ADD, MUL, CONCAT,
// RESIZE, DEPTH_TO_SPACE.
#include <algorithm>
#include <cmath>
#include <cstring>

#include "layer.h"

namespace npuref {

// Ops computed on dequantized values: pools, ADD, MUL, CONCAT.
void run_float_layer(const npu_layer_desc &L, const std::vector<const npu_tensor_desc *> &in,
                     const std::vector<const uint16_t *> &inq, const std::vector<Act> &inact,
                     const npu_tensor_desc &y, const Act &ay, uint8_t *ydst, ThreadPool *pool)
{
        const npu_tensor_desc &x = *in[0];
        const size_t M = size_t(y.n) * y.h * y.w, C = y.c;
        auto deq = [&](int i, size_t e) { return bwq::dequantize_one(inq[i][e], inact[i].qp); };
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
        parallel_for(pool, (M + kTile - 1) / kTile, [&](size_t tile) {
                const size_t m0 = tile * kTile, mt = std::min(kTile, M - m0);
                uint16_t *Q = scratch(tls.q, kTile * C);
                float *Y = scratch(tls.f, C);
                for (size_t r = 0; r < mt; r++) {
                        size_t m = m0 + r;
                        size_t ox = m % y.w, oy = (m / y.w) % y.h, b = m / (size_t(y.w) * y.h);
                        // One loop per op over the row's channels, the op chosen once
                        // per row: the same arithmetic as dequantize_one, vectorisable.
                        switch (L.op) {
                        case NPU_OP_ADD: {
                                const uint16_t *qa = inq[0] + m * C, *qb = inq[1] + m * C;
                                const float sa = inact[0].qp.scale, sb = inact[1].qp.scale;
                                const int32_t za = inact[0].qp.zero, zb = inact[1].qp.zero;
                                for (size_t c = 0; c < C; c++)
                                        Y[c] = sa * float(int32_t(qa[c]) - za) + sb * float(int32_t(qb[c]) - zb);
                                break;
                        }
                        case NPU_OP_MUL: {
                                bool bcast = in[1]->h == 1 && in[1]->w == 1 && (y.h != 1 || y.w != 1);
                                const uint16_t *qa = inq[0] + m * C, *qb = inq[1] + (bcast ? b : m) * C;
                                const float sa = inact[0].qp.scale, sb = inact[1].qp.scale;
                                const int32_t za = inact[0].qp.zero, zb = inact[1].qp.zero;
                                for (size_t c = 0; c < C; c++)
                                        Y[c] = (sa * float(int32_t(qa[c]) - za)) * (sb * float(int32_t(qb[c]) - zb));
                                break;
                        }
                        case NPU_OP_GLOBAL_AVGPOOL: {
                                size_t hw = size_t(x.h) * x.w;
                                for (size_t c = 0; c < C; c++) {
                                        double sum = 0;
                                        for (size_t q = 0; q < hw; q++)
                                                sum += deq(0, (b * hw + q) * C + c);
                                        Y[c] = float(sum / double(hw));
                                }
                                break;
                        }
                        case NPU_OP_MAXPOOL: {
                                // The scale is positive: the largest q dequantizes largest.
                                uint16_t *best = scratch(tls.q2, C);
                                std::fill(best, best + C, uint16_t(0));
                                in_window(b, oy, ox, [&](size_t e) {
                                        const uint16_t *q = inq[0] + e * C;
                                        for (size_t c = 0; c < C; c++)
                                                best[c] = std::max(best[c], q[c]);
                                });
                                for (size_t c = 0; c < C; c++)
                                        Y[c] = bwq::dequantize_one(best[c], inact[0].qp);
                                break;
                        }
                        case NPU_OP_AVGPOOL: {
                                for (size_t c = 0; c < C; c++) {
                                        double sum = 0;
                                        size_t cnt = 0;
                                        in_window(b, oy, ox, [&](size_t e) {
                                                sum += deq(0, e * C + c);
                                                cnt++;
                                        });
                                        Y[c] = float(sum / double(cnt));
                                }
                                break;
                        }
                        case NPU_OP_RESIZE: {
                                const float s0 = inact[0].qp.scale;
                                const int32_t z0 = inact[0].qp.zero;
                                auto px = [&](size_t iy, size_t ix) { return inq[0] + ((b * x.h + iy) * x.w + ix) * C; };
                                if (L.kernel_h == 1) {  // nearest: the pixel it repeats
                                        const uint16_t *q = px(oy / L.stride_h, ox / L.stride_w);
                                        for (size_t c = 0; c < C; c++)
                                                Y[c] = s0 * float(int32_t(q[c]) - z0);
                                        break;
                                }
                                // Bilinear, half-pixel centres, edges clamped (ONNX linear, half_pixel).
                                auto src = [](size_t o, uint32_t s, uint32_t in, size_t *i0, size_t *i1, float *f) {
                                        float v = (float(o) + 0.5f) / float(s) - 0.5f;
                                        v = std::min(std::max(v, 0.0f), float(in - 1));
                                        *i0 = size_t(v);
                                        *i1 = std::min<size_t>(*i0 + 1, in - 1);
                                        *f = v - float(*i0);
                                };
                                size_t y0, y1, x0, x1;
                                float fy, fx;
                                src(oy, L.stride_h, x.h, &y0, &y1, &fy);
                                src(ox, L.stride_w, x.w, &x0, &x1, &fx);
                                const uint16_t *a = px(y0, x0), *bq = px(y0, x1), *cq = px(y1, x0), *d = px(y1, x1);
                                for (size_t c = 0; c < C; c++) {
                                        float va = s0 * float(int32_t(a[c]) - z0), vb = s0 * float(int32_t(bq[c]) - z0);
                                        float vc = s0 * float(int32_t(cq[c]) - z0), vd = s0 * float(int32_t(d[c]) - z0);
                                        Y[c] = (1 - fy) * ((1 - fx) * va + fx * vb) + fy * ((1 - fx) * vc + fx * vd);
                                }
                                break;
                        }
                        case NPU_OP_DEPTH_TO_SPACE: {
                                const size_t blk = (oy % L.stride_h) * L.stride_w + ox % L.stride_w;
                                const uint16_t *q = inq[0] + ((b * x.h + oy / L.stride_h) * x.w + ox / L.stride_w) * x.c + blk * C;
                                const float s0 = inact[0].qp.scale;
                                const int32_t z0 = inact[0].qp.zero;
                                for (size_t c = 0; c < C; c++)
                                        Y[c] = s0 * float(int32_t(q[c]) - z0);
                                break;
                        }
                        case NPU_OP_CONCAT: {
                                size_t base = 0;
                                for (size_t i = 0; i < in.size(); i++) {
                                        const size_t ci = in[i]->c;
                                        const uint16_t *q = inq[i] + m * ci;
                                        const float si = inact[i].qp.scale;
                                        const int32_t zi = inact[i].qp.zero;
                                        for (size_t c = 0; c < ci; c++)
                                                Y[base + c] = si * float(int32_t(q[c]) - zi);
                                        base += ci;
                                }
                                break;
                        }
                        }
                        epilogue_float(Y, C, L.act, oq, Q + r * C);
                }
                store_tile(Q, ay.bits, m0 * C, mt * C, ydst);
        });
}

} // namespace npuref

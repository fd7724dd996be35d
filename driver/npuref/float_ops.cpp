// The ops npuref computes on dequantized values: pools, ADD, MUL, CONCAT.
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

} // namespace npuref

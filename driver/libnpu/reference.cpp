// Float reference of a graph: the numbers the quantized device approximates.
// Written independently of npuref's kernels so tests compare two codes.
#include <algorithm>
#include <cmath>

#include "common/weights.h"
#include "internal.h"

namespace npu {

static float act_ref(float v, uint8_t act)
{
        switch (act) {
        case NPU_ACT_RELU: return std::max(v, 0.0f);
        case NPU_ACT_RELU6: return std::min(std::max(v, 0.0f), 6.0f);
        case NPU_ACT_HARDSWISH: return v * std::min(std::max(v + 3.0f, 0.0f), 6.0f) / 6.0f;
        case NPU_ACT_HARDSIGMOID: return std::min(std::max(v / 6.0f + 0.5f, 0.0f), 1.0f);
        case NPU_ACT_SIGMOID: return 1.0f / (1.0f + std::exp(-v));
        default: return v;
        }
}

int run_host_layer(const GraphLayer &L, const std::vector<GraphTensor> &tensors, const std::vector<std::vector<float>> &values,
                   std::vector<float> &out)
{
        std::vector<const float *> in;
        std::vector<npu_host_shape> shapes;
        for (int t : L.inputs) {
                in.push_back(values[t].data());
                const GraphTensor &x = tensors[t];
                shapes.push_back({x.n, x.h, x.w, x.c});
        }
        out.assign(tensors[L.output].elements(), 0.0f);
        return L.host_fn(L.host_user, in.data(), shapes.data(), unsigned(in.size()), out.data());
}

// A convolution, each output summed in double in (ky, kx, ci) order as
// the generic loop below would, with the output channels of a group side by
// side (weights transposed to [ky][kx][ci][co]) so that the sums run in
// parallel lanes: the same numbers, many times faster.  Cloned per
// instruction set; no FMA contraction anywhere, so every clone gives the
// same bits.
// A residual (npu_graph_conv2d_residual): res, of rc channels per output
// pixel, is added before the activation (zero past its channels).
__attribute__((target_clones("avx512f", "avx2", "default"))) static void conv_reference(const GraphLayer &L, const GraphTensor &x, const std::vector<float> &xv, const GraphTensor &y,
                           const std::vector<float> &weights, std::vector<float> &out, const float *res = nullptr, size_t rc = 0)
{
        // Output channel co of pixel px: the sum s plus the bias, the residual and the activation.
        auto finish = [&](double s, size_t px, size_t co) {
                float v = float(s + L.bias[co]);
                if (res && co < rc)
                        v += res[px * rc + co];
                return act_ref(v, L.act);
        };
        const auto &p = L.conv;
        const size_t G = p.groups, cig = x.c / G, cog = y.c / G, kh = p.kernel_h, kw = p.kernel_w;
        std::vector<double> wt(kh * kw * cig * y.c);  // [g][ky][kx][ci][co of the group]
        for (size_t co = 0; co < y.c; co++) {
                size_t g = co / cog, c = co % cog;
                for (size_t t = 0; t < kh * kw; t++)
                        for (size_t ci = 0; ci < cig; ci++)
                                wt[((g * kh * kw + t) * cig + ci) * cog + c] = weights[(co * kh * kw + t) * cig + ci];
        }
        // The taps of output pixel (b, oy, ox) that fall inside the input, in
        // (ky, kx) order: f(tap, pixel of x).
        auto taps = [&](size_t b, size_t oy, size_t ox, auto f) {
                for (size_t ky = 0; ky < kh; ky++) {
                        int64_t iy = int64_t(oy * p.stride_h + ky * p.dilation_h) - p.pad_top;
                        if (iy < 0 || iy >= x.h)
                                continue;
                        for (size_t kx = 0; kx < kw; kx++) {
                                int64_t ix = int64_t(ox * p.stride_w + kx * p.dilation_w) - p.pad_left;
                                if (ix >= 0 && ix < x.w)
                                        f(ky * kw + kx, (b * x.h + size_t(iy)) * x.w + size_t(ix));
                        }
                }
        };
        if (cig == 1 && cog == 1) {
                // Depthwise: the channels side by side instead, taps in order.
                std::vector<double> dw(kh * kw * G), a(G);
                for (size_t c = 0; c < G; c++)
                        for (size_t t = 0; t < kh * kw; t++)
                                dw[t * G + c] = weights[c * kh * kw + t];
                for (size_t b = 0; b < y.n; b++)
                        for (size_t oy = 0; oy < y.h; oy++)
                                for (size_t ox = 0; ox < y.w; ox++) {
                                        std::fill(a.begin(), a.end(), 0.0);
                                        taps(b, oy, ox, [&](size_t t, size_t px) {
                                                const float *xp = &xv[px * x.c];
                                                const double *wp = &dw[t * G];
                                                for (size_t c = 0; c < G; c++)
                                                        a[c] += double(xp[c]) * wp[c];
                                        });
                                        const size_t px = (b * y.h + oy) * y.w + ox;
                                        for (size_t c = 0; c < G; c++)
                                                out[px * y.c + c] = finish(a[c], px, c);
                                }
                return;
        }
        std::vector<double> acc(cog);
        for (size_t b = 0; b < y.n; b++)
                for (size_t oy = 0; oy < y.h; oy++)
                        for (size_t ox = 0; ox < y.w; ox++)
                                for (size_t g = 0; g < G; g++) {
                                        std::fill(acc.begin(), acc.end(), 0.0);
                                        taps(b, oy, ox, [&](size_t t, size_t px) {
                                                const float *xp = &xv[px * x.c + g * cig];
                                                const double *wp = &wt[(g * kh * kw + t) * cig * cog];
                                                for (size_t ci = 0; ci < cig; ci++) {
                                                        const double xd = xp[ci];
                                                        const double *wc = wp + ci * cog;
                                                        for (size_t c = 0; c < cog; c++)
                                                                acc[c] += xd * wc[c];
                                                }
                                        });
                                        const size_t px = (b * y.h + oy) * y.w + ox;
                                        for (size_t c = 0; c < cog; c++)
                                                out[px * y.c + g * cog + c] = finish(acc[c], px, g * cog + c);
                                }
}

void linear_forward(const npu_graph &g, const GraphLayer &L, const float *in, bool int8_weights, std::vector<float> &out)
{
        const GraphTensor &x = g.tensors[L.inputs[0]], &y = g.tensors[L.output];
        GraphLayer M = L;  // without bias and activation
        M.bias.assign(L.bias.size(), 0.0f);
        M.act = NPU_ACT_NONE;
        bool fc = L.op == NPU_OP_FULLY_CONNECTED;
        if (int8_weights)
                M.weights = bwq::device_weights(L.weights.data(), {L.conv.out_channels, fc ? x.h * x.w * x.c : x.c, L.conv.kernel_h,
                                                                  L.conv.kernel_w, L.conv.groups, fc});
        std::vector<float> xv(in, in + x.elements());
        out.assign(y.elements(), 0.0f);
        if (!fc) {
                conv_reference(M, x, xv, y, M.weights, out);
                return;
        }
        size_t K = size_t(x.h) * x.w * x.c;
        for (size_t b = 0; b < y.n; b++)
                for (size_t co = 0; co < y.c; co++) {
                        double s = 0;
                        for (size_t k = 0; k < K; k++)
                                s += double(xv[b * K + k]) * M.weights[co * K + k];
                        out[b * y.c + co] = float(s);
                }
}

void reference_forward(const npu_graph &g, const float *const *inputs, std::vector<std::vector<float>> &values,
                       bool int8_weights)
{
        values.assign(g.tensors.size(), {});
        for (size_t i = 0; i < g.inputs.size(); i++) {
                const GraphTensor &in = g.tensors[g.inputs[i]];
                values[g.inputs[i]].assign(inputs[i], inputs[i] + in.elements());
        }
        for (const GraphLayer &L : g.layers) {
                if (L.op == kOpHost) {
                        // A failing host node leaves its output zero here; runs fail instead.
                        if (run_host_layer(L, g.tensors, values, values[L.output]) < 0)
                                values[L.output].assign(g.tensors[L.output].elements(), 0.0f);
                        continue;
                }
                const GraphTensor &y = g.tensors[L.output];
                const GraphTensor &x = g.tensors[L.inputs[0]];
                const std::vector<float> &xv = values[L.inputs[0]];
                std::vector<float> &out = values[L.output];
                out.assign(y.elements(), 0.0f);
                // The device's weights (calibration), or the graph's own.
                std::vector<float> dev;
                if (int8_weights && (L.op == NPU_OP_CONV2D || L.op == NPU_OP_FULLY_CONNECTED)) {
                        bool fc = L.op == NPU_OP_FULLY_CONNECTED;
                        dev = bwq::device_weights(L.weights.data(), {L.conv.out_channels, fc ? x.h * x.w * x.c : x.c, L.conv.kernel_h,
                                                                     L.conv.kernel_w, L.conv.groups, fc});
                }
                const std::vector<float> &weights = dev.empty() ? L.weights : dev;
                if (L.op == NPU_OP_CONV2D) {
                        const bool residual = L.inputs.size() > 1;
                        conv_reference(L, x, xv, y, weights, out, residual ? values[L.inputs[1]].data() : nullptr,
                                       residual ? g.tensors[L.inputs[1]].c : 0);
                        continue;
                }
                auto at = [&](const GraphTensor &t, const std::vector<float> &v, size_t b, int64_t iy, int64_t ix,
                              size_t c) { return v[((b * t.h + size_t(iy)) * t.w + size_t(ix)) * t.c + c]; };
                for (size_t b = 0; b < y.n; b++)
                        for (size_t oy = 0; oy < y.h; oy++)
                                for (size_t ox = 0; ox < y.w; ox++)
                                        for (size_t co = 0; co < y.c; co++) {
                                                double s = 0;
                                                switch (L.op) {
                                                case NPU_OP_CONV2D: {
                                                        const auto &p = L.conv;
                                                        size_t cig = x.c / p.groups, cog = y.c / p.groups, gi = co / cog;
                                                        for (size_t ky = 0; ky < p.kernel_h; ky++)
                                                                for (size_t kx = 0; kx < p.kernel_w; kx++) {
                                                                        int64_t iy = int64_t(oy * p.stride_h + ky * p.dilation_h) - p.pad_top;
                                                                        int64_t ix = int64_t(ox * p.stride_w + kx * p.dilation_w) - p.pad_left;
                                                                        if (iy < 0 || iy >= x.h || ix < 0 || ix >= x.w)
                                                                                continue;
                                                                        for (size_t ci = 0; ci < cig; ci++)
                                                                                s += double(at(x, xv, b, iy, ix, gi * cig + ci)) *
                                                                                     weights[((co * p.kernel_h + ky) * p.kernel_w + kx) * cig + ci];
                                                                }
                                                        s += L.bias[co];
                                                        break;
                                                }
                                                case NPU_OP_FULLY_CONNECTED: {
                                                        size_t K = size_t(x.h) * x.w * x.c;
                                                        for (size_t k = 0; k < K; k++)
                                                                s += double(xv[b * K + k]) * weights[co * K + k];
                                                        s += L.bias[co];
                                                        break;
                                                }
                                                case NPU_OP_ADD:
                                                        s = double(at(x, xv, b, oy, ox, co)) +
                                                            at(y, values[L.inputs[1]], b, oy, ox, co);
                                                        break;
                                                case NPU_OP_MUL: {
                                                        const GraphTensor &t = g.tensors[L.inputs[1]];
                                                        bool bc = t.h == 1 && t.w == 1;
                                                        s = double(at(x, xv, b, oy, ox, co)) *
                                                            at(t, values[L.inputs[1]], b, bc ? 0 : oy, bc ? 0 : ox, co);
                                                        break;
                                                }
                                                case NPU_OP_MAXPOOL:
                                                case NPU_OP_AVGPOOL: {
                                                        const auto &p = L.pool;
                                                        double m = -INFINITY;
                                                        size_t cnt = 0;
                                                        for (size_t ky = 0; ky < p.kernel_h; ky++)
                                                                for (size_t kx = 0; kx < p.kernel_w; kx++) {
                                                                        int64_t iy = int64_t(oy * p.stride_h + ky) - p.pad_top;
                                                                        int64_t ix = int64_t(ox * p.stride_w + kx) - p.pad_left;
                                                                        if (iy < 0 || iy >= x.h || ix < 0 || ix >= x.w)
                                                                                continue;
                                                                        double v = at(x, xv, b, iy, ix, co);
                                                                        m = std::max(m, v);
                                                                        s += v;
                                                                        cnt++;
                                                                }
                                                        s = L.op == NPU_OP_MAXPOOL ? m : s / double(cnt);
                                                        break;
                                                }
                                                case NPU_OP_GLOBAL_AVGPOOL: {
                                                        for (size_t iy = 0; iy < x.h; iy++)
                                                                for (size_t ix = 0; ix < x.w; ix++)
                                                                        s += at(x, xv, b, iy, ix, co);
                                                        s /= double(x.h) * x.w;
                                                        break;
                                                }
                                                case NPU_OP_RESIZE: {
                                                        const auto &p = L.conv;  // stride_h, stride_w: factors; kernel_h: mode
                                                        if (p.kernel_h == 1) {
                                                                s = at(x, xv, b, oy / p.stride_h, ox / p.stride_w, co);
                                                                break;
                                                        }
                                                        auto src = [](size_t o, uint32_t f, uint32_t in, int64_t *i0, int64_t *i1, double *w) {
                                                                double v = (double(o) + 0.5) / double(f) - 0.5;
                                                                v = std::min(std::max(v, 0.0), double(in - 1));
                                                                *i0 = int64_t(v);
                                                                *i1 = std::min<int64_t>(*i0 + 1, int64_t(in) - 1);
                                                                *w = v - double(*i0);
                                                        };
                                                        int64_t y0, y1, x0, x1;
                                                        double fy, fx;
                                                        src(oy, p.stride_h, x.h, &y0, &y1, &fy);
                                                        src(ox, p.stride_w, x.w, &x0, &x1, &fx);
                                                        s = (1 - fy) * ((1 - fx) * at(x, xv, b, y0, x0, co) + fx * at(x, xv, b, y0, x1, co)) +
                                                            fy * ((1 - fx) * at(x, xv, b, y1, x0, co) + fx * at(x, xv, b, y1, x1, co));
                                                        break;
                                                }
                                                case NPU_OP_DEPTH_TO_SPACE: {
                                                        const auto &p = L.conv;
                                                        size_t blk = (oy % p.stride_h) * p.stride_w + ox % p.stride_w;
                                                        s = at(x, xv, b, oy / p.stride_h, ox / p.stride_w, blk * y.c + co);
                                                        break;
                                                }
                                                case NPU_OP_CONCAT: {
                                                        size_t cc = co;
                                                        for (int t : L.inputs) {
                                                                const GraphTensor &ti = g.tensors[t];
                                                                if (cc < ti.c) {
                                                                        s = at(ti, values[t], b, oy, ox, cc);
                                                                        break;
                                                                }
                                                                cc -= ti.c;
                                                        }
                                                        break;
                                                }
                                                }
                                                out[((b * y.h + oy) * y.w + ox) * y.c + co] = act_ref(float(s), L.act);
                                        }
        }
}

} // namespace npu

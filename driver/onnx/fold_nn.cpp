// The folder, layers: Resize, Conv, ConvTranspose, pools, Gemm and MatMul,
// with the window arithmetic of convolutions and pools.
#include "fold.h"

namespace onnxfe {

ResizeAxis resize_axis(const Node &n, int64_t opset, int64_t out, int64_t in)
{
        std::string mode = n.gets("mode", "nearest"), ct = n.gets("coordinate_transformation_mode", opset < 11 ? "asymmetric" : "half_pixel");
        std::string nm = n.gets("nearest_mode", "round_prefer_floor");
        auto src = [&](int64_t o) {
                double scale = double(out) / double(in);
                if (ct == "align_corners")
                        return out > 1 ? double(o) * double(in - 1) / double(out - 1) : 0.0;
                if (ct == "asymmetric")
                        return double(o) / scale;
                if (ct == "pytorch_half_pixel")
                        return out > 1 ? (double(o) + 0.5) / scale - 0.5 : 0.0;
                return (double(o) + 0.5) / scale - 0.5;  // half_pixel
        };
        auto nearest = [&](double v) {
                double f = std::floor(v);
                int64_t i;
                if (nm == "floor") i = int64_t(f);
                else if (nm == "ceil") i = int64_t(std::ceil(v));
                else if (nm == "round_prefer_ceil") i = int64_t(v - f >= 0.5 ? f + 1 : f);
                else i = int64_t(v - f > 0.5 ? f + 1 : f);  // round_prefer_floor
                return std::clamp<int64_t>(i, 0, in - 1);
        };
        ResizeAxis a;
        a.i0.resize(size_t(out));
        a.i1.resize(size_t(out));
        a.f.resize(size_t(out));
        for (int64_t o = 0; o < out; o++) {
                double v = src(o);
                if (mode == "nearest") {
                        a.i0[size_t(o)] = a.i1[size_t(o)] = nearest(v);
                } else {
                        v = std::clamp(v, 0.0, double(in - 1));
                        a.i0[size_t(o)] = int64_t(std::floor(v));
                        a.i1[size_t(o)] = std::min(a.i0[size_t(o)] + 1, in - 1);
                        a.f[size_t(o)] = v - double(a.i0[size_t(o)]);
                }
        }
        return a;
}

Constant Folder::evaluate_resize(const Node &n, const std::vector<int64_t> &s)
{
        const Constant &x = g_.konst(n.in[0]);
        Constant c;
        c.type = x.type;
        c.shape = s;
        const bool near = n.gets("mode", "nearest") == "nearest";
        const int64_t N = s[0], C = s[1], H = s[2], W = s[3], h = x.shape[2], w = x.shape[3];
        // Per output row and column: the source index (nearest) or the two
        // sources and the weight of the second (linear), computed once.
        ResizeAxis ay = resize_axis(n, g_.opset, H, h), ax = resize_axis(n, g_.opset, W, w);
        const auto &y0 = ay.i0, &y1 = ay.i1, &x0 = ax.i0, &x1 = ax.i1;
        const auto &fy = ay.f, &fx = ax.f;
        std::vector<double> xin(size_t(h * w));
        for (int64_t b = 0; b < N * C; b++) {
                for (int64_t k = 0; k < h * w; k++)
                        xin[size_t(k)] = x.at(size_t(b * h * w + k));
                for (int64_t oy = 0; oy < H; oy++) {
                        const double *r0 = &xin[size_t(y0[size_t(oy)] * w)], *r1 = &xin[size_t(y1[size_t(oy)] * w)];
                        const double wy = fy[size_t(oy)];
                        for (int64_t ox = 0; ox < W; ox++) {
                                const int64_t a = x0[size_t(ox)], bb = x1[size_t(ox)];
                                const double wx = fx[size_t(ox)];
                                c.push(near ? r0[a] : (1 - wy) * ((1 - wx) * r0[a] + wx * r0[bb]) + wy * ((1 - wx) * r1[a] + wx * r1[bb]));
                        }
                }
        }
        return c;
}

// ArgMax/ArgMin and Reduce* of a constant over the axes marked in red.

std::optional<Error> Folder::window(Node &n, const std::vector<int64_t> &x, const std::vector<int64_t> &kernel,
                                    int64_t out_c, std::vector<int64_t> *r)
{
        size_t sp = x.size() - 2;
        if (x.size() < 3 || kernel.size() != sp)
                return err(-EINVAL, what_ + ": input " + dims_text(x) + " and kernel " + dims_text(kernel) + " do not match");
        auto strides = n.getints("strides", std::vector<int64_t>(sp, 1));
        auto dil = n.getints("dilations", std::vector<int64_t>(sp, 1));
        auto pads = n.getints("pads", std::vector<int64_t>(2 * sp, 0));
        if (strides.size() != sp || dil.size() != sp || pads.size() != 2 * sp)
                return err(-EINVAL, what_ + ": strides, dilations or pads do not match the kernel's rank");
        std::string ap = n.gets("auto_pad", "NOTSET");
        bool ceil_mode = n.geti("ceil_mode", 0) != 0;
        *r = {x[0], out_c};
        for (size_t i = 0; i < sp; i++) {
                if (kernel[i] <= 0 || strides[i] <= 0 || dil[i] <= 0 || kernel[i] > 1024 || strides[i] > 1024 || dil[i] > 1024)
                        return err(-EINVAL, what_ + ": kernel, stride or dilation out of range");
                int64_t span = dil[i] * (kernel[i] - 1) + 1;
                if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
                        int64_t o = (x[2 + i] + strides[i] - 1) / strides[i];
                        int64_t total = std::max<int64_t>(0, (o - 1) * strides[i] + span - x[2 + i]);
                        int64_t small = total / 2, big = total - small;
                        pads[i] = ap == "SAME_UPPER" ? small : big;
                        pads[sp + i] = ap == "SAME_UPPER" ? big : small;
                } else if (ap == "VALID") {
                        pads[i] = pads[sp + i] = 0;
                } else if (ap != "NOTSET") {
                        return err(-EINVAL, what_ + ": auto_pad '" + ap + "' is not an ONNX value");
                }
                if (pads[i] < 0 || pads[sp + i] < 0 || pads[i] > 1024 || pads[sp + i] > 1024)
                        return err(-EINVAL, what_ + ": pads out of range");
                int64_t padded = x[2 + i] + pads[i] + pads[sp + i];
                if (padded < span)
                        return err(-EINVAL, what_ + ": the window " + std::to_string(span) + " is larger than the padded input " +
                                                    std::to_string(padded));
                int64_t o = ceil_mode ? (padded - span + strides[i] - 1) / strides[i] + 1 : (padded - span) / strides[i] + 1;
                if (ceil_mode && (o - 1) * strides[i] >= x[2 + i] + pads[i])
                        o--;  // the last window must start inside the input or its left padding
                r->push_back(o);
        }
        Attr a;
        a.kind = Attr::Ints;
        a.ints = pads;
        n.attrs["pads"] = a;
        n.attrs.erase("auto_pad");
        return std::nullopt;
}


std::optional<Error> Folder::nn_op(Node &n, bool *handled)
{
        const std::string &op = n.op;
        std::vector<int64_t> s;
        *handled = true;
        if (op == "Resize" || op == "Upsample") {
                if (auto e = need(n, 1))
                        return e;
                const auto &x = in(n, 0).shape;
                std::vector<double> scales;
                std::vector<int64_t> sizes;
                // Resize-10 and Upsample: scales as input 1; Resize-11+: roi, scales, sizes.
                int si = op == "Upsample" || g_.opset < 11 ? 1 : 2, zi = 3;
                if (si < int(n.in.size()) && n.in[size_t(si)] >= 0) {
                        if (!cin(n, size_t(si)))
                                return err(-ENOTSUP, what_ + ": scales must be a constant");
                        const Constant &c = g_.konst(n.in[size_t(si)]);
                        for (int64_t i = 0; i < c.elements(); i++)
                                scales.push_back(c.at(size_t(i)));
                }
                if (zi < int(n.in.size()) && n.in[size_t(zi)] >= 0)
                        if (auto e = ints(n, size_t(zi), &sizes))
                                return e;
                if (sizes.empty() && scales.empty())
                        return err(-EINVAL, what_ + ": neither scales nor sizes");
                if ((!sizes.empty() && sizes.size() != x.size()) || (sizes.empty() && scales.size() != x.size()))
                        return err(-EINVAL, what_ + ": scales or sizes do not match rank " + std::to_string(x.size()));
                s = x;
                for (size_t i = 0; i < x.size(); i++) {
                        s[i] = sizes.empty() ? int64_t(std::floor(double(x[i]) * scales[i])) : sizes[i];
                        if (s[i] <= 0 || s[i] > kMaxDim)
                                return err(-EINVAL, what_ + ": output dimension " + std::to_string(s[i]) + " out of range");
                        if (i < 2 && s[i] != x[i])
                                return err(-ENOTSUP, what_ + ": resizing the batch or channel axis is not supported");
                }
                std::string mode = n.gets("mode", "nearest");
                if (mode != "nearest" && mode != "linear" && mode != "bilinear")
                        return err(-ENOTSUP, what_ + ": mode " + mode + " is not supported");
                if (x.size() != 4)
                        return err(-ENOTSUP, what_ + ": only 4-D Resize is supported");
                if (cin(n, 0))
                        set_const(n, evaluate_resize(n, s));
                else
                        set(n, s, in(n, 0).type);
                return std::nullopt;
        }
        if (op == "Conv") {
                if (auto e = need(n, 2))
                        return e;
                const auto &x = in(n, 0).shape, &w = in(n, 1).shape;
                if (w.size() != x.size() || x.size() < 3)
                        return err(-EINVAL, what_ + ": input " + dims_text(x) + " and weights " + dims_text(w) + " differ in rank");
                int64_t groups = n.geti("group", 1);
                if (groups <= 0 || x[1] % groups || w[0] % groups || w[1] * groups != x[1])
                        return err(-EINVAL, what_ + ": " + std::to_string(x[1]) + " input channels do not match weights " +
                                                    dims_text(w) + " in " + std::to_string(groups) + " groups");
                std::vector<int64_t> k(w.begin() + 2, w.end());
                if (auto kk = n.getints("kernel_shape"); !kk.empty() && kk != k)
                        return err(-EINVAL, what_ + ": kernel_shape " + dims_text(kk) + " is not the weights' " + dims_text(k));
                if (has_in(n, 2) && in(n, 2).shape != std::vector<int64_t>{w[0]})
                        return err(-EINVAL, what_ + ": bias of shape " + dims_text(in(n, 2).shape) + " for " + std::to_string(w[0]) +
                                                    " output channels");
                if (auto e = window(n, x, k, w[0], &s))
                        return e;
                set(n, s);
                return std::nullopt;
        }
        if (op == "ConvTranspose") {
                if (auto e = need(n, 2))
                        return e;
                const auto &x = in(n, 0).shape, &w = in(n, 1).shape;
                if (x.size() != 4 || w.size() != 4)
                        return err(-ENOTSUP, what_ + ": only 2-D ConvTranspose is supported");
                int64_t groups = n.geti("group", 1);
                if (groups <= 0 || x[1] != w[0] || x[1] % groups)
                        return err(-EINVAL, what_ + ": " + std::to_string(x[1]) + " input channels do not match weights " + dims_text(w));
                auto st = n.getints("strides", {1, 1}), dl = n.getints("dilations", {1, 1}), op_ = n.getints("output_padding", {0, 0});
                auto pads = n.getints("pads", {0, 0, 0, 0});
                if (st.size() != 2 || dl.size() != 2 || op_.size() != 2 || pads.size() != 4)
                        return err(-EINVAL, what_ + ": strides, dilations, output_padding or pads of the wrong length");
                std::string ap = n.gets("auto_pad", "NOTSET");
                s = {x[0], w[1] * groups, 0, 0};
                for (size_t i = 0; i < 2; i++) {
                        if (st[i] <= 0 || dl[i] <= 0 || st[i] > 64 || dl[i] > 64 || op_[i] < 0 || op_[i] >= std::max(st[i], dl[i]))
                                return err(-EINVAL, what_ + ": strides, dilations or output_padding out of range");
                        int64_t full = st[i] * (x[2 + i] - 1) + op_[i] + (w[2 + i] - 1) * dl[i] + 1;
                        if (ap == "SAME_UPPER" || ap == "SAME_LOWER") {
                                int64_t want = x[2 + i] * st[i], total = std::max<int64_t>(0, full - want);
                                pads[i] = ap == "SAME_UPPER" ? total / 2 : total - total / 2;
                                pads[2 + i] = total - pads[i];
                        } else if (ap == "VALID") {
                                pads[i] = pads[2 + i] = 0;
                        }
                        s[2 + i] = full - pads[i] - pads[2 + i];
                        if (pads[i] < 0 || pads[2 + i] < 0 || s[2 + i] <= 0)
                                return err(-EINVAL, what_ + ": pads leave no output");
                }
                if (!n.getints("output_shape").empty())
                        return err(-ENOTSUP, what_ + ": output_shape is not supported (give pads)");
                Attr a;
                a.kind = Attr::Ints;
                a.ints = pads;
                n.attrs["pads"] = a;
                n.attrs.erase("auto_pad");
                if (all_const(n)) {
                        // y[b, g*Mg+m, oy, ox] += x[b, g*Cg+c, iy, ix] * w[g*Cg+c, m, ky, kx].
                        const Constant &X = g_.konst(n.in[0]), &Wt = g_.konst(n.in[1]);
                        int64_t Cg = x[1] / groups, Mg = w[1], OH = s[2], OW = s[3];
                        std::vector<double> y(size_t(product(s)), 0.0);
                        for (int64_t b = 0; b < x[0]; b++)
                                for (int64_t c = 0; c < x[1]; c++) {
                                        int64_t g = c / Cg;
                                        for (int64_t iy = 0; iy < x[2]; iy++)
                                                for (int64_t ix = 0; ix < x[3]; ix++) {
                                                        double xv = X.at(size_t(((b * x[1] + c) * x[2] + iy) * x[3] + ix));
                                                        for (int64_t m = 0; m < Mg; m++)
                                                                for (int64_t ky = 0; ky < w[2]; ky++) {
                                                                        int64_t oy = iy * st[0] + ky * dl[0] - pads[0];
                                                                        if (oy < 0 || oy >= OH)
                                                                                continue;
                                                                        for (int64_t kx = 0; kx < w[3]; kx++) {
                                                                                int64_t ox = ix * st[1] + kx * dl[1] - pads[1];
                                                                                if (ox < 0 || ox >= OW)
                                                                                        continue;
                                                                                y[size_t(((b * s[1] + g * Mg + m) * OH + oy) * OW + ox)] +=
                                                                                        xv * Wt.at(size_t(((c * Mg + m) * w[2] + ky) * w[3] + kx));
                                                                        }
                                                                }
                                                }
                                }
                        Constant c;
                        c.shape = s;
                        c.f.resize(y.size());
                        bool bias = n.in.size() > 2 && n.in[2] >= 0;
                        int64_t hw = OH * OW;
                        for (size_t k = 0; k < y.size(); k++)
                                c.f[k] = float(y[k] + (bias ? g_.konst(n.in[2]).at(size_t((int64_t(k) / hw) % s[1])) : 0.0));
                        set_const(n, std::move(c));
                } else {
                        if (n.in.size() > 2 && n.in[2] >= 0 && (!cin(n, 2) || g_.konst(n.in[2]).elements() != s[1]))
                                return err(-EINVAL, what_ + ": the bias must be a constant of " + std::to_string(s[1]) + " values");
                        set(n, s);
                }
                return std::nullopt;
        }
        if (op == "MaxPool" || op == "AveragePool") {
                if (auto e = need(n, 1))
                        return e;
                const auto &x = in(n, 0).shape;
                if (n.out.size() > 1 && n.out[1] >= 0)
                        return err(-ENOTSUP, what_ + ": the Indices output is not supported");
                if (auto e = window(n, x, n.getints("kernel_shape"), x.size() > 1 ? x[1] : 0, &s))
                        return e;
                set(n, s);
                return std::nullopt;
        }
        if (op == "GlobalAveragePool" || op == "GlobalMaxPool") {
                if (auto e = need(n, 1))
                        return e;
                s = in(n, 0).shape;
                if (s.size() < 3)
                        return err(-EINVAL, what_ + ": input of rank " + std::to_string(s.size()));
                for (size_t i = 2; i < s.size(); i++)
                        s[i] = 1;
                set(n, s);
                return std::nullopt;
        }
        if (op == "Gemm" || op == "MatMul") {
                if (auto e = need(n, 2))
                        return e;
                auto a = in(n, 0).shape, b = in(n, 1).shape;
                if (op == "Gemm") {
                        if (a.size() != 2 || b.size() != 2)
                                return err(-EINVAL, what_ + ": operands " + dims_text(a) + " and " + dims_text(b) + " are not matrices");
                        if (n.geti("transA", 0))
                                std::swap(a[0], a[1]);
                        if (n.geti("transB", 0))
                                std::swap(b[0], b[1]);
                } else if (a.size() < 2 || b.size() != 2) {
                        return err(-ENOTSUP, what_ + ": MatMul of " + dims_text(a) + " by " + dims_text(b) +
                                                     " (a matrix on the right is supported)");
                }
                if (a.back() != b[0])
                        return err(-EINVAL, what_ + ": " + dims_text(a) + " and " + dims_text(b) + " do not multiply");
                s = a;
                s.back() = b[1];
                if (op == "Gemm" && has_in(n, 2)) {
                        const auto &c = in(n, 2).shape;
                        if (product(c) != 1 && product(c) != b[1] && c != s)
                                return err(-EINVAL, what_ + ": C of shape " + dims_text(c) + " does not broadcast to " + dims_text(s));
                }
                set(n, s);
                return std::nullopt;
        }
        *handled = false;
        return std::nullopt;
}

} // namespace onnxfe

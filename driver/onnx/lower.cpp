// Lowering: each live node of the rewritten graph becomes builder calls on
// Views (lower.h).  Layout-only ops (Transpose, Reshape and kin, Identity)
// make no layer; a node the device cannot run becomes a host node
// (lower_host.cpp).
#include "lower.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>

#include "lowerer.h"

#include <algorithm>

namespace onnxfe {

std::optional<Error> Lowerer::conv(const Node &n)
{
        const View &x = views_[size_t(n.in[0])];
        if (!is_nchw(x))
                return err(-ENOTSUP, "the input is not a 4-D NCHW tensor on the device");
        if (!g_.is_const(n.in[1]) || (n.in.size() > 2 && n.in[2] >= 0 && !g_.is_const(n.in[2])))
                return err(-ENOTSUP, "weights and bias must be constants");
        const Constant &W = g_.konst(n.in[1]);
        int64_t O = W.shape[0], ig = W.shape[1], kh = W.shape[2], kw = W.shape[3];
        auto strides = n.getints("strides", {1, 1}), dil = n.getints("dilations", {1, 1}), pads = n.getints("pads", {0, 0, 0, 0});
        npu_conv2d_params p{};
        p.out_channels = uint32_t(O);
        p.kernel_h = uint32_t(kh), p.kernel_w = uint32_t(kw);
        p.stride_h = uint32_t(strides[0]), p.stride_w = uint32_t(strides[1]);
        p.dilation_h = uint32_t(dil[0]), p.dilation_w = uint32_t(dil[1]);
        p.pad_top = uint32_t(pads[0]), p.pad_left = uint32_t(pads[1]), p.pad_bottom = uint32_t(pads[2]), p.pad_right = uint32_t(pads[3]);
        p.groups = uint32_t(n.geti("group", 1));
        p.activation = act(n);
        // [O][I/g][kh][kw] -> the builder's [O][kh][kw][I/g].
        std::vector<float> w(size_t(W.elements()));
        for (int64_t o = 0; o < O; o++)
                for (int64_t i = 0; i < ig; i++)
                        for (int64_t y = 0; y < kh; y++)
                                for (int64_t xx = 0; xx < kw; xx++)
                                        w[size_t(((o * kh + y) * kw + xx) * ig + i)] = W.f[size_t(((o * ig + i) * kh + y) * kw + xx)];
        std::vector<float> b;
        if (n.in.size() > 2 && n.in[2] >= 0)
                b = g_.konst(n.in[2]).f;
        const auto &ys = val(n.out[0]).shape;
        Dims d{ys[0], ys[2], ys[3], ys[1]};
        const float *bias = b.empty() ? nullptr : b.data();
        if (n.in.size() > 3 && n.in[3] >= 0) {
                // A residual Add fused by the rewrite (rewrite.cpp).
                const View &rv = views_[size_t(n.in[3])];
                if (!is_nchw(rv))
                        return err(-ENOTSUP, "the residual '" + val(n.in[3]).name + "' is not NCHW on the device");
                const Dims rd = dims_[size_t(rv.tensor)];
                int r = npu_graph_conv2d_residual(out_.graph, x.tensor, rv.tensor, &p, w.data(), bias);
                std::string name = op_name(n);
                name.insert(4, "+Add");
                if (auto e = made(r, n, d, name))
                        return e;
                // The layer writes the Add's output: its key is the Add's (npu-onnx(3)).
                out_.layer_also.back() = out_.layer_names.back();
                out_.layer_names.back() = n.gets("_residual_add", out_.layer_names.back());
                if (rd.c < d.c)
                        done_.channel_pads++;
                views_[size_t(n.out[0])] = nchw(r, d);
                return std::nullopt;
        }
        int r = npu_graph_conv2d(out_.graph, x.tensor, &p, w.data(), bias);
        if (auto e = made(r, n, d, op_name(n)))
                return e;
        views_[size_t(n.out[0])] = nchw(r, d);
        return std::nullopt;
}

std::optional<Error> Lowerer::gemm(const Node &n)
{
        const View &x = views_[size_t(n.in[0])];
        const Dims xd = dims_[size_t(x.tensor)];
        const auto &xs = x.shape;
        int64_t K = xs.back(), N = x.elements() / K;
        if (N != xd.n || K != xd.h * xd.w * xd.c)
                return err(-ENOTSUP, "the input's rows are not the device tensor's batch");
        if (n.op == "Gemm" && n.geti("transA", 0))
                return err(-ENOTSUP, "transA is not supported");
        if (!g_.is_const(n.in[1]))
                return err(-ENOTSUP, "the weights must be a constant");
        const Constant &B = g_.konst(n.in[1]);
        bool tb = n.op == "Gemm" && n.geti("transB", 0);
        int64_t M = tb ? B.shape[0] : B.shape[1];
        float alpha = n.op == "Gemm" ? n.getf("alpha", 1.0f) : 1.0f, beta = n.op == "Gemm" ? n.getf("beta", 1.0f) : 1.0f;
        // Column k of a row is the device element at x.offset(k) of its sample.
        std::vector<int64_t> dev(static_cast<size_t>(K));
        std::vector<bool> hit(size_t(K), false);
        for (int64_t k = 0; k < K; k++) {
                int64_t off = x.offset(k);
                if (off < 0 || off >= K || hit[size_t(off)])
                        return err(-ENOTSUP, "the input's layout does not cover its device tensor once");
                hit[size_t(off)] = true;
                dev[size_t(k)] = off;
        }
        std::vector<float> w(size_t(M * K));
        for (int64_t o = 0; o < M; o++)
                for (int64_t k = 0; k < K; k++)
                        w[size_t(o * K + dev[size_t(k)])] = alpha * B.f[size_t(tb ? o * K + k : k * M + o)];
        std::vector<float> b(size_t(M), 0.0f);
        if (n.op == "Gemm" && n.in.size() > 2 && n.in[2] >= 0) {
                if (!g_.is_const(n.in[2]))
                        return err(-ENOTSUP, "C must be a constant");
                const Constant &C = g_.konst(n.in[2]);
                if (C.elements() != 1 && C.elements() != M)
                        return err(-ENOTSUP, "C must be one value per output column");
                for (int64_t o = 0; o < M; o++)
                        b[size_t(o)] = beta * float(C.at(C.elements() == 1 ? 0 : size_t(o)));
        }
        if (const Attr *a = n.attr("_bias_add"))
                for (int64_t o = 0; o < M; o++)
                        b[size_t(o)] += a->floats[size_t(o)];
        int r = npu_graph_fully_connected(out_.graph, x.tensor, uint32_t(M), w.data(), b.data(), act(n));
        Dims d{N, 1, 1, M};
        if (auto e = made(r, n, d, op_name(n)))
                return e;
        std::vector<int64_t> ys = val(n.out[0]).shape;
        views_[size_t(n.out[0])] = View{r, ys, row_major(ys), {}, {}};
        return std::nullopt;
}

std::optional<Error> Lowerer::concat(const Node &n)
{
        const auto &ys = val(n.out[0]).shape;
        int64_t axis = n.geti("axis", 0);
        if (axis < 0)
                axis += int64_t(ys.size());
        if (ys.size() != 4 || axis != 1)
                return err(-ENOTSUP, "only channel Concat of NCHW tensors runs on the device");
        std::vector<int> parts;
        std::vector<int64_t> map;  // output channel -> channel of the concatenated non-constant inputs
        int64_t base = 0;
        for (int v : n.in) {
                int64_t c = val(v).shape[1];
                if (g_.is_const(v)) {
                        const Constant &k = g_.konst(v);
                        for (int64_t i = 0; i < k.elements(); i++)
                                if (k.at(size_t(i)) != 0)
                                        return err(-ENOTSUP, "a constant operand other than zeros");
                        map.insert(map.end(), size_t(c), -1);
                        continue;
                }
                if (!is_nchw(views_[size_t(v)]))
                        return err(-ENOTSUP, "an operand is not NCHW on the device");
                parts.push_back(views_[size_t(v)].tensor);
                for (int64_t i = 0; i < c; i++)
                        map.push_back(base + i);
                base += c;
        }
        if (parts.empty())
                return err(-ENOTSUP, "every operand is constant");
        View x = nchw(parts[0], dims_[size_t(parts[0])]);
        if (parts.size() > 1) {
                int r = npu_graph_concat(out_.graph, parts.data(), unsigned(parts.size()));
                Dims d = dims_[size_t(parts[0])];
                d.c = base;
                if (auto e = made(r, n, d, "Concat"))
                        return e;
                x = nchw(r, d);
        }
        if (int64_t(map.size()) != base) {
                // Zero channels: a 1x1 convolution that copies and pads.
                View y;
                if (auto e = channel_map(n, x, map, NPU_ACTIVATION_NONE, false, &y, "Concat(zeros)"))
                        return e;
                done_.channel_pads++;
                x = y;
        }
        views_[size_t(n.out[0])] = x;
        return std::nullopt;
}

std::optional<Error> Lowerer::node(const Node &n)
{
        const std::string &op = n.op;
        if (op == "Conv")
                return conv(n);
        if (op == "Gemm" || op == "MatMul")
                return gemm(n);
        if (op == "Concat")
                return concat(n);
        if (op == "ConvTranspose") {
                // Kernel = stride, no pads: a 1x1 convolution to sh*sw*M channels
                // (each output pixel of a block its own group of channels) and a
                // depth-to-space layer.
                const View &x = views_[size_t(n.in[0])];
                if (!is_nchw(x) || !g_.is_const(n.in[1]) || (n.in.size() > 2 && n.in[2] >= 0 && !g_.is_const(n.in[2])))
                        return err(-ENOTSUP, "the input is not NCHW on the device, or the weights are not constants");
                const Constant &W = g_.konst(n.in[1]);
                auto st = n.getints("strides", {1, 1}), dl = n.getints("dilations", {1, 1}), pads = n.getints("pads", {0, 0, 0, 0});
                auto opad = n.getints("output_padding", {0, 0});
                int64_t C = W.shape[0], M = W.shape[1], kh = W.shape[2], kw = W.shape[3];
                if (n.geti("group", 1) != 1 || kh != st[0] || kw != st[1] || dl != std::vector<int64_t>{1, 1} ||
                    pads != std::vector<int64_t>{0, 0, 0, 0} || opad != std::vector<int64_t>{0, 0} || kh > 16 || kw > 16)
                        return err(-ENOTSUP, "only a ConvTranspose whose kernel is its stride (one group, no pads) runs on the device");
                const int64_t K = kh * kw * M;
                std::vector<float> w(size_t(K * C)), b(size_t(K), 0.0f);
                for (int64_t ky = 0; ky < kh; ky++)
                        for (int64_t kx = 0; kx < kw; kx++)
                                for (int64_t m = 0; m < M; m++) {
                                        int64_t o = (ky * kw + kx) * M + m;
                                        for (int64_t c = 0; c < C; c++)
                                                w[size_t(o * C + c)] = W.f[size_t(((c * M + m) * kh + ky) * kw + kx)];
                                        if (n.in.size() > 2 && n.in[2] >= 0)
                                                b[size_t(o)] = float(g_.konst(n.in[2]).at(size_t(m)));
                                }
                npu_conv2d_params p{};
                p.out_channels = uint32_t(K);
                p.kernel_h = p.kernel_w = 1;
                p.activation = act(n);
                int r = npu_graph_conv2d(out_.graph, x.tensor, &p, w.data(), b.data());
                Dims xd = dims_[size_t(x.tensor)], md{xd.n, xd.h, xd.w, K};
                if (auto e = made(r, n, md, op_name(n) + "(1x1)"))
                        return e;
                int r2 = npu_graph_depth_to_space(out_.graph, r, uint32_t(kh), uint32_t(kw));
                const auto &ys = val(n.out[0]).shape;
                Dims d{ys[0], ys[2], ys[3], ys[1]};
                if (auto e = made(r2, n, d, "ConvTranspose(depth-to-space)"))
                        return e;
                views_[size_t(n.out[0])] = nchw(r2, d);
                return std::nullopt;
        }
        if (op == "Slice") {
                // A slice of channels only, step 1: a 1x1 copy of those channels.
                const View &x = views_[size_t(n.in[0])];
                const auto &xs = val(n.in[0]).shape, &ys = val(n.out[0]).shape;
                if (!is_nchw(x) || xs.size() != 4 || xs[0] != ys[0] || xs[2] != ys[2] || xs[3] != ys[3])
                        return err(-ENOTSUP, "only a slice of the channels of an NCHW tensor runs on the device");
                // Starts and steps per axis, made explicit by the folder.
                const auto starts = n.getints("_starts"), steps = n.getints("_steps");
                if (starts.size() != 4 || steps != std::vector<int64_t>{1, 1, 1, 1} || starts[0] || starts[2] || starts[3])
                        return err(-ENOTSUP, "a slice with steps, or of other axes than the channels");
                const int64_t first = starts[1];
                std::vector<int64_t> map;
                for (int64_t c = 0; c < ys[1]; c++)
                        map.push_back(first + c);
                View y;
                if (auto e = channel_map(n, x, map, act(n), false, &y, op_name(n)))
                        return e;
                views_[size_t(n.out[0])] = y;
                return std::nullopt;
        }
        if (op == "Resize" || op == "Upsample") {
                // On the device when it reads what the device's upsampling
                // reads: integer factors, and nearest repeating each pixel or
                // linear with half-pixel centres.
                const View &x = views_[size_t(n.in[0])];
                const auto &xs = val(n.in[0]).shape, &ys = val(n.out[0]).shape;
                if (!is_nchw(x) || xs.size() != 4 || ys[0] != xs[0] || ys[1] != xs[1])
                        return err(-ENOTSUP, "a Resize of a tensor that is not NCHW, or across N or C");
                if (ys[2] % xs[2] || ys[3] % xs[3] || ys[2] / xs[2] > 16 || ys[3] / xs[3] > 16)
                        return err(-ENOTSUP, "not an upsampling by integer factors of 1 to 16");
                int64_t fh = ys[2] / xs[2], fw = ys[3] / xs[3];
                bool nearest = n.gets("mode", "nearest") == "nearest";
                Node dev = n;
                dev.attrs.clear();
                Attr a;
                a.kind = Attr::String;
                a.s = nearest ? "nearest" : "linear";
                dev.attrs["mode"] = a;
                a.s = nearest ? "floor" : "half_pixel";
                dev.attrs[nearest ? "nearest_mode" : "coordinate_transformation_mode"] = a;
                if (nearest) {
                        a.s = "asymmetric";
                        dev.attrs["coordinate_transformation_mode"] = a;
                }
                for (int axis = 2; axis < 4; axis++) {
                        ResizeAxis want = resize_axis(n, g_.opset, ys[size_t(axis)], xs[size_t(axis)]);
                        ResizeAxis got = resize_axis(dev, 13, ys[size_t(axis)], xs[size_t(axis)]);
                        for (size_t o = 0; o < want.i0.size(); o++)
                                if (want.i0[o] != got.i0[o] || want.i1[o] != got.i1[o] || std::fabs(want.f[o] - got.f[o]) > 1e-6)
                                        return err(-ENOTSUP, "its coordinate mapping is not the device's (nearest repeating pixels, "
                                                             "or linear with half-pixel centres)");
                }
                if (n.geti("antialias", 0) || n.gets("coordinate_transformation_mode", "") == "tf_crop_and_resize")
                        return err(-ENOTSUP, "antialias and tf_crop_and_resize are not the device's");
                int r = npu_graph_resize(out_.graph, x.tensor, uint32_t(fh), uint32_t(fw),
                                         nearest ? NPU_RESIZE_NEAREST : NPU_RESIZE_BILINEAR);
                Dims d{ys[0], ys[2], ys[3], ys[1]};
                if (auto e = made(r, n, d, nearest ? "Resize(nearest)" : "Resize(bilinear)"))
                        return e;
                views_[size_t(n.out[0])] = nchw(r, d);
                return std::nullopt;
        }
        if (op == "ChannelAffine") {
                // A lone BatchNormalization: a depthwise 1x1 layer.
                const View &x = views_[size_t(n.in[0])];
                if (!is_nchw(x))
                        return err(-ENOTSUP, "a lone BatchNormalization of a tensor that is not NCHW");
                const Dims xd = dims_[size_t(x.tensor)];  // a copy: made() grows dims_
                npu_conv2d_params p{};
                p.out_channels = uint32_t(xd.c);
                p.kernel_h = p.kernel_w = 1;
                p.groups = uint32_t(xd.c);
                p.activation = act(n);
                const Attr *mul = n.attr("mul"), *add = n.attr("add");
                int r = npu_graph_conv2d(out_.graph, x.tensor, &p, mul->floats.data(), add->floats.data());
                if (auto e = made(r, n, xd, "BatchNormalization" + op_name(n).substr(n.op.size())))
                        return e;
                views_[size_t(n.out[0])] = nchw(r, xd);
                return std::nullopt;
        }
        if (op == "Identity" || op == "Dropout") {
                views_[size_t(n.out[0])] = views_[size_t(n.in[0])];
                return std::nullopt;
        }
        if (op == "Transpose") {
                const View &x = views_[size_t(n.in[0])];
                if (x.strides.empty())
                        return err(-ENOTSUP, "a transpose of a reshaped NCHW tensor is not supported yet");
                auto perm = n.getints("perm");
                if (perm.empty())
                        for (size_t i = x.shape.size(); i-- > 0;)
                                perm.push_back(int64_t(i));
                View y{x.tensor, {}, {}, {}, {}};
                for (int64_t p : perm) {
                        y.shape.push_back(x.shape[size_t(p)]);
                        y.strides.push_back(x.strides[size_t(p)]);
                }
                views_[size_t(n.out[0])] = y;
                done_.transposes_viewed++;
                return std::nullopt;
        }
        if (op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze") {
                const View &x = views_[size_t(n.in[0])];
                const auto &ys = val(n.out[0]).shape;
                if (contiguous(x)) {
                        views_[size_t(n.out[0])] = View{x.tensor, ys, row_major(ys), {}, {}};
                } else {
                        // Same element order, other strides: a fully connected layer
                        // reads it with its columns permuted, an output is gathered.
                        View y{x.tensor, ys, {}, x.strides.empty() ? x.src_shape : x.shape,
                               x.strides.empty() ? x.src_strides : x.strides};
                        views_[size_t(n.out[0])] = y;
                }
                done_.reshapes_viewed++;
                return std::nullopt;
        }
        if (op == "Add" || op == "Mul") {
                if (g_.is_const(n.in[0]) || g_.is_const(n.in[1]))
                        return err(-ENOTSUP, op + " by a constant that could not be folded into a layer");
                View a = views_[size_t(n.in[0])], b = views_[size_t(n.in[1])];
                if (a.elements() < b.elements())
                        std::swap(a, b);
                bool same = a.shape == b.shape && ((is_nchw(a) && is_nchw(b)) || (contiguous(a) && contiguous(b)));
                bool bcast = op == "Mul" && is_nchw(a) && is_nchw(b) && b.shape[2] == 1 && b.shape[3] == 1 && b.shape[1] == a.shape[1];
                if (!same && !bcast)
                        return err(-ENOTSUP, "operands of shapes that the device does not combine");
                int r = op == "Add" ? npu_graph_add(out_.graph, a.tensor, b.tensor, act(n))
                                    : npu_graph_mul(out_.graph, a.tensor, b.tensor, act(n));
                Dims d = dims_[size_t(a.tensor)];
                if (auto e = made(r, n, d, op_name(n)))
                        return e;
                View y = a;
                y.tensor = r;
                views_[size_t(n.out[0])] = y;
                return std::nullopt;
        }
        if (op == "MaxPool" || op == "AveragePool") {
                const View &x = views_[size_t(n.in[0])];
                if (!is_nchw(x))
                        return err(-ENOTSUP, "the input is not a 4-D NCHW tensor on the device");
                auto k = n.getints("kernel_shape"), s = n.getints("strides", {1, 1}), pads = n.getints("pads", {0, 0, 0, 0});
                for (int64_t d : n.getints("dilations", {1, 1}))
                        if (d != 1)
                                return err(-ENOTSUP, "dilated pooling is not supported");
                if (op == "AveragePool" && n.geti("count_include_pad", 0))
                        return err(-ENOTSUP, "count_include_pad=1 is not supported");
                const auto &ys = val(n.out[0]).shape;
                const Dims xd = dims_[size_t(x.tensor)];
                npu_pool_params p{};
                p.kernel_h = uint32_t(k[0]), p.kernel_w = uint32_t(k[1]);
                p.stride_h = uint32_t(s[0]), p.stride_w = uint32_t(s[1]);
                p.pad_top = uint32_t(pads[0]), p.pad_left = uint32_t(pads[1]);
                // ceil_mode: the end padding that floor division turns into the same size.
                p.pad_bottom = uint32_t(std::max<int64_t>(pads[2], (ys[2] - 1) * s[0] + k[0] - xd.h - pads[0]));
                p.pad_right = uint32_t(std::max<int64_t>(pads[3], (ys[3] - 1) * s[1] + k[1] - xd.w - pads[1]));
                int r = op == "MaxPool" ? npu_graph_maxpool(out_.graph, x.tensor, &p) : npu_graph_avgpool(out_.graph, x.tensor, &p);
                Dims d{ys[0], ys[2], ys[3], ys[1]};
                if (auto e = made(r, n, d, op))
                        return e;
                views_[size_t(n.out[0])] = nchw(r, d);
                return std::nullopt;
        }
        if (op == "GlobalAveragePool") {
                const View &x = views_[size_t(n.in[0])];
                if (!is_nchw(x))
                        return err(-ENOTSUP, "the input is not a 4-D NCHW tensor on the device");
                int r = npu_graph_global_avgpool(out_.graph, x.tensor);
                const Dims xd = dims_[size_t(x.tensor)];
                Dims d{xd.n, 1, 1, xd.c};
                if (auto e = made(r, n, d, op))
                        return e;
                views_[size_t(n.out[0])] = nchw(r, d);
                return std::nullopt;
        }
        float alpha, beta;
        if (int a = activation_of(g_, n, &alpha, &beta); a >= 0) {
                // Not after a layer it could join: a depthwise 1x1 identity with the activation.
                if (a == NPU_ACTIVATION_HARDSIGMOID && (std::fabs(alpha - 1.0f / 6) > 1e-7f || beta != 0.5f))
                        return err(-ENOTSUP, "a lone HardSigmoid of other alpha and beta than 1/6 and 1/2");
                const View &x = views_[size_t(n.in[0])];
                if (!is_nchw(x))
                        return err(-ENOTSUP, "a lone activation of a tensor that is not NCHW");
                const Dims xd = dims_[size_t(x.tensor)];
                std::vector<int64_t> map(size_t(xd.c));
                for (size_t i = 0; i < map.size(); i++)
                        map[i] = int64_t(i);
                View y;
                if (auto e = channel_map(n, x, map, uint32_t(a), true, &y, op))
                        return e;
                views_[size_t(n.out[0])] = y;
                return std::nullopt;
        }
        return err(-ENOTSUP, "op " + op + " does not run on the device");
}

std::optional<Error> lower(Graph *g, Lowered *out, Rewrites *done, bool no_host)
{
        auto e = Lowerer(g, out, done, no_host).run();
        if (e) {
                npu_graph_free(out->graph);
                out->graph = nullptr;
        }
        return e;
}

} // namespace onnxfe

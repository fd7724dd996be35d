// Graph rewrites before lowering, each on the frontend's graph:
// BatchNormalization folded into the Conv before it; Add, Sub, Mul and Div
// by constants after a layer folded into its scale and bias; activations
// after a Conv, Gemm, MatMul, Add or channel affine fused into the layer
// (Relu, Clip(0, 6), Sigmoid, HardSwish, HardSigmoid with any alpha and
// beta after a Conv); and a residual Add (with a shortcut padded by zero
// channels) into the Conv before it.
#include <cerrno>
#include <cmath>

#include "lower.h"

namespace onnxfe {

namespace {

// Node `a` (the layer) takes over node `b`'s output; b goes.
void absorb(Graph &g, Node &a, Node &b)
{
        a.out[0] = b.out[0];
        g.values[size_t(a.out[0])].producer = int(&a - &g.nodes[0]);
        b.dead = true;
}

bool is_layer(const Node &n) { return n.op == "Conv" || n.op == "Gemm" || n.op == "MatMul"; }

// Conv weights [O, I/g, kh, kw] scaled per output channel.
void scale_conv(Graph &g, Node &conv, const std::vector<float> &mul, const std::vector<float> &add)
{
        Constant w = g.konst(conv.in[1]);
        int64_t per = w.elements() / w.shape[0];
        for (int64_t o = 0; o < w.shape[0]; o++)
                for (int64_t k = 0; k < per; k++)
                        w.f[size_t(o * per + k)] *= mul[size_t(o)];
        Constant b;
        b.shape = {w.shape[0]};
        b.f.assign(size_t(w.shape[0]), 0.0f);
        if (conv.in.size() > 2 && conv.in[2] >= 0)
                b = g.konst(conv.in[2]);
        for (int64_t o = 0; o < w.shape[0]; o++)
                b.f[size_t(o)] = b.f[size_t(o)] * mul[size_t(o)] + add[size_t(o)];
        // New values: the originals may be shared with other nodes.
        int wv = g.value(g.values[size_t(conv.in[1])].name + "/folded"), bv = g.value(g.values[size_t(conv.in[1])].name + "/folded_bias");
        g.values[size_t(wv)].konst = std::move(w);
        g.values[size_t(wv)].shape = g.values[size_t(wv)].konst->shape;
        g.values[size_t(wv)].has_shape = true;
        g.values[size_t(bv)].konst = std::move(b);
        g.values[size_t(bv)].shape = g.values[size_t(bv)].konst->shape;
        g.values[size_t(bv)].has_shape = true;
        conv.in.resize(3);
        conv.in[1] = wv;
        conv.in[2] = bv;
}

void fold_batchnorm(Graph &g, Rewrites *done)
{
        for (auto &n : g.nodes) {
                if (n.dead || n.op != "Conv" || !g.is_const(n.in[1]))
                        continue;
                int c = g.single_consumer(n.out[0]);
                if (c < 0 || g.nodes[size_t(c)].op != "BatchNormalization" || g.nodes[size_t(c)].in[0] != n.out[0])
                        continue;
                Node &bn = g.nodes[size_t(c)];
                const auto &gamma = g.konst(bn.in[1]), &beta = g.konst(bn.in[2]), &mean = g.konst(bn.in[3]), &var = g.konst(bn.in[4]);
                float eps = bn.getf("epsilon", 1e-5f);
                size_t C = size_t(gamma.elements());
                std::vector<float> mul(C), add(C);
                for (size_t o = 0; o < C; o++) {
                        mul[o] = float(gamma.at(o) / std::sqrt(var.at(o) + double(eps)));
                        add[o] = float(beta.at(o) - mean.at(o) * double(mul[o]));
                }
                scale_conv(g, n, mul, add);
                absorb(g, n, bn);
                done->batchnorm_folded++;
        }
}

// Arithmetic by a constant after a layer: Add, Sub, Mul and Div by
// per-channel constants into a Conv's scale and bias, Add into a Gemm's or
// MatMul's bias.
void fold_affine(Graph &g, Rewrites *done)
{
        for (auto &n : g.nodes) {
                if (n.dead || !(is_layer(n) || n.op == "ChannelAffine") || (is_layer(n) && !g.is_const(n.in[1])))
                        continue;
                for (;;) {
                        int c = g.single_consumer(n.out[0]);
                        if (c < 0 || n.attr("_act"))
                                break;
                        Node &op = g.nodes[size_t(c)];
                        if (op.in.size() != 2 || (op.op != "Add" && op.op != "Sub" && op.op != "Mul" && op.op != "Div"))
                                break;
                        bool first = op.in[0] == n.out[0];
                        int other = first ? op.in[1] : op.in[0];
                        if (!g.is_const(other) || g.values[size_t(op.out[0])].shape != g.values[size_t(n.out[0])].shape)
                                break;
                        const auto &ys = g.values[size_t(n.out[0])].shape;
                        bool conv_like = n.op == "Conv" || n.op == "ChannelAffine";
                        int64_t O = conv_like ? ys.at(1) : ys.back();
                        std::vector<float> k;
                        if (conv_like) {
                                k = per_channel(g, other, O);
                        } else if (op.op == "Add") {
                                // [O] or [1, O] (or one value) over the rows.
                                const Constant &kk = g.konst(other);
                                if (kk.elements() == O && kk.shape.back() == O)
                                        for (int64_t o = 0; o < O; o++)
                                                k.push_back(float(kk.at(size_t(o))));
                                else if (kk.elements() == 1)
                                        k.assign(size_t(O), float(kk.at(0)));
                        }
                        if (k.empty())
                                break;
                        std::vector<float> mul(size_t(O), 1.0f), add(size_t(O), 0.0f);
                        bool ok = true;
                        for (int64_t o = 0; o < O; o++) {
                                float a = k[size_t(o)];
                                if (op.op == "Add") add[size_t(o)] = a;
                                else if (op.op == "Sub" && first) add[size_t(o)] = -a;
                                else if (op.op == "Sub") mul[size_t(o)] = -1, add[size_t(o)] = a;
                                else if (op.op == "Mul") mul[size_t(o)] = a;
                                else if (op.op == "Div" && first && a != 0) mul[size_t(o)] = 1 / a;
                                else ok = false;
                        }
                        if (!ok)
                                break;
                        if (n.op == "Conv") {
                                scale_conv(g, n, mul, add);
                        } else if (n.op == "ChannelAffine") {
                                Attr &m = n.attrs["mul"], &b = n.attrs["add"];
                                for (int64_t o = 0; o < O; o++) {
                                        m.floats[size_t(o)] *= mul[size_t(o)];
                                        b.floats[size_t(o)] = b.floats[size_t(o)] * mul[size_t(o)] + add[size_t(o)];
                                }
                        } else {
                                Attr a;
                                a.kind = Attr::Floats;
                                a.floats = add;
                                if (const Attr *prev = n.attr("_bias_add"))
                                        for (size_t o = 0; o < a.floats.size(); o++)
                                                a.floats[o] += prev->floats[o];
                                n.attrs["_bias_add"] = a;
                        }
                        absorb(g, n, op);
                        done->affine_folded++;
                }
        }
}

void fuse_activations(Graph &g, Rewrites *done)
{
        for (auto &n : g.nodes) {
                if (n.dead || !(is_layer(n) || n.op == "Add" || n.op == "ChannelAffine" || n.op == "ConvTranspose" || n.op == "Slice") ||
                    n.attr("_act"))
                        continue;
                int c = g.single_consumer(n.out[0]);
                if (c < 0)
                        continue;
                Node &a = g.nodes[size_t(c)];
                float alpha, beta;
                int act = activation_of(g, a, &alpha, &beta);
                if (act < 0 || a.in[0] != n.out[0])
                        continue;
                if (act == NPU_ACTIVATION_HARDSIGMOID && (std::fabs(alpha - 1.0f / 6) > 1e-7f || beta != 0.5f)) {
                        // clip(alpha*y + beta, 0, 1) = device's clip(y'/6 + 1/2, 0, 1) with
                        // y' = 6*alpha*y + 6*(beta - 1/2): folded into the layer's scale.
                        if (n.op != "Conv")
                                continue;  // (a Gemm's or a channel affine's scale could take it too)
                        int64_t O = g.konst(n.in[1]).shape[0];
                        scale_conv(g, n, std::vector<float>(size_t(O), 6 * alpha), std::vector<float>(size_t(O), 6 * (beta - 0.5f)));
                }
                Attr at;
                at.kind = Attr::Int;
                at.i = act;
                n.attrs["_act"] = at;
                absorb(g, n, a);
                done->activations_fused++;
        }
}

// x when v is Concat(x, zeros...) on the channels of a 4-D value, read only
// by node k: a shortcut padded with zero channels; else -1.
int zero_padded(const Graph &g, int v, int k)
{
        const int p = g.values[size_t(v)].producer;
        if (p < 0 || g.single_consumer(v) != k)
                return -1;
        const Node &c = g.nodes[size_t(p)];
        const int64_t axis = c.geti("axis", 0);
        if (c.dead || c.op != "Concat" || c.in.size() < 2 || (axis != 1 && axis != -3) || g.is_const(c.in[0]))
                return -1;
        for (size_t i = 1; i < c.in.size(); i++) {
                if (!g.is_const(c.in[i]))
                        return -1;
                const Constant &z = g.konst(c.in[i]);
                for (int64_t e = 0; e < z.elements(); e++)
                        if (z.at(size_t(e)) != 0)
                                return -1;
        }
        return c.in[0];
}

// Whether value v will be an NCHW device tensor, as a residual must be:
// not a layout view (which may keep another order), nor a model input read
// through a Transpose (an NHWC model's).
bool nchw_on_device(const Graph &g, int v)
{
        const int p = g.values[size_t(v)].producer;
        if (p < 0) {
                for (int c : g.consumers(v))
                        if (g.nodes[size_t(c)].op == "Transpose")
                                return false;
                return true;
        }
        static const char *views[] = {"Transpose", "Reshape", "Flatten", "Squeeze", "Unsqueeze", "Identity", "Dropout"};
        for (const char *op : views)
                if (g.nodes[size_t(p)].op == op)
                        return false;
        return true;
}

// A residual Add after a Conv: a Conv (one group, no activation of its
// own) read only by an Add of a value r computed before the Conv, or of
// Concat(r, zeros) read only by that Add, becomes one layer that adds r
// before the Add's activation (npu_graph_conv2d_residual): r is the Conv's
// fourth input, and the Conv takes the Add's output.  The sum is quantized
// once and neither the Add nor the channel pad is a layer.
void fuse_residual(Graph &g, Rewrites *done)
{
        for (size_t k = 0; k < g.nodes.size(); k++) {
                Node &a = g.nodes[k];
                if (a.dead || a.op != "Add" || a.in.size() != 2 || a.out.size() != 1)
                        continue;
                const auto &ys = g.values[size_t(a.out[0])].shape;
                if (ys.size() != 4 || a.in[0] < 0 || a.in[1] < 0 || g.is_const(a.in[0]) || g.is_const(a.in[1]))
                        continue;
                for (int side = 0; side < 2; side++) {
                        const int cv = a.in[size_t(side)], other = a.in[size_t(1 - side)];
                        const int p = g.values[size_t(cv)].producer;
                        if (p < 0 || g.single_consumer(cv) != int(k) || g.values[size_t(cv)].shape != ys ||
                            g.values[size_t(other)].shape != ys)
                                continue;
                        Node &conv = g.nodes[size_t(p)];
                        if (conv.dead || conv.op != "Conv" || conv.attr("_act") || conv.geti("group", 1) != 1 || conv.in.size() > 3 ||
                            !g.is_const(conv.in[1]) || (conv.in.size() > 2 && conv.in[2] >= 0 && !g.is_const(conv.in[2])))
                                continue;
                        const int padded = zero_padded(g, other, int(k));
                        const int r = padded >= 0 ? padded : other;
                        if (!nchw_on_device(g, r))
                                continue;
                        const auto &rs = g.values[size_t(r)].shape;
                        // Computed before the Conv, so lowered by then; the output's pixels.
                        if (g.values[size_t(r)].producer >= p || rs.size() != 4 || rs[0] != ys[0] || rs[2] != ys[2] ||
                            rs[3] != ys[3] || rs[1] > ys[1])
                                continue;
                        conv.in.resize(3, -1);
                        conv.in.push_back(r);
                        if (const Attr *act = a.attr("_act"))
                                conv.attrs["_act"] = *act;
                        Attr label;
                        label.kind = Attr::String;
                        label.s = a.label(g);
                        conv.attrs["_residual_add"] = label;
                        if (padded >= 0)
                                g.nodes[size_t(g.values[size_t(other)].producer)].dead = true;
                        absorb(g, conv, a);
                        done->residuals_fused++;
                        break;
                }
        }
}

} // namespace

int activation_of(const Graph &g, const Node &a, float *alpha, float *beta)
{
        *alpha = 1.0f / 6, *beta = 0.5f;
        if (a.op == "Relu")
                return NPU_ACTIVATION_RELU;
        if (a.op == "Sigmoid")
                return NPU_ACTIVATION_SIGMOID;
        if (a.op == "HardSwish")
                return NPU_ACTIVATION_HARDSWISH;
        if (a.op == "HardSigmoid") {
                *alpha = a.getf("alpha", 0.2f);
                *beta = a.getf("beta", 0.5f);
                return NPU_ACTIVATION_HARDSIGMOID;
        }
        double lo, hi;
        if (a.op == "Clip" && clip_bounds(g, a, &lo, &hi)) {
                if (lo == 0 && hi == 6)
                        return NPU_ACTIVATION_RELU6;
                if (lo == 0 && std::isinf(hi))
                        return NPU_ACTIVATION_RELU;
        }
        return -1;
}

void rewrite(Graph *g, Rewrites *done)
{
        fold_batchnorm(*g, done);
        recognise(g, done);
        fold_affine(*g, done);
        fuse_activations(*g, done);
        fuse_residual(*g, done);
}

} // namespace onnxfe

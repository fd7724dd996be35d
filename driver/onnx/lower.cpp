// Lowering: each live node of the rewritten graph becomes builder calls on
// Views (lower.h).  Layout-only ops (Transpose, Reshape and kin, Identity)
// make no layer; a node the device cannot run is refused naming its op.
#include "lower.h"

#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>

namespace onnxfe {

namespace {

struct Dims {
        int64_t n, h, w, c;
        int64_t elements() const { return n * h * w * c; }
};

class Lowerer {
public:
        Lowerer(Graph *g, Lowered *out, Rewrites *done, bool no_host) : g_(*g), out_(*out), done_(*done), no_host_(no_host) {}

        std::optional<Error> run()
        {
                if (npu_graph_new(&out_.graph) < 0)
                        return Error{-ENOMEM, "cannot make a graph"};
                views_.assign(g_.values.size(), View{});
                for (int v : g_.inputs)
                        if (auto e = input(v))
                                return e;
                for (auto &n : g_.nodes) {
                        if (n.dead)
                                continue;
                        what_ = "node '" + n.label(g_) + "' (" + n.op + ")";
                        for (int v : n.in)
                                if (v >= 0 && !g_.is_const(v) && views_[size_t(v)].tensor < 0)
                                        return err(-ENOTSUP, "input '" + g_.values[size_t(v)].name + "' is not on the device");
                        size_t layers = out_.layer_names.size();
                        auto e = node(n);
                        if (e && e->code == -ENOTSUP && !no_host_ && out_.layer_names.size() == layers) {
                                if (auto h = host(n, e->message))
                                        return Error{h->code, h->message + " (the device: " + e->message + ")"};
                                continue;
                        }
                        if (e)
                                return e;
                }
                for (int v : g_.outputs) {
                        const View &vw = views_[size_t(v)];
                        if (vw.tensor < 0)
                                return Error{-ENOTSUP, "output '" + g_.values[size_t(v)].name + "' is a constant or an input, not a result"};
                        if (dims_[size_t(vw.tensor)].elements() != vw.elements() || producer_layer(vw.tensor) < 0)
                                return Error{-ENOTSUP, "output '" + g_.values[size_t(v)].name + "' is not a whole device tensor"};
                        int r = npu_graph_add_output(out_.graph, vw.tensor);
                        if (r < 0)
                                return Error{r, "output '" + g_.values[size_t(v)].name + "': the graph builder refused it"};
                        out_.outputs.push_back(vw);
                }
                return std::nullopt;
        }

private:
        Error err(int code, const std::string &m) const { return Error{code, what_ + ": " + m}; }
        const Value &val(int v) const { return g_.values[size_t(v)]; }

        int producer_layer(int tensor) const
        {
                auto it = layer_of_.find(tensor);
                return it == layer_of_.end() ? -1 : it->second;
        }

        // Records a builder result: the tensor's dims and the layer's name.
        std::optional<Error> made(int r, const Node &n, Dims d, const std::string &op)
        {
                if (r < 0)
                        return err(r, "the device refused the layer (" + std::string(strerror(-r)) + ")");
                if (size_t(r) >= dims_.size())
                        dims_.resize(size_t(r) + 1);
                dims_[size_t(r)] = d;
                layer_of_[r] = int(out_.layer_names.size());
                out_.layer_names.push_back(n.label(g_));
                out_.layer_ops.push_back(op);
                out_.layer_tensors.push_back(r);
                out_.layer_reasons.push_back(reason_);
                return std::nullopt;
        }

        static View nchw(int t, Dims d) { return View{t, {d.n, d.c, d.h, d.w}, {d.h * d.w * d.c, 1, d.w * d.c, d.c}, {}, {}}; }
        bool is_nchw(const View &v) const
        {
                if (v.shape.size() != 4 || v.strides.empty())
                        return false;
                const Dims &d = dims_[size_t(v.tensor)];
                View c = nchw(v.tensor, d);
                for (size_t i = 0; i < 4; i++)
                        if (v.shape[i] != c.shape[i] || (v.shape[i] > 1 && v.strides[i] != c.strides[i]))
                                return false;
                return true;
        }
        static std::vector<int64_t> row_major(const std::vector<int64_t> &s)
        {
                std::vector<int64_t> st(s.size(), 1);
                for (size_t i = s.size(); i-- > 1;)
                        st[i - 1] = st[i] * s[i];
                return st;
        }
        // Memory order is the value's row-major order.
        bool contiguous(const View &v) const
        {
                if (v.strides.empty())
                        return false;
                int64_t expect = 1;
                for (size_t i = v.shape.size(); i-- > 0;) {
                        if (v.shape[i] == 1)
                                continue;
                        if (v.strides[i] != expect)
                                return false;
                        expect *= v.shape[i];
                }
                return expect == dims_[size_t(v.tensor)].elements();
        }
        // The device dims of a row-major value of rank 1 to 4: [F] -> (1,1,1,F),
        // [N,F] -> (N,1,1,F), [A,B,C] -> (A,1,B,C), 4-D as NHWC.
        static bool row_major_dims(const std::vector<int64_t> &s, Dims *d)
        {
                switch (s.size()) {
                case 0: *d = {1, 1, 1, 1}; return true;
                case 1: *d = {1, 1, 1, s[0]}; return true;
                case 2: *d = {s[0], 1, 1, s[1]}; return true;
                case 3: *d = {s[0], 1, s[1], s[2]}; return true;
                case 4: *d = {s[0], s[1], s[2], s[3]}; return true;
                default: return false;
                }
        }

        std::optional<Error> input(int v)
        {
                const auto &L = val(v).shape;
                what_ = "input '" + val(v).name + "'";
                for (int64_t x : L)
                        if (x > (1 << 16))
                                return err(-E2BIG, "dimension " + std::to_string(x) + " is over the device's 65536");
                Dims d;
                View view;
                if (L.size() == 4) {
                        // Read through one Transpose (an NHWC model's first node):
                        // lay the input out so that the transposed value is NCHW.
                        std::vector<int64_t> perm;
                        auto cons = g_.consumers(v);
                        bool same = !cons.empty();
                        for (int c : cons) {
                                const Node &n = g_.nodes[size_t(c)];
                                auto p = n.getints("perm");
                                if (n.op != "Transpose" || p.size() != 4 || (!perm.empty() && p != perm))
                                        same = false;
                                perm = p;
                        }
                        if (same && !g_.is_output(v)) {
                                std::vector<int64_t> S(4);
                                for (size_t i = 0; i < 4; i++)
                                        S[i] = L[size_t(perm[i])];
                                d = {S[0], S[2], S[3], S[1]};
                                View t = nchw(-1, d);
                                view.shape = L;
                                view.strides.assign(4, 0);
                                for (size_t i = 0; i < 4; i++)
                                        view.strides[size_t(perm[i])] = t.strides[i];
                        } else {
                                d = {L[0], L[2], L[3], L[1]};
                                view = nchw(-1, d);
                        }
                } else if (row_major_dims(L, &d)) {
                        view.shape = L;
                        view.strides = row_major(L);
                } else {
                        return err(-ENOTSUP, "rank " + std::to_string(L.size()) + " is not supported (1 to 4 are)");
                }
                int r = npu_graph_input(out_.graph, uint32_t(d.n), uint32_t(d.h), uint32_t(d.w), uint32_t(d.c));
                if (r < 0)
                        return err(r, "the graph builder refused shape " + std::to_string(d.n) + "x" + std::to_string(d.h) + "x" +
                                              std::to_string(d.w) + "x" + std::to_string(d.c));
                if (size_t(r) >= dims_.size())
                        dims_.resize(size_t(r) + 1);
                dims_[size_t(r)] = d;
                view.tensor = r;
                views_[size_t(v)] = view;
                out_.inputs.push_back(view);
                auto aff = g_.input_affine.find(v);
                out_.input_mul.push_back(aff == g_.input_affine.end() ? std::vector<float>{} : aff->second.first);
                out_.input_add.push_back(aff == g_.input_affine.end() ? std::vector<float>{} : aff->second.second);
                return std::nullopt;
        }

        uint32_t act(const Node &n) const { return uint32_t(n.geti("_act", NPU_ACTIVATION_NONE)); }
        std::string op_name(const Node &n) const
        {
                static const char *names[] = {"", "+Relu", "+Relu6", "+HardSwish", "+HardSigmoid", "+Sigmoid"};
                uint32_t a = act(n);
                return n.op + (a < 6 ? names[a] : "");
        }

        // A 1x1 convolution from x's channels to `map.size()` channels, output
        // channel o copying input channel map[o] (or zero for -1).
        std::optional<Error> channel_map(const Node &n, const View &x, const std::vector<int64_t> &map, uint32_t activation,
                                         bool depthwise, View *ret, const std::string &op)
        {
                const Dims d = dims_[size_t(x.tensor)];
                npu_conv2d_params p{};
                p.out_channels = uint32_t(map.size());
                p.kernel_h = p.kernel_w = 1;
                p.activation = activation;
                std::vector<float> w;
                if (depthwise) {
                        p.groups = uint32_t(d.c);
                        w.assign(size_t(d.c), 1.0f);
                } else {
                        w.assign(map.size() * size_t(d.c), 0.0f);
                        for (size_t o = 0; o < map.size(); o++)
                                if (map[o] >= 0)
                                        w[o * size_t(d.c) + size_t(map[o])] = 1.0f;
                }
                int r = npu_graph_conv2d(out_.graph, x.tensor, &p, w.data(), nullptr);
                Dims od{d.n, d.h, d.w, int64_t(map.size())};
                if (auto e = made(r, n, od, op))
                        return e;
                *ret = nchw(r, od);
                return std::nullopt;
        }

        std::optional<Error> host(const Node &n, const std::string &why);
        std::optional<Error> conv(const Node &n);
        std::optional<Error> gemm(const Node &n);
        std::optional<Error> concat(const Node &n);
        std::optional<Error> node(const Node &n);

        Graph &g_;
        Lowered &out_;
        Rewrites &done_;
        std::vector<View> views_;
        std::vector<Dims> dims_;
        std::map<int, int> layer_of_;
        std::string what_;
        bool no_host_;
        std::string reason_;  // of the host layer being made
};

// The host function of every host node: the device tensors gathered into
// the node's inputs, the op evaluated, the output scattered to its layout.
int run_host_node(void *user, const float *const *inputs, const npu_host_shape *, unsigned count, float *output)
{
        HostNode &h = *static_cast<HostNode *>(user);
        if (count != h.in_views.size())
                return -EINVAL;
        for (size_t i = 0; i < h.node.in.size(); i++) {
                if (h.arg[i] < 0)
                        continue;
                const View &v = h.in_views[size_t(h.arg[i])];
                const float *src = inputs[h.arg[i]];
                Constant c;
                c.type = DType::Float;
                c.shape = v.shape;
                c.f.resize(size_t(v.elements()));
                v.each([&](int64_t e, int64_t off) { c.f[size_t(e)] = src[off]; });
                h.local.values[size_t(h.node.in[i])].konst = std::move(c);
        }
        for (int o : h.node.out)
                if (o >= 0)
                        h.local.values[size_t(o)].konst.reset();
        if (evaluate(&h.local, &h.node))
                return -EDOM;
        const Constant &y = *h.local.values[size_t(h.node.out[size_t(h.out)])].konst;
        if (y.elements() != h.out_view.elements())
                return -EPROTO;
        if (y.type == DType::Float)
                h.out_view.each([&](int64_t e, int64_t off) { output[off] = y.f[size_t(e)]; });
        else
                h.out_view.each([&](int64_t e, int64_t off) { output[off] = float(y.i[size_t(e)]); });
        return 0;
}

// Node n on the host: one host layer per output.  Its inputs are device
// tensors (through their views) or constants; each output gets a device
// tensor of its own (NCHW for 4-D, row-major below).  The op is tried once
// on zeros here so that a node with no host implementation fails to load.
std::optional<Error> Lowerer::host(const Node &n, const std::string &why)
{
        auto proto = std::make_unique<HostNode>();
        HostNode &h = *proto;
        h.local.opset = g_.opset;
        h.node = n;
        h.node.name = n.label(g_);
        std::vector<int> tensors;
        std::map<int, int> arg_of;  // graph value -> host function input
        for (size_t i = 0; i < n.in.size(); i++) {
                int v = n.in[i];
                if (v < 0) {
                        h.arg.push_back(-1);
                        continue;
                }
                int lv = h.local.value(val(v).name);
                Value &lval = h.local.values[size_t(lv)];
                lval.shape = val(v).shape;
                lval.type = val(v).type;
                lval.has_shape = true;
                h.node.in[i] = lv;
                if (g_.is_const(v)) {
                        lval.konst = g_.konst(v);
                        h.arg.push_back(-1);
                        continue;
                }
                const View &vw = views_[size_t(v)];
                if (vw.tensor < 0)
                        return err(-ENOTSUP, "input '" + val(v).name + "' is not a device tensor");
                auto it = arg_of.find(v);
                if (it == arg_of.end()) {
                        it = arg_of.emplace(v, int(h.in_views.size())).first;
                        h.in_views.push_back(vw);
                        tensors.push_back(vw.tensor);
                }
                h.arg.push_back(it->second);
        }
        for (size_t o = 0; o < n.out.size(); o++)
                if (n.out[o] >= 0)
                        h.node.out[o] = h.local.value(val(n.out[o]).name);
        if (tensors.empty())
                return err(-ENOTSUP, "a host node with no device input");
        if (tensors.size() > 16)
                return err(-ENOTSUP, "a host node of more than 16 inputs");
        // A trial on zeros: the op must compute, not only shape.
        {
                HostNode trial = h;
                for (size_t i = 0; i < n.in.size(); i++)
                        if (trial.arg[i] >= 0) {
                                Value &lv = trial.local.values[size_t(trial.node.in[i])];
                                Constant z;
                                z.shape = lv.shape;
                                z.f.assign(size_t(product(z.shape)), 0.0f);
                                lv.konst = std::move(z);
                        }
                if (auto e = evaluate(&trial.local, &trial.node))
                        return err(e->code, "no host implementation either: " + e->message);
        }
        std::string reason = why.substr(why.find(": ") == std::string::npos ? 0 : why.find(": ") + 2);
        bool first = true;
        for (size_t o = 0; o < n.out.size(); o++) {
                if (n.out[o] < 0)
                        continue;
                const auto &ys = val(n.out[o]).shape;
                Dims d;
                View y;
                if (ys.size() == 4) {
                        d = {ys[0], ys[2], ys[3], ys[1]};
                        y = nchw(-1, d);
                } else if (row_major_dims(ys, &d)) {
                        y = View{-1, ys, row_major(ys), {}, {}};
                } else {
                        return err(-ENOTSUP, "a host output of rank " + std::to_string(ys.size()));
                }
                for (int64_t dim : {d.n, d.h, d.w, d.c})
                        if (dim > (1 << 16))
                                return err(-E2BIG, "a host output dimension over 65536");
                auto node = first ? std::move(proto) : std::make_unique<HostNode>(*out_.host.back());
                first = false;
                node->out = int(o);
                node->out_view = y;
                reason_ = reason;
                int r = npu_graph_host(out_.graph, tensors.data(), unsigned(tensors.size()), uint32_t(d.n), uint32_t(d.h),
                                       uint32_t(d.w), uint32_t(d.c), run_host_node, node.get());
                auto e = made(r, n, d, "host:" + n.op);
                reason_.clear();
                if (e)
                        return e;
                y.tensor = r;
                node->out_view.tensor = r;
                views_[size_t(n.out[o])] = y;
                out_.host.push_back(std::move(node));
                done_.host_nodes++;
        }
        return std::nullopt;
}

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
        int r = npu_graph_conv2d(out_.graph, x.tensor, &p, w.data(), b.empty() ? nullptr : b.data());
        const auto &ys = val(n.out[0]).shape;
        Dims d{ys[0], ys[2], ys[3], ys[1]};
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
        if (op == "Relu" || op == "Clip" || op == "Sigmoid" || op == "HardSwish" ||
            (op == "HardSigmoid" && std::fabs(n.getf("alpha", 0.2f) - 1.0f / 6) < 1e-7f && n.getf("beta", 0.5f) == 0.5f)) {
                // Not after a layer it could join: a depthwise 1x1 identity with the activation.
                const View &x = views_[size_t(n.in[0])];
                if (!is_nchw(x))
                        return err(-ENOTSUP, "a lone activation of a tensor that is not NCHW");
                uint32_t a = op == "Relu" ? NPU_ACTIVATION_RELU : op == "Sigmoid" ? NPU_ACTIVATION_SIGMOID
                             : op == "HardSwish" ? NPU_ACTIVATION_HARDSWISH : op == "HardSigmoid" ? NPU_ACTIVATION_HARDSIGMOID : 99;
                if (op == "Clip") {
                        double lo = g_.opset < 11 ? n.getf("min", -INFINITY) : n.in.size() > 1 && n.in[1] >= 0 ? g_.konst(n.in[1]).at(0) : -INFINITY;
                        double hi = g_.opset < 11 ? n.getf("max", INFINITY) : n.in.size() > 2 && n.in[2] >= 0 ? g_.konst(n.in[2]).at(0) : INFINITY;
                        a = lo == 0 && hi == 6 ? NPU_ACTIVATION_RELU6 : lo == 0 && std::isinf(hi) ? NPU_ACTIVATION_RELU : 99;
                        if (a == 99)
                                return err(-ENOTSUP, "Clip to other bounds than [0, 6] or [0, inf)");
                }
                const Dims xd = dims_[size_t(x.tensor)];
                std::vector<int64_t> map(size_t(xd.c));
                for (size_t i = 0; i < map.size(); i++)
                        map[i] = int64_t(i);
                View y;
                if (auto e = channel_map(n, x, map, a, true, &y, op))
                        return e;
                views_[size_t(n.out[0])] = y;
                return std::nullopt;
        }
        return err(-ENOTSUP, "op " + op + " does not run on the device");
}

} // namespace

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

// The lowerer (not installed): a pass over the rewritten graph that makes
// builder calls (lower.cpp: device layers and layout views; lower_host.cpp:
// host nodes).
#pragma once

#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>

#include "lower.h"

namespace onnxfe {

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
                out_.layer_also.emplace_back();
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

// The host function of every host node (lower_host.cpp).
int run_host_node(void *user, const float *const *inputs, const npu_host_shape *shapes, unsigned count, float *output);

} // namespace onnxfe

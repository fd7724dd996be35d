// Static shapes of every value, and constants folded: a node whose inputs
// are all constant is evaluated here (Shape/Gather/Slice/Cast/Concat/
// Unsqueeze/Reshape chains, ConstantOfShape, arithmetic on constants), so
// what is left for the device is the network itself.  Pads of auto_pad
// are made explicit on the way.
#include <algorithm>
#include <cerrno>
#include <cmath>
#include <functional>

#include "ir.h"

namespace onnxfe {

namespace {

Error err(int code, const std::string &m) { return Error{code, m}; }

class Folder {
public:
        explicit Folder(Graph *g) : g_(*g) {}

        // One node whose inputs are constants: its outputs computed.
        std::optional<Error> one(Node &n)
        {
                what_ = "node '" + n.label(g_) + "' (" + n.op + ")";
                if (auto e = node(n))
                        return e;
                for (int o : n.out)
                        if (o >= 0 && !g_.values[size_t(o)].konst)
                                return err(-ENOTSUP, what_ + ": op " + n.op + " has no host implementation");
                return std::nullopt;
        }

        std::optional<Error> run()
        {
                for (size_t k = 0; k < g_.nodes.size(); k++) {
                        Node &n = g_.nodes[k];
                        what_ = "node '" + n.label(g_) + "' (" + n.op + ")";
                        for (int v : n.in)
                                if (v >= 0 && !g_.values[size_t(v)].has_shape)
                                        return err(-EINVAL, what_ + ": input '" + g_.values[size_t(v)].name + "' has no known shape");
                        if (auto e = node(n))
                                return e;
                        for (int o : n.out) {
                                if (o < 0)
                                        continue;
                                Value &v = g_.values[size_t(o)];
                                for (int64_t d : v.shape)
                                        if (d < 0 || d > kMaxElements)
                                                return err(-E2BIG, what_ + ": output shape " + dims_text(v.shape) + " is invalid");
                                if (product(v.shape) > kMaxElements)
                                        return err(-E2BIG, what_ + ": output shape " + dims_text(v.shape) + " is over the limit of " +
                                                                   std::to_string(kMaxElements) + " elements");
                                v.has_shape = true;
                        }
                        // Evaluated: nothing left to run.
                        bool all_const = true;
                        for (int o : n.out)
                                if (o >= 0 && !g_.values[size_t(o)].konst)
                                        all_const = false;
                        if (all_const && !n.out.empty())
                                n.dead = true;
                }
                return std::nullopt;
        }

private:
        Value &in(const Node &n, size_t i) { return g_.values[size_t(n.in[i])]; }
        Value &out(const Node &n, size_t i = 0) { return g_.values[size_t(n.out[i])]; }
        bool has_in(const Node &n, size_t i) const { return i < n.in.size() && n.in[i] >= 0; }
        bool cin(const Node &n, size_t i) const { return has_in(n, i) && g_.is_const(n.in[i]); }

        void set(const Node &n, std::vector<int64_t> shape, DType t = DType::Float, size_t i = 0)
        {
                Value &v = out(n, i);
                v.shape = std::move(shape);
                v.type = t;
        }
        void set_const(const Node &n, Constant c, size_t i = 0)
        {
                Value &v = out(n, i);
                v.shape = c.shape;
                v.type = c.type;
                v.konst = std::move(c);
        }
        std::optional<Error> need(const Node &n, size_t count)
        {
                if (n.in.size() < count)
                        return err(-EINVAL, what_ + ": " + std::to_string(n.in.size()) + " inputs, " + std::to_string(count) +
                                                    " needed");
                for (size_t i = 0; i < count; i++)
                        if (n.in[i] < 0)
                                return err(-EINVAL, what_ + ": input " + std::to_string(i) + " is missing");
                if (n.out.empty() || n.out[0] < 0)
                        return err(-EINVAL, what_ + ": no output");
                return std::nullopt;
        }
        // Integer constants of input i (shape, axes, pads ...).
        std::optional<Error> ints(const Node &n, size_t i, std::vector<int64_t> *r)
        {
                if (!cin(n, i))
                        return err(-ENOTSUP, what_ + ": input " + std::to_string(i) + " must be a constant");
                const Constant &c = g_.konst(n.in[i]);
                r->clear();
                for (int64_t k = 0; k < c.elements(); k++)
                        r->push_back(int64_t(c.at(size_t(k))));
                return std::nullopt;
        }
        std::optional<Error> axis(int64_t a, size_t rank, int64_t *r, bool inclusive = false)
        {
                int64_t R = int64_t(rank) + (inclusive ? 1 : 0);
                if (a < -R || a >= R)
                        return err(-EINVAL, what_ + ": axis " + std::to_string(a) + " is outside rank " + std::to_string(rank));
                *r = a < 0 ? a + R : a;
                return std::nullopt;
        }

        std::optional<Error> broadcast(const Node &n, std::vector<int64_t> *r)
        {
                r->clear();
                for (size_t i = 0; i < n.in.size(); i++) {
                        if (n.in[i] < 0)
                                continue;
                        const auto &s = in(n, i).shape;
                        if (s.size() > r->size())
                                r->insert(r->begin(), s.size() - r->size(), 1);
                        for (size_t k = 0; k < s.size(); k++) {
                                int64_t &d = (*r)[r->size() - s.size() + k];
                                if (d == 1)
                                        d = s[k];
                                else if (s[k] != 1 && s[k] != d)
                                        return err(-EINVAL, what_ + ": shapes " + dims_text(in(n, 0).shape) + " and " +
                                                                    dims_text(s) + " do not broadcast");
                        }
                }
                return std::nullopt;
        }

        // Elementwise over broadcast constants.
        Constant elementwise(const Node &n, const std::vector<int64_t> &shape, DType t,
                             const std::function<double(const std::vector<double> &)> &f)
        {
                Constant c;
                c.type = t;
                c.shape = shape;
                int64_t total = product(shape);
                std::vector<int64_t> ost = strides_of(shape);
                std::vector<double> args(n.in.size());
                for (int64_t e = 0; e < total; e++) {
                        for (size_t i = 0; i < n.in.size(); i++) {
                                const Constant &a = g_.konst(n.in[i]);
                                std::vector<int64_t> ast = strides_of(a.shape);
                                int64_t off = 0;
                                for (size_t k = 0; k < a.shape.size(); k++) {
                                        size_t ok = shape.size() - a.shape.size() + k;
                                        int64_t idx = (e / ost[ok]) % shape[ok];
                                        off += (a.shape[k] == 1 ? 0 : idx) * ast[k];
                                }
                                args[i] = a.at(size_t(off));
                        }
                        double v = f(args);
                        if (t == DType::Float)
                                c.f.push_back(float(v));
                        else
                                c.i.push_back(int64_t(v));
                }
                return c;
        }

        bool all_const(const Node &n)
        {
                for (int v : n.in)
                        if (v >= 0 && !g_.is_const(v))
                                return false;
                return true;
        }

        std::optional<Error> window(Node &n, const std::vector<int64_t> &x, const std::vector<int64_t> &kernel,
                                    int64_t out_c, std::vector<int64_t> *r);
        Constant evaluate_unary_like(const Node &n);
        Constant evaluate_resize(const Node &n, const std::vector<int64_t> &s);
        Constant evaluate_reduce(const Node &n, const std::vector<bool> &red, const std::vector<int64_t> &s);
        std::optional<Error> node(Node &n);

        Graph &g_;
        std::string what_;
};

// Clip, HardSigmoid, LeakyRelu, BatchNormalization, Softmax and
// LogSoftmax of a constant (at load, or a host node at run time).
Constant Folder::evaluate_unary_like(const Node &n)
{
        const Constant &x = g_.konst(n.in[0]);
        Constant c;
        c.type = DType::Float;
        c.shape = x.shape;
        int64_t N = x.elements();
        c.f.resize(size_t(N));
        const std::string &op = n.op;
        if (op == "Softmax" || op == "LogSoftmax") {
                int64_t R = int64_t(x.shape.size()), a = n.geti("axis", g_.opset >= 13 ? -1 : 1);
                if (a < 0)
                        a += R;
                a = std::clamp<int64_t>(a, 0, std::max<int64_t>(R - 1, 0));
                // Opset 13: along the axis; before: over the axis and all after it.
                int64_t len = 1, inner = 1;
                if (R) {
                        len = g_.opset >= 13 ? x.shape[size_t(a)] : product({x.shape.begin() + a, x.shape.end()});
                        inner = g_.opset >= 13 ? product({x.shape.begin() + a + 1, x.shape.end()}) : 1;
                }
                int64_t outer = len > 0 && inner > 0 ? N / (len * inner) : 0;
                for (int64_t o = 0; o < outer; o++)
                        for (int64_t i = 0; i < inner; i++) {
                                auto at = [&](int64_t k) { return size_t((o * len + k) * inner + i); };
                                double mx = -INFINITY, sum = 0;
                                for (int64_t k = 0; k < len; k++)
                                        mx = std::max(mx, x.at(at(k)));
                                for (int64_t k = 0; k < len; k++)
                                        sum += std::exp(x.at(at(k)) - mx);
                                for (int64_t k = 0; k < len; k++) {
                                        double v = x.at(at(k)) - mx;
                                        c.f[at(k)] = float(op == "Softmax" ? std::exp(v) / sum : v - std::log(sum));
                                }
                        }
                return c;
        }
        double lo = -INFINITY, hi = INFINITY, alpha = n.getf("alpha", op == "LeakyRelu" ? 0.01f : 0.2f), beta = n.getf("beta", 0.5f);
        if (op == "Clip") {
                if (g_.opset < 11) {
                        lo = n.getf("min", -INFINITY);
                        hi = n.getf("max", INFINITY);
                } else {
                        if (n.in.size() > 1 && n.in[1] >= 0)
                                lo = g_.konst(n.in[1]).at(0);
                        if (n.in.size() > 2 && n.in[2] >= 0)
                                hi = g_.konst(n.in[2]).at(0);
                }
        }
        int64_t C = x.shape.size() > 1 ? x.shape[1] : 1, inner = x.shape.size() > 2 ? product({x.shape.begin() + 2, x.shape.end()}) : 1;
        float eps = n.getf("epsilon", 1e-5f);
        for (int64_t e = 0; e < N; e++) {
                double v = x.at(size_t(e)), r;
                if (op == "Clip")
                        r = std::min(std::max(v, lo), hi);
                else if (op == "HardSigmoid")
                        r = std::clamp(alpha * v + beta, 0.0, 1.0);
                else if (op == "LeakyRelu")
                        r = v < 0 ? alpha * v : v;
                else {  // BatchNormalization
                        size_t ch = size_t((e / inner) % C);
                        r = g_.konst(n.in[1]).at(ch) * (v - g_.konst(n.in[3]).at(ch)) / std::sqrt(g_.konst(n.in[4]).at(ch) + eps) +
                            g_.konst(n.in[2]).at(ch);
                }
                c.f[size_t(e)] = float(r);
        }
        return c;
}

// Resize of a constant [N, C, H, W] over H and W: nearest or (bi)linear,
// with the coordinate transformations of ONNX.
Constant Folder::evaluate_resize(const Node &n, const std::vector<int64_t> &s)
{
        const Constant &x = g_.konst(n.in[0]);
        Constant c;
        c.type = x.type;
        c.shape = s;
        std::string mode = n.gets("mode", "nearest"), ct = n.gets("coordinate_transformation_mode", g_.opset < 11 ? "asymmetric" : "half_pixel");
        std::string nm = n.gets("nearest_mode", "round_prefer_floor");
        const int64_t N = s[0], C = s[1], H = s[2], W = s[3], h = x.shape[2], w = x.shape[3];
        auto src = [&](int64_t o, int64_t out, int64_t in) {
                double scale = double(out) / double(in);
                if (ct == "align_corners")
                        return out > 1 ? double(o) * double(in - 1) / double(out - 1) : 0.0;
                if (ct == "asymmetric")
                        return double(o) / scale;
                if (ct == "pytorch_half_pixel")
                        return out > 1 ? (double(o) + 0.5) / scale - 0.5 : 0.0;
                return (double(o) + 0.5) / scale - 0.5;  // half_pixel
        };
        auto nearest = [&](double v, int64_t in) {
                double f = std::floor(v);
                int64_t i;
                if (nm == "floor") i = int64_t(f);
                else if (nm == "ceil") i = int64_t(std::ceil(v));
                else if (nm == "round_prefer_ceil") i = int64_t(v - f >= 0.5 ? f + 1 : f);
                else i = int64_t(v - f > 0.5 ? f + 1 : f);  // round_prefer_floor
                return std::clamp<int64_t>(i, 0, in - 1);
        };
        // Per output row and column: the source index (nearest) or the two
        // sources and the weight of the second (linear), computed once.
        const bool near = mode == "nearest";
        std::vector<int64_t> y0(static_cast<size_t>(H)), y1(static_cast<size_t>(H)), x0(static_cast<size_t>(W)), x1(static_cast<size_t>(W));
        std::vector<double> fy(static_cast<size_t>(H)), fx(static_cast<size_t>(W));
        auto axis = [&](int64_t out, int64_t in, std::vector<int64_t> &i0, std::vector<int64_t> &i1, std::vector<double> &f) {
                for (int64_t o = 0; o < out; o++) {
                        double v = src(o, out, in);
                        if (near) {
                                i0[size_t(o)] = i1[size_t(o)] = nearest(v, in);
                                f[size_t(o)] = 0;
                        } else {
                                v = std::clamp(v, 0.0, double(in - 1));
                                i0[size_t(o)] = int64_t(std::floor(v));
                                i1[size_t(o)] = std::min(i0[size_t(o)] + 1, in - 1);
                                f[size_t(o)] = v - double(i0[size_t(o)]);
                        }
                }
        };
        axis(H, h, y0, y1, fy);
        axis(W, w, x0, x1, fx);
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
Constant Folder::evaluate_reduce(const Node &n, const std::vector<bool> &red, const std::vector<int64_t> &s)
{
        const Constant &x = g_.konst(n.in[0]);
        const std::string &op = n.op;
        bool arg = op[0] == 'A', last = n.geti("select_last_index", 0) != 0;
        Constant c;
        c.type = arg ? DType::Int64 : x.type;
        c.shape = s;
        auto xs = strides_of(x.shape);
        // Output elements in the order of the kept axes.
        std::vector<size_t> kept;
        for (size_t i = 0; i < x.shape.size(); i++)
                if (!red[i])
                        kept.push_back(i);
        std::vector<int64_t> kshape;
        for (size_t i : kept)
                kshape.push_back(x.shape[i]);
        int64_t outn = product(kshape), rn = x.elements() / std::max<int64_t>(outn, 1);
        std::vector<size_t> raxes;
        for (size_t i = 0; i < x.shape.size(); i++)
                if (red[i])
                        raxes.push_back(i);
        std::vector<int64_t> rshape;
        for (size_t i : raxes)
                rshape.push_back(x.shape[i]);
        auto ks = strides_of(kshape), rs = strides_of(rshape);
        for (int64_t o = 0; o < outn; o++) {
                int64_t base = 0;
                for (size_t k = 0; k < kept.size(); k++)
                        base += (o / ks[k]) % kshape[k] * xs[kept[k]];
                double acc = op == "ReduceMax" || op == "ArgMax" ? -INFINITY : op == "ReduceMin" || op == "ArgMin" ? INFINITY : 0;
                int64_t best = 0;
                for (int64_t r = 0; r < rn; r++) {
                        int64_t off = base;
                        for (size_t k = 0; k < raxes.size(); k++)
                                off += (r / rs[k]) % rshape[k] * xs[raxes[k]];
                        double v = x.at(size_t(off));
                        if (op == "ReduceMean" || op == "ReduceSum")
                                acc += v;
                        else if ((op == "ReduceMax" || op == "ArgMax") ? (v > acc || (last && v == acc)) : (v < acc || (last && v == acc))) {
                                acc = v;
                                best = r;
                        }
                }
                c.push(arg ? double(best) : op == "ReduceMean" ? acc / double(rn) : acc);
        }
        return c;
}

// Conv and pool output shapes; auto_pad made explicit in n's pads.
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

std::optional<Error> Folder::node(Node &n)
{
        const std::string &op = n.op;
        if (n.out.empty() || n.out[0] < 0)
                return err(-EINVAL, what_ + ": no output");
        std::vector<int64_t> s;

        if (op == "Constant") {
                Constant c;
                if (const Attr *a = n.attr("value"); a && a->kind == Attr::Tensor) {
                        c = *a->t;
                } else if (const Attr *a = n.attr("value_float")) {
                        c.f = {a->f};
                } else if (const Attr *a = n.attr("value_floats")) {
                        c.f = a->floats;
                        c.shape = {int64_t(c.f.size())};
                } else if (const Attr *a = n.attr("value_int")) {
                        c.type = DType::Int64;
                        c.i = {a->i};
                } else if (const Attr *a = n.attr("value_ints")) {
                        c.type = DType::Int64;
                        c.i = a->ints;
                        c.shape = {int64_t(c.i.size())};
                } else {
                        return err(-ENOTSUP, what_ + ": no value attribute of a supported kind");
                }
                set_const(n, std::move(c));
                return std::nullopt;
        }
        if (op == "ConstantOfShape") {
                if (auto e = need(n, 1))
                        return e;
                if (auto e = ints(n, 0, &s))
                        return e;
                for (int64_t d : s)
                        if (d < 0 || d > kMaxElements)
                                return err(-E2BIG, what_ + ": shape " + dims_text(s) + " is invalid");
                if (product(s) > kMaxElements)
                        return err(-E2BIG, what_ + ": shape " + dims_text(s) + " is over the limit");
                Constant c;
                c.shape = s;
                double v = 0;
                if (const Attr *a = n.attr("value"); a && a->t) {
                        c.type = a->t->type;
                        if (a->t->elements() != 1)
                                return err(-EINVAL, what_ + ": value must have one element");
                        v = a->t->at(0);
                }
                if (c.type == DType::Float)
                        c.f.assign(size_t(product(s)), float(v));
                else
                        c.i.assign(size_t(product(s)), int64_t(v));
                set_const(n, std::move(c));
                return std::nullopt;
        }
        if (op == "Shape") {
                if (auto e = need(n, 1))
                        return e;
                const auto &x = in(n, 0).shape;
                int64_t R = int64_t(x.size());
                int64_t start = n.geti("start", 0), end = n.geti("end", R);
                start = std::clamp<int64_t>(start < 0 ? start + R : start, 0, R);
                end = std::clamp<int64_t>(end < 0 ? end + R : end, 0, R);
                Constant c;
                c.type = DType::Int64;
                for (int64_t i = start; i < end; i++)
                        c.i.push_back(x[size_t(i)]);
                c.shape = {int64_t(c.i.size())};
                set_const(n, std::move(c));
                return std::nullopt;
        }
        if (op == "Identity" || op == "Dropout") {
                if (auto e = need(n, 1))
                        return e;
                if (cin(n, 0))
                        set_const(n, g_.konst(n.in[0]));
                else
                        set(n, in(n, 0).shape, in(n, 0).type);
                if (n.out.size() > 1 && n.out[1] >= 0)
                        return err(-ENOTSUP, what_ + ": the mask output of Dropout is not supported");
                return std::nullopt;
        }
        if (op == "Cast") {
                if (auto e = need(n, 1))
                        return e;
                int64_t to = n.geti("to", 1);
                DType t = to == 1 || to == 11 || to == 10 ? DType::Float : to == 9 ? DType::Bool : DType::Int64;
                if (cin(n, 0)) {
                        const Constant &a = g_.konst(n.in[0]);
                        Constant c;
                        c.type = t;
                        c.shape = a.shape;
                        for (int64_t k = 0; k < a.elements(); k++) {
                                double v = a.at(size_t(k));
                                if (t == DType::Float)
                                        c.f.push_back(float(v));
                                else if (t == DType::Bool)
                                        c.i.push_back(v != 0);
                                else
                                        c.i.push_back(int64_t(v));
                        }
                        set_const(n, std::move(c));
                } else {
                        set(n, in(n, 0).shape, t);
                }
                return std::nullopt;
        }
        if (op == "Reshape" || op == "Flatten" || op == "Squeeze" || op == "Unsqueeze") {
                if (auto e = need(n, 1))
                        return e;
                const auto &x = in(n, 0).shape;
                int64_t total = product(x);
                if (op == "Reshape") {
                        if (auto e = need(n, 2))
                                return e;
                        std::vector<int64_t> want;
                        if (auto e = ints(n, 1, &want))
                                return e;
                        int64_t known = 1, infer = -1;
                        for (size_t i = 0; i < want.size(); i++) {
                                if (want[i] == 0 && !n.geti("allowzero", 0)) {
                                        if (i >= x.size())
                                                return err(-EINVAL, what_ + ": 0 copies dimension " + std::to_string(i) + " that the input lacks");
                                        want[i] = x[i];
                                }
                                if (want[i] == -1) {
                                        if (infer >= 0)
                                                return err(-EINVAL, what_ + ": more than one -1 in the shape");
                                        infer = int64_t(i);
                                } else if (want[i] < 0) {
                                        return err(-EINVAL, what_ + ": dimension " + std::to_string(want[i]) + " in the shape");
                                } else {
                                        known *= want[i];
                                }
                        }
                        if (infer >= 0) {
                                if (known == 0 || total % known)
                                        return err(-EINVAL, what_ + ": " + dims_text(x) + " cannot be reshaped to " + dims_text(want));
                                want[size_t(infer)] = total / known;
                        }
                        s = want;
                } else if (op == "Flatten") {
                        int64_t a;
                        if (auto e = axis(n.geti("axis", 1), x.size(), &a, true))
                                return e;
                        int64_t outer = 1;
                        for (int64_t i = 0; i < a; i++)
                                outer *= x[size_t(i)];
                        s = {outer, outer ? total / outer : 0};
                } else {
                        std::vector<int64_t> axes = n.getints("axes");
                        if (has_in(n, 1))
                                if (auto e = ints(n, 1, &axes))
                                        return e;
                        if (op == "Squeeze") {
                                std::vector<bool> drop(x.size(), false);
                                for (int64_t a0 : axes) {
                                        int64_t a;
                                        if (auto e = axis(a0, x.size(), &a))
                                                return e;
                                        if (x[size_t(a)] != 1)
                                                return err(-EINVAL, what_ + ": dimension " + std::to_string(a) + " is not 1");
                                        drop[size_t(a)] = true;
                                }
                                for (size_t i = 0; i < x.size(); i++)
                                        if (!(axes.empty() ? x[i] == 1 : drop[i]))
                                                s.push_back(x[i]);
                        } else {
                                size_t R = x.size() + axes.size();
                                std::vector<bool> ins(R, false);
                                for (int64_t a0 : axes) {
                                        int64_t a;
                                        if (auto e = axis(a0, R - 1, &a, true))
                                                return e;
                                        if (ins[size_t(a)])
                                                return err(-EINVAL, what_ + ": axis " + std::to_string(a) + " repeated");
                                        ins[size_t(a)] = true;
                                }
                                size_t k = 0;
                                for (size_t i = 0; i < R; i++)
                                        s.push_back(ins[i] ? 1 : x[k++]);
                        }
                }
                if (product(s) != total)
                        return err(-EINVAL, what_ + ": " + dims_text(x) + " has " + std::to_string(total) + " elements, " +
                                                    dims_text(s) + " " + std::to_string(product(s)));
                if (cin(n, 0)) {
                        Constant c = g_.konst(n.in[0]);
                        c.shape = s;
                        set_const(n, std::move(c));
                } else {
                        set(n, s, in(n, 0).type);
                }
                return std::nullopt;
        }
        if (op == "Transpose") {
                if (auto e = need(n, 1))
                        return e;
                const auto &x = in(n, 0).shape;
                std::vector<int64_t> perm = n.getints("perm");
                if (perm.empty())
                        for (size_t i = x.size(); i-- > 0;)
                                perm.push_back(int64_t(i));
                std::vector<bool> seen(x.size(), false);
                if (perm.size() != x.size())
                        return err(-EINVAL, what_ + ": perm " + dims_text(perm) + " does not match rank " + std::to_string(x.size()));
                for (int64_t p : perm) {
                        if (p < 0 || p >= int64_t(x.size()) || seen[size_t(p)])
                                return err(-EINVAL, what_ + ": perm " + dims_text(perm) + " is not a permutation");
                        seen[size_t(p)] = true;
                        s.push_back(x[size_t(p)]);
                }
                if (cin(n, 0)) {
                        const Constant &a = g_.konst(n.in[0]);
                        Constant c;
                        c.type = a.type;
                        c.shape = s;
                        auto ist = strides_of(x), ost = strides_of(s);
                        for (int64_t e = 0; e < product(s); e++) {
                                int64_t off = 0;
                                for (size_t i = 0; i < s.size(); i++)
                                        off += (e / ost[i]) % s[i] * ist[size_t(perm[i])];
                                if (a.type == DType::Float)
                                        c.f.push_back(a.f[size_t(off)]);
                                else
                                        c.i.push_back(a.i[size_t(off)]);
                        }
                        set_const(n, std::move(c));
                } else {
                        set(n, s, in(n, 0).type);
                }
                return std::nullopt;
        }
        if (op == "Concat") {
                if (n.in.empty())
                        return err(-EINVAL, what_ + ": no inputs");
                if (auto e = need(n, n.in.size()))
                        return e;
                const auto &x0 = in(n, 0).shape;
                int64_t a;
                if (auto e = axis(n.geti("axis", 0), x0.size(), &a))
                        return e;
                s = x0;
                s[size_t(a)] = 0;
                for (size_t i = 0; i < n.in.size(); i++) {
                        const auto &xi = in(n, i).shape;
                        if (xi.size() != x0.size())
                                return err(-EINVAL, what_ + ": inputs of ranks " + std::to_string(x0.size()) + " and " +
                                                            std::to_string(xi.size()));
                        for (size_t k = 0; k < xi.size(); k++)
                                if (int64_t(k) != a && xi[k] != x0[k])
                                        return err(-EINVAL, what_ + ": shapes " + dims_text(x0) + " and " + dims_text(xi) +
                                                                    " differ outside the axis");
                        s[size_t(a)] += xi[size_t(a)];
                }
                if (all_const(n)) {
                        Constant c;
                        c.type = g_.konst(n.in[0]).type;
                        c.shape = s;
                        int64_t outer = 1;
                        for (int64_t i = 0; i < a; i++)
                                outer *= s[size_t(i)];
                        for (int64_t o = 0; o < outer; o++)
                                for (size_t i = 0; i < n.in.size(); i++) {
                                        const Constant &ci = g_.konst(n.in[i]);
                                        int64_t chunk = outer ? ci.elements() / outer : 0;
                                        for (int64_t k = 0; k < chunk; k++) {
                                                double v = ci.at(size_t(o * chunk + k));
                                                c.push(v);
                                        }
                                }
                        set_const(n, std::move(c));
                } else {
                        set(n, s, in(n, 0).type);
                }
                return std::nullopt;
        }
        if (op == "Gather") {
                if (auto e = need(n, 2))
                        return e;
                const auto &x = in(n, 0).shape;
                int64_t a;
                if (auto e = axis(n.geti("axis", 0), x.size(), &a))
                        return e;
                const auto &is = in(n, 1).shape;
                s.assign(x.begin(), x.begin() + a);
                s.insert(s.end(), is.begin(), is.end());
                s.insert(s.end(), x.begin() + a + 1, x.end());
                if (!all_const(n))
                        return err(-ENOTSUP, what_ + ": Gather of a tensor that is not constant is not supported");
                const Constant &d = g_.konst(n.in[0]), &ix = g_.konst(n.in[1]);
                Constant c;
                c.type = d.type;
                c.shape = s;
                int64_t outer = product({x.begin(), x.begin() + a}), inner = product({x.begin() + a + 1, x.end()});
                for (int64_t o = 0; o < outer; o++)
                        for (int64_t k = 0; k < ix.elements(); k++) {
                                int64_t j = int64_t(ix.at(size_t(k)));
                                if (j < 0)
                                        j += x[size_t(a)];
                                if (j < 0 || j >= x[size_t(a)])
                                        return err(-EINVAL, what_ + ": index " + std::to_string(j) + " is out of range");
                                for (int64_t q = 0; q < inner; q++) {
                                        double v = d.at(size_t((o * x[size_t(a)] + j) * inner + q));
                                        c.push(v);
                                }
                        }
                set_const(n, std::move(c));
                return std::nullopt;
        }
        if (op == "Slice") {
                if (auto e = need(n, 1))
                        return e;
                const auto &x = in(n, 0).shape;
                std::vector<int64_t> starts, ends, axes, steps;
                if (g_.opset < 10) {
                        starts = n.getints("starts");
                        ends = n.getints("ends");
                        axes = n.getints("axes");
                } else {
                        if (auto e = need(n, 3))
                                return e;
                        if (auto e = ints(n, 1, &starts))
                                return e;
                        if (auto e = ints(n, 2, &ends))
                                return e;
                        if (has_in(n, 3))
                                if (auto e = ints(n, 3, &axes))
                                        return e;
                        if (has_in(n, 4))
                                if (auto e = ints(n, 4, &steps))
                                        return e;
                }
                if (axes.empty())
                        for (size_t i = 0; i < starts.size(); i++)
                                axes.push_back(int64_t(i));
                if (steps.empty())
                        steps.assign(starts.size(), 1);
                if (starts.size() != ends.size() || axes.size() != starts.size() || steps.size() != starts.size())
                        return err(-EINVAL, what_ + ": starts, ends, axes and steps differ in length");
                std::vector<int64_t> lo(x.size(), 0), step(x.size(), 1);
                s = x;
                for (size_t i = 0; i < axes.size(); i++) {
                        int64_t a;
                        if (auto e = axis(axes[i], x.size(), &a))
                                return e;
                        int64_t d = x[size_t(a)], st = steps[i];
                        if (st == 0)
                                return err(-EINVAL, what_ + ": step 0");
                        int64_t b = starts[i], en = ends[i];
                        if (b < 0)
                                b += d;
                        if (en < 0)
                                en += d;
                        if (st > 0) {
                                b = std::clamp<int64_t>(b, 0, d);
                                en = std::clamp<int64_t>(en, 0, d);
                                s[size_t(a)] = en > b ? (en - b + st - 1) / st : 0;
                        } else {
                                b = std::clamp<int64_t>(b, -1, d - 1);
                                en = std::clamp<int64_t>(en, -1, d - 1);
                                s[size_t(a)] = b > en ? (b - en - st - 1) / -st : 0;
                        }
                        lo[size_t(a)] = b;
                        step[size_t(a)] = st;
                }
                if (cin(n, 0)) {
                        const Constant &d = g_.konst(n.in[0]);
                        Constant c;
                        c.type = d.type;
                        c.shape = s;
                        auto ist = strides_of(x), ost = strides_of(s);
                        for (int64_t e = 0; e < product(s); e++) {
                                int64_t off = 0;
                                for (size_t i = 0; i < s.size(); i++)
                                        off += (lo[i] + (e / ost[i]) % s[i] * step[i]) * ist[i];
                                double v = d.at(size_t(off));
                                c.push(v);
                        }
                        set_const(n, std::move(c));
                } else {
                        set(n, s, in(n, 0).type);
                }
                return std::nullopt;
        }
        static const std::map<std::string, std::function<double(const std::vector<double> &)>> kBinary = {
                {"Add", [](const std::vector<double> &a) { return a[0] + a[1]; }},
                {"Sub", [](const std::vector<double> &a) { return a[0] - a[1]; }},
                {"Mul", [](const std::vector<double> &a) { return a[0] * a[1]; }},
                {"Div", [](const std::vector<double> &a) { return a[1] != 0 ? a[0] / a[1] : NAN; }},
                {"Max", [](const std::vector<double> &a) { return std::max(a[0], a[1]); }},
                {"Min", [](const std::vector<double> &a) { return std::min(a[0], a[1]); }},
                {"Pow", [](const std::vector<double> &a) { return std::pow(a[0], a[1]); }},
                {"Equal", [](const std::vector<double> &a) { return double(a[0] == a[1]); }},
        };
        if (auto it = kBinary.find(op); it != kBinary.end()) {
                if (auto e = need(n, 2))
                        return e;
                if (auto e = broadcast(n, &s))
                        return e;
                DType t = op == "Equal" ? DType::Bool : in(n, 0).type;
                if (all_const(n)) {
                        bool integer = t != DType::Float;
                        auto f = it->second;
                        set_const(n, elementwise(n, s, t, [&](const std::vector<double> &a) {
                                          double v = f(a);
                                          return integer && op == "Div" ? std::trunc(v) : v;
                                  }));
                } else {
                        set(n, s, t);
                }
                return std::nullopt;
        }
        static const std::map<std::string, std::function<double(double)>> kUnary = {
                {"Relu", [](double x) { return std::max(x, 0.0); }},
                {"Sigmoid", [](double x) { return 1 / (1 + std::exp(-x)); }},
                {"Neg", [](double x) { return -x; }},
                {"Sqrt", [](double x) { return std::sqrt(x); }},
                {"Floor", [](double x) { return std::floor(x); }},
                {"Ceil", [](double x) { return std::ceil(x); }},
                {"Exp", [](double x) { return std::exp(x); }},
                {"Tanh", [](double x) { return std::tanh(x); }},
                {"Reciprocal", [](double x) { return 1 / x; }},
                {"Abs", [](double x) { return std::fabs(x); }},
                {"HardSwish", [](double x) { return x * std::clamp(x + 3, 0.0, 6.0) / 6; }},
        };
        if (auto it = kUnary.find(op); it != kUnary.end()) {
                if (auto e = need(n, 1))
                        return e;
                if (cin(n, 0)) {
                        auto f = it->second;
                        set_const(n, elementwise(n, in(n, 0).shape, in(n, 0).type, [&](const std::vector<double> &a) { return f(a[0]); }));
                } else {
                        set(n, in(n, 0).shape, in(n, 0).type);
                }
                return std::nullopt;
        }
        if (op == "Clip" || op == "HardSigmoid" || op == "Softmax" || op == "LeakyRelu" || op == "BatchNormalization" ||
            op == "LogSoftmax" || op == "PRelu") {
                if (auto e = need(n, 1))
                        return e;
                if (op == "Clip")
                        for (size_t i = 1; i < 3 && i < n.in.size(); i++)
                                if (n.in[i] >= 0 && !g_.is_const(n.in[i]))
                                        return err(-ENOTSUP, what_ + ": min and max must be constants");
                if (op == "BatchNormalization") {
                        if (auto e = need(n, 5))
                                return e;
                        for (size_t i = 1; i < 5; i++)
                                if (!cin(n, i) || g_.konst(n.in[i]).elements() != in(n, 0).shape.at(1))
                                        return err(-EINVAL, what_ + ": scale, bias, mean and variance must be constants of " +
                                                                    std::to_string(in(n, 0).shape.at(1)) + " channels");
                        for (size_t o = 1; o < n.out.size(); o++)
                                if (n.out[o] >= 0)
                                        return err(-ENOTSUP, what_ + ": training outputs are not supported");
                }
                if (in(n, 0).shape.empty() && op == "BatchNormalization")
                        return err(-EINVAL, what_ + ": input of rank 0");
                if (all_const(n) && op != "PRelu") {
                        set_const(n, evaluate_unary_like(n));
                        return std::nullopt;
                }
                set(n, in(n, 0).shape, in(n, 0).type);
                return std::nullopt;
        }
        if (op == "Split") {
                if (auto e = need(n, 1))
                        return e;
                const auto &x = in(n, 0).shape;
                int64_t a;
                if (auto e = axis(n.geti("axis", 0), x.size(), &a))
                        return e;
                std::vector<int64_t> parts = n.getints("split");
                if (n.in.size() > 1 && n.in[1] >= 0)
                        if (auto e = ints(n, 1, &parts))
                                return e;
                size_t k = n.out.size();
                if (parts.empty()) {
                        if (!k || x[size_t(a)] % int64_t(k))
                                return err(-EINVAL, what_ + ": " + std::to_string(x[size_t(a)]) + " does not split in " + std::to_string(k));
                        parts.assign(k, x[size_t(a)] / int64_t(k));
                }
                int64_t total = 0;
                for (int64_t p : parts) {
                        if (p < 0)
                                return err(-EINVAL, what_ + ": a negative part");
                        total += p;
                }
                if (parts.size() != k || total != x[size_t(a)])
                        return err(-EINVAL, what_ + ": parts " + dims_text(parts) + " do not split " + std::to_string(x[size_t(a)]) +
                                                    " into " + std::to_string(k) + " outputs");
                int64_t outer = product({x.begin(), x.begin() + a}), inner = product({x.begin() + a + 1, x.end()}), base = 0;
                for (size_t o = 0; o < k; o++) {
                        if (n.out[o] < 0) {
                                base += parts[o];
                                continue;
                        }
                        std::vector<int64_t> so = x;
                        so[size_t(a)] = parts[o];
                        if (cin(n, 0)) {
                                const Constant &d = g_.konst(n.in[0]);
                                Constant c;
                                c.type = d.type;
                                c.shape = so;
                                for (int64_t i = 0; i < outer; i++)
                                        for (int64_t j = 0; j < parts[o] * inner; j++)
                                                c.push(d.at(size_t((i * x[size_t(a)] + base) * inner + j)));
                                set_const(n, std::move(c), o);
                        } else {
                                set(n, so, in(n, 0).type, o);
                        }
                        base += parts[o];
                }
                return std::nullopt;
        }
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
        if (op == "ArgMax" || op == "ArgMin" || op == "ReduceMean" || op == "ReduceSum" || op == "ReduceMax" || op == "ReduceMin") {
                if (auto e = need(n, 1))
                        return e;
                const auto &x = in(n, 0).shape;
                std::vector<int64_t> axes;
                bool arg = op[0] == 'A';
                if (arg) {
                        axes = {n.geti("axis", 0)};
                } else {
                        axes = n.getints("axes");
                        if (n.in.size() > 1 && n.in[1] >= 0)
                                if (auto e = ints(n, 1, &axes))
                                        return e;
                }
                std::vector<bool> red(x.size(), axes.empty() && !arg);
                for (int64_t a0 : axes) {
                        int64_t a;
                        if (auto e = axis(a0, x.size(), &a))
                                return e;
                        red[size_t(a)] = true;
                }
                bool keep = n.geti("keepdims", 1) != 0;
                for (size_t i = 0; i < x.size(); i++)
                        if (!red[i])
                                s.push_back(x[i]);
                        else if (keep)
                                s.push_back(1);
                if (cin(n, 0))
                        set_const(n, evaluate_reduce(n, red, s));
                else
                        set(n, s, arg ? DType::Int64 : in(n, 0).type);
                return std::nullopt;
        }
        if (op == "Pad") {
                if (auto e = need(n, 1))
                        return e;
                const auto &x = in(n, 0).shape;
                std::vector<int64_t> pads = n.getints("pads");
                if (g_.opset >= 11) {
                        if (auto e = need(n, 2))
                                return e;
                        if (auto e = ints(n, 1, &pads))
                                return e;
                        if (n.in.size() > 3 && n.in[3] >= 0)
                                return err(-ENOTSUP, what_ + ": the axes input is not supported");
                }
                if (pads.size() != 2 * x.size())
                        return err(-EINVAL, what_ + ": " + std::to_string(pads.size()) + " pads for rank " + std::to_string(x.size()));
                s = x;
                for (size_t i = 0; i < x.size(); i++) {
                        if (pads[i] < -x[i] || pads[x.size() + i] < -x[i] || pads[i] > 4096 || pads[x.size() + i] > 4096)
                                return err(-EINVAL, what_ + ": pads " + dims_text(pads) + " out of range");
                        s[i] += pads[i] + pads[x.size() + i];
                        if (s[i] <= 0)
                                return err(-EINVAL, what_ + ": pads " + dims_text(pads) + " leave nothing");
                }
                Attr a;
                a.kind = Attr::Ints;
                a.ints = pads;
                n.attrs["pads"] = a;  // the attribute form, whatever the opset
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
        return err(-ENOTSUP, what_ + ": op " + op + " is not supported");
}

} // namespace

std::optional<Error> infer_and_fold(Graph *g)
{
        return Folder(g).run();
}

std::optional<Error> evaluate(Graph *g, Node *n)
{
        Folder f(g);
        return f.one(*n);
}

} // namespace onnxfe

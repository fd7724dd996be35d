// The folder, arithmetic: elementwise binary and unary ops, Clip and the
// activations, BatchNormalization, Softmax, ArgMax/ArgMin and Reduce*.
#include "fold.h"

namespace onnxfe {

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
        if (op == "Clip")
                (void)clip_bounds(g_, n, &lo, &hi);
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

namespace {

const std::map<std::string, BinaryFn> kBinary = {
        {"Add", [](const double *a) { return a[0] + a[1]; }},
        {"Sub", [](const double *a) { return a[0] - a[1]; }},
        {"Mul", [](const double *a) { return a[0] * a[1]; }},
        {"Div", [](const double *a) { return a[1] != 0 ? a[0] / a[1] : NAN; }},
        {"Max", [](const double *a) { return std::max(a[0], a[1]); }},
        {"Min", [](const double *a) { return std::min(a[0], a[1]); }},
        {"Pow", [](const double *a) { return std::pow(a[0], a[1]); }},
        {"Equal", [](const double *a) { return double(a[0] == a[1]); }},
};

} // namespace

BinaryFn binary_fn(const std::string &op)
{
        auto it = kBinary.find(op);
        return it == kBinary.end() ? nullptr : it->second;
}

std::optional<Error> Folder::math_op(Node &n, bool *handled)
{
        const std::string &op = n.op;
        std::vector<int64_t> s;
        *handled = true;
        if (auto it = kBinary.find(op); it != kBinary.end()) {
                if (auto e = need(n, 2))
                        return e;
                if (n.in.size() != 2)  // Max and Min of more than two are not taken either
                        return err(n.op == "Max" || n.op == "Min" ? -ENOTSUP : -EINVAL,
                                   what_ + ": " + std::to_string(n.in.size()) + " inputs, 2 are taken");
                if (auto e = broadcast(n, &s))
                        return e;
                DType t = op == "Equal" ? DType::Bool : in(n, 0).type;
                if (all_const(n)) {
                        const bool int_div = t != DType::Float && op == "Div";
                        auto f = it->second;
                        set_const(n, elementwise(n, s, t, [&](const double *a) {
                                          double v = f(a);
                                          return int_div ? std::trunc(v) : v;
                                  }));
                } else {
                        set(n, s, t);
                }
                return std::nullopt;
        }
        static const std::map<std::string, double (*)(double)> kUnary = {
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
                if (n.in.size() != 1)
                        return err(-EINVAL, what_ + ": " + std::to_string(n.in.size()) + " inputs, it takes 1");
                if (cin(n, 0)) {
                        auto f = it->second;
                        set_const(n, elementwise(n, in(n, 0).shape, in(n, 0).type, [&](const double *a) { return f(a[0]); }));
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
        *handled = false;
        return std::nullopt;
}

} // namespace onnxfe

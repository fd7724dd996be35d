// The folder (not installed): shapes of every value and the value of every
// node whose inputs are constant, one family of ops per file: fold_data.cpp
// (constants, shapes, layout and data movement), fold_math.cpp
// (elementwise, activations, softmax, reductions), fold_nn.cpp
// (convolutions, pools, matrix products, Resize).  The same code computes
// host nodes at run time (lower.cpp).
#pragma once

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "ir.h"

namespace onnxfe {

inline Error err(int code, const std::string &m) { return Error{code, m}; }

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
                for (int64_t k = 0; k < c.elements(); k++) {
                        if (c.type != DType::Float) {
                                r->push_back(c.i[size_t(k)]);
                                continue;
                        }
                        // A float tensor where integers belong: whole values only.
                        const double v = c.at(size_t(k));
                        if (!(v >= -9.2e18 && v <= 9.2e18) || v != std::trunc(v))
                                return err(-EINVAL, what_ + ": input " + std::to_string(i) + " holds " + std::to_string(v) +
                                                            ", not an integer");
                        r->push_back(int64_t(v));
                }
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

        // Elementwise over broadcast constants: each input's offset kept by
        // an odometer over the output's axes (stride 0 where it broadcasts).
        template <class F> Constant elementwise(const Node &n, const std::vector<int64_t> &shape, DType t, F f)
        {
                Constant c;
                c.type = t;
                c.shape = shape;
                const int64_t total = product(shape);
                const size_t R = shape.size(), ni = n.in.size();
                std::vector<const Constant *> a(ni);
                std::vector<int64_t> bst(ni * R, 0);  // input i's step along output axis k
                for (size_t i = 0; i < ni; i++) {
                        a[i] = &g_.konst(n.in[i]);
                        std::vector<int64_t> ast = strides_of(a[i]->shape);
                        for (size_t k = 0; k < a[i]->shape.size(); k++)
                                bst[i * R + R - a[i]->shape.size() + k] = a[i]->shape[k] == 1 ? 0 : ast[k];
                }
                (t == DType::Float ? c.f.reserve(size_t(total)) : c.i.reserve(size_t(total)));
                if (total == 0)
                        return c;
                // Rows along the last axis; the odometer moves between rows.
                const int64_t len = R ? shape[R - 1] : 1;
                std::vector<int64_t> idx(R, 0), off(ni, 0);
                std::vector<double> args(ni);
                for (int64_t e = 0; e < total; e += len) {
                        for (int64_t j = 0; j < len; j++) {
                                for (size_t i = 0; i < ni; i++)
                                        args[i] = a[i]->at(size_t(off[i] + (R ? j * bst[i * R + R - 1] : 0)));
                                double v = f(static_cast<const double *>(args.data()));
                                if (t == DType::Float)
                                        c.f.push_back(float(v));
                                else
                                        c.i.push_back(int64_t(v));
                        }
                        for (size_t k = R ? R - 1 : 0; k-- > 0;) {
                                for (size_t i = 0; i < ni; i++)
                                        off[i] += bst[i * R + k];
                                if (++idx[k] < shape[k])
                                        break;
                                for (size_t i = 0; i < ni; i++)
                                        off[i] -= bst[i * R + k] * shape[k];
                                idx[k] = 0;
                        }
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
        // One family of ops each (fold_data.cpp, fold_math.cpp, fold_nn.cpp):
        // *handled is false when n is none of theirs.
        std::optional<Error> data_op(Node &n, bool *handled);
        std::optional<Error> math_op(Node &n, bool *handled);
        std::optional<Error> nn_op(Node &n, bool *handled);

        Graph &g_;
        std::string what_;
};

// Clip, HardSigmoid, LeakyRelu, BatchNormalization, Softmax and

} // namespace onnxfe

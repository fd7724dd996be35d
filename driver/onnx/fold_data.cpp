// The folder, data: Constant, ConstantOfShape, Shape, Identity, Cast, the
// reshapes, Transpose, Concat, Gather, Slice, Split and Pad.
#include "fold.h"

namespace onnxfe {

std::optional<Error> Folder::data_op(Node &n, bool *handled)
{
        const std::string &op = n.op;
        std::vector<int64_t> s;
        *handled = true;
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
                const Constant &d = g_.konst(n.in[0]);
                Constant c;
                c.type = d.type;
                c.shape = s;
                // The indices as integers, once (a float index is refused as ints() refuses it).
                std::vector<int64_t> idx;
                if (auto e = ints(n, 1, &idx))
                        return e;
                int64_t outer = product({x.begin(), x.begin() + a}), inner = product({x.begin() + a + 1, x.end()});
                for (int64_t o = 0; o < outer; o++)
                        for (int64_t j : idx) {
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
                // The slice made explicit for whoever reads it later (the
                // lowering): a start and a step per axis, in range.
                Attr sa, sp;
                sa.kind = sp.kind = Attr::Ints;
                sa.ints = lo;
                sp.ints = step;
                n.attrs["_starts"] = sa;
                n.attrs["_steps"] = sp;
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
        *handled = false;
        return std::nullopt;
}

} // namespace onnxfe

// Rewrites that recognise what exporters write out op by op:
// HardSigmoid as Clip(x + 3, 0, 6) / 6, HardSwish as x * HardSigmoid(x) or
// x * Clip(x + 3, 0, 6) / 6 (either operand order, / 6 or * 1/6); a lone
// BatchNormalization as a per-channel scale and shift; and the arithmetic
// on a model input by per-channel constants ((x - mean) / std) taken into
// the host's conversion at the boundary.
#include <cmath>

#include "lower.h"

namespace onnxfe {

namespace {

bool near(double a, double b) { return std::fabs(a - b) <= 1e-5 * std::max(1.0, std::fabs(b)); }

bool scalar(const Graph &g, int v, double *ret)
{
        if (!g.is_const(v) || g.konst(v).elements() != 1)
                return false;
        *ret = g.konst(v).at(0);
        return true;
}

// v = Clip(Add(x, 3), 0, 6), each step read only by the next: x, or -1.
// The Clip and Add nodes in *clip and *add.
int relu6_of_x_plus_3(const Graph &g, int v, int *clip, int *add)
{
        const Value &cv = g.values[size_t(v)];
        if (cv.producer < 0)
                return -1;
        const Node &c = g.nodes[size_t(cv.producer)];
        double lo, hi, three;
        if (c.dead || c.op != "Clip" || !clip_bounds(g, c, &lo, &hi) || lo != 0 || hi != 6 || c.in.empty())
                return -1;
        const Value &av = g.values[size_t(c.in[0])];
        if (av.producer < 0 || g.single_consumer(c.in[0]) != cv.producer)
                return -1;
        const Node &a = g.nodes[size_t(av.producer)];
        if (a.dead || a.op != "Add" || a.in.size() != 2)
                return -1;
        int x = scalar(g, a.in[1], &three) ? a.in[0] : scalar(g, a.in[0], &three) ? a.in[1] : -1;
        if (x < 0 || !near(three, 3) || g.is_const(x))
                return -1;
        *clip = cv.producer;
        *add = av.producer;
        return x;
}

// n divides by 6 (Div by 6, Mul by 1/6): the operand divided, or -1.
int divided_by_6(const Graph &g, const Node &n)
{
        double k;
        if (n.op == "Div" && n.in.size() == 2 && scalar(g, n.in[1], &k) && near(k, 6))
                return n.in[0];
        if (n.op == "Mul" && n.in.size() == 2) {
                if (scalar(g, n.in[1], &k) && near(k, 1.0 / 6))
                        return n.in[0];
                if (scalar(g, n.in[0], &k) && near(k, 1.0 / 6))
                        return n.in[1];
        }
        return -1;
}

void become(Node &n, const std::string &op, int x)
{
        n.op = op;
        n.in = {x};
        n.attrs.clear();
}

void hard_activations(Graph &g, Rewrites *done)
{
        for (size_t k = 0; k < g.nodes.size(); k++) {
                Node &n = g.nodes[k];
                if (n.dead)
                        continue;
                int clip, add;
                // x * Clip(x + 3, 0, 6) / 6, the product first.
                int prod = divided_by_6(g, n);
                if (prod >= 0 && g.values[size_t(prod)].producer >= 0 && g.single_consumer(prod) == int(k)) {
                        Node &m = g.nodes[size_t(g.values[size_t(prod)].producer)];
                        if (!m.dead && m.op == "Mul" && m.in.size() == 2) {
                                for (int side = 0; side < 2; side++) {
                                        int x = relu6_of_x_plus_3(g, m.in[size_t(side)], &clip, &add);
                                        if (x >= 0 && x == m.in[size_t(1 - side)] &&
                                            g.single_consumer(m.in[size_t(side)]) == g.values[size_t(prod)].producer) {
                                                become(n, "HardSwish", x);
                                                m.dead = g.nodes[size_t(clip)].dead = g.nodes[size_t(add)].dead = true;
                                                done->hardswish_matched++;
                                                break;
                                        }
                                }
                        }
                        if (n.op == "HardSwish")
                                continue;
                }
                // Clip(x + 3, 0, 6) / 6: a HardSigmoid.
                int q = divided_by_6(g, n);
                if (q >= 0 && g.single_consumer(q) == int(k)) {
                        int x = relu6_of_x_plus_3(g, q, &clip, &add);
                        if (x >= 0) {
                                become(n, "HardSigmoid", x);
                                Attr a;
                                a.kind = Attr::Float;
                                a.f = 1.0f / 6;
                                n.attrs["alpha"] = a;
                                a.f = 0.5f;
                                n.attrs["beta"] = a;
                                g.nodes[size_t(clip)].dead = g.nodes[size_t(add)].dead = true;
                                done->hardsigmoid_matched++;
                                continue;
                        }
                }
        }
        // x * HardSigmoid(x) at 1/6, 1/2: a HardSwish.
        for (size_t k = 0; k < g.nodes.size(); k++) {
                Node &m = g.nodes[k];
                if (m.dead || m.op != "Mul" || m.in.size() != 2)
                        continue;
                for (int side = 0; side < 2; side++) {
                        int h = m.in[size_t(side)], x = m.in[size_t(1 - side)];
                        int p = h >= 0 ? g.values[size_t(h)].producer : -1;
                        if (p < 0 || g.single_consumer(h) != int(k))
                                continue;
                        Node &hs = g.nodes[size_t(p)];
                        if (hs.dead || hs.op != "HardSigmoid" || hs.in[0] != x || !near(hs.getf("alpha", 0.2f), 1.0 / 6) ||
                            !near(hs.getf("beta", 0.5f), 0.5))
                                continue;
                        become(m, "HardSwish", x);
                        hs.dead = true;
                        done->hardswish_matched++;
                        break;
                }
        }
}

// A lone BatchNormalization of a 4-D tensor: Mul and Add by per-channel
// constants, which lower as one depthwise 1x1 layer.
void lone_batchnorm(Graph &g, Rewrites *done)
{
        for (auto &n : g.nodes) {
                if (n.dead || n.op != "BatchNormalization" || g.values[size_t(n.in[0])].shape.size() != 4)
                        continue;
                const auto &gamma = g.konst(n.in[1]), &beta = g.konst(n.in[2]), &mean = g.konst(n.in[3]), &var = g.konst(n.in[4]);
                float eps = n.getf("epsilon", 1e-5f);
                Attr mul, add;
                mul.kind = add.kind = Attr::Floats;
                for (int64_t c = 0; c < gamma.elements(); c++) {
                        float s = float(gamma.at(size_t(c)) / std::sqrt(var.at(size_t(c)) + double(eps)));
                        mul.floats.push_back(s);
                        add.floats.push_back(float(beta.at(size_t(c)) - mean.at(size_t(c)) * double(s)));
                }
                int x = n.in[0];
                n.op = "ChannelAffine";
                n.in = {x};
                n.attrs.clear();
                n.attrs["mul"] = mul;
                n.attrs["add"] = add;
                done->batchnorm_alone++;
        }
}

// (x - mean) / std and kin on an NCHW model input: into the conversion.
void input_affine(Graph &g, Rewrites *done)
{
        for (int v : g.inputs) {
                const auto &s = g.values[size_t(v)].shape;
                if (s.size() != 4)
                        continue;
                int64_t C = s[1];
                std::vector<float> mul(size_t(C), 1.0f), add(size_t(C), 0.0f);
                bool any = false;
                for (;;) {
                        int k = g.single_consumer(v);
                        if (k < 0)
                                break;
                        Node &n = g.nodes[size_t(k)];
                        if (n.in.size() != 2 || n.out.size() != 1 || g.is_output(n.out[0]))
                                break;
                        bool first = n.in[0] == v;
                        std::vector<float> c = per_channel(g, first ? n.in[1] : n.in[0], C);
                        if (c.empty() || g.values[size_t(n.out[0])].shape != s)
                                break;
                        bool ok = true;
                        for (int64_t i = 0; i < C; i++) {
                                float a = c[size_t(i)];
                                float &m = mul[size_t(i)], &b = add[size_t(i)];
                                if (n.op == "Mul") m *= a, b *= a;
                                else if (n.op == "Add") b += a;
                                else if (n.op == "Sub" && first) b -= a;
                                else if (n.op == "Sub") m = -m, b = a - b;
                                else if (n.op == "Div" && first && a != 0) m /= a, b /= a;
                                else ok = false;
                        }
                        if (!ok)
                                break;
                        // The node's readers read the input instead.
                        int out = n.out[0];
                        for (auto &r : g.nodes)
                                for (int &in : r.in)
                                        if (in == out)
                                                in = v;
                        n.dead = true;
                        any = true;
                        done->input_ops_folded++;
                }
                if (any)
                        g.input_affine[v] = {mul, add};
        }
}

} // namespace

// Per-channel values of a constant that broadcasts over [N, C, H, W] along
// C only (or is one value): C of them, or empty.
std::vector<float> per_channel(const Graph &g, int v, int64_t C)
{
        if (!g.is_const(v))
                return {};
        const Constant &k = g.konst(v);
        std::vector<int64_t> s = k.shape;
        while (s.size() < 4)
                s.insert(s.begin(), 1);
        if (s.size() != 4 || s[0] != 1 || s[2] != 1 || s[3] != 1 || (s[1] != 1 && s[1] != C))
                return {};
        std::vector<float> r(static_cast<size_t>(C));
        for (int64_t c = 0; c < C; c++)
                r[size_t(c)] = float(k.at(k.elements() == 1 ? 0 : size_t(c)));
        return r;
}

// Pad with zeros on H and W only, read only by a Conv: into the Conv's pads.
void fold_pads(Graph &g, Rewrites *done)
{
        for (auto &n : g.nodes) {
                if (n.dead || n.op != "Pad" || n.gets("mode", "constant") != "constant")
                        continue;
                double value = 0;
                if (g.opset >= 11 && n.in.size() > 2 && n.in[2] >= 0 && !scalar(g, n.in[2], &value))
                        continue;
                if (g.opset < 11)
                        value = n.getf("value", 0.0f);
                auto pads = n.getints("pads");
                if (value != 0 || pads.size() != 8 || pads[0] || pads[1] || pads[4] || pads[5])
                        continue;
                bool negative = false;
                for (int64_t p : pads)
                        negative |= p < 0;
                int c = g.single_consumer(n.out[0]);
                if (negative || c < 0 || g.nodes[size_t(c)].op != "Conv" || g.nodes[size_t(c)].in[0] != n.out[0])
                        continue;
                Node &conv = g.nodes[size_t(c)];
                auto cp = conv.getints("pads", {0, 0, 0, 0});
                // ONNX pads: [x1_begin, x2_begin, x1_end, x2_end]; Pad's: per axis begins, then ends.
                cp[0] += pads[2], cp[1] += pads[3], cp[2] += pads[6], cp[3] += pads[7];
                Attr a;
                a.kind = Attr::Ints;
                a.ints = cp;
                conv.attrs["pads"] = a;
                conv.in[0] = n.in[0];
                n.dead = true;
                done->pads_folded++;
        }
}

void recognise(Graph *g, Rewrites *done)
{
        fold_pads(*g, done);
        input_affine(*g, done);
        hard_activations(*g, done);
        lone_batchnorm(*g, done);
}

} // namespace onnxfe

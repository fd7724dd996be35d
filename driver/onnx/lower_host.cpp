// Host nodes: what the device cannot run, evaluated on the CPU inside the
// run by the folder's code (fold.h) between device segments.
#include "lowerer.h"
#include "model.h"

namespace onnxfe {

namespace {

// The elementwise ops a model's host step is made of (M-LSD's peak mask:
// Equal, Cast, Mul), on float inputs of the output's own shape: computed
// in one loop with the folder's own function of the op (in double, then
// float; Cast to bool as 0 or 1), without building its constants.
bool fast_elementwise(const HostNode &h, const float *const *inputs, float *output)
{
        const Node &n = h.node;
        const BinaryFn f = binary_fn(n.op);
        const int64_t to = n.op == "Cast" ? n.geti("to", 1) : 0;
        const bool cast = n.op == "Cast" && (to == 1 || to == 9);
        if ((!f && !cast) || n.in.size() != (f ? 2u : 1u) || h.out != 0)
                return false;
        const Value &y = h.local.values[size_t(n.out[0])];
        static thread_local std::vector<float> rows[2], out;
        for (size_t i = 0; i < n.in.size(); i++) {
                const Value &v = h.local.values[size_t(n.in[i])];
                // (A Bool input, Equal's output, reaches a Cast as floats 0 and 1.)
                if (h.arg[i] < 0 || !(v.type == DType::Float || (cast && v.type == DType::Bool)) || v.shape != y.shape)
                        return false;
        }
        for (size_t i = 0; i < n.in.size(); i++) {
                const View &vw = h.in_views[size_t(h.arg[i])];
                rows[i].resize(size_t(vw.elements()));
                from_device(vw, inputs[h.arg[i]], rows[i].data());
        }
        const size_t N = size_t(h.out_view.elements());
        out.resize(N);
        const float *a = rows[0].data(), *b = rows[1].data();
        float *o = out.data();
        if (cast) {
                for (size_t e = 0; e < N; e++)
                        o[e] = to == 1 ? a[e] : float(a[e] != 0.0f);
        } else {
                for (size_t e = 0; e < N; e++) {
                        const double args[2] = {double(a[e]), double(b[e])};
                        o[e] = float(f(args));
                }
        }
        h.out_view.each_run([&](int64_t e, int64_t off, int64_t len, int64_t step) {
                for (int64_t k = 0; k < len; k++)
                        output[off + k * step] = o[e + k];
        });
        return true;
}

} // namespace

// The host function of every host node: the device tensors gathered into
// the node's inputs, the op evaluated, the output scattered to its layout.
int run_host_node(void *user, const float *const *inputs, const npu_host_shape *, unsigned count, float *output)
{
        HostNode &h = *static_cast<HostNode *>(user);
        if (count != h.in_views.size())
                return -EINVAL;
        if (fast_elementwise(h, inputs, output))
                return 0;
        for (size_t i = 0; i < h.node.in.size(); i++) {
                if (h.arg[i] < 0)
                        continue;
                const View &v = h.in_views[size_t(h.arg[i])];
                const float *src = inputs[h.arg[i]];
                Constant c;
                c.type = DType::Float;
                c.shape = v.shape;
                c.f.resize(size_t(v.elements()));
                from_device(v, src, c.f.data());
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

} // namespace onnxfe

// Reading an .onnx file with the ONNX protobuf classes into the frontend's
// graph: opsets, initializers (raw, typed and external data), inputs,
// nodes sorted topologically, metadata.  Every refusal names what was wrong.
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <climits>
#include <cmath>
#include <cstring>
#include <fstream>
#include <set>
#include <sstream>

#include <google/protobuf/io/coded_stream.h>
#include <google/protobuf/io/zero_copy_stream_impl_lite.h>
#include <onnx/onnx_pb.h>

#include "common/unique_fd.h"
#include "proto.h"

namespace onnxfe {

int64_t Constant::elements() const { return product(shape); }

std::string dims_text(const std::vector<int64_t> &d)
{
        std::string s = "[";
        for (size_t i = 0; i < d.size(); i++)
                s += (i ? ", " : "") + std::to_string(d[i]);
        return s + "]";
}

std::vector<int64_t> strides_of(const std::vector<int64_t> &s)
{
        std::vector<int64_t> st(s.size(), 1);
        for (size_t i = s.size(); i-- > 1;)
                st[i - 1] = st[i] * s[i];
        return st;
}

std::string Node::label(const Graph &g) const
{
        if (!name.empty())
                return name;
        return op + (out.empty() || out[0] < 0 ? "" : " -> " + g.values[size_t(out[0])].name);
}

int Graph::value(const std::string &name)
{
        auto it = by_name.find(name);
        if (it != by_name.end())
                return it->second;
        values.push_back(Value{});
        values.back().name = name;
        int v = int(values.size() - 1);
        by_name[name] = v;
        return v;
}

std::vector<int> Graph::consumers(int v) const
{
        std::vector<int> r;
        for (size_t n = 0; n < nodes.size(); n++) {
                if (nodes[n].dead)
                        continue;
                for (int x : nodes[n].in)
                        if (x == v) {
                                r.push_back(int(n));
                                break;
                        }
        }
        return r;
}

int Graph::single_consumer(int v) const
{
        if (is_output(v))
                return -1;
        auto c = consumers(v);
        return c.size() == 1 ? c[0] : -1;
}

bool clip_bounds(const Graph &g, const Node &n, double *lo, double *hi)
{
        *lo = -INFINITY, *hi = INFINITY;
        if (g.opset < 11) {
                *lo = n.getf("min", -INFINITY);
                *hi = n.getf("max", INFINITY);
                return true;
        }
        for (size_t i = 1; i < 3 && i < n.in.size(); i++) {
                if (n.in[i] < 0)
                        continue;
                if (!g.is_const(n.in[i]) || g.konst(n.in[i]).elements() != 1)
                        return false;
                (i == 1 ? *lo : *hi) = g.konst(n.in[i]).at(0);
        }
        return true;
}

bool Graph::is_output(int v) const
{
        for (int o : outputs)
                if (o == v)
                        return true;
        return false;
}

namespace {

Error err(int code, const std::string &m) { return Error{code, m}; }

DType value_type(int elem, bool *ok)
{
        *ok = true;
        switch (elem) {
        case onnx::TensorProto::FLOAT:
        case onnx::TensorProto::DOUBLE:
        case onnx::TensorProto::FLOAT16: return DType::Float;
        case onnx::TensorProto::BOOL: return DType::Bool;
        case onnx::TensorProto::INT64:
        case onnx::TensorProto::INT32:
        case onnx::TensorProto::INT8:
        case onnx::TensorProto::UINT8: return DType::Int64;
        default: *ok = false; return DType::Float;
        }
}

} // namespace

std::optional<Error> load_bytes(const std::string &bytes, const std::string &dir, Graph *g)
{
        onnx::ModelProto m;
        google::protobuf::io::ArrayInputStream ais(bytes.data(), int(std::min<size_t>(bytes.size(), INT_MAX)));
        google::protobuf::io::CodedInputStream cis(&ais);
        cis.SetTotalBytesLimit(INT_MAX);
        if (bytes.size() > INT_MAX || !m.ParseFromCodedStream(&cis) || !cis.ConsumedEntireMessage())
                return err(-EPROTO, "not an ONNX model: the file is truncated or is not protobuf");
        if (!m.has_graph() || m.ir_version() <= 0)
                return err(-EPROTO, "not an ONNX model: no graph or no IR version");
        if (m.ir_version() > onnx::IR_VERSION)
                return err(-ENOTSUP, "IR version " + std::to_string(m.ir_version()) + " is newer than this frontend reads (" +
                                             std::to_string(int(onnx::IR_VERSION)) + ")");
        for (const auto &o : m.opset_import()) {
                if (o.domain().empty() || o.domain() == "ai.onnx") {
                        if (o.version() < 7 || o.version() > 21)
                                return err(-ENOTSUP, "opset " + std::to_string(o.version()) +
                                                             " of the default domain is not supported (7 to 21 are)");
                        g->opset = o.version();
                }
        }
        if (!g->opset)
                return err(-ENOTSUP, "the model imports no opset of the default ONNX domain");
        for (const auto &p : m.metadata_props())
                g->metadata[p.key()] = p.value();

        const onnx::GraphProto &gp = m.graph();
        if (size_t(gp.node_size()) > kMaxNodes)
                return err(-E2BIG, std::to_string(gp.node_size()) + " nodes is over the limit of " + std::to_string(kMaxNodes));
        for (const auto &t : gp.initializer()) {
                if (t.name().empty())
                        return err(-EINVAL, "an initializer has no name");
                Constant c;
                if (auto e = read_tensor(t, dir, "initializer '" + t.name() + "'", &c))
                        return e;
                int v = g->value(t.name());
                g->values[size_t(v)].type = c.type;
                g->values[size_t(v)].shape = c.shape;
                g->values[size_t(v)].has_shape = true;
                g->values[size_t(v)].konst = std::move(c);
        }
        for (const auto &in : gp.input()) {
                int v = g->value(in.name());
                Value &val = g->values[size_t(v)];
                if (val.konst)
                        continue;  // an initializer listed as an input (IR < 4)
                if (!in.type().has_tensor_type())
                        return err(-ENOTSUP, "input '" + in.name() + "' is not a tensor");
                bool ok;
                val.type = value_type(in.type().tensor_type().elem_type(), &ok);
                if (!ok)
                        return err(-ENOTSUP, "input '" + in.name() + "' is of element type " +
                                                     std::to_string(in.type().tensor_type().elem_type()) + ", which is not read");
                g->input_elem_types[v] = in.type().tensor_type().elem_type();
                val.shape.clear();
                if (in.type().tensor_type().shape().dim_size() > int(kMaxRank))
                        return err(-E2BIG, "input '" + in.name() + "': rank over " + std::to_string(kMaxRank));
                bool dynamic = !in.type().tensor_type().has_shape();
                if (dynamic)
                        return err(-ENOTSUP, "input '" + in.name() + "' declares no shape");
                for (const auto &d : in.type().tensor_type().shape().dim()) {
                        if (d.has_dim_value() && d.dim_value() > kMaxDim)
                                return err(-E2BIG, "input '" + in.name() + "': dimension " + std::to_string(d.dim_value()) +
                                                           " is over the limit of " + std::to_string(kMaxDim));
                        if (d.has_dim_value() && d.dim_value() > 0)
                                val.shape.push_back(d.dim_value());
                        else {
                                val.shape.push_back(-1);  // resolved by set_input_shapes
                                dynamic = true;
                        }
                }
                val.has_shape = !dynamic;
                g->inputs.push_back(v);
        }
        if (g->inputs.empty())
                return err(-EINVAL, "the graph has no input");
        // Nodes, then a topological order (ONNX asks for one; a cycle has none).
        std::vector<Node> nodes;
        for (const auto &np : gp.node()) {
                Node n;
                n.op = np.op_type();
                n.name = np.name();
                n.domain = np.domain();
                std::string what = "node '" + (n.name.empty() ? n.op : n.name) + "'";
                if (!n.domain.empty() && n.domain != "ai.onnx")
                        return err(-ENOTSUP, what + ": op " + n.op + " of domain '" + n.domain + "' is not supported");
                for (const auto &i : np.input())
                        n.in.push_back(i.empty() ? -1 : g->value(i));
                for (const auto &o : np.output())
                        n.out.push_back(o.empty() ? -1 : g->value(o));
                for (const auto &a : np.attribute()) {
                        Attr at;
                        if (auto e = read_attr(a, dir, what, &at))
                                return e;
                        n.attrs[a.name()] = std::move(at);
                }
                nodes.push_back(std::move(n));
        }
        std::vector<int> producer(g->values.size(), -1);
        for (size_t k = 0; k < nodes.size(); k++)
                for (int o : nodes[k].out)
                        if (o >= 0) {
                                if (producer[size_t(o)] >= 0 || g->values[size_t(o)].konst)
                                        return err(-EINVAL, "value '" + g->values[size_t(o)].name + "' is written twice");
                                producer[size_t(o)] = int(k);
                        }
        std::vector<int> state(nodes.size(), 0), order;  // 0 new, 1 on the stack, 2 done
        std::set<int> graph_in(g->inputs.begin(), g->inputs.end());
        for (size_t root = 0; root < nodes.size(); root++) {
                if (state[root])
                        continue;
                std::vector<std::pair<int, size_t>> stack{{int(root), 0}};
                state[root] = 1;
                while (!stack.empty()) {
                        auto &[k, next] = stack.back();
                        const Node &n = nodes[size_t(k)];
                        if (next < n.in.size()) {
                                int v = n.in[next++];
                                if (v < 0)
                                        continue;
                                int p = producer[size_t(v)];
                                if (p < 0) {
                                        if (!g->values[size_t(v)].konst && !graph_in.count(v))
                                                return err(-EINVAL, "node '" + n.label(*g) + "' reads '" + g->values[size_t(v)].name +
                                                                            "', which nothing writes");
                                        continue;
                                }
                                if (state[size_t(p)] == 1)
                                        return err(-EINVAL, "the graph has a cycle through node '" + nodes[size_t(p)].label(*g) + "'");
                                if (state[size_t(p)] == 0) {
                                        state[size_t(p)] = 1;
                                        stack.push_back({p, 0});
                                }
                                continue;
                        }
                        state[size_t(k)] = 2;
                        order.push_back(k);
                        stack.pop_back();
                }
        }
        std::vector<int> new_index(nodes.size());
        for (size_t k = 0; k < order.size(); k++)
                new_index[size_t(order[k])] = int(k);
        for (int k : order)
                g->nodes.push_back(std::move(nodes[size_t(k)]));
        for (size_t k = 0; k < g->nodes.size(); k++)
                for (int o : g->nodes[k].out)
                        if (o >= 0)
                                g->values[size_t(o)].producer = int(k);
        for (const auto &o : gp.output()) {
                auto it = g->by_name.find(o.name());
                if (it == g->by_name.end())
                        return err(-EINVAL, "output '" + o.name() + "' is written by no node");
                g->outputs.push_back(it->second);
        }
        if (g->outputs.empty())
                return err(-EINVAL, "the graph has no output");
        return std::nullopt;
}

std::optional<Error> load_file(const std::string &path, Graph *g)
{
        std::string bytes, why;
        if (!read_file(path, kMaxFile, &bytes, &why))
                return err(-ENOENT, why);
        size_t slash = path.rfind('/');
        std::string dir = slash == std::string::npos ? "." : path.substr(0, slash);
        return load_bytes(bytes, dir, g);
}

// "name=1x3x224x224;other=1x10": dynamic dimensions of the inputs.
std::optional<Error> set_input_shapes(Graph *g, const std::string &shapes)
{
        std::stringstream ss(shapes);
        std::string item;
        while (std::getline(ss, item, ';')) {
                if (item.empty())
                        continue;
                size_t eq = item.rfind('=');
                if (eq == std::string::npos)
                        return err(-EINVAL, "input shape '" + item + "' is not name=d0xd1x...");
                std::string name = item.substr(0, eq), dims = item.substr(eq + 1);
                int v = -1;
                for (int in : g->inputs)
                        if (g->values[size_t(in)].name == name)
                                v = in;
                if (v < 0)
                        return err(-EINVAL, "input shape for '" + name + "': the model has no such input");
                std::vector<int64_t> d;
                std::stringstream ds(dims);
                std::string x;
                while (std::getline(ds, x, 'x')) {
                        char *end;
                        long long n = std::strtoll(x.c_str(), &end, 10);
                        if (x.empty() || *end || n <= 0 || n > kMaxDim)
                                return err(-EINVAL, "input shape for '" + name + "': '" + x + "' is not a dimension in 1.." +
                                                            std::to_string(kMaxDim));
                        d.push_back(n);
                }
                Value &val = g->values[size_t(v)];
                if (d.size() != val.shape.size())
                        return err(-EINVAL, "input shape for '" + name + "': rank " + std::to_string(d.size()) +
                                                    ", the model's is " + std::to_string(val.shape.size()));
                for (size_t i = 0; i < d.size(); i++)
                        if (val.shape[i] > 0 && val.shape[i] != d[i])
                                return err(-EINVAL, "input shape for '" + name + "': dimension " + std::to_string(i) + " is " +
                                                            std::to_string(val.shape[i]) + " in the model, not " + std::to_string(d[i]));
                val.shape = d;
                val.has_shape = true;
        }
        for (int in : g->inputs) {
                Value &val = g->values[size_t(in)];
                if (val.type != DType::Float)
                        return err(-ENOTSUP, "input '" + val.name + "' is of element type " + std::to_string(g->input_elem_types[in]) +
                                                     "; float inputs are taken");
                for (size_t i = 0; i < val.shape.size(); i++)
                        if (val.shape[i] < 0)
                                return err(-EINVAL, "input '" + val.name + "': dimension " + std::to_string(i) +
                                                            " is dynamic; give its value (--input-shape " + val.name + "=...)");
                int64_t n = 1;
                for (int64_t d : val.shape) {
                        if (d > kMaxDim || n * d > kMaxElements)
                                return err(-E2BIG, "input '" + val.name + "': shape " + dims_text(val.shape) + " is over the limit");
                        n *= d;
                }
                val.has_shape = true;
        }
        return std::nullopt;
}

} // namespace onnxfe

namespace onnxfe {

// The model file at `in` written to `out` with its bwq.* metadata replaced
// by `keys`: through a temporary file beside `out`, renamed into place, so
// that a failure leaves `out` as it was.
std::optional<Error> save_metadata(const std::string &in, const std::string &out,
                                   const std::map<std::string, std::string> &keys)
{
        std::string bytes, why;
        if (!read_file(in, kMaxFile, &bytes, &why))
                return err(-ENOENT, why);
        onnx::ModelProto m;
        google::protobuf::io::ArrayInputStream ais(bytes.data(), int(std::min<size_t>(bytes.size(), INT_MAX)));
        google::protobuf::io::CodedInputStream cis(&ais);
        cis.SetTotalBytesLimit(INT_MAX);
        if (bytes.size() > INT_MAX || !m.ParseFromCodedStream(&cis) || !cis.ConsumedEntireMessage())
                return err(-EPROTO, in + ": not an ONNX model: the file is truncated or is not protobuf");
        auto *props = m.mutable_metadata_props();
        for (int i = props->size(); i-- > 0;)
                if (props->Get(i).key().compare(0, 4, "bwq.") == 0)
                        props->DeleteSubrange(i, 1);
        for (const auto &[k, v] : keys) {
                auto *p = m.add_metadata_props();
                p->set_key(k);
                p->set_value(v);
        }
        std::string data;
        if (!m.SerializeToString(&data))
                return err(-EIO, out + ": cannot serialise the model");
        std::string tmp = out + ".tmp";
        bwq::unique_fd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0644));
        if (!fd)
                return err(-errno, tmp + ": " + strerror(errno));
        for (size_t at = 0; at < data.size();) {
                ssize_t n = write(fd.get(), data.data() + at, data.size() - at);
                if (n < 0 && errno == EINTR)
                        continue;
                if (n <= 0) {
                        int e = n < 0 ? errno : EIO;
                        unlink(tmp.c_str());
                        return err(-e, tmp + ": " + strerror(e));
                }
                at += size_t(n);
        }
        if (fsync(fd.get()) < 0 || rename(tmp.c_str(), out.c_str()) < 0) {
                int e = errno;
                unlink(tmp.c_str());
                return err(-e, out + ": " + strerror(e));
        }
        return std::nullopt;
}

} // namespace onnxfe

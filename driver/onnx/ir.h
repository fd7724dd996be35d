// The frontend's graph (not installed): the ONNX model as read, with
// protobuf left behind in load.cpp.  Values are named edges; constants
// carry their data; nodes are kept in topological order.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace onnxfe {

// Limits of what is loaded (npu-onnx(3)): past them a model is refused.
constexpr int64_t kMaxDim = 1 << 20;
constexpr int64_t kMaxElements = 1ll << 30;
constexpr size_t kMaxNodes = 1 << 16;
constexpr size_t kMaxRank = 8;

inline int64_t product(const std::vector<int64_t> &d)
{
        int64_t n = 1;
        for (int64_t x : d)
                n *= x;
        return n;
}
// "[1, 3, 224, 224]", for messages.
std::string dims_text(const std::vector<int64_t> &d);
// Row-major strides of a shape.
std::vector<int64_t> strides_of(const std::vector<int64_t> &s);

// ONNX TensorProto data types that the frontend computes with.
enum class DType { Float, Int64, Bool };

// A constant: floats for Float, integers for Int64 and Bool.
struct Constant {
        DType type = DType::Float;
        std::vector<int64_t> shape;
        std::vector<float> f;
        std::vector<int64_t> i;
        int64_t elements() const;
        double at(size_t k) const { return type == DType::Float ? double(f[k]) : double(i[k]); }
        void push(double v)
        {
                if (type == DType::Float)
                        f.push_back(float(v));
                else
                        i.push_back(int64_t(v));
        }
};

struct Attr {
        enum Kind { Int, Float, String, Ints, Floats, Tensor, Other } kind = Other;
        int64_t i = 0;
        float f = 0;
        std::string s;
        std::vector<int64_t> ints;
        std::vector<float> floats;
        std::optional<Constant> t;
};

struct Value {
        std::string name;
        DType type = DType::Float;
        std::vector<int64_t> shape;   // resolved static shape
        bool has_shape = false;
        std::optional<Constant> konst;  // initializers and folded values
        int producer = -1;              // node index; -1 for inputs and initializers
};

struct Node {
        std::string op, name, domain;
        std::vector<int> in, out;       // value indices; -1 for an omitted optional input
        std::map<std::string, Attr> attrs;
        bool dead = false;

        const Attr *attr(const std::string &k) const
        {
                auto it = attrs.find(k);
                return it == attrs.end() ? nullptr : &it->second;
        }
        int64_t geti(const std::string &k, int64_t dflt) const
        {
                const Attr *a = attr(k);
                return a && a->kind == Attr::Int ? a->i : dflt;
        }
        float getf(const std::string &k, float dflt) const
        {
                const Attr *a = attr(k);
                return a && a->kind == Attr::Float ? a->f : dflt;
        }
        std::vector<int64_t> getints(const std::string &k, std::vector<int64_t> dflt = {}) const
        {
                const Attr *a = attr(k);
                return a && a->kind == Attr::Ints ? a->ints : dflt;
        }
        std::string gets(const std::string &k, const std::string &dflt) const
        {
                const Attr *a = attr(k);
                return a && a->kind == Attr::String ? a->s : dflt;
        }
        // The display name: the node's name, else its op and first output.
        std::string label(const struct Graph &g) const;
};

struct Graph {
        std::vector<Value> values;
        std::vector<Node> nodes;
        std::vector<int> inputs, outputs;
        std::map<std::string, int> by_name;
        int64_t opset = 0;
        std::map<std::string, std::string> metadata;
        std::map<int, int> input_elem_types;  // the file's TensorProto type per input
        // Per-channel x * mul + add taken off an input into its conversion.
        std::map<int, std::pair<std::vector<float>, std::vector<float>>> input_affine;

        int value(const std::string &name);  // finds or adds
        bool is_const(int v) const { return v >= 0 && values[size_t(v)].konst.has_value(); }
        const Constant &konst(int v) const { return *values[size_t(v)].konst; }
        // Node indices reading value v.
        std::vector<int> consumers(int v) const;
        // The one live node reading v, or -1 (none, several, or v is an output).
        int single_consumer(int v) const;
        bool is_output(int v) const;
};

// The bounds of a Clip node (attributes before opset 11, scalar constant
// inputs after; absent: infinite); false when a bound is not a constant.
bool clip_bounds(const Graph &g, const Node &n, double *lo, double *hi);

// An error that names what was wrong; loading stops at the first.
struct Error {
        int code;
        std::string message;
};

// Reads the file (load.cpp): opset, initializers, nodes in topological
// order.  `shapes`: "name=d0xd1x..." per input, ';'-separated, for
// dynamic dimensions.
std::optional<Error> load_file(const std::string &path, Graph *g);
// The file at `in` written to `out` with its bwq.* metadata_props replaced
// by `keys` (atomically: a temporary file renamed).
std::optional<Error> save_metadata(const std::string &in, const std::string &out,
                                   const std::map<std::string, std::string> &keys);
std::optional<Error> load_bytes(const std::string &bytes, const std::string &dir, Graph *g);
std::optional<Error> set_input_shapes(Graph *g, const std::string &shapes);
// A TensorProto file: its values and ONNX data type.
std::optional<Error> load_tensor_file(const std::string &path, Constant *c, int *type);

// Shapes of every value and constants folded (fold.cpp).
std::optional<Error> infer_and_fold(Graph *g);
// Where each output row (or column) of a Resize node reads: nearest, one
// source (i0); linear, i0 and i1 with the weight f of i1.  `out` of `in`.
struct ResizeAxis {
        std::vector<int64_t> i0, i1;
        std::vector<double> f;
};
ResizeAxis resize_axis(const Node &n, int64_t opset, int64_t out, int64_t in);

// The outputs of node n, whose inputs in g are all constants (a host node
// at run time); -ENOTSUP for an op that is only shaped, not computed.
std::optional<Error> evaluate(Graph *g, Node *n);
// The folder's function of an elementwise binary op (Add, Sub, Mul, Div,
// Max, Min, Pow, Equal) of its two arguments, computed in double; null for
// any other op.
using BinaryFn = double (*)(const double *);
BinaryFn binary_fn(const std::string &op);

} // namespace onnxfe

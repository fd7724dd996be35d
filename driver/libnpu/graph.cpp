// The graph builder: shapes are checked as layers are added, so a graph
// that builds is one the device accepts.
#include <errno.h>

#include <algorithm>
#include <cmath>
#include <cstring>

#include "internal.h"
#include "common/depth.h"

using npu::GraphLayer;
using npu::GraphTensor;

namespace {

constexpr uint32_t kMaxDim = 1u << 16;
constexpr uint32_t kMaxWindow = 256;

bool valid_tensor(const npu_graph *g, int t) { return g && t >= 0 && size_t(t) < g->tensors.size(); }

int add_layer(npu_graph *g, GraphLayer &&L, GraphTensor out)
{
        if (g->layers.size() >= 1024 || g->tensors.size() >= 2048)
                return -E2BIG;
        if (out.elements() == 0 || out.elements() > (1ull << 30))
                return -EINVAL;
        out.producer = int(g->layers.size());
        g->tensors.push_back(out);
        L.output = int(g->tensors.size() - 1);
        g->layers.push_back(std::move(L));
        return int(g->tensors.size() - 1);
}

bool all_finite(const float *v, size_t n)
{
        for (size_t i = 0; i < n; i++)
                if (!std::isfinite(v[i]))
                        return false;
        return true;
}

uint32_t or_one(uint32_t v) { return v ? v : 1; }

// Output extent of a window along one axis, 0 if the window does not fit.
uint32_t out_extent(uint32_t in, uint32_t k, uint32_t s, uint32_t d, uint32_t p0, uint32_t p1)
{
        uint64_t span = uint64_t(d) * (k - 1) + 1, padded = uint64_t(in) + p0 + p1;
        if (padded < span)
                return 0;
        return uint32_t((padded - span) / s + 1);
}

bool window_ok(uint32_t kh, uint32_t kw, uint32_t sh, uint32_t sw, uint32_t dh, uint32_t dw, uint32_t pt,
               uint32_t pl, uint32_t pb, uint32_t pr)
{
        for (uint32_t v : {kh, kw, sh, sw, dh, dw})
                if (v == 0 || v > kMaxWindow)
                        return false;
        return pt < kh * dh && pb < kh * dh && pl < kw * dw && pr < kw * dw;
}

// npu.h's activations are the uapi's, value for value: layers store them as is.
constexpr bool same(npu_activation a, npu_act b) { return int(a) == int(b); }
static_assert(same(NPU_ACTIVATION_NONE, NPU_ACT_NONE) && same(NPU_ACTIVATION_RELU, NPU_ACT_RELU) &&
              same(NPU_ACTIVATION_RELU6, NPU_ACT_RELU6) && same(NPU_ACTIVATION_HARDSWISH, NPU_ACT_HARDSWISH) &&
              same(NPU_ACTIVATION_HARDSIGMOID, NPU_ACT_HARDSIGMOID) && same(NPU_ACTIVATION_SIGMOID, NPU_ACT_SIGMOID));

int pool_layer(npu_graph *g, int input, const npu_pool_params *p, uint16_t op)
{
        if (!valid_tensor(g, input) || !p || !npu::reserved_zero(p->reserved))
                return -EINVAL;
        npu_pool_params q = *p;
        q.stride_h = or_one(q.stride_h);
        q.stride_w = or_one(q.stride_w);
        if (!window_ok(q.kernel_h, q.kernel_w, q.stride_h, q.stride_w, 1, 1, q.pad_top, q.pad_left, q.pad_bottom,
                       q.pad_right))
                return -EINVAL;
        const GraphTensor x = g->tensors[input];
        uint32_t oh = out_extent(x.h, q.kernel_h, q.stride_h, 1, q.pad_top, q.pad_bottom);
        uint32_t ow = out_extent(x.w, q.kernel_w, q.stride_w, 1, q.pad_left, q.pad_right);
        if (!oh || !ow)
                return -EINVAL;
        GraphLayer L{};
        L.op = op;
        L.act = NPU_ACT_NONE;
        L.inputs = {input};
        L.pool = q;
        return add_layer(g, std::move(L), {x.n, oh, ow, x.c, 0});
}

} // namespace

extern "C" int npu_graph_new(npu_graph **ret)
{
        if (!ret)
                return -EINVAL;
        *ret = new npu_graph;
        return 0;
}

extern "C" void npu_graph_free(npu_graph *g) { delete g; }

extern "C" int npu_graph_input(npu_graph *g, uint32_t n, uint32_t h, uint32_t w, uint32_t c)
{
        if (!g || !n || !h || !w || !c || n > kMaxDim || h > kMaxDim || w > kMaxDim || c > kMaxDim)
                return -EINVAL;
        if (g->inputs.size() >= 64 || g->tensors.size() >= 2048)
                return -E2BIG;
        GraphTensor t{n, h, w, c, -1};
        if (t.elements() > (1ull << 30))
                return -EINVAL;
        g->tensors.push_back(t);
        g->inputs.push_back(int(g->tensors.size() - 1));
        return g->inputs.back();
}

// A convolution; residual >= 0 (npu_graph_conv2d_residual): a tensor of
// the output's n, h, w and at most its channels, added before the
// activation, on a convolution that is not depthwise.
static int conv_layer(npu_graph *g, int input, int residual, const npu_conv2d_params *p, const float *weights,
                      const float *bias)
{
        if (!valid_tensor(g, input) || !p || !weights || p->activation > NPU_ACTIVATION_SIGMOID || !npu::reserved_zero(p->reserved))
                return -EINVAL;
        npu_conv2d_params q = *p;
        q.stride_h = or_one(q.stride_h);
        q.stride_w = or_one(q.stride_w);
        q.dilation_h = or_one(q.dilation_h);
        q.dilation_w = or_one(q.dilation_w);
        q.groups = or_one(q.groups);
        const GraphTensor x = g->tensors[input];
        if (!q.out_channels || q.out_channels > kMaxDim || x.c % q.groups || q.out_channels % q.groups)
                return -EINVAL;
        if (!window_ok(q.kernel_h, q.kernel_w, q.stride_h, q.stride_w, q.dilation_h, q.dilation_w, q.pad_top,
                       q.pad_left, q.pad_bottom, q.pad_right))
                return -EINVAL;
        uint32_t oh = out_extent(x.h, q.kernel_h, q.stride_h, q.dilation_h, q.pad_top, q.pad_bottom);
        uint32_t ow = out_extent(x.w, q.kernel_w, q.stride_w, q.dilation_w, q.pad_left, q.pad_right);
        if (!oh || !ow)
                return -EINVAL;
        if (residual >= 0) {
                if (!valid_tensor(g, residual) || (q.groups > 1 && q.groups == x.c && q.groups == q.out_channels))
                        return -EINVAL;
                const GraphTensor &r = g->tensors[residual];
                if (r.n != x.n || r.h != oh || r.w != ow || r.c > q.out_channels)
                        return -EINVAL;
        }
        size_t nw = size_t(q.out_channels) * q.kernel_h * q.kernel_w * (x.c / q.groups);
        if (!all_finite(weights, nw) || (bias && !all_finite(bias, q.out_channels)))
                return -EINVAL;
        GraphLayer L{};
        L.op = NPU_OP_CONV2D;
        L.act = uint8_t(q.activation);
        L.inputs = {input};
        if (residual >= 0)
                L.inputs.push_back(residual);
        L.conv = q;
        L.weights.assign(weights, weights + nw);
        L.bias = bias ? std::vector<float>(bias, bias + q.out_channels) : std::vector<float>(q.out_channels, 0.0f);
        return add_layer(g, std::move(L), {x.n, oh, ow, q.out_channels, 0});
}

extern "C" int npu_graph_conv2d(npu_graph *g, int input, const npu_conv2d_params *p, const float *weights,
                                const float *bias)
{
        return conv_layer(g, input, -1, p, weights, bias);
}

extern "C" int npu_graph_conv2d_residual(npu_graph *g, int input, int residual, const npu_conv2d_params *p,
                                         const float *weights, const float *bias)
{
        if (residual < 0)
                return -EINVAL;
        return conv_layer(g, input, residual, p, weights, bias);
}

extern "C" int npu_graph_fully_connected(npu_graph *g, int input, uint32_t out_channels, const float *weights,
                                         const float *bias, uint32_t activation)
{
        if (!valid_tensor(g, input) || !weights || !out_channels || out_channels > kMaxDim ||
            activation > NPU_ACTIVATION_SIGMOID)
                return -EINVAL;
        const GraphTensor x = g->tensors[input];
        size_t K = size_t(x.h) * x.w * x.c, nw = K * out_channels;
        if (!all_finite(weights, nw) || (bias && !all_finite(bias, out_channels)))
                return -EINVAL;
        GraphLayer L{};
        L.op = NPU_OP_FULLY_CONNECTED;
        L.act = uint8_t(activation);
        L.inputs = {input};
        L.conv.out_channels = out_channels;
        L.conv.groups = 1;
        L.weights.assign(weights, weights + nw);
        L.bias = bias ? std::vector<float>(bias, bias + out_channels) : std::vector<float>(out_channels, 0.0f);
        return add_layer(g, std::move(L), {x.n, 1, 1, out_channels, 0});
}

static int binary(npu_graph *g, int a, int b, uint32_t activation, uint16_t op)
{
        if (!valid_tensor(g, a) || !valid_tensor(g, b) || activation > NPU_ACTIVATION_SIGMOID)
                return -EINVAL;
        const GraphTensor x = g->tensors[a], y = g->tensors[b];
        bool same = x.n == y.n && x.h == y.h && x.w == y.w && x.c == y.c;
        bool bcast = op == NPU_OP_MUL && y.n == x.n && y.h == 1 && y.w == 1 && y.c == x.c;
        if (!same && !bcast)
                return -EINVAL;
        GraphLayer L{};
        L.op = op;
        L.act = uint8_t(activation);
        L.inputs = {a, b};
        return add_layer(g, std::move(L), {x.n, x.h, x.w, x.c, 0});
}

extern "C" int npu_graph_add(npu_graph *g, int a, int b, uint32_t activation)
{
        return binary(g, a, b, activation, NPU_OP_ADD);
}

extern "C" int npu_graph_mul(npu_graph *g, int a, int b, uint32_t activation)
{
        return binary(g, a, b, activation, NPU_OP_MUL);
}

extern "C" int npu_graph_maxpool(npu_graph *g, int input, const npu_pool_params *p)
{
        return pool_layer(g, input, p, NPU_OP_MAXPOOL);
}

extern "C" int npu_graph_avgpool(npu_graph *g, int input, const npu_pool_params *p)
{
        return pool_layer(g, input, p, NPU_OP_AVGPOOL);
}

extern "C" int npu_graph_global_avgpool(npu_graph *g, int input)
{
        if (!valid_tensor(g, input))
                return -EINVAL;
        const GraphTensor x = g->tensors[input];
        GraphLayer L{};
        L.op = NPU_OP_GLOBAL_AVGPOOL;
        L.inputs = {input};
        return add_layer(g, std::move(L), {x.n, 1, 1, x.c, 0});
}

extern "C" int npu_graph_concat(npu_graph *g, const int *inputs, unsigned count)
{
        if (!g || !inputs || count < 2 || count > NPU_MAX_INPUTS)
                return -EINVAL;
        uint64_t c = 0;
        for (unsigned i = 0; i < count; i++) {
                if (!valid_tensor(g, inputs[i]))
                        return -EINVAL;
                const GraphTensor &t = g->tensors[inputs[i]], &f = g->tensors[inputs[0]];
                if (t.n != f.n || t.h != f.h || t.w != f.w)
                        return -EINVAL;
                c += t.c;
        }
        if (c > kMaxDim)
                return -EINVAL;
        const GraphTensor f = g->tensors[inputs[0]];
        GraphLayer L{};
        L.op = NPU_OP_CONCAT;
        L.inputs.assign(inputs, inputs + count);
        return add_layer(g, std::move(L), {f.n, f.h, f.w, uint32_t(c), 0});
}


extern "C" int npu_graph_set_bits_range(npu_graph *g, int tensor, unsigned min_bits, unsigned max_bits)
{
        if (!valid_tensor(g, tensor) || !bwq::depth_supported(min_bits) || !bwq::depth_supported(max_bits) ||
            min_bits > max_bits)
                return -EINVAL;
        GraphTensor &t = g->tensors[tensor];
        if (t.producer < 0) { // a graph input: the depth it is quantized at
                t.min_bits = min_bits;
                t.max_bits = max_bits;
                return 0;
        }
        auto &L = g->layers[t.producer];
        L.min_bits = min_bits;
        L.max_bits = max_bits;
        return 0;
}

bool npu::range_valid(float lo, float hi)
{
        return std::isfinite(lo) && std::isfinite(hi) && lo <= 0.0f && hi >= 0.0f;
}

extern "C" int npu_graph_set_tensor_ranges(npu_graph *g, int tensor, const float *lo, const float *hi)
{
        if (!valid_tensor(g, tensor) || !lo || !hi)
                return -EINVAL;
        npu::Ranges r;
        for (int i = 0; i < NPU_BITS_COUNT; i++) {
                if (!npu::range_valid(lo[i], hi[i]))
                        return -EINVAL;
                r.lo[i] = lo[i];
                r.hi[i] = hi[i];
        }
        g->tensors[tensor].ranges = r;
        g->tensors[tensor].given_ranges = true;
        return 0;
}

extern "C" int npu_graph_set_bias_correction(npu_graph *g, int tensor, const float *delta, size_t count)
{
        if (!valid_tensor(g, tensor) || g->tensors[tensor].producer < 0)
                return -EINVAL;
        GraphLayer &L = g->layers[g->tensors[tensor].producer];
        if (!npu::bias_delta_valid(L.op, L.bias.size(), delta, count))
                return -EINVAL;
        if (delta)
                L.bias_delta.assign(delta, delta + count);
        else
                L.bias_delta.clear();
        return 0;
}

bool npu::bias_delta_valid(uint16_t op, size_t channels, const float *delta, size_t count)
{
        if (op != NPU_OP_CONV2D && op != NPU_OP_FULLY_CONNECTED)
                return false;
        if (!delta)
                return count == 0;
        if (count != NPU_BITS_COUNT * channels)
                return false;
        for (size_t i = 0; i < count; i++)
                if (!std::isfinite(delta[i]))
                        return false;
        return true;
}

extern "C" int npu_graph_layer_linear(const npu_graph *g, unsigned layer, uint32_t flags, const float *input, float *output)
{
        if (!g || layer >= g->layers.size() || !input || !output || (flags & ~NPU_REFERENCE_INT8_WEIGHTS))
                return -EINVAL;
        const GraphLayer &L = g->layers[layer];
        if (L.op != NPU_OP_CONV2D && L.op != NPU_OP_FULLY_CONNECTED)
                return -EINVAL;
        std::vector<float> out;
        npu::linear_forward(*g, L, input, flags & NPU_REFERENCE_INT8_WEIGHTS, out);
        std::memcpy(output, out.data(), out.size() * sizeof(float));
        return 0;
}

extern "C" int npu_graph_tensor_count(const npu_graph *g) { return g ? int(g->tensors.size()) : -EINVAL; }

extern "C" int npu_graph_layer_count(const npu_graph *g) { return g ? int(g->layers.size()) : -EINVAL; }

extern "C" int npu_graph_layer_output(const npu_graph *g, unsigned layer)
{
        if (!g || layer >= g->layers.size())
                return -EINVAL;
        return g->layers[layer].output;
}

extern "C" int npu_graph_tensor_shape(const npu_graph *g, int tensor, npu_host_shape *ret)
{
        if (!valid_tensor(g, tensor) || !ret)
                return -EINVAL;
        const GraphTensor &t = g->tensors[tensor];
        *ret = {t.n, t.h, t.w, t.c};
        return 0;
}

extern "C" int npu_graph_layer_op(const npu_graph *g, unsigned layer)
{
        if (!g || layer >= g->layers.size())
                return -EINVAL;
        return g->layers[layer].op == npu::kOpHost ? int(NPU_LAYER_HOST) : int(g->layers[layer].op);
}

extern "C" int npu_graph_layer_input(const npu_graph *g, unsigned layer, unsigned index)
{
        if (!g || layer >= g->layers.size() || index >= g->layers[layer].inputs.size())
                return -EINVAL;
        return g->layers[layer].inputs[index];
}

extern "C" int npu_graph_tensor_producer(const npu_graph *g, int tensor)
{
        if (!valid_tensor(g, tensor))
                return -EINVAL;
        return g->tensors[tensor].producer;
}

extern "C" int npu_graph_reference_tensors(const npu_graph *g, const float *const *inputs, unsigned count, uint32_t flags,
                                           float *const *values)
{
        if (!g || !inputs || !values || g->inputs.empty() || count != g->inputs.size() ||
            (flags & ~NPU_REFERENCE_INT8_WEIGHTS))
                return -EINVAL;
        for (unsigned i = 0; i < count; i++)
                if (!inputs[i])
                        return -EINVAL;
        std::vector<std::vector<float>> v;
        npu::reference_forward(*g, inputs, v, flags & NPU_REFERENCE_INT8_WEIGHTS);
        for (size_t t = 0; t < g->tensors.size(); t++)
                if (values[t])
                        std::memcpy(values[t], v[t].data(), v[t].size() * sizeof(float));
        return 0;
}

extern "C" int npu_graph_resize(npu_graph *g, int input, uint32_t scale_h, uint32_t scale_w, uint32_t mode)
{
        if (!valid_tensor(g, input) || !scale_h || !scale_w || scale_h > 16 || scale_w > 16 ||
            (mode != NPU_RESIZE_NEAREST && mode != NPU_RESIZE_BILINEAR))
                return -EINVAL;
        const GraphTensor x = g->tensors[input];
        if (uint64_t(x.h) * scale_h > kMaxDim || uint64_t(x.w) * scale_w > kMaxDim)
                return -EINVAL;
        GraphLayer L{};
        L.op = NPU_OP_RESIZE;
        L.inputs = {input};
        L.conv.stride_h = scale_h;
        L.conv.stride_w = scale_w;
        L.conv.kernel_h = L.conv.kernel_w = mode == NPU_RESIZE_NEAREST ? 1 : 2;
        return add_layer(g, std::move(L), GraphTensor{x.n, x.h * scale_h, x.w * scale_w, x.c, 0});
}

extern "C" int npu_graph_depth_to_space(npu_graph *g, int input, uint32_t block_h, uint32_t block_w)
{
        if (!valid_tensor(g, input) || !block_h || !block_w || block_h > 16 || block_w > 16)
                return -EINVAL;
        const GraphTensor x = g->tensors[input];
        if (x.c % (block_h * block_w) || uint64_t(x.h) * block_h > kMaxDim || uint64_t(x.w) * block_w > kMaxDim)
                return -EINVAL;
        GraphLayer L{};
        L.op = NPU_OP_DEPTH_TO_SPACE;
        L.inputs = {input};
        L.conv.stride_h = block_h;
        L.conv.stride_w = block_w;
        return add_layer(g, std::move(L), GraphTensor{x.n, x.h * block_h, x.w * block_w, x.c / (block_h * block_w), 0});
}

extern "C" int npu_graph_host(npu_graph *g, const int *inputs, unsigned count, uint32_t n, uint32_t h, uint32_t w, uint32_t c,
                              npu_host_fn fn, void *user)
{
        if (!g || !inputs || !count || count > 16 || !fn || !n || !h || !w || !c || n > kMaxDim || h > kMaxDim || w > kMaxDim ||
            c > kMaxDim)
                return -EINVAL;
        GraphLayer L{};
        L.op = npu::kOpHost;
        for (unsigned i = 0; i < count; i++) {
                if (!valid_tensor(g, inputs[i]))
                        return -EINVAL;
                L.inputs.push_back(inputs[i]);
        }
        L.host_fn = fn;
        L.host_user = user;
        return add_layer(g, std::move(L), GraphTensor{n, h, w, c, 0});
}

extern "C" int npu_graph_set_output(npu_graph *g, int tensor)
{
        if (!valid_tensor(g, tensor) || g->tensors[tensor].producer < 0)
                return -EINVAL;
        g->outputs = {tensor};
        return 0;
}

extern "C" int npu_graph_add_output(npu_graph *g, int tensor)
{
        if (!valid_tensor(g, tensor) || g->tensors[tensor].producer < 0 || g->outputs.size() >= 64)
                return -EINVAL;
        g->outputs.push_back(tensor);
        return int(g->outputs.size() - 1);
}

extern "C" int64_t npu_graph_tensor_elements(const npu_graph *g, int tensor)
{
        if (!valid_tensor(g, tensor))
                return -EINVAL;
        return int64_t(g->tensors[tensor].elements());
}

extern "C" int npu_graph_reference_inputs(const npu_graph *g, const float *const *inputs, unsigned count, uint32_t flags,
                                          int tensor, float *output, size_t output_count)
{
        if (!valid_tensor(g, tensor) || !inputs || !output || g->inputs.empty() || count != g->inputs.size() ||
            (flags & ~NPU_REFERENCE_INT8_WEIGHTS))
                return -EINVAL;
        for (unsigned i = 0; i < count; i++)
                if (!inputs[i])
                        return -EINVAL;
        if (output_count != g->tensors[tensor].elements())
                return -EINVAL;
        std::vector<std::vector<float>> values;
        npu::reference_forward(*g, inputs, values, flags & NPU_REFERENCE_INT8_WEIGHTS);
        std::memcpy(output, values[tensor].data(), output_count * sizeof(float));
        return 0;
}

extern "C" int npu_graph_reference(const npu_graph *g, const float *input, int tensor, float *output, size_t count)
{
        return npu_graph_reference_inputs(g, &input, 1, 0, tensor, output, count);
}

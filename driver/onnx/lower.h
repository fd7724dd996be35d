// From the frontend's graph to libnpu's graph builder (not installed).
//
// Every ONNX value that lives on the device is a View: a device tensor
// (NHWC, libnpu's) and, for each of the value's own axes, the stride in
// the device tensor's elements.  A 4-D value in canonical NCHW over an NHWC
// tensor has strides [HWC, 1, WC, C]; Transpose permutes the strides and
// Reshape/Flatten/Squeeze/Unsqueeze re-stride a row-major view, so neither
// moves data.  The host converts inputs and outputs once, at the boundary.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "ir.h"
#include "npu/npu.h"

namespace onnxfe {

struct View {
        int tensor = -1;
        std::vector<int64_t> shape, strides;
        // A reshape that strides cannot say (NCHW flattened, say) keeps the
        // strided view it came from: the elements are in the same order.
        // `strides` is then empty.
        std::vector<int64_t> src_shape, src_strides;
        // Device element offset of the value's element e (row-major index).
        int64_t offset(int64_t e) const
        {
                const auto &sh = strides.empty() ? src_shape : shape;
                const auto &st = strides.empty() ? src_strides : strides;
                int64_t off = 0;
                for (size_t i = sh.size(); i-- > 0;) {
                        off += (e % sh[i]) * st[i];
                        e /= sh[i];
                }
                return off;
        }
        int64_t elements() const
        {
                int64_t n = 1;
                for (int64_t d : shape)
                        n *= d;
                return n;
        }
        // The elements in row-major order as runs along the last axis:
        // f(e, offset, n, step) for elements [e, e + n) at device offsets
        // offset + i * step, the offset kept by an odometer over the other
        // axes instead of divisions per element.
        template <class F> void each_run(F f) const
        {
                const auto &sh0 = strides.empty() ? src_shape : shape;
                const auto &st0 = strides.empty() ? src_strides : strides;
                int64_t n = 1;
                for (int64_t d : sh0)
                        n *= d;
                if (n == 0)
                        return;
                // Axes that continue each other in memory as one, so that a
                // contiguous tensor is one run, not one per pixel.
                std::vector<int64_t> sh, st;
                for (size_t i = 0; i < sh0.size(); i++) {
                        if (sh0[i] == 1)
                                continue;
                        if (!sh.empty() && st.back() == st0[i] * sh0[i]) {
                                sh.back() *= sh0[i];
                                st.back() = st0[i];
                                continue;
                        }
                        sh.push_back(sh0[i]);
                        st.push_back(st0[i]);
                }
                const size_t R = sh.size();
                if (R == 0) {
                        f(int64_t(0), int64_t(0), int64_t(1), int64_t(1));
                        return;
                }
                const int64_t len = sh[R - 1], step = st[R - 1];
                std::vector<int64_t> idx(R, 0);
                int64_t off = 0;
                for (int64_t e = 0; e < n; e += len) {
                        f(e, off, len, step);
                        for (size_t i = R - 1; i-- > 0;) {
                                off += st[i];
                                if (++idx[i] < sh[i])
                                        break;
                                off -= st[i] * sh[i];
                                idx[i] = 0;
                        }
                }
        }
        // Every element in row-major order: f(e, offset).
        template <class F> void each(F f) const
        {
                each_run([&](int64_t e, int64_t off, int64_t n, int64_t step) {
                        for (int64_t i = 0; i < n; i++)
                                f(e + i, off + i * step);
                });
        }
};

struct Rewrites {
        unsigned batchnorm_folded = 0, batchnorm_alone = 0, affine_folded = 0, activations_fused = 0, hardswish_matched = 0,
                 hardsigmoid_matched = 0, input_ops_folded = 0, pads_folded = 0, transposes_viewed = 0, reshapes_viewed = 0,
                 channel_pads = 0, residuals_fused = 0, host_nodes = 0;
};

// A node run on the host (npu_graph_host): a graph of its own whose inputs
// are filled from the device tensors at run time, and the op evaluated by
// fold.cpp's code, the same that folds constants at load.
struct HostNode {
        Graph local;                 // the node's inputs and outputs as values
        Node node;                   // indices into local
        std::vector<int> arg;        // per node input: the host function's input, or -1 (a constant)
        std::vector<View> in_views;  // per host function input
        int out = 0;                 // the node output this host layer writes
        View out_view;               // and its layout on the device
};

struct Lowered {
        npu_graph *graph = nullptr;
        std::vector<View> inputs, outputs;  // in the model's order
        // Per input: x * mul[c] + add[c] in the conversion (empty: none),
        // c the channel (axis 1) of the input's element.
        std::vector<std::vector<float>> input_mul, input_add;
        std::vector<std::string> layer_names;  // per builder layer: the ONNX node whose output it writes
        std::vector<std::string> layer_also;   // and the node it fused in before that ("": none)
        std::vector<std::string> layer_ops;    // and its op (fusions as "Conv+Relu")
        std::vector<int> layer_tensors;        // and the tensor it writes
        std::vector<std::string> layer_reasons;  // host layers: why not the device ("" for device layers)
        std::vector<std::unique_ptr<HostNode>> host;  // owned; npu_graph_host's user data
};

// rewrite.cpp: BatchNormalization, constant arithmetic and activations into
// layers, with patterns.cpp's recognise() between.
void rewrite(Graph *g, Rewrites *done);
// The device activation (enum npu_activation) that node a is, or -1; a
// HardSigmoid's own alpha and beta in *alpha, *beta (1/6 and 1/2 for the
// device's), else 1/6 and 1/2.
int activation_of(const Graph &g, const Node &a, float *alpha, float *beta);
// patterns.cpp: HardSigmoid and HardSwish written out, a lone
// BatchNormalization, arithmetic on an input.
void recognise(Graph *g, Rewrites *done);
// The C per-channel values of a constant that broadcasts over [N, C, H, W]
// along C only, or is one value; empty otherwise.
std::vector<float> per_channel(const Graph &g, int v, int64_t C);
// lower.cpp: the builder calls; nodes the device cannot run become host
// nodes unless no_host.  On failure the graph is freed.
std::optional<Error> lower(Graph *g, Lowered *out, Rewrites *done, bool no_host);

} // namespace onnxfe

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
};

struct Rewrites {
        unsigned batchnorm_folded = 0, bias_folded = 0, activations_fused = 0, transposes_viewed = 0,
                 reshapes_viewed = 0, channel_pads = 0;
};

struct Lowered {
        npu_graph *graph = nullptr;
        std::vector<View> inputs, outputs;  // in the model's order
        std::vector<std::string> layer_names;  // per builder layer: the ONNX node
        std::vector<std::string> layer_ops;    // and its op (fusions as "Conv+Relu")
        std::vector<int> layer_tensors;        // and the tensor it writes
};

// rewrite.cpp: BatchNormalization, bias Add and activations into layers.
void rewrite(Graph *g, Rewrites *done);
// lower.cpp: the builder calls.  On failure the graph is freed.
std::optional<Error> lower(Graph *g, Lowered *out, Rewrites *done);

} // namespace onnxfe

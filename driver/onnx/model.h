// The frontend's model (not installed): what npu_onnx_load made, shared by
// model.cpp and calibrate.cpp.
#pragma once

#include <string>
#include <vector>

#include "ir.h"
#include "lower.h"
#include "npu/onnx.h"

struct npu_onnx {
        onnxfe::Graph g;
        onnxfe::Lowered low;
        onnxfe::Rewrites done;
        std::vector<npu_onnx_tensor_info> in_info, out_info;
        std::string placement;
        unsigned min_bits = 4, max_bits = 16;
        std::vector<std::vector<float>> scratch_in, scratch_out;
        // Per device tensor: its name in the bwq.ranges and bwq.layer_bits
        // keys (an input's name, a layer's node, "NODE#k" for the k-th
        // layer of a node), "" for none.
        std::vector<std::string> tensor_keys;
        std::string calibration_note;  // bwq.calibration
        bool ranges_given = false;     // every tensor has bwq.ranges
        std::string path;

        ~npu_onnx() { npu_graph_free(low.graph); }
};

namespace onnxfe {

// `count` samples of the model's inputs (model layout) in the device's
// layout, in m's scratch buffers.
std::vector<const float *> to_device(npu_onnx *m, const float *const *inputs, uint64_t count = 1);
// A device tensor's elements into the value's own layout.
void from_device(const View &v, const float *dev, float *out);

} // namespace onnxfe

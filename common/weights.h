// int8 weights in the device's layout (uapi/npu_accel.h, struct
// npu_layer_desc; DESIGN §5.3): symmetric per output channel,
// s_w[c] = max|W[c]| / 127, depthwise [kh][kw][c], otherwise blocked per
// group as [N16/16][K4/4][16][4].
#pragma once

#include <cstdint>
#include <vector>

namespace bwq {

struct WeightShape {
        uint32_t out_channels;
        uint32_t in_channels;      // of the layer's input (h*w*c for fully connected)
        uint32_t kernel_h, kernel_w;
        uint32_t groups;           // 0 means 1
        bool fully_connected;
};

struct PackedWeights {
        std::vector<int8_t> data;
        std::vector<float> scale;
};

// Float weights [out][kh][kw][in/groups] (fully connected: [out][in]) to the
// device's layout, with the given scales instead when not null (weights
// already integral).
PackedWeights pack_weights(const float *weights, const WeightShape &shape, const float *scales = nullptr);

// The weights the device computes with, as floats in the input's order:
// each q[c][k] * s_w[c] of pack_weights.
std::vector<float> device_weights(const float *weights, const WeightShape &shape);

} // namespace bwq

// A MobileNet-V2-shaped network with synthetic weights from a fixed seed:
// the workload of npu-run, the tests and the benchmarks.
#pragma once

#include <cstdint>
#include <vector>

#include "npu/npu.h"

struct MobileNetOptions {
        uint32_t size = 224;       // input height and width
        float width = 1.0f;        // channel multiplier
        uint32_t classes = 1000;
        uint64_t seed = 42;
};

// Builds the graph into `g` (new); returns 0 or a negative errno.
int mobilenet_v2_build(const MobileNetOptions &o, npu_graph **ret);
// A synthetic input image in [-1, 1] from the seed.
std::vector<float> mobilenet_v2_input(const MobileNetOptions &o);

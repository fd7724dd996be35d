// A MobileNet-V2-shaped network with synthetic weights from a fixed seed:
// the workload of npu-run, the tests and the benchmarks.
#pragma once

#include <cstdint>
#include <vector>

#include "npu/npu.h"

// splitmix64: small, fast and the same everywhere; the synthetic weights
// and inputs of the network and the benchmarks.
struct Rng {
        uint64_t s;
        uint64_t next()
        {
                uint64_t z = (s += 0x9e3779b97f4a7c15ull);
                z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
                z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
                return z ^ (z >> 31);
        }
        // Uniform in [-a, a).
        float uniform(float a) { return a * (float(next() >> 40) / float(1 << 24) * 2.0f - 1.0f); }
};

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

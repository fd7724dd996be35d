// The samples of an .npy file against an ONNX model input's shape, for
// npu-run --model and npu-calibrate.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "npu/npy.h"

namespace tools {

// How the samples of an .npy lie against the model's input shape.
struct Samples {
        npu_npy a{};
        uint64_t count = 0, per = 0;   // samples, elements per sample
        bool extra_axis = false;       // [N, ...shape] rather than the batch axis
        std::vector<int64_t> shape;    // one sample's shape (batch 1)
        Samples() = default;
        Samples(const Samples &) = delete;
        Samples &operator=(const Samples &) = delete;
        ~Samples() { npu_npy_free(&a); }
};

// Reads `path` as samples of an input of rank want_rank and dims want_dims
// (-1: dynamic); false with *why naming what did not fit.
bool read_samples(const char *path, unsigned want_rank, const int64_t *want_dims, Samples *s, std::string *why);

} // namespace tools

// The op harness of the tests (see op_harness.cpp and test_ops.cpp).
#pragma once

#include <cstdint>
#include <vector>

#include "test_util.h"

namespace test {

struct Tensor {
        uint32_t n, h, w, c;
        std::vector<float> v;
        size_t size() const { return size_t(n) * h * w * c; }
        float at(size_t b, size_t y, size_t x, size_t ch) const { return v[((b * h + y) * w + x) * c + ch]; }
};

struct Case {
        const char *name;
        uint16_t op;
        uint8_t act;
        std::vector<Tensor> in;
        uint32_t cout = 0;
        uint32_t k = 1, s = 1, d = 1, pt = 0, pl = 0, pb = 0, pr = 0, groups = 1;
        std::vector<float> weights, bias;  // [cout][kh][kw][cin/groups]
        uint32_t kw = 0, sw = 0;           // kernel width and stride across, when not k and s
        uint32_t KW() const { return kw ? kw : k; }
        uint32_t SW() const { return sw ? sw : s; }
        // Integer cases: explicit ranges for inputs and output (all depths)
        // and weight scales of 1, so that integers pass through exactly.
        std::vector<std::pair<float, float>> in_range;
        std::pair<float, float> out_range{0, 0};
        bool unit_weight_scale = false;
        // Packed weight bytes set to -128 after packing (which never writes
        // it), as a job's buffer may: the instruction sets must still agree.
        std::vector<size_t> min_weights;
};

struct RunOut {
        std::vector<uint8_t> packed;  // output bytes as the device wrote them
        std::vector<float> y;
        npu_layer_result lr;
};

Tensor random_tensor(Rng &rng, uint32_t n, uint32_t h, uint32_t w, uint32_t c, float lo, float hi);
// The float reference of one layer, written independently of npuref.
Tensor reference(const Case &cs);
// Runs cs on one device at the given depths; checks the layer counters.
RunOut run_case(npu_device *dev, const Case &cs, const Tensor &ref, unsigned bits_in, unsigned bits_out);
// All 16 depth pairs on both devices: identical bytes, and every output
// within the bound of the file comment of test_ops.cpp.  Returns the worst
// error / bound.
double check_against(npu_device *best, npu_device *portable, const Case &cs, const Tensor &ref);
void check_case(npu_device *best, npu_device *portable, const Case &cs);
// All 16 depth pairs on both devices: identical bytes only (for cases the
// float reference does not describe, such as min_weights).
void check_isas_agree(npu_device *best, npu_device *portable, const Case &cs);

} // namespace test

// The ONNX backend node tests' data (Debian's libonnx-testdata), read
// through the model frontend: tensors (npu_onnx_read_tensor), a one-node
// model's op and attributes (a file loaded as written), NCHW to NHWC.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "npu/onnx.h"
#include "tests/unit/op_harness.h"

namespace conformance {

extern const char *kRoot;
constexpr int kFloat = 1, kUint8 = 2, kInt8 = 3, kInt32 = 6;  // TensorProto data types

struct OTensor {
        int type = 0;  // ONNX TensorProto data type
        std::vector<int64_t> dims;
        std::vector<double> v;
};

struct ONode {
        std::string op;
        std::shared_ptr<npu_onnx> m;
        bool get(const std::string &k, npu_onnx_attr *a) const;
        std::vector<int64_t> ints(const std::string &k, std::vector<int64_t> dflt) const;
        int64_t i(const std::string &k, int64_t dflt) const;
        float f(const std::string &k, float dflt) const;
        std::string s(const std::string &k, const std::string &dflt) const;
};

OTensor load_tensor(const std::string &path);
ONode load_node(const std::string &name);
OTensor input(const std::string &name, int i);
OTensor output(const std::string &name, int i = 0);
bool have(const std::string &name);
// NCHW (or NCW, NC, C) to NHWC.
test::Tensor to_nhwc(const OTensor &t);
// Padding of one axis from auto_pad (SAME_UPPER puts the odd pixel last).
void auto_pads(const std::string &mode, uint32_t in, uint32_t k, uint32_t s, uint32_t d, uint32_t *p0, uint32_t *p1);

} // namespace conformance

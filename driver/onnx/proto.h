// Reading ONNX protobuf messages into the frontend's values (not
// installed; protobuf is seen by load.cpp and tensors.cpp only).
#pragma once

#include <optional>
#include <string>

#include <onnx/onnx_pb.h>

#include "ir.h"

namespace onnxfe {

// Files are read whole, regular files only, up to this size.
constexpr uint64_t kMaxFile = 2ull << 30;
bool read_file(const std::string &path, uint64_t limit, std::string *out, std::string *why);
// An initializer's, a Constant's or an attribute's tensor; external data
// from a file in dir.  `what` names it in errors.
std::optional<Error> read_tensor(const onnx::TensorProto &t, const std::string &dir, const std::string &what, Constant *c);
std::optional<Error> read_attr(const onnx::AttributeProto &a, const std::string &dir, const std::string &what, Attr *out);

} // namespace onnxfe

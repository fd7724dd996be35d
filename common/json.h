// A string as a JSON string literal, quotes included: what bwqctl --json
// and npu-run --json print.
#pragma once

#include <string>

namespace bwq {

std::string json_str(const std::string &s);

} // namespace bwq

// Value parsers shared by the config's key table and the table parser.
#pragma once

#include <string>

namespace bwq {

// A decimal number in [lo, hi]: 0, -EINVAL (not a number) or -ERANGE.
int parse_uint(const std::string &v, unsigned long lo, unsigned long hi, unsigned long *ret);

} // namespace bwq

// Text from outside (client names, config lines, file contents) checked
// and made safe to print.
#pragma once

#include <string>
#include <string_view>

namespace bwq {

// True for well-formed UTF-8 (no overlong forms, surrogates or code points
// past U+10FFFF) with no control characters (C0, DEL, C1).
bool utf8_printable(std::string_view s);

// s with every byte that is not part of printable UTF-8 written as \xNN,
// and backslashes doubled, so that it cannot move a terminal's cursor or
// forge a log line.  At most max_bytes of s are shown, then "...".
std::string escape_text(std::string_view s, size_t max_bytes = 256);

} // namespace bwq

#include "json.h"

#include <cstdint>
#include <cstdio>

namespace bwq {

std::string json_str(const std::string &s)
{
        std::string o = "\"";
        for (char c : s) {
                if (c == '"' || c == '\\')
                        o += '\\', o += c;
                else if (c == '\n')
                        o += "\\n";
                else if (uint8_t(c) < 0x20) {
                        char b[8];
                        snprintf(b, sizeof b, "\\u%04x", c);
                        o += b;
                } else
                        o += c;
        }
        return o + "\"";
}

} // namespace bwq

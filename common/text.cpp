#include "text.h"

#include <cstdint>
#include <cstdio>

namespace bwq {

namespace {

// The length of the printable UTF-8 character at s[i], or 0.
size_t printable_char(std::string_view s, size_t i)
{
        const auto b = [&](size_t k) { return uint8_t(s[i + k]); };
        uint8_t c = b(0);
        if (c < 0x20 || c == 0x7f)
                return 0;
        if (c < 0x80)
                return 1;
        size_t n;
        uint32_t cp, min;
        if ((c & 0xe0) == 0xc0)
                n = 2, cp = c & 0x1f, min = 0x80;
        else if ((c & 0xf0) == 0xe0)
                n = 3, cp = c & 0x0f, min = 0x800;
        else if ((c & 0xf8) == 0xf0)
                n = 4, cp = c & 0x07, min = 0x10000;
        else
                return 0;
        if (i + n > s.size())
                return 0;
        for (size_t k = 1; k < n; k++) {
                if ((b(k) & 0xc0) != 0x80)
                        return 0;
                cp = cp << 6 | (b(k) & 0x3f);
        }
        if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff) || (cp >= 0x80 && cp <= 0x9f))
                return 0;
        return n;
}

} // namespace

bool utf8_printable(std::string_view s)
{
        for (size_t i = 0; i < s.size();) {
                size_t n = printable_char(s, i);
                if (!n)
                        return false;
                i += n;
        }
        return true;
}

std::string escape_text(std::string_view s, size_t max_bytes)
{
        std::string out;
        size_t i = 0;
        for (; i < s.size() && i < max_bytes;) {
                size_t n = printable_char(s, i);
                if (n && s[i] != '\\') {
                        out.append(s.substr(i, n));
                        i += n;
                        continue;
                }
                if (s[i] == '\\') {
                        out += "\\\\";
                } else {
                        char buf[8];
                        snprintf(buf, sizeof buf, "\\x%02x", unsigned(uint8_t(s[i])));
                        out += buf;
                }
                i++;
        }
        if (i < s.size())
                out += "...";
        return out;
}

} // namespace bwq

// libFuzzer target over bwqd's text parsers: the config file (with the
// checks that span keys), replay traces and table strings.  A parser must
// return an error naming what was wrong, or a config that passes its checks.
#include <cstddef>
#include <cstdint>
#include <string>

#include "daemon/config.h"
#include "daemon/source.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        if (size < 1)
                return 0;
        std::string text(reinterpret_cast<const char *>(data) + 1, size - 1);
        std::string why;
        switch (data[0] % 3) {
        case 0: {
                bwq::Config c;
                int r = bwq::config_parse_text(text, "fuzz.conf", &c, &why);
                if (r < 0) {
                        if (why.rfind("fuzz.conf:", 0) != 0)
                                __builtin_trap();  // every error names the file and line
                        for (unsigned char ch : why)
                                if (ch < 0x20 || ch == 0x7f)
                                        __builtin_trap();  // and echoes no control byte
                        return 0;
                }
                for (uint64_t max : {1ull, 44000000000ull, ~0ull})
                        (void)bwq::config_check(c, max, &why);
                break;
        }
        case 1: {
                std::vector<bwq::ReplayRow> rows;
                if (bwq::parse_replay(text, "fuzz.csv", &rows, &why) == 0 && rows.empty())
                        __builtin_trap();
                break;
        }
        case 2: {
                std::vector<bwq::TableRow> t;
                if (bwq::parse_table(text, &t, &why) == 0) {
                        if (t.empty() || t.back().threshold.resolve(1000) != 0)
                                __builtin_trap();
                        std::vector<bwq::TableRow> again;
                        if (bwq::parse_table(bwq::table_to_string(t), &again, &why) != 0 || again.size() != t.size())
                                __builtin_trap();  // what we print, we read back
                }
                break;
        }
        }
        return 0;
}

// libFuzzer target over bwqd's D-Bus argument readers: RegisterClient's
// (name, depths, options dictionary) and SetTable's rows, on messages
// built from the input, of the right signature with any values or of any
// other shape.  A reader returns an error, or arguments that pass its
// checks; a SetTable row list goes on through the table checks SetTable
// runs.  No bus daemon: the messages are made on a bus over a socketpair
// and sealed as if received.
#include <sys/socket.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "common/depth.h"
#include "common/text.h"
#include "daemon/bus_args.h"

namespace {

struct Input {
        const uint8_t *p;
        size_t n;
        uint8_t byte() { return n ? (n--, *p++) : 0; }
        uint64_t u64()
        {
                uint64_t v = 0;
                for (int i = 0; i < 8; i++)
                        v = v << 8 | byte();
                return v;
        }
        std::string str()
        {
                size_t len = byte() % 80, k = std::min(len, n);
                std::string s(reinterpret_cast<const char *>(p), k);
                p += k;
                n -= k;
                return s;
        }
};

sd_bus *fuzz_bus()
{
        static sd_bus *bus = [] {
                int sv[2];
                sd_bus *b = nullptr;
                if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0, sv) < 0 || sd_bus_new(&b) < 0 ||
                    sd_bus_set_fd(b, sv[0], sv[0]) < 0 || sd_bus_start(b) < 0)
                        __builtin_trap();
                return b;
        }();
        return bus;
}

// A variant of a type the input picks, nested at most `depth` deep.
int append_variant(sd_bus_message *m, Input &in, int depth)
{
        switch (in.byte() % 8) {
        case 7: return sd_bus_message_append(m, "v", "h", 0);  // a descriptor (the reader only takes its number)
        case 0: return sd_bus_message_append(m, "v", "s", in.str().c_str());
        case 1: return sd_bus_message_append(m, "v", "u", uint32_t(in.u64()));
        case 2: return sd_bus_message_append(m, "v", "y", in.byte());
        case 3: return sd_bus_message_append(m, "v", "b", in.byte() & 1);
        case 4: return sd_bus_message_append(m, "v", "t", in.u64());
        case 5: return sd_bus_message_append(m, "v", "as", 2, in.str().c_str(), in.str().c_str());
        default: {
                if (depth <= 0)
                        return sd_bus_message_append(m, "v", "y", 0);
                int r = sd_bus_message_open_container(m, 'v', "a{sv}");
                if (r >= 0)
                        r = sd_bus_message_open_container(m, 'a', "{sv}");
                for (unsigned i = 0, k = in.byte() % 3; r >= 0 && i < k; i++) {
                        r = sd_bus_message_open_container(m, 'e', "sv");
                        if (r >= 0)
                                r = sd_bus_message_append(m, "s", in.str().c_str());
                        if (r >= 0)
                                r = append_variant(m, in, depth - 1);
                        if (r >= 0)
                                r = sd_bus_message_close_container(m);
                }
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
                return r >= 0 ? sd_bus_message_close_container(m) : r;
        }
        }
}

int build_register(sd_bus_message *m, Input &in)
{
        // Strings that are not UTF-8 never reach bwqd (the bus refuses
        // them); sd-bus refuses to append them too, and the input is skipped.
        int r = sd_bus_message_append(m, "syy", in.str().c_str(), in.byte(), in.byte());
        if (r < 0)
                return r;
        if ((r = sd_bus_message_open_container(m, 'a', "{sv}")) < 0)
                return r;
        for (unsigned i = 0, k = in.byte() % 4; r >= 0 && i < k; i++) {
                r = sd_bus_message_open_container(m, 'e', "sv");
                if (r >= 0)
                        r = sd_bus_message_append(m, "s", in.str().c_str());
                if (r >= 0)
                        r = append_variant(m, in, 2);
                if (r >= 0)
                        r = sd_bus_message_close_container(m);
        }
        return r < 0 ? r : sd_bus_message_close_container(m);
}

int build_table(sd_bus_message *m, Input &in)
{
        int r = sd_bus_message_open_container(m, 'a', "(ty)");
        for (unsigned i = 0, k = in.byte() % 20; r >= 0 && i < k; i++)
                r = sd_bus_message_append(m, "(ty)", in.u64(), in.byte());
        return r < 0 ? r : sd_bus_message_close_container(m);
}

// Any other shape: a few values of the basic types, one after another.
int build_other(sd_bus_message *m, Input &in)
{
        int r = 0;
        for (unsigned i = 0, k = in.byte() % 6; r >= 0 && i < k; i++) {
                switch (in.byte() % 5) {
                case 0: r = sd_bus_message_append(m, "s", in.str().c_str()); break;
                case 1: r = sd_bus_message_append(m, "y", in.byte()); break;
                case 2: r = sd_bus_message_append(m, "t", in.u64()); break;
                case 3: r = sd_bus_message_append(m, "a(ty)", 1, in.u64(), in.byte()); break;
                default: r = sd_bus_message_append(m, "a{sv}", 1, in.str().c_str(), "s", in.str().c_str()); break;
                }
        }
        return r;
}

} // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
        Input in{data, size};
        const uint8_t sel = in.byte();
        sd_bus_message *m = nullptr;
        if (sd_bus_message_new_method_call(fuzz_bus(), &m, "org.bwq1", "/org/bwq1", "org.bwq1.Manager", "RegisterClient") < 0)
                __builtin_trap();
        const bool table = sel & 1;
        int r = (sel & 6) == 6 ? build_other(m, in) : table ? build_table(m, in) : build_register(m, in);
        if (r >= 0 && sd_bus_message_seal(m, 1, 0) >= 0 && sd_bus_message_rewind(m, 1) >= 0) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                if (table) {
                        std::vector<bwq::TableRow> rows;
                        r = bwq::read_table_rows(m, &rows, &e);
                        if (r >= 0) {
                                if (rows.size() > 16)
                                        __builtin_trap();
                                // What Service::set_table runs next.
                                std::vector<bwq::TableRow> parsed;
                                std::string why;
                                if (!rows.empty() && bwq::parse_table(bwq::table_to_string(rows), &parsed, &why) == 0 &&
                                    (parsed.size() != rows.size() || parsed.back().threshold.resolve(1000) != 0))
                                        __builtin_trap();
                        }
                } else {
                        bwq::RegisterArgs a;
                        r = bwq::read_register_args(m, &a, &e);
                        if (r >= 0 && (a.name.empty() || a.name.size() > 64 || !bwq::utf8_printable(a.name) ||
                                       !bwq::depth_supported(a.min_bits) || !bwq::depth_supported(a.max_bits) ||
                                       a.min_bits > a.max_bits))
                                __builtin_trap();
                }
                // An error says what was wrong, in printable text.
                if (r < 0 && e.message && !bwq::utf8_printable(e.message))
                        __builtin_trap();
                sd_bus_error_free(&e);
        }
        sd_bus_message_unref(m);
        return 0;
}

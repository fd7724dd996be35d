// bwqctl sample, explain, reload and set-table: one method call each.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/units.h"
#include "daemon/config.h"

#include "bwqctl.h"
#include "common/bus.h"
#include "common/sd_ptr.h"

namespace bwqctl {

using namespace bwq::dbus;

int cmd_sample(sd_bus *bus)
{
        bwq::BusError e;
        sd_bus_message *raw = nullptr;
        int r = sd_bus_call_method(bus, kService, kPath, kManager, "Sample", e.get(), &raw, "");
        bwq::BusMessagePtr reply(raw);
        if (r < 0)
                return error_exit("Sample", e.get(), r);
        uint8_t bits;
        uint64_t avail, used, ts;
        const char *src;
        r = sd_bus_message_read(reply.get(), "yttts", &bits, &avail, &used, &ts, &src);
        if (r >= 0) {
                if (json)
                        printf("{\"bits\":%u,\"available_bps\":%llu,\"used_bps\":%llu,\"timestamp_usec\":%llu,\"source\":%s}\n", bits,
                               (unsigned long long)avail, (unsigned long long)used, (unsigned long long)ts, json_str(src).c_str());
                else
                        printf("%u bits: %s available, %s used by others (%s, t=%llu us)\n", bits,
                               bwq::format_bandwidth(avail).c_str(), bwq::format_bandwidth(used).c_str(), src,
                               (unsigned long long)ts);
        } else {
                fprintf(stderr, "bwqctl: Sample: cannot read the reply: %s\n", strerror(-r));
        }
        return r < 0 ? EXIT_FAIL : EXIT_OK;
}

int cmd_simple(sd_bus *bus, const char *method)
{
        bwq::BusError e;
        sd_bus_message *raw = nullptr;
        int r = sd_bus_call_method(bus, kService, kPath, kManager, method, e.get(), &raw, "");
        bwq::BusMessagePtr reply(raw);
        if (r < 0)
                return error_exit(method, e.get(), r);
        if (strcmp(method, "Explain") == 0) {
                const char *text;
                if ((r = sd_bus_message_read(reply.get(), "s", &text)) < 0) {
                        fprintf(stderr, "bwqctl: Explain: cannot read the reply: %s\n", strerror(-r));
                        return EXIT_FAIL;
                }
                if (json)
                        printf("{\"text\":%s}\n", json_str(text).c_str());
                else
                        fputs(text, stdout);
        }
        return EXIT_OK;
}

int cmd_set_table(sd_bus *bus, const std::string &text)
{
        std::vector<bwq::TableRow> rows;
        std::string why;
        if (bwq::parse_table(text, &rows, &why) < 0) {
                fprintf(stderr, "bwqctl: set-table: %s\n", why.c_str());
                return EXIT_USAGE;
        }
        Status st;
        bwq::BusError e;
        int r = get_status(bus, &st, e.get());
        sd_bus_message *raw = nullptr;
        if (r >= 0)
                r = sd_bus_message_new_method_call(bus, &raw, kService, kPath, kManager, "SetTable");
        bwq::BusMessagePtr msg(raw);
        sd_bus_message *m = msg.get();
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(ty)");
        for (size_t i = 0; r >= 0 && i < rows.size(); i++)
                r = sd_bus_message_append(m, "(ty)", rows[i].threshold.resolve(st.max), rows[i].bits);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, e.get(), nullptr);
        if (r < 0)
                return error_exit("SetTable", e.get(), r);
        return EXIT_OK;
}

} // namespace bwqctl

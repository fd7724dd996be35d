// bwqctl sample, explain, reload and set-table: one method call each.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/units.h"
#include "daemon/config.h"

#include "bwqctl.h"
#include "common/bus.h"

namespace bwqctl {

using namespace bwq::dbus;

int cmd_sample(sd_bus *bus)
{
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = nullptr;
        int r = sd_bus_call_method(bus, kService, kPath, kManager, "Sample", &e, &reply, "");
        if (r < 0) {
                int x = error_exit("Sample", &e, r);
                sd_bus_error_free(&e);
                return x;
        }
        uint8_t bits;
        uint64_t avail, used, ts;
        const char *src;
        r = sd_bus_message_read(reply, "yttts", &bits, &avail, &used, &ts, &src);
        if (r >= 0) {
                if (json)
                        printf("{\"bits\":%u,\"available_bps\":%llu,\"used_bps\":%llu,\"timestamp_usec\":%llu,\"source\":%s}\n", bits,
                               (unsigned long long)avail, (unsigned long long)used, (unsigned long long)ts, json_str(src).c_str());
                else
                        printf("%u bits: %s available, %s used by others (%s, t=%llu us)\n", bits,
                               bwq::format_bandwidth(avail).c_str(), bwq::format_bandwidth(used).c_str(), src,
                               (unsigned long long)ts);
        }
        sd_bus_message_unref(reply);
        return r < 0 ? EXIT_FAIL : EXIT_OK;
}

int cmd_simple(sd_bus *bus, const char *method)
{
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = nullptr;
        int r = sd_bus_call_method(bus, kService, kPath, kManager, method, &e, &reply, "");
        if (r < 0) {
                int x = error_exit(method, &e, r);
                sd_bus_error_free(&e);
                return x;
        }
        if (strcmp(method, "Explain") == 0) {
                const char *text;
                if ((r = sd_bus_message_read(reply, "s", &text)) < 0) {
                        fprintf(stderr, "bwqctl: Explain: cannot read the reply: %s\n", strerror(-r));
                        sd_bus_message_unref(reply);
                        return EXIT_FAIL;
                }
                if (json)
                        printf("{\"text\":%s}\n", json_str(text).c_str());
                else
                        fputs(text, stdout);
        }
        sd_bus_message_unref(reply);
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
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = get_status(bus, &st, &e);
        sd_bus_message *m = nullptr;
        if (r >= 0)
                r = sd_bus_message_new_method_call(bus, &m, kService, kPath, kManager, "SetTable");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(ty)");
        for (size_t i = 0; r >= 0 && i < rows.size(); i++)
                r = sd_bus_message_append(m, "(ty)", rows[i].threshold.resolve(st.max), rows[i].bits);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &e, nullptr);
        sd_bus_message_unref(m);
        if (r < 0) {
                int x = error_exit("SetTable", &e, r);
                sd_bus_error_free(&e);
                return x;
        }
        return EXIT_OK;
}

} // namespace bwqctl

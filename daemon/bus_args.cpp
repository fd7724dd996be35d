#include "bus_args.h"

#include <cstring>

#include "common/depth.h"
#include "common/text.h"

namespace bwq {

int read_register_args(sd_bus_message *m, RegisterArgs *ret, sd_bus_error *error)
{
        const char *name;
        uint8_t lo, hi;
        int r = sd_bus_message_read(m, "syy", &name, &lo, &hi);
        if (r < 0)
                return r;
        // D-Bus strings are valid UTF-8 already; control characters are not
        // names (they would reach logs and bwqctl's output).
        size_t len = strlen(name);
        if (len == 0 || len > 64 || !utf8_printable(name))
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
                                        "name must be 1 to 64 bytes of printable UTF-8 (no control characters)");
        if (!depth_supported(lo) || !depth_supported(hi) || lo > hi)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "min_bits %u and max_bits %u must be 4, 6, 8 or 16 with min <= max", lo, hi);
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        // An unknown key is refused, so that a client asking for an option
        // learns that this bwqd does not know it.
        int traffic_fd = -1;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;
                if ((r = sd_bus_message_read(m, "s", &key)) < 0)
                        return r;
                if (strcmp(key, "TrafficCounter") != 0)
                        return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "unknown option '%s'",
                                                 escape_text(key, 64).c_str());
                if (traffic_fd >= 0)
                        return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "option 'TrafficCounter' given twice");
                if (sd_bus_message_read(m, "v", "h", &traffic_fd) < 0)
                        return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS,
                                                "option 'TrafficCounter' must be a file descriptor (h)");
                if ((r = sd_bus_message_exit_container(m)) < 0)
                        return r;
        }
        if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                return r;
        ret->traffic_fd = traffic_fd;
        ret->name = name;
        ret->min_bits = lo;
        ret->max_bits = hi;
        return 0;
}

int read_table_rows(sd_bus_message *m, std::vector<TableRow> *ret, sd_bus_error *error)
{
        std::vector<TableRow> rows;
        int r = sd_bus_message_enter_container(m, 'a', "(ty)");
        if (r < 0)
                return r;
        uint64_t t;
        uint8_t b;
        while ((r = sd_bus_message_read(m, "(ty)", &t, &b)) > 0) {
                if (rows.size() >= 16)
                        return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "a table has at most 16 rows");
                rows.push_back({Level{false, 0, t}, b});
        }
        if (r < 0)
                return r;
        if ((r = sd_bus_message_exit_container(m)) < 0)
                return r;
        *ret = std::move(rows);
        return 0;
}

} // namespace bwq

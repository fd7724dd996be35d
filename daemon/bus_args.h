// The arguments of bwqd's D-Bus methods, read and checked apart from what
// the methods do, so that a fuzzer can feed them any message.
#pragma once

#include <systemd/sd-bus.h>

#include <string>
#include <vector>

#include "config.h"

namespace bwq {

struct RegisterArgs {
        std::string name;
        uint8_t min_bits = 0, max_bits = 0;
        int traffic_fd = -1;  // option TrafficCounter (h): the message's, not ours
};

// RegisterClient(s name, y min_bits, y max_bits, a{sv} options).  Returns
// 0, or a negative errno / sd_bus_error_set result with *error naming what
// was wrong: a name that is not 1 to 64 bytes of printable UTF-8, depths
// that are not 4, 6, 8 or 16 with min <= max, an unknown option.
int read_register_args(sd_bus_message *m, RegisterArgs *ret, sd_bus_error *error);

// SetTable(a(ty) rows): at most 16 rows, read as absolute thresholds; the
// table's own checks are parse_table's (Service::set_table).
int read_table_rows(sd_bus_message *m, std::vector<TableRow> *ret, sd_bus_error *error);

} // namespace bwq

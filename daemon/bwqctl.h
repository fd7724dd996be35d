// bwqctl's parts (not installed): the bus helpers and one
// file per group of verbs (status and table; sample, explain, reload and
// set-table; monitor; calibrate).
#pragma once

#include <systemd/sd-bus.h>

#include "common/json.h"
#include "common/sd_ptr.h"

#include <cstdint>
#include <string>
#include <utility>
#include <vector>

namespace bwqctl {

enum Exit { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NOBWQD = 3, EXIT_DENIED = 4 };

// --json: every verb prints one JSON object instead of text.
extern bool json;

struct Status {
        uint8_t bits = 0;
        uint64_t available = 0, used = 0, max = 0, interval = 0;
        uint32_t section = 0, clients = 0;
        std::string source;
        int stale = 0;
        std::vector<std::pair<uint64_t, uint8_t>> table;
        struct C {
                std::string path, name;
                uint32_t pid;
                uint8_t lo, hi, bits;
        };
        std::vector<C> client_list;
};

// The bus named by --bus (system, user or an address); null after saying why.
bwq::BusPtr connect(const std::string &spec);
int error_exit(const char *what, const sd_bus_error *e, int r);
using bwq::json_str;
std::string clients_line(const Status &st);
void print_status(const Status &st);
int get_status(sd_bus *bus, Status *st, sd_bus_error *e);
int cmd_status(sd_bus *bus);
int cmd_table(sd_bus *bus);
int cmd_sample(sd_bus *bus);
int cmd_simple(sd_bus *bus, const char *method);
int cmd_set_table(sd_bus *bus, const std::string &text);
int cmd_monitor(sd_bus *bus);
int cmd_calibrate(const std::string &bus_spec, unsigned threads, double seconds, const std::string &state_dir);

} // namespace bwqctl

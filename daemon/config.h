// bwqd.conf: /etc/bwq/bwqd.conf, then bwqd.conf.d/*.conf in lexical order
// (DESIGN §4.6).  See bwqd.conf(5).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "common/units.h"

namespace bwq {

enum class SourceKind { Auto, Resctrl, Perf, Ebpf, Probe, Replay };
const char *source_kind_name(SourceKind k);

enum class Smoothing { None, Ewma, Window };
enum class OnStale { Keep, Min, Max, Bits };
enum class ProbeMethod { Auto, Stream, Latency };
// The ebpf source's counter: memory-traffic events, or (tests only, never
// from the config) a software event standing in for one.
enum class EbpfEvent { Auto, LlcMisses, LlcLoadMisses, TestTaskClock, TestPageFaults };

// One row of the FIG. 5 table: available > threshold -> bits.  The last
// row's threshold is 0 and takes everything below the others.
struct TableRow {
        Level threshold;
        uint8_t bits;
};

struct Config {
        // [Sampling]
        SourceKind source = SourceKind::Auto;
        uint64_t interval_usec = 100000;
        Smoothing smoothing = Smoothing::Ewma;
        double ewma_alpha = 0.5;
        unsigned window = 4;
        uint64_t sample_min_interval_usec = 10000;  // Sample() rate limit
        // [Bandwidth]
        std::optional<uint64_t> max_bps;  // unset: calibrated value, else 44 GB/s
        // [Policy]
        std::vector<TableRow> table = default_table();
        Level hysteresis{true, 2.0, 0};
        uint64_t min_dwell_usec = 500000;
        OnStale on_stale = OnStale::Keep;
        uint8_t stale_bits = 8;
        // [Resctrl]
        std::string resctrl_path = "/sys/fs/resctrl";
        std::string resctrl_group = "bwq-npu";
        // [Perf]
        std::string sysfs_root = "/sys";
        // [Probe]
        ProbeMethod probe_method = ProbeMethod::Auto;
        uint64_t probe_buffer_bytes = 256ull << 20;
        // [Ebpf]
        EbpfEvent ebpf_event = EbpfEvent::Auto;
        unsigned ebpf_line_size = 64;
        unsigned ebpf_max_tasks = 16384;
        std::string ebpf_cgroup;
        uint64_t ebpf_tick_usec = 10000;
        // [Replay]
        std::string replay_path;
        // [Clients]
        unsigned clients_per_connection = 16;
        unsigned clients_total = 4096;
        // [Service]
        std::string state_dir = "/var/lib/bwq";

        static std::vector<TableRow> default_table();
};

// Parses one file's text into cfg (on top of what it holds).  Returns 0 or
// -EINVAL with *ret_error "FILE:LINE: [Section] Key: reason".
int config_parse_text(const std::string &text, const std::string &filename, Config *cfg, std::string *ret_error);
// The main file (missing is fine) and its .conf.d drop-ins, then the checks
// that span keys.  Returns 0, or a negative errno with *ret_error.
int config_load(const std::string &path, Config *ret, std::string *ret_error);
// Checks that span keys (table order against the maximum, etc.).
int config_check(const Config &cfg, uint64_t max_bps, std::string *ret_error);

// "75%:16 50%:8 25%:6 0:4"
int parse_table(const std::string &s, std::vector<TableRow> *ret, std::string *ret_error);
std::string table_to_string(const std::vector<TableRow> &t);

} // namespace bwq

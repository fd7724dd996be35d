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
// A source by its name in Source= and --source; -EINVAL saying why.
int source_kind_parse(const std::string &name, SourceKind *ret, std::string *why);

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
        bool operator==(const TableRow &) const = default;
};

// One struct per section; a reload compares them whole.
struct SamplingConfig {
        SourceKind source = SourceKind::Auto;
        uint64_t interval_usec = 100000;
        Smoothing smoothing = Smoothing::Ewma;
        double ewma_alpha = 0.5;
        unsigned window = 4;
        uint64_t sample_min_interval_usec = 10000;  // Sample() rate limit
        bool operator==(const SamplingConfig &) const = default;
};
// The largest maximum bandwidth bwqd takes, configured or calibrated: 1 PB/s.
constexpr uint64_t kMaxBandwidthLimit = 1000000000000000ull;
// The smallest calibrated one it believes: 1 MB/s.
constexpr uint64_t kMinCalibratedBandwidth = 1000000ull;

struct BandwidthConfig {
        std::optional<uint64_t> max_bps;  // unset: calibrated value, else 44 GB/s
        bool operator==(const BandwidthConfig &) const = default;
};
struct PolicyConfig {
        std::vector<TableRow> table = default_table();
        Level hysteresis{true, 2.0, 0};
        uint64_t min_dwell_usec = 500000;
        OnStale on_stale = OnStale::Keep;
        uint8_t stale_bits = 8;
        static std::vector<TableRow> default_table();
        bool operator==(const PolicyConfig &) const = default;
};
struct ResctrlConfig {
        std::string path = "/sys/fs/resctrl";
        std::string group = "bwq-npu";
        bool operator==(const ResctrlConfig &) const = default;
};
struct PerfConfig {
        std::string sysfs_root = "/sys";
        bool operator==(const PerfConfig &) const = default;
};
struct ProbeConfig {
        ProbeMethod method = ProbeMethod::Auto;
        uint64_t buffer_bytes = 256ull << 20;
        bool operator==(const ProbeConfig &) const = default;
};
struct EbpfConfig {
        EbpfEvent event = EbpfEvent::Auto;
        unsigned line_size = 64;
        unsigned max_tasks = 16384;
        std::string cgroup;
        uint64_t tick_usec = 10000;
        bool operator==(const EbpfConfig &) const = default;
};
struct ReplayConfig {
        std::string path;
        bool operator==(const ReplayConfig &) const = default;
};
struct ClientsConfig {
        unsigned per_connection = 16;
        unsigned per_user = 256;     // for every uid but root's and bwqd's own
        unsigned total = 4096;
        unsigned reserved = 256;     // of total, kept for root and bwqd's own uid
        bool operator==(const ClientsConfig &) const = default;
};
struct ServiceConfig {
        std::string state_dir = "/var/lib/bwq";
        bool operator==(const ServiceConfig &) const = default;
};
// Prometheus metrics in the node_exporter textfile-collector format.
struct MetricsConfig {
        std::string textfile;                 // empty: none
        uint64_t interval_usec = 5000000;
        bool operator==(const MetricsConfig &) const = default;
};

struct Config {
        SamplingConfig sampling;
        BandwidthConfig bandwidth;
        PolicyConfig policy;
        ResctrlConfig resctrl;
        PerfConfig perf;
        ProbeConfig probe;
        EbpfConfig ebpf;
        ReplayConfig replay;
        ClientsConfig clients;
        ServiceConfig service;
        MetricsConfig metrics;
        bool operator==(const Config &) const = default;
};

// A key of the config files: its section, name and parser, which returns 0
// or -EINVAL with the reason in *ret_why (config_keys.cpp).
struct ConfigKey {
        const char *section, *key;
        int (*parse)(const std::string &value, Config *c, std::string *ret_why);
};
// The table of every key, and the sections they are in.
const std::vector<ConfigKey> &config_keys();

// Parses one file's text into cfg (on top of what it holds).  Returns 0 or
// -EINVAL with *ret_error "FILE:LINE: [Section] Key: reason".
int config_parse_text(const std::string &text, const std::string &filename, Config *cfg, std::string *ret_error);
// The main file (missing is fine) and its .conf.d drop-ins, then the checks
// that span keys.  Returns 0, or a negative errno with *ret_error.
int config_load(const std::string &path, Config *ret, std::string *ret_error);
// The maximum `bwqctl calibrate` stored at path (STATE/max-bandwidth): a
// regular file holding a decimal number of bytes per second from 1 MB/s to
// 1 PB/s.  Returns 0, -ENOENT, or another negative errno with *ret_error.
int read_calibration(const std::string &path, uint64_t *ret, std::string *ret_error);
// Checks that span keys (table order against the maximum, etc.).
int config_check(const Config &cfg, uint64_t max_bps, std::string *ret_error);

// "75%:16 50%:8 25%:6 0:4"
int parse_table(const std::string &s, std::vector<TableRow> *ret, std::string *ret_error);
std::string table_to_string(const std::vector<TableRow> &t);

} // namespace bwq

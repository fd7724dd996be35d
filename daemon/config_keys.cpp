// The keys of bwqd.conf (bwqd.conf(5)): one row each, with its parser.
#include <errno.h>

#include <algorithm>
#include <cstdlib>

#include "common/depth.h"
#include "config.h"
#include "config_parse.h"

namespace bwq {

namespace {

using Why = std::string *;

int bad(Why why, const std::string &msg)
{
        *why = msg;
        return -EINVAL;
}

int absolute_path(const std::string &v, std::string *field, Why why)
{
        if (v[0] != '/')
                return bad(why, "'" + v + "' is not an absolute path");
        *field = v;
        return 0;
}

// A duration in [lo, hi] microseconds, `what` naming the range.
int duration_in(const std::string &v, uint64_t lo, uint64_t hi, const char *what, uint64_t *field, Why why)
{
        uint64_t u;
        if (parse_duration(v, &u) < 0 || u < lo || u > hi)
                return bad(why, "'" + v + "' is not a duration " + what);
        *field = u;
        return 0;
}

int number_in(const std::string &v, unsigned long lo, unsigned long hi, unsigned *field, Why why)
{
        unsigned long n;
        if (parse_uint(v, lo, hi, &n) < 0)
                return bad(why, "'" + v + "' is not a number from " + std::to_string(lo) + " to " + std::to_string(hi));
        *field = unsigned(n);
        return 0;
}

int sampling_source(const std::string &v, Config *c, Why why)
{
        std::string e;
        if (source_kind_parse(v, &c->sampling.source, &e) < 0)
                return bad(why, e);
        return 0;
}

int sampling_smoothing(const std::string &v, Config *c, Why why)
{
        SamplingConfig &s = c->sampling;
        unsigned long n;
        if (v == "none") {
                s.smoothing = Smoothing::None;
        } else if (v.rfind("ewma:", 0) == 0) {
                char *e;
                errno = 0;
                double a = strtod(v.c_str() + 5, &e);
                if (errno || *e || !(a > 0 && a <= 1))
                        return bad(why, "'" + v + "': the EWMA weight must be in (0, 1]");
                s.smoothing = Smoothing::Ewma;
                s.ewma_alpha = a;
        } else if (v.rfind("window:", 0) == 0) {
                if (parse_uint(v.substr(7), 1, 1000, &n) < 0)
                        return bad(why, "'" + v + "': the window is 1 to 1000 samples");
                s.smoothing = Smoothing::Window;
                s.window = unsigned(n);
        } else {
                return bad(why, "'" + v + "' is not none, ewma:ALPHA or window:N");
        }
        return 0;
}

int bandwidth_max(const std::string &v, Config *c, Why why)
{
        if (v == "calibrated") {
                c->bandwidth.max_bps.reset();
                return 0;
        }
        uint64_t u;
        int r = parse_bandwidth(v, &u);
        if (r == -ERANGE || (r >= 0 && u > kMaxBandwidthLimit))
                return bad(why, "'" + v + "' is more than 1 PB/s, past any memory system");
        if (r < 0 || u == 0)
                return bad(why, "'" + v + "' is not a bandwidth such as 44GB/s, or 'calibrated'");
        c->bandwidth.max_bps = u;
        return 0;
}

// The textfile collector reads DIR/*.prom: an absolute path with that
// ending, or "" (none).
int metrics_textfile(const std::string &v, Config *c, Why why)
{
        if (v == "none") {
                c->metrics.textfile.clear();
                return 0;
        }
        if (v[0] != '/' || v.size() < 7 || v.compare(v.size() - 5, 5, ".prom") != 0 || v.back() == '/')
                return bad(why, "'" + v + "' is not an absolute path of a .prom file, or 'none'");
        c->metrics.textfile = v;
        return 0;
}

int policy_on_stale(const std::string &v, Config *c, Why why)
{
        PolicyConfig &p = c->policy;
        unsigned long n;
        if (v == "keep")
                p.on_stale = OnStale::Keep;
        else if (v == "min")
                p.on_stale = OnStale::Min;
        else if (v == "max")
                p.on_stale = OnStale::Max;
        else if (parse_uint(v, 1, 64, &n) == 0 && depth_supported(unsigned(n))) {
                p.on_stale = OnStale::Bits;
                p.stale_bits = uint8_t(n);
        } else
                return bad(why, "'" + v + "' is not keep, min, max or 4, 6, 8, 16");
        return 0;
}

int ebpf_event(const std::string &v, Config *c, Why why)
{
        if (v == "auto")
                c->ebpf.event = EbpfEvent::Auto;
        else if (v == "llc-misses")
                c->ebpf.event = EbpfEvent::LlcMisses;
        else if (v == "llc-load-misses")
                c->ebpf.event = EbpfEvent::LlcLoadMisses;
        else if (v == "cycles" || v == "instructions" || v == "task-clock" || v == "page-faults" || v == "cpu-clock" ||
                 v == "branches")
                return bad(why, "'" + v + "' is not a memory-traffic event (auto, llc-misses, llc-load-misses)");
        else
                return bad(why, "'" + v + "' is not auto, llc-misses or llc-load-misses");
        return 0;
}

int ebpf_line_size(const std::string &v, Config *c, Why why)
{
        unsigned long n;
        if (parse_uint(v, 1, 4096, &n) < 0 || (n & (n - 1)))
                return bad(why, "'" + v + "' is not a power of two from 1 to 4096 bytes");
        c->ebpf.line_size = unsigned(n);
        return 0;
}

int resctrl_group(const std::string &v, Config *c, Why why)
{
        if (v.size() > 64 || v.find('/') != std::string::npos || v == "." || v == "..")
                return bad(why, "'" + v + "' is not a group name");
        c->resctrl.group = v;
        return 0;
}

int probe_method(const std::string &v, Config *c, Why why)
{
        if (v == "auto")
                c->probe.method = ProbeMethod::Auto;
        else if (v == "stream")
                c->probe.method = ProbeMethod::Stream;
        else if (v == "latency")
                c->probe.method = ProbeMethod::Latency;
        else
                return bad(why, "'" + v + "' is not auto, stream or latency");
        return 0;
}

int probe_buffer(const std::string &v, Config *c, Why why)
{
        uint64_t b;
        // Sizes use the bandwidth units without "/s".
        if (parse_bandwidth(v + (v.back() == 'B' ? "/s" : ""), &b) < 0 || b < (16ull << 20) || b > (4ull << 30))
                return bad(why, "'" + v + "' is not a size from 16MiB to 4GiB");
        c->probe.buffer_bytes = b;
        return 0;
}

} // namespace

const std::vector<ConfigKey> &config_keys()
{
        static const std::vector<ConfigKey> keys = {
                {"Sampling", "Source", sampling_source},
                {"Sampling", "Interval",
                 [](const std::string &v, Config *c, Why why) {
                         return duration_in(v, 1000, 60000000, "from 1ms to 60s", &c->sampling.interval_usec, why);
                 }},
                {"Sampling", "Smoothing", sampling_smoothing},
                {"Sampling", "SampleMinInterval",
                 [](const std::string &v, Config *c, Why why) {
                         return duration_in(v, 0, 10000000, "up to 10s", &c->sampling.sample_min_interval_usec, why);
                 }},
                {"Bandwidth", "Max", bandwidth_max},
                {"Policy", "Table", [](const std::string &v, Config *c, Why why) { return parse_table(v, &c->policy.table, why); }},
                {"Policy", "Hysteresis",
                 [](const std::string &v, Config *c, Why why) {
                         return parse_level(v, &c->policy.hysteresis) < 0
                                        ? bad(why, "'" + v + "' is not a bandwidth or a percentage")
                                        : 0;
                 }},
                {"Policy", "MinDwell",
                 [](const std::string &v, Config *c, Why why) {
                         return duration_in(v, 0, 3600000000ull, "up to 1h", &c->policy.min_dwell_usec, why);
                 }},
                {"Policy", "OnStale", policy_on_stale},
                {"Resctrl", "Path", [](const std::string &v, Config *c, Why why) { return absolute_path(v, &c->resctrl.path, why); }},
                {"Resctrl", "Group", resctrl_group},
                {"Perf", "SysfsRoot", [](const std::string &v, Config *c, Why why) { return absolute_path(v, &c->perf.sysfs_root, why); }},
                {"Probe", "Method", probe_method},
                {"Probe", "Buffer", probe_buffer},
                {"Ebpf", "Event", ebpf_event},
                {"Ebpf", "LineSize", ebpf_line_size},
                {"Ebpf", "MaxTasks",
                 [](const std::string &v, Config *c, Why why) { return number_in(v, 64, 1048576, &c->ebpf.max_tasks, why); }},
                {"Ebpf", "Cgroup", [](const std::string &v, Config *c, Why why) { return absolute_path(v, &c->ebpf.cgroup, why); }},
                {"Ebpf", "Tick",
                 [](const std::string &v, Config *c, Why why) {
                         return duration_in(v, 1000, 1000000, "from 1ms to 1s", &c->ebpf.tick_usec, why);
                 }},
                {"Replay", "Path", [](const std::string &v, Config *c, Why why) { return absolute_path(v, &c->replay.path, why); }},
                {"Clients", "MaxPerConnection",
                 [](const std::string &v, Config *c, Why why) { return number_in(v, 1, 4096, &c->clients.per_connection, why); }},
                {"Clients", "Max",
                 [](const std::string &v, Config *c, Why why) { return number_in(v, 1, 65536, &c->clients.total, why); }},
                {"Clients", "MaxPerUser",
                 [](const std::string &v, Config *c, Why why) { return number_in(v, 1, 65536, &c->clients.per_user, why); }},
                {"Clients", "Reserved",
                 [](const std::string &v, Config *c, Why why) { return number_in(v, 0, 65535, &c->clients.reserved, why); }},
                {"Metrics", "TextfilePath", metrics_textfile},
                {"Metrics", "Interval",
                 [](const std::string &v, Config *c, Why why) {
                         return duration_in(v, 100000, 3600000000ull, "from 100ms to 1h", &c->metrics.interval_usec, why);
                 }},
                {"Service", "StateDirectory",
                 [](const std::string &v, Config *c, Why why) { return absolute_path(v, &c->service.state_dir, why); }},
        };
        return keys;
}

} // namespace bwq

// A bandwidth source (DESIGN §4.1): bytes moved since the previous read,
// in total and by the NPU clients, with the interval on CLOCK_MONOTONIC.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "config.h"

namespace bwq {

struct Reading {
        uint64_t t_ns = 0;         // CLOCK_MONOTONIC of this read
        uint64_t interval_ns = 0;  // since the previous read; 0 on the first
        uint64_t total_bytes = 0;  // moved by everyone in the interval
        uint64_t npu_bytes = 0;    // of which by the NPU clients
        bool npu_split = false;    // the source measured npu_bytes; else the clients' reports stand in
        bool valid = false;
        std::string note;          // why not valid, or what was skipped
};

// The clock every source reads (monotonic_ns of common/clock.h); tests
// replace it.
using Clock = std::function<uint64_t()>;

// A reading stamped now, its interval the time since *last (then now).
inline Reading stamped(const Clock &clock, uint64_t *last)
{
        Reading r;
        r.t_ns = clock();
        r.interval_ns = r.t_ns - *last;
        *last = r.t_ns;
        return r;
}

// A client's process as bwqd knows it from registration: its pid, and a
// pidfd opened then, so that a task is moved only while that process lives
// and never a later process that reuses the pid.  pidfd < 0: unknown.
struct ClientProcess {
        pid_t pid = 0;
        int pidfd = -1;
        // True while the process of the pidfd runs (false without one).
        bool alive() const;
};

class Source {
public:
        virtual ~Source() = default;
        virtual const char *name() const = 0;
        // Checks the source can work here.  Returns 0, or a negative errno
        // with the reason in *why.
        virtual int start(std::string *why) = 0;
        virtual Reading read() = 0;
        // NPU client processes, for sources that attribute traffic.
        virtual int add_client(const ClientProcess &, std::string *) { return 0; }
        virtual void remove_client(const ClientProcess &) {}
        // Per-domain or per-PMU detail for status and Explain().
        virtual std::string detail() const { return {}; }
};

// Turns cumulative counters into deltas; a counter that goes down was reset.
struct Counter {
        uint64_t prev = 0;
        bool have = false;
        // Returns true with *delta set, or false (first value, or a reset).
        bool update(uint64_t now, uint64_t *delta)
        {
                bool ok = have && now >= prev;
                if (ok)
                        *delta = now - prev;
                prev = now;
                have = true;
                return ok;
        }
        void forget() { have = false; }
};

std::unique_ptr<Source> make_resctrl_source(const Config &c, Clock clock);
// The perf_event_open(2) seam: tests feed counts through it.
struct PerfSys {
        std::function<int(void *attr, pid_t pid, int cpu, int group, unsigned long flags)> open;
        std::function<ssize_t(int fd, void *buf, size_t n)> read;
        std::function<int(int fd)> close;
};
PerfSys real_perf_sys();
std::unique_ptr<Source> make_perf_source(const Config &c, Clock clock, PerfSys sys);
std::unique_ptr<Source> make_probe_source(const Config &c, Clock clock, uint64_t max_bps);
std::unique_ptr<Source> make_replay_source(const Config &c, Clock clock);
std::unique_ptr<Source> make_ebpf_source(const Config &c, Clock clock);
// Events the ebpf source charged to a tgid that is not a client (tests).
uint64_t ebpf_events_of(Source *s, pid_t pid);

// Replay traces: "t_ms,used_Bps[,npu_Bps]" rows.
struct ReplayRow {
        uint64_t t_ms, used_bps, npu_bps;
        bool has_npu = false;  // the row gives npu_Bps (else the clients' reports stand in)
};
int parse_replay(const std::string &text, const std::string &name, std::vector<ReplayRow> *ret, std::string *ret_error);

} // namespace bwq

#include "source_registry.h"

#include <errno.h>
#include <sys/syscall.h>
#include <unistd.h>

namespace bwq {

bool ClientProcess::alive() const
{
        if (pidfd < 0)
                return false;
        // Signal 0 only checks: EPERM (another user's process, for a bwqd
        // without CAP_KILL) still means it runs; ESRCH means it exited.
        return syscall(SYS_pidfd_send_signal, pidfd, 0, nullptr, 0) == 0 || errno == EPERM;
}

const std::vector<SourceEntry> &source_registry()
{
        static const std::vector<SourceEntry> entries = {
                {SourceKind::Resctrl, true, [](const Config &c, Clock k, uint64_t) { return make_resctrl_source(c, k); }},
                {SourceKind::Perf, true, [](const Config &c, Clock k, uint64_t) { return make_perf_source(c, k, real_perf_sys()); }},
                {SourceKind::Ebpf, true, [](const Config &c, Clock k, uint64_t) { return make_ebpf_source(c, k); }},
                {SourceKind::Probe, true, [](const Config &c, Clock k, uint64_t max) { return make_probe_source(c, k, max); }},
                {SourceKind::Replay, false, [](const Config &c, Clock k, uint64_t) { return make_replay_source(c, k); }},
        };
        return entries;
}

int source_open(const Config &c, uint64_t max_bps, std::unique_ptr<Source> *ret, std::string *ret_choice,
                std::string *ret_why)
{
        const bool automatic = c.sampling.source == SourceKind::Auto;
        std::string passed;
        for (const SourceEntry &e : source_registry()) {
                if (automatic ? !e.in_auto : e.kind != c.sampling.source)
                        continue;
                std::unique_ptr<Source> s = e.make(c, monotonic_ns, max_bps);
                std::string reason;
                int r = s ? s->start(&reason) : -EOPNOTSUPP;
                if (r >= 0) {
                        std::string name = source_kind_name(e.kind);
                        *ret_choice = automatic ? "auto chose " + name + (passed.empty() ? "" : "; passed over: " + passed)
                                                : name + " (configured)";
                        *ret = std::move(s);
                        return 0;
                }
                passed += std::string(source_kind_name(e.kind)) + ": " + reason + "; ";
        }
        *ret_why = "no bandwidth source works: " + passed;
        return -ENODEV;
}

bool source_settings_differ(const Config &a, const Config &b)
{
        return a.sampling.source != b.sampling.source || a.resctrl != b.resctrl || a.perf != b.perf || a.probe != b.probe ||
               a.ebpf != b.ebpf || a.replay != b.replay;
}

} // namespace bwq

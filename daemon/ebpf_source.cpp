// The ebpf source: bpf/bwq_attrib.bpf.c charges a per-CPU memory-traffic
// counter to tasks and cgroups at every context switch and on a periodic
// tick; this loader opens the counters, owns the skeleton, and reads the
// maps each sample.  Bytes = events x [Ebpf] LineSize: an estimate.  The
// programs are pinned nowhere.
#include <linux/perf_event.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/utsname.h>
#include <unistd.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include <cerrno>
#include <cstring>
#include <map>
#include <memory>
#include <set>
#include <vector>

#include "bwq_attrib.skel.h"
#include "common/unique_fd.h"
#include "source.h"

namespace bwq {

namespace {

struct EventSpec {
        const char *name;
        uint32_t type;
        uint64_t config;
};

std::vector<EventSpec> candidates(EbpfEvent e)
{
        const uint64_t ll_read_miss = PERF_COUNT_HW_CACHE_LL | (PERF_COUNT_HW_CACHE_OP_READ << 8) |
                                      (uint64_t(PERF_COUNT_HW_CACHE_RESULT_MISS) << 16);
        switch (e) {
        case EbpfEvent::LlcMisses: return {{"llc-misses", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_MISSES}};
        case EbpfEvent::LlcLoadMisses: return {{"llc-load-misses", PERF_TYPE_HW_CACHE, ll_read_miss}};
        case EbpfEvent::TestTaskClock: return {{"task-clock (test stand-in)", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_TASK_CLOCK}};
        case EbpfEvent::TestPageFaults: return {{"page-faults (test stand-in)", PERF_TYPE_SOFTWARE, PERF_COUNT_SW_PAGE_FAULTS}};
        default:
                return {{"llc-misses", PERF_TYPE_HARDWARE, PERF_COUNT_HW_CACHE_MISSES},
                        {"llc-load-misses", PERF_TYPE_HW_CACHE, ll_read_miss}};
        }
}

int perf_open(perf_event_attr *a, int cpu)
{
        return int(syscall(SYS_perf_event_open, a, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC));
}

template <auto Fn> struct Destroy {
        template <class T> void operator()(T *p) const { (void)Fn(p); }
};

class EbpfSource : public Source {
public:
        EbpfSource(const Config &c, Clock clock) : cfg_(c), clock_(std::move(clock)) {}
        const char *name() const override { return "ebpf"; }

        int start(std::string *why) override
        {
                int ncpu = libbpf_num_possible_cpus();
                if (ncpu <= 0) {
                        *why = "cannot count the possible CPUs";
                        return -EINVAL;
                }
                // The counter first: without one there is nothing to attribute.
                std::string tried;
                for (const auto &ev : candidates(cfg_.ebpf.event)) {
                        perf_event_attr a{};
                        a.size = sizeof a;
                        a.type = ev.type;
                        a.config = ev.config;
                        a.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
                        std::vector<bwq::unique_fd> fds;
                        int err = 0;
                        for (int cpu = 0; cpu < ncpu; cpu++) {
                                bwq::unique_fd fd(perf_open(&a, cpu));
                                if (!fd && errno != ENODEV) {  // ENODEV: an offline CPU
                                        err = errno;
                                        break;
                                }
                                fds.push_back(std::move(fd));
                        }
                        if (!err) {
                                fds_ = std::move(fds);
                                event_ = ev.name;
                                break;
                        }
                        tried += std::string(ev.name) + ": " + strerror(err) + "; ";
                }
                if (fds_.empty()) {
                        *why = "no hardware memory-traffic counter (" + tried.substr(0, tried.size() - 2) + ")";
                        return -ENODEV;
                }
                skel_.reset(bwq_attrib__open());
                if (!skel_) {
                        int e = errno;
                        *why = std::string("cannot open the eBPF object: ") + strerror(e);
                        return -e;
                }
                (void)bpf_map__set_max_entries(skel_->maps.by_tgid, cfg_.ebpf.max_tasks);
                if (int r = bwq_attrib__load(skel_.get()); r < 0) {
                        *why = std::string("cannot load the eBPF programs (root with BTF needed): ") + strerror(-r);
                        return r;
                }
                for (int cpu = 0; cpu < ncpu; cpu++) {
                        int fd = fds_[cpu].get();
                        if (fd >= 0 && bpf_map_update_elem(bpf_map__fd(skel_->maps.counters), &cpu, &fd, BPF_ANY) < 0) {
                                int e = errno;
                                *why = "cannot place the counter of CPU " + std::to_string(cpu) + ": " + strerror(e);
                                return -e;
                        }
                }
                if (int r = bwq_attrib__attach(skel_.get()); r < 0) {
                        *why = std::string("cannot attach to sched_switch: ") + strerror(-r);
                        return r;
                }
                // The tick: a CPU-clock sampling event per CPU.
                for (int cpu = 0; cpu < ncpu; cpu++) {
                        if (!fds_[cpu])
                                continue;
                        perf_event_attr a{};
                        a.size = sizeof a;
                        a.type = PERF_TYPE_SOFTWARE;
                        a.config = PERF_COUNT_SW_CPU_CLOCK;
                        a.sample_period = cfg_.ebpf.tick_usec * 1000;
                        bwq::unique_fd fd(perf_open(&a, cpu));
                        if (!fd) {
                                int e = errno;
                                *why = "cannot open the tick of CPU " + std::to_string(cpu) + ": " + strerror(e);
                                return -e;
                        }
                        LinkPtr l(bpf_program__attach_perf_event(skel_->progs.on_tick, fd.get()));
                        if (!l) {
                                int e = errno;
                                *why = "cannot attach the tick of CPU " + std::to_string(cpu) + ": " + strerror(e);
                                return -e;
                        }
                        (void)fd.release();  // the link owns it now
                        tick_links_.push_back(std::move(l));
                }
                if (!cfg_.ebpf.cgroup.empty()) {
                        struct stat st;
                        if (stat(cfg_.ebpf.cgroup.c_str(), &st) < 0 || !S_ISDIR(st.st_mode)) {
                                *why = "[Ebpf] Cgroup: " + cfg_.ebpf.cgroup + " is not a cgroup directory";
                                return -ENOENT;
                        }
                        cgroup_id_ = st.st_ino;  // cgroup v2: the id is the directory's inode
                }
                last_ = clock_();
                (void)read();
                return 0;
        }

        Reading read() override
        {
                Reading r = stamped(clock_, &last_);
                uint64_t total = 0, npu = 0;
                std::vector<uint64_t> percpu(static_cast<size_t>(libbpf_num_possible_cpus()));
                uint32_t zero = 0;
                if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.total), &zero, percpu.data()) < 0) {
                        r.note = std::string("cannot read the totals: ") + strerror(errno);
                        return r;
                }
                for (uint64_t v : percpu)
                        total += v;
                uint64_t dtotal, dnpu = 0;
                bool ok = total_.update(total, &dtotal);
                // NPU clients: each registered tgid, and the configured cgroup.
                for (pid_t t : clients_) {
                        uint32_t k = uint32_t(t);
                        uint64_t v, d;
                        if (bpf_map_lookup_elem(bpf_map__fd(skel_->maps.npu_tgids), &k, &v) == 0 && tgid_[t].update(v, &d))
                                dnpu += d;
                }
                if (cgroup_id_) {
                        // No entry yet: nothing charged to the cgroup so far.
                        uint64_t v = 0, d;
                        (void)bpf_map_lookup_elem(bpf_map__fd(skel_->maps.by_cgroup), &cgroup_id_, &v);
                        if (cgroup_.update(v, &d))
                                dnpu += d;
                }
                npu = dnpu;
                if (!ok) {
                        r.note = "baseline";
                        return r;
                }
                r.total_bytes = dtotal * cfg_.ebpf.line_size;
                r.npu_bytes = std::min(npu, dtotal) * cfg_.ebpf.line_size;
                r.npu_split = true;
                r.valid = r.interval_ns > 0;
                return r;
        }

        int add_client(const ClientProcess &p, std::string *why) override
        {
                const pid_t pid = p.pid;
                uint32_t k = uint32_t(pid);
                uint64_t zero = 0;
                if (bpf_map_update_elem(bpf_map__fd(skel_->maps.npu_tgids), &k, &zero, BPF_NOEXIST) < 0 && errno != EEXIST) {
                        int e = errno;
                        *why = "cannot add tgid " + std::to_string(pid) + ": " + strerror(e);
                        return -e;
                }
                clients_.insert(pid);
                tgid_[pid] = Counter{};
                return 0;
        }

        void remove_client(const ClientProcess &p) override
        {
                const pid_t pid = p.pid;
                uint32_t k = uint32_t(pid);
                (void)bpf_map_delete_elem(bpf_map__fd(skel_->maps.npu_tgids), &k);
                clients_.erase(pid);
                tgid_.erase(pid);
        }

        std::string detail() const override
        {
                std::string s = "ebpf: event " + event_ + ", " + std::to_string(cfg_.ebpf.line_size) +
                                " bytes per event (an estimate), tick " + std::to_string(cfg_.ebpf.tick_usec) + " us, " +
                                std::to_string(clients_.size()) + " client tgid(s)";
                if (cgroup_id_)
                        s += ", cgroup " + cfg_.ebpf.cgroup + " (id " + std::to_string(cgroup_id_) + ")";
                return s + "\n";
        }

        // For tests: events charged to a tgid that is not a client.
        uint64_t events_of(pid_t pid) const
        {
                uint32_t k = uint32_t(pid);
                uint64_t v = 0;
                (void)bpf_map_lookup_elem(bpf_map__fd(skel_->maps.by_tgid), &k, &v);
                return v;
        }

private:
        Config cfg_;
        Clock clock_;
        // Destroyed in this order's reverse: the links, the programs, the counters.
        std::vector<bwq::unique_fd> fds_;
        std::unique_ptr<bwq_attrib, Destroy<bwq_attrib__destroy>> skel_;
        using LinkPtr = std::unique_ptr<bpf_link, Destroy<bpf_link__destroy>>;
        std::vector<LinkPtr> tick_links_;
        std::string event_;
        uint64_t cgroup_id_ = 0;
        uint64_t last_ = 0;
        Counter total_, cgroup_;
        std::set<pid_t> clients_;
        std::map<pid_t, Counter> tgid_;
};

} // namespace

std::unique_ptr<Source> make_ebpf_source(const Config &c, Clock clock)
{
        return std::make_unique<EbpfSource>(c, std::move(clock));
}

uint64_t ebpf_events_of(Source *s, pid_t pid)
{
        auto *e = dynamic_cast<EbpfSource *>(s);
        return e ? e->events_of(pid) : 0;
}

} // namespace bwq

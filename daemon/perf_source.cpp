// The perf source: memory-controller PMUs under <sysfs>/bus/event_source/
// devices, opened system-wide on the PMU's cpumask CPU.  The attr comes
// from the PMU's own sysfs description: `type`, `format/*`, `events/*`,
// `events/*.scale` and `events/*.unit`.  perf_event_open(2) sits behind a
// seam so tests feed counts.
#include <dirent.h>
#include <linux/perf_event.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "common/file.h"
#include "source.h"

namespace bwq {

PerfSys real_perf_sys()
{
        PerfSys s;
        s.open = [](void *attr, pid_t pid, int cpu, int group, unsigned long flags) {
                return int(syscall(SYS_perf_event_open, attr, pid, cpu, group, flags));
        };
        s.read = [](int fd, void *buf, size_t n) { return ::read(fd, buf, n); };
        s.close = [](int fd) { return ::close(fd); };
        return s;
}

namespace {

bool read_text(const std::string &path, std::string *ret)
{
        // sysfs attributes are short; a fixture tree's may be anything.
        std::string s, why;
        if (read_regular_file(path, 4096, &s, &why) < 0)
                return false;
        while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
                s.pop_back();
        *ret = s;
        return true;
}

std::vector<std::string> list_dir(const std::string &path)
{
        std::vector<std::string> out;
        if (DIR *d = opendir(path.c_str())) {
                while (dirent *de = readdir(d))
                        if (de->d_name[0] != '.')
                                out.push_back(de->d_name);
                closedir(d);
        }
        std::sort(out.begin(), out.end());
        return out;
}

bool parse_uint(const std::string &s, uint64_t *ret)
{
        if (s.empty())
                return false;
        char *e;
        errno = 0;
        unsigned long long v = strtoull(s.c_str(), &e, 0);
        if (errno || *e)
                return false;
        *ret = v;
        return true;
}

// "0-3,8" -> 0: the first CPU of a cpumask list.
bool first_cpu(const std::string &mask, int *ret)
{
        std::string head = mask.substr(0, mask.find_first_of(",-"));
        uint64_t v;
        if (!parse_uint(head, &v) || v > 1u << 20)
                return false;
        *ret = int(v);
        return true;
}

// Sets `value` into config/config1/config2 at the bit ranges of a format
// string such as "config:0-7" or "config1:0-3,8-11".
bool apply_format(const std::string &fmt, uint64_t value, perf_event_attr *attr, std::string *why)
{
        size_t colon = fmt.find(':');
        if (colon == std::string::npos) {
                *why = "format '" + fmt + "' has no ':'";
                return false;
        }
        std::string field = fmt.substr(0, colon);
        __u64 *dst = field == "config" ? &attr->config : field == "config1" ? &attr->config1
                                                        : field == "config2" ? &attr->config2 : nullptr;
        if (!dst) {
                *why = "format field '" + field + "' is not config, config1 or config2";
                return false;
        }
        std::stringstream ranges(fmt.substr(colon + 1));
        std::string range;
        unsigned used = 0;
        while (std::getline(ranges, range, ',')) {
                uint64_t lo, hi;
                size_t dash = range.find('-');
                if (!parse_uint(range.substr(0, dash), &lo) ||
                    !parse_uint(dash == std::string::npos ? range : range.substr(dash + 1), &hi) || lo > hi || hi > 63) {
                        *why = "format range '" + range + "' is not N or N-M within 0-63";
                        return false;
                }
                unsigned width = unsigned(hi - lo + 1);
                uint64_t mask = width == 64 ? ~0ull : ((1ull << width) - 1);
                *dst |= ((value >> used) & mask) << lo;
                used += width;
        }
        if (used < 64 && (value >> used)) {
                *why = "value " + std::to_string(value) + " does not fit format '" + fmt + "'";
                return false;
        }
        return true;
}

struct Event {
        std::string pmu, name;
        int fd = -1;
        double bytes_per_count = 64;
        Counter counter;
};

// Event names and the raw terms used when sysfs does not name them.
struct Family {
        const char *prefix;
        std::vector<std::vector<std::string>> event_sets;  // first set present wins
        std::vector<std::string> raw;                      // "name=terms" fallbacks
};

const Family kFamilies[] = {
        {"uncore_imc_free_running", {{"data_read", "data_write"}}, {}},
        {"uncore_imc", {{"cas_count_read", "cas_count_write"}, {"data_reads", "data_writes"}}, {}},
        {"amd_umc", {{"umc_cas_cmd.rd", "umc_cas_cmd.wr"}},
         {"umc_cas_cmd.rd=event=0x0a,rdwrmask=0x1", "umc_cas_cmd.wr=event=0x0a,rdwrmask=0x2"}},
        {"amd_df", {{"dram_read_data_beats", "dram_write_data_beats"}}, {}},
        {"arm_dmc620", {{"clkdiv2_rdwr"}}, {"clkdiv2_rdwr=event=0x12,clkdiv2=1"}},
};

class PerfSource : public Source {
public:
        PerfSource(const Config &c, Clock clock, PerfSys sys) : root_(c.perf.sysfs_root), clock_(std::move(clock)), sys_(std::move(sys)) {}
        ~PerfSource() override
        {
                for (auto &e : events_)
                        if (e.fd >= 0)
                                sys_.close(e.fd);
        }
        const char *name() const override { return "perf"; }

        int start(std::string *why) override
        {
                std::string base = root_ + "/bus/event_source/devices";
                std::string skipped;
                for (const auto &pmu : list_dir(base)) {
                        const Family *fam = nullptr;
                        for (const auto &f : kFamilies)
                                if (pmu.rfind(f.prefix, 0) == 0) {
                                        fam = &f;
                                        break;
                                }
                        if (!fam || (std::string(fam->prefix) == "uncore_imc" && pmu.rfind("uncore_imc_free_running", 0) == 0))
                                continue;
                        std::string err;
                        if (open_pmu(base + "/" + pmu, pmu, *fam, &err) < 0)
                                skipped += pmu + ": " + err + "; ";
                }
                if (events_.empty()) {
                        *why = "no memory-controller PMU under " + base +
                               (skipped.empty() ? std::string(" (uncore_imc_*, amd_umc_*, amd_df, arm_dmc620_*)") : ": " + skipped);
                        return -ENODEV;
                }
                last_ = clock_();
                (void)read();
                return 0;
        }

        Reading read() override
        {
                Reading r = stamped(clock_, &last_);
                double bytes = 0;
                unsigned used = 0;
                detail_.clear();
                for (auto &e : events_) {
                        uint64_t v[3];  // value, time enabled, time running
                        ssize_t n = sys_.read(e.fd, v, sizeof v);
                        if (n != ssize_t(sizeof v)) {
                                e.counter.forget();
                                r.note += e.pmu + "/" + e.name + " unreadable; ";
                                continue;
                        }
                        // Multiplexed: scale by enabled / running.
                        uint64_t count = v[2] && v[1] != v[2] ? uint64_t(double(v[0]) * double(v[1]) / double(v[2])) : v[0];
                        uint64_t delta;
                        if (!e.counter.update(count, &delta)) {
                                r.note += e.pmu + "/" + e.name + " baseline or reset; ";
                                continue;
                        }
                        used++;
                        bytes += double(delta) * e.bytes_per_count;
                        detail_ += e.pmu + "/" + e.name + ": " + std::to_string(count) + " (+" +
                                   std::to_string(uint64_t(double(delta) * e.bytes_per_count)) + " bytes)\n";
                }
                if (!used)
                        return r;
                r.total_bytes = uint64_t(bytes);
                r.npu_bytes = 0;  // uncore counters see no tasks
                r.valid = r.interval_ns > 0;
                return r;
        }

        std::string detail() const override { return detail_; }

private:
        int open_pmu(const std::string &dir, const std::string &pmu, const Family &fam, std::string *why)
        {
                std::string s;
                uint64_t type;
                int cpu = 0;
                if (!read_text(dir + "/type", &s) || !parse_uint(s, &type)) {
                        *why = "no readable type";
                        return -EINVAL;
                }
                if (read_text(dir + "/cpumask", &s) && !first_cpu(s, &cpu)) {
                        *why = "cpumask '" + s + "' is not a CPU list";
                        return -EINVAL;
                }
                // Named events from sysfs, else the raw fallbacks.
                std::vector<std::pair<std::string, std::string>> terms;
                for (const auto &set : fam.event_sets) {
                        terms.clear();
                        for (const auto &n : set)
                                if (read_text(dir + "/events/" + n, &s))
                                        terms.push_back({n, s});
                        if (terms.size() == set.size())
                                break;
                        terms.clear();
                }
                if (terms.empty())
                        for (const auto &raw : fam.raw) {
                                size_t eq = raw.find('=');
                                terms.push_back({raw.substr(0, eq), raw.substr(eq + 1)});
                        }
                if (terms.empty()) {
                        *why = "no known memory-traffic event in " + dir + "/events";
                        return -ENOENT;
                }
                size_t opened = 0;
                for (const auto &[name, t] : terms) {
                        perf_event_attr attr{};
                        attr.size = sizeof attr;
                        attr.type = uint32_t(type);
                        attr.read_format = PERF_FORMAT_TOTAL_TIME_ENABLED | PERF_FORMAT_TOTAL_TIME_RUNNING;
                        std::stringstream ts(t);
                        std::string term;
                        while (std::getline(ts, term, ',')) {
                                size_t eq = term.find('=');
                                std::string key = term.substr(0, eq);
                                uint64_t value = 1;
                                if (eq != std::string::npos && !parse_uint(term.substr(eq + 1), &value)) {
                                        *why = "event " + name + ": '" + term + "' has no number";
                                        return -EINVAL;
                                }
                                std::string fmt;
                                if (!read_text(dir + "/format/" + key, &fmt)) {
                                        *why = "event " + name + " uses '" + key + "', which format/ does not describe";
                                        return -EINVAL;
                                }
                                if (!apply_format(fmt, value, &attr, why))
                                        return -EINVAL;
                        }
                        Event e;
                        e.pmu = pmu;
                        e.name = name;
                        double scale = 1;
                        if (read_text(dir + "/events/" + name + ".scale", &s)) {
                                char *end;
                                scale = strtod(s.c_str(), &end);
                                if (*end || !(scale > 0) || !std::isfinite(scale)) {
                                        *why = "event " + name + ": scale '" + s + "' is not a positive number";
                                        return -EINVAL;
                                }
                                std::string unit = "Bytes";
                                (void)read_text(dir + "/events/" + name + ".unit", &unit);
                                double mult = unit == "MiB" ? 1048576.0 : unit == "KiB" ? 1024.0 : unit == "Bytes" || unit == "B" ? 1.0 : 0.0;
                                if (mult == 0) {
                                        *why = "event " + name + ": unit '" + unit + "' is not Bytes, KiB or MiB";
                                        return -EINVAL;
                                }
                                e.bytes_per_count = scale * mult;
                        } else {
                                e.bytes_per_count = 64;  // one cache line per CAS command or data beat
                        }
                        e.fd = sys_.open(&attr, -1, cpu, -1, PERF_FLAG_FD_CLOEXEC);
                        if (e.fd < 0) {
                                *why = "perf_event_open of " + name + " on CPU " + std::to_string(cpu) + ": " + strerror(errno);
                                continue;
                        }
                        events_.push_back(std::move(e));
                        opened++;
                }
                return opened ? 0 : -ENODEV;
        }

        std::string root_;
        Clock clock_;
        PerfSys sys_;
        std::vector<Event> events_;
        uint64_t last_ = 0;
        std::string detail_;
};

} // namespace

std::unique_ptr<Source> make_perf_source(const Config &c, Clock clock, PerfSys sys)
{
        return std::make_unique<PerfSource>(c, std::move(clock), std::move(sys));
}

} // namespace bwq

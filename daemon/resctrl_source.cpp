// The resctrl source: MBM total-bytes counters of every monitoring domain.
// The system total is the default group plus every other control group
// (a CTRL_MON group's counters include its MON groups); the NPU clients are
// the bwq-npu MON group of the default group, which bwqd creates.
#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include "common/file.h"
#include "common/unique_fd.h"
#include "source.h"

namespace bwq {

namespace {

std::vector<std::string> list_dir(const std::string &path, const std::string &prefix)
{
        std::vector<std::string> out;
        if (DIR *d = opendir(path.c_str())) {
                while (dirent *de = readdir(d)) {
                        std::string n = de->d_name;
                        if (n != "." && n != ".." && n.rfind(prefix, 0) == 0)
                                out.push_back(n);
                }
                closedir(d);
        }
        std::sort(out.begin(), out.end());
        return out;
}

bool is_dir(const std::string &p)
{
        struct stat st;
        return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

enum class Value { Ok, Unavailable, Error, Unassigned, Missing, Garbled, Baseline };

const char *value_name(Value v)
{
        switch (v) {
        case Value::Ok: return "ok";
        case Value::Unavailable: return "Unavailable";
        case Value::Error: return "Error";
        case Value::Unassigned: return "Unassigned";
        case Value::Missing: return "missing";
        case Value::Garbled: return "garbled";
        case Value::Baseline: return "baseline or reset";
        }
        return "?";
}

// The text of a counter file: a decimal number, or a word the kernel uses.
Value parse_counter(const char *text, uint64_t *ret)
{
        std::string s(text);
        while (!s.empty() && (s.back() == '\n' || s.back() == ' '))
                s.pop_back();
        if (s == "Unavailable")
                return Value::Unavailable;
        if (s == "Error")
                return Value::Error;
        if (s == "Unassigned")
                return Value::Unassigned;
        if (s.empty() || s.size() > 20)
                return Value::Garbled;
        uint64_t v = 0;
        for (char c : s) {
                if (c < '0' || c > '9')
                        return Value::Garbled;
                if (v > (UINT64_MAX - uint64_t(c - '0')) / 10)
                        return Value::Garbled;
                v = v * 10 + uint64_t(c - '0');
        }
        *ret = v;
        return Value::Ok;
}

class ResctrlSource : public Source {
public:
        ResctrlSource(const Config &c, Clock clock) : root_(c.resctrl.path), group_(c.resctrl.group), clock_(std::move(clock)) {}
        const char *name() const override { return "resctrl"; }

        int start(std::string *why) override
        {
                if (!is_dir(root_ + "/mon_data")) {
                        *why = "no resctrl monitoring at " + root_ + " (no mon_data; mount -t resctrl resctrl " + root_ +
                               " on a CPU with MBM)";
                        return -ENOENT;
                }
                std::string text, ferr;
                (void)read_regular_file(root_ + "/info/L3_MON/mon_features", 4096, &text, &ferr);
                std::istringstream features(text);
                std::string f, all;
                bool total = false;
                while (features >> f) {
                        all += f + " ";
                        total |= f == "mbm_total_bytes";
                }
                if (!total) {
                        *why = root_ + "/info/L3_MON/mon_features does not list mbm_total_bytes" +
                               (all.empty() ? std::string() : " (it lists: " + all + ")");
                        return -EOPNOTSUPP;
                }
                std::string g = root_ + "/mon_groups/" + group_;
                if (mkdir(g.c_str(), 0755) < 0 && errno != EEXIST) {
                        int e = errno;
                        *why = "cannot create the monitoring group " + g + ": " + strerror(e);
                        return -e;
                }
                last_ = clock_();
                (void)read();  // the first values are the baseline
                return 0;
        }

        Reading read() override
        {
                Reading r = stamped(clock_, &last_);
                // The layout of groups and domains is scanned once a second, or
                // at once when a file fails; reads between use kept-open files.
                if (files_.empty() || r.t_ns - scanned_ns_ >= 1000000000ull || rescan_)
                        scan(r.t_ns);
                uint64_t total = 0, npu = 0;
                unsigned used = 0, skipped = 0;
                for (auto &f : files_) {
                        uint64_t v = 0, delta = 0;
                        f.state = read_counter(f, &v);
                        if (f.state != Value::Ok) {
                                // Never zero: skip the domain, and re-baseline later.
                                f.counter.forget();
                                if (f.state == Value::Missing)
                                        rescan_ = true;
                                skipped++;
                                r.note += f.rel + " " + value_name(f.state) + "; ";
                                continue;
                        }
                        f.value = v;
                        if (!f.counter.update(v, &delta)) {
                                f.state = Value::Baseline;
                                skipped++;
                                r.note += f.rel + " baseline or reset; ";
                                continue;
                        }
                        f.delta = delta;
                        if (f.npu)
                                npu += delta;
                        else {
                                total += delta;
                                used++;
                        }
                }
                if (used == 0) {
                        r.note = "no domain gave a usable value" + (r.note.empty() ? std::string() : ": " + r.note);
                        return r;
                }
                r.total_bytes = total;
                r.npu_bytes = std::min(npu, total);
                r.npu_split = true;
                r.valid = r.interval_ns > 0;
                if (skipped)
                        r.note = "skipped " + std::to_string(skipped) + " domain(s): " + r.note;
                return r;
        }

        int add_client(const ClientProcess &p, std::string *why) override
        {
                return move_tasks(p, root_ + "/mon_groups/" + group_ + "/tasks", why);
        }

        void remove_client(const ClientProcess &p) override
        {
                std::string why;
                (void)move_tasks(p, root_ + "/tasks", &why);
        }

        std::string detail() const override
        {
                std::string s;
                for (const auto &f : files_) {
                        s += f.rel + ": ";
                        if (f.state == Value::Ok)
                                s += std::to_string(f.value) + " (+" + std::to_string(f.delta) + ")";
                        else if (f.state == Value::Baseline)
                                s += std::to_string(f.value) + " (baseline or reset)";
                        else
                                s += value_name(f.state);
                        s += "\n";
                }
                return s;
        }

private:
        struct File {
                std::string path, rel;
                bool npu = false;
                bwq::unique_fd fd;  // kept open between samples
                Counter counter;
                Value state = Value::Missing;
                uint64_t value = 0, delta = 0;
        };

        // One counter file: a decimal number, or a word the kernel uses instead.
        static Value read_counter(File &f, uint64_t *ret)
        {
                if (!f.fd) {
                        f.fd.reset(open(f.path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK));
                        struct stat st;
                        if (f.fd && (fstat(f.fd.get(), &st) < 0 || !S_ISREG(st.st_mode)))
                                f.fd.reset();
                }
                if (!f.fd)
                        return Value::Missing;
                char buf[64];
                ssize_t n = pread(f.fd.get(), buf, sizeof buf - 1, 0);
                if (n < 0) {
                        f.fd.reset();
                        return Value::Missing;
                }
                buf[n] = 0;
                return parse_counter(buf, ret);
        }

        // Lists every counter file; keeps the counters of files still there.
        void scan(uint64_t now)
        {
                std::map<std::string, File> old;
                for (auto &f : files_) {
                        f.fd.reset();
                        old[f.path] = std::move(f);
                }
                files_.clear();
                // Everything: the default group and every other control group.
                std::vector<std::string> groups = {root_};
                for (const auto &n : list_dir(root_, ""))
                        if (n != "info" && n != "mon_groups" && n != "mon_data" && is_dir(root_ + "/" + n + "/mon_data"))
                                groups.push_back(root_ + "/" + n);
                for (const auto &g : groups)
                        add_group(g, false, old);
                add_group(root_ + "/mon_groups/" + group_, true, old);
                scanned_ns_ = now;
                rescan_ = false;
        }

        void add_group(const std::string &group, bool npu, std::map<std::string, File> &old)
        {
                std::string md = group + "/mon_data";
                for (const auto &dom : list_dir(md, "mon_L3_")) {
                        std::string d = md + "/" + dom;
                        // SNC: a domain may only have per-sub-NUMA-node files.
                        std::vector<std::string> paths;
                        if (access((d + "/mbm_total_bytes").c_str(), F_OK) == 0)
                                paths.push_back(d + "/mbm_total_bytes");
                        else
                                for (const auto &sub : list_dir(d, "mon_sub_L3_"))
                                        paths.push_back(d + "/" + sub + "/mbm_total_bytes");
                        if (paths.empty())
                                paths.push_back(d + "/mbm_total_bytes");
                        for (const auto &p : paths) {
                                File f;
                                auto it = old.find(p);
                                if (it != old.end())
                                        f = std::move(it->second);
                                f.path = p;
                                f.rel = p.substr(root_.size() + 1);
                                f.npu = npu;
                                files_.push_back(std::move(f));
                        }
                }
        }

        // Every thread of the client's process: resctrl moves one task per
        // write.  Only while the process of the client's pidfd lives: a pid
        // reused after it exited is another process, never moved.  (The
        // tasks file takes pids, so a reuse between the check and the
        // writes, microseconds apart, cannot be excluded.)
        static int move_tasks(const ClientProcess &p, const std::string &tasks, std::string *why)
        {
                const std::string pid = std::to_string(p.pid);
                if (!p.alive()) {
                        *why = "process " + pid + " is gone (or was never held by a pidfd)";
                        return -ESRCH;
                }
                auto tids = list_dir("/proc/" + pid + "/task", "");
                if (tids.empty()) {
                        *why = "process " + pid + " is gone";
                        return -ESRCH;
                }
                // O_NONBLOCK | O_NOFOLLOW: a fixture's FIFO or a planted link
                // is refused, not waited on or followed.
                bwq::unique_fd fd(open(tasks.c_str(), O_WRONLY | O_APPEND | O_CLOEXEC | O_NONBLOCK | O_NOFOLLOW));
                if (!fd) {
                        int e = errno;
                        *why = tasks + ": " + strerror(e);
                        return -e;
                }
                int r = 0;
                for (const auto &t : tids) {
                        std::string line = t + "\n";
                        if (write(fd.get(), line.data(), line.size()) < 0 && errno != ESRCH) {
                                r = -errno;
                                *why = tasks + ": writing task " + t + ": " + strerror(errno);
                        }
                }
                return r;
        }

        std::string root_, group_;
        Clock clock_;
        uint64_t last_ = 0, scanned_ns_ = 0;
        bool rescan_ = false;
        std::vector<File> files_;
};

} // namespace

std::unique_ptr<Source> make_resctrl_source(const Config &c, Clock clock)
{
        return std::make_unique<ResctrlSource>(c, std::move(clock));
}

} // namespace bwq

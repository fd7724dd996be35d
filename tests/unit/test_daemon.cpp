// bwqd's parts without a bus: units, config errors, the FIG. 5 policy with
// hysteresis, MinDwell and Stale, replay traces, the resctrl source on
// fixture trees rewritten between samples, the perf source through its
// syscall seam, and the sealed decision page.
#include <fcntl.h>
#include <linux/perf_event.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <map>

#include "daemon/config.h"
#include "daemon/decision_page.h"
#include "daemon/policy.h"
#include "daemon/source.h"
#include "daemon/source_registry.h"
#include "test_util.h"
#include "common/units.h"

using namespace bwq;

namespace {

std::string tmpdir()
{
        char t[] = "/tmp/bwq-test-XXXXXX";
        assert_non_null(mkdtemp(t));
        return t;
}

void write_file(const std::string &path, const std::string &text)
{
        std::string dir = path.substr(0, path.rfind('/'));
        std::string cmd = "mkdir -p '" + dir + "'";
        assert_int_equal(system(cmd.c_str()), 0);
        std::ofstream f(path);
        f << text;
        assert_true(bool(f));
}

std::string read_file(const std::string &path)
{
        std::ifstream f(path);
        std::string s((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
        return s;
}

void rm_rf(const std::string &dir)
{
        std::string cmd = "rm -rf '" + dir + "'";
        assert_int_equal(system(cmd.c_str()), 0);
}

// A clock the test moves.
struct FakeClock {
        uint64_t ns = 1000000000ull;
        Clock fn()
        {
                return [this] { return ns; };
        }
};

} // namespace

static void units(void **)
{
        uint64_t v;
        assert_int_equal(parse_bandwidth("44GB/s", &v), 0);
        assert_int_equal(v, 44000000000ull);
        assert_int_equal(parse_bandwidth("41GiB/s", &v), 0);
        assert_int_equal(v, 41ull << 30);
        assert_int_equal(parse_bandwidth("1.5 MB/s", &v), 0);
        assert_int_equal(v, 1500000);
        assert_int_equal(parse_bandwidth("512MiB/s", &v), 0);
        assert_int_equal(v, 512ull << 20);
        assert_int_equal(parse_bandwidth("12345", &v), 0);
        assert_int_equal(v, 12345);
        assert_int_equal(parse_bandwidth("44 GB", &v), -EINVAL);
        assert_int_equal(parse_bandwidth("-3GB/s", &v), -EINVAL);
        assert_int_equal(parse_bandwidth("", &v), -EINVAL);
        assert_int_equal(parse_bandwidth("99999999999TB/s", &v), -ERANGE);
        Level l;
        assert_int_equal(parse_level("75%", &l), 0);
        assert_true(l.percent);
        assert_int_equal(l.resolve(44000000000ull), 33000000000ull);
        assert_int_equal(parse_level("101%", &l), -ERANGE);
        assert_int_equal(parse_duration("500us", &v), 0);
        assert_int_equal(v, 500);
        assert_int_equal(parse_duration("100ms", &v), 0);
        assert_int_equal(v, 100000);
        assert_int_equal(parse_duration("2", &v), 0);
        assert_int_equal(v, 2000000);
        assert_int_equal(parse_duration("3 weeks", &v), -EINVAL);
        assert_string_equal(format_bandwidth(33000000000ull).c_str(), "33.00 GB/s");
}

static void config_errors_name_file_line_key(void **)
{
        struct Bad {
                const char *text, *want;
        } bad[] = {
                {"[Sampling]\nInterval=fast\n", "f.conf:2: [Sampling] Interval: 'fast' is not a duration from 1ms to 60s"},
                {"[Sampling]\nInterval=0.5ms\n", "f.conf:2: [Sampling] Interval: '0.5ms' is not a duration from 1ms to 60s"},
                {"[Sampling]\nSource=magic\n", "f.conf:2: [Sampling] Source: 'magic' is not auto, resctrl, perf, ebpf, probe or replay"},
                {"[Bandwidth]\n\nMax=lots\n", "f.conf:3: [Bandwidth] Max: 'lots' is not a bandwidth such as 44GB/s, or 'calibrated'"},
                {"[Policy]\nTable=33GB/s:16 22GB/s:8 11GB/s:6\n",
                 "f.conf:2: [Policy] Table: the last row's threshold must be 0 (it takes everything below the others)"},
                {"[Policy]\nTable=10GB/s:16 22GB/s:8 0:4\n", "f.conf:2: [Policy] Table: thresholds must decrease from row to row"},
                {"[Policy]\nTable=33GB/s:16 22GB/s:12 0:4\n", "f.conf:2: [Policy] Table: '12' is not 4, 6, 8 or 16 bits"},
                {"[Policy]\nTable=33GB/s:8 22GB/s:16 0:4\n", "f.conf:2: [Policy] Table: bits may not grow as the threshold falls"},
                {"[Policy]\nOnStale=sometimes\n", "f.conf:2: [Policy] OnStale: 'sometimes' is not keep, min, max or 4, 6, 8, 16"},
                {"[Policy]\nHysteresis=\n", "f.conf:2: [Policy] Hysteresis: empty value"},
                {"[Polcy]\n", "f.conf:1: unknown section [Polcy]"},
                {"[Policy]\nMinDwel=1s\n", "f.conf:2: [Policy] MinDwel: unknown key"},
                {"Interval=1s\n", "f.conf:1: 'Interval' before any [Section]"},
                {"[Sampling]\njust words\n", "f.conf:2: 'just words' is not Key=Value"},
                {"[Resctrl]\nPath=relative/path\n", "f.conf:2: [Resctrl] Path: 'relative/path' is not an absolute path"},
                {"[Resctrl]\nGroup=../escape\n", "f.conf:2: [Resctrl] Group: '../escape' is not a group name"},
                {"[Clients]\nMax=0\n", "f.conf:2: [Clients] Max: '0' is not a number from 1 to 65536"},
                {"[Sampling]\nSmoothing=ewma:1.5\n", "f.conf:2: [Sampling] Smoothing: 'ewma:1.5': the EWMA weight must be in (0, 1]"},
        };
        for (const auto &b : bad) {
                Config c;
                c.sampling.interval_usec = 123456;
                std::string why;
                assert_int_equal(config_parse_text(b.text, "f.conf", &c, &why), -EINVAL);
                if (why != b.want)
                        print_error("got  '%s'\nwant '%s'\n", why.c_str(), b.want);
                assert_string_equal(why.c_str(), b.want);
                assert_int_equal(c.sampling.interval_usec, 123456);  // nothing applied from a bad file
        }
        Config c;
        std::string why;
        assert_int_equal(config_parse_text("# comment\n[Sampling]\nSource = replay\nInterval=20ms\nSmoothing=window:3\n"
                                           "[Bandwidth]\nMax=41GiB/s\n[Policy]\nTable=30GB/s:16 20GB/s:8 10GB/s:6 0:4\n"
                                           "Hysteresis=1GB/s\nMinDwell=250ms\nOnStale=8\n",
                                           "ok.conf", &c, &why),
                         0);
        assert_int_equal(int(c.sampling.source), int(SourceKind::Replay));
        assert_int_equal(c.sampling.interval_usec, 20000);
        assert_int_equal(*c.bandwidth.max_bps, 41ull << 30);
        assert_int_equal(c.policy.table.size(), 4);
        assert_int_equal(c.policy.table[1].threshold.bps, 20000000000ull);
        assert_int_equal(c.policy.min_dwell_usec, 250000);
        assert_int_equal(int(c.policy.on_stale), int(OnStale::Bits));
        // Percent and absolute rows that cross at this maximum.
        Config m;
        assert_int_equal(config_parse_text("[Policy]\nTable=50%:16 30GB/s:8 0:4\n", "x.conf", &m, &why), 0);
        assert_int_equal(config_check(m, 44000000000ull, &why), -EINVAL);
        assert_non_null(strstr(why.c_str(), "do not decrease"));
}

static void config_files_and_dropins(void **)
{
        std::string d = tmpdir();
        write_file(d + "/bwqd.conf", "[Sampling]\nInterval=50ms\n[Bandwidth]\nMax=40GB/s\n");
        write_file(d + "/bwqd.conf.d/20-late.conf", "[Bandwidth]\nMax=30GB/s\n");
        write_file(d + "/bwqd.conf.d/10-early.conf", "[Bandwidth]\nMax=20GB/s\n[Policy]\nMinDwell=2s\n");
        write_file(d + "/bwqd.conf.d/ignored.txt", "garbage");
        Config c;
        std::string why;
        assert_int_equal(config_load(d + "/bwqd.conf", &c, &why), 0);
        assert_int_equal(c.sampling.interval_usec, 50000);
        assert_int_equal(*c.bandwidth.max_bps, 30000000000ull);  // 20-late wins
        assert_int_equal(c.policy.min_dwell_usec, 2000000);
        write_file(d + "/bwqd.conf.d/30-bad.conf", "[Policy]\nMinDwell=forever\n");
        assert_int_equal(config_load(d + "/bwqd.conf", &c, &why), -EINVAL);
        assert_string_equal(why.c_str(), (d + "/bwqd.conf.d/30-bad.conf:2: [Policy] MinDwell: 'forever' is not a duration up to 1h").c_str());
        // No file at all: the defaults.
        assert_int_equal(config_load(d + "/none.conf", &c, &why), 0);
        assert_int_equal(c.sampling.interval_usec, 100000);
        rm_rf(d);
}

// FIG. 5 of 44 GB/s: > 33 -> 16, > 22 -> 8, > 11 -> 6, else 4.  Stepping
// down is immediate; stepping up needs threshold + hysteresis for MinDwell.
static void policy_fig5_hysteresis_dwell(void **)
{
        const uint64_t G = 1000000000ull;
        Policy p;
        p.configure(PolicyConfig::default_table(), 44 * G, 1 * G, 500000, OnStale::Keep, 8);
        struct Step {
                uint64_t t_ms, used_gbps_x10;  // used by others, tenths of GB/s
                uint8_t bits;
                uint32_t section;
        } steps[] = {
                {0, 50, 16, 1},      // available 39
                {100, 150, 8, 2},    // 29: down at once
                {200, 250, 6, 3},    // 19
                {300, 350, 4, 4},    // 9
                {400, 400, 4, 4},    // 4
                {500, 325, 4, 4},    // 11.5 > 11 but not > 11 + 1: stays
                {600, 300, 4, 4},    // 14 > 12: up pending since 600
                {800, 300, 4, 4},    // 200 ms of 500
                {1100, 300, 6, 3},   // 500 ms: up to 6
                {1200, 50, 6, 3},    // 39 > 34: pending since 1200
                {1300, 250, 6, 3},   // 19: the pending step is cancelled
                {1400, 50, 6, 3},    // pending again since 1400
                {1800, 50, 6, 3},    // 400 ms
                {1900, 50, 16, 1},   // 500 ms: straight to section 1
                {2000, 430, 4, 4},   // 1 GB/s available: down at once
                {2100, 500, 4, 4},   // used > max: available 0
        };
        for (const auto &s : steps) {
                p.on_sample(s.t_ms * 1000, s.used_gbps_x10 * G / 10);
                const Decision &d = p.decision();
                if (d.bits != s.bits || d.section != s.section)
                        print_error("t=%llu ms: bits %u section %u, want %u %u\n", (unsigned long long)s.t_ms, d.bits, d.section,
                                    s.bits, s.section);
                assert_int_equal(d.bits, s.bits);
                assert_int_equal(d.section, s.section);
        }
        assert_int_equal(p.decision().available_bps, 0);
}

static void policy_stale(void **)
{
        const uint64_t G = 1000000000ull;
        for (auto [mode, want] : std::initializer_list<std::pair<OnStale, int>>{
                     {OnStale::Keep, 8}, {OnStale::Min, 4}, {OnStale::Max, 16}, {OnStale::Bits, 6}}) {
                Policy p;
                p.configure(PolicyConfig::default_table(), 44 * G, 0, 0, mode, 6);
                p.on_sample(0, 20 * G);  // available 24 -> 8 bits
                assert_int_equal(p.decision().bits, 8);
                p.on_missed(100000);
                p.on_missed(200000);
                assert_false(p.decision().stale);  // two misses: not yet
                assert_int_equal(p.decision().bits, 8);
                p.on_missed(300000);
                assert_true(p.decision().stale);
                assert_int_equal(p.decision().bits, want);
                p.on_sample(400000, 40 * G);  // a valid sample ends it
                assert_false(p.decision().stale);
                assert_int_equal(p.decision().bits, 4);
        }
}

static void replay_traces(void **)
{
        std::vector<ReplayRow> rows;
        std::string why;
        assert_int_equal(parse_replay("t_ms,used_Bps,npu_Bps\n0,100,10\n# note\n500,200\n", "t.csv", &rows, &why), 0);
        assert_int_equal(rows.size(), 2);
        assert_int_equal(rows[1].npu_bps, 0);
        struct Bad {
                const char *text, *want;
        } bad[] = {
                {"0,100\n0,200\n", "t.csv:2: t_ms must increase from row to row"},
                {"0,abc\n", "t.csv:1: used_Bps 'abc' is not a whole number of bytes per second"},
                {"0,100,200\n", "t.csv:1: npu_Bps is larger than used_Bps, which includes it"},
                {"0\n", "t.csv:1: expected t_ms,used_Bps[,npu_Bps], got 1 fields"},
                {"-5,100\n", "t.csv:1: t_ms '-5' is not a whole number of milliseconds"},
                {"", "t.csv: no rows"},
                {"0,99999999999999999999999\n", "t.csv:1: used_Bps '99999999999999999999999' is not a whole number of bytes per second"},
        };
        for (const auto &b : bad) {
                assert_int_equal(parse_replay(b.text, "t.csv", &rows, &why), -EINVAL);
                assert_string_equal(why.c_str(), b.want);
        }
        // The source gives bytes at the rates in force; the last row holds.
        std::string d = tmpdir();
        write_file(d + "/t.csv", "0,1000000000,250000000\n1000,3000000000\n");
        Config c;
        c.replay.path = d + "/t.csv";
        FakeClock clk;
        auto s = make_replay_source(c, clk.fn());
        assert_int_equal(s->start(&why), 0);
        clk.ns += 500000000;  // 0.5 s at 1 GB/s
        Reading r = s->read();
        assert_true(r.valid);
        assert_int_equal(r.total_bytes, 500000000);
        assert_int_equal(r.npu_bytes, 125000000);
        clk.ns += 5000000000ull;  // past the end: 3 GB/s holds
        r = s->read();
        assert_int_equal(r.total_bytes, 15000000000ull);
        rm_rf(d);
        c.replay.path = "/nonexistent/trace.csv";
        auto s2 = make_replay_source(c, clk.fn());
        assert_int_equal(s2->start(&why), -ENOENT);
        assert_string_equal(why.c_str(), "/nonexistent/trace.csv: No such file or directory");
}

// ---- resctrl fixtures ----

namespace {

struct Resctrl {
        std::string root;
        Resctrl()
        {
                root = tmpdir();
                write_file(root + "/info/L3_MON/mon_features", "llc_occupancy\nmbm_total_bytes\nmbm_local_bytes\n");
                write_file(root + "/tasks", "");
                assert_int_equal(mkdir((root + "/mon_groups").c_str(), 0755), 0);
                for (const char *dom : {"mon_L3_00", "mon_L3_01"})
                        write_file(root + "/mon_data/" + dom + "/mbm_total_bytes", "0\n");
        }
        ~Resctrl() { rm_rf(root); }
        void set(const std::string &group, const std::string &dom, const std::string &value)
        {
                std::string base = group.empty() ? root : root + "/" + group;
                write_file(base + "/mon_data/" + dom + "/mbm_total_bytes", value + "\n");
        }
};

} // namespace

static void resctrl_exact_rates_and_odd_values(void **)
{
        Resctrl fx;
        Config c;
        c.resctrl.path = fx.root;
        FakeClock clk;
        std::string why;
        auto s = make_resctrl_source(c, clk.fn());
        assert_int_equal(s->start(&why), 0);
        // bwqd created its monitoring group.
        struct stat st;
        assert_int_equal(stat((fx.root + "/mon_groups/bwq-npu").c_str(), &st), 0);
        fx.set("mon_groups/bwq-npu", "mon_L3_00", "0");
        fx.set("mon_groups/bwq-npu", "mon_L3_01", "0");
        clk.ns += 1000000000;   // the next layout scan finds the group's domains
        Reading r = s->read();  // the NPU group's baseline
        clk.ns += 100000000;    // 100 ms
        fx.set("", "mon_L3_00", "3000000000");
        fx.set("", "mon_L3_01", "1000000000");
        fx.set("mon_groups/bwq-npu", "mon_L3_00", "500000000");
        fx.set("mon_groups/bwq-npu", "mon_L3_01", "0");
        r = s->read();
        assert_true(r.valid);
        assert_int_equal(r.interval_ns, 100000000);
        assert_int_equal(r.total_bytes, 4000000000ull);  // 40 GB/s over 100 ms
        assert_int_equal(r.npu_bytes, 500000000);
        // Another control group counts toward the total, from the next layout
        // scan (once a second).
        fx.set("other", "mon_L3_00", "0");
        fx.set("other", "mon_L3_01", "0");
        clk.ns += 1000000000;
        r = s->read();
        clk.ns += 100000000;
        fx.set("", "mon_L3_00", "3100000000");
        fx.set("", "mon_L3_01", "1100000000");
        fx.set("other", "mon_L3_00", "50000000");
        fx.set("other", "mon_L3_01", "50000000");
        r = s->read();
        assert_int_equal(r.total_bytes, 300000000);
        // Unavailable, Error, Unassigned and garbled: that domain is skipped,
        // never read as zero.
        for (const char *odd : {"Unavailable", "Error", "Unassigned", "12abc", ""}) {
                clk.ns += 100000000;
                fx.set("", "mon_L3_00", "3200000000");
                fx.set("", "mon_L3_01", odd);
                fx.set("other", "mon_L3_00", "50000000");
                fx.set("other", "mon_L3_01", "50000000");
                r = s->read();
                assert_true(r.valid);
                assert_non_null(strstr(r.note.c_str(), "mon_L3_01"));
                // mon_L3_00 moved by 100 MB in its sample; a re-baseline skips it after an odd value.
                fx.set("", "mon_L3_01", "1100000000");
                r = s->read();  // mon_L3_01 re-baselines
        }
        // A counter that goes down was reset: that domain skips one sample.
        clk.ns += 100000000;
        fx.set("", "mon_L3_00", "100");
        fx.set("", "mon_L3_01", "1200000000");
        r = s->read();
        assert_true(r.valid);
        assert_int_equal(r.total_bytes, 100000000);  // only mon_L3_01 counted
        assert_non_null(strstr(r.note.c_str(), "reset"));
        clk.ns += 100000000;
        fx.set("", "mon_L3_00", "200000100");
        fx.set("", "mon_L3_01", "1200000000");
        r = s->read();
        assert_int_equal(r.total_bytes, 200000000);
        // Every domain unusable: not a valid sample.
        fx.set("", "mon_L3_00", "Unavailable");
        fx.set("", "mon_L3_01", "Error");
        fx.set("other", "mon_L3_00", "Error");
        fx.set("other", "mon_L3_01", "Error");
        r = s->read();
        assert_false(r.valid);
        // A vanished file is skipped like an unavailable one (seen at the
        // next layout scan; on resctrl a removed group's open files fail).
        unlink((fx.root + "/mon_data/mon_L3_00/mbm_total_bytes").c_str());
        clk.ns += 1000000000;
        r = s->read();
        assert_false(r.valid);
        assert_non_null(strstr(r.note.c_str(), "missing"));
}

static void resctrl_snc_subdomains(void **)
{
        Resctrl fx;
        rm_rf(fx.root + "/mon_data");
        for (const char *d : {"mon_L3_00/mon_sub_L3_00", "mon_L3_00/mon_sub_L3_01"})
                write_file(fx.root + "/mon_data/" + d + "/mbm_total_bytes", "1000\n");
        Config c;
        c.resctrl.path = fx.root;
        FakeClock clk;
        std::string why;
        auto s = make_resctrl_source(c, clk.fn());
        assert_int_equal(s->start(&why), 0);
        (void)s->read();
        clk.ns += 1000000000;
        write_file(fx.root + "/mon_data/mon_L3_00/mon_sub_L3_00/mbm_total_bytes", "2000\n");
        write_file(fx.root + "/mon_data/mon_L3_00/mon_sub_L3_01/mbm_total_bytes", "4000\n");
        Reading r = s->read();
        assert_true(r.valid);
        assert_int_equal(r.total_bytes, 4000);
        assert_non_null(strstr(s->detail().c_str(), "mon_sub_L3_01"));
}

static void resctrl_missing_and_clients(void **)
{
        Config c;
        c.resctrl.path = "/nonexistent/resctrl";
        FakeClock clk;
        std::string why;
        auto s = make_resctrl_source(c, clk.fn());
        assert_int_equal(s->start(&why), -ENOENT);
        assert_non_null(strstr(why.c_str(), "no resctrl monitoring at /nonexistent/resctrl"));
        Resctrl fx;
        write_file(fx.root + "/info/L3_MON/mon_features", "llc_occupancy\n");
        c.resctrl.path = fx.root;
        auto s2 = make_resctrl_source(c, clk.fn());
        assert_int_equal(s2->start(&why), -EOPNOTSUPP);
        assert_non_null(strstr(why.c_str(), "does not list mbm_total_bytes"));
        write_file(fx.root + "/info/L3_MON/mon_features", "mbm_total_bytes\n");
        auto s3 = make_resctrl_source(c, clk.fn());
        assert_int_equal(s3->start(&why), 0);
        write_file(fx.root + "/mon_groups/bwq-npu/tasks", "");
        // A client's threads go to the group's tasks and back to the default group.
        assert_int_equal(s3->add_client(getpid(), &why), 0);
        std::string me = std::to_string(getpid()) + "\n";
        assert_non_null(strstr(read_file(fx.root + "/mon_groups/bwq-npu/tasks").c_str(), me.c_str()));
        s3->remove_client(getpid());
        assert_non_null(strstr(read_file(fx.root + "/tasks").c_str(), me.c_str()));
        assert_int_equal(s3->add_client(999999999, &why), -ESRCH);
}

// ---- perf through the seam ----

namespace {

struct FakePerf {
        std::map<int, uint64_t> counts;      // fd -> value
        std::map<int, perf_event_attr> attr;
        std::map<int, int> cpu;
        uint64_t enabled = 100, running = 100;
        int next = 100;
        bool fail_open = false;
        PerfSys sys()
        {
                PerfSys s;
                s.open = [this](void *a, pid_t pid, int c, int, unsigned long) {
                        if (fail_open || pid != -1) {
                                errno = EACCES;
                                return -1;
                        }
                        int fd = next++;
                        attr[fd] = *static_cast<perf_event_attr *>(a);
                        cpu[fd] = c;
                        counts[fd] = 0;
                        return fd;
                };
                s.read = [this](int fd, void *buf, size_t n) -> ssize_t {
                        if (!counts.count(fd) || n < 24)
                                return -1;
                        uint64_t v[3] = {counts[fd], enabled, running};
                        std::memcpy(buf, v, sizeof v);
                        return 24;
                };
                s.close = [this](int fd) {
                        counts.erase(fd);
                        return 0;
                };
                return s;
        }
};

} // namespace

static void perf_intel_server(void **)
{
        std::string root = tmpdir();
        std::string pmu = root + "/bus/event_source/devices/uncore_imc_0";
        write_file(pmu + "/type", "14\n");
        write_file(pmu + "/cpumask", "3-7\n");
        write_file(pmu + "/format/event", "config:0-7\n");
        write_file(pmu + "/format/umask", "config:8-15\n");
        write_file(pmu + "/events/cas_count_read", "event=0x04,umask=0x03\n");
        write_file(pmu + "/events/cas_count_read.scale", "6.103515625e-5\n");
        write_file(pmu + "/events/cas_count_read.unit", "MiB\n");
        write_file(pmu + "/events/cas_count_write", "event=0x04,umask=0x0c\n");
        write_file(pmu + "/events/cas_count_write.scale", "6.103515625e-5\n");
        write_file(pmu + "/events/cas_count_write.unit", "MiB\n");
        write_file(root + "/bus/event_source/devices/cpu/type", "4\n");  // not a memory PMU
        Config c;
        c.perf.sysfs_root = root;
        FakeClock clk;
        FakePerf fp;
        std::string why;
        auto s = make_perf_source(c, clk.fn(), fp.sys());
        assert_int_equal(s->start(&why), 0);
        assert_int_equal(fp.attr.size(), 2);
        assert_int_equal(fp.attr[100].type, 14);
        assert_int_equal(fp.attr[100].config, 0x0304);
        assert_int_equal(fp.attr[101].config, 0x0c04);
        assert_int_equal(fp.cpu[100], 3);  // the first CPU of the cpumask
        assert_true(fp.attr[100].read_format & PERF_FORMAT_TOTAL_TIME_RUNNING);
        // 1e6 reads and 5e5 writes of 64 bytes in 100 ms.
        clk.ns += 100000000;
        fp.counts[100] = 1000000;
        fp.counts[101] = 500000;
        Reading r = s->read();
        assert_true(r.valid);
        assert_int_equal(r.total_bytes, 1500000ull * 64);
        assert_int_equal(r.npu_bytes, 0);
        // Multiplexed half the time: counts scale by enabled / running.
        clk.ns += 100000000;
        fp.enabled = 200;
        fp.running = 100;
        fp.counts[100] = 600000;  // 1.2e6 after scaling: +200000
        fp.counts[101] = 250000;  // 5e5 after scaling: +0
        r = s->read();
        assert_int_equal(r.total_bytes, 200000ull * 64);
        // A counter going down is a reset: that event skips a sample.
        fp.enabled = fp.running = 100;
        fp.counts[100] = 10;
        fp.counts[101] = 600000;
        r = s->read();
        assert_int_equal(r.total_bytes, 100000ull * 64);
        assert_non_null(strstr(r.note.c_str(), "reset"));
        rm_rf(root);
}

static void perf_amd_arm_and_garbage(void **)
{
        std::string root = tmpdir();
        std::string dev = root + "/bus/event_source/devices";
        // AMD UMC without named events: raw umc_cas_cmd.rd/.wr from format/.
        write_file(dev + "/amd_umc_0/type", "22\n");
        write_file(dev + "/amd_umc_0/cpumask", "0\n");
        write_file(dev + "/amd_umc_0/format/event", "config:0-7\n");
        write_file(dev + "/amd_umc_0/format/rdwrmask", "config:8-9\n");
        // Arm DMC-620 with split format ranges.
        write_file(dev + "/arm_dmc620_10008c000/type", "30\n");
        write_file(dev + "/arm_dmc620_10008c000/cpumask", "1\n");
        write_file(dev + "/arm_dmc620_10008c000/format/event", "config:0-4\n");
        write_file(dev + "/arm_dmc620_10008c000/format/clkdiv2", "config:5\n");
        write_file(dev + "/arm_dmc620_10008c000/events/clkdiv2_rdwr", "event=0x12,clkdiv2=1\n");
        // A garbled PMU is passed over with its reason; the others still work.
        write_file(dev + "/uncore_imc_1/type", "twelve\n");
        Config c;
        c.perf.sysfs_root = root;
        FakeClock clk;
        FakePerf fp;
        std::string why;
        auto s = make_perf_source(c, clk.fn(), fp.sys());
        assert_int_equal(s->start(&why), 0);
        assert_int_equal(fp.attr.size(), 3);
        assert_int_equal(fp.attr[100].config, 0x10a);  // umc_cas_cmd.rd
        assert_int_equal(fp.attr[101].config, 0x20a);  // umc_cas_cmd.wr
        assert_int_equal(fp.attr[102].config, 0x12 | 1 << 5);
        assert_int_equal(fp.cpu[102], 1);
        // Nothing usable at all: the reasons name each PMU.
        std::string root2 = tmpdir();
        write_file(root2 + "/bus/event_source/devices/uncore_imc_0/type", "14\n");
        write_file(root2 + "/bus/event_source/devices/uncore_imc_0/events/cas_count_read", "event=0x04,umask=0x03\n");
        write_file(root2 + "/bus/event_source/devices/uncore_imc_0/events/cas_count_write", "event=0x04,bogus=1\n");
        c.perf.sysfs_root = root2;
        auto s2 = make_perf_source(c, clk.fn(), fp.sys());
        assert_int_equal(s2->start(&why), -ENODEV);
        assert_non_null(strstr(why.c_str(), "uncore_imc_0"));
        c.perf.sysfs_root = "/nonexistent";
        auto s3 = make_perf_source(c, clk.fn(), fp.sys());
        assert_int_equal(s3->start(&why), -ENODEV);
        assert_non_null(strstr(why.c_str(), "no memory-controller PMU"));
        fp.fail_open = true;
        c.perf.sysfs_root = root;
        auto s4 = make_perf_source(c, clk.fn(), fp.sys());
        assert_int_equal(s4->start(&why), -ENODEV);
        assert_non_null(strstr(why.c_str(), "perf_event_open"));
        rm_rf(root);
        rm_rf(root2);
}

static void decision_page_sealed(void **)
{
        DecisionPage page;
        assert_int_equal(page.create(), 0);
        Decision d;
        d.bits = 6;
        d.section = 3;
        d.max_bps = 44;
        d.available_bps = 12;
        d.used_bps = 32;
        d.timestamp_usec = 77;
        page.publish(d, "replay", 5, 0);
        void *ro = mmap(nullptr, BWQ_PAGE_SIZE, PROT_READ, MAP_SHARED, page.fd(), 0);
        assert_true(ro != MAP_FAILED);
        bwq_decision got;
        assert_int_equal(bwq_page_read(static_cast<const bwq_page *>(ro), &got), 0);
        assert_int_equal(got.act_bits, 6);
        assert_int_equal(got.section, 3);
        assert_int_equal(got.available_bps, 12);
        assert_int_equal(got.timestamp_ns, 77000);
        assert_int_equal(got.table_generation, 5);
        assert_string_equal(got.source, "replay");
        // Sealed: no writable mapping, no resizing.
        assert_true(mmap(nullptr, BWQ_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, page.fd(), 0) == MAP_FAILED);
        assert_int_equal(errno, EPERM);
        assert_int_equal(ftruncate(page.fd(), 8192), -1);
        assert_int_equal(ftruncate(page.fd(), 0), -1);
        assert_int_equal(write(page.fd(), "x", 1), -1);
        munmap(ro, BWQ_PAGE_SIZE);
}

// A reload reopens the source when any key a source reads changed, and
// only then: keys set to a non-default value one at a time.
static void reload_reopens_source_on_any_source_key(void **)
{
        const Config base;
        assert_false(source_settings_differ(base, base));
        struct Case {
                const char *text;
                bool source_key;
        } cases[] = {
                {"[Resctrl]\nGroup=other\n", true},  // once left out of a hand-written list
                {"[Resctrl]\nPath=/tmp/r\n", true},
                {"[Sampling]\nSource=probe\n", true},
                {"[Perf]\nSysfsRoot=/tmp/s\n", true},
                {"[Probe]\nMethod=latency\n", true},
                {"[Probe]\nBuffer=32MiB\n", true},
                {"[Ebpf]\nEvent=llc-load-misses\n", true},
                {"[Ebpf]\nLineSize=128\n", true},
                {"[Ebpf]\nMaxTasks=100\n", true},
                {"[Ebpf]\nCgroup=/sys/fs/cgroup/x\n", true},
                {"[Ebpf]\nTick=20ms\n", true},
                {"[Replay]\nPath=/tmp/t.csv\n", true},
                {"[Sampling]\nInterval=200ms\n", false},
                {"[Policy]\nMinDwell=1s\n", false},
                {"[Clients]\nMax=10\n", false},
        };
        for (const Case &k : cases) {
                Config c;
                std::string why;
                assert_int_equal(config_parse_text(k.text, "r.conf", &c, &why), 0);
                assert_false(c == base);
                if (source_settings_differ(base, c) != k.source_key)
                        fail_msg("%s: source_settings_differ should be %d", k.text, k.source_key);
        }
}

int main()
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(units),
                cmocka_unit_test(config_errors_name_file_line_key),
                cmocka_unit_test(config_files_and_dropins),
                cmocka_unit_test(policy_fig5_hysteresis_dwell),
                cmocka_unit_test(policy_stale),
                cmocka_unit_test(replay_traces),
                cmocka_unit_test(resctrl_exact_rates_and_odd_values),
                cmocka_unit_test(resctrl_snc_subdomains),
                cmocka_unit_test(resctrl_missing_and_clients),
                cmocka_unit_test(perf_intel_server),
                cmocka_unit_test(perf_amd_arm_and_garbage),
                cmocka_unit_test(decision_page_sealed),
                cmocka_unit_test(reload_reopens_source_on_any_source_key),
        };
        return cmocka_run_group_tests_name("daemon", tests, nullptr, nullptr);
}

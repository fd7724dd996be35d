// bwqd's counter sources without hardware: resctrl on fixture trees rewritten
// between samples, and perf through its syscall seam.
#include <linux/perf_event.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <map>

#include "daemon/config.h"
#include "daemon/probe_estimator.h"
#include "daemon/source.h"
#include "daemon_fixtures.h"

using namespace bwq;
using namespace test;

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
        const int mefd = int(syscall(SYS_pidfd_open, getpid(), 0));
        assert_true(mefd >= 0);
        const ClientProcess self{getpid(), mefd};
        assert_int_equal(s3->add_client(self, &why), 0);
        std::string me = std::to_string(getpid()) + "\n";
        assert_non_null(strstr(read_file(fx.root + "/mon_groups/bwq-npu/tasks").c_str(), me.c_str()));
        s3->remove_client(self);
        assert_non_null(strstr(read_file(fx.root + "/tasks").c_str(), me.c_str()));
        assert_int_equal(s3->add_client(ClientProcess{999999999, -1}, &why), -ESRCH);

        // A reused pid: the client's process exited (its pidfd says so), and
        // its pid now names another process (here: us).  Neither add nor
        // remove may move that process.
        pid_t child = fork();
        if (child == 0)
                _exit(0);
        const int childfd = int(syscall(SYS_pidfd_open, child, 0));
        assert_true(childfd >= 0);
        assert_int_equal(waitpid(child, nullptr, 0), child);
        write_file(fx.root + "/mon_groups/bwq-npu/tasks", "");
        write_file(fx.root + "/tasks", "");
        const ClientProcess reused{getpid(), childfd};
        assert_false(reused.alive());
        assert_int_equal(s3->add_client(reused, &why), -ESRCH);
        assert_non_null(strstr(why.c_str(), "is gone"));
        s3->remove_client(reused);
        assert_string_equal(read_file(fx.root + "/mon_groups/bwq-npu/tasks").c_str(), "");
        assert_string_equal(read_file(fx.root + "/tasks").c_str(), "");
        // A tasks file that is a FIFO (a fixture, or worse) is refused, not
        // waited on.
        unlink((fx.root + "/tasks").c_str());
        assert_int_equal(mkfifo((fx.root + "/tasks").c_str(), 0600), 0);
        s3->remove_client(self);
        unlink((fx.root + "/tasks").c_str());
        close(childfd);
        close(mefd);
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

// ---- the probe's arithmetic, through ProbeEstimator on synthetic streams ----

namespace {

const double kG = 1e9;

// Stream readings in GB/s: a VM's idle with a long slow tail (a fifth of
// the samples meet a neighbour's moment and run at two thirds), and a
// loaded state in which an antagonist of 30 GB/s halves the rate.
struct Synth {
        uint64_t state = 12345;
        double uniform()
        {
                state = state * 6364136223846793005ull + 1442695040888963407ull;
                return double(state >> 11) / double(1ull << 53);
        }
        double idle() { return (uniform() < 0.2 ? 26.0 : 39.0) * (1 + 0.04 * (uniform() - 0.5)) * kG; }
        double loaded() { return (uniform() < 0.1 ? 39.0 : 19.5) * (1 + 0.04 * (uniform() - 0.5)) * kG; }
};

ProbeCalibration synth_calibration(Synth &g)
{
        ProbeCalibration c;
        c.max_bps = 44000000000ull;
        c.interval_ns = 100000000;
        for (int i = 0; i < 25; i++)
                c.idle.push_back(g.idle());
        for (int i = 0; i < 25; i++)
                c.loaded.push_back(g.loaded());
        c.antagonist_bps = 30 * kG;
        return c;
}

} // namespace

static void probe_idle_noise_reads_as_no_load(void **)
{
        Synth g;
        ProbeEstimator e(synth_calibration(g));
        assert_int_equal(e.window(), 10);
        assert_true(e.band() > 0.01 && e.band() < 0.3);
        int quiet = 0, n = 0;
        uint64_t t = 0;
        for (int i = 0; i < 600; i++, t += 100000000) {
                const double used = e.update(t, g.idle());
                assert_true(used >= 0 && used <= 44 * kG);
                n++;
                quiet += used <= 4.4 * kG;
        }
        // A fifth of the samples are slow, yet nearly every estimate is idle.
        assert_true(quiet >= n * 95 / 100);
}

static void probe_load_step_reads_as_the_antagonist(void **)
{
        Synth g;
        ProbeEstimator e(synth_calibration(g));
        uint64_t t = 0;
        for (int i = 0; i < 100; i++, t += 100000000)
                e.update(t, g.idle());
        const double base = e.baseline();
        // A load step: within a window's worth of samples the estimate is the
        // antagonist's rate (within 25%), and it stays there for 5 minutes.
        std::vector<double> est;
        for (int i = 0; i < 3000; i++, t += 100000000) {
                const double used = e.update(t, g.loaded());
                if (i >= int(e.window()))
                        est.push_back(used);
        }
        std::sort(est.begin(), est.end());
        const double med = est[est.size() / 2];
        print_message("probe load step: median estimate %.2f GB/s for a 30 GB/s antagonist\n", med / kG);
        assert_true(med >= 0.75 * 30 * kG && med <= 1.25 * 30 * kG);
        // 5 minutes of load did not move the idle baseline (beyond the step's
        // first samples, while the window still read as idle).
        assert_true(std::fabs(e.baseline() - base) < 0.01 * base);
        // Back to idle: the estimate falls to nothing within a window.
        double used = 0;
        for (int i = 0; i < int(e.window()); i++, t += 100000000)
                used = e.update(t, g.idle());
        assert_true(used <= 4.4 * kG);
}

static void probe_baseline_follows_drift_not_load(void **)
{
        Synth g;
        ProbeCalibration c = synth_calibration(g);
        ProbeEstimator e(c);
        const double base0 = e.baseline();
        uint64_t t = 0;
        // The machine's idle speeds up by 10% (a clock, a quieter neighbour):
        // followed with the 20 s time constant, so 2 minutes later it is in.
        for (int i = 0; i < 1200; i++, t += 100000000)
                e.update(t, 1.10 * g.idle());
        assert_true(e.baseline() > 1.08 * base0);
        // And back down by 10%: within the dead band, the baseline falls at
        // most 2% a minute.
        const double high = e.baseline();
        for (int i = 0; i < 600; i++, t += 100000000)
                e.update(t, g.idle());
        assert_true(e.baseline() >= high * (1 - 0.02 * 1.05));
        assert_true(e.baseline() < high);
        // A latency probe reads the other way round: slower is more load.
        ProbeCalibration l;
        l.higher_is_better = false;
        l.max_bps = c.max_bps;
        for (int i = 0; i < 25; i++) {
                l.idle.push_back(200 + (i % 5 == 0 ? 60 : i % 3));
                l.loaded.push_back(260 + i % 3);
        }
        l.antagonist_bps = 30 * kG;
        ProbeEstimator el(l);
        double idle_used = 0, load_used = 0;
        for (int i = 0; i < 50; i++, t += 100000000)
                idle_used = el.update(t, 200 + (i % 5 == 0 ? 60 : i % 3));
        for (int i = 0; i < 50; i++, t += 100000000)
                load_used = el.update(t, 261);
        assert_true(idle_used <= 4.4 * kG);
        assert_true(load_used >= 0.75 * 30 * kG && load_used <= 1.25 * 30 * kG);
}

static void probe_bad_readings_and_no_antagonist(void **)
{
        Synth g;
        ProbeCalibration c = synth_calibration(g);
        ProbeEstimator e(c);
        uint64_t t = 0;
        for (int i = 0; i < 20; i++, t += 100000000)
                e.update(t, g.loaded());
        const double before = e.last();
        assert_true(before > 0);
        // Nonsense readings (a clock that went wrong) change nothing.
        for (double bad : {0.0, -1.0, double(NAN), double(INFINITY)})
                assert_true(e.update(t, bad) == before);
        // One CPU: no antagonist ran; a change of one past the band is the maximum.
        ProbeCalibration one = c;
        one.loaded.clear();
        one.antagonist_bps = 0;
        ProbeEstimator e1(one);
        assert_true(e1.slope() == double(c.max_bps));
        assert_true(ProbeEstimator::signal_noise(one) == 0);
        assert_true(ProbeEstimator::signal_noise(c) > 1);
        // An antagonist the probe did not see: the slope is not blown up by
        // a change of nothing.
        ProbeCalibration blind = c;
        blind.loaded = blind.idle;
        ProbeEstimator eb(blind);
        assert_true(eb.slope() == double(c.max_bps));
        for (int i = 0; i < 50; i++, t += 100000000)
                assert_true(eb.update(t, g.idle()) <= 44 * kG);
        // Blind below twice the idle noise, whatever the sign of the change;
        // never without an antagonist.
        assert_true(ProbeEstimator::blind(blind));
        assert_false(ProbeEstimator::blind(one));
        assert_false(ProbeEstimator::blind(c));
        const double noise = ProbeEstimator::noise(c.idle);
        for (double snr : {0.5, 1.0, 1.9, 2.1, 4.0}) {
                // Loaded readings slower than idle by snr times the noise.
                ProbeCalibration k = c;
                const double idle_stat = ProbeEstimator::statistic(c.idle, c.higher_is_better);
                k.loaded.assign(c.idle.size(), c.higher_is_better ? idle_stat * (1 - snr * noise) : idle_stat * (1 + snr * noise));
                print_message("signal/noise %.2f (asked %.1f): %s\n", ProbeEstimator::signal_noise(k), snr,
                              ProbeEstimator::blind(k) ? "blind" : "sees load");
                assert_true(ProbeEstimator::blind(k) == (snr < 2));
        }
}

int main()
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(probe_idle_noise_reads_as_no_load),
                cmocka_unit_test(probe_load_step_reads_as_the_antagonist),
                cmocka_unit_test(probe_baseline_follows_drift_not_load),
                cmocka_unit_test(probe_bad_readings_and_no_antagonist),
                cmocka_unit_test(resctrl_exact_rates_and_odd_values),
                cmocka_unit_test(resctrl_snc_subdomains),
                cmocka_unit_test(resctrl_missing_and_clients),
                cmocka_unit_test(perf_intel_server),
                cmocka_unit_test(perf_amd_arm_and_garbage),
        };
        return cmocka_run_group_tests_name("sources", tests, nullptr, nullptr);
}

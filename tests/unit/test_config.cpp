// bwqd's configuration without a bus: units, errors that name the file, line
// and key, drop-ins, and which keys make a reload reopen the source.
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/clock.h"
#include "common/units.h"
#include "daemon/config.h"
#include "daemon/source_registry.h"
#include "daemon_fixtures.h"

using namespace bwq;
using namespace test;

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

// What a careless or hostile admin can put where bwqd reads (issue: files
// with no type or size limit, silently skipped drop-ins): each a clear error
// naming the file, at once, never a hang, an abort or a default.
static void config_files_that_are_not_config(void **)
{
        const std::string d = tmpdir();
        Config c;
        std::string why;
        auto load = [&](const std::string &path) {
                why.clear();
                return config_load(path, &c, &why);
        };
        // Missing: the defaults.
        assert_int_equal(load(d + "/none.conf"), 0);
        // A directory given as -c.
        assert_int_equal(mkdir((d + "/dir.conf").c_str(), 0755), 0);
        assert_int_equal(load(d + "/dir.conf"), -EISDIR);
        assert_non_null(strstr(why.c_str(), "a directory, not a regular file"));
        // A symlink loop.
        assert_int_equal(symlink((d + "/loop.conf").c_str(), (d + "/loop.conf").c_str()), 0);
        assert_int_equal(load(d + "/loop.conf"), -ELOOP);
        assert_non_null(strstr(why.c_str(), "too many levels of symbolic links"));
        // A device: /dev/zero would have filled memory.
        assert_int_equal(load("/dev/zero"), -EINVAL);
        assert_non_null(strstr(why.c_str(), "/dev/zero: a character device"));
        // A FIFO with no writer: refused at once, not waited on.
        assert_int_equal(mkfifo((d + "/fifo.conf").c_str(), 0600), 0);
        uint64_t t0 = bwq::monotonic_ns();
        assert_int_equal(load(d + "/fifo.conf"), -EINVAL);
        assert_true(bwq::monotonic_ns() - t0 < 1000000000ull);
        assert_non_null(strstr(why.c_str(), "a FIFO"));
        // Past the 1 MiB limit.
        write_file(d + "/big.conf", std::string((1u << 20) + 1, '#'));
        assert_int_equal(load(d + "/big.conf"), -EFBIG);
        assert_non_null(strstr(why.c_str(), "larger than 1 MiB"));

        // Drop-ins: a conf.d that is a file, a drop-in that is a symlink to
        // a directory, a FIFO drop-in.
        write_file(d + "/m.conf", "[Sampling]\nInterval=50ms\n");
        write_file(d + "/m.conf.d", "not a directory");
        assert_int_equal(load(d + "/m.conf"), -ENOTDIR);
        assert_non_null(strstr(why.c_str(), "m.conf.d: not a directory"));
        unlink((d + "/m.conf.d").c_str());
        assert_int_equal(mkdir((d + "/m.conf.d").c_str(), 0755), 0);
        assert_int_equal(mkdir((d + "/elsewhere").c_str(), 0755), 0);
        assert_int_equal(symlink((d + "/elsewhere").c_str(), (d + "/m.conf.d/x.conf").c_str()), 0);
        assert_int_equal(load(d + "/m.conf"), -EISDIR);
        assert_non_null(strstr(why.c_str(), "x.conf: a directory"));
        unlink((d + "/m.conf.d/x.conf").c_str());
        assert_int_equal(mkfifo((d + "/m.conf.d/y.conf").c_str(), 0600), 0);
        assert_int_equal(load(d + "/m.conf"), -EINVAL);
        assert_non_null(strstr(why.c_str(), "y.conf: a FIFO"));
        unlink((d + "/m.conf.d/y.conf").c_str());
        // A drop-in that links to a regular file is read (a packaged /etc
        // may link).
        write_file(d + "/elsewhere/z", "[Sampling]\nInterval=70ms\n");
        assert_int_equal(symlink((d + "/elsewhere/z").c_str(), (d + "/m.conf.d/z.conf").c_str()), 0);
        assert_int_equal(load(d + "/m.conf"), 0);
        assert_int_equal(c.sampling.interval_usec, 70000);

        // Control bytes in a line: refused, and escaped in the message.
        write_file(d + "/esc.conf", "[Sampling]\nSource=\x1b[2Jreplay\n");
        assert_int_equal(load(d + "/esc.conf"), -EINVAL);
        assert_null(strchr(why.c_str(), '\x1b'));
        assert_non_null(strstr(why.c_str(), "\\x1b[2Jreplay"));
        assert_non_null(strstr(why.c_str(), "esc.conf:2"));
        write_file(d + "/cr.conf", "[Sampling]\nSource=re\rplay\n");
        assert_int_equal(load(d + "/cr.conf"), -EINVAL);
        assert_null(strchr(why.c_str(), '\r'));

        // A maximum past 2^63 was silently 2^63: now exact, or refused.
        write_file(d + "/max.conf", "[Bandwidth]\nMax=18000000000000000000\n");
        assert_int_equal(load(d + "/max.conf"), -EINVAL);
        assert_non_null(strstr(why.c_str(), "more than 1 PB/s"));
        write_file(d + "/max.conf", "[Bandwidth]\nMax=44000000001\n");
        assert_int_equal(load(d + "/max.conf"), 0);
        assert_int_equal(*c.bandwidth.max_bps, 44000000001ull);
        uint64_t v;
        assert_int_equal(parse_bandwidth("18446744073709551615", &v), -ERANGE);
        assert_int_equal(parse_bandwidth("18000000000000000000", &v), 0);
        assert_int_equal(v, 18000000000000000000ull);
        assert_int_equal(parse_bandwidth("9223372036854775809", &v), 0);
        assert_int_equal(v, 9223372036854775809ull);
        rm_rf(d);
}

// The calibration bwqctl stores, read back strictly (it was read with >>:
// "-5" became 18446744073 GB/s, "12abc" 12 B/s, "1e30" 1 B/s).
static void calibration_file(void **)
{
        const std::string d = tmpdir(), f = d + "/max-bandwidth";
        uint64_t v = 0;
        std::string why;
        assert_int_equal(read_calibration(f, &v, &why), -ENOENT);
        write_file(f, "44000000000\n");
        assert_int_equal(read_calibration(f, &v, &why), 0);
        assert_int_equal(v, 44000000000ull);
        for (const char *bad : {"-5", "12abc", "1e30", "", "12 13", "999", "2000000000000000", "0x10"}) {
                write_file(f, std::string(bad) + "\n");
                why.clear();
                assert_int_equal(read_calibration(f, &v, &why), -EINVAL);
                assert_non_null(strstr(why.c_str(), "is not a whole number of bytes per second from 1 MB/s to 1 PB/s"));
        }
        write_file(f, std::string(100, '1'));
        assert_int_equal(read_calibration(f, &v, &why), -EFBIG);
        unlink(f.c_str());
        assert_int_equal(mkfifo(f.c_str(), 0600), 0);
        assert_int_equal(read_calibration(f, &v, &why), -EINVAL);
        rm_rf(d);
}

int main()
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(units),
                cmocka_unit_test(config_errors_name_file_line_key),
                cmocka_unit_test(config_files_and_dropins),
                cmocka_unit_test(reload_reopens_source_on_any_source_key),
                cmocka_unit_test(config_files_that_are_not_config),
                cmocka_unit_test(calibration_file),
        };
        return cmocka_run_group_tests_name("config", tests, nullptr, nullptr);
}

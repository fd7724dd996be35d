// bwqd's decision without a bus: the FIG. 5 policy with hysteresis, MinDwell
// and Stale, replay traces, and the sealed decision page.
#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstring>

#include "daemon/config.h"
#include "daemon/decision_page.h"
#include "daemon/policy.h"
#include "daemon/source.h"
#include "daemon_fixtures.h"

using namespace bwq;
using namespace test;

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

        // Traces that are not files, or too big: refused at once, without
        // reading them whole (--replay=/dev/zero aborted, a FIFO hung, 10
        // million rows took 600 MB before they were refused).
        auto start = [&](const std::string &path) {
                c.replay.path = path;
                auto src = make_replay_source(c, clk.fn());
                why.clear();
                return src->start(&why);
        };
        assert_int_equal(start("/dev/zero"), -EINVAL);
        assert_non_null(strstr(why.c_str(), "a character device"));
        d = tmpdir();
        assert_int_equal(mkfifo((d + "/fifo").c_str(), 0600), 0);
        assert_int_equal(start(d + "/fifo"), -EINVAL);
        assert_non_null(strstr(why.c_str(), "a FIFO"));
        {
                // 65 MiB of comments: past the 64 MiB limit.
                FILE *f = fopen((d + "/big.csv").c_str(), "w");
                std::string line(1023, '#');
                line += '\n';
                for (int i = 0; i < 65 * 1024; i++)
                        fputs(line.c_str(), f);
                fclose(f);
        }
        assert_int_equal(start(d + "/big.csv"), -EFBIG);
        assert_non_null(strstr(why.c_str(), "larger than 64 MiB"));
        {
                std::string rows_text;
                for (int i = 0; i <= 1000000; i++)
                        rows_text += std::to_string(i) + ",1\n";
                assert_int_equal(parse_replay(rows_text, "rows.csv", &rows, &why), -EINVAL);
                assert_string_equal(why.c_str(), "rows.csv:1000001: more than 1000000 rows");
        }
        // Control bytes in a trace's cells are escaped in the message.
        assert_int_equal(parse_replay("0,\x1b[31m5\n", "t.csv", &rows, &why), -EINVAL);
        assert_null(strchr(why.c_str(), '\x1b'));
        rm_rf(d);
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
        page.publish(d, "replay", 5, 0, 1000000000ull, 100000000ull);
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
        // The heartbeat: frozen after 10 intervals (1 s here), not before.
        assert_int_equal(got.published_ns, 1000000000ull);
        assert_int_equal(got.interval_ns, 100000000ull);
        assert_false(bwq_decision_frozen(&got, 1000000000ull + 999000000ull));
        assert_true(bwq_decision_frozen(&got, 1000000000ull + 1001000000ull));
        // ... and at least 500 ms when the interval is short.
        got.interval_ns = 1000000;
        assert_false(bwq_decision_frozen(&got, 1000000000ull + 400000000ull));
        assert_true(bwq_decision_frozen(&got, 1000000000ull + 501000000ull));
        // An older bwqd's page without an interval: one second.
        got.interval_ns = 0;
        assert_false(bwq_decision_frozen(&got, 1000000000ull + 900000000ull));
        assert_true(bwq_decision_frozen(&got, 1000000000ull + 1100000000ull));
        // Sealed: no writable mapping, no resizing.
        assert_true(mmap(nullptr, BWQ_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, page.fd(), 0) == MAP_FAILED);
        assert_int_equal(errno, EPERM);
        assert_int_equal(ftruncate(page.fd(), 8192), -1);
        assert_int_equal(ftruncate(page.fd(), 0), -1);
        assert_int_equal(write(page.fd(), "x", 1), -1);
        munmap(ro, BWQ_PAGE_SIZE);
}

int main()
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(policy_fig5_hysteresis_dwell),
                cmocka_unit_test(policy_stale),
                cmocka_unit_test(replay_traces),
                cmocka_unit_test(decision_page_sealed),
        };
        return cmocka_run_group_tests_name("policy", tests, nullptr, nullptr);
}

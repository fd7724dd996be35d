// The replay source: a CSV trace of t_ms,used_Bps[,npu_Bps], for tests,
// demos and what-if runs.  Time 0 is when the source starts; the last row
// holds after the trace ends.
#include <cerrno>
#include <cstring>
#include <string_view>
#include <sstream>

#include "common/file.h"
#include "common/text.h"
#include "source.h"

namespace bwq {

namespace {

// What a trace may hold (bwqd.conf(5), [Replay]).
const size_t kReplayFileLimit = 64u << 20;
const size_t kReplayRowLimit = 1000000;

bool parse_u64(const std::string &s, uint64_t *ret)
{
        if (s.empty() || s.size() > 20)
                return false;
        uint64_t v = 0;
        for (char c : s) {
                if (c < '0' || c > '9')
                        return false;
                if (v > (UINT64_MAX - uint64_t(c - '0')) / 10)
                        return false;
                v = v * 10 + uint64_t(c - '0');
        }
        *ret = v;
        return true;
}

std::string trim(const std::string &s)
{
        size_t b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
        return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}

class ReplaySource : public Source {
public:
        ReplaySource(const Config &c, Clock clock) : path_(c.replay.path), clock_(std::move(clock)) {}
        const char *name() const override { return "replay"; }

        int start(std::string *why) override
        {
                if (path_.empty()) {
                        *why = "no trace: set [Replay] Path=";
                        return -ENOENT;
                }
                std::string text;
                if (int r = read_regular_file(path_, kReplayFileLimit, &text, why); r < 0)
                        return r;
                if (int r = parse_replay(text, path_, &rows_, why); r < 0)
                        return r;
                t0_ = clock_();
                last_ = t0_;
                return 0;
        }

        Reading read() override
        {
                Reading r = stamped(clock_, &last_);
                uint64_t t_ms = (r.t_ns - t0_) / 1000000;
                // The row in force: the last with t_ms <= now.
                size_t i = 0;
                while (i + 1 < rows_.size() && rows_[i + 1].t_ms <= t_ms)
                        i++;
                const ReplayRow &row = rows_[i];
                if (r.interval_ns == 0) {
                        r.note = "no time has passed";
                        return r;
                }
                // Bytes in the interval at the row's rates.
                r.total_bytes = uint64_t((unsigned __int128)row.used_bps * r.interval_ns / 1000000000u);
                r.npu_bytes = uint64_t((unsigned __int128)row.npu_bps * r.interval_ns / 1000000000u);
                r.npu_split = row.has_npu;
                r.valid = true;
                return r;
        }

        std::string detail() const override { return path_ + " (" + std::to_string(rows_.size()) + " rows)"; }

private:
        std::string path_;
        Clock clock_;
        std::vector<ReplayRow> rows_;
        uint64_t t0_ = 0, last_ = 0;
};

} // namespace

int parse_replay(const std::string &text, const std::string &name, std::vector<ReplayRow> *ret, std::string *ret_error)
{
        std::string_view rest = text;
        unsigned lineno = 0;
        std::vector<ReplayRow> rows;
        const std::string shown = escape_text(name);
        while (!rest.empty()) {
                size_t nl = rest.find('\n');
                std::string line(rest.substr(0, nl));
                rest = nl == std::string_view::npos ? std::string_view() : rest.substr(nl + 1);
                lineno++;
                std::string l = trim(line);
                if (l.empty() || l[0] == '#')
                        continue;
                if (lineno == 1 && l.rfind("t_ms", 0) == 0)
                        continue;  // header
                std::vector<std::string> f;
                std::stringstream ls(l);
                std::string cell;
                while (f.size() < 4 && std::getline(ls, cell, ','))
                        f.push_back(trim(cell));
                ReplayRow row{0, 0, 0};
                auto fail = [&](const std::string &why) {
                        *ret_error = shown + ":" + std::to_string(lineno) + ": " + escape_text(why);
                        return -EINVAL;
                };
                if (f.size() < 2 || f.size() > 3)
                        return fail("expected t_ms,used_Bps[,npu_Bps], got " + (f.size() > 3 ? std::string("more than 3") : std::to_string(f.size())) + " fields");
                if (!parse_u64(f[0], &row.t_ms))
                        return fail("t_ms '" + f[0] + "' is not a whole number of milliseconds");
                if (!parse_u64(f[1], &row.used_bps))
                        return fail("used_Bps '" + f[1] + "' is not a whole number of bytes per second");
                if (f.size() == 3 && !parse_u64(f[2], &row.npu_bps))
                        return fail("npu_Bps '" + f[2] + "' is not a whole number of bytes per second");
                row.has_npu = f.size() == 3;
                if (row.npu_bps > row.used_bps)
                        return fail("npu_Bps is larger than used_Bps, which includes it");
                if (!rows.empty() && row.t_ms <= rows.back().t_ms)
                        return fail("t_ms must increase from row to row");
                if (rows.size() >= kReplayRowLimit)
                        return fail("more than " + std::to_string(kReplayRowLimit) + " rows");
                rows.push_back(row);
        }
        if (rows.empty()) {
                *ret_error = shown + ": no rows";
                return -EINVAL;
        }
        *ret = std::move(rows);
        return 0;
}

std::unique_ptr<Source> make_replay_source(const Config &c, Clock clock)
{
        return std::make_unique<ReplaySource>(c, std::move(clock));
}

} // namespace bwq

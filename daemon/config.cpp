#include "config.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <sstream>

#include "common/depth.h"
#include "common/file.h"
#include "common/text.h"
#include "config_parse.h"

namespace bwq {

namespace {
// Source= and --source=: the one list of names.
const std::pair<const char *, SourceKind> kSourceNames[] = {
        {"auto", SourceKind::Auto}, {"resctrl", SourceKind::Resctrl}, {"perf", SourceKind::Perf},
        {"ebpf", SourceKind::Ebpf}, {"probe", SourceKind::Probe},     {"replay", SourceKind::Replay}};
} // namespace

const char *source_kind_name(SourceKind k)
{
        for (const auto &[name, kind] : kSourceNames)
                if (kind == k)
                        return name;
        return "?";
}

int source_kind_parse(const std::string &name, SourceKind *ret, std::string *why)
{
        for (const auto &[n, kind] : kSourceNames)
                if (name == n) {
                        *ret = kind;
                        return 0;
                }
        *why = "'" + name + "' is not auto, resctrl, perf, ebpf, probe or replay";
        return -EINVAL;
}

std::vector<TableRow> PolicyConfig::default_table()
{
        // FIG. 5: 33/22/11 GB/s of 44 GB/s, as fractions of the maximum.
        return {{{true, 75, 0}, 16}, {{true, 50, 0}, 8}, {{true, 25, 0}, 6}, {{false, 0, 0}, 4}};
}

namespace {

std::string trim(const std::string &s)
{
        size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
        return b == std::string::npos ? std::string() : s.substr(b, e - b + 1);
}


} // namespace

int parse_uint(const std::string &v, unsigned long lo, unsigned long hi, unsigned long *ret)
{
        if (v.empty() || v[0] == '-' || v[0] == '+')
                return -EINVAL;
        char *e;
        errno = 0;
        unsigned long x = strtoul(v.c_str(), &e, 10);
        if (errno || *e)
                return -EINVAL;
        if (x < lo || x > hi)
                return -ERANGE;
        *ret = x;
        return 0;
}

int parse_table(const std::string &s, std::vector<TableRow> *ret, std::string *ret_error)
{
        std::istringstream in(s);
        std::string item;
        std::vector<TableRow> t;
        while (in >> item) {
                size_t colon = item.rfind(':');
                if (colon == std::string::npos) {
                        *ret_error = "'" + item + "' is not THRESHOLD:BITS";
                        return -EINVAL;
                }
                TableRow row;
                if (parse_level(item.substr(0, colon), &row.threshold) < 0) {
                        *ret_error = "'" + item.substr(0, colon) + "' is not a bandwidth or a percentage";
                        return -EINVAL;
                }
                unsigned long bits;
                if (parse_uint(item.substr(colon + 1), 1, 64, &bits) < 0 || !depth_supported(unsigned(bits))) {
                        *ret_error = "'" + item.substr(colon + 1) + "' is not 4, 6, 8 or 16 bits";
                        return -EINVAL;
                }
                row.bits = uint8_t(bits);
                t.push_back(row);
        }
        if (t.size() < 1 || t.size() > 16) {
                *ret_error = "a table has 1 to 16 rows";
                return -EINVAL;
        }
        if (t.back().threshold.resolve(1) != 0 || t.back().threshold.resolve(~0ull) != 0) {
                *ret_error = "the last row's threshold must be 0 (it takes everything below the others)";
                return -EINVAL;
        }
        for (size_t i = 1; i < t.size(); i++) {
                if (t[i].threshold.percent == t[i - 1].threshold.percent &&
                    t[i].threshold.resolve(100) >= t[i - 1].threshold.resolve(100) &&
                    t[i].threshold.resolve(1ull << 40) >= t[i - 1].threshold.resolve(1ull << 40)) {
                        *ret_error = "thresholds must decrease from row to row";
                        return -EINVAL;
                }
                if (t[i].bits > t[i - 1].bits) {
                        *ret_error = "bits may not grow as the threshold falls";
                        return -EINVAL;
                }
        }
        *ret = t;
        return 0;
}

std::string table_to_string(const std::vector<TableRow> &t)
{
        std::string s;
        for (const auto &r : t) {
                if (!s.empty())
                        s += ' ';
                s += r.threshold.percent ? r.threshold.to_string() : std::to_string(r.threshold.bps);
                s += ':' + std::to_string(r.bits);
        }
        return s;
}

int config_parse_text(const std::string &text, const std::string &filename, Config *cfg, std::string *ret_error)
{
        std::istringstream in(text);
        std::string line, section;
        unsigned lineno = 0;
        Config c = *cfg;
        // Every part of the message is escaped: a line's control bytes must
        // not reach a terminal or the journal.
        auto fail = [&](const std::string &key, const std::string &why) {
                *ret_error = escape_text(filename) + ":" + std::to_string(lineno) + ": " +
                             (key.empty() ? std::string() : "[" + escape_text(section) + "] " + escape_text(key) + ": ") +
                             escape_text(why, 1024);
                return -EINVAL;
        };
        while (std::getline(in, line)) {
                lineno++;
                if (line.size() > 4096)
                        return fail("", "line longer than 4096 bytes");
                std::string l = trim(line);
                std::string spaced = l;
                std::replace(spaced.begin(), spaced.end(), '\t', ' ');
                if (!utf8_printable(spaced))
                        return fail("", "a control character or invalid UTF-8 in '" + l + "'");
                if (l.empty() || l[0] == '#' || l[0] == ';')
                        continue;
                if (l[0] == '[') {
                        if (l.back() != ']')
                                return fail("", "'" + l + "' is not a [Section] header");
                        section = l.substr(1, l.size() - 2);
                        const auto &keys = config_keys();
                        if (std::none_of(keys.begin(), keys.end(), [&](const ConfigKey &k) { return section == k.section; }))
                                return fail("", "unknown section [" + section + "]");
                        continue;
                }
                size_t eq = l.find('=');
                if (eq == std::string::npos)
                        return fail("", "'" + l + "' is not Key=Value");
                std::string key = trim(l.substr(0, eq)), v = trim(l.substr(eq + 1));
                if (section.empty())
                        return fail("", "'" + key + "' before any [Section]");
                if (v.empty())
                        return fail(key, "empty value");
                const auto &keys = config_keys();
                auto it = std::find_if(keys.begin(), keys.end(),
                                       [&](const ConfigKey &k) { return section == k.section && key == k.key; });
                if (it == keys.end())
                        return fail(key, "unknown key");
                std::string why;
                if (it->parse(v, &c, &why) < 0)
                        return fail(key, why);
        }
        *cfg = c;
        return 0;
}

int config_check(const Config &cfg, uint64_t max_bps, std::string *ret_error)
{
        if (cfg.clients.reserved >= cfg.clients.total) {
                *ret_error = "[Clients] Reserved=" + std::to_string(cfg.clients.reserved) + " must be less than Max=" +
                             std::to_string(cfg.clients.total);
                return -EINVAL;
        }
        for (size_t i = 1; i < cfg.policy.table.size(); i++)
                if (cfg.policy.table[i].threshold.resolve(max_bps) >= cfg.policy.table[i - 1].threshold.resolve(max_bps)) {
                        *ret_error = "[Policy] Table: thresholds " + cfg.policy.table[i - 1].threshold.to_string() + " and " +
                                     cfg.policy.table[i].threshold.to_string() + " do not decrease at a maximum of " +
                                     format_bandwidth(max_bps);
                        return -EINVAL;
                }
        if (cfg.policy.table.front().threshold.resolve(max_bps) > max_bps) {
                *ret_error = "[Policy] Table: the first threshold is above the maximum bandwidth " + format_bandwidth(max_bps);
                return -EINVAL;
        }
        return 0;
}

// Limits of what bwqd reads (bwqd.conf(5), LIMITS).
static const size_t kConfigFileLimit = 1u << 20;
static const size_t kDropInLimit = 256;

int read_calibration(const std::string &path, uint64_t *ret, std::string *ret_error)
{
        std::string text;
        if (int r = read_regular_file(path, 64, &text, ret_error); r < 0)
                return r;
        const std::string t = trim(text);
        unsigned long v = 0;
        if (parse_uint(t, kMinCalibratedBandwidth, kMaxBandwidthLimit, &v) < 0) {
                *ret_error = escape_text(path) + ": '" + escape_text(t, 32) +
                             "' is not a whole number of bytes per second from 1 MB/s to 1 PB/s";
                return -EINVAL;
        }
        *ret = v;
        return 0;
}

int config_load(const std::string &path, Config *ret, std::string *ret_error)
{
        Config c;
        std::string text, why;
        // A missing main file means the defaults; anything else that is not a
        // regular file we can read (a directory, a FIFO, a symlink loop, no
        // permission) is an error, not a silent default.
        int r = read_regular_file(path, kConfigFileLimit, &text, &why);
        if (r < 0 && r != -ENOENT) {
                *ret_error = why;
                return r;
        }
        if (r >= 0 && (r = config_parse_text(text, path, &c, ret_error)) < 0)
                return r;
        std::string dir = path + ".d";
        DIR *d = opendir(dir.c_str());
        if (!d && errno != ENOENT) {
                int e = errno;
                *ret_error = escape_text(dir) + ": " + (e == ENOTDIR ? "not a directory" : strerror(e));
                return -e;
        }
        if (d) {
                std::vector<std::string> names;
                errno = 0;
                while (dirent *de = readdir(d)) {
                        std::string n = de->d_name;
                        if (n.size() > 5 && n.compare(n.size() - 5, 5, ".conf") == 0 && n[0] != '.')
                                names.push_back(n);
                        errno = 0;
                }
                int e = errno;
                closedir(d);
                if (e) {
                        *ret_error = escape_text(dir) + ": " + strerror(e);
                        return -e;
                }
                if (names.size() > kDropInLimit) {
                        *ret_error = escape_text(dir) + ": more than " + std::to_string(kDropInLimit) + " drop-ins";
                        return -E2BIG;
                }
                std::sort(names.begin(), names.end());
                for (const auto &n : names) {
                        // Each drop-in must be a regular file: a symlink to a
                        // directory named x.conf is an error, not skipped.
                        if ((r = read_regular_file(dir + "/" + n, kConfigFileLimit, &text, ret_error)) < 0)
                                return r;
                        if ((r = config_parse_text(text, dir + "/" + n, &c, ret_error)) < 0)
                                return r;
                }
        }
        *ret = c;
        return 0;
}

} // namespace bwq

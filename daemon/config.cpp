#include "config.h"

#include <dirent.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <fstream>
#include <sstream>

#include "common/depth.h"
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
        size_t b = s.find_first_not_of(" \t\r"), e = s.find_last_not_of(" \t\r");
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
        auto fail = [&](const std::string &key, const std::string &why) {
                *ret_error = filename + ":" + std::to_string(lineno) + ": " +
                             (key.empty() ? std::string() : "[" + section + "] " + key + ": ") + why;
                return -EINVAL;
        };
        while (std::getline(in, line)) {
                lineno++;
                if (line.size() > 4096)
                        return fail("", "line longer than 4096 bytes");
                std::string l = trim(line);
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

static int read_file(const std::string &path, std::string *ret, std::string *ret_error)
{
        std::ifstream f(path, std::ios::binary);
        if (!f) {
                int e = errno ? errno : EIO;
                *ret_error = path + ": " + strerror(e);
                return -e;
        }
        std::ostringstream ss;
        ss << f.rdbuf();
        if (ss.str().size() > (1u << 20)) {
                *ret_error = path + ": larger than 1 MiB";
                return -EFBIG;
        }
        *ret = ss.str();
        return 0;
}

int config_load(const std::string &path, Config *ret, std::string *ret_error)
{
        Config c;
        std::string text;
        if (access(path.c_str(), F_OK) == 0) {
                if (int r = read_file(path, &text, ret_error); r < 0)
                        return r;
                if (int r = config_parse_text(text, path, &c, ret_error); r < 0)
                        return r;
        }
        std::string dir = path + ".d";
        if (DIR *d = opendir(dir.c_str())) {
                std::vector<std::string> names;
                while (dirent *de = readdir(d)) {
                        std::string n = de->d_name;
                        if (n.size() > 5 && n.compare(n.size() - 5, 5, ".conf") == 0)
                                names.push_back(n);
                }
                closedir(d);
                std::sort(names.begin(), names.end());
                for (const auto &n : names) {
                        if (int r = read_file(dir + "/" + n, &text, ret_error); r < 0)
                                return r;
                        if (int r = config_parse_text(text, dir + "/" + n, &c, ret_error); r < 0)
                                return r;
                }
        }
        *ret = c;
        return 0;
}

} // namespace bwq

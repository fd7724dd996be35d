// bwqctl: the command line of bwqd.  See bwqctl(1).
#include <getopt.h>
#include <sys/stat.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "common/bus.h"
#include "config.h"
#include "common/clock.h"
#include "common/stream.h"
#include "common/units.h"

namespace {

const char kDest[] = "org.bwq1";
const char kPath[] = "/org/bwq1";
const char kManager[] = "org.bwq1.Manager";

enum Exit { EXIT_OK = 0, EXIT_FAIL = 1, EXIT_USAGE = 2, EXIT_NOBWQD = 3, EXIT_DENIED = 4 };

bool json = false;

void usage(FILE *f)
{
        fprintf(f,
                "Usage: bwqctl [OPTIONS] COMMAND [ARGS]\n"
                "Query and control bwqd, the memory-bandwidth bit-depth daemon.\n\n"
                "Commands:\n"
                "  status              decision, bandwidths, source and registered clients\n"
                "  monitor             one line per change, until interrupted\n"
                "  explain             why the daemon decided what it did\n"
                "  table               the bandwidth -> bits table\n"
                "  set-table ROWS      replace the table, e.g. '33GB/s:16 22GB/s:8 11GB/s:6 0:4'\n"
                "                      (percentages are of MaxBandwidth; needs root)\n"
                "  reload              make bwqd re-read its configuration (needs root)\n"
                "  sample              take a fresh sample now and print the decision\n"
                "  calibrate           measure the maximum bandwidth with streaming threads,\n"
                "                      store it for bwqd and reload it\n\n"
                "Options:\n"
                "      --bus=BUS           system (default, or $BWQ_BUS), session, or a D-Bus address\n"
                "  -j, --json              JSON output (status, table, sample, explain, calibrate)\n"
                "      --threads=N         calibrate: streaming threads (default: one per CPU)\n"
                "      --seconds=S         calibrate: length of the measurement (default: 2)\n"
                "      --state-dir=DIR     calibrate: where bwqd keeps state (default /var/lib/bwq)\n"
                "  -h, --help              this text\n\n"
                "Exit status: 0 success, 1 the command failed, 2 bad usage, 3 bwqd is not\n"
                "reachable, 4 permission denied.\n");
}

int connect(const std::string &spec, sd_bus **ret)
{
        int r = bwq::bus_open(spec, ret);
        if (r < 0)
                fprintf(stderr, "bwqctl: cannot connect to the %s bus: %s\n", spec.c_str(), strerror(-r));
        return r;
}

int error_exit(const char *what, const sd_bus_error *e, int r)
{
        if (sd_bus_error_is_set(e)) {
                fprintf(stderr, "bwqctl: %s: %s\n", what, e->message ? e->message : e->name);
                if (sd_bus_error_has_name(e, SD_BUS_ERROR_ACCESS_DENIED))
                        return EXIT_DENIED;
                if (sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) || sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                        return EXIT_NOBWQD;
                return EXIT_FAIL;
        }
        fprintf(stderr, "bwqctl: %s: %s\n", what, strerror(-r));
        return EXIT_FAIL;
}

std::string json_str(const std::string &s)
{
        std::string o = "\"";
        for (char c : s) {
                if (c == '"' || c == '\\')
                        o += '\\', o += c;
                else if (c == '\n')
                        o += "\\n";
                else if (uint8_t(c) < 0x20) {
                        char b[8];
                        snprintf(b, sizeof b, "\\u%04x", c);
                        o += b;
                } else
                        o += c;
        }
        return o + "\"";
}

struct Status {
        uint8_t bits = 0;
        uint64_t available = 0, used = 0, max = 0, interval = 0;
        uint32_t section = 0, clients = 0;
        std::string source;
        int stale = 0;
        std::vector<std::pair<uint64_t, uint8_t>> table;
        struct C {
                std::string path, name;
                uint32_t pid;
                uint8_t lo, hi, bits;
        };
        std::vector<C> client_list;
};

int read_table(sd_bus_message *m, std::vector<std::pair<uint64_t, uint8_t>> *t)
{
        int r = sd_bus_message_enter_container(m, 'a', "(ty)");
        if (r < 0)
                return r;
        uint64_t th;
        uint8_t b;
        while ((r = sd_bus_message_read(m, "(ty)", &th, &b)) > 0)
                t->push_back({th, b});
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

// Reads every property of a{sv} into st (manager) or client c.
int read_props(sd_bus_message *m, Status *st, Status::C *c)
{
        int r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name;
                if ((r = sd_bus_message_read(m, "s", &name)) < 0)
                        return r;
                std::string n = name;
                const char *sig;
                if ((r = sd_bus_message_peek_type(m, nullptr, &sig)) < 0)
                        return r;
                if ((r = sd_bus_message_enter_container(m, 'v', sig)) < 0)
                        return r;
                if (st && n == "ActivationBitDepth") r = sd_bus_message_read(m, "y", &st->bits);
                else if (st && n == "AvailableBandwidth") r = sd_bus_message_read(m, "t", &st->available);
                else if (st && n == "UsedBandwidth") r = sd_bus_message_read(m, "t", &st->used);
                else if (st && n == "MaxBandwidth") r = sd_bus_message_read(m, "t", &st->max);
                else if (st && n == "Section") r = sd_bus_message_read(m, "u", &st->section);
                else if (st && n == "Stale") r = sd_bus_message_read(m, "b", &st->stale);
                else if (st && n == "SampleIntervalUSec") r = sd_bus_message_read(m, "t", &st->interval);
                else if (st && n == "Clients") r = sd_bus_message_read(m, "u", &st->clients);
                else if (st && n == "Source") {
                        const char *s;
                        r = sd_bus_message_read(m, "s", &s);
                        if (r >= 0)
                                st->source = s;
                } else if (st && n == "Table") {
                        st->table.clear();
                        r = read_table(m, &st->table);
                } else if (c && n == "Name") {
                        const char *s;
                        r = sd_bus_message_read(m, "s", &s);
                        if (r >= 0)
                                c->name = s;
                } else if (c && n == "Pid") r = sd_bus_message_read(m, "u", &c->pid);
                else if (c && n == "MinBits") r = sd_bus_message_read(m, "y", &c->lo);
                else if (c && n == "MaxBits") r = sd_bus_message_read(m, "y", &c->hi);
                else if (c && n == "BitDepth") r = sd_bus_message_read(m, "y", &c->bits);
                else r = sd_bus_message_skip(m, sig);
                if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

// Everything at once: org.freedesktop.DBus.ObjectManager.GetManagedObjects
// for the clients and Properties.GetAll for the manager.
int get_status(sd_bus *bus, Status *st, sd_bus_error *e)
{
        sd_bus_message *reply = nullptr;
        int r = sd_bus_call_method(bus, kDest, kPath, "org.freedesktop.DBus.Properties", "GetAll", e, &reply, "s", kManager);
        if (r < 0)
                return r;
        r = read_props(reply, st, nullptr);
        sd_bus_message_unref(reply);
        if (r < 0)
                return r;
        r = sd_bus_call_method(bus, kDest, kPath, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", e, &reply, "");
        if (r < 0)
                return r;
        st->client_list.clear();
        if ((r = sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}")) < 0)
                goto out;
        while ((r = sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}")) > 0) {
                const char *path;
                if ((r = sd_bus_message_read(reply, "o", &path)) < 0 ||
                    (r = sd_bus_message_enter_container(reply, 'a', "{sa{sv}}")) < 0)
                        goto out;
                while ((r = sd_bus_message_enter_container(reply, 'e', "sa{sv}")) > 0) {
                        const char *iface;
                        if ((r = sd_bus_message_read(reply, "s", &iface)) < 0)
                                goto out;
                        if (strcmp(iface, "org.bwq1.Client") == 0) {
                                Status::C c{path, "", 0, 0, 0, 0};
                                if ((r = read_props(reply, nullptr, &c)) < 0)
                                        goto out;
                                st->client_list.push_back(c);
                        } else if ((r = sd_bus_message_skip(reply, "a{sv}")) < 0)
                                goto out;
                        if ((r = sd_bus_message_exit_container(reply)) < 0)
                                goto out;
                }
                if (r < 0 || (r = sd_bus_message_exit_container(reply)) < 0 || (r = sd_bus_message_exit_container(reply)) < 0)
                        goto out;
        }
        if (r >= 0)
                r = sd_bus_message_exit_container(reply);
out:
        sd_bus_message_unref(reply);
        return r;
}

std::string clients_line(const Status &st)
{
        std::string s;
        for (const auto &c : st.client_list)
                s += (s.empty() ? "" : " ") + c.name + "[" + std::to_string(c.lo) + "-" + std::to_string(c.hi) +
                     "]=" + std::to_string(c.bits);
        return s.empty() ? "-" : s;
}

void print_status(const Status &st)
{
        if (json) {
                printf("{\"bits\":%u,\"section\":%u,\"available_bps\":%llu,\"used_bps\":%llu,\"max_bps\":%llu,"
                       "\"source\":%s,\"stale\":%s,\"interval_usec\":%llu,\"table\":[",
                       st.bits, st.section, (unsigned long long)st.available, (unsigned long long)st.used,
                       (unsigned long long)st.max, json_str(st.source).c_str(), st.stale ? "true" : "false",
                       (unsigned long long)st.interval);
                for (size_t i = 0; i < st.table.size(); i++)
                        printf("%s{\"threshold_bps\":%llu,\"bits\":%u}", i ? "," : "", (unsigned long long)st.table[i].first,
                               st.table[i].second);
                printf("],\"clients\":[");
                for (size_t i = 0; i < st.client_list.size(); i++) {
                        const auto &c = st.client_list[i];
                        printf("%s{\"path\":%s,\"name\":%s,\"pid\":%u,\"min_bits\":%u,\"max_bits\":%u,\"bits\":%u}", i ? "," : "",
                               json_str(c.path).c_str(), json_str(c.name).c_str(), c.pid, c.lo, c.hi, c.bits);
                }
                printf("]}\n");
                return;
        }
        printf("Activation bits: %u%s\n", st.bits, st.stale ? " (stale)" : "");
        printf("        Section: %u of %zu\n", st.section, st.table.size());
        printf("      Available: %s\n", bwq::format_bandwidth(st.available).c_str());
        printf("Used by others: %s\n", bwq::format_bandwidth(st.used).c_str());
        printf("        Maximum: %s\n", bwq::format_bandwidth(st.max).c_str());
        printf("         Source: %s, every %s\n", st.source.c_str(), bwq::format_duration(st.interval).c_str());
        printf("        Clients: %u\n", st.clients);
        for (const auto &c : st.client_list)
                printf("                 %s %s pid %u bits [%u, %u] -> %u\n", c.path.c_str(), c.name.c_str(), c.pid, c.lo, c.hi,
                       c.bits);
}

int cmd_status(sd_bus *bus)
{
        Status st;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = get_status(bus, &st, &e);
        if (r < 0) {
                int x = error_exit("status", &e, r);
                sd_bus_error_free(&e);
                return x;
        }
        print_status(st);
        return EXIT_OK;
}

int cmd_table(sd_bus *bus)
{
        Status st;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = get_status(bus, &st, &e);
        if (r < 0) {
                int x = error_exit("table", &e, r);
                sd_bus_error_free(&e);
                return x;
        }
        if (json) {
                printf("[");
                for (size_t i = 0; i < st.table.size(); i++)
                        printf("%s{\"section\":%zu,\"threshold_bps\":%llu,\"bits\":%u}", i ? "," : "", i + 1,
                               (unsigned long long)st.table[i].first, st.table[i].second);
                printf("]\n");
                return EXIT_OK;
        }
        printf("section  available                bits\n");
        for (size_t i = 0; i < st.table.size(); i++) {
                bool last = i + 1 == st.table.size();
                std::string cond = last ? "<= " + bwq::format_bandwidth(i ? st.table[i - 1].first : 0)
                                        : "> " + bwq::format_bandwidth(st.table[i].first);
                printf("%7zu  %-24s %4u%s\n", i + 1, cond.c_str(), st.table[i].second, st.section == i + 1 ? "  <- now" : "");
        }
        return EXIT_OK;
}

int cmd_sample(sd_bus *bus)
{
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = nullptr;
        int r = sd_bus_call_method(bus, kDest, kPath, kManager, "Sample", &e, &reply, "");
        if (r < 0) {
                int x = error_exit("Sample", &e, r);
                sd_bus_error_free(&e);
                return x;
        }
        uint8_t bits;
        uint64_t avail, used, ts;
        const char *src;
        r = sd_bus_message_read(reply, "yttts", &bits, &avail, &used, &ts, &src);
        if (r >= 0) {
                if (json)
                        printf("{\"bits\":%u,\"available_bps\":%llu,\"used_bps\":%llu,\"timestamp_usec\":%llu,\"source\":%s}\n", bits,
                               (unsigned long long)avail, (unsigned long long)used, (unsigned long long)ts, json_str(src).c_str());
                else
                        printf("%u bits: %s available, %s used by others (%s, t=%llu us)\n", bits,
                               bwq::format_bandwidth(avail).c_str(), bwq::format_bandwidth(used).c_str(), src,
                               (unsigned long long)ts);
        }
        sd_bus_message_unref(reply);
        return r < 0 ? EXIT_FAIL : EXIT_OK;
}

int cmd_simple(sd_bus *bus, const char *method)
{
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = nullptr;
        int r = sd_bus_call_method(bus, kDest, kPath, kManager, method, &e, &reply, "");
        if (r < 0) {
                int x = error_exit(method, &e, r);
                sd_bus_error_free(&e);
                return x;
        }
        if (strcmp(method, "Explain") == 0) {
                const char *text;
                if (sd_bus_message_read(reply, "s", &text) >= 0) {
                        if (json)
                                printf("{\"text\":%s}\n", json_str(text).c_str());
                        else
                                fputs(text, stdout);
                }
        }
        sd_bus_message_unref(reply);
        return EXIT_OK;
}

int cmd_set_table(sd_bus *bus, const std::string &text)
{
        std::vector<bwq::TableRow> rows;
        std::string why;
        if (bwq::parse_table(text, &rows, &why) < 0) {
                fprintf(stderr, "bwqctl: set-table: %s\n", why.c_str());
                return EXIT_USAGE;
        }
        Status st;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = get_status(bus, &st, &e);
        sd_bus_message *m = nullptr;
        if (r >= 0)
                r = sd_bus_message_new_method_call(bus, &m, kDest, kPath, kManager, "SetTable");
        if (r >= 0)
                r = sd_bus_message_open_container(m, 'a', "(ty)");
        for (size_t i = 0; r >= 0 && i < rows.size(); i++)
                r = sd_bus_message_append(m, "(ty)", rows[i].threshold.resolve(st.max), rows[i].bits);
        if (r >= 0)
                r = sd_bus_message_close_container(m);
        if (r >= 0)
                r = sd_bus_call(bus, m, 0, &e, nullptr);
        sd_bus_message_unref(m);
        if (r < 0) {
                int x = error_exit("SetTable", &e, r);
                sd_bus_error_free(&e);
                return x;
        }
        return EXIT_OK;
}

std::string now_text()
{
        timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        localtime_r(&ts.tv_sec, &tm);
        char b[32];
        strftime(b, sizeof b, "%H:%M:%S", &tm);
        char out[48];
        snprintf(out, sizeof out, "%s.%03ld", b, ts.tv_nsec / 1000000);
        return out;
}

int on_change(sd_bus_message *, void *userdata, sd_bus_error *)
{
        *static_cast<bool *>(userdata) = true;
        return 0;
}

int cmd_monitor(sd_bus *bus)
{
        bool changed = false;
        std::string match = std::string("type='signal',sender='") + kDest + "'";
        int r = sd_bus_add_match(bus, nullptr, match.c_str(), on_change, &changed);
        if (r < 0) {
                fprintf(stderr, "bwqctl: cannot watch bwqd's signals: %s\n", strerror(-r));
                return EXIT_FAIL;
        }
        std::string last;
        for (;;) {
                Status st;
                sd_bus_error e = SD_BUS_ERROR_NULL;
                r = get_status(bus, &st, &e);
                if (r < 0) {
                        int x = error_exit("monitor", &e, r);
                        sd_bus_error_free(&e);
                        return x;
                }
                char line[512];
                snprintf(line, sizeof line, "bits %2u  section %u  available %-12s used %-12s %s%s  clients: %s", st.bits,
                         st.section, bwq::format_bandwidth(st.available).c_str(), bwq::format_bandwidth(st.used).c_str(),
                         st.source.c_str(), st.stale ? " STALE" : "", clients_line(st).c_str());
                if (line != last) {
                        if (json)
                                print_status(st);
                        else
                                printf("%s  %s\n", now_text().c_str(), line);
                        fflush(stdout);
                        last = line;
                }
                changed = false;
                while (!changed) {
                        r = sd_bus_process(bus, nullptr);
                        if (r < 0) {
                                fprintf(stderr, "bwqctl: monitor: %s\n", strerror(-r));
                                return EXIT_FAIL;
                        }
                        if (r == 0 && !changed && (r = sd_bus_wait(bus, UINT64_MAX)) < 0) {
                                fprintf(stderr, "bwqctl: monitor: %s\n", strerror(-r));
                                return EXIT_FAIL;
                        }
                }
        }
}

// Streams with `threads` threads for `seconds` and returns the total bytes/s
// read and written (memcpy moves each byte twice).
double measure_stream(unsigned threads, double seconds)
{
        bwq::Streamer st({threads, 128u << 20, 100});
        st.wait_started();
        const uint64_t m0 = st.moved(), t0 = bwq::monotonic_ns();
        std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
        const uint64_t m1 = st.moved(), t1 = bwq::monotonic_ns();
        st.stop();
        return double(m1 - m0) * 1e9 / double(t1 - t0);
}

int cmd_calibrate(const std::string &bus_spec, unsigned threads, double seconds, const std::string &state_dir)
{
        if (!threads)
                threads = std::max(1u, std::thread::hardware_concurrency());
        double bps = measure_stream(threads, seconds);
        std::string path = state_dir + "/max-bandwidth";
        if (mkdir(state_dir.c_str(), 0755) < 0 && errno != EEXIST) {
                fprintf(stderr, "bwqctl: calibrate: cannot create %s: %s\n", state_dir.c_str(), strerror(errno));
                return EXIT_FAIL;
        }
        std::string tmp = path + ".tmp";
        {
                std::ofstream f(tmp);
                f << uint64_t(bps) << "\n";
                if (!f) {
                        fprintf(stderr, "bwqctl: calibrate: cannot write %s\n", tmp.c_str());
                        return EXIT_FAIL;
                }
        }
        if (rename(tmp.c_str(), path.c_str()) < 0) {
                fprintf(stderr, "bwqctl: calibrate: cannot write %s: %s\n", path.c_str(), strerror(errno));
                return EXIT_FAIL;
        }
        if (json)
                printf("{\"max_bps\":%llu,\"threads\":%u,\"seconds\":%g,\"path\":%s}\n", (unsigned long long)bps, threads, seconds,
                       json_str(path).c_str());
        else
                printf("maximum bandwidth: %s (%u streaming threads, %g s), stored in %s\n",
                       bwq::format_bandwidth(uint64_t(bps)).c_str(), threads, seconds, path.c_str());
        // bwqd takes it on its next reload when [Bandwidth] Max= is not set.
        sd_bus *bus = nullptr;
        if (connect(bus_spec, &bus) == 0) {
                sd_bus_error e = SD_BUS_ERROR_NULL;
                if (sd_bus_call_method(bus, kDest, kPath, kManager, "Reload", &e, nullptr, "") < 0)
                        fprintf(stderr, "bwqctl: calibrate: bwqd was not reloaded (%s); it reads %s when it next starts or reloads\n",
                                e.message ? e.message : "unreachable", path.c_str());
                sd_bus_error_free(&e);
                sd_bus_flush_close_unref(bus);
        }
        return EXIT_OK;
}

} // namespace

int main(int argc, char **argv)
{
        enum { OPT_BUS = 256, OPT_THREADS, OPT_SECONDS, OPT_STATE };
        static const option longopts[] = {
                {"bus", required_argument, nullptr, OPT_BUS},         {"json", no_argument, nullptr, 'j'},
                {"threads", required_argument, nullptr, OPT_THREADS}, {"seconds", required_argument, nullptr, OPT_SECONDS},
                {"state-dir", required_argument, nullptr, OPT_STATE}, {"help", no_argument, nullptr, 'h'},
                {nullptr, 0, nullptr, 0},
        };
        std::string bus_spec = getenv("BWQ_BUS") && *getenv("BWQ_BUS") ? getenv("BWQ_BUS") : "system";
        unsigned threads = 0;
        double seconds = 2;
        std::string state_dir = "/var/lib/bwq";
        int c;
        while ((c = getopt_long(argc, argv, "jh", longopts, nullptr)) != -1) {
                switch (c) {
                case OPT_BUS: bus_spec = optarg; break;
                case 'j': json = true; break;
                case OPT_THREADS: {
                        char *e;
                        unsigned long n = strtoul(optarg, &e, 10);
                        if (*e || n < 1 || n > 1024) {
                                fprintf(stderr, "bwqctl: --threads: '%s' is not 1 to 1024\n", optarg);
                                return EXIT_USAGE;
                        }
                        threads = unsigned(n);
                        break;
                }
                case OPT_SECONDS: {
                        char *e;
                        double s = strtod(optarg, &e);
                        if (*e || !(s >= 0.1 && s <= 600)) {
                                fprintf(stderr, "bwqctl: --seconds: '%s' is not 0.1 to 600\n", optarg);
                                return EXIT_USAGE;
                        }
                        seconds = s;
                        break;
                }
                case OPT_STATE: state_dir = optarg; break;
                case 'h': usage(stdout); return EXIT_OK;
                default: usage(stderr); return EXIT_USAGE;
                }
        }
        if (optind >= argc) {
                usage(stderr);
                return EXIT_USAGE;
        }
        std::string cmd = argv[optind];
        std::vector<std::string> args(argv + optind + 1, argv + argc);
        if (cmd == "calibrate" && args.empty())
                return cmd_calibrate(bus_spec, threads, seconds, state_dir);
        static const std::map<std::string, size_t> nargs = {{"status", 0}, {"monitor", 0}, {"explain", 0}, {"table", 0},
                                                            {"set-table", 1}, {"reload", 0}, {"sample", 0}};
        auto it = nargs.find(cmd);
        if (it == nargs.end()) {
                fprintf(stderr, "bwqctl: unknown command '%s'\n", cmd.c_str());
                return EXIT_USAGE;
        }
        if (args.size() != it->second) {
                fprintf(stderr, "bwqctl: %s takes %zu argument(s)\n", cmd.c_str(), it->second);
                return EXIT_USAGE;
        }
        sd_bus *bus;
        if (connect(bus_spec, &bus) < 0)
                return EXIT_NOBWQD;
        int r;
        if (cmd == "status") r = cmd_status(bus);
        else if (cmd == "monitor") r = cmd_monitor(bus);
        else if (cmd == "explain") r = cmd_simple(bus, "Explain");
        else if (cmd == "table") r = cmd_table(bus);
        else if (cmd == "set-table") r = cmd_set_table(bus, args[0]);
        else if (cmd == "reload") r = cmd_simple(bus, "Reload");
        else r = cmd_sample(bus);
        sd_bus_flush_close_unref(bus);
        return r;
}

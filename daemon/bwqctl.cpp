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

#include "bwqctl.h"

using namespace bwqctl;

bool bwqctl::json = false;

namespace {

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
        bwq::BusPtr owned = connect(bus_spec);
        if (!owned)
                return EXIT_NOBWQD;
        sd_bus *bus = owned.get();
        int r;
        if (cmd == "status") r = cmd_status(bus);
        else if (cmd == "monitor") r = cmd_monitor(bus);
        else if (cmd == "explain") r = cmd_simple(bus, "Explain");
        else if (cmd == "table") r = cmd_table(bus);
        else if (cmd == "set-table") r = cmd_set_table(bus, args[0]);
        else if (cmd == "reload") r = cmd_simple(bus, "Reload");
        else r = cmd_sample(bus);
        return r;
}

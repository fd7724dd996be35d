// bwqd: measures memory bandwidth and publishes the activation bit depth.
// See bwqd(8).
#include <getopt.h>

#include <cstdio>
#include <cstring>
#include <string>

#include "common/text.h"
#include "log.h"
#include "service.h"

static const char kIntrospection[] =
#include "org_bwq1_xml.inc"
        ;

static void usage(FILE *f)
{
        fprintf(f,
                "Usage: bwqd [OPTIONS]\n"
                "Measure memory bandwidth and publish the activation bit depth for NPU clients\n"
                "on D-Bus (org.bwq1) and in a shared decision page.\n\n"
                "  -c, --config=PATH         configuration file (default /etc/bwq/bwqd.conf,\n"
                "                            then PATH.d/*.conf)\n"
                "      --bus=BUS             system (default), session, or a D-Bus address\n"
                "      --source=SOURCE       auto, resctrl, perf, probe or replay ([Sampling] Source=)\n"
                "      --resctrl-root=PATH   resctrl mount ([Resctrl] Path=)\n"
                "      --sysfs-root=PATH     sysfs root for PMU discovery ([Perf] SysfsRoot=)\n"
                "      --replay=PATH         replay trace ([Replay] Path=)\n"
                "      --ebpf-test-event=E   tests only: task-clock or page-faults stands in for\n"
                "                            the ebpf source's memory-traffic counter\n"
                "      --check-config        check the configuration and exit\n"
                "      --bus-introspect      print the D-Bus interface (org.bwq1.xml) and exit\n"
                "  -h, --help                this text\n\n"
                "Exit status: 0 stopped cleanly, 1 failure, 2 bad usage, 78 bad configuration.\n");
}

int main(int argc, char **argv)
{
        enum { OPT_BUS = 256, OPT_SOURCE, OPT_RESCTRL, OPT_SYSFS, OPT_REPLAY, OPT_CHECK, OPT_INTROSPECT, OPT_EBPF_TEST };
        static const option longopts[] = {
                {"config", required_argument, nullptr, 'c'},     {"bus", required_argument, nullptr, OPT_BUS},
                {"source", required_argument, nullptr, OPT_SOURCE}, {"resctrl-root", required_argument, nullptr, OPT_RESCTRL},
                {"sysfs-root", required_argument, nullptr, OPT_SYSFS}, {"replay", required_argument, nullptr, OPT_REPLAY},
                {"check-config", no_argument, nullptr, OPT_CHECK}, {"bus-introspect", no_argument, nullptr, OPT_INTROSPECT},
                {"ebpf-test-event", required_argument, nullptr, OPT_EBPF_TEST},
                {"help", no_argument, nullptr, 'h'},              {nullptr, 0, nullptr, 0},
        };
        std::string config = "/etc/bwq/bwqd.conf", bus = "system";
        bwq::Overrides ov;
        bool check = false;
        int c;
        while ((c = getopt_long(argc, argv, "c:h", longopts, nullptr)) != -1) {
                switch (c) {
                case 'c': config = optarg; break;
                case OPT_BUS:
                        if (!*optarg) {
                                fprintf(stderr, "bwqd: --bus: empty\n");
                                return 2;
                        }
                        bus = optarg;
                        break;
                case OPT_SOURCE: {
                        bwq::SourceKind k;
                        std::string why;
                        if (bwq::source_kind_parse(optarg, &k, &why) < 0) {
                                fprintf(stderr, "bwqd: --source: %s\n", why.c_str());
                                return 2;
                        }
                        ov.source = k;
                        break;
                }
                case OPT_RESCTRL: ov.resctrl_root = optarg; break;
                case OPT_SYSFS: ov.sysfs_root = optarg; break;
                case OPT_REPLAY: ov.replay_path = optarg; break;
                case OPT_CHECK: check = true; break;
                case OPT_EBPF_TEST:
                        // Tests and benchmarks on machines without hardware counters.
                        if (strcmp(optarg, "task-clock") == 0)
                                ov.ebpf_test_event = bwq::EbpfEvent::TestTaskClock;
                        else if (strcmp(optarg, "page-faults") == 0)
                                ov.ebpf_test_event = bwq::EbpfEvent::TestPageFaults;
                        else {
                                fprintf(stderr, "bwqd: --ebpf-test-event: '%s' is not task-clock or page-faults\n", optarg);
                                return 2;
                        }
                        break;
                case OPT_INTROSPECT: fputs(kIntrospection, stdout); return 0;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "bwqd: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        if (check) {
                // The same loading and checks as a start (and a reload).
                bwq::Service svc(config, ov, bus);
                std::string why;
                if (svc.check_config(&why) < 0) {
                        fprintf(stderr, "bwqd: %s\n", why.c_str());
                        return 78;
                }
                printf("%s: configuration is valid\n", bwq::escape_text(config).c_str());
                return 0;
        }
        bwq::Service svc(config, ov, bus);
        int r = svc.setup();
        if (r == -EINVAL)
                return 78;
        if (r < 0)
                return 1;
        r = svc.run();
        return r < 0 ? 1 : 0;
}

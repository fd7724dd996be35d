// bwq-stream: a memory antagonist that reports its own bandwidth.
//   bwq-stream [--threads N] [--seconds S] [--mbytes M] [--report-ms R] [--duty PCT]
// Each thread memcpy's between two M MiB buffers; every byte is counted
// once read and once written.  --duty streams PCT% of every 10 ms.  Prints "stream: X.XX GB/s" every R ms (0:
// only at the end) and a final line with the mean.
#include <getopt.h>
#include <time.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "common/clock.h"
#include "common/stream.h"

static double now_s() { return bwq::monotonic_s(); }

int main(int argc, char **argv)
{
        unsigned threads = 1, mbytes = 128, report_ms = 0, duty = 100;
        double seconds = 5;
        static const option o[] = {{"threads", required_argument, nullptr, 't'}, {"seconds", required_argument, nullptr, 's'},
                                   {"mbytes", required_argument, nullptr, 'm'},  {"report-ms", required_argument, nullptr, 'r'},
                                   {"duty", required_argument, nullptr, 'u'},    {"help", no_argument, nullptr, 'h'},          {nullptr, 0, nullptr, 0}};
        int c;
        while ((c = getopt_long(argc, argv, "t:s:m:r:u:h", o, nullptr)) != -1) {
                switch (c) {
                case 't': threads = unsigned(atoi(optarg)); break;
                case 's': seconds = atof(optarg); break;
                case 'm': mbytes = unsigned(atoi(optarg)); break;
                case 'r': report_ms = unsigned(atoi(optarg)); break;
                case 'u': duty = unsigned(atoi(optarg)); break;
                default:
                        fprintf(c == 'h' ? stdout : stderr,
                                "Usage: bwq-stream [--threads N] [--seconds S] [--mbytes M] [--report-ms R] [--duty PCT]\n");
                        return c == 'h' ? 0 : 2;
                }
        }
        if (threads < 1 || threads > 256 || mbytes < 16 || !(seconds > 0) || duty < 1 || duty > 100) {
                fprintf(stderr, "bwq-stream: bad arguments\n");
                return 2;
        }
        bwq::Streamer st({threads, size_t(mbytes) << 20, duty});
        double t0 = now_s(), last = t0;
        uint64_t last_moved = 0;
        while (now_s() - t0 < seconds) {
                struct timespec d = {0, long(report_ms ? report_ms : 100) * 1000000L};
                nanosleep(&d, nullptr);
                if (report_ms) {
                        double t = now_s();
                        uint64_t m = st.moved();
                        printf("stream: %.2f GB/s\n", (m - last_moved) / (t - last) / 1e9);
                        fflush(stdout);
                        last = t;
                        last_moved = m;
                }
        }
        st.stop();
        printf("stream: mean %.2f GB/s over %.1f s on %u thread(s)\n", st.moved() / (now_s() - t0) / 1e9, now_s() - t0, threads);
        return 0;
}

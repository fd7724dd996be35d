// bwq-stream: a memory antagonist that reports its own bandwidth.
//   bwq-stream [--threads N] [--seconds S] [--mbytes M] [--report-ms R] [--duty PCT]
// Each thread memcpy's between two M MiB buffers; every byte is counted
// once read and once written.  --duty streams PCT% of every 10 ms.  Prints "stream: X.XX GB/s" every R ms (0:
// only at the end) and a final line with the mean.
#include <getopt.h>
#include <time.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

static double now_s()
{
        timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return ts.tv_sec + ts.tv_nsec * 1e-9;
}

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
        std::atomic<bool> stop{false};
        std::atomic<uint64_t> moved{0};
        std::vector<std::thread> ts;
        for (unsigned i = 0; i < threads; i++)
                ts.emplace_back([&] {
                        size_t n = size_t(mbytes) << 20;
                        std::vector<char> a(n, 1), b(n, 2);
                        size_t off = 0;
                        while (!stop.load(std::memory_order_relaxed)) {
                                // Stream for duty% of a 10 ms slot, then rest.
                                double slot = now_s(), busy = duty / 100.0 * 0.010;
                                while (now_s() - slot < busy && !stop.load(std::memory_order_relaxed)) {
                                        size_t len = n - off < (1u << 20) ? n - off : (1u << 20);
                                        std::memcpy(b.data() + off, a.data() + off, len);
                                        moved += 2 * len;
                                        off = (off + len) % n;
                                }
                                if (duty < 100) {
                                        double rest = 0.010 - (now_s() - slot);
                                        if (rest > 0) {
                                                timespec d = {0, long(rest * 1e9)};
                                                nanosleep(&d, nullptr);
                                        }
                                }
                        }
                });
        double t0 = now_s(), last = t0;
        uint64_t last_moved = 0;
        while (now_s() - t0 < seconds) {
                struct timespec d = {0, long(report_ms ? report_ms : 100) * 1000000L};
                nanosleep(&d, nullptr);
                if (report_ms) {
                        double t = now_s();
                        uint64_t m = moved.load();
                        printf("stream: %.2f GB/s\n", (m - last_moved) / (t - last) / 1e9);
                        fflush(stdout);
                        last = t;
                        last_moved = m;
                }
        }
        stop = true;
        for (auto &t : ts)
                t.join();
        printf("stream: mean %.2f GB/s over %.1f s on %u thread(s)\n", moved.load() / (now_s() - t0) / 1e9, now_s() - t0, threads);
        return 0;
}

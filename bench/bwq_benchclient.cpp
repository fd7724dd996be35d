// Measurements of bwqd for make bench (see bench/bench_bwqd.sh).
//   bwq_benchclient ADDRESS latency COUNTER_FILE INTERVAL_US N
//       bump a resctrl fixture counter and time until the decision page
//       changes and until PropertiesChanged(UsedBandwidth) arrives
//   bwq_benchclient ADDRESS pageread N
//       a decision page read against a GetDecision round trip
//   bwq_benchclient ADDRESS watch SECONDS [LIMIT_GBPS]
//       UsedBandwidth every 100 ms; prints the median (GB/s), and with a
//       limit also the 95th percentile and the fraction at or below it
//   bwq_benchclient - pingpong SECONDS
//       two processes pinned to CPU 0 pass a byte back and forth over pipes;
//       prints context switches per second
//   bwq_benchclient - timerloop HZ SECONDS
//       the peer of bwqd's sampling cost: a bare timerfd + epoll loop at HZ
//       that does nothing; prints its CPU time as % of a core
#include <fcntl.h>
#include <sched.h>
#include <sys/wait.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/timerfd.h>
#include <sys/mman.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>
#include <vector>

#include "common/clock.h"
#include "uapi/bwq_page.h"

namespace {

uint64_t now_ns() { return bwq::monotonic_ns(); }

double pct(std::vector<double> v, double p)
{
        std::sort(v.begin(), v.end());
        return v[std::min(v.size() - 1, size_t(p * double(v.size())))];
}

int open_bus(const char *addr, sd_bus **bus)
{
        int r = sd_bus_new(bus);
        if (r >= 0)
                r = sd_bus_set_address(*bus, addr);
        if (r >= 0)
                r = sd_bus_set_bus_client(*bus, 1);
        if (r >= 0)
                r = sd_bus_start(*bus);
        if (r < 0)
                fprintf(stderr, "benchclient: bus: %s\n", strerror(-r));
        return r;
}

const bwq_page *register_page(sd_bus *bus)
{
        sd_bus_message *reply = nullptr;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        if (sd_bus_call_method(bus, "org.bwq1", "/org/bwq1", "org.bwq1.Manager", "RegisterClient", &e, &reply, "syya{sv}",
                               "bench", 4, 16, 0) < 0) {
                fprintf(stderr, "benchclient: RegisterClient: %s\n", e.message);
                exit(1);
        }
        const char *path;
        int fd;
        sd_bus_message_read(reply, "oh", &path, &fd);
        void *m = mmap(nullptr, BWQ_PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
        sd_bus_message_unref(reply);
        if (m == MAP_FAILED) {
                perror("benchclient: mmap");
                exit(1);
        }
        return static_cast<const bwq_page *>(m);
}

bool got_signal = false;
int on_props(sd_bus_message *m, void *, sd_bus_error *)
{
        const char *iface;
        if (sd_bus_message_read(m, "s", &iface) >= 0 && strcmp(iface, "org.bwq1.Manager") == 0)
                got_signal = true;
        return 0;
}

int latency(const char *addr, const char *counter, unsigned interval_us, int n)
{
        sd_bus *bus;
        if (open_bus(addr, &bus) < 0)
                return 1;
        const bwq_page *page = register_page(bus);
        sd_bus_add_match(bus, nullptr,
                         "type='signal',sender='org.bwq1',path='/org/bwq1',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged'",
                         on_props, nullptr);
        uint64_t value = 1000000000ull;
        std::vector<double> page_us, sig_us;
        for (int i = 0; i < n; i++) {
                // Quiet: wait past the 100 ms signal coalescing, at a random
                // phase of the sampling interval.
                usleep(200000 + unsigned(rand()) % interval_us);
                while (sd_bus_process(bus, nullptr) > 0) {
                }
                got_signal = false;
                uint32_t seq0 = __atomic_load_n(&page->seq, __ATOMIC_ACQUIRE);
                uint64_t used0 = __atomic_load_n(&page->used_bps, __ATOMIC_RELAXED);
                value += 4000000000ull;  // a burst of traffic in one interval
                uint64_t t0 = now_ns();
                {
                        std::ofstream f(counter);
                        f << value << "\n";
                }
                uint64_t tp = 0, ts = 0;
                while ((!tp || !ts) && now_ns() - t0 < 2000000000ull) {
                        if (!tp && __atomic_load_n(&page->seq, __ATOMIC_ACQUIRE) != seq0) {
                                bwq_decision d;
                                if (bwq_page_read(page, &d) == 0 && d.used_bps != used0)
                                        tp = now_ns();
                        }
                        if (!ts) {
                                while (sd_bus_process(bus, nullptr) > 0) {
                                }
                                if (got_signal)
                                        ts = now_ns();
                        }
                        if (!ts)
                                sd_bus_wait(bus, 20);
                }
                if (tp && ts) {
                        page_us.push_back((tp - t0) / 1e3);
                        sig_us.push_back((ts - t0) / 1e3);
                }
        }
        if (page_us.empty()) {
                fprintf(stderr, "benchclient: no change observed\n");
                return 1;
        }
        printf("counter change -> page updated:       median %8.0f us  p90 %8.0f us  (%.2f of the %u us interval)\n",
               pct(page_us, 0.5), pct(page_us, 0.9), pct(page_us, 0.5) / interval_us, interval_us);
        printf("counter change -> PropertiesChanged:  median %8.0f us  p90 %8.0f us  (%.2f of the interval)\n", pct(sig_us, 0.5),
               pct(sig_us, 0.9), pct(sig_us, 0.5) / interval_us);
        std::vector<double> extra;
        for (size_t i = 0; i < page_us.size(); i++)
                extra.push_back(sig_us[i] - page_us[i]);
        printf("page -> PropertiesChanged (D-Bus cost): median %6.0f us over %zu changes\n", pct(extra, 0.5), page_us.size());
        return 0;
}

int pageread(const char *addr, int n)
{
        sd_bus *bus;
        if (open_bus(addr, &bus) < 0)
                return 1;
        const bwq_page *page = register_page(bus);
        const int reads = 1000000;
        std::vector<double> page_ns;
        for (int rep = 0; rep < 9; rep++) {
                uint64_t t0 = now_ns(), sink = 0;
                for (int i = 0; i < reads; i++) {
                        bwq_decision d{};
                        bwq_page_read(page, &d);
                        sink += d.act_bits;
                }
                page_ns.push_back(double(now_ns() - t0) / reads);
                // The reads must not be optimised away.
                __asm__ volatile("" : : "r"(sink) : "memory");
        }
        std::vector<double> call_ns;
        for (int i = 0; i < n; i++) {
                uint64_t t0 = now_ns();
                sd_bus_message *reply = nullptr;
                sd_bus_error e = SD_BUS_ERROR_NULL;
                if (sd_bus_call_method(bus, "org.bwq1", "/org/bwq1", "org.bwq1.Manager", "GetDecision", &e, &reply, "") < 0)
                        return 1;
                sd_bus_message_unref(reply);
                call_ns.push_back(double(now_ns() - t0));
        }
        double p = pct(page_ns, 0.5), c = pct(call_ns, 0.5);
        printf("decision page read:       median %10.1f ns (9 runs of %d reads)\n", p, reads);
        printf("GetDecision round trip:   median %10.1f ns (%d calls)\n", c, n);
        printf("page read / round trip:   %.6f (the page is %.0fx cheaper)\n", p / c, c / p);
        return 0;
}

int watch(const char *addr, double seconds, double limit_gbps)
{
        sd_bus *bus;
        if (open_bus(addr, &bus) < 0)
                return 1;
        std::vector<double> v;
        uint64_t t0 = now_ns();
        while ((now_ns() - t0) / 1e9 < seconds) {
                uint64_t used;
                sd_bus_error e = SD_BUS_ERROR_NULL;
                if (sd_bus_get_property_trivial(bus, "org.bwq1", "/org/bwq1", "org.bwq1.Manager", "UsedBandwidth", &e, 't', &used) >= 0)
                        v.push_back(double(used));
                usleep(100000);
        }
        // The median in GB/s; with a limit, also the 95th percentile and
        // the fraction of readings at or below the limit.
        if (limit_gbps < 0) {
                printf("%.3f\n", v.empty() ? 0.0 : pct(v, 0.5) / 1e9);
                return 0;
        }
        size_t below = 0;
        for (double x : v)
                below += x <= limit_gbps * 1e9;
        printf("%.3f %.3f %.3f\n", v.empty() ? 0.0 : pct(v, 0.5) / 1e9, v.empty() ? 0.0 : pct(v, 0.95) / 1e9,
               v.empty() ? 0.0 : double(below) / double(v.size()));
        return 0;
}

int timerloop(unsigned hz, double seconds)
{
        int tfd = timerfd_create(CLOCK_MONOTONIC, TFD_CLOEXEC);
        int ep = epoll_create1(EPOLL_CLOEXEC);
        epoll_event ev{};
        ev.events = EPOLLIN;
        epoll_ctl(ep, EPOLL_CTL_ADD, tfd, &ev);
        uint64_t period = 1000000000ull / hz, t0 = now_ns(), next = t0;
        rusage r0, r1;
        getrusage(RUSAGE_SELF, &r0);
        while (now_ns() - t0 < uint64_t(seconds * 1e9)) {
                next += period;
                itimerspec its{};
                its.it_value.tv_sec = time_t(next / 1000000000ull);
                its.it_value.tv_nsec = long(next % 1000000000ull);
                timerfd_settime(tfd, TFD_TIMER_ABSTIME, &its, nullptr);
                epoll_event out;
                epoll_wait(ep, &out, 1, -1);
                uint64_t x;
                (void)!read(tfd, &x, sizeof x);
        }
        getrusage(RUSAGE_SELF, &r1);
        double cpu = (r1.ru_utime.tv_sec - r0.ru_utime.tv_sec + r1.ru_stime.tv_sec - r0.ru_stime.tv_sec) +
                     (r1.ru_utime.tv_usec - r0.ru_utime.tv_usec + r1.ru_stime.tv_usec - r0.ru_stime.tv_usec) * 1e-6;
        printf("%.4f\n", cpu / ((now_ns() - t0) / 1e9) * 100);
        return 0;
}

int pingpong(double seconds)
{
        int a[2], b[2];
        if (pipe(a) < 0 || pipe(b) < 0)
                return 1;
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(0, &set);
        sched_setaffinity(0, sizeof set, &set);
        pid_t pid = fork();
        if (pid == 0) {
                char c;
                while (read(a[0], &c, 1) == 1 && c)
                        (void)!write(b[1], &c, 1);
                _exit(0);
        }
        char c = 1;
        uint64_t n = 0, t0 = now_ns();
        while (now_ns() - t0 < uint64_t(seconds * 1e9)) {
                (void)!write(a[1], &c, 1);
                (void)!read(b[0], &c, 1);
                n++;
        }
        c = 0;
        (void)!write(a[1], &c, 1);
        waitpid(pid, nullptr, 0);
        printf("%.0f\n", 2.0 * n / ((now_ns() - t0) / 1e9));
        return 0;
}

} // namespace

int main(int argc, char **argv)
{
        if (argc >= 6 && strcmp(argv[2], "latency") == 0)
                return latency(argv[1], argv[3], unsigned(atoi(argv[4])), atoi(argv[5]));
        if (argc >= 4 && strcmp(argv[2], "pageread") == 0)
                return pageread(argv[1], atoi(argv[3]));
        if (argc >= 4 && strcmp(argv[2], "watch") == 0)
                return watch(argv[1], atof(argv[3]), argc >= 5 ? atof(argv[4]) : -1.0);
        if (argc >= 4 && strcmp(argv[2], "pingpong") == 0)
                return pingpong(atof(argv[3]));
        if (argc >= 5 && strcmp(argv[2], "timerloop") == 0)
                return timerloop(unsigned(atoi(argv[3])), atof(argv[4]));
        fprintf(stderr, "usage: bwq_benchclient ADDRESS latency FILE INTERVAL_US N | pageread N | watch SECONDS\n");
        return 2;
}

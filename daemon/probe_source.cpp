// The probe source, for machines without counters: bwqd measures how fast
// it can itself move memory and infers what the others use from the drop.
//
// Two probes are calibrated at start: a streaming read burst (the achieved
// rate falls as others stream) and loaded latency (a pointer chase over a
// buffer larger than the LLC, on huge pages where the kernel gives them).
// With Method=auto each is measured idle and against a short antagonist
// that bwqd runs on another CPU; the probe whose change stands furthest
// above its own idle noise wins, and the antagonist's own rate calibrates
// the slope from probe change to bytes per second used by others.
#include <sched.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <random>
#include <thread>
#include <vector>

#include "common/stream.h"
#include "common/mapping.h"
#include "source.h"

namespace bwq {

namespace {

constexpr size_t kBurstBytes = 4u << 20;  // one stream sample: 4 MiB copied
constexpr unsigned kChaseLoads = 2000;    // one latency sample

double median(std::vector<double> v)
{
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
}

// Relative spread of idle samples: median absolute deviation / median.
double spread(const std::vector<double> &v)
{
        double m = median(v);
        std::vector<double> d;
        for (double x : v)
                d.push_back(std::fabs(x - m));
        return m > 0 ? std::max(median(d) / m, 1e-3) : 1;
}

class ProbeSource : public Source {
public:
        ProbeSource(const Config &c, Clock clock, uint64_t max_bps)
                : bytes_(c.probe.buffer_bytes), method_cfg_(c.probe.method), clock_(std::move(clock)), max_bps_(max_bps),
                  spacing_ms_(unsigned(std::clamp<uint64_t>(c.sampling.interval_usec / 1000, 1, 20))),
                  interval_usec_(c.sampling.interval_usec)
        {
        }
        const char *name() const override { return "probe"; }

        int start(std::string *why) override
        {
                mapping_ = Mapping::map(bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_HUGETLB, -1, 0);
                huge_ = bool(mapping_);
                if (!huge_) {
                        mapping_ = Mapping::map(bytes_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
                        if (!mapping_) {
                                int e = errno;
                                *why = "cannot map the " + std::to_string(bytes_ >> 20) + " MiB probe buffer: " + strerror(e);
                                return -e;
                        }
                        // Transparent huge pages where the kernel allows them.
                        (void)madvise(mapping_.get(), bytes_, MADV_HUGEPAGE);
                }
                buf_ = mapping_.as<uint8_t>();
                std::memset(buf_ + bytes_ / 2, 1, bytes_ / 2);  // fault the copy region in now
                build_chase();
                calibrate();
                last_ = clock_();
                return 0;
        }

        Reading read() override
        {
                double x = 0;
                const bool clean = best(method_, &x);
                Reading r = stamped(clock_, &last_);
                if (!clean) {
                        // Every try was preempted or migrated: what it timed was
                        // the scheduler, not memory.  The last estimate stands.
                        skipped_++;
                        r.note = "probe preempted on every try; the last estimate stands";
                        r.total_bytes = uint64_t(last_used_ * double(r.interval_ns) / 1e9);
                        r.valid = r.interval_ns > 0;
                        return r;
                }
                track_idle(x, r.t_ns);
                double change = method_ == ProbeMethod::Stream ? 1.0 - x / idle_ : x / idle_ - 1.0;
                change = std::max(0.0, change);
                double used = std::min(double(max_bps_), slope_ * change);
                last_used_ = used;
                r.total_bytes = uint64_t(used * double(r.interval_ns) / 1e9);
                r.valid = r.interval_ns > 0;
                return r;
        }

        // The calibration, and what sampling costs: the share of one CPU the
        // probe takes and the bandwidth it moves itself, per sample; and how
        // many samples the preemption filter threw away.
        std::string detail() const override
        {
                char buf[256];
                const double per_sample_ms = measured_ ? double(busy_ns_) / 1e6 / double(measured_) : 0;
                const double interval_ms = double(interval_usec_) / 1e3;
                const double self_bps = method_ == ProbeMethod::Stream ? 2.0 * 2.0 * double(kBurstBytes) / (interval_ms / 1e3)
                                                                       : 2.0 * kChaseLoads * 64.0 / (interval_ms / 1e3);
                snprintf(buf, sizeof buf,
                         "\nprobe cost: %.2f ms a sample (%.1f%% of one CPU at %.0f ms), %.0f MB/s of its own traffic; "
                         "idle baseline now %.3g; %llu of %llu samples preempted on every try",
                         per_sample_ms, interval_ms > 0 ? 100 * per_sample_ms / interval_ms : 0, interval_ms, self_bps / 1e6, idle_,
                         (unsigned long long)skipped_, (unsigned long long)measured_);
                return detail_ + buf;
        }

private:
        // A random cycle over the buffer, one pointer per cache line.
        void build_chase()
        {
                size_t lines = bytes_ / 2 / 64;
                std::vector<uint32_t> order(lines);
                for (size_t i = 0; i < lines; i++)
                        order[i] = uint32_t(i);
                std::mt19937 rng(12345);
                std::shuffle(order.begin() + 1, order.end(), rng);
                for (size_t i = 0; i < lines; i++) {
                        uint64_t next = uint64_t(order[(i + 1) % lines]) * 64;
                        std::memcpy(buf_ + uint64_t(order[i]) * 64, &next, sizeof next);
                }
        }

        // The idle baseline follows the best sample of each second: up by a
        // twentieth of the way each second (one lucky sample, or a few
        // seconds of a machine that runs faster under load, do not move it
        // much; a faster idle is followed within a minute), down by at most
        // kIdleDriftPerMin (a drift of clocks or temperature is followed in
        // minutes, a load of seconds or minutes is not taken for idle).
        void track_idle(double x, uint64_t now_ns)
        {
                const bool stream = method_ == ProbeMethod::Stream;
                sec_best_ = sec_best_ == 0 ? x : stream ? std::max(sec_best_, x) : std::min(sec_best_, x);
                if (sec_start_ns_ == 0)
                        sec_start_ns_ = now_ns;
                if (now_ns - sec_start_ns_ < 1000000000ull)
                        return;
                const double mins = double(now_ns - sec_start_ns_) / 60e9;
                const bool better = stream ? sec_best_ > idle_ : sec_best_ < idle_;
                if (better)
                        idle_ += 0.05 * (sec_best_ - idle_);
                else
                        idle_ = stream ? std::max(sec_best_, idle_ * (1 - kIdleDriftPerMin * mins))
                                       : std::min(sec_best_, idle_ * (1 + kIdleDriftPerMin * mins));
                sec_best_ = 0;
                sec_start_ns_ = now_ns;
        }

        // Stream: bytes/s of one read burst.  Latency: ns per dependent load.
        // Timed on the thread's own CPU clock, and discarded (false) when the
        // thread was switched out involuntarily, moved to another CPU, or ran
        // for less than 95% of the wall time: a probe that shares its CPU
        // with spinning compute threads must not read preemption as
        // contention.
        bool measure(ProbeMethod m, double *ret)
        {
                rusage ru0, ru1;
                getrusage(RUSAGE_THREAD, &ru0);
                const int cpu0 = sched_getcpu();
                const uint64_t w0 = monotonic_ns(), c0 = thread_cpu_ns();
                const double v = measure_raw(m);
                const uint64_t w1 = monotonic_ns(), c1 = thread_cpu_ns();
                getrusage(RUSAGE_THREAD, &ru1);
                const bool clean = ru1.ru_nivcsw == ru0.ru_nivcsw && sched_getcpu() == cpu0 &&
                                   double(c1 - c0) >= 0.95 * double(w1 - w0);
                busy_ns_ += w1 - w0;
                if (!clean)
                        return false;
                *ret = v;
                return true;
        }

        static uint64_t thread_cpu_ns()
        {
                timespec ts;
                clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
                return uint64_t(ts.tv_sec) * 1000000000ull + uint64_t(ts.tv_nsec);
        }

        double measure_raw(ProbeMethod m)
        {
                if (m == ProbeMethod::Stream) {
                        // A copy between two far-apart parts of the buffer: it
                        // both reads and writes, and misses every cache level.
                        // The first half of the buffer holds the pointer chase;
                        // the copy goes between the third and fourth quarters.
                        const size_t q = bytes_ / 4;
                        uint8_t *src = buf_ + 2 * q + offset_, *dst = buf_ + 3 * q + offset_;
                        offset_ = (offset_ + kBurstBytes) % (q - kBurstBytes + 1) / 4096 * 4096;
                        uint64_t t0 = monotonic_ns();
                        std::memmove(dst, src, kBurstBytes);
                        uint64_t dt = std::max<uint64_t>(monotonic_ns() - t0, 1);
                        return 2.0 * double(kBurstBytes) * 1e9 / double(dt);
                }
                uint64_t t0 = monotonic_ns();
                for (unsigned i = 0; i < kChaseLoads; i++)
                        std::memcpy(&chase_, buf_ + chase_, sizeof chase_);
                return double(monotonic_ns() - t0) / kChaseLoads;
        }

        // One sample: the better of two clean back-to-back measurements (so
        // a CPU waking from idle does not read as a busy memory system), in
        // at most kTries; false when fewer than one was clean.
        bool best(ProbeMethod m, double *ret)
        {
                double v[2];
                int n = 0;
                for (int t = 0; t < kTries && n < 2; t++)
                        if (measure(m, &v[n]))
                                n++;
                measured_++;
                if (n == 0)
                        return false;
                *ret = n == 1 ? v[0] : m == ProbeMethod::Stream ? std::max(v[0], v[1]) : std::min(v[0], v[1]);
                return true;
        }

        // Spaced like samples in operation, so caches and clocks look the same.
        std::vector<double> samples(ProbeMethod m, int n)
        {
                std::vector<double> v;
                for (int i = 0; i < n; i++) {
                        std::this_thread::sleep_for(std::chrono::milliseconds(spacing_ms_));
                        double x;
                        if (best(m, &x))
                                v.push_back(x);
                }
                if (v.empty())
                        v.push_back(m == ProbeMethod::Stream ? 1.0 : 1e9);  // nothing clean: a value no sample beats
                return v;
        }

        void calibrate()
        {
                const int n = 11;
                double idle_stream = median(samples(ProbeMethod::Stream, n));
                double noise_stream = spread(samples(ProbeMethod::Stream, n));
                double idle_lat = median(samples(ProbeMethod::Latency, n));
                double noise_lat = spread(samples(ProbeMethod::Latency, n));
                double drop_stream = 0, rise_lat = 0, antagonist_bps = 0;
                bool loaded = std::thread::hardware_concurrency() > 1;
                if (loaded) {
                        // A short antagonist on another CPU, reporting its own rate.
                        Streamer ant({1, 64u << 20, 100});
                        // Wait until it streams, then measure long enough for its rate.
                        ant.wait_started();
                        uint64_t m0 = ant.moved();
                        uint64_t ta0 = monotonic_ns();
                        double loaded_stream = median(samples(ProbeMethod::Stream, 2 * n));
                        double loaded_lat = median(samples(ProbeMethod::Latency, 2 * n));
                        std::this_thread::sleep_for(std::chrono::milliseconds(20));
                        uint64_t ta1 = monotonic_ns();
                        antagonist_bps = double(ant.moved() - m0) * 1e9 / double(ta1 - ta0);
                        ant.stop();
                        drop_stream = std::max(0.0, 1.0 - loaded_stream / idle_stream);
                        rise_lat = std::max(0.0, loaded_lat / idle_lat - 1.0);
                }
                double snr_stream = drop_stream / noise_stream, snr_lat = rise_lat / noise_lat;
                char buf[512];
                if (method_cfg_ == ProbeMethod::Auto)
                        method_ = !loaded || snr_stream >= snr_lat ? ProbeMethod::Stream : ProbeMethod::Latency;
                else
                        method_ = method_cfg_;
                bool stream = method_ == ProbeMethod::Stream;
                idle_ = stream ? idle_stream : idle_lat;
                double change = stream ? drop_stream : rise_lat;
                // Slope from probe change to bytes/s used by others; without a
                // measured antagonist, the whole change stands for the maximum.
                slope_ = loaded && change > 0.01 ? antagonist_bps / change : double(max_bps_);
                snprintf(buf, sizeof buf,
                         "probe: %s (%s); stream burst %.2f GB/s idle, -%.0f%% under a %.2f GB/s antagonist, noise %.1f%% "
                         "(signal/noise %.1f); pointer chase %.0f ns idle, +%.0f%%, noise %.1f%% (signal/noise %.1f); "
                         "%s pages; slope %.2f GB/s per unit change",
                         stream ? "stream" : "latency",
                         method_cfg_ != ProbeMethod::Auto ? "configured" : loaded ? "larger signal/noise" : "one CPU: no antagonist",
                         idle_stream / 1e9, drop_stream * 100, antagonist_bps / 1e9, noise_stream * 100, snr_stream, idle_lat,
                         rise_lat * 100, noise_lat * 100, snr_lat, huge_ ? "2 MiB huge" : "transparent huge (if granted)",
                         slope_ / 1e9);
                detail_ = buf;
        }

        uint64_t bytes_;
        ProbeMethod method_cfg_, method_ = ProbeMethod::Stream;
        Clock clock_;
        uint64_t max_bps_;
        unsigned spacing_ms_;
        uint64_t interval_usec_;
        Mapping mapping_;
        uint8_t *buf_ = nullptr;  // mapping_'s
        bool huge_ = false;
        size_t offset_ = 0;
        uint64_t chase_ = 0;
        double idle_ = 1, slope_ = 0;
        uint64_t last_ = 0;
        std::string detail_;
        // Preemption filter and drift tracking.
        static constexpr int kTries = 4;
        static constexpr double kIdleDriftPerMin = 0.02;
        double sec_best_ = 0, last_used_ = 0;
        uint64_t sec_start_ns_ = 0, busy_ns_ = 0, measured_ = 0, skipped_ = 0;
};

} // namespace

std::unique_ptr<Source> make_probe_source(const Config &c, Clock clock, uint64_t max_bps)
{
        return std::make_unique<ProbeSource>(c, std::move(clock), max_bps);
}

} // namespace bwq

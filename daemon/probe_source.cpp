// The probe source, for machines without counters: bwqd measures how fast
// it can itself move memory and infers what the others use from the drop.
//
// Two probes are calibrated at start: a streaming read burst (the achieved
// rate falls as others stream) and loaded latency (a pointer chase over a
// buffer larger than the LLC, on huge pages where the kernel gives them).
// With Method=auto each is measured idle and against a short antagonist
// that bwqd runs on another CPU; the probe whose change stands furthest
// above its own idle noise wins, and the antagonist's own rate calibrates
// the slope from probe change to bytes per second used by others.  What a
// stream of readings says is probe_estimator.h's arithmetic.
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
#include "probe_estimator.h"
#include "source.h"

namespace bwq {

namespace {

constexpr size_t kBurstBytes = 4u << 20;  // one stream sample: 4 MiB copied
constexpr unsigned kChaseLoads = 2000;    // one latency sample

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
                double used = est_->last();
                if (!clean) {
                        // Every try was preempted or migrated: what it timed was
                        // the scheduler, not memory.  The last estimate stands.
                        skipped_++;
                        r.note = "probe preempted on every try; the last estimate stands";
                } else {
                        used = est_->update(r.t_ns, x);
                }
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
                         per_sample_ms, interval_ms > 0 ? 100 * per_sample_ms / interval_ms : 0, interval_ms, self_bps / 1e6,
                         est_->baseline(), (unsigned long long)skipped_, (unsigned long long)measured_);
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
                const int n = kCalibrationSamples;
                ProbeCalibration cs, cl;
                cs.higher_is_better = true;
                cl.higher_is_better = false;
                cs.max_bps = cl.max_bps = max_bps_;
                cs.interval_ns = cl.interval_ns = interval_usec_ * 1000;
                cs.idle = samples(ProbeMethod::Stream, n);
                cl.idle = samples(ProbeMethod::Latency, n);
                cpu_set_t allowed;
                const bool loaded = sched_getaffinity(0, sizeof allowed, &allowed) == 0 && CPU_COUNT(&allowed) > 1;
                if (loaded) {
                        // A short antagonist on another CPU, reporting its own
                        // rate; the probe stays on its CPU meanwhile.
                        const int cpu = sched_getcpu();
                        cpu_set_t one;
                        CPU_ZERO(&one);
                        CPU_SET(cpu, &one);
                        (void)sched_setaffinity(0, sizeof one, &one);
                        Streamer::Options ao;
                        ao.threads = 1;
                        ao.avoid_cpu = cpu;
                        Streamer ant(ao);
                        // Wait until it streams, then measure long enough for its rate.
                        ant.wait_started();
                        uint64_t m0 = ant.moved();
                        uint64_t ta0 = monotonic_ns();
                        cs.loaded = samples(ProbeMethod::Stream, n);
                        cl.loaded = samples(ProbeMethod::Latency, n);
                        std::this_thread::sleep_for(std::chrono::milliseconds(20));
                        uint64_t ta1 = monotonic_ns();
                        cs.antagonist_bps = cl.antagonist_bps = double(ant.moved() - m0) * 1e9 / double(ta1 - ta0);
                        ant.stop();
                        (void)sched_setaffinity(0, sizeof allowed, &allowed);
                }
                const double snr_stream = ProbeEstimator::signal_noise(cs), snr_lat = ProbeEstimator::signal_noise(cl);
                if (method_cfg_ == ProbeMethod::Auto)
                        method_ = !loaded || snr_stream >= snr_lat ? ProbeMethod::Stream : ProbeMethod::Latency;
                else
                        method_ = method_cfg_;
                const bool stream = method_ == ProbeMethod::Stream;
                est_ = std::make_unique<ProbeEstimator>(stream ? cs : cl);
                char buf[768];
                snprintf(buf, sizeof buf,
                         "probe: %s (%s); stream burst %.2f GB/s idle, %+.0f%% under a %.2f GB/s antagonist, noise %.1f%% "
                         "(signal/noise %.1f); pointer chase %.0f ns idle, %+.0f%%, noise %.1f%% (signal/noise %.1f); "
                         "%s pages; estimate: the %s quartile of the last %zu samples; changes within the idle noise "
                         "(%.1f%%) read as no load, %.2f GB/s per unit change past it",
                         stream ? "stream" : "latency",
                         method_cfg_ != ProbeMethod::Auto ? "configured" : loaded ? "larger signal/noise" : "one CPU: no antagonist",
                         ProbeEstimator::statistic(cs.idle, true) / 1e9, -100 * ProbeEstimator::loaded_change(cs), cs.antagonist_bps / 1e9,
                         100 * ProbeEstimator::noise(cs.idle), snr_stream, ProbeEstimator::statistic(cl.idle, false),
                         100 * ProbeEstimator::loaded_change(cl), 100 * ProbeEstimator::noise(cl.idle), snr_lat,
                         huge_ ? "2 MiB huge" : "transparent huge (if granted)", stream ? "upper" : "lower", est_->window(),
                         100 * est_->band(), est_->slope() / 1e9);
                detail_ = buf;
                if (ProbeEstimator::blind(stream ? cs : cl)) {
                        // Said plainly, so that nobody reads its quiet for an idle machine.
                        snprintf(buf, sizeof buf,
                                 "; probe blind: a %.2f GB/s antagonist on another CPU changed it by less than twice its idle noise "
                                 "(here streaming on one CPU does not slow memory access on another), so it reads little or no load",
                                 cs.antagonist_bps / 1e9);
                        detail_ += buf;
                }
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
        std::unique_ptr<ProbeEstimator> est_;
        uint64_t last_ = 0;
        std::string detail_;
        // Preemption filter and drift tracking.
        static constexpr int kTries = 4;
        static constexpr int kCalibrationSamples = 25;
        uint64_t busy_ns_ = 0, measured_ = 0, skipped_ = 0;
};

} // namespace

std::unique_ptr<Source> make_probe_source(const Config &c, Clock clock, uint64_t max_bps)
{
        return std::make_unique<ProbeSource>(c, std::move(clock), max_bps);
}

} // namespace bwq

// The probe's arithmetic, apart from its measuring (DESIGN §4.1): from a
// stream of readings (a burst's rate, or a pointer chase's latency) to the
// bytes per second others use.  Pure, so tests feed it synthetic streams.
//
// On a shared machine (every VM) one reading wanders by a third at idle,
// and one second's median by a fifth.  So:
//  - the estimate is a quantile of the last second's readings (the 75th
//    percentile of speed: a burst that ran free says more about what others
//    leave than one that met a neighbour's moment);
//  - the idle noise measured at calibration is a dead band: a change that
//    small reads as no load, and the slope from change to bytes per second
//    starts at its edge, so the calibration antagonist's rate still reads as
//    itself;
//  - the idle baseline follows the statistic only while it reads as idle
//    (inside the dead band, or faster than the baseline): up with a 20 s
//    time constant, down by at most 2% a minute.  A load never moves it.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace bwq {

struct ProbeCalibration {
        bool higher_is_better = true;  // a rate (stream); false: a latency
        std::vector<double> idle;      // readings at idle (at least one)
        std::vector<double> loaded;    // under the antagonist; empty: none ran
        double antagonist_bps = 0;     // its own rate while they were taken
        uint64_t max_bps = 0;
        uint64_t interval_ns = 100000000;  // between readings in operation
};

class ProbeEstimator {
public:
        explicit ProbeEstimator(const ProbeCalibration &c);

        // One clean reading at t_ns; returns the estimate of bytes/s used
        // by others, in [0, max_bps].
        double update(uint64_t t_ns, double reading);
        // A reading lost (every try preempted): the last estimate stands.
        double last() const { return last_; }

        double baseline() const { return baseline_; }
        double band() const { return band_; }    // relative change read as no load
        double slope() const { return slope_; }  // bytes/s per unit change past the band
        size_t window() const { return window_; }

        // The relative idle noise of a set of readings: median absolute
        // deviation over the median (at least 1e-3).
        static double noise(const std::vector<double> &v);
        // The relative change of the statistic from idle to loaded, over the
        // idle noise (the dead band's width): how clearly this probe sees
        // load.
        static double signal_noise(const ProbeCalibration &c);
        // Blind: an antagonist ran and changed the statistic by less than
        // kBlindSignalNoise times the idle noise, which is not told from the
        // noise (at a signal/noise of about 1 a probe on this kind of VM ran
        // and read a streaming antagonist as no load at all).
        static constexpr double kBlindSignalNoise = 2.0;
        static bool blind(const ProbeCalibration &c) { return !c.loaded.empty() && signal_noise(c) < kBlindSignalNoise; }
        // The statistic of a set of readings (see above).
        static double statistic(std::vector<double> v, bool higher_is_better);
        // Relative change of a statistic from an idle one (> 0: slower).
        static double change(double s, double idle, bool higher_is_better);
        // The calibration's change from idle to loaded (0 without loaded).
        static double loaded_change(const ProbeCalibration &c);

        static constexpr double kQuantile = 0.75;        // of speed
        static constexpr uint64_t kWindowNs = 1000000000;  // one second
        static constexpr double kFollowSeconds = 20;     // baseline time constant
        static constexpr double kDriftPerMin = 0.02;     // fastest fall of the baseline

private:
        bool higher_;
        uint64_t max_bps_;
        size_t window_;
        std::vector<double> ring_;
        size_t next_ = 0;
        double baseline_, band_, slope_;
        double alpha_;  // baseline step per reading
        double last_ = 0;
        uint64_t last_t_ = 0;
};

} // namespace bwq

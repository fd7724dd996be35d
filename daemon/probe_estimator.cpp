#include "probe_estimator.h"

#include <algorithm>
#include <cmath>

namespace bwq {

namespace {

double median(std::vector<double> v)
{
        std::sort(v.begin(), v.end());
        return v.empty() ? 0 : v[v.size() / 2];
}

} // namespace

double ProbeEstimator::noise(const std::vector<double> &v)
{
        const double m = median(v);
        std::vector<double> d;
        d.reserve(v.size());
        for (double x : v)
                d.push_back(std::fabs(x - m));
        return m > 0 ? std::max(median(d) / m, 1e-3) : 1;
}

double ProbeEstimator::statistic(std::vector<double> v, bool higher_is_better)
{
        if (v.empty())
                return 0;
        std::sort(v.begin(), v.end());
        // The 75th percentile of speed: of a rate the upper quartile, of a
        // latency the lower one.
        const double q = higher_is_better ? kQuantile : 1 - kQuantile;
        const double pos = q * double(v.size() - 1);
        const size_t i = size_t(pos);
        const double f = pos - double(i);
        return i + 1 < v.size() ? v[i] + f * (v[i + 1] - v[i]) : v[i];
}

double ProbeEstimator::change(double s, double idle, bool higher_is_better)
{
        if (!(idle > 0) || !(s > 0))
                return 0;
        return higher_is_better ? 1.0 - s / idle : s / idle - 1.0;
}

double ProbeEstimator::loaded_change(const ProbeCalibration &c)
{
        if (c.idle.empty() || c.loaded.empty())
                return 0;
        return change(statistic(c.loaded, c.higher_is_better), statistic(c.idle, c.higher_is_better), c.higher_is_better);
}

double ProbeEstimator::signal_noise(const ProbeCalibration &c)
{
        if (c.idle.empty() || c.loaded.empty())
                return 0;
        return std::max(0.0, loaded_change(c)) / noise(c.idle);
}

ProbeEstimator::ProbeEstimator(const ProbeCalibration &c)
        : higher_(c.higher_is_better), max_bps_(c.max_bps)
{
        const uint64_t interval = std::max<uint64_t>(c.interval_ns, 1000000);
        window_ = std::clamp<size_t>(size_t(kWindowNs / interval), 5, 64);
        ring_.reserve(window_);
        baseline_ = statistic(c.idle, higher_);
        band_ = c.idle.size() > 1 ? noise(c.idle) : 0;
        alpha_ = std::min(1.0, double(interval) / 1e9 / kFollowSeconds);
        const double ch = loaded_change(c);
        // Without a measured antagonist (or one the probe did not see past
        // its noise), a change of one past the band stands for the maximum.
        slope_ = ch - band_ > 0.01 ? c.antagonist_bps / (ch - band_) : double(max_bps_);
}

double ProbeEstimator::update(uint64_t t_ns, double reading)
{
        if (!(reading > 0) || !std::isfinite(reading))
                return last_;
        if (ring_.size() < window_)
                ring_.push_back(reading);
        else
                ring_[next_] = reading;
        next_ = (next_ + 1) % window_;
        const double s = statistic(ring_, higher_);
        const double ch = change(s, baseline_, higher_);
        const double dt_min = last_t_ && t_ns > last_t_ ? double(t_ns - last_t_) / 60e9 : 0;
        last_t_ = t_ns;
        if (ch < band_) {
                // Reads as idle: follow it, falling no faster than the drift
                // a machine's idle may have.
                double next = baseline_ + alpha_ * (s - baseline_);
                if (ch > 0) {
                        const double floor = higher_ ? baseline_ * (1 - kDriftPerMin * dt_min)
                                                     : baseline_ * (1 + kDriftPerMin * dt_min);
                        next = higher_ ? std::max(next, floor) : std::min(next, floor);
                }
                baseline_ = next;
        }
        const double past = std::max(0.0, ch - band_);
        last_ = std::min(double(max_bps_), slope_ * past);
        return last_;
}

} // namespace bwq

// From bandwidth to bit depth (DESIGN §4.3): smoothing of the rate used by
// everything but the NPU clients, available = max(0, max - used), the FIG. 5
// table, immediate steps down, steps up only above threshold + hysteresis
// held for MinDwell, and Stale after three missed samples.
#pragma once

#include <cstdint>
#include <deque>
#include <string>
#include <vector>

#include "config.h"

namespace bwq {

struct Decision {
        uint8_t bits = 0;          // 0 until the first sample
        uint32_t section = 0;      // 1 = the highest-bandwidth row; 0 before any
        uint64_t max_bps = 0;
        uint64_t used_bps = 0;     // smoothed, everything but the NPU clients
        uint64_t available_bps = 0;
        bool stale = false;
        uint64_t timestamp_usec = 0;  // CLOCK_MONOTONIC of the last valid sample
};

class Smoother {
public:
        void configure(Smoothing s, double alpha, unsigned window);
        uint64_t add(uint64_t x);
        void reset() { have_ = false, win_.clear(); }

private:
        Smoothing mode_ = Smoothing::None;
        double alpha_ = 1, value_ = 0;
        unsigned window_ = 1;
        bool have_ = false;
        std::deque<uint64_t> win_;
};

class Policy {
public:
        // Thresholds resolved against max_bps; rows as in the config.
        void configure(const std::vector<TableRow> &table, uint64_t max_bps, uint64_t hysteresis_bps,
                       uint64_t min_dwell_usec, OnStale on_stale, uint8_t stale_bits);
        // A valid sample: `used_bps` is the smoothed rate of the others.
        // Returns true when the published decision changed.
        bool on_sample(uint64_t now_usec, uint64_t used_bps);
        // No valid sample at a tick; after three in a row the decision is stale.
        bool on_missed(uint64_t now_usec);

        const Decision &decision() const { return d_; }
        const std::vector<uint64_t> &thresholds() const { return thr_; }
        const std::vector<uint8_t> &bits() const { return bits_; }
        uint64_t hysteresis_bps() const { return hyst_; }
        std::string explain() const;

private:
        size_t section_for(uint64_t available, uint64_t extra) const;
        uint8_t stale_depth() const;

        std::vector<uint64_t> thr_;
        std::vector<uint8_t> bits_;
        uint64_t hyst_ = 0, dwell_ = 0;
        OnStale on_stale_ = OnStale::Keep;
        uint8_t stale_bits_ = 8;
        Decision d_;
        bool have_section_ = false;
        size_t cur_ = 0;
        bool up_pending_ = false;
        uint64_t up_since_ = 0;
        unsigned missed_ = 0;
        std::string last_reason_;
};

} // namespace bwq

#include "policy.h"

#include <algorithm>
#include <cstdio>

namespace bwq {

void Smoother::configure(Smoothing s, double alpha, unsigned window)
{
        mode_ = s;
        alpha_ = alpha;
        window_ = window ? window : 1;
        reset();
}

uint64_t Smoother::add(uint64_t x)
{
        switch (mode_) {
        case Smoothing::None:
                return x;
        case Smoothing::Ewma:
                value_ = have_ ? alpha_ * double(x) + (1 - alpha_) * value_ : double(x);
                have_ = true;
                return uint64_t(value_ + 0.5);
        case Smoothing::Window: {
                win_.push_back(x);
                while (win_.size() > window_)
                        win_.pop_front();
                unsigned __int128 s = 0;
                for (uint64_t v : win_)
                        s += v;
                return uint64_t(s / win_.size());
        }
        }
        return x;
}

void Policy::configure(const std::vector<TableRow> &table, uint64_t max_bps, uint64_t hysteresis_bps,
                       uint64_t min_dwell_usec, OnStale on_stale, uint8_t stale_bits)
{
        thr_.clear();
        bits_.clear();
        for (const auto &r : table) {
                thr_.push_back(r.threshold.resolve(max_bps));
                bits_.push_back(r.bits);
        }
        hyst_ = hysteresis_bps;
        dwell_ = min_dwell_usec;
        on_stale_ = on_stale;
        stale_bits_ = stale_bits;
        d_.max_bps = max_bps;
        // A new table: the next sample places the decision afresh.
        have_section_ = false;
        up_pending_ = false;
}

size_t Policy::section_for(uint64_t available, uint64_t extra) const
{
        for (size_t i = 0; i + 1 < thr_.size(); i++)
                if (available > thr_[i] + extra)
                        return i;
        return thr_.size() - 1;
}

uint8_t Policy::stale_depth() const
{
        switch (on_stale_) {
        case OnStale::Min: return *std::min_element(bits_.begin(), bits_.end());
        case OnStale::Max: return *std::max_element(bits_.begin(), bits_.end());
        case OnStale::Bits: return stale_bits_;
        default: return have_section_ ? bits_[cur_] : *std::max_element(bits_.begin(), bits_.end());
        }
}

bool Policy::on_sample(uint64_t now_usec, uint64_t used_bps)
{
        const Decision before = d_;
        missed_ = 0;
        d_.stale = false;
        d_.used_bps = used_bps;
        d_.available_bps = used_bps >= d_.max_bps ? 0 : d_.max_bps - used_bps;
        d_.timestamp_usec = now_usec;
        const size_t target = section_for(d_.available_bps, 0);
        char buf[160];
        if (!have_section_) {
                cur_ = target;
                have_section_ = true;
                up_pending_ = false;
                snprintf(buf, sizeof buf, "first sample: section %zu", cur_ + 1);
                last_reason_ = buf;
        } else if (target > cur_) {
                // Less bandwidth: step down at once, to protect the deadline.
                snprintf(buf, sizeof buf, "stepped down at once from section %zu to %zu", cur_ + 1, target + 1);
                last_reason_ = buf;
                cur_ = target;
                up_pending_ = false;
        } else {
                const size_t up = section_for(d_.available_bps, hyst_);
                if (up < cur_) {
                        if (!up_pending_) {
                                up_pending_ = true;
                                up_since_ = now_usec;
                        }
                        if (now_usec - up_since_ >= dwell_) {
                                snprintf(buf, sizeof buf, "stepped up from section %zu to %zu after %llu us above threshold + hysteresis",
                                         cur_ + 1, up + 1, (unsigned long long)(now_usec - up_since_));
                                last_reason_ = buf;
                                cur_ = up;
                                up_pending_ = false;
                        }
                } else {
                        up_pending_ = false;
                }
        }
        d_.section = uint32_t(cur_ + 1);
        d_.bits = bits_[cur_];
        return d_.bits != before.bits || d_.section != before.section || d_.stale != before.stale ||
               d_.available_bps != before.available_bps || d_.used_bps != before.used_bps;
}

bool Policy::on_missed(uint64_t)
{
        const Decision before = d_;
        if (++missed_ >= 3 && !d_.stale) {
                d_.stale = true;
                d_.bits = stale_depth();
                last_reason_ = "stale: no valid sample for 3 intervals";
                // After a stale spell the next sample places the decision afresh.
                have_section_ = false;
                up_pending_ = false;
        }
        return d_.bits != before.bits || d_.stale != before.stale;
}

std::string Policy::explain() const
{
        std::string s;
        char buf[256];
        snprintf(buf, sizeof buf, "maximum %.3f GB/s, used by others %.3f GB/s, available %.3f GB/s\n", d_.max_bps / 1e9,
                 d_.used_bps / 1e9, d_.available_bps / 1e9);
        s += buf;
        s += "table (available > threshold -> bits):\n";
        for (size_t i = 0; i < thr_.size(); i++) {
                snprintf(buf, sizeof buf, "  %s section %zu: %s %.3f GB/s -> %u bits\n",
                         have_section_ && i == cur_ ? "*" : " ", i + 1, i + 1 < thr_.size() ? ">" : "<=",
                         (i + 1 < thr_.size() ? thr_[i] : thr_[i > 0 ? i - 1 : 0]) / 1e9, bits_[i]);
                s += buf;
        }
        snprintf(buf, sizeof buf, "hysteresis %.3f GB/s, min dwell %.3f s%s\n", hyst_ / 1e9, dwell_ / 1e6,
                 up_pending_ ? ", a step up is pending" : "");
        s += buf;
        s += "decision: " + std::to_string(d_.bits) + " bits" + (d_.stale ? " (stale)" : "") + "; " + last_reason_ + "\n";
        return s;
}

} // namespace bwq

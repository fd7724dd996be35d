// Explain(): why bwqd decided what it did, for humans (bwqctl explain).
#include "client.h"
#include "service.h"

namespace bwq {

std::string Service::explain() const
{
        std::string s = "source: " + source_choice_ + "\n";
        std::string det = source_ ? source_->detail() : "";
        if (!det.empty())
                s += det + (det.back() == '\n' ? "" : "\n");
        s += "maximum: " + format_bandwidth(max_bps_) + ", " + max_origin_ + "\n";
        unsigned counters = 0;
        for (const auto &[id, c] : clients_)
                counters += bool(c->traffic);
        const bool reported = !recent_.empty() && recent_.back().npu_reported;
        s += std::string("npu clients' traffic: ") +
             (reported ? "reported by the clients (" + std::to_string(counters) + " traffic counter(s)), subtracted from the total"
                       : "measured by the source") +
             "\n";
        s += "recent samples (oldest first): time_us total_Bps npu_Bps smoothed_used_by_others_Bps"
             " (used_by_others = total - npu, then smoothed)\n";
        for (const auto &r : recent_)
                s += "  " + std::to_string(r.t_usec) + " " +
                     (r.valid ? std::to_string(r.total_bps) + " " + std::to_string(r.npu_bps) + (r.npu_reported ? "r " : " ") +
                                        std::to_string(r.used_bps)
                              : std::string("invalid")) +
                     (r.note.empty() ? "" : "  (" + r.note + ")") + "\n";
        s += policy_.explain();
        for (const auto &[id, c] : clients_)
                s += "client " + c->path + " " + c->name + " pid " + std::to_string(c->pid) + ": [" +
                     std::to_string(c->min_bits) + ", " + std::to_string(c->max_bits) + "] -> " + std::to_string(c->bits) +
                     " bits\n";
        return s;
}

} // namespace bwq

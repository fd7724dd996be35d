// npu-run --fps --live: one line per frame, the same for the synthetic
// network and --model, in the columns scripts/timeline.sh reads: time,
// available GB/s, table section, the layers' depths as depth:count runs,
// frame milliseconds, activation MB, then MISS and fallback flags (and for
// --model with --labels, the frame's class against its label).
#pragma once

#include <cstdio>
#include <string>

#include "npu/npu.h"
#include "bwq_status.h"

namespace tools {

// The layers' depths of the last run as "16:40 8:24" (depth:consecutive layers).
inline std::string bits_rle(npu_model *m, unsigned layers)
{
        std::string s;
        unsigned prev = 0, run = 0;
        for (unsigned l = 0; l <= layers; l++) {
                npu_layer_stats ls{};
                unsigned b = l < layers && npu_model_layer_stats(m, l, &ls) == 0 ? ls.bits : 0;
                if (l < layers && b == prev) {
                        run++;
                        continue;
                }
                if (run)
                        s += (s.empty() ? "" : " ") + std::to_string(prev) + ":" + std::to_string(run);
                prev = b;
                run = 1;
        }
        return s;
}

inline void live_header()
{
        printf("%8s %10s %7s %-22s %10s %11s %s\n", "time_s", "avail_GB/s", "section", "bits(layer runs)", "frame_ms",
               "act_MB/frame", "");
        fflush(stdout);
}

// extra: appended as it is ("" for none).
inline void live_line(double t, npu_model *m, const npu_run_stats &st, double ms, bool miss, const std::string &extra)
{
        char avail[32] = "-", sect[16] = "-";
        if (!(st.flags & NPU_RUN_FALLBACK) && st.section) {
                snprintf(avail, sizeof avail, "%.2f", st.available_bps / 1e9);
                snprintf(sect, sizeof sect, "%u", st.section);
        }
        printf("%8.2f %10s %7s %-22s %10.2f %11.2f %s%s%s\n", t, avail, sect, bits_rle(m, st.layer_count).c_str(), ms,
               st.activation_bytes / 1e6, miss ? "MISS " : "", run_fallback_text(st.flags).c_str(), extra.c_str());
        fflush(stdout);
}

} // namespace tools

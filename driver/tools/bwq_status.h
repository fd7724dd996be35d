// How npu-run says where a model stands with bwqd: live, pending, refused
// (with bwqd's reason), stale, or no bwqd.
#pragma once

#include <cstdio>
#include <string>

#include "npu/npu.h"

namespace tools {

inline std::string bwq_status_text(const npu_bwq_status &s)
{
        const char *name = npu_bwq_state_name(s.state);
        std::string t = name ? name : "?";
        char buf[96];
        if (s.state == NPU_BWQ_REFUSED) {
                snprintf(buf, sizeof buf, " (%u time(s); again in %.1f s): ", s.refusals, double(s.retry_in_ns) / 1e9);
                t += buf;
                t += s.reason;
        } else if (s.state == NPU_BWQ_STALE) {
                snprintf(buf, sizeof buf, " (the page was last updated %.1f s ago)", double(s.page_age_ns) / 1e9);
                t += buf;
        }
        return t;
}

// A run's NPU_RUN_* flags, as npu-run's per-frame lines show them.
inline std::string run_fallback_text(uint32_t flags)
{
        if (!(flags & NPU_RUN_FALLBACK))
                return "";
        if (flags & NPU_RUN_REFUSED)
                return "fallback (refused)";
        if (flags & NPU_RUN_STALE)
                return "fallback (stale)";
        if (flags & NPU_RUN_PENDING)
                return "fallback (pending)";
        return "fallback (no bwqd)";
}

} // namespace tools

// Activation bit depths and their rules, in one place for bwqd, libnpu and
// npuref (DESIGN §2, FIG. 5; §5.3).
#pragma once

#include <array>
#include <cstdint>

namespace bwq {

// The depths activations may be stored at, ascending.  Their positions are
// the indices of enum npu_bits_index (uapi/npu_accel.h).
inline constexpr std::array<unsigned, 4> kDepths = {4, 6, 8, 16};
// For messages: "4, 6, 8 or 16".
inline constexpr const char kDepthList[] = "4, 6, 8 or 16";

constexpr int depth_index(unsigned bits)
{
        for (unsigned i = 0; i < kDepths.size(); i++)
                if (kDepths[i] == bits)
                        return int(i);
        return -1;
}

constexpr bool depth_supported(unsigned bits) { return depth_index(bits) >= 0; }

// Bit n set for each supported depth n (DRM_NPU_PARAM_BIT_DEPTHS).
constexpr uint64_t depth_mask()
{
        uint64_t m = 0;
        for (unsigned b : kDepths)
                m |= 1ull << b;
        return m;
}

// The depth a request gets inside a clamp [lo, hi] of supported depths: the
// largest supported depth not above the request, and never below lo.  A
// request of 0 (none made) takes hi.
constexpr unsigned depth_clamp(unsigned want, unsigned lo, unsigned hi)
{
        if (want == 0 || want > hi)
                want = hi;
        for (unsigned i = kDepths.size(); i-- > 0;)
                if (kDepths[i] <= want && kDepths[i] >= lo)
                        return kDepths[i];
        return lo;
}

static_assert(depth_clamp(7, 4, 16) == 6 && depth_clamp(0, 6, 8) == 8 && depth_clamp(4, 6, 8) == 6 &&
              depth_clamp(16, 4, 8) == 8 && depth_clamp(5, 4, 16) == 4);

} // namespace bwq

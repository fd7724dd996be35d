#include "weights.h"

#include <algorithm>
#include <cmath>

namespace bwq {

namespace {

// Weights per output channel: K of them, in (ky, kx, ci) order.
size_t row_length(const WeightShape &p)
{
        const uint32_t groups = p.groups ? p.groups : 1;
        const size_t cig = p.fully_connected ? p.in_channels : p.in_channels / groups;
        const size_t taps = p.fully_connected ? 1 : size_t(p.kernel_h) * p.kernel_w;
        return taps * cig;
}

// The one rounding rule: symmetric per channel, s = max|W[c]| / 127.
void quantize(const float *weights, const WeightShape &p, const float *scales, std::vector<int8_t> *q, std::vector<float> *scale)
{
        const size_t K = row_length(p);
        const uint32_t cout = p.out_channels;
        scale->resize(cout);
        q->resize(size_t(cout) * K);
        for (uint32_t c = 0; c < cout; c++) {
                const float *row = weights + size_t(c) * K;
                float m = 0.0f;
                for (size_t k = 0; k < K; k++)
                        m = std::max(m, std::fabs(row[k]));
                float s = scales ? scales[c] : m > 0.0f ? m / 127.0f : 1.0f;
                (*scale)[c] = s;
                for (size_t k = 0; k < K; k++)
                        (*q)[c * K + k] = int8_t(std::clamp(std::nearbyint(row[k] / s), -127.0f, 127.0f));
        }
}

} // namespace

std::vector<float> device_weights(const float *weights, const WeightShape &p)
{
        std::vector<int8_t> q;
        std::vector<float> scale;
        quantize(weights, p, nullptr, &q, &scale);
        const size_t K = row_length(p);
        std::vector<float> out(q.size());
        for (size_t i = 0; i < q.size(); i++)
                out[i] = float(q[i]) * scale[i / K];
        return out;
}

PackedWeights pack_weights(const float *weights, const WeightShape &p, const float *scales)
{
        const uint32_t cout = p.out_channels, groups = p.groups ? p.groups : 1, in_channels = p.in_channels;
        const bool fc = p.fully_connected;
        const size_t cig = fc ? in_channels : in_channels / groups;
        const size_t taps = fc ? 1 : size_t(p.kernel_h) * p.kernel_w;
        const size_t K = taps * cig;  // per output channel, (ky, kx, ci) order
        PackedWeights w;
        std::vector<int8_t> q;
        quantize(weights, p, scales, &q, &w.scale);
        const bool depthwise = !fc && groups > 1 && groups == in_channels && groups == cout;
        if (depthwise) {
                // [kh][kw][c]
                w.data.resize(taps * cout);
                for (uint32_t c = 0; c < cout; c++)
                        for (size_t t = 0; t < taps; t++)
                                w.data[t * cout + c] = q[c * K + t];
                return w;
        }
        // Blocked: per group [N16/16][K4/4][16][4].
        const size_t cog = cout / groups, K4 = (K + 3) / 4 * 4, N16 = (cog + 15) / 16 * 16;
        w.data.assign(groups * K4 * N16, 0);
        for (uint32_t g = 0; g < groups; g++)
                for (size_t n = 0; n < cog; n++)
                        for (size_t k = 0; k < K; k++)
                                w.data[g * K4 * N16 + (n / 16) * K4 * 16 + (k / 4) * 64 + (n % 16) * 4 + k % 4] =
                                        q[(g * cog + n) * K + k];
        return w;
}

} // namespace bwq

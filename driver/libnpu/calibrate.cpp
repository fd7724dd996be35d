// Calibration of activation ranges and quantization of weights.
#include <algorithm>
#include <cmath>

#include "internal.h"
#include "quant.h"

namespace npu {

// Mean squared error of quantizing `v` with range [lo, hi] at `bits`.
static double quant_mse(const std::vector<float> &v, float lo, float hi, unsigned bits)
{
        npuref::QParams p = npuref::qparams(lo, hi, bits);
        double e = 0;
        for (float x : v) {
                double d = double(npuref::dequantize_one(npuref::quantize_one(x, p), p)) - x;
                e += d * d;
        }
        return e;
}

Ranges calibrate_ranges(const std::vector<float> &values)
{
        float lo = 0.0f, hi = 0.0f;
        for (float v : values) {
                lo = std::min(lo, v);
                hi = std::max(hi, v);
        }
        Ranges r;
        // 8 and 16 bits: the full range (DynamicQuantizeLinear's at 8 bits).
        // 4 and 6 bits: min/max wastes levels on rare extremes, so the range
        // is clipped to the fraction that minimises the squared error.
        std::vector<float> sample;
        size_t step = std::max<size_t>(1, values.size() / 16384);
        for (size_t i = 0; i < values.size(); i += step)
                sample.push_back(values[i]);
        for (unsigned bits : {4u, 6u, 8u, 16u}) {
                int i = npuref::bits_index(bits);
                float best = 1.0f;
                if (bits <= 6 && hi > lo) {
                        double best_e = quant_mse(sample, lo, hi, bits);
                        for (float f = 0.95f; f > 0.25f; f -= 0.05f) {
                                double e = quant_mse(sample, lo * f, hi * f, bits);
                                if (e < best_e) {
                                        best_e = e;
                                        best = f;
                                }
                        }
                }
                r.lo[i] = lo * best;
                r.hi[i] = hi * best;
        }
        return r;
}

PackedWeights pack_weights(const GraphLayer &L, uint32_t in_channels, const float *scales)
{
        const auto &p = L.conv;
        const uint32_t cout = p.out_channels, groups = p.groups ? p.groups : 1;
        const bool fc = L.op == NPU_OP_FULLY_CONNECTED;
        const size_t cig = fc ? in_channels : in_channels / groups;
        const size_t taps = fc ? 1 : size_t(p.kernel_h) * p.kernel_w;
        const size_t K = taps * cig;  // per output channel, (ky, kx, ci) order
        PackedWeights w;
        w.scale.resize(cout);
        std::vector<int8_t> q(size_t(cout) * K);
        for (uint32_t c = 0; c < cout; c++) {
                const float *row = L.weights.data() + size_t(c) * K;
                float m = 0.0f;
                for (size_t k = 0; k < K; k++)
                        m = std::max(m, std::fabs(row[k]));
                float s = scales ? scales[c] : m > 0.0f ? m / 127.0f : 1.0f;
                w.scale[c] = s;
                for (size_t k = 0; k < K; k++)
                        q[c * K + k] = int8_t(std::clamp(std::nearbyint(row[k] / s), -127.0f, 127.0f));
        }
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

} // namespace npu

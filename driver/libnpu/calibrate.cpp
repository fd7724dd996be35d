// Calibration of activation ranges and quantization of weights.
#include <algorithm>
#include <cmath>

#include "internal.h"
#include "common/quant.h"

namespace npu {

// Mean squared error of quantizing `v` with range [lo, hi] at `bits`.
static double quant_mse(const std::vector<float> &v, float lo, float hi, unsigned bits)
{
        bwq::QParams p = bwq::qparams(lo, hi, bits);
        double e = 0;
        for (float x : v) {
                double d = double(bwq::dequantize_one(bwq::quantize_one(x, p), p)) - x;
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
        return calibrate_ranges(values, lo, hi);
}

Ranges calibrate_ranges(const std::vector<float> &values, float lo, float hi)
{
        lo = std::min(lo, 0.0f);
        hi = std::max(hi, 0.0f);
        Ranges r;
        // 8 and 16 bits: the full range (DynamicQuantizeLinear's at 8 bits).
        // 4 and 6 bits: min/max wastes levels on rare extremes, so the range
        // is clipped to the fraction that minimises the squared error.
        std::vector<float> sample;
        size_t step = std::max<size_t>(1, values.size() / 16384);
        for (size_t i = 0; i < values.size(); i += step)
                sample.push_back(values[i]);
        for (unsigned bits : {4u, 6u, 8u, 16u}) {
                int i = bwq::depth_index(bits);
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


} // namespace npu

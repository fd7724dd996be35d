#include "epilogue.h"

#include <cmath>

#include "npu_accel.h"

namespace npuref {

#define NPU_CLONES __attribute__((target_clones("avx512f", "avx2", "default")))

NPU_CLONES
void scale_row(const int32_t *acc, const float *mul, const float *add, size_t n, float *y)
{
        for (size_t i = 0; i < n; i++)
                y[i] = float(acc[i]) * mul[i] + add[i];
}

NPU_CLONES
void scale_row_offset(const int32_t *__restrict acc, const int32_t *__restrict off, const float *__restrict mul,
                      const float *__restrict add, size_t n, float *__restrict y)
{
        for (size_t i = 0; i < n; i++)
                y[i] = float(acc[i] - off[i]) * mul[i] + add[i];
}

NPU_CLONES
void scale_row64(const int64_t *acc, const float *mul, const float *add, size_t n, float *y)
{
        for (size_t i = 0; i < n; i++)
                y[i] = float(acc[i]) * mul[i] + add[i];
}

NPU_CLONES
static void relu(float *y, size_t n)
{
        for (size_t i = 0; i < n; i++)
                y[i] = y[i] > 0.0f ? y[i] : 0.0f;
}

NPU_CLONES
static void relu6(float *y, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                float v = y[i] > 0.0f ? y[i] : 0.0f;
                y[i] = v < 6.0f ? v : 6.0f;
        }
}

NPU_CLONES
static void hardswish(float *y, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                float t = y[i] + 3.0f;
                t = t > 0.0f ? t : 0.0f;
                t = t < 6.0f ? t : 6.0f;
                y[i] = y[i] * t / 6.0f;
        }
}

NPU_CLONES
static void hardsigmoid(float *y, size_t n)
{
        for (size_t i = 0; i < n; i++) {
                float t = y[i] / 6.0f + 0.5f;
                t = t > 0.0f ? t : 0.0f;
                y[i] = t < 1.0f ? t : 1.0f;
        }
}

void activate_row(float *y, size_t n, uint8_t act)
{
        switch (act) {
        case NPU_ACT_RELU: relu(y, n); return;
        case NPU_ACT_RELU6: relu6(y, n); return;
        case NPU_ACT_HARDSWISH: hardswish(y, n); return;
        case NPU_ACT_HARDSIGMOID: hardsigmoid(y, n); return;
        case NPU_ACT_SIGMOID:
                // Scalar libm exp: the same in every path.
                for (size_t i = 0; i < n; i++)
                        y[i] = 1.0f / (1.0f + std::exp(-y[i]));
                return;
        default: return;
        }
}

} // namespace npuref

// libnpu internals shared by its translation units (not installed).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

#include "common/mapping.h"
#include "common/unique_fd.h"
#include "npu/npu.h"
#include "uapi/npu_accel.h"

struct npuref_device;
namespace npu {
class BwqLink;
}

struct npu_device {
        npu_device();
        ~npu_device();
        npuref_device *soft = nullptr;  // the in-process software NPU, or
        bwq::unique_fd fd;              // a DRM accel node
        uint32_t last_error = 0, last_error_index = 0;
        // The link to bwqd, made when a model first asks for a BWQ mode;
        // null with BWQ_BUS=none.
        std::mutex link_mu;
        std::unique_ptr<npu::BwqLink> link;
        bool link_tried = false;
        npu::BwqLink *bwq_link();

        int ioctl(unsigned long request, void *arg);
        int map(uint64_t offset, size_t length, int prot, void **ret);
};

struct npu_bo {
        npu_device *dev = nullptr;
        uint32_t handle = 0;
        uint64_t size = 0;
        bwq::Mapping mapping;  // unmapped with the bo (npuref's too: its mmap is mmap(2))
};

namespace npu {

// Reserved fields of the public option structs must be zero (libnpu(3)).
template <class T, size_t N> bool reserved_zero(const T (&r)[N])
{
        for (const T &x : r)
                if (x)
                        return false;
        return true;
}

// Clipping range of a tensor at each depth (npu_bits_index order).
struct Ranges {
        float lo[NPU_BITS_COUNT], hi[NPU_BITS_COUNT];
};
// A range the device accepts: finite, lo <= 0 <= hi.
bool range_valid(float lo, float hi);
// A bias correction a layer of `op` and `channels` outputs accepts: a conv
// or fully connected layer, and NULL with 0 (none) or 4 * channels finite
// values.
bool bias_delta_valid(uint16_t op, size_t channels, const float *delta, size_t count);

struct GraphTensor {
        uint32_t n, h, w, c;
        int producer;  // layer index, -1 for the graph input
        // A graph input's own depth clamp (a layer's is on the layer).
        unsigned min_bits = 4, max_bits = 16;
        // Ranges given with npu_graph_set_tensor_ranges: not calibrated.
        bool given_ranges = false;
        Ranges ranges{};
        uint64_t elements() const { return uint64_t(n) * h * w * c; }
};

// A layer the host computes (npu_graph_host); never sent to the device.
constexpr uint16_t kOpHost = 0x100;

struct GraphLayer {
        uint16_t op;   // enum npu_op, or kOpHost
        uint8_t act;   // enum npu_act
        std::vector<int> inputs;
        int output = -1;
        npu_conv2d_params conv{};   // CONV2D; FULLY_CONNECTED uses out_channels
        npu_pool_params pool{};
        std::vector<float> weights, bias;
        // Added to bias per input depth ([NPU_BITS_COUNT][C_out]), or empty.
        std::vector<float> bias_delta;
        unsigned min_bits = 4, max_bits = 16;
        npu_host_fn host_fn = nullptr;  // kOpHost
        void *host_user = nullptr;
};

// Runs host layer L on float NHWC inputs (values indexed by tensor).
int run_host_layer(const GraphLayer &L, const std::vector<GraphTensor> &tensors, const std::vector<std::vector<float>> &values,
                   std::vector<float> &out);

// The linear part of conv/FC layer L (no bias, no activation) on `in`,
// the layer's input tensor: `out` gets its output tensor.
void linear_forward(const npu_graph &g, const GraphLayer &L, const float *in, bool int8_weights, std::vector<float> &out);

// Float forward pass of the graph; fills every tensor's values.  With
// int8_weights, convolutions and fully connected layers use the weights the
// device computes with (calibration: ranges of what the device will see).
void reference_forward(const npu_graph &g, const float *const *inputs, std::vector<std::vector<float>> &values,
                       bool int8_weights = false);

Ranges calibrate_ranges(const std::vector<float> &values);
// The same from a sample of the values and their true extremes.
Ranges calibrate_ranges(const std::vector<float> &sample, float lo, float hi);

} // namespace npu

struct npu_graph {
        std::vector<npu::GraphTensor> tensors;
        std::vector<npu::GraphLayer> layers;
        std::vector<int> inputs;   // in the order added
        std::vector<int> outputs;  // empty: the last layer's
};

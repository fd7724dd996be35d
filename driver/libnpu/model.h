// libnpu's compiled model (not installed): the buffer objects, the job
// and the state of a run, shared by compile.cpp, model_page.cpp,
// job_encode.cpp, run.cpp and wait_many.cpp.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "bwq_link.h"
#include "common/depth.h"
#include "common/mapping.h"
#include "common/unique_fd.h"
#include "internal.h"
#include "uapi/bwq_page.h"

namespace npu {

constexpr uint64_t kAlign = 64;
inline uint64_t align_up(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

struct ModelLayer {
        uint16_t op;
        uint8_t act;
        std::vector<int> inputs;
        int output;
        npu_conv2d_params conv;
        npu_pool_params pool;
        unsigned min_bits, max_bits;
        uint64_t weight_offset = 0, weight_size = 0, scale_offset = 0, bias_offset = 0;
        uint32_t flags = 0;             // NPU_LAYER_* of its jobs
        std::vector<float> bias;        // conv/FC: the graph's bias (the rows add corrections to it)
        npu_host_fn host_fn = nullptr;  // kOpHost
        void *host_user = nullptr;
};

// Layers [first, last): one device job, or (host) one host layer.
struct Segment {
        size_t first, last;
        bool host;
        npu_bo *job = nullptr;  // command buffer and results
        uint64_t cmd_size = 0, result_offset = 0;
};

} // namespace npu

struct npu_model {
        npu_device *dev = nullptr;
        std::vector<npu::GraphTensor> tensors;
        std::vector<npu::ModelLayer> layers;
        std::vector<npu::Ranges> ranges;
        std::vector<uint64_t> tensor_offset;
        std::vector<int> inputs, outputs;  // tensors, in the graph's order
        npu_bo *act_bo = nullptr, *param_bo = nullptr;
        std::vector<npu::Segment> segments;
        std::vector<unsigned> tensor_bits;  // the depth each tensor was written at in this run (0: not yet)
        std::vector<unsigned> tensor_fixed; // FIXED mode: a tensor's own depth (npu_model_set_tensor_bits; 0: none)
        // Host nodes' outputs of this run as computed: what later host nodes
        // and the model's outputs read (devices read the stored copy).
        std::vector<std::vector<float>> host_float;
        size_t segment = 0;                 // the segment in flight

        uint32_t mode = NPU_MODE_FIXED;
        unsigned bits = 8, min_bits = 4, max_bits = 16;

        uint32_t page_handle = 0;
        bwq::Mapping page_map;
        const bwq_page *page = nullptr;  // in page_map
        bool page_explicit = false;  // set by npu_model_set_decision_page()
        uint64_t page_generation = 0;  // of the link's page in use
        std::string name = "npu-model";
        uint64_t link_id = 0;

        // The job in flight, if any.
        uint32_t job_id = 0;
        bwq::unique_fd fence;
        npu_run_stats pending{};      // of the run in flight, so far
        bool run_dynamic = false;       // and its depths
        bool run_sync = false;          // the caller waits for the whole run (npu_model_run*)
        unsigned run_fixed = 8, run_input_bits = 8;

        npu_run_stats last{};
        std::vector<npu_layer_stats> last_layers;
        bool have_result = false;

        ~npu_model()
        {
                if (link_id && dev->link)
                        dev->link->remove_client(link_id);
                if (page_handle) {
                        drm_gem_close gc{page_handle, 0};
                        (void)dev->ioctl(DRM_IOCTL_GEM_CLOSE, &gc);
                }
                for (auto &s : segments)
                        npu_bo_free(s.job);
                npu_bo_free(act_bo);
                npu_bo_free(param_bo);
        }
};

namespace npu {

// The depth a layer writes `output` at in a run of fixed depth `fixed`
// (FIXED, BWQ_MODEL or fallback) between the clamps [lo, hi].
inline unsigned fixed_depth(const npu_model *m, int output, unsigned fixed, unsigned lo, unsigned hi)
{
        if (m->mode == NPU_MODE_FIXED)
                return m->tensor_fixed[output] ? m->tensor_fixed[output] : fixed;
        return bwq::depth_clamp(fixed, lo, hi);
}

// Layer l's bias rows in the parameter BO: bias + delta[d] per input depth
// d (delta NULL: the bias alone in every row).
void write_bias_rows(npu_model *m, size_t l, const float *delta);

// Maps and imports a decision page for the model (-1: none, dropping the
// one it has).  Returns 0 or a negative errno.
int model_attach_page(npu_model *m, int page_fd);
// Where the model stands with bwqd now (npu_model_bwq_status); *ret_d holds
// the page's decision when the state is NPU_BWQ_LIVE.
uint32_t model_bwq_state(const npu_model *m, npu_bwq_status *ret, bwq_decision *ret_d);
// The NPU_RUN_* flags of a run at the fallback depth in that state.
uint32_t bwq_state_run_flag(uint32_t state);
// Writes segment `seg`'s job for a run at these depths into its command
// buffer; tensors written before it (tensor_bits) are its inputs.
void model_write_job(npu_model *m, size_t seg, bool dynamic, unsigned fixed_bits);
// Reaps the job in flight (WAIT until `deadline`) and reads its results.
int model_finish(npu_model *m, int64_t deadline);
// Runs segments from `seg` on, leaving the last device job in flight.
int model_run_segments(npu_model *m, size_t seg);

} // namespace npu

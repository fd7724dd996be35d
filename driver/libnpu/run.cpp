// Running a model: the depth of this run from its mode and bwqd's page, the
// input quantized, SUBMIT, and the results and statistics read back.
#include <errno.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "common/depth.h"
#include "common/quant.h"
#include "model.h"

extern "C" int npu_model_submit(npu_model *m, const float *input)
{
        return npu_model_submit_inputs(m, &input, 1);
}

extern "C" int npu_model_submit_inputs(npu_model *m, const float *const *inputs, unsigned count)
{
        if (!m || !inputs || count != m->inputs.size())
                return -EINVAL;
        for (unsigned i = 0; i < count; i++)
                if (!inputs[i])
                        return -EINVAL;
        if (m->job_id)
                return -EBUSY;
        npu_run_stats st{};
        // bwqd's page, renewed when the link's changed (bwqd came, went or restarted).
        npu::BwqLink *link = m->mode != NPU_MODE_FIXED && !m->page_explicit && m->link_id ? m->dev->link.get() : nullptr;
        if (link && link->generation() != m->page_generation) {
                uint64_t gen;
                int fd = link->page(&gen);
                bwq::unique_fd owned(fd);
                // A page that cannot be imported leaves the model without one:
                // this run falls back (below) and the next one tries again.
                if (npu::model_attach_page(m, fd) >= 0)
                        m->page_generation = gen;
        }
        // BWQ_MODEL: a fresh sample for this run (reference claim 3).
        if (link && m->mode == NPU_MODE_BWQ_MODEL && m->page)
                (void)link->sample(50);
        bwq_decision d;
        bool have = m->mode != NPU_MODE_FIXED && m->page && bwq_page_read(m->page, &d) == 0 &&
                    !(d.flags & BWQ_PAGE_STOPPED) && d.act_bits;
        if (have) {
                st.available_bps = d.available_bps;
                st.section = d.section;
        }
        unsigned input_bits;
        bool dynamic = false;
        unsigned fixed = m->bits;
        if (m->mode == NPU_MODE_FIXED) {
                input_bits = m->bits;
        } else if (!have) {
                st.flags |= NPU_RUN_FALLBACK;
                input_bits = fixed = bwq::depth_clamp(m->bits, m->min_bits, m->max_bits);
        } else if (m->mode == NPU_MODE_BWQ_MODEL) {
                input_bits = fixed = bwq::depth_clamp(d.act_bits, m->min_bits, m->max_bits);
                st.model_bits = uint8_t(fixed);
        } else {
                input_bits = bwq::depth_clamp(d.act_bits, m->min_bits, m->max_bits);
                dynamic = true;
        }
        npu::model_write_job(m, input_bits, dynamic, fixed);

        int ii = bwq::depth_index(input_bits);
        for (unsigned i = 0; i < count; i++) {
                int in = m->inputs[i];
                bwq::QParams qp = bwq::qparams(m->ranges[in].lo[ii], m->ranges[in].hi[ii], input_bits);
                bwq::quantize_pack(inputs[i], m->tensors[in].elements(), qp, input_bits,
                                   static_cast<uint8_t *>(npu_bo_map(m->act_bo)) + m->tensor_offset[in]);
        }

        uint32_t handles[3] = {m->job_bo->handle, m->act_bo->handle, m->param_bo->handle};
        drm_npu_submit s{};
        s.bo_handles = uint64_t(uintptr_t(handles));
        s.bo_handle_count = 3;
        s.cmd_bo_index = 0;
        s.cmd_offset = 0;
        s.cmd_size = m->cmd_size;
        s.page_handle = dynamic ? m->page_handle : 0;
        s.flags = DRM_NPU_SUBMIT_FENCE_FD;
        int r = npu_ioctl(m->dev, DRM_IOCTL_NPU_SUBMIT, &s);
        if (r < 0)
                return r;
        m->job_id = s.job_id;
        m->fence.reset(s.out_fence_fd);
        m->pending = st;
        return 0;
}

// Output `index` of the finished run, dequantized at the depth its layer wrote.
static void read_output(const npu_model *m, unsigned index, float *output)
{
        int out = m->outputs[index];
        const auto &t = m->tensors[out];
        unsigned bits = m->last_layers[t.producer].bits;
        int i = bwq::depth_index(bits);
        bwq::QParams qp = bwq::qparams(m->ranges[out].lo[i], m->ranges[out].hi[i], bits);
        bwq::unpack_dequantize(static_cast<const uint8_t *>(npu_bo_map(m->act_bo)) + m->tensor_offset[out], t.elements(), qp,
                               bits, output);
}

int npu::model_finish(npu_model *m, int64_t deadline)
{
        if (!m->job_id)
                return m->have_result ? 0 : -ENOENT;
        drm_npu_wait w{};
        w.job_id = m->job_id;
        w.timeout_ns = deadline;
        int r = m->dev->ioctl(DRM_IOCTL_NPU_WAIT, &w);
        if (r < 0)
                return r;
        m->job_id = 0;
        m->fence.reset();
        if (w.job_status < 0)
                return w.job_status;
        const uint8_t *base = static_cast<const uint8_t *>(npu_bo_map(m->job_bo)) + m->result_offset;
        npu_job_result jr;
        std::memcpy(&jr, base, sizeof jr);
        if (jr.magic != NPU_RESULT_MAGIC || jr.layer_count != m->layers.size())
                return -EPROTO;
        npu_run_stats st = m->pending;
        st.layer_count = jr.layer_count;
        st.ns = jr.ns;
        st.min_layer_bits = 255;
        m->last_layers.assign(jr.layer_count, {});
        for (uint32_t l = 0; l < jr.layer_count; l++) {
                npu_layer_result lr;
                std::memcpy(&lr, base + sizeof jr + l * sizeof lr, sizeof lr);
                npu_layer_stats &ls = m->last_layers[l];
                ls.bits = lr.bits;
                ls.op = m->layers[l].op;
                ls.act_bytes_read = lr.act_bytes_read;
                ls.bytes_read = lr.act_bytes_read + lr.param_bytes_read;
                ls.bytes_written = lr.bytes_written;
                ls.ns = lr.ns;
                ls.start_ns = lr.start_ns;
                st.activation_bytes += lr.act_bytes_read + lr.bytes_written;
                st.weight_bytes += lr.param_bytes_read;
                st.min_layer_bits = std::min<uint8_t>(st.min_layer_bits, lr.bits);
                st.max_layer_bits = std::max<uint8_t>(st.max_layer_bits, lr.bits);
        }
        m->last = st;
        m->have_result = true;
        return 0;
}

extern "C" int npu_model_result(npu_model *m, float *output, npu_run_stats *ret_stats)
{
        if (!m)
                return -EINVAL;
        int r = npu::model_finish(m, 0);
        if (r < 0)
                return r;
        if (output)
                read_output(m, 0, output);
        if (ret_stats)
                *ret_stats = m->last;
        return 0;
}

extern "C" int npu_model_output(npu_model *m, unsigned index, float *output, size_t count)
{
        if (!m || !output || index >= m->outputs.size() || count != m->tensors[m->outputs[index]].elements())
                return -EINVAL;
        if (m->job_id)
                return -EBUSY;  // npu_model_result first
        if (!m->have_result)
                return -ENOENT;
        read_output(m, index, output);
        return 0;
}

extern "C" int npu_model_run_inputs(npu_model *m, const float *const *inputs, unsigned count, npu_run_stats *ret_stats)
{
        int r = npu_model_submit_inputs(m, inputs, count);
        if (r < 0)
                return r;
        r = npu::model_finish(m, INT64_MAX);
        if (r < 0)
                return r;
        return npu_model_result(m, nullptr, ret_stats);
}

extern "C" int npu_model_run(npu_model *m, const float *input, float *output, npu_run_stats *ret_stats)
{
        int r = npu_model_run_inputs(m, &input, 1, ret_stats);
        if (r < 0)
                return r;
        return npu_model_result(m, output, ret_stats);
}

extern "C" int npu_model_layer_stats(const npu_model *m, unsigned layer, npu_layer_stats *ret)
{
        if (!m || !ret || !m->have_result || layer >= m->last_layers.size())
                return -EINVAL;
        *ret = m->last_layers[layer];
        return 0;
}

extern "C" uint64_t npu_model_output_elements(const npu_model *m)
{
        return m ? m->tensors[m->outputs[0]].elements() : 0;
}

extern "C" unsigned npu_model_input_count(const npu_model *m) { return m ? unsigned(m->inputs.size()) : 0; }
extern "C" unsigned npu_model_output_count(const npu_model *m) { return m ? unsigned(m->outputs.size()) : 0; }

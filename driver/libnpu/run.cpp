// Running a model: the depth of this run from its mode and bwqd's page, the
// input quantized, SUBMIT, and the results and statistics read back.
#include <errno.h>

#include <algorithm>
#include <climits>
#include <cstring>

#include "common/clock.h"
#include "common/depth.h"
#include "common/quant.h"
#include "model.h"

extern "C" int npu_model_submit(npu_model *m, const float *input)
{
        return npu_model_submit_inputs(m, &input, 1);
}

static int submit_inputs(npu_model *m, const float *const *inputs, unsigned count, bool sync);

extern "C" int npu_model_submit_inputs(npu_model *m, const float *const *inputs, unsigned count)
{
        return submit_inputs(m, inputs, count, false);
}

// sync: the caller waits for the run's end before anything else.
static int submit_inputs(npu_model *m, const float *const *inputs, unsigned count, bool sync)
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
        npu_bwq_status bs{};
        const bool have = npu::model_bwq_state(m, &bs, &d) == NPU_BWQ_LIVE;
        if (m->mode != NPU_MODE_FIXED && !have)
                st.flags |= npu::bwq_state_run_flag(bs.state);
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
        // Inputs first: the jobs read them at input_bits.
        m->tensor_bits.assign(m->tensors.size(), 0);
        for (auto &v : m->host_float)
                v.clear();
        m->host_float.resize(m->tensors.size());
        for (unsigned i = 0; i < count; i++) {
                int in = m->inputs[i];
                // An input's own clamp, as a layer's: the more specific one wins.
                const npu::GraphTensor &t = m->tensors[in];
                unsigned lo = std::max(m->min_bits, t.min_bits), hi = std::min(m->max_bits, t.max_bits);
                if (lo > hi)
                        lo = t.min_bits, hi = t.max_bits;
                unsigned bits = dynamic ? bwq::depth_clamp(input_bits, lo, hi) : npu::fixed_depth(m, in, fixed, lo, hi);
                int ii = bwq::depth_index(bits);
                bwq::QParams qp = bwq::qparams(m->ranges[in].lo[ii], m->ranges[in].hi[ii], bits);
                bwq::quantize_pack(inputs[i], t.elements(), qp, bits,
                                   static_cast<uint8_t *>(npu_bo_map(m->act_bo)) + m->tensor_offset[in]);
                m->tensor_bits[in] = bits;
        }
        st.min_layer_bits = 255;
        m->pending = st;
        m->last_layers.assign(m->layers.size(), {});
        m->run_dynamic = dynamic;
        m->run_fixed = fixed;
        m->run_input_bits = input_bits;
        m->run_sync = sync;
        m->have_result = false;
        return npu::model_run_segments(m, 0);
}

namespace {

// A device segment's job, submitted; its fence kept for the wait.
int submit_segment(npu_model *m, size_t seg)
{
        const npu::Segment &sg = m->segments[seg];
        npu::model_write_job(m, seg, m->run_dynamic, m->run_fixed);
        uint32_t handles[3] = {sg.job->handle, m->act_bo->handle, m->param_bo->handle};
        drm_npu_submit s{};
        s.bo_handles = uint64_t(uintptr_t(handles));
        s.bo_handle_count = 3;
        s.cmd_bo_index = 0;
        s.cmd_offset = 0;
        s.cmd_size = sg.cmd_size;
        s.page_handle = m->run_dynamic ? m->page_handle : 0;
        // A job waited for at once (every segment but a submitted run's
        // last) needs no fence, and the device may run it in the WAIT.
        const bool waited = seg + 1 < m->segments.size() || m->run_sync;
        s.flags = waited ? DRM_NPU_SUBMIT_WAITED : DRM_NPU_SUBMIT_FENCE_FD;
        int r = npu_ioctl(m->dev, DRM_IOCTL_NPU_SUBMIT, &s);
        if (r < 0)
                return r;
        m->job_id = s.job_id;
        m->fence.reset(s.out_fence_fd);
        m->segment = seg;
        return 0;
}

// The finished job of device segment `seg`: its layers' statistics, and
// the depth each wrote its tensor at.
int read_segment(npu_model *m, size_t seg)
{
        const npu::Segment &sg = m->segments[seg];
        const uint8_t *base = static_cast<const uint8_t *>(npu_bo_map(sg.job)) + sg.result_offset;
        npu_job_result jr;
        std::memcpy(&jr, base, sizeof jr);
        if (jr.magic != NPU_RESULT_MAGIC || jr.layer_count != sg.last - sg.first)
                return -EPROTO;
        npu_run_stats &st = m->pending;
        st.ns += jr.ns;
        for (uint32_t k = 0; k < jr.layer_count; k++) {
                npu_layer_result lr;
                std::memcpy(&lr, base + sizeof jr + k * sizeof lr, sizeof lr);
                size_t l = sg.first + k;
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
                m->tensor_bits[m->layers[l].output] = lr.bits;
        }
        return 0;
}

// Host layer l: its inputs dequantized at the depths they were written at,
// the node's function, its output stored at the run's depth (clamped to
// the layer's limits).
int run_host(npu_model *m, size_t l)
{
        const npu::ModelLayer &L = m->layers[l];
        uint64_t t0 = bwq::monotonic_ns();
        std::vector<std::vector<float>> vals(L.inputs.size());
        std::vector<const float *> in;
        std::vector<npu_host_shape> shapes;
        uint64_t read = 0;
        const uint8_t *act = static_cast<const uint8_t *>(npu_bo_map(m->act_bo));
        for (size_t i = 0; i < L.inputs.size(); i++) {
                int t = L.inputs[i];
                const auto &x = m->tensors[t];
                if (!m->host_float[t].empty()) {  // another host node's: as it computed it
                        in.push_back(m->host_float[t].data());
                        shapes.push_back({x.n, x.h, x.w, x.c});
                        continue;
                }
                unsigned bits = m->tensor_bits[t];
                if (!bits)
                        return -EPROTO;  // not written: the graph's order is broken
                int bi = bwq::depth_index(bits);
                vals[i].resize(x.elements());
                bwq::unpack_dequantize(act + m->tensor_offset[t], x.elements(),
                                       bwq::qparams(m->ranges[t].lo[bi], m->ranges[t].hi[bi], bits), bits, vals[i].data());
                in.push_back(vals[i].data());
                shapes.push_back({x.n, x.h, x.w, x.c});
                read += bwq::packed_bytes(x.elements(), bits);
        }
        std::vector<float> out(m->tensors[L.output].elements());
        int r = L.host_fn(L.host_user, in.data(), shapes.data(), unsigned(in.size()), out.data());
        if (r < 0)
                return r;
        unsigned lo = std::max(m->min_bits, L.min_bits), hi = std::min(m->max_bits, L.max_bits);
        if (lo > hi)
                lo = L.min_bits, hi = L.max_bits;
        unsigned bits = m->run_dynamic ? bwq::depth_clamp(m->run_input_bits, lo, hi) : npu::fixed_depth(m, L.output, m->run_fixed, lo, hi);
        int bo = bwq::depth_index(bits);
        bwq::quantize_pack(out.data(), out.size(), bwq::qparams(m->ranges[L.output].lo[bo], m->ranges[L.output].hi[bo], bits),
                           bits, static_cast<uint8_t *>(npu_bo_map(m->act_bo)) + m->tensor_offset[L.output]);
        m->tensor_bits[L.output] = bits;
        uint64_t written = bwq::packed_bytes(out.size(), bits), ns = bwq::monotonic_ns() - t0;
        m->host_float[L.output] = std::move(out);
        npu_layer_stats &ls = m->last_layers[l];
        ls.bits = bits;
        ls.op = NPU_LAYER_HOST;
        ls.act_bytes_read = ls.bytes_read = read;
        ls.bytes_written = written;
        ls.ns = ns;
        ls.start_ns = t0;
        npu_run_stats &st = m->pending;
        st.activation_bytes += read + written;
        st.ns += ns;
        st.host_layers++;
        st.min_layer_bits = std::min<uint8_t>(st.min_layer_bits, uint8_t(bits));
        st.max_layer_bits = std::max<uint8_t>(st.max_layer_bits, uint8_t(bits));
        return 0;
}

void finish_run(npu_model *m)
{
        m->pending.layer_count = uint32_t(m->layers.size());
        m->last = m->pending;
        m->have_result = true;
        // What the run moved, as the device counted it, for bwqd to tell
        // this client's traffic from others' (DESIGN §4.3).
        if (m->link_id && m->dev->link && m->mode != NPU_MODE_FIXED)
                m->dev->link->add_traffic(m->link_id, m->pending.activation_bytes + m->pending.weight_bytes);
}

} // namespace

// Segments from `seg` on: host layers and every device job but the last
// one run here, waited for; the last job is left in flight (job_id).
int npu::model_run_segments(npu_model *m, size_t seg)
{
        for (; seg < m->segments.size(); seg++) {
                const Segment &sg = m->segments[seg];
                int r;
                if (sg.host) {
                        if ((r = run_host(m, sg.first)) < 0)
                                return r;
                        continue;
                }
                if ((r = submit_segment(m, seg)) < 0)
                        return r;
                if (seg + 1 == m->segments.size())
                        return 0;
                if ((r = model_finish(m, INT64_MAX)) < 0)
                        return r;
        }
        finish_run(m);
        return 0;
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
        if ((r = read_segment(m, m->segment)) < 0)
                return r;
        if (m->segment + 1 == m->segments.size())
                finish_run(m);
        return 0;
}

// Output `index` of the finished run, dequantized at the depth it was written at.
static void read_tensor(const npu_model *m, int out, float *output)
{
        const auto &t = m->tensors[out];
        if (!m->host_float[out].empty()) {  // a host node's, as it computed it
                std::memcpy(output, m->host_float[out].data(), t.elements() * sizeof(float));
                return;
        }
        unsigned bits = m->tensor_bits[out];
        int i = bwq::depth_index(bits);
        bwq::QParams qp = bwq::qparams(m->ranges[out].lo[i], m->ranges[out].hi[i], bits);
        bwq::unpack_dequantize(static_cast<const uint8_t *>(npu_bo_map(m->act_bo)) + m->tensor_offset[out], t.elements(), qp,
                               bits, output);
}

static void read_output(const npu_model *m, unsigned index, float *output) { read_tensor(m, m->outputs[index], output); }

extern "C" int npu_model_tensor(npu_model *m, int tensor, float *output, size_t count)
{
        if (!m || !output || tensor < 0 || size_t(tensor) >= m->tensors.size() || count != m->tensors[tensor].elements())
                return -EINVAL;
        if (m->job_id)
                return -EBUSY;
        if (!m->have_result)
                return -ENOENT;
        if (!m->tensor_bits[tensor] && m->host_float[tensor].empty())
                return -ENODATA;
        read_tensor(m, tensor, output);
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
        int r = submit_inputs(m, inputs, count, true);
        if (r < 0)
                return r;
        r = npu::model_finish(m, INT64_MAX);
        if (r < 0)
                return r;
        return npu_model_result(m, nullptr, ret_stats);
}

extern "C" int npu_model_run(npu_model *m, const float *input, float *output, npu_run_stats *ret_stats)
{
        int r = npu_model_run_inputs(m, &input, 1, nullptr);
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

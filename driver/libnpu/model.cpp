// Models: compile a graph into buffer objects and a job, run it at the
// depth the mode asks for, wait on many models through io_uring.
#include <errno.h>
#include <poll.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <climits>
#include <cstring>
#include <atomic>
#include <memory>
#include <string>
#include <liburing.h>

#include "bwq_link.h"
#include "bwq_page.h"
#include "internal.h"
#include "job.h"
#include "quant.h"

namespace {

constexpr uint64_t kAlign = 64;
uint64_t align_up(uint64_t v) { return (v + kAlign - 1) / kAlign * kAlign; }

bool depth_ok(unsigned b) { return npuref::bits_supported(b); }

// The supported depth for a request, clamped to [lo, hi] (both supported).
unsigned snap_bits(unsigned want, unsigned lo, unsigned hi)
{
        want = std::clamp(want, lo, hi);
        for (unsigned b : {16u, 8u, 6u, 4u})
                if (b <= want && b >= lo)
                        return b;
        return lo;
}

int64_t monotonic_ns()
{
        timespec ts;
        clock_gettime(CLOCK_MONOTONIC, &ts);
        return int64_t(ts.tv_sec) * 1000000000ll + ts.tv_nsec;
}

struct ModelLayer {
        uint16_t op;
        uint8_t act;
        std::vector<int> inputs;
        int output;
        npu_conv2d_params conv;
        npu_pool_params pool;
        unsigned min_bits, max_bits;
        uint64_t weight_offset = 0, weight_size = 0, scale_offset = 0, bias_offset = 0;
};

} // namespace

struct npu_model {
        npu_device *dev = nullptr;
        std::vector<npu::GraphTensor> tensors;
        std::vector<ModelLayer> layers;
        std::vector<npu::Ranges> ranges;
        std::vector<uint64_t> tensor_offset;
        int input = -1, output = -1;
        npu_bo *job_bo = nullptr, *act_bo = nullptr, *param_bo = nullptr;
        uint64_t cmd_size = 0, result_offset = 0;

        uint32_t mode = NPU_MODE_FIXED;
        unsigned bits = 8, min_bits = 4, max_bits = 16;

        uint32_t page_handle = 0;
        const bwq_page *page = nullptr;
        bool page_explicit = false;  // set by npu_model_set_decision_page()
        uint64_t page_generation = 0;  // of the link's page in use
        std::string name = "npu-model";
        uint64_t link_id = 0;

        // The job in flight, if any.
        uint32_t job_id = 0;
        int fence = -1;
        npu_run_stats pending{};

        npu_run_stats last{};
        std::vector<npu_layer_stats> last_layers;
        bool have_result = false;

        ~npu_model()
        {
                if (link_id && dev->link)
                        dev->link->remove_client(link_id);
                if (fence >= 0)
                        close(fence);
                if (page)
                        munmap(const_cast<bwq_page *>(page), BWQ_PAGE_SIZE);
                if (page_handle) {
                        drm_gem_close gc{page_handle, 0};
                        (void)dev->ioctl(DRM_IOCTL_GEM_CLOSE, &gc);
                }
                npu_bo_free(job_bo);
                npu_bo_free(act_bo);
                npu_bo_free(param_bo);
        }
};

extern "C" int npu_model_compile(npu_device *dev, const npu_graph *g, const npu_compile_options *opts,
                                 npu_model **ret)
{
        if (!dev || !g || !opts || !opts->calibration_input || !ret || g->input < 0 || g->layers.empty())
                return -EINVAL;
        auto m = std::make_unique<npu_model>();
        m->dev = dev;
        if (opts->name) {
                size_t n = strlen(opts->name);
                if (n == 0 || n > 64)
                        return -EINVAL;
                m->name = opts->name;
        }
        m->tensors = g->tensors;
        m->input = g->input;
        m->output = g->output >= 0 ? g->output : g->layers.back().output;

        std::vector<std::vector<float>> values;
        npu::reference_forward(*g, opts->calibration_input, values);
        for (const auto &v : values)
                m->ranges.push_back(npu::calibrate_ranges(v));

        // Activations: every tensor its own region, sized for 16 bits.
        uint64_t act_size = 0;
        for (const auto &t : m->tensors) {
                m->tensor_offset.push_back(act_size);
                act_size = align_up(act_size + npuref::packed_bytes(t.elements(), 16));
        }
        // Parameters: weights, scales, bias of each conv/FC layer.
        std::vector<npu::PackedWeights> packed;
        uint64_t param_size = 0;
        for (const auto &L : g->layers) {
                ModelLayer ml{L.op, L.act, L.inputs, L.output, L.conv, L.pool, L.min_bits, L.max_bits};
                if (L.op == NPU_OP_CONV2D || L.op == NPU_OP_FULLY_CONNECTED) {
                        const auto &x = g->tensors[L.inputs[0]];
                        uint32_t cin = L.op == NPU_OP_FULLY_CONNECTED ? x.h * x.w * x.c : x.c;
                        packed.push_back(npu::pack_weights(L, cin));
                        const auto &pw = packed.back();
                        ml.weight_offset = param_size;
                        ml.weight_size = pw.data.size();
                        param_size = align_up(param_size + pw.data.size());
                        ml.scale_offset = param_size;
                        param_size = align_up(param_size + 4 * pw.scale.size());
                        ml.bias_offset = param_size;
                        param_size = align_up(param_size + 4 * L.bias.size());
                }
                m->layers.push_back(ml);
        }
        m->cmd_size = sizeof(npu_job_header) + m->tensors.size() * sizeof(npu_tensor_desc) +
                      m->layers.size() * sizeof(npu_layer_desc);
        m->result_offset = align_up(m->cmd_size);
        uint64_t job_size = m->result_offset + sizeof(npu_job_result) + m->layers.size() * sizeof(npu_layer_result);

        int r;
        if ((r = npu_bo_create(dev, job_size, &m->job_bo)) < 0 || (r = npu_bo_create(dev, act_size, &m->act_bo)) < 0 ||
            (r = npu_bo_create(dev, std::max<uint64_t>(param_size, kAlign), &m->param_bo)) < 0)
                return r;
        uint8_t *pbase = static_cast<uint8_t *>(npu_bo_map(m->param_bo));
        size_t pi = 0;
        for (size_t l = 0; l < g->layers.size(); l++) {
                const auto &L = g->layers[l];
                if (L.op != NPU_OP_CONV2D && L.op != NPU_OP_FULLY_CONNECTED)
                        continue;
                const auto &pw = packed[pi++];
                const ModelLayer &ml = m->layers[l];
                std::memcpy(pbase + ml.weight_offset, pw.data.data(), pw.data.size());
                std::memcpy(pbase + ml.scale_offset, pw.scale.data(), 4 * pw.scale.size());
                std::memcpy(pbase + ml.bias_offset, L.bias.data(), 4 * L.bias.size());
        }
        *ret = m.release();
        return 0;
}

extern "C" void npu_model_free(npu_model *m) { delete m; }

extern "C" int npu_model_set_mode(npu_model *m, uint32_t mode, unsigned bits, unsigned min_bits, unsigned max_bits)
{
        if (!m || mode > NPU_MODE_BWQ_LAYER || !depth_ok(bits) || !depth_ok(min_bits) || !depth_ok(max_bits) ||
            min_bits > max_bits)
                return -EINVAL;
        m->mode = mode;
        m->bits = bits;
        m->min_bits = min_bits;
        m->max_bits = max_bits;
        static std::atomic<uint64_t> next_id{1};
        if (mode != NPU_MODE_FIXED) {
                if (npu::BwqLink *link = m->dev->bwq_link()) {
                        if (!m->link_id)
                                m->link_id = next_id++;
                        link->add_client(m->link_id, m->name, min_bits, max_bits);
                }
        } else if (m->link_id && m->dev->link) {
                m->dev->link->remove_client(m->link_id);
                m->link_id = 0;
        }
        return 0;
}

static int attach_page(npu_model *m, int page_fd);

extern "C" int npu_model_set_decision_page(npu_model *m, int page_fd)
{
        if (!m)
                return -EINVAL;
        if (m->job_id)
                return -EBUSY;
        int r = attach_page(m, page_fd);
        if (r >= 0) {
                m->page_explicit = page_fd >= 0;
                m->page_generation = 0;
        }
        return r;
}

// Maps and imports a decision page for the model (-1: none).
static int attach_page(npu_model *m, int page_fd)
{
        if (m->page) {
                munmap(const_cast<bwq_page *>(m->page), BWQ_PAGE_SIZE);
                m->page = nullptr;
        }
        if (m->page_handle) {
                drm_gem_close gc{m->page_handle, 0};
                (void)m->dev->ioctl(DRM_IOCTL_GEM_CLOSE, &gc);
                m->page_handle = 0;
        }
        if (page_fd < 0)
                return 0;
        drm_npu_bo_create c{};
        c.flags = DRM_NPU_BO_IMPORT_DECISION_PAGE;
        c.fd = page_fd;
        int r = m->dev->ioctl(DRM_IOCTL_NPU_BO_CREATE, &c);
        if (r < 0)
                return r;
        void *p = mmap(nullptr, BWQ_PAGE_SIZE, PROT_READ, MAP_SHARED, page_fd, 0);
        if (p == MAP_FAILED) {
                r = -errno;
                drm_gem_close gc{c.handle, 0};
                (void)m->dev->ioctl(DRM_IOCTL_GEM_CLOSE, &gc);
                return r;
        }
        m->page_handle = c.handle;
        m->page = static_cast<const bwq_page *>(p);
        return 0;
}

// Writes the job for this run's depths into the command buffer.
static void write_job(npu_model *m, unsigned input_bits, bool dynamic, unsigned fixed_bits)
{
        uint8_t *base = static_cast<uint8_t *>(npu_bo_map(m->job_bo));
        npu_job_header h{};
        h.magic = NPU_JOB_MAGIC;
        h.version = NPU_JOB_VERSION;
        h.header_size = sizeof(npu_job_header);
        h.tensor_count = uint32_t(m->tensors.size());
        h.tensor_size = sizeof(npu_tensor_desc);
        h.layer_count = uint32_t(m->layers.size());
        h.layer_size = sizeof(npu_layer_desc);
        h.result_bo_index = 0;
        h.result_offset = m->result_offset;
        std::memcpy(base, &h, sizeof h);
        uint8_t *p = base + sizeof h;
        for (size_t i = 0; i < m->tensors.size(); i++) {
                const auto &t = m->tensors[i];
                npu_tensor_desc d{};
                d.bo_index = 1;
                d.bits = uint8_t(int(i) == m->input ? input_bits : 0);
                d.offset = m->tensor_offset[i];
                d.capacity = npuref::packed_bytes(t.elements(), 16);
                d.n = t.n, d.h = t.h, d.w = t.w, d.c = t.c;
                std::memcpy(d.lo, m->ranges[i].lo, sizeof d.lo);
                std::memcpy(d.hi, m->ranges[i].hi, sizeof d.hi);
                std::memcpy(p, &d, sizeof d);
                p += sizeof d;
        }
        for (const auto &L : m->layers) {
                npu_layer_desc d{};
                d.op = L.op;
                d.act = L.act;
                unsigned lo = std::max(m->min_bits, L.min_bits), hi = std::min(m->max_bits, L.max_bits);
                if (lo > hi) // the layer's own range is the more specific
                        lo = L.min_bits, hi = L.max_bits;
                if (dynamic) {
                        d.policy = NPU_POLICY_DYNAMIC;
                        d.min_bits = uint8_t(lo);
                        d.max_bits = uint8_t(hi);
                } else {
                        d.policy = NPU_POLICY_FIXED;
                        d.bits = uint8_t(m->mode == NPU_MODE_FIXED ? fixed_bits : snap_bits(fixed_bits, lo, hi));
                }
                d.input_count = uint8_t(L.inputs.size());
                for (unsigned i = 0; i < NPU_MAX_INPUTS; i++)
                        d.inputs[i] = i < L.inputs.size() ? uint32_t(L.inputs[i]) : NPU_TENSOR_NONE;
                d.output = uint32_t(L.output);
                if (L.op == NPU_OP_CONV2D) {
                        d.kernel_h = uint16_t(L.conv.kernel_h), d.kernel_w = uint16_t(L.conv.kernel_w);
                        d.stride_h = uint16_t(L.conv.stride_h), d.stride_w = uint16_t(L.conv.stride_w);
                        d.dilation_h = uint16_t(L.conv.dilation_h), d.dilation_w = uint16_t(L.conv.dilation_w);
                        d.pad_top = uint16_t(L.conv.pad_top), d.pad_left = uint16_t(L.conv.pad_left);
                        d.pad_bottom = uint16_t(L.conv.pad_bottom), d.pad_right = uint16_t(L.conv.pad_right);
                } else if (L.op == NPU_OP_MAXPOOL || L.op == NPU_OP_AVGPOOL) {
                        d.kernel_h = uint16_t(L.pool.kernel_h), d.kernel_w = uint16_t(L.pool.kernel_w);
                        d.stride_h = uint16_t(L.pool.stride_h), d.stride_w = uint16_t(L.pool.stride_w);
                        d.dilation_h = d.dilation_w = 1;
                        d.pad_top = uint16_t(L.pool.pad_top), d.pad_left = uint16_t(L.pool.pad_left);
                        d.pad_bottom = uint16_t(L.pool.pad_bottom), d.pad_right = uint16_t(L.pool.pad_right);
                }
                if (L.op == NPU_OP_CONV2D || L.op == NPU_OP_FULLY_CONNECTED) {
                        d.groups = L.op == NPU_OP_CONV2D ? L.conv.groups : 1;
                        d.param_bo_index = 2;
                        d.weight_offset = L.weight_offset;
                        d.weight_size = L.weight_size;
                        d.scale_offset = L.scale_offset;
                        d.bias_offset = L.bias_offset;
                }
                std::memcpy(p, &d, sizeof d);
                p += sizeof d;
        }
}

extern "C" int npu_model_submit(npu_model *m, const float *input)
{
        if (!m || !input)
                return -EINVAL;
        if (m->job_id)
                return -EBUSY;
        npu_run_stats st{};
        // bwqd's page, renewed when the link's changed (bwqd came, went or restarted).
        npu::BwqLink *link = m->mode != NPU_MODE_FIXED && !m->page_explicit && m->link_id ? m->dev->link.get() : nullptr;
        if (link && link->generation() != m->page_generation) {
                uint64_t gen;
                int fd = link->page(&gen);
                if (attach_page(m, fd) >= 0)
                        m->page_generation = gen;
                if (fd >= 0)
                        close(fd);
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
                input_bits = fixed = snap_bits(m->bits, m->min_bits, m->max_bits);
        } else if (m->mode == NPU_MODE_BWQ_MODEL) {
                input_bits = fixed = snap_bits(d.act_bits, m->min_bits, m->max_bits);
                st.model_bits = uint8_t(fixed);
        } else {
                input_bits = snap_bits(d.act_bits, m->min_bits, m->max_bits);
                dynamic = true;
        }
        write_job(m, input_bits, dynamic, fixed);

        const auto &t = m->tensors[m->input];
        int ii = npuref::bits_index(input_bits);
        npuref::QParams qp = npuref::qparams(m->ranges[m->input].lo[ii], m->ranges[m->input].hi[ii], input_bits);
        npuref::quantize_pack(input, t.elements(), qp, input_bits,
                              static_cast<uint8_t *>(npu_bo_map(m->act_bo)) + m->tensor_offset[m->input]);

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
        m->fence = s.out_fence_fd;
        m->pending = st;
        return 0;
}

// Reaps the job in flight (WAIT until `deadline`) and reads its results.
static int finish(npu_model *m, int64_t deadline)
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
        if (m->fence >= 0) {
                close(m->fence);
                m->fence = -1;
        }
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
        int r = finish(m, 0);
        if (r < 0)
                return r;
        if (output) {
                const auto &t = m->tensors[m->output];
                int producer = t.producer;
                unsigned bits = m->last_layers[producer].bits;
                int i = npuref::bits_index(bits);
                npuref::QParams qp = npuref::qparams(m->ranges[m->output].lo[i], m->ranges[m->output].hi[i], bits);
                npuref::unpack_dequantize(static_cast<const uint8_t *>(npu_bo_map(m->act_bo)) + m->tensor_offset[m->output],
                                          t.elements(), qp, bits, output);
        }
        if (ret_stats)
                *ret_stats = m->last;
        return 0;
}

extern "C" int npu_model_run(npu_model *m, const float *input, float *output, npu_run_stats *ret_stats)
{
        int r = npu_model_submit(m, input);
        if (r < 0)
                return r;
        r = finish(m, INT64_MAX);
        if (r < 0)
                return r;
        return npu_model_result(m, output, ret_stats);
}

extern "C" int npu_wait_many(npu_model *const *models, unsigned count, int64_t deadline_ns)
{
        if (!models || count == 0 || count > 4096)
                return -EINVAL;
        io_uring ring;
        int r = io_uring_queue_init(std::min(count, 256u) * 2, &ring, 0);
        if (r < 0)
                return r;
        unsigned pending = 0, queued = 0;
        auto queue_polls = [&]() {
                // Queue as many polls as the ring holds; the rest follow as slots free.
                for (; queued < count; queued++) {
                        npu_model *m = models[queued];
                        if (!m || !m->job_id || m->fence < 0)
                                continue;
                        io_uring_sqe *sqe = io_uring_get_sqe(&ring);
                        if (!sqe)
                                break;
                        io_uring_prep_poll_add(sqe, m->fence, POLLIN);
                        io_uring_sqe_set_data64(sqe, queued);
                        pending++;
                }
                return io_uring_submit(&ring);
        };
        r = queue_polls();
        while (r >= 0 && pending > 0) {
                int64_t left = deadline_ns - monotonic_ns();
                if (left <= 0) {
                        r = -ETIME;
                        break;
                }
                __kernel_timespec ts{left / 1000000000ll, left % 1000000000ll};
                io_uring_cqe *cqe;
                r = io_uring_wait_cqe_timeout(&ring, &cqe, &ts);
                if (r == -EINTR) {
                        r = 0;
                        continue;
                }
                if (r < 0)
                        break;
                unsigned head, seen = 0;
                io_uring_for_each_cqe(&ring, head, cqe)
                {
                        seen++;
                        pending--;
                }
                io_uring_cq_advance(&ring, seen);
                if (queued < count)
                        r = queue_polls();
        }
        io_uring_queue_exit(&ring);
        if (r < 0)
                return r == -ETIME ? -ETIME : r;
        for (unsigned i = 0; i < count; i++)
                if (models[i] && models[i]->job_id && (r = finish(models[i], 0)) < 0)
                        return r;
        return 0;
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
        return m ? m->tensors[m->output].elements() : 0;
}

extern "C" const char *npu_job_error_name(uint32_t code) { return npuref::job_error_name(code); }

// A model's depth mode (FIXED, BWQ_MODEL, BWQ_LAYER), its registration
// with bwqd, and the decision page its DYNAMIC layers read.
#include <errno.h>
#include <sys/mman.h>

#include <atomic>
#include <cstdio>

#include "common/clock.h"
#include "common/depth.h"
#include "model.h"

extern "C" int npu_model_set_mode(npu_model *m, uint32_t mode, unsigned bits, unsigned min_bits, unsigned max_bits)
{
        if (!m || mode > NPU_MODE_BWQ_LAYER || !bwq::depth_supported(bits) || !bwq::depth_supported(min_bits) || !bwq::depth_supported(max_bits) ||
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

extern "C" int npu_model_set_decision_page(npu_model *m, int page_fd)
{
        if (!m)
                return -EINVAL;
        if (m->job_id)
                return -EBUSY;
        int r = npu::model_attach_page(m, page_fd);
        if (r >= 0) {
                m->page_explicit = page_fd >= 0;
                m->page_generation = 0;
        }
        return r;
}

int npu::model_attach_page(npu_model *m, int page_fd)
{
        // The new page is imported and mapped before the old one goes: a
        // page that is refused (not sealed, not a page) leaves the model
        // with the one it had.
        uint32_t handle = 0;
        bwq::Mapping p;
        if (page_fd >= 0) {
                drm_npu_bo_create c{};
                c.flags = DRM_NPU_BO_IMPORT_DECISION_PAGE;
                c.fd = page_fd;
                int r = m->dev->ioctl(DRM_IOCTL_NPU_BO_CREATE, &c);
                if (r < 0)
                        return r;
                p = bwq::Mapping::map(BWQ_PAGE_SIZE, PROT_READ, MAP_SHARED, page_fd, 0);
                if (!p) {
                        r = -errno;
                        drm_gem_close gc{c.handle, 0};
                        (void)m->dev->ioctl(DRM_IOCTL_GEM_CLOSE, &gc);
                        return r;
                }
                handle = c.handle;
        }
        m->page_map.reset();
        m->page = nullptr;
        if (m->page_handle) {
                drm_gem_close gc{m->page_handle, 0};
                (void)m->dev->ioctl(DRM_IOCTL_GEM_CLOSE, &gc);
        }
        m->page_handle = handle;
        if (handle) {
                m->page = p.as<const bwq_page>();
                m->page_map = std::move(p);
        }
        return 0;
}

uint32_t npu::model_bwq_state(const npu_model *m, npu_bwq_status *ret, bwq_decision *ret_d)
{
        *ret = {};
        if (m->mode == NPU_MODE_FIXED)
                return ret->state = NPU_BWQ_UNLINKED;
        npu::BwqLink *link = !m->page_explicit && m->link_id ? m->dev->link.get() : nullptr;
        npu::BwqLink::Status ls;
        if (link) {
                ls = link->status(m->link_id);
                ret->refusals = ls.refusals;
                ret->retry_in_ns = ls.retry_in_ns;
                snprintf(ret->reason, sizeof ret->reason, "%s", ls.reason.c_str());
        }
        const bool page_ok = m->page && bwq_page_read(m->page, ret_d) == 0;
        const uint64_t now = bwq::monotonic_ns();
        if (page_ok) {
                uint64_t t = ret_d->published_ns ? ret_d->published_ns : ret_d->timestamp_ns;
                ret->page_age_ns = now > t ? now - t : 0;
        }
        // bwqd's answer to this model's own registration comes first: a
        // refused model does not use the page another model's brought.
        if (link && ls.state != npu::BwqLink::State::Registered) {
                switch (ls.state) {
                case npu::BwqLink::State::Pending: return ret->state = NPU_BWQ_PENDING;
                case npu::BwqLink::State::Refused: return ret->state = NPU_BWQ_REFUSED;
                default: return ret->state = NPU_BWQ_NO_BWQD;
                }
        }
        if (!link && !m->page_explicit)
                return ret->state = NPU_BWQ_NO_BWQD;
        if (!page_ok)
                return ret->state = link ? NPU_BWQ_PENDING : NPU_BWQ_NO_BWQD;
        if ((ret_d->flags & BWQ_PAGE_STOPPED) || !ret_d->act_bits)
                return ret->state = NPU_BWQ_NO_BWQD;
        if (bwq_decision_frozen(ret_d, now))
                return ret->state = NPU_BWQ_STALE;
        return ret->state = NPU_BWQ_LIVE;
}

uint32_t npu::bwq_state_run_flag(uint32_t state)
{
        switch (state) {
        case NPU_BWQ_NO_BWQD: return NPU_RUN_FALLBACK | NPU_RUN_NO_BWQD;
        case NPU_BWQ_PENDING: return NPU_RUN_FALLBACK | NPU_RUN_PENDING;
        case NPU_BWQ_REFUSED: return NPU_RUN_FALLBACK | NPU_RUN_REFUSED;
        case NPU_BWQ_STALE: return NPU_RUN_FALLBACK | NPU_RUN_STALE;
        default: return 0;
        }
}

extern "C" int npu_model_bwq_status(const npu_model *m, npu_bwq_status *ret)
{
        if (!m || !ret)
                return -EINVAL;
        bwq_decision d;
        npu::model_bwq_state(m, ret, &d);
        return 0;
}

extern "C" const char *npu_bwq_state_name(uint32_t state)
{
        static const char *const names[] = {"unlinked", "live", "no bwqd", "pending", "refused", "stale"};
        return state < sizeof names / sizeof names[0] ? names[state] : nullptr;
}

extern "C" int npu_model_set_tensor_bits(npu_model *m, int tensor, unsigned bits)
{
        if (!m || tensor < 0 || size_t(tensor) >= m->tensors.size() || (bits && !bwq::depth_supported(bits)))
                return -EINVAL;
        if (m->job_id)
                return -EBUSY;
        m->tensor_fixed[tensor] = bits;
        return 0;
}

extern "C" int npu_model_set_tensor_range(npu_model *m, int tensor, unsigned bits, float lo, float hi)
{
        if (!m || tensor < 0 || size_t(tensor) >= m->tensors.size() || !bwq::depth_supported(bits) ||
            !npu::range_valid(lo, hi))
                return -EINVAL;
        if (m->job_id)
                return -EBUSY;
        int i = bwq::depth_index(bits);
        m->ranges[tensor].lo[i] = lo;
        m->ranges[tensor].hi[i] = hi;
        return 0;
}

extern "C" int npu_model_tensor_range(const npu_model *m, int tensor, unsigned bits, float *ret_lo, float *ret_hi)
{
        if (!m || tensor < 0 || size_t(tensor) >= m->tensors.size() || !bwq::depth_supported(bits) || !ret_lo || !ret_hi)
                return -EINVAL;
        int i = bwq::depth_index(bits);
        *ret_lo = m->ranges[tensor].lo[i];
        *ret_hi = m->ranges[tensor].hi[i];
        return 0;
}

void npu::write_bias_rows(npu_model *m, size_t l, const float *delta)
{
        const npu::ModelLayer &L = m->layers[l];
        size_t C = L.bias.size();
        float *rows = reinterpret_cast<float *>(static_cast<uint8_t *>(npu_bo_map(m->param_bo)) + L.bias_offset);
        for (size_t d = 0; d < NPU_BITS_COUNT; d++)
                for (size_t c = 0; c < C; c++)
                        rows[d * C + c] = L.bias[c] + (delta ? delta[d * C + c] : 0.0f);
}

extern "C" int npu_model_set_bias_correction(npu_model *m, int tensor, const float *delta, size_t count)
{
        if (!m || tensor < 0 || size_t(tensor) >= m->tensors.size() || m->tensors[tensor].producer < 0)
                return -EINVAL;
        if (m->job_id)
                return -EBUSY;
        size_t l = size_t(m->tensors[tensor].producer);
        npu::ModelLayer &L = m->layers[l];
        if (!npu::bias_delta_valid(L.op, L.bias.size(), delta, count))
                return -EINVAL;
        npu::write_bias_rows(m, l, delta);
        L.flags = delta ? NPU_LAYER_BIAS_PER_DEPTH : 0;
        return 0;
}

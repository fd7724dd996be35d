// Job validation (DESIGN §5.4): nothing in a job is trusted.
#include <cerrno>
#include <cmath>
#include <cstring>

#include "job.h"
#include "common/quant.h"

namespace npuref {

namespace {

struct Fail {
        int err;
        uint32_t code;
        uint32_t index;
};

bool is_zero(const void *p, size_t n)
{
        const uint8_t *b = static_cast<const uint8_t *>(p);
        for (size_t i = 0; i < n; i++)
                if (b[i])
                        return false;
        return true;
}

// [off, off + len) inside a BO of `size`, without overflow.
bool in_bounds(uint64_t off, uint64_t len, uint64_t size) { return off <= size && len <= size - off; }

bool overlaps(uint32_t bo_a, uint64_t off_a, uint64_t len_a, uint32_t bo_b, uint64_t off_b, uint64_t len_b)
{
        return bo_a == bo_b && len_a && len_b && off_a < off_b + len_b && off_b < off_a + len_a;
}

struct Validator {
        const BufferView *bos;
        size_t nbos;
        bool have_page;
        Job &job;
        std::vector<int32_t> producer;  // per tensor: -2 job input, -1 unwritten, else layer

        Fail check_header(const npu_job_header &h, size_t size)
        {
                if (h.magic != NPU_JOB_MAGIC || h.version != NPU_JOB_VERSION ||
                    h.header_size != sizeof(npu_job_header) || h.tensor_size != sizeof(npu_tensor_desc) ||
                    h.layer_size != sizeof(npu_layer_desc))
                        return {-EINVAL, DRM_NPU_JOB_ERR_BAD_HEADER, 0};
                if (h.flags || !is_zero(h.reserved, sizeof h.reserved))
                        return {-EINVAL, DRM_NPU_JOB_ERR_RESERVED, 0};
                if (h.layer_count == 0 || h.tensor_count == 0)
                        return {-EINVAL, DRM_NPU_JOB_ERR_BAD_HEADER, 0};
                if (h.layer_count > kMaxLayers || h.tensor_count > kMaxTensors)
                        return {-E2BIG, DRM_NPU_JOB_ERR_TOO_MANY, 0};
                uint64_t want = sizeof(npu_job_header) + uint64_t(h.tensor_count) * sizeof(npu_tensor_desc) +
                                uint64_t(h.layer_count) * sizeof(npu_layer_desc);
                if (want != size)
                        return {-EINVAL, DRM_NPU_JOB_ERR_BAD_HEADER, 0};
                if (h.result_bo_index >= nbos)
                        return {-EINVAL, DRM_NPU_JOB_ERR_BAD_BO_INDEX, 0};
                uint64_t rlen = sizeof(npu_job_result) + uint64_t(h.layer_count) * sizeof(npu_layer_result);
                if (h.result_offset % 8 || !in_bounds(h.result_offset, rlen, bos[h.result_bo_index].size))
                        return {-EINVAL, DRM_NPU_JOB_ERR_OUT_OF_BOUNDS, 0};
                return {0, 0, 0};
        }

        Fail check_tensor(uint32_t i)
        {
                const npu_tensor_desc &t = job.tensors[i];
                if (!is_zero(t.pad0, sizeof t.pad0) || t.reserved)
                        return {-EINVAL, DRM_NPU_JOB_ERR_RESERVED, i};
                if (t.bo_index >= nbos)
                        return {-EINVAL, DRM_NPU_JOB_ERR_BAD_BO_INDEX, i};
                if (!t.n || !t.h || !t.w || !t.c)
                        return {-EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, i};
                uint64_t e = tensor_elements(t);
                if (e > kMaxElements)
                        return {-E2BIG, DRM_NPU_JOB_ERR_TOO_MANY, i};
                if (t.bits && !bwq::depth_supported(t.bits))
                        return {-EINVAL, DRM_NPU_JOB_ERR_BAD_BITS, i};
                if (!in_bounds(t.offset, t.capacity, bos[t.bo_index].size))
                        return {-EINVAL, DRM_NPU_JOB_ERR_OUT_OF_BOUNDS, i};
                for (int k = 0; k < NPU_BITS_COUNT; k++)
                        if (!std::isfinite(t.lo[k]) || !std::isfinite(t.hi[k]) || t.lo[k] > 0.0f ||
                            t.hi[k] < 0.0f || t.hi[k] - t.lo[k] > 1e30f)
                                return {-EINVAL, DRM_NPU_JOB_ERR_BAD_RANGE, i};
                return {0, 0, 0};
        }

        Fail check_tensor_ref(uint32_t l, uint32_t ti)
        {
                if (ti >= job.tensors.size() || producer[ti] == -1)
                        return {-EINVAL, DRM_NPU_JOB_ERR_BAD_TENSOR, l};
                return {0, 0, 0};
        }

        static bool same_nhw(const npu_tensor_desc &a, const npu_tensor_desc &b)
        {
                return a.n == b.n && a.h == b.h && a.w == b.w;
        }

        // Output extent of a window op along one axis, or 0 if invalid.
        static uint64_t out_extent(uint32_t in, uint32_t k, uint32_t s, uint32_t d, uint32_t p0, uint32_t p1)
        {
                uint64_t span = uint64_t(d) * (k - 1) + 1;
                uint64_t padded = uint64_t(in) + p0 + p1;
                if (padded < span)
                        return 0;
                return (padded - span) / s + 1;
        }

        Fail check_window(uint32_t l, const npu_layer_desc &L, const npu_tensor_desc &x, const npu_tensor_desc &y,
                          bool dilated)
        {
                auto bad = Fail{-EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, l};
                uint32_t v[] = {L.kernel_h, L.kernel_w, L.stride_h, L.stride_w, L.dilation_h, L.dilation_w};
                for (uint32_t a : v)
                        if (a == 0 || a > kMaxKernel)
                                return bad;
                if (!dilated && (L.dilation_h != 1 || L.dilation_w != 1))
                        return bad;
                // Every window must hold at least one real element.
                if (L.pad_top >= L.kernel_h * L.dilation_h || L.pad_bottom >= L.kernel_h * L.dilation_h ||
                    L.pad_left >= L.kernel_w * L.dilation_w || L.pad_right >= L.kernel_w * L.dilation_w)
                        return bad;
                uint64_t oh = out_extent(x.h, L.kernel_h, L.stride_h, L.dilation_h, L.pad_top, L.pad_bottom);
                uint64_t ow = out_extent(x.w, L.kernel_w, L.stride_w, L.dilation_w, L.pad_left, L.pad_right);
                if (!oh || !ow || oh != y.h || ow != y.w || x.n != y.n)
                        return bad;
                return {0, 0, 0};
        }

        bool window_fields_zero(const npu_layer_desc &L)
        {
                return !(L.kernel_h | L.kernel_w | L.stride_h | L.stride_w | L.dilation_h | L.dilation_w |
                         L.pad_top | L.pad_left | L.pad_bottom | L.pad_right);
        }

        // A layer's bias: one row, or one per input depth.
        static uint64_t bias_bytes(const npu_layer_desc &L, uint64_t cout)
        {
                return 4ull * cout * (L.flags & NPU_LAYER_BIAS_PER_DEPTH ? NPU_BITS_COUNT : 1);
        }

        bool param_fields_zero(const npu_layer_desc &L)
        {
                return !(L.groups | L.param_bo_index) && !(L.weight_offset | L.weight_size | L.scale_offset | L.bias_offset);
        }

        Fail check_params(uint32_t l, const npu_layer_desc &L, uint64_t weight_bytes, uint32_t cout)
        {
                if (L.param_bo_index >= nbos)
                        return {-EINVAL, DRM_NPU_JOB_ERR_BAD_BO_INDEX, l};
                if (L.weight_size != weight_bytes)
                        return {-EINVAL, DRM_NPU_JOB_ERR_BAD_SIZE, l};
                uint64_t bsize = bos[L.param_bo_index].size;
                if (!in_bounds(L.weight_offset, weight_bytes, bsize) ||
                    !in_bounds(L.scale_offset, 4ull * cout, bsize) || !in_bounds(L.bias_offset, bias_bytes(L, cout), bsize))
                        return {-EINVAL, DRM_NPU_JOB_ERR_OUT_OF_BOUNDS, l};
                if (L.scale_offset % 4 || L.bias_offset % 4)
                        return {-EINVAL, DRM_NPU_JOB_ERR_OUT_OF_BOUNDS, l};
                return {0, 0, 0};
        }

        Fail check_layer(uint32_t l)
        {
                const npu_layer_desc &L = job.layers[l];
                if ((L.flags & ~(NPU_LAYER_BIAS_PER_DEPTH | NPU_LAYER_RESIDUAL)) || L.pad1 || !is_zero(L.reserved, sizeof L.reserved) ||
                    (L.flags && L.op != NPU_OP_CONV2D && L.op != NPU_OP_FULLY_CONNECTED) ||
                    ((L.flags & NPU_LAYER_RESIDUAL) && L.op != NPU_OP_CONV2D))
                        return {-EINVAL, DRM_NPU_JOB_ERR_RESERVED, l};
                if (L.op < NPU_OP_CONV2D || L.op > NPU_OP_DEPTH_TO_SPACE || L.act > NPU_ACT_SIGMOID)
                        return {-EINVAL, DRM_NPU_JOB_ERR_BAD_OP, l};
                unsigned out_max;
                if (L.policy == NPU_POLICY_FIXED) {
                        if (!bwq::depth_supported(L.bits) || L.min_bits || L.max_bits)
                                return {-EINVAL, DRM_NPU_JOB_ERR_BAD_BITS, l};
                        out_max = L.bits;
                } else if (L.policy == NPU_POLICY_DYNAMIC) {
                        if (L.bits || !bwq::depth_supported(L.min_bits) || !bwq::depth_supported(L.max_bits) ||
                            L.min_bits > L.max_bits)
                                return {-EINVAL, DRM_NPU_JOB_ERR_BAD_BITS, l};
                        if (!have_page)
                                return {-EINVAL, DRM_NPU_JOB_ERR_BAD_PAGE, l};
                        job.dynamic = true;
                        out_max = L.max_bits;
                } else {
                        return {-EINVAL, DRM_NPU_JOB_ERR_BAD_BITS, l};
                }

                unsigned want_inputs;
                switch (L.op) {
                case NPU_OP_ADD:
                case NPU_OP_MUL:
                        want_inputs = 2;
                        break;
                case NPU_OP_CONCAT:
                        want_inputs = L.input_count >= 2 && L.input_count <= NPU_MAX_INPUTS ? L.input_count : 0;
                        break;
                case NPU_OP_CONV2D:
                        want_inputs = L.flags & NPU_LAYER_RESIDUAL ? 2 : 1;
                        break;
                default:
                        want_inputs = 1;
                }
                if (!want_inputs || L.input_count != want_inputs)
                        return {-EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, l};
                for (unsigned i = 0; i < NPU_MAX_INPUTS; i++) {
                        if (i >= L.input_count) {
                                if (L.inputs[i] != NPU_TENSOR_NONE)
                                        return {-EINVAL, DRM_NPU_JOB_ERR_RESERVED, l};
                                continue;
                        }
                        if (Fail f = check_tensor_ref(l, L.inputs[i]); f.err)
                                return f;
                }
                if (L.output >= job.tensors.size() || producer[L.output] != -1)
                        return {-EINVAL, DRM_NPU_JOB_ERR_BAD_TENSOR, l};

                const npu_tensor_desc &y = job.tensors[L.output];
                const npu_tensor_desc &x = job.tensors[L.inputs[0]];
                if (y.bits)
                        return {-EINVAL, DRM_NPU_JOB_ERR_BAD_BITS, l};
                if (bwq::packed_bytes(tensor_elements(y), out_max) > y.capacity)
                        return {-EINVAL, DRM_NPU_JOB_ERR_BAD_SIZE, l};
                auto bad_shape = Fail{-EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, l};
                bool conv_like = L.op == NPU_OP_CONV2D || L.op == NPU_OP_FULLY_CONNECTED;
                bool window = L.op == NPU_OP_CONV2D || L.op == NPU_OP_MAXPOOL || L.op == NPU_OP_AVGPOOL || L.op == NPU_OP_RESIZE ||
                              L.op == NPU_OP_DEPTH_TO_SPACE;
                if (!window && !window_fields_zero(L))
                        return {-EINVAL, DRM_NPU_JOB_ERR_RESERVED, l};
                if (!conv_like && !param_fields_zero(L))
                        return {-EINVAL, DRM_NPU_JOB_ERR_RESERVED, l};

                switch (L.op) {
                case NPU_OP_CONV2D: {
                        if (Fail f = check_window(l, L, x, y, true); f.err)
                                return f;
                        uint32_t g = L.groups;
                        if (!g || x.c % g || y.c % g)
                                return bad_shape;
                        uint64_t wbytes;
                        if (g == x.c && g == y.c && g > 1) {
                                wbytes = uint64_t(L.kernel_h) * L.kernel_w * x.c;
                        } else {
                                uint64_t K = uint64_t(L.kernel_h) * L.kernel_w * (x.c / g);
                                uint64_t K4 = (K + 3) / 4 * 4, N16 = (y.c / g + 15) / 16 * 16;
                                wbytes = g * K4 * N16;
                        }
                        if (Fail f = check_params(l, L, wbytes, y.c); f.err)
                                return f;
                        if (L.flags & NPU_LAYER_RESIDUAL) {
                                // Not depthwise; the output's pixels, at most its channels.
                                const npu_tensor_desc &r = job.tensors[L.inputs[1]];
                                if ((g == x.c && g == y.c && g > 1) || !same_nhw(r, y) || r.c > y.c)
                                        return bad_shape;
                        }
                        break;
                }
                case NPU_OP_FULLY_CONNECTED: {
                        if (L.groups != 1 || y.n != x.n || y.h != 1 || y.w != 1)
                                return bad_shape;
                        uint64_t K = uint64_t(x.h) * x.w * x.c;
                        uint64_t wbytes = (K + 3) / 4 * 4 * ((y.c + 15) / 16 * 16);
                        if (Fail f = check_params(l, L, wbytes, y.c); f.err)
                                return f;
                        break;
                }
                case NPU_OP_ADD: {
                        const npu_tensor_desc &b = job.tensors[L.inputs[1]];
                        if (!same_nhw(x, y) || x.c != y.c || !same_nhw(b, y) || b.c != y.c)
                                return bad_shape;
                        break;
                }
                case NPU_OP_MUL: {
                        const npu_tensor_desc &b = job.tensors[L.inputs[1]];
                        bool full = same_nhw(b, y);
                        bool bcast = b.n == y.n && b.h == 1 && b.w == 1;
                        if (!same_nhw(x, y) || x.c != y.c || b.c != y.c || !(full || bcast))
                                return bad_shape;
                        break;
                }
                case NPU_OP_MAXPOOL:
                case NPU_OP_AVGPOOL:
                        if (Fail f = check_window(l, L, x, y, false); f.err)
                                return f;
                        if (x.c != y.c)
                                return bad_shape;
                        break;
                case NPU_OP_RESIZE:
                        if (L.kernel_h != L.kernel_w || (L.kernel_h != 1 && L.kernel_h != 2) || !L.stride_h || !L.stride_w ||
                            L.stride_h > 16 || L.stride_w > 16 || L.dilation_h || L.dilation_w || L.pad_top || L.pad_left ||
                            L.pad_bottom || L.pad_right)
                                return {-EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, l};
                        if (y.n != x.n || y.c != x.c || uint64_t(y.h) != uint64_t(x.h) * L.stride_h ||
                            uint64_t(y.w) != uint64_t(x.w) * L.stride_w)
                                return bad_shape;
                        break;
                case NPU_OP_DEPTH_TO_SPACE:
                        if (L.kernel_h || L.kernel_w || !L.stride_h || !L.stride_w || L.stride_h > 16 || L.stride_w > 16 ||
                            L.dilation_h || L.dilation_w || L.pad_top || L.pad_left || L.pad_bottom || L.pad_right)
                                return {-EINVAL, DRM_NPU_JOB_ERR_BAD_SHAPE, l};
                        if (y.n != x.n || uint64_t(y.h) != uint64_t(x.h) * L.stride_h || uint64_t(y.w) != uint64_t(x.w) * L.stride_w ||
                            uint64_t(x.c) != uint64_t(y.c) * L.stride_h * L.stride_w)
                                return bad_shape;
                        break;
                case NPU_OP_GLOBAL_AVGPOOL:
                        if (y.n != x.n || y.h != 1 || y.w != 1 || y.c != x.c)
                                return bad_shape;
                        break;
                case NPU_OP_CONCAT: {
                        uint64_t c = 0;
                        for (unsigned i = 0; i < L.input_count; i++) {
                                const npu_tensor_desc &t = job.tensors[L.inputs[i]];
                                if (!same_nhw(t, y))
                                        return bad_shape;
                                c += t.c;
                        }
                        if (c != y.c)
                                return bad_shape;
                        break;
                }
                }

                // The output may not overlap what this layer reads.
                uint64_t ylen = y.capacity;
                for (unsigned i = 0; i < L.input_count; i++) {
                        const npu_tensor_desc &t = job.tensors[L.inputs[i]];
                        if (overlaps(y.bo_index, y.offset, ylen, t.bo_index, t.offset, t.capacity))
                                return {-EINVAL, DRM_NPU_JOB_ERR_OVERLAP, l};
                }
                if (conv_like &&
                    (overlaps(y.bo_index, y.offset, ylen, L.param_bo_index, L.weight_offset, L.weight_size) ||
                     overlaps(y.bo_index, y.offset, ylen, L.param_bo_index, L.scale_offset, 4ull * y.c) ||
                     overlaps(y.bo_index, y.offset, ylen, L.param_bo_index, L.bias_offset, bias_bytes(L, y.c))))
                        return {-EINVAL, DRM_NPU_JOB_ERR_OVERLAP, l};
                const npu_job_header &h = job.header;
                uint64_t rlen = sizeof(npu_job_result) + uint64_t(h.layer_count) * sizeof(npu_layer_result);
                if (overlaps(y.bo_index, y.offset, ylen, h.result_bo_index, h.result_offset, rlen))
                        return {-EINVAL, DRM_NPU_JOB_ERR_OVERLAP, l};
                producer[L.output] = int32_t(l);
                return {0, 0, 0};
        }
};

} // namespace

int validate_job(const void *cmd, size_t size, const BufferView *bos, size_t nbos, bool have_page, Job *ret,
                 JobError *err)
{
        Job job;
        Validator v{bos, nbos, have_page, job, {}};
        auto fail = [&](const Fail &f) {
                err->code = f.code;
                err->index = f.index;
                return f.err;
        };
        if (size < sizeof(npu_job_header))
                return fail({-EINVAL, DRM_NPU_JOB_ERR_BAD_HEADER, 0});
        std::memcpy(&job.header, cmd, sizeof job.header);
        if (Fail f = v.check_header(job.header, size); f.err)
                return fail(f);

        const uint8_t *p = static_cast<const uint8_t *>(cmd) + sizeof(npu_job_header);
        job.tensors.resize(job.header.tensor_count);
        std::memcpy(job.tensors.data(), p, job.tensors.size() * sizeof(npu_tensor_desc));
        p += job.tensors.size() * sizeof(npu_tensor_desc);
        job.layers.resize(job.header.layer_count);
        std::memcpy(job.layers.data(), p, job.layers.size() * sizeof(npu_layer_desc));

        v.producer.assign(job.tensors.size(), -1);
        for (uint32_t i = 0; i < job.tensors.size(); i++) {
                if (Fail f = v.check_tensor(i); f.err)
                        return fail(f);
                const npu_tensor_desc &t = job.tensors[i];
                if (t.bits) {
                        // A job input: written by the host at `bits`.
                        if (bwq::packed_bytes(tensor_elements(t), t.bits) > t.capacity)
                                return fail({-EINVAL, DRM_NPU_JOB_ERR_BAD_SIZE, i});
                        v.producer[i] = -2;
                }
        }
        for (uint32_t l = 0; l < job.layers.size(); l++)
                if (Fail f = v.check_layer(l); f.err)
                        return fail(f);
        *err = {};
        *ret = std::move(job);
        return 0;
}

} // namespace npuref

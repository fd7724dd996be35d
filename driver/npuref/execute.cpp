// Execution of a validated job.  Each layer reads its packed inputs once,
// computes, and writes its output packed at the depth resolved for it, so a
// lower depth means fewer bytes moved, with no extra pass over memory.
#include <time.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "uapi/bwq_page.h"
#include "epilogue.h"
#include "job.h"
#include "kernels.h"
#include "common/quant.h"
#include "thread_pool.h"
#include "common/clock.h"
#include "common/depth.h"
#include "layer.h"

namespace npuref {

namespace {

// The depth a layer writes its output at.
unsigned resolve_bits(const npu_layer_desc &L, const bwq_page *page)
{
        if (L.policy == NPU_POLICY_FIXED)
                return L.bits;
        bwq_decision d;
        unsigned want = L.max_bits;  // an unreadable page keeps full quality
        if (page && bwq_page_read(page, &d) == 0)
                want = d.act_bits;
        return bwq::depth_clamp(want, L.min_bits, L.max_bits);
}

Act make_act(const npu_tensor_desc &t, unsigned bits)
{
        int i = bwq::depth_index(bits);
        return {bits, bwq::qparams(t.lo[i], t.hi[i], bits)};
}

} // namespace

int execute_job(const Job &job, const BufferView *bos, const bwq_page *page, const Kernels &k, ThreadPool *pool)
{
        const uint64_t t_job = bwq::monotonic_ns();
        const npu_job_header &h = job.header;
        uint8_t *rbase = bos[h.result_bo_index].data + h.result_offset;
        std::vector<Act> act(job.tensors.size(), Act{0, {}});
        for (size_t i = 0; i < job.tensors.size(); i++)
                if (job.tensors[i].bits)
                        act[i] = make_act(job.tensors[i], job.tensors[i].bits);

        std::vector<uint16_t> &xq = rs().xq;
        std::vector<uint8_t> &planes = rs().planes;
        for (size_t l = 0; l < job.layers.size(); l++) {
                const npu_layer_desc &L = job.layers[l];
                rs().layer = l;
                const uint64_t t0 = bwq::monotonic_ns();
                const npu_tensor_desc &y = job.tensors[L.output];
                act[L.output] = make_act(y, resolve_bits(L, page));
                uint8_t *ydst = bos[y.bo_index].data + y.offset;

                npu_layer_result r{};
                r.start_ns = t0;
                r.bits = uint8_t(act[L.output].bits);
                for (unsigned i = 0; i < L.input_count; i++)
                        r.act_bytes_read += bwq::packed_bytes(tensor_elements(job.tensors[L.inputs[i]]), act[L.inputs[i]].bits);
                r.bytes_written = bwq::packed_bytes(tensor_elements(y), act[L.output].bits);

                if (L.op == NPU_OP_CONV2D || L.op == NPU_OP_FULLY_CONNECTED) {
                        const npu_tensor_desc &x = job.tensors[L.inputs[0]];
                        Geometry G = geometry(L, x, y);
                        LayerIO io{bos[x.bo_index].data + x.offset, act[L.inputs[0]], ydst, act[L.output]};
                        if (L.flags & NPU_LAYER_RESIDUAL) {
                                const npu_tensor_desc &rt = job.tensors[L.inputs[1]];
                                io.r = bos[rt.bo_index].data + rt.offset;
                                io.ar = act[L.inputs[1]];
                                io.rc = rt.c;
                        }
                        const uint8_t *params = bos[L.param_bo_index].data;
                        r.param_bytes_read = L.weight_size + 8ull * y.c;
                        bool depthwise = L.op == NPU_OP_CONV2D && G.groups > 1 && G.groups == G.c && G.groups == G.oc;
                        if (depthwise && uint64_t(G.kh) * G.kw <= kDepthwiseMaxTaps32) {
                                run_depthwise(L, G, io, params, k, pool, planes);
                        } else if (depthwise) {
                                xq.resize(tensor_elements(x));
                                unpack_all(pool, io.x, io.ax.bits, xq.size(), xq.data());
                                run_depthwise64(L, G, io, params, pool, xq.data());
                        } else {
                                run_gemm_layer(L, G, io, params, k, pool, planes);
                        }
                } else {
                        std::vector<const npu_tensor_desc *> in;
                        std::vector<const uint8_t *> src;
                        std::vector<Act> inact;
                        for (unsigned i = 0; i < L.input_count; i++) {
                                const npu_tensor_desc &t = job.tensors[L.inputs[i]];
                                in.push_back(&t);
                                src.push_back(bos[t.bo_index].data + t.offset);
                                inact.push_back(act[L.inputs[i]]);
                        }
                        run_float_layer(L, in, src, inact, y, act[L.output], ydst, k, pool);
                }
                r.ns = bwq::monotonic_ns() - t0;
                std::memcpy(rbase + sizeof(npu_job_result) + l * sizeof(npu_layer_result), &r, sizeof r);
        }

        npu_job_result jr{};
        jr.magic = NPU_RESULT_MAGIC;
        jr.layer_count = uint32_t(job.layers.size());
        jr.ns = bwq::monotonic_ns() - t_job;
        std::memcpy(rbase, &jr, sizeof jr);
        return 0;
}

} // namespace npuref

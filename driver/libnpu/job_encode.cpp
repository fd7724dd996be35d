// The command buffer of a model's run (uapi/npu_accel.h): header, tensor
// descriptors and layer descriptors with each layer's depth policy.
#include <algorithm>
#include <cstring>

#include "common/depth.h"
#include "common/quant.h"
#include "model.h"

void npu::model_write_job(npu_model *m, size_t seg, bool dynamic, unsigned fixed_bits)
{
        const npu::Segment &sg = m->segments[seg];
        uint8_t *base = static_cast<uint8_t *>(npu_bo_map(sg.job));
        npu_job_header h{};
        h.magic = NPU_JOB_MAGIC;
        h.version = NPU_JOB_VERSION;
        h.header_size = sizeof(npu_job_header);
        h.tensor_count = uint32_t(m->tensors.size());
        h.tensor_size = sizeof(npu_tensor_desc);
        h.layer_count = uint32_t(sg.last - sg.first);
        h.layer_size = sizeof(npu_layer_desc);
        h.result_bo_index = 0;
        h.result_offset = sg.result_offset;
        std::memcpy(base, &h, sizeof h);
        uint8_t *p = base + sizeof h;
        for (size_t i = 0; i < m->tensors.size(); i++) {
                const auto &t = m->tensors[i];
                npu_tensor_desc d{};
                d.bo_index = 1;
                d.bits = uint8_t(m->tensor_bits[i]);
                d.offset = m->tensor_offset[i];
                d.capacity = bwq::packed_bytes(t.elements(), 16);
                d.n = t.n, d.h = t.h, d.w = t.w, d.c = t.c;
                std::memcpy(d.lo, m->ranges[i].lo, sizeof d.lo);
                std::memcpy(d.hi, m->ranges[i].hi, sizeof d.hi);
                std::memcpy(p, &d, sizeof d);
                p += sizeof d;
        }
        for (size_t l = sg.first; l < sg.last; l++) {
                const auto &L = m->layers[l];
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
                        d.bits = uint8_t(npu::fixed_depth(m, L.output, fixed_bits, lo, hi));
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
                } else if (L.op == NPU_OP_RESIZE || L.op == NPU_OP_DEPTH_TO_SPACE) {
                        d.kernel_h = uint16_t(L.conv.kernel_h), d.kernel_w = uint16_t(L.conv.kernel_w);
                        d.stride_h = uint16_t(L.conv.stride_h), d.stride_w = uint16_t(L.conv.stride_w);
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
                        d.flags = L.flags;
                        if (L.op == NPU_OP_CONV2D && L.inputs.size() > 1)
                                d.flags |= NPU_LAYER_RESIDUAL;
                }
                std::memcpy(p, &d, sizeof d);
                p += sizeof d;
        }
}

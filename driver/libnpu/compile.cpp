// npu_model_compile: a graph's tensors calibrated, its weights packed into
// the device's layout, and its buffer objects laid out.
#include <errno.h>

#include <algorithm>
#include <cstring>
#include <memory>

#include "common/quant.h"
#include "common/weights.h"
#include "model.h"

extern "C" int npu_model_compile(npu_device *dev, const npu_graph *g, const npu_compile_options *opts,
                                 npu_model **ret)
{
        if (!dev || !g || !opts || !ret || g->inputs.empty() || g->layers.empty() || !npu::reserved_zero(opts->reserved))
                return -EINVAL;
        // One calibration tensor per input: calibration_inputs, or the one
        // calibration_input of a single-input graph.
        std::vector<const float *> calib;
        if (opts->calibration_inputs)
                calib.assign(opts->calibration_inputs, opts->calibration_inputs + g->inputs.size());
        else if (g->inputs.size() == 1)
                calib = {opts->calibration_input};
        // Ranges given for every tensor (a calibrated model file) need no
        // calibration input.
        bool all_given = std::all_of(g->tensors.begin(), g->tensors.end(),
                                     [](const npu::GraphTensor &t) { return t.given_ranges; });
        if (all_given && !opts->calibration_input && !opts->calibration_inputs)
                calib.assign(g->inputs.size(), nullptr);
        else if (calib.size() != g->inputs.size())
                return -EINVAL;
        for (const float *p : calib)
                if (!p && !all_given)
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
        m->inputs = g->inputs;
        m->outputs = g->outputs;
        if (m->outputs.empty())
                m->outputs = {g->layers.back().output};

        // Every sample's float pass: each tensor's extremes, and a spread-out
        // sample of its values (about 2^16 a tensor) for the clipped ranges.
        uint64_t samples = opts->calibration_count ? opts->calibration_count : 1;
        if (samples > (1u << 20))
                return -EINVAL;
        if (all_given)
                samples = 0;
        size_t T = g->tensors.size();
        std::vector<float> lo(T, 0.0f), hi(T, 0.0f);
        std::vector<std::vector<float>> kept(T);
        std::vector<const float *> at(calib.size());
        for (uint64_t s = 0; s < samples; s++) {
                for (size_t i = 0; i < calib.size(); i++)
                        at[i] = calib[i] + s * g->tensors[g->inputs[i]].elements();
                std::vector<std::vector<float>> values;
                npu::reference_forward(*g, at.data(), values, true);
                for (size_t t = 0; t < T; t++) {
                        const auto &v = values[t];
                        for (float x : v) {
                                lo[t] = std::min(lo[t], x);
                                hi[t] = std::max(hi[t], x);
                        }
                        // One sample keeps everything (the ranges of earlier releases).
                        size_t step = samples == 1 ? 1 : std::max<size_t>(1, v.size() * samples / 65536);
                        for (size_t k = size_t(s % step); k < v.size(); k += step)
                                kept[t].push_back(v[k]);
                }
        }
        for (size_t t = 0; t < T; t++)
                m->ranges.push_back(g->tensors[t].given_ranges ? g->tensors[t].ranges
                                                               : npu::calibrate_ranges(kept[t], lo[t], hi[t]));
        // A MaxPool's output takes its input's ranges: the max of quantized
        // values is then exact, and a host step comparing the two (a peak
        // mask, Equal(MaxPool(x), x)) sees one grid.
        for (const auto &L : g->layers)
                if (L.op == NPU_OP_MAXPOOL && !g->tensors[L.output].given_ranges)
                        m->ranges[L.output] = m->ranges[L.inputs[0]];
        m->tensor_fixed.assign(T, 0);

        // Activations: every tensor its own region, sized for 16 bits.
        uint64_t act_size = 0;
        for (const auto &t : m->tensors) {
                m->tensor_offset.push_back(act_size);
                act_size = npu::align_up(act_size + bwq::packed_bytes(t.elements(), 16));
        }
        // Parameters: weights, scales, bias of each conv/FC layer.
        std::vector<bwq::PackedWeights> packed;
        uint64_t param_size = 0;
        for (const auto &L : g->layers) {
                npu::ModelLayer ml{L.op, L.act, L.inputs, L.output, L.conv, L.pool, L.min_bits, L.max_bits};
                ml.host_fn = L.host_fn;
                ml.host_user = L.host_user;
                if (L.op == NPU_OP_CONV2D || L.op == NPU_OP_FULLY_CONNECTED) {
                        const auto &x = g->tensors[L.inputs[0]];
                        uint32_t cin = L.op == NPU_OP_FULLY_CONNECTED ? x.h * x.w * x.c : x.c;
                        packed.push_back(bwq::pack_weights(
                                L.weights.data(), {L.conv.out_channels, cin, L.conv.kernel_h, L.conv.kernel_w, L.conv.groups,
                                                   L.op == NPU_OP_FULLY_CONNECTED}));
                        const auto &pw = packed.back();
                        ml.weight_offset = param_size;
                        ml.weight_size = pw.data.size();
                        param_size = npu::align_up(param_size + pw.data.size());
                        ml.scale_offset = param_size;
                        param_size = npu::align_up(param_size + 4 * pw.scale.size());
                        // A row of bias per input depth, so that a correction
                        // can be set at any time (npu_model_set_bias_correction).
                        ml.bias_offset = param_size;
                        param_size = npu::align_up(param_size + 4 * NPU_BITS_COUNT * L.bias.size());
                        ml.bias = L.bias;
                        ml.flags = L.bias_delta.empty() ? 0 : NPU_LAYER_BIAS_PER_DEPTH;
                }
                m->layers.push_back(ml);
        }
        // Segments: runs of device layers, one job each, and host layers
        // between them.
        for (size_t l = 0; l < m->layers.size(); l++) {
                bool host = m->layers[l].op == npu::kOpHost;
                if (m->segments.empty() || host || m->segments.back().host)
                        m->segments.push_back({l, l + 1, host});
                else
                        m->segments.back().last = l + 1;
        }
        int r;
        for (auto &s : m->segments) {
                if (s.host)
                        continue;
                size_t n = s.last - s.first;
                s.cmd_size = sizeof(npu_job_header) + m->tensors.size() * sizeof(npu_tensor_desc) + n * sizeof(npu_layer_desc);
                s.result_offset = npu::align_up(s.cmd_size);
                if ((r = npu_bo_create(dev, s.result_offset + sizeof(npu_job_result) + n * sizeof(npu_layer_result), &s.job)) < 0)
                        return r;
        }
        m->tensor_bits.assign(m->tensors.size(), 0);
        if ((r = npu_bo_create(dev, act_size, &m->act_bo)) < 0 ||
            (r = npu_bo_create(dev, std::max<uint64_t>(param_size, npu::kAlign), &m->param_bo)) < 0)
                return r;
        uint8_t *pbase = static_cast<uint8_t *>(npu_bo_map(m->param_bo));
        size_t pi = 0;
        for (size_t l = 0; l < g->layers.size(); l++) {
                const auto &L = g->layers[l];
                if (L.op != NPU_OP_CONV2D && L.op != NPU_OP_FULLY_CONNECTED)
                        continue;
                const auto &pw = packed[pi++];
                const npu::ModelLayer &ml = m->layers[l];
                std::memcpy(pbase + ml.weight_offset, pw.data.data(), pw.data.size());
                std::memcpy(pbase + ml.scale_offset, pw.scale.data(), 4 * pw.scale.size());
                npu::write_bias_rows(m.get(), l, L.bias_delta.empty() ? nullptr : L.bias_delta.data());
        }
        *ret = m.release();
        return 0;
}

extern "C" void npu_model_free(npu_model *m) { delete m; }

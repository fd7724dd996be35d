// npu-calibrate(1)'s library: per tensor and depth a clipping range chosen
// by the output error it causes, each layer's sensitivity at 4 and 6 bits,
// and the per-layer minimum depths that keep an output budget at the least
// activation bytes, written back into the model's metadata_props.
//
// Every experiment runs on the device (one compiled model, its ranges and
// per-tensor depths changed between runs) against the float reference of
// the same samples, so what is measured is what the driver will do.
#include <errno.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdarg>
#include <cstring>
#include <map>
#include <memory>
#include <string>

#include "common/depth.h"
#include "common/json.h"
#include "common/quant.h"
#include "model.h"
#include "uapi/npu_accel.h"

namespace {

constexpr unsigned kDepths[4] = {4, 6, 8, 16};
constexpr size_t kKept = 1u << 15;  // values kept per tensor for the range search
constexpr const char *kMethods[] = {"auto", "minmax", "percentile", "mse"};

struct Range {
        float lo, hi;
        std::string method;
};

struct Tensor {
        int id = -1;
        std::string key;
        int layer = -1;  // -1: an input
        uint64_t elements = 0;
        float lo = 0, hi = 0;       // over every calibration sample
        std::vector<float> kept;    // spread-out sample of its values
        Range chosen[4];            // per depth
        double sens[4] = {};        // output SQNR, this tensor alone at the depth, the others at 8
        unsigned min_bits = 4;
        std::vector<float> bias;    // conv/FC: its bias correction [4][C] (empty: none)
};

} // namespace

struct npu_onnx_calibration {
        npu_onnx *m = nullptr;
        std::vector<Tensor> tensors;
        double budget_db = 30;
        uint32_t method = 0;
        uint64_t samples = 0, eval_samples = 0;
        // Uniform depth d (index): output SQNR and activation bytes per
        // inference with min-max and with the chosen ranges; the mix under
        // a 4-bit decision.
        double uniform_minmax[4] = {}, uniform_chosen[4] = {};
        uint64_t uniform_bytes[4] = {};
        double mix_db = 0;
        uint64_t mix_bytes = 0;
        // Bias correction per input depth: kept where it raised the uniform
        // depth's SQNR; the SQNR without and with it.
        bool bias_on[4] = {};
        double bias_off_db[4] = {}, bias_on_db[4] = {};
        std::string text, json;
};

namespace {

using Cal = npu_onnx_calibration;

double quant_mse(const std::vector<float> &v, size_t step, float lo, float hi, unsigned bits)
{
        bwq::QParams p = bwq::qparams(lo, hi, bits);
        double e = 0;
        for (size_t i = 0; i < v.size(); i += step) {
                double d = double(bwq::dequantize_one(bwq::quantize_one(v[i], p), p)) - v[i];
                e += d * d;
        }
        return e;
}

// Candidate ranges of a tensor at `bits`: min-max, two percentiles and the
// range of least squared error in the tensor itself (a grid over both ends).
std::vector<Range> candidates(const Tensor &t, unsigned bits, uint32_t method)
{
        std::vector<Range> out{{t.lo, t.hi, "minmax"}};
        if (bits == 16 || t.kept.empty() || t.hi <= t.lo)
                return out;
        std::vector<float> s = t.kept;
        std::sort(s.begin(), s.end());
        auto q = [&](double f) { return s[size_t(f * double(s.size() - 1))]; };
        out.push_back({std::min(0.0f, q(1e-4)), std::max(0.0f, q(1 - 1e-4)), "p99.99"});
        if (bits <= 6)
                out.push_back({std::min(0.0f, q(1e-3)), std::max(0.0f, q(1 - 1e-3)), "p99.9"});
        static const float f[] = {1.0f, 0.9f, 0.8f, 0.7f, 0.6f, 0.5f, 0.42f, 0.35f, 0.3f, 0.25f, 0.2f, 0.15f, 0.1f};
        size_t step = std::max<size_t>(1, t.kept.size() / 8192);
        double best = -1;
        Range r{t.lo, t.hi, "mse"};
        for (float a : f)
                for (float b : f) {
                        if (t.lo == 0.0f && a != 1.0f)
                                continue;
                        double e = quant_mse(t.kept, step, t.lo * a, t.hi * b, bits);
                        if (best < 0 || e < best) {
                                best = e;
                                r.lo = t.lo * a;
                                r.hi = t.hi * b;
                        }
                }
        out.push_back(r);
        if (method == NPU_ONNX_RANGE_MINMAX)
                return {out[0]};
        if (method == NPU_ONNX_RANGE_MSE)
                return {out.back()};
        if (method == NPU_ONNX_RANGE_PERCENTILE)
                return {out[bits <= 6 ? 2 : 1]};
        // Drop repeats (a tensor with no outliers has p99.99 = min-max).
        std::vector<Range> uniq;
        for (const Range &c : out) {
                bool dup = false;
                for (const Range &u : uniq)
                        dup |= u.lo == c.lo && u.hi == c.hi;
                if (!dup)
                        uniq.push_back(c);
        }
        return uniq;
}

// Runs the evaluation samples on the device and compares with the float
// reference: the output SQNR in dB (120 when exact), and the activation
// bytes of one inference.  "Outputs" are the device's: the model's outputs
// that device layers write, and the device tensors host nodes read (a
// host step such as a peak mask is discontinuous; what feeds it is not).
struct Evaluator {
        npu_model *model = nullptr;
        std::vector<std::vector<float>> in;              // per input: eval samples, device layout
        std::vector<std::vector<std::vector<float>>> ref;  // per sample, per measured tensor
        std::vector<uint64_t> in_per, out_per;
        std::vector<int> meas;                           // the measured tensors
        uint64_t n = 0;
        unsigned runs = 0;

        // eval() with `tensor` at its own depth `bits` (FIXED mode), then
        // back at `restore` (0: the model's depth).
        int eval_with(int tensor, unsigned bits, unsigned restore, double *ret_db)
        {
                int r = npu_model_set_tensor_bits(model, tensor, bits);
                if (r >= 0)
                        r = eval(ret_db, nullptr);
                npu_model_set_tensor_bits(model, tensor, restore);
                return r;
        }

        // The output SQNR: of each output over the samples, the worst of
        // them (so that a small output, a detector's scores beside its
        // boxes, is not hidden by a large one).
        int eval(double *ret_db, uint64_t *ret_bytes)
        {
                std::vector<double> sig(out_per.size(), 0.0), noise(out_per.size(), 0.0);
                uint64_t bytes = 0;
                std::vector<const float *> ptr(in.size());
                std::vector<float> out;
                for (uint64_t s = 0; s < n; s++) {
                        for (size_t i = 0; i < in.size(); i++)
                                ptr[i] = in[i].data() + s * in_per[i];
                        npu_run_stats st{};
                        int r = npu_model_run_inputs(model, ptr.data(), unsigned(ptr.size()), &st);
                        if (r < 0)
                                return r;
                        bytes += st.activation_bytes;
                        for (size_t j = 0; j < out_per.size(); j++) {
                                out.resize(out_per[j]);
                                if ((r = npu_model_tensor(model, meas[j], out.data(), out.size())) < 0)
                                        return r;
                                const auto &rf = ref[s][j];
                                for (size_t k = 0; k < out.size(); k++) {
                                        double d = double(out[k]) - rf[k];
                                        sig[j] += double(rf[k]) * rf[k];
                                        noise[j] += d * d;
                                }
                        }
                }
                runs++;
                double worst = 120.0;
                for (size_t j = 0; j < sig.size(); j++)
                        if (noise[j] > 0)
                                worst = std::min(worst, 10 * std::log10(std::max(sig[j], 1e-30) / noise[j]));
                *ret_db = worst;
                if (ret_bytes)
                        *ret_bytes = n ? bytes / n : 0;
                return 0;
        }
};

int set_ranges(npu_model *model, const std::vector<Tensor> &ts, bool minmax)
{
        for (const Tensor &t : ts)
                for (int d = 0; d < 4; d++) {
                        float lo = minmax ? t.lo : t.chosen[d].lo, hi = minmax ? t.hi : t.chosen[d].hi;
                        int r = npu_model_set_tensor_range(model, t.id, kDepths[d], lo, hi);
                        if (r < 0)
                                return r;
                }
        return 0;
}

int set_biases(npu_model *model, const std::vector<Tensor> &ts, bool on)
{
        for (const Tensor &t : ts) {
                if (t.bias.empty())
                        continue;
                int r = npu_model_set_bias_correction(model, t.id, on ? t.bias.data() : nullptr, on ? t.bias.size() : 0);
                if (r < 0)
                        return r;
        }
        return 0;
}

// Bias correction (per input depth): the mean error a depth's range puts
// on a conv or fully connected layer's input, through the layer's own
// weights, and the mean its int8 weights move the output by, taken back
// from its bias.  Kept per depth where it raises that uniform depth's
// output SQNR; the sensitivities are then measured again with it.
template <class Mode, class Progress>
int correct_biases(Cal &c, const npu_graph *g, const std::vector<std::vector<float>> &dev_in, uint64_t count, Evaluator &ev,
                   Mode mode, Progress progress)
{
        const int L = npu_graph_layer_count(g), T = int(c.tensors.size());
        const unsigned nin = unsigned(dev_in.size());
        std::vector<float> probe;
        struct Acc {
                std::vector<double> x, e[3];
        };
        std::map<int, Acc> acc;  // per input tensor of a conv/FC layer
        std::vector<int> convs;
        for (int l = 0; l < L; l++) {
                int in = npu_graph_layer_input(g, unsigned(l), 0);
                probe.assign(c.tensors[size_t(in)].elements, 0.0f);
                std::vector<float> out(c.tensors[size_t(npu_graph_layer_output(g, unsigned(l)))].elements);
                if (npu_graph_layer_linear(g, unsigned(l), 0, probe.data(), out.data()) < 0)
                        continue;  // not a conv or fully connected layer
                convs.push_back(l);
                Acc &a = acc[in];
                a.x.assign(probe.size(), 0.0);
                for (auto &e : a.e)
                        e.assign(probe.size(), 0.0);
        }
        if (convs.empty())
                return 0;
        uint64_t n = std::min<uint64_t>(count, 256);
        std::vector<std::vector<float>> vals(static_cast<size_t>(T));
        std::vector<float *> vp(static_cast<size_t>(T), nullptr);
        for (auto &[t, a] : acc) {
                vals[size_t(t)].resize(c.tensors[size_t(t)].elements);
                vp[size_t(t)] = vals[size_t(t)].data();
        }
        std::vector<const float *> at(nin);
        for (uint64_t s = 0; s < n; s++) {
                if (s % 16 == 0)
                        progress("bias correction", unsigned(s), unsigned(n));
                uint64_t k = s * count / n;
                for (unsigned i = 0; i < nin; i++)
                        at[i] = dev_in[i].data() + k * (dev_in[i].size() / count);
                int r = npu_graph_reference_tensors(g, at.data(), nin, NPU_REFERENCE_INT8_WEIGHTS, vp.data());
                if (r < 0)
                        return r;
                for (auto &[t, a] : acc) {
                        const Tensor &x = c.tensors[size_t(t)];
                        const auto &v = vals[size_t(t)];
                        for (int d = 0; d < 3; d++) {
                                bwq::QParams q = bwq::qparams(x.chosen[d].lo, x.chosen[d].hi, kDepths[d]);
                                for (size_t e = 0; e < v.size(); e++)
                                        a.e[d][e] += double(bwq::dequantize_one(bwq::quantize_one(v[e], q), q)) - v[e];
                        }
                        for (size_t e = 0; e < v.size(); e++)
                                a.x[e] += v[e];
                }
        }
        // delta[d][c] = -mean_c(W8 * mean_err_d + (W8 - W) * mean_x).
        int r;
        for (int l : convs) {
                int in = npu_graph_layer_input(g, unsigned(l), 0), outt = npu_graph_layer_output(g, unsigned(l));
                const Acc &a = acc[in];
                Tensor &y = c.tensors[size_t(outt)];
                size_t E = a.x.size(), C;
                std::vector<float> mx(E), me(E), o8(y.elements), of(y.elements), oe(y.elements);
                for (size_t e = 0; e < E; e++)
                        mx[e] = float(a.x[e] / double(n));
                npu_graph_layer_linear(g, unsigned(l), NPU_REFERENCE_INT8_WEIGHTS, mx.data(), o8.data());
                npu_graph_layer_linear(g, unsigned(l), 0, mx.data(), of.data());
                // Channels: the last axis of the NHWC output.
                npu_host_shape sh;
                npu_graph_tensor_shape(g, outt, &sh);
                C = sh.c;
                std::vector<float> delta(4 * C, 0.0f);
                auto add_mean = [&](const std::vector<float> &o, double sign, size_t row) {
                        std::vector<double> m(C, 0.0);
                        for (size_t e = 0; e < o.size(); e++)
                                m[e % C] += o[e];
                        for (size_t ch = 0; ch < C; ch++)
                                delta[row * C + ch] += float(sign * m[ch] / double(o.size() / C));
                };
                for (size_t row = 0; row < 4; row++) {
                        add_mean(o8, -1, row);  // the int8 weights' shift, at every depth
                        add_mean(of, +1, row);
                }
                for (int d = 0; d < 3; d++) {
                        for (size_t e = 0; e < E; e++)
                                me[e] = float(a.e[d][e] / double(n));
                        npu_graph_layer_linear(g, unsigned(l), NPU_REFERENCE_INT8_WEIGHTS, me.data(), oe.data());
                        add_mean(oe, -1, size_t(d));
                }
                y.bias = std::move(delta);
        }
        // Per depth: kept where the uniform depth's SQNR rises.
        for (int d = 0; d < 4; d++) {
                if ((r = mode(kDepths[d])) < 0 || (r = set_biases(ev.model, c.tensors, false)) < 0 ||
                    (r = ev.eval(&c.bias_off_db[d], nullptr)) < 0 || (r = set_biases(ev.model, c.tensors, true)) < 0 ||
                    (r = ev.eval(&c.bias_on_db[d], nullptr)) < 0)
                        return r;
                c.bias_on[d] = c.bias_on_db[d] > c.bias_off_db[d];
        }
        for (int l : convs) {
                Tensor &y = c.tensors[size_t(npu_graph_layer_output(g, unsigned(l)))];
                size_t C = y.bias.size() / 4;
                for (int d = 0; d < 4; d++)
                        if (!c.bias_on[d])
                                std::fill(y.bias.begin() + long(d * C), y.bias.begin() + long((d + 1) * C), 0.0f);
                if (!std::any_of(y.bias.begin(), y.bias.end(), [](float v) { return v != 0.0f; }))
                        y.bias.clear();
        }
        if ((r = set_biases(ev.model, c.tensors, true)) < 0 || (r = mode(8)) < 0)
                return r;
        // Sensitivities again, with the corrections kept.
        for (int d : {1, 0})
                for (Tensor &x : c.tensors) {
                        if ((r = ev.eval_with(x.id, kDepths[d], 0, &x.sens[d])) < 0)
                                return r;
                }
        return 0;
}

std::string fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char *f, ...)
{
        char buf[512];
        va_list ap;
        va_start(ap, f);
        vsnprintf(buf, sizeof buf, f, ap);
        va_end(ap);
        return buf;
}

std::string range_text(const Range &r) { return fmt("%.9g,%.9g", double(r.lo), double(r.hi)); }

void make_reports(Cal &c)
{
        std::string &t = c.text;
        t = fmt("calibration: %llu samples, the output error measured on %llu, ranges %s, budget %.1f dB output SQNR\n",
                (unsigned long long)c.samples, (unsigned long long)c.eval_samples, kMethods[c.method], c.budget_db);
        t += "uniform depth  SQNR min-max  SQNR calibrated  activation bytes (of 16-bit)\n";
        for (int d = 3; d >= 0; d--)
                t += fmt("  A%-2u          %8.2f dB     %8.2f dB     %10llu (%.3f)\n", kDepths[d], c.uniform_minmax[d],
                         c.uniform_chosen[d], (unsigned long long)c.uniform_bytes[d],
                         c.uniform_bytes[3] ? double(c.uniform_bytes[d]) / double(c.uniform_bytes[3]) : 0.0);
        t += fmt("  per-layer minimums under a 4-bit decision: %.2f dB, %llu bytes (%.3f of 16-bit)\n", c.mix_db,
                 (unsigned long long)c.mix_bytes, c.uniform_bytes[3] ? double(c.mix_bytes) / double(c.uniform_bytes[3]) : 0.0);
        t += "bias correction per input depth (uniform depth's SQNR without -> with):";
        for (int d = 0; d < 4; d++)
                t += fmt(" A%u %s (%.2f -> %.2f dB)%s", kDepths[d], c.bias_on[d] ? "on" : "off", c.bias_off_db[d], c.bias_on_db[d],
                         d < 3 ? "," : "\n");
        t += "tensor                                   elements  range at 4 / 6 / 8    SQNR@4   SQNR@6  min  bytes@min\n";
        for (const Tensor &x : c.tensors) {
                std::string key = x.key.size() > 40 ? "..." + x.key.substr(x.key.size() - 37) : x.key;
                t += fmt("  %-40s %8llu  %-6s %-6s %-6s %7.2f  %7.2f  %3u  %9llu\n", key.c_str(), (unsigned long long)x.elements,
                         x.chosen[0].method.c_str(), x.chosen[1].method.c_str(), x.chosen[2].method.c_str(), x.sens[0], x.sens[1],
                         x.min_bits, (unsigned long long)((x.elements * x.min_bits + 7) / 8));
        }
        std::string &j = c.json;
        j = fmt("{\"samples\":%llu,\"eval_samples\":%llu,\"method\":\"%s\",\"budget_db\":%.3f,\"uniform\":[",
                (unsigned long long)c.samples, (unsigned long long)c.eval_samples, kMethods[c.method], c.budget_db);
        for (int d = 0; d < 4; d++)
                j += fmt("%s{\"bits\":%u,\"sqnr_minmax_db\":%.3f,\"sqnr_db\":%.3f,\"activation_bytes\":%llu}", d ? "," : "",
                         kDepths[d], c.uniform_minmax[d], c.uniform_chosen[d], (unsigned long long)c.uniform_bytes[d]);
        j += fmt("],\"mix\":{\"sqnr_db\":%.3f,\"activation_bytes\":%llu},\"bias_correction\":[", c.mix_db, (unsigned long long)c.mix_bytes);
        for (int d = 0; d < 4; d++)
                j += fmt("%s{\"bits\":%u,\"on\":%s,\"sqnr_off_db\":%.3f,\"sqnr_on_db\":%.3f}", d ? "," : "", kDepths[d],
                         c.bias_on[d] ? "true" : "false", c.bias_off_db[d], c.bias_on_db[d]);
        j += "],\"tensors\":[";
        for (size_t i = 0; i < c.tensors.size(); i++) {
                const Tensor &x = c.tensors[i];
                j += fmt("%s{\"name\":%s,\"layer\":%d,\"elements\":%llu,\"min_bits\":%u,\"bytes_at_min\":%llu,\"sqnr4_db\":%.3f,"
                         "\"sqnr6_db\":%.3f,\"bias_correction\":%s,\"ranges\":[",
                         i ? "," : "", bwq::json_str(x.key).c_str(), x.layer, (unsigned long long)x.elements, x.min_bits,
                         (unsigned long long)((x.elements * x.min_bits + 7) / 8), x.sens[0], x.sens[1], x.bias.empty() ? "false" : "true");
                for (int d = 0; d < 4; d++)
                        j += fmt("%s{\"bits\":%u,\"method\":\"%s\",\"lo\":%.9g,\"hi\":%.9g}", d ? "," : "", kDepths[d],
                                 x.chosen[d].method.c_str(), double(x.chosen[d].lo), double(x.chosen[d].hi));
                j += "]}";
        }
        j += "]}\n";
}

int fail(char *why, size_t n, int code, const std::string &m)
{
        if (why && n)
                snprintf(why, n, "%s", m.c_str());
        return code;
}

} // namespace

extern "C" int npu_onnx_calibrate(npu_onnx *m, npu_device *dev, const float *const *samples, uint64_t count,
                                  const npu_onnx_calibrate_options *opts, npu_onnx_calibration **ret, char *why, size_t why_size)
{
        if (!m || !dev || !samples || !ret || !m->low.graph)
                return fail(why, why_size, -EINVAL, "no model, device or samples");
        if (opts && (opts->size != sizeof *opts || (opts->flags & ~(NPU_ONNX_BUDGET_BELOW_A8 | NPU_ONNX_NO_BIAS_CORRECTION))))
                return fail(why, why_size, -EINVAL, "npu_onnx_calibrate_options: unknown size or flags");
        if (opts)
                for (uint64_t r : opts->reserved)
                        if (r)
                                return fail(why, why_size, -EINVAL, "npu_onnx_calibrate_options: reserved fields must be zero");
        if (count == 0 || count > 100000)
                return fail(why, why_size, -EINVAL, "calibration needs 1 to 100000 samples, not " + std::to_string(count));
        uint32_t method = opts ? opts->method : uint32_t(NPU_ONNX_RANGE_AUTO);
        if (method > NPU_ONNX_RANGE_MSE)
                return fail(why, why_size, -EINVAL, "method " + std::to_string(method) + " is not a range method");
        double budget = opts && opts->budget_db != 0 ? opts->budget_db : 20.0;
        if (!std::isfinite(budget) || budget < 0 || budget > 100)
                return fail(why, why_size, -EINVAL, "budget: " + std::to_string(budget) + " dB is not from 0 to 100");
        auto progress = [&](const char *what, unsigned done, unsigned total) {
                if (opts && opts->progress)
                        opts->progress(opts->user, what, done, total);
        };
        const unsigned nin = unsigned(m->in_info.size());
        for (unsigned i = 0; i < nin; i++) {
                if (!samples[i])
                        return fail(why, why_size, -EINVAL, "no samples for input " + std::to_string(i));
                uint64_t per = m->in_info[i].elements;
                for (uint64_t k = 0; k < per * count; k++)
                        if (!std::isfinite(samples[i][k]))
                                return fail(why, why_size, -EINVAL,
                                            fmt("input '%s': sample %llu holds %s", m->in_info[i].name, (unsigned long long)(k / per),
                                                std::isnan(samples[i][k]) ? "a NaN" : "an infinite value"));
        }
        auto c = std::make_unique<Cal>();
        c->m = m;
        c->budget_db = budget;
        c->method = method;
        c->samples = count;
        uint64_t E = opts && opts->eval_samples ? std::min<uint64_t>(opts->eval_samples, count) : std::min<uint64_t>(count, 32);
        c->eval_samples = E;

        // Device-layout copies of every sample.
        const npu_graph *g = m->low.graph;
        int T = npu_graph_tensor_count(g);
        std::vector<std::vector<float>> dev_in(nin);
        {
                auto ptrs = onnxfe::to_device(m, samples, count);
                for (unsigned i = 0; i < nin; i++)
                        dev_in[i].assign(ptrs[i], ptrs[i] + m->in_info[i].elements * count);
        }
        // The tensors: every input and layer output, with its key.
        for (int t = 0; t < T; t++) {
                Tensor x;
                x.id = t;
                const char *key = npu_onnx_tensor_key(m, t);
                x.key = key ? key : "tensor " + std::to_string(t);
                x.layer = npu_graph_tensor_producer(g, t);
                x.elements = uint64_t(npu_graph_tensor_elements(g, t));
                c->tensors.push_back(std::move(x));
        }
        // Statistics of what the device will see (int8 weights), and the
        // float model's outputs on the evaluation samples.
        Evaluator ev;
        ev.n = E;
        for (unsigned i = 0; i < nin; i++) {
                ev.in_per.push_back(m->in_info[i].elements);
                ev.in.push_back(std::vector<float>(dev_in[i].begin(), dev_in[i].begin() + int64_t(m->in_info[i].elements * E)));
        }
        {
                std::vector<bool> want(static_cast<size_t>(T), false);
                for (const auto &o : m->low.outputs)
                        want[size_t(o.tensor)] = true;
                for (int l = 0; l < npu_graph_layer_count(g); l++)
                        if (npu_graph_layer_op(g, unsigned(l)) == int(NPU_LAYER_HOST))
                                for (unsigned i = 0;; i++) {
                                        int t = npu_graph_layer_input(g, unsigned(l), i);
                                        if (t < 0)
                                                break;
                                        want[size_t(t)] = true;
                                }
                for (int t = 0; t < T; t++) {
                        int p = npu_graph_tensor_producer(g, t);
                        if (want[size_t(t)] && p >= 0 && npu_graph_layer_op(g, unsigned(p)) != int(NPU_LAYER_HOST)) {
                                ev.meas.push_back(t);
                                ev.out_per.push_back(c->tensors[size_t(t)].elements);
                        }
                }
                if (ev.meas.empty())
                        return fail(why, why_size, -ENOTSUP, "no device tensor to measure: the model runs on the host alone");
        }
        std::vector<std::vector<float>> fvals(static_cast<size_t>(T));
        std::vector<float *> fvp(static_cast<size_t>(T), nullptr);
        for (int t : ev.meas) {
                fvals[size_t(t)].resize(c->tensors[size_t(t)].elements);
                fvp[size_t(t)] = fvals[size_t(t)].data();
        }
        std::vector<std::vector<float>> vals(static_cast<size_t>(T));
        std::vector<float *> vp(static_cast<size_t>(T));
        for (int t = 0; t < T; t++) {
                vals[size_t(t)].resize(c->tensors[size_t(t)].elements);
                vp[size_t(t)] = vals[size_t(t)].data();
        }
        std::vector<const float *> at(nin);
        for (uint64_t s = 0; s < count; s++) {
                if (s % 16 == 0)
                        progress("statistics", unsigned(s), unsigned(count));
                for (unsigned i = 0; i < nin; i++)
                        at[i] = dev_in[i].data() + s * m->in_info[i].elements;
                int r = npu_graph_reference_tensors(g, at.data(), nin, NPU_REFERENCE_INT8_WEIGHTS, vp.data());
                if (r < 0)
                        return fail(why, why_size, r, "the float reference failed");
                for (int t = 0; t < T; t++) {
                        Tensor &x = c->tensors[size_t(t)];
                        const auto &v = vals[size_t(t)];
                        for (float f : v) {
                                x.lo = std::min(x.lo, f);
                                x.hi = std::max(x.hi, f);
                        }
                        size_t step = std::max<size_t>(1, v.size() * count / kKept);
                        for (size_t k = size_t(s % step); k < v.size(); k += step)
                                x.kept.push_back(v[k]);
                }
                if (s < E) {
                        if ((r = npu_graph_reference_tensors(g, at.data(), nin, 0, fvp.data())) < 0)
                                return fail(why, why_size, r, "the float reference failed");
                        std::vector<std::vector<float>> outs;
                        for (int t : ev.meas)
                                outs.push_back(fvals[size_t(t)]);
                        ev.ref.push_back(std::move(outs));
                }
        }
        // Start from the ranges of least local error.
        for (Tensor &x : c->tensors)
                for (int d = 0; d < 4; d++) {
                        auto cs = candidates(x, kDepths[d], method);
                        x.chosen[d] = cs.back();
                }

        npu_compile_options co{};
        co.calibration_inputs = at.data();
        for (unsigned i = 0; i < nin; i++)
                at[i] = dev_in[i].data();
        co.calibration_count = 1;
        co.name = "npu-calibrate";
        int r = npu_model_compile(dev, g, &co, &ev.model);
        if (r < 0)
                return fail(why, why_size, r, std::string("compiling for the device failed: ") + strerror(-r));
        std::unique_ptr<npu_model, void (*)(npu_model *)> owner(ev.model, npu_model_free);
        auto mode = [&](unsigned bits) { return npu_model_set_mode(ev.model, NPU_MODE_FIXED, bits, 4, 16); };
        auto run_failed = [&](int e) { return fail(why, why_size, e, std::string("a run failed: ") + strerror(-e)); };
        if ((r = set_ranges(ev.model, c->tensors, false)) < 0 || (r = mode(8)) < 0)
                return fail(why, why_size, r, "the device model refused the ranges");

        // Ranges: per depth (8 first), per tensor in order, the candidate of
        // best output SQNR in two contexts, summed in dB: every tensor at
        // that depth (the context a low decision runs in; a pass of
        // coordinate descent, each choice seeing the ones before it), and
        // the tensor alone at it, the others at 8 (so that a tensor whose
        // error another's hides still gets a range good on its own).  The
        // second is the tensor's sensitivity.
        //
        // A MaxPool's output keeps its input's ranges ("tied"): the max of
        // quantized values is then exact, and a host step comparing the two
        // (a peak mask, Equal(MaxPool(x), x)) sees the same grid.
        std::vector<int> tied(static_cast<size_t>(T), -1);
        for (int l = 0; l < npu_graph_layer_count(g); l++)
                if (npu_graph_layer_op(g, unsigned(l)) == NPU_OP_MAXPOOL) {
                        int in = npu_graph_layer_input(g, unsigned(l), 0), out = npu_graph_layer_output(g, unsigned(l));
                        tied[size_t(out)] = tied[size_t(in)] >= 0 ? tied[size_t(in)] : in;
                }
        for (int t = 0; t < T; t++)
                if (tied[size_t(t)] >= 0) {
                        c->tensors[size_t(t)].lo = c->tensors[size_t(tied[size_t(t)])].lo;
                        c->tensors[size_t(t)].hi = c->tensors[size_t(tied[size_t(t)])].hi;
                }
        auto set_group = [&](int root, unsigned bits, float lo, float hi) {
                int e = npu_model_set_tensor_range(ev.model, root, bits, lo, hi);
                for (int t = 0; t < T && e >= 0; t++)
                        if (tied[size_t(t)] == root)
                                e = npu_model_set_tensor_range(ev.model, t, bits, lo, hi);
                return e;
        };
        for (int t = 0; t < T; t++)
                if (tied[size_t(t)] >= 0)
                        for (int d = 0; d < 4; d++) {
                                c->tensors[size_t(t)].chosen[d] = c->tensors[size_t(tied[size_t(t)])].chosen[d];
                                set_group(tied[size_t(t)], kDepths[d], c->tensors[size_t(t)].chosen[d].lo, c->tensors[size_t(t)].chosen[d].hi);
                        }
        unsigned total = unsigned(3 * c->tensors.size()), done = 0;
        for (int d : {2, 1, 0}) {
                unsigned bits = kDepths[d];
                for (Tensor &x : c->tensors) {
                        progress("ranges and sensitivity", done++, total);
                        if (tied[size_t(x.id)] >= 0) {  // its input's range; only its sensitivity here
                                x.chosen[d] = c->tensors[size_t(tied[size_t(x.id)])].chosen[d];
                                x.chosen[d].method = "tied";
                                if ((r = mode(8)) < 0 || (r = ev.eval_with(x.id, bits, 0, &x.sens[d])) < 0)
                                        return run_failed(r);
                                continue;
                        }
                        double best = -1e9;
                        Range pick = x.chosen[d];
                        for (const Range &cand : candidates(x, bits, method)) {
                                double all, alone;
                                if ((r = set_group(x.id, bits, cand.lo, cand.hi)) < 0)
                                        return fail(why, why_size, r, "the device model refused a range");
                                if ((r = mode(bits)) < 0 || (r = ev.eval(&all, nullptr)) < 0)
                                        return run_failed(r);
                                alone = all;
                                if (bits != 8) {
                                        if ((r = mode(8)) < 0 || (r = ev.eval_with(x.id, bits, 0, &alone)) < 0)
                                                return run_failed(r);
                                }
                                if (all + alone > best + 1e-9) {
                                        best = all + alone;
                                        pick = cand;
                                        x.sens[d] = alone;
                                }
                        }
                        x.chosen[d] = pick;
                        set_group(x.id, bits, pick.lo, pick.hi);
                }
        }
        for (Tensor &x : c->tensors) {
                const Tensor &root = tied[size_t(x.id)] >= 0 ? c->tensors[size_t(tied[size_t(x.id)])] : x;
                x.chosen[3] = {root.lo, root.hi, &root == &x ? "minmax" : "tied"};
                if (&root != &x)  // its 8-bit choice was made before its input's last
                        for (int d = 0; d < 3; d++)
                                x.chosen[d] = {root.chosen[d].lo, root.chosen[d].hi, "tied"};
        }
        for (Tensor &x : c->tensors)
                for (int d = 0; d < 4; d++)
                        npu_model_set_tensor_range(ev.model, x.id, kDepths[d], x.chosen[d].lo, x.chosen[d].hi);
        if (!(opts && (opts->flags & NPU_ONNX_NO_BIAS_CORRECTION)) && (r = correct_biases(*c, g, dev_in, count, ev, mode, progress)) < 0)
                return fail(why, why_size, r, std::string("bias correction failed: ") + strerror(-r));

        // Uniform depths, with min-max and with the chosen ranges.
        for (int d = 0; d < 4; d++) {
                progress("uniform depths", unsigned(d), 4);
                double db;
                uint64_t bytes;
                if ((r = mode(kDepths[d])) < 0 || (r = set_ranges(ev.model, c->tensors, true)) < 0 ||
                    (r = set_biases(ev.model, c->tensors, false)) < 0 || (r = ev.eval(&db, &bytes)) < 0)
                        return run_failed(r);
                c->uniform_minmax[d] = db;
                c->uniform_bytes[d] = bytes;
                if ((r = set_ranges(ev.model, c->tensors, false)) < 0 || (r = set_biases(ev.model, c->tensors, true)) < 0 ||
                    (r = ev.eval(&db, nullptr)) < 0)
                        return run_failed(r);
                c->uniform_chosen[d] = db;
        }

        if (opts && (opts->flags & NPU_ONNX_BUDGET_BELOW_A8))
                c->budget_db = budget = c->uniform_chosen[2] - budget;
        // Per-layer minimums: every tensor at 4, then the depth of the one
        // whose noise falls most per byte raised, until the budget holds.
        // A tensor's noise at a depth is estimated from its sensitivity
        // (its SQNR alone at that depth, less the all-8 noise it shares).
        if ((r = mode(4)) < 0)
                return fail(why, why_size, r, "the device model refused the depth");
        double base8 = std::pow(10.0, -c->uniform_chosen[2] / 10);
        double share8 = base8 / double(c->tensors.size());
        auto noise = [&](const Tensor &x, unsigned bits) {
                if (bits == 16)
                        return 0.0;
                if (bits == 8)
                        return share8;
                double s = std::pow(10.0, -x.sens[bwq::depth_index(bits)] / 10);
                return std::max(0.0, s - base8) + share8;
        };
        for (Tensor &x : c->tensors)
                x.min_bits = 4;
        for (unsigned step = 0;; step++) {
                for (Tensor &x : c->tensors)
                        npu_model_set_tensor_bits(ev.model, x.id, x.min_bits);
                if ((r = ev.eval(&c->mix_db, &c->mix_bytes)) < 0)
                        return run_failed(r);
                progress("per-layer minimums", step, unsigned(3 * c->tensors.size()));
                if (c->mix_db >= budget)
                        break;
                // The estimate ranks; the four it ranks first are tried on the
                // device, and the one whose measured SQNR rises most per byte
                // is raised (the estimate alone misjudges tensors whose noise
                // only shows beside the others').
                auto next_of = [](unsigned b) { return b == 4 ? 6u : b == 6 ? 8u : 16u; };
                std::vector<std::pair<double, Tensor *>> ranked;
                for (Tensor &x : c->tensors)
                        if (x.min_bits < 16) {
                                // What raising it could save at best (a tensor can be
                                // worse at 6 than at 4 with its ranges; 8 then helps).
                                unsigned next = next_of(x.min_bits);
                                double lowest = noise(x, next);
                                for (unsigned b = next; b < 16; b = next_of(b))
                                        lowest = std::min(lowest, noise(x, next_of(b)));
                                ranked.push_back({(noise(x, x.min_bits) - lowest) / (double(x.elements) * (next - x.min_bits)), &x});
                        }
                if (ranked.empty())
                        break;  // every tensor at 16 and still short of the budget: the report says so
                std::sort(ranked.begin(), ranked.end(), [](const auto &a, const auto &b) { return a.first > b.first; });
                Tensor *best = ranked[0].second;
                double best_gain = 0;
                for (size_t k = 0; k < std::min<size_t>(4, ranked.size()); k++) {
                        Tensor *x = ranked[k].second;
                        unsigned next = next_of(x->min_bits);
                        double db;
                        if ((r = ev.eval_with(x->id, next, x->min_bits, &db)) < 0)
                                return run_failed(r);
                        double gain = (db - c->mix_db) / (double(x->elements) * (next - x->min_bits));
                        if (gain > best_gain) {
                                best_gain = gain;
                                best = x;
                        }
                }
                best->min_bits = next_of(best->min_bits);
        }
        make_reports(*c);
        *ret = c.release();
        return 0;
}

extern "C" void npu_onnx_calibration_free(npu_onnx_calibration *c) { delete c; }

extern "C" const char *npu_onnx_calibration_report(const npu_onnx_calibration *c, int json)
{
        return c ? (json ? c->json.c_str() : c->text.c_str()) : nullptr;
}

extern "C" unsigned npu_onnx_calibration_count(const npu_onnx_calibration *c) { return c ? unsigned(c->tensors.size()) : 0; }

extern "C" int npu_onnx_calibration_tensor(const npu_onnx_calibration *c, unsigned index, npu_onnx_calibration_entry *ret)
{
        if (!c || !ret || index >= c->tensors.size())
                return -EINVAL;
        const Tensor &x = c->tensors[index];
        *ret = npu_onnx_calibration_entry{};
        ret->name = x.key.c_str();
        ret->tensor = x.id;
        ret->layer = x.layer;
        ret->elements = x.elements;
        ret->min_bits = x.min_bits;
        for (int d = 0; d < 4; d++) {
                ret->method[d] = x.chosen[d].method.c_str();
                ret->lo[d] = x.chosen[d].lo;
                ret->hi[d] = x.chosen[d].hi;
                ret->sqnr_db[d] = x.sens[d];
        }
        return 0;
}

extern "C" int npu_onnx_calibration_save(const npu_onnx_calibration *c, const char *path, char *why, size_t why_size)
{
        if (!c || !path)
                return fail(why, why_size, -EINVAL, "no calibration or path");
        std::map<std::string, std::string> keys;
        for (const auto &[k, v] : c->m->g.metadata)
                if (k == "bwq.activation_bits")
                        keys[k] = v;  // the model's own limits stay
        for (const Tensor &x : c->tensors) {
                std::string v;
                for (int d = 0; d < 4; d++)
                        v += fmt("%s%u:%s", d ? ";" : "", kDepths[d], range_text(x.chosen[d]).c_str());
                keys["bwq.ranges." + x.key] = v;
                keys["bwq.layer_bits." + x.key] = std::to_string(x.min_bits) + ":16";
                if (!x.bias.empty()) {
                        size_t C = x.bias.size() / 4;
                        std::string b;
                        for (int d = 0; d < 4; d++) {
                                b += fmt("%s%u:", d ? ";" : "", kDepths[d]);
                                for (size_t ch = 0; ch < C; ch++)
                                        b += fmt("%s%.7g", ch ? "," : "", double(x.bias[size_t(d) * C + ch]));
                        }
                        keys["bwq.bias." + x.key] = b;
                }
        }
        keys["bwq.calibration"] = fmt("npu-calibrate: %llu samples, ranges %s, output SQNR budget %.1f dB; per-layer minimums "
                                      "%.2f dB at %.3f of the 16-bit activation bytes",
                                      (unsigned long long)c->samples, kMethods[c->method], c->budget_db, c->mix_db,
                                      c->uniform_bytes[3] ? double(c->mix_bytes) / double(c->uniform_bytes[3]) : 0.0);
        if (auto e = onnxfe::save_metadata(c->m->path, path, keys))
                return fail(why, why_size, e->code < 0 ? e->code : -EIO, e->message);
        return 0;
}

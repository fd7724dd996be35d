// npu-onnx(3): load, describe, compile and run a model, with the layout
// conversion between the model's tensors and the device's NHWC at the
// boundary.
#include <errno.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <sstream>

#include "common/depth.h"
#include "model.h"
#include "npu/onnx.h"


namespace {

npu_onnx_tensor_info info_of(const onnxfe::Value &v)
{
        npu_onnx_tensor_info t{};
        t.name = v.name.c_str();
        t.rank = uint32_t(v.shape.size());
        t.elements = 1;
        for (size_t i = 0; i < v.shape.size() && i < NPU_ONNX_MAX_RANK; i++) {
                t.dims[i] = v.shape[i];
                t.elements = v.shape[i] < 0 ? 0 : t.elements * uint64_t(v.shape[i]);
        }
        return t;
}

std::string placement_text(const npu_onnx &m)
{
        std::string s;
        char line[512];
        const onnxfe::Rewrites &d = m.done;
        size_t host = 0, segments = 0;
        for (size_t l = 0; l < m.low.layer_reasons.size(); l++)
                if (!m.low.layer_reasons[l].empty()) {
                        host++;
                        segments += l == 0 || m.low.layer_reasons[l - 1].empty();
                }
        snprintf(line, sizeof line, "%zu device layers, %zu host nodes in %zu host segments\n", m.low.layer_names.size() - host, host,
                 segments);
        s += line;
        snprintf(line, sizeof line,
                 "rewrites: %u BatchNormalization folded, %u BatchNormalization alone, "
                 "%u constant Add/Sub/Mul/Div folded, %u input Add/Sub/Mul/Div into the conversion, %u HardSwish and "
                 "%u HardSigmoid recognised, %u activations fused, %u Pad into a Conv, %u Transpose and %u reshapes as views, "
                 "%u channel pads, %u residual Add into a Conv\n",
                 d.batchnorm_folded, d.batchnorm_alone, d.affine_folded, d.input_ops_folded,
                 d.hardswish_matched, d.hardsigmoid_matched, d.activations_fused, d.pads_folded, d.transposes_viewed,
                 d.reshapes_viewed, d.channel_pads, d.residuals_fused);
        s += line;
        for (size_t l = 0; l < m.low.layer_names.size(); l++) {
                const std::string &why = m.low.layer_reasons[l];
                const std::string &also = m.low.layer_also[l];
                snprintf(line, sizeof line, "  %s %3zu  %-24s %s%s%s%s%s\n", why.empty() ? "npu " : "host", l, m.low.layer_ops[l].c_str(),
                         also.c_str(), also.empty() ? "" : " + ", m.low.layer_names[l].c_str(), why.empty() ? "" : ": ", why.c_str());
                s += line;
        }
        return s;
}

// "MIN:MAX" of the depths.
bool parse_bits(const std::string &v, unsigned *lo, unsigned *hi)
{
        unsigned a, b;
        char tail;
        if (sscanf(v.c_str(), "%u:%u%c", &a, &b, &tail) != 2)
                return false;
        auto ok = [](unsigned d) { return d == 4 || d == 6 || d == 8 || d == 16; };
        if (!ok(a) || !ok(b) || a > b)
                return false;
        *lo = a, *hi = b;
        return true;
}

// "4:V,...;6:V,...;8:V,...;16:V,...": n finite values per depth, every
// depth once, in any order; into rows[NPU_BITS_COUNT][n].  The format of
// bwq.ranges (n = 2: LO,HI) and bwq.bias (n = the layer's channels).
bool parse_depth_rows(const std::string &v, uint32_t n, std::vector<float> *rows)
{
        rows->assign(4 * size_t(n), 0.0f);
        if (v.empty() || v.back() == ';')
                return false;
        bool seen[4] = {};
        std::stringstream ss(v);
        std::string row;
        int count = 0;
        while (std::getline(ss, row, ';')) {
                unsigned bits;
                int used = 0;
                if (++count > 4 || sscanf(row.c_str(), "%u:%n", &bits, &used) != 1 || used == 0)
                        return false;
                int i = bwq::depth_index(bits);
                if (i < 0 || seen[i])
                        return false;
                seen[i] = true;
                const char *p = row.c_str() + used;
                for (uint32_t k = 0; k < n; k++) {
                        char *e;
                        errno = 0;
                        float f = std::strtof(p, &e);
                        if (e == p || errno || !std::isfinite(f) || (k + 1 < n ? *e != ',' : *e != '\0'))
                                return false;
                        (*rows)[size_t(i) * n + k] = f;
                        p = e + 1;
                }
        }
        return count == 4;
}

// bwq.ranges: LO <= 0 <= HI at every depth.
bool parse_ranges(const std::string &v, float *lo, float *hi)
{
        std::vector<float> rows;
        if (!parse_depth_rows(v, 2, &rows))
                return false;
        for (int i = 0; i < 4; i++) {
                lo[i] = rows[size_t(2 * i)], hi[i] = rows[size_t(2 * i + 1)];
                if (lo[i] > 0.0f || hi[i] < 0.0f)
                        return false;
        }
        return true;
}

// Each device tensor's key: inputs by name, layers by node, the k-th
// layer of a node (k >= 2) as NODE#k.
void make_tensor_keys(npu_onnx &m)
{
        m.tensor_keys.assign(size_t(npu_graph_tensor_count(m.low.graph)), "");
        for (size_t i = 0; i < m.low.inputs.size(); i++)
                m.tensor_keys[size_t(m.low.inputs[i].tensor)] = m.g.values[size_t(m.g.inputs[i])].name;
        std::map<std::string, int> seen;
        for (size_t l = 0; l < m.low.layer_names.size(); l++) {
                int k = ++seen[m.low.layer_names[l]];
                m.tensor_keys[size_t(m.low.layer_tensors[l])] =
                        k == 1 ? m.low.layer_names[l] : m.low.layer_names[l] + "#" + std::to_string(k);
        }
}

int tensor_of_key(const npu_onnx &m, const std::string &key)
{
        for (size_t t = 0; t < m.tensor_keys.size(); t++)
                if (!key.empty() && m.tensor_keys[t] == key)
                        return int(t);
        return -1;
}

// The depth limits and ranges the model carries in its metadata_props
// (npu-onnx(3)).
std::optional<onnxfe::Error> apply_limits(npu_onnx &m)
{
        const std::string layer_key = "bwq.layer_bits.", range_key = "bwq.ranges.", bias_key = "bwq.bias.";
        size_t ranges = 0;
        for (const auto &[k, v] : m.g.metadata) {
                if (k == "bwq.activation_bits") {
                        if (!parse_bits(v, &m.min_bits, &m.max_bits))
                                return onnxfe::Error{-EINVAL, "metadata " + k + ": '" + v + "' is not MIN:MAX of 4, 6, 8 and 16"};
                } else if (k.compare(0, layer_key.size(), layer_key) == 0) {
                        std::string node = k.substr(layer_key.size());
                        unsigned lo, hi;
                        if (!parse_bits(v, &lo, &hi))
                                return onnxfe::Error{-EINVAL, "metadata " + k + ": '" + v + "' is not MIN:MAX of 4, 6, 8 and 16"};
                        bool found = false;
                        if (int t = tensor_of_key(m, node); t >= 0) {
                                if (npu_graph_set_bits_range(m.low.graph, t, lo, hi) < 0)
                                        return onnxfe::Error{-EINVAL, "metadata " + k + ": the graph refused the limits"};
                                found = true;
                        } else {
                                for (size_t l = 0; l < m.low.layer_names.size(); l++)
                                        if (m.low.layer_names[l] == node || m.low.layer_also[l] == node) {
                                                int r = npu_graph_set_bits_range(m.low.graph, m.low.layer_tensors[l], lo, hi);
                                                if (r < 0)
                                                        return onnxfe::Error{r, "metadata " + k + ": the graph refused the limits"};
                                                found = true;
                                        }
                        }
                        if (!found)
                                return onnxfe::Error{-EINVAL, "metadata " + k + ": no input or device layer comes from node '" + node + "'"};
                } else if (k.compare(0, range_key.size(), range_key) == 0) {
                        std::string name = k.substr(range_key.size());
                        float lo[4], hi[4];
                        if (!parse_ranges(v, lo, hi))
                                return onnxfe::Error{-EINVAL, "metadata " + k + ": '" + v.substr(0, 200) +
                                                                      "' is not 4:LO,HI;6:LO,HI;8:LO,HI;16:LO,HI with finite LO <= 0 <= HI"};
                        int t = tensor_of_key(m, name);
                        if (t < 0)
                                return onnxfe::Error{-EINVAL, "metadata " + k + ": no input or layer is named '" + name + "'"};
                        if (npu_graph_set_tensor_ranges(m.low.graph, t, lo, hi) < 0)
                                return onnxfe::Error{-EINVAL, "metadata " + k + ": the graph refused the ranges"};
                        ranges++;
                } else if (k.compare(0, bias_key.size(), bias_key) == 0) {
                        std::string name = k.substr(bias_key.size());
                        int t = tensor_of_key(m, name);
                        if (t < 0)
                                return onnxfe::Error{-EINVAL, "metadata " + k + ": no input or layer is named '" + name + "'"};
                        npu_host_shape sh;
                        npu_graph_tensor_shape(m.low.graph, t, &sh);
                        std::vector<float> delta;
                        if (!parse_depth_rows(v, sh.c, &delta))
                                return onnxfe::Error{-EINVAL, "metadata " + k + ": not 4:V,...;6:V,...;8:V,...;16:V,... of " +
                                                                      std::to_string(sh.c) + " finite values each"};
                        if (npu_graph_set_bias_correction(m.low.graph, t, delta.data(), delta.size()) < 0)
                                return onnxfe::Error{-EINVAL, "metadata " + k + ": '" + name +
                                                                      "' is not a convolution or fully connected layer"};
                } else if (k == "bwq.calibration") {
                        if (v.size() > 4096)
                                return onnxfe::Error{-EINVAL, "metadata " + k + ": over 4096 characters"};
                        m.calibration_note = v;
                } else if (k.compare(0, 4, "bwq.") == 0) {
                        return onnxfe::Error{-EINVAL, "metadata " + k + ": not a key of this frontend (npu-onnx(3))"};
                }
        }
        size_t want = 0;
        for (const auto &key : m.tensor_keys)
                want += !key.empty();
        m.ranges_given = ranges > 0 && ranges == want;
        return std::nullopt;
}

int fail(char *why, size_t n, const onnxfe::Error &e)
{
        if (why && n)
                snprintf(why, n, "%s", e.message.c_str());
        return e.code < 0 ? e.code : -EINVAL;
}

} // namespace

extern "C" int npu_onnx_load(const char *path, const npu_onnx_options *opts, npu_onnx **ret, char *why, size_t why_size)
{
        if (!path || !ret)
                return fail(why, why_size, {-EINVAL, "no model file"});
        if (opts && (opts->size != sizeof *opts || (opts->flags & ~(NPU_ONNX_INPUTS_ONLY | NPU_ONNX_NO_HOST))))
                return fail(why, why_size, {-EINVAL, "npu_onnx_options: unknown size or flags"});
        if (opts)
                for (uint64_t r : opts->reserved)
                        if (r)
                                return fail(why, why_size, {-EINVAL, "npu_onnx_options: reserved fields must be zero"});
        auto m = std::make_unique<npu_onnx>();
        std::string file = path;
        auto prefix = [&](onnxfe::Error e) {
                e.message = file + ": " + e.message;
                return e;
        };
        if (auto e = onnxfe::load_file(path, &m->g))
                return fail(why, why_size, prefix(*e));
        if (opts && (opts->flags & NPU_ONNX_INPUTS_ONLY)) {
                for (int v : m->g.inputs)
                        m->in_info.push_back(info_of(m->g.values[size_t(v)]));
                *ret = m.release();
                return 0;
        }
        if (auto e = onnxfe::set_input_shapes(&m->g, opts && opts->input_shapes ? opts->input_shapes : ""))
                return fail(why, why_size, prefix(*e));
        if (auto e = onnxfe::infer_and_fold(&m->g))
                return fail(why, why_size, prefix(*e));
        onnxfe::rewrite(&m->g, &m->done);
        if (auto e = onnxfe::lower(&m->g, &m->low, &m->done, opts && (opts->flags & NPU_ONNX_NO_HOST)))
                return fail(why, why_size, prefix(*e));
        make_tensor_keys(*m);
        m->path = path;
        if (auto e = apply_limits(*m))
                return fail(why, why_size, prefix(*e));
        for (int v : m->g.inputs)
                m->in_info.push_back(info_of(m->g.values[size_t(v)]));
        for (int v : m->g.outputs)
                m->out_info.push_back(info_of(m->g.values[size_t(v)]));
        m->placement = placement_text(*m);
        *ret = m.release();
        return 0;
}

extern "C" void npu_onnx_free(npu_onnx *m) { delete m; }

extern "C" unsigned npu_onnx_input_count(const npu_onnx *m) { return m ? unsigned(m->in_info.size()) : 0; }
extern "C" unsigned npu_onnx_output_count(const npu_onnx *m) { return m ? unsigned(m->out_info.size()) : 0; }

extern "C" int npu_onnx_input_info(const npu_onnx *m, unsigned index, npu_onnx_tensor_info *ret)
{
        if (!m || !ret || index >= m->in_info.size())
                return -EINVAL;
        *ret = m->in_info[index];
        return 0;
}

extern "C" int npu_onnx_output_info(const npu_onnx *m, unsigned index, npu_onnx_tensor_info *ret)
{
        if (!m || !ret || index >= m->out_info.size())
                return -EINVAL;
        *ret = m->out_info[index];
        return 0;
}

extern "C" const npu_graph *npu_onnx_graph(const npu_onnx *m) { return m ? m->low.graph : nullptr; }
extern "C" const char *npu_onnx_placement(const npu_onnx *m) { return m ? m->placement.c_str() : nullptr; }

extern "C" unsigned npu_onnx_node_count(const npu_onnx *m) { return m ? unsigned(m->g.nodes.size()) : 0; }

extern "C" const char *npu_onnx_node_op(const npu_onnx *m, unsigned node)
{
        return m && node < m->g.nodes.size() ? m->g.nodes[node].op.c_str() : nullptr;
}

extern "C" int npu_onnx_node_attr(const npu_onnx *m, unsigned node, const char *name, npu_onnx_attr *ret)
{
        if (!m || !name || !ret || node >= m->g.nodes.size())
                return -EINVAL;
        const onnxfe::Attr *a = m->g.nodes[node].attr(name);
        if (!a || a->kind == onnxfe::Attr::Other)
                return -ENOENT;
        *ret = npu_onnx_attr{};
        switch (a->kind) {
        case onnxfe::Attr::Int: ret->kind = NPU_ONNX_ATTR_INT, ret->i = a->i; break;
        case onnxfe::Attr::Float: ret->kind = NPU_ONNX_ATTR_FLOAT, ret->f = a->f; break;
        case onnxfe::Attr::String: ret->kind = NPU_ONNX_ATTR_STRING, ret->s = a->s.c_str(); break;
        case onnxfe::Attr::Ints:
                ret->kind = NPU_ONNX_ATTR_INTS, ret->ints = a->ints.data(), ret->count = uint32_t(a->ints.size());
                break;
        case onnxfe::Attr::Floats:
                ret->kind = NPU_ONNX_ATTR_FLOATS, ret->floats = a->floats.data(), ret->count = uint32_t(a->floats.size());
                break;
        default: ret->kind = NPU_ONNX_ATTR_TENSOR; break;
        }
        return 0;
}

extern "C" int npu_onnx_read_tensor(const char *path, npu_npy *ret, uint32_t *ret_type, char *why, size_t why_size)
{
        if (!path || !ret || !ret_type)
                return fail(why, why_size, {-EINVAL, "no tensor file"});
        onnxfe::Constant c;
        int type = 0;
        if (auto e = onnxfe::load_tensor_file(path, &c, &type))
                return fail(why, why_size, *e);
        if (c.shape.size() > NPU_NPY_MAX_RANK)
                return fail(why, why_size, {-E2BIG, std::string(path) + ": rank over " + std::to_string(NPU_NPY_MAX_RANK)});
        npu_npy a{};
        a.rank = uint32_t(c.shape.size());
        for (size_t i = 0; i < c.shape.size(); i++)
                a.dims[i] = c.shape[i];
        a.elements = uint64_t(c.elements());
        a.data = static_cast<float *>(std::malloc(std::max<uint64_t>(a.elements, 1) * sizeof(float)));
        if (!a.data)
                return fail(why, why_size, {-ENOMEM, "no memory"});
        for (uint64_t k = 0; k < a.elements; k++)
                a.data[k] = float(c.at(size_t(k)));
        *ret = a;
        *ret_type = uint32_t(type);
        return 0;
}

extern "C" int npu_onnx_bits_range(const npu_onnx *m, unsigned *ret_min, unsigned *ret_max)
{
        if (!m || !ret_min || !ret_max)
                return -EINVAL;
        *ret_min = m->min_bits;
        *ret_max = m->max_bits;
        return 0;
}

extern "C" const char *npu_onnx_layer_name(const npu_onnx *m, unsigned layer)
{
        return m && layer < m->low.layer_names.size() ? m->low.layer_names[layer].c_str() : nullptr;
}

// `count` samples of the model's inputs in the device's layout, in m's
// scratch buffers.
std::vector<const float *> onnxfe::to_device(npu_onnx *m, const float *const *inputs, uint64_t count)
{
        m->scratch_in.resize(m->low.inputs.size());
        std::vector<const float *> ptrs;
        for (size_t i = 0; i < m->low.inputs.size(); i++) {
                const onnxfe::View &v = m->low.inputs[i];
                auto &buf = m->scratch_in[i];
                int64_t n = v.elements();
                // Every element is written each time: the view is a permutation.
                buf.resize(size_t(n * int64_t(count)));
                const auto &mul = m->low.input_mul[i], &add = m->low.input_add[i];
                // The channel of element e of an [N, C, H, W] input: (e / inner) % C.
                int64_t C = mul.empty() ? 1 : int64_t(mul.size()), inner = mul.empty() ? 1 : v.shape[2] * v.shape[3];
                for (uint64_t s = 0; s < count; s++) {
                        const float *src = inputs[i] + int64_t(s) * n;
                        float *dst = buf.data() + int64_t(s) * n;
                        v.each_run([&](int64_t e, int64_t off, int64_t len, int64_t step) {
                                const float *x = src + e;
                                float *d = dst + off;
                                if (mul.empty() && step == 1) {
                                        std::memcpy(d, x, size_t(len) * sizeof(float));
                                } else if (mul.empty()) {
                                        for (int64_t k = 0; k < len; k++)
                                                d[k * step] = x[k];
                                } else {
                                        // Pieces of one channel each: it changes every `inner` elements.
                                        for (int64_t k = 0; k < len;) {
                                                const int64_t piece = std::min(len - k, inner - (e + k) % inner);
                                                const size_t c = size_t(((e + k) / inner) % C);
                                                const float a = mul[c], b = add[c];
                                                for (int64_t j = k; j < k + piece; j++)
                                                        d[j * step] = x[j] * a + b;
                                                k += piece;
                                        }
                                }
                        });
                }
                ptrs.push_back(buf.data());
        }
        return ptrs;
}

void onnxfe::from_device(const onnxfe::View &v, const float *dev, float *out)
{
        v.each_run([&](int64_t e, int64_t off, int64_t len, int64_t step) {
                if (step == 1)
                        std::memcpy(out + e, dev + off, size_t(len) * sizeof(float));
                else
                        for (int64_t k = 0; k < len; k++)
                                out[e + k] = dev[off + k * step];
        });
}

extern "C" int npu_onnx_compile(npu_onnx *m, npu_device *dev, const float *const *calibration, const npu_compile_options *opts,
                                npu_model **ret)
{
        if (!m || !dev || !ret || !m->low.graph)
                return -EINVAL;
        npu_compile_options o{};
        if (opts)
                o = *opts;
        if (!calibration && m->ranges_given) { // a calibrated model: its own ranges
                o.calibration_input = nullptr;
                o.calibration_inputs = nullptr;
                return npu_model_compile(dev, m->low.graph, &o, ret);
        }
        if (!calibration)
                return -EINVAL;
        for (size_t i = 0; i < m->in_info.size(); i++)
                if (!calibration[i])
                        return -EINVAL;
        auto ptrs = onnxfe::to_device(m, calibration, o.calibration_count ? o.calibration_count : 1);
        o.calibration_input = nullptr;
        o.calibration_inputs = ptrs.data();
        return npu_model_compile(dev, m->low.graph, &o, ret);
}

extern "C" int npu_onnx_run(npu_onnx *m, npu_model *model, const float *const *inputs, float *const *outputs,
                            npu_run_stats *ret_stats)
{
        if (!m || !model || !inputs || !outputs || !m->low.graph)
                return -EINVAL;
        for (size_t i = 0; i < m->in_info.size(); i++)
                if (!inputs[i])
                        return -EINVAL;
        for (size_t i = 0; i < m->out_info.size(); i++)
                if (!outputs[i])
                        return -EINVAL;
        auto ptrs = onnxfe::to_device(m, inputs);
        int r = npu_model_run_inputs(model, ptrs.data(), unsigned(ptrs.size()), ret_stats);
        if (r < 0)
                return r;
        m->scratch_out.resize(m->low.outputs.size());
        for (size_t j = 0; j < m->low.outputs.size(); j++) {
                const onnxfe::View &v = m->low.outputs[j];
                auto &buf = m->scratch_out[j];
                buf.resize(size_t(v.elements()));
                if ((r = npu_model_output(model, unsigned(j), buf.data(), buf.size())) < 0)
                        return r;
                onnxfe::from_device(v, buf.data(), outputs[j]);
        }
        return 0;
}

extern "C" int npu_onnx_reference(npu_onnx *m, const float *const *inputs, float *const *outputs, uint32_t flags)
{
        if (!m || !inputs || !outputs || !m->low.graph)
                return -EINVAL;
        auto ptrs = onnxfe::to_device(m, inputs);
        for (size_t j = 0; j < m->low.outputs.size(); j++) {
                const onnxfe::View &v = m->low.outputs[j];
                std::vector<float> buf(size_t(v.elements()));
                int r = npu_graph_reference_inputs(m->low.graph, ptrs.data(), unsigned(ptrs.size()), flags, v.tensor, buf.data(),
                                                   buf.size());
                if (r < 0)
                        return r;
                onnxfe::from_device(v, buf.data(), outputs[j]);
        }
        return 0;
}

extern "C" const char *npu_onnx_tensor_key(const npu_onnx *m, int tensor)
{
        if (!m || tensor < 0 || size_t(tensor) >= m->tensor_keys.size() || m->tensor_keys[size_t(tensor)].empty())
                return nullptr;
        return m->tensor_keys[size_t(tensor)].c_str();
}

extern "C" int npu_onnx_calibrated(const npu_onnx *m) { return m && m->ranges_given; }

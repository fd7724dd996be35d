// The op harness of the tests: one layer as a raw job on two devices, a
// float reference, and the error bound derived from the scales.
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "common/weights.h"
#include "npu/npu.h"
#include "op_harness.h"
#include "common/quant.h"

namespace test {




static float lipschitz(uint8_t act)
{
        switch (act) {
        case NPU_ACT_HARDSWISH: return 1.5f;
        case NPU_ACT_HARDSIGMOID: return 1.0f / 6.0f;
        case NPU_ACT_SIGMOID: return 0.25f;
        default: return 1.0f;
        }
}

static float act_ref(float v, uint8_t act)
{
        switch (act) {
        case NPU_ACT_RELU: return v > 0 ? v : 0;
        case NPU_ACT_RELU6: return v < 0 ? 0 : v > 6 ? 6 : v;
        case NPU_ACT_HARDSWISH: return v * std::min(6.0f, std::max(0.0f, v + 3)) / 6;
        case NPU_ACT_HARDSIGMOID: return std::min(1.0f, std::max(0.0f, v / 6 + 0.5f));
        case NPU_ACT_SIGMOID: return 1 / (1 + std::exp(-v));
        default: return v;
        }
}

Tensor random_tensor(test::Rng &rng, uint32_t n, uint32_t h, uint32_t w, uint32_t c, float lo, float hi)
{
        Tensor t{n, h, w, c, {}};
        t.v.resize(t.size());
        for (auto &x : t.v)
                x = rng.uniform(lo, hi);
        return t;
}

static uint32_t extent(uint32_t in, uint32_t k, uint32_t s, uint32_t d, uint32_t p0, uint32_t p1)
{
        return (in + p0 + p1 - (d * (k - 1) + 1)) / s + 1;
}

// The float reference of one layer, and the error bound of each output.
Tensor reference(const Case &cs)
{
        const Tensor &x = cs.in[0];
        Tensor y{x.n, x.h, x.w, x.c, {}};
        bool fc = cs.op == NPU_OP_FULLY_CONNECTED;
        if (cs.op == NPU_OP_CONV2D) {
                y.h = extent(x.h, cs.k, cs.s, cs.d, cs.pt, cs.pb);
                y.w = extent(x.w, cs.KW(), cs.SW(), cs.d, cs.pl, cs.pr);
                y.c = cs.cout;
        } else if (fc || cs.op == NPU_OP_GLOBAL_AVGPOOL) {
                y.h = y.w = 1;
                y.c = fc ? cs.cout : x.c;
        } else if (cs.op == NPU_OP_MAXPOOL || cs.op == NPU_OP_AVGPOOL) {
                y.h = extent(x.h, cs.k, cs.s, 1, cs.pt, cs.pb);
                y.w = extent(x.w, cs.KW(), cs.SW(), 1, cs.pl, cs.pr);
        } else if (cs.op == NPU_OP_RESIZE) {  // k: 1 nearest, 2 bilinear; s, SW(): factors
                y.h = x.h * cs.s;
                y.w = x.w * cs.SW();
        } else if (cs.op == NPU_OP_DEPTH_TO_SPACE) {  // s x SW() blocks
                y.h = x.h * cs.s;
                y.w = x.w * cs.SW();
                y.c = x.c / (cs.s * cs.SW());
        } else if (cs.op == NPU_OP_CONCAT) {
                y.c = 0;
                for (const auto &t : cs.in)
                        y.c += t.c;
        }
        y.v.assign(y.size(), 0.0f);
        for (size_t b = 0; b < y.n; b++)
                for (size_t oy = 0; oy < y.h; oy++)
                        for (size_t ox = 0; ox < y.w; ox++)
                                for (size_t co = 0; co < y.c; co++) {
                                        double s = 0;
                                        switch (cs.op) {
                                        case NPU_OP_CONV2D: {
                                                size_t cig = x.c / cs.groups, cog = y.c / cs.groups, g = co / cog;
                                                for (size_t ky = 0; ky < cs.k; ky++)
                                                        for (size_t kx = 0; kx < cs.KW(); kx++) {
                                                                long iy = long(oy * cs.s + ky * cs.d) - cs.pt;
                                                                long ix = long(ox * cs.SW() + kx * cs.d) - cs.pl;
                                                                if (iy < 0 || iy >= long(x.h) || ix < 0 || ix >= long(x.w))
                                                                        continue;
                                                                for (size_t ci = 0; ci < cig; ci++)
                                                                        s += double(x.at(b, iy, ix, g * cig + ci)) *
                                                                             cs.weights[((co * cs.k + ky) * cs.KW() + kx) * cig + ci];
                                                        }
                                                s += cs.bias[co];
                                                // A second input: the residual (NPU_LAYER_RESIDUAL), zero past its channels.
                                                if (cs.in.size() > 1 && co < cs.in[1].c)
                                                        s += cs.in[1].at(b, oy, ox, co);
                                                break;
                                        }
                                        case NPU_OP_FULLY_CONNECTED: {
                                                size_t K = size_t(x.h) * x.w * x.c;
                                                for (size_t k = 0; k < K; k++)
                                                        s += double(x.v[b * K + k]) * cs.weights[co * K + k];
                                                s += cs.bias[co];
                                                break;
                                        }
                                        case NPU_OP_ADD:
                                                s = double(x.at(b, oy, ox, co)) + cs.in[1].at(b, oy, ox, co);
                                                break;
                                        case NPU_OP_MUL: {
                                                const Tensor &t = cs.in[1];
                                                bool bc = t.h == 1 && t.w == 1;
                                                s = double(x.at(b, oy, ox, co)) * t.at(b, bc ? 0 : oy, bc ? 0 : ox, co);
                                                break;
                                        }
                                        case NPU_OP_MAXPOOL:
                                        case NPU_OP_AVGPOOL: {
                                                double m = -1e30;
                                                int cnt = 0;
                                                for (size_t ky = 0; ky < cs.k; ky++)
                                                        for (size_t kx = 0; kx < cs.KW(); kx++) {
                                                                long iy = long(oy * cs.s + ky) - cs.pt, ix = long(ox * cs.SW() + kx) - cs.pl;
                                                                if (iy < 0 || iy >= long(x.h) || ix < 0 || ix >= long(x.w))
                                                                        continue;
                                                                double v = x.at(b, iy, ix, co);
                                                                m = std::max(m, v);
                                                                s += v;
                                                                cnt++;
                                                        }
                                                s = cs.op == NPU_OP_MAXPOOL ? m : s / cnt;
                                                break;
                                        }
                                        case NPU_OP_GLOBAL_AVGPOOL:
                                                for (size_t iy = 0; iy < x.h; iy++)
                                                        for (size_t ix = 0; ix < x.w; ix++)
                                                                s += x.at(b, iy, ix, co);
                                                s /= double(x.h) * x.w;
                                                break;
                                        case NPU_OP_DEPTH_TO_SPACE:
                                                s = x.at(b, oy / cs.s, ox / cs.SW(), ((oy % cs.s) * cs.SW() + ox % cs.SW()) * y.c + co);
                                                break;
                                        case NPU_OP_RESIZE: {
                                                if (cs.k == 1) {
                                                        s = x.at(b, oy / cs.s, ox / cs.SW(), co);
                                                        break;
                                                }
                                                // ONNX Resize linear, half_pixel: a source coordinate per axis.
                                                double sy = std::clamp((oy + 0.5) / cs.s - 0.5, 0.0, double(x.h - 1));
                                                double sx = std::clamp((ox + 0.5) / cs.SW() - 0.5, 0.0, double(x.w - 1));
                                                size_t y0 = size_t(sy), x0 = size_t(sx);
                                                size_t y1 = std::min<size_t>(y0 + 1, x.h - 1), x1 = std::min<size_t>(x0 + 1, x.w - 1);
                                                double fy = sy - double(y0), fx = sx - double(x0);
                                                s = (1 - fy) * ((1 - fx) * x.at(b, y0, x0, co) + fx * x.at(b, y0, x1, co)) +
                                                    fy * ((1 - fx) * x.at(b, y1, x0, co) + fx * x.at(b, y1, x1, co));
                                                break;
                                        }
                                        case NPU_OP_CONCAT: {
                                                size_t cc = co;
                                                for (const auto &t : cs.in) {
                                                        if (cc < t.c) {
                                                                s = t.at(b, oy, ox, cc);
                                                                break;
                                                        }
                                                        cc -= t.c;
                                                }
                                                break;
                                        }
                                        }
                                        y.v[((b * y.h + oy) * y.w + ox) * y.c + co] = act_ref(float(s), cs.act);
                                }
        return y;
}

static float range_lo(const std::vector<float> &v)
{
        float m = 0;
        for (float x : v)
                m = std::min(m, x);
        return m;
}

static float range_hi(const std::vector<float> &v)
{
        float m = 0;
        for (float x : v)
                m = std::max(m, x);
        return m;
}

static void fill_ranges(npu_tensor_desc &d, const std::vector<float> &v)
{
        for (int i = 0; i < NPU_BITS_COUNT; i++) {
                d.lo[i] = range_lo(v);
                d.hi[i] = range_hi(v);
        }
}


// Runs one case on `dev` and returns the output.
RunOut run_case(npu_device *dev, const Case &cs, const Tensor &ref, unsigned bits_in, unsigned bits_out)
{
        test::RawJob j;
        uint64_t off = 0;
        std::vector<uint32_t> ins;
        for (size_t i = 0; i < cs.in.size(); i++) {
                const Tensor &t = cs.in[i];
                ins.push_back(j.tensor(1, off, t.n, t.h, t.w, t.c, bits_in));
                fill_ranges(j.t.back(), t.v);
                if (i < cs.in_range.size())
                        for (int k = 0; k < NPU_BITS_COUNT; k++)
                                j.t.back().lo[k] = cs.in_range[i].first, j.t.back().hi[k] = cs.in_range[i].second;
                off += (t.size() * 2 + 63) / 64 * 64;
        }
        uint32_t out = j.tensor(1, off, ref.n, ref.h, ref.w, ref.c);
        fill_ranges(j.t.back(), ref.v);
        if (cs.out_range.first != cs.out_range.second)
                for (int k = 0; k < NPU_BITS_COUNT; k++)
                        j.t.back().lo[k] = cs.out_range.first, j.t.back().hi[k] = cs.out_range.second;
        uint64_t act_size = off + ref.size() * 2 + 64;
        auto &L = j.layer(cs.op, ins[0], out, bits_out);
        L.act = cs.act;
        L.input_count = uint8_t(ins.size());
        for (size_t i = 1; i < ins.size(); i++)
                L.inputs[i] = ins[i];
        if (cs.op == NPU_OP_CONV2D && ins.size() > 1)
                L.flags |= NPU_LAYER_RESIDUAL;

        bwq::PackedWeights pw;
        uint64_t param_size = 64;
        if (cs.op == NPU_OP_CONV2D || cs.op == NPU_OP_FULLY_CONNECTED) {
                const Tensor &x = cs.in[0];
                const bool fc = cs.op == NPU_OP_FULLY_CONNECTED;
                std::vector<float> ones(cs.cout, 1.0f);
                pw = bwq::pack_weights(cs.weights.data(),
                                       {cs.cout, fc ? x.h * x.w * x.c : x.c, cs.k, cs.KW(), cs.groups, fc},
                                       cs.unit_weight_scale ? ones.data() : nullptr);
                for (size_t i : cs.min_weights)
                        pw.data.at(i) = -128;
                L.groups = cs.op == NPU_OP_CONV2D ? cs.groups : 1;
                L.param_bo_index = 2;
                L.weight_offset = 0;
                L.weight_size = pw.data.size();
                L.scale_offset = (pw.data.size() + 63) / 64 * 64;
                L.bias_offset = L.scale_offset + (4 * cs.cout + 63) / 64 * 64;
                param_size = L.bias_offset + 4 * cs.cout;
        }
        if (cs.op == NPU_OP_RESIZE || cs.op == NPU_OP_DEPTH_TO_SPACE) {
                L.kernel_h = L.kernel_w = uint16_t(cs.op == NPU_OP_RESIZE ? cs.k : 0);
                L.stride_h = uint16_t(cs.s), L.stride_w = uint16_t(cs.SW());
        }
        if (cs.op == NPU_OP_CONV2D || cs.op == NPU_OP_MAXPOOL || cs.op == NPU_OP_AVGPOOL) {
                L.kernel_h = uint16_t(cs.k), L.kernel_w = uint16_t(cs.KW());
                L.stride_h = uint16_t(cs.s), L.stride_w = uint16_t(cs.SW());
                L.dilation_h = L.dilation_w = uint16_t(cs.op == NPU_OP_CONV2D ? cs.d : 1);
                L.pad_top = uint16_t(cs.pt), L.pad_left = uint16_t(cs.pl);
                L.pad_bottom = uint16_t(cs.pb), L.pad_right = uint16_t(cs.pr);
        }
        j.h.result_offset = 0;
        auto cmd = j.bytes();
        uint64_t cmd_off = 4096;

        npu_bo *jb, *ab, *pb;
        assert_int_equal(npu_bo_create(dev, cmd_off + cmd.size(), &jb), 0);
        assert_int_equal(npu_bo_create(dev, act_size, &ab), 0);
        assert_int_equal(npu_bo_create(dev, param_size, &pb), 0);
        std::memcpy(static_cast<uint8_t *>(npu_bo_map(jb)) + cmd_off, cmd.data(), cmd.size());
        uint8_t *act = static_cast<uint8_t *>(npu_bo_map(ab));
        for (size_t i = 0; i < cs.in.size(); i++) {
                const auto &d = j.t[ins[i]];
                int bi = bwq::depth_index(bits_in);
                bwq::quantize_pack(cs.in[i].v.data(), cs.in[i].size(), bwq::qparams(d.lo[bi], d.hi[bi], bits_in),
                                      bits_in, act + d.offset);
        }
        if (!pw.data.empty()) {
                uint8_t *p = static_cast<uint8_t *>(npu_bo_map(pb));
                std::memcpy(p, pw.data.data(), pw.data.size());
                std::memcpy(p + L.scale_offset, pw.scale.data(), 4 * cs.cout);
                std::memcpy(p + L.bias_offset, cs.bias.data(), 4 * cs.cout);
        }
        uint32_t handles[3] = {npu_bo_handle(jb), npu_bo_handle(ab), npu_bo_handle(pb)};
        drm_npu_submit s{};
        s.bo_handles = uint64_t(uintptr_t(handles));
        s.bo_handle_count = 3;
        s.cmd_offset = cmd_off;
        s.cmd_size = cmd.size();
        int r = npu_ioctl(dev, DRM_IOCTL_NPU_SUBMIT, &s);
        if (r)
                print_error("%s: submit: %d %s at %u\n", cs.name, r, npu_job_error_name(s.error), s.error_index);
        assert_int_equal(r, 0);
        drm_npu_wait w{};
        w.job_id = s.job_id;
        w.timeout_ns = INT64_MAX;
        assert_int_equal(npu_ioctl(dev, DRM_IOCTL_NPU_WAIT, &w), 0);
        assert_int_equal(w.job_status, 0);

        RunOut o;
        const uint8_t *res = static_cast<const uint8_t *>(npu_bo_map(jb));
        npu_job_result jr;
        std::memcpy(&jr, res, sizeof jr);
        assert_int_equal(jr.magic, NPU_RESULT_MAGIC);
        assert_int_equal(jr.layer_count, 1);
        std::memcpy(&o.lr, res + sizeof jr, sizeof o.lr);
        const auto &yd = j.t[out];
        size_t ybytes = bwq::packed_bytes(ref.size(), bits_out);
        o.packed.assign(act + yd.offset, act + yd.offset + ybytes);
        o.y.resize(ref.size());
        int bo = bwq::depth_index(bits_out);
        bwq::unpack_dequantize(act + yd.offset, ref.size(), bwq::qparams(yd.lo[bo], yd.hi[bo], bits_out), bits_out,
                                  o.y.data());
        // Exact traffic counters.
        uint64_t want_read = 0;
        for (const auto &t : cs.in)
                want_read += bwq::packed_bytes(t.size(), bits_in);
        assert_int_equal(o.lr.bits, bits_out);
        assert_int_equal(o.lr.act_bytes_read, want_read);
        assert_int_equal(o.lr.bytes_written, ybytes);
        assert_int_equal(o.lr.param_bytes_read, pw.data.empty() ? 0 : pw.data.size() + 8ull * cs.cout);
        npu_bo_free(jb);
        npu_bo_free(ab);
        npu_bo_free(pb);
        return o;
}

static float step(const std::vector<float> &v, unsigned bits) { return bwq::qparams(range_lo(v), range_hi(v), bits).scale; }

static float max_abs(const std::vector<float> &v)
{
        float m = 0;
        for (float x : v)
                m = std::max(m, std::fabs(x));
        return m;
}

// cs at one depth pair on both devices, which must write identical bytes;
// the best device's run.
static RunOut run_identical(npu_device *best, npu_device *portable, const Case &cs, const Tensor &ref, unsigned bi,
                            unsigned bo)
{
        RunOut a = run_case(best, cs, ref, bi, bo);
        RunOut p = run_case(portable, cs, ref, bi, bo);
        assert_int_equal(a.packed.size(), p.packed.size());
        assert_memory_equal(a.packed.data(), p.packed.data(), a.packed.size());
        return a;
}

double check_against(npu_device *best, npu_device *portable, const Case &cs, const Tensor &ref)
{
        const float L = lipschitz(cs.act);
        double worst = 0;
        for (unsigned bi : {4u, 6u, 8u, 16u})
                for (unsigned bo : {4u, 6u, 8u, 16u}) {
                        RunOut a = run_identical(best, portable, cs, ref, bi, bo);

                        // Steps of the ranges the job gives: the case's own where
                        // it sets them, else the values'.
                        const float sy = cs.out_range.first != cs.out_range.second
                                                 ? bwq::qparams(cs.out_range.first, cs.out_range.second, bo).scale
                                                 : step(ref.v, bo);
                        std::vector<float> ex;
                        std::vector<double> in_max;  // max |x| of each input, once per case
                        for (size_t i = 0; i < cs.in.size(); i++) {
                                const auto &t = cs.in[i];
                                ex.push_back((i < cs.in_range.size() ? bwq::qparams(cs.in_range[i].first, cs.in_range[i].second, bi).scale
                                                                     : step(t.v, bi)) /
                                             2);
                                in_max.push_back(max_abs(t.v));
                        }
                        for (size_t i = 0; i < ref.size(); i++) {
                                size_t c = i % ref.c;
                                double bound;
                                switch (cs.op) {
                                case NPU_OP_CONV2D:
                                case NPU_OP_FULLY_CONNECTED: {
                                        const Tensor &x = cs.in[0];
                                        size_t K = cs.op == NPU_OP_FULLY_CONNECTED ? size_t(x.h) * x.w * x.c
                                                                                   : size_t(cs.k) * cs.KW() * (x.c / cs.groups);
                                        double w1 = 0, wmax = 0;
                                        for (size_t k = 0; k < K; k++) {
                                                w1 += std::fabs(cs.weights[c * K + k]);
                                                wmax = std::max(wmax, double(std::fabs(cs.weights[c * K + k])));
                                        }
                                        double ew = wmax / 127.0 / 2.0;
                                        bound = L * (w1 * ex[0] + K * in_max[0] * ew + K * ex[0] * ew);
                                        if (cs.in.size() > 1 && c < cs.in[1].c)  // the residual's own step
                                                bound += L * ex[1];
                                        break;
                                }
                                case NPU_OP_ADD:
                                        bound = L * (ex[0] + ex[1]);
                                        break;
                                case NPU_OP_MUL:
                                        bound = L * (in_max[0] * ex[1] + in_max[1] * ex[0] + ex[0] * ex[1]);
                                        break;
                                default: {
                                        double e = 0;
                                        for (double v : ex)
                                                e = std::max(e, v);
                                        bound = L * e;
                                }
                                }
                                bound += sy / 2 + 1e-4 * (1 + std::fabs(ref.v[i]));
                                double err = std::fabs(double(a.y[i]) - ref.v[i]);
                                if (err > bound)
                                        print_error("%s in=%u out=%u element %zu: |%g - %g| = %g > bound %g\n", cs.name, bi, bo,
                                                    i, a.y[i], ref.v[i], err, bound);
                                assert_true(err <= bound);
                                worst = std::max(worst, err / bound);
                        }
                }
        return worst;
}

void check_isas_agree(npu_device *best, npu_device *portable, const Case &cs)
{
        Tensor ref = reference(cs);
        for (unsigned bi : {4u, 6u, 8u, 16u})
                for (unsigned bo : {4u, 6u, 8u, 16u})
                        run_identical(best, portable, cs, ref, bi, bo);
        print_message("%-34s all 16 depth pairs identical on both instruction sets\n", cs.name);
}

void check_case(npu_device *best, npu_device *portable, const Case &cs)
{
        Tensor ref = reference(cs);
        double worst = check_against(best, portable, cs, ref);
        print_message("%-34s all 16 depth pairs within bound (worst error / bound = %.3f)\n", cs.name, worst);
}

} // namespace test

// Every op of npuref at every input and output depth against a float
// reference written here, within a bound derived from the scales:
//
//   conv/FC, output channel c, K products, activation Lipschitz constant L:
//     |err| <= L * (sum|w_c| * e_x + K * max|x| * e_w[c] + K * e_x * e_w[c]) + s_y / 2
//   with e_x = s_x / 2 (input quantization step / 2), e_w[c] = s_w[c] / 2
//   (int8 weight step / 2), s_y the output step; ADD: L (e_a + e_b) + s_y/2;
//   MUL: L (max|a| e_b + max|b| e_a + e_a e_b) + s_y/2; pools and concat:
//   e_x + s_y/2.  Plus 1e-4 (1 + |ref|) for float rounding.
//
// The same jobs run on the portable kernels and on the best ISA of this CPU
// and must give identical output bytes; the layer counters must equal
// ceil(elements * bits / 8).
#include <sys/mman.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>

#include "internal.h"
#include "quant.h"
#include "test_util.h"

namespace {

struct Tensor {
        uint32_t n, h, w, c;
        std::vector<float> v;
        size_t size() const { return size_t(n) * h * w * c; }
        float at(size_t b, size_t y, size_t x, size_t ch) const { return v[((b * h + y) * w + x) * c + ch]; }
};

struct Case {
        const char *name;
        uint16_t op;
        uint8_t act;
        std::vector<Tensor> in;
        uint32_t cout = 0;
        uint32_t k = 1, s = 1, d = 1, pt = 0, pl = 0, pb = 0, pr = 0, groups = 1;
        std::vector<float> weights, bias;  // [cout][kh][kw][cin/groups]
};

float lipschitz(uint8_t act)
{
        switch (act) {
        case NPU_ACT_HARDSWISH: return 1.5f;
        case NPU_ACT_HARDSIGMOID: return 1.0f / 6.0f;
        case NPU_ACT_SIGMOID: return 0.25f;
        default: return 1.0f;
        }
}

float act_ref(float v, uint8_t act)
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

uint32_t extent(uint32_t in, uint32_t k, uint32_t s, uint32_t d, uint32_t p0, uint32_t p1)
{
        return (in + p0 + p1 - (d * (k - 1) + 1)) / s + 1;
}

// The float reference of one layer, and the error bound of each output.
Tensor reference(const Case &cs, std::vector<float> &bound_ws)
{
        const Tensor &x = cs.in[0];
        Tensor y{x.n, x.h, x.w, x.c, {}};
        bool fc = cs.op == NPU_OP_FULLY_CONNECTED;
        if (cs.op == NPU_OP_CONV2D) {
                y.h = extent(x.h, cs.k, cs.s, cs.d, cs.pt, cs.pb);
                y.w = extent(x.w, cs.k, cs.s, cs.d, cs.pl, cs.pr);
                y.c = cs.cout;
        } else if (fc || cs.op == NPU_OP_GLOBAL_AVGPOOL) {
                y.h = y.w = 1;
                y.c = fc ? cs.cout : x.c;
        } else if (cs.op == NPU_OP_MAXPOOL || cs.op == NPU_OP_AVGPOOL) {
                y.h = extent(x.h, cs.k, cs.s, 1, cs.pt, cs.pb);
                y.w = extent(x.w, cs.k, cs.s, 1, cs.pl, cs.pr);
        } else if (cs.op == NPU_OP_CONCAT) {
                y.c = 0;
                for (const auto &t : cs.in)
                        y.c += t.c;
        }
        y.v.assign(y.size(), 0.0f);
        bound_ws.assign(y.c, 0.0f);
        for (size_t b = 0; b < y.n; b++)
                for (size_t oy = 0; oy < y.h; oy++)
                        for (size_t ox = 0; ox < y.w; ox++)
                                for (size_t co = 0; co < y.c; co++) {
                                        double s = 0;
                                        switch (cs.op) {
                                        case NPU_OP_CONV2D: {
                                                size_t cig = x.c / cs.groups, cog = y.c / cs.groups, g = co / cog;
                                                for (size_t ky = 0; ky < cs.k; ky++)
                                                        for (size_t kx = 0; kx < cs.k; kx++) {
                                                                long iy = long(oy * cs.s + ky * cs.d) - cs.pt;
                                                                long ix = long(ox * cs.s + kx * cs.d) - cs.pl;
                                                                if (iy < 0 || iy >= long(x.h) || ix < 0 || ix >= long(x.w))
                                                                        continue;
                                                                for (size_t ci = 0; ci < cig; ci++)
                                                                        s += double(x.at(b, iy, ix, g * cig + ci)) *
                                                                             cs.weights[((co * cs.k + ky) * cs.k + kx) * cig + ci];
                                                        }
                                                s += cs.bias[co];
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
                                                        for (size_t kx = 0; kx < cs.k; kx++) {
                                                                long iy = long(oy * cs.s + ky) - cs.pt, ix = long(ox * cs.s + kx) - cs.pl;
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

float range_lo(const std::vector<float> &v)
{
        float m = 0;
        for (float x : v)
                m = std::min(m, x);
        return m;
}

float range_hi(const std::vector<float> &v)
{
        float m = 0;
        for (float x : v)
                m = std::max(m, x);
        return m;
}

void fill_ranges(npu_tensor_desc &d, const std::vector<float> &v)
{
        for (int i = 0; i < NPU_BITS_COUNT; i++) {
                d.lo[i] = range_lo(v);
                d.hi[i] = range_hi(v);
        }
}

struct RunOut {
        std::vector<uint8_t> packed;  // output bytes as the device wrote them
        std::vector<float> y;
        npu_layer_result lr;
};

// Runs one case on `dev` and returns the output.
RunOut run_case(npu_device *dev, const Case &cs, const Tensor &ref, unsigned bits_in, unsigned bits_out)
{
        test::RawJob j;
        uint64_t off = 0;
        std::vector<uint32_t> ins;
        for (const auto &t : cs.in) {
                ins.push_back(j.tensor(1, off, t.n, t.h, t.w, t.c, bits_in));
                fill_ranges(j.t.back(), t.v);
                off += (t.size() * 2 + 63) / 64 * 64;
        }
        uint32_t out = j.tensor(1, off, ref.n, ref.h, ref.w, ref.c);
        fill_ranges(j.t.back(), ref.v);
        uint64_t act_size = off + ref.size() * 2 + 64;
        auto &L = j.layer(cs.op, ins[0], out, bits_out);
        L.act = cs.act;
        L.input_count = uint8_t(ins.size());
        for (size_t i = 1; i < ins.size(); i++)
                L.inputs[i] = ins[i];

        npu::PackedWeights pw;
        uint64_t param_size = 64;
        if (cs.op == NPU_OP_CONV2D || cs.op == NPU_OP_FULLY_CONNECTED) {
                npu::GraphLayer gl{};
                gl.op = cs.op;
                gl.conv.out_channels = cs.cout;
                gl.conv.kernel_h = gl.conv.kernel_w = cs.k;
                gl.conv.groups = cs.groups;
                gl.weights = cs.weights;
                const Tensor &x = cs.in[0];
                pw = npu::pack_weights(gl, cs.op == NPU_OP_FULLY_CONNECTED ? x.h * x.w * x.c : x.c);
                L.groups = cs.op == NPU_OP_CONV2D ? cs.groups : 1;
                L.param_bo_index = 2;
                L.weight_offset = 0;
                L.weight_size = pw.data.size();
                L.scale_offset = (pw.data.size() + 63) / 64 * 64;
                L.bias_offset = L.scale_offset + (4 * cs.cout + 63) / 64 * 64;
                param_size = L.bias_offset + 4 * cs.cout;
        }
        if (cs.op == NPU_OP_CONV2D || cs.op == NPU_OP_MAXPOOL || cs.op == NPU_OP_AVGPOOL) {
                L.kernel_h = L.kernel_w = uint16_t(cs.k);
                L.stride_h = L.stride_w = uint16_t(cs.s);
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
                int bi = npuref::bits_index(bits_in);
                npuref::quantize_pack(cs.in[i].v.data(), cs.in[i].size(), npuref::qparams(d.lo[bi], d.hi[bi], bits_in),
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
        size_t ybytes = npuref::packed_bytes(ref.size(), bits_out);
        o.packed.assign(act + yd.offset, act + yd.offset + ybytes);
        o.y.resize(ref.size());
        int bo = npuref::bits_index(bits_out);
        npuref::unpack_dequantize(act + yd.offset, ref.size(), npuref::qparams(yd.lo[bo], yd.hi[bo], bits_out), bits_out,
                                  o.y.data());
        // Exact traffic counters.
        uint64_t want_read = 0;
        for (const auto &t : cs.in)
                want_read += npuref::packed_bytes(t.size(), bits_in);
        assert_int_equal(o.lr.bits, bits_out);
        assert_int_equal(o.lr.act_bytes_read, want_read);
        assert_int_equal(o.lr.bytes_written, ybytes);
        assert_int_equal(o.lr.param_bytes_read, pw.data.empty() ? 0 : pw.data.size() + 8ull * cs.cout);
        npu_bo_free(jb);
        npu_bo_free(ab);
        npu_bo_free(pb);
        return o;
}

float step(const std::vector<float> &v, unsigned bits) { return npuref::qparams(range_lo(v), range_hi(v), bits).scale; }

float max_abs(const std::vector<float> &v)
{
        float m = 0;
        for (float x : v)
                m = std::max(m, std::fabs(x));
        return m;
}

void check_case(npu_device *best, npu_device *portable, const Case &cs)
{
        std::vector<float> unused;
        Tensor ref = reference(cs, unused);
        const float L = lipschitz(cs.act);
        double worst = 0;
        for (unsigned bi : {4u, 6u, 8u, 16u})
                for (unsigned bo : {4u, 6u, 8u, 16u}) {
                        RunOut a = run_case(best, cs, ref, bi, bo);
                        RunOut p = run_case(portable, cs, ref, bi, bo);
                        // Bit-identical across instruction sets.
                        assert_int_equal(a.packed.size(), p.packed.size());
                        assert_memory_equal(a.packed.data(), p.packed.data(), a.packed.size());

                        const float sy = step(ref.v, bo);
                        std::vector<float> ex;
                        for (const auto &t : cs.in)
                                ex.push_back(step(t.v, bi) / 2);
                        for (size_t i = 0; i < ref.size(); i++) {
                                size_t c = i % ref.c;
                                double bound;
                                switch (cs.op) {
                                case NPU_OP_CONV2D:
                                case NPU_OP_FULLY_CONNECTED: {
                                        const Tensor &x = cs.in[0];
                                        size_t K = cs.op == NPU_OP_FULLY_CONNECTED ? size_t(x.h) * x.w * x.c
                                                                                   : size_t(cs.k) * cs.k * (x.c / cs.groups);
                                        double w1 = 0, wmax = 0;
                                        for (size_t k = 0; k < K; k++) {
                                                w1 += std::fabs(cs.weights[c * K + k]);
                                                wmax = std::max(wmax, double(std::fabs(cs.weights[c * K + k])));
                                        }
                                        double ew = wmax / 127.0 / 2.0;
                                        bound = L * (w1 * ex[0] + K * max_abs(x.v) * ew + K * ex[0] * ew);
                                        break;
                                }
                                case NPU_OP_ADD:
                                        bound = L * (ex[0] + ex[1]);
                                        break;
                                case NPU_OP_MUL:
                                        bound = L * (max_abs(cs.in[0].v) * ex[1] + max_abs(cs.in[1].v) * ex[0] + ex[0] * ex[1]);
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
        print_message("%-28s all 16 depth pairs within bound (worst error / bound = %.3f)\n", cs.name, worst);
}

struct Devices {
        npu_device *best = nullptr, *portable = nullptr;
};

int setup(void **state)
{
        auto *d = new Devices;
        if (npu_device_open("soft:threads=2", &d->best) || npu_device_open("soft:threads=1,isa=portable", &d->portable))
                return -1;
        *state = d;
        return 0;
}

int teardown(void **state)
{
        auto *d = static_cast<Devices *>(*state);
        npu_device_close(d->best);
        npu_device_close(d->portable);
        delete d;
        return 0;
}

Case conv_case(const char *name, test::Rng &rng, uint32_t cin, uint32_t cout, uint32_t k, uint32_t s, uint32_t d,
               uint32_t groups, uint32_t pads[4], uint8_t act, uint32_t hw = 9)
{
        Case cs{name, NPU_OP_CONV2D, act, {random_tensor(rng, 2, hw, hw + 1, cin, -1.0f, 2.0f)}};
        cs.cout = cout;
        cs.k = k, cs.s = s, cs.d = d, cs.groups = groups;
        cs.pt = pads[0], cs.pl = pads[1], cs.pb = pads[2], cs.pr = pads[3];
        cs.weights.resize(size_t(cout) * k * k * (cin / groups));
        for (auto &w : cs.weights)
                w = rng.uniform(-0.5f, 0.5f);
        cs.bias.resize(cout);
        for (auto &b : cs.bias)
                b = rng.uniform(-0.2f, 0.2f);
        return cs;
}

} // namespace

static void conv2d(void **state)
{
        auto *d = static_cast<Devices *>(*state);
        test::Rng rng{101};
        uint32_t p0[4] = {0, 0, 0, 0}, p1[4] = {1, 1, 1, 1}, pa[4] = {0, 1, 1, 0}, p2[4] = {2, 2, 2, 2};
        check_case(d->best, d->portable, conv_case("conv 3x3 s1 p1 5->7", rng, 5, 7, 3, 1, 1, 1, p1, NPU_ACT_NONE));
        check_case(d->best, d->portable, conv_case("conv 3x3 s2 asym pads relu", rng, 6, 18, 3, 2, 1, 1, pa, NPU_ACT_RELU));
        check_case(d->best, d->portable, conv_case("conv 3x3 dilation 2 relu6", rng, 4, 9, 3, 1, 2, 1, p2, NPU_ACT_RELU6));
        check_case(d->best, d->portable, conv_case("conv 1x1 8->33 (direct)", rng, 8, 33, 1, 1, 1, 1, p0, NPU_ACT_NONE));
        check_case(d->best, d->portable, conv_case("conv 3x3 groups 2", rng, 6, 4, 3, 1, 1, 2, p1, NPU_ACT_HARDSWISH));
        check_case(d->best, d->portable, conv_case("depthwise 3x3 s2", rng, 12, 12, 3, 2, 1, 12, p1, NPU_ACT_RELU6));
        check_case(d->best, d->portable, conv_case("depthwise 5x5 hardsigmoid", rng, 8, 8, 5, 1, 1, 8, p2, NPU_ACT_HARDSIGMOID));
        check_case(d->best, d->portable, conv_case("conv 1x1 sigmoid", rng, 16, 16, 1, 1, 1, 1, p0, NPU_ACT_SIGMOID));
}

static void fully_connected(void **state)
{
        auto *d = static_cast<Devices *>(*state);
        test::Rng rng{202};
        Case cs{"fully_connected 45->10", NPU_OP_FULLY_CONNECTED, NPU_ACT_NONE, {random_tensor(rng, 2, 3, 3, 5, -1, 1)}};
        cs.cout = 10;
        cs.weights.resize(10 * 45);
        for (auto &w : cs.weights)
                w = rng.uniform(-0.3f, 0.3f);
        cs.bias.assign(10, 0.05f);
        check_case(d->best, d->portable, cs);
}

static void elementwise(void **state)
{
        auto *d = static_cast<Devices *>(*state);
        test::Rng rng{303};
        Case add{"add", NPU_OP_ADD, NPU_ACT_NONE,
                 {random_tensor(rng, 1, 5, 7, 6, -2, 1), random_tensor(rng, 1, 5, 7, 6, -0.5f, 3)}};
        check_case(d->best, d->portable, add);
        Case addr = add;
        addr.name = "add relu";
        addr.act = NPU_ACT_RELU;
        check_case(d->best, d->portable, addr);
        Case mul{"mul", NPU_OP_MUL, NPU_ACT_NONE,
                 {random_tensor(rng, 1, 5, 7, 6, -2, 1), random_tensor(rng, 1, 5, 7, 6, -1, 1)}};
        check_case(d->best, d->portable, mul);
        Case se{"mul broadcast (squeeze-excite)", NPU_OP_MUL, NPU_ACT_NONE,
                {random_tensor(rng, 2, 4, 4, 5, -1, 3), random_tensor(rng, 2, 1, 1, 5, 0, 1)}};
        check_case(d->best, d->portable, se);
        Case cat{"concat of 3", NPU_OP_CONCAT, NPU_ACT_NONE,
                 {random_tensor(rng, 1, 3, 3, 3, -1, 1), random_tensor(rng, 1, 3, 3, 5, 0, 4),
                  random_tensor(rng, 1, 3, 3, 1, -3, 0)}};
        check_case(d->best, d->portable, cat);
}

static void pools(void **state)
{
        auto *d = static_cast<Devices *>(*state);
        test::Rng rng{404};
        Case mp{"maxpool 3x3 s2 p1", NPU_OP_MAXPOOL, NPU_ACT_NONE, {random_tensor(rng, 1, 9, 8, 4, -1, 1)}};
        mp.k = 3, mp.s = 2, mp.pt = mp.pl = mp.pb = mp.pr = 1;
        check_case(d->best, d->portable, mp);
        Case ap{"avgpool 3x3 s1 p1 (pads excluded)", NPU_OP_AVGPOOL, NPU_ACT_NONE, {random_tensor(rng, 1, 6, 6, 3, -1, 2)}};
        ap.k = 3, ap.pt = ap.pl = ap.pb = ap.pr = 1;
        check_case(d->best, d->portable, ap);
        Case gap{"global_avgpool", NPU_OP_GLOBAL_AVGPOOL, NPU_ACT_NONE, {random_tensor(rng, 2, 7, 7, 9, -1, 2)}};
        check_case(d->best, d->portable, gap);
}

int main()
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(conv2d),
                cmocka_unit_test(fully_connected),
                cmocka_unit_test(elementwise),
                cmocka_unit_test(pools),
        };
        return cmocka_run_group_tests_name("ops", tests, setup, teardown);
}

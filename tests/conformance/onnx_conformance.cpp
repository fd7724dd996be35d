// Conformance of npuref with the ONNX backend node tests shipped in Debian's
// libonnx-testdata: each case's model.onnx (attributes) and .pb tensors
// are read with the model frontend (npu-onnx(3)), converted to NHWC, run as one
// layer on the software NPU at every input/output depth and compared with
// ONNX's expected output within the bound of tests/unit/test_ops.cpp.
// Integer cases (ConvInteger, MatMulInteger, uint8 MaxPool,
// DynamicQuantizeLinear, QuantizeLinear) must match exactly.  Cases whose
// semantics npuref does not have are listed with the reason.
#include <fcntl.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <map>
#include <sstream>
#include <string>

#include <memory>

#include "node_data.h"

#include "uapi/npu_accel.h"
#include "npu/npu.h"
#include "tests/unit/op_harness.h"
#include "common/quant.h"

using namespace test;
using namespace conformance;

namespace {

struct Devices {
        npu_device *best = nullptr, *portable = nullptr;
};

Devices *devs(void **state) { return static_cast<Devices *>(*state); }

// Cases of the current group that ran and that do not apply: counted
// apart, and a group that ran none fails (group_end).
struct Tally {
        unsigned ran = 0, not_applicable = 0;
};
Tally group, total;

void case_ran() { group.ran++; }

void not_applicable(const char *name, const char *why)
{
        group.not_applicable++;
        print_message("not applicable: %-48s %s\n", name, why);
}

int group_start(void **)
{
        group = {};
        return 0;
}

int group_end(void **)
{
        total.ran += group.ran;
        total.not_applicable += group.not_applicable;
        print_message("group: %u cases ran, %u not applicable\n", group.ran, group.not_applicable);
        if (group.ran == 0) {
                print_error("group: no case ran, so it tested nothing\n");
                return -1;
        }
        return 0;
}

// Our own float reference must agree with ONNX before ONNX's output is used.
void expect_reference_matches(const Case &cs, const Tensor &want)
{
        Tensor ref = reference(cs);
        assert_int_equal(ref.size(), want.size());
        for (size_t i = 0; i < ref.size(); i++)
                if (std::fabs(ref.v[i] - want.v[i]) > 1e-4f * (1 + std::fabs(want.v[i])))
                        fail_msg("%s: reference %g, ONNX %g at %zu", cs.name, ref.v[i], want.v[i], i);
}

void run_float_case(void **state, const Case &cs, const Tensor &want)
{
        expect_reference_matches(cs, want);
        double worst = check_against(devs(state)->best, devs(state)->portable, cs, want);
        case_ran();
        print_message("%-48s 16 depth pairs within bound (worst error / bound %.3f)\n", cs.name, worst);
}

Case conv_from_onnx(const char *name)
{
        ONode n = load_node(name);
        OTensor x = input(name, 0), w = input(name, 1);
        Case cs{name, NPU_OP_CONV2D, NPU_ACT_NONE, {to_nhwc(x)}};
        auto k = n.ints("kernel_shape", {w.dims[2], w.dims[3]});
        auto s = n.ints("strides", {1, 1});
        auto d = n.ints("dilations", {1, 1});
        auto p = n.ints("pads", {0, 0, 0, 0});
        cs.cout = uint32_t(w.dims[0]);
        cs.groups = uint32_t(n.i("group", 1));
        cs.k = uint32_t(k[0]), cs.kw = uint32_t(k[1]);
        cs.s = uint32_t(s[0]), cs.sw = uint32_t(s[1]);
        cs.d = uint32_t(d[0]);
        cs.pt = uint32_t(p[0]), cs.pl = uint32_t(p[1]), cs.pb = uint32_t(p[2]), cs.pr = uint32_t(p[3]);
        std::string ap = n.s("auto_pad", "NOTSET");
        auto_pads(ap, cs.in[0].h, cs.k, cs.s, cs.d, &cs.pt, &cs.pb);
        auto_pads(ap, cs.in[0].w, cs.KW(), cs.SW(), cs.d, &cs.pl, &cs.pr);
        // OIHW -> O H W I
        size_t cig = size_t(w.dims[1]);
        cs.weights.resize(w.v.size());
        for (size_t o = 0; o < cs.cout; o++)
                for (size_t i = 0; i < cig; i++)
                        for (size_t y = 0; y < cs.k; y++)
                                for (size_t xx = 0; xx < cs.KW(); xx++)
                                        cs.weights[((o * cs.k + y) * cs.KW() + xx) * cig + i] =
                                                float(w.v[((o * cig + i) * cs.k + y) * cs.KW() + xx]);
        cs.bias.assign(cs.cout, 0.0f);
        return cs;
}

} // namespace

static void conv(void **state)
{
        for (const char *name : {"test_basic_conv_with_padding", "test_basic_conv_without_padding",
                                 "test_conv_with_strides_padding", "test_conv_with_strides_no_padding",
                                 "test_conv_with_strides_and_asymmetric_padding", "test_conv_with_autopad_same"}) {
                if (!have(name)) {
                        not_applicable(name, "not in this libonnx-testdata");
                        continue;
                }
                Case cs = conv_from_onnx(name);
                run_float_case(state, cs, to_nhwc(output(name)));
        }
}

// ConvInteger: uint8 x with zero point, uint8 w (zero point 0): the int32
// result must come out exactly.  x passes at 8 bits with scale 1 and the
// zero point; weights are int8 with scale 1; the output is 16-bit with
// scale 1, so q_y - z_y is the accumulator itself.
static void conv_integer(void **state)
{
        for (const char *name : {"test_convinteger_with_padding", "test_convinteger_without_padding"}) {
                ONode n = load_node(name);
                OTensor x = input(name, 0), w = input(name, 1), xz = input(name, 2);
                for (double v : w.v)
                        if (v > 127)
                                fail_msg("%s: weight %g does not fit int8", name, v);
                Case cs = conv_from_onnx(name);
                double z = xz.v[0];
                for (auto &v : cs.in[0].v)
                        v = float(v - z);
                cs.in_range = {{float(-z), float(255 - z)}};
                cs.unit_weight_scale = true;
                Tensor want = to_nhwc(output(name));
                float lo = 0, hi = 0;
                for (float v : want.v)
                        lo = std::min(lo, v), hi = std::max(hi, v);
                cs.out_range = {std::floor(lo) - 1, std::floor(lo) - 1 + 65535};
                (void)hi;
                expect_reference_matches(cs, want);
                for (npu_device *d : {devs(state)->best, devs(state)->portable}) {
                        RunOut r = run_case(d, cs, want, 8, 16);
                        for (size_t i = 0; i < want.size(); i++)
                                assert_true(r.y[i] == want.v[i]);
                }
                case_ran();
                print_message("%-48s exact (int32 accumulators through 8-bit in, 16-bit out)\n", name);
        }
}

static void matmul_integer(void **state)
{
        const char *name = "test_matmulinteger";
        OTensor a = input(name, 0), b = input(name, 1), az = input(name, 2), bz = input(name, 3);
        for (double v : bz.v)
                if (v != 0) {
                        not_applicable(name, "B has a zero point: weights are symmetric");
                        return;
                }
        for (double v : b.v)
                if (v > 127) {
                        not_applicable(name, "B does not fit int8");
                        return;
                }
        // A [M,K] -> M rows of [1,1,K]; B [K,N] -> weights [N][K].
        uint32_t M = uint32_t(a.dims[0]), K = uint32_t(a.dims[1]), N = uint32_t(b.dims[1]);
        Case cs{name, NPU_OP_FULLY_CONNECTED, NPU_ACT_NONE, {{M, 1, 1, K, {}}}};
        double z = az.v[0];
        for (double v : a.v)
                cs.in[0].v.push_back(float(v - z));
        cs.cout = N;
        for (uint32_t n = 0; n < N; n++)
                for (uint32_t k = 0; k < K; k++)
                        cs.weights.push_back(float(b.v[k * N + n]));
        cs.bias.assign(N, 0.0f);
        cs.in_range = {{float(-z), float(255 - z)}};
        cs.unit_weight_scale = true;
        OTensor y = output(name);
        Tensor want{M, 1, 1, N, {}};
        for (double v : y.v)
                want.v.push_back(float(v));
        float lo = 0;
        for (float v : want.v)
                lo = std::min(lo, v);
        cs.out_range = {std::floor(lo) - 1, std::floor(lo) - 1 + 65535};
        expect_reference_matches(cs, want);
        for (npu_device *d : {devs(state)->best, devs(state)->portable}) {
                RunOut r = run_case(d, cs, want, 8, 16);
                for (size_t i = 0; i < want.size(); i++)
                        assert_true(r.y[i] == want.v[i]);
        }
        case_ran();
        print_message("%-48s exact\n", name);
}

// Gemm: Y = alpha A' B' + beta C, as FULLY_CONNECTED with bias per column.
static void gemm(void **state)
{
        for (const char *name : {"test_gemm_default_no_bias", "test_gemm_default_zero_bias", "test_gemm_default_vector_bias",
                                 "test_gemm_default_single_elem_vector_bias", "test_gemm_default_scalar_bias",
                                 "test_gemm_transposeA", "test_gemm_transposeB", "test_gemm_alpha", "test_gemm_beta",
                                 "test_gemm_all_attributes", "test_gemm_default_matrix_bias"}) {
                if (!have(name)) {
                        not_applicable(name, "not in this libonnx-testdata");
                        continue;
                }
                ONode n = load_node(name);
                OTensor a = input(name, 0), b = input(name, 1);
                bool ta = n.i("transA", 0), tb = n.i("transB", 0);
                float alpha = n.f("alpha", 1.0f), beta = n.f("beta", 1.0f);
                uint32_t M = uint32_t(ta ? a.dims[1] : a.dims[0]), K = uint32_t(ta ? a.dims[0] : a.dims[1]);
                uint32_t N = uint32_t(tb ? b.dims[0] : b.dims[1]);
                std::vector<float> bias(N, 0.0f);
                if (access((std::string(kRoot) + name + "/test_data_set_0/input_2.pb").c_str(), R_OK) == 0) {
                        OTensor c = input(name, 2);
                        size_t cn = c.v.size();
                        if (cn == size_t(M) * N && M > 1) {
                                not_applicable(name, "C is a full matrix: bias is one value per output channel");
                                continue;
                        }
                        for (uint32_t j = 0; j < N; j++)
                                bias[j] = beta * float(c.v[cn == 1 ? 0 : j]);
                }
                Case cs{name, NPU_OP_FULLY_CONNECTED, NPU_ACT_NONE, {{M, 1, 1, K, {}}}};
                for (uint32_t m = 0; m < M; m++)
                        for (uint32_t k = 0; k < K; k++)
                                cs.in[0].v.push_back(float(ta ? a.v[k * M + m] : a.v[m * K + k]));
                cs.cout = N;
                for (uint32_t j = 0; j < N; j++)
                        for (uint32_t k = 0; k < K; k++)
                                cs.weights.push_back(alpha * float(tb ? b.v[j * K + k] : b.v[k * N + j]));
                cs.bias = bias;
                OTensor y = output(name);
                Tensor want{M, 1, 1, N, {}};
                for (double v : y.v)
                        want.v.push_back(float(v));
                run_float_case(state, cs, want);
        }
}

static void pools(void **state)
{
        struct P {
                const char *name;
                const char *na;
        };
        const P cases[] = {
                {"test_maxpool_2d_default", nullptr},         {"test_maxpool_2d_pads", nullptr},
                {"test_maxpool_2d_strides", nullptr},         {"test_maxpool_2d_precomputed_pads", nullptr},
                {"test_maxpool_2d_precomputed_strides", nullptr}, {"test_maxpool_2d_precomputed_same_upper", nullptr},
                {"test_maxpool_2d_same_upper", nullptr},      {"test_maxpool_2d_same_lower", nullptr},
                {"test_maxpool_1d_default", nullptr},         {"test_averagepool_2d_default", nullptr},
                {"test_averagepool_2d_pads", nullptr},        {"test_averagepool_2d_strides", nullptr},
                {"test_averagepool_2d_precomputed_pads", nullptr}, {"test_averagepool_2d_precomputed_strides", nullptr},
                {"test_averagepool_2d_precomputed_same_upper", nullptr}, {"test_averagepool_2d_same_upper", nullptr},
                {"test_averagepool_2d_same_lower", nullptr},  {"test_averagepool_1d_default", nullptr},
                {"test_maxpool_2d_ceil", "ceil_mode: output sizes round down"},
                {"test_averagepool_2d_ceil", "ceil_mode: output sizes round down"},
                {"test_maxpool_2d_dilations", "pools have no dilation"},
                {"test_averagepool_2d_pads_count_include_pad", "padding is excluded from the average"},
                {"test_averagepool_2d_precomputed_pads_count_include_pad", "padding is excluded from the average"},
                {"test_maxpool_3d_default", "2-D tensors only (NHWC)"},
                {"test_averagepool_3d_default", "2-D tensors only (NHWC)"},
                {"test_maxpool_with_argmax_2d_precomputed_pads", "no argmax output"},
                {"test_maxpool_with_argmax_2d_precomputed_strides", "no argmax output"},
        };
        for (const P &p : cases) {
                if (p.na || !have(p.name)) {
                        not_applicable(p.name, p.na ? p.na : "not in this libonnx-testdata");
                        continue;
                }
                ONode n = load_node(p.name);
                OTensor x = input(p.name, 0);
                bool one_d = x.dims.size() == 3;
                Case cs{p.name, uint16_t(n.op == "MaxPool" ? NPU_OP_MAXPOOL : NPU_OP_AVGPOOL), NPU_ACT_NONE, {to_nhwc(x)}};
                auto k = n.ints("kernel_shape", {});
                auto s = n.ints("strides", std::vector<int64_t>(k.size(), 1));
                auto pads = n.ints("pads", std::vector<int64_t>(2 * k.size(), 0));
                if (one_d) {
                        cs.k = 1, cs.kw = uint32_t(k[0]);
                        cs.s = 1, cs.sw = uint32_t(s[0]);
                        cs.pl = uint32_t(pads[0]), cs.pr = uint32_t(pads[1]);
                } else {
                        cs.k = uint32_t(k[0]), cs.kw = uint32_t(k[1]);
                        cs.s = uint32_t(s[0]), cs.sw = uint32_t(s[1]);
                        cs.pt = uint32_t(pads[0]), cs.pl = uint32_t(pads[1]);
                        cs.pb = uint32_t(pads[2]), cs.pr = uint32_t(pads[3]);
                }
                std::string ap = n.s("auto_pad", "NOTSET");
                auto_pads(ap, cs.in[0].h, cs.k, cs.s, 1, &cs.pt, &cs.pb);
                auto_pads(ap, cs.in[0].w, cs.KW(), cs.SW(), 1, &cs.pl, &cs.pr);
                run_float_case(state, cs, to_nhwc(output(p.name)));
        }
        // uint8 MaxPool: exact at 8 bits with scale 1, zero point 0.
        const char *u8 = "test_maxpool_2d_uint8";
        if (have(u8)) {
                ONode n = load_node(u8);
                Case cs{u8, NPU_OP_MAXPOOL, NPU_ACT_NONE, {to_nhwc(input(u8, 0))}};
                auto k = n.ints("kernel_shape", {});
                auto pads = n.ints("pads", {0, 0, 0, 0});
                cs.k = uint32_t(k[0]), cs.kw = uint32_t(k[1]);
                cs.pt = uint32_t(pads[0]), cs.pl = uint32_t(pads[1]), cs.pb = uint32_t(pads[2]), cs.pr = uint32_t(pads[3]);
                cs.in_range = {{0.0f, 255.0f}};
                cs.out_range = {0.0f, 255.0f};
                Tensor want = to_nhwc(output(u8));
                expect_reference_matches(cs, want);
                for (npu_device *d : {devs(state)->best, devs(state)->portable}) {
                        RunOut r = run_case(d, cs, want, 8, 8);
                        assert_memory_equal(r.y.data(), want.v.data(), want.size() * 4);
                }
                case_ran();
                print_message("%-48s exact\n", u8);
        }
}

static void global_avgpool(void **state)
{
        for (const char *name : {"test_globalaveragepool", "test_globalaveragepool_precomputed"}) {
                Case cs{name, NPU_OP_GLOBAL_AVGPOOL, NPU_ACT_NONE, {to_nhwc(input(name, 0))}};
                run_float_case(state, cs, to_nhwc(output(name)));
        }
}

// Resize and Upsample by integer factors: the device's nearest (each pixel
// repeated) and linear with half-pixel centres; the other cases use a
// coordinate mapping or a downsampling the device does not have.
static void resize(void **state)
{
        struct R {
                const char *name;
                int mode;  // 1 nearest, 2 bilinear; 0 not applicable
                const char *why;
        } cases[] = {
                {"test_resize_upsample_scales_nearest", 1, nullptr},
                {"test_resize_upsample_scales_linear", 2, nullptr},
                {"test_upsample_nearest", 1, nullptr},
                {"test_resize_upsample_sizes_nearest", 0, "sizes of a non-integer factor"},
                {"test_resize_upsample_scales_linear_align_corners", 0, "align_corners is not the device's mapping"},
                {"test_resize_upsample_sizes_nearest_ceil_half_pixel", 0, "nearest_mode ceil does not repeat pixels"},
                {"test_resize_downsample_scales_nearest", 0, "downsampling"},
                {"test_resize_downsample_scales_linear", 0, "downsampling"},
                {"test_resize_upsample_scales_cubic", 0, "cubic"},
        };
        for (const R &r : cases) {
                if (!have(r.name)) {
                        not_applicable(r.name, "not in this libonnx-testdata");
                        continue;
                }
                if (!r.mode) {
                        not_applicable(r.name, r.why);
                        continue;
                }
                OTensor x = input(r.name, 0), sc = input(r.name, 1);  // X and scales (no roi input)
                if (sc.v.size() != 4 || sc.v[0] != 1 || sc.v[1] != 1 || sc.v[2] != std::floor(sc.v[2]) || sc.v[3] != std::floor(sc.v[3]))
                        fail_msg("%s: scales are not integer factors of H and W", r.name);
                Case cs{r.name, NPU_OP_RESIZE, NPU_ACT_NONE, {to_nhwc(x)}};
                cs.k = uint32_t(r.mode);
                cs.s = uint32_t(sc.v[2]), cs.sw = uint32_t(sc.v[3]);
                run_float_case(state, cs, to_nhwc(output(r.name)));
        }
}

// Standalone activations run as a 1x1 max pool (identity) with the fused
// activation.
static void activations(void **state)
{
        struct A {
                const char *name;
                uint8_t act;
                const char *na;
        };
        const A cases[] = {
                {"test_relu", NPU_ACT_RELU, nullptr},
                {"test_hardswish", NPU_ACT_HARDSWISH, nullptr},
                {"test_clip_default_inbounds", NPU_ACT_NONE, nullptr},
                {"test_hardsigmoid", 0, "alpha 0.5, beta 0.6: the fused HARDSIGMOID is x/6 + 1/2"},
                {"test_hardsigmoid_default", 0, "alpha 0.2: the fused HARDSIGMOID is x/6 + 1/2"},
                {"test_hardsigmoid_example", 0, "alpha 0.5, beta 0.6: the fused HARDSIGMOID is x/6 + 1/2"},
                {"test_clip", 0, "bounds [-1, 1]: the only fused clip is RELU6 = clip(0, 6)"},
                {"test_clip_example", 0, "bounds [-1, 1]: the only fused clip is RELU6 = clip(0, 6)"},
                {"test_clip_inbounds", 0, "bounds [-5, 5]: the only fused clip is RELU6"},
                {"test_clip_outbounds", 0, "bounds [-1, 1]: the only fused clip is RELU6"},
                {"test_clip_splitbounds", 0, "bounds [-1, 1]: the only fused clip is RELU6"},
                {"test_clip_default_min", NPU_ACT_RELU, nullptr},  // min 0, no max: ReLU (checked below)
                {"test_clip_default_max", 0, "one-sided clip: not a fused activation"},
                {"test_clip_default_int8_min", 0, "int8 tensors: activations are unsigned affine"},
                {"test_clip_default_int8_max", 0, "int8 tensors: activations are unsigned affine"},
                {"test_clip_default_int8_inbounds", 0, "int8 tensors: activations are unsigned affine"},
        };
        for (const A &a : cases) {
                if (a.na || !have(a.name)) {
                        not_applicable(a.name, a.na ? a.na : "not in this libonnx-testdata");
                        continue;
                }
                OTensor x = input(a.name, 0);
                if (std::string(a.name) == "test_clip_default_min" && input(a.name, 1).v.at(0) != 0.0)
                        fail_msg("%s: min is not 0: not ReLU", a.name);
                // Any rank, flattened to NHWC [1,1,1,N].
                Case cs{a.name, NPU_OP_MAXPOOL, a.act, {{1, 1, 1, uint32_t(x.v.size()), {}}}};
                for (double v : x.v)
                        cs.in[0].v.push_back(float(v));
                OTensor y = output(a.name);
                Tensor want{1, 1, 1, uint32_t(y.v.size()), {}};
                for (double v : y.v)
                        want.v.push_back(float(v));
                run_float_case(state, cs, want);
        }
}

// The host's quantizer (libnpu's input path) against ONNX, exactly.
static void quantize_linear(void **)
{
        for (const char *name : {"test_dynamicquantizelinear", "test_dynamicquantizelinear_max_adjusted",
                                 "test_dynamicquantizelinear_min_adjusted"}) {
                OTensor x = input(name, 0), y = output(name, 0), ys = output(name, 1), yz = output(name, 2);
                float lo = 0, hi = 0;
                std::vector<float> xf;
                for (double v : x.v) {
                        xf.push_back(float(v));
                        lo = std::min(lo, float(v));
                        hi = std::max(hi, float(v));
                }
                bwq::QParams p = bwq::qparams(lo, hi, 8);
                assert_true(p.scale == float(ys.v[0]));
                assert_int_equal(p.zero, int(yz.v[0]));
                std::vector<uint8_t> q(xf.size());
                bwq::quantize_pack(xf.data(), xf.size(), p, 8, q.data());
                for (size_t i = 0; i < q.size(); i++)
                        assert_int_equal(q[i], int(y.v[i]));
                case_ran();
                print_message("%-48s exact (scale, zero point, values)\n", name);
        }
        const char *name = "test_quantizelinear";
        OTensor x = input(name, 0), s = input(name, 1), z = input(name, 2), y = output(name);
        if (z.type != kUint8) {
                not_applicable(name, "int8 output: activations are unsigned");
        } else {
                // The range whose 8-bit scale and zero point are ONNX's.
                float sc = float(s.v[0]);
                bwq::QParams p{sc, int32_t(z.v[0]), 255};
                std::vector<float> xf(x.v.begin(), x.v.end());
                std::vector<uint8_t> q(xf.size());
                bwq::quantize_pack(xf.data(), xf.size(), p, 8, q.data());
                for (size_t i = 0; i < q.size(); i++)
                        assert_int_equal(q[i], int(y.v[i]));
                case_ran();
                print_message("%-48s exact\n", name);
        }
        not_applicable("test_quantizelinear_axis", "per-axis scales: activations have one scale per tensor");
}

static int setup(void **state)
{
        auto *d = new Devices;
        if (npu_device_open("soft:threads=2", &d->best) || npu_device_open("soft:threads=1,isa=portable", &d->portable))
                return -1;
        *state = d;
        return 0;
}

static int teardown(void **state)
{
        npu_device_close(devs(state)->best);
        npu_device_close(devs(state)->portable);
        delete devs(state);
        return 0;
}

int main()
{
        if (access(kRoot, R_OK) != 0) {
                printf("onnx conformance: %s is missing (package libonnx-testdata); run 'make deps'\n", kRoot);
                return 1;
        }
#define GROUP(f) cmocka_unit_test_setup_teardown(f, group_start, group_end)
        const struct CMUnitTest tests[] = {
                GROUP(conv),  GROUP(conv_integer), GROUP(matmul_integer), GROUP(gemm),
                GROUP(pools), GROUP(global_avgpool), GROUP(resize),       GROUP(activations),
                GROUP(quantize_linear),
        };
        int failed = cmocka_run_group_tests_name("onnx-conformance", tests, setup, teardown);
        printf("onnx conformance: %u cases ran, %u not applicable (listed above, each with its reason)\n", total.ran,
               total.not_applicable);
        return failed;
}

// Every op of npuref at every input and output depth against a float
// reference (op_harness.cpp), within a bound derived from the scales:
//
//   conv/FC, output channel c, K products, activation Lipschitz constant L:
//     |err| <= L * (sum|w_c| * e_x + K * max|x| * e_w[c] + K * e_x * e_w[c]) + s_y / 2
//   with e_x = s_x / 2 (input quantization step / 2), e_w[c] = s_w[c] / 2
//   (int8 weight step / 2), s_y the output step; ADD: L (e_a + e_b) + s_y/2;
//   MUL: L (max|a| e_b + max|b| e_a + e_a e_b) + s_y/2; pools, resize,
//   depth-to-space and concat: e_x + s_y/2.  Plus 1e-4 (1 + |ref|) for float rounding.
//
// The same jobs run on the portable kernels and on the best ISA of this CPU
// and must give identical output bytes; the layer counters must equal
// ceil(elements * bits / 8).
#include "npu/npu.h"
#include "op_harness.h"

using namespace test;

namespace {
struct Devices {
        npu_device *best = nullptr, *portable = nullptr;
        // The AVX2 table where the CPU has AVX2 (null without): its 8-bit
        // kernel takes the layer's -128 answer (GemmEpilogue::sums128),
        // which an AVX-512 best table never reads.
        npu_device *avx2 = nullptr;
};

int setup(void **state)
{
        auto *d = new Devices;
        if (npu_device_open("soft:threads=2", &d->best) || npu_device_open("soft:threads=1,isa=portable", &d->portable))
                return -1;
        if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && npu_device_open("soft:threads=2,isa=avx2", &d->avx2))
                return -1;
        *state = d;
        return 0;
}

int teardown(void **state)
{
        auto *d = static_cast<Devices *>(*state);
        npu_device_close(d->best);
        npu_device_close(d->portable);
        npu_device_close(d->avx2);
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
        // RGB-like inputs: channels padded to 4 (a pixel read as one word),
        // the last pixels of the plane byte by byte.
        check_case(d->best, d->portable, conv_case("conv 5x5 s2 3->24 (channels padded)", rng, 3, 24, 5, 2, 1, 1, p2, NPU_ACT_RELU, 16));
        check_case(d->best, d->portable, conv_case("conv 3x3 s1 3->5 (channels padded)", rng, 3, 5, 3, 1, 1, 1, p1, NPU_ACT_NONE));
        check_case(d->best, d->portable, conv_case("conv 3x3 s2 2->8 (channels padded)", rng, 2, 8, 3, 2, 1, 1, pa, NPU_ACT_RELU));
        check_case(d->best, d->portable, conv_case("conv 3x3 s1 1->6 (channels padded)", rng, 1, 6, 3, 1, 1, 1, p1, NPU_ACT_NONE));
        check_case(d->best, d->portable, conv_case("conv 1x1 8->33 (in place)", rng, 8, 33, 1, 1, 1, 1, p0, NPU_ACT_NONE));
        // Whole 4-byte K blocks per tap: the padded input read tap by tap.
        check_case(d->best, d->portable, conv_case("conv 3x3 s1 p1 8->12 (taps)", rng, 8, 12, 3, 1, 1, 1, p1, NPU_ACT_RELU6));
        check_case(d->best, d->portable,
                   conv_case("conv 3x3 s2 d2 groups 2 (taps)", rng, 8, 8, 3, 2, 2, 2, pa, NPU_ACT_HARDSWISH));
        check_case(d->best, d->portable, conv_case("conv 1x1 s2 (taps)", rng, 12, 20, 1, 2, 1, 1, p0, NPU_ACT_RELU));
        check_case(d->best, d->portable,
                   conv_case("conv 3x3 61 wide (taps, tiles span rows)", rng, 4, 8, 3, 1, 1, 1, p1, NPU_ACT_NONE, 60));
        check_case(d->best, d->portable, conv_case("conv 3x3 groups 2", rng, 6, 4, 3, 1, 1, 2, p1, NPU_ACT_HARDSWISH));
        // K = 9 x 7301 > 65536 bytes per window: im2col rows summed in int32
        // pieces added in int64.
        check_case(d->best, d->portable, conv_case("conv 3x3 7301->2 (K split)", rng, 7301, 2, 3, 1, 1, 1, p0, NPU_ACT_NONE, 3));
        check_case(d->best, d->portable, conv_case("depthwise 3x3 s2", rng, 12, 12, 3, 2, 1, 12, p1, NPU_ACT_RELU6));
        check_case(d->best, d->portable, conv_case("depthwise 3x3 s1 (columns reused)", rng, 20, 20, 3, 1, 1, 20, p1, NPU_ACT_RELU));
        check_case(d->best, d->portable, conv_case("depthwise 5x5 hardsigmoid", rng, 8, 8, 5, 1, 1, 8, p2, NPU_ACT_HARDSIGMOID));
        check_case(d->best, d->portable, conv_case("conv 1x1 sigmoid", rng, 16, 16, 1, 1, 1, 1, p0, NPU_ACT_SIGMOID));
        // Whole 16-channel blocks (no masked lanes) on each kernel path.
        check_case(d->best, d->portable, conv_case("conv 1x1 32->32 relu (whole blocks)", rng, 32, 32, 1, 1, 1, 1, p0, NPU_ACT_RELU));
        // 1624 rows: 4-bit inputs with as many outputs as inputs or fewer
        // are read packed by the AVX-512 GEMM (GemmA::nibbles), and the
        // items are 96 rows (tile_rows with a least of 2 kTile), the last one
        // partial.
        check_case(d->best, d->portable,
                   conv_case("conv 1x1 32->24 (packed 4-bit rows, 96-row items)", rng, 32, 24, 1, 1, 1, 1, p0, NPU_ACT_NONE, 28));
        check_case(d->best, d->portable, conv_case("conv 3x3 s1 p1 8->16 (taps, whole blocks)", rng, 8, 16, 3, 1, 1, 1, p1, NPU_ACT_NONE));
        check_case(d->best, d->portable,
                   conv_case("conv 3x3 groups 2 8->32 (whole blocks per group)", rng, 8, 32, 3, 1, 1, 2, p1, NPU_ACT_RELU6));
        check_case(d->best, d->portable, conv_case("conv 1x1 16->16 hardswish (whole blocks)", rng, 16, 16, 1, 1, 1, 1, p0, NPU_ACT_HARDSWISH));
        check_case(d->best, d->portable, conv_case("depthwise 3x3 s1 32 (whole blocks)", rng, 32, 32, 3, 1, 1, 32, p1, NPU_ACT_RELU));
        check_case(d->best, d->portable, conv_case("depthwise 3x3 s2 16 (whole blocks)", rng, 16, 16, 3, 2, 1, 16, p1, NPU_ACT_RELU6));
        check_case(d->best, d->portable, conv_case("depthwise 5x5 16 (whole blocks)", rng, 16, 16, 5, 1, 1, 16, p2, NPU_ACT_NONE));
        check_case(d->best, d->portable,
                   conv_case("depthwise 3x3 16 hardsigmoid (whole blocks)", rng, 16, 16, 3, 1, 1, 16, p1, NPU_ACT_HARDSIGMOID));
        // The padding written out (padded_plane): asymmetric pads at stride
        // 2 tap by tap, and a dilated depthwise window.
        check_case(d->best, d->portable, conv_case("conv 3x3 s2 asym pads 8->16 (padded)", rng, 8, 16, 3, 2, 1, 1, pa, NPU_ACT_RELU));
        check_case(d->best, d->portable, conv_case("depthwise 3x3 dilation 2 (padded)", rng, 16, 16, 3, 1, 2, 16, p2, NPU_ACT_NONE));
        // Odd channel counts (AVX2 reads a 16-bit block of them through a
        // copy), asymmetric pads, a window of more taps than the 16-bit
        // AVX2 kernel takes (7x7: the byte planes).
        check_case(d->best, d->portable, conv_case("depthwise 3x3 s1 7 (odd channels)", rng, 7, 7, 3, 1, 1, 7, p1, NPU_ACT_RELU));
        check_case(d->best, d->portable, conv_case("depthwise 3x3 s2 asym pads 21", rng, 21, 21, 3, 2, 1, 21, pa, NPU_ACT_RELU6));
        check_case(d->best, d->portable, conv_case("depthwise 7x7 24 (49 taps)", rng, 24, 24, 7, 1, 1, 24, p2, NPU_ACT_NONE));
}

// NPU_LAYER_RESIDUAL: a second input added before the activation, zero
// past its channels, on each GEMM path: 1x1 in place with the epilogue in
// registers (folded activations) and through memory (HardSwish, Sigmoid),
// tap by tap, channels padded, groups, the int64 split; the bound adds the
// residual's own half step.
static void conv2d_residual(void **state)
{
        auto *d = static_cast<Devices *>(*state);
        test::Rng rng{111};
        uint32_t p0[4] = {0, 0, 0, 0}, p1[4] = {1, 1, 1, 1};
        // A convolution of conv_case and its residual: rc channels in [lo, hi].
        struct ResidualCase {
                const char *name;
                uint32_t cin, cout, k, s, groups;
                const uint32_t *pads;
                uint8_t act;
                uint32_t hw, rc;
                float lo, hi;
        };
        const ResidualCase cases[] = {
                {"residual 1x1 24->28 relu (padded shortcut)", 24, 28, 1, 1, 1, p0, NPU_ACT_RELU, 9, 24, -2, 2},
                {"residual 1x1 40->40 none (two column blocks)", 40, 40, 1, 1, 1, p0, NPU_ACT_NONE, 9, 40, -1, 3},
                {"residual 1x1 16->20 relu6, 17 channels", 16, 20, 1, 1, 1, p0, NPU_ACT_RELU6, 9, 17, -1, 1},
                {"residual 1x1 hardswish", 8, 12, 1, 1, 1, p0, NPU_ACT_HARDSWISH, 9, 12, -3, 1},
                {"residual 1x1 sigmoid, 5 channels", 8, 9, 1, 1, 1, p0, NPU_ACT_SIGMOID, 9, 5, -1, 1},
                {"residual 3x3 taps 8->12", 8, 12, 3, 1, 1, p1, NPU_ACT_RELU, 9, 10, -1, 2},
                {"residual 3x3 s2 3->6 (channels padded)", 3, 6, 3, 2, 1, p1, NPU_ACT_NONE, 12, 6, -1, 1},
                {"residual 3x3 groups 2", 6, 4, 3, 1, 2, p1, NPU_ACT_RELU, 9, 3, -2, 2},
                {"residual 3x3 7301->2 (K split)", 7301, 2, 3, 1, 1, p0, NPU_ACT_NONE, 3, 1, -1, 1},
        };
        for (const ResidualCase &r : cases) {
                uint32_t pads[4] = {r.pads[0], r.pads[1], r.pads[2], r.pads[3]};
                Case cs = conv_case(r.name, rng, r.cin, r.cout, r.k, r.s, 1, r.groups, pads, r.act, r.hw);
                const uint32_t n = cs.in[0].n;
                const uint32_t oh = (cs.in[0].h + cs.pt + cs.pb - cs.d * (cs.k - 1) - 1) / cs.s + 1;
                const uint32_t ow = (cs.in[0].w + cs.pl + cs.pr - cs.d * (cs.k - 1) - 1) / cs.s + 1;
                cs.in.push_back(random_tensor(rng, n, oh, ow, r.rc, r.lo, r.hi));
                check_case(d->best, d->portable, cs);
        }
}

// A FULLY_CONNECTED case on x: weights uniform in [-wmax, wmax], every bias b.
static Case fc_case(const char *name, uint8_t act, test::Rng &rng, Tensor x, uint32_t cout, float wmax, float b)
{
        Case cs{name, NPU_OP_FULLY_CONNECTED, act, {std::move(x)}};
        cs.cout = cout;
        cs.weights.resize(size_t(cout) * cs.in[0].h * cs.in[0].w * cs.in[0].c);
        for (auto &w : cs.weights)
                w = rng.uniform(-wmax, wmax);
        cs.bias.assign(cout, b);
        return cs;
}

static void fully_connected(void **state)
{
        auto *d = static_cast<Devices *>(*state);
        test::Rng rng{202};
        check_case(d->best, d->portable,
                   fc_case("fully_connected 45->10", NPU_ACT_NONE, rng, random_tensor(rng, 2, 3, 3, 5, -1, 1), 10, 0.3f, 0.05f));
        // K = 66000 > 65536: each row's sums in int32 pieces added in int64.
        check_case(d->best, d->portable,
                   fc_case("fully_connected 66000->3 (K split)", NPU_ACT_RELU, rng, random_tensor(rng, 1, 1, 1, 66000, -1, 1), 3,
                           0.01f, 0.1f));
        // Whole 16-channel blocks of outputs.
        check_case(d->best, d->portable,
                   fc_case("fully_connected 45->32 relu (whole blocks)", NPU_ACT_RELU, rng, random_tensor(rng, 3, 3, 3, 5, -1, 1), 32,
                           0.3f, 0.05f));
        // Weights past 512 KB: column chunks of 256 KB (224 columns here) by
        // row tiles; 600 outputs stay whole bytes at 4 and 6 bits, 602 only
        // at 8 and 16 (at 4 and 6 they take the unchunked path).
        check_case(d->best, d->portable,
                   fc_case("fully_connected 1156->600 (column chunks)", NPU_ACT_NONE, rng, random_tensor(rng, 50, 2, 2, 289, -1, 1), 600,
                           0.05f, 0.05f));
        check_case(d->best, d->portable,
                   fc_case("fully_connected 1156->602 relu (column chunks)", NPU_ACT_RELU, rng, random_tensor(rng, 3, 2, 2, 289, -1, 1),
                           602, 0.05f, 0.05f));
}

// A weight byte of -128, which the driver's packing never writes but a
// job's buffer may hold (the AVX2 8-bit kernel cannot negate it and takes
// another path for its 16 columns): both instruction sets agree.
static void minimum_weight(void **state)
{
        auto *d = static_cast<Devices *>(*state);
        test::Rng rng{303};
        uint32_t p1[4] = {1, 1, 1, 1}, p0[4] = {0, 0, 0, 0};
        Case c3 = conv_case("conv 3x3 32->40, a -128 weight", rng, 32, 40, 3, 1, 1, 1, p1, NPU_ACT_RELU);
        c3.min_weights = {5, 288 * 20 + 100};
        Case c1 = conv_case("conv 1x1 32->20, a -128 weight", rng, 32, 20, 1, 1, 1, 1, p0, NPU_ACT_NONE, 12);
        c1.min_weights = {32 * 17 + 3};
        // 675 KB of weights: their sums and the -128 answer come from the
        // device's threads.
        Case fc = fc_case("fully_connected 1156->600, -128s", NPU_ACT_NONE, rng, random_tensor(rng, 9, 2, 2, 289, -1, 1), 600,
                          0.05f, 0.05f);
        fc.min_weights = {1156 * 300 + 9, 1156 * 599};
        for (const Case *c : {&c3, &c1, &fc}) {
                check_isas_agree(d->best, d->portable, *c);
                if (d->avx2) {
                        check_isas_agree(d->avx2, d->portable, *c);
                        print_message("  (the line above: the AVX2 table against the portable one)\n");
                }
        }
        if (!d->avx2)
                print_message("no AVX2 and FMA on this CPU: the AVX2 table's -128 cases are not run\n");
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
        // 1640 pixels of 8 + 3 channels: tiles of 192 rows (float_ops'
        // narrow rows), the last one partial, on both devices' threads.
        Case cat2{"concat of 2, narrow rows", NPU_OP_CONCAT, NPU_ACT_NONE,
                  {random_tensor(rng, 2, 20, 41, 8, -1, 1), random_tensor(rng, 2, 20, 41, 3, 0, 2)}};
        check_case(d->best, d->portable, cat2);
}

static void pools(void **state)
{
        auto *d = static_cast<Devices *>(*state);
        test::Rng rng{404};
        Case mp{"maxpool 3x3 s2 p1", NPU_OP_MAXPOOL, NPU_ACT_NONE, {random_tensor(rng, 1, 9, 8, 4, -1, 1)}};
        mp.k = 3, mp.s = 2, mp.pt = mp.pl = mp.pb = mp.pr = 1;
        check_case(d->best, d->portable, mp);
        // 28 channels (the byte maximum's overlapping last 16), odd width.
        Case mp2{"maxpool 2x2 s2, 28 channels", NPU_OP_MAXPOOL, NPU_ACT_NONE, {random_tensor(rng, 1, 6, 7, 28, -2, 1)}};
        mp2.k = 2, mp2.s = 2;
        check_case(d->best, d->portable, mp2);
        // Output ranges tied to the input's, as the compiler ties them: at
        // one depth the codes' maximum (4 bits: of the packed nibbles where
        // a pixel is whole bytes, 28 channels; unpacked for 5).
        for (uint32_t c : {28u, 5u}) {
                Case mt{"maxpool 3x3 s2 p1, tied ranges", NPU_OP_MAXPOOL, NPU_ACT_NONE, {random_tensor(rng, 1, 9, 11, c, -2, 1)}};
                mt.k = 3, mt.s = 2, mt.pt = mt.pl = mt.pb = mt.pr = 1;
                mt.in_range = {{-2.0f, 1.0f}};
                mt.out_range = {-2.0f, 1.0f};
                check_case(d->best, d->portable, mt);
        }
        Case ap{"avgpool 3x3 s1 p1 (pads excluded)", NPU_OP_AVGPOOL, NPU_ACT_NONE, {random_tensor(rng, 1, 6, 6, 3, -1, 2)}};
        ap.k = 3, ap.pt = ap.pl = ap.pb = ap.pr = 1;
        check_case(d->best, d->portable, ap);
        Case gap{"global_avgpool", NPU_OP_GLOBAL_AVGPOOL, NPU_ACT_NONE, {random_tensor(rng, 2, 7, 7, 9, -1, 2)}};
        check_case(d->best, d->portable, gap);
}

// Upsampling: nearest by 2x3 (each pixel repeated), bilinear x2 (ONNX
// linear, half_pixel), a convex combination, and depth-to-space by 2x3
// blocks: within e_x + s_y/2.
static void resize(void **state)
{
        auto *d = static_cast<Devices *>(*state);
        test::Rng rng{505};
        Case nn{"resize nearest 2x3", NPU_OP_RESIZE, NPU_ACT_NONE, {random_tensor(rng, 1, 5, 4, 6, -1, 2)}};
        nn.k = 1, nn.s = 2, nn.sw = 3;
        check_case(d->best, d->portable, nn);
        Case bl{"resize bilinear x2 relu", NPU_OP_RESIZE, NPU_ACT_RELU, {random_tensor(rng, 2, 6, 7, 5, -2, 1)}};
        bl.k = 2, bl.s = 2;
        check_case(d->best, d->portable, bl);
        Case ds{"depth_to_space 2x3", NPU_OP_DEPTH_TO_SPACE, NPU_ACT_NONE, {random_tensor(rng, 1, 4, 5, 24, -1, 1)}};
        ds.s = 2, ds.sw = 3;
        check_case(d->best, d->portable, ds);
}

int main()
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(conv2d),
                cmocka_unit_test(conv2d_residual),
                cmocka_unit_test(fully_connected),
                cmocka_unit_test(minimum_weight),
                cmocka_unit_test(elementwise),
                cmocka_unit_test(pools),
                cmocka_unit_test(resize),
        };
        return cmocka_run_group_tests_name("ops", tests, setup, teardown);
}

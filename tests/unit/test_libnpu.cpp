// The driver's public API: graph builder errors, bit-depth modes with a
// decision page written by the test, fallback, waiting on many models with
// io_uring, traffic per depth, and ISA-independent results end to end.
#include <time.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cmath>
#include <cstring>

#include "common/clock.h"
#include "driver/mobilenet/mobilenet.h"
#include "npu/npu.h"
#include "test_util.h"

namespace {

int64_t now_ns() { return int64_t(bwq::monotonic_ns()); }

struct Net {
        npu_device *dev = nullptr;
        npu_graph *g = nullptr;
        npu_model *m = nullptr;
        std::vector<float> input, out;
        Net(const char *device, uint32_t size)
        {
                MobileNetOptions o;
                o.size = size;
                o.width = 0.5f;
                o.classes = 10;
                assert_int_equal(npu_device_open(device, &dev), 0);
                assert_int_equal(mobilenet_v2_build(o, &g), 0);
                input = mobilenet_v2_input(o);
                npu_compile_options co{input.data()};
                assert_int_equal(npu_model_compile(dev, g, &co, &m), 0);
                out.resize(npu_model_output_elements(m));
        }
        ~Net()
        {
                npu_model_free(m);
                npu_graph_free(g);
                npu_device_close(dev);
        }
        npu_run_stats run()
        {
                npu_run_stats st;
                assert_int_equal(npu_model_run(m, input.data(), out.data(), &st), 0);
                return st;
        }
};

} // namespace

static void graph_builder_errors(void **)
{
        npu_graph *g;
        assert_int_equal(npu_graph_new(&g), 0);
        float w[16 * 9] = {};
        npu_conv2d_params p{};
        p.out_channels = 4;
        p.kernel_h = p.kernel_w = 3;
        assert_int_equal(npu_graph_conv2d(g, 0, &p, w, nullptr), -EINVAL);  // no tensor 0 yet
        int x = npu_graph_input(g, 1, 8, 8, 4);
        assert_int_equal(x, 0);
        assert_int_equal(npu_graph_input(nullptr, 1, 1, 1, 1), -EINVAL);
        p.groups = 3;  // 4 channels do not split in 3
        assert_int_equal(npu_graph_conv2d(g, x, &p, w, nullptr), -EINVAL);
        p.groups = 1;
        p.kernel_h = 0;
        assert_int_equal(npu_graph_conv2d(g, x, &p, w, nullptr), -EINVAL);
        p.kernel_h = 3;
        p.pad_top = 3;  // a window of nothing but padding
        assert_int_equal(npu_graph_conv2d(g, x, &p, w, nullptr), -EINVAL);
        p.pad_top = 1;
        float bad[4 * 9 * 4];
        std::fill(bad, bad + 4 * 9 * 4, 0.0f);
        bad[7] = NAN;
        assert_int_equal(npu_graph_conv2d(g, x, &p, bad, nullptr), -EINVAL);
        p.kernel_w = 9;  // wider than 8 + padding
        assert_int_equal(npu_graph_conv2d(g, x, &p, w, nullptr), -EINVAL);
        p.kernel_w = 3;
        p.reserved[5] = 1;  // reserved fields of option structs must be zero
        assert_int_equal(npu_graph_conv2d(g, x, &p, w, nullptr), -EINVAL);
        p.reserved[5] = 0;
        p.pad_left = p.pad_bottom = p.pad_right = 1;  // 8x8 in, 8x8 out
        // A residual: the output's pixels and at most its channels, not
        // depthwise; a refused one adds nothing to the graph.
        const int layers = npu_graph_layer_count(g), tensors = npu_graph_tensor_count(g);
        int wide = npu_graph_input(g, 1, 8, 8, 5), small = npu_graph_input(g, 1, 4, 8, 4);
        assert_true(wide > 0 && small > 0);
        assert_int_equal(npu_graph_conv2d_residual(g, x, wide, &p, w, nullptr), -EINVAL);
        assert_int_equal(npu_graph_conv2d_residual(g, x, small, &p, w, nullptr), -EINVAL);
        assert_int_equal(npu_graph_conv2d_residual(g, x, 99, &p, w, nullptr), -EINVAL);
        p.groups = 4;
        assert_int_equal(npu_graph_conv2d_residual(g, x, x, &p, w, nullptr), -EINVAL);
        p.groups = 1;
        assert_int_equal(npu_graph_layer_count(g), layers);
        assert_int_equal(npu_graph_tensor_count(g), tensors + 2);
        int r = npu_graph_conv2d_residual(g, x, x, &p, w, nullptr);
        assert_true(r > 0);
        assert_int_equal(npu_graph_layer_input(g, unsigned(layers), 1), x);
        p.pad_left = p.pad_bottom = p.pad_right = 0;
        npu_pool_params pp{};
        pp.kernel_h = pp.kernel_w = 2;
        pp.reserved[0] = 1;
        assert_int_equal(npu_graph_maxpool(g, x, &pp), -EINVAL);
        pp.reserved[0] = 0;
        int y = npu_graph_maxpool(g, x, &pp);
        assert_true(y > 0);
        assert_int_equal(npu_graph_add(g, x, y, 0), -EINVAL);  // [8,8] + [7,7]
        int cat[2] = {x, y};
        assert_int_equal(npu_graph_concat(g, cat, 2), -EINVAL);
        assert_int_equal(npu_graph_concat(g, cat, 1), -EINVAL);
        assert_int_equal(npu_graph_set_bits_range(g, y, 8, 6), -EINVAL);
        assert_int_equal(npu_graph_set_bits_range(g, y, 5, 8), -EINVAL);
        assert_int_equal(npu_graph_set_bits_range(g, x, 8, 4), -EINVAL);
        assert_int_equal(npu_graph_set_bits_range(g, x, 6, 8), 0);  // an input's own clamp
        assert_int_equal(npu_graph_set_bits_range(g, y, 6, 8), 0);
        assert_int_equal(npu_graph_tensor_elements(g, y), 7 * 7 * 4);
        npu_graph_free(g);
}

// Two inputs and two outputs: y0 = relu(a + b), y1 = a 1x1 conv of b.  Each
// output matches the float reference at 16 bits; the one-input calls and
// wrong counts are refused.
static void several_inputs_and_outputs(void **)
{
        npu_device *dev;
        assert_int_equal(npu_device_open("soft:threads=1", &dev), 0);
        npu_graph *g;
        assert_int_equal(npu_graph_new(&g), 0);
        int a = npu_graph_input(g, 1, 4, 4, 8), b = npu_graph_input(g, 1, 4, 4, 8);
        assert_int_equal(a, 0);
        assert_int_equal(b, 1);
        int y0 = npu_graph_add(g, a, b, NPU_ACTIVATION_RELU);
        npu_conv2d_params p{};
        p.out_channels = 3;
        p.kernel_h = p.kernel_w = 1;
        test::Rng rng{7};
        std::vector<float> w(3 * 8), xa(128), xb(128);
        for (auto &v : w)
                v = rng.uniform(-1, 1);
        for (size_t i = 0; i < 128; i++)
                xa[i] = rng.uniform(-2, 2), xb[i] = rng.uniform(-2, 2);
        int y1 = npu_graph_conv2d(g, b, &p, w.data(), nullptr);
        assert_int_equal(npu_graph_add_output(g, a), -EINVAL);  // an input is no layer's output
        assert_int_equal(npu_graph_add_output(g, y0), 0);
        assert_int_equal(npu_graph_add_output(g, y1), 1);
        const float *ins[2] = {xa.data(), xb.data()};
        npu_compile_options o{};
        o.calibration_input = xa.data();
        npu_model *m;
        assert_int_equal(npu_model_compile(dev, g, &o, &m), -EINVAL);  // one calibration tensor for two inputs
        o.calibration_inputs = ins;
        assert_int_equal(npu_model_compile(dev, g, &o, &m), 0);
        assert_int_equal(npu_model_input_count(m), 2);
        assert_int_equal(npu_model_output_count(m), 2);
        assert_int_equal(npu_model_set_mode(m, NPU_MODE_FIXED, 16, 4, 16), 0);
        std::vector<float> out0(128), out1(48), ref0(128), ref1(48);
        assert_int_equal(npu_model_output(m, 0, out0.data(), out0.size()), -ENOENT);  // no run yet
        assert_int_equal(npu_model_run(m, xa.data(), out0.data(), nullptr), -EINVAL);
        assert_int_equal(npu_model_submit_inputs(m, ins, 1), -EINVAL);
        assert_int_equal(npu_model_run_inputs(m, ins, 1, nullptr), -EINVAL);
        assert_int_equal(npu_model_submit_inputs(m, ins, 2), 0);
        assert_int_equal(npu_model_output(m, 0, out0.data(), out0.size()), -EBUSY);  // not reaped yet
        npu_model *mm = m;
        assert_int_equal(npu_wait_many(&mm, 1, INT64_MAX), 0);
        assert_int_equal(npu_model_result(m, nullptr, nullptr), 0);
        assert_int_equal(npu_model_output(m, 2, out0.data(), out0.size()), -EINVAL);
        assert_int_equal(npu_model_output(m, 1, out1.data(), 47), -EINVAL);
        assert_int_equal(npu_model_output(m, 0, out0.data(), out0.size()), 0);
        assert_int_equal(npu_model_output(m, 1, out1.data(), out1.size()), 0);
        assert_int_equal(npu_graph_reference_inputs(g, ins, 1, 0, y0, ref0.data(), ref0.size()), -EINVAL);
        assert_int_equal(npu_graph_reference_inputs(g, ins, 2, 1u << 7, y0, ref0.data(), ref0.size()), -EINVAL);
        assert_int_equal(npu_graph_reference_inputs(g, ins, 2, 0, y0, ref0.data(), ref0.size()), 0);
        assert_int_equal(npu_graph_reference_inputs(g, ins, 2, NPU_REFERENCE_INT8_WEIGHTS, y1, ref1.data(), ref1.size()), 0);
        for (size_t i = 0; i < 128; i++) {
                assert_float_equal(ref0[i], std::max(xa[i] + xb[i], 0.0f), 1e-6);
                assert_float_equal(out0[i], ref0[i], 1e-3);
        }
        // Against the device's own weights 16 bits leave only the activations' rounding.
        for (size_t i = 0; i < 48; i++)
                assert_float_equal(out1[i], ref1[i], 1e-3);
        npu_model_free(m);
        npu_graph_free(g);
        npu_device_close(dev);
}

// Host nodes between device segments: conv -> host softmax over channels ->
// conv -> host scale.  The run matches the float reference at 16 bits, the
// host layers are in the statistics with their bytes and time, a failing
// host function fails the run with its error, and the async path works.
static int softmax_c(void *user, const float *const *in, const npu_host_shape *s, unsigned count, float *out)
{
        int *calls = static_cast<int *>(user);
        ++*calls;
        if (count != 1)
                return -EINVAL;
        size_t rows = size_t(s[0].n) * s[0].h * s[0].w, C = s[0].c;
        for (size_t r = 0; r < rows; r++) {
                float mx = in[0][r * C];
                for (size_t c = 1; c < C; c++)
                        mx = std::max(mx, in[0][r * C + c]);
                float sum = 0;
                for (size_t c = 0; c < C; c++)
                        sum += out[r * C + c] = std::exp(in[0][r * C + c] - mx);
                for (size_t c = 0; c < C; c++)
                        out[r * C + c] /= sum;
        }
        return 0;
}

static int scale_or_fail(void *user, const float *const *in, const npu_host_shape *s, unsigned, float *out)
{
        if (*static_cast<bool *>(user))
                return -EDOM;
        size_t n = size_t(s[0].n) * s[0].h * s[0].w * s[0].c;
        for (size_t i = 0; i < n; i++)
                out[i] = 2.0f * in[0][i];
        return 0;
}

static void host_nodes(void **)
{
        npu_device *dev;
        assert_int_equal(npu_device_open("soft:threads=1", &dev), 0);
        npu_graph *g;
        assert_int_equal(npu_graph_new(&g), 0);
        int x = npu_graph_input(g, 1, 6, 6, 4);
        test::Rng rng{11};
        std::vector<float> w1(8 * 4), w2(5 * 8), in(144);
        for (auto &v : w1)
                v = rng.uniform(-1, 1);
        for (auto &v : w2)
                v = rng.uniform(-1, 1);
        for (auto &v : in)
                v = rng.uniform(-2, 2);
        npu_conv2d_params p{};
        p.kernel_h = p.kernel_w = 1;
        p.out_channels = 8;
        int c1 = npu_graph_conv2d(g, x, &p, w1.data(), nullptr);
        int calls = 0;
        bool fail = false;
        assert_int_equal(npu_graph_host(g, &c1, 1, 1, 6, 6, 8, nullptr, nullptr), -EINVAL);  // no function
        int bad = 99;
        assert_int_equal(npu_graph_host(g, &bad, 1, 1, 6, 6, 8, softmax_c, &calls), -EINVAL);
        int sm = npu_graph_host(g, &c1, 1, 1, 6, 6, 8, softmax_c, &calls);
        assert_true(sm > c1);
        p.out_channels = 5;
        int c2 = npu_graph_conv2d(g, sm, &p, w2.data(), nullptr);
        int y = npu_graph_host(g, &c2, 1, 1, 6, 6, 5, scale_or_fail, &fail);
        assert_int_equal(npu_graph_add_output(g, y), 0);
        assert_int_equal(npu_graph_add_output(g, sm), 1);
        npu_compile_options o{};
        o.calibration_input = in.data();
        npu_model *m;
        assert_int_equal(npu_model_compile(dev, g, &o, &m), 0);
        assert_int_equal(npu_model_set_mode(m, NPU_MODE_FIXED, 16, 4, 16), 0);
        std::vector<float> out(180), ref(180), smo(288), smref(288);
        const float *ins[1] = {in.data()};
        assert_int_equal(npu_graph_reference_inputs(g, ins, 1, NPU_REFERENCE_INT8_WEIGHTS, y, ref.data(), ref.size()), 0);
        assert_int_equal(npu_graph_reference_inputs(g, ins, 1, NPU_REFERENCE_INT8_WEIGHTS, sm, smref.data(), smref.size()), 0);
        calls = 0;
        npu_run_stats st{};
        assert_int_equal(npu_model_run(m, in.data(), out.data(), &st), 0);
        assert_int_equal(calls, 1);
        assert_int_equal(npu_model_output(m, 1, smo.data(), smo.size()), 0);
        for (size_t i = 0; i < 180; i++)
                assert_float_equal(out[i], ref[i], 2e-3);
        for (size_t i = 0; i < 288; i++)
                assert_float_equal(smo[i], smref[i], 1e-4);
        assert_int_equal(st.layer_count, 4);
        assert_int_equal(st.host_layers, 2);
        uint64_t act = 0;
        for (unsigned l = 0; l < 4; l++) {
                npu_layer_stats ls;
                assert_int_equal(npu_model_layer_stats(m, l, &ls), 0);
                assert_int_equal(ls.bits, 16);
                assert_int_equal(ls.op, l == 1 || l == 3 ? NPU_LAYER_HOST : unsigned(NPU_OP_CONV2D));
                act += ls.act_bytes_read + ls.bytes_written;
        }
        assert_int_equal(act, st.activation_bytes);  // the boundaries' bytes are counted
        npu_layer_stats hs;
        assert_int_equal(npu_model_layer_stats(m, 1, &hs), 0);
        assert_int_equal(hs.act_bytes_read, 288 * 2);
        assert_int_equal(hs.bytes_written, 288 * 2);
        // At 4 bits the host boundary moves a quarter of the bytes.
        assert_int_equal(npu_model_set_mode(m, NPU_MODE_FIXED, 4, 4, 16), 0);
        assert_int_equal(npu_model_run(m, in.data(), out.data(), &st), 0);
        assert_int_equal(npu_model_layer_stats(m, 1, &hs), 0);
        assert_int_equal(hs.bits, 4);
        assert_int_equal(hs.bytes_written, 288 / 2);
        // Asynchronous: the segments before the last job run in submit.
        assert_int_equal(npu_model_submit(m, in.data()), 0);
        npu_model *mm = m;
        assert_int_equal(npu_wait_many(&mm, 1, INT64_MAX), 0);
        assert_int_equal(npu_model_result(m, out.data(), &st), 0);
        assert_int_equal(st.host_layers, 2);
        // A host function's error fails the run, and the next run is fine.
        fail = true;
        assert_int_equal(npu_model_run(m, in.data(), out.data(), &st), -EDOM);
        fail = false;
        assert_int_equal(npu_model_run(m, in.data(), out.data(), &st), 0);
        npu_model_free(m);
        npu_graph_free(g);
        npu_device_close(dev);
}

// Activation traffic is ceil(elements * bits / 8) per tensor: at 4 bits a
// quarter of 16 bits, exactly; weights stay the same at every depth.
static void traffic_per_depth(void **)
{
        Net n("soft:threads=2", 64);
        npu_run_stats st[4];
        const unsigned depths[4] = {4, 6, 8, 16};
        for (int i = 0; i < 4; i++) {
                assert_int_equal(npu_model_set_mode(n.m, NPU_MODE_FIXED, depths[i], 4, 16), 0);
                st[i] = n.run();
                assert_int_equal(st[i].min_layer_bits, depths[i]);
                assert_int_equal(st[i].max_layer_bits, depths[i]);
                uint64_t act = 0;
                for (unsigned l = 0; l < st[i].layer_count; l++) {
                        npu_layer_stats ls;
                        assert_int_equal(npu_model_layer_stats(n.m, l, &ls), 0);
                        act += ls.act_bytes_read + ls.bytes_written;
                }
                assert_int_equal(act, st[i].activation_bytes);
        }
        assert_int_equal(st[0].activation_bytes * 4, st[3].activation_bytes);
        assert_int_equal(st[2].activation_bytes * 2, st[3].activation_bytes);
        for (int i = 1; i < 4; i++)
                assert_int_equal(st[i].weight_bytes, st[0].weight_bytes);
        print_message("activation bytes per run: 4b %llu, 6b %llu, 8b %llu, 16b %llu\n",
                      (unsigned long long)st[0].activation_bytes, (unsigned long long)st[1].activation_bytes,
                      (unsigned long long)st[2].activation_bytes, (unsigned long long)st[3].activation_bytes);
}

// The whole network against its float reference: close at 16 bits, and the
// error grows as the depth falls.
static void accuracy_by_depth(void **)
{
        Net n("soft:threads=2", 64);
        std::vector<float> ref(n.out.size());
        int out_tensor = -1;
        for (int t = 0; npu_graph_tensor_elements(n.g, t) >= 0; t++)
                out_tensor = t;
        assert_int_equal(npu_graph_reference(n.g, n.input.data(), out_tensor, ref.data(), ref.size()), 0);
        double norm = 0;
        for (float v : ref)
                norm += double(v) * v;
        norm = std::sqrt(norm / ref.size());
        double rel[4];
        const unsigned depths[4] = {4, 6, 8, 16};
        for (int i = 0; i < 4; i++) {
                assert_int_equal(npu_model_set_mode(n.m, NPU_MODE_FIXED, depths[i], 4, 16), 0);
                n.run();
                double e = 0;
                for (size_t k = 0; k < ref.size(); k++)
                        e += double(n.out[k] - ref[k]) * (n.out[k] - ref[k]);
                rel[i] = std::sqrt(e / ref.size()) / norm;
                print_message("%2u-bit activations: output RMS error / RMS = %.4f\n", depths[i], rel[i]);
        }
        // 16 bits is limited by the int8 weights alone.
        assert_true(rel[3] < 0.05);
        assert_true(rel[2] < 0.15);
        assert_true(rel[0] > rel[3]);
}

static void modes_follow_page(void **)
{
        Net n("soft:threads=2", 64);
        test::Page page;
        // No page yet: BWQ modes run at the fallback depth and say so.
        assert_int_equal(npu_model_set_mode(n.m, NPU_MODE_BWQ_LAYER, 8, 4, 16), 0);
        npu_run_stats st = n.run();
        assert_true(st.flags & NPU_RUN_FALLBACK);
        assert_int_equal(st.min_layer_bits, 8);
        assert_int_equal(st.max_layer_bits, 8);

        assert_int_equal(npu_model_set_decision_page(n.m, page.fd), 0);
        for (unsigned bits : {4u, 6u, 8u, 16u}) {
                page.set_bits(bits);
                st = n.run();
                assert_false(st.flags & NPU_RUN_FALLBACK);
                assert_int_equal(st.min_layer_bits, bits);
                assert_int_equal(st.max_layer_bits, bits);
        }
        // Model clamps: [6, 8].
        assert_int_equal(npu_model_set_mode(n.m, NPU_MODE_BWQ_LAYER, 8, 6, 8), 0);
        page.set_bits(4);
        st = n.run();
        assert_int_equal(st.min_layer_bits, 6);
        page.set_bits(16);
        st = n.run();
        assert_int_equal(st.max_layer_bits, 8);

        // BWQ_MODEL: one depth for the whole run, reported.
        assert_int_equal(npu_model_set_mode(n.m, NPU_MODE_BWQ_MODEL, 8, 4, 16), 0);
        page.set_bits(6);
        st = n.run();
        assert_int_equal(st.model_bits, 6);
        assert_int_equal(st.min_layer_bits, 6);
        assert_int_equal(st.max_layer_bits, 6);

        // A per-layer clamp holds in BWQ_LAYER: the first layer at [16, 16].
        npu_graph *g = n.g;
        assert_int_equal(npu_graph_set_bits_range(g, 1, 16, 16), 0);
        npu_model *m2;
        npu_compile_options co{n.input.data()};
        assert_int_equal(npu_model_compile(n.dev, g, &co, &m2), 0);
        assert_int_equal(npu_model_set_mode(m2, NPU_MODE_BWQ_LAYER, 8, 4, 16), 0);
        assert_int_equal(npu_model_set_decision_page(m2, page.fd), 0);
        page.set_bits(4);
        assert_int_equal(npu_model_run(m2, n.input.data(), n.out.data(), &st), 0);
        npu_layer_stats ls;
        assert_int_equal(npu_model_layer_stats(m2, 0, &ls), 0);
        assert_int_equal(ls.bits, 16);
        assert_int_equal(npu_model_layer_stats(m2, 1, &ls), 0);
        assert_int_equal(ls.bits, 4);
        npu_model_free(m2);

        // A frozen page (bwqd stopped updating it: SIGSTOP, a blocked loop)
        // is stale: the fallback depth, flagged, and the status says so.
        assert_int_equal(npu_model_set_mode(n.m, NPU_MODE_BWQ_LAYER, 8, 4, 16), 0);
        npu_bwq_status bs;
        assert_int_equal(npu_model_bwq_status(n.m, &bs), 0);
        assert_int_equal(bs.state, NPU_BWQ_LIVE);
        assert_string_equal(npu_bwq_state_name(bs.state), "live");
        page.set_bits(4);
        page.set_published(bwq::monotonic_ns() - 2000000000ull, 100000000ull);  // 2 s old, 100 ms interval
        st = n.run();
        assert_int_equal(st.flags, NPU_RUN_FALLBACK | NPU_RUN_STALE);
        assert_int_equal(st.min_layer_bits, 8);
        assert_int_equal(npu_model_bwq_status(n.m, &bs), 0);
        assert_int_equal(bs.state, NPU_BWQ_STALE);
        assert_true(bs.page_age_ns >= 2000000000ull);
        page.set_published(bwq::monotonic_ns(), 100000000ull);  // alive again
        st = n.run();
        assert_false(st.flags & NPU_RUN_FALLBACK);
        assert_int_equal(st.min_layer_bits, 4);
        // A stopped bwqd's page: no bwqd.
        bwq_page_write_begin(page.p);
        page.p->flags = BWQ_PAGE_STOPPED;
        bwq_page_write_end(page.p);
        st = n.run();
        assert_int_equal(st.flags, NPU_RUN_FALLBACK | NPU_RUN_NO_BWQD);
        page.p->flags = 0;
        assert_null(npu_bwq_state_name(99));
        // FIXED mode is not linked.
        assert_int_equal(npu_model_set_mode(n.m, NPU_MODE_FIXED, 8, 4, 16), 0);
        assert_int_equal(npu_model_bwq_status(n.m, &bs), 0);
        assert_int_equal(bs.state, NPU_BWQ_UNLINKED);
        assert_int_equal(npu_model_bwq_status(nullptr, &bs), -EINVAL);
        assert_int_equal(npu_model_set_mode(n.m, NPU_MODE_BWQ_LAYER, 8, 4, 16), 0);

        // A page that is not sealed could be truncated under the model
        // (SIGBUS at the next read): refused, and the model keeps its page.
        {
                test::Page open_page(false);
                assert_int_equal(npu_model_set_decision_page(n.m, open_page.fd), -EPERM);
                assert_int_equal(ftruncate(open_page.fd, 0), 0);
        }
        st = n.run();
        assert_false(st.flags & NPU_RUN_FALLBACK);

        // Dropping the page returns to the fallback.
        assert_int_equal(npu_model_set_decision_page(n.m, -1), 0);
        st = n.run();
        assert_true(st.flags & NPU_RUN_FALLBACK);
        assert_int_equal(npu_model_set_mode(n.m, 7, 8, 4, 16), -EINVAL);
        assert_int_equal(npu_model_set_mode(n.m, NPU_MODE_FIXED, 5, 4, 16), -EINVAL);
}

// Ranges given per tensor and depth, per-tensor depths in FIXED mode, an
// input's own clamp, and the graph queries calibration uses.
// A device, a graph of one [1,4,4,8] input and the weights and input of
// 1x1 convolutions of 8 channels on it (weights / w_div, input / in_div).
struct SmallConv {
        npu_device *dev = nullptr;
        npu_graph *g = nullptr;
        int x = -1;
        npu_conv2d_params p{};
        std::vector<float> w = std::vector<float>(64), in = std::vector<float>(128);
        SmallConv(float w_div, float in_div)
        {
                assert_int_equal(npu_device_open("soft:threads=1", &dev), 0);
                assert_int_equal(npu_graph_new(&g), 0);
                x = npu_graph_input(g, 1, 4, 4, 8);
                p.out_channels = 8;
                p.kernel_h = p.kernel_w = 1;
                for (size_t i = 0; i < w.size(); i++)
                        w[i] = float(int(i * 7 % 13) - 6) / w_div;
                for (size_t i = 0; i < in.size(); i++)
                        in[i] = float(int(i * 5 % 17) - 8) / in_div;
        }
};

static void given_ranges_and_tensor_depths(void **)
{
        SmallConv sc(8.0f, 4.0f);
        auto &[dev, g, x, p, w, in] = sc;
        p.activation = NPU_ACTIVATION_RELU;
        int y = npu_graph_conv2d(g, x, &p, w.data(), nullptr);
        int z = npu_graph_conv2d(g, y, &p, w.data(), nullptr);
        assert_true(z > y && y > x);
        assert_int_equal(npu_graph_tensor_count(g), 3);
        assert_int_equal(npu_graph_layer_count(g), 2);
        assert_int_equal(npu_graph_layer_output(g, 1), z);
        assert_int_equal(npu_graph_layer_output(g, 2), -EINVAL);
        assert_int_equal(npu_graph_tensor_producer(g, x), -1);
        assert_int_equal(npu_graph_tensor_producer(g, z), 1);

        // Every tensor's reference at once equals the one-tensor call.
        std::vector<float> vy(32 * 4), vz(32 * 4), one(32 * 4);
        float *vals[3] = {nullptr, vy.data(), vz.data()};
        const float *ins[1] = {in.data()};
        assert_int_equal(npu_graph_reference_tensors(g, ins, 1, 0, vals), 0);
        assert_int_equal(npu_graph_reference(g, in.data(), z, one.data(), one.size()), 0);
        assert_memory_equal(one.data(), vz.data(), one.size() * sizeof(float));

        // Bad ranges are refused; good ones replace calibration.
        float lo[4] = {-2, -2, -2, -2}, hi[4] = {2, 2, 2, 2};
        float nan_hi[4] = {2, NAN, 2, 2}, pos_lo[4] = {-2, 0.5f, -2, -2};
        assert_int_equal(npu_graph_set_tensor_ranges(g, y, lo, nan_hi), -EINVAL);
        assert_int_equal(npu_graph_set_tensor_ranges(g, y, pos_lo, hi), -EINVAL);
        assert_int_equal(npu_graph_set_tensor_ranges(g, 9, lo, hi), -EINVAL);
        npu_compile_options none{};
        npu_model *m;
        assert_int_equal(npu_model_compile(dev, g, &none, &m), -EINVAL);  // not every tensor has ranges
        for (int t : {x, y, z}) {
                float l2[4] = {-2, -3, -4, -5}, h2[4] = {2, 3, 4, float(t + 5)};
                assert_int_equal(npu_graph_set_tensor_ranges(g, t, l2, h2), 0);
        }
        assert_int_equal(npu_model_compile(dev, g, &none, &m), 0);
        float a, b;
        assert_int_equal(npu_model_tensor_range(m, z, 16, &a, &b), 0);
        assert_true(a == -5.0f && b == float(z + 5));
        assert_int_equal(npu_model_tensor_range(m, y, 6, &a, &b), 0);
        assert_true(a == -3.0f && b == 3.0f);
        assert_int_equal(npu_model_set_tensor_range(m, y, 6, 1.0f, 3.0f), -EINVAL);
        assert_int_equal(npu_model_set_tensor_range(m, y, 5, -1.0f, 3.0f), -EINVAL);
        assert_int_equal(npu_model_set_tensor_range(m, y, 6, -1.0f, INFINITY), -EINVAL);

        // FIXED with one tensor at its own depth: its layer reports it.
        assert_int_equal(npu_model_set_mode(m, NPU_MODE_FIXED, 8, 4, 16), 0);
        assert_int_equal(npu_model_set_tensor_bits(m, y, 4), 0);
        assert_int_equal(npu_model_set_tensor_bits(m, y, 5), -EINVAL);
        std::vector<float> out4(128), out8(128);
        npu_run_stats st;
        assert_int_equal(npu_model_run(m, in.data(), out4.data(), &st), 0);
        npu_layer_stats ls;
        assert_int_equal(npu_model_layer_stats(m, 0, &ls), 0);
        assert_int_equal(ls.bits, 4);
        assert_int_equal(npu_model_layer_stats(m, 1, &ls), 0);
        assert_int_equal(ls.bits, 8);
        // A narrower 4-bit range of y changes the output; back to 0: all at 8.
        assert_int_equal(npu_model_set_tensor_range(m, y, 4, 0.0f, 0.5f), 0);
        assert_int_equal(npu_model_run(m, in.data(), out8.data(), &st), 0);
        assert_memory_not_equal(out4.data(), out8.data(), out4.size() * sizeof(float));
        assert_int_equal(npu_model_set_tensor_bits(m, y, 0), 0);
        assert_int_equal(npu_model_run(m, in.data(), out8.data(), &st), 0);
        assert_int_equal(st.min_layer_bits, 8);

        // An input's clamp: a fallback of 4 quantizes the input at 8.
        npu_model_free(m);
        assert_int_equal(npu_graph_set_bits_range(g, x, 8, 16), 0);
        assert_int_equal(npu_model_compile(dev, g, &none, &m), 0);
        setenv("BWQ_BUS", "none", 1);
        assert_int_equal(npu_model_set_mode(m, NPU_MODE_BWQ_MODEL, 4, 4, 16), 0);
        assert_int_equal(npu_model_run(m, in.data(), out4.data(), &st), 0);
        assert_true(st.flags & NPU_RUN_FALLBACK);
        assert_int_equal(npu_model_layer_stats(m, 0, &ls), 0);
        assert_int_equal(ls.bits, 4);
        // The first layer read 128 input elements at 8 bits, not 4.
        assert_true(ls.act_bytes_read == 128);
        npu_model_free(m);
        npu_graph_free(g);
        npu_device_close(dev);
}

// A bias correction per input depth: the row of the depth the input was
// stored at is added; set in the graph or on the compiled model; and the
// layer's linear part, which such corrections are computed from.
static void bias_per_input_depth(void **)
{
        SmallConv sc(32.0f, 8.0f);
        auto &[dev, g, x, p, w, in] = sc;
        std::vector<float> bias(8, 0.5f);
        int y = npu_graph_conv2d(g, x, &p, w.data(), bias.data());
        int z = npu_graph_add(g, y, y, 0);  // not a conv: no correction
        assert_int_equal(npu_graph_set_output(g, y), 0);
        for (int t : {x, y, z}) {
                float lo[4] = {-8, -8, -8, -8}, hi[4] = {8, 8, 8, 8};
                assert_int_equal(npu_graph_set_tensor_ranges(g, t, lo, hi), 0);
        }
        // The linear part: the reference without its bias.
        std::vector<float> lin(128), ref(128);
        assert_int_equal(npu_graph_layer_linear(g, 0, 0, in.data(), lin.data()), 0);
        assert_int_equal(npu_graph_reference(g, in.data(), y, ref.data(), ref.size()), 0);
        for (size_t i = 0; i < ref.size(); i++)
                assert_true(std::fabs(lin[i] + 0.5f - ref[i]) < 1e-5f);
        assert_int_equal(npu_graph_layer_linear(g, 1, 0, in.data(), lin.data()), -EINVAL);  // an Add

        std::vector<float> delta(32);
        for (size_t d = 0; d < 4; d++)
                for (size_t c = 0; c < 8; c++)
                        delta[d * 8 + c] = float(d + 1);  // 4 bits +1, 6 +2, 8 +3, 16 +4
        assert_int_equal(npu_graph_set_bias_correction(g, y, delta.data(), 31), -EINVAL);
        assert_int_equal(npu_graph_set_bias_correction(g, z, delta.data(), 32), -EINVAL);
        assert_int_equal(npu_graph_set_bias_correction(g, x, delta.data(), 32), -EINVAL);
        delta[5] = NAN;
        assert_int_equal(npu_graph_set_bias_correction(g, y, delta.data(), 32), -EINVAL);
        delta[5] = 1.0f;
        npu_compile_options none{};
        npu_model *plain, *corrected;
        assert_int_equal(npu_model_compile(dev, g, &none, &plain), 0);
        assert_int_equal(npu_graph_set_bias_correction(g, y, delta.data(), 32), 0);
        assert_int_equal(npu_model_compile(dev, g, &none, &corrected), 0);
        // The mean shift of y at each input depth (inputs quantized at the
        // run's depth) is that depth's row, within the output's rounding.
        const double tol[4] = {0.3, 0.1, 0.05, 0.005};
        unsigned depths[4] = {4, 6, 8, 16};
        std::vector<float> a(128), b(128);
        for (int d = 0; d < 4; d++) {
                for (npu_model *m : {plain, corrected})
                        assert_int_equal(npu_model_set_mode(m, NPU_MODE_FIXED, depths[d], 4, 16), 0);
                assert_int_equal(npu_model_run(plain, in.data(), a.data(), nullptr), 0);
                assert_int_equal(npu_model_run(corrected, in.data(), b.data(), nullptr), 0);
                double shift = 0;
                for (size_t i = 0; i < a.size(); i++)
                        shift += double(b[i]) - a[i];
                shift /= double(a.size());
                printf("bias row of %2u-bit inputs: mean shift %.4f (row %d)\n", depths[d], shift, d + 1);
                assert_true(std::fabs(shift - (d + 1)) < tol[d]);
        }
        // The same set on the compiled model, and dropped again.
        assert_int_equal(npu_model_set_bias_correction(plain, y, delta.data(), 32), 0);
        assert_int_equal(npu_model_run(plain, in.data(), a.data(), nullptr), 0);
        assert_memory_equal(a.data(), b.data(), a.size() * sizeof(float));
        assert_int_equal(npu_model_set_bias_correction(plain, y, nullptr, 0), 0);
        assert_int_equal(npu_model_set_bias_correction(plain, z, delta.data(), 32), -EINVAL);
        assert_int_equal(npu_model_run(plain, in.data(), a.data(), nullptr), 0);
        assert_memory_not_equal(a.data(), b.data(), a.size() * sizeof(float));
        npu_model_free(plain);
        npu_model_free(corrected);
        npu_graph_free(g);
        npu_device_close(dev);
}

static void wait_many(void **)
{
        npu_device *dev;
        assert_int_equal(npu_device_open("soft:threads=2", &dev), 0);
        MobileNetOptions o;
        o.size = 48;
        o.width = 0.5f;
        o.classes = 10;
        npu_graph *g;
        assert_int_equal(mobilenet_v2_build(o, &g), 0);
        std::vector<float> in = mobilenet_v2_input(o);
        npu_compile_options co{in.data()};
        npu_model *ms[3];
        for (auto &m : ms) {
                assert_int_equal(npu_model_compile(dev, g, &co, &m), 0);
                assert_int_equal(npu_model_set_mode(m, NPU_MODE_FIXED, 8, 4, 16), 0);
        }
        for (int round = 0; round < 3; round++) {
                for (auto *m : ms)
                        assert_int_equal(npu_model_submit(m, in.data()), 0);
                assert_int_equal(npu_model_submit(ms[0], in.data()), -EBUSY);  // one job per model
                assert_int_equal(npu_wait_many(ms, 3, now_ns() + 30000000000ll), 0);
                std::vector<float> out(npu_model_output_elements(ms[0])), first(out.size());
                for (int i = 0; i < 3; i++) {
                        npu_run_stats st;
                        assert_int_equal(npu_model_result(ms[i], out.data(), &st), 0);
                        assert_int_equal(st.min_layer_bits, 8);
                        if (i == 0)
                                first = out;
                        else
                                assert_memory_equal(first.data(), out.data(), out.size() * 4);
                }
        }
        // A deadline in the past times out while jobs are still queued.
        for (auto *m : ms)
                assert_int_equal(npu_model_submit(m, in.data()), 0);
        int r = npu_wait_many(ms, 3, now_ns() - 1);
        assert_int_equal(r, -ETIME);
        assert_int_equal(npu_wait_many(ms, 3, now_ns() + 30000000000ll), 0);
        for (auto *m : ms)
                npu_model_free(m);
        npu_graph_free(g);
        npu_device_close(dev);
}

// Portable kernels and the best ISA give the same bytes through a network.
static void isa_identical_end_to_end(void **)
{
        Net best("soft:threads=2", 64), portable("soft:threads=1,isa=portable", 64);
        uint64_t isa = 0;
        assert_int_equal(npu_device_get_param(best.dev, DRM_NPU_PARAM_ISA, &isa), 0);
        if (isa == DRM_NPU_ISA_PORTABLE) {
                print_message("skipped: this CPU has neither AVX2 nor AVX-512 VNNI, so its best kernels are the portable ones\n");
                skip();
        }
        for (unsigned bits : {4u, 6u, 8u, 16u}) {
                assert_int_equal(npu_model_set_mode(best.m, NPU_MODE_FIXED, bits, 4, 16), 0);
                assert_int_equal(npu_model_set_mode(portable.m, NPU_MODE_FIXED, bits, 4, 16), 0);
                best.run();
                portable.run();
                assert_memory_equal(best.out.data(), portable.out.data(), best.out.size() * 4);
        }
}

int main()
{
        // These tests give their own decision pages; bwqd is test_e2e's.
        setenv("BWQ_BUS", "none", 1);
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(graph_builder_errors), cmocka_unit_test(several_inputs_and_outputs),
                cmocka_unit_test(host_nodes),
                cmocka_unit_test(traffic_per_depth),
                cmocka_unit_test(accuracy_by_depth),    cmocka_unit_test(modes_follow_page),
                cmocka_unit_test(wait_many),            cmocka_unit_test(given_ranges_and_tensor_depths),
                cmocka_unit_test(bias_per_input_depth),            cmocka_unit_test(isa_identical_end_to_end),
        };
        return cmocka_run_group_tests_name("libnpu", tests, nullptr, nullptr);
}

#include "mobilenet.h"

#include <cerrno>
#include <cmath>
#include <memory>

namespace {

struct Builder {
        npu_graph *g;
        Rng rng;
        int err = 0;

        // residual >= 0: its value added before the activation (a block's shortcut).
        int conv(int x, uint32_t cin, uint32_t cout, uint32_t k, uint32_t stride, uint32_t groups, uint32_t act,
                 int residual = -1)
        {
                if (err)
                        return err;
                uint32_t fan_in = k * k * (cin / groups);
                // Uniform with the variance that keeps ReLU activations in scale.
                float a = std::sqrt(6.0f / float(fan_in));
                std::vector<float> w(size_t(cout) * fan_in), b(cout);
                for (auto &v : w)
                        v = rng.uniform(a);
                for (auto &v : b)
                        v = rng.uniform(0.1f);
                npu_conv2d_params p{};
                p.out_channels = cout;
                p.kernel_h = p.kernel_w = k;
                p.stride_h = p.stride_w = stride;
                p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = k / 2;
                p.groups = groups;
                p.activation = act;
                int r = residual >= 0 ? npu_graph_conv2d_residual(g, x, residual, &p, w.data(), b.data())
                                      : npu_graph_conv2d(g, x, &p, w.data(), b.data());
                if (r < 0)
                        err = r;
                return r;
        }
};

uint32_t channels(float width, uint32_t c)
{
        uint32_t v = uint32_t(std::lround(c * width / 8.0f)) * 8;
        return v < 8 ? 8 : v;
}

} // namespace

int mobilenet_v2_build(const MobileNetOptions &o, npu_graph **ret)
{
        npu_graph *g;
        int r = npu_graph_new(&g);
        if (r < 0)
                return r;
        std::unique_ptr<npu_graph, void (*)(npu_graph *)> guard(g, npu_graph_free);
        Builder b{g, {o.seed}};
        int x = npu_graph_input(g, 1, o.size, o.size, 3);
        if (x < 0)
                return x;
        uint32_t c = channels(o.width, 32);
        x = b.conv(x, 3, c, 3, 2, 1, NPU_ACTIVATION_RELU6);
        // (expansion t, channels c, repeats n, stride s) of MobileNet-V2.
        static const uint32_t blocks[][4] = {{1, 16, 1, 1}, {6, 24, 2, 2}, {6, 32, 3, 2}, {6, 64, 4, 2},
                                             {6, 96, 3, 1}, {6, 160, 3, 2}, {6, 320, 1, 1}};
        for (const auto &blk : blocks) {
                uint32_t out = channels(o.width, blk[1]);
                for (uint32_t i = 0; i < blk[2]; i++) {
                        uint32_t stride = i == 0 ? blk[3] : 1;
                        uint32_t hidden = c * blk[0];
                        int h = x;
                        if (blk[0] != 1)
                                h = b.conv(h, c, hidden, 1, 1, 1, NPU_ACTIVATION_RELU6);
                        h = b.conv(h, hidden, hidden, 3, stride, hidden, NPU_ACTIVATION_RELU6);
                        // The projection adds the block's input where the shapes allow
                        // (the residual Add inside the convolution).
                        h = b.conv(h, hidden, out, 1, 1, 1, NPU_ACTIVATION_NONE, stride == 1 && c == out ? x : -1);
                        if (b.err)
                                return b.err;
                        x = h;
                        c = out;
                }
        }
        uint32_t last = o.width > 1.0f ? channels(o.width, 1280) : 1280;
        x = b.conv(x, c, last, 1, 1, 1, NPU_ACTIVATION_RELU6);
        if (x < 0)
                return x;
        x = npu_graph_global_avgpool(g, x);
        if (x < 0)
                return x;
        std::vector<float> w(size_t(o.classes) * last), bias(o.classes);
        float a = std::sqrt(6.0f / float(last));
        for (auto &v : w)
                v = b.rng.uniform(a);
        for (auto &v : bias)
                v = b.rng.uniform(0.1f);
        x = npu_graph_fully_connected(g, x, o.classes, w.data(), bias.data(), NPU_ACTIVATION_NONE);
        if (x < 0)
                return x;
        *ret = guard.release();
        return 0;
}

std::vector<float> mobilenet_v2_input(const MobileNetOptions &o)
{
        Rng rng{o.seed ^ 0x5eedull};
        std::vector<float> v(size_t(o.size) * o.size * 3);
        for (auto &x : v)
                x = rng.uniform(1.0f);
        return v;
}

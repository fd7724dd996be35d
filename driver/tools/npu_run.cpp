// npu-run: runs the MobileNet-V2-shaped network on an NPU at one or every
// activation depth and prints per-layer bits, bytes and time.  See npu-run(1).
#include <getopt.h>
#include <signal.h>
#include <time.h>

#include <algorithm>
#include <cmath>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "common/clock.h"
#include "driver/mobilenet/mobilenet.h"
#include "npu/npu.h"
#include "bwq_status.h"
#include "device_error.h"
#include "deadline.h"
#include "live_line.h"
#include "npu_run_model.h"

namespace {

const char *op_name(uint32_t op)
{
        switch (op) {
        case 1: return "conv2d";
        case 2: return "fully_connected";
        case 3: return "add";
        case 4: return "mul";
        case 5: return "maxpool";
        case 6: return "avgpool";
        case 7: return "global_avgpool";
        case 8: return "concat";
        case 9: return "resize";
        default: return "?";
        }
}

void usage(FILE *f)
{
        fprintf(f,
                "Usage: npu-run [OPTIONS]\n"
                "       npu-run --model=FILE.onnx --input=X.npy [--output=Y.npy] [OPTIONS]\n"
                "Run a MobileNet-V2-shaped network (synthetic weights, fixed seed) on an NPU\n"
                "and print per-layer activation bits, bytes read and written, and time; with\n"
                "--model, a trained ONNX model over the samples of X (npu-run --model=F --help).\n\n"
                "  -b, --bits=N|all     activation depth: 4, 6, 8, 16, or all of them (default: all)\n"
                "  -r, --runs=N         runs per depth; times are the median (default: 1)\n"
                "  -s, --size=N         input height and width (default: 224)\n"
                "  -w, --width=F        channel multiplier (default: 1.0)\n"
                "  -d, --device=NAME    NPU device (default: $NPU_DEVICE, else \"soft\")\n"
                "  -m, --mode=MODE      fixed (default), bwq-model or bwq-layer: take the depth\n"
                "                       from bwqd ($BWQ_BUS); --bits is then the fallback depth\n"
                "      --min-bits=N     BWQ modes: the model's clamp (default: 4)\n"
                "      --max-bits=N     (default: 16)\n"
                "      --fps=N          run continuously at N frames per second (a deadline loop)\n"
                "      --seconds=S      with --fps: stop after S seconds (default: until Ctrl-C)\n"
                "      --live           with --fps: one line per frame\n"
                "      --name=NAME      the model's name for bwqd (default: npu-run)\n"
                "      --summary        totals only, no per-layer lines\n"
                "  -j, --json           one JSON object: layers and totals (see npu-run(1))\n"
                "  -h, --help           this text\n\n"
                "Exit status: 0 success, 1 the device failed, 2 bad usage.\n");
}

bool parse_uint(const char *s, unsigned long lo, unsigned long hi, unsigned long *ret)
{
        char *e;
        errno = 0;
        unsigned long v = strtoul(s, &e, 10);
        if (errno || *e || e == s || v < lo || v > hi || s[0] == '-')
                return false;
        *ret = v;
        return true;
}

struct RunResult {
        unsigned bits;
        npu_run_stats stats;
        std::vector<npu_layer_stats> layers;
        std::vector<uint64_t> times;  // ns per run
        uint64_t median() const
        {
                std::vector<uint64_t> t = times;
                std::sort(t.begin(), t.end());
                return t[t.size() / 2];
        }
};

void print_text(const RunResult &r, bool summary)
{
        printf("== %u-bit activations\n", r.bits);
        if (!summary) {
                printf("%5s %-16s %4s %12s %12s %10s\n", "layer", "op", "bits", "bytes_read", "bytes_written", "time_us");
                for (size_t i = 0; i < r.layers.size(); i++) {
                        const auto &l = r.layers[i];
                        printf("%5zu %-16s %4u %12llu %12llu %10.1f\n", i, op_name(l.op), l.bits,
                               (unsigned long long)l.bytes_read, (unsigned long long)l.bytes_written, l.ns / 1e3);
                }
        }
        printf("total: %u layers, activation_bytes %llu, weight_bytes %llu, time %.3f ms (median of %zu)\n",
               r.stats.layer_count, (unsigned long long)r.stats.activation_bytes,
               (unsigned long long)r.stats.weight_bytes, r.median() / 1e6, r.times.size());
}

void print_json_run(const RunResult &r)
{
        printf("{\"bits\":%u,\"layers\":[", r.bits);
        for (size_t i = 0; i < r.layers.size(); i++) {
                const auto &l = r.layers[i];
                printf("%s{\"op\":\"%s\",\"bits\":%u,\"bytes_read\":%llu,\"bytes_written\":%llu,\"ns\":%llu}",
                       i ? "," : "", op_name(l.op), l.bits, (unsigned long long)l.bytes_read,
                       (unsigned long long)l.bytes_written, (unsigned long long)l.ns);
        }
        printf("],\"totals\":{\"activation_bytes\":%llu,\"weight_bytes\":%llu,\"ns\":%llu,\"runs\":%zu}}",
               (unsigned long long)r.stats.activation_bytes, (unsigned long long)r.stats.weight_bytes,
               (unsigned long long)r.median(), r.times.size());
}

volatile sig_atomic_t interrupted = 0;

double now_s() { return bwq::monotonic_s(); }

size_t argmax(const std::vector<float> &v)
{
        return size_t(std::max_element(v.begin(), v.end()) - v.begin());
}

// A deadline loop at `fps` until `seconds` pass or Ctrl-C.  Each output is
// compared with the 16-bit result of the same input.
int run_loop(npu_model *m, const std::vector<float> &input, std::vector<float> &output, double fps, double seconds, bool live,
             uint32_t mode, unsigned bits, unsigned min_bits, unsigned max_bits)
{
        std::vector<float> ref(output.size());
        if (npu_model_set_mode(m, NPU_MODE_FIXED, 16, 4, 16) < 0 || npu_model_run(m, input.data(), ref.data(), nullptr) < 0 ||
            npu_model_set_mode(m, mode, bits, min_bits, max_bits) < 0) {
                fprintf(stderr, "npu-run: the 16-bit reference run failed\n");
                return 1;
        }
        double ref_rms = 0;
        for (float v : ref)
                ref_rms += double(v) * v;
        ref_rms = std::sqrt(ref_rms / ref.size());
        double err_sum = 0;
        unsigned top1 = 0;
        signal(SIGINT, [](int) { interrupted = 1; });
        signal(SIGTERM, [](int) { interrupted = 1; });
        const tools::DeadlineLoop loop(fps, seconds);
        const double t0 = loop.t0();
        tools::Latencies lat;
        unsigned fallback = 0;
        uint32_t last_state = ~0u;
        uint64_t act_bytes = 0;
        if (live)
                tools::live_header();
        for (uint64_t frame = 0; loop.wait(frame, &interrupted); frame++) {
                double a = now_s();
                npu_run_stats st{};
                int r = npu_model_run(m, input.data(), output.data(), &st);
                double ms = (now_s() - a) * 1e3;
                if (r < 0) {
                        fprintf(stderr, "npu-run: frame %llu failed: %s\n", (unsigned long long)frame, strerror(-r));
                        return 1;
                }
                bool miss = ms > loop.period_ms();
                lat.add(ms, loop.period_ms());
                fallback += (st.flags & NPU_RUN_FALLBACK) != 0;
                // Every change of where the model stands with bwqd, on stderr.
                npu_bwq_status bs;
                if (mode != NPU_MODE_FIXED && npu_model_bwq_status(m, &bs) == 0 && bs.state != last_state) {
                        fprintf(stderr, "npu-run: %.2f s: bwqd link: %s\n", a - t0, tools::bwq_status_text(bs).c_str());
                        last_state = bs.state;
                }
                act_bytes += st.activation_bytes;
                double e = 0;
                for (size_t i = 0; i < ref.size(); i++)
                        e += double(output[i] - ref[i]) * (output[i] - ref[i]);
                err_sum += ref_rms > 0 ? std::sqrt(e / ref.size()) / ref_rms : 0;
                top1 += argmax(output) == argmax(ref);
                if (live)
                        tools::live_line(a - t0, m, st, ms, miss, "");
        }
        const size_t n = lat.ms.size();
        if (!n)
                return 0;
        printf("frames %zu at %.1f fps: deadline misses %llu (%.1f%%), latency p50 %.2f ms p99 %.2f ms, "
               "activation %.2f MB/frame, %u frames at the fallback depth; against 16 bits: top-1 agreement %.1f%%, "
               "relative RMS error %.4f\n",
               n, fps, (unsigned long long)lat.misses, 100.0 * double(lat.misses) / double(n), lat.percentile(0.5),
               lat.percentile(0.99), act_bytes / 1e6 / double(n), fallback, 100.0 * top1 / double(n), err_sum / double(n));
        return 0;
}

} // namespace

int main(int argc, char **argv)
{
        // An ONNX model: its own options (npu_run_model.cpp).
        for (int i = 1; i < argc; i++)
                if (strncmp(argv[i], "--model", 7) == 0 && (argv[i][7] == '=' || argv[i][7] == 0))
                        return npu_run_model_main(argc, argv);
        static const option longopts[] = {
                {"bits", required_argument, nullptr, 'b'},  {"runs", required_argument, nullptr, 'r'},
                {"size", required_argument, nullptr, 's'},  {"width", required_argument, nullptr, 'w'},
                {"device", required_argument, nullptr, 'd'}, {"summary", no_argument, nullptr, 'S'},
                {"json", no_argument, nullptr, 'j'},        {"help", no_argument, nullptr, 'h'},
                {"mode", required_argument, nullptr, 'm'},  {"min-bits", required_argument, nullptr, 1001},
                {"max-bits", required_argument, nullptr, 1002}, {"fps", required_argument, nullptr, 1003},
                {"seconds", required_argument, nullptr, 1004}, {"live", no_argument, nullptr, 1005},
                {"name", required_argument, nullptr, 1006},
                {nullptr, 0, nullptr, 0},
        };
        std::vector<unsigned> depths = {4, 6, 8, 16};
        unsigned long runs = 1, size = 224;
        MobileNetOptions mo;
        const char *device = nullptr;
        bool json = false, summary = false, live = false, bits_given = false;
        uint32_t mode = NPU_MODE_FIXED;
        unsigned min_bits = 4, max_bits = 16;
        double fps = 0, seconds = 0;
        const char *name = "npu-run";
        int c;
        auto depth = [](const char *opt, const char *arg, unsigned *ret) {
                unsigned long v;
                if (parse_uint(arg, 1, 64, &v) && (v == 4 || v == 6 || v == 8 || v == 16)) {
                        *ret = unsigned(v);
                        return true;
                }
                fprintf(stderr, "npu-run: %s: '%s' is not 4, 6, 8 or 16\n", opt, arg);
                return false;
        };
        while ((c = getopt_long(argc, argv, "b:r:s:w:d:m:jh", longopts, nullptr)) != -1) {
                unsigned long v;
                switch (c) {
                case 'm':
                        if (strcmp(optarg, "fixed") == 0)
                                mode = NPU_MODE_FIXED;
                        else if (strcmp(optarg, "bwq-model") == 0)
                                mode = NPU_MODE_BWQ_MODEL;
                        else if (strcmp(optarg, "bwq-layer") == 0)
                                mode = NPU_MODE_BWQ_LAYER;
                        else {
                                fprintf(stderr, "npu-run: --mode: '%s' is not fixed, bwq-model or bwq-layer\n", optarg);
                                return 2;
                        }
                        break;
                case 1001:
                        if (!depth("--min-bits", optarg, &min_bits))
                                return 2;
                        break;
                case 1002:
                        if (!depth("--max-bits", optarg, &max_bits))
                                return 2;
                        break;
                case 1003:
                case 1004: {
                        char *e;
                        errno = 0;
                        double f = strtod(optarg, &e);
                        if (c == 1003 && (errno || *e || e == optarg || !(f >= tools::kMinFps && f <= tools::kMaxFps))) {
                                fprintf(stderr, "npu-run: --fps: '%s' is not a number from 0.001 to 1000\n", optarg);
                                return 2;
                        }
                        if (c == 1004 && (errno || *e || e == optarg || !(f > 0 && f <= 86400))) {
                                fprintf(stderr, "npu-run: --seconds: '%s' is not a number above 0, at most 86400\n", optarg);
                                return 2;
                        }
                        (c == 1003 ? fps : seconds) = f;
                        break;
                }
                case 1005:
                        live = true;
                        break;
                case 1006:
                        if (!*optarg || strlen(optarg) > 64) {
                                fprintf(stderr, "npu-run: --name: 1 to 64 characters\n");
                                return 2;
                        }
                        name = optarg;
                        break;
                case 'b':
                        if (strcmp(optarg, "all") == 0) {
                                depths = {4, 6, 8, 16};
                                bits_given = true;
                        } else if (parse_uint(optarg, 1, 64, &v) && (v == 4 || v == 6 || v == 8 || v == 16)) {
                                depths = {unsigned(v)};
                                bits_given = true;
                        } else {
                                fprintf(stderr, "npu-run: --bits: '%s' is not 4, 6, 8, 16 or all\n", optarg);
                                return 2;
                        }
                        break;
                case 'r':
                        if (!parse_uint(optarg, 1, 100000, &runs)) {
                                fprintf(stderr, "npu-run: --runs: '%s' is not a number from 1 to 100000\n", optarg);
                                return 2;
                        }
                        break;
                case 's':
                        if (!parse_uint(optarg, 32, 1024, &size)) {
                                fprintf(stderr, "npu-run: --size: '%s' is not a number from 32 to 1024\n", optarg);
                                return 2;
                        }
                        break;
                case 'w': {
                        char *e;
                        errno = 0;
                        float f = strtof(optarg, &e);
                        if (errno || *e || e == optarg || !(f >= 0.25f && f <= 2.0f)) {
                                fprintf(stderr, "npu-run: --width: '%s' is not a number from 0.25 to 2\n", optarg);
                                return 2;
                        }
                        mo.width = f;
                        break;
                }
                case 'd':
                        device = optarg;
                        break;
                case 'S':
                        summary = true;
                        break;
                case 'j':
                        json = true;
                        break;
                case 'h':
                        usage(stdout);
                        return 0;
                default:
                        usage(stderr);
                        return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "npu-run: unexpected argument '%s'\n", argv[optind]);
                usage(stderr);
                return 2;
        }
        mo.size = uint32_t(size);
        if (min_bits > max_bits) {
                fprintf(stderr, "npu-run: --min-bits %u is above --max-bits %u\n", min_bits, max_bits);
                return 2;
        }
        if ((live || seconds > 0) && fps <= 0) {
                fprintf(stderr, "npu-run: --live and --seconds need --fps\n");
                return 2;
        }
        if ((fps > 0 || mode != NPU_MODE_FIXED) && !bits_given)
                depths = {mode == NPU_MODE_FIXED ? 16u : 8u};
        if (fps > 0 && depths.size() != 1) {
                fprintf(stderr, "npu-run: --fps runs one depth: give --bits N\n");
                return 2;
        }

        npu_device *dev;
        int r = npu_device_open(device, &dev);
        if (r < 0) {
                fprintf(stderr, "npu-run: cannot open NPU device '%s': %s\n",
                        device ? device : getenv("NPU_DEVICE") ? getenv("NPU_DEVICE") : "soft", tools::device_open_error(r).c_str());
                return 1;
        }
        std::unique_ptr<npu_device, void (*)(npu_device *)> dev_guard(dev, npu_device_close);
        npu_graph *g;
        if ((r = mobilenet_v2_build(mo, &g)) < 0) {
                fprintf(stderr, "npu-run: cannot build the network: %s\n", strerror(-r));
                return 1;
        }
        std::unique_ptr<npu_graph, void (*)(npu_graph *)> g_guard(g, npu_graph_free);
        std::vector<float> input = mobilenet_v2_input(mo);
        npu_compile_options co{input.data(), name};
        npu_model *m;
        if ((r = npu_model_compile(dev, g, &co, &m)) < 0) {
                fprintf(stderr, "npu-run: cannot compile the network: %s\n", strerror(-r));
                return 1;
        }
        std::unique_ptr<npu_model, void (*)(npu_model *)> m_guard(m, npu_model_free);
        std::vector<float> output(npu_model_output_elements(m));

        if (fps > 0) {
                return run_loop(m, input, output, fps, seconds, live, mode, depths[0], min_bits, max_bits);
        }
        std::vector<RunResult> results;
        for (unsigned bits : depths) {
                RunResult rr{bits, {}, {}, {}};
                if ((r = npu_model_set_mode(m, mode, bits, min_bits, max_bits)) < 0) {
                        fprintf(stderr, "npu-run: cannot set %u-bit mode: %s\n", bits, strerror(-r));
                        return 1;
                }
                for (unsigned long i = 0; i < runs; i++) {
                        if ((r = npu_model_run(m, input.data(), output.data(), &rr.stats)) < 0) {
                                uint32_t code = 0, index = 0;
                                (void)npu_device_last_job_error(dev, &code, &index);
                                fprintf(stderr, "npu-run: run at %u bits failed: %s (job: %s, layer %u)\n", bits,
                                        strerror(-r), npu_job_error_name(code), index);
                                return 1;
                        }
                        rr.times.push_back(rr.stats.ns);
                }
                for (unsigned l = 0; l < rr.stats.layer_count; l++) {
                        npu_layer_stats ls;
                        if (npu_model_layer_stats(m, l, &ls) == 0)
                                rr.layers.push_back(ls);
                }
                results.push_back(std::move(rr));
        }

        if (json) {
                if (results.size() == 1) {
                        print_json_run(results[0]);
                } else {
                        printf("{\"runs\":[");
                        for (size_t i = 0; i < results.size(); i++) {
                                if (i)
                                        printf(",");
                                print_json_run(results[i]);
                        }
                        printf("]}");
                }
                printf("\n");
        } else {
                for (const auto &rr : results)
                        print_text(rr, summary);
                if (results.size() > 1) {
                        const RunResult *b16 = nullptr;
                        for (const auto &rr : results)
                                if (rr.bits == 16)
                                        b16 = &rr;
                        if (b16) {
                                printf("\n%4s %16s %10s %10s\n", "bits", "activation_bytes", "vs_16bit", "time_ms");
                                for (const auto &rr : results)
                                        printf("%4u %16llu %10.4f %10.3f\n", rr.bits,
                                               (unsigned long long)rr.stats.activation_bytes,
                                               double(rr.stats.activation_bytes) / double(b16->stats.activation_bytes),
                                               rr.median() / 1e6);
                        }
                }
        }
        return 0;
}

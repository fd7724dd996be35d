// npu-run: runs the MobileNet-V2-shaped network on an NPU at one or every
// activation depth and prints per-layer bits, bytes and time.  See npu-run(1).
#include <getopt.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "mobilenet.h"
#include "npu/npu.h"

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
        default: return "?";
        }
}

void usage(FILE *f)
{
        fprintf(f,
                "Usage: npu-run [OPTIONS]\n"
                "Run a MobileNet-V2-shaped network (synthetic weights, fixed seed) on an NPU\n"
                "and print per-layer activation bits, bytes read and written, and time.\n\n"
                "  -b, --bits=N|all     activation depth: 4, 6, 8, 16, or all of them (default: all)\n"
                "  -r, --runs=N         runs per depth; times are the median (default: 1)\n"
                "  -s, --size=N         input height and width (default: 224)\n"
                "  -w, --width=F        channel multiplier (default: 1.0)\n"
                "  -d, --device=NAME    NPU device (default: $NPU_DEVICE, else \"soft\")\n"
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

} // namespace

int main(int argc, char **argv)
{
        static const option longopts[] = {
                {"bits", required_argument, nullptr, 'b'},  {"runs", required_argument, nullptr, 'r'},
                {"size", required_argument, nullptr, 's'},  {"width", required_argument, nullptr, 'w'},
                {"device", required_argument, nullptr, 'd'}, {"summary", no_argument, nullptr, 'S'},
                {"json", no_argument, nullptr, 'j'},        {"help", no_argument, nullptr, 'h'},
                {nullptr, 0, nullptr, 0},
        };
        std::vector<unsigned> depths = {4, 6, 8, 16};
        unsigned long runs = 1, size = 224;
        MobileNetOptions mo;
        const char *device = nullptr;
        bool json = false, summary = false;
        int c;
        while ((c = getopt_long(argc, argv, "b:r:s:w:d:jh", longopts, nullptr)) != -1) {
                unsigned long v;
                switch (c) {
                case 'b':
                        if (strcmp(optarg, "all") == 0) {
                                depths = {4, 6, 8, 16};
                        } else if (parse_uint(optarg, 1, 64, &v) && (v == 4 || v == 6 || v == 8 || v == 16)) {
                                depths = {unsigned(v)};
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

        npu_device *dev;
        int r = npu_device_open(device, &dev);
        if (r < 0) {
                fprintf(stderr, "npu-run: cannot open NPU device '%s': %s\n",
                        device ? device : getenv("NPU_DEVICE") ? getenv("NPU_DEVICE") : "soft", strerror(-r));
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
        npu_compile_options co{input.data()};
        npu_model *m;
        if ((r = npu_model_compile(dev, g, &co, &m)) < 0) {
                fprintf(stderr, "npu-run: cannot compile the network: %s\n", strerror(-r));
                return 1;
        }
        std::unique_ptr<npu_model, void (*)(npu_model *)> m_guard(m, npu_model_free);
        std::vector<float> output(npu_model_output_elements(m));

        std::vector<RunResult> results;
        for (unsigned bits : depths) {
                RunResult rr{bits, {}, {}, {}};
                if ((r = npu_model_set_mode(m, NPU_MODE_FIXED, bits, 4, 16)) < 0) {
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

// npu-calibrate: per-depth ranges and per-layer minimum depths of an ONNX
// model, measured on calibration samples and written into the model.  See
// npu-calibrate(1).
#include <getopt.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <memory>
#include <string>
#include <vector>

#include "npu/npu.h"
#include "npu/onnx.h"
#include "device_error.h"
#include "samples.h"

namespace {

void usage(FILE *f)
{
        fputs("Usage: npu-calibrate [OPTIONS] MODEL.onnx --samples=X.npy --output=OUT.onnx\n"
              "Choose, for every activation tensor of a float ONNX model and every depth\n"
              "(4, 6, 8, 16 bits), the clipping range that costs the model's output least;\n"
              "measure each layer's sensitivity at 4 and 6 bits; pick per-layer minimum\n"
              "depths that keep an output SQNR budget at the least activation bytes; and\n"
              "write all of it into OUT.onnx, which npu-run --model then uses as it is.\n\n"
              "  -s, --samples=X.npy      calibration samples ([N, ...] of the input's shape),\n"
              "                           once per model input, in order\n"
              "  -o, --output=OUT.onnx    the calibrated model (may be MODEL itself)\n"
              "  -b, --budget=DB          output SQNR the per-layer minimums keep under a\n"
              "                           4-bit decision, in dB (default: 20); A8-DB: DB below\n"
              "                           what uniform 8 bits reach\n"
              "  -n, --max-samples=N      use at most N samples, spread evenly (default: 256)\n"
              "  -e, --eval-samples=N     samples the output error is measured on (default: 32)\n"
              "  -m, --method=M           ranges: auto (per tensor and depth, the best of the\n"
              "                           others by output error; default), minmax, percentile,\n"
              "                           mse\n"
              "      --no-bias-correction no bias correction per input depth\n"
              "      --input-shape=NAME=D0xD1x...  a dynamic dimension's value\n"
              "      --plot=PREFIX        PREFIX-bytes.png (output SQNR against activation bytes)\n"
              "                           and PREFIX-sensitivity.png (per layer), with gnuplot\n"
              "  -j, --json               the report as JSON on stdout\n"
              "  -d, --device=NAME        NPU device (default: $NPU_DEVICE or soft)\n"
              "  -q, --quiet              no progress lines\n"
              "  -h, --help               this text\n",
              f);
}

bool count_arg(const char *s, uint64_t lo, uint64_t hi, uint64_t *ret)
{
        char *e;
        errno = 0;
        long long v = std::strtoll(s, &e, 10);
        if (errno || e == s || *e || v < (long long)lo || v > (long long)hi)
                return false;
        *ret = uint64_t(v);
        return true;
}

struct Progress {
        bool on = true, tty = false;
        std::string stage;
        unsigned shown = ~0u;
        static void cb(void *user, const char *stage, unsigned done, unsigned total)
        {
                auto *p = static_cast<Progress *>(user);
                if (!p->on || !total)
                        return;
                unsigned pct = unsigned(100.0 * done / total);
                if (p->stage != stage) {
                        if (p->tty && !p->stage.empty())
                                fputc('\n', stderr);
                        p->stage = stage;
                        p->shown = ~0u;
                }
                if (p->tty) {
                        fprintf(stderr, "\rnpu-calibrate: %s %u/%u", stage, done, total);
                } else if (pct / 25 != p->shown) {
                        p->shown = pct / 25;
                        fprintf(stderr, "npu-calibrate: %s %u/%u\n", stage, done, total);
                }
        }
        void end()
        {
                if (on && tty && !stage.empty())
                        fputc('\n', stderr);
        }
};

// The data of both plots, then gnuplot on them.
int plot(const npu_onnx_calibration *c, const std::string &prefix)
{
        // Per tensor: the entries.
        std::string dat = prefix + ".dat";
        FILE *f = fopen(dat.c_str(), "w");
        if (!f) {
                fprintf(stderr, "npu-calibrate: %s: %s\n", dat.c_str(), strerror(errno));
                return -1;
        }
        unsigned n = npu_onnx_calibration_count(c);
        fprintf(f, "# layer sqnr4 sqnr6 min_bits name\n");
        for (unsigned i = 0; i < n; i++) {
                npu_onnx_calibration_entry e;
                npu_onnx_calibration_tensor(c, i, &e);
                fprintf(f, "%u %.3f %.3f %u \"%s\"\n", i, e.sqnr_db[0], e.sqnr_db[1], e.min_bits, e.name);
        }
        fclose(f);
        // Uniform and mixed points, read back from the JSON report.
        const char *j = npu_onnx_calibration_report(c, 1);
        std::string pts = prefix + "-points.dat";
        if (!(f = fopen(pts.c_str(), "w"))) {
                fprintf(stderr, "npu-calibrate: %s: %s\n", pts.c_str(), strerror(errno));
                return -1;
        }
        fprintf(f, "# bytes sqnr_minmax sqnr_calibrated label\n");
        const char *p = strstr(j, "\"uniform\":[");
        for (int d = 0; p && d < 4; d++) {
                unsigned bits;
                double mm, db;
                unsigned long long bytes;
                p = strstr(p, "{\"bits\":");
                if (!p || sscanf(p, "{\"bits\":%u,\"sqnr_minmax_db\":%lf,\"sqnr_db\":%lf,\"activation_bytes\":%llu", &bits, &mm, &db,
                                 &bytes) != 4)
                        break;
                fprintf(f, "%llu %.3f %.3f A%u\n", bytes, mm, db, bits);
                p++;
        }
        fprintf(f, "\n\n");
        double mix = 0;
        unsigned long long mix_bytes = 0;
        if ((p = strstr(j, "\"mix\":{")))
                sscanf(p, "\"mix\":{\"sqnr_db\":%lf,\"activation_bytes\":%llu", &mix, &mix_bytes);
        fprintf(f, "%llu %.3f %.3f mix\n", mix_bytes, mix, mix);
        fclose(f);
        std::string script =
                "set terminal pngcairo size 900,560\n"
                "set output '" + prefix + "-bytes.png'\n"
                "set title 'Output SQNR against activation bytes per inference'\n"
                "set xlabel 'activation bytes per inference'\nset ylabel 'output SQNR (dB)'\nset grid\nset key bottom right\n"
                "plot '" + pts + "' index 0 using 1:2 with linespoints title 'uniform, min-max ranges', "
                "'' index 0 using 1:3 with linespoints title 'uniform, calibrated ranges', "
                "'' index 0 using 1:3:4 with labels offset 0,1 notitle, "
                "'' index 1 using 1:3 with points pt 7 ps 2 title 'per-layer minimums, 4-bit decision'\n"
                "set output '" + prefix + "-sensitivity.png'\n"
                "set title 'Per-layer sensitivity: output SQNR with one layer at 4 or 6 bits, the others at 8'\n"
                "set xlabel 'tensor (inputs and layers in order)'\nset ylabel 'output SQNR (dB)'\nset key top right\n"
                "set y2label 'minimum depth (bits)'\nset y2range [0:17]\nset y2tics (4, 6, 8, 16)\n"
                "plot '" + dat + "' using 1:2 with linespoints title '4 bits', '' using 1:3 with linespoints title '6 bits', "
                "'' using 1:4 axes x1y2 with steps title 'minimum depth chosen'\n";
        FILE *g = popen("gnuplot", "w");
        if (!g) {
                fprintf(stderr, "npu-calibrate: --plot: cannot run gnuplot: %s\n", strerror(errno));
                return -1;
        }
        fputs(script.c_str(), g);
        int st = pclose(g);
        if (st != 0) {
                fprintf(stderr, "npu-calibrate: --plot: gnuplot failed (status %d; is gnuplot installed?)\n", st);
                return -1;
        }
        return 0;
}

} // namespace

int main(int argc, char **argv)
{
        static const option longopts[] = {
                {"samples", required_argument, nullptr, 's'},      {"output", required_argument, nullptr, 'o'},
                {"budget", required_argument, nullptr, 'b'},       {"max-samples", required_argument, nullptr, 'n'},
                {"eval-samples", required_argument, nullptr, 'e'}, {"input-shape", required_argument, nullptr, 1001},
                {"plot", required_argument, nullptr, 1002},        {"json", no_argument, nullptr, 'j'},
                {"device", required_argument, nullptr, 'd'},       {"quiet", no_argument, nullptr, 'q'},
                {"help", no_argument, nullptr, 'h'},               {"method", required_argument, nullptr, 'm'},
                {"no-bias-correction", no_argument, nullptr, 1003},
                {nullptr, 0, nullptr, 0},
        };
        std::vector<const char *> sample_paths;
        const char *out_path = nullptr, *device = nullptr, *input_shape = nullptr, *plot_prefix = nullptr;
        double budget = 20;
        uint64_t max_samples = 256, eval_samples = 32;
        bool json = false, below_a8 = false, no_bias = false;
        uint32_t method = NPU_ONNX_RANGE_AUTO;
        Progress prog;
        prog.tty = isatty(2);
        int c;
        while ((c = getopt_long(argc, argv, "s:o:b:n:e:m:jd:qh", longopts, nullptr)) != -1) {
                switch (c) {
                case 's': sample_paths.push_back(optarg); break;
                case 'o': out_path = optarg; break;
                case 'b': {
                        char *e;
                        const char *v = optarg;
                        below_a8 = strncmp(v, "A8-", 3) == 0;
                        if (below_a8)
                                v += 3;
                        budget = std::strtod(v, &e);
                        if (*e || e == v || !std::isfinite(budget) || budget <= 0 || budget > 100) {
                                fprintf(stderr, "npu-calibrate: --budget: '%s' is not DB or A8-DB, DB above 0 and up to 100\n", optarg);
                                return 2;
                        }
                        break;
                }
                case 'n':
                case 'e':
                        if (!count_arg(optarg, 1, 100000, c == 'n' ? &max_samples : &eval_samples)) {
                                fprintf(stderr, "npu-calibrate: --%s: '%s' is not a count from 1 to 100000\n",
                                        c == 'n' ? "max-samples" : "eval-samples", optarg);
                                return 2;
                        }
                        break;
                case 'm': {
                        static const char *names[] = {"auto", "minmax", "percentile", "mse"};
                        method = 4;
                        for (uint32_t k = 0; k < 4; k++)
                                if (strcmp(optarg, names[k]) == 0)
                                        method = k;
                        if (method == 4) {
                                fprintf(stderr, "npu-calibrate: --method: '%s' is not auto, minmax, percentile or mse\n", optarg);
                                return 2;
                        }
                        break;
                }
                case 1001: input_shape = optarg; break;
                case 1002: plot_prefix = optarg; break;
                case 1003: no_bias = true; break;
                case 'j': json = true; break;
                case 'd': device = optarg; break;
                case 'q': prog.on = false; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind + 1 != argc || sample_paths.empty() || !out_path) {
                fprintf(stderr, "npu-calibrate: one MODEL.onnx, --samples and --output are needed (see --help)\n");
                return 2;
        }
        const char *model_path = argv[optind];
        char why[1024];
        npu_onnx_options lo{};
        lo.size = sizeof lo;
        lo.input_shapes = input_shape;
        npu_onnx *m;
        if (npu_onnx_load(model_path, &lo, &m, why, sizeof why) < 0) {
                fprintf(stderr, "npu-calibrate: %s\n", why);
                return 1;
        }
        std::unique_ptr<npu_onnx, void (*)(npu_onnx *)> m_owner(m, npu_onnx_free);
        unsigned nin = npu_onnx_input_count(m);
        if (sample_paths.size() != nin) {
                fprintf(stderr, "npu-calibrate: the model has %u input(s); %zu --samples given\n", nin, sample_paths.size());
                return 2;
        }
        std::vector<tools::Samples> xs(nin);
        uint64_t count = 0;
        for (unsigned i = 0; i < nin; i++) {
                npu_onnx_tensor_info ti;
                npu_onnx_input_info(m, i, &ti);
                std::string e;
                if (!tools::read_samples(sample_paths[i], ti.rank, ti.dims, &xs[i], &e)) {
                        fprintf(stderr, "npu-calibrate: %s\n", e.c_str());
                        return 1;
                }
                if (xs[i].per != ti.elements) {
                        fprintf(stderr, "npu-calibrate: %s: a sample has %llu elements, input '%s' %llu\n", sample_paths[i],
                                (unsigned long long)xs[i].per, ti.name, (unsigned long long)ti.elements);
                        return 1;
                }
                if (i && xs[i].count != count) {
                        fprintf(stderr, "npu-calibrate: %s has %llu samples, %s %llu\n", sample_paths[i],
                                (unsigned long long)xs[i].count, sample_paths[0], (unsigned long long)count);
                        return 1;
                }
                count = xs[i].count;
        }
        // At most --max-samples, spread evenly over the file.
        uint64_t n = std::min(count, max_samples);
        std::vector<std::vector<float>> picked(nin);
        std::vector<const float *> ptrs(nin);
        for (unsigned i = 0; i < nin; i++) {
                for (uint64_t k = 0; k < n; k++) {
                        const float *p = xs[i].a.data + (k * count / n) * xs[i].per;
                        picked[i].insert(picked[i].end(), p, p + xs[i].per);
                }
                ptrs[i] = picked[i].data();
        }
        npu_device *dev;
        int r;
        if ((r = npu_device_open(device, &dev)) < 0) {
                fprintf(stderr, "npu-calibrate: cannot open the NPU device: %s\n", tools::device_open_error(r).c_str());
                return 1;
        }
        std::unique_ptr<npu_device, void (*)(npu_device *)> dev_owner(dev, npu_device_close);
        npu_onnx_calibrate_options co{};
        co.size = sizeof co;
        co.budget_db = budget;
        co.eval_samples = eval_samples;
        co.method = method;
        co.flags = (below_a8 ? NPU_ONNX_BUDGET_BELOW_A8 : 0) | (no_bias ? NPU_ONNX_NO_BIAS_CORRECTION : 0);
        co.progress = Progress::cb;
        co.user = &prog;
        npu_onnx_calibration *cal;
        if (prog.on)
                fprintf(stderr, "npu-calibrate: %s: %llu samples of %llu, the output error on %llu\n", model_path,
                        (unsigned long long)n, (unsigned long long)count, (unsigned long long)std::min(n, eval_samples));
        r = npu_onnx_calibrate(m, dev, ptrs.data(), n, &co, &cal, why, sizeof why);
        prog.end();
        if (r < 0) {
                fprintf(stderr, "npu-calibrate: %s: %s\n", model_path, why);
                return 1;
        }
        std::unique_ptr<npu_onnx_calibration, void (*)(npu_onnx_calibration *)> cal_owner(cal, npu_onnx_calibration_free);
        if (npu_onnx_calibration_save(cal, out_path, why, sizeof why) < 0) {
                fprintf(stderr, "npu-calibrate: %s\n", why);
                return 1;
        }
        fputs(npu_onnx_calibration_report(cal, json), stdout);
        if (!json)
                printf("wrote %s\n", out_path);
        if (plot_prefix && plot(cal, plot_prefix) < 0)
                return 1;
        return 0;
}

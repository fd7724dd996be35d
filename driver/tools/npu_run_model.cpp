// npu-run --model: an ONNX model over the samples of .npy files, at one or
// every activation depth, with per-layer bits, bytes and time under the
// ONNX node names.  See npu-run(1).
#include "npu_run_model.h"
#include "device_error.h"
#include "samples.h"
#include "bwq_status.h"
#include "deadline.h"
#include "live_line.h"

#include <getopt.h>

#include <memory>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <ctime>
#include <string>
#include <vector>

#include "common/clock.h"
#include "common/json.h"
#include "npu/npu.h"
#include "npu/npy.h"
#include "npu/onnx.h"

using bwq::json_str;
using tools::read_samples;
using tools::Samples;

namespace {

// Where the model stands with bwqd after its runs, for the summary line.
std::string fallback_status(const npu_model *m)
{
        npu_bwq_status bs{};
        if (npu_model_bwq_status(m, &bs) < 0)
                return "?";
        return tools::bwq_status_text(bs);
}

void usage(FILE *f)
{
        fprintf(f,
                "Usage: npu-run --model=FILE.onnx --input=X.npy [--output=Y.npy] [OPTIONS]\n"
                "Run a trained float ONNX model on an NPU over the samples of X and write its\n"
                "outputs to Y, in the model's own layout.\n\n"
                "      --model=FILE     the ONNX model\n"
                "  -i, --input=X.npy    N samples: [N, ...] of the model input's shape, or the\n"
                "                       input's own shape with N in its first (batch) dimension;\n"
                "                       repeat once per model input, in the model's order\n"
                "  -o, --output=Y.npy   the N outputs stacked as the inputs were; repeat once per\n"
                "                       model output, or give one name for all: Y.0.npy, Y.1.npy ...\n"
                "      --calibration=C.npy  samples that ranges are measured on (default: X, or\n"
                "                       the model's own ranges when npu-calibrate wrote them)\n"
                "      --calibration-samples=N  how many of them, spread evenly (default: 8)\n"
                "      --input-shape=NAME=D0xD1x...  a dynamic dimension's value (default: from X)\n"
                "      --labels=L.npy   N class indices: top-1 of output 0 against them, per depth\n"
                "      --fps=F          a deadline loop at F frames/s over the samples in turn (one\n"
                "                       --bits; with --labels, top-1 of the frames run)\n"
                "      --seconds=S      with --fps: how long (default: 10)\n"
                "      --live           with --fps: one line per frame (with --labels, the frame's\n"
                "                       class and label: ok or WRONG)\n"
                "  -b, --bits=N|all     activation depth: 4, 6, 8, 16 or all (default: 8)\n"
                "  -m, --mode=MODE      fixed (default), bwq-model or bwq-layer: the depth from\n"
                "                       bwqd ($BWQ_BUS); --bits is then the fallback depth\n"
                "      --min-bits=N, --max-bits=N   BWQ modes: the model-wide clamp\n"
                "  -d, --device=NAME    NPU device (default: $NPU_DEVICE, else \"soft\")\n"
                "      --placement      print what runs where and the rewrites done\n"
                "      --no-host        refuse a model with nodes the NPU cannot run (default: they\n"
                "                       run on the CPU between NPU segments)\n"
                "      --reference[=float|int8]  write libnpu's float reference of the rewritten\n"
                "                       graph instead of running the NPU: with the model's float\n"
                "                       weights (default), or the device's int8 weights\n"
                "      --summary        totals only, no per-layer lines\n"
                "  -j, --json           one JSON object (see npu-run(1))\n"
                "  -h, --help           this text\n\n"
                "Exit status: 0 success, 1 the model or device failed, 2 bad usage or input.\n");
}

bool depth_arg(const char *arg, unsigned *ret)
{
        char *e;
        long v = std::strtol(arg, &e, 10);
        if (*e || (v != 4 && v != 6 && v != 8 && v != 16))
                return false;
        *ret = unsigned(v);
        return true;
}

const char *op_name(uint32_t op)
{
        static const char *names[] = {"?",       "conv2d",  "fully_connected", "add",   "mul",
                                      "maxpool", "avgpool", "global_avgpool",  "concat", "resize"};
        return op == NPU_LAYER_HOST ? "host" : op < 10 ? names[op] : "?";
}

struct Layer {
        npu_layer_stats st;
        std::vector<uint64_t> ns;
};

} // namespace

int npu_run_model_main(int argc, char **argv)
{
        static const option longopts[] = {
                {"model", required_argument, nullptr, 1000},   {"input", required_argument, nullptr, 'i'},
                {"output", required_argument, nullptr, 'o'},   {"calibration", required_argument, nullptr, 1001},
                {"input-shape", required_argument, nullptr, 1002}, {"bits", required_argument, nullptr, 'b'},
                {"mode", required_argument, nullptr, 'm'},     {"min-bits", required_argument, nullptr, 1003},
                {"max-bits", required_argument, nullptr, 1004}, {"device", required_argument, nullptr, 'd'},
                {"placement", no_argument, nullptr, 1005},     {"summary", no_argument, nullptr, 1006},
                {"json", no_argument, nullptr, 'j'},           {"help", no_argument, nullptr, 'h'},
                {"name", required_argument, nullptr, 1007},    {"reference", optional_argument, nullptr, 1008},
                {"no-host", no_argument, nullptr, 1009},       {"calibration-samples", required_argument, nullptr, 1010},
                {"labels", required_argument, nullptr, 1011},  {"fps", required_argument, nullptr, 1012},
                {"seconds", required_argument, nullptr, 1013}, {"live", no_argument, nullptr, 1014},
                {nullptr, 0, nullptr, 0},
        };
        const char *model_path = nullptr, *calib_path = nullptr, *device = nullptr, *name = "npu-run", *labels_path = nullptr;
        std::vector<const char *> inputs, outputs;
        std::string shapes;
        std::vector<unsigned> depths = {8};
        uint32_t mode = NPU_MODE_FIXED;
        unsigned min_bits = 4, max_bits = 16;
        bool json = false, summary = false, placement = false, reference = false, bits_all = false, no_host = false;
        bool live = false;
        uint32_t ref_flags = 0;
        uint64_t cal_samples = 8;
        double fps = 0, loop_seconds = 10;
        for (int i = 1; i < argc; i++)
                if (strcmp(argv[i], "-h") == 0 || strcmp(argv[i], "--help") == 0) {
                        usage(stdout);
                        return 0;
                }
        int c;
        optind = 1;
        while ((c = getopt_long(argc, argv, "i:o:b:m:d:jh", longopts, nullptr)) != -1) {
                switch (c) {
                case 1000: model_path = optarg; break;
                case 'i': inputs.push_back(optarg); break;
                case 'o': outputs.push_back(optarg); break;
                case 1001: calib_path = optarg; break;
                case 1011: labels_path = optarg; break;
                case 1014: live = true; break;
                case 1012:
                case 1013: {
                        char *e;
                        errno = 0;
                        double f = std::strtod(optarg, &e);
                        if (c == 1012 && (errno || *e || e == optarg || !(f >= tools::kMinFps && f <= tools::kMaxFps))) {
                                fprintf(stderr, "npu-run: --fps: '%s' is not a number from 0.001 to 1000\n", optarg);
                                return 2;
                        }
                        if (c == 1013 && (errno || *e || e == optarg || !(f > 0 && f <= 86400))) {
                                fprintf(stderr, "npu-run: --seconds: '%s' is not a number above 0, at most 86400\n", optarg);
                                return 2;
                        }
                        (c == 1012 ? fps : loop_seconds) = f;
                        break;
                }
                case 1002: shapes += std::string(shapes.empty() ? "" : ";") + optarg; break;
                case 'b':
                        if (strcmp(optarg, "all") == 0) {
                                depths = {4, 6, 8, 16};
                                bits_all = true;
                        } else {
                                unsigned d;
                                if (!depth_arg(optarg, &d)) {
                                        fprintf(stderr, "npu-run: --bits: '%s' is not 4, 6, 8, 16 or all\n", optarg);
                                        return 2;
                                }
                                depths = {d};
                        }
                        break;
                case 'm':
                        if (strcmp(optarg, "fixed") == 0) mode = NPU_MODE_FIXED;
                        else if (strcmp(optarg, "bwq-model") == 0) mode = NPU_MODE_BWQ_MODEL;
                        else if (strcmp(optarg, "bwq-layer") == 0) mode = NPU_MODE_BWQ_LAYER;
                        else {
                                fprintf(stderr, "npu-run: --mode: '%s' is not fixed, bwq-model or bwq-layer\n", optarg);
                                return 2;
                        }
                        break;
                case 1003:
                case 1004:
                        if (!depth_arg(optarg, c == 1003 ? &min_bits : &max_bits)) {
                                fprintf(stderr, "npu-run: --%s: '%s' is not 4, 6, 8 or 16\n", c == 1003 ? "min-bits" : "max-bits", optarg);
                                return 2;
                        }
                        break;
                case 'd': device = optarg; break;
                case 1005: placement = true; break;
                case 1006: summary = true; break;
                case 1007: name = optarg; break;
                case 1009: no_host = true; break;
                case 1010: {
                        char *e;
                        long long v = std::strtoll(optarg, &e, 10);
                        if (*e || v < 1 || v > 100000) {
                                fprintf(stderr, "npu-run: --calibration-samples: '%s' is not a count from 1 to 100000\n", optarg);
                                return 2;
                        }
                        cal_samples = uint64_t(v);
                        break;
                }
                case 1008:
                        reference = true;
                        if (optarg && strcmp(optarg, "int8") == 0)
                                ref_flags = NPU_REFERENCE_INT8_WEIGHTS;
                        else if (optarg && strcmp(optarg, "float") != 0) {
                                fprintf(stderr, "npu-run: --reference: '%s' is not float or int8\n", optarg);
                                return 2;
                        }
                        break;
                case 'j': json = true; break;
                case 'h': usage(stdout); return 0;
                default: usage(stderr); return 2;
                }
        }
        if (optind < argc) {
                fprintf(stderr, "npu-run: unexpected argument '%s'\n", argv[optind]);
                return 2;
        }
        if (!model_path || inputs.empty()) {
                fprintf(stderr, "npu-run: --model and --input are needed (see --help)\n");
                return 2;
        }
        if (live && fps <= 0) {
                fprintf(stderr, "npu-run: --live needs --fps\n");
                return 2;
        }
        if (min_bits > max_bits) {
                fprintf(stderr, "npu-run: --min-bits %u is above --max-bits %u\n", min_bits, max_bits);
                return 2;
        }
        if (mode != NPU_MODE_FIXED && depths.size() > 1) {
                fprintf(stderr, "npu-run: --bits=all is for --mode=fixed\n");
                return 2;
        }

        // The inputs' declared shapes first: X gives the dynamic dimensions
        // that --input-shape does not.
        char why[1024];
        npu_onnx *peek;
        npu_onnx_options lo{};
        lo.size = sizeof lo;
        lo.flags = NPU_ONNX_INPUTS_ONLY;
        int r = npu_onnx_load(model_path, &lo, &peek, why, sizeof why);
        if (r < 0) {
                fprintf(stderr, "npu-run: %s\n", why);
                return 1;
        }
        unsigned nin = npu_onnx_input_count(peek);
        if (inputs.size() != nin) {
                fprintf(stderr, "npu-run: the model has %u input(s); %zu --input given\n", nin, inputs.size());
                npu_onnx_free(peek);
                return 2;
        }
        std::vector<Samples> xs(nin);
        uint64_t samples = 0;
        for (unsigned i = 0; i < nin; i++) {
                npu_onnx_tensor_info ti;
                npu_onnx_input_info(peek, i, &ti);
                std::string e;
                if (!read_samples(inputs[i], ti.rank, ti.dims, &xs[i], &e)) {
                        fprintf(stderr, "npu-run: %s\n", e.c_str());
                        npu_onnx_free(peek);
                        return 2;
                }
                if (i && xs[i].count != samples) {
                        fprintf(stderr, "npu-run: %s has %llu samples, %s %llu\n", inputs[i], (unsigned long long)xs[i].count,
                                inputs[0], (unsigned long long)samples);
                        npu_onnx_free(peek);
                        return 2;
                }
                samples = xs[i].count;
                std::string dims;
                for (int64_t d : xs[i].shape)
                        dims += (dims.empty() ? "" : "x") + std::to_string(d);
                if (shapes.find(std::string(ti.name) + "=") == std::string::npos)
                        shapes += (shapes.empty() ? "" : ";") + std::string(ti.name) + "=" + dims;
        }
        npu_onnx_free(peek);
        npu_onnx *probe;
        lo.flags = no_host ? NPU_ONNX_NO_HOST : 0;
        lo.input_shapes = shapes.c_str();
        if ((r = npu_onnx_load(model_path, &lo, &probe, why, sizeof why)) < 0) {
                fprintf(stderr, "npu-run: %s\n", why);
                return 1;
        }
        std::unique_ptr<npu_onnx, void (*)(npu_onnx *)> model(probe, npu_onnx_free);
        unsigned nout = npu_onnx_output_count(probe);
        npu_npy labels{};
        std::unique_ptr<npu_npy, void (*)(npu_npy *)> labels_owner(&labels, npu_npy_free);
        if (labels_path) {
                npu_onnx_tensor_info o0;
                npu_onnx_output_info(probe, 0, &o0);
                if (npu_npy_read(labels_path, &labels, why, sizeof why) < 0) {
                        fprintf(stderr, "npu-run: %s\n", why);
                        return 1;
                }
                if (labels.elements != samples) {
                        fprintf(stderr, "npu-run: %s: %llu labels for %llu samples\n", labels_path, (unsigned long long)labels.elements,
                                (unsigned long long)samples);
                        return 2;
                }
                for (uint64_t k = 0; k < labels.elements; k++)
                        if (!(labels.data[k] >= 0) || labels.data[k] >= float(o0.elements) || labels.data[k] != std::floor(labels.data[k])) {
                                fprintf(stderr, "npu-run: %s: label %llu is %g, not a class from 0 to %llu of output '%s'\n", labels_path,
                                        (unsigned long long)k, double(labels.data[k]), (unsigned long long)(o0.elements - 1), o0.name);
                                return 2;
                        }
        }
        if (!outputs.empty() && outputs.size() != 1 && outputs.size() != nout) {
                fprintf(stderr, "npu-run: the model has %u output(s); give one --output or %u\n", nout, nout);
                return 2;
        }
        for (unsigned i = 0; i < nin; i++) {
                npu_onnx_tensor_info ti;
                npu_onnx_input_info(probe, i, &ti);
                if (xs[i].per != ti.elements) {
                        fprintf(stderr, "npu-run: %s: %llu elements per sample, input '%s' takes %llu\n", inputs[i],
                                (unsigned long long)xs[i].per, ti.name, (unsigned long long)ti.elements);
                        return 2;
                }
        }
        Samples cal;
        if (calib_path) {
                if (nin != 1) {
                        fprintf(stderr, "npu-run: --calibration takes a model of one input\n");
                        return 2;
                }
                npu_onnx_tensor_info ti;
                npu_onnx_input_info(probe, 0, &ti);
                std::string e;
                if (!read_samples(calib_path, ti.rank, ti.dims, &cal, &e)) {
                        fprintf(stderr, "npu-run: %s\n", e.c_str());
                        return 2;
                }
        }

        npu_device *dev;
        if ((r = npu_device_open(device, &dev)) < 0) {
                fprintf(stderr, "npu-run: cannot open the NPU device: %s\n", tools::device_open_error(r).c_str());
                return 1;
        }
        std::unique_ptr<npu_device, void (*)(npu_device *)> dev_owner(dev, npu_device_close);
        // Ranges are measured on at most --calibration-samples samples,
        // spread evenly over the file (each is a float pass of the model).
        uint64_t avail = calib_path ? cal.count : samples, ncal = std::min<uint64_t>(avail, cal_samples);
        std::vector<std::vector<float>> picked(nin);
        std::vector<const float *> calib(nin);
        for (unsigned i = 0; i < nin; i++) {
                const Samples &src = calib_path ? cal : xs[i];
                for (uint64_t k = 0; k < ncal; k++) {
                        const float *p = src.a.data + (k * avail / ncal) * src.per;
                        picked[i].insert(picked[i].end(), p, p + src.per);
                }
                calib[i] = picked[i].data();
        }
        if (!json && npu_onnx_calibrated(probe) && !calib_path)
                fprintf(stderr, "npu-run: the model's own calibrated ranges (npu-calibrate)\n");
        else if (!json && ncal > 1)
                fprintf(stderr, "npu-run: measuring activation ranges on %llu of %llu samples\n", (unsigned long long)ncal,
                        (unsigned long long)avail);
        npu_compile_options co{};
        co.name = name;
        co.calibration_count = ncal;
        // A calibrated model (npu-calibrate) brings its own ranges per depth.
        bool own_ranges = npu_onnx_calibrated(probe) && !calib_path;
        if (own_ranges)
                co.calibration_count = 0;
        double t0 = bwq::monotonic_s();
        npu_model *m;
        if ((r = npu_onnx_compile(probe, dev, own_ranges ? nullptr : calib.data(), &co, &m)) < 0) {
                fprintf(stderr, "npu-run: %s: compiling for the device failed: %s\n", model_path, strerror(-r));
                return 1;
        }
        double compile_s = bwq::monotonic_s() - t0;
        std::unique_ptr<npu_model, void (*)(npu_model *)> m_owner(m, npu_model_free);
        if (placement && !json)
                fputs(npu_onnx_placement(probe), stdout);

        // The model's own depth limits ([0046]); --min-bits/--max-bits narrow them.
        unsigned mlo, mhi;
        npu_onnx_bits_range(probe, &mlo, &mhi);
        min_bits = std::max(min_bits, mlo);
        max_bits = std::min(max_bits, mhi);
        if (min_bits > max_bits) {
                fprintf(stderr, "npu-run: --min-bits/--max-bits leave nothing of the model's own limits %u:%u\n", mlo, mhi);
                return 2;
        }
        if (bits_all)  // every depth the model allows
                depths.erase(std::remove_if(depths.begin(), depths.end(), [&](unsigned d) { return d < mlo || d > mhi; }),
                             depths.end());
        if (mode == NPU_MODE_FIXED)
                for (unsigned &d : depths)
                        if (d < mlo || d > mhi) {
                                fprintf(stderr, "npu-run: %u bits is outside the model's own limits %u:%u (bwq.activation_bits)\n", d,
                                        mlo, mhi);
                                return 2;
                        }
        std::vector<npu_onnx_tensor_info> oinfo(nout);
        for (unsigned j = 0; j < nout; j++)
                npu_onnx_output_info(probe, j, &oinfo[j]);
        std::vector<std::vector<float>> results(nout);
        // Sample s of every input, and where its outputs go.
        auto sample_io = [&](uint64_t s, std::vector<const float *> *in, std::vector<float *> *out) {
                for (unsigned i = 0; i < nin; i++)
                        (*in)[i] = xs[i].a.data + s * xs[i].per;
                for (unsigned j = 0; j < nout; j++)
                        (*out)[j] = results[j].data() + s * oinfo[j].elements;
        };
        // --labels: the class of largest output 0 against the label.
        auto correct_top1 = [&]() {
                uint64_t correct = 0;
                for (uint64_t s = 0; s < samples && labels_path; s++) {
                        const float *o = results[0].data() + s * oinfo[0].elements;
                        uint64_t best = uint64_t(std::max_element(o, o + oinfo[0].elements) - o);
                        correct += best == uint64_t(labels.data[s]);
                }
                return correct;
        };
        if (reference)
                depths.clear();
        for (unsigned j = 0; j < nout && reference; j++)
                results[j].assign(size_t(oinfo[j].elements * samples), 0.0f);
        for (uint64_t s = 0; s < samples && reference; s++) {
                std::vector<const float *> in(nin);
                std::vector<float *> out(nout);
                sample_io(s, &in, &out);
                if ((r = npu_onnx_reference(probe, in.data(), out.data(), ref_flags)) < 0) {
                        fprintf(stderr, "npu-run: the float reference failed: %s\n", strerror(-r));
                        return 1;
                }
        }
        if (reference && labels_path) {
                uint64_t c = correct_top1();
                if (json)
                        printf("{\"model\":%s,\"samples\":%llu,\"reference_top1\":%.4f,\"correct\":%llu}\n",
                               json_str(model_path).c_str(), (unsigned long long)samples, double(c) / double(samples),
                               (unsigned long long)c);
                else
                        printf("top-1 of the float reference: %.2f%% (%llu of %llu against %s)\n", 100.0 * double(c) / double(samples),
                               (unsigned long long)c, (unsigned long long)samples, labels_path);
        }
        if (fps > 0) {
                if (reference || depths.size() != 1) {
                        fprintf(stderr, "npu-run: --fps runs the device at one depth: give --bits N, not --reference\n");
                        return 2;
                }
                if ((r = npu_model_set_mode(m, mode, depths[0], min_bits, max_bits)) < 0) {
                        fprintf(stderr, "npu-run: cannot set the mode: %s\n", strerror(-r));
                        return 1;
                }
                for (unsigned j = 0; j < nout; j++)
                        results[j].assign(size_t(oinfo[j].elements), 0.0f);
                const tools::DeadlineLoop loop(fps, loop_seconds);
                tools::Latencies lat;
                uint64_t fallback = 0, act = 0, correct = 0;
                uint32_t last_state = ~0u;
                unsigned lo_bits = 16, hi_bits = 0;
                std::vector<const float *> in(nin);
                std::vector<float *> out(nout);
                if (live)
                        tools::live_header();
                for (uint64_t frame = 0; loop.wait(frame); frame++) {
                        uint64_t s = frame % samples;
                        for (unsigned i = 0; i < nin; i++)
                                in[i] = xs[i].a.data + s * xs[i].per;
                        for (unsigned j = 0; j < nout; j++)
                                out[j] = results[j].data();
                        double a = bwq::monotonic_s();
                        npu_run_stats st{};
                        if ((r = npu_onnx_run(probe, m, in.data(), out.data(), &st)) < 0) {
                                fprintf(stderr, "npu-run: frame %llu failed: %s\n", (unsigned long long)frame, strerror(-r));
                                return 1;
                        }
                        double ms = (bwq::monotonic_s() - a) * 1e3;
                        lat.add(ms, loop.period_ms());
                        fallback += (st.flags & NPU_RUN_FALLBACK) != 0;
                        npu_bwq_status bs;
                        if (mode != NPU_MODE_FIXED && npu_model_bwq_status(m, &bs) == 0 && bs.state != last_state) {
                                fprintf(stderr, "npu-run: %.2f s: bwqd link: %s\n", a - loop.t0(), tools::bwq_status_text(bs).c_str());
                                last_state = bs.state;
                        }
                        act += st.activation_bytes;
                        lo_bits = std::min<unsigned>(lo_bits, st.min_layer_bits);
                        hi_bits = std::max<unsigned>(hi_bits, st.max_layer_bits);
                        std::string verdict;
                        if (labels_path) {
                                const float *o = results[0].data();
                                const uint64_t got = uint64_t(std::max_element(o, o + oinfo[0].elements) - o), want = uint64_t(labels.data[s]);
                                correct += got == want;
                                verdict = "class " + std::to_string(got) + " label " + std::to_string(want) + (got == want ? " ok" : " WRONG");
                        }
                        if (live)
                                tools::live_line(a - loop.t0(), m, st, ms, ms > loop.period_ms(), verdict);
                }
                size_t n = std::max<size_t>(lat.ms.size(), 1);
                printf("frames %zu at %.1f fps: deadline misses %llu (%.1f%%), latency p50 %.3f ms p99 %.3f ms, "
                       "activation %.4f MB/frame, layer bits %u..%u, %llu frames at the fallback depth",
                       lat.ms.size(), fps, (unsigned long long)lat.misses, 100.0 * double(lat.misses) / double(n),
                       lat.percentile(0.5), lat.percentile(0.99), double(act) / 1e6 / double(n), lo_bits, hi_bits,
                       (unsigned long long)fallback);
                if (labels_path)
                        printf("; top-1 %.2f%% against %s", 100.0 * double(correct) / double(n), labels_path);
                printf("\n");
                return 0;
        }
        if (json && !reference)
                printf("{\"model\":%s,\"samples\":%llu,\"compile_s\":%.3f,\"runs\":[", json_str(model_path).c_str(),
                       (unsigned long long)samples, compile_s);
        for (size_t di = 0; di < depths.size(); di++) {
                unsigned bits = depths[di];
                if ((r = npu_model_set_mode(m, mode, bits, min_bits, max_bits)) < 0) {
                        fprintf(stderr, "npu-run: cannot set the mode: %s\n", strerror(-r));
                        return 1;
                }
                for (unsigned j = 0; j < nout; j++)
                        results[j].assign(size_t(oinfo[j].elements * samples), 0.0f);
                std::vector<Layer> layers;
                npu_run_stats total{}, st{};
                std::vector<double> ms;
                unsigned fallback = 0;
                for (uint64_t s = 0; s < samples; s++) {
                        std::vector<const float *> in(nin);
                        std::vector<float *> out(nout);
                        sample_io(s, &in, &out);
                        double a = bwq::monotonic_s();
                        if ((r = npu_onnx_run(probe, m, in.data(), out.data(), &st)) < 0) {
                                uint32_t code = 0, index = 0;
                                npu_device_last_job_error(dev, &code, &index);
                                fprintf(stderr, "npu-run: sample %llu failed: %s%s%s\n", (unsigned long long)s, strerror(-r),
                                        code ? ": " : "", code ? npu_job_error_name(code) : "");
                                return 1;
                        }
                        ms.push_back((bwq::monotonic_s() - a) * 1e3);
                        fallback += (st.flags & NPU_RUN_FALLBACK) != 0;
                        total.activation_bytes += st.activation_bytes;
                        total.weight_bytes += st.weight_bytes;
                        layers.resize(st.layer_count);
                        for (unsigned l = 0; l < st.layer_count; l++) {
                                npu_model_layer_stats(m, l, &layers[l].st);
                                layers[l].ns.push_back(layers[l].st.ns);
                        }
                }
                std::sort(ms.begin(), ms.end());
                double median_ms = ms[ms.size() / 2];
                uint64_t correct = correct_top1();
                double top1 = samples ? 100.0 * double(correct) / double(samples) : 0.0;
                if (json) {
                        printf("%s{\"bits\":%u,\"layers\":[", di ? "," : "", bits);
                        for (size_t l = 0; l < layers.size(); l++) {
                                auto t = layers[l].ns;
                                std::sort(t.begin(), t.end());
                                const char *ln = npu_onnx_layer_name(probe, unsigned(l));
                                printf("%s{\"node\":%s,\"op\":\"%s\",\"bits\":%u,\"bytes_read\":%llu,\"bytes_written\":%llu,\"ns\":%llu}",
                                       l ? "," : "", json_str(ln ? ln : "").c_str(), op_name(layers[l].st.op), layers[l].st.bits,
                                       (unsigned long long)layers[l].st.bytes_read, (unsigned long long)layers[l].st.bytes_written,
                                       (unsigned long long)t[t.size() / 2]);
                        }
                        npu_bwq_status bs{};
                        (void)npu_model_bwq_status(m, &bs);
                        printf("],\"totals\":{\"activation_bytes_per_sample\":%llu,\"weight_bytes_per_sample\":%llu,"
                               "\"median_ms\":%.3f,\"fallback_runs\":%u,\"bwqd\":%s",
                               (unsigned long long)(total.activation_bytes / samples), (unsigned long long)(total.weight_bytes / samples),
                               median_ms, fallback, json_str(npu_bwq_state_name(bs.state)).c_str());
                        if (labels_path)
                                printf(",\"top1\":%.4f,\"correct\":%llu", top1 / 100, (unsigned long long)correct);
                        printf("}}");
                } else {
                        printf("== %s: %u-bit activations, %llu sample(s)\n", model_path, bits, (unsigned long long)samples);
                        if (!summary) {
                                printf("%5s %-15s %4s %12s %12s %9s  %s\n", "layer", "op", "bits", "bytes_read", "bytes_written",
                                       "time_us", "node");
                                for (size_t l = 0; l < layers.size(); l++) {
                                        auto t = layers[l].ns;
                                        std::sort(t.begin(), t.end());
                                        const char *ln = npu_onnx_layer_name(probe, unsigned(l));
                                        printf("%5zu %-15s %4u %12llu %12llu %9.1f  %s\n", l, op_name(layers[l].st.op), layers[l].st.bits,
                                               (unsigned long long)layers[l].st.bytes_read, (unsigned long long)layers[l].st.bytes_written,
                                               t[t.size() / 2] / 1e3, ln ? ln : "");
                                }
                        }
                        printf("total: %zu layers, activation_bytes %llu, weight_bytes %llu per sample, %.3f ms (median of %zu)%s\n",
                               layers.size(), (unsigned long long)(total.activation_bytes / samples),
                               (unsigned long long)(total.weight_bytes / samples), median_ms, ms.size(),
                               fallback ? (", " + std::to_string(fallback) + " run(s) at the fallback depth; bwqd link: " +
                                           fallback_status(m)).c_str() : "");
                        if (labels_path)
                                printf("top-1: %.2f%% (%llu of %llu against %s)\n", top1, (unsigned long long)correct,
                                       (unsigned long long)samples, labels_path);
                }
        }
        if (json && !reference)
                printf("]}\n");
        // Outputs of the last depth run, stacked as the inputs were.
        for (unsigned j = 0; j < nout && !outputs.empty(); j++) {
                std::string path = outputs.size() == 1 && nout > 1 ? std::string(outputs[0]) : outputs.size() == 1 ? outputs[0] : outputs[j];
                if (outputs.size() == 1 && nout > 1) {
                        size_t dot = path.rfind(".npy");
                        path = (dot == std::string::npos ? path : path.substr(0, dot)) + "." + std::to_string(j) + ".npy";
                }
                std::vector<int64_t> dims;
                if (xs[0].extra_axis) {
                        dims.push_back(int64_t(samples));
                        dims.insert(dims.end(), oinfo[j].dims, oinfo[j].dims + oinfo[j].rank);
                } else {
                        dims.assign(oinfo[j].dims, oinfo[j].dims + oinfo[j].rank);
                        if (dims.empty())
                                dims.push_back(1);
                        dims[0] *= int64_t(samples);
                }
                if (npu_npy_write(path.c_str(), uint32_t(dims.size()), dims.data(), results[j].data(), why, sizeof why) < 0) {
                        fprintf(stderr, "npu-run: %s\n", why);
                        return 1;
                }
        }
        return 0;
}

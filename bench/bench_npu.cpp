// make bench: the driver side.  Every figure is measured in this run against
// a peer on the same data and printed as a ratio; times are medians.
//
//   0. the machine's own limits: CPU model and family, the int8
//      multiply-accumulate peak per core (a register-only vpdpbusd loop
//      with AVX-512 VNNI, else the vpmaddubsw, vpmaddwd, vpaddd sequence of
//      AVX2; 1 and 2 threads) and memcpy bandwidth
//   1. quantize-and-pack per depth against memcpy of the same float buffer
//   2. npuref at 8 bits against oneDNN's int8 primitives (u8 x s8, u8 out
//      with per-channel scales): GEMM, 1x1, 3x3 and depthwise convolution,
//      on 1 and 2 threads
//   3. the 4-, 6- and 16-bit paths against the 8-bit path
//   4. npu-run's network: latency per depth
#include <immintrin.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <memory>
#include <oneapi/dnnl/dnnl.hpp>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "driver/mobilenet/mobilenet.h"
#include "npu/npu.h"
#include "common/quant.h"

namespace {

double now_s() { return bwq::monotonic_s(); }

double median(std::vector<double> v)
{
        std::sort(v.begin(), v.end());
        return v[v.size() / 2];
}

// ---- 0. the machine's limits ----------------------------------------------

// The int8 MAC peak, in MACs per second for 1 and 2 threads, filled by
// bench_machine and used by the GEMM rows; g_peak_name says which loop.
double g_vnni_peak[3] = {0, 0, 0};
// Without VNNI: the exact 8-bit sequence's peak (avx2_exact_loop), else 0.
double g_exact_peak[3] = {0, 0, 0};
const char *g_peak_name = "VNNI peak";

// 12 independent accumulators: enough to cover vpdpbusd's latency on two
// 512-bit pipes.  Each vpdpbusd is 64 u8 x s8 multiply-accumulates.  The loop
// is written in assembly: in C the twelve chains compute the same values, and
// the compiler merges them into one (a latency figure, not a throughput one).
__attribute__((target("avx512f,avx512vnni"))) double vnni_loop(uint64_t iters)
{
        const __m512i a = _mm512_set1_epi8(3), b = _mm512_set1_epi8(-2);
        double t0 = now_s();
        uint64_t n = iters;
        __asm__ volatile(
                "vpxord %%zmm4, %%zmm4, %%zmm4\n\t"
                "vmovdqa64 %%zmm4, %%zmm5\n\t"
                "vmovdqa64 %%zmm4, %%zmm6\n\t"
                "vmovdqa64 %%zmm4, %%zmm7\n\t"
                "vmovdqa64 %%zmm4, %%zmm8\n\t"
                "vmovdqa64 %%zmm4, %%zmm9\n\t"
                "vmovdqa64 %%zmm4, %%zmm10\n\t"
                "vmovdqa64 %%zmm4, %%zmm11\n\t"
                "vmovdqa64 %%zmm4, %%zmm12\n\t"
                "vmovdqa64 %%zmm4, %%zmm13\n\t"
                "vmovdqa64 %%zmm4, %%zmm14\n\t"
                "vmovdqa64 %%zmm4, %%zmm15\n\t"
                "1:\n\t"
                "vpdpbusd %[b], %[a], %%zmm4\n\t"
                "vpdpbusd %[b], %[a], %%zmm5\n\t"
                "vpdpbusd %[b], %[a], %%zmm6\n\t"
                "vpdpbusd %[b], %[a], %%zmm7\n\t"
                "vpdpbusd %[b], %[a], %%zmm8\n\t"
                "vpdpbusd %[b], %[a], %%zmm9\n\t"
                "vpdpbusd %[b], %[a], %%zmm10\n\t"
                "vpdpbusd %[b], %[a], %%zmm11\n\t"
                "vpdpbusd %[b], %[a], %%zmm12\n\t"
                "vpdpbusd %[b], %[a], %%zmm13\n\t"
                "vpdpbusd %[b], %[a], %%zmm14\n\t"
                "vpdpbusd %[b], %[a], %%zmm15\n\t"
                "dec %[n]\n\t"
                "jnz 1b\n\t"
                : [n] "+r"(n)
                : [a] "v"(a), [b] "v"(b)
                : "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13", "xmm14", "xmm15", "cc");
        double dt = now_s() - t0;
        return double(iters) * 12 * 64 / dt;
}

// Without VNNI, one loop per sequence of AVX2 instructions for 32 u8 x s8
// products (MAC(acc, tmp): into ymm tmp, added to ymm acc), over eight
// independent accumulators; in assembly for the reason above.
#define BWQ_AVX2_LOOP(name, MAC)                                                                                          \
        __attribute__((target("avx2"))) double name(uint64_t iters)                                                      \
        {                                                                                                                \
                const __m256i a = _mm256_set1_epi8(3), b = _mm256_set1_epi8(-2), s = _mm256_set1_epi8(-5),               \
                              ones = _mm256_set1_epi16(1);                                                               \
                double t0 = now_s();                                                                                     \
                uint64_t n = iters;                                                                                      \
                __asm__ volatile("vpxor %%ymm4, %%ymm4, %%ymm4\n\t"                                                      \
                                 "vmovdqa %%ymm4, %%ymm5\n\t"                                                            \
                                 "vmovdqa %%ymm4, %%ymm6\n\t"                                                            \
                                 "vmovdqa %%ymm4, %%ymm7\n\t"                                                            \
                                 "vmovdqa %%ymm4, %%ymm8\n\t"                                                            \
                                 "vmovdqa %%ymm4, %%ymm9\n\t"                                                            \
                                 "vmovdqa %%ymm4, %%ymm10\n\t"                                                           \
                                 "vmovdqa %%ymm4, %%ymm11\n\t"                                                           \
                                 "1:\n\t"                                                                              \
                                 MAC("ymm4", "ymm12") MAC("ymm5", "ymm13") MAC("ymm6", "ymm14") MAC("ymm7", "ymm15")     \
                                 MAC("ymm8", "ymm12") MAC("ymm9", "ymm13") MAC("ymm10", "ymm14") MAC("ymm11", "ymm15")   \
                                 "dec %[n]\n\t"                                                                        \
                                 "jnz 1b\n\t"                                                                          \
                                 : [n] "+r"(n)                                                                           \
                                 : [a] "x"(a), [b] "x"(b), [s] "x"(s), [ones] "x"(ones)                                  \
                                 : "xmm4", "xmm5", "xmm6", "xmm7", "xmm8", "xmm9", "xmm10", "xmm11", "xmm12", "xmm13",   \
                                   "xmm14", "xmm15", "cc");                                                              \
                double dt = now_s() - t0;                                                                                \
                return double(iters) * 8 * 32 / dt;                                                                      \
        }

// The three instructions an int8 GEMM takes per 32 products with AVX2:
// vpmaddubsw into int16 pairs, vpmaddwd against ones into int32, vpaddd.
#define BWQ_MAC3(acc, tmp)                                                                                                \
        "vpmaddubsw %[b], %[a], %%" tmp "\n\t"                                                                            \
        "vpmaddwd %[ones], %%" tmp ", %%" tmp "\n\t"                                                                      \
        "vpaddd %%" tmp ", %%" acc ", %%" acc "\n\t"
BWQ_AVX2_LOOP(avx2_loop, BWQ_MAC3)

// The exact form of the same 32 products when activations reach 255 (the
// AVX2 kernel's 8-bit path): vpsignb gives the weights the sign of a - 128,
// vpmaddubsw multiplies them by |a - 128|, then vpmaddwd and vpaddd as
// above.  Its rate against avx2_loop's is the most an exact 8-bit kernel
// can reach against a saturating one on this machine.
#define BWQ_MAC4(acc, tmp)                                                                                                \
        "vpsignb %[s], %[b], %%" tmp "\n\t"                                                                               \
        "vpmaddubsw %%" tmp ", %[a], %%" tmp "\n\t"                                                                       \
        "vpmaddwd %[ones], %%" tmp ", %%" tmp "\n\t"                                                                      \
        "vpaddd %%" tmp ", %%" acc ", %%" acc "\n\t"
BWQ_AVX2_LOOP(avx2_exact_loop, BWQ_MAC4)
#undef BWQ_MAC3
#undef BWQ_MAC4
#undef BWQ_AVX2_LOOP

// Pins the calling thread to one CPU (best effort: a refused pin leaves it
// where it is).
void pin_self(int cpu)
{
        cpu_set_t set;
        CPU_ZERO(&set);
        CPU_SET(cpu, &set);
        pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

// MACs per second on `threads` threads at once, each pinned to its own CPU.
double vnni_peak(unsigned threads, bool exact = false)
{
        const bool vnni = __builtin_cpu_supports("avx512vnni");
        auto loop = vnni ? vnni_loop : exact ? avx2_exact_loop : avx2_loop;
        const uint64_t iters = 20000000;
        std::vector<double> rate(threads);
        std::vector<std::thread> ts;
        for (unsigned t = 0; t < threads; t++)
                ts.emplace_back([&, t] {
                        pin_self(int(t));
                        loop(iters / 10);  // clocks up
                        rate[t] = loop(iters);
                });
        for (auto &t : ts)
                t.join();
        double sum = 0;
        for (double r : rate)
                sum += r;
        return sum;
}

// What a layer's second thread pays for rows the other CPU wrote: CPU 0
// reads a 256 KB buffer (one load a cache line) that CPU 1 has just
// written, then one it wrote itself; medians over 200 rounds, in GB/s.
// Two-thread layers read their neighbours' rows this way wherever a
// thread takes items of another's share, and a host may place the two
// vCPUs nearer or further apart from one minute to the next: the figure
// says which the two-thread rows met.
struct CrossRead {
        double cross_gbs = 0, local_gbs = 0;
};
CrossRead cross_cpu_read()
{
        CrossRead cr;
        if (std::thread::hardware_concurrency() < 2)
                return cr;
        const size_t n = size_t(256) << 10;
        const int rounds = 200;
        std::vector<uint8_t> buf(n);
        std::atomic<int> turn{0};
        std::vector<double> cross, local;
        volatile uint64_t sink = 0;
        auto read_lines = [&] {
                uint64_t sum = 0;
                for (size_t i = 0; i < n; i += 64)
                        sum += *reinterpret_cast<const volatile uint64_t *>(buf.data() + i);
                sink = sink + sum;
        };
        std::thread writer([&] {
                pin_self(1);
                for (int i = 0; i < rounds; i++) {
                        while (turn.load() != 2 * i + 1)
                                ;
                        std::memset(buf.data(), i, n);
                        turn.store(2 * i + 2);
                }
        });
        cpu_set_t saved;
        pthread_getaffinity_np(pthread_self(), sizeof saved, &saved);
        pin_self(0);
        for (int i = 0; i < rounds; i++) {
                turn.store(2 * i + 1);
                while (turn.load() != 2 * i + 2)
                        ;
                double t0 = now_s();
                read_lines();
                double t1 = now_s();
                std::memset(buf.data(), i, n);
                double t2 = now_s();
                read_lines();
                double t3 = now_s();
                cross.push_back(t1 - t0);
                local.push_back(t3 - t2);
        }
        writer.join();
        pthread_setaffinity_np(pthread_self(), sizeof saved, &saved);
        cr.cross_gbs = n / median(cross) / 1e9;
        cr.local_gbs = n / median(local) / 1e9;
        return cr;
}

void print_cross_read(const char *before)
{
        const CrossRead cr = cross_cpu_read();
        if (cr.local_gbs > 0)
                printf("%sCPU 0 reading 256 KB that CPU 1 just wrote: %.0f GB/s, %.2f of reading its own writes (%.0f GB/s)\n",
                       before, cr.cross_gbs, cr.cross_gbs / cr.local_gbs, cr.local_gbs);
}

std::string cpuinfo_field(const char *key)
{
        std::ifstream f("/proc/cpuinfo");
        std::string line;
        while (std::getline(f, line))
                if (line.rfind(key, 0) == 0) {
                        size_t c = line.find(':');
                        return c == std::string::npos ? "" : line.substr(c + 2);
                }
        return "?";
}

void bench_machine()
{
        printf("\n0. this machine's limits\n");
        const std::string flags = cpuinfo_field("flags");
        auto has = [&](const char *f) { return (" " + flags + " ").find(std::string(" ") + f + " ") != std::string::npos; };
        printf("   cpu: %s; vendor %s, family %s, model %s; %u CPUs\n", cpuinfo_field("model name").c_str(),
               cpuinfo_field("vendor_id").c_str(), cpuinfo_field("cpu family").c_str(), cpuinfo_field("model\t").c_str(),
               std::thread::hardware_concurrency());
        print_cross_read("   ");
        printf("   AVX-512:%s%s%s%s%s\n", has("avx512f") ? " F" : " none", has("avx512_vnni") ? " VNNI" : "",
               has("avx512_bf16") ? " BF16" : "", has("avx512_fp16") ? " FP16" : "", has("avx512_vp2intersect") ? " VP2INTERSECT" : "");
        const bool vnni = __builtin_cpu_supports("avx512vnni");
        if (!vnni && !__builtin_cpu_supports("avx2")) {
                printf("   neither AVX-512 VNNI nor AVX2: no MAC peak to compare with\n");
                return;
        }
        if (!vnni) {
                g_peak_name = "AVX2 int8 peak";
                printf("   no AVX-512 VNNI: the peak is AVX2's (vpmaddubsw, vpmaddwd, vpaddd per 32 MACs; vpmaddubsw's\n"
                       "   int16 pairs saturate above 32767, so an exact kernel pays more instructions at 8 bits)\n");
        }
        for (unsigned t : {1u, 2u}) {
                if (t > std::thread::hardware_concurrency())
                        break;
                std::vector<double> r;
                for (int i = 0; i < 5; i++)
                        r.push_back(vnni_peak(t));
                g_vnni_peak[t] = median(r);
                printf("   %s (register-only %s, %u thread%s): %.0f G MAC/s%s\n", g_peak_name,
                       vnni ? "vpdpbusd" : "vpmaddubsw+vpmaddwd+vpaddd", t, t > 1 ? "s" : "", g_vnni_peak[t] / 1e9,
                       t > 1 ? "" : " per core");
                if (vnni)
                        continue;
                r.clear();
                for (int i = 0; i < 5; i++)
                        r.push_back(vnni_peak(t, true));
                g_exact_peak[t] = median(r);
                printf("   exact 8-bit sequence (register-only vpsignb+vpmaddubsw+vpmaddwd+vpaddd, %u thread%s): %.0f G MAC/s\n"
                       "      = %.2f of the AVX2 int8 peak: the ceiling of npuref's exact 8-bit kernel against a saturating one\n",
                       t, t > 1 ? "s" : "", g_exact_peak[t] / 1e9, g_exact_peak[t] / g_vnni_peak[t]);
        }
}

void bench_quantize()
{
        const size_t n = size_t(16) << 20;  // 64 MiB of floats: far past the caches
        std::vector<float> src(n), dst(n);
        Rng rng{1};
        for (auto &x : src)
                x = rng.uniform(3.0f);
        std::vector<uint8_t> packed(n * 2);
        // Rounds of memcpy and then each depth once, after a warm-up round:
        // each depth's ratio is the median over the rounds of its time
        // against the same round's memcpy, so a host that changes speed
        // from one second to the next moves both sides of a ratio alike.
        const unsigned depths[] = {4, 6, 8, 16};
        const int rounds = 15;
        auto timed = [](const std::function<void()> &fn) {
                double t0 = now_s();
                fn();
                return now_s() - t0;
        };
        std::vector<double> tm, tq[4], ratio[4];
        for (int r = -1; r < rounds; r++) {
                const double m = timed([&] { std::memcpy(dst.data(), src.data(), n * 4); });
                for (int d = 0; d < 4; d++) {
                        const bwq::QParams p = bwq::qparams(-3.0f, 3.0f, depths[d]);
                        const double q = timed([&] { bwq::quantize_pack(src.data(), n, p, depths[d], packed.data()); });
                        if (r >= 0) {
                                tq[d].push_back(q);
                                ratio[d].push_back(m / q);
                        }
                }
                if (r >= 0)
                        tm.push_back(m);
        }
        printf("\n1. quantize-and-pack vs memcpy of the same %zu MiB float buffer: %d rounds of memcpy and each\n"
               "   depth once; medians, and each depth's ratio to its round's memcpy (their range in brackets)\n",
               n * 4 >> 20, rounds);
        printf("   memcpy: %.2f GB/s of floats\n", n * 4 / median(tm) / 1e9);
        printf("   %5s %14s %14s %18s\n", "bits", "GB/s floats", "Gelem/s", "vs memcpy");
        for (int d = 0; d < 4; d++) {
                char col[40];
                snprintf(col, sizeof col, "%.2f (%.2f-%.2f)", median(ratio[d]), *std::min_element(ratio[d].begin(), ratio[d].end()),
                         *std::max_element(ratio[d].begin(), ratio[d].end()));
                printf("   %5u %14.2f %14.2f %18s   (goal >= 0.9)\n", depths[d], n * 4 / median(tq[d]) / 1e9,
                       n / median(tq[d]) / 1e9, col);
        }
}

// One layer on npuref: the median device time of its job.
struct NpuLayer {
        npu_device *dev = nullptr;
        npu_graph *g = nullptr;
        npu_model *m = nullptr;
        std::vector<float> in, out;
        ~NpuLayer()
        {
                npu_model_free(m);
                npu_graph_free(g);
                npu_device_close(dev);
        }
        // The layer timed: 0 alone in its job, 1 between two neighbours.
        unsigned timed = 0;
        // One run's device time: the job's own nanoseconds, or the timed
        // layer's when it has neighbours.
        double run_ns()
        {
                npu_run_stats st;
                if (npu_model_run(m, in.data(), out.data(), &st) < 0) {
                        fprintf(stderr, "bench: run failed\n");
                        exit(1);
                }
                if (!timed)
                        return double(st.ns);
                npu_layer_stats ls;
                if (npu_model_layer_stats(m, timed, &ls) < 0) {
                        fprintf(stderr, "bench: no layer stats\n");
                        exit(1);
                }
                return double(ls.ns);
        }
        // reps runs' device times at `bits`, after two dropped ones.
        std::vector<double> times_ns(unsigned bits, int reps)
        {
                npu_model_set_mode(m, NPU_MODE_FIXED, bits, 4, 16);
                std::vector<double> t;
                for (int i = 0; i < reps + 2; i++) {
                        npu_run_stats st;
                        if (npu_model_run(m, in.data(), out.data(), &st) < 0) {
                                fprintf(stderr, "bench: run failed\n");
                                exit(1);
                        }
                        if (i >= 2)
                                t.push_back(double(st.ns));
                }
                if (getenv("BENCH_TRACE")) {
                        for (double v : t)
                                fprintf(stderr, " %.0f", v / 1e3);
                        fprintf(stderr, "\n");
                }
                return t;
        }
};

struct Shape {
        const char *name;
        bool fc;
        uint32_t n, h, w, c, oc, k, s, pad, groups;
};

// A 1x1 depthwise convolution (a per-channel scale): a cheap neighbour
// that cuts its rows into the same tiles as the layer next to it.
int scale_layer(npu_graph *g, int x, uint32_t channels, Rng &rng)
{
        std::vector<float> w(channels), b(channels);
        for (auto &v : w)
                v = 0.5f + rng.uniform(0.4f);
        for (auto &v : b)
                v = rng.uniform(0.1f);
        npu_conv2d_params p{};
        p.out_channels = channels;
        p.kernel_h = p.kernel_w = p.stride_h = p.stride_w = 1;
        p.groups = channels;
        return npu_graph_conv2d(g, x, &p, w.data(), b.data());
}

// The layer alone in a job, or (neighbours) between two scale layers, as
// inside a network: its input then comes from the device's threads, and
// its output goes to them, instead of from and to the calling thread.
std::unique_ptr<NpuLayer> npu_layer(const Shape &sh, unsigned threads, bool neighbours = false)
{
        auto L = std::make_unique<NpuLayer>();
        std::string dev = "soft:threads=" + std::to_string(threads);
        // BENCH_SOFT: more device options for the layers, e.g. pin=0.
        if (const char *more = getenv("BENCH_SOFT"))
                dev += std::string(",") + more;
        if (npu_device_open(dev.c_str(), &L->dev) < 0 || npu_graph_new(&L->g) < 0)
                exit(1);
        Rng rng{7};
        int x = npu_graph_input(L->g, sh.n, sh.h, sh.w, sh.c);
        if (neighbours) {
                x = scale_layer(L->g, x, sh.c, rng);
                L->timed = 1;
        }
        size_t K = sh.fc ? size_t(sh.h) * sh.w * sh.c : size_t(sh.k) * sh.k * (sh.c / sh.groups);
        std::vector<float> w(K * sh.oc), b(sh.oc);
        for (auto &v : w)
                v = rng.uniform(0.1f);
        for (auto &v : b)
                v = rng.uniform(0.1f);
        int y;
        if (sh.fc) {
                y = npu_graph_fully_connected(L->g, x, sh.oc, w.data(), b.data(), NPU_ACTIVATION_NONE);
        } else {
                npu_conv2d_params p{};
                p.out_channels = sh.oc;
                p.kernel_h = p.kernel_w = sh.k;
                p.stride_h = p.stride_w = sh.s;
                p.pad_top = p.pad_left = p.pad_bottom = p.pad_right = sh.pad;
                p.groups = sh.groups;
                y = npu_graph_conv2d(L->g, x, &p, w.data(), b.data());
        }
        if (neighbours && y >= 0)
                y = scale_layer(L->g, y, sh.oc, rng);
        if (y < 0)
                exit(1);
        L->in.resize(size_t(sh.n) * sh.h * sh.w * sh.c);
        for (auto &v : L->in)
                v = rng.uniform(1.0f);
        npu_compile_options co{L->in.data()};
        if (npu_model_compile(L->dev, L->g, &co, &L->m) < 0)
                exit(1);
        L->out.resize(npu_model_output_elements(L->m));
        return L;
}

// Random bytes, as npuref's layers get them from random floats: full-range
// weights and inputs, so that the peer multiplies the same kind of data
// (it had weights of 1 and inputs of 17; a multiply-add draws power by the
// bits it flips, where a host limits power).  On family 26 its times did
// not move (1x1 56x56 64->64 40.6-40.7 against 40.9-41.9 us).
void random_bytes(void *p, size_t n, uint64_t seed, bool weights)
{
        Rng rng{seed};
        uint8_t *b = static_cast<uint8_t *>(p);
        for (size_t i = 0; i < n; i++)
                b[i] = weights ? uint8_t(int8_t(int(rng.next() % 255) - 127)) : uint8_t(rng.next());
}

// The same layer on oneDNN: u8 source, s8 weights, f32 bias, u8 destination
// with per-output-channel scales (what npuref computes at 8 bits), on
// random data (random_bytes).
struct DnnlLayer {
        dnnl::engine eng{dnnl::engine::kind::cpu, 0};
        dnnl::stream s{eng};
        std::unique_ptr<dnnl::primitive> prim;
        std::unordered_map<int, dnnl::memory> args;
        explicit DnnlLayer(const Shape &sh);
        double run_ns()
        {
                double t0 = now_s();
                prim->execute(s, args);
                s.wait();
                return (now_s() - t0) * 1e9;
        }
        // What npu_model_run's host conversions do to the device's buffers
        // between runs: the calling thread writes the layer's input and
        // reads its output (not timed, on either side).
        std::vector<uint8_t> host_src, host_dst;
        void host_touch()
        {
                dnnl::memory &src = args.at(DNNL_ARG_SRC), &dst = args.at(DNNL_ARG_DST);
                host_dst.resize(dst.get_desc().get_size());
                std::memcpy(src.get_data_handle(), host_src.data(), host_src.size());
                std::memcpy(host_dst.data(), dst.get_data_handle(), host_dst.size());
        }
};

DnnlLayer::DnnlLayer(const Shape &sh)
{
        using namespace dnnl;
        using dt = memory::data_type;
        using tag = memory::format_tag;
        std::vector<float> scales(sh.oc, 0.01f);
        primitive_attr attr;
        attr.set_output_scales(2, scales);
        if (sh.fc) {
                memory::dim M = sh.n, K = memory::dim(sh.h) * sh.w * sh.c, N = sh.oc;
                memory::desc a_md({M, K}, dt::u8, tag::ab), w_md({K, N}, dt::s8, tag::any), b_md({1, N}, dt::f32, tag::ab),
                        d_md({M, N}, dt::u8, tag::ab);
                matmul::primitive_desc pd(matmul::desc(a_md, w_md, b_md, d_md), attr, eng);
                memory wu({{K, N}, dt::s8, tag::ab}, eng), w(pd.weights_desc(), eng);
                random_bytes(wu.get_data_handle(), K * N, 5, true);
                reorder(wu, w).execute(s, wu, w);
                args = {{DNNL_ARG_SRC, memory(a_md, eng)}, {DNNL_ARG_WEIGHTS, w}, {DNNL_ARG_BIAS, memory(b_md, eng)},
                        {DNNL_ARG_DST, memory(d_md, eng)}};
                prim = std::make_unique<matmul>(pd);
        } else {
                memory::dim N = sh.n, C = sh.c, H = sh.h, W = sh.w, OC = sh.oc, KK = sh.k, G = sh.groups;
                memory::dim OH = (H + 2 * sh.pad - KK) / sh.s + 1, OW = (W + 2 * sh.pad - KK) / sh.s + 1;
                memory::desc src({N, C, H, W}, dt::u8, tag::nhwc), dst({N, OC, OH, OW}, dt::u8, tag::nhwc),
                        bias({OC}, dt::f32, tag::x);
                memory::dims wdims = G > 1 ? memory::dims{G, OC / G, C / G, KK, KK} : memory::dims{OC, C, KK, KK};
                memory::desc wany(wdims, dt::s8, tag::any);
                convolution_forward::desc cd(prop_kind::forward_inference, algorithm::convolution_direct, src, wany, bias,
                                             dst, {sh.s, sh.s}, {sh.pad, sh.pad}, {sh.pad, sh.pad});
                convolution_forward::primitive_desc pd(cd, attr, eng);
                memory wu({wdims, dt::s8, G > 1 ? tag::goihw : tag::oihw}, eng), w(pd.weights_desc(), eng);
                random_bytes(wu.get_data_handle(), wu.get_desc().get_size(), 5, true);
                reorder(wu, w).execute(s, wu, w);
                args = {{DNNL_ARG_SRC, memory(pd.src_desc(), eng)}, {DNNL_ARG_WEIGHTS, w},
                        {DNNL_ARG_BIAS, memory(bias, eng)}, {DNNL_ARG_DST, memory(pd.dst_desc(), eng)}};
                prim = std::make_unique<convolution_forward>(pd);
        }
        // The input: the in-network runs read it as it is, the host-touched
        // runs write the same bytes over it first.
        const dnnl::memory &src = args.at(DNNL_ARG_SRC);
        host_src.resize(src.get_desc().get_size());
        random_bytes(host_src.data(), host_src.size(), 17, false);
        std::memcpy(src.get_data_handle(), host_src.data(), host_src.size());
        s.wait();
}

// Whether the peer's u8 x s8 sums are exact on this machine: a 64 x 1024 x
// 256 GEMM of full-range bytes to int32 against the sums in int64.  npuref's
// are exact on every instruction set (test_kernels compares them bit for
// bit); a peer that adds byte products in saturating int16 pairs (AVX2's
// vpmaddubsw, without VNNI) is not, and that is part of its speed there.
void peer_exactness()
{
        using namespace dnnl;
        const memory::dim M = 64, K = 1024, N = 256;
        engine eng{engine::kind::cpu, 0};
        stream st{eng};
        const memory::desc a_md({M, K}, memory::data_type::u8, memory::format_tag::ab);
        const memory::desc b_md({K, N}, memory::data_type::s8, memory::format_tag::any);
        const memory::desc c_md({M, N}, memory::data_type::s32, memory::format_tag::ab);
        const matmul::primitive_desc pd(matmul::desc(a_md, b_md, c_md), eng);
        std::vector<uint8_t> A(size_t(M * K));
        std::vector<int8_t> B(size_t(K * N));
        random_bytes(A.data(), A.size(), 11, false);
        random_bytes(B.data(), B.size(), 12, true);
        memory am(a_md, eng, A.data());
        memory plain({{K, N}, memory::data_type::s8, memory::format_tag::ab}, eng, B.data());
        memory bm(pd.weights_desc(), eng), cm(c_md, eng);
        reorder(plain, bm).execute(st, plain, bm);
        matmul(pd).execute(st, {{DNNL_ARG_SRC, am}, {DNNL_ARG_WEIGHTS, bm}, {DNNL_ARG_DST, cm}});
        st.wait();
        const int32_t *C = static_cast<const int32_t *>(cm.get_data_handle());
        long wrong = 0;
        int64_t worst = 0;
        for (memory::dim m = 0; m < M; m++)
                for (memory::dim n = 0; n < N; n++) {
                        int64_t e = 0;
                        for (memory::dim k = 0; k < K; k++)
                                e += int64_t(A[size_t(m * K + k)]) * B[size_t(k * N + n)];
                        const int64_t d = std::llabs(e - C[m * N + n]);
                        wrong += d != 0;
                        worst = std::max(worst, d);
                }
        printf("   oneDNN's u8 x s8 sums on this machine (%s): %ld of %ld outputs of a 64x1024x256 GEMM\n"
               "   of full-range bytes differ from the exact sums (largest error %lld); npuref's are exact.\n",
               pd.impl_info_str(), wrong, long(M * N), static_cast<long long>(worst));
}

void bench_layers()
{
        const Shape shapes[] = {
                {"GEMM 256x1024x1024", true, 256, 1, 1, 1024, 1024, 1, 1, 0, 1},
                {"conv 1x1 56x56 64->64", false, 1, 56, 56, 64, 64, 1, 1, 0, 1},
                {"conv 1x1 28x28 32->192", false, 1, 28, 28, 32, 192, 1, 1, 0, 1},
                {"conv 3x3 56x56 32->32", false, 1, 56, 56, 32, 32, 3, 1, 1, 1},
                {"depthwise 3x3 56x56x144", false, 1, 56, 56, 144, 144, 3, 1, 1, 144},
        };
        // Blocks of runs alternate between the two, so that both see the
        // same machine; each block's first runs (caches refilled and
        // threads woken after the other's) are dropped.  Between blocks both sides' idle threads
        // (npuref's spin up to 1 ms, OpenMP's several) are let go to sleep
        // first, so neither block runs against the other's spinning threads.
        const int blocks = 9, warm = 3, per_block = 6, reps = blocks * per_block;
        printf("\n2. npuref at 8 bits vs oneDNN int8 (u8 x s8 -> u8, per-channel scales), median of %d runs\n"
               "   each, in %d alternating blocks (each after %d warm-up runs) so all see the same machine.\n"
               "   in network: npuref's layer between two 1x1 depthwise layers of the same job (its own time,\n"
               "   from its layer stats), against oneDNN with its buffers left alone between runs: on both\n"
               "   sides each thread finds its rows of the input in its own cache and leaves its rows of the\n"
               "   output there, as inside a network.\n"
               "   alone: npuref's layer alone in a job (the job's time), whose input the calling thread writes\n"
               "   and whose output it reads between runs (npu_model_run's conversions), against oneDNN with the\n"
               "   same done to its buffers: with 2 threads the other CPU's rows cross between the CPUs' caches\n"
               "   every run.  The goal is the in-network ratio.\n", reps, blocks, warm);
        peer_exactness();
        printf("   %-26s %3s %13s %13s %8s   %13s %13s %8s\n", "shape", "thr", "net:npuref_us", "net:onednn_us", "ratio",
               "alone:npuref", "alone:onednn", "ratio");
        std::vector<std::unique_ptr<NpuLayer>> keep;
        std::vector<const char *> kept;
        // BENCH_SHAPE: only the shapes whose name contains it; BENCH_THREADS:
        // only that thread count (both to look at one figure closely).
        const char *only = getenv("BENCH_SHAPE"), *only_thr = getenv("BENCH_THREADS");
        for (unsigned threads : {1u, 2u}) {
                if (only_thr && unsigned(atoi(only_thr)) != threads)
                        continue;
                if (threads > 1)
                        print_cross_read("   two threads, the CPUs now: ");
                omp_set_num_threads(int(threads));
                for (const Shape &sh : shapes) {
                        if (only && !strstr(sh.name, only))
                                continue;
                        auto L = npu_layer(sh, threads), N = npu_layer(sh, threads, true);
                        npu_model_set_mode(L->m, NPU_MODE_FIXED, 8, 4, 16);
                        npu_model_set_mode(N->m, NPU_MODE_FIXED, 8, 4, 16);
                        DnnlLayer D(sh);
                        std::vector<double> a, an, b, c;
                        auto settle = [] { usleep(30000); };
                        for (int i = 0; i < blocks; i++) {
                                for (NpuLayer *X : {L.get(), N.get()}) {
                                        settle();
                                        for (int j = 0; j < warm + per_block; j++) {
                                                double x = X->run_ns();
                                                if (getenv("BENCH_TRACE"))
                                                        fprintf(stderr, " %.0f%s", x / 1e3, j + 1 == warm + per_block ? " |" : "");
                                                if (j >= warm)
                                                        (X == L.get() ? a : an).push_back(x);
                                        }
                                }
                                for (bool touch : {true, false}) {
                                        settle();
                                        for (int j = 0; j < warm + per_block; j++) {
                                                if (touch)
                                                        D.host_touch();
                                                double y = D.run_ns();
                                                if (getenv("BENCH_TRACE"))
                                                        fprintf(stderr, " %.0f%s", y / 1e3, j + 1 == warm + per_block ? " |" : "");
                                                if (j >= warm)
                                                        (touch ? b : c).push_back(y);
                                        }
                                }
                        }
                        const double ours = median(an), theirs = median(c), alone = median(a), alone_peer = median(b);
                        printf("   %-26s %3u %13.1f %13.1f %8.2f   %13.1f %13.1f %8.2f   (onednn/npuref; goal >= 0.9 in network)\n",
                               sh.name, threads, ours / 1e3, theirs / 1e3, theirs / ours, alone / 1e3, alone_peer / 1e3,
                               alone_peer / alone);
                        if (sh.fc && g_vnni_peak[threads] > 0) {
                                const double macs = double(sh.n) * double(sh.c) * double(sh.oc);
                                printf("   %-26s     in network: npuref %.0f G MAC/s = %.2f of the %s (goal >= 0.85); oneDNN %.2f\n", "",
                                       macs / ours, macs / ours * 1e9 / g_vnni_peak[threads], g_peak_name,
                                       macs / theirs * 1e9 / g_vnni_peak[threads]);
                                if (g_exact_peak[threads] > 0)
                                        printf("   %-26s     npuref = %.2f of the exact 8-bit sequence's peak\n", "",
                                               macs / ours * 1e9 / g_exact_peak[threads]);
                        }
                        if (threads == 1) {
                                keep.push_back(std::move(L));
                                kept.push_back(sh.name);
                        }
                }
        }
        printf("\n3. other depths vs the 8-bit path (npuref, 1 thread, the depths in %d alternating blocks of %d\n"
               "   runs so that each sees the same machine): each block's median against its 8-bit median, the\n"
               "   median of those ratios over the blocks and (in brackets) their least and greatest, which\n"
               "   show how much the machine moved; 8b_us is the median of all %d 8-bit runs\n",
               blocks, per_block, reps);
        printf("   %-26s %10s %17s %17s %17s\n", "shape", "8b_us", "4b/8b", "6b/8b", "16b/8b");
        for (size_t i = 0; i < keep.size(); i++) {
                const unsigned depths[] = {8, 4, 6, 16};
                std::vector<double> all8, ratio[4];
                for (int b = 0; b < blocks; b++) {
                        double block[4];
                        for (int d = 0; d < 4; d++) {
                                std::vector<double> r = keep[i]->times_ns(depths[d], per_block);
                                block[d] = median(r);
                                if (d == 0)
                                        all8.insert(all8.end(), r.begin(), r.end());
                        }
                        for (int d = 1; d < 4; d++)
                                ratio[d].push_back(block[d] / block[0]);
                }
                char col[4][40];
                for (int d = 1; d < 4; d++)
                        snprintf(col[d], sizeof col[d], "%.2f (%.2f-%.2f)", median(ratio[d]),
                                 *std::min_element(ratio[d].begin(), ratio[d].end()),
                                 *std::max_element(ratio[d].begin(), ratio[d].end()));
                printf("   %-26s %10.1f %17s %17s %17s   (time ratios; goal 4b, 6b <= 1.05)\n", kept[i],
                       median(all8) / 1e3, col[1], col[2], col[3]);
        }
}

void bench_network()
{
        const int reps = 9;
        printf("\n4. npu-run's network (MobileNet-V2 shape, 224x224, 54 layers), 2 threads, median of %d\n", reps);
        npu_device *dev;
        npu_graph *g;
        npu_model *m;
        MobileNetOptions o;
        if (npu_device_open("soft:threads=2", &dev) < 0 || mobilenet_v2_build(o, &g) < 0)
                exit(1);
        std::vector<float> in = mobilenet_v2_input(o);
        npu_compile_options co{in.data()};
        if (npu_model_compile(dev, g, &co, &m) < 0)
                exit(1);
        std::vector<float> out(npu_model_output_elements(m));
        printf("   %5s %12s %18s %12s\n", "bits", "latency_ms", "activation_bytes", "vs_16bit");
        double t16 = 0;
        std::vector<std::pair<unsigned, double>> rows;
        std::vector<uint64_t> bytes;
        for (unsigned bits : {16u, 8u, 6u, 4u}) {
                npu_model_set_mode(m, NPU_MODE_FIXED, bits, 4, 16);
                std::vector<double> t;
                npu_run_stats st{};
                for (int i = 0; i < reps + 1; i++) {
                        if (npu_model_run(m, in.data(), out.data(), &st) < 0)
                                exit(1);
                        if (i)
                                t.push_back(double(st.ns));
                }
                double med = median(t);
                if (bits == 16)
                        t16 = med;
                printf("   %5u %12.2f %18llu %12.2f   (latency ratio to 16 bits)\n", bits, med / 1e6,
                       (unsigned long long)st.activation_bytes, med / t16);
        }
        npu_model_free(m);
        npu_graph_free(g);
        npu_device_close(dev);
}

} // namespace

int main(int argc, char **argv)
{
        // Sections by name (quantize, layers, network); all without arguments.
        auto want = [&](const char *name) {
                if (argc < 2)
                        return true;
                for (int i = 1; i < argc; i++)
                        if (!strcmp(argv[i], name))
                                return true;
                return false;
        };
        for (int i = 1; i < argc; i++)
                if (strcmp(argv[i], "machine") && strcmp(argv[i], "quantize") && strcmp(argv[i], "layers") && strcmp(argv[i], "network")) {
                        fprintf(stderr, "usage: bench_npu [machine] [quantize] [layers] [network]\n");
                        return 2;
                }
        printf("bwq bench (driver side): medians; this machine is shared, so figures move between runs.\n");
        if (want("machine") || want("layers"))
                bench_machine();
        if (want("quantize"))
                bench_quantize();
        if (want("layers"))
                bench_layers();
        if (want("network"))
                bench_network();
        return 0;
}

// End-to-end checks of libnpu following bwqd (run by e2e_test.sh with a
// private bus and bwqd on it; $BWQ_BUS names the bus).
//
//   e2e_client follow   BWQ_LAYER: while the decision flips between 16 and
//                       4 bits (SetTable), every layer's depth is the one in
//                       force when it, or the layer before it, started
//   e2e_client model    BWQ_MODEL: one depth per run, the decision after
//                       the run's fresh Sample()
#include <systemd/sd-bus.h>
#include <time.h>

#include <atomic>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <set>
#include <thread>
#include <vector>

#include "common/clock.h"
#include "driver/mobilenet/mobilenet.h"
#include "npu/npu.h"

namespace {

uint64_t now_ns() { return bwq::monotonic_ns(); }

int fails = 0;
void check(bool ok, const char *what)
{
        printf("%s - %s\n", ok ? "ok" : "not ok", what);
        fails += !ok;
}

sd_bus *open_bus()
{
        sd_bus *bus;
        const char *addr = getenv("BWQ_BUS");
        if (!addr || sd_bus_new(&bus) < 0 || sd_bus_set_address(bus, addr) < 0 || sd_bus_set_bus_client(bus, 1) < 0 ||
            sd_bus_start(bus) < 0) {
                fprintf(stderr, "e2e: cannot connect to $BWQ_BUS\n");
                exit(2);
        }
        return bus;
}

// One-row table: every available bandwidth gives `bits`.
int set_bits(sd_bus *bus, unsigned bits)
{
        sd_bus_error e = SD_BUS_ERROR_NULL;
        int r = sd_bus_call_method(bus, "org.bwq1", "/org/bwq1", "org.bwq1.Manager", "SetTable", &e, nullptr, "a(ty)", 1,
                                   uint64_t(0), uint8_t(bits));
        if (r < 0)
                fprintf(stderr, "e2e: SetTable: %s\n", e.message ? e.message : strerror(-r));
        sd_bus_error_free(&e);
        return r;
}

struct Net {
        npu_device *dev;
        npu_graph *g;
        npu_model *m;
        std::vector<float> in, out;
        explicit Net(uint32_t mode)
        {
                MobileNetOptions o;
                o.size = 160;
                o.classes = 10;
                if (npu_device_open("soft:threads=1", &dev) < 0 || mobilenet_v2_build(o, &g) < 0)
                        exit(2);
                in = mobilenet_v2_input(o);
                npu_compile_options co{in.data(), "e2e"};
                if (npu_model_compile(dev, g, &co, &m) < 0 || npu_model_set_mode(m, mode, 8, 4, 16) < 0)
                        exit(2);
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
                npu_run_stats st{};
                int r = npu_model_run(m, in.data(), out.data(), &st);
                if (r < 0) {
                        fprintf(stderr, "e2e: run: %s\n", strerror(-r));
                        exit(1);
                }
                return st;
        }
        // Runs until the model has bwqd's page (registration is asynchronous).
        bool wait_registered()
        {
                for (int i = 0; i < 200; i++)
                        if (!(run().flags & NPU_RUN_FALLBACK))
                                return true;
                return false;
        }
};

int follow()
{
        sd_bus *bus = open_bus();
        set_bits(bus, 16);
        Net net(NPU_MODE_BWQ_LAYER);
        check(net.wait_registered(), "BWQ_LAYER: the model registered and reads bwqd's page");
        // Flip the decision every 3 ms while the network runs; remember when
        // each flip was sent and when its reply (after the page write) came.
        struct Flip {
                uint64_t sent, done;
                unsigned bits;
        };
        std::vector<Flip> flips;
        std::mutex mu;
        std::atomic<bool> stop{false};
        std::thread flipper([&] {
                sd_bus *b = open_bus();
                unsigned bits = 4;
                while (!stop) {
                        uint64_t a = now_ns();
                        set_bits(b, bits);
                        uint64_t z = now_ns();
                        {
                                std::lock_guard<std::mutex> lk(mu);
                                flips.push_back({a, z, bits});
                        }
                        bits = bits == 4 ? 16 : 4;
                        std::this_thread::sleep_for(std::chrono::milliseconds(3));
                }
                sd_bus_flush_close_unref(b);
        });
        std::vector<npu_layer_stats> layers;
        // At least 10 runs and 40 flips (runs of a millisecond or two would
        // otherwise see few flips), at most 2000 runs.
        auto flipped = [&] {
                std::lock_guard<std::mutex> lk(mu);
                return flips.size();
        };
        std::set<size_t> first_layer;  // indices in layers of each run's first layer
        for (int run = 0; run < 2000 && (run < 10 || flipped() < 40); run++) {
                npu_run_stats st = net.run();
                first_layer.insert(layers.size());
                for (unsigned l = 0; l < st.layer_count; l++) {
                        npu_layer_stats ls;
                        npu_model_layer_stats(net.m, l, &ls);
                        layers.push_back(ls);
                }
        }
        stop = true;
        flipper.join();
        // The depth in force at time t: the last flip finished before t;
        // a flip in flight at t may or may not have landed.
        auto allowed = [&](uint64_t t, unsigned bits) {
                unsigned before = 16;
                bool in_flight = false;
                for (const auto &f : flips) {
                        if (f.done <= t)
                                before = f.bits;
                        else if (f.sent <= t)
                                in_flight = in_flight || f.bits == bits;
                }
                return bits == before || in_flight;
        };
        unsigned ok = 0, bad = 0, changes = 0, inside = 0;
        for (size_t i = 0; i < layers.size(); i++) {
                const auto &ls = layers[i];
                // Within one layer: in force when this layer or the one before started.
                bool good = allowed(ls.start_ns, ls.bits) || (i > 0 && allowed(layers[i - 1].start_ns, ls.bits));
                if (good)
                        ok++;
                else {
                        bad++;
                        if (bad <= 5)
                                fprintf(stderr, "e2e: layer %zu started at %llu with %u bits\n", i % 64,
                                        (unsigned long long)ls.start_ns, ls.bits);
                }
                if (i > 0 && ls.bits != layers[i - 1].bits) {
                        changes++;
                        if (first_layer.count(i) == 0)
                                inside++;
                }
        }
        char buf[200];
        snprintf(buf, sizeof buf, "BWQ_LAYER: %u of %zu layers took the decision in force within one layer (%zu flips, %u depth changes between layers)",
                 ok, layers.size(), flips.size(), changes);
        check(bad == 0, buf);
        snprintf(buf, sizeof buf, "BWQ_LAYER: the depth changed inside runs, layer by layer (%u changes between two layers of one run)",
                 inside);
        check(inside >= 5, buf);
        set_bits(bus, 16);
        sd_bus_flush_close_unref(bus);
        return fails ? 1 : 0;
}

int model()
{
        sd_bus *bus = open_bus();
        set_bits(bus, 16);
        Net net(NPU_MODE_BWQ_MODEL);
        check(net.wait_registered(), "BWQ_MODEL: the model registered and reads bwqd's page");
        unsigned good = 0;
        const unsigned seq[] = {6, 16, 4, 8, 8, 16, 6, 4};
        for (unsigned want : seq) {
                set_bits(bus, want);
                npu_run_stats st = net.run();
                bool one = st.min_layer_bits == st.max_layer_bits && st.min_layer_bits == st.model_bits;
                if (one && st.model_bits == want)
                        good++;
                else
                        fprintf(stderr, "e2e: wanted %u, model_bits %u, layers %u..%u\n", want, st.model_bits, st.min_layer_bits,
                                st.max_layer_bits);
        }
        char buf[160];
        snprintf(buf, sizeof buf, "BWQ_MODEL: %u of %zu runs used one depth, the decision after their Sample()", good,
                 sizeof seq / sizeof seq[0]);
        check(good == sizeof seq / sizeof seq[0], buf);
        set_bits(bus, 16);
        sd_bus_flush_close_unref(bus);
        return fails ? 1 : 0;
}

} // namespace

int main(int argc, char **argv)
{
        if (argc == 2 && strcmp(argv[1], "follow") == 0)
                return follow();
        if (argc == 2 && strcmp(argv[1], "model") == 0)
                return model();
        fprintf(stderr, "usage: e2e_client follow|model\n");
        return 2;
}

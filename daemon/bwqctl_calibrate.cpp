// bwqctl calibrate: the maximum bandwidth measured with streaming threads,
// stored in the state directory for bwqd to read on reload.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/stream.h"
#include "common/units.h"

#include "bwqctl.h"
#include "common/bus.h"

namespace bwqctl {

using namespace bwq::dbus;

// Streams with `threads` threads for `seconds` and returns the total bytes/s
// read and written (memcpy moves each byte twice).
static double measure_stream(unsigned threads, double seconds)
{
        bwq::Streamer st({threads, 128u << 20, 100});
        st.wait_started();
        const uint64_t m0 = st.moved(), t0 = bwq::monotonic_ns();
        std::this_thread::sleep_for(std::chrono::duration<double>(seconds));
        const uint64_t m1 = st.moved(), t1 = bwq::monotonic_ns();
        st.stop();
        return double(m1 - m0) * 1e9 / double(t1 - t0);
}

int cmd_calibrate(const std::string &bus_spec, unsigned threads, double seconds, const std::string &state_dir)
{
        if (!threads)
                threads = std::max(1u, std::thread::hardware_concurrency());
        double bps = measure_stream(threads, seconds);
        std::string path = state_dir + "/max-bandwidth";
        if (mkdir(state_dir.c_str(), 0755) < 0 && errno != EEXIST) {
                fprintf(stderr, "bwqctl: calibrate: cannot create %s: %s\n", state_dir.c_str(), strerror(errno));
                return EXIT_FAIL;
        }
        std::string tmp = path + ".tmp";
        {
                std::ofstream f(tmp);
                f << uint64_t(bps) << "\n";
                if (!f) {
                        fprintf(stderr, "bwqctl: calibrate: cannot write %s\n", tmp.c_str());
                        return EXIT_FAIL;
                }
        }
        if (rename(tmp.c_str(), path.c_str()) < 0) {
                fprintf(stderr, "bwqctl: calibrate: cannot write %s: %s\n", path.c_str(), strerror(errno));
                return EXIT_FAIL;
        }
        if (json)
                printf("{\"max_bps\":%llu,\"threads\":%u,\"seconds\":%g,\"path\":%s}\n", (unsigned long long)bps, threads, seconds,
                       json_str(path).c_str());
        else
                printf("maximum bandwidth: %s (%u streaming threads, %g s), stored in %s\n",
                       bwq::format_bandwidth(uint64_t(bps)).c_str(), threads, seconds, path.c_str());
        // bwqd takes it on its next reload when [Bandwidth] Max= is not set.
        if (bwq::BusPtr bus = connect(bus_spec)) {
                bwq::BusError e;
                if (sd_bus_call_method(bus.get(), kService, kPath, kManager, "Reload", e.get(), nullptr, "") < 0)
                        fprintf(stderr, "bwqctl: calibrate: bwqd was not reloaded (%s); it reads %s when it next starts or reloads\n",
                                e.e.message ? e.e.message : "unreachable", path.c_str());
        }
        return EXIT_OK;
}

} // namespace bwqctl

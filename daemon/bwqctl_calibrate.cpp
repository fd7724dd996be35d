// bwqctl calibrate: the maximum bandwidth measured with streaming threads,
// stored in the state directory for bwqd to read on reload.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <chrono>
#include <string>
#include <thread>

#include "common/clock.h"
#include "common/stream.h"
#include "common/text.h"
#include "common/unique_fd.h"
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

// Writes the value to STATE/max-bandwidth, replacing it atomically.  The
// directory must be ours (or root's) and writable by no one else: in a
// directory another user controls, any file we write could be swapped for a
// link to one of ours.  The temporary file is created new (O_EXCL, never
// through a link) and renamed over the old one.
static int store_calibration(const std::string &state_dir, uint64_t bps, std::string *why)
{
        const std::string dir = bwq::escape_text(state_dir);
        if (mkdir(state_dir.c_str(), 0755) < 0 && errno != EEXIST) {
                *why = "cannot create " + dir + ": " + strerror(errno);
                return -errno;
        }
        bwq::unique_fd dfd(open(state_dir.c_str(), O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC));
        if (!dfd) {
                int e = errno;
                *why = dir + ": " + (e == ELOOP || e == ENOTDIR ? "not a directory (or a symbolic link)" : strerror(e));
                return -e;
        }
        struct stat st;
        if (fstat(dfd.get(), &st) < 0) {
                *why = dir + ": " + strerror(errno);
                return -errno;
        }
        if ((st.st_uid != 0 && st.st_uid != geteuid()) || (st.st_mode & 022)) {
                *why = dir + " is owned by uid " + std::to_string(st.st_uid) + " with mode " +
                       std::to_string((st.st_mode >> 6) & 7) + std::to_string((st.st_mode >> 3) & 7) +
                       std::to_string(st.st_mode & 7) + ": another user could replace what is written there; "
                       "it must belong to root (or to us) and be writable by no one else";
                return -EPERM;
        }
        char tmp[64];
        bwq::unique_fd fd;
        for (unsigned i = 0; i < 100 && !fd; i++) {
                snprintf(tmp, sizeof tmp, "max-bandwidth.%d.%u.tmp", int(getpid()), i);
                fd.reset(openat(dfd.get(), tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0644));
                if (!fd && errno != EEXIST)
                        break;
        }
        if (!fd) {
                *why = "cannot create a file in " + dir + ": " + strerror(errno);
                return -errno;
        }
        std::string text = std::to_string(bps) + "\n";
        if (write(fd.get(), text.data(), text.size()) != ssize_t(text.size()) || fsync(fd.get()) < 0 ||
            renameat(dfd.get(), tmp, dfd.get(), "max-bandwidth") < 0) {
                int e = errno ? errno : EIO;
                (void)unlinkat(dfd.get(), tmp, 0);
                *why = "cannot write " + dir + "/max-bandwidth: " + strerror(e);
                return -e;
        }
        return 0;
}

int cmd_calibrate(const std::string &bus_spec, unsigned threads, double seconds, const std::string &state_dir)
{
        if (!threads)
                threads = std::max(1u, std::thread::hardware_concurrency());
        double bps = measure_stream(threads, seconds);
        std::string path = state_dir + "/max-bandwidth", why;
        if (store_calibration(state_dir, uint64_t(bps), &why) < 0) {
                fprintf(stderr, "bwqctl: calibrate: %s\n", why.c_str());
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

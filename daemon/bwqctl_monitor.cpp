// bwqctl monitor: one line per change of bwqd's decision.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <time.h>

#include <string>

#include "common/units.h"

#include "bwqctl.h"
#include "common/bus.h"

namespace bwqctl {

using namespace bwq::dbus;

static std::string now_text()
{
        timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        struct tm tm;
        localtime_r(&ts.tv_sec, &tm);
        char b[32];
        strftime(b, sizeof b, "%H:%M:%S", &tm);
        char out[48];
        snprintf(out, sizeof out, "%s.%03ld", b, ts.tv_nsec / 1000000);
        return out;
}

static int on_change(sd_bus_message *, void *userdata, sd_bus_error *)
{
        *static_cast<bool *>(userdata) = true;
        return 0;
}

int cmd_monitor(sd_bus *bus)
{
        bool changed = false;
        std::string match = std::string("type='signal',sender='") + kService + "'";
        int r = sd_bus_add_match(bus, nullptr, match.c_str(), on_change, &changed);
        if (r < 0) {
                fprintf(stderr, "bwqctl: cannot watch bwqd's signals: %s\n", strerror(-r));
                return EXIT_FAIL;
        }
        std::string last;
        for (;;) {
                Status st;
                bwq::BusError e;
                r = get_status(bus, &st, e.get());
                if (r < 0)
                        return error_exit("monitor", e.get(), r);
                char line[512];
                snprintf(line, sizeof line, "bits %2u  section %u  available %-12s used %-12s %s%s  clients: %s", st.bits,
                         st.section, bwq::format_bandwidth(st.available).c_str(), bwq::format_bandwidth(st.used).c_str(),
                         st.source.c_str(), st.stale ? " STALE" : "", clients_line(st).c_str());
                if (line != last) {
                        if (json)
                                print_status(st);
                        else
                                printf("%s  %s\n", now_text().c_str(), line);
                        fflush(stdout);
                        last = line;
                }
                changed = false;
                while (!changed) {
                        r = sd_bus_process(bus, nullptr);
                        if (r < 0) {
                                fprintf(stderr, "bwqctl: monitor: %s\n", strerror(-r));
                                return EXIT_FAIL;
                        }
                        if (r == 0 && !changed && (r = sd_bus_wait(bus, UINT64_MAX)) < 0) {
                                fprintf(stderr, "bwqctl: monitor: %s\n", strerror(-r));
                                return EXIT_FAIL;
                        }
                }
        }
}

} // namespace bwqctl

// bwqctl: connecting to the bus and turning errors into exit codes.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <string>

#include "bwqctl.h"
#include "common/bus.h"

namespace bwqctl {

using namespace bwq::dbus;

bwq::BusPtr connect(const std::string &spec)
{
        sd_bus *bus = nullptr;
        int r = bwq::bus_open(spec, &bus);
        if (r < 0)
                fprintf(stderr, "bwqctl: cannot connect to the %s bus: %s\n", spec.c_str(), strerror(-r));
        return bwq::BusPtr(r < 0 ? nullptr : bus);
}

int error_exit(const char *what, const sd_bus_error *e, int r)
{
        if (sd_bus_error_is_set(e)) {
                fprintf(stderr, "bwqctl: %s: %s\n", what, e->message ? e->message : e->name);
                if (sd_bus_error_has_name(e, SD_BUS_ERROR_ACCESS_DENIED))
                        return EXIT_DENIED;
                if (sd_bus_error_has_name(e, SD_BUS_ERROR_SERVICE_UNKNOWN) || sd_bus_error_has_name(e, SD_BUS_ERROR_NAME_HAS_NO_OWNER))
                        return EXIT_NOBWQD;
                return EXIT_FAIL;
        }
        fprintf(stderr, "bwqctl: %s: %s\n", what, strerror(-r));
        return EXIT_FAIL;
}

} // namespace bwqctl

#include "bus.h"

#include <systemd/sd-bus.h>

namespace bwq {

int bus_open(const std::string &spec, sd_bus **ret)
{
        sd_bus *bus = nullptr;
        int r;
        if (spec == "system")
                r = sd_bus_open_system(&bus);
        else if (spec == "session")
                r = sd_bus_open_user(&bus);
        else {
                r = sd_bus_new(&bus);
                if (r >= 0)
                        r = sd_bus_set_address(bus, spec.c_str());
                if (r >= 0)
                        r = sd_bus_set_bus_client(bus, 1);
                if (r >= 0)
                        r = sd_bus_start(bus);
        }
        if (r < 0) {
                sd_bus_unref(bus);
                return r;
        }
        *ret = bus;
        return 0;
}

} // namespace bwq

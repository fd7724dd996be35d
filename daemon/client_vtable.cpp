// org.bwq1.Client on /org/bwq1/client/N: one registered client's properties.
#include <errno.h>

#include <string>

#include "bus_vtables.h"
#include "client.h"

namespace bwq {

static int client_prop(sd_bus *, const char *, const char *, const char *property, sd_bus_message *reply, void *userdata,
                       sd_bus_error *)
{
        auto *c = static_cast<Client *>(userdata);
        std::string p = property;
        if (p == "Name")
                return sd_bus_message_append(reply, "s", c->name.c_str());
        if (p == "Pid")
                return sd_bus_message_append(reply, "u", c->pid);
        if (p == "MinBits")
                return sd_bus_message_append(reply, "y", c->min_bits);
        if (p == "MaxBits")
                return sd_bus_message_append(reply, "y", c->max_bits);
        if (p == "BitDepth")
                return sd_bus_message_append(reply, "y", c->bits);
        return -ENOENT;
}

const sd_bus_vtable client_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", client_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Pid", "u", client_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MinBits", "y", client_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MaxBits", "y", client_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("BitDepth", "y", client_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_VTABLE_END,
};

} // namespace bwq

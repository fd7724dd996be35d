// The sd-bus vtables of bwqd's objects: org.bwq1.Manager (userdata: the
// Service) and org.bwq1.Client (userdata: the Client).
#pragma once

#include <systemd/sd-bus.h>

namespace bwq {

extern const sd_bus_vtable manager_vtable[];
extern const sd_bus_vtable client_vtable[];

} // namespace bwq

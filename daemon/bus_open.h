// A D-Bus connection by name: "system", "session" or an address.
#pragma once

#include <string>

struct sd_bus;

namespace bwq {

// Returns 0 with *ret connected as a bus client, or a negative errno.
int bus_open(const std::string &spec, sd_bus **ret);

} // namespace bwq

// The org.bwq1 D-Bus names (the contract is uapi/org.bwq1.xml, DESIGN §4.4)
// and opening a bus connection by name, for bwqd, bwqctl and libnpu.
#pragma once

#include <string>

struct sd_bus;

namespace bwq::dbus {

inline constexpr char kService[] = "org.bwq1";
inline constexpr char kPath[] = "/org/bwq1";
inline constexpr char kManager[] = "org.bwq1.Manager";
inline constexpr char kClient[] = "org.bwq1.Client";
inline constexpr char kClientPathPrefix[] = "/org/bwq1/client/";
inline constexpr char kErrLimit[] = "org.bwq1.Error.LimitExceeded";
inline constexpr char kErrNoClient[] = "org.bwq1.Error.NoSuchClient";
inline constexpr char kErrBadConfig[] = "org.bwq1.Error.BadConfig";

} // namespace bwq::dbus

namespace bwq {

// A bus by name: "system", "session" or a D-Bus address.  Returns 0 with
// *ret connected as a bus client, or a negative errno.
int bus_open(const std::string &spec, sd_bus **ret);

} // namespace bwq

// What the tools say when npu_device_open refuses a device.
#pragma once

#include <cerrno>
#include <cstring>
#include <string>

namespace tools {

inline std::string device_open_error(int r)
{
        switch (-r) {
        case ERANGE: return "more compute threads than the CPUs this process may use (threads=N)";
        case EINVAL: return "not a device name or soft:key=value,... with threads, isa, pin or bo_limit";
        case ENOTSUP: return "this CPU cannot run the requested instruction set";
        case ENODEV: return "not an NPU device node";
        default: return strerror(-r);
        }
}

} // namespace tools

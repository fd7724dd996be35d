// A client of bwqd registered over D-Bus (RegisterClient), with its clamp
// and the depth it gets.
#pragma once

#include <cstdint>
#include <string>

#include "common/sd_ptr.h"

namespace bwq {

class Service;

struct Client {
        Service *svc = nullptr;
        uint32_t id = 0;
        std::string name, owner, path;
        uint32_t pid = 0;
        uint32_t uid = 0;
        bool privileged = false;  // root or bwqd's own uid: outside the per-user limits
        uint8_t min_bits = 4, max_bits = 16, bits = 0;
        BusSlotPtr slot;
};

} // namespace bwq

// A client of bwqd registered over D-Bus (RegisterClient), with its clamp
// and the depth it gets.
#pragma once

#include <cstdint>
#include <string>

#include "common/mapping.h"
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
        // The client's traffic counter (struct bwq_traffic), read-only, and
        // its value at the last sample.
        Mapping traffic;
        uint64_t traffic_last = 0;
};

} // namespace bwq

// sd-bus and sd-event objects as unique_ptrs that drop their reference when
// they go (systemd's _cleanup_(sd_bus_unrefp) and friends).
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <memory>

namespace bwq {

template <auto Unref> struct SdDeleter {
        template <class T> void operator()(T *p) const { (void)Unref(p); }
};

using BusPtr = std::unique_ptr<sd_bus, SdDeleter<sd_bus_flush_close_unref>>;
using BusMessagePtr = std::unique_ptr<sd_bus_message, SdDeleter<sd_bus_message_unref>>;
using BusSlotPtr = std::unique_ptr<sd_bus_slot, SdDeleter<sd_bus_slot_unref>>;
using BusTrackPtr = std::unique_ptr<sd_bus_track, SdDeleter<sd_bus_track_unref>>;
using BusCredsPtr = std::unique_ptr<sd_bus_creds, SdDeleter<sd_bus_creds_unref>>;
using EventPtr = std::unique_ptr<sd_event, SdDeleter<sd_event_unref>>;
using EventSourcePtr = std::unique_ptr<sd_event_source, SdDeleter<sd_event_source_unref>>;

// sd_bus_error freed at scope end (_cleanup_(sd_bus_error_free)).
struct BusError {
        sd_bus_error e = SD_BUS_ERROR_NULL;
        BusError() = default;
        BusError(const BusError &) = delete;
        BusError &operator=(const BusError &) = delete;
        ~BusError() { sd_bus_error_free(&e); }
        sd_bus_error *get() { return &e; }
        const char *message() const { return e.message ? e.message : ""; }
        const char *name() const { return e.name ? e.name : ""; }
};

} // namespace bwq

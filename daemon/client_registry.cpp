// The client registry of bwqd: RegisterClient's checks and limits, one
// sd_bus_track per calling connection, and dropping clients that leave or
// vanish (with their attribution in the source).
#include <algorithm>
#include <cstring>

#include "bus_vtables.h"
#include "client.h"
#include "common/bus.h"
#include "common/depth.h"
#include "log.h"
#include "service.h"

namespace bwq {

int Service::on_owner_gone(sd_bus_track *, void *userdata)
{
        auto *o = static_cast<Owner *>(userdata);
        o->svc->drop_owner(o->name);
        return 0;
}

void Service::drop_owner(const std::string &owner)
{
        std::vector<uint32_t> ids;
        for (auto &[id, c] : clients_)
                if (c->owner == owner) {
                        log_info("client %s (%s, pid %u) disconnected; unregistering", c->path.c_str(), c->name.c_str(), c->pid);
                        ids.push_back(id);
                }
        for (uint32_t id : ids)
                drop_client(id);
}

int Service::register_client(sd_bus_message *m, sd_bus_error *error)
{
        const char *name;
        uint8_t lo, hi;
        int r = sd_bus_message_read(m, "syy", &name, &lo, &hi);
        if (r < 0)
                return r;
        size_t len = strlen(name);
        if (len == 0 || len > 64 || std::any_of(name, name + len, [](char ch) { return ch < 0x20 || ch == 0x7f; }))
                return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "name must be 1 to 64 printable characters");
        if (!depth_supported(lo) || !depth_supported(hi) || lo > hi)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS,
                                         "min_bits %u and max_bits %u must be 4, 6, 8 or 16 with min <= max", lo, hi);
        r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *key;
                if ((r = sd_bus_message_read(m, "s", &key)) < 0)
                        return r;
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "unknown option '%s'", key);
        }
        if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                return r;

        const char *sender = sd_bus_message_get_sender(m);
        std::string owner = sender ? sender : "";
        if (clients_.size() >= cfg_.clients.total)
                return sd_bus_error_setf(error, dbus::kErrLimit, "bwqd has %zu clients, the most it takes ([Clients] Max=)",
                                         clients_.size());
        auto oit = owners_.find(owner);
        if (oit != owners_.end() && oit->second->clients >= cfg_.clients.per_connection)
                return sd_bus_error_setf(error, dbus::kErrLimit, "this connection has %u clients, the most it may ([Clients] MaxPerConnection=)",
                                         oit->second->clients);
        uint32_t pid = 0;
        sd_bus_creds *creds = nullptr;
        if (sd_bus_query_sender_creds(m, SD_BUS_CREDS_PID, &creds) >= 0) {
                pid_t p;
                if (sd_bus_creds_get_pid(creds, &p) >= 0)
                        pid = uint32_t(p);
                sd_bus_creds_unref(creds);
        }

        auto c = std::make_unique<Client>();
        c->svc = this;
        c->id = next_client_++;
        c->name = name;
        c->owner = owner;
        c->pid = pid;
        c->min_bits = lo;
        c->max_bits = hi;
        c->bits = uint8_t(depth_clamp(policy_.decision().bits, lo, hi));
        c->path = std::string(dbus::kPath) + "/client/" + std::to_string(c->id);
        if (oit == owners_.end()) {
                auto o = std::make_unique<Owner>();
                o->svc = this;
                o->name = owner;
                sd_bus_track *track = nullptr;
                r = sd_bus_track_new(bus_.get(), &track, on_owner_gone, o.get());
                o->track.reset(track);
                if (r < 0 || (r = sd_bus_track_add_sender(track, m)) < 0)
                        return sd_bus_error_set_errnof(error, r, "cannot track the calling connection: %m");
                oit = owners_.emplace(owner, std::move(o)).first;
        }
        sd_bus_slot *slot = nullptr;
        if ((r = sd_bus_add_object_vtable(bus_.get(), &slot, c->path.c_str(), dbus::kClient, client_vtable, c.get())) < 0)
                return r;
        c->slot.reset(slot);
        std::string why;
        if (pid && source_->add_client(pid_t(pid), &why) < 0)
                log_warning("client %s: cannot attribute pid %u to %s: %s, ignoring", c->path.c_str(), pid,
                            source_name_.c_str(), why.c_str());
        r = sd_bus_reply_method_return(m, "oh", c->path.c_str(), page_.fd());
        if (r < 0)
                return r;
        log_info("client %s registered: %s, pid %u, bits [%u, %u]", c->path.c_str(), name, pid, lo, hi);
        (void)sd_bus_emit_object_added(bus_.get(), c->path.c_str());
        oit->second->clients++;
        clients_[c->id] = std::move(c);
        (void)sd_bus_emit_properties_changed(bus_.get(), dbus::kPath, dbus::kManager, "Clients", nullptr);
        return 1;
}

void Service::drop_client(uint32_t id)
{
        auto it = clients_.find(id);
        if (it == clients_.end())
                return;
        std::unique_ptr<Client> c = std::move(it->second);
        clients_.erase(it);
        if (c->pid)
                source_->remove_client(pid_t(c->pid));
        auto oit = owners_.find(c->owner);
        if (oit != owners_.end() && --oit->second->clients == 0) {
                // Not from inside the track's own callback: sd-bus holds a
                // reference there, and the Owner is freed after we return.
                owners_.erase(oit);
        }
        (void)sd_bus_emit_object_removed(bus_.get(), c->path.c_str());
        c.reset();
        (void)sd_bus_emit_properties_changed(bus_.get(), dbus::kPath, dbus::kManager, "Clients", nullptr);
}

int Service::unregister_client(sd_bus_message *m, const char *path, sd_bus_error *error)
{
        for (auto &[id, c] : clients_)
                if (c->path == path) {
                        const char *sender = sd_bus_message_get_sender(m);
                        if ((!sender || c->owner != sender) && sd_bus_query_sender_privilege(m, -1) <= 0)
                                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED,
                                                         "%s belongs to another connection", path);
                        log_info("client %s unregistered", path);
                        drop_client(id);
                        return sd_bus_reply_method_return(m, "");
                }
        return sd_bus_error_setf(error, dbus::kErrNoClient, "no client %s", path);
}

} // namespace bwq

// The client registry of bwqd: RegisterClient's checks and limits, one
// sd_bus_track per calling connection, and dropping clients that leave or
// vanish (with their attribution in the source).
#include <fcntl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>

#include "bus_args.h"
#include "bus_vtables.h"
#include "client.h"
#include "common/bus.h"
#include "common/depth.h"
#include "common/text.h"
#include "log.h"
#include "service.h"
#include "uapi/bwq_page.h"

namespace bwq {

int Service::on_owner_gone(sd_bus_track *, void *userdata)
{
        auto *o = static_cast<Owner *>(userdata);
        Service *svc = o->svc;
        const std::string name = o->name;
        svc->drop_owner(name);
        // An owner with no clients left must go too: sd-bus calls this handler
        // again for as long as the empty track lives.  (It holds a reference
        // to the track while the handler runs.)
        svc->owners_.erase(name);
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

int Service::check_limits(const std::string &owner, uint32_t uid, bool privileged, sd_bus_error *error) const
{
        const ClientsConfig &l = cfg_.clients;
        if (clients_.size() >= l.total)
                return sd_bus_error_setf(error, dbus::kErrLimit, "bwqd has %zu clients, the most it takes ([Clients] Max=)",
                                         clients_.size());
        if (!privileged) {
                if (unprivileged_clients_ >= l.total - l.reserved)
                        return sd_bus_error_setf(error, dbus::kErrLimit,
                                                 "users other than root hold %u clients, the most they may; the rest is "
                                                 "kept for root ([Clients] Reserved=)",
                                                 unprivileged_clients_);
                auto uit = user_clients_.find(uid);
                if (uit != user_clients_.end() && uit->second >= l.per_user)
                        return sd_bus_error_setf(error, dbus::kErrLimit,
                                                 "user %u has %u clients, the most one user may ([Clients] MaxPerUser=)", uid,
                                                 uit->second);
        }
        auto oit = owners_.find(owner);
        if (oit != owners_.end() && oit->second->clients >= l.per_connection)
                return sd_bus_error_setf(error, dbus::kErrLimit,
                                         "this connection has %u clients, the most it may ([Clients] MaxPerConnection=)",
                                         oit->second->clients);
        return 0;
}

// A pidfd for the process behind the calling connection.  The pid of the
// bus credentials could name a later process once the caller exited; asking
// the bus again after pidfd_open closes that gap: if the connection still
// has that pid, the pidfd was opened while its process lived.  (A connection
// handed to another process after its creator exited keeps the creator's
// pid; such a client gets no pidfd here or one of an unrelated process.)
int Service::open_pidfd(sd_bus_message *m, uint32_t pid, unique_fd *ret)
{
        unique_fd fd(int(syscall(SYS_pidfd_open, pid_t(pid), 0)));
        if (!fd)
                return -errno;
        const char *sender = sd_bus_message_get_sender(m);
        sd_bus_creds *creds = nullptr;
        pid_t again = 0;
        int r = sender ? sd_bus_get_name_creds(bus_.get(), sender, SD_BUS_CREDS_PID, &creds) : -ENXIO;
        if (r >= 0) {
                r = sd_bus_creds_get_pid(creds, &again);
                sd_bus_creds_unref(creds);
        }
        if (r < 0)
                return r;
        if (uint32_t(again) != pid)
                return -ESRCH;
        *ret = std::move(fd);
        return 0;
}

// A client's traffic counter: a memfd of at least BWQ_TRAFFIC_SIZE sealed
// against shrinking (else its owner could truncate it and kill bwqd with
// SIGBUS at the next read), holding a struct bwq_traffic.  Returns the
// read-only mapping, or an empty one with *why.
static Mapping map_traffic_counter(int fd, std::string *why)
{
        struct stat st;
        if (fstat(fd, &st) < 0 || !S_ISREG(st.st_mode) || st.st_size < BWQ_TRAFFIC_SIZE) {
                *why = "TrafficCounter is not a memfd of at least 4096 bytes";
                return {};
        }
        int seals = fcntl(fd, F_GET_SEALS);
        if (seals < 0 || !(seals & F_SEAL_SHRINK)) {
                *why = "TrafficCounter is not sealed against shrinking (F_SEAL_SHRINK)";
                return {};
        }
        Mapping map = Mapping::map(BWQ_TRAFFIC_SIZE, PROT_READ, MAP_SHARED, fd, 0);
        if (!map) {
                *why = std::string("TrafficCounter cannot be mapped: ") + strerror(errno);
                return {};
        }
        const auto *t = map.as<const bwq_traffic>();
        if (__atomic_load_n(&t->magic, __ATOMIC_RELAXED) != BWQ_TRAFFIC_MAGIC ||
            __atomic_load_n(&t->version, __ATOMIC_RELAXED) != BWQ_TRAFFIC_VERSION) {
                *why = "TrafficCounter does not hold a struct bwq_traffic of version 1";
                return {};
        }
        return map;
}

int Service::register_client(sd_bus_message *m, sd_bus_error *error)
{
        RegisterArgs a;
        int r = read_register_args(m, &a, error);
        if (r < 0)
                return r;

        const char *sender = sd_bus_message_get_sender(m);
        std::string owner = sender ? sender : "";
        uint32_t pid = 0, uid = UINT32_MAX;
        sd_bus_creds *creds = nullptr;
        if (sd_bus_query_sender_creds(m, SD_BUS_CREDS_PID | SD_BUS_CREDS_EUID, &creds) >= 0) {
                pid_t p;
                uid_t u;
                if (sd_bus_creds_get_pid(creds, &p) >= 0)
                        pid = uint32_t(p);
                if (sd_bus_creds_get_euid(creds, &u) >= 0)
                        uid = uint32_t(u);
                sd_bus_creds_unref(creds);
        }
        const bool privileged = uid == 0 || uid == uint32_t(geteuid());
        Mapping traffic;
        if (a.traffic_fd >= 0) {
                std::string why;
                if (!(traffic = map_traffic_counter(a.traffic_fd, &why)))
                        return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, why.c_str());
        }
        if ((r = check_limits(owner, uid, privileged, error)) < 0) {
                refused_registrations_++;
                return r;
        }

        // A process seen before whose pidfd says it exited: its clients are
        // dead (the bus has not told us yet), and this pid is a new process.
        if (pid) {
                auto pit = processes_.find(pid);
                if (pit != processes_.end() && !ClientProcess{pid_t(pid), pit->second.pidfd.get()}.alive()) {
                        std::vector<uint32_t> dead;
                        for (auto &[id, c] : clients_)
                                if (c->pid == pid)
                                        dead.push_back(id);
                        log_info("process %u exited; dropping its %zu client(s)", pid, dead.size());
                        for (uint32_t id : dead)
                                drop_client(id);
                }
        }
        unique_fd pidfd;
        const bool new_process = pid && !processes_.count(pid);
        if (new_process) {
                if (int e = open_pidfd(m, pid, &pidfd); e < 0)
                        log_warning("client pid %u: no pidfd (%s); it will not be attributed", pid, strerror(-e));
        }

        auto c = std::make_unique<Client>();
        c->svc = this;
        c->id = next_client_++;
        c->name = a.name;
        c->owner = owner;
        c->pid = pid;
        c->uid = uid;
        c->privileged = privileged;
        c->min_bits = a.min_bits;
        c->max_bits = a.max_bits;
        if (traffic) {
                c->traffic_last = __atomic_load_n(&traffic.as<const bwq_traffic>()->bytes, __ATOMIC_ACQUIRE);
                c->traffic = std::move(traffic);
        }
        c->bits = uint8_t(depth_clamp(policy_.decision().bits, a.min_bits, a.max_bits));
        c->path = std::string(dbus::kPath) + "/client/" + std::to_string(c->id);

        // Everything that can fail comes before any state is kept: the
        // connection's track, the object, the reply (which duplicates the
        // page's fd and may fail with EMFILE).  On failure the new owner
        // goes again, and nothing else was changed.
        bool new_owner = false;
        auto oit = owners_.find(owner);
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
                new_owner = true;
        }
        auto undo_owner = [&] {
                if (new_owner)
                        owners_.erase(oit);
        };
        sd_bus_slot *slot = nullptr;
        if ((r = sd_bus_add_object_vtable(bus_.get(), &slot, c->path.c_str(), dbus::kClient, client_vtable, c.get())) < 0) {
                undo_owner();
                return r;
        }
        c->slot.reset(slot);
        if ((r = sd_bus_reply_method_return(m, "oh", c->path.c_str(), page_.fd())) < 0) {
                log_warning("RegisterClient from pid %u: cannot reply: %s; not registered", pid, strerror(-r));
                undo_owner();
                return r;
        }

        oit->second->clients++;
        if (!privileged) {
                user_clients_[uid]++;
                unprivileged_clients_++;
        }
        if (pid) {
                Process &pr = processes_[pid];
                if (new_process) {
                        pr.pidfd = std::move(pidfd);
                        std::string why;
                        if (source_->add_client(ClientProcess{pid_t(pid), pr.pidfd.get()}, &why) < 0)
                                log_warning("client %s: cannot attribute pid %u to %s: %s, ignoring", c->path.c_str(), pid,
                                            source_name_.c_str(), why.c_str());
                }
                pr.clients++;
        }
        log_info("client %s registered: %s, pid %u, uid %u, bits [%u, %u]", c->path.c_str(), escape_text(a.name).c_str(), pid,
                 uid, a.min_bits, a.max_bits);
        (void)sd_bus_emit_object_added(bus_.get(), c->path.c_str());
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
        if (c->pid) {
                auto pit = processes_.find(c->pid);
                if (pit != processes_.end() && --pit->second.clients == 0) {
                        source_->remove_client(ClientProcess{pid_t(c->pid), pit->second.pidfd.get()});
                        processes_.erase(pit);
                }
        }
        if (!c->privileged) {
                auto uit = user_clients_.find(c->uid);
                if (uit != user_clients_.end() && --uit->second == 0)
                        user_clients_.erase(uit);
                unprivileged_clients_--;
        }
        auto oit = owners_.find(c->owner);
        if (oit != owners_.end() && --oit->second->clients == 0) {
                // From inside the track's own callback too: sd-bus holds a
                // reference there, and the track is freed after it returns.
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

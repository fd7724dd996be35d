#include "bwq_link.h"

#include <fcntl.h>
#include <poll.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <systemd/sd-bus.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <algorithm>

#include "common/bus.h"
#include "common/clock.h"
#include "uapi/bwq_page.h"

namespace npu {

namespace {
using bwq::dbus::kManager;
using bwq::dbus::kPath;
constexpr const char *kDest = bwq::dbus::kService;
} // namespace

// The userdata of one asynchronous call, freed with its slot.
struct LinkCall {
        BwqLink *link;
        uint64_t id;
        uint64_t attempt = 0;
};

// The bus owns the call's slot from here on, and frees its LinkCall with it.
static void float_slot(sd_bus_slot *slot)
{
        sd_bus_slot_set_destroy_callback(slot, [](void *p) { delete static_cast<LinkCall *>(p); });
        sd_bus_slot_set_floating(slot, 1);
        bwq::BusSlotPtr drop(slot);
}

// A client's traffic counter: a memfd sealed against shrinking, growing
// and further seals (bwqd refuses one it could be made to fault on), mapped
// writable here.  Without one the client registers without the option.
void BwqLink::make_traffic_counter(Client *c)
{
        bwq::unique_fd fd(memfd_create("bwq-traffic", MFD_CLOEXEC | MFD_ALLOW_SEALING));
        if (!fd || ftruncate(fd.get(), BWQ_TRAFFIC_SIZE) < 0 ||
            fcntl(fd.get(), F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0)
                return;
        bwq::Mapping map = bwq::Mapping::map(BWQ_TRAFFIC_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd.get(), 0);
        if (!map)
                return;
        auto *t = map.as<bwq_traffic>();
        t->magic = BWQ_TRAFFIC_MAGIC;
        t->version = BWQ_TRAFFIC_VERSION;
        __atomic_store_n(&t->bytes, 0, __ATOMIC_RELEASE);
        c->traffic_fd = std::make_shared<bwq::unique_fd>(std::move(fd));
        c->traffic = std::make_shared<bwq::Mapping>(std::move(map));
}

void BwqLink::add_traffic(uint64_t id, uint64_t bytes)
{
        std::lock_guard<std::mutex> lk(mu_);
        auto it = clients_.find(id);
        if (it == clients_.end() || !it->second.traffic)
                return;
        (void)__atomic_fetch_add(&it->second.traffic->as<bwq_traffic>()->bytes, bytes, __ATOMIC_RELEASE);
}

BwqLink::BwqLink(std::string bus) : bus_spec_(std::move(bus))
{
        // Without its wake-up eventfd the link thread could not be stopped:
        // no link then, and models run at their fallback depth.
        wake_fd_.reset(eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
        if (wake_fd_)
                thread_ = std::thread([this] { run(); });
}

BwqLink::~BwqLink()
{
        {
                std::lock_guard<std::mutex> lk(mu_);
                stop_ = true;
        }
        if (thread_.joinable()) {
                wake();
                thread_.join();
        }
}

void BwqLink::wake()
{
        uint64_t one = 1;
        (void)!write(wake_fd_.get(), &one, sizeof one);
}

void BwqLink::add_client(uint64_t id, const std::string &name, unsigned min_bits, unsigned max_bits)
{
        {
                std::lock_guard<std::mutex> lk(mu_);
                auto it = clients_.find(id);
                if (it != clients_.end()) {
                        if (it->second.lo == min_bits && it->second.hi == max_bits)
                                return;
                        if (it->second.state == State::Registered)
                                unregister_.push_back(it->second.path);
                }
                Client c;
                c.name = name;
                c.lo = min_bits;
                c.hi = max_bits;
                if (it != clients_.end()) {
                        c.traffic_fd = it->second.traffic_fd;
                        c.traffic = it->second.traffic;
                } else {
                        make_traffic_counter(&c);
                }
                clients_[id] = std::move(c);
        }
        wake();
}

void BwqLink::remove_client(uint64_t id)
{
        {
                std::lock_guard<std::mutex> lk(mu_);
                auto it = clients_.find(id);
                if (it == clients_.end())
                        return;
                if (it->second.state == State::Registered)
                        unregister_.push_back(it->second.path);
                // A registration in flight is undone when its reply comes.
                clients_.erase(it);
        }
        wake();
}

int BwqLink::page(uint64_t *ret_generation)
{
        std::lock_guard<std::mutex> lk(mu_);
        *ret_generation = generation_;
        return page_fd_ ? fcntl(page_fd_.get(), F_DUPFD_CLOEXEC, 3) : -1;
}

uint64_t BwqLink::generation()
{
        std::lock_guard<std::mutex> lk(mu_);
        return generation_;
}

int BwqLink::sample(unsigned timeout_ms)
{
        std::unique_lock<std::mutex> lk(mu_);
        if (!owner_)
                return -ENOTCONN;
        uint64_t want = ++samples_asked_;
        lk.unlock();
        wake();
        lk.lock();
        if (!cv_.wait_for(lk, std::chrono::milliseconds(timeout_ms), [&] { return samples_done_ >= want || !owner_; }))
                return -ETIME;
        return owner_ ? 0 : -ENOTCONN;
}

BwqLink::Status BwqLink::status(uint64_t id)
{
        std::lock_guard<std::mutex> lk(mu_);
        Status st;
        auto it = clients_.find(id);
        if (it == clients_.end() || !owner_)
                return st;
        const Client &c = it->second;
        st.refusals = c.refusals;
        st.reason = c.reason;
        st.state = c.state == State::NoBwqd ? State::Pending : c.state;
        if (c.state == State::Refused) {
                uint64_t now = bwq::monotonic_ns();
                st.retry_in_ns = c.retry_at_ns > now ? c.retry_at_ns - now : 0;
        }
        return st;
}

int BwqLink::next_retry_ms(int cap)
{
        std::lock_guard<std::mutex> lk(mu_);
        if (!owner_)
                return cap;
        uint64_t now = bwq::monotonic_ns();
        int t = cap;
        for (const auto &[id, c] : clients_)
                if (c.state == State::Refused) {
                        uint64_t ms = c.retry_at_ns > now ? (c.retry_at_ns - now + 999999) / 1000000 : 0;
                        t = std::min<int>(t, int(std::min<uint64_t>(ms, uint64_t(cap))));
                }
        return t;
}

bool BwqLink::connect_bus()
{
        sd_bus *raw = nullptr;
        int r = bwq::bus_open(bus_spec_, &raw);
        if (r < 0)
                return false;
        bwq::BusPtr bus(raw);
        auto on_owner_changed = [](sd_bus_message *m, void *userdata, sd_bus_error *) -> int {
                const char *name, *old_owner, *new_owner;
                if (sd_bus_message_read(m, "sss", &name, &old_owner, &new_owner) < 0 || strcmp(name, kDest) != 0)
                        return 0;
                auto *l = static_cast<BwqLink *>(userdata);
                if (*old_owner)
                        l->set_owner(false);  // gone, or replaced: start over
                if (*new_owner)
                        l->set_owner(true);
                return 0;
        };
        r = sd_bus_match_signal(bus.get(), nullptr, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                                "NameOwnerChanged", on_owner_changed, this);
        if (r < 0)
                return false;
        bus_ = std::move(bus);
        int has = 0;
        sd_bus_message *reply = nullptr;
        if (sd_bus_call_method(bus_.get(), "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
                               nullptr, &reply, "s", kDest) >= 0)
                (void)sd_bus_message_read(bwq::BusMessagePtr(reply).get(), "b", &has);
        set_owner(has);
        return true;
}

void BwqLink::drop_bus()
{
        bus_.reset();
        set_owner(false);
}

// bwqd came or went: registrations and the page start over.
void BwqLink::set_owner(bool present)
{
        std::lock_guard<std::mutex> lk(mu_);
        if (owner_ == present && present)
                return;
        owner_ = present;
        traffic_refused_ = false;  // a new bwqd may take traffic counters
        // Every registration starts over, at once: replies still to come
        // belong to the bwqd that went.
        for (auto &[id, c] : clients_) {
                c.state = State::NoBwqd;
                c.path.clear();
                c.reason.clear();
                c.refusals = 0;
                c.backoff_ms = 0;
                c.attempt = ++attempts_;
        }
        unregister_.clear();
        if (page_fd_) {
                page_fd_.reset();
                generation_++;
        }
        samples_sent_ = samples_done_ = samples_asked_;
        cv_.notify_all();
}

void BwqLink::send_requests()
{
        std::unique_lock<std::mutex> lk(mu_);
        if (!owner_)
                return;
        for (const auto &path : unregister_)
                (void)sd_bus_call_method_async(bus_.get(), nullptr, kDest, kPath, kManager, "UnregisterClient", nullptr,
                                               nullptr, "o", path.c_str());
        unregister_.clear();
        const uint64_t now = bwq::monotonic_ns();
        for (auto &[id, c] : clients_) {
                if (c.state == State::Pending || c.state == State::Registered ||
                    (c.state == State::Refused && c.retry_at_ns > now))
                        continue;
                c.state = State::Pending;
                c.attempt = ++attempts_;
                auto on_reply = [](sd_bus_message *m, void *userdata, sd_bus_error *) -> int {
                        auto *call = static_cast<LinkCall *>(userdata);
                        BwqLink *l = call->link;
                        std::lock_guard<std::mutex> g(l->mu_);
                        auto it = l->clients_.find(call->id);
                        const bool current = it != l->clients_.end() && it->second.attempt == call->attempt &&
                                             it->second.state == State::Pending;
                        const char *path;
                        int fd;
                        if (sd_bus_message_is_method_error(m, nullptr) || sd_bus_message_read(m, "oh", &path, &fd) < 0) {
                                const sd_bus_error *err = sd_bus_message_get_error(m);
                                if (current && err && err->message && strstr(err->message, "unknown option 'TrafficCounter'")) {
                                        // A bwqd from before traffic counters: again at once, without.
                                        l->traffic_refused_ = true;
                                        it->second.state = State::NoBwqd;
                                        l->wake();
                                        return 0;
                                }
                                if (current) {
                                        // Refused (limits, a bad argument) or lost: again
                                        // later, waiting twice as long each time.
                                        Client &c = it->second;
                                        const sd_bus_error *e = sd_bus_message_get_error(m);
                                        c.reason = e && e->message ? e->message : e && e->name ? e->name : "a malformed reply";
                                        c.state = State::Refused;
                                        c.refusals++;
                                        c.backoff_ms = c.backoff_ms ? std::min(c.backoff_ms * 2, kRetryMaxMs) : kRetryFirstMs;
                                        c.retry_at_ns = bwq::monotonic_ns() + uint64_t(c.backoff_ms) * 1000000;
                                }
                                return 0;
                        }
                        if (!current) {
                                // Removed or changed meanwhile: let bwqd forget it too.
                                (void)sd_bus_call_method_async(l->bus_.get(), nullptr, kDest, kPath, kManager, "UnregisterClient",
                                                               nullptr, nullptr, "o", path);
                                return 0;
                        }
                        Client &c = it->second;
                        c.state = State::Registered;
                        c.path = path;
                        c.reason.clear();
                        c.refusals = 0;
                        c.backoff_ms = 0;
                        if (!l->page_fd_) {
                                l->page_fd_.reset(fcntl(fd, F_DUPFD_CLOEXEC, 3));
                                l->generation_++;
                        }
                        return 0;
                };
                // No reply timeout: a stalled bwqd answers when it runs again,
                // and a timed-out call would leave it listing a client we
                // forgot.  A bwqd that goes away ends the call (NameOwnerChanged
                // starts over).  Until the answer the model runs at its
                // fallback depth, as "pending".
                sd_bus_message *msg = nullptr;
                int r = sd_bus_message_new_method_call(bus_.get(), &msg, kDest, kPath, kManager, "RegisterClient");
                bwq::BusMessagePtr owned(msg);
                if (r >= 0 && c.traffic_fd && !traffic_refused_)
                        r = sd_bus_message_append(msg, "syya{sv}", c.name.c_str(), uint8_t(c.lo), uint8_t(c.hi), 1, "TrafficCounter",
                                                  "h", c.traffic_fd->get());
                else if (r >= 0)
                        r = sd_bus_message_append(msg, "syya{sv}", c.name.c_str(), uint8_t(c.lo), uint8_t(c.hi), 0);
                sd_bus_slot *slot = nullptr;
                auto *call = new LinkCall{this, id, c.attempt};
                if (r >= 0)
                        r = sd_bus_call_async(bus_.get(), &slot, msg, on_reply, call, UINT64_MAX);
                if (r < 0) {
                        delete call;
                        c.state = State::Refused;
                        c.reason = std::string("cannot send RegisterClient: ") + strerror(-r);
                        c.backoff_ms = c.backoff_ms ? std::min(c.backoff_ms * 2, kRetryMaxMs) : kRetryFirstMs;
                        c.retry_at_ns = now + uint64_t(c.backoff_ms) * 1000000;
                        continue;
                }
                float_slot(slot);
        }
        if (samples_asked_ > samples_sent_) {
                uint64_t upto = samples_asked_;
                samples_sent_ = upto;
                auto on_sample = [](sd_bus_message *, void *userdata, sd_bus_error *) -> int {
                        auto *call = static_cast<LinkCall *>(userdata);
                        std::lock_guard<std::mutex> g(call->link->mu_);
                        if (call->link->samples_done_ < call->id)
                                call->link->samples_done_ = call->id;
                        call->link->cv_.notify_all();
                        return 0;
                };
                sd_bus_slot *slot = nullptr;
                auto *call = new LinkCall{this, upto};
                if (sd_bus_call_method_async(bus_.get(), &slot, kDest, kPath, kManager, "Sample", on_sample, call, "") < 0)
                        delete call;
                else
                        float_slot(slot);
        }
}

void BwqLink::run()
{
        for (;;) {
                {
                        std::lock_guard<std::mutex> lk(mu_);
                        if (stop_)
                                break;
                }
                if (!bus_ && !connect_bus()) {
                        // No bus yet: try again in a second, or when woken.
                        pollfd p{wake_fd_.get(), POLLIN, 0};
                        (void)poll(&p, 1, 1000);
                        uint64_t v;
                        (void)!read(wake_fd_.get(), &v, sizeof v);
                        continue;
                }
                send_requests();
                int r;
                while ((r = sd_bus_process(bus_.get(), nullptr)) > 0) {
                }
                if (r < 0) {
                        drop_bus();
                        continue;
                }
                uint64_t usec;
                int timeout = next_retry_ms(1000);
                if (sd_bus_get_timeout(bus_.get(), &usec) >= 0 && usec != UINT64_MAX)
                        timeout = std::min(timeout, 10);
                pollfd p[2] = {{sd_bus_get_fd(bus_.get()), short(sd_bus_get_events(bus_.get())), 0}, {wake_fd_.get(), POLLIN, 0}};
                (void)poll(p, 2, timeout);
                uint64_t v;
                (void)!read(wake_fd_.get(), &v, sizeof v);
        }
        if (bus_) {
                std::lock_guard<std::mutex> lk(mu_);
                for (auto &[id, c] : clients_)
                        if (c.state == State::Registered)
                                (void)sd_bus_call_method(bus_.get(), kDest, kPath, kManager, "UnregisterClient", nullptr, nullptr, "o",
                                                         c.path.c_str());
        }
        bus_.reset();
}

} // namespace npu

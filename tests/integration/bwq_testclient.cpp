// A test client of bwqd for the integration tests.
//
//   bwq_testclient ADDRESS hold NAME MIN MAX
//       register, print the page's depth and every change of the client
//       object's BitDepth ("bitdepth N"), until SIGTERM
//   bwq_testclient ADDRESS swarm CONNECTIONS PER_CONNECTION POLLS
//       register CONNECTIONS x PER_CONNECTION clients at once, then poll
//       GetDecision POLLS times on every connection; print latencies
//   bwq_testclient ADDRESS resilient NAME MIN MAX
//       keep NAME registered through bwqd's restarts, stalls and refusals;
//       print "registered PATH (N)" each time, and "violation: ..." for a
//       depth outside [MIN, MAX]; on SIGTERM exit 0, or 1 after a violation
//   bwq_testclient ADDRESS traffic NAME BPS|PATH
//       register with a traffic counter advancing at BPS bytes per second,
//       or with the file PATH as the counter (printing bwqd's answer)
//   bwq_testclient ADDRESS contract XML
//       compare the live introspection of /org/bwq1 and a client object
//       with the interfaces in XML
//   bwq_testclient - notify-sink PATH
//       bind a datagram socket at PATH and print each message on a line
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <systemd/sd-bus.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <regex>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include "common/clock.h"
#include "uapi/bwq_page.h"

namespace {

int connect_bus(const char *address, sd_bus **ret)
{
        sd_bus *bus;
        int r = sd_bus_new(&bus);
        if (r >= 0)
                r = sd_bus_set_address(bus, address);
        if (r >= 0)
                r = sd_bus_set_bus_client(bus, 1);
        if (r >= 0)
                r = sd_bus_start(bus);
        if (r < 0) {
                fprintf(stderr, "testclient: cannot connect to %s: %s\n", address, strerror(-r));
                return r;
        }
        *ret = bus;
        return 0;
}

int do_register(sd_bus *bus, const char *name, uint8_t lo, uint8_t hi, std::string *ret_path, int *ret_fd)
{
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = nullptr;
        int r = sd_bus_call_method(bus, "org.bwq1", "/org/bwq1", "org.bwq1.Manager", "RegisterClient", &e, &reply,
                                   "syya{sv}", name, lo, hi, 0);
        if (r < 0) {
                fprintf(stderr, "testclient: RegisterClient: %s\n", e.message ? e.message : strerror(-r));
                sd_bus_error_free(&e);
                return r;
        }
        const char *path;
        int fd;
        r = sd_bus_message_read(reply, "oh", &path, &fd);
        if (r >= 0) {
                *ret_path = path;
                *ret_fd = fcntl(fd, F_DUPFD_CLOEXEC, 3);
        }
        sd_bus_message_unref(reply);
        return r;
}

volatile sig_atomic_t stop_flag = 0;

// The BitDepth values of a PropertiesChanged signal, in order.
std::vector<uint8_t> changed_bitdepths(sd_bus_message *m)
{
        std::vector<uint8_t> out;
        const char *iface;
        if (sd_bus_message_read(m, "s", &iface) < 0 || sd_bus_message_enter_container(m, 'a', "{sv}") < 0)
                return out;
        while (sd_bus_message_enter_container(m, 'e', "sv") > 0) {
                const char *name;
                uint8_t b;
                if (sd_bus_message_read(m, "s", &name) < 0)
                        return out;
                if (strcmp(name, "BitDepth") == 0 && sd_bus_message_read(m, "v", "y", &b) >= 0)
                        out.push_back(b);
                else
                        sd_bus_message_skip(m, "v");
                sd_bus_message_exit_container(m);
        }
        return out;
}

int on_props(sd_bus_message *m, void *, sd_bus_error *)
{
        for (uint8_t b : changed_bitdepths(m))
                printf("bitdepth %u\n", b);
        fflush(stdout);
        return 0;
}

int cmd_hold(const char *address, const char *name, int lo, int hi)
{
        sd_bus *bus;
        if (connect_bus(address, &bus) < 0)
                return 1;
        std::string path;
        int fd;
        if (do_register(bus, name, uint8_t(lo), uint8_t(hi), &path, &fd) < 0)
                return 1;
        void *m = mmap(nullptr, BWQ_PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
        if (m == MAP_FAILED) {
                perror("testclient: mmap page");
                return 1;
        }
        // The page is read-only for clients.
        if (mmap(nullptr, BWQ_PAGE_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0) != MAP_FAILED) {
                fprintf(stderr, "testclient: the decision page could be mapped writable\n");
                return 1;
        }
        bwq_decision d;
        if (bwq_page_read(static_cast<const bwq_page *>(m), &d) < 0) {
                fprintf(stderr, "testclient: the decision page is not readable\n");
                return 1;
        }
        printf("registered %s page_bits %u source %s\n", path.c_str(), d.act_bits, d.source);
        std::string match = "type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',path='" + path + "'";
        sd_bus_add_match(bus, nullptr, match.c_str(), on_props, nullptr);
        uint8_t b;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        if (sd_bus_get_property_trivial(bus, "org.bwq1", path.c_str(), "org.bwq1.Client", "BitDepth", &e, 'y', &b) >= 0)
                printf("bitdepth %u\n", b);
        fflush(stdout);
        signal(SIGTERM, [](int) { stop_flag = 1; });
        while (!stop_flag) {
                int r = sd_bus_process(bus, nullptr);
                if (r < 0)
                        return 1;
                if (r == 0)
                        sd_bus_wait(bus, 100000);
        }
        sd_bus_flush_close_unref(bus);
        return 0;
}

uint64_t now_ns() { return bwq::monotonic_ns(); }

// A raw D-Bus client that keeps itself registered through restarts,
// stalls and refusals, as an application should: registers whenever
// org.bwq1 has an owner, again after a refusal (backoff 100 ms to 1 s),
// never with a reply timeout (a stalled bwqd answers later).  Every depth
// it is given must lie in [lo, hi].
struct Resilient {
        sd_bus *bus = nullptr;
        std::string name, path;
        uint8_t lo = 4, hi = 16;
        bool owner = false, pending = false;
        uint64_t attempt = 0, retry_at = 0, backoff_ms = 0;
        unsigned registrations = 0, violations = 0;
        sd_bus_slot *props = nullptr;

        void depth(uint8_t b, const char *how)
        {
                if (b < lo || b > hi) {
                        violations++;
                        printf("violation: %s depth %u outside [%u, %u]\n", how, b, lo, hi);
                        fflush(stdout);
                }
        }
        void lost()
        {
                path.clear();
                pending = false;
                attempt++;
                props = sd_bus_slot_unref(props);
        }
        void try_register();
};

struct ResilientCall {
        Resilient *r;
        uint64_t attempt;
};

int resilient_props(sd_bus_message *m, void *userdata, sd_bus_error *)
{
        auto *r = static_cast<Resilient *>(userdata);
        for (uint8_t b : changed_bitdepths(m))
                r->depth(b, "BitDepth");
        return 0;
}

void Resilient::try_register()
{
        if (!owner || pending || !path.empty() || now_ns() < retry_at)
                return;
        sd_bus_message *m = nullptr;
        if (sd_bus_message_new_method_call(bus, &m, "org.bwq1", "/org/bwq1", "org.bwq1.Manager", "RegisterClient") < 0)
                return;
        sd_bus_message_append(m, "syya{sv}", name.c_str(), lo, hi, 0);
        auto *call = new ResilientCall{this, ++attempt};
        auto on_reply = [](sd_bus_message *reply, void *userdata, sd_bus_error *) -> int {
                auto *c = static_cast<ResilientCall *>(userdata);
                Resilient *r = c->r;
                const bool current = c->attempt == r->attempt && r->pending;
                const char *p;
                int fd;
                if (sd_bus_message_is_method_error(reply, nullptr) || sd_bus_message_read(reply, "oh", &p, &fd) < 0) {
                        if (current) {
                                r->pending = false;
                                r->backoff_ms = r->backoff_ms ? std::min<uint64_t>(r->backoff_ms * 2, 1000) : 100;
                                r->retry_at = now_ns() + r->backoff_ms * 1000000;
                        }
                        return 0;
                }
                if (!current) {
                        (void)sd_bus_call_method_async(r->bus, nullptr, "org.bwq1", "/org/bwq1", "org.bwq1.Manager",
                                                       "UnregisterClient", nullptr, nullptr, "o", p);
                        return 0;
                }
                r->pending = false;
                r->backoff_ms = 0;
                r->path = p;
                r->registrations++;
                bwq_decision d;
                void *page = mmap(nullptr, BWQ_PAGE_SIZE, PROT_READ, MAP_SHARED, fd, 0);
                if (page != MAP_FAILED) {
                        if (bwq_page_read(static_cast<const bwq_page *>(page), &d) == 0 && d.act_bits)
                                printf("page_bits %u\n", d.act_bits);
                        munmap(page, BWQ_PAGE_SIZE);
                }
                std::string match = "type='signal',interface='org.freedesktop.DBus.Properties',member='PropertiesChanged',path='" +
                                    r->path + "'";
                sd_bus_add_match(r->bus, &r->props, match.c_str(), resilient_props, r);
                printf("registered %s (%u)\n", p, r->registrations);
                fflush(stdout);
                return 0;
        };
        sd_bus_slot *slot = nullptr;
        if (sd_bus_call_async(bus, &slot, m, on_reply, call, UINT64_MAX) < 0) {
                delete call;
                sd_bus_message_unref(m);
                return;
        }
        sd_bus_slot_set_destroy_callback(slot, [](void *p) { delete static_cast<ResilientCall *>(p); });
        sd_bus_slot_set_floating(slot, 1);
        sd_bus_slot_unref(slot);
        sd_bus_message_unref(m);
        pending = true;
}

// A client that reports traffic: registered with a traffic counter that
// it advances at `bps` bytes per second, in steps of 2 ms, until SIGTERM
// (SIGSTOP freezes it: a client that stops reporting).
int cmd_traffic(const char *address, const char *name, const char *bps_arg)
{
        sd_bus *bus;
        if (connect_bus(address, &bus) < 0)
                return 1;
        // A path instead of a rate: that file as the counter, as a careless
        // client might give it (bwqd must refuse what it cannot trust).
        if (bps_arg[0] == '/') {
                int f = open(bps_arg, O_RDWR | O_CLOEXEC);
                sd_bus_error e = SD_BUS_ERROR_NULL;
                int r = f < 0 ? -errno
                              : sd_bus_call_method(bus, "org.bwq1", "/org/bwq1", "org.bwq1.Manager", "RegisterClient", &e, nullptr,
                                                   "syya{sv}", name, 4, 16, 1, "TrafficCounter", "h", f);
                printf("%s\n", r < 0 ? (e.message ? e.message : strerror(-r)) : "registered");
                return r < 0 ? 1 : 0;
        }
        const double bps = atof(bps_arg);
        int fd = memfd_create("traffic", MFD_CLOEXEC | MFD_ALLOW_SEALING);
        if (fd < 0 || ftruncate(fd, BWQ_TRAFFIC_SIZE) < 0 || fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) < 0) {
                perror("testclient: traffic memfd");
                return 1;
        }
        auto *t = static_cast<bwq_traffic *>(mmap(nullptr, BWQ_TRAFFIC_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0));
        if (t == MAP_FAILED) {
                perror("testclient: traffic mmap");
                return 1;
        }
        t->magic = BWQ_TRAFFIC_MAGIC;
        t->version = BWQ_TRAFFIC_VERSION;
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = nullptr;
        int r = sd_bus_call_method(bus, "org.bwq1", "/org/bwq1", "org.bwq1.Manager", "RegisterClient", &e, &reply, "syya{sv}", name,
                                   4, 16, 1, "TrafficCounter", "h", fd);
        if (r < 0) {
                fprintf(stderr, "testclient: RegisterClient: %s\n", e.message ? e.message : strerror(-r));
                return 1;
        }
        const char *path;
        int page;
        sd_bus_message_read(reply, "oh", &path, &page);
        printf("registered %s reporting %.0f B/s\n", path, bps);
        fflush(stdout);
        sd_bus_message_unref(reply);
        signal(SIGTERM, [](int) { stop_flag = 1; });
        // Bytes for the time that passed, at most 10 ms of it a step: a
        // stopped client moved nothing and catches nothing up.
        uint64_t last = now_ns();
        double bytes = 0;
        while (!stop_flag) {
                const uint64_t now = now_ns();
                bytes += bps * double(std::min<uint64_t>(now - last, 10000000)) * 1e-9;
                last = now;
                __atomic_store_n(&t->bytes, uint64_t(bytes), __ATOMIC_RELEASE);
                while (sd_bus_process(bus, nullptr) > 0) {
                }
                usleep(2000);
        }
        sd_bus_flush_close_unref(bus);
        return 0;
}

int cmd_resilient(const char *address, const char *name, int lo, int hi)
{
        Resilient r;
        r.name = name;
        r.lo = uint8_t(lo);
        r.hi = uint8_t(hi);
        if (connect_bus(address, &r.bus) < 0)
                return 1;
        auto on_owner = [](sd_bus_message *m, void *userdata, sd_bus_error *) -> int {
                auto *r = static_cast<Resilient *>(userdata);
                const char *n, *old_owner, *new_owner;
                if (sd_bus_message_read(m, "sss", &n, &old_owner, &new_owner) < 0 || strcmp(n, "org.bwq1") != 0)
                        return 0;
                if (*old_owner) {
                        r->lost();
                        printf("lost bwqd\n");
                        fflush(stdout);
                }
                r->owner = *new_owner;
                return 0;
        };
        sd_bus_match_signal(r.bus, nullptr, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                            "NameOwnerChanged", on_owner, &r);
        int has = 0;
        sd_bus_message *reply = nullptr;
        if (sd_bus_call_method(r.bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus", "NameHasOwner",
                               nullptr, &reply, "s", "org.bwq1") >= 0) {
                sd_bus_message_read(reply, "b", &has);
                sd_bus_message_unref(reply);
        }
        r.owner = has;
        signal(SIGTERM, [](int) { stop_flag = 1; });
        while (!stop_flag) {
                r.try_register();
                int q = sd_bus_process(r.bus, nullptr);
                if (q < 0) {
                        fprintf(stderr, "testclient: resilient: the bus failed: %s\n", strerror(-q));
                        return 1;
                }
                if (q == 0)
                        sd_bus_wait(r.bus, 50000);
        }
        printf("exiting: %u registrations, %u violations\n", r.registrations, r.violations);
        sd_bus_flush_close_unref(r.bus);
        return r.violations ? 1 : 0;
}

int cmd_swarm(const char *address, int conns, int per, int polls)
{
        rlimit rl{65536, 65536};
        setrlimit(RLIMIT_NOFILE, &rl);
        std::vector<sd_bus *> buses(conns);
        for (auto &b : buses)
                if (connect_bus(address, &b) < 0)
                        return 1;
        // Every registration in flight at once: async calls, then wait for all.
        int pending = 0, failed = 0;
        auto on_reply = [](sd_bus_message *m, void *userdata, sd_bus_error *) -> int {
                auto *st = static_cast<std::pair<int *, int *> *>(userdata);
                (*st->first)--;
                if (sd_bus_message_is_method_error(m, nullptr)) {
                        const sd_bus_error *e = sd_bus_message_get_error(m);
                        fprintf(stderr, "testclient: RegisterClient failed: %s\n", e && e->message ? e->message : "?");
                        (*st->second)++;
                }
                return 0;
        };
        std::pair<int *, int *> st{&pending, &failed};
        for (int c = 0; c < conns; c++)
                for (int i = 0; i < per; i++) {
                        std::string name = "swarm-" + std::to_string(c) + "-" + std::to_string(i);
                        int r = sd_bus_call_method_async(buses[c], nullptr, "org.bwq1", "/org/bwq1", "org.bwq1.Manager",
                                                         "RegisterClient", on_reply, &st, "syya{sv}", name.c_str(), 4, 16, 0);
                        if (r < 0) {
                                fprintf(stderr, "testclient: cannot send RegisterClient: %s\n", strerror(-r));
                                return 1;
                        }
                        pending++;
                }
        uint64_t t0 = now_ns();
        while (pending > 0) {
                if (now_ns() - t0 > 60000000000ull) {
                        fprintf(stderr, "testclient: %d registrations unanswered after 60 s\n", pending);
                        return 1;
                }
                for (auto *b : buses)
                        while (sd_bus_process(b, nullptr) > 0) {
                        }
                std::vector<pollfd> pfd;
                for (auto *b : buses)
                        pfd.push_back({sd_bus_get_fd(b), short(sd_bus_get_events(b)), 0});
                poll(pfd.data(), pfd.size(), 100);
        }
        double reg_ms = (now_ns() - t0) / 1e6;
        printf("registered %d clients on %d connections in %.1f ms (%d failed)\n", conns * per - failed, conns, reg_ms, failed);
        // Polling: each connection asks GetDecision in turn; latency per call.
        std::vector<double> lat;
        for (int p = 0; p < polls; p++)
                for (auto *b : buses) {
                        uint64_t a = now_ns();
                        sd_bus_error e = SD_BUS_ERROR_NULL;
                        sd_bus_message *reply = nullptr;
                        int r = sd_bus_call_method(b, "org.bwq1", "/org/bwq1", "org.bwq1.Manager", "GetDecision", &e, &reply, "");
                        if (r < 0) {
                                fprintf(stderr, "testclient: GetDecision: %s\n", e.message ? e.message : strerror(-r));
                                return 1;
                        }
                        sd_bus_message_unref(reply);
                        lat.push_back((now_ns() - a) / 1e3);
                }
        std::sort(lat.begin(), lat.end());
        printf("GetDecision with %d clients: %zu calls, median %.0f us, p99 %.0f us, max %.0f us\n", conns * per - failed,
               lat.size(), lat[lat.size() / 2], lat[lat.size() * 99 / 100], lat.back());
        fflush(stdout);
        // Hold until told to go, so the caller can read bwqd's state.
        if (getenv("SWARM_HOLD_FILE")) {
                while (access(getenv("SWARM_HOLD_FILE"), F_OK) == 0)
                        usleep(20000);
        }
        for (auto *b : buses)
                sd_bus_flush_close_unref(b);
        return failed ? 1 : 0;
}

// (kind name signature) triples of one interface in introspection XML.
std::set<std::string> members(const std::string &xml, const std::string &iface)
{
        std::set<std::string> out;
        size_t at = xml.find("<interface name=\"" + iface + "\"");
        if (at == std::string::npos)
                return out;
        size_t end = xml.find("</interface>", at);
        std::string body = xml.substr(at, end - at);
        std::regex elem(R"re(<(method|signal|property) name="([^"]+)"([^>]*)>)re");
        for (auto it = std::sregex_iterator(body.begin(), body.end(), elem); it != std::sregex_iterator(); ++it) {
                std::string kind = (*it)[1], name = (*it)[2], rest = (*it)[3];
                std::string sig;
                if (kind == "property") {
                        std::smatch t;
                        std::regex_search(rest, t, std::regex(R"re(type="([^"]+)")re"));
                        sig = t[1];
                } else {
                        // The <arg> elements up to the closing tag.
                        size_t from = size_t(it->position()) + size_t(it->length());
                        size_t close = body.find("</" + kind + ">", from);
                        bool selfclosed = !rest.empty() && rest.back() == '/';
                        std::string args = selfclosed ? "" : body.substr(from, close - from);
                        std::regex arg(R"re(<arg ([^>]*)>)re");
                        for (auto a = std::sregex_iterator(args.begin(), args.end(), arg); a != std::sregex_iterator(); ++a) {
                                std::string attrs = (*a)[1];
                                std::smatch t, d;
                                std::regex_search(attrs, t, std::regex(R"re(type="([^"]+)")re"));
                                bool out_arg = std::regex_search(attrs, d, std::regex(R"re(direction="out")re"));
                                sig += (kind == "method" ? (out_arg ? "out:" : "in:") : "") + std::string(t[1]) + " ";
                        }
                }
                out.insert(kind + " " + name + " " + sig);
        }
        return out;
}

std::string introspect(sd_bus *bus, const char *path)
{
        sd_bus_error e = SD_BUS_ERROR_NULL;
        sd_bus_message *reply = nullptr;
        std::string xml;
        if (sd_bus_call_method(bus, "org.bwq1", path, "org.freedesktop.DBus.Introspectable", "Introspect", &e, &reply, "") >= 0) {
                const char *s;
                if (sd_bus_message_read(reply, "s", &s) >= 0)
                        xml = s;
        }
        sd_bus_message_unref(reply);
        sd_bus_error_free(&e);
        return xml;
}

int cmd_contract(const char *address, const char *xml_path)
{
        std::ifstream f(xml_path);
        std::stringstream ss;
        ss << f.rdbuf();
        std::string want = ss.str();
        sd_bus *bus;
        if (connect_bus(address, &bus) < 0)
                return 1;
        std::string path;
        int fd;
        if (do_register(bus, "contract", 4, 16, &path, &fd) < 0)
                return 1;
        int bad = 0;
        for (auto [iface, obj] : {std::pair<std::string, std::string>{"org.bwq1.Manager", "/org/bwq1"},
                                  std::pair<std::string, std::string>{"org.bwq1.Client", path}}) {
                auto a = members(want, iface), b = members(introspect(bus, obj.c_str()), iface);
                if (a.empty()) {
                        fprintf(stderr, "contract: %s is not in %s\n", iface.c_str(), xml_path);
                        bad++;
                }
                for (const auto &m : a)
                        if (!b.count(m)) {
                                printf("contract: %s: documented but not served: %s\n", iface.c_str(), m.c_str());
                                bad++;
                        }
                for (const auto &m : b)
                        if (!a.count(m)) {
                                printf("contract: %s: served but not documented: %s\n", iface.c_str(), m.c_str());
                                bad++;
                        }
                printf("contract: %s: %zu members compared\n", iface.c_str(), a.size());
        }
        sd_bus_flush_close_unref(bus);
        return bad ? 1 : 0;
}

int cmd_notify_sink(const char *path)
{
        int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        sockaddr_un sa{};
        sa.sun_family = AF_UNIX;
        snprintf(sa.sun_path, sizeof sa.sun_path, "%s", path);
        unlink(path);
        if (fd < 0 || bind(fd, reinterpret_cast<sockaddr *>(&sa), sizeof sa) < 0) {
                perror("testclient: notify-sink");
                return 1;
        }
        char buf[4096];
        for (;;) {
                ssize_t n = recv(fd, buf, sizeof buf - 1, 0);
                if (n < 0) {
                        if (errno == EINTR)
                                continue;
                        return 1;
                }
                buf[n] = 0;
                for (ssize_t i = 0; i < n; i++)
                        if (buf[i] == '\n')
                                buf[i] = ' ';
                printf("%s\n", buf);
                fflush(stdout);
        }
}

} // namespace

int main(int argc, char **argv)
{
        if (argc >= 6 && strcmp(argv[2], "hold") == 0)
                return cmd_hold(argv[1], argv[3], atoi(argv[4]), atoi(argv[5]));
        if (argc >= 6 && strcmp(argv[2], "swarm") == 0)
                return cmd_swarm(argv[1], atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
        if (argc >= 5 && strcmp(argv[2], "traffic") == 0)
                return cmd_traffic(argv[1], argv[3], argv[4]);
        if (argc >= 6 && strcmp(argv[2], "resilient") == 0)
                return cmd_resilient(argv[1], argv[3], atoi(argv[4]), atoi(argv[5]));
        if (argc >= 4 && strcmp(argv[2], "contract") == 0)
                return cmd_contract(argv[1], argv[3]);
        if (argc >= 4 && strcmp(argv[2], "notify-sink") == 0)
                return cmd_notify_sink(argv[3]);
        fprintf(stderr, "usage: bwq_testclient ADDRESS hold NAME MIN MAX | swarm CONNS PER POLLS | contract XML\n"
                        "       bwq_testclient - notify-sink PATH\n");
        return 2;
}

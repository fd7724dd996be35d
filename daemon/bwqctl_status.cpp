// bwqctl status and table: every property of bwqd and its clients at once.
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <map>
#include <string>
#include <vector>

#include "common/units.h"

#include "bwqctl.h"
#include "common/bus.h"
#include "common/sd_ptr.h"

namespace bwqctl {

using namespace bwq::dbus;

static int read_table(sd_bus_message *m, std::vector<std::pair<uint64_t, uint8_t>> *t)
{
        int r = sd_bus_message_enter_container(m, 'a', "(ty)");
        if (r < 0)
                return r;
        uint64_t th;
        uint8_t b;
        while ((r = sd_bus_message_read(m, "(ty)", &th, &b)) > 0)
                t->push_back({th, b});
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

// Reads every property of a{sv} into st (manager) or client c.
static int read_props(sd_bus_message *m, Status *st, Status::C *c)
{
        int r = sd_bus_message_enter_container(m, 'a', "{sv}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(m, 'e', "sv")) > 0) {
                const char *name;
                if ((r = sd_bus_message_read(m, "s", &name)) < 0)
                        return r;
                std::string n = name;
                const char *sig;
                if ((r = sd_bus_message_peek_type(m, nullptr, &sig)) < 0)
                        return r;
                if ((r = sd_bus_message_enter_container(m, 'v', sig)) < 0)
                        return r;
                if (st && n == "ActivationBitDepth") r = sd_bus_message_read(m, "y", &st->bits);
                else if (st && n == "AvailableBandwidth") r = sd_bus_message_read(m, "t", &st->available);
                else if (st && n == "UsedBandwidth") r = sd_bus_message_read(m, "t", &st->used);
                else if (st && n == "MaxBandwidth") r = sd_bus_message_read(m, "t", &st->max);
                else if (st && n == "Section") r = sd_bus_message_read(m, "u", &st->section);
                else if (st && n == "Stale") r = sd_bus_message_read(m, "b", &st->stale);
                else if (st && n == "SampleIntervalUSec") r = sd_bus_message_read(m, "t", &st->interval);
                else if (st && n == "Clients") r = sd_bus_message_read(m, "u", &st->clients);
                else if (st && n == "Source") {
                        const char *s;
                        r = sd_bus_message_read(m, "s", &s);
                        if (r >= 0)
                                st->source = s;
                } else if (st && n == "Table") {
                        st->table.clear();
                        r = read_table(m, &st->table);
                } else if (c && n == "Name") {
                        const char *s;
                        r = sd_bus_message_read(m, "s", &s);
                        if (r >= 0)
                                c->name = s;
                } else if (c && n == "Pid") r = sd_bus_message_read(m, "u", &c->pid);
                else if (c && n == "MinBits") r = sd_bus_message_read(m, "y", &c->lo);
                else if (c && n == "MaxBits") r = sd_bus_message_read(m, "y", &c->hi);
                else if (c && n == "BitDepth") r = sd_bus_message_read(m, "y", &c->bits);
                else r = sd_bus_message_skip(m, sig);
                if (r < 0 || (r = sd_bus_message_exit_container(m)) < 0 || (r = sd_bus_message_exit_container(m)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(m);
}

// The clients of a GetManagedObjects reply ("a{oa{sa{sv}}}").
static int read_clients(sd_bus_message *reply, Status *st)
{
        st->client_list.clear();
        int r = sd_bus_message_enter_container(reply, 'a', "{oa{sa{sv}}}");
        if (r < 0)
                return r;
        while ((r = sd_bus_message_enter_container(reply, 'e', "oa{sa{sv}}")) > 0) {
                const char *path;
                if ((r = sd_bus_message_read(reply, "o", &path)) < 0 ||
                    (r = sd_bus_message_enter_container(reply, 'a', "{sa{sv}}")) < 0)
                        return r;
                while ((r = sd_bus_message_enter_container(reply, 'e', "sa{sv}")) > 0) {
                        const char *iface;
                        if ((r = sd_bus_message_read(reply, "s", &iface)) < 0)
                                return r;
                        if (strcmp(iface, kClient) == 0) {
                                Status::C c{path, "", 0, 0, 0, 0};
                                if ((r = read_props(reply, nullptr, &c)) < 0)
                                        return r;
                                st->client_list.push_back(c);
                        } else if ((r = sd_bus_message_skip(reply, "a{sv}")) < 0)
                                return r;
                        if ((r = sd_bus_message_exit_container(reply)) < 0)
                                return r;
                }
                if (r < 0 || (r = sd_bus_message_exit_container(reply)) < 0 || (r = sd_bus_message_exit_container(reply)) < 0)
                        return r;
        }
        if (r < 0)
                return r;
        return sd_bus_message_exit_container(reply);
}

// Everything at once: org.freedesktop.DBus.ObjectManager.GetManagedObjects
// for the clients and Properties.GetAll for the manager.
int get_status(sd_bus *bus, Status *st, sd_bus_error *e)
{
        sd_bus_message *raw = nullptr;
        int r = sd_bus_call_method(bus, kService, kPath, "org.freedesktop.DBus.Properties", "GetAll", e, &raw, "s", kManager);
        bwq::BusMessagePtr props(raw);
        if (r < 0 || (r = read_props(props.get(), st, nullptr)) < 0)
                return r;
        raw = nullptr;
        r = sd_bus_call_method(bus, kService, kPath, "org.freedesktop.DBus.ObjectManager", "GetManagedObjects", e, &raw, "");
        bwq::BusMessagePtr objects(raw);
        if (r < 0)
                return r;
        return read_clients(objects.get(), st);
}

std::string clients_line(const Status &st)
{
        std::string s;
        for (const auto &c : st.client_list)
                s += (s.empty() ? "" : " ") + c.name + "[" + std::to_string(c.lo) + "-" + std::to_string(c.hi) +
                     "]=" + std::to_string(c.bits);
        return s.empty() ? "-" : s;
}

void print_status(const Status &st)
{
        if (json) {
                printf("{\"bits\":%u,\"section\":%u,\"available_bps\":%llu,\"used_bps\":%llu,\"max_bps\":%llu,"
                       "\"source\":%s,\"stale\":%s,\"interval_usec\":%llu,\"table\":[",
                       st.bits, st.section, (unsigned long long)st.available, (unsigned long long)st.used,
                       (unsigned long long)st.max, json_str(st.source).c_str(), st.stale ? "true" : "false",
                       (unsigned long long)st.interval);
                for (size_t i = 0; i < st.table.size(); i++)
                        printf("%s{\"threshold_bps\":%llu,\"bits\":%u}", i ? "," : "", (unsigned long long)st.table[i].first,
                               st.table[i].second);
                printf("],\"clients\":[");
                for (size_t i = 0; i < st.client_list.size(); i++) {
                        const auto &c = st.client_list[i];
                        printf("%s{\"path\":%s,\"name\":%s,\"pid\":%u,\"min_bits\":%u,\"max_bits\":%u,\"bits\":%u}", i ? "," : "",
                               json_str(c.path).c_str(), json_str(c.name).c_str(), c.pid, c.lo, c.hi, c.bits);
                }
                printf("]}\n");
                return;
        }
        printf("Activation bits: %u%s\n", st.bits, st.stale ? " (stale)" : "");
        printf("        Section: %u of %zu\n", st.section, st.table.size());
        printf("      Available: %s\n", bwq::format_bandwidth(st.available).c_str());
        printf("Used by others: %s\n", bwq::format_bandwidth(st.used).c_str());
        printf("        Maximum: %s\n", bwq::format_bandwidth(st.max).c_str());
        printf("         Source: %s, every %s\n", st.source.c_str(), bwq::format_duration(st.interval).c_str());
        printf("        Clients: %u\n", st.clients);
        for (const auto &c : st.client_list)
                printf("                 %s %s pid %u bits [%u, %u] -> %u\n", c.path.c_str(), c.name.c_str(), c.pid, c.lo, c.hi,
                       c.bits);
}

int cmd_status(sd_bus *bus)
{
        Status st;
        bwq::BusError e;
        int r = get_status(bus, &st, e.get());
        if (r < 0)
                return error_exit("status", e.get(), r);
        print_status(st);
        return EXIT_OK;
}

int cmd_table(sd_bus *bus)
{
        Status st;
        bwq::BusError e;
        int r = get_status(bus, &st, e.get());
        if (r < 0)
                return error_exit("table", e.get(), r);
        if (json) {
                printf("[");
                for (size_t i = 0; i < st.table.size(); i++)
                        printf("%s{\"section\":%zu,\"threshold_bps\":%llu,\"bits\":%u}", i ? "," : "", i + 1,
                               (unsigned long long)st.table[i].first, st.table[i].second);
                printf("]\n");
                return EXIT_OK;
        }
        printf("section  available                bits\n");
        for (size_t i = 0; i < st.table.size(); i++) {
                bool last = i + 1 == st.table.size();
                std::string cond = last ? "<= " + bwq::format_bandwidth(i ? st.table[i - 1].first : 0)
                                        : "> " + bwq::format_bandwidth(st.table[i].first);
                printf("%7zu  %-24s %4u%s\n", i + 1, cond.c_str(), st.table[i].second, st.section == i + 1 ? "  <- now" : "");
        }
        return EXIT_OK;
}

} // namespace bwqctl

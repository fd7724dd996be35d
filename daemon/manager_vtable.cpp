// org.bwq1.Manager on /org/bwq1: properties and methods (uapi/org.bwq1.xml),
// each a thin call into the Service.
#include <errno.h>

#include <string>

#include "bus_args.h"
#include "bus_vtables.h"
#include "common/bus.h"
#include "service.h"

namespace bwq {

static int prop_get(sd_bus *, const char *, const char *, const char *property, sd_bus_message *reply, void *userdata,
                    sd_bus_error *)
{
        auto *s = static_cast<Service *>(userdata);
        const Decision &d = s->decision();
        std::string p = property;
        if (p == "ActivationBitDepth")
                return sd_bus_message_append(reply, "y", d.bits);
        if (p == "AvailableBandwidth")
                return sd_bus_message_append(reply, "t", d.available_bps);
        if (p == "UsedBandwidth")
                return sd_bus_message_append(reply, "t", d.used_bps);
        if (p == "MaxBandwidth")
                return sd_bus_message_append(reply, "t", d.max_bps);
        if (p == "Section")
                return sd_bus_message_append(reply, "u", d.section);
        if (p == "Source")
                return sd_bus_message_append(reply, "s", s->source_name().c_str());
        if (p == "Stale")
                return sd_bus_message_append(reply, "b", int(d.stale));
        if (p == "SampleIntervalUSec")
                return sd_bus_message_append(reply, "t", s->interval_usec());
        if (p == "Clients")
                return sd_bus_message_append(reply, "u", uint32_t(s->client_count()));
        if (p == "Table") {
                int r = sd_bus_message_open_container(reply, 'a', "(ty)");
                for (size_t i = 0; r >= 0 && i < s->thresholds().size(); i++)
                        r = sd_bus_message_append(reply, "(ty)", s->thresholds()[i], s->table_bits()[i]);
                return r < 0 ? r : sd_bus_message_close_container(reply);
        }
        return -ENOENT;
}

static int reply_decision(sd_bus_message *m, Service *s)
{
        const Decision &d = s->decision();
        return sd_bus_reply_method_return(m, "yttts", d.bits, d.available_bps, d.used_bps, d.timestamp_usec,
                                          s->source_name().c_str());
}

static int method_get_decision(sd_bus_message *m, void *userdata, sd_bus_error *)
{
        return reply_decision(m, static_cast<Service *>(userdata));
}

static int method_sample(sd_bus_message *m, void *userdata, sd_bus_error *)
{
        auto *s = static_cast<Service *>(userdata);
        (void)s->sample_now(true);
        return reply_decision(m, s);
}

static int method_register(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        return static_cast<Service *>(userdata)->register_client(m, error);
}

static int method_unregister(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        const char *path;
        int r = sd_bus_message_read(m, "o", &path);
        if (r < 0)
                return r;
        return static_cast<Service *>(userdata)->unregister_client(m, path, error);
}

static int method_explain(sd_bus_message *m, void *userdata, sd_bus_error *)
{
        return sd_bus_reply_method_return(m, "s", static_cast<Service *>(userdata)->explain().c_str());
}

// SetTable and Reload: root, or the daemon's own user.
static int check_privileged(sd_bus_message *m, const char *what, sd_bus_error *error)
{
        int r = sd_bus_query_sender_privilege(m, -1);
        if (r < 0)
                return r;
        if (r == 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_ACCESS_DENIED, "%s needs root", what);
        return 1;
}

static int method_set_table(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        int r = check_privileged(m, "SetTable", error);
        if (r <= 0)
                return r;
        std::vector<TableRow> rows;
        if ((r = read_table_rows(m, &rows, error)) < 0)
                return r;
        r = static_cast<Service *>(userdata)->set_table(rows, error);
        if (r < 0)
                return r;
        return sd_bus_reply_method_return(m, "");
}

static int method_reload(sd_bus_message *m, void *userdata, sd_bus_error *error)
{
        int r = check_privileged(m, "Reload", error);
        if (r <= 0)
                return r;
        std::string why;
        if (static_cast<Service *>(userdata)->reload(&why) < 0)
                return sd_bus_error_setf(error, dbus::kErrBadConfig, "configuration refused, the old one stays: %s", why.c_str());
        return sd_bus_reply_method_return(m, "");
}

const sd_bus_vtable manager_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("ActivationBitDepth", "y", prop_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("AvailableBandwidth", "t", prop_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("UsedBandwidth", "t", prop_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("MaxBandwidth", "t", prop_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Section", "u", prop_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Source", "s", prop_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Stale", "b", prop_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("SampleIntervalUSec", "t", prop_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Table", "a(ty)", prop_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_PROPERTY("Clients", "u", prop_get, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_METHOD_WITH_NAMES("GetDecision", "", SD_BUS_PARAM(), "yttts",
                                 SD_BUS_PARAM(bits) SD_BUS_PARAM(available) SD_BUS_PARAM(used) SD_BUS_PARAM(timestamp_usec)
                                         SD_BUS_PARAM(source),
                                 method_get_decision, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Sample", "", SD_BUS_PARAM(), "yttts",
                                 SD_BUS_PARAM(bits) SD_BUS_PARAM(available) SD_BUS_PARAM(used) SD_BUS_PARAM(timestamp_usec)
                                         SD_BUS_PARAM(source),
                                 method_sample, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("RegisterClient", "syya{sv}",
                                 SD_BUS_PARAM(name) SD_BUS_PARAM(min_bits) SD_BUS_PARAM(max_bits) SD_BUS_PARAM(options), "oh",
                                 SD_BUS_PARAM(path) SD_BUS_PARAM(page_fd), method_register, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("UnregisterClient", "o", SD_BUS_PARAM(path), "", SD_BUS_PARAM(), method_unregister,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("Explain", "", SD_BUS_PARAM(), "s", SD_BUS_PARAM(text), method_explain,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD_WITH_NAMES("SetTable", "a(ty)", SD_BUS_PARAM(table), "", SD_BUS_PARAM(), method_set_table,
                                 SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_METHOD("Reload", "", "", method_reload, SD_BUS_VTABLE_UNPRIVILEGED),
        SD_BUS_SIGNAL_WITH_NAMES("BitDepthChanged", "yyt", SD_BUS_PARAM(old_bits) SD_BUS_PARAM(new_bits) SD_BUS_PARAM(available), 0),
        SD_BUS_VTABLE_END,
};

} // namespace bwq

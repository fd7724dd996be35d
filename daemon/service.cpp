#include "service.h"

#include <signal.h>
#include <sys/signalfd.h>
#include <systemd/sd-daemon.h>
#include <time.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>

#include "common/bus.h"
#include "log.h"
#include "common/clock.h"
#include "common/depth.h"

namespace bwq {

static const char kPath[] = "/org/bwq1";
static const char kManager[] = "org.bwq1.Manager";
static const char kClientIface[] = "org.bwq1.Client";
static const char kErrLimit[] = "org.bwq1.Error.LimitExceeded";
static const char kErrNoClient[] = "org.bwq1.Error.NoSuchClient";
static const char kErrBadConfig[] = "org.bwq1.Error.BadConfig";
static const unsigned kRecent = 16;
static const uint64_t kBandwidthSignalUsec = 100000;

struct Client {
        Service *svc = nullptr;
        uint32_t id = 0;
        std::string name, owner, path;
        uint32_t pid = 0;
        uint8_t min_bits = 4, max_bits = 16, bits = 0;
        sd_bus_slot *slot = nullptr;
        ~Client() { sd_bus_slot_unref(slot); }
};

Service::Owner::~Owner() { sd_bus_track_unref(track); }

// ---- org.bwq1.Manager ------------------------------------------------------

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
        r = sd_bus_message_enter_container(m, 'a', "(ty)");
        if (r < 0)
                return r;
        uint64_t t;
        uint8_t b;
        while ((r = sd_bus_message_read(m, "(ty)", &t, &b)) > 0) {
                if (rows.size() >= 16)
                        return sd_bus_error_set(error, SD_BUS_ERROR_INVALID_ARGS, "a table has at most 16 rows");
                rows.push_back({Level{false, 0, t}, b});
        }
        if (r < 0)
                return r;
        r = sd_bus_message_exit_container(m);
        if (r < 0)
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
                return sd_bus_error_setf(error, kErrBadConfig, "configuration refused, the old one stays: %s", why.c_str());
        return sd_bus_reply_method_return(m, "");
}

static const sd_bus_vtable manager_vtable[] = {
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

// ---- org.bwq1.Client -----------------------------------------------------------

static int client_prop(sd_bus *, const char *, const char *, const char *property, sd_bus_message *reply, void *userdata,
                       sd_bus_error *)
{
        auto *c = static_cast<Client *>(userdata);
        std::string p = property;
        if (p == "Name")
                return sd_bus_message_append(reply, "s", c->name.c_str());
        if (p == "Pid")
                return sd_bus_message_append(reply, "u", c->pid);
        if (p == "MinBits")
                return sd_bus_message_append(reply, "y", c->min_bits);
        if (p == "MaxBits")
                return sd_bus_message_append(reply, "y", c->max_bits);
        if (p == "BitDepth")
                return sd_bus_message_append(reply, "y", c->bits);
        return -ENOENT;
}

static const sd_bus_vtable client_vtable[] = {
        SD_BUS_VTABLE_START(0),
        SD_BUS_PROPERTY("Name", "s", client_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("Pid", "u", client_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MinBits", "y", client_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("MaxBits", "y", client_prop, 0, SD_BUS_VTABLE_PROPERTY_CONST),
        SD_BUS_PROPERTY("BitDepth", "y", client_prop, 0, SD_BUS_VTABLE_PROPERTY_EMITS_CHANGE),
        SD_BUS_VTABLE_END,
};

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

// ---- Service -----------------------------------------------------------------

Service::Service(std::string config_path, Overrides ov, std::string bus)
        : config_path_(std::move(config_path)), bus_spec_(std::move(bus)), ov_(std::move(ov))
{
}

Service::~Service()
{
        clients_.clear();
        owners_.clear();
        sd_bus_slot_unref(manager_slot_);
        sd_event_source_unref(timer_);
        sd_bus_flush_close_unref(bus_);
        sd_event_unref(event_);
}

int Service::load_config(Config *ret, std::string *why)
{
        Config c;
        if (int r = config_load(config_path_, &c, why); r < 0)
                return r;
        if (ov_.source)
                c.source = *ov_.source;
        if (!ov_.resctrl_root.empty())
                c.resctrl_path = ov_.resctrl_root;
        if (!ov_.sysfs_root.empty())
                c.sysfs_root = ov_.sysfs_root;
        if (!ov_.replay_path.empty())
                c.replay_path = ov_.replay_path;
        if (ov_.ebpf_test_event)
                c.ebpf_event = *ov_.ebpf_test_event;
        if (const char *sd = getenv("STATE_DIRECTORY"); sd && *sd && c.state_dir == Config().state_dir)
                c.state_dir = sd;
        std::string origin;
        if (int r = config_check(c, resolve_max(c, &origin), why); r < 0)
                return r;
        *ret = c;
        return 0;
}

uint64_t Service::resolve_max(const Config &c, std::string *origin) const
{
        if (c.max_bps) {
                *origin = "configured";
                return *c.max_bps;
        }
        std::ifstream f(c.state_dir + "/max-bandwidth");
        uint64_t v = 0;
        if (f >> v && v > 0) {
                *origin = "calibrated (" + c.state_dir + "/max-bandwidth)";
                return v;
        }
        *origin = "default (no [Bandwidth] Max= and no calibration in " + c.state_dir + ")";
        return 44000000000ull;
}

int Service::open_source(const Config &c, std::string *why)
{
        std::vector<SourceKind> order;
        if (c.source == SourceKind::Auto)
                order = {SourceKind::Resctrl, SourceKind::Perf, SourceKind::Ebpf, SourceKind::Probe};
        else
                order = {c.source};
        std::string passed;
        for (SourceKind k : order) {
                std::unique_ptr<Source> s;
                std::string reason;
                switch (k) {
                case SourceKind::Resctrl: s = make_resctrl_source(c, monotonic_ns); break;
                case SourceKind::Perf: s = make_perf_source(c, monotonic_ns, real_perf_sys()); break;
                case SourceKind::Probe: s = make_probe_source(c, monotonic_ns, max_bps_); break;
                case SourceKind::Replay: s = make_replay_source(c, monotonic_ns); break;
                case SourceKind::Ebpf: s = make_ebpf_source(c, monotonic_ns); break;
                case SourceKind::Auto: break;
                }
                int r = s ? s->start(&reason) : -EOPNOTSUPP;
                if (r >= 0) {
                        source_ = std::move(s);
                        source_name_ = source_kind_name(k);
                        source_choice_ = c.source == SourceKind::Auto
                                                 ? "auto chose " + source_name_ + (passed.empty() ? "" : "; passed over: " + passed)
                                                 : source_name_ + " (configured)";
                        // Clients registered before a source change join the new one.
                        for (auto &[id, cl] : clients_) {
                                std::string w;
                                if (source_->add_client(pid_t(cl->pid), &w) < 0)
                                        log_warning("cannot attribute client %s to %s: %s, ignoring", cl->path.c_str(),
                                                    source_name_.c_str(), w.c_str());
                        }
                        return 0;
                }
                passed += std::string(source_kind_name(k)) + ": " + reason + "; ";
        }
        *why = "no bandwidth source works: " + passed;
        return -ENODEV;
}

int Service::apply_config(const Config &c, std::string *why)
{
        uint64_t max = resolve_max(c, &max_origin_);
        bool source_changed = !source_ || c.source != cfg_.source || c.resctrl_path != cfg_.resctrl_path ||
                              c.sysfs_root != cfg_.sysfs_root || c.replay_path != cfg_.replay_path ||
                              c.probe_method != cfg_.probe_method || c.probe_buffer_bytes != cfg_.probe_buffer_bytes ||
                              c.ebpf_event != cfg_.ebpf_event || c.ebpf_line_size != cfg_.ebpf_line_size ||
                              c.ebpf_max_tasks != cfg_.ebpf_max_tasks || c.ebpf_cgroup != cfg_.ebpf_cgroup ||
                              c.ebpf_tick_usec != cfg_.ebpf_tick_usec ||
                              (c.source == SourceKind::Probe && max != max_bps_);
        max_bps_ = max;
        if (source_changed) {
                std::unique_ptr<Source> old = std::move(source_);
                std::string old_name = source_name_;
                if (int r = open_source(c, why); r < 0) {
                        source_ = std::move(old);
                        source_name_ = old_name;
                        return r;
                }
        }
        cfg_ = c;
        smoother_.configure(c.smoothing, c.ewma_alpha, c.window);
        policy_.configure(c.table, max_bps_, c.hysteresis.resolve(max_bps_), c.min_dwell_usec, c.on_stale, c.stale_bits);
        table_generation_++;
        if (timer_)
                (void)sd_event_source_set_time_relative(timer_, cfg_.interval_usec);
        return 0;
}

int Service::setup()
{
        std::string why;
        Config c;
        if (int r = load_config(&c, &why); r < 0) {
                log_error("bad configuration: %s", why.c_str());
                return -EINVAL;
        }
        if (int r = page_.create(); r < 0) {
                log_error("cannot create the decision page: %s", strerror(-r));
                return r;
        }
        if (int r = apply_config(c, &why); r < 0) {
                log_error("%s", why.c_str());
                return r;
        }
        log_info("source: %s; maximum bandwidth %s, %s", source_choice_.c_str(), format_bandwidth(max_bps_).c_str(),
                 max_origin_.c_str());

        int r = sd_event_default(&event_);
        if (r < 0)
                return log_errno(r, "cannot allocate the event loop");
        sigset_t ss;
        sigemptyset(&ss);
        for (int sig : {SIGHUP, SIGTERM, SIGINT})
                sigaddset(&ss, sig);
        sigprocmask(SIG_BLOCK, &ss, nullptr);
        for (int sig : {SIGHUP, SIGTERM, SIGINT})
                if ((r = sd_event_add_signal(event_, nullptr, sig, on_signal, this)) < 0)
                        return log_errno(r, "cannot watch signal %d", sig);
        (void)sd_event_set_watchdog(event_, true);

        if ((r = bus_open(bus_spec_, &bus_)) < 0)
                return log_errno(r, "cannot connect to the %s bus", bus_spec_.c_str());
        if ((r = sd_bus_add_object_vtable(bus_, &manager_slot_, kPath, kManager, manager_vtable, this)) < 0)
                return log_errno(r, "cannot add %s", kManager);
        if ((r = sd_bus_add_object_manager(bus_, nullptr, kPath)) < 0)
                return log_errno(r, "cannot add the object manager");
        // A lost bus means exit, so that systemd restarts us.
        (void)sd_bus_set_exit_on_disconnect(bus_, 1);
        if ((r = sd_bus_attach_event(bus_, event_, 0)) < 0)
                return log_errno(r, "cannot attach the bus to the event loop");
        if ((r = sd_bus_request_name(bus_, "org.bwq1", 0)) < 0)
                return log_errno(r, "cannot own org.bwq1 (another bwqd, or the bus policy)");

        if ((r = sd_event_add_time_relative(event_, &timer_, CLOCK_MONOTONIC, cfg_.interval_usec, 1000, on_timer, this)) < 0)
                return log_errno(r, "cannot add the sample timer");
        tick();
        return 0;
}

int Service::run()
{
        notify_status();
        (void)sd_notify(0, "READY=1");
        int r = sd_event_loop(event_);
        (void)sd_notify(0, "STOPPING=1\nSTATUS=stopping");
        page_.set_flags(BWQ_PAGE_STOPPED);
        return r;
}

int Service::on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        auto *svc = static_cast<Service *>(userdata);
        svc->tick();
        (void)sd_event_source_set_time(s, usec + svc->cfg_.interval_usec);
        (void)sd_event_source_set_enabled(s, SD_EVENT_ON);
        return 0;
}

int Service::on_signal(sd_event_source *, const struct signalfd_siginfo *si, void *userdata)
{
        auto *svc = static_cast<Service *>(userdata);
        if (si->ssi_signo == SIGHUP) {
                std::string why;
                if (svc->reload(&why) < 0)
                        log_error("reload refused, keeping the old configuration: %s", why.c_str());
                return 0;
        }
        log_info("signal %u: stopping", si->ssi_signo);
        return sd_event_exit(svc->event_, 0);
}

void Service::tick()
{
        const Decision before = policy_.decision();
        Reading rd = source_->read();
        uint64_t now = monotonic_usec();
        last_sample_usec_ = now;
        Recent rec{now, 0, 0, 0, rd.valid, rd.note};
        if (rd.valid && rd.interval_ns > 0) {
                uint64_t total = uint64_t((unsigned __int128)rd.total_bytes * 1000000000u / rd.interval_ns);
                uint64_t npu = uint64_t((unsigned __int128)rd.npu_bytes * 1000000000u / rd.interval_ns);
                uint64_t others = total > npu ? total - npu : 0;
                rec.total_bps = total;
                rec.npu_bps = npu;
                rec.used_bps = smoother_.add(others);
                policy_.on_sample(now, rec.used_bps);
        } else {
                policy_.on_missed(now);
        }
        recent_.push_back(rec);
        while (recent_.size() > kRecent)
                recent_.pop_front();
        publish(before);
}

int Service::sample_now(bool rate_limited)
{
        if (rate_limited && monotonic_usec() - last_sample_usec_ < cfg_.sample_min_interval_usec)
                return 0;
        tick();
        return 1;
}

void Service::publish(const Decision &before)
{
        const Decision &d = policy_.decision();
        page_.publish(d, source_name_, table_generation_, 0);
        if (!bus_)
                return;
        // Depth, section and staleness are signalled at once; bandwidth-only
        // changes at most every kBandwidthSignalUsec (the page and the
        // properties are always current).
        const uint64_t now = monotonic_usec();
        bool urgent = d.bits != before.bits || d.section != before.section || d.stale != before.stale ||
                      d.max_bps != before.max_bps;
        if (d.available_bps != before.available_bps || d.used_bps != before.used_bps)
                bandwidth_pending_ = true;
        std::vector<const char *> changed;
        if (bandwidth_pending_ && (urgent || now - bandwidth_signalled_usec_ >= kBandwidthSignalUsec)) {
                changed.push_back("AvailableBandwidth");
                changed.push_back("UsedBandwidth");
                bandwidth_pending_ = false;
                bandwidth_signalled_usec_ = now;
        }
        if (d.bits != before.bits)
                changed.push_back("ActivationBitDepth");
        if (d.max_bps != before.max_bps)
                changed.push_back("MaxBandwidth");
        if (d.section != before.section)
                changed.push_back("Section");
        if (d.stale != before.stale)
                changed.push_back("Stale");
        if (!changed.empty()) {
                changed.push_back(nullptr);
                (void)sd_bus_emit_properties_changed_strv(bus_, kPath, kManager, const_cast<char **>(changed.data()));
        }
        if (d.bits != before.bits) {
                (void)sd_bus_emit_signal(bus_, kPath, kManager, "BitDepthChanged", "yyt", before.bits, d.bits, d.available_bps);
                for (auto &[id, c] : clients_) {
                        uint8_t b = uint8_t(depth_clamp(d.bits, c->min_bits, c->max_bits));
                        if (b != c->bits) {
                                c->bits = b;
                                (void)sd_bus_emit_properties_changed(bus_, c->path.c_str(), kClientIface, "BitDepth", nullptr);
                        }
                }
                notify_status();
        }
}

void Service::notify_status()
{
        const Decision &d = policy_.decision();
        (void)sd_notifyf(0, "STATUS=%u bits, section %u, %s available of %s (%s)%s", d.bits, d.section,
                         format_bandwidth(d.available_bps).c_str(), format_bandwidth(d.max_bps).c_str(), source_name_.c_str(),
                         d.stale ? ", stale" : "");
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
        if (clients_.size() >= cfg_.clients_total)
                return sd_bus_error_setf(error, kErrLimit, "bwqd has %zu clients, the most it takes ([Clients] Max=)",
                                         clients_.size());
        auto oit = owners_.find(owner);
        if (oit != owners_.end() && oit->second->clients >= cfg_.clients_per_connection)
                return sd_bus_error_setf(error, kErrLimit, "this connection has %u clients, the most it may ([Clients] MaxPerConnection=)",
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
        c->path = std::string(kPath) + "/client/" + std::to_string(c->id);
        if (oit == owners_.end()) {
                auto o = std::make_unique<Owner>();
                o->svc = this;
                o->name = owner;
                if ((r = sd_bus_track_new(bus_, &o->track, on_owner_gone, o.get())) < 0 ||
                    (r = sd_bus_track_add_sender(o->track, m)) < 0)
                        return sd_bus_error_set_errnof(error, r, "cannot track the calling connection: %m");
                oit = owners_.emplace(owner, std::move(o)).first;
        }
        if ((r = sd_bus_add_object_vtable(bus_, &c->slot, c->path.c_str(), kClientIface, client_vtable, c.get())) < 0)
                return r;
        std::string why;
        if (pid && source_->add_client(pid_t(pid), &why) < 0)
                log_warning("client %s: cannot attribute pid %u to %s: %s, ignoring", c->path.c_str(), pid,
                            source_name_.c_str(), why.c_str());
        r = sd_bus_reply_method_return(m, "oh", c->path.c_str(), page_.fd());
        if (r < 0)
                return r;
        log_info("client %s registered: %s, pid %u, bits [%u, %u]", c->path.c_str(), name, pid, lo, hi);
        (void)sd_bus_emit_object_added(bus_, c->path.c_str());
        oit->second->clients++;
        clients_[c->id] = std::move(c);
        (void)sd_bus_emit_properties_changed(bus_, kPath, kManager, "Clients", nullptr);
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
        (void)sd_bus_emit_object_removed(bus_, c->path.c_str());
        c.reset();
        (void)sd_bus_emit_properties_changed(bus_, kPath, kManager, "Clients", nullptr);
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
        return sd_bus_error_setf(error, kErrNoClient, "no client %s", path);
}

int Service::set_table(const std::vector<TableRow> &rows, sd_bus_error *error)
{
        std::string s = table_to_string(rows), why;
        std::vector<TableRow> parsed;
        if (rows.empty() || parse_table(s, &parsed, &why) < 0)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "bad table: %s",
                                         rows.empty() ? "no rows" : why.c_str());
        if (rows.front().threshold.bps > max_bps_)
                return sd_bus_error_setf(error, SD_BUS_ERROR_INVALID_ARGS, "bad table: the first threshold is above the maximum %s",
                                         format_bandwidth(max_bps_).c_str());
        const Decision before = policy_.decision();
        cfg_.table = rows;
        policy_.configure(cfg_.table, max_bps_, cfg_.hysteresis.resolve(max_bps_), cfg_.min_dwell_usec, cfg_.on_stale,
                          cfg_.stale_bits);
        table_generation_++;
        log_info("table set over D-Bus: %s", s.c_str());
        if (before.timestamp_usec)
                policy_.on_sample(monotonic_usec(), before.used_bps);
        (void)sd_bus_emit_properties_changed(bus_, kPath, kManager, "Table", nullptr);
        publish(before);
        return 0;
}

int Service::reload(std::string *why)
{
        (void)sd_notifyf(0, "RELOADING=1\nMONOTONIC_USEC=%llu\nSTATUS=reloading", (unsigned long long)monotonic_usec());
        Config c;
        int r = load_config(&c, why);
        if (r >= 0) {
                const Decision before = policy_.decision();
                uint64_t old_interval = cfg_.interval_usec;
                r = apply_config(c, why);
                if (r >= 0) {
                        log_info("configuration reloaded; source: %s", source_choice_.c_str());
                        if (bus_) {
                                (void)sd_bus_emit_properties_changed(bus_, kPath, kManager, "Table", "Source", nullptr);
                                if (old_interval != cfg_.interval_usec)
                                        (void)sd_bus_emit_properties_changed(bus_, kPath, kManager, "SampleIntervalUSec", nullptr);
                        }
                        publish(before);
                }
        }
        (void)sd_notify(0, "READY=1");
        notify_status();
        return r;
}

std::string Service::explain() const
{
        std::string s = "source: " + source_choice_ + "\n";
        std::string det = source_ ? source_->detail() : "";
        if (!det.empty())
                s += det + (det.back() == '\n' ? "" : "\n");
        s += "maximum: " + format_bandwidth(max_bps_) + ", " + max_origin_ + "\n";
        s += "recent samples (oldest first): time_us total_Bps npu_Bps smoothed_used_by_others_Bps\n";
        for (const auto &r : recent_)
                s += "  " + std::to_string(r.t_usec) + " " +
                     (r.valid ? std::to_string(r.total_bps) + " " + std::to_string(r.npu_bps) + " " + std::to_string(r.used_bps)
                              : std::string("invalid")) +
                     (r.note.empty() ? "" : "  (" + r.note + ")") + "\n";
        s += policy_.explain();
        for (const auto &[id, c] : clients_)
                s += "client " + c->path + " " + c->name + " pid " + std::to_string(c->pid) + ": [" +
                     std::to_string(c->min_bits) + ", " + std::to_string(c->max_bits) + "] -> " + std::to_string(c->bits) +
                     " bits\n";
        return s;
}

} // namespace bwq

// bwqd's configuration at run time: loading it with the command line's
// overrides, applying it (reopening the source when a source setting
// changed), Reload and SIGHUP, and SetTable.
#include <systemd/sd-daemon.h>
#include <unistd.h>


#include "common/bus.h"
#include "common/clock.h"
#include "common/text.h"
#include "log.h"
#include "client.h"
#include "service.h"
#include "source_registry.h"

namespace bwq {

int Service::load_config(Config *ret, std::string *why)
{
        Config c;
        if (int r = config_load(config_path_, &c, why); r < 0)
                return r;
        if (ov_.source)
                c.sampling.source = *ov_.source;
        if (!ov_.resctrl_root.empty())
                c.resctrl.path = ov_.resctrl_root;
        if (!ov_.sysfs_root.empty())
                c.perf.sysfs_root = ov_.sysfs_root;
        if (!ov_.replay_path.empty())
                c.replay.path = ov_.replay_path;
        if (ov_.ebpf_test_event)
                c.ebpf.event = *ov_.ebpf_test_event;
        if (const char *sd = getenv("STATE_DIRECTORY"); sd && *sd && c.service.state_dir == Config().service.state_dir)
                c.service.state_dir = sd;
        std::string origin;
        if (int r = config_check(c, resolve_max(c, &origin), why); r < 0)
                return r;
        *ret = c;
        return 0;
}

int Service::check_config(std::string *why)
{
        Config c;
        return load_config(&c, why);
}

uint64_t Service::resolve_max(const Config &c, std::string *origin) const
{
        if (c.bandwidth.max_bps) {
                *origin = "configured";
                return *c.bandwidth.max_bps;
        }
        const std::string path = c.service.state_dir + "/max-bandwidth";
        uint64_t v = 0;
        std::string why;
        int r = read_calibration(path, &v, &why);
        if (r >= 0) {
                *origin = "calibrated (" + escape_text(path) + ")";
                return v;
        }
        if (r == -ENOENT)
                *origin = "default (no [Bandwidth] Max= and no calibration in " + escape_text(c.service.state_dir) + ")";
        else
                *origin = "default (no [Bandwidth] Max=; calibration ignored: " + why + ")";
        return 44000000000ull;
}

int Service::apply_config(const Config &c, std::string *why)
{
        uint64_t max = resolve_max(c, &max_origin_);
        // The probe's calibration depends on the maximum too.
        bool source_changed = !source_ || source_settings_differ(c, cfg_) ||
                              (c.sampling.source == SourceKind::Probe && max != max_bps_);
        max_bps_ = max;
        if (source_changed) {
                std::unique_ptr<Source> s;
                std::string choice;
                if (int r = source_open(c, max, &s, &choice, why); r < 0)
                        return r;  // the old source stays
                source_ = std::move(s);
                source_name_ = source_->name();
                source_choice_ = choice;
                // Clients registered before a source change join the new one.
                for (auto &[pid, pr] : processes_) {
                        std::string w;
                        if (source_->add_client(ClientProcess{pid_t(pid), pr.pidfd.get()}, &w) < 0)
                                log_warning("cannot attribute client pid %u to %s: %s, ignoring", pid, source_name_.c_str(),
                                            w.c_str());
                }
        }
        if (!cfg_.metrics.textfile.empty() && cfg_.metrics.textfile != c.metrics.textfile)
                (void)unlink(cfg_.metrics.textfile.c_str());  // no stale file left where no one writes
        cfg_ = c;
        smoother_.configure(c.sampling.smoothing, c.sampling.ewma_alpha, c.sampling.window);
        policy_.configure(c.policy.table, max_bps_, c.policy.hysteresis.resolve(max_bps_), c.policy.min_dwell_usec, c.policy.on_stale, c.policy.stale_bits);
        table_generation_++;
        if (timer_.get())
                (void)sd_event_source_set_time_relative(timer_.get(), cfg_.sampling.interval_usec);
        return 0;
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
        cfg_.policy.table = rows;
        policy_.configure(cfg_.policy.table, max_bps_, cfg_.policy.hysteresis.resolve(max_bps_), cfg_.policy.min_dwell_usec, cfg_.policy.on_stale,
                          cfg_.policy.stale_bits);
        table_generation_++;
        log_info("table set over D-Bus: %s", s.c_str());
        if (before.timestamp_usec)
                policy_.on_sample(monotonic_usec(), before.used_bps);
        (void)sd_bus_emit_properties_changed(bus_.get(), dbus::kPath, dbus::kManager, "Table", nullptr);
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
                uint64_t old_interval = cfg_.sampling.interval_usec;
                r = apply_config(c, why);
                if (r >= 0) {
                        log_info("configuration reloaded; source: %s", source_choice_.c_str());
                        if (bus_.get()) {
                                (void)sd_bus_emit_properties_changed(bus_.get(), dbus::kPath, dbus::kManager, "Table", "Source", nullptr);
                                if (old_interval != cfg_.sampling.interval_usec)
                                        (void)sd_bus_emit_properties_changed(bus_.get(), dbus::kPath, dbus::kManager, "SampleIntervalUSec", nullptr);
                        }
                        publish(before);
                }
        }
        (void)sd_notify(0, "READY=1");
        notify_status();
        return r;
}

} // namespace bwq

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

#include "bus_vtables.h"
#include "client.h"
#include "common/bus.h"
#include "log.h"
#include "uapi/bwq_page.h"
#include "common/clock.h"
#include "common/depth.h"

namespace bwq {

static const unsigned kRecent = 16;
static const uint64_t kBandwidthSignalUsec = 100000;

Service::Service(std::string config_path, Overrides ov, std::string bus)
        : config_path_(std::move(config_path)), bus_spec_(std::move(bus)), ov_(std::move(ov))
{
}

Service::~Service()
{
        clients_.clear();
        owners_.clear();
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

        sd_event *ev = nullptr;
        int r = sd_event_default(&ev);
        event_.reset(ev);
        if (r < 0)
                return log_errno(r, "cannot allocate the event loop");
        sigset_t ss;
        sigemptyset(&ss);
        for (int sig : {SIGHUP, SIGTERM, SIGINT})
                sigaddset(&ss, sig);
        sigprocmask(SIG_BLOCK, &ss, nullptr);
        for (int sig : {SIGHUP, SIGTERM, SIGINT})
                if ((r = sd_event_add_signal(event_.get(), nullptr, sig, on_signal, this)) < 0)
                        return log_errno(r, "cannot watch signal %d", sig);
        (void)sd_event_set_watchdog(event_.get(), true);

        sd_bus *bus = nullptr;
        if ((r = bus_open(bus_spec_, &bus)) < 0)
                return log_errno(r, "cannot connect to the %s bus", bus_spec_.c_str());
        bus_.reset(bus);
        sd_bus_slot *slot = nullptr;
        if ((r = sd_bus_add_object_vtable(bus_.get(), &slot, dbus::kPath, dbus::kManager, manager_vtable, this)) < 0)
                return log_errno(r, "cannot add %s", dbus::kManager);
        manager_slot_.reset(slot);
        if ((r = sd_bus_add_object_manager(bus_.get(), nullptr, dbus::kPath)) < 0)
                return log_errno(r, "cannot add the object manager");
        // A lost bus means exit, so that systemd restarts us.
        (void)sd_bus_set_exit_on_disconnect(bus_.get(), 1);
        if ((r = sd_bus_attach_event(bus_.get(), event_.get(), 0)) < 0)
                return log_errno(r, "cannot attach the bus to the event loop");
        if ((r = sd_bus_request_name(bus_.get(), dbus::kService, 0)) < 0)
                return log_errno(r, "cannot own org.bwq1 (another bwqd, or the bus policy)");

        sd_event_source *timer = nullptr;
        if ((r = sd_event_add_time_relative(event_.get(), &timer, CLOCK_MONOTONIC, cfg_.sampling.interval_usec, 1000, on_timer,
                                            this)) < 0)
                return log_errno(r, "cannot add the sample timer");
        timer_.reset(timer);
        tick();
        return 0;
}

int Service::run()
{
        notify_status();
        (void)sd_notify(0, "READY=1");
        int r = sd_event_loop(event_.get());
        (void)sd_notify(0, "STOPPING=1\nSTATUS=stopping");
        page_.set_flags(BWQ_PAGE_STOPPED);
        return r;
}

int Service::on_timer(sd_event_source *s, uint64_t usec, void *userdata)
{
        auto *svc = static_cast<Service *>(userdata);
        svc->tick();
        (void)sd_event_source_set_time(s, usec + svc->cfg_.sampling.interval_usec);
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
        return sd_event_exit(svc->event_.get(), 0);
}

// The bytes the clients' traffic counters moved since the last call.  A
// counter that went down was reset: it counts from there.  The sum is
// capped by what the source saw in all, in tick().
uint64_t Service::client_traffic()
{
        uint64_t sum = 0;
        for (auto &[id, c] : clients_) {
                if (!c->traffic)
                        continue;
                uint64_t cur = __atomic_load_n(&c->traffic.as<const bwq_traffic>()->bytes, __ATOMIC_ACQUIRE);
                uint64_t delta = cur >= c->traffic_last ? cur - c->traffic_last : 0;
                c->traffic_last = cur;
                sum = delta > UINT64_MAX - sum ? UINT64_MAX : sum + delta;
        }
        return sum;
}

void Service::tick()
{
        const Decision before = policy_.decision();
        Reading rd = source_->read();
        // Sources that cannot tell the NPU clients' traffic from the rest's
        // subtract what the clients report.
        const uint64_t reported = client_traffic();
        const bool npu_reported = !rd.npu_split;
        if (npu_reported)
                rd.npu_bytes = std::min(reported, rd.total_bytes);
        uint64_t now = monotonic_usec();
        last_sample_usec_ = now;
        Recent rec{now, 0, 0, 0, rd.valid, npu_reported, rd.note};
        if (rd.valid && rd.interval_ns > 0) {
                uint64_t total = uint64_t((unsigned __int128)rd.total_bytes * 1000000000u / rd.interval_ns);
                uint64_t npu = uint64_t((unsigned __int128)rd.npu_bytes * 1000000000u / rd.interval_ns);
                uint64_t others = total > npu ? total - npu : 0;
                rec.total_bps = total;
                rec.npu_bps = npu;
                rec.used_bps = smoother_.add(others);
                policy_.on_sample(now, rec.used_bps);
                samples_++;
        } else {
                policy_.on_missed(now);
                missed_samples_++;
        }
        recent_.push_back(rec);
        while (recent_.size() > kRecent)
                recent_.pop_front();
        publish(before);
        if (!cfg_.metrics.textfile.empty() && now - metrics_written_usec_ >= cfg_.metrics.interval_usec)
                write_metrics(now);
}

int Service::sample_now(bool rate_limited)
{
        if (rate_limited && monotonic_usec() - last_sample_usec_ < cfg_.sampling.sample_min_interval_usec)
                return 0;
        tick();
        return 1;
}

void Service::publish(const Decision &before)
{
        const Decision &d = policy_.decision();
        page_.publish(d, source_name_, table_generation_, 0, monotonic_ns(), cfg_.sampling.interval_usec * 1000);
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
                (void)sd_bus_emit_properties_changed_strv(bus_.get(), dbus::kPath, dbus::kManager, const_cast<char **>(changed.data()));
        }
        if (d.bits != before.bits) {
                decision_changes_++;
                (void)sd_bus_emit_signal(bus_.get(), dbus::kPath, dbus::kManager, "BitDepthChanged", "yyt", before.bits, d.bits, d.available_bps);
                for (auto &[id, c] : clients_) {
                        uint8_t b = uint8_t(depth_clamp(d.bits, c->min_bits, c->max_bits));
                        if (b != c->bits) {
                                c->bits = b;
                                (void)sd_bus_emit_properties_changed(bus_.get(), c->path.c_str(), dbus::kClient, "BitDepth", nullptr);
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

} // namespace bwq

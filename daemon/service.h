// bwqd's service: sources, policy and decision page on sd-event, published
// on D-Bus (org.bwq1, DESIGN §4.4) with sd-bus.  Its parts live in files of
// their own: the lifecycle and the sample tick (service.cpp), the
// configuration and reload (reload.cpp), the client registry
// (client_registry.cpp), the bus vtables (manager_vtable.cpp,
// client_vtable.cpp) and Explain (explain.cpp).
#pragma once

#include <systemd/sd-bus.h>
#include <systemd/sd-event.h>

#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <string>

#include "common/sd_ptr.h"
#include "common/unique_fd.h"
#include "config.h"
#include "decision_page.h"
#include "policy.h"
#include "source.h"

namespace bwq {

// What the command line sets over the config file.
struct Overrides {
        std::optional<SourceKind> source;
        std::string resctrl_root, sysfs_root, replay_path;
        std::optional<EbpfEvent> ebpf_test_event;  // tests only: a software stand-in
};

struct Client;

class Service {
public:
        Service(std::string config_path, Overrides ov, std::string bus);
        ~Service();
        // Returns 0, or a negative errno after logging; -EINVAL for a bad
        // config (the caller exits 78).
        int setup();
        // Loads and checks the configuration as setup() and reload() do, and
        // changes nothing (--check-config).
        int check_config(std::string *why);
        int run();

        // For sd-bus callbacks.
        sd_bus *bus() { return bus_.get(); }
        const Decision &decision() const { return policy_.decision(); }
        const std::string &source_name() const { return source_name_; }
        uint64_t interval_usec() const { return cfg_.sampling.interval_usec; }
        const Config &config() const { return cfg_; }
        size_t client_count() const { return clients_.size(); }
        const std::vector<uint64_t> &thresholds() const { return policy_.thresholds(); }
        const std::vector<uint8_t> &table_bits() const { return policy_.bits(); }

        int sample_now(bool rate_limited);
        int register_client(sd_bus_message *m, sd_bus_error *error);
        int unregister_client(sd_bus_message *m, const char *path, sd_bus_error *error);
        int set_table(const std::vector<TableRow> &rows, sd_bus_error *error);
        // Re-reads the config; on error keeps the old one and returns it in *why.
        int reload(std::string *why);
        std::string explain() const;
        void drop_client(uint32_t id);
        void drop_owner(const std::string &owner);

private:
        int load_config(Config *ret, std::string *why);
        int apply_config(const Config &c, std::string *why);
        uint64_t resolve_max(const Config &c, std::string *origin) const;
        void tick();
        void publish(const Decision &before);
        void notify_status();
        static int on_timer(sd_event_source *s, uint64_t usec, void *userdata);
        static int on_signal(sd_event_source *s, const struct signalfd_siginfo *si, void *userdata);

        std::string config_path_, bus_spec_;
        Overrides ov_;
        Config cfg_;
        EventPtr event_;
        BusPtr bus_;
        EventSourcePtr timer_;
        BusSlotPtr manager_slot_;
        std::unique_ptr<Source> source_;
        std::string source_name_, source_choice_;
        Smoother smoother_;
        Policy policy_;
        DecisionPage page_;
        uint64_t max_bps_ = 0;
        std::string max_origin_;
        uint32_t table_generation_ = 1;
        uint64_t last_sample_usec_ = 0;
        bool bandwidth_pending_ = false;
        uint64_t bandwidth_signalled_usec_ = 0;
        struct Recent {
                uint64_t t_usec, total_bps, npu_bps, used_bps;
                bool valid;
                bool npu_reported;  // npu_bps is the clients' reports, not the source's measure
                std::string note;
        };
        uint64_t client_traffic();
        std::deque<Recent> recent_;
        std::map<uint32_t, std::unique_ptr<Client>> clients_;
        // One sd_bus_track per client connection: a bus match each, not one
        // per client.
        struct Owner {
                Service *svc = nullptr;
                std::string name;
                unsigned clients = 0;
                BusTrackPtr track;
        };
        std::map<std::string, std::unique_ptr<Owner>> owners_;
        // The client processes: a pidfd each, opened at the first client's
        // registration; the source learns of a process with its first client
        // and forgets it with its last.
        struct Process {
                unique_fd pidfd;
                unsigned clients = 0;
        };
        std::map<uint32_t, Process> processes_;
        // Clients per uid of the users outside root and bwqd's own.
        std::map<uint32_t, unsigned> user_clients_;
        unsigned unprivileged_clients_ = 0;
        int check_limits(const std::string &owner, uint32_t uid, bool privileged, sd_bus_error *error) const;
        int open_pidfd(sd_bus_message *m, uint32_t pid, unique_fd *ret);
        static int on_owner_gone(sd_bus_track *t, void *userdata);
        uint32_t next_client_ = 1;

        // The metrics file (metrics.cpp): counters since start, and the
        // last write's error, logged once until a write succeeds again.
        uint64_t decision_changes_ = 0, samples_ = 0, missed_samples_ = 0, refused_registrations_ = 0;
        uint64_t metrics_written_usec_ = 0;
        std::string metrics_error_;
        std::string metrics_text() const;
        void write_metrics(uint64_t now_usec);
};

} // namespace bwq

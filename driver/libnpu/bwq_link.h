// The driver's link to bwqd (DESIGN §5.5): one D-Bus connection per
// device, served by its own thread.  Models in a BWQ mode register as
// clients; the link hands out the decision page, asks for fresh samples,
// and registers again by itself when bwqd appears or restarts
// (NameOwnerChanged).  Without bwqd the models run at their fallback depth.
#pragma once

#include <condition_variable>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/mapping.h"
#include "common/sd_ptr.h"
#include "common/unique_fd.h"

namespace npu {

class BwqLink {
public:
        // `bus`: "system", "session" or a D-Bus address ($BWQ_BUS, else system).
        explicit BwqLink(std::string bus);
        ~BwqLink();
        BwqLink(const BwqLink &) = delete;
        BwqLink &operator=(const BwqLink &) = delete;

        // A model joins or leaves; ids are the caller's.
        void add_client(uint64_t id, const std::string &name, unsigned min_bits, unsigned max_bits);
        void remove_client(uint64_t id);
        // The decision page: a new fd (the caller closes it), or -1 without
        // bwqd.  *ret_generation changes whenever the page does.
        int page(uint64_t *ret_generation);
        uint64_t generation();
        // Asks bwqd for a fresh sample and waits for the answer, at most
        // timeout_ms.  Returns 0, -ETIME or -ENOTCONN.
        int sample(unsigned timeout_ms);

        // Where a client's registration stands.
        enum class State { NoBwqd, Pending, Refused, Registered };
        struct Status {
                State state = State::NoBwqd;
                unsigned refusals = 0;      // since the last success
                uint64_t retry_in_ns = 0;   // Refused: until the next attempt
                std::string reason;         // Refused: bwqd's (or the bus's) message
        };
        Status status(uint64_t id);
        // The bytes a finished run of client `id` moved, added to its
        // traffic counter, which bwqd reads (uapi/bwq_page.h, bwq_traffic).
        void add_traffic(uint64_t id, uint64_t bytes);

        // A refused registration is tried again after kRetryFirstMs, then
        // twice as long each time up to kRetryMaxMs (libnpu(3)).
        static constexpr unsigned kRetryFirstMs = 250, kRetryMaxMs = 5000;

private:
        struct Client {
                std::string name;
                unsigned lo, hi;
                State state = State::NoBwqd;  // NoBwqd: not sent (yet)
                std::string path;             // Registered: the client object
                std::string reason;
                unsigned refusals = 0, backoff_ms = 0;
                uint64_t retry_at_ns = 0;
                uint64_t attempt = 0;         // a reply to an older attempt is ignored
                // The traffic counter: a sealed memfd this client writes and
                // bwqd maps read-only; shared so that a move keeps it.
                std::shared_ptr<bwq::unique_fd> traffic_fd;
                std::shared_ptr<bwq::Mapping> traffic;
        };
        void make_traffic_counter(Client *c);
        // The poll timeout until the next retry is due (ms), at most cap.
        int next_retry_ms(int cap);
        void run();
        bool connect_bus();
        void drop_bus();
        void send_requests();
        void set_owner(bool present);
        void wake();

        std::string bus_spec_;
        std::mutex mu_;
        std::condition_variable cv_;
        std::map<uint64_t, Client> clients_;
        std::deque<std::string> unregister_;  // paths to unregister
        bwq::unique_fd page_fd_;
        uint64_t generation_ = 1;
        bool owner_ = false;                  // org.bwq1 has an owner
        uint64_t samples_asked_ = 0, samples_sent_ = 0, samples_done_ = 0;
        bool stop_ = false;
        bwq::unique_fd wake_fd_;
        bwq::BusPtr bus_;                     // the link thread's alone
        std::thread thread_;
        uint64_t attempts_ = 0;
        bool traffic_refused_ = false;  // an older bwqd that takes no TrafficCounter
        friend struct LinkCall;
};

} // namespace npu

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
#include <mutex>
#include <string>
#include <thread>

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

private:
        struct Client {
                std::string name;
                unsigned lo, hi;
                std::string path;  // "" until registered
        };
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
        friend struct LinkCall;
};

} // namespace npu

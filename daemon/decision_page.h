// The decision page (DESIGN §4.5): a 4 KiB memfd sealed against shrinking,
// growing and new writable mappings, written by bwqd under a seqlock.
#pragma once

#include <cstdint>
#include <string>

#include "common/mapping.h"
#include "common/unique_fd.h"
#include "uapi/bwq_page.h"

namespace bwq {

struct Decision;

class DecisionPage {
public:
        DecisionPage() = default;
        DecisionPage(const DecisionPage &) = delete;
        DecisionPage &operator=(const DecisionPage &) = delete;

        // Returns 0 or a negative errno.
        int create();
        int fd() const { return fd_.get(); }
        // now_ns and interval_ns: bwqd's heartbeat, by which clients tell a
        // frozen page from a live one (bwq_decision_frozen).
        void publish(const Decision &d, const std::string &source, uint32_t table_generation, uint32_t flags,
                     uint64_t now_ns, uint64_t interval_ns);
        void set_flags(uint32_t flags);

private:
        unique_fd fd_;
        Mapping mapping_;
        bwq_page *page_ = nullptr;  // mapping_'s
};

} // namespace bwq

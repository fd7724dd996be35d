// The bandwidth sources bwqd knows (DESIGN §4.1), in auto's order: a new
// source is one row here plus its own file.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config.h"
#include "source.h"

namespace bwq {

struct SourceEntry {
        SourceKind kind;
        bool in_auto;  // tried by Source=auto, in the table's order
        std::unique_ptr<Source> (*make)(const Config &c, Clock clock, uint64_t max_bps);
};
const std::vector<SourceEntry> &source_registry();

// The source the config asks for, started: with Source=auto the first of
// the registry's that starts.  Returns 0 with *ret and *ret_choice (what
// was chosen and what was passed over, and why), or -ENODEV with *ret_why.
int source_open(const Config &c, uint64_t max_bps, std::unique_ptr<Source> *ret, std::string *ret_choice,
                std::string *ret_why);

// Whether a reload from `a` to `b` needs the source reopened: any setting
// a source reads.
bool source_settings_differ(const Config &a, const Config &b);

} // namespace bwq

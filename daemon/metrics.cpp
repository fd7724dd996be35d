// bwqd's metrics for a fleet: the node_exporter textfile-collector format
// (Prometheus text exposition), written atomically to [Metrics]
// TextfilePath= every Interval=, so that no network socket is needed in
// the daemon.  See bwqd.conf(5).
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "common/text.h"
#include "common/unique_fd.h"
#include "log.h"
#include "service.h"

namespace bwq {

namespace {

void metric(std::string *out, const char *name, const char *type, const char *help, double value, const std::string &labels = "")
{
        char buf[64];
        snprintf(buf, sizeof buf, "%.17g", value);
        *out += std::string("# HELP ") + name + " " + help + "\n# TYPE " + name + " " + type + "\n" + name + labels + " " + buf +
                "\n";
}

// A label value: backslash, double quote and newline escaped.
std::string label_value(const std::string &v)
{
        std::string s;
        for (char c : v) {
                if (c == '\\' || c == '"')
                        s += '\\';
                if (c == '\n') {
                        s += "\\n";
                        continue;
                }
                s += c;
        }
        return s;
}

} // namespace

std::string Service::metrics_text() const
{
        const Decision &d = policy_.decision();
        std::string s;
        metric(&s, "bwq_activation_bits", "gauge", "The activation bit depth bwqd decided (4, 6, 8 or 16).", d.bits);
        metric(&s, "bwq_table_section", "gauge", "The table section of the decision, 1 = most bandwidth.", d.section);
        metric(&s, "bwq_available_bandwidth_bytes_per_second", "gauge", "Bandwidth available to the NPU clients.",
               double(d.available_bps));
        metric(&s, "bwq_used_bandwidth_bytes_per_second", "gauge", "Bandwidth used by everything but the NPU clients (smoothed).",
               double(d.used_bps));
        metric(&s, "bwq_max_bandwidth_bytes_per_second", "gauge", "The maximum bandwidth the table is of.", double(d.max_bps));
        const uint64_t npu = recent_.empty() ? 0 : recent_.back().npu_bps;
        metric(&s, "bwq_npu_bandwidth_bytes_per_second", "gauge", "Bandwidth of the NPU clients in the last sample.", double(npu));
        metric(&s, "bwq_stale", "gauge", "1 when no valid sample came for three intervals.", d.stale ? 1 : 0);
        metric(&s, "bwq_source_info", "gauge", "The bandwidth source in use.", 1, "{source=\"" + label_value(source_name_) + "\"}");
        metric(&s, "bwq_sample_interval_seconds", "gauge", "The sampling interval.", double(cfg_.sampling.interval_usec) / 1e6);
        metric(&s, "bwq_clients", "gauge", "Registered NPU clients.", double(clients_.size()));
        metric(&s, "bwq_decision_changes_total", "counter", "Changes of the activation bit depth since bwqd started.",
               double(decision_changes_));
        metric(&s, "bwq_samples_total", "counter", "Valid samples since bwqd started.", double(samples_));
        metric(&s, "bwq_missed_samples_total", "counter", "Samples the source could not give since bwqd started.",
               double(missed_samples_));
        metric(&s, "bwq_refused_registrations_total", "counter", "Registrations refused by the client limits since bwqd started.",
               double(refused_registrations_));
        return s;
}

// Written next to the target under a name the collector ignores (it reads
// *.prom), created new without following a link, then renamed over it: a
// scrape sees the old file or the new one, never half of one.
void Service::write_metrics(uint64_t now_usec)
{
        metrics_written_usec_ = now_usec;
        const std::string &path = cfg_.metrics.textfile;
        const std::string tmp = path + "." + std::to_string(getpid()) + ".tmp";
        const std::string text = metrics_text();
        std::string err;
        (void)unlink(tmp.c_str());
        unique_fd fd(open(tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK, 0644));
        if (!fd)
                err = std::string("cannot create ") + escape_text(tmp) + ": " + strerror(errno);
        else if (fchmod(fd.get(), 0644) < 0 || write(fd.get(), text.data(), text.size()) != ssize_t(text.size()))
                err = std::string("cannot write ") + escape_text(tmp) + ": " + strerror(errno ? errno : EIO);
        else if (rename(tmp.c_str(), path.c_str()) < 0)
                err = std::string("cannot rename it to ") + escape_text(path) + ": " + strerror(errno);
        if (!err.empty()) {
                (void)unlink(tmp.c_str());
                if (err != metrics_error_)
                        log_warning("metrics: %s", err.c_str());
        } else if (!metrics_error_.empty()) {
                log_info("metrics: %s written again", escape_text(path).c_str());
        }
        metrics_error_ = err;
}

} // namespace bwq

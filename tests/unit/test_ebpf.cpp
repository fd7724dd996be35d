// The ebpf source for real: the programs load, verify and attach on this
// kernel, with a software counter (page faults) standing in for the
// hardware memory-traffic counter this VM lacks.  A child that makes a
// known number of page faults is charged to its own tgid and cgroup and
// not to others.  Without root or BPF, the tests say skipped and why.
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/utsname.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>
#include <string>

#include "daemon/config.h"
#include "daemon/source.h"
#include "test_util.h"

using namespace bwq;

namespace {

constexpr unsigned kPages = 20000;  // page faults the child makes

// A child that waits for a byte on `go`, faults in kPages fresh pages, and
// exits.
pid_t spawn_faulter(int *ret_go)
{
        int p[2];
        assert_int_equal(pipe(p), 0);
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
                close(p[1]);
                char c;
                if (read(p[0], &c, 1) != 1)
                        _exit(1);
                size_t n = size_t(kPages) * 4096;
                auto *m = static_cast<volatile char *>(mmap(nullptr, n, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0));
                if (m == MAP_FAILED)
                        _exit(1);
                madvise(const_cast<char *>(m), n, MADV_NOHUGEPAGE);
                for (size_t i = 0; i < n; i += 4096)
                        m[i] = 1;
                _exit(0);
        }
        close(p[0]);
        *ret_go = p[1];
        return pid;
}

void run_child(pid_t pid, int go)
{
        assert_int_equal(write(go, "g", 1), 1);
        close(go);
        int st;
        assert_int_equal(waitpid(pid, &st, 0), pid);
        assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
        usleep(50000);  // a context switch and a tick on every CPU
}

std::unique_ptr<Source> start_or_skip(Config c)
{
        if (geteuid() != 0) {
                print_message("skipped: the ebpf source needs root (CAP_BPF and CAP_PERFMON)\n");
                skip();
        }
        c.ebpf.event = EbpfEvent::TestPageFaults;
        auto s = make_ebpf_source(c, monotonic_ns);
        std::string why;
        int r = s->start(&why);
        if (r == -EPERM || r == -EACCES) {
                print_message("skipped: %s\n", why.c_str());
                skip();
        }
        if (r < 0)
                fail_msg("ebpf source: %s", why.c_str());
        return s;
}

} // namespace

static void attribution_to_tgid(void **)
{
        utsname u;
        uname(&u);
        print_message("kernel %s %s\n", u.sysname, u.release);
        Config c;
        auto s = start_or_skip(c);
        int go;
        pid_t child = spawn_faulter(&go);
        std::string why;
        assert_int_equal(s->add_client(ClientProcess{child, -1}, &why), 0);
        (void)s->read();
        // Faults between fork and registration stay where they were charged.
        uint64_t before = ebpf_events_of(s.get(), child);
        run_child(child, go);
        Reading r = s->read();
        assert_true(r.valid);
        uint64_t npu_events = r.npu_bytes / 64, total_events = r.total_bytes / 64;
        print_message("child %d: %llu page faults charged to it (made %u), %llu by everyone, %llu to this test's own tgid\n",
                      child, (unsigned long long)npu_events, kPages, (unsigned long long)total_events,
                      (unsigned long long)ebpf_events_of(s.get(), getpid()));
        // Tolerance: the faults of the child's own start-up and exit on top
        // of kPages, at most 25% more; never fewer than 95%.
        assert_true(npu_events >= kPages * 95 / 100);
        assert_true(npu_events <= kPages * 125 / 100);
        assert_true(total_events >= npu_events);
        // Not charged to others: this process faulted far less.
        assert_true(ebpf_events_of(s.get(), getpid()) < kPages / 10);
        assert_int_equal(ebpf_events_of(s.get(), child), before);  // a client's events go to the clients' map
        s->remove_client(ClientProcess{child, -1});
}

// What attribution_to_cgroup made, removed by its teardown even when an
// assertion fails (cmocka leaves a failed test by longjmp: no destructors).
static std::string cgroup_dir, cgroup_mount;

static int remove_test_cgroup(void **)
{
        if (!cgroup_dir.empty() && rmdir(cgroup_dir.c_str()) < 0 && errno != ENOENT)
                print_error("cannot remove %s: %s\n", cgroup_dir.c_str(), strerror(errno));
        if (!cgroup_mount.empty()) {
                if (umount(cgroup_mount.c_str()) < 0)
                        print_error("cannot unmount %s: %s\n", cgroup_mount.c_str(), strerror(errno));
                (void)rmdir(cgroup_mount.c_str());
        }
        cgroup_dir.clear();
        cgroup_mount.clear();
        return 0;
}

static void attribution_to_cgroup(void **)
{
        // The cgroup v2 hierarchy: at /sys/fs/cgroup, or mounted here for the test.
        std::ifstream mounts("/proc/self/mounts");
        std::string line, root;
        while (std::getline(mounts, line)) {
                std::istringstream f(line);
                std::string dev, where, type;
                f >> dev >> where >> type;
                if (type == "cgroup2" && root.empty())
                        root = where;
        }
        if (root.empty() && geteuid() == 0) {
                char t[] = "/tmp/bwq-cg2-XXXXXX";
                if (mkdtemp(t) && mount("none", t, "cgroup2", 0, nullptr) == 0)
                        root = cgroup_mount = t;
        }
        if (root.empty()) {
                print_message("skipped: no cgroup v2 hierarchy, and it cannot be mounted here\n");
                skip();
        }
        std::string dir = root + "/bwq-test-" + std::to_string(getpid());
        if (mkdir(dir.c_str(), 0755) < 0) {
                print_message("skipped: cannot create %s: %s\n", dir.c_str(), strerror(errno));
                skip();
        }
        cgroup_dir = dir;
        Config c;
        c.ebpf.cgroup = dir;
        auto s = start_or_skip(c);
        int go;
        pid_t child = spawn_faulter(&go);
        {
                std::ofstream procs(dir + "/cgroup.procs");
                procs << child << "\n";
        }
        (void)s->read();
        run_child(child, go);
        Reading r = s->read();
        uint64_t npu_events = r.npu_bytes / 64;
        print_message("cgroup %s: %llu page faults charged to it (its child made %u)\n", dir.c_str(),
                      (unsigned long long)npu_events, kPages);
        assert_true(npu_events >= kPages * 95 / 100);
        assert_true(npu_events <= kPages * 125 / 100);
        s.reset();
}

static void rejects_missing_or_non_memory_events(void **)
{
        Config c;
        std::string why;
        assert_int_equal(config_parse_text("[Ebpf]\nEvent=cycles\n", "e.conf", &c, &why), -EINVAL);
        assert_string_equal(why.c_str(), "e.conf:2: [Ebpf] Event: 'cycles' is not a memory-traffic event (auto, llc-misses, llc-load-misses)");
        assert_int_equal(config_parse_text("[Ebpf]\nEvent=dram-magic\n", "e.conf", &c, &why), -EINVAL);
        assert_int_equal(config_parse_text("[Ebpf]\nLineSize=48\n", "e.conf", &c, &why), -EINVAL);
        // The hardware counter: where the machine has none (a VM), start
        // fails cleanly and names why; where it has one, the source works.
        c.ebpf.event = EbpfEvent::LlcMisses;
        auto s = make_ebpf_source(c, monotonic_ns);
        int r = s->start(&why);
        if (r < 0) {
                print_message("no hardware counter here: %s\n", why.c_str());
                assert_true(r == -ENODEV);
                assert_non_null(strstr(why.c_str(), "no hardware memory-traffic counter"));
        } else {
                // A counter is there: it must count a child's memory traffic.
                int go;
                pid_t child = spawn_faulter(&go);
                assert_int_equal(s->add_client(ClientProcess{child, -1}, &why), 0);
                (void)s->read();
                run_child(child, go);
                Reading rd = s->read();
                print_message("this machine has an LLC-miss counter: %llu bytes in all, %llu by the client\n",
                              (unsigned long long)rd.total_bytes, (unsigned long long)rd.npu_bytes);
                assert_true(rd.valid);
                assert_true(rd.npu_bytes > 0);
                assert_true(rd.total_bytes >= rd.npu_bytes);
                s->remove_client(ClientProcess{child, -1});
        }
}

int main()
{
        const struct CMUnitTest tests[] = {
                cmocka_unit_test(attribution_to_tgid),
                cmocka_unit_test_teardown(attribution_to_cgroup, remove_test_cgroup),
                cmocka_unit_test(rejects_missing_or_non_memory_events),
        };
        return cmocka_run_group_tests_name("ebpf", tests, nullptr, nullptr);
}

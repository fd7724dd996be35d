#!/bin/bash
# The packages under a real systemd: a Debian 12 tree (debootstrap, cached
# in build/nspawn) boots in systemd-nspawn with an overlay that keeps the
# tree clean; the .debs of `make deb` are installed with dpkg and bwqd is
# tried as a user would meet it: the service, the system bus and its
# policy, reload, restarts by systemd after a watchdog stall and a crash,
# npu-run as an unprivileged user, every source under the unit's own
# sandbox, the exposure rating, and a purge.  Needs root.
set -u
B=${B:-build}
ROOT=$(pwd)
DEBS="$ROOT/$B/deb"
TREE="$ROOT/$B/nspawn/bookworm"
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }
die() { echo "not ok - $1"; echo "$pass passed, $((fail + 1)) failed"; exit 1; }

[ "$(id -u)" -eq 0 ] || die "the booted-systemd test needs root (systemd-nspawn, debootstrap)"
for t in systemd-nspawn nsenter; do
	command -v "$t" >/dev/null || die "$t is not installed (make deps installs it)"
done
ls "$DEBS"/bwqd_*.deb >/dev/null 2>&1 || die "no packages in $DEBS: run make deb first"

# ---- the tree (tests/packaging/nspawn_tree.sh; `make packaging` has it
# made while the packages build) ------------------------------------------------
out=$(B="$B" bash "$ROOT/tests/packaging/nspawn_tree.sh" 2>&1) || die "$out"
[ -n "$out" ] && echo "$out"

# ---- boot ---------------------------------------------------------------------
T=$(mktemp -d /tmp/bwq-nspawn-XXXXXX)
mkdir -p "$T/debs"
cp "$DEBS"/*.deb "$T/debs/"
rm -f "$T"/debs/*-dbgsym_*.deb
NSPAWN_PID=
cleanup() {
	# SIGTERM to nspawn shuts the guest down; SIGKILL would leave its PID 1.
	if [ -n "$NSPAWN_PID" ] && kill -0 "$NSPAWN_PID" 2>/dev/null; then
		kill -TERM "$NSPAWN_PID"
		for _ in $(seq 100); do kill -0 "$NSPAWN_PID" 2>/dev/null || break; sleep 0.1; done
	fi
	rm -rf "$T"
}
trap cleanup EXIT
# eBPF and perf inside need the unified cgroup hierarchy, the two
# capabilities and both system calls let through nspawn's own filter.
SYSTEMD_NSPAWN_UNIFIED_HIERARCHY=1 systemd-nspawn -b -D "$TREE" --register=no --keep-unit --console=pipe \
	--volatile=overlay --capability=CAP_BPF,CAP_PERFMON "--system-call-filter=bpf perf_event_open" \
	--bind-ro="$T/debs:/debs" --machine=bwq-test > "$T/nspawn.log" 2>&1 &
NSPAWN_PID=$!
G=
for _ in $(seq 100); do
	G=$(pgrep -P "$NSPAWN_PID" | head -1)
	[ -n "$G" ] && [ "$(cat "/proc/$G/comm" 2>/dev/null)" = systemd ] && break
	G=
	sleep 0.1
done
[ -n "$G" ] || die "the guest did not boot: $(tail -5 "$T/nspawn.log")"
gx() { nsenter -t "$G" -a "$@"; }
gsh() { nsenter -t "$G" -a sh -c "$1"; }
as_nobody() { gx setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
# Until the guest's manager answers on its bus, then until it has booted.
for _ in $(seq 100); do
	state=$(timeout 60 nsenter -t "$G" -a systemctl is-system-running --wait 2>&1)
	[[ "$state" == *"Failed to connect"* ]] || break
	sleep 0.1
done
[ "$state" = running ] || [ "$state" = degraded ] && ok "a Debian 12 tree boots under systemd-nspawn ($state)" ||
	die "the guest did not come up: $state"
# Waits up to $1 seconds for a guest command to succeed.
gwait() { local n=$(($1 * 10)); shift; while [ $n -gt 0 ]; do gsh "$1" >/dev/null 2>&1 && return 0; sleep 0.1; n=$((n - 1)); done; return 1; }
main_pid() { gx systemctl show -P MainPID bwqd; }

# ---- install --------------------------------------------------------------------
out=$(gsh 'dpkg -i /debs/*.deb 2>&1'); rc=$?
[ $rc -eq 0 ] && ok "dpkg -i installs $(ls "$T/debs" | wc -l) packages: $(ls "$T/debs" | sed 's/_.*//' | tr '\n' ' ')" || die "dpkg -i failed: $(echo "$out" | tail -5)"
gwait 20 'systemctl is-active -q bwqd' && ok "bwqd.service is active after the install" || bad "bwqd.service not active: $(gsh 'systemctl status bwqd --no-pager | tail -5')"
[ "$(gx systemctl is-enabled bwqd)" = enabled ] && ok "and enabled" || bad "bwqd.service is not enabled"
gsh 'busctl --system status org.bwq1 >/dev/null' && ok "bwqd owns org.bwq1 on the real system bus" || bad "org.bwq1 has no owner"
out=$(gx bwqctl status 2>&1) && [[ "$out" == *"Activation bits:"* ]] && ok "bwqctl status as root: $(echo "$out" | head -1)" || bad "bwqctl status as root: $out"
out=$(as_nobody bwqctl status 2>&1) && [[ "$out" == *"Activation bits:"* ]] && ok "bwqctl status as nobody" || bad "bwqctl status as nobody: $out"
out=$(as_nobody busctl --system call org.bwq1 /org/bwq1 org.bwq1.Manager GetDecision 2>&1) && ok "busctl GetDecision as nobody: $out" || bad "busctl as nobody: $out"
out=$(as_nobody busctl --system call org.bwq1 /org/bwq1 org.bwq1.Manager SetTable "a(ty)" 1 0 4 2>&1)
[[ "$out" == *"ccess"*"enied"* ]] && ok "SetTable is refused to nobody under the installed policy: $out" || bad "SetTable as nobody: $out"
out=$(as_nobody busctl --system call org.bwq1 /org/bwq1 org.bwq1.Manager Reload 2>&1)
[[ "$out" == *"ccess"*"enied"* ]] && ok "Reload is refused to nobody" || bad "Reload as nobody: $out"

# ---- reload, watchdog, crash ----------------------------------------------------------
gsh 'printf "[Sampling]\nInterval=50ms\n" > /etc/bwq/bwqd.conf.d/test.conf && systemctl reload bwqd'
out=$(gx busctl --system get-property org.bwq1 /org/bwq1 org.bwq1.Manager SampleIntervalUSec)
[ "$out" = "t 50000" ] && ok "systemctl reload takes a drop-in (SampleIntervalUSec $out)" || bad "reload: SampleIntervalUSec $out"
pid=$(main_pid)
gsh "kill -STOP $pid"
t0=$(date +%s)
if gwait 30 "[ \"\$(systemctl show -P MainPID bwqd)\" != $pid ] && systemctl is-active -q bwqd"; then
	ok "a SIGSTOPped bwqd is restarted by systemd's watchdog after $(( $(date +%s) - t0 )) s (WatchdogSec=10s)"
else
	bad "no restart after a watchdog stall: $(gsh 'journalctl -u bwqd --no-pager | tail -3')"
fi
gsh 'journalctl -u bwqd --no-pager | grep -q "Watchdog timeout"' && ok "the journal says the watchdog fired" || bad "no watchdog timeout in the journal"
pid=$(main_pid)
gsh "kill -SEGV $pid"
gwait 15 "[ \"\$(systemctl show -P MainPID bwqd)\" != $pid ] && systemctl is-active -q bwqd" &&
	ok "a crashed bwqd (SIGSEGV) is restarted (Restart=on-failure)" || bad "no restart after a crash"

# ---- npu-run as an unprivileged user ----------------------------------------------------
out=$(as_nobody env NPU_DEVICE=soft:threads=1 npu-run --mode=bwq-layer --bits=8 --fps=5 --seconds=2 --size=64 --live 2>&1)
# The first frame may run before the registration is answered (pending).
[[ "$out" == *"bwqd link: live"* ]] && ! echo "$out" | grep '^ *[0-9][0-9.]* ' | tail -n +2 | grep -q 'fallback (' &&
	ok "npu-run in BWQ_LAYER mode as nobody follows bwqd: $(echo "$out" | grep -m1 'bwqd link')" || bad "npu-run as nobody: $(echo "$out" | tail -4)"

# ---- each source under the unit's own sandbox ------------------------------------------
# A drop-in changes only ExecStart= (and, for the fixtures, what stands in
# for /sys): the capabilities, the system-call filter and the rest are the
# shipped unit's.
with_source() {  # with_source DESCRIPTION ARGS [EXTRA-UNIT-LINES]
	gsh "mkdir -p /run/systemd/system/bwqd.service.d && printf '[Service]\nExecStart=\nExecStart=/usr/sbin/bwqd $2\n${3:-}\n' > /run/systemd/system/bwqd.service.d/source.conf &&
		systemctl daemon-reload && systemctl reset-failed bwqd; systemctl restart bwqd"
}
source_is() { [ "$(gx busctl --system get-property org.bwq1 /org/bwq1 org.bwq1.Manager Source 2>/dev/null)" = "s \"$1\"" ]; }
with_source ebpf "--source=ebpf --ebpf-test-event=page-faults"
if gwait 10 'systemctl is-active -q bwqd' && source_is ebpf; then
	ok "the ebpf source loads and attaches its programs under the unit (page faults standing in): $(gx bwqctl explain | sed -n 2p)"
else
	bad "ebpf under the unit: $(gsh 'journalctl -u bwqd --no-pager | grep "bwqd\[" | tail -1')"
fi
# resctrl: a fixture tree at the configured path, writable as the unit makes
# /sys/fs/resctrl (this kernel has no resctrl to mount).
gsh 'R=/srv/resctrl; mkdir -p $R/info/L3_MON $R/mon_groups $R/mon_data/mon_L3_00 && echo mbm_total_bytes > $R/info/L3_MON/mon_features &&
	echo 1000 > $R/mon_data/mon_L3_00/mbm_total_bytes && : > $R/tasks'
with_source resctrl "--source=resctrl --resctrl-root=/srv/resctrl" "ReadWritePaths=/srv/resctrl"
if gwait 10 'systemctl is-active -q bwqd' && source_is resctrl && gsh 'test -d /srv/resctrl/mon_groups/bwq-npu'; then
	ok "the resctrl source runs under the unit and makes its monitoring group"
	gsh ': > /srv/resctrl/mon_groups/bwq-npu/tasks'  # the kernel's would have it
	gsh 'setpriv --reuid=65534 --regid=65534 --clear-groups env NPU_DEVICE=soft:threads=1 npu-run --mode=bwq-layer --bits=8 --fps=5 --seconds=3 --size=64 > /tmp/run.log 2>&1 & echo $! > /tmp/run.pid'
	gwait 5 'grep -qx "$(cat /tmp/run.pid)" /srv/resctrl/mon_groups/bwq-npu/tasks' &&
		ok "a client's tasks are moved into bwq-npu under the unit (pidfd, /proc, the tasks file)" ||
		bad "client tasks not moved: $(gsh 'cat /srv/resctrl/mon_groups/bwq-npu/tasks; journalctl -u bwqd --no-pager | tail -2')"
	gsh 'while kill -0 $(cat /tmp/run.pid) 2>/dev/null; do sleep 0.2; done'
else
	bad "resctrl under the unit: $(gsh 'journalctl -u bwqd --no-pager | grep "bwqd\[" | tail -1')"
fi
# perf: a memory-controller PMU in a fixture sysfs whose events are software
# counters (type 1), opened system-wide per CPU as the real ones are.
gsh 'P=/srv/sys/bus/event_source/devices/uncore_imc_0; mkdir -p $P/format $P/events && echo 1 > $P/type && echo 0 > $P/cpumask &&
	echo config:0-7 > $P/format/event && echo event=0x00 > $P/events/cas_count_read && echo event=0x01 > $P/events/cas_count_write &&
	echo 1 > $P/events/cas_count_read.scale && echo 1 > $P/events/cas_count_write.scale'
with_source perf "--source=perf --sysfs-root=/srv/sys"
if gwait 10 'systemctl is-active -q bwqd' && source_is perf; then
	ok "the perf source opens its counters system-wide under the unit: $(gx bwqctl explain | sed -n 2p | cut -c1-100)"
else
	bad "perf under the unit: $(gsh 'journalctl -u bwqd --no-pager | grep "bwqd\[" | tail -1')"
fi
gsh 'rm -f /run/systemd/system/bwqd.service.d/source.conf; systemctl daemon-reload; systemctl restart bwqd'
# The metrics file where prometheus-node-exporter's textfile collector
# looks, through the unit's ReadWritePaths=.
gsh 'mkdir -p /var/lib/prometheus/node-exporter && printf "[Metrics]
TextfilePath=/var/lib/prometheus/node-exporter/bwqd.prom
Interval=100ms
" > /etc/bwq/bwqd.conf.d/metrics.conf && systemctl restart bwqd'
gwait 10 'grep -q "^bwq_activation_bits " /var/lib/prometheus/node-exporter/bwqd.prom' &&
	ok "under the unit, bwqd writes its metrics to /var/lib/prometheus/node-exporter/bwqd.prom ($(gsh 'stat -c %a /var/lib/prometheus/node-exporter/bwqd.prom'))" ||
	bad "no metrics file under the unit: $(gsh 'journalctl -u bwqd --no-pager | grep "bwqd\[" | tail -1')"
gsh 'rm -f /etc/bwq/bwqd.conf.d/metrics.conf; systemctl restart bwqd'
gwait 15 'systemctl is-active -q bwqd' && ok "back on the shipped unit, bwqd runs on $(gx busctl --system get-property org.bwq1 /org/bwq1 org.bwq1.Manager Source)" || bad "shipped unit after the sources"

# ---- exposure ------------------------------------------------------------------------
expo=$(gx systemd-analyze security bwqd 2>/dev/null | sed -n 's/.*Overall exposure level for bwqd.service: \([0-9.]*\).*/\1/p')
if [ -n "$expo" ] && awk -v e="$expo" 'BEGIN {exit !(e <= 2.0)}'; then
	ok "systemd-analyze security rates the installed unit $expo (goal <= 2.0)"
else
	bad "exposure ${expo:-?} (goal <= 2.0)"
fi

# ---- purge ---------------------------------------------------------------------------
gsh "rm -f /etc/bwq/bwqd.conf.d/test.conf"  # the admin's own drop-in stays on a purge, as it should
out=$(gsh 'dpkg --purge npu-tools libnpu-dev libnpu1 bwqctl bwqd 2>&1'); rc=$?
left=$(gsh 'ls -d /etc/bwq /var/lib/bwq /lib/systemd/system/bwqd.service /usr/sbin/bwqd /usr/share/dbus-1/system.d/org.bwq1.conf 2>/dev/null')
if [ $rc -eq 0 ] && [ -z "$left" ] && ! gsh 'systemctl is-active -q bwqd' && ! gsh 'busctl --system status org.bwq1 >/dev/null 2>&1'; then
	ok "dpkg --purge removes everything: the service is stopped, the name released, no files left"
else
	bad "purge (rc=$rc; left: $left; $(echo "$out" | tail -2))"
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]

# Sourced by the integration tests: TAP-like results, waiting, and the
# processes a test started, stopped (SIGCONT first: some are stopped on
# purpose) and killed when it exits, with its scratch directory $T.
#   ok TEXT, bad TEXT, skip TEXT, check TEXT COMMAND..., wait_for SECONDS COMMAND...
#   PIDS+=(pid) to have a process cleaned up; summary prints the counts.
pass=0 fail=0 skipped=0
PIDS=()
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }
skip() { skipped=$((skipped + 1)); echo "skip - $1"; }
check() { local d=$1; shift; if "$@" >/dev/null 2>&1; then ok "$d"; else bad "$d"; fi; }
# Waits up to $1 seconds for a command to succeed.
wait_for() {
	local n=$(($1 * 20))
	shift
	while [ $n -gt 0 ]; do
		"$@" >/dev/null 2>&1 && return 0
		sleep 0.05
		n=$((n - 1))
	done
	return 1
}
cleanup() {
	local p
	for p in "${PIDS[@]}"; do kill -CONT "$p" 2>/dev/null; kill "$p" 2>/dev/null; done
	sleep 0.1
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	[ -n "${T:-}" ] && rm -rf "$T"
}
trap cleanup EXIT
as_nobody() { setpriv --reuid=65534 --regid=65534 --clear-groups "$@"; }
# The path of a copy of binary $1 that nobody can run: the checkout may sit
# under a directory others cannot enter (one made by mktemp -d, say).  The
# copies go to $T/nobody-bin ($T of mode 755).
nobody_bin() {
	mkdir -p "$T/nobody-bin" && chmod 755 "$T/nobody-bin" && cp "$1" "$T/nobody-bin/" &&
		chmod 755 "$T/nobody-bin/${1##*/}" && echo "$T/nobody-bin/${1##*/}"
}
# "N passed, M failed[, K skipped]"; the exit status of the test.
summary() {
	if [ "$skipped" -gt 0 ]; then echo "$pass passed, $fail failed, $skipped skipped"; else echo "$pass passed, $fail failed"; fi
	[ "$fail" -eq 0 ]
}
# A private dbus-daemon with the project's policy file, in $T: sets ADDR and
# exports BWQ_BUS for the clients; bctl is busctl on it.
bus_up() {
	. "$ROOT/scripts/private_bus.sh"
	private_bus "$T" "$ROOT/packaging/org.bwq1.conf" || { echo "not ok - dbus-daemon did not start"; exit 1; }
	PIDS+=("$BUS_PID")
	ADDR=$BUS_ADDR
	export BWQ_BUS="$ADDR"
}
bctl() { busctl --address="$ADDR" "$@"; }

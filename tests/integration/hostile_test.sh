#!/bin/bash
# What a hostile or careless user broke, each reproduced as it was found and
# checked to hold now: a failed RegisterClient reply, a registration flood as
# another user, files that are not config files, a frozen daemon, a planted
# link in the state directory, config edge cases, UTF-8 names.  A private
# dbus-daemon with the project's policy file; bwqd on a replay trace.
set -u
B=${B:-build}
ROOT=$(pwd)
BWQD="$ROOT/$B/bwqd"
BWQCTL="$ROOT/$B/bwqctl"
NPU_RUN="$ROOT/$B/npu-run"
CLIENT="$ROOT/$B/tests/bwq_testclient"
T=$(mktemp -d /tmp/bwq-hostile-XXXXXX)
chmod 755 "$T"
. "$ROOT/tests/integration/lib.sh"
NOBODY_NPU_RUN=$(nobody_bin "$NPU_RUN") NOBODY_CLIENT=$(nobody_bin "$CLIENT") NOBODY_BWQD=$(nobody_bin "$BWQD")
as_daemon_user() { setpriv --reuid=1 --regid=1 --clear-groups "$@"; }

bus_up
prop() { bctl get-property org.bwq1 /org/bwq1 org.bwq1.Manager "$1"; }
clients() { prop Clients | awk '{print $2}'; }
start_bwqd() {
	"$@" --bus="$ADDR" > "$T/bwqd.log" 2>&1 &
	BWQD_PID=$!
	PIDS+=("$BWQD_PID")
	wait_for 10 bctl status org.bwq1
}
stop_bwqd() {
	kill -CONT "$BWQD_PID" 2>/dev/null
	kill "$BWQD_PID" 2>/dev/null
	wait "$BWQD_PID" 2>/dev/null
}
# CPU time of a process in clock ticks (utime + stime).
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

printf 't_ms,used_Bps\n0,5000000000\n' > "$T/trace.csv"
cat > "$T/a.conf" <<EOF
[Sampling]
Source=replay
Interval=20ms
Smoothing=none
[Bandwidth]
Max=44GB/s
[Replay]
Path=$T/trace.csv
EOF

# ---- 1: a RegisterClient whose reply fails ---------------------------------------
# With 9 descriptors the reply cannot duplicate the page's fd (EMFILE): the
# registration must fail, leave nothing behind, and bwqd must stay responsive
# and idle (it spun at 100% with a track that was never freed).
start_bwqd prlimit --nofile=9 "$BWQD" --config="$T/a.conf" || bad "bwqd under prlimit --nofile=9 did not start"
out=$(bctl call org.bwq1 /org/bwq1 org.bwq1.Manager RegisterClient "syya{sv}" x 4 16 0 2>&1)
[[ "$out" == *"Too many open files"* ]] && ok "1. RegisterClient fails cleanly when its reply cannot carry the page: $out" ||
	bad "1. RegisterClient under EMFILE (got '$out')"
c0=$(cpu_ticks "$BWQD_PID"); sleep 1; c1=$(cpu_ticks "$BWQD_PID")
[ $((c1 - c0)) -lt 30 ] && ok "1. bwqd is not spinning afterwards ($((c1 - c0)) ticks of CPU in 1 s)" || bad "1. bwqd spins: $((c1 - c0)) ticks in 1 s"
check "1. GetDecision is answered afterwards" timeout 2 busctl --address="$ADDR" call org.bwq1 /org/bwq1 org.bwq1.Manager GetDecision
check "1. and no client is listed" test "$(clients)" = 0
grep -q "cannot reply: Too many open files; not registered" "$T/bwqd.log" && ok "1. bwqd logs why" || bad "1. log ($(tail -3 "$T/bwqd.log"))"
stop_bwqd

# ---- 2: a registration flood as another user ----------------------------------------
start_bwqd "$BWQD" --config="$T/a.conf" || bad "bwqd did not start"
touch "$T/flood.hold"
as_nobody env SWARM_HOLD_FILE="$T/flood.hold" "$NOBODY_CLIENT" "$ADDR" swarm 256 16 1 > "$T/flood.log" 2> "$T/flood.err" &
FLOOD=$!
PIDS+=("$FLOOD")
if wait_for 60 grep -q "registered" "$T/flood.log"; then
	grep -q "registered 256 clients on 256 connections" "$T/flood.log" &&
		grep -q "user 65534 has 256 clients, the most one user may (\[Clients\] MaxPerUser=)" "$T/flood.err" &&
		ok "2. nobody's 4096 registrations stop at 256: $(head -1 "$T/flood.log")" || bad "2. flood as nobody ($(head -1 "$T/flood.log"); $(sort -u "$T/flood.err" | head -2))"
else
	bad "2. flood as nobody did not finish ($(tail -2 "$T/flood.err"))"
fi
out=$(bctl call org.bwq1 /org/bwq1 org.bwq1.Manager RegisterClient "syya{sv}" root-client 4 16 0 2>&1)
[[ "$out" == oh* ]] && ok "2. root still registers during the flood" || bad "2. root during the flood (got '$out')"
out=$(as_daemon_user busctl --address="$ADDR" call org.bwq1 /org/bwq1 org.bwq1.Manager RegisterClient "syya{sv}" other-user 4 16 0 2>&1)
[[ "$out" == oh* ]] && ok "2. another user (uid 1) still registers during the flood" || bad "2. uid 1 during the flood (got '$out')"
rm -f "$T/flood.hold"; wait "$FLOOD" 2>/dev/null
check "2. the flood's clients go with its connections" wait_for 20 sh -c "[ \"\$(busctl --address='$ADDR' get-property org.bwq1 /org/bwq1 org.bwq1.Manager Clients)\" = 'u 0' ]"
stop_bwqd

# Refused, then live by itself: an application started during a flood
# registers once the slots are free (it ran at its fallback depth for good).
cat > "$T/small.conf" <<EOF
$(cat "$T/a.conf")
[Clients]
MaxPerUser=8
EOF
start_bwqd "$BWQD" --config="$T/small.conf" || bad "bwqd did not start"
touch "$T/flood.hold"
as_nobody env SWARM_HOLD_FILE="$T/flood.hold" "$NOBODY_CLIENT" "$ADDR" swarm 1 8 1 > "$T/flood.log" 2>&1 &
FLOOD=$!
PIDS+=("$FLOOD")
wait_for 10 grep -q "registered 8 clients" "$T/flood.log"
as_nobody env NPU_DEVICE=soft:threads=1 "$NOBODY_NPU_RUN" --mode=bwq-layer --bits=8 --fps=10 --seconds=6 --live > "$T/run.log" 2> "$T/run.err" &
RUN=$!
PIDS+=("$RUN")
sleep 2
rm -f "$T/flood.hold"; wait "$FLOOD" 2>/dev/null
wait "$RUN"; rc=$?
grep -q "bwqd link: refused .*user 65534 has 8 clients" "$T/run.err" && ok "2. npu-run says it was refused, and why: $(grep -m1 refused "$T/run.err")" ||
	bad "2. refused not reported ($(cat "$T/run.err"))"
grep -q "fallback (refused)" "$T/run.log" && ok "2. its frames say 'fallback (refused)', not 'no bwqd'" || bad "2. refused frames ($(head -3 "$T/run.log"))"
awk '/bwqd link: refused/ {r = 1} /bwqd link: live/ && r {l = $3} END {exit !(l != "")}' "$T/run.err" &&
	ok "2. and becomes live by itself once the slots are free: $(grep 'bwqd link: live' "$T/run.err" | tail -1)" ||
	bad "2. no recovery after the flood ($(cat "$T/run.err"))"
[ $rc -eq 0 ] && ok "2. npu-run never failed (exit 0)" || bad "2. npu-run exit $rc"
stop_bwqd

# A stall longer than the bus's call timeout (25 s by default; 1 s here
# through SYSTEMD_BUS_TIMEOUT): the client fell back for good while bwqd,
# once running again, listed it.  Now it waits for the answer.
start_bwqd "$BWQD" --config="$T/a.conf" || bad "bwqd did not start"
kill -STOP "$BWQD_PID"
SYSTEMD_BUS_TIMEOUT=1 NPU_DEVICE=soft:threads=1 "$NPU_RUN" --mode=bwq-layer --bits=8 --fps=10 --seconds=5 --live > "$T/stall.log" 2> "$T/stall.err" &
RUN=$!
PIDS+=("$RUN")
sleep 2.5
kill -CONT "$BWQD_PID"
wait "$RUN"
grep -q "bwqd link: pending" "$T/stall.err" && grep -q "bwqd link: live" "$T/stall.err" &&
	ok "2. a registration sent to a stalled bwqd (past the call timeout) is answered when it runs again: $(tr '\n' ';' < "$T/stall.err")" ||
	bad "2. stalled registration ($(cat "$T/stall.err"))"
grep -q "client /org/bwq1/client/[0-9]* registered: npu-run" "$T/bwqd.log" && grep -Eq "client /org/bwq1/client/[0-9]* (unregistered|.*disconnected)" "$T/bwqd.log" &&
	[ "$(clients)" = 0 ] && ok "2. bwqd registered it, and dropped it when it left" || bad "2. stalled client's registration ($(tail -3 "$T/bwqd.log"))"

# ---- 4: a frozen bwqd ------------------------------------------------------------
NPU_DEVICE=soft:threads=1 "$NPU_RUN" --mode=bwq-layer --bits=8 --fps=10 --seconds=6 --live > "$T/frozen.log" 2> "$T/frozen.err" &
RUN=$!
PIDS+=("$RUN")
wait_for 5 grep -q "bwqd link: live" "$T/frozen.err"
kill -STOP "$BWQD_PID"
sleep 2
kill -CONT "$BWQD_PID"
wait "$RUN"
grep -q "bwqd link: stale (the page was last updated" "$T/frozen.err" && ok "4. clients see a SIGSTOPped bwqd's page as stale: $(grep -m1 stale "$T/frozen.err")" ||
	bad "4. stale not seen ($(cat "$T/frozen.err"))"
grep -q "fallback (stale)" "$T/frozen.log" && ok "4. and run at their fallback depth meanwhile" || bad "4. no stale frames"
awk '/stale/ {s = 1} /bwqd link: live/ && s {l = 1} END {exit !l}' "$T/frozen.err" && ok "4. live again after SIGCONT" || bad "4. not live again ($(cat "$T/frozen.err"))"

# ---- 3: files that are not config files ------------------------------------------
t0=$(date +%s%N)
out=$(timeout 10 "$BWQD" --check-config -c /dev/zero 2>&1); rc=$?
t1=$(date +%s%N)
[ $rc -eq 78 ] && [[ "$out" == *"/dev/zero: a character device, not a regular file"* ]] &&
	ok "3. --check-config -c /dev/zero: exit 78 in $(( (t1 - t0) / 1000000 )) ms: $out" || bad "3. /dev/zero (rc=$rc: $out)"
mkdir -p "$T/fifo.conf.d"
cp "$T/a.conf" "$T/fifo.conf"
mkfifo "$T/fifo.conf.d/stuck.conf"
out=$(timeout 10 "$BWQD" --bus="$ADDR" -c "$T/fifo.conf" 2>&1); rc=$?
[ $rc -eq 78 ] && [[ "$out" == *"stuck.conf: a FIFO, not a regular file"* ]] && ok "3. a FIFO drop-in at start: exit 78 at once: $out" ||
	bad "3. FIFO drop-in at start (rc=$rc: $out)"
rm -f "$T/fifo.conf.d/stuck.conf"
mkdir -p "$T/a.conf.d"
mkfifo "$T/a.conf.d/stuck.conf"
ts0=$(bctl call org.bwq1 /org/bwq1 org.bwq1.Manager GetDecision | awk '{print $5}')
kill -HUP "$BWQD_PID"
sleep 0.3
check "3. SIGHUP with a FIFO drop-in: bwqd still answers" timeout 2 busctl --address="$ADDR" call org.bwq1 /org/bwq1 org.bwq1.Manager GetDecision
ts1=$(bctl call org.bwq1 /org/bwq1 org.bwq1.Manager GetDecision | awk '{print $5}')
[ "$ts1" -gt "$ts0" ] && ok "3. and its decision keeps being updated" || bad "3. decision frozen ($ts0 -> $ts1)"
wait_for 3 grep -q "reload refused, keeping the old configuration: .*stuck.conf: a FIFO" "$T/bwqd.log" && ok "3. the reload is refused naming the FIFO" || bad "3. FIFO reload log"
rm -f "$T/a.conf.d/stuck.conf"
ln -s /dev/zero "$T/a.conf.d/zero.conf"
kill -HUP "$BWQD_PID"
sleep 0.3
kill -0 "$BWQD_PID" && check "3. SIGHUP with a drop-in linked to /dev/zero: bwqd runs and answers" timeout 2 busctl --address="$ADDR" call org.bwq1 /org/bwq1 org.bwq1.Manager GetDecision ||
	bad "3. /dev/zero drop-in killed bwqd ($(tail -3 "$T/bwqd.log"))"
wait_for 3 grep -q "zero.conf: a character device" "$T/bwqd.log" && ok "3. and refuses it by name" || bad "3. /dev/zero drop-in log"
check "3. the old interval stays" test "$(prop SampleIntervalUSec)" = "t 20000"
rm -f "$T/a.conf.d/zero.conf"
stop_bwqd
out=$(timeout 10 "$BWQD" --bus="$ADDR" -c "$T/a.conf" --replay=/dev/zero 2>&1); rc=$?
[ $rc -ne 0 ] && [ $rc -ne 124 ] && [[ "$out" == *"/dev/zero: a character device"* ]] && ok "3. --replay=/dev/zero: refused (exit $rc)" || bad "3. --replay=/dev/zero (rc=$rc: $out)"
mkfifo "$T/trace.fifo"
out=$(timeout 10 "$BWQD" --bus="$ADDR" -c "$T/a.conf" --replay="$T/trace.fifo" 2>&1); rc=$?
[ $rc -ne 124 ] && [[ "$out" == *"trace.fifo: a FIFO"* ]] && ok "3. a FIFO trace: refused at once" || bad "3. FIFO trace (rc=$rc: $out)"
/usr/bin/python3 -c "
import sys
with open(sys.argv[1], 'w') as f:
    for i in range(10000000): f.write('%d,1\n' % i)" "$T/huge.csv"
out=$( (timeout 20 /usr/bin/time -f 'maxrss_kb %M' "$BWQD" --bus="$ADDR" -c "$T/a.conf" --replay="$T/huge.csv") 2>&1); rc=$?
rss=$(echo "$out" | awk '/maxrss_kb/ {print $2}')
[[ "$out" == *"huge.csv: larger than 64 MiB"* ]] && [ "${rss:-999999}" -lt 100000 ] &&
	ok "3. a 10-million-row trace is refused by size with $((rss / 1024)) MB peak (took 600 MB)" || bad "3. huge trace (rss ${rss:-?} kB: $out)"

# ---- 5: the state directory -------------------------------------------------------
mkdir -p "$T/userstate"
chown 65534:65534 "$T/userstate"
echo "root's secret" > "$T/secret"
chmod 600 "$T/secret"
ln -s "$T/secret" "$T/userstate/max-bandwidth.tmp"
ln -s "$T/secret" "$T/userstate/max-bandwidth"
out=$("$BWQCTL" calibrate --seconds=0.2 --threads=1 --state-dir="$T/userstate" 2>&1); rc=$?
[ $rc -eq 1 ] && [[ "$out" == *"is owned by uid 65534"* ]] && ok "5. calibrate refuses a state directory another user owns: $out" || bad "5. calibrate in a user's directory (rc=$rc: $out)"
check "5. and the file its links point to is untouched" test "$(cat "$T/secret")" = "root's secret"
mkdir -p "$T/state"
ln -s "$T/secret" "$T/state/max-bandwidth.tmp"
"$BWQCTL" calibrate --seconds=0.2 --threads=1 --state-dir="$T/state" > "$T/cal.out" 2>&1
grep -q "stored in" "$T/cal.out" && [ "$(cat "$T/secret")" = "root's secret" ] && [ -L "$T/state/max-bandwidth.tmp" ] && [ ! -L "$T/state/max-bandwidth" ] &&
	ok "5. in a root-owned directory a stale max-bandwidth.tmp link is neither followed nor reused" || bad "5. calibrate with a planted tmp link ($(cat "$T/cal.out"))"
for v in -5 12abc 1e30; do
	echo "$v" > "$T/state/max-bandwidth"
	printf '[Sampling]\nSource=replay\n[Replay]\nPath=%s\n[Service]\nStateDirectory=%s\n' "$T/trace.csv" "$T/state" > "$T/st.conf"
	if start_bwqd "$BWQD" -c "$T/st.conf"; then
		[ "$(prop MaxBandwidth)" = "t 44000000000" ] && grep -q "calibration ignored: .*'$v' is not a whole number" "$T/bwqd.log" &&
			ok "5. a stored calibration of '$v' is refused with the reason; bwqd starts on the default" || bad "5. calibration '$v' ($(prop MaxBandwidth); $(head -2 "$T/bwqd.log"))"
		stop_bwqd
	else
		bad "5. bwqd did not start with a calibration of '$v' ($(cat "$T/bwqd.log"))"
	fi
done

# ---- 6: config edge cases ------------------------------------------------------------
cc() { timeout 10 "$BWQD" --check-config -c "$1" 2>&1; }
mkdir -p "$T/locked.conf.d"
cp "$T/a.conf" "$T/locked.conf"
chmod 700 "$T/locked.conf.d"
out=$(as_nobody "$NOBODY_BWQD" --check-config -c "$T/locked.conf" 2>&1); rc=$?
[ $rc -eq 78 ] && [[ "$out" == *"locked.conf.d: Permission denied"* ]] && ok "6. a conf.d that cannot be read is an error: $out" || bad "6. unreadable conf.d (rc=$rc: $out)"
ln -s "$T/loop.conf" "$T/loop.conf"
out=$(cc "$T/loop.conf"); rc=$?
[ $rc -eq 78 ] && [[ "$out" == *"too many levels of symbolic links"* ]] && ok "6. a main file that is a symlink loop: $out" || bad "6. symlink loop (rc=$rc: $out)"
mkdir -p "$T/dir.conf"
out=$(cc "$T/dir.conf"); rc=$?
[ $rc -eq 78 ] && [[ "$out" == *"a directory, not a regular file"* ]] && ok "6. a directory given as -c: $out" || bad "6. directory -c (rc=$rc: $out)"
mkdir -p "$T/b.conf.d" "$T/somedir"
cp "$T/a.conf" "$T/b.conf"
ln -s "$T/somedir" "$T/b.conf.d/x.conf"
out=$(cc "$T/b.conf"); rc=$?
[ $rc -eq 78 ] && [[ "$out" == *"x.conf: a directory"* ]] && ok "6. a drop-in linked to a directory: $out" || bad "6. x.conf -> dir (rc=$rc: $out)"
printf '[Bandwidth]\nMax=44GB/s\n[Policy]\nTable=50GB/s:16 0:4\n' > "$T/t.conf"
out=$(cc "$T/t.conf"); rc=$?
[ $rc -eq 78 ] && [[ "$out" == *"the first threshold is above the maximum bandwidth 44.00 GB/s"* ]] &&
	ok "6. --check-config runs the checks a start runs: $out" || bad "6. Table above Max passes --check-config (rc=$rc: $out)"
printf '[Bandwidth]\nMax=18000000000000000000\n' > "$T/m.conf"
out=$(cc "$T/m.conf"); rc=$?
[ $rc -eq 78 ] && [[ "$out" == *"more than 1 PB/s"* ]] && ok "6. Max=18000000000000000000 is refused, not 2^63: $out" || bad "6. huge Max (rc=$rc: $out)"
printf '[Sampling]\nSource=\033]0;owned\007replay\n' > "$T/e.conf"
out=$(cc "$T/e.conf"); rc=$?
[ $rc -eq 78 ] && ! printf '%s' "$out" | grep -q $'\033' && [[ "$out" == *'\x1b]0;owned\x07replay'* ]] &&
	ok "6. control bytes in a line are escaped in the error: $out" || bad "6. raw control bytes echoed (rc=$rc: $(printf '%q' "$out"))"

# ---- 7: UTF-8 names -----------------------------------------------------------------
start_bwqd "$BWQD" --config="$T/a.conf" || bad "bwqd did not start"
out=$(bctl call org.bwq1 /org/bwq1 org.bwq1.Manager RegisterClient "syya{sv}" "café" 4 16 0 2>&1)
[[ "$out" == oh* ]] && ok "7. a client named café registers" || bad "7. café (got '$out')"
for n in $'a\x01b' $'tab\there' $'c1\xc2\x85x'; do
	out=$(bctl call org.bwq1 /org/bwq1 org.bwq1.Manager RegisterClient "syya{sv}" "$n" 4 16 0 2>&1)
	[[ "$out" == *"printable UTF-8"* ]] && ok "7. a name with a control character $(printf '%q' "$n") is refused" || bad "7. name $(printf '%q' "$n") (got '$out')"
done
stop_bwqd

summary

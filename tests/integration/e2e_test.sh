#!/bin/bash
# End to end: libnpu's BWQ modes follow bwqd on a private bus; a killed or
# restarted bwqd costs the application nothing but the fallback depth; a
# killed client is cleaned up in bwqd.
set -u
B=${B:-build}
ROOT=$(pwd)
BWQD="$ROOT/$B/bwqd"
T=$(mktemp -d /tmp/bwq-e2e-XXXXXX)
chmod 755 "$T"
. "$ROOT/tests/integration/lib.sh"
clients() { bctl get-property org.bwq1 /org/bwq1 org.bwq1.Manager Clients; }
bus_up

printf 't_ms,used_Bps\n0,5000000000\n' > "$T/trace.csv"
printf '[Sampling]\nSource=replay\nInterval=20ms\nSmoothing=none\n[Policy]\nHysteresis=0\nMinDwell=0\n[Replay]\nPath=%s\n' "$T/trace.csv" > "$T/bwqd.conf"
start_bwqd() {
	"$BWQD" --bus="$ADDR" --config="$T/bwqd.conf" >> "$T/bwqd.log" 2>&1 &
	BWQD_PID=$!
	PIDS+=("$BWQD_PID")
	wait_for 10 busctl --address="$ADDR" status org.bwq1
}
start_bwqd && ok "bwqd on a private bus" || { bad "bwqd start"; cat "$T/bwqd.log"; }

# Layer by layer, and run by run.
while read -r line; do
	case "$line" in ok*) ok "${line#ok - }" ;; "not ok"*) bad "${line#not ok - }" ;; esac
done < <("$ROOT/$B/tests/e2e_client" follow 2>"$T/follow.err"; echo "exit $?")
[ -s "$T/follow.err" ] && sed 's/^/# /' "$T/follow.err"
while read -r line; do
	case "$line" in ok*) ok "${line#ok - }" ;; "not ok"*) bad "${line#not ok - }" ;; esac
done < <("$ROOT/$B/tests/e2e_client" model 2>"$T/model.err")
[ -s "$T/model.err" ] && sed 's/^/# /' "$T/model.err"

# bwqd killed and restarted under a running application.
"$ROOT/$B/npu-run" --mode bwq-layer --bits 6 --size 64 --fps 20 --seconds 6 --live > "$T/run.log" 2>&1 &
RUN=$!
PIDS+=("$RUN")
wait_for 10 grep -qE ' 16:[0-9]+ ' "$T/run.log"  # every layer at bwqd's 16 bits
{ kill -9 "$BWQD_PID"; wait "$BWQD_PID"; } 2>/dev/null
sleep 1.5
echo "== restart" >> "$T/run.log.mark"
start_bwqd
wait "$RUN"
rc=$?
[ $rc -eq 0 ] && ok "npu-run went on without an error while bwqd was killed and restarted" || bad "npu-run exit $rc"
# Frames in order: with bwqd (16 bits), without it (fallback 6), with it again.
phases=$(awk '$1 ~ /^[0-9.]+$/ { st = ($0 ~ /fallback/) ? "F" : "D"; if (st != last) { printf "%s", st; last = st } }' "$T/run.log")
case "$phases" in
*DFD*) ok "frames used bwqd's decision, then the fallback depth, then bwqd's again after its restart ($phases)" ;;
*) bad "fallback and reconnect phases (got '$phases')"; tail -n 20 "$T/run.log" ;;
esac
grep 'fallback' "$T/run.log" | grep -qE ' 6:[0-9]+ ' && ok "fallback frames ran at the configured 6 bits" || bad "fallback depth"
grep -q 'frames .* deadline misses' "$T/run.log" && ok "npu-run's summary: $(tail -1 "$T/run.log")" || bad "npu-run summary"

# A killed client is cleaned up.
"$ROOT/$B/npu-run" --mode bwq-layer --size 64 --fps 5 --seconds 30 > /dev/null 2>&1 &
VICTIM=$!
PIDS+=("$VICTIM")
wait_for 10 sh -c "[ \"\$(busctl --address='$ADDR' get-property org.bwq1 /org/bwq1 org.bwq1.Manager Clients)\" = 'u 1' ]" &&
	ok "a running application is registered (Clients u 1)" || bad "registration ($(clients))"
{ kill -9 "$VICTIM"; wait "$VICTIM"; } 2>/dev/null
wait_for 10 sh -c "[ \"\$(busctl --address='$ADDR' get-property org.bwq1 /org/bwq1 org.bwq1.Manager Clients)\" = 'u 0' ]" &&
	ok "a killed application is unregistered in bwqd (Clients u 0)" || bad "killed client ($(clients))"

summary

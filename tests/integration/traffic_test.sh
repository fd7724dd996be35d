#!/bin/bash
# The NPU clients' own traffic, reported through their traffic counters and
# subtracted where the source cannot tell it from others' (here a replay
# trace whose used_Bps includes it and gives no npu_Bps): "used by others"
# and the decision are what the arithmetic says, a client that stops
# reporting or is killed stops being subtracted within a bound, and a
# source that measures the split ignores the reports.
set -u
B=${B:-build}
ROOT=$(pwd)
BWQD="$ROOT/$B/bwqd"
CLIENT="$ROOT/$B/tests/bwq_testclient"
T=$(mktemp -d /tmp/bwq-traffic-XXXXXX)
chmod 755 "$T"
. "$ROOT/tests/integration/lib.sh"
bus_up
prop() { bctl get-property org.bwq1 /org/bwq1 org.bwq1.Manager "$1" | awk '{print $2}'; }
# Whether a property lies in [lo, hi].
within() { local v; v=$(prop "$1"); [ -n "$v" ] && [ "$v" -ge "$2" ] && [ "$v" -le "$3" ]; }
start_bwqd() {
	"$BWQD" --bus="$ADDR" --config="$T/bwqd.conf" > "$T/bwqd.log" 2>&1 &
	BWQD_PID=$!
	PIDS+=("$BWQD_PID")
	wait_for 10 bctl status org.bwq1
}
conf() {  # conf TRACE-ROW
	printf 't_ms,used_Bps,npu_Bps\n%s\n' "$1" > "$T/trace.csv"
	printf '[Sampling]\nSource=replay\nInterval=20ms\nSmoothing=window:25\n[Bandwidth]\nMax=44GB/s\n[Policy]\nHysteresis=0\nMinDwell=0\n[Replay]\nPath=%s\n' \
		"$T/trace.csv" > "$T/bwqd.conf"
}

# 30 GB/s in all, NPU included, no npu_Bps: 14 GB/s available, 6 bits.
conf "0,30000000000"
start_bwqd || bad "bwqd did not start"
wait_for 3 within UsedBandwidth 30000000000 30000000000 && [ "$(prop ActivationBitDepth)" = 6 ] &&
	ok "no client reports: 30 GB/s used by others, 6 bits" || bad "baseline: used $(prop UsedBandwidth), bits $(prop ActivationBitDepth)"
"$CLIENT" "$ADDR" traffic reporter 10000000000 > "$T/rep.log" 2>&1 &
REP=$!
PIDS+=("$REP")
wait_for 5 grep -q registered "$T/rep.log"
# A client reporting 10 GB/s: 30 - 10 = 20 GB/s used by others, 24 GB/s
# available: 8 bits.  Within 5% (the counter moves in 2 ms steps).
if wait_for 5 within UsedBandwidth 19000000000 21000000000 && [ "$(prop ActivationBitDepth)" = 8 ]; then
	ok "a client reporting 10 GB/s: used by others $(prop UsedBandwidth) B/s (30 - 10 GB/s), 8 bits"
else
	bad "with a 10 GB/s report: used $(prop UsedBandwidth), bits $(prop ActivationBitDepth)"
fi
bctl call org.bwq1 /org/bwq1 org.bwq1.Manager Explain | grep -q "reported by the clients (1 traffic counter(s)), subtracted from the total" &&
	ok "Explain shows the subtraction" || bad "Explain: $(bctl call org.bwq1 /org/bwq1 org.bwq1.Manager Explain | head -4)"
# A client that stops reporting (stopped): its share is gone once the
# smoothing window (0.5 s) has passed; bound 2 s.
kill -STOP "$REP"
t0=$(date +%s%N)
wait_for 2 within UsedBandwidth 29900000000 30000000000 && ok "a client that stops reporting stops being subtracted ($(( ($(date +%s%N) - t0) / 1000000 )) ms)" ||
	bad "stopped reporter: used $(prop UsedBandwidth)"
kill -CONT "$REP"
wait_for 5 within UsedBandwidth 19000000000 21000000000 && ok "and is subtracted again when it reports again" || bad "resumed reporter: used $(prop UsedBandwidth)"
kill -9 "$REP"
t0=$(date +%s%N)
wait_for 2 within UsedBandwidth 29900000000 30000000000 && [ "$(prop ActivationBitDepth)" = 6 ] &&
	ok "a killed client stops being subtracted ($(( ($(date +%s%N) - t0) / 1000000 )) ms; bound 2 s): 6 bits again" || bad "killed reporter: used $(prop UsedBandwidth)"
# Two clients: their reports add up.
"$CLIENT" "$ADDR" traffic a 4000000000 > "$T/a.log" 2>&1 & PIDS+=($!)
"$CLIENT" "$ADDR" traffic b 6000000000 > "$T/b.log" 2>&1 & PIDS+=($!)
wait_for 5 within UsedBandwidth 19000000000 21000000000 && ok "two clients reporting 4 and 6 GB/s: used by others $(prop UsedBandwidth) B/s" ||
	bad "two reporters: used $(prop UsedBandwidth)"
# More reported than the source saw in all: capped, never below zero.
"$CLIENT" "$ADDR" traffic liar 100000000000 > "$T/liar.log" 2>&1 & PIDS+=($!)
wait_for 5 within UsedBandwidth 0 0 && [ "$(prop AvailableBandwidth)" = 44000000000 ] &&
	ok "reports above the total are capped at it: used by others 0, available = the maximum" || bad "over-reporting: used $(prop UsedBandwidth)"
# A counter bwqd must not map: refused with the reason.
head -c 4096 /dev/zero > "$T/plain"
out=$("$CLIENT" "$ADDR" traffic plain "$T/plain" 2>&1)
[[ "$out" == *"not sealed against shrinking"* ]] && ok "a traffic counter that could be truncated is refused: $out" || bad "unsealed counter: $out"
out=$(bctl call org.bwq1 /org/bwq1 org.bwq1.Manager RegisterClient "syya{sv}" x 4 16 1 TrafficCounter s no 2>&1)
[[ "$out" == *"must be a file descriptor"* ]] && ok "a TrafficCounter that is not an fd is refused" || bad "TrafficCounter s: $out"
kill "$BWQD_PID"; wait "$BWQD_PID" 2>/dev/null

# A source that measures the split (npu_Bps given) ignores the reports.
conf "0,30000000000,5000000000"
start_bwqd || bad "bwqd did not start"
wait_for 5 within UsedBandwidth 25000000000 25000000000 && ok "a source that measures the NPU's share (5 GB/s) is not overridden by reports: used by others 25 GB/s" ||
	bad "measured split: used $(prop UsedBandwidth)"

# npu-run reports what its runs moved.
conf "0,30000000000"
kill "$BWQD_PID"; wait "$BWQD_PID" 2>/dev/null
start_bwqd || bad "bwqd did not start"
NPU_DEVICE=soft:threads=1 "$ROOT/$B/npu-run" --mode=bwq-layer --bits=8 --size=64 --fps=50 --seconds=3 > "$T/run.log" 2>&1 &
RUN=$!
PIDS+=("$RUN")
# The largest of the recent samples (16 kept): a sample in which no run
# finished subtracts nothing.  Up to 5 s, while npu-run starts and registers.
reported() { "$ROOT/$B/bwqctl" explain | awk '$3 ~ /^[0-9]+r$/ {v = $3; sub(/r$/, "", v); if (v + 0 > m) m = v + 0} END {print m + 0}'; }
wait_for 5 sh -c "[ \$(\"$ROOT/$B/bwqctl\" explain | awk '\$3 ~ /^[1-9][0-9]*r\$/' | wc -l) -gt 0 ]"
npu=$(reported)
[ "$npu" -gt 0 ] && ok "npu-run's runs are reported: up to $npu B/s subtracted in the recent samples" || bad "npu-run reports nothing ($("$ROOT/$B/bwqctl" explain | tail -5 | tr '\n' ';'))"
wait "$RUN"
summary

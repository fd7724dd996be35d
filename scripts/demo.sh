#!/bin/bash
# make demo: bwqd decides, libnpu follows, a network runs at a fixed frame
# rate while the memory bandwidth in use changes.
#
#   DEMO_SOURCE=auto (default)  bwqd picks its source (on a machine without
#                               counters: the probe) while bwq-stream steps
#                               through idle, moderate and heavy phases
#   DEMO_SOURCE=replay          a trace walks through all four table sections
#   DEMO_PHASE_SECONDS=6        length of each phase
set -u
B=${1:-build}
ROOT=$(pwd)
SOURCE=${DEMO_SOURCE:-auto}
PHASE=${DEMO_PHASE_SECONDS:-6}
FPS=${DEMO_FPS:-5}
T=$(mktemp -d /tmp/bwq-demo-XXXXXX)
chmod 755 "$T"
ADDR="unix:path=$T/bus.sock"
export BWQ_BUS="$ADDR"
PIDS=()

cleanup() {
	trap - EXIT INT TERM
	for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null; done
	sleep 0.2
	for p in "${PIDS[@]}"; do kill -9 "$p" 2>/dev/null; done
	rm -rf "$T"
}
trap cleanup EXIT
trap 'echo; echo "demo: interrupted, cleaning up"; exit 130' INT TERM
wait_for() { local n=$(($1 * 20)); shift; while [ $n -gt 0 ]; do "$@" >/dev/null 2>&1 && return 0; sleep 0.05; n=$((n - 1)); done; return 1; }

case "$SOURCE" in
auto | replay) ;;
*) echo "demo: DEMO_SOURCE must be auto or replay, not '$SOURCE'" >&2; exit 2 ;;
esac

cat <<TXT
bwq demo
  bwqd measures the memory bandwidth the rest of the machine uses and
  decides how many bits the NPU's activations get (table: > 33 GB/s
  available -> 16 bits, > 22 -> 8, > 11 -> 6, else 4, of 44 GB/s).
  npu-run runs a MobileNet-V2-shaped network (224x224, 64 layers) on the
  software NPU at $FPS frames/s in BWQ_LAYER mode: every layer reads the
  decision when it starts.  Watch available bandwidth, section and the
  layers' depths move together, and the activation bytes per frame with them.
TXT

. "$ROOT/scripts/private_bus.sh"
private_bus "$T" "$ROOT/packaging/org.bwq1.conf" || { echo "demo: dbus-daemon did not start" >&2; exit 1; }
PIDS+=("$BUS_PID")

if [ "$SOURCE" = replay ]; then
	ms=$((PHASE * 1000))
	{
		echo "t_ms,used_Bps"
		echo "0,5000000000"
		echo "$ms,15000000000"
		echo "$((2 * ms)),25000000000"
		echo "$((3 * ms)),38000000000"
		echo "$((4 * ms)),5000000000"
	} > "$T/trace.csv"
	printf '[Sampling]\nSource=replay\nInterval=50ms\n[Replay]\nPath=%s\n' "$T/trace.csv" > "$T/bwqd.conf"
	TOTAL=$((4 * PHASE + PHASE / 2))
else
	printf '[Sampling]\nSource=auto\nInterval=100ms\nSmoothing=ewma:0.5\n[Policy]\nMinDwell=1s\n' > "$T/bwqd.conf"
	TOTAL=$((4 * PHASE))
fi
echo
echo "== starting bwqd (source: $SOURCE) on a private bus"
"$ROOT/$B/bwqd" --bus="$ADDR" --config="$T/bwqd.conf" > "$T/bwqd.log" 2>&1 &
BWQD_PID=$!
PIDS+=("$BWQD_PID")
if ! wait_for 30 busctl --address="$ADDR" status org.bwq1; then
	echo "demo: bwqd did not start:" >&2
	cat "$T/bwqd.log" >&2
	exit 1
fi
sed 's/^bwqd: /   /' "$T/bwqd.log"
busctl --address="$ADDR" call org.bwq1 /org/bwq1 org.bwq1.Manager Explain | tr ';' '\n' |
	grep -E 'probe:|stream burst|pointer chase' | sed 's/^s "//; s/\\n/ /g; s/^ */   /'

"$ROOT/$B/bwqctl" monitor > "$T/monitor.log" 2>&1 &
PIDS+=($!)

FAILED=()
# The start of a phase, in seconds since npu-run started, for the timeline.
mark() { echo "$(awk -v a="$(date +%s.%N)" -v b="$T0" 'BEGIN {printf "%.2f", a - b}') $1" >> "$T/phases.txt"; }
antagonist() {  # antagonist NAME ARGS...: bwq-stream for the phase; a failure fails the demo
	local name=$1; shift
	"$ROOT/$B/bwq-stream" "$@" > "$T/$name.log" 2>&1 &
	PIDS+=($!)
	wait $! || FAILED+=("the antagonist bwq-stream $* (exit $?: $(tail -1 "$T/$name.log"))")
	[ -s "$T/$name.log" ] || FAILED+=("the antagonist bwq-stream $* reported nothing")
}
phases() {
	if [ "$SOURCE" = replay ]; then
		echo "== the trace: 5, 15, 25, 38, then 5 GB/s used by others, $PHASE s each"
		mark "trace"
		sleep "$TOTAL"
		return
	fi
	echo "== phase 1: idle ($PHASE s)"
	mark "idle"
	sleep "$PHASE"
	echo "== phase 2: moderate: bwq-stream, 1 thread, 40% duty ($PHASE s)"
	mark "moderate"
	antagonist ant2 --threads 1 --duty 40 --seconds "$PHASE"
	echo "== phase 3: heavy: bwq-stream, 1 thread, all the time ($PHASE s)"
	mark "heavy"
	antagonist ant3 --threads 1 --seconds "$PHASE"
	echo "== phase 4: idle again ($PHASE s)"
	mark "idle"
	sleep "$PHASE"
}

T0=$(date +%s.%N)
"$ROOT/$B/npu-run" --mode bwq-layer --bits 8 --min-bits 4 --max-bits 16 --fps "$FPS" --seconds "$TOTAL" --live --name demo \
	> >(tee "$T/npu.log") &
NPU=$!
PIDS+=("$NPU")
phases
wait "$NPU" || FAILED+=("npu-run (exit $?)")
echo
if [ "$SOURCE" = auto ]; then
	for f in ant2 ant3; do [ -s "$T/$f.log" ] && echo "antagonist ($f): $(tail -1 "$T/$f.log")"; done
fi
kill -0 "$BWQD_PID" 2>/dev/null || FAILED+=("bwqd exited during the demo: $(tail -2 "$T/bwqd.log")")
grep -q '^frames [0-9]' "$T/npu.log" || FAILED+=("npu-run printed no summary")
echo "== bwqctl monitor saw (the registered client with its clamped depth at the end of each line):"
sed 's/^/   /' "$T/monitor.log" | grep -v 'was not provided'
echo
# The timeline: one picture instead of the tables above.
PNG="$ROOT/$B/demo-timeline.png"
if bash "$ROOT/scripts/timeline.sh" "$T/npu.log" "$T/phases.txt" "$FPS" "$PNG" "bwq demo ($SOURCE source, $FPS frames/s)" > "$T/plot.log" 2>&1; then
	echo "== timeline: $PNG (available bandwidth, bits, frame latency against its deadline, phases)"
else
	FAILED+=("the timeline: $(tail -2 "$T/plot.log")")
fi
if [ ${#FAILED[@]} -gt 0 ]; then
	for f in "${FAILED[@]}"; do echo "demo: FAILED: $f" >&2; done
	exit 1
fi
echo "demo: done; stopping bwqd and the private bus"

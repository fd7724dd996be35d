#!/bin/bash
# make demo: bwqd decides, libnpu follows, a network runs at a fixed frame
# rate while the memory bandwidth in use changes.
#
#   DEMO_SOURCE=auto (default)  bwqd picks its source (on a machine without
#                               counters: the probe) while bwq-stream steps
#                               through idle, moderate and heavy phases; by
#                               default, where the probe says it is blind
#                               (its antagonist on another CPU did not slow
#                               it), the demo says so and runs the replay
#                               trace instead; DEMO_SOURCE=auto keeps the probe
#   DEMO_SOURCE=replay          a trace walks through all four table sections
#   DEMO_PHASE_SECONDS=6        length of each phase
#   DEMO_MODEL=fashion (default) the trained Fashion-MNIST classifier
#                               (models/fashion) over the test images, with
#                               top-1 against their labels per phase
#   DEMO_MODEL=synthetic        npu-run's MobileNet-V2-shaped network
#   DEMO_FPS                    frames per second (default: 20 for the
#                               classifier, 5 for the synthetic network)
set -u
B=${1:-build}
ROOT=$(pwd)
SOURCE=${DEMO_SOURCE:-auto}
PHASE=${DEMO_PHASE_SECONDS:-6}
MODEL=${DEMO_MODEL:-fashion}
case "$MODEL" in
fashion) FPS=${DEMO_FPS:-20} ;;
synthetic) FPS=${DEMO_FPS:-5} ;;
*) echo "demo: DEMO_MODEL must be fashion or synthetic, not '$MODEL'" >&2; exit 2 ;;
esac
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

if [ "$MODEL" = fashion ]; then
	WHAT="the trained Fashion-MNIST classifier (models/fashion/fashion.onnx)
  over the dataset's test images at $FPS frames/s, in BWQ_LAYER mode: every
  layer reads the decision when it starts.  Each phase's frames are scored
  against the images' labels (top-1), beside the depths they ran at."
else
	WHAT="a MobileNet-V2-shaped network (224x224, 54 layers) on the software
  NPU at $FPS frames/s in BWQ_LAYER mode: every layer reads the decision when
  it starts."
fi
cat <<TXT
bwq demo
  bwqd measures the memory bandwidth the rest of the machine uses and
  decides how many bits the NPU's activations get (table: > 33 GB/s
  available -> 16 bits, > 22 -> 8, > 11 -> 6, else 4, of 44 GB/s).
  npu-run runs $WHAT
  Watch available bandwidth, section and the layers' depths move together,
  and the activation bytes per frame with them.
TXT

. "$ROOT/scripts/private_bus.sh"
private_bus "$T" "$ROOT/packaging/org.bwq1.conf" || { echo "demo: dbus-daemon did not start" >&2; exit 1; }
PIDS+=("$BUS_PID")

# The replay trace: GB/s used by others, one step a phase.  It starts with
# bwqd; its first step is LEAD s longer, the time npu-run may take to load
# and calibrate its model.  step_ms K: where step K starts in the trace.
STEPS=(5 15 25 38 5)
LEAD=3
step_ms() { echo $(($1 ? (LEAD + $1 * PHASE) * 1000 : 0)); }
configure() {
	if [ "$SOURCE" = replay ]; then
		{
			echo "t_ms,used_Bps"
			for k in "${!STEPS[@]}"; do
				echo "$(step_ms "$k"),${STEPS[k]}000000000"
			done
		} > "$T/trace.csv"
		printf '[Sampling]\nSource=replay\nInterval=50ms\n[Replay]\nPath=%s\n' "$T/trace.csv" > "$T/bwqd.conf"
		TOTAL=$((LEAD + 4 * PHASE + PHASE / 2))
	else
		printf '[Sampling]\nSource=auto\nInterval=100ms\nSmoothing=ewma:0.5\n[Policy]\nMinDwell=1s\n' > "$T/bwqd.conf"
		TOTAL=$((4 * PHASE))
	fi
}
start_bwqd() {
	echo
	echo "== starting bwqd (source: $SOURCE) on a private bus"
	TR0=$(date +%s.%N)
	"$ROOT/$B/bwqd" --bus="$ADDR" --config="$T/bwqd.conf" > "$T/bwqd.log" 2>&1 &
	BWQD_PID=$!
	PIDS+=("$BWQD_PID")
	if ! wait_for 30 busctl --address="$ADDR" status org.bwq1; then
		echo "demo: bwqd did not start:" >&2
		cat "$T/bwqd.log" >&2
		exit 1
	fi
	sed 's/^bwqd: /   /' "$T/bwqd.log"
	busctl --address="$ADDR" call org.bwq1 /org/bwq1 org.bwq1.Manager Explain | sed 's/\\n/\n/g' | tr ';' '\n' |
		grep -E 'probe:|stream burst|pointer chase|probe blind' | sed 's/^s "//; s/^ */   /' > "$T/explain.txt"
	cat "$T/explain.txt"
}
configure
start_bwqd
# A probe that cannot see its own antagonist would show 16 bits through
# every phase: true of this machine, but not a demonstration.  Say so, and
# let the replay trace move the decision instead.
if [ "$SOURCE" = auto ] && grep -q 'probe blind' "$T/explain.txt"; then
	if [ -z "${DEMO_SOURCE:-}" ]; then
		echo "demo: the probe cannot see memory contention on this machine (above): its decision would"
		echo "      stay at 16 bits through every phase.  The decisions below follow the replay trace"
		echo "      instead; DEMO_SOURCE=auto make demo shows the probe's own view beside the antagonist."
		kill "$BWQD_PID" 2>/dev/null
		wait "$BWQD_PID" 2>/dev/null
		SOURCE=replay
		configure
		start_bwqd
	else
		echo "demo: the probe cannot see memory contention on this machine (above): expect 16 bits in every phase"
	fi
fi

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
		# Its steps on npu-run's clock: the trace began when bwqd started.
		local k at
		for k in "${!STEPS[@]}"; do
			at=$(awk -v r="$TR0" -v t="$T0" -v ms="$(step_ms "$k")" 'BEGIN { x = r + ms / 1000 - t; printf "%.2f", x < 0 ? 0 : x }')
			echo "$at ${STEPS[k]}GB/s" >> "$T/phases.txt"
		done
		sleep "$(awk -v r="$TR0" -v t="$T0" -v total="$TOTAL" 'BEGIN { x = r + total - t; printf "%.2f", x < 0 ? 0 : x }')"
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

NET=()
if [ "$MODEL" = fashion ]; then
	# The test split to score, and images of the training split to measure
	# the activation ranges on.
	if ! /usr/bin/python3 "$ROOT/models/fashion/data.py" "$T/test" --count 1000 > "$T/data.log" 2>&1 ||
		! /usr/bin/python3 "$ROOT/models/fashion/data.py" "$T/cal" --split train --count 64 >> "$T/data.log" 2>&1; then
		echo "demo: the Fashion-MNIST images could not be made (make deps installs dataset-fashion-mnist):" >&2
		tail -3 "$T/data.log" >&2
		exit 1
	fi
	NET=(--model="$ROOT/models/fashion/fashion.onnx" --input="$T/test/X.npy" --labels="$T/test/Y.npy"
		--calibration="$T/cal/X.npy" --calibration-samples=64)
fi
T0=$(date +%s.%N)
"$ROOT/$B/npu-run" "${NET[@]}" --mode bwq-layer --bits 8 --min-bits 4 --max-bits 16 --fps "$FPS" --seconds "$TOTAL" --live --name demo \
	> >(tee "$T/npu.log") &
NPU=$!
PIDS+=("$NPU")
# The phases start with npu-run's frames (after it has loaded and calibrated
# its model), so that the timeline's phase marks and frame times agree.
if ! wait_for 60 grep -q '^ *time_s' "$T/npu.log"; then
	echo "demo: npu-run did not start its frames:" >&2
	tail -5 "$T/npu.log" >&2
	exit 1
fi
T0=$(date +%s.%N)
phases
wait "$NPU" || FAILED+=("npu-run (exit $?)")
echo
if [ "$SOURCE" = auto ]; then
	for f in ant2 ant3; do [ -s "$T/$f.log" ] && echo "antagonist ($f): $(tail -1 "$T/$f.log")"; done
fi
kill -0 "$BWQD_PID" 2>/dev/null || FAILED+=("bwqd exited during the demo: $(tail -2 "$T/bwqd.log")")
grep -q '^frames [0-9]' "$T/npu.log" || FAILED+=("npu-run printed no summary")
# Per phase: the frames, the depth most of their layers ran at, and (the
# classifier) top-1 against the labels.
if [ -s "$T/phases.txt" ]; then
	echo "== per phase: the depth most layers of each frame ran at$([ "$MODEL" = fashion ] && echo ", and top-1 against the labels")"
	awk -v fashion=$([ "$MODEL" = fashion ] && echo 1 || echo 0) '
	FNR == NR { start[++np] = $1; label[np] = $2; next }
	{
		p = 1
		for (i = 1; i <= np; i++) if ($1 + 0 >= start[i] + 0) p = i
		n[p]++; at[p, $3]++
		if ($5 == "1") ok[p]++
	}
	END {
		printf "   %-10s %7s %7s %7s %7s %7s%s\n", "phase", "frames", "16b", "8b", "6b", "4b", fashion ? "   top-1" : ""
		for (i = 1; i <= np; i++) {
			if (!n[i]) continue
			printf "   %-10s %7d", label[i], n[i]
			split("16 8 6 4", ds, " ")
			for (k = 1; k <= 4; k++) printf " %6.0f%%", 100 * at[i, ds[k]] / n[i]
			if (fashion) printf "  %6.1f%%", 100 * ok[i] / n[i]
			printf "\n"
		}
	}' "$T/phases.txt" <(bash "$ROOT/scripts/frames.sh" "$T/npu.log")
fi
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

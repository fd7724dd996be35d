#!/bin/bash
# The frames of an npu-run --live log, one line each, for the demo's
# per-phase table and the timeline:
#   frames.sh NPU_LIVE_LOG
# prints "SECONDS AVAILABLE_GBPS DEPTH FRAME_MS SCORE": the available
# bandwidth of the decision the frame ran under (nan at the fallback depth),
# the depth most of its layers ran at, and, with --labels, 1 or 0 for its
# class against the label (- without).
set -eu
awk '$1 ~ /^[0-9]+\.[0-9]+$/ && NF >= 6 {
	best = 0; depth = 0
	for (i = 4; i <= NF; i++) if ($i ~ /^[0-9]+:[0-9]+$/) { split($i, a, ":"); if (a[2] + 0 > best) { best = a[2] + 0; depth = a[1] } }
	for (i = 4; i <= NF && $i ~ /^[0-9]+:[0-9]+$/; i++) ;
	ms = $i
	avail = ($2 == "-") ? "nan" : $2
	score = ($NF == "ok") ? 1 : ($NF == "WRONG") ? 0 : "-"
	print $1, avail, depth, ms, score
}' "$1"

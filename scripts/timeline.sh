#!/bin/bash
# A PNG timeline of an npu-run --live run under bwqd, for make demo and the
# QoS bench: the decision's available bandwidth, the depth the frames ran
# at, each frame's latency against its deadline, and the phases.
#   timeline.sh NPU_LIVE_LOG PHASES FPS OUT.png [TITLE]
# PHASES: lines "SECONDS LABEL", seconds since npu-run started.
set -eu
log=$1 phases=$2 fps=$3 out=$4 title=${5:-bwq timeline}
command -v gnuplot >/dev/null || { echo "timeline: gnuplot is not installed (make deps installs gnuplot-nox)" >&2; exit 1; }
data=$(mktemp)
trap 'rm -f "$data"' EXIT
# Per frame: time, available GB/s (nan at the fallback depth), the depth
# most layers ran at, frame milliseconds.
bash "$(dirname "$0")/frames.sh" "$log" > "$data"
[ -s "$data" ] || { echo "timeline: no frames in $log" >&2; exit 1; }
deadline=$(awk -v f="$fps" 'BEGIN {printf "%.3f", 1000 / f}')
# Without any decision (every frame at the fallback depth) the first panel
# has no points: a fixed range, and a label saying so.
avail_range='[0:*]' no_decision=''
if ! awk '$2 != "nan" {found = 1} END {exit !found}' "$data"; then
	avail_range='[0:50]'
	no_decision="set label 'no bwqd decision: every frame at the fallback depth' at graph 0.3, graph 0.5"
fi
end=$(tail -1 "$data" | awk '{print $1 + 0.2}')
marks=""
while read -r t label; do
	marks="$marks
set arrow from $t, graph 0 to $t, graph 1 nohead dashtype 2 lc rgb '#888888'
set label '$label' at $t, graph 0.92 offset 0.5,0 font ',9' tc rgb '#555555'"
done < "$phases"
gnuplot <<GP
set terminal pngcairo size 1000,720 font ',10'
set output '$out'
set multiplot layout 3,1 title '$title'
set xrange [0:$end]
set grid ytics
set key bottom left opaque font ',9'
set lmargin 10
$marks
set ylabel 'available GB/s'
set yrange $avail_range
$no_decision
plot '$data' using 1:2 with steps lw 2 lc rgb '#1f77b4' title 'available (bwqd decision)'
unset label
unset arrow
$marks
set ylabel 'bits'
set yrange [0:18]
set ytics (4, 6, 8, 16)
plot '$data' using 1:3 with steps lw 2 lc rgb '#d62728' title 'activation bits of the frame'
set ytics auto
set ylabel 'frame ms'
set xlabel 'seconds'
set yrange [0:*]
plot '$data' using 1:4 with impulses lw 2 lc rgb '#2ca02c' title 'frame latency', $deadline with lines dashtype 3 lw 2 lc rgb '#000000' title 'deadline (1/fps)'
unset multiplot
GP
[ -s "$out" ] || { echo "timeline: gnuplot wrote nothing" >&2; exit 1; }
echo "timeline: $out ($(wc -l < "$data") frames)"

#!/bin/bash
# bwqd's fleet view: its metrics file read back over HTTP by Debian's
# prometheus-node-exporter (textfile collector) on 127.0.0.1, while a
# replay trace moves the decision.
set -u
B=${B:-build}
ROOT=$(pwd)
BWQD="$ROOT/$B/bwqd"
T=$(mktemp -d /tmp/bwq-metrics-XXXXXX)
chmod 755 "$T"
. "$ROOT/tests/integration/lib.sh"
EXPORTER=$(command -v prometheus-node-exporter) || { echo "not ok - prometheus-node-exporter is not installed (make deps installs it)"; exit 1; }

bus_up
mkdir -p "$T/textfile"
printf 't_ms,used_Bps,npu_Bps\n0,5000000000,1000000000\n1500,40000000000,2000000000\n' > "$T/trace.csv"
cat > "$T/bwqd.conf" <<CONF
[Sampling]
Source=replay
Interval=20ms
Smoothing=none
[Bandwidth]
Max=44GB/s
[Replay]
Path=$T/trace.csv
[Metrics]
TextfilePath=$T/textfile/bwqd.prom
Interval=100ms
CONF
"$BWQD" --bus="$ADDR" --config="$T/bwqd.conf" > "$T/bwqd.log" 2>&1 &
PIDS+=($!)
wait_for 10 test -s "$T/textfile/bwqd.prom" && ok "bwqd writes its metrics file" || bad "no metrics file ($(cat "$T/bwqd.log"))"
# A port of our own: the first free one from 19100.
port=19100
while (echo > /dev/tcp/127.0.0.1/$port) 2>/dev/null; do port=$((port + 1)); done
"$EXPORTER" --web.listen-address=127.0.0.1:$port --collector.disable-defaults --collector.textfile \
	--collector.textfile.directory="$T/textfile" > "$T/exporter.log" 2>&1 &
PIDS+=($!)
scrape() { curl -sf "http://127.0.0.1:$port/metrics" > "$T/metrics.txt"; }
wait_for 10 scrape && ok "prometheus-node-exporter serves 127.0.0.1:$port" || bad "exporter did not answer ($(tail -2 "$T/exporter.log"))"
# A sample's value as an integer (the exporter prints 4e+10).
value() { awk -v m="$1" '$1 == m {printf "%.0f\n", $2}' "$T/metrics.txt"; }
scrape
[ "$(value node_textfile_scrape_error)" = 0 ] && ok "the textfile collector reads the file without error" || bad "scrape error: $(grep textfile "$T/metrics.txt")"
[ "$(value bwq_activation_bits)" = 16 ] && [ "$(value bwq_available_bandwidth_bytes_per_second)" = 40000000000 ] &&
	[ "$(value bwq_used_bandwidth_bytes_per_second)" = 4000000000 ] && [ "$(value bwq_npu_bandwidth_bytes_per_second)" = 1000000000 ] &&
	ok "at 5 GB/s used (1 GB/s of it the NPU's): 16 bits, 40 GB/s available, 4 GB/s used by others, over HTTP" ||
	bad "first phase: $(grep '^bwq_' "$T/metrics.txt" | tr '\n' ';')"
[ "$(value 'bwq_source_info{source="replay"}')" = 1 ] && ok "bwq_source_info{source=\"replay\"} 1" || bad "source info"
# The trace moves to 40 GB/s: 4 bits, and a decision change counted.
wait_for 10 sh -c "curl -sf http://127.0.0.1:$port/metrics | grep -qx 'bwq_activation_bits 4'" && scrape
[ "$(value bwq_activation_bits)" = 4 ] && [ "$(value bwq_decision_changes_total)" -ge 1 ] && [ "$(value bwq_samples_total)" -gt 10 ] &&
	ok "at 40 GB/s: 4 bits, bwq_decision_changes_total $(value bwq_decision_changes_total), bwq_samples_total $(value bwq_samples_total)" ||
	bad "second phase: $(grep '^bwq_' "$T/metrics.txt" | tr '\n' ';')"
# Names follow the conventions: a unit in gauges of a quantity, _total on
# counters, and every metric with HELP and TYPE.
names=$(grep -o '^bwq_[a-z_]*' "$T/metrics.txt" | sort -u)
badname=0
for n in $names; do
	type=$(awk -v n="$n" '$1 == "#" && $2 == "TYPE" && $3 == n {print $4}' "$T/metrics.txt")
	grep -q "^# HELP $n " "$T/metrics.txt" || badname=1
	[ "$type" = counter ] && [[ "$n" != *_total ]] && badname=1
	[ "$type" != counter ] && [[ "$n" == *_total ]] && badname=1
	[[ "$n" == *bandwidth* ]] && [[ "$n" != *_bytes_per_second ]] && badname=1
done
[ $badname -eq 0 ] && ok "$(echo $names | wc -w) metrics, each with HELP and TYPE, counters ending in _total, bandwidths in bytes per second" ||
	bad "metric names: $names"
ls "$T/textfile" | grep -v '^bwqd.prom$' | grep -q . && bad "temporary files left: $(ls "$T/textfile")" || ok "no temporary file left beside it"
# A directory that is not there: a warning, once, and bwqd goes on; the
# old file goes with the old path.
BWQD_PID=${PIDS[1]}
sed -i "s|^TextfilePath=.*|TextfilePath=$T/missing/bwqd.prom|" "$T/bwqd.conf"
kill -HUP "$BWQD_PID"
sleep 1
n=$(grep -c "metrics: cannot create $T/missing/bwqd.prom" "$T/bwqd.log")
[ "$n" = 1 ] && kill -0 "$BWQD_PID" && [ ! -e "$T/textfile/bwqd.prom" ] &&
	ok "an unwritable path is logged once (not every 100 ms), bwqd runs on, the old file is removed" || bad "unwritable path: $n warnings ($(tail -2 "$T/bwqd.log"))"
summary

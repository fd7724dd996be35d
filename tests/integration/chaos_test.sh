#!/bin/bash
# Chaos: bwqd and 22 clients (8 npu-run processes in the BWQ modes, 14 raw
# D-Bus clients that keep themselves registered) while a driver kills,
# restarts, stops and reloads bwqd (good and bad configs), kills clients
# and floods registrations as another user.  Checked all along: no client
# errors or hangs (npu-run only ever live, pending, refused, stale or no
# bwqd), no run uses a depth outside its clamp, bwqd's descriptors and
# memory stay bounded, every live client is registered again within a bound
# after each restart, and at the end bwqd lists exactly the live clients.
set -u
B=${B:-build}
ROOT=$(pwd)
BWQD="$ROOT/$B/bwqd"
BWQCTL="$ROOT/$B/bwqctl"
NPU_RUN="$ROOT/$B/npu-run"
CLIENT="$ROOT/$B/tests/bwq_testclient"
T=$(mktemp -d /tmp/bwq-chaos-XXXXXX)
chmod 755 "$T"
. "$ROOT/tests/integration/lib.sh"

bus_up

# A trace that moves through every section every 8 s, for 10 minutes.
/usr/bin/python3 -c "
levels = [5, 15, 25, 38]
print('t_ms,used_Bps')
for i in range(300):
    print('%d,%d' % (i * 2000, levels[i % 4] * 1000000000))" > "$T/trace.csv"
write_conf() {  # write_conf TABLE
	cat > "$T/bwqd.conf" <<EOF
[Sampling]
Source=replay
Interval=20ms
Smoothing=none
[Bandwidth]
Max=44GB/s
[Policy]
Table=$1
MinDwell=100ms
[Replay]
Path=$T/trace.csv
EOF
}
write_conf "33GB/s:16 22GB/s:8 11GB/s:6 0:4"
BWQD_PID=
start_bwqd() {
	"$BWQD" --bus="$ADDR" --config="$T/bwqd.conf" >> "$T/bwqd.log" 2>&1 &
	BWQD_PID=$!
	PIDS+=("$BWQD_PID")
	wait_for 10 bctl status org.bwq1
}

# The clients.  npu-run: mode, clamp; raw: clamp.  Names are unique.
NPU=()
declare -A NPU_CLAMP NPU_PID
i=0
for spec in "bwq-layer 6 8" "bwq-layer 4 16" "bwq-model 8 16" "bwq-model 4 6" "bwq-layer 4 8" "bwq-model 6 16" "bwq-layer 16 16" "bwq-model 4 16"; do
	set -- $spec
	n="chaos-npu-$i"
	NPU+=("$n")
	NPU_CLAMP[$n]="$2 $3"
	i=$((i + 1))
done
RAW=()
declare -A RAW_CLAMP RAW_PID
for i in $(seq 0 13); do
	n="chaos-raw-$i"
	RAW+=("$n")
	case $((i % 4)) in 0) RAW_CLAMP[$n]="4 16" ;; 1) RAW_CLAMP[$n]="6 8" ;; 2) RAW_CLAMP[$n]="8 16" ;; 3) RAW_CLAMP[$n]="4 6" ;; esac
done

start_bwqd || { bad "bwqd did not start ($(cat "$T/bwqd.log"))"; exit 1; }
RUN_SECONDS=55
i=0
for spec in "bwq-layer 6 8" "bwq-layer 4 16" "bwq-model 8 16" "bwq-model 4 6" "bwq-layer 4 8" "bwq-model 6 16" "bwq-layer 16 16" "bwq-model 4 16"; do
	set -- $spec
	n="chaos-npu-$i"
	NPU_DEVICE=soft:threads=1 "$NPU_RUN" --name="$n" --mode="$1" --bits=8 --min-bits="$2" --max-bits="$3" --size=64 \
		--fps=5 --seconds=$RUN_SECONDS --live > "$T/$n.log" 2> "$T/$n.err" &
	NPU_PID[$n]=$!
	PIDS+=($!)
	i=$((i + 1))
done
for n in "${RAW[@]}"; do
	set -- ${RAW_CLAMP[$n]}
	"$CLIENT" "$ADDR" resilient "$n" "$1" "$2" > "$T/$n.log" 2>&1 &
	RAW_PID[$n]=$!
	PIDS+=($!)
done
LIVE=("${NPU[@]}" "${RAW[@]}")

# The names bwqd lists, sorted, one per line.
listed() { "$BWQCTL" status --json 2>/dev/null | /usr/bin/python3 -c "
import json, sys
print('\n'.join(sorted(c['name'] for c in json.load(sys.stdin)['clients'])))"; }
expected() { printf '%s\n' "${LIVE[@]}" | sort; }
registered_all() { [ "$(listed)" = "$(expected)" ]; }
MAX_FDS=0 MAX_RSS=0
bounded() {  # bounded WHEN
	local fds rss
	fds=$(ls "/proc/$BWQD_PID/fd" 2>/dev/null | wc -l)
	rss=$(awk '/VmRSS/ {print $2}' "/proc/$BWQD_PID/status" 2>/dev/null)
	[ "${fds:-0}" -gt $MAX_FDS ] && MAX_FDS=$fds
	[ "${rss:-0}" -gt $MAX_RSS ] && MAX_RSS=$rss
	if [ "${fds:-999}" -le 64 ] && [ "${rss:-999999}" -le 65536 ]; then
		ok "$1: bwqd has $fds descriptors and $((rss / 1024)) MB resident"
	else
		bad "$1: bwqd has ${fds:-?} descriptors and ${rss:-?} kB resident (bounds: 64, 64 MB)"
	fi
}
# Every live client registered within 5 s (3 s of backoff at most, plus the
# restart).
all_registered() {  # all_registered WHEN
	local t0=$(date +%s%N)
	if wait_for 8 registered_all; then
		ok "$1: all ${#LIVE[@]} live clients registered again in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
	else
		bad "$1: bwqd lists $(listed | wc -l) clients, not the ${#LIVE[@]} live ones (missing: $(comm -13 <(listed) <(expected) | tr '\n' ' '); extra: $(comm -23 <(listed) <(expected) | tr '\n' ' '))"
	fi
}
drop_live() { local gone=$1 keep=(); for n in "${LIVE[@]}"; do [ "$n" != "$gone" ] && keep+=("$n"); done; LIVE=("${keep[@]}"); }

T0=$(date +%s)
all_registered "start"
bounded "start"

kill -9 "$BWQD_PID"; wait "$BWQD_PID" 2>/dev/null
sleep 1
start_bwqd || bad "restart after kill -9"
all_registered "after kill -9 and a restart"

kill -STOP "$BWQD_PID"; sleep 2.5; kill -CONT "$BWQD_PID"
wait_for 5 bctl call org.bwq1 /org/bwq1 org.bwq1.Manager GetDecision && ok "after a 2.5 s SIGSTOP bwqd answers" || bad "no answer after SIGSTOP"
all_registered "after SIGSTOP"

write_conf "30GB/s:16 20GB/s:8 10GB/s:6 0:4"
kill -HUP "$BWQD_PID"
wait_for 3 sh -c "busctl --address='$ADDR' get-property org.bwq1 /org/bwq1 org.bwq1.Manager Table | grep -q '30000000000 16'" &&
	ok "a good config on SIGHUP is taken" || bad "SIGHUP good config"
cp "$T/bwqd.conf" "$T/good.conf"
printf '[Policy]\nTable=9:4 20:16\n' >> "$T/bwqd.conf"
out=$(bctl call org.bwq1 /org/bwq1 org.bwq1.Manager Reload 2>&1)
[[ "$out" == *"refused"* ]] && bctl get-property org.bwq1 /org/bwq1 org.bwq1.Manager Table | grep -q '30000000000 16' &&
	ok "a bad config on Reload() is refused; the old table stays" || bad "bad Reload ($out)"
kill -HUP "$BWQD_PID"
cp "$T/good.conf" "$T/bwqd.conf"
bounded "after reloads"

for n in chaos-raw-3 chaos-raw-7; do kill -9 "${RAW_PID[$n]}"; wait "${RAW_PID[$n]}" 2>/dev/null; drop_live "$n"; done
kill -9 "${NPU_PID[chaos-npu-5]}"; wait "${NPU_PID[chaos-npu-5]}" 2>/dev/null; drop_live chaos-npu-5
wait_for 5 registered_all && ok "killed clients are dropped: bwqd lists the ${#LIVE[@]} live ones" || bad "killed clients still listed ($(listed | tr '\n' ' '))"

touch "$T/flood.hold"
as_nobody env SWARM_HOLD_FILE="$T/flood.hold" "$(nobody_bin "$CLIENT")" "$ADDR" swarm 64 16 1 > "$T/flood.log" 2> "$T/flood.err" &
FLOOD=$!
PIDS+=("$FLOOD")
wait_for 30 grep -q registered "$T/flood.log"
kill -9 "$BWQD_PID"; wait "$BWQD_PID" 2>/dev/null
start_bwqd || bad "restart during the flood"
flooded() { [ "$(listed | grep -c '^swarm-')" -ge 1 ]; }
sleep 1
# The flood's connections do not register again (they are not resilient);
# every live client must, in spite of them.
comm -13 <(listed | grep -v '^swarm-') <(expected) | grep -q . && bad "a restart during a flood: $(comm -13 <(listed) <(expected) | tr '\n' ' ') missing" ||
	ok "a restart during a flood: every live client registered"
bounded "during the flood"
rm -f "$T/flood.hold"; wait "$FLOOD" 2>/dev/null

kill -TERM "$BWQD_PID"; wait "$BWQD_PID"; rc=$?
[ $rc -eq 0 ] && ok "SIGTERM: bwqd exits 0" || bad "SIGTERM exit $rc"
sleep 1.5
start_bwqd || bad "restart after SIGTERM"
all_registered "after SIGTERM and a restart"
kill -STOP "$BWQD_PID"; sleep 1; kill -9 "$BWQD_PID"; wait "$BWQD_PID" 2>/dev/null
start_bwqd || bad "restart after a stopped bwqd was killed"
all_registered "after a stopped bwqd was killed and restarted"
bounded "late"

# Near the end of the npu-run processes: every client listed; then they
# finish, and the raw clients are stopped.
left=$(( RUN_SECONDS - ($(date +%s) - T0) - 6 ))
[ $left -gt 0 ] && sleep $left
all_registered "near the end, with every client running"
sleep 8
for n in "${NPU[@]}"; do
	[ "$n" = chaos-npu-5 ] && continue
	wait "${NPU_PID[$n]}"; rc=$?
	set -- ${NPU_CLAMP[$n]}
	frames=$(grep -c '^ *[0-9.]* ' "$T/$n.log")
	outside=$(awk -v lo="$1" -v hi="$2" '{for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+:[0-9]+$/) { split($i, a, ":"); if (a[1] < lo || a[1] > hi) n++ } } END {print n + 0}' "$T/$n.log")
	states=$(grep -o 'bwqd link: [a-z ]*' "$T/$n.err" | sed 's/bwqd link: //; s/ *$//' | sort -u | tr '\n' ',')
	odd=$(grep -v 'bwqd link: \(live\|pending\|refused\|stale\|no bwqd\)' "$T/$n.err" | grep -c .)
	if [ $rc -eq 0 ] && [ "$outside" -eq 0 ] && [ "$odd" -eq 0 ] && [ "$frames" -ge $((RUN_SECONDS * 5 * 8 / 10)) ]; then
		ok "$n [$1, $2]: exit 0, $frames frames, none outside its clamp, states seen: $states"
	else
		bad "$n [$1, $2]: exit $rc, $frames frames, $outside outside its clamp, $odd other lines on stderr ($(grep -v 'bwqd link' "$T/$n.err" | head -2)); states $states"
	fi
	drop_live "$n"
done
wait_for 5 registered_all && ok "the npu-run clients are gone with their processes: bwqd lists exactly the ${#LIVE[@]} raw clients" ||
	bad "after npu-run ended bwqd lists $(listed | tr '\n' ' ')"
for n in "${RAW[@]}"; do
	[ "$n" = chaos-raw-3 ] || [ "$n" = chaos-raw-7 ] && continue
	kill "${RAW_PID[$n]}"; wait "${RAW_PID[$n]}"; rc=$?
	regs=$(grep -c '^registered' "$T/$n.log")
	if [ $rc -eq 0 ] && [ "$regs" -ge 5 ] && ! grep -q '^violation' "$T/$n.log"; then
		:
	else
		bad "$n: exit $rc, $regs registrations, $(grep -c '^violation' "$T/$n.log") violations"
	fi
	drop_live "$n"
done
[ $fail -eq 0 ] && ok "every raw client stayed up, registered again after each of the 4 restarts, and saw no depth outside its clamp"
wait_for 5 sh -c "[ \"\$(busctl --address='$ADDR' get-property org.bwq1 /org/bwq1 org.bwq1.Manager Clients)\" = 'u 0' ]" &&
	ok "with every client gone bwqd lists none" || bad "clients left: $(listed | tr '\n' ' ')"
echo "bwqd's most descriptors: $MAX_FDS; most resident memory: $((MAX_RSS / 1024)) MB; $(( $(date +%s) - T0 )) s"
summary

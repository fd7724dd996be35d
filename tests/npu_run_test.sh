#!/bin/sh
# npu-run as a user meets it: help, bad arguments, JSON shape, and the
# activation traffic at 4 bits exactly a quarter of 16 bits at 224x224.
set -u
B=${B:-build}
RUN="$B/npu-run"
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }

"$RUN" --help | grep -q -- '--bits=N|all' && ok "--help documents --bits" || bad "--help documents --bits"

"$RUN" --bits 5 >/dev/null 2>err.$$; rc=$?
[ $rc -eq 2 ] && grep -q "is not 4, 6, 8, 16 or all" err.$$ && ok "--bits 5 exits 2 with a reason" || bad "--bits 5 exits 2 with a reason (rc=$rc)"
"$RUN" --runs 0 >/dev/null 2>err.$$; rc=$?
[ $rc -eq 2 ] && ok "--runs 0 exits 2" || bad "--runs 0 exits 2 (rc=$rc)"
"$RUN" --device /dev/null >/dev/null 2>err.$$; rc=$?
[ $rc -eq 1 ] && grep -q "cannot open NPU device '/dev/null'" err.$$ && ok "a non-NPU device exits 1 naming it" || bad "a non-NPU device exits 1 naming it (rc=$rc)"
"$RUN" extra >/dev/null 2>&1; rc=$?
[ $rc -eq 2 ] && ok "a stray argument exits 2" || bad "a stray argument exits 2 (rc=$rc)"

json4=$("$RUN" --bits 4 --json) || bad "npu-run --bits 4 --json runs"
json16=$("$RUN" --bits 16 --json) || bad "npu-run --bits 16 --json runs"
for key in '"layers":\[' '"bits":4' '"bytes_read":' '"bytes_written":' '"ns":' '"totals":{"activation_bytes":' '"weight_bytes":'; do
	printf '%s' "$json4" | grep -q "$key" && ok "json has $key" || bad "json has $key"
done
a4=$(printf '%s' "$json4" | sed 's/.*"totals":{"activation_bytes":\([0-9]*\).*/\1/')
a16=$(printf '%s' "$json16" | sed 's/.*"totals":{"activation_bytes":\([0-9]*\).*/\1/')
if [ -n "$a4" ] && [ "$((a4 * 4))" -eq "$a16" ]; then
	ok "activation bytes at 4 bits ($a4) x 4 = at 16 bits ($a16)"
else
	bad "activation bytes at 4 bits ($a4) x 4 = at 16 bits ($a16)"
fi
layers=$(printf '%s' "$json4" | grep -o '"op":' | wc -l)
[ "$layers" -eq 54 ] && ok "54 layers reported" || bad "54 layers reported (got $layers)"
"$RUN" --bits all --json | grep -q '^{"runs":\[{"bits":4' && ok "--bits all --json is one object of runs" || bad "--bits all --json is one object of runs"
# --fps edge cases: a slow rate never sleeps past --seconds, a rate too
# slow to be meant is refused (its period overflowed the sleep), and the
# loop runs one depth.
t0=$(date +%s%N)
"$RUN" --fps 0.02 --seconds 1 --size 64 >/dev/null 2>err.$$; rc=$?
ms=$(( ($(date +%s%N) - t0) / 1000000 ))
[ $rc -eq 0 ] && [ $ms -lt 5000 ] && ok "--fps 0.02 --seconds 1 ends after about 1 s ($ms ms), not 50 s" || bad "--fps 0.02 --seconds 1 (rc=$rc, $ms ms)"
"$RUN" --fps 1e-300 --seconds 1 >/dev/null 2>err.$$; rc=$?
[ $rc -eq 2 ] && grep -q "'1e-300' is not a number from 0.001 to 1000" err.$$ && ok "--fps 1e-300 exits 2 with the range" || bad "--fps 1e-300 (rc=$rc: $(cat err.$$))"
"$RUN" --fps 10 --bits all --seconds 1 >/dev/null 2>err.$$; rc=$?
[ $rc -eq 2 ] && grep -q "runs one depth" err.$$ && ok "--fps 10 --bits all exits 2 (it ran at 16 bits)" || bad "--fps with --bits all (rc=$rc)"
cpus=$(nproc)
"$RUN" --device "soft:threads=$((cpus + 1))" >/dev/null 2>err.$$; rc=$?
[ $rc -eq 1 ] && grep -q "more compute threads than" err.$$ && ok "more device threads than CPUs exits 1 saying so: $(cat err.$$)" || bad "soft:threads=$((cpus + 1)) (rc=$rc: $(cat err.$$))"
BWQ_BUS=none "$RUN" --mode bwq-layer --fps 5 --seconds 0.5 --size 64 --live >out.$$ 2>err.$$; rc=$?
[ $rc -eq 0 ] && grep -q "bwqd link: no bwqd" err.$$ && grep -q "fallback (no bwqd)" out.$$ && ok "without bwqd: 'bwqd link: no bwqd' and frames at 'fallback (no bwqd)'" ||
	bad "no bwqd status (rc=$rc: $(cat err.$$))"
rm -f out.$$
rm -f err.$$
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]

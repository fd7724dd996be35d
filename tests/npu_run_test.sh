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
[ "$layers" -eq 64 ] && ok "64 layers reported" || bad "64 layers reported (got $layers)"
"$RUN" --bits all --json | grep -q '^{"runs":\[{"bits":4' && ok "--bits all --json is one object of runs" || bad "--bits all --json is one object of runs"
rm -f err.$$
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]

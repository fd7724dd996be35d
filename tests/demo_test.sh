#!/bin/bash
# make demo, short: the replay trace through all four table sections with
# one-second phases (five with SANITIZE=1), run exactly as `make demo` runs it.  It must exit 0,
# show bwqd's decision walking 16 -> 8 -> 6 -> 4 for the registered client,
# npu-run's frames, and stop cleanly.
# SANITIZE (and B, if set) come from the environment, as make passes them.
# Under the sanitizers npu-run starts several seconds later (its first
# frames are many times slower), so the phases are longer there.
set -u
phase=1
[ "${SANITIZE:-0}" = 1 ] && phase=5
out=$(DEMO_SOURCE=replay DEMO_PHASE_SECONDS=$phase make --no-print-directory demo 2>&1)
rc=$?
fail=0
check() {
	if echo "$out" | grep -qE "$2"; then
		echo "ok - $1"
	else
		echo "not ok - $1 (no line matching '$2')"
		fail=1
	fi
}
[ $rc -eq 0 ] && echo "ok - make demo exits 0" || { echo "not ok - make demo exited $rc"; fail=1; }
for bits in 16 8 6 4; do
	check "the client follows the decision to $bits bits" "bits +$bits .*clients: demo\[4-16\]=$bits"
done
check "npu-run reports its frames" "^frames [0-9]+ at 5.0 fps"
check "the demo stops bwqd and the bus" "demo: done"
if [ $fail -ne 0 ]; then
	echo "$out" | tail -40
	exit 1
fi

#!/bin/bash
# make bench, models: each npm model that runs on the device, on npuref at
# 8 bits against ONNX Runtime's float CPU run of the same file on the same
# input, 1 and 2 threads, in alternating blocks; medians and the ratio
# (goal: npuref <= 0.5 of ONNX Runtime's time), and the model's load and
# compile time.  ONNX Runtime and the models come from scripts/test-deps.sh.
set -u
B=${B:-build}
NPM=${NPM_DIR:-build/npm}
ROOT=$(pwd)
RUN="$ROOT/$B/npu-run"
T=$(mktemp -d /tmp/bwq-bench-onnx-XXXXXX)
trap 'rm -rf "$T"' EXIT
export BWQ_BUS=none BWQ_NODE_MODULES="$ROOT/$NPM/node_modules"
RUNS=${BENCH_MODEL_RUNS:-10}
BLOCKS=3
med() { sort -g | awk '{ v[NR] = $1 } END { print (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }

echo
echo "11. ONNX models: npuref at 8 bits vs ONNX Runtime float (CPU), same file and input, median of $BLOCKS blocks x $RUNS runs"
echo "    $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) CPUs"
printf '   %-34s %4s %12s %12s %8s %12s\n' model thr npuref_ms ort_ms ratio load+compile
for name in face_detection_front_128x128_barracuda mlsd_320x320_tiny; do
	model="$ROOT/$NPM/models/$name.onnx"
	[ -f "$model" ] || { echo "   $name: not installed ($NPM, scripts/test-deps.sh)"; exit 1; }
	dims=$(/usr/bin/python3 - "$model" "$T/x.npy" "$RUNS" <<'EOF'
import sys
import numpy as np
import onnx
m = onnx.load(sys.argv[1])
init = {i.name for i in m.graph.initializer}
inp = [i for i in m.graph.input if i.name not in init][0]
shape = [d.dim_value or 1 for d in inp.type.tensor_type.shape.dim]
lo, hi = (0, 255) if 'mlsd' in sys.argv[1] else (-1, 1)
x = np.random.default_rng(7).uniform(lo, hi, [int(sys.argv[3])] + shape).astype(np.float32)
np.save(sys.argv[2], x)
print('x'.join(map(str, shape)))
EOF
)
	for thr in 1 2; do
		npu=() ort=() load=()
		for blk in $(seq $BLOCKS); do
			out=$("$RUN" --model="$model" --input="$T/x.npy" --bits=8 --device="soft:threads=$thr" --json 2>"$T/err") ||
				{ echo "   $name: npu-run failed: $(head -1 "$T/err")"; exit 1; }
			npu+=("$(echo "$out" | grep -o '"median_ms":[0-9.]*' | cut -d: -f2)")
			load+=("$(echo "$out" | grep -o '"compile_s":[0-9.]*' | cut -d: -f2)")
			o=$(node "$ROOT/tests/onnx/ort_run.js" "$model" "$T/x.npy" "$T/ort" --threads "$thr" 2>"$T/err") ||
				{ echo "   $name: ONNX Runtime failed: $(head -1 "$T/err")"; exit 1; }
			ort+=("$(echo "$o" | grep -o '"median_ms":[0-9.]*' | cut -d: -f2)")
		done
		n=$(printf '%s\n' "${npu[@]}" | med)
		r=$(printf '%s\n' "${ort[@]}" | med)
		l=$(printf '%s\n' "${load[@]}" | med)
		printf '   %-34s %4s %12.3f %12.3f %8.2f %10.3f s   (npuref/ort; goal <= 0.5; input %s)\n' \
			"${name:0:34}" "$thr" "$n" "$r" "$(awk "BEGIN { print $n / $r }")" "$l" "$dims"
	done
done
echo "   (M-LSD runs its peak step, Equal, Cast and Mul, on the host after the device's layers)"

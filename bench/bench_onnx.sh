#!/bin/bash
# make bench, models: each npm model that runs on the device, on npuref at
# 8 bits against ONNX Runtime's float CPU run of the same file on the same
# input, 1 and 2 threads, in alternating blocks; medians and the ratio
# (goal: npuref <= 0.5 of ONNX Runtime's time), and the model's load and
# compile time; the other depths as the median (and range) of each block's
# ratio to its own 8-bit run.  ONNX Runtime and the models come from
# scripts/test-deps.sh.
set -u
B=${B:-build}
NPM=${NPM_DIR:-build/npm}
ROOT=$(pwd)
RUN="$ROOT/$B/npu-run"
T=$(mktemp -d /tmp/bwq-bench-onnx-XXXXXX)
trap 'rm -rf "$T"' EXIT
export BWQ_BUS=none BWQ_NODE_MODULES="$ROOT/$NPM/node_modules"
RUNS=${BENCH_MODEL_RUNS:-30}
BLOCKS=5
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
		npu=() ort=() load=() npu4=() npu6=() npu16=()
		for blk in $(seq $BLOCKS); do
			out=$("$RUN" --model="$model" --input="$T/x.npy" --bits=8 --device="soft:threads=$thr" --json 2>"$T/err") ||
				{ echo "   $name: npu-run failed: $(head -1 "$T/err")"; exit 1; }
			npu+=("$(echo "$out" | grep -o '"median_ms":[0-9.]*' | cut -d: -f2)")
			load+=("$(echo "$out" | grep -o '"compile_s":[0-9.]*' | cut -d: -f2)")
			# The same model at 4, 6 and 16 bits, in the same blocks (their
			# ranges from the model's own min-max pass, as at 8 bits).
			for b in 4 6 16; do
				out=$("$RUN" --model="$model" --input="$T/x.npy" --bits=$b --device="soft:threads=$thr" --json 2>"$T/err") ||
					{ echo "   $name: npu-run --bits=$b failed: $(head -1 "$T/err")"; exit 1; }
				eval "npu$b+=(\"\$(echo \"\$out\" | grep -o '\"median_ms\":[0-9.]*' | cut -d: -f2)\")"
			done
			o=$(node "$ROOT/tests/onnx/ort_run.js" "$model" "$T/x.npy" "$T/ort" --threads "$thr" 2>"$T/err") ||
				{ echo "   $name: ONNX Runtime failed: $(head -1 "$T/err")"; exit 1; }
			ort+=("$(echo "$o" | grep -o '"median_ms":[0-9.]*' | cut -d: -f2)")
		done
		n=$(printf '%s\n' "${npu[@]}" | med)
		r=$(printf '%s\n' "${ort[@]}" | med)
		l=$(printf '%s\n' "${load[@]}" | med)
		printf '   %-34s %4s %12.3f %12.3f %8.2f %10.3f s   (npuref/ort; goal <= 0.5; input %s)\n' \
			"${name:0:34}" "$thr" "$n" "$r" "$(awk "BEGIN { print $n / $r }")" "$l" "$dims"
		# Each depth against the 8-bit run of its own block (the same state
		# of the machine): the median of the blocks' ratios, and their range.
		ratios() {
			local -n xs=$1
			for i in "${!xs[@]}"; do awk "BEGIN { print ${xs[$i]} / ${npu[$i]} }"; done |
				sort -g | awk '{ v[NR] = $1 } END { m = (NR % 2) ? v[(NR + 1) / 2] : (v[NR / 2] + v[NR / 2 + 1]) / 2;
					printf "%.2f (%.2f-%.2f)", m, v[1], v[NR] }'
		}
		printf '   %-34s %4s   4 bits %s, 6 bits %s, 16 bits %s of the 8-bit time   (goal: 4 bits <= 1.00)\n' \
			"" "$thr" "$(ratios npu4)" "$(ratios npu6)" "$(ratios npu16)"
	done
done
echo "   (M-LSD runs its peak step, Equal, Cast and Mul, on the host after the device's layers)"

echo
echo "12. accuracy of the trained classifier (models/fashion) per depth: top-1 on the 10000 Fashion-MNIST test images"
echo "    (tests/onnx/calibration_test.sh: its floors are asserted in make check; goals: calibrated A8 <= 0.3, A6 <= 1,"
echo "    A4 <= 3 points lost, the per-layer mix under a 4-bit decision <= 1 point at <= 0.35 of the 16-bit bytes)"
B=$B NPM_DIR=$NPM bash "$ROOT/tests/onnx/calibration_test.sh" > "$T/calib.log" 2>&1
sed -n '/^configuration/,/^per-layer mix/p' "$T/calib.log" | sed 's/^/   /'
grep -E "^(ok|not ok) - (A[0-9]+|per-layer mix|float|ONNX)" "$T/calib.log" | sed 's/^/   /'

echo
echo "13. the npm models per depth against ONNX Runtime's float output, min-max and calibrated ranges"
echo "    (calibrated on 48 crops of six other photographs of python3-skimage, budget 3 dB below uniform 8 bits;"
echo "    judged on the astronaut photograph)"
CALB="$ROOT/$B/npu-calibrate"
/usr/bin/python3 - "$ROOT/$NPM/data" "$T" <<'PY'
import sys
import numpy as np
from PIL import Image
d, t = sys.argv[1], sys.argv[2]
rng = np.random.default_rng(3)
others = ['chelsea.png', 'coffee.png', 'motorcycle_left.png', 'rocket.jpg', 'retina.jpg', 'ihc.png']
face, lines = [], []
for name in others:
    im = Image.open(f'{d}/{name}').convert('RGB')
    w, h = im.size
    for _ in range(8):
        s = int(rng.integers(min(w, h) // 3, min(w, h)))
        x, y = int(rng.integers(0, w - s + 1)), int(rng.integers(0, h - s + 1))
        c = im.crop((x, y, x + s, y + s))
        face.append(np.asarray(c.resize((128, 128), Image.BILINEAR), np.float32) / 127.5 - 1.0)
        lines.append(np.asarray(c.convert('RGBA').resize((320, 320), Image.BILINEAR), np.float32))
np.save(f'{t}/bf_cal.npy', np.stack(face)[:, None])
np.save(f'{t}/ml_cal.npy', np.stack(lines)[:, None])
a = Image.open(f'{d}/astronaut.png').convert('RGB')
np.save(f'{t}/face.npy', (np.asarray(a.crop((96, 0, 352, 256)).resize((128, 128), Image.BILINEAR), np.float32) / 127.5 - 1.0)[None])
np.save(f'{t}/lines.npy', np.asarray(a.convert('RGBA').resize((320, 320), Image.BILINEAR), np.float32)[None])
PY
BF="$ROOT/$NPM/models/face_detection_front_128x128_barracuda.onnx"
ML="$ROOT/$NPM/models/mlsd_320x320_tiny.onnx"
node "$ROOT/tests/onnx/ort_run.js" "$BF" "$T/face.npy" "$T/bf.ort" >/dev/null 2>&1 &&
	node "$ROOT/tests/onnx/ort_run.js" "$ML" "$T/lines.npy" "$T/ml.ort" >/dev/null 2>&1 || { echo "   ONNX Runtime failed"; exit 1; }
for m in bf ml; do
	model=$BF eval=8
	[ $m = ml ] && model=$ML eval=4
	"$CALB" -q "$model" -s "$T/${m}_cal.npy" -o "$T/${m}_mm.onnx" --method=minmax --no-bias-correction -e $eval --budget=A8-3 >/dev/null 2>"$T/err" &&
		"$CALB" -q "$model" -s "$T/${m}_cal.npy" -o "$T/${m}_c.onnx" -e $eval --budget=A8-3 >/dev/null 2>>"$T/err" ||
		{ echo "   npu-calibrate $m: $(head -1 "$T/err")"; exit 1; }
done
printf '   %-12s %-32s %-46s %10s\n' model configuration "agreement with ONNX Runtime float" bytes/A16
agree() { # MODEL PREFIX
	if [ "$1" = bf ]; then
		node "$ROOT/tests/onnx/blazeface_agree.js" "$2" "$T/bf.ort" --top 5 2>&1 |
			sed -n 's/^box IoU \([0-9.]*\) .*score error \([0-9.e+-]*\).*/box IoU \1, score error \2/p'
	else
		node "$ROOT/tests/onnx/peaks_agree.js" "$2.1.npy" "$T/ml.ort.1.npy" --min-score 0.05 2>&1 |
			sed -n 's/.*agree at \([0-9.]*%\).*; \([0-9]*\) of the reference.s \([0-9]*\) kept by both.*there \([0-9.e+-]*\).*/peaks \2 of \3 kept, score err \4/p'
	fi
}
for m in bf ml; do
	input=$T/face.npy name=BlazeFace
	[ $m = ml ] && input=$T/lines.npy name=M-LSD-tiny
	b16=
	for cfg in "16 mm" "16 c" "8 mm" "8 c" "6 mm" "6 c" "4 mm" "4 c" "mix c"; do
		set -- $cfg
		f="$T/${m}_$2.onnx"
		if [ "$1" = mix ]; then args=(--mode=bwq-model --bits=4); label="per-layer mix, 4-bit decision"
		else args=(--bits=$1); label="A$1 W8, $([ "$2" = mm ] && echo min-max || echo calibrated) ranges"; fi
		"$RUN" --model="$f" --input="$input" --output="$T/o" --summary "${args[@]}" >"$T/o.txt" 2>"$T/err" ||
			{ echo "   $name $label: $(head -1 "$T/err")"; continue; }
		bytes=$(sed -n 's/.*activation_bytes \([0-9]*\).*/\1/p' "$T/o.txt")
		[ -n "$b16" ] || b16=$bytes
		printf '   %-12s %-32s %-46s %10.3f\n' "$name" "$label" "$(agree $m "$T/o")" "$(awk "BEGIN { print $bytes / $b16 }")"
	done
done
echo "   (BlazeFace: mean box IoU over ONNX Runtime's 5 best anchors and the largest score error; M-LSD: share of"
echo "    ONNX Runtime's peaks of score >= 0.05 that npuref keeps too, and their largest score error)"

#!/bin/bash
# npu-calibrate and the accuracy it buys, on the trained classifier of
# models/fashion (Fashion-MNIST from Debian's dataset-fashion-mnist; its
# 10000 held-out test images, calibrated on 256 training images):
#   - top-1 against the labels: float (libnpu's reference, and ONNX Runtime
#     on the same images), uniform A16/A8/A6/A4 with min-max and with the
#     calibrated ranges, and the calibrated per-layer mix under a 4-bit
#     decision; floors asserted, the table printed;
#   - a deliberately fragile layer gets a higher minimum depth than its
#     neighbours, and the driver runs every layer at the minimum written;
#   - bad calibration input and bad bwq metadata refused with named errors.
set -u
B=${B:-build}
NPM=${NPM_DIR:-build/npm}
ROOT=$(pwd)
RUN="$ROOT/$B/npu-run"
CAL="$ROOT/$B/npu-calibrate"
MODEL="$ROOT/models/fashion/fashion.onnx"
T=$(mktemp -d /tmp/bwq-calib-XXXXXX)
trap 'rm -rf "$T"' EXIT
export BWQ_BUS=none BWQ_NODE_MODULES="$ROOT/$NPM/node_modules"
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit; }
# jget FILE EXPR: a value of the JSON in FILE (EXPR over `j`), with node.
jget() { node -e "const j = JSON.parse(require('fs').readFileSync('$1', 'utf8')); console.log($2)"; }

if ! /usr/bin/python3 "$ROOT/models/fashion/data.py" "$T/test" 2>"$T/data.err" ||
	! /usr/bin/python3 "$ROOT/models/fashion/data.py" "$T/cal" --split train --count 256 2>>"$T/data.err"; then
	bad "the Fashion-MNIST splits are built from dataset-fashion-mnist: $(tail -1 "$T/data.err")"
	finish
fi
ok "test split (10000) and calibration samples (256 training images) built from the Debian package"

# ---- calibration: auto ranges (the default) and min-max for comparison ----
if "$CAL" -q "$MODEL" -s "$T/cal/X.npy" -o "$T/fc.onnx" --budget 18 --json >"$T/fc.json" 2>"$T/err" &&
	"$CAL" -q "$MODEL" -s "$T/cal/X.npy" -o "$T/fm.onnx" --method=minmax --no-bias-correction --budget 18 >/dev/null 2>>"$T/err"; then
	ok "npu-calibrate wrote the calibrated and the min-max models"
else
	bad "npu-calibrate: $(head -1 "$T/err")"
	finish
fi
# measure FILE ARGS...: "TOP1 BYTES" of npu-run over the test split (top-1
# in percent, activation bytes per inference).
measure() {
	local f=$1
	shift
	"$RUN" --model="$f" -i "$T/test/X.npy" --labels="$T/test/Y.npy" --summary "$@" >"$T/run.out" 2>"$T/run.err"
	cat "$T/run.out" >>"$T/runs.txt"
	echo "$(sed -n 's/^top-1[^:]*: \([0-9.]*\)%.*/\1/p' "$T/run.out") $(sed -n 's/.*activation_bytes \([0-9]*\).*/\1/p' "$T/run.out")"
}
calc() { awk "BEGIN { printf \"%.4f\", $1 }"; }
read -r float _ <<<"$(measure "$MODEL" --reference)"
ok "float top-1 (libnpu's reference): $float%"
# ONNX Runtime on the same images: the same top-1 within 0.05 points.
if node "$ROOT/tests/onnx/ort_run.js" "$MODEL" "$T/test/X.npy" "$T/ort" >"$T/ort.log" 2>&1; then
	ort=$(/usr/bin/python3 -c "
import numpy as np
y = np.load('$T/ort.0.npy').reshape(10000, -1).argmax(1)
print('%.2f' % (100 * (y == np.load('$T/test/Y.npy')).mean()))")
	awk -v a="$float" -v b="$ort" 'BEGIN { d = a - b; exit !(d < 0.05 && d > -0.05) }' &&
		ok "ONNX Runtime's float top-1 $ort% is the reference's" || bad "ONNX Runtime's top-1 $ort%, the reference's $float%"
else
	bad "ONNX Runtime on the test split: $(tail -1 "$T/ort.log")"
fi

printf "%-34s %8s %8s %10s\n" "configuration" "top-1" "lost" "bytes/A16" >"$T/table.txt"
read -r _ b16 <<<"$(measure "$T/fc.onnx" --bits=16)"
row() { # NAME TOP1 BYTES
	printf "%-34s %7.2f%% %7.2f %10.3f\n" "$1" "$2" "$(calc "$float - $2")" "$(calc "$3 / $b16")" >>"$T/table.txt"
}
row "float" "$float" "$b16"
declare -A cal mm
for bits in 16 8 6 4; do
	read -r "mm[$bits]" bb <<<"$(measure "$T/fm.onnx" --bits=$bits)"
	read -r "cal[$bits]" bb <<<"$(measure "$T/fc.onnx" --bits=$bits)"
	row "A$bits W8, min-max ranges" "${mm[$bits]}" "$bb"
	row "A$bits W8, calibrated ranges" "${cal[$bits]}" "$bb"
done
read -r mix mixb <<<"$(measure "$T/fc.onnx" --mode=bwq-model --bits=4)"
row "per-layer mix, 4-bit decision" "$mix" "$mixb"
cat "$T/table.txt"

# Floors: what this model measured when the test was written, less a margin
# for another machine's float rounding (the goals of the issue are in the
# closing note and in make bench): A8 and A16 lose <= 0.3 points, A6 <= 1,
# A4 calibrated <= 4.5 and at least 20 points above min-max, the mix <= 1
# point at <= 0.35 of the 16-bit bytes.
floor() { # WHAT VALUE OP LIMIT
	if awk -v v="$2" -v l="$4" "BEGIN { exit !(v $3 l) }"; then ok "$1: $2 $3 $4"; else bad "$1: $2, wanted $3 $4"; fi
}
lost() { calc "$float - $1"; }
floor "A16 calibrated: points lost" "$(lost "${cal[16]}")" "<=" 0.3
floor "A8 calibrated: points lost" "$(lost "${cal[8]}")" "<=" 0.3
floor "A6 calibrated: points lost" "$(lost "${cal[6]}")" "<=" 1.0
floor "A4 calibrated: points lost" "$(lost "${cal[4]}")" "<=" 4.5
floor "A4: calibrated over min-max, points" "$(calc "${cal[4]} - ${mm[4]}")" ">=" 20
floor "per-layer mix under 4 bits: points lost" "$(lost "$mix")" "<=" 1.0
floor "per-layer mix under 4 bits: bytes of 16-bit" "$(calc "$mixb / $b16")" "<=" 0.35
grep -q "the model's own calibrated ranges" "$T/run.err" && ok "npu-run used the model's own ranges" ||
	bad "npu-run did not say it used the model's ranges: $(head -1 "$T/run.err")"

# ---- the driver clamps each layer to the minimum written ----
if "$RUN" --model="$T/fc.onnx" -i "$T/cal/X.npy" --mode=bwq-model --bits=4 --json >"$T/mix.json" 2>"$T/err"; then
	want=$(jget "$T/fc.json" "j.tensors.filter(t => t.layer >= 0).map(t => t.min_bits).join(' ')")
	got=$(jget "$T/mix.json" "j.runs[0].layers.map(l => l.bits).join(' ')")
	[ -n "$want" ] && [ "$want" = "$got" ] && ok "every layer ran at its calibrated minimum under a 4-bit decision" ||
		bad "layer bits '$got', calibrated minimums '$want'"
else
	bad "the calibrated model under bwq-model: $(head -1 "$T/err")"
fi

# ---- sensitivity: a fragile layer gets more bits than its neighbours ----
if ! /usr/bin/python3 "$ROOT/tests/onnx/make_models.py" "$T/m" 2>"$T/make.err"; then
	bad "the test models are written: $(tail -1 "$T/make.err")"
	finish
fi
if "$CAL" -q "$T/m/fragile_chain.onnx" -s "$T/m/fragile_chain.npy" -o "$T/fragile.onnx" --budget 20 --json >"$T/fr.json" 2>"$T/err"; then
	bits() { jget "$T/fr.json" "j.tensors.find(t => t.name === '$1').min_bits"; }
	f=$(bits fragile) a=$(bits conv1) b=$(bits conv3)
	s4=$(jget "$T/fr.json" "j.tensors.find(t => t.name === 'fragile').sqnr4_db")
	[ "$f" -gt "$a" ] && [ "$f" -gt "$b" ] && ok "the fragile layer's minimum $f bits is above its neighbours' ($a, $b; its SQNR alone at 4 bits $s4 dB)" ||
		bad "fragile layer $f bits, neighbours $a and $b"
	low=$(jget "$T/fr.json" "j.tensors.reduce((m, t) => t.sqnr4_db < m.sqnr4_db ? t : m).name")
	[ "$low" = fragile ] && ok "the fragile layer is the most sensitive at 4 bits" || bad "the most sensitive at 4 bits is $low"
else
	bad "npu-calibrate on fragile_chain: $(head -1 "$T/err")"
fi

# Bias correction per input depth, where it helps: on the MobileNetV3-style
# block (random weights, whose int8 rounding moves the means) it must be
# kept at 16 bits and raise the SQNR there, and the file written must carry
# it so that npu-run's 16-bit output is closer to the float reference than
# that of the same calibration without it.
/usr/bin/python3 -c "
import numpy as np
x = np.load('$T/m/mobilenetv3_block.npy')
np.save('$T/mb_cal.npy', np.random.default_rng(5).uniform(-1, 1, (64,) + x.shape[1:]).astype(np.float32))"
if "$CAL" -q "$T/m/mobilenetv3_block.onnx" -s "$T/mb_cal.npy" -o "$T/mb_bc.onnx" --json >"$T/mb.json" 2>"$T/err" &&
	"$CAL" -q "$T/m/mobilenetv3_block.onnx" -s "$T/mb_cal.npy" -o "$T/mb_nobc.onnx" --no-bias-correction >/dev/null 2>>"$T/err"; then
	on=$(jget "$T/mb.json" "j.bias_correction[3].on")
	gain=$(jget "$T/mb.json" "(j.bias_correction[3].sqnr_on_db - j.bias_correction[3].sqnr_off_db).toFixed(2)")
	[ "$on" = true ] && floor "bias correction kept at 16 bits on the MobileNetV3 block: SQNR gain (dB)" "$gain" ">=" 3 ||
		bad "bias correction at 16 bits: on=$on, gain $gain dB"
	for f in mb_bc mb_nobc; do
		"$RUN" --model="$T/$f.onnx" -i "$T/mb_cal.npy" -o "$T/$f.out.npy" --bits=16 --summary >/dev/null 2>"$T/err" ||
			bad "$f at 16 bits: $(head -1 "$T/err")"
	done
	"$RUN" --model="$T/m/mobilenetv3_block.onnx" -i "$T/mb_cal.npy" -o "$T/mb_ref.npy" --reference --summary >/dev/null 2>&1
	read -r with without <<<"$(/usr/bin/python3 -c "
import numpy as np
r = np.load('$T/mb_ref.npy').astype(np.float64)
def sqnr(f):
    e = np.load(f) - r
    return 10 * np.log10((r * r).sum() / (e * e).sum())
print('%.2f %.2f' % (sqnr('$T/mb_bc.out.npy'), sqnr('$T/mb_nobc.out.npy')))")"
	floor "npu-run with the file's bias correction, 16 bits: SQNR $with dB against $without without; gain (dB)" \
		"$(calc "$with - $without")" ">=" 3
	grep -aq "bwq.bias." "$T/mb_bc.onnx" && ok "the file carries bwq.bias keys" || bad "no bwq.bias key in the calibrated file"
else
	bad "npu-calibrate on the MobileNetV3 block: $(head -1 "$T/err")"
fi

# The plots a user looks at: two PNG files from gnuplot.
if "$CAL" -q "$T/m/fragile_chain.onnx" -s "$T/m/fragile_chain.npy" -o "$T/fragile.onnx" --plot="$T/plot" >/dev/null 2>"$T/err" &&
	[ "$(head -c 4 "$T/plot-bytes.png" | od -An -c | tr -d ' ')" = "211PNG" ] &&
	[ "$(head -c 4 "$T/plot-sensitivity.png" | od -An -c | tr -d ' ')" = "211PNG" ]; then
	ok "--plot drew plot-bytes.png and plot-sensitivity.png"
else
	bad "--plot: $(head -1 "$T/err")"
fi

# Ranges written by hand for every tensor: used as they are, and an
# input's own depth clamp (bwq.layer_bits.x = 8:16) holds under 4 bits.
if "$RUN" --model="$T/m/ranges_given.onnx" -i "$T/m/ranges_given.npy" --mode=bwq-model --bits=4 --summary >"$T/out" 2>"$T/err" &&
	grep -q "the model's own calibrated ranges" "$T/err"; then
	ok "a model with ranges for every tensor runs without calibration"
	# The 72 input elements read at 8 bits (72 bytes), 144 + 144 + 108
	# elements of the layers at 4: 72 + 198 = 270 bytes an inference.
	grep -q "activation_bytes 270," "$T/out" && ok "the input's own clamp 8:16 holds under a 4-bit decision" ||
		bad "input clamp: $(grep total "$T/out")"
else
	bad "ranges_given: $(head -1 "$T/err")"
fi

# ---- bad calibration input, bad metadata: named errors ----
refuse_cal() { # WHAT SAMPLES EXPECTED
	if "$CAL" -q "$T/m/fragile_chain.onnx" -s "$2" -o "$T/x.onnx" >/dev/null 2>"$T/err"; then
		bad "$1 accepted"
	elif grep -q -- "$3" "$T/err"; then
		ok "$1 refused: $(head -1 "$T/err")"
	else
		bad "$1: '$(head -1 "$T/err")', wanted '$3'"
	fi
	[ ! -e "$T/x.onnx" ] || bad "$1 left an output file"
}
/usr/bin/python3 - "$T" <<'EOF'
import sys
import numpy as np
t = sys.argv[1]
x = np.random.default_rng(1).uniform(-1, 1, (4, 1, 8, 8, 8)).astype(np.float32)
x[2, 0, 3, 1, 1] = np.nan
np.save(t + '/nan.npy', x)
x[2, 0, 3, 1, 1] = np.inf
np.save(t + '/inf.npy', x)
np.save(t + '/shape.npy', np.zeros((4, 1, 8, 7, 8), np.float32))
np.save(t + '/none.npy', np.zeros((0, 1, 8, 8, 8), np.float32))
EOF
: >"$T/empty.npy"
refuse_cal "a sample holding a NaN" "$T/nan.npy" "sample 2 holds a NaN"
refuse_cal "a sample holding an infinity" "$T/inf.npy" "sample 2 holds an infinite value"
refuse_cal "samples of the wrong shape" "$T/shape.npy" "of a sample is 7, the model's is 8"
refuse_cal "an empty file" "$T/empty.npy" "empty.npy"
refuse_cal "a file of no samples" "$T/none.npy" "no samples"
refuse_cal "a missing file" "$T/missing.npy" "missing.npy"
for b in ranges_inverted ranges_nan ranges_missing ranges_name bias_count bias_value bias_input; do
	if "$RUN" --model="$T/m/bad_$b.onnx" -i "$T/m/depth_limits.npy" --summary >/dev/null 2>"$T/err"; then
		bad "bad_$b was run"
	elif grep -q "metadata bwq.${b%%_*}.\(conv\|x\)" "$T/err"; then
		ok "bad_$b refused at load: $(head -1 "$T/err")"
	else
		bad "bad_$b: $(head -1 "$T/err")"
	fi
done
# A calibrated file whose ranges were edited to be inverted is refused too.
/usr/bin/python3 - "$T/fc.onnx" "$T/fc_bad.onnx" <<'EOF'
import sys
import onnx
m = onnx.load(sys.argv[1])
p = next(p for p in m.metadata_props if p.key.startswith('bwq.ranges.'))
p.value = p.value.replace('16:-', '16:').replace('16:0,', '16:1,', 1)
p.value = '4:2,-2;' + p.value.split(';', 1)[1]
onnx.save(m, sys.argv[2])
EOF
if "$RUN" --model="$T/fc_bad.onnx" -i "$T/cal/X.npy" --summary >/dev/null 2>"$T/err"; then
	bad "a calibrated model with an inverted range was run"
else
	grep -q "is not 4:LO,HI" "$T/err" && ok "an inverted range in a calibrated model refused: $(head -c 120 "$T/err")" ||
		bad "inverted range: $(head -1 "$T/err")"
fi
# --fps --live with --labels (what make demo runs): one line per frame,
# each ending in ok or WRONG, as many ok lines as the summary's top-1 says.
if "$RUN" --model="$MODEL" -i "$T/test/X.npy" --labels="$T/test/Y.npy" --bits 8 --fps 50 --seconds 0.6 --live >"$T/live.out" 2>"$T/err"; then
	frames=$(grep -cE '^ +[0-9]+\.[0-9]+ ' "$T/live.out")
	judged=$(grep -cE '^ +[0-9]+\.[0-9]+ .* class [0-9] label [0-9] (ok|WRONG)$' "$T/live.out")
	oks=$(grep -cE ' ok$' "$T/live.out")
	summary=$(sed -n 's/^frames \([0-9]*\) .*; top-1 \([0-9.]*\)%.*/\1 \2/p' "$T/live.out")
	read -r n top <<<"$summary"
	if [ "$frames" -gt 0 ] && [ "$frames" = "$judged" ] && [ "$frames" = "${n:-x}" ] &&
		awk -v o="$oks" -v n="$n" -v t="$top" 'BEGIN { exit !(n > 0 && (100 * o / n - t) ^ 2 < 0.01) }'; then
		ok "--fps --live --labels: $frames frame lines, each judged; $oks ok = the summary's top-1 $top%"
	else
		bad "--fps --live --labels: $frames frame lines, $judged judged, $oks ok, summary '$summary'"
	fi
else
	bad "--fps --live --labels failed: $(head -1 "$T/err")"
fi
if "$RUN" --model="$MODEL" -i "$T/test/X.npy" --live >/dev/null 2>"$T/err"; then
	bad "--live without --fps was accepted"
else
	[ $? -eq 2 ] && grep -q -- "--live needs --fps" "$T/err" && ok "--live without --fps: exit 2, \"$(head -1 "$T/err")\"" ||
		bad "--live without --fps: $(head -1 "$T/err")"
fi
finish

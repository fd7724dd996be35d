#!/bin/bash
# ONNX models through npu-run --model against ONNX Runtime (npm
# onnxruntime-node, installed by scripts/test-deps.sh; a missing runtime is
# a failure, not a skip):
#   - every test model of make_models.py (one per rewrite) and BlazeFace:
#     libnpu's float reference of the rewritten graph within 1e-4 of ONNX
#     Runtime (largest error over the largest magnitude), and npuref at 16
#     bits within 2e-3 of the same reference with the device's int8
#     weights (what is left is the activations' rounding; the weights' own
#     cost is printed);
#   - each rewrite seen in the placement summary (BatchNormalization folded,
#     activations fused, transposes and reshapes as views, channel pads);
#   - BlazeFace on a photograph: activation bytes at 4 bits a quarter of 16
#     bits, exactly; 8 bits against ONNX Runtime in box IoU and score error;
#   - malformed model files refused with a named error, no crash.
set -u
B=${B:-build}
NPM=${NPM_DIR:-build/npm}
ROOT=$(pwd)
RUN="$ROOT/$B/npu-run"
T=$(mktemp -d /tmp/bwq-onnx-XXXXXX)
trap 'rm -rf "$T"' EXIT
export BWQ_BUS=none BWQ_NODE_MODULES="$ROOT/$NPM/node_modules"
pass=0 fail=0
ok() { pass=$((pass + 1)); echo "ok - $1"; }
bad() { fail=$((fail + 1)); echo "not ok - $1"; }
finish() { echo "$pass passed, $fail failed"; [ "$fail" -eq 0 ]; exit; }

if ! node -e "require(process.env.BWQ_NODE_MODULES + '/onnxruntime-node')" 2>"$T/ort.err"; then
	bad "ONNX Runtime loads from $NPM (scripts/test-deps.sh installs it): $(head -1 "$T/ort.err")"
	finish
fi
if ! /usr/bin/python3 "$ROOT/tests/onnx/make_models.py" "$T" 2>"$T/make.err"; then
	bad "the test models are written (python3-onnx): $(tail -1 "$T/make.err")"
	finish
fi

# check_model NAME FILE INPUT: reference vs ONNX Runtime, 16 bits vs reference.
check_model() {
	local name=$1 model=$2 input=$3
	if ! "$RUN" --model="$model" --input="$input" --output="$T/$name.ref.npy" --reference --summary --placement \
		>"$T/$name.place" 2>"$T/$name.err"; then
		bad "$name: npu-run --reference: $(head -1 "$T/$name.err")"
		return
	fi
	if ! node "$ROOT/tests/onnx/ort_run.js" "$model" "$input" "$T/$name.ort" >"$T/$name.ortlog" 2>&1; then
		bad "$name: ONNX Runtime: $(head -1 "$T/$name.ortlog")"
		return
	fi
	"$RUN" --model="$model" --input="$input" --output="$T/$name.q8w.npy" --reference=int8 --summary >/dev/null 2>"$T/$name.err" ||
		{ bad "$name: npu-run --reference=int8: $(head -1 "$T/$name.err")"; return; }
	"$RUN" --model="$model" --input="$input" --output="$T/$name.b16.npy" --bits=16 --summary >/dev/null 2>"$T/$name.err" ||
		{ bad "$name: npu-run --bits=16: $(head -1 "$T/$name.err")"; return; }
	local n j ref q8w b16 line
	n=$(ls "$T/$name".ort.*.npy | wc -l)
	for j in $(seq 0 $((n - 1))); do
		ref=$T/$name.ref.npy q8w=$T/$name.q8w.npy b16=$T/$name.b16.npy
		[ "$n" -gt 1 ] && ref=$T/$name.ref.$j.npy q8w=$T/$name.q8w.$j.npy b16=$T/$name.b16.$j.npy
		if line=$(node "$ROOT/tests/onnx/compare.js" "$ref" "$T/$name.ort.$j.npy" --max-rel 1e-4 --label "output $j"); then
			ok "$name: float reference = ONNX Runtime, $line"
		else
			bad "$name: float reference vs ONNX Runtime, $line"
		fi
		if line=$(node "$ROOT/tests/onnx/compare.js" "$b16" "$q8w" --max-rel 2e-3 --label "output $j"); then
			ok "$name: 16 bits = the int8-weight reference, $line"
		else
			bad "$name: 16 bits vs the int8-weight reference, $line"
		fi
		echo "# $name: int8 weights cost, $(node "$ROOT/tests/onnx/compare.js" "$q8w" "$ref" --label "output $j")"
	done
}

# rewrite NAME PATTERN WHAT: the placement summary shows it.
rewrite() {
	if grep -qE "$2" "$T/$1.place"; then ok "$1: $3"; else bad "$1: $3 (placement: $(head -1 "$T/$1.place"))"; fi
}
layers() {
	local n
	n=$(grep -c '^  npu ' "$T/$1.place")
	if [ "$n" = "$2" ]; then ok "$1: $2 device layer(s)"; else bad "$1: $n device layers, $2 expected"; fi
}

for m in conv_bn_relu conv_clip_sigmoid conv_hardsigmoid gap_gemm_matmul flatten_nchw_gemm pad_residual_fold residual_kept residual_view \
	squeeze_excite mobilenetv3_block lone_bn pad_conv softmax_head host_elementwise dbnet_head dynamic_batch; do
	check_model "$m" "$T/$m.onnx" "$T/$m.npy"
done
rewrite conv_bn_relu "1 BatchNormalization folded" "BatchNormalization folded into the Conv"
rewrite conv_bn_relu "npu +0  Conv\+Relu " "Relu fused into the Conv"
layers conv_bn_relu 1
rewrite conv_clip_sigmoid "Conv\+Relu6 .*conv1" "Clip(0, 6) fused as Relu6"
rewrite conv_clip_sigmoid "Conv\+Sigmoid .*conv2" "Sigmoid fused"
layers conv_clip_sigmoid 2
rewrite conv_hardsigmoid "Conv\+HardSigmoid" "HardSigmoid(alpha 0.2, beta 0.6) fused through the conv's scale"
layers conv_hardsigmoid 1
rewrite gap_gemm_matmul "1 constant Add/Sub/Mul/Div folded" "MatMul + Add as one layer with a bias"
rewrite gap_gemm_matmul "Gemm .*fc" "Gemm on the device"
layers gap_gemm_matmul 4
rewrite flatten_nchw_gemm "1 reshapes as views" "Flatten of NCHW read by the Gemm through its weights' order"
layers flatten_nchw_gemm 2
rewrite pad_residual_fold "1 channel pads" "Concat with zeros as a channel pad"
rewrite pad_residual_fold "1 Transpose and 1 reshapes as views" "Transpose and Reshape as views, no layer"
rewrite pad_residual_fold "1 residual Add into a Conv" "the residual Add into the Conv before it"
rewrite pad_residual_fold "Conv\+Add\+Relu .*conv2" "residual Add with its Relu and the zero-padded shortcut in conv2: no Add or pad layer"
layers pad_residual_fold 3
rewrite residual_kept "1 residual Add into a Conv" "one Add fused: the join into conv2"
rewrite residual_kept "npu .*  Add\+Relu .*residual" "conv1, read by two nodes, keeps its Add as a layer of its own"
rewrite residual_kept "Conv\+Add .*conv2" "the join, whose other operand came before conv2, in conv2"
layers residual_kept 3
rewrite residual_view "0 residual Add into a Conv" "a shortcut that is a layout view stays out of the Conv"
rewrite residual_view "host +2  host:Add +residual" "the view's Add runs where it did before the rewrite existed (the host), the model loads"
layers residual_view 2
rewrite squeeze_excite "Mul .*se_mul" "squeeze-and-excite Mul on the device"
rewrite squeeze_excite "Conv\+HardSigmoid .*se_expand" "the gate's HardSigmoid fused"
layers squeeze_excite 6
rewrite mobilenetv3_block "2 input Add/Sub/Mul/Div into the conversion" "input Sub and Div into the host's conversion"
rewrite mobilenetv3_block "2 HardSwish and 1 HardSigmoid recognised" "HardSwish written out twice (either operand order, / 6 and * 1/6) and a HardSigmoid"
rewrite mobilenetv3_block "Conv\+HardSwish .*stem" "BatchNormalization and HardSwish into the stem Conv"
rewrite mobilenetv3_block "Conv\+HardSwish .*depthwise" "HardSwish into the depthwise Conv"
rewrite mobilenetv3_block "Conv\+HardSigmoid .*se_expand" "the SE gate into its Conv"
rewrite mobilenetv3_block "2 constant Add/Sub/Mul/Div folded" "the projection's Mul and the classifier's bias folded"
rewrite mobilenetv3_block "Conv\+Add .*project" "the residual Add into the projection Conv"
layers mobilenetv3_block 9
rewrite lone_bn "1 BatchNormalization alone" "a lone BatchNormalization as a per-channel scale and shift"
rewrite lone_bn "BatchNormalization\+Relu .*bn" "with its Relu fused"
layers lone_bn 2
rewrite pad_conv "1 Pad into a Conv" "Pad with zeros into the next Conv's padding"
layers pad_conv 1
rewrite softmax_head "3 device layers, 2 host nodes in 1 host segments" "Softmax and ArgMax on the host after the device's layers"
rewrite softmax_head "host +3  host:Softmax +softmax: op Softmax does not run on the device" "the placement names each host node with its op and reason"
rewrite host_elementwise "4 device layers, 3 host nodes in 2 host segments" "Max and Sub of two device tensors on the host, between device segments"
rewrite host_elementwise "host +6  host:Max +max_bcast" "a Max that broadcasts a per-channel tensor on the host"
rewrite dbnet_head "Concat +fuse" "DBNet: the channel Concat of two scales on the device"
rewrite dbnet_head "npu +[0-9]+  Resize\(nearest\) +upsample" "DBNet: Resize nearest x2 on the device"
rewrite dbnet_head "npu +[0-9]+  ConvTranspose\+Relu\(1x1\) +deconv1" "DBNet: ConvTranspose x2 on the device (1x1 conv with its Relu, then depth-to-space)"
rewrite dbnet_head "npu +[0-9]+  ConvTranspose\+Sigmoid\(1x1\) +deconv2" "DBNet: the final Sigmoid fused into the second ConvTranspose"
rewrite dbnet_head "9 device layers, 0 host nodes" "DBNet: nothing left on the host"
rewrite dbnet_head "1 BatchNormalization folded" "DBNet: BatchNormalization into its Conv"
if "$RUN" --model="$T/softmax_head.onnx" --input="$T/softmax_head.npy" --no-host --summary >/dev/null 2>"$T/err"; then
	bad "--no-host accepted a model with host nodes"
else
	grep -q "node 'softmax' (Softmax): op Softmax does not run on the device" "$T/err" &&
		ok "--no-host refuses it: $(head -1 "$T/err" | sed "s|$T/||")" || bad "--no-host: $(head -1 "$T/err")"
fi

# The model's own depth limits: 6:16 for the model, 8:16 for conv2.  At the
# fallback depth 4 (no bwqd) the model runs at 6 and conv2's layer at 8.
if "$RUN" --model="$T/depth_limits.onnx" --input="$T/depth_limits.npy" --mode=bwq-model --bits=4 --json >"$T/lim.json" 2>"$T/err"; then
	got=$(grep -o '"bits":[0-9]*' "$T/lim.json" | tail -2 | cut -d: -f2 | tr '\n' ' ')
	if [ "$got" = "6 8 " ]; then ok "metadata depth limits: layers at 6 and 8 bits for a fallback of 4"
	else bad "metadata depth limits: layer bits '$got', wanted '6 8 '"; fi
else
	bad "depth_limits: $(head -1 "$T/err")"
fi
# Limits on a residual Add fused into its Conv, by either node's name: the
# fused layer (conv1, conv2 + residual, pool) at 8 bits for a fallback of 4.
for node in add conv; do
	if "$RUN" --model="$T/residual_limits_$node.onnx" --input="$T/pad_residual_fold.npy" --mode=bwq-model --bits=4 --json \
		>"$T/lim.json" 2>"$T/err"; then
		got=$(grep -o '"bits":[0-9]*' "$T/lim.json" | tail -3 | cut -d: -f2 | tr '\n' ' ')
		if [ "$got" = "4 8 4 " ]; then ok "limits on the residual $node: the fused layer at 8 bits, the others at 4"
		else bad "limits on the residual $node: layer bits '$got', wanted '4 8 4 '"; fi
	else
		bad "residual_limits_$node: $(head -1 "$T/err")"
	fi
done
if "$RUN" --model="$T/depth_limits.onnx" --input="$T/depth_limits.npy" --bits=4 --summary >/dev/null 2>"$T/err"; then
	bad "4 fixed bits outside the model's 6:16 were accepted"
else
	grep -q "outside the model's own limits 6:16" "$T/err" && ok "4 fixed bits refused: $(head -1 "$T/err")" ||
		bad "4 fixed bits: $(head -1 "$T/err")"
fi

# BlazeFace on a photograph (scikit-image's astronaut, the face cropped to
# 128x128, scaled to [-1, 1] as MediaPipe does), plus two noise samples.
BF="$ROOT/$NPM/models/face_detection_front_128x128_barracuda.onnx"
if /usr/bin/python3 - "$ROOT/$NPM/data/astronaut.png" "$T/face.npy" <<'EOF'; then
import sys
import numpy as np
from PIL import Image
im = Image.open(sys.argv[1]).convert('RGB').crop((96, 0, 352, 256)).resize((128, 128), Image.BILINEAR)
np.save(sys.argv[2], (np.asarray(im, dtype=np.float32) / 127.5 - 1.0)[None])
EOF
	check_model blazeface "$BF" "$T/face.npy"
	rewrite blazeface "11 channel pads" "BlazeFace: 11 channel pads by Concat with zeros"
	rewrite blazeface "16 residual Add into a Conv" "BlazeFace: its 16 residual Adds (11 with padded shortcuts) in the Conv before them"
	rewrite blazeface "5 Transpose and 4 reshapes as views" "BlazeFace: no transposes between layers (5 Transpose, 4 Reshape as views)"
	for b in 16 8 6 4; do
		"$RUN" --model="$BF" --input="$T/face.npy" --output="$T/bf$b.npy" --bits=$b --json >"$T/bf$b.json" 2>"$T/bf.err" ||
			bad "blazeface at $b bits: $(head -1 "$T/bf.err")"
	done
	a16=$(grep -o '"activation_bytes_per_sample":[0-9]*' "$T/bf16.json" | cut -d: -f2)
	a4=$(grep -o '"activation_bytes_per_sample":[0-9]*' "$T/bf4.json" | cut -d: -f2)
	if [ -n "$a16" ] && [ -n "$a4" ] && [ $((a4 * 4)) -eq "$a16" ]; then
		ok "blazeface: activation bytes at 4 bits ($a4) are a quarter of 16 bits' ($a16), exactly"
	else
		bad "blazeface: activation bytes 4 bits '$a4', 16 bits '$a16'"
	fi
	for b in 16 8; do
		if line=$(node "$ROOT/tests/onnx/blazeface_agree.js" "$T/bf$b" "$T/blazeface.ort" --top 5 --min-iou 0.85 --max-score-err 0.2); then
			ok "blazeface at $b bits against ONNX Runtime: $line"
		else
			bad "blazeface at $b bits against ONNX Runtime: $line"
		fi
	done
else
	bad "the BlazeFace input is made from $NPM/data/astronaut.png"
fi

# M-LSD tiny on the same photograph (RGB and an opaque alpha, 0..255): its
# bilinear Resizes and channel Slices on the device, its peak step (Equal,
# Cast, Mul) on the host.
ML="$ROOT/$NPM/models/mlsd_320x320_tiny.onnx"
if /usr/bin/python3 - "$ROOT/$NPM/data/astronaut.png" "$T/lines.npy" <<'EOF'; then
import sys
import numpy as np
from PIL import Image
im = Image.open(sys.argv[1]).convert('RGBA').resize((320, 320), Image.BILINEAR)
np.save(sys.argv[2], np.asarray(im, dtype=np.float32)[None])
EOF
	"$RUN" --model="$ML" --input="$T/lines.npy" --output="$T/ml.ref.npy" --reference --summary --placement >"$T/ml.place" 2>"$T/err" ||
		bad "mlsd: npu-run --reference: $(head -1 "$T/err")"
	"$RUN" --model="$ML" --input="$T/lines.npy" --output="$T/ml.q8w.npy" --reference=int8 --summary >/dev/null 2>"$T/err" ||
		bad "mlsd: npu-run --reference=int8: $(head -1 "$T/err")"
	"$RUN" --model="$ML" --input="$T/lines.npy" --output="$T/ml.b16.npy" --bits=16 --summary >/dev/null 2>"$T/err" ||
		bad "mlsd: npu-run --bits=16: $(head -1 "$T/err")"
	if node "$ROOT/tests/onnx/ort_run.js" "$ML" "$T/lines.npy" "$T/ml.ort" >"$T/ortlog" 2>&1; then
		line=$(node "$ROOT/tests/onnx/compare.js" "$T/ml.ref.0.npy" "$T/ml.ort.0.npy" --max-rel 1e-4 --label offsets) &&
			ok "mlsd: float reference = ONNX Runtime, $line" || bad "mlsd: float reference vs ONNX Runtime, $line"
		line=$(node "$ROOT/tests/onnx/peaks_agree.js" "$T/ml.ref.1.npy" "$T/ml.ort.1.npy" --min-agree 0.999 --max-err 1e-4) &&
			ok "mlsd: float reference's scores = ONNX Runtime's, $line" || bad "mlsd: scores vs ONNX Runtime, $line"
		line=$(node "$ROOT/tests/onnx/compare.js" "$T/ml.b16.0.npy" "$T/ml.q8w.0.npy" --max-rel 5e-3 --label offsets) &&
			ok "mlsd: 16 bits = the int8-weight reference, $line" || bad "mlsd: 16 bits vs the int8-weight reference, $line"
		line=$(node "$ROOT/tests/onnx/peaks_agree.js" "$T/ml.b16.1.npy" "$T/ml.q8w.1.npy" --min-agree 0.999 --min-score 0.05 --max-err 2e-3) &&
			ok "mlsd: 16 bits' scores = the int8-weight reference's, $line" || bad "mlsd: 16 bits' scores, $line"
	else
		bad "mlsd: ONNX Runtime: $(head -1 "$T/ortlog")"
	fi
	rewrite ml "3 Pad into a Conv" "M-LSD: the three Pads into their Convs"
	rewrite ml "npu +[0-9]+  Resize\(bilinear\) +Resize__163" "M-LSD: Resize linear (half_pixel) x2 on the device"
	rewrite ml "host +[0-9]+  host:Equal" "M-LSD: the peak step on the host"
	rewrite ml "npu +[0-9]+  Slice\+Sigmoid" "M-LSD: its channel Slices on the device, the Sigmoid fused"
	rewrite ml "3 host nodes in 1 host segments" "M-LSD: only Equal, Cast and Mul on the host"
	echo "# mlsd: $(head -1 "$T/ml.place")"
else
	bad "the M-LSD input is made from $NPM/data/astronaut.png"
fi

# Malformed files: exit 1 and a message that names the problem.
refuse() {
	local name=$1 want=$2 input=${3:-$T/conv_bn_relu.npy} rc
	"$RUN" --model="$T/$name.onnx" --input="$input" --summary >"$T/out" 2>"$T/err"
	rc=$?
	if [ $rc -eq 1 ] && grep -qiE "$want" "$T/err"; then
		ok "$name refused: $(head -1 "$T/err" | sed "s|$T/||")"
	else
		bad "$name: exit $rc, '$(head -1 "$T/err")' (wanted /$want/)"
	fi
}
refuse bad_truncated "truncated or is not protobuf"
refuse bad_not_protobuf "truncated or is not protobuf"
refuse bad_opset "opset 99 .* not supported"
refuse bad_domain "domain 'com.example' is not supported"
refuse bad_unsupported_op "op Softplus is not supported"
/usr/bin/python3 -c "import numpy; numpy.save('$T/x5.npy', numpy.zeros((1, 1, 5, 12, 12), numpy.float32))"
refuse bad_shapes "5 input channels do not match weights \[8, 3, 3, 3\]" "$T/x5.npy"
# A dynamic dimension takes its value from the samples given.
if "$RUN" --model="$T/bad_dynamic.onnx" --input="$T/conv_bn_relu.npy" --output="$T/dyn.npy" --summary >/dev/null 2>"$T/err"; then
	ok "a dynamic height takes its value from the input given"
else
	bad "a dynamic height from the input: $(head -1 "$T/err")"
fi
refuse bad_initializer_size "12 bytes of data for shape \[8\]"
refuse bad_initializer_type "data type 14 is not supported"
refuse bad_weight_type "input 1 '[a-z0-9_]*' is not a float tensor"
refuse bad_input_count "node 'relu' \\(Relu\\): 2 inputs, it takes 1"
refuse bad_float_axes "node 'unsq' \\(Unsqueeze\\): input 1 holds nan, not an integer" "$T/pad_residual_fold.npy"
refuse bad_external_missing "missing_weights.bin"
refuse bad_cycle "cycle"
refuse bad_limits_value "bwq.activation_bits: '5:16' is not MIN:MAX" "$T/depth_limits.npy"
refuse bad_limits_node "bwq.layer_bits.conv9: no input or device layer comes from node 'conv9'" "$T/depth_limits.npy"
refuse bad_absurd_dims "dimension 1099511627776 is over the limit"
finish

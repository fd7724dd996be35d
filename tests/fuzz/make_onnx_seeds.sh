#!/bin/sh
# Seeds of fuzz_onnx: the test models of tests/onnx/make_models.py (first
# byte 1) and .npy files of several dtypes and versions (first byte 0).
# Usage: make_onnx_seeds.sh DIR
set -eu
DIR=$1
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
mkdir -p "$DIR"
/usr/bin/python3 "$(dirname "$0")/../onnx/make_models.py" "$tmp"
for f in "$tmp"/*.onnx; do
	{ printf '\001'; cat "$f"; } > "$DIR/model-$(basename "$f" .onnx)"
done
/usr/bin/python3 - "$tmp" <<'PY'
import sys
import numpy as np
d = sys.argv[1]
np.save(d + '/f4.npy', np.arange(12, dtype='<f4').reshape(3, 4))
np.save(d + '/f8.npy', np.linspace(0, 1, 5))
np.save(d + '/u1.npy', np.arange(6, dtype=np.uint8).reshape(1, 2, 3))
np.save(d + '/i8be.npy', np.arange(4, dtype='>i8'))
np.save(d + '/f2.npy', np.ones((2, 2), np.float16))
np.save(d + '/b1.npy', np.array([True, False]))
np.save(d + '/scalar.npy', np.float32(3.5))
np.lib.format.write_array(open(d + '/v2.npy', 'wb'), np.zeros((2, 3), '<f4'), version=(2, 0))
np.save(d + '/fortran.npy', np.asfortranarray(np.ones((2, 3), '<f4')))
PY
for f in "$tmp"/*.npy; do
	{ printf '\000'; cat "$f"; } > "$DIR/npy-$(basename "$f" .npy)"
done

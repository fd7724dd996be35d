#!/bin/sh
# Installs the Debian packages bwq needs to build, test and run, when missing
# (python3-onnx, -numpy and -pil only write the test models and inputs,
# dataset-fashion-mnist is the trained test model's data, gnuplot-nox draws
# npu-calibrate --plot; debhelper and lintian build and check the packages,
# debootstrap and systemd-container boot them under a real systemd,
# prometheus-node-exporter and curl read bwqd's metrics back, stress-ng is
# make bench's second antagonist;
# scripts/test-deps.sh adds what comes from npm).
# Idempotent and non-interactive; run as root (make deps does).
set -eu

PACKAGES="
g++ make pkg-config
clang libclang-rt-14-dev libbpf-dev bpftool
libdrm-dev liburing-dev libsystemd-dev libcmocka-dev
libdnnl-dev
dbus-daemon systemd util-linux time
libonnx-dev libonnx-testdata libprotobuf-dev protobuf-compiler
mandoc
python3-onnx python3-numpy python3-pil
dataset-fashion-mnist gnuplot-nox
debhelper lintian debootstrap systemd-container
prometheus-node-exporter curl stress-ng
"

missing=""
for p in $PACKAGES; do
	if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q '^install ok installed$'; then
		missing="$missing $p"
	fi
done
[ -z "$missing" ] && exit 0

if [ "$(id -u)" -ne 0 ]; then
	echo "deps: missing packages:$missing; run 'make deps' as root" >&2
	exit 1
fi
echo "deps: installing$missing"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
# shellcheck disable=SC2086
apt-get install -y -qq --no-install-recommends $missing

#!/bin/sh
# make demo: the driver side of bwq on the software NPU.
set -eu
B=${1:-build}
cat <<'TXT'
bwq demo: a MobileNet-V2-shaped network (224x224x3 input, 64 layers,
synthetic int8 weights) runs on npuref, the software NPU, through libnpu's
ioctl line, once at each activation depth.  Weights stay at 8 bits; only
activations change depth.  Watch the activation bytes: every tensor is
packed at its depth, so 4-bit activations move exactly a quarter of the
bytes of 16-bit ones.  (The daemon bwqd, which chooses the depth from the
memory bandwidth in use, is not part of this build yet.)

TXT
"$B/npu-run" --bits all --summary --runs 5

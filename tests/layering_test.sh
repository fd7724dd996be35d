#!/bin/bash
# The layering check passes on the tree, and fails on each kind of
# forbidden include planted in a copy of it, naming the file and line.
set -uo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
pass=0 fail=0
ok() { echo "ok - $*"; pass=$((pass + 1)); }
not_ok() { echo "not ok - $*"; fail=$((fail + 1)); }

if out=$(bash "$ROOT/scripts/check-layering.sh" "$ROOT"); then
	ok "the tree: ${out#layering: }"
else
	echo "$out"
	not_ok "the tree has forbidden includes"
fi

# plant FILE 'INCLUDE' EXPECTED-REASON
plant() {
	local file=$1 inc=$2 want=$3
	rm -rf "$T/tree"
	mkdir -p "$T/tree"
	(cd "$ROOT" && tar cf - uapi common daemon driver bpf tests bench scripts 2>/dev/null) | tar xf - -C "$T/tree"
	mkdir -p "$T/tree/$(dirname "$file")"
	printf '#include "%s"\n' "$inc" >> "$T/tree/$file"
	local out
	if out=$(bash "$T/tree/scripts/check-layering.sh" "$T/tree"); then
		not_ok "$file including $inc passed the check"
	elif grep -q "^$file:[0-9]*: #include \"$inc\": $want" <<<"$out"; then
		ok "$file including $inc: refused ($want)"
	else
		echo "$out" | sed 's/^/# /'
		not_ok "$file including $inc: refused, but not with '$want'"
	fi
}

plant driver/libnpu/graph.cpp daemon/config.h "daemon/config.h is private to daemon"
plant driver/libnpu/graph.cpp driver/npuref/job.h "driver/npuref/job.h is private to npuref"
plant daemon/policy.cpp driver/npuref/npuref.h "daemon may not include npuref"
plant daemon/policy.cpp npu/npu.h "daemon may not include libnpu"
plant driver/npuref/validate.cpp npu/npu.h "npuref may not include libnpu"
plant uapi/bwq_page.h common/depth.h "uapi may not include common"
plant common/quant.cpp daemon/log.h "daemon/log.h is private to daemon"
plant tests/unit/test_libnpu.cpp driver/libnpu/internal.h "driver/libnpu/internal.h is private to libnpu"
plant bench/bench_npu.cpp driver/npuref/kernels.h "driver/npuref/kernels.h is private to npuref"
plant driver/tools/npu_run.cpp no/such.h "no such header in the tree"

echo "$pass passed, $fail failed"
[ $fail -eq 0 ]

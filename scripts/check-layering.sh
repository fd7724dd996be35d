#!/bin/bash
# Checks the arrows between components (DESIGN §3): every #include "..." in
# the tree is resolved and allowed, or the line is printed and the exit
# status is 1.  Usage: scripts/check-layering.sh [ROOT]
#
#   uapi      -> nothing             common  -> uapi
#   daemon    -> common, uapi        npuref  -> common, uapi
#   libnpu    -> common, uapi, driver/npuref/npuref.h
#   onnx      -> libnpu's public header, common, uapi
#   mobilenet -> libnpu's public header
#   tools     -> public headers      tests, bench -> public headers
#
# Public headers: uapi/*, common/*, driver/npuref/npuref.h,
# driver/libnpu/include/**, driver/onnx/include/**, driver/mobilenet/*.h.
# A component's other headers are its own; tests reach them only from the
# white-box tests listed in WHITEBOX.
set -uo pipefail
ROOT=${1:-$(cd "$(dirname "$0")/.." && pwd)}
cd "$ROOT" || exit 2

# Headers the build generates or a package provides, by the name used.
GENERATED=" org_bwq1_xml.inc bwq_attrib.skel.h vmlinux.h drm.h "
# White-box tests: the component whose private headers each may include.
declare -A WHITEBOX=(
	[tests/unit/test_kernels.cpp]=npuref [tests/unit/test_validate.cpp]=npuref
	[tests/fuzz/fuzz_job.cpp]=npuref
	[tests/unit/test_config.cpp]=daemon [tests/unit/test_policy.cpp]=daemon
	[tests/unit/test_sources.cpp]=daemon [tests/unit/daemon_fixtures.h]=daemon [tests/unit/test_ebpf.cpp]=daemon
	[tests/fuzz/fuzz_config.cpp]=daemon [tests/fuzz/fuzz_bus.cpp]=daemon
)

# The component of a path, into $comp (no subshell: the check forks nothing
# per include, so it takes a fraction of a second on the tree).
component() {
	case $1 in
	uapi/*) comp=uapi ;;
	common/*) comp=common ;;
	daemon/*) comp=daemon ;;
	driver/npuref/*) comp=npuref ;;
	driver/libnpu/*) comp=libnpu ;;
	driver/onnx/*) comp=onnx ;;
	driver/mobilenet/*) comp=mobilenet ;;
	driver/tools/*) comp=tools ;;
	bpf/*) comp=bpf ;;
	tests/*) comp=tests ;;
	bench/*) comp=bench ;;
	*) comp=other ;;
	esac
}

# A relative path with its . and .. parts resolved, into $norm.
normalize() {
	local part out=()
	local IFS=/
	for part in $1; do
		case $part in
		'' | .) ;;
		..) [ ${#out[@]} -gt 0 ] && unset 'out[${#out[@]}-1]' ;;
		*) out+=("$part") ;;
		esac
	done
	norm="${out[*]}"
}

public() {
	case $1 in
	uapi/* | common/* | driver/npuref/npuref.h | driver/libnpu/include/* | driver/onnx/include/* | \
		driver/mobilenet/*.h) return 0 ;;
	esac
	return 1
}

# allowed FROM TO TARGET-PATH
allowed() {
	local from=$1 to=$2 path=$3
	[ "$from" = "$to" ] && return 0
	case $from in
	uapi | bpf) return 1 ;;
	common) [ "$to" = uapi ] ;;
	daemon | npuref) [ "$to" = common ] || [ "$to" = uapi ] ;;
	libnpu) [ "$to" = common ] || [ "$to" = uapi ] || [ "$path" = driver/npuref/npuref.h ] ;;
	onnx) [ "$to" = common ] || [ "$to" = uapi ] || { [ "$to" = libnpu ] && public "$path"; } ;;
	mobilenet) [ "$to" = libnpu ] && public "$path" ;;
	tools | tests | bench) public "$path" ;;
	*) return 1 ;;
	esac
}

bad=0 n=0
# Every include line of the tree's sources, one grep: FILE:LINE:TEXT.
mapfile -t files < <(find uapi common daemon driver bpf tests bench -type f \( -name '*.c' -o -name '*.cpp' -o -name '*.h' \) 2>/dev/null | sort)
while IFS=: read -r file line inc; do
	component "$file"
	from=$comp
	dir=${file%/*}
	inc=${inc#*\"}
	inc=${inc%%\"*}
	n=$((n + 1))
	if [ -f "$dir/$inc" ]; then
		normalize "$dir/$inc"
		path=$norm
	elif [ -f "$inc" ]; then
		path=$inc
	elif [ -f "driver/libnpu/include/$inc" ]; then
		path=driver/libnpu/include/$inc
	elif [ -f "driver/onnx/include/$inc" ]; then
		path=driver/onnx/include/$inc
	elif [[ $GENERATED == *" ${inc##*/} "* ]]; then
		continue
	else
		echo "$file:$line: #include \"$inc\": no such header in the tree"
		bad=1
		continue
	fi
	component "$path"
	to=$comp
	if allowed "$from" "$to" "$path"; then
		continue
	fi
	if [ "${WHITEBOX[$file]:-}" = "$to" ]; then
		continue
	fi
	if public "$path"; then
		why="$from may not include $to"
	else
		why="$path is private to $to"
	fi
	echo "$file:$line: #include \"$inc\": $why"
	bad=1
done < <([ ${#files[@]} -gt 0 ] && grep -n -H '^[[:space:]]*#[[:space:]]*include[[:space:]]*"' "${files[@]}")

if [ $bad -ne 0 ]; then
	echo "layering: forbidden or unresolved includes above"
	exit 1
fi
echo "layering: $n includes, all allowed"

#!/bin/bash
# The Debian 12 tree that tests/packaging/systemd_test.sh boots: debootstrap
# (minbase) into $B/nspawn/bookworm, once; kept while the list of packages
# below stays the same.  Prints one line when it builds the tree, nothing
# when the cached one will do; on failure, what failed, and exits 1.
set -u
B=${B:-build}
CACHE="$(pwd)/$B/nspawn"
TREE="$CACHE/bookworm"
# What the packages need at run time, in the tree from the start: nothing
# is downloaded when the test runs once the tree is cached.
INCLUDE=systemd,dbus,libbpf1,libdrm2,liburing2,libonnx1,libprotobuf32,libdrm-dev
die() { echo "$1" >&2; exit 1; }

[ "$(id -u)" -eq 0 ] || die "the nspawn tree needs root (debootstrap)"
command -v debootstrap >/dev/null || die "debootstrap is not installed (make deps installs it)"
if [ ! -e "$TREE/.bwq-include" ] || [ "$(cat "$TREE/.bwq-include")" != "$INCLUDE" ]; then
	mirror=$(sed -n 's/^URIs: *\(http[^ ]*debian\)$/\1/p' /etc/apt/sources.list.d/debian.sources 2>/dev/null | head -1)
	[ -z "$mirror" ] && mirror=$(awk '$1 == "deb" && $3 ~ /^bookworm$/ {print $2; exit}' /etc/apt/sources.list 2>/dev/null)
	[ -z "$mirror" ] && die "no Debian mirror in the apt sources"
	echo "# debootstrap bookworm from $mirror into $TREE (once; about a minute)"
	rm -rf "$TREE" "$TREE.tmp"
	mkdir -p "$CACHE"
	debootstrap --variant=minbase --include="$INCLUDE" bookworm "$TREE.tmp" "$mirror" > "$CACHE/debootstrap.log" 2>&1 ||
		die "debootstrap failed: $(tail -3 "$CACHE/debootstrap.log")"
	echo "$INCLUDE" > "$TREE.tmp/.bwq-include"
	mv "$TREE.tmp" "$TREE"
fi

#!/bin/sh
# libnpu.so exports exactly the versioned public API: every symbol in
# npu.h, nothing else, all at LIBNPU_1.
set -u
B=${B:-build}
so="$B/libnpu.so.1"
pass=0 fail=0
exported=$(nm -D --defined-only "$so" | awk '$2 == "T" { print $3 }' | sed 's/@.*//' | sort)
declared=$(grep -oE '\bnpu_[a-z_0-9]+\(' driver/libnpu/include/npu/npu.h | tr -d '(' | sort -u)
if [ "$exported" = "$declared" ]; then
	pass=$((pass + 1)); echo "ok - exports equal the functions of npu.h ($(echo "$exported" | wc -l))"
else
	fail=$((fail + 1)); echo "not ok - exports differ from npu.h"
	echo "$declared" > decl.$$; echo "$exported" > exp.$$; diff decl.$$ exp.$$; rm -f decl.$$ exp.$$
fi
unversioned=$(nm -D --defined-only "$so" | awk '$2 == "T"' | grep -v '@@LIBNPU_1' | wc -l)
[ "$unversioned" -eq 0 ] && { pass=$((pass + 1)); echo "ok - every export is at LIBNPU_1"; } || { fail=$((fail + 1)); echo "not ok - $unversioned exports without LIBNPU_1"; }
# A program that loads the library late (dlopen, as a language binding
# does) gets it too: npuref's per-thread pointers are initial-exec TLS,
# whose whole block must fit the static TLS that the loader keeps spare.
tls=$(( $(readelf -lW "$so" | awk '$1 == "TLS" { print $6 }') + 0 ))
if /usr/bin/python3 -c 'import ctypes, sys
lib = ctypes.CDLL(sys.argv[1])
dev = ctypes.c_void_p()
if lib.npu_device_open(b"soft:threads=1", ctypes.byref(dev)) != 0:
    sys.exit("npu_device_open failed")
lib.npu_device_close(dev)' "$so"; then
	pass=$((pass + 1)); echo "ok - loads with dlopen and opens a device (TLS block ${tls:-0} bytes)"
else
	fail=$((fail + 1)); echo "not ok - loading with dlopen failed (TLS block ${tls:-0} bytes)"
fi
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]

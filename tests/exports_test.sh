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
echo "$pass passed, $fail failed"
[ $fail -eq 0 ]

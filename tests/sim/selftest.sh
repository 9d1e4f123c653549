#!/bin/bash
# `xbd selftest` on the sim platform: the same platform checks that the
# real-Xen tier runs in a real dom0 (grants to ourselves, an event
# channel bound to itself, xenstore and watches), and a clear error when
# no sim is running.
set -u
B=${XBD_BUILD:?XBD_BUILD not set}
XBD=$B/xbd
D=$(mktemp -d /dev/shm/xbd-selftest.XXXXXX)
cleanup() {
	"$XBD" sim stop --dir "$D" >/dev/null 2>&1
	[ -f "$D/sim.log" ] && { echo "---- sim log ----"; cat "$D/sim.log"; }
	rm -rf "$D"
}
trap cleanup EXIT
fails=0

XBD_SIM_DIR=$D "$XBD" selftest >"$D/out" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
	echo "FAIL: selftest without a sim exited 0"; fails=$((fails+1))
elif [ "$(wc -l <"$D/out")" -gt 3 ]; then
	echo "FAIL: selftest without a sim: more than a clear line or two:"; cat "$D/out"; fails=$((fails+1))
else
	echo "ok: no sim: $(head -1 "$D/out")"
fi

"$XBD" sim start --dir "$D" || { echo "FAIL: cannot start the sim"; exit 1; }
XBD_SIM_DIR=$D "$XBD" selftest >"$D/out" 2>&1
rc=$?
cat "$D/out"
n_ok=$(grep -c ' ok$' "$D/out")
if [ $rc -ne 0 ] || grep -q FAILED "$D/out" || [ "$n_ok" -lt 10 ]; then
	echo "FAIL: selftest on the sim: exit $rc, $n_ok checks ok"; fails=$((fails+1))
else
	echo "ok: selftest on the sim: $n_ok checks"
fi
exit $((fails > 0))

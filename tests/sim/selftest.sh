#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `xbd selftest` on the sim platform: the same platform checks that the
# real-Xen tier runs in a real dom0 (grants to ourselves, an event
# channel bound to itself, xenstore and watches), and a clear error when
# no sim is running.
. "$(dirname "$0")/../lib/functions.sh"
B=${XBD_BUILD:?XBD_BUILD not set}
XBD=$B/xbd
make_workdir xbd-selftest /dev/shm
D=$T
cleanup() {
	"$XBD" sim stop --dir "$D" >/dev/null 2>&1
	[ -f "$D/sim.log" ] && { echo "---- sim log ----"; cat "$D/sim.log"; }
	return 0
}
cleanup_fn cleanup

XBD_SIM_DIR=$D "$XBD" selftest >"$D/out" 2>&1
rc=$?
if [ $rc -eq 0 ]; then
	fail "selftest without a sim exited 0"
elif [ "$(wc -l <"$D/out")" -gt 3 ]; then
	fail "selftest without a sim: more than a clear line or two:"; cat "$D/out"
else
	ok "no sim: $(head -1 "$D/out")"
fi

"$XBD" sim start --dir "$D" || die "cannot start the sim"
XBD_SIM_DIR=$D "$XBD" selftest >"$D/out" 2>&1
rc=$?
cat "$D/out"
n_ok=$(grep -c ' ok$' "$D/out")
if [ $rc -ne 0 ] || grep -q FAILED "$D/out" || [ "$n_ok" -lt 10 ]; then
	fail "selftest on the sim: exit $rc, $n_ok checks ok"
else
	ok "selftest on the sim: $n_ok checks"
fi
finish

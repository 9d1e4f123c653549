#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# What a killed process held in the simulated hypervisor is reclaimed,
# as the kernel of a real dom0 does, and `xbd sim status` shows it:
# after kill -9 of xbd attach its event FIFO goes, its grants end (the
# blkback still maps them: counted as of-exited), and once the dead
# attach is detached dom0 holds what it held before.  And the guest's flushing workload
# (`xbd sim vm io --flush-every N`) says how many writes a flush covered.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
random_vm1 8

status() { "$xbd" sim status --dir "$sim_dir" "$@" 2>&1; }
dom0() { status | awk '$1 == "dom0"'; }

status >"$T/idle" || fail "sim status: $(cat "$T/idle")"
grep -q "^dom1 vm1 grants=[1-9]" "$T/idle" && grep -q "^evtchn-handles=" "$T/idle" &&
	ok "status: $(tr '\n' '|' <"$T/idle")" || fail "status: $(cat "$T/idle")"
grep -q "grants=0 .* of-exited=0" <<<"$(dom0)" && ok "dom0 holds no grant when idle" ||
	fail "dom0 when idle: $(dom0)"

attach vm1 "$T/mnt" || die "attach"
cmp -s "$T/mnt/xvda" "$img" || fail "the attach reads other data"
grep -q "grants=[1-9]" <<<"$(dom0)" && ok "the attach's grants: $(dom0)" || fail "attached: $(dom0)"
status --verbose | grep -q "^  grant [0-9]* to dom0" && ok "--verbose lists each grant" ||
	fail "--verbose: $(status --verbose | head -5)"
pid=$(attach_pid) || die "no xbd-pid recorded"
kill9 "$pid" attach
# its grants stay while the blkback maps them (ending, of an exited
# process) until the device is taken down; its own port and FIFO go
wait_for 5 eval '! status --verbose | grep -q "^  ev-$pid-"' &&
	ok "the attach's event channel handle was reclaimed" ||
	fail "its event FIFO stayed: $(status --verbose | grep '^  ev-')"
grep -Eq "grants=([0-9]+) mapped=\1 ending=\1 .* of-exited=\1$" <<<"$(dom0)" &&
	ok "its grants, still mapped by the blkback, are ending: $(dom0)" || fail "after the kill: $(dom0)"
"$xbd" detach "$T/mnt" >/dev/null 2>&1 || fail "detach of the dead attach"
wait_for 5 eval '[ "$(dom0)" = "$(awk '"'"'$1 == "dom0"'"'"' "$T/idle")" ]' &&
	ok "after the detach, dom0 holds what it held before: $(dom0)" ||
	fail "not reclaimed: $(dom0); before: $(awk '$1 == "dom0"' "$T/idle")"
wait_for 3 eval '[ "$(status)" = "$(cat "$T/idle")" ]' &&
	ok "the whole status is as before the attach" ||
	fail "left: $(status | tr '\n' '|'), before: $(tr '\n' '|' <"$T/idle")"

"$xbd" sim status --dir "$T/nosim" >"$T/err" 2>&1 && fail "status without a sim succeeded" ||
	expect_out "no sim: one line" "xbd: no simulated Xen at $T/nosim" cat "$T/err"
"$xbd" -v sim status --dir "$sim_dir" 2>&1 | grep -q "^  grant [0-9]* to dom" &&
	ok "xbd -v sim status is --verbose too" || fail "xbd -v sim status lists no grant"

# the flushing workload: 16 writes of 64 KiB, a flush every 5, and one at the end
out=$("$xbd" sim vm io vm1 xvda --rw write --bs 64k --size 1M --flush-every 5 --pattern 9 2>&1) &&
	grep -qx "flushed-writes 16" <<<"$out" && ok "flushed: $out" || fail "flush-every: $out"
"$xbd" sim vm io vm1 xvda --rw read --bs 64k --size 1M --verify --pattern 9 >/dev/null 2>&1 &&
	ok "the flushed writes read back" || fail "the flushed writes do not read back"
"$xbd" sim vm io vm1 xvda --rw read --flush-every 2 >"$T/err" 2>&1 &&
	fail "--flush-every accepted for reads" || ok "reads refuse --flush-every: $(cat "$T/err")"
finish

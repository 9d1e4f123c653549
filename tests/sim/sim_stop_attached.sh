#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `xbd sim stop` with an `xbd attach` running detaches it first (its
# mount and process go, nothing is orphaned), and refuses, naming the
# users and keeping the sim up, when the attach is in use.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
start_sim
make_random_image "$T/disk.img" 8
vm1_with_xvda "$T/disk.img"
holds() { ls -l /proc/[0-9]*/fd 2>/dev/null | grep -q -- "$1"; }

attach vm1 "$T/mnt" || die "attach"
{ dd if="$T/mnt/xvda" bs=1M status=none | { sleep 3; cat >/dev/null; }; } &
bg_pids+=($!)
wait_for 5 holds "$T/mnt/xvda" || die "dd did not open xvda"
if "$xbd" sim stop --dir "$sim_dir" 2>"$T/err"; then
	fail "sim stop succeeded under a busy attach"
else
	grep -q "busy: .*(dd) has xvda open" "$T/err" && ok "refused: $(tr '\n' '|' <"$T/err")" ||
		fail "refused without naming dd: $(cat "$T/err")"
fi
"$xbd" sim vm list --dir "$sim_dir" >/dev/null 2>&1 && ok "the sim still runs" ||
	fail "the sim stopped under a busy attach"
wait_for 10 eval '! holds "$T/mnt/xvda"' || die "dd did not finish"

# a disk xbd serve hot-plugged goes too
make_random_image "$T/served.img" 8
"$xbd" serve vm1 --image "$T/served.img" --vdev xvdb --timeout 20 2>"$T/err" ||
	die "serve: $(cat "$T/err")"
serve_pid=$(xs_read "/local/domain/0/backend/xbd/$DOMID/51728/xbd-pid") ||
	die "no xbd-pid for the served disk"

"$xbd" sim stop --dir "$sim_dir" 2>"$T/err" && ok "sim stop" || fail "sim stop: $(cat "$T/err")"
mountpoint -q "$T/mnt" && fail "the attach's mount is left" || ok "the attach was detached first"
wait_for 10 eval '! kill -0 "$serve_pid" 2>/dev/null' && ok "the serve process went" ||
	fail "xbd serve (pid $serve_pid) is left running"
[ -z "$(ls /proc/[0-9]*/environ 2>/dev/null | while read -r f; do
	tr '\0' '\n' <"$f" 2>/dev/null | grep -qx "XBD_SIM_DIR=$sim_dir" &&
		tr '\0' ' ' <"${f%environ}cmdline" 2>/dev/null | grep -q " attach " && echo x
done)" ] && ok "no attach process left" || fail "an attach process is left"
sim_dir=
finish

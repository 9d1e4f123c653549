#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A new attach on the DIR of a killed one lets the backend close the
# dead device before its nodes go (as libxl does): nodes removed under a
# backend still tearing the device down took its late "Closed" into the
# new device made at the same path, and the new attach failed ("did not
# reach InitWait (state Closed)"; found by the kill -9 soak).  The
# blkback is stopped while the new attach starts: the dead device must
# still be there, offline, waiting for it; once it runs on, the new
# attach must succeed and read the image exactly.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
random_vm1 8

attach vm1 "$T/mnt" || die "attach"
pid=$(attach_pid) || die "no xbd-pid recorded"
be=/local/domain/0/backend/vbd/0/51712
state_is "$be" 4 || die "the attach's device is not Connected"
bb=$(sim_pid "sim blkback") || die "no blkback"
kill9 "$pid" attach

kill -STOP "$bb"
cleanup_fn kill -CONT "$bb"
"$xbd" attach vm1 --mount "$T/mnt" >"$T/out" 2>&1 &
att=$!
bg_pids+=("$att")
sleep 1
if [ "$(xs_read "$be/online")" = 0 ] && [ "$(xs_read "$be/state")" = 4 ] &&
	kill -0 "$att" 2>/dev/null; then
	ok "the new attach waits for the backend to close the dead device"
else
	fail "the dead device did not wait for its backend: online $(xs_read "$be/online"), state $(xs_read "$be/state")"
fi
kill -CONT "$bb"
wait "$att" && ok "the new attach: $(tr '\n' '|' <"$T/out")" || fail "the new attach: $(cat "$T/out")"
cmp -s "$T/mnt/xvda" "$img" && ok "it reads the image exactly" || fail "it reads other data"
"$xbd" detach "$T/mnt" || fail "detach"
wait_for 3 no_attach_nodes && ok "no attach nodes left" || fail "attach nodes left"
finish

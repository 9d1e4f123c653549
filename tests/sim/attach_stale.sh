#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# After kill -9 of `xbd attach`: `xbd list` shows it dead (even when its
# PID is reused: the start time tells), a new attach on the same DIR
# removes what it left (its nodes and its dead mount) and says so, and
# `xbd detach DIR` clears a dead one.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
start_sim
make_random_image "$T/disk.img" 8
vm1_with_xvda "$T/disk.img"

attach vm1 "$T/mnt" || die "attach"
pid=$(attach_pid) || die "no xbd-pid recorded"
kill9 "$pid" attach
list_shows_dead attach xvda

if "$xbd" attach vm1 --mount "$T/mnt" 2>"$T/err"; then
	grep -q "removed what xbd attach (pid $pid)" "$T/err" &&
		ok "a new attach cleaned up: $(cat "$T/err")" || fail "cleaned silently: $(cat "$T/err")"
else
	fail "a new attach on the dead DIR: $(cat "$T/err")"
fi
cmp -s "$T/mnt/xvda" "$T/disk.img" && ok "the new attach works" || fail "the new attach shows nothing"

pid=$(attach_pid) || die "no xbd-pid recorded"
kill9 "$pid" attach
# the PID of a live process (this shell) in its records: still dead
for id in $(xenstore-list /local/domain/0/device/xbd); do
	xenstore-write "/local/domain/0/device/xbd/$id/xbd-pid" $$
done
"$xbd" list | grep -q " dead " && ok "a reused PID does not make it live" ||
	fail "reused PID: $("$xbd" list)"
"$xbd" detach "$T/mnt" 2>"$T/err" && ok "detach of a dead attach: $(cat "$T/err")" ||
	fail "detach of a dead attach: $(cat "$T/err")"
mountpoint -q "$T/mnt" && fail "the dead mount is still there" || ok "the dead mount is gone"
wait_for 3 no_attach_nodes && ok "no attach nodes left" || fail "attach nodes left"
[ -z "$("$xbd" list)" ] && ok "xbd list: empty" || fail "list: $("$xbd" list)"
finish

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `xbd attach --rw` of a disk that its own running VM has writable would
# make two writers of one disk: refused in one line naming the VM, the
# disk and the way out, with nothing left behind; --force attaches all
# the same and the writes reach the disk.  A disk the guest has
# read-only is no such hazard.  (A paused VM, which is allowed, is
# tested in attach_pause.sh.)
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
random_vm1 16
mkdir -p "$T/mnt"
mounts+=("$T/mnt")

"$xbd" attach vm1 --mount "$T/mnt" --rw --log "$T/attach.log" >"$T/out" 2>"$T/err"
rc=$?
if [ $rc -eq 0 ]; then
	fail "--rw on a running VM's writable disk: attached"
	"$xbd" detach "$T/mnt"
elif [ "$(grep -c . "$T/err")" -ne 1 ] ||
	! grep -q "^xbd: vm1: xvda: .*, or --force\$" "$T/err"; then
	fail "--rw refused, but not in one clear line (exit $rc): $(cat "$T/err")"
elif mountpoint -q "$T/mnt" || ! no_attach_nodes; then
	fail "--rw refused, but something was left behind"
else
	ok "--rw on a running VM refused: $(cat "$T/err")"
fi
[ "$(sha256sum <"$img")" = "$sum" ] && ok "the image is untouched" ||
	fail "the refused attach changed the image"

attach vm1 "$T/mnt" --rw --force --log "$T/attach.log" 2>"$T/err" ||
	die "--rw --force: $(cat "$T/err")"
head -c 64k /dev/urandom >"$T/blob"
dd if="$T/blob" of="$T/mnt/xvda" bs=64k seek=3 conv=notrunc,fsync status=none ||
	fail "write through DIR/xvda"
"$xbd" detach "$T/mnt" || fail "detach"
cmp <(dd if="$img" bs=64k skip=3 count=1 status=none) "$T/blob" &&
	ok "--rw --force: attached, the write reached the disk" ||
	fail "--rw --force: the image lacks the write"

# the guest has it read-only: --rw is refused by its backend's mode,
# not as a second writer
be=/local/domain/0/backend/vbd/$DOMID/51712
xenstore-write "$be/mode" r
"$xbd" attach vm1 --mount "$T/mnt" --rw 2>"$T/err" && "$xbd" detach "$T/mnt"
grep -q "read-only (backend mode r); --rw refused" "$T/err" &&
	ok "a read-only disk: the backend mode decides" ||
	fail "a read-only disk: $(cat "$T/err")"
xenstore-write "$be/mode" w
finish

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `xbd attach` refuses a DIR that is already a mount point (it would
# stack on it), and a DIR holding files (they would be hidden) unless
# --nonempty; what was there is untouched and back after detach.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
start_sim
make_random_image "$T/disk.img" 8
vm1_with_xvda "$T/disk.img"

mkdir -p "$T/tm"
mount -t tmpfs -o size=1m xbdtest "$T/tm" || skip "cannot mount a tmpfs"
mounts+=("$T/tm")
attach vm1 "$T/tm" 2>"$T/err" && fail "attach on a mount point succeeded" ||
	{ grep -q "already a mount point" "$T/err" && ok "mount point refused: $(cat "$T/err")"; } ||
	fail "mount point: $(cat "$T/err")"
[ "$(findmnt -n -o FSTYPE --mountpoint "$T/tm" | tail -n1)" = tmpfs ] && ok "nothing stacked on the tmpfs" ||
	fail "stacked: $(findmnt -n -o FSTYPE --mountpoint "$T/tm" | tail -n1)"

mkdir -p "$T/full"
echo mine >"$T/full/notes.txt"
attach vm1 "$T/full" 2>"$T/err" && fail "attach on a non-empty DIR succeeded" ||
	{ grep -q "not empty" "$T/err" && ok "non-empty DIR refused: $(cat "$T/err")"; } ||
	fail "non-empty DIR: $(cat "$T/err")"
mountpoint -q "$T/full" && fail "mounted over the files"
attach vm1 "$T/full" --nonempty 2>"$T/err" && ok "--nonempty mounts over the files" ||
	fail "attach --nonempty: $(cat "$T/err")"
cmp -s "$T/full/xvda" "$T/disk.img" && ok "disk shown" || fail "disk not shown"
"$xbd" detach "$T/full" 2>"$T/err" || fail "detach: $(cat "$T/err")"
[ "$(cat "$T/full/notes.txt" 2>/dev/null)" = mine ] && ok "the files are back after detach" ||
	fail "the files are gone"
finish

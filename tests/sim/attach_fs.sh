#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end: forensics on a VM's filesystem through `xbd attach`.  The
# VM's disk holds an MBR with two partitions, the first ext4 with known
# files.  DIR shows xvda, xvda1 and xvda2; `mount -o ro,loop DIR/xvda1`
# shows the files byte for byte; `e2fsck -fn` finds it clean; the image
# is unchanged afterwards.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
ext4_vm1

attach vm1 "$T/mnt" || die "attach"
names=$(cd "$T/mnt" && echo *)
[ "$names" = "xvda xvda1 xvda2" ] && ok "DIR holds $names" || fail "DIR holds '$names'"
[ "$(stat -c %s "$T/mnt/xvda1")" = $((61440 * 512)) ] && ok "xvda1 has the partition's size" ||
	fail "xvda1 is $(stat -c %s "$T/mnt/xvda1") bytes"
cmp <(dd if="$img" bs=512 skip=2048 count=61440 status=none) "$T/mnt/xvda1" &&
	ok "xvda1 holds the partition's bytes" || fail "xvda1 differs from the partition"

mkdir -p "$T/fs"
if mount -o ro,loop "$T/mnt/xvda1" "$T/fs" 2>"$T/mount.err"; then
	mounts+=("$T/fs")
	if diff -r "$T/files" "$T/fs" -x lost+found >"$T/diff.out" 2>&1; then
		ok "mount -o ro,loop DIR/xvda1: every file equal"
	else
		fail "files differ: $(head -n5 "$T/diff.out")"
	fi
	umount "$T/fs" || fail "umount of the loop mount"
else
	skip "loop mounts do not work here: $(cat "$T/mount.err")"
fi

if e2fsck -fn "$T/mnt/xvda1" >"$T/fsck.out" 2>&1; then
	ok "e2fsck -fn: clean ($(tail -n1 "$T/fsck.out"))"
else
	fail "e2fsck -fn: $(tail -n5 "$T/fsck.out")"
fi

"$xbd" detach "$T/mnt" && ok "detach" || fail "detach"
wait_for 3 no_attach_nodes && ok "no attach nodes left" || fail "attach nodes left"
[ "$(sha256sum <"$img")" = "$sum" ] && ok "image unchanged" || fail "image changed"
finish

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end: `xbd attach --cow`.  The files become writable (0644);
# writes land in a copy-on-write overlay in dom0: they read back through
# DIR, a loop mount of the partition can be written (and e2fsck finds it
# clean), yet the VM's image keeps its sha256.  A second attach shows the
# disk as it was (the overlay is gone with the first).
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
ext4_vm1

attach vm1 "$T/mnt" --cow || die "attach --cow"
[ "$(stat -c %a "$T/mnt/xvda")" = 644 ] && ok "xvda writable (0644)" ||
	fail "xvda mode $(stat -c %a "$T/mnt/xvda")"

# 1 MiB of random data at 40 MiB (the second partition), then 7 bytes at
# an odd offset
head -c 1M /dev/urandom >"$T/blob"
if dd if="$T/blob" of="$T/mnt/xvda" bs=1M seek=40 conv=notrunc status=none &&
	printf 'ABCDEFG' | dd of="$T/mnt/xvda" bs=1 seek=$((50 << 20 | 3)) conv=notrunc status=none; then
	ok "writes through DIR/xvda accepted"
else
	fail "writes through DIR/xvda failed"
fi
cmp <(dd if="$T/mnt/xvda" bs=1M skip=40 count=1 status=none) "$T/blob" &&
	ok "written data reads back" || fail "written data does not read back"
[ "$(dd if="$T/mnt/xvda" bs=1 skip=$((50 << 20 | 3)) count=7 status=none)" = ABCDEFG ] &&
	ok "unaligned write reads back" || fail "unaligned write does not read back"
cmp <(dd if="$T/mnt/xvda" bs=1M count=40 status=none) <(dd if="$img" bs=1M count=40 status=none) &&
	ok "untouched ranges read the VM's data" || fail "untouched ranges differ"

mkdir -p "$T/fs"
if mount -o loop "$T/mnt/xvda1" "$T/fs" 2>"$T/mount.err"; then
	mounts+=("$T/fs")
	echo "written in dom0" >"$T/fs/new.txt" && rm "$T/fs/a.txt" &&
		ok "files created and removed on the cow filesystem" ||
		fail "writing to the cow filesystem"
	umount "$T/fs" || fail "umount"
	e2fsck -fn "$T/mnt/xvda1" >"$T/fsck.out" 2>&1 && ok "e2fsck -fn clean after the writes" ||
		fail "e2fsck: $(tail -n3 "$T/fsck.out")"
	mount -o ro,loop "$T/mnt/xvda1" "$T/fs" &&
		[ "$(cat "$T/fs/new.txt")" = "written in dom0" ] && [ ! -e "$T/fs/a.txt" ] &&
		ok "the changes are visible through DIR" || fail "changes not visible"
	umount "$T/fs" 2>/dev/null
else
	skip "loop mounts do not work here: $(cat "$T/mount.err")"
fi
[ "$(sha256sum <"$img")" = "$sum" ] && ok "image unchanged while attached" ||
	fail "image changed under --cow"

"$xbd" detach "$T/mnt" && ok "detach" || fail "detach"
[ "$(sha256sum <"$img")" = "$sum" ] && ok "image unchanged after detach" ||
	fail "image changed after detach"

attach vm1 "$T/mnt2" || die "second attach"
[ "$(sha256sum <"$T/mnt2/xvda")" = "$sum" ] && ok "a new attach sees the original disk" ||
	fail "a new attach sees the old overlay"
"$xbd" detach "$T/mnt2" || fail "second detach"
wait_for 3 no_attach_nodes && ok "no attach nodes left" || fail "attach nodes left"
finish

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `xbd detach DIR` behaves like umount while DIR is in use: it refuses,
# naming the users (a dd reading DIR/xvda, a loop device over it), and
# the copy is whole; --lazy takes DIR off at once and the disk stays
# served until the last user is done; --force makes the users' I/O fail.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
requires_prog losetup
ext4_vm1
attach vm1 "$T/mnt" --cow || die "attach --cow"

# a dd whose output pipe is full keeps DIR/xvda open
holds() { ls -l /proc/[0-9]*/fd 2>/dev/null | grep -q -- "$1"; }
{ dd if="$T/mnt/xvda" bs=1M status=none | { sleep 3; sha256sum >"$T/copy.sum"; }; } &
bg_pids+=($!)
wait_for 5 holds "$T/mnt/xvda" || die "dd did not open xvda"
if "$xbd" detach "$T/mnt" 2>"$T/err"; then
	fail "detach succeeded while dd read xvda"
else
	grep -q "busy: .*(dd) has xvda open" "$T/err" && ok "refused: $(cat "$T/err")" ||
		fail "refused without naming dd: $(cat "$T/err")"
fi
wait_for 20 test -s "$T/copy.sum" || fail "dd did not finish"
[ "$(cat "$T/copy.sum")" = "$sum" ] && ok "the copy is whole" || fail "the copy differs"

# a loop mount of the first partition (by offset: no udev here)
mkdir -p "$T/fs"
mount -o loop,offset=$((2048 * 512)),sizelimit=$((61440 * 512)) "$T/mnt/xvda" "$T/fs" \
	2>"$T/mount.err" || {
	[ "$fails" -eq 0 ] && skip "loop mounts do not work here: $(cat "$T/mount.err")"
	die "no loop mount after the failures above: $(cat "$T/mount.err")"
}
mounts+=("$T/fs")
echo "journal open" >"$T/fs/new.txt"
if "$xbd" detach "$T/mnt" 2>"$T/err"; then
	fail "detach succeeded under a loop mount"
else
	grep -q "busy: .*/dev/loop[0-9]* is backed by xvda" "$T/err" &&
		ok "refused: $(cat "$T/err")" || fail "refused without naming the loop device: $(cat "$T/err")"
fi
"$xbd" detach --lazy "$T/mnt" 2>"$T/err" && ok "detach --lazy: $(cat "$T/err")" ||
	fail "detach --lazy: $(cat "$T/err")"
mountpoint -q "$T/mnt" && fail "DIR still mounted after --lazy" || ok "DIR is off at once"
"$xbd" list | grep -q "detaching" && ok "xbd list: detaching" || fail "list: $("$xbd" list)"
echo "still served" >"$T/fs/after.txt" && sync -f "$T/fs/after.txt" &&
	ok "the loop mount still works" || fail "the loop mount broke"
umount "$T/fs" || fail "umount of the loop mount"
wait_for 10 no_attach_nodes && ok "the attach went with its last user" ||
	fail "nodes left after the last user closed"

# --force: the reader's I/O fails, nothing hangs
attach vm1 "$T/mnt2" || die "attach"
{ dd if="$T/mnt2/xvda" bs=1M status=none 2>"$T/dd.err" | { sleep 1; cat >/dev/null; }
  echo "${PIPESTATUS[0]}" >"$T/dd.rc"; } &
bg_pids+=($!)
wait_for 5 holds "$T/mnt2/xvda" || die "dd did not open xvda"
"$xbd" detach --force "$T/mnt2" 2>"$T/err" && ok "detach --force: $(cat "$T/err")" ||
	fail "detach --force: $(cat "$T/err")"
wait_for 15 test -s "$T/dd.rc" || fail "dd hangs"
[ "$(cat "$T/dd.rc")" != 0 ] && grep -q "Input/output error" "$T/dd.err" &&
	ok "dd failed with EIO: $(head -c 200 "$T/dd.err")" ||
	fail "dd after --force: exit $(cat "$T/dd.rc"): $(cat "$T/dd.err")"
mountpoint -q "$T/mnt2" && fail "still mounted" || ok "unmounted"
wait_for 5 no_attach_nodes && ok "no attach nodes left" || fail "attach nodes left"
finish

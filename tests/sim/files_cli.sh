#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `xbd ls`, `xbd cat` and `xbd cp VM:[FS:]PATH`: attach read-only with
# --files, read, detach, in one command.  The VM's disk is an MBR with
# an ext4 first partition (tests/sim/attach_common.inc's files); the
# default file system is that one; each command leaves nothing attached;
# wrong paths, file systems and VMs give one clear line and a non-zero
# exit; the image is unchanged.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
ext4_vm1
touch -d '2003-04-05 06:07:08' "$T/files/big.bin"
mkfs.ext4 -q -F -E offset=$((2048 * 512)) -d "$T/files" "$img" 30M >/dev/null || die "mkfs.ext4"
sum=$(sha256sum <"$img")

out=$("$xbd" ls vm1:/ 2>"$T/err") && ok "xbd ls vm1:/" || fail "xbd ls: $(cat "$T/err")"
names=$(echo "$out" | awk '{print $NF}' | xargs)
[ "$names" = "a.txt big.bin lost+found sub" ] && ok "ls shows $names" || fail "ls shows '$names'"
echo "$out" | grep -q "^-rw-r--r-- .* $(stat -c %s "$T/files/big.bin") 2003-04-05 06:07:08 big.bin$" &&
	ok "ls shows mode, size and mtime" || fail "ls line: $(echo "$out" | grep big.bin)"
no_attach_nodes && ok "nothing attached after ls" || fail "ls left nodes"

[ "$("$xbd" cat vm1:/a.txt)" = "hello from the VM" ] && ok "xbd cat vm1:/a.txt" || fail "cat a.txt"
[ "$("$xbd" cat vm1:xvda1:/sub/seq.txt | sha256sum)" = "$(sha256sum <"$T/files/sub/seq.txt")" ] &&
	ok "xbd cat vm1:xvda1:/sub/seq.txt: same bytes" || fail "cat seq.txt differs"
mkdir -p "$T/out"
"$xbd" cp vm1:/big.bin "$T/out" && cmp "$T/out/big.bin" "$T/files/big.bin" &&
	ok "xbd cp: same bytes" || fail "xbd cp"
[ "$(stat -c %Y "$T/out/big.bin")" = "$(stat -c %Y "$T/files/big.bin")" ] &&
	ok "xbd cp keeps the mtime" || fail "mtime $(stat -c %y "$T/out/big.bin")"
no_attach_nodes && ok "nothing attached after cat and cp" || fail "nodes left"

expect_fail() {
	local desc=$1 want=$2 rc
	shift 2
	"$@" >/dev/null 2>"$T/err"
	rc=$?
	if [ "$rc" -ne 0 ] && [ "$(wc -l <"$T/err")" -ge 1 ] && grep -q -- "$want" "$T/err"; then
		ok "$desc: exit $rc, '$(head -n1 "$T/err")'"
	else
		fail "$desc: exit $rc, '$(cat "$T/err")'"
	fi
}
expect_fail "missing file" "No such file" "$xbd" cat vm1:/nope
expect_fail "unknown file system" "no file system xvdq1" "$xbd" cat vm1:xvdq1:/a.txt
expect_fail "a directory to cp" "directory" "$xbd" cp vm1:/sub "$T/out/x"
expect_fail "unknown VM" "nosuchvm" "$xbd" cat nosuchvm:/a.txt
expect_fail "no path" "expected" "$xbd" cat vm1
no_attach_nodes && ok "nothing attached after the errors" || fail "nodes left after errors"

# beside an attach of the same VM (read-only both): its own, and gone again
attach vm1 "$T/mnt" || die "attach"
[ "$("$xbd" cat vm1:/a.txt 2>"$T/err")" = "hello from the VM" ] &&
	ok "xbd cat while vm1 is attached elsewhere" || fail "cat beside an attach: $(cat "$T/err")"
[ "$(ls "$T/mnt")" = "$(printf 'xvda\nxvda1\nxvda2')" ] && ok "the other attach is untouched" ||
	fail "the other attach shows '$(ls "$T/mnt" | xargs)'"
"$xbd" detach "$T/mnt" && ok "detach" || fail "detach"
[ "$(sha256sum <"$img")" = "$sum" ] && ok "image unchanged" || fail "image changed"
finish

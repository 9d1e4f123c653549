#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `xbd ls`, `xbd cat` and `xbd cp VM:[FS:]PATH`: attach read-only with
# --files, read, detach, in one command.  The VM's disk is an MBR with
# an ext4 first partition (tests/sim/attach_common.inc's files); the
# default file system is that one; each command leaves nothing attached;
# wrong paths, file systems and VMs give one clear line and a non-zero
# exit; the image is unchanged.  Guest symlinks (absolute, and with
# "..") resolve inside the guest, never to dom0's files; names and link
# targets reach the terminal escaped.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
ext4_vm1
touch -d '2003-04-05 06:07:08' "$T/files/big.bin"
# dom0's secret, and a guest file of the same absolute path
secret=/tmp/xbd-secret.$$
echo "dom0 secret $$" >"$secret"
cleanup_fn rm -f "$secret"
mkdir -p "$T/files$(dirname "$secret")" "$T/files/var/log"
echo "the guest's own file" >"$T/files$secret"
ln -s "$secret" "$T/files/var/log/abs"
ln -s "../../../../../../../../..$secret" "$T/files/var/log/rel"
ln -s "$T/dom0only" "$T/files/var/log/out"
echo "dom0 only $$" >"$T/dom0only"
ln -s /tmp/../../.. "$T/files/var/log/up"
touch "$T/files/var/log/"$'bad\033[31mname'
install -m 6777 /dev/null "$T/files/var/log/setid"
mkfs.ext4 -q -F -E offset=$((2048 * 512)) -d "$T/files" "$img" 30M >/dev/null || die "mkfs.ext4"
sum=$(sha256sum <"$img")

out=$("$xbd" ls vm1:/ 2>"$T/err") && ok "xbd ls vm1:/" || fail "xbd ls: $(cat "$T/err")"
names=$(echo "$out" | awk '{print $NF}' | xargs)
[ "$names" = "a.txt big.bin lost+found sub tmp var" ] && ok "ls shows $names" || fail "ls shows '$names'"
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

for l in abs rel; do
	out=$("$xbd" cat "vm1:/var/log/$l" 2>"$T/err")
	[ "$out" = "the guest's own file" ] && ok "cat of the $l link: the guest's file" ||
		fail "cat of the $l link gave '$out' $(cat "$T/err")"
done
out=$("$xbd" cat vm1:/var/log/out 2>"$T/err")
[ $? -ne 0 ] && [ -z "$out" ] && grep -q "No such file" "$T/err" &&
	ok "cat of a link to a dom0-only file: $(cat "$T/err")" || fail "cat out gave '$out'"
out=$("$xbd" ls vm1:/var/log/up/etc 2>"$T/err")
! echo "$out" | grep -qw "shadow\|passwd" && ok "ls through /tmp/../../..: not dom0's /etc" ||
	fail "ls up/etc listed dom0's /etc"
[ "$("$xbd" ls vm1:/var/.. 2>&1 | awk '{print $NF}' | xargs)" = "$names" ] &&
	ok "ls vm1:/var/..: the guest's root" || fail "ls /var/..: $("$xbd" ls vm1:/var/.. 2>&1)"
"$xbd" cp vm1:/var/log/rel "$T/out/rel" && [ "$(cat "$T/out/rel")" = "the guest's own file" ] &&
	ok "cp of the rel link: the guest's file" || fail "cp rel: $(cat "$T/out/rel" 2>&1)"
out=$("$xbd" ls vm1:/var/log 2>"$T/err") || fail "ls /var/log: $(cat "$T/err")"
echo "$out" | grep -q "^l.* abs -> $secret\$" && echo "$out" | grep -q "^l.* rel -> \.\./.*$secret\$" &&
	ok "ls shows the links as links" || fail "ls /var/log: $out"
echo "$out" | grep -qF 'bad\033[31mname' && ! echo "$out" | grep -q $'\033' &&
	ok "ls escapes the ESC byte" || fail "ls name: $(echo "$out" | grep bad | od -c | head -n2)"
echo "$out" | grep -q "^-rwsrwsrwx .* setid$" && ok "ls shows setid's mode" || fail "setid: $out"
out=$("$xbd" ls vm1:/var/log/abs 2>"$T/err")
echo "$out" | grep -q "^l.* abs -> $secret\$" && ok "ls of a link: the link" || fail "ls abs: '$out'"
(umask 022; "$xbd" cp vm1:/var/log/setid "$T/out/setid") &&
	[ "$(stat -c %a "$T/out/setid")" = 755 ] && ok "cp drops set-id bits and the umask's" ||
	fail "cp setid: mode $(stat -c %a "$T/out/setid" 2>&1)"

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

# Ctrl-C while the command's own attach starts (its daemon is there,
# not yet ready): the command still detaches, and says why it stopped
# (env: a background job of a script starts with SIGINT ignored)
env --default-signal=INT "$xbd" cat vm1:/big.bin >/dev/null 2>"$T/err" &
cli=$!
apid= adir=
for i in $(seq 1 1000); do
	apid=$(attach_pid) && break
	sleep 0.01
done
for id in $(xenstore-list /local/domain/0/device/xbd 2>/dev/null); do
	adir=$(xs_read "/local/domain/0/device/xbd/$id/xbd-mount") && break
done
kill -INT "$cli"
wait "$cli"
rc=$?
if [ -z "$apid" ]; then
	fail "no attach daemon seen while xbd cat started"
else
	[ "$rc" -eq 130 ] && grep -q "stopped by signal 2" "$T/err" &&
		ok "cat stopped by SIGINT during its attach: exit $rc, '$(head -n1 "$T/err")'" ||
		fail "cat after SIGINT: exit $rc, '$(cat "$T/err")'"
	wait_for 10 eval '! kill -0 "$apid" 2>/dev/null' && ok "its attach daemon is gone" ||
		fail "attach daemon $apid left running"
	no_attach_nodes && ok "nothing attached after the SIGINT" || fail "nodes left after SIGINT"
	[ -n "$adir" ] && ! mountpoint -q "$adir" && ok "no mount left ($adir)" ||
		fail "mount left: '$adir'"
fi

# beside an attach of the same VM (read-only both): its own, and gone again
attach vm1 "$T/mnt" || die "attach"
[ "$("$xbd" cat vm1:/a.txt 2>"$T/err")" = "hello from the VM" ] &&
	ok "xbd cat while vm1 is attached elsewhere" || fail "cat beside an attach: $(cat "$T/err")"
[ "$(ls "$T/mnt")" = "$(printf 'xvda\nxvda1\nxvda2')" ] && ok "the other attach is untouched" ||
	fail "the other attach shows '$(ls "$T/mnt" | xargs)'"
"$xbd" detach "$T/mnt" && ok "detach" || fail "detach"
[ "$(sha256sum <"$img")" = "$sum" ] && ok "image unchanged" || fail "image changed"
finish

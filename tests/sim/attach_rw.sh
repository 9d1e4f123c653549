#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end: `xbd attach --rw` writes reach the VM's disk; and every way
# attach must refuse, with one clear line, a non-zero exit and nothing
# left behind: unknown VM, unknown --disk, --cow with --rw, a missing
# DIR, --rw on a read-only disk, a qcow2 disk (format named), a raw file
# served by qdisk (no loop devices on the sim), a DIR already in use, a
# --log that cannot be opened.  --log wins over $XBD_ATTACH_LOG.
# And --foreground: attach runs until SIGINT, then takes all away; with
# $NOTIFY_SOCKET it tells systemd READY=1 and STOPPING=1.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
random_vm1 16

# the daemon's messages (sanitizer reports too) go where the cleanup looks;
# --force: vm1 runs (attach_rw_running.sh tests the refusal)
XBD_ATTACH_LOG=$T/env.log attach vm1 "$T/mnt" --rw --force --log "$T/attach.log" ||
	die "attach --rw"
[ -e "$T/attach.log" ] && [ ! -e "$T/env.log" ] && ok "--log wins over \$XBD_ATTACH_LOG" ||
	fail "--log: $(ls "$T")"
[ "$(stat -c %a "$T/mnt/xvda")" = 644 ] && ok "xvda writable (0644)" ||
	fail "xvda mode $(stat -c %a "$T/mnt/xvda")"
head -c 1M /dev/urandom >"$T/blob"
dd if="$T/blob" of="$T/mnt/xvda" bs=64k seek=80 conv=notrunc,fsync status=none ||
	fail "write through DIR/xvda"
"$xbd" detach "$T/mnt" || fail "detach"
cmp <(dd if="$img" bs=64k skip=80 count=16 status=none) "$T/blob" &&
	ok "--rw: the write reached the VM's image" || fail "--rw: the image lacks the write"

# refuse_attach DESC WANT-IN-MESSAGE ARGS...: attach fails clearly.
refuse_attach() {
	local desc=$1 want=$2 rc lines
	shift 2
	"$xbd" attach "$@" >"$T/out" 2>"$T/err"
	rc=$?
	lines=$(wc -l <"$T/err")
	if [ $rc -eq 0 ]; then
		fail "$desc: attach succeeded"
		mountpoint -q "$T/mnt" && "$xbd" detach "$T/mnt"
	elif ! grep -q -- "$want" "$T/err"; then
		fail "$desc: message lacks '$want': $(cat "$T/err")"
	elif [ "$lines" -ne 1 ]; then
		fail "$desc: $lines lines: $(cat "$T/err")"
	elif mountpoint -q "$T/mnt" || ! no_attach_nodes; then
		fail "$desc: something was left behind"
	else
		ok "$desc: $(cat "$T/err")"
	fi
}
mkdir -p "$T/mnt"
mounts+=("$T/mnt")
refuse_attach "unknown VM" "nosuchvm: no such domain" nosuchvm --mount "$T/mnt"
refuse_attach "unknown disk" "no disk xvdc (it has: xvda)" vm1 --mount "$T/mnt" --disk xvdc
refuse_attach "missing DIR" "No such file" vm1 --mount "$T/nope"
refuse_attach "--log unopenable" "^xbd: $T/nodir/x.log: No such file or directory$" \
	vm1 --mount "$T/mnt" --log "$T/nodir/x.log"
"$xbd" attach vm1 2>"$T/err"
[ $? -eq 2 ] && [ "$(cat "$T/err")" = "xbd: attach: --mount DIR is required" ] &&
	ok "no --mount: $(cat "$T/err")" || fail "no --mount: $(cat "$T/err")"
"$xbd" attach vm1 --mount "$T/mnt" --cow --rw 2>"$T/err"
[ $? -eq 2 ] && ok "--cow --rw is a usage error" || fail "--cow --rw: $(cat "$T/err")"

be=/local/domain/0/backend/vbd/$DOMID/51712
xenstore-write "$be/mode" r
refuse_attach "--rw on a read-only disk" "--rw refused" vm1 --mount "$T/mnt" --rw
xenstore-write "$be/mode" w

# disks a qdisk serves (nodes only: attach must refuse before using them)
fe=/local/domain/$DOMID/device/vbd
for spec in 51728:qcow2:/images/x.qcow2 51744:raw:/images/x.raw; do
	id=${spec%%:*} params=${spec#*:}
	qbe=/local/domain/0/backend/qdisk/$DOMID/$id
	xenstore-write "$qbe/params" "$params" "$qbe/frontend" "$fe/$id" \
		"$qbe/frontend-id" "$DOMID" "$qbe/state" 1 \
		"$fe/$id/backend" "$qbe" "$fe/$id/backend-id" 0 "$fe/$id/state" 1
done
refuse_attach "qcow2 disk" "disk format qcow2 cannot be attached" vm1 --mount "$T/mnt" --disk xvdb
refuse_attach "raw file on qdisk, sim" "simulated platform" vm1 --mount "$T/mnt" --disk xvdc
xenstore-rm "$fe/51728" "$fe/51744" /local/domain/0/backend/qdisk

# systemd's side of sd_notify: one line per datagram in $T/notify.msgs
notify_listen "$T/notify.sock" "$T/notify.msgs"
NOTIFY_SOCKET=$T/notify.sock "$xbd" attach vm1 --mount "$T/mnt" --foreground 2>"$T/fg.err" &
fg=$!
bg_pids+=($fg)
if wait_for 10 test -e "$T/mnt/xvda"; then
	ok "--foreground: DIR ready"
	wait_for 5 grep -qx READY=1 "$T/notify.msgs" && ok "--foreground: READY=1" ||
		fail "--foreground: no READY=1: $(cat "$T/notify.msgs" 2>/dev/null)"
	if "$xbd" attach vm1 --mount "$T/mnt" 2>"$T/err"; then
		fail "a second attach on the same DIR succeeded"
	elif grep -q "already in use by xbd attach (pid $fg)" "$T/err"; then
		ok "DIR in use: $(cat "$T/err")"
	else
		fail "DIR in use: $(cat "$T/err")"
	fi
	kill -INT "$fg"
	if wait_for 10 eval '! kill -0 '"$fg"' 2>/dev/null'; then
		wait "$fg"
		rc=$?
		[ $rc -eq 0 ] && ok "--foreground: SIGINT ends it (exit 0)" ||
			fail "--foreground exit status $rc: $(cat "$T/fg.err")"
	else
		fail "--foreground: still running 10 s after SIGINT"
	fi
	mountpoint -q "$T/mnt" && fail "still mounted after SIGINT" || ok "unmounted"
	[ "$(tr '\n' ' ' <"$T/notify.msgs")" = "READY=1 STOPPING=1 " ] &&
		ok "--foreground: READY=1, then STOPPING=1" ||
		fail "--foreground: notifications: $(cat "$T/notify.msgs")"
	wait_for 3 no_attach_nodes && ok "no attach nodes left" || fail "attach nodes left"
else
	fail "--foreground: DIR not ready: $(cat "$T/fg.err")"
fi
finish

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Two writers on one disk, refused by `xbd serve`: the same image served
# writable twice (the image lock names the first server), a VM's own
# running disk served back to it writable, under another name too, a
# file that another domain's backend names with an "aio:" prefix, a file
# a loop device backs (and a backend names by that loop's
# physical-device), and a file QEMU has open writable.  Each refusal is
# one line, a non-zero exit, and the first server serves on; --share-rw
# serves anyway.
. "$(dirname "$0")/attach_common.inc"
requires_prog xenstore-read xenstore-utils
start_sim
truncate -s 16M "$T/own.img" "$T/shared.img" "$T/other.img"
vm1_with_xvda "$T/own.img"
BE=/local/domain/0/backend/xbd/$DOMID

# refused WHAT PATTERN ARGS...: `xbd ARGS` exits non-zero with one line
# on stderr matching PATTERN.
refused() {
	local what=$1 pattern=$2 rc
	shift 2
	"$xbd" "$@" >"$T/out" 2>"$T/err"
	rc=$?
	if [ $rc -eq 0 ]; then
		fail "$what: served (exit 0)"
		"$xbd" detach vm1 "$(sed -n 's/.*--vdev \([a-z]*\).*/\1/p' <<<"$*")" >/dev/null 2>&1
	elif [ "$(grep -c . "$T/err")" -ne 1 ] || ! grep -q -- "$pattern" "$T/err"; then
		fail "$what: exit $rc, error: $(cat "$T/err")"
	else
		ok "$what -> $(cat "$T/err")"
	fi
}

# still_serving: the first server's disk is still Connected.
still_serving() {
	[ "$(xenstore-read "$BE/51728/state" 2>/dev/null)" = 4 ] &&
		kill -0 "$first" 2>/dev/null
}

# 1. The same image, writable, twice.
"$xbd" serve vm1 --image "$T/shared.img" --vdev xvdb --log "$T/serve1.log" ||
	die "first serve: $(cat "$T/serve1.log")"
first=$(xenstore-read "$BE/51728/xbd-pid")
refused "the same image writable twice" \
	"^xbd: $T/shared.img: in use by another writer (xbd serve, pid $first)\$" \
	serve vm1 --image "$T/shared.img" --vdev xvdc
refused "read-only while it is served writable" \
	"in use by another writer (xbd serve, pid $first)\$" \
	serve vm1 --image "$T/shared.img" --vdev xvdc --read-only
still_serving && ok "the first server serves on" || fail "the first server stopped"
if "$xbd" serve vm1 --image "$T/shared.img" --vdev xvdc --share-rw \
	--log "$T/serve2.log" 2>"$T/err"; then
	ok "--share-rw serves it anyway"
	grep -q "shared.img: in use by another writer (xbd serve, pid $first); sharing it anyway" \
		"$T/err" "$T/serve2.log" && ok "--share-rw still says who else writes" ||
		fail "--share-rw said nothing: $(cat "$T/err")"
	"$xbd" detach vm1 xvdc >/dev/null 2>&1 || fail "detach xvdc"
else
	fail "--share-rw: $(cat "$T/err")"
fi

# 2. The VM's own running disk, served back to it writable; also by
# another name for the same file.
refused "vm1's own disk served back to it" \
	"^xbd: $T/own.img: in use by vm1's xvda (vbd backend in domain 0); --share-rw to serve anyway\$" \
	serve vm1 --image "$T/own.img" --vdev xvdd
cd "$T" || die "cd $T"
refused "vm1's own disk by a relative name" \
	"^xbd: own.img: in use by vm1's xvda (vbd backend in domain 0); --share-rw to serve anyway\$" \
	serve vm1 --image own.img --vdev xvdd
cd - >/dev/null || die "cd -"
ln -s "$T/own.img" "$T/alias.img"
refused "vm1's own disk under another name" \
	"in use by vm1's xvda (vbd backend in domain 0)" \
	serve vm1 --image "$T/alias.img" --vdev xvdd
if "$xbd" serve vm1 --image "$T/own.img" --vdev xvdd --read-only \
	--log "$T/serve3.log" 2>"$T/err"; then
	ok "vm1's own disk read-only: served (not a second writer)"
	"$xbd" detach vm1 xvdd >/dev/null 2>&1 || fail "detach xvdd"
else
	fail "read-only serve of vm1's own disk: $(cat "$T/err")"
fi

# 3. A QEMU disk of another domain, named with a format prefix.
Q=/local/domain/0/backend/qdisk/$DOMID/51760
xenstore-write "$Q/params" "aio:$T/other.img" "$Q/dev" xvde "$Q/mode" w ||
	die "xenstore-write"
refused "a file a qdisk backend names as aio:PATH" \
	"^xbd: $T/other.img: in use by vm1's xvde (qdisk backend in domain 0); --share-rw to serve anyway\$" \
	serve vm1 --image "$T/other.img" --vdev xvdd
xenstore-rm "/local/domain/0/backend/qdisk"

# 4. A loop device backs the file (no lock: the kernel takes none), and
# a kernel blkback device names that loop device by physical-device.
if [ "$(id -u)" -eq 0 ] && loop=$(losetup -f --show "$T/other.img" 2>/dev/null); then
	cleanup_loop() { losetup -d "$loop" 2>/dev/null; return 0; }
	cleanup_fn cleanup_loop
	refused "a file a loop device backs" \
		"^xbd: $T/other.img: in use by $loop (a loop device backing it); --share-rw to serve anyway\$" \
		serve vm1 --image "$T/other.img" --vdev xvdd
	P=/local/domain/0/backend/vbd/$DOMID/51776
	xenstore-write "$P/physical-device" "$(stat -c '%t:%T' "$loop")" "$P/dev" xvdf ||
		die "xenstore-write"
	refused "a file behind the loop device a vbd backend uses" \
		"^xbd: $T/other.img: in use by vm1's xvdf (vbd backend in domain 0); --share-rw to serve anyway\$" \
		serve vm1 --image "$T/other.img" --vdev xvdd
	xenstore-rm "$P"
	cleanup_loop
else
	echo "note: no loop device here: loop-backed files not tested"
fi

# 5. QEMU has the image open writable: the same lock bytes.
if command -v qemu-io >/dev/null; then
	truncate -s 16M "$T/qemu.img"
	mkfifo "$T/qemu.in"
	qemu-io -f raw "$T/qemu.img" <"$T/qemu.in" >/dev/null 2>&1 &
	qpid=$!
	bg_pids+=("$qpid")
	exec 9>"$T/qemu.in"
	wait_for 5 grep -q "" /proc/locks # qemu-io has opened it
	sleep 0.5
	refused "an image qemu-io has open writable" \
		"^xbd: $T/qemu.img: in use by another writer (qemu-io, pid $qpid)\$" \
		serve vm1 --image "$T/qemu.img" --vdev xvdd
	exec 9>&-
	wait "$qpid" 2>/dev/null
	if qemu-io -f raw -c "write 0 512" "$T/shared.img" >"$T/qemu.out" 2>&1; then
		fail "qemu-io wrote the image xbd serves: $(cat "$T/qemu.out")"
	else
		grep -q 'lock' "$T/qemu.out" &&
			ok "qemu-io refused by xbd's lock: $(head -n1 "$T/qemu.out")" ||
			fail "qemu-io failed otherwise: $(cat "$T/qemu.out")"
	fi
else
	echo "note: qemu-io not installed (qemu-utils): QEMU interplay not tested"
fi

still_serving && ok "the first server still serves" || fail "the first server stopped"
"$xbd" detach vm1 xvdb >/dev/null 2>&1 || fail "detach xvdb"
finish

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `xbd sim blkback`, the sim's stand-in for Linux blkback, from the
# command line: it adopts a device a toolstack writes (features, InitWait,
# hotplug-status), reports an image it cannot open in `error` and goes
# Closing, never brings back nodes the toolstack removed, and stops
# cleanly on SIGTERM.  It serves its own backend type here (--type), so
# that it never meets a blkback the sim itself may run.
. "$(dirname "$0")/../lib/functions.sh"
B=${XBD_BUILD:?XBD_BUILD not set}
XBD=$B/xbd
requires_prog xenstore-write "package xenstore-utils"
"$XBD" sim blkback --help 2>&1 | grep -q "as Linux blkback does" ||
	skip "xbd sim does not route 'blkback' yet"

make_workdir xbd-serve-blkback /dev/shm
D=$T
export XBD_SIM_DIR=$D XBD_RUN_DIR=$D/run XENSTORED_PATH=$D/xenstored.sock
bb=
cleanup() {
	[ -n "$bb" ] && kill -9 "$bb" 2>/dev/null
	"$XBD" sim stop --dir "$D" >/dev/null 2>&1
	for f in "$D"/sim.log "$D"/blkback.log; do
		[ -s "$f" ] && { echo "---- $f ----"; cat "$f"; }
	done
	return 0
}
cleanup_fn cleanup

"$XBD" sim start --dir "$D" || die "cannot start the sim"
"$XBD" sim vm create vm1 >/dev/null || die "cannot create vm1"
truncate -s 16M "$D/disk.raw"
"$XBD" sim blkback --dir "$D" --type vbdtest 2>"$D/blkback.log" &
bb=$!

BE=/local/domain/0/backend/vbdtest/1
FE=/local/domain/1/device/vbd

# value_is PATH VALUE: the node reads VALUE.
value_is() { [ "$(xenstore-read "$1" 2>/dev/null)" = "$2" ]; }
# wait_value PATH VALUE: up to 5 s
wait_value() { wait_for 5 value_is "$@"; }

# A device as a toolstack writes it, in one transaction.
toolstack_add() { # DEVID PARAMS MODE
	xenstore-write \
		"$BE/$1/frontend" "$FE/$1" "$BE/$1/frontend-id" 1 \
		"$BE/$1/online" 1 "$BE/$1/state" 1 "$BE/$1/params" "$2" \
		"$BE/$1/mode" "$3" "$BE/$1/type" file \
		"$FE/$1/backend" "$BE/$1" "$FE/$1/backend-id" 0 \
		"$FE/$1/state" 1 "$FE/$1/virtual-device" "$1"
}

toolstack_add 51712 "$D/disk.raw" w
if wait_value "$BE/51712/state" 2; then ok "adopted: InitWait"; else fail "state $(xenstore-read "$BE/51712/state" 2>&1)"; fi
for node in feature-flush-cache feature-barrier feature-persistent \
	feature-max-indirect-segments max-ring-page-order; do
	xenstore-read "$BE/51712/$node" >/dev/null 2>&1 || fail "no $node"
done
[ "$(xenstore-read "$BE/51712/hotplug-status" 2>/dev/null)" = connected ] &&
	ok "hotplug-status connected" || fail "hotplug-status"

toolstack_add 51728 "$D/missing.raw" w
if wait_value "$BE/51728/state" 5; then ok "missing image: Closing"; else fail "missing image: state $(xenstore-read "$BE/51728/state" 2>&1)"; fi
xenstore-read "$BE/51728/error" >/dev/null 2>&1 && ok "error node" || fail "no error node"

toolstack_add 51744 "$D/disk.raw" r
wait_value "$BE/51744/state" 2 && ok "read-only device adopted" || fail "read-only device"
[ "$(xenstore-read "$BE/51744/feature-flush-cache")" = 0 ] && ok "no flush offered read-only" ||
	fail "flush offered on a read-only disk"

# The toolstack takes them away; nothing comes back.
for id in 51712 51728 51744; do
	xenstore-write "$BE/$id/online" 0
	xenstore-rm "$BE/$id" "$FE/$id"
done
sleep 0.5
for id in 51712 51728 51744; do
	xenstore-read "$BE/$id/state" >/dev/null 2>&1 && fail "$id came back"
done
kill -0 "$bb" 2>/dev/null && ok "still running" || fail "blkback died"

kill -TERM "$bb"; wait "$bb"; rc=$?; bb=
[ "$rc" = 0 ] && ok "SIGTERM: exit 0" || fail "SIGTERM: exit $rc"

finish

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `xbd serve --foreground` under a Type=notify unit: with $NOTIFY_SOCKET
# set it sends systemd's datagrams itself.  A small Python listener
# stands in for systemd, on a socket path and on an abstract socket
# ('@name'): STATUS= while the VM's blkfront has not connected the disk,
# READY=1 once it has (its ring is mapped, the backend Connected), STOPPING=1
# when the disk goes (xbd detach; SIGTERM, as `systemctl stop` sends).
# A NOTIFY_SOCKET nobody listens on changes nothing.
. "$(dirname "$0")/attach_common.inc"
command -v xenstore-read >/dev/null || skip "xenstore-read not installed (xenstore-utils)"
start_sim
vm_create vm2
truncate -s 16M "$T/disk.img"
FE=/local/domain/$DOMID/device/vbd/51728 # xvdb

# serve_fg NOTIFY_SOCKET: xbd serve --foreground of xvdb; sets SERVER.
serve_fg() {
	NOTIFY_SOCKET=$1 "$xbd" serve vm2 --image "$T/disk.img" --vdev xvdb \
		--foreground 2>"$T/serve.err" &
	SERVER=$!
	bg_pids+=("$SERVER")
}

# got OUT LINE: the listener received LINE.
got() { grep -qx -- "$2" "$1" 2>/dev/null; }

# 1. A socket path; the disk goes by `xbd detach`.
out=$T/path.msgs
notify_listen "$T/notify.sock" "$out"
serve_fg "$T/notify.sock"
if wait_for 20 got "$out" "READY=1|STATUS=serving xvdb to vm2"; then
	ok "path socket: READY=1 once connected"
	# the backend is Connected, so the blkfront has given its ring
	# (Initialised) and goes Connected next
	st=$(xs_read "$FE/state")
	[ "$st" = 3 ] || [ "$st" = 4 ] && ok "the frontend had connected its ring at READY" ||
		fail "READY=1 while the frontend is in state $st"
	wait_for 5 state_is "$FE" 4 || fail "the frontend did not go Connected"
else
	fail "path socket: no READY=1: $(cat "$out" 2>/dev/null) / $(cat "$T/serve.err")"
fi
head -n1 "$out" | grep -qx "STATUS=waiting for vm2 to connect xvdb" &&
	ok "STATUS= while waiting, before READY" ||
	fail "first datagram: $(head -n1 "$out")"
got "$out" STOPPING=1 && fail "STOPPING=1 before the disk went"
"$xbd" detach vm2 xvdb 2>"$T/detach.err" || fail "detach: $(cat "$T/detach.err")"
wait "$SERVER"; rc=$?
[ $rc -eq 0 ] && ok "serve exited 0 after detach" || fail "serve exit $rc: $(cat "$T/serve.err")"
wait_for 5 got "$out" STOPPING=1 && ok "path socket: STOPPING=1 on detach" ||
	fail "no STOPPING=1 on detach: $(cat "$out")"
n=$(grep -c . "$out")
[ "$n" -eq 3 ] && ok "three datagrams: waiting, ready, stopping" ||
	fail "$n datagrams: $(cat "$out")"

# 2. An abstract socket ('@'); the disk goes by SIGTERM.
out=$T/abstract.msgs
notify_listen "@xbd-notify-test-$$" "$out"
serve_fg "@xbd-notify-test-$$"
if wait_for 20 got "$out" "READY=1|STATUS=serving xvdb to vm2"; then
	ok "abstract socket: READY=1"
else
	fail "abstract socket: no READY=1: $(cat "$out" 2>/dev/null) / $(cat "$T/serve.err")"
fi
kill -TERM "$SERVER"
wait "$SERVER"; rc=$?
[ $rc -eq 0 ] && ok "SIGTERM: serve exited 0" || fail "SIGTERM: exit $rc: $(cat "$T/serve.err")"
wait_for 5 got "$out" STOPPING=1 && ok "abstract socket: STOPPING=1 on SIGTERM" ||
	fail "no STOPPING=1 on SIGTERM: $(cat "$out")"
[ "$(grep -c STOPPING=1 "$out")" -eq 1 ] && ok "STOPPING=1 once" ||
	fail "STOPPING=1 more than once: $(cat "$out")"

# 3. Nobody listening: serving is not disturbed.
serve_fg "$T/nobody.sock"
wait_for 20 state_is "$FE" 4 && ok "no listener: the disk connects" ||
	fail "no listener: not connected: $(cat "$T/serve.err")"
"$xbd" detach vm2 xvdb 2>"$T/detach.err" || fail "detach: $(cat "$T/detach.err")"
wait "$SERVER"; rc=$?
[ $rc -eq 0 ] && ok "no listener: exit 0" || fail "no listener: exit $rc: $(cat "$T/serve.err")"
[ -s "$T/serve.err" ] && fail "no listener: messages: $(cat "$T/serve.err")"

finish

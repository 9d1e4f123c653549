#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `xbd list` trusts no control reply: fake control sockets in the run
# directory answer with null, missing and wrongly typed fields (a null
# backend_path crashed it), and `xbd list` and `xbd list --json` still
# print the served disk, its request count unknown.
. "$(dirname "$0")/attach_common.inc"
start_sim
be=/local/domain/0/backend/xbd/1/51728
for kv in state=4 mode=r xbd-format=raw params=/img.raw; do
	xenstore-write "$be/${kv%%=*}" "${kv#*=}" || die "xenstore-write $be"
done
mkdir -p -m 0700 "$XBD_RUN_DIR"

# fake_ctl REPLY: a process answering every request on its own
# xbd-<pid>.sock with REPLY
fake_ctl() {
	python3 - "$XBD_RUN_DIR" "$1" <<'PY' &
import os, socket, sys
d, reply = sys.argv[1], sys.argv[2]
path = "%s/xbd-%d.sock" % (d, os.getpid())
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.bind(path)
s.listen(8)
open(path + ".ready", "w").close()
s.settimeout(60)
while True:
    try:
        c, _ = s.accept()
    except socket.timeout:
        break
    c.recv(4096)
    c.sendall((reply + "\n").encode())
    c.close()
PY
	bg_pids+=($!)
}
# check_list WHAT: both forms exit 0 and show the disk, requests unknown
check_list() {
	local rc
	"$xbd" list >"$T/out" 2>&1
	rc=$?
	[ "$rc" = 0 ] && ok "$1: xbd list exits 0" || fail "$1: xbd list: exit $rc: $(tail -n5 "$T/out")"
	grep -E "xvdb +Connected +r +raw .* - +serve +/img.raw" "$T/out" >/dev/null &&
		ok "$1: the disk shows, requests unknown" || fail "$1: xbd list printed: $(cat "$T/out")"
	"$xbd" list --json >"$T/out" 2>&1
	rc=$?
	[ "$rc" = 0 ] && ok "$1: xbd list --json exits 0" ||
		fail "$1: xbd list --json: exit $rc: $(tail -n5 "$T/out")"
	grep -q '"vdev":"xvdb".*"requests":null' "$T/out" && ok "$1: --json: requests null" ||
		fail "$1: xbd list --json printed: $(cat "$T/out")"
}
# start_fakes REPLY...: one fake per reply, each started and listening
n=0
start_fakes() {
	local reply
	for reply in "$@"; do
		fake_ctl "$reply"
		n=$((n + 1))
	done
	wait_for 10 eval '[ "$(ls "$XBD_RUN_DIR"/*.ready 2>/dev/null | wc -l)" -eq '$n' ]' ||
		die "the fake control sockets did not start"
}

# replies that name no disk of ours usably
start_fakes \
	'{"version":1,"devices":[{"backend_path":null,"requests":{"read":1}}]}' \
	'{"version":1,"devices":[{"vdev":"xvdb"}]}' \
	'{"version":1,"devices":[null,5,"x",[],{"backend_path":7}]}' \
	'{"version":1,"devices":"none"}' \
	'{"version":1,"devices":null}' \
	'[1,2,3]' \
	'"just a string"'
check_list "null, missing and wrongly typed fields"
# replies about our disk whose counters are not numbers
start_fakes \
	'{"version":1,"devices":[{"backend_path":"'"$be"'","requests":{"read":"many","write":null}}]}' \
	'{"version":1,"devices":[{"backend_path":"'"$be"'","requests":[1,2]}]}'
check_list "counters that are not numbers"
finish

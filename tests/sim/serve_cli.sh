#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# xbd serve / list / detach from the command line, on the sim: bad input
# gets one clear error line, a non-zero exit and no xenstore change, in
# the same words for the same mistake in every command; every command's
# --help goes to stdout with exit 0; a served disk shows in `xbd list`
# (and its --json), which prints nothing when nothing is served; detach
# removes every node; a killed server's nodes are cleared by detach; a
# VM that never connects the disk makes serve give up cleanly.
. "$(dirname "$0")/../lib/functions.sh"
B=${XBD_BUILD:?XBD_BUILD not set}
XBD=$B/xbd
requires_prog xenstore-ls "package xenstore-utils"

make_workdir xbd-serve-cli /dev/shm
D=$T
export XBD_SIM_DIR=$D XBD_RUN_DIR=$D/run XENSTORED_PATH=$D/xenstored.sock
pids=()
cleanup() {
	local p
	for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done
	"$XBD" sim stop --dir "$D" >/dev/null 2>&1
	[ -f "$D/sim.log" ] && { echo "---- sim log ----"; cat "$D/sim.log"; }
	return 0
}
cleanup_fn cleanup

"$XBD" sim start --dir "$D" || die "cannot start the sim"
"$XBD" sim vm create vm1 --no-guest >/dev/null || die "cannot create vm1"
truncate -s 16M "$D/disk.raw"

dump() { xenstore-ls -f /local/domain 2>/dev/null | sort; }

# One line on stderr, the exit status wanted, xenstore untouched.
expect_error() {
	local want_rc=$1 pattern=$2; shift 2
	local before after rc
	before=$(dump)
	"$XBD" "$@" >"$D/out" 2>"$D/err"
	rc=$?
	after=$(dump)
	if [ "$rc" -ne "$want_rc" ]; then
		fail "xbd $*: exit $rc, wanted $want_rc"; cat "$D/err"
	elif [ "$(grep -c . "$D/err")" -lt 1 ] || ! head -n1 "$D/err" | grep -q -- "$pattern"; then
		fail "xbd $*: error line: $(cat "$D/err")"
	elif [ "$(grep -c . "$D/err")" -ne 1 ] || [ -s "$D/out" ]; then
		fail "xbd $*: more than one line: $(cat "$D/err")"
	elif [ "$before" != "$after" ]; then
		fail "xbd $*: xenstore changed"; diff <(echo "$before") <(echo "$after")
	else
		ok "xbd $* -> $(head -n1 "$D/err")"
	fi
}

expect_error 1 "^xbd: nosuchvm: no such domain$" serve nosuchvm --image "$D/disk.raw"
expect_error 1 "^xbd: $D/missing.raw: No such file or directory$" serve vm1 --image "$D/missing.raw"
expect_error 2 "^xbd: serve: unknown option '--bogus' (see xbd serve --help)$" serve vm1 --image "$D/disk.raw" --bogus
expect_error 2 "^xbd: serve: --image FILE is required$" serve vm1
expect_error 2 "^xbd: serve: --vdev: expected a disk name such as xvdb, got 'xvd1'$" serve vm1 --image "$D/disk.raw" --vdev xvd1
expect_error 2 "^xbd: serve: --backend: expected raw, cow or null, got 'qcow9'$" serve vm1 --image "$D/disk.raw" --backend qcow9
expect_error 2 "^xbd: serve: --sector-size: expected 512 or 4096, got '1024' (see xbd serve --help)$" serve vm1 --image "$D/disk.raw" --sector-size 1024
expect_error 2 "^xbd: serve: --timeout: expected a number from 1 to 86400, got 'soon' (see xbd serve --help)$" serve vm1 --image "$D/disk.raw" --timeout soon
expect_error 2 "^xbd: serve: --log is for the background process" serve vm1 --image "$D/disk.raw" --foreground --log "$D/log"
expect_error 1 "^xbd: $D/nodir/log: No such file or directory$" serve vm1 --image "$D/disk.raw" --log "$D/nodir/log"

# The same mistake in the same words, whichever command makes it.
expect_error 2 "^xbd: unknown option '--frob' (see xbd --help)$" --frob list
expect_error 2 "^xbd: unknown command 'frob' (see xbd --help)$" frob
expect_error 2 "^xbd: missing command (see xbd --help)$"
expect_error 2 "^xbd: --platform needs a value (see xbd --help)$" --platform
expect_error 2 "^xbd: attach: unknown option '--frob' (see xbd attach --help)$" attach vm1 --frob
expect_error 2 "^xbd: list: unknown option '--frob' (see xbd list --help)$" list --frob
expect_error 2 "^xbd: detach: unknown option '--frob' (see xbd detach --help)$" detach vm1 xvdb --frob
expect_error 2 "^xbd: selftest: unknown option '--frob' (see xbd selftest --help)$" selftest --frob
expect_error 2 "^xbd: sim: unknown option '--frob' (see xbd sim --help)$" sim stop --frob
expect_error 2 "^xbd: serve: unknown option '-d' (see xbd serve --help)$" serve vm1 -d xvdb --image "$D/disk.raw"
expect_error 2 "^xbd: attach: unknown option '-d' (see xbd attach --help)$" attach vm1 -d xvda --mount "$D"
expect_error 2 "^xbd: serve: --image needs a value (see xbd serve --help)$" serve vm1 --image
expect_error 2 "^xbd: serve: -i needs a value (see xbd serve --help)$" serve vm1 -i
expect_error 2 "^xbd: attach: --mount needs a value (see xbd attach --help)$" attach vm1 --mount
expect_error 2 "^xbd: detach: --timeout needs a value (see xbd detach --help)$" detach vm1 xvdb --timeout
expect_error 2 "^xbd: serve: --read-only takes no value (see xbd serve --help)$" serve vm1 --image "$D/disk.raw" --read-only=yes
expect_error 2 "^xbd: serve: option '--max' is ambiguous: --max-queues, --max-ring-order (see xbd serve --help)$" serve vm1 --image "$D/disk.raw" --max 2
expect_error 2 "^xbd: list: takes no arguments (see xbd list --help)$" list extra
expect_error 2 "^xbd: selftest: takes no arguments (see xbd selftest --help)$" selftest extra
expect_error 2 "^xbd: serve: missing VM (see xbd serve --help)$" serve --image "$D/disk.raw"
expect_error 2 "^xbd: attach: missing VM (see xbd attach --help)$" attach --mount "$D"
expect_error 2 "^xbd: serve: unexpected argument 'vm2' (see xbd serve --help)$" serve vm1 vm2 --image "$D/disk.raw"
expect_error 2 "^xbd: detach: unexpected argument 'c' (see xbd detach --help)$" detach a b c
expect_error 2 "^xbd: detach: missing DIR or VM VDEV (see xbd detach --help)$" detach
expect_error 2 "^xbd: detach: --timeout is for detach VM VDEV$" detach "$D" --timeout 3
expect_error 2 "^xbd: detach: VDEV: expected a disk name such as xvdb, got 'xvd1'$" detach vm1 xvd1
expect_error 2 "^xbd: attach: --mount DIR is required$" attach vm1
expect_error 2 "^xbd: attach: --disk: expected a disk name such as xvda, got 'sda'$" attach vm1 --mount "$D" --disk sda
expect_error 2 "^xbd: attach: --cow and --rw exclude each other$" attach vm1 --mount "$D" --cow --rw
expect_error 2 "^xbd: sim: unknown sub-command 'frob' (see xbd sim --help)$" sim frob
expect_error 2 "^xbd: sim stop: --disk is for sim vm create$" sim stop --disk "$D/disk.raw"
expect_error 2 "^xbd: sim vm io: missing VDEV (see xbd sim vm io --help)$" sim vm io vm1

# --help and -h: usage on stdout, nothing on stderr, exit 0.
for args in "--help" "-h" "attach --help" "attach -h" "serve --help" "serve -h" \
	"list --help" "selftest --help" "detach --help" "detach -h" "sim --help" \
	"sim vm create --help" "sim vm io --help" "sim blkback --help" "sim guest --help"; do
	# shellcheck disable=SC2086
	"$XBD" $args >"$D/out" 2>"$D/err"
	rc=$?
	if [ $rc -eq 0 ] && grep -q "^usage: xbd" "$D/out" && [ ! -s "$D/err" ]; then
		ok "xbd $args"
	else
		fail "xbd $args: exit $rc, stdout $(head -c 80 "$D/out"), stderr $(cat "$D/err")"
	fi
done
help=$("$XBD" --help)
[ "$(grep -c "^  xbd detach" <<<"$help")" = 1 ] && grep -q "^  xbd detach DIR \[--lazy|--force\] | VM VDEV$" <<<"$help" &&
	ok "xbd --help lists detach once" || fail "xbd --help: detach: $(grep detach <<<"$help")"
long=$(awk 'length > 80' <<<"$help")
[ -z "$long" ] && ok "xbd --help fits 80 columns" || fail "xbd --help: lines over 80: $long"

# Nothing served: `xbd list` prints nothing at all; --json an empty array.
out=$("$XBD" list 2>&1); rc=$?
[ $rc -eq 0 ] && [ -z "$out" ] && ok "list: nothing served, nothing printed" ||
	fail "list with nothing served: exit $rc: $out"
out=$("$XBD" list --json 2>&1)
[ "$out" = "[]" ] && ok "list --json: []" || fail "list --json with nothing served: $out"
expect_error 2 "^xbd: serve: --image: expected a size such as 64M, a multiple of 512, got '12x' (see xbd serve --help)$" serve vm1 --backend null --image 12x
expect_error 1 "No such file or directory" serve vm1 --image "$D/disk.raw" --mount "$D/nowhere"
expect_error 1 "^xbd: vm1: xvdb: no disk served by xbd$" detach vm1 xvdb
expect_error 1 "^xbd: nosuchvm: no such domain$" detach nosuchvm xvdb

# A VM that never connects: serve gives up, exit 1, one line, no nodes.
expect_error 1 "did not connect the disk in time" serve vm1 --image "$D/disk.raw" --timeout 1

# Served (waiting for the guest) in the foreground.
"$XBD" serve vm1 --image "$D/disk.raw" --vdev xvdc --foreground 2>"$D/fg.err" &
fg=$!; pids+=("$fg")
for _ in $(seq 100); do
	xenstore-read /local/domain/0/backend/xbd/1/51744/state >/dev/null 2>&1 && break
	sleep 0.05
done
state=$(xenstore-read /local/domain/0/backend/xbd/1/51744/state 2>/dev/null)
[ "$state" = 2 ] && ok "backend in InitWait" || fail "backend state '$state'"
fe=$(xenstore-read /local/domain/1/device/vbd/51744/backend 2>/dev/null)
[ "$fe" = /local/domain/0/backend/xbd/1/51744 ] && ok "frontend nodes" || fail "frontend backend node '$fe'"
for node in frontend frontend-id online state params mode type feature-flush-cache \
	feature-barrier feature-discard discard-granularity feature-persistent \
	feature-max-indirect-segments max-ring-page-order; do
	xenstore-read "/local/domain/0/backend/xbd/1/51744/$node" >/dev/null 2>&1 ||
		fail "backend node $node missing"
done
[ "$(xenstore-read /local/domain/0/backend/xbd/1/51744/feature-max-indirect-segments)" -ge 256 ] &&
	ok "indirect segments >= 256" || fail "feature-max-indirect-segments"
[ "$(xenstore-read /local/domain/0/backend/xbd/1/51744/max-ring-page-order)" = 4 ] &&
	ok "max-ring-page-order 4" || fail "max-ring-page-order"
perms=$(xenstore-ls -p /local/domain/0/backend/xbd/1 2>/dev/null | head -n1)
[[ "$perms" == *"(n0,r1)"* ]] && ok "backend dir: dom0's, guest reads" || fail "backend perms: $perms"
perms=$(xenstore-ls -p /local/domain/1/device/vbd 2>/dev/null | grep '^51744' | head -n1)
[[ "$perms" == *"(n1,r0)"* ]] && ok "frontend dir: the guest's, dom0 reads" || fail "frontend perms: $perms"

# The same disk again is refused, and changes nothing (another image:
# this one's lock would refuse it first, serve_two_writers.sh tests that).
truncate -s 16M "$D/disk2.raw"
expect_error 1 "^xbd: vm1: xvdc: the VM already has this disk$" serve vm1 --image "$D/disk2.raw" --vdev xvdc

list=$("$XBD" list 2>&1)
echo "$list"
echo "$list" | grep -E "^vm1 +1 xvdc +InitWait +w +raw +$fg " >/dev/null && ok "xbd list" || fail "xbd list"
[ "$(head -n1 <<<"$list" | awk '{print $1, $2, $3}')" = "VM DOMID VDEV" ] &&
	ok "xbd list: header" || fail "xbd list: no header"
json=$("$XBD" list --json 2>&1)
if command -v jq >/dev/null; then
	[ "$(jq -r '.[0] | "\(.vm) \(.domid) \(.vdev) \(.state) \(.mode) \(.format) \(.pid) \(.image)"' <<<"$json")" = \
	  "vm1 1 xvdc InitWait w raw $fg $D/disk.raw" ] && [ "$(jq length <<<"$json")" = 1 ] &&
		ok "xbd list --json" || fail "xbd list --json: $json"
else
	grep -q '"vdev":"xvdc"' <<<"$json" && ok "xbd list --json (no jq)" || fail "xbd list --json: $json"
fi

"$XBD" detach vm1 xvdc && ok "detach" || fail "detach exit $?"
wait "$fg"; rc=$?
[ "$rc" = 0 ] && ok "serve --foreground exited 0" || fail "serve exit $rc: $(cat "$D/fg.err")"
xenstore-ls /local/domain/0/backend/xbd >/dev/null 2>&1 && fail "backend/xbd still there"
xenstore-read /local/domain/1/device/vbd/51744/state >/dev/null 2>&1 && fail "frontend node still there"
[ -z "$("$XBD" list)" ] && ok "list: empty again" || fail "list not empty"

# SIGTERM while waiting: nodes removed, exit 0.
"$XBD" serve vm1 --image "$D/disk.raw" --vdev xvdd --foreground 2>"$D/fg.err" &
fg=$!; pids+=("$fg")
for _ in $(seq 100); do
	xenstore-read /local/domain/0/backend/xbd/1/51760/state >/dev/null 2>&1 && break
	sleep 0.05
done
kill -TERM "$fg"; wait "$fg"; rc=$?
[ "$rc" = 0 ] && ok "SIGTERM: exit 0" || fail "SIGTERM: exit $rc"
xenstore-ls /local/domain/0/backend/xbd >/dev/null 2>&1 && fail "SIGTERM: nodes left"

# kill -9: the nodes stay until detach clears them up.
"$XBD" serve vm1 --image "$D/disk.raw" --vdev xvde --foreground 2>/dev/null &
fg=$!; pids+=("$fg")
for _ in $(seq 100); do
	xenstore-read /local/domain/0/backend/xbd/1/51776/state >/dev/null 2>&1 && break
	sleep 0.05
done
kill -9 "$fg"; wait "$fg" 2>/dev/null
xenstore-read /local/domain/0/backend/xbd/1/51776/state >/dev/null 2>&1 &&
	ok "kill -9 leaves the nodes" || fail "nodes vanished after kill -9"
"$XBD" detach vm1 xvde && ok "detach after kill -9" || fail "detach after kill -9"
xenstore-ls /local/domain/0/backend/xbd >/dev/null 2>&1 && fail "kill -9: backend nodes left"
xenstore-read /local/domain/1/device/vbd/51776/state >/dev/null 2>&1 && fail "kill -9: frontend nodes left"

# The sim's blkback stand-in answers (when `xbd sim` routes to it).
if "$XBD" sim blkback --help 2>&1 | grep -q "as Linux blkback does"; then
	ok "xbd sim blkback --help"
else
	echo "note: xbd sim blkback is not routed by cmd_sim yet"
fi

finish

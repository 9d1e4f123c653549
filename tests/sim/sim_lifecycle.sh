#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end: the sim's life as a user sees it.  Start, two VMs with the
# xenstore nodes a toolstack writes (read with the stock xenstore-* tools),
# list, destroy (nodes gone, guest process killed), clear errors for
# duplicate and unknown names and for a second start on the same
# directory, and a stop that leaves no process and no socket behind.
. "$(dirname "$0")/../lib/functions.sh"

for t in xenstore-ls xenstore-read xenstore-list; do
	requires_prog "$t" "package xenstore-utils"
done

xbd=${XBD_BUILD:?XBD_BUILD must name the build directory}/xbd
make_workdir xbd-lifecycle
d=$T
export XENSTORED_PATH=$d/xenstored.sock
export XBD_SIM_KEEP_LOG=1 # printed at the end: the runner greps it

cleanup() {
	"$xbd" sim stop --dir "$d" >/dev/null 2>&1
	# the daemon's log, where a sanitizer would have reported
	[ -f "$d/sim.log" ] && { echo "---- sim.log ----"; cat "$d/sim.log"; }
	rm -f "$d.err"
}
cleanup_fn cleanup

# expect_err DESC WANT CMD...: CMD fails, with exactly WANT on stderr
# and nothing on stdout.
expect_err() {
	local desc=$1 want=$2 out err rc
	shift 2
	out=$("$@" 2>"$d.err"); rc=$?
	err=$(cat "$d.err"); rm -f "$d.err"
	if [ $rc -eq 0 ]; then
		fail "$desc: '$*' succeeded"
	elif [ "$err" != "$want" ] || [ -n "$out" ]; then
		fail "$desc: '$*' said '$out' / '$err', expected '$want'"
	else
		ok "$desc"
	fi
}

alive() { kill -0 "$1" 2>/dev/null && ! grep -q '^State:.*Z' "/proc/$1/status" 2>/dev/null; }
dead() { ! alive "$1"; }

# --- start ------------------------------------------------------------
if "$xbd" sim start --dir "$d" --owner-pid $$; then ok "start"; else
	die "start"
fi
pid=$(cat "$d/pid")
[ -S "$d/ctl.sock" ] && [ -S "$d/xenstored.sock" ] && alive "$pid" &&
	ok "daemon $pid serves ctl.sock and xenstored.sock" ||
	fail "after start: pid '$pid', $(ls "$d")"
expect_err "a second start on the same directory is refused" \
	"xbd: $d: already in use by a running simulator (pid $pid)" \
	"$xbd" sim start --dir "$d"
alive "$pid" && ok "the first sim survives it" || fail "the first sim died"
expect_out "Domain-0 in xenstore" "Domain-0" xenstore-read /local/domain/0/name

# --- two VMs ----------------------------------------------------------
expect_out "create vm1 prints its domid" "1" "$xbd" sim vm create vm1 --dir "$d"
expect_out "create vm2 (running a guest process)" "2" \
	"$xbd" sim vm create vm2 --dir "$d" -- sleep 600
expect_out "list" "0 Domain-0
1 vm1
2 vm2" "$xbd" sim vm list --dir "$d"
expect_out "XBD_SIM_DIR picks the sim" "0 Domain-0
1 vm1
2 vm2" env XBD_SIM_DIR="$d" "$xbd" sim vm list
expect_out "vm1's name" "vm1" xenstore-read /local/domain/1/name
expect_out "vm2's domid" "2" xenstore-read /local/domain/2/domid
ls_out=$(xenstore-ls -p /local/domain/2 2>&1)
for node in 'device = ""' 'data = ""' 'control = ""' 'store = ""'; do
	grep -q "^$node" <<<"$ls_out" && ok "xenstore-ls shows vm2's $node" ||
		fail "xenstore-ls /local/domain/2 lacks '$node': $ls_out"
done
grep -qE '^name = "vm2".*\(n0,r2\)' <<<"$ls_out" &&
	ok "vm2's name: owned by dom0, readable by vm2" ||
	fail "permissions of /local/domain/2/name: $ls_out"
grep -qE '^device = "".*\(n2\)' <<<"$ls_out" &&
	ok "vm2's device/: owned by vm2" ||
	fail "permissions of /local/domain/2/device: $ls_out"
[ -S "$d/xs-dom2.sock" ] && ok "vm2 is introduced to xenstored" ||
	fail "no xs-dom2.sock"
guest=$(pgrep -f '^sleep 600$' -P "$pid" | head -1)
[ -n "$guest" ] && ok "vm2's guest process runs (pid $guest)" ||
	fail "no guest process for vm2"
vmpath=$(xenstore-read /local/domain/2/vm 2>/dev/null)
expect_out "vm2's /vm entry" "vm2" xenstore-read "$vmpath/name"

# --- errors -----------------------------------------------------------
expect_err "duplicate name" "xbd: vm1: domain already exists" \
	"$xbd" sim vm create vm1 --dir "$d"
expect_err "unknown name" "xbd: vm9: no such domain" \
	"$xbd" sim vm destroy vm9 --dir "$d"
expect_err "dom0 stays" "xbd: Domain-0: dom0 cannot be destroyed" \
	"$xbd" sim vm destroy Domain-0 --dir "$d"
expect_err "a bad name" \
	"xbd: a/b: invalid domain name (up to 63 letters, digits or -_.+:@, not only digits)" \
	"$xbd" sim vm create a/b --dir "$d"
expect_err "a guest that cannot run" \
	"xbd: vm3: cannot start guest '/nonexistent/guest': No such file or directory" \
	"$xbd" sim vm create vm3 --dir "$d" -- /nonexistent/guest
expect_err "no sim there" \
	"xbd: $d/none: no simulator running (start one with \`xbd sim start\`)" \
	"$xbd" sim vm list --dir "$d/none"

# --- destroy ----------------------------------------------------------
expect_out "destroy vm2" "" "$xbd" sim vm destroy vm2 --dir "$d"
expect_out "list after destroy" "0 Domain-0
1 vm1" "$xbd" sim vm list --dir "$d"
if xenstore-read /local/domain/2/name >/dev/null 2>&1; then
	fail "/local/domain/2 is still there"
else
	ok "vm2's xenstore nodes are gone"
fi
if xenstore-read "$vmpath/name" >/dev/null 2>&1; then
	fail "$vmpath is still there"
else
	ok "vm2's /vm entry is gone"
fi
expect_out "vm1's nodes stay" "vm1" xenstore-read /local/domain/1/name
[ ! -e "$d/xs-dom2.sock" ] && ok "vm2 is released from xenstored" ||
	fail "xs-dom2.sock still there"
if [ -n "$guest" ]; then
	wait_for 5 dead "$guest" && ok "vm2's guest process is killed" ||
		fail "guest $guest still runs"
fi
# 3 went to the vm3 that failed: as in Xen, ids are not reused
expect_out "a new domain gets a fresh id" "4" "$xbd" sim vm create vm2 --dir "$d"

# --- stop -------------------------------------------------------------
expect_out "stop" "" "$xbd" sim stop --dir "$d"
dead "$pid" && ok "the daemon is gone" || fail "daemon $pid still runs"
left=$(cd "$d" && ls -A | grep -v '^sim.log$')
[ -z "$left" ] && ok "no socket or state file left" || fail "left in $d: $left"
[ -f "$d/sim.log" ] && ok "XBD_SIM_KEEP_LOG keeps the log" || fail "no sim.log"
echo "---- sim.log of the first run ----"; cat "$d/sim.log"
expect_err "stop again" \
	"xbd: $d: no simulator running (start one with \`xbd sim start\`)" \
	"$xbd" sim stop --dir "$d"

# --- the directory can be used again ------------------------------------
expect_out "restart" "" "$xbd" sim start --dir "$d" --owner-pid $$
expect_out "a restarted sim starts from scratch" "0 Domain-0" \
	"$xbd" sim vm list --dir "$d"
expect_out "stop the restarted sim" "" env -u XBD_SIM_KEEP_LOG "$xbd" sim stop --dir "$d"
left=$(cd "$d" && ls -A)
[ -z "$left" ] && ok "a clean stop leaves an empty directory" || fail "left in $d: $left"

finish

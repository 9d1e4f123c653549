#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# xbdsh when things are wrong: a killed xbd process is reported as gone
# within a second, a stopped one as not answering within its deadline,
# an unknown VM, no permission, no Xen: each one clear line, a non-zero
# exit, never a hang.
. "$(dirname "$0")/xbdsh_common.inc"

start_fake pa vm1:5:xvdb
start_fake pb vm1:5:xvdc

run_timed "$xbdsh" --xbd-only stats vm1 --json
if [ $rc -eq 0 ] && [ "$(jq '.disks | length' "$T/out")" = 2 ]; then
	ok "both processes answer"
else
	fail "stats vm1: rc $rc: $(cat "$T/err")"
fi

# Killed: its socket stays behind and nobody listens.
kill_now "$pa"
test -S "$XBD_RUN_DIR/xbd-$pa.sock" && ok "a killed process leaves its socket" ||
	fail "no stale socket to test with"
run_timed timeout 10 "$xbdsh" --xbd-only stats vm1 --json
if [ $rc -eq 1 ] && [ "$ms" -lt 1000 ] &&
   grep -q "^xbdsh: xbd process $pa is gone" "$T/err" &&
   [ "$(wc -l <"$T/err")" -eq 1 ] &&
   [ "$(jq -r '[.disks[].vdev] | join(",")' "$T/out")" = xvdc ]; then
	ok "killed process: one line in ${ms} ms, exit 1, the other disk shown"
else
	fail "killed process: rc $rc, ${ms} ms, stderr: $(cat "$T/err")"
fi
test -S "$XBD_RUN_DIR/xbd-$pa.sock" && fail "stale socket still there" ||
	ok "the stale socket is removed"
run_timed "$xbdsh" --xbd-only stats vm1 --json
[ $rc -eq 0 ] && [ ! -s "$T/err" ] && ok "reported once" ||
	fail "after removal: rc $rc: $(cat "$T/err")"

# Text output of a VM whose only process is gone (two looks for rates).
start_fake pc vm3:8:xvda
kill_now "$pc"
run_timed timeout 10 "$xbdsh" --xbd-only stats vm3
if [ $rc -eq 1 ] && [ "$ms" -lt 1000 ] && grep -q "xbd process $pc is gone" "$T/err" &&
   grep -q "^xbdsh: vm3: no xbd process has a disk of this VM" "$T/err"; then
	ok "gone process, its VM unknown: ${ms} ms"
else
	fail "vm3: rc $rc, ${ms} ms: $(cat "$T/err")"
fi

# Stopped: alive but not answering; the deadline is one second.
kill -STOP "$pb"
run_timed timeout 10 "$xbdsh" --xbd-only stats vm1 --json
if [ $rc -eq 1 ] && [ "$ms" -lt 2000 ] &&
   grep -q "xbd process $pb does not answer" "$T/err"; then
	ok "stopped process: reported in ${ms} ms"
else
	fail "stopped process: rc $rc, ${ms} ms: $(cat "$T/err")"
fi
run_timed timeout 10 "$xbdsh" --xbd-only list
[ $rc -eq 1 ] && [ "$ms" -lt 2000 ] && grep -q "does not answer" "$T/err" &&
	ok "list with a stopped process: ${ms} ms, exit 1" ||
	fail "list: rc $rc, ${ms} ms: $(cat "$T/err")"
kill -CONT "$pb"

# Unknown VM.
run_timed timeout 10 "$xbdsh" --xbd-only stats nosuch
if [ $rc -eq 1 ] && [ "$(cat "$T/err")" = "xbdsh: nosuch: no xbd process has a disk of this VM" ] &&
   [ ! -s "$T/out" ]; then
	ok "unknown VM: one line"
else
	fail "unknown VM: rc $rc: $(cat "$T/err")"
fi
run_timed timeout 10 "$xbdsh" --xbd-only ring vm1 xvdz
if [ $rc -eq 1 ] && grep -q "^xbdsh: vm1: no disk 'xvdz' (disks: xvdc)$" "$T/err"; then
	ok "unknown disk: one line naming the disks"
else
	fail "unknown disk: rc $rc: $(cat "$T/err")"
fi

# No permission: the run directory is root's, mode 0700.
if [ "$(id -u)" = 0 ] && command -v setpriv >/dev/null; then
	chmod 755 "$T" # the binaries and the build are readable; run/ is not
	run_timed timeout 10 setpriv --reuid=nobody --regid=nogroup --clear-groups \
		"$xbdsh" --xbd-only stats vm1
	if [ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] &&
	   grep -q "^xbdsh: needs root (.*Permission denied)$" "$T/err"; then
		ok "not root: one line"
	else
		fail "not root: rc $rc: $(cat "$T/err")"
	fi
else
	echo "note: not root: permission case not run"
fi

# No Xen on this machine (or no sim where one was asked for).
if [ ! -e /proc/xen/capabilities ]; then
	run_timed timeout 10 "$xbdsh" --platform xen list
	[ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "^xbdsh: Xen: " "$T/err" &&
		ok "no Xen: one line ($(cat "$T/err"))" ||
		fail "no Xen: rc $rc: $(cat "$T/err")"
fi
XBD_SIM_DIR=$T/nosim run_timed timeout 10 "$xbdsh" --platform sim stats vm1
[ $rc -eq 1 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && grep -q "xbd sim start" "$T/err" &&
	ok "no sim: one line" || fail "no sim: rc $rc: $(cat "$T/err")"

# Usage errors: exit 2, one line.
for args in "stats" "stats vm1 -w 0" "stats vm1 -n 3" "ring vm1" "frob" "stats vm1 --frob" \
	"list extra" "ring --frob" "list -x" "watch" "stats vm1 -w" "help a b" "--frob list"; do
	run_timed "$xbdsh" --xbd-only $args
	[ $rc -eq 2 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && [ ! -s "$T/out" ] &&
		ok "usage: xbdsh $args: $(cat "$T/err")" ||
		fail "usage: xbdsh $args: rc $rc: $(cat "$T/err")"
done
# ... in the same words as xbd's
expect_line() {
	local want=$1
	shift
	run_timed "$xbdsh" --xbd-only "$@"
	[ $rc -eq 2 ] && [ "$(cat "$T/err")" = "$want" ] && ok "xbdsh $*: $want" ||
		fail "xbdsh $*: rc $rc: $(cat "$T/err") (wanted: $want)"
}
expect_line "xbdsh: stats: unknown option '--frob' (see xbdsh stats --help)" stats vm1 --frob
expect_line "xbdsh: ring: missing DISK (see xbdsh ring --help)" ring vm1
expect_line "xbdsh: list: takes no arguments (see xbdsh list --help)" list extra
expect_line "xbdsh: stats: -w needs a value (see xbdsh stats --help)" stats vm1 -w
expect_line "xbdsh: unknown command 'frob' (see xbdsh --help)" frob
# in the shell, the hint is what one types there
printf 'stats vm1 --frob\nfrob\n' >"$T/in"
run_timed "$xbdsh" --xbd-only <"$T/in"
[ $rc -eq 2 ] && [ "$(cat "$T/err")" = "xbdsh: stats: unknown option '--frob' (see stats --help)
xbdsh: unknown command 'frob' (see help)" ] && ok "shell: the hints name shell commands" ||
	fail "shell hints: rc $rc: $(cat "$T/err")"

# --help of every command: usage on stdout, exit 0, nothing on stderr.
for args in "--help" "-h" "list --help" "stats --help" "watch -h" "ring --help" "help ring"; do
	run_timed "$xbdsh" --xbd-only $args
	[ $rc -eq 0 ] && grep -q "^usage: xbdsh" "$T/out" && [ ! -s "$T/err" ] &&
		ok "xbdsh $args" || fail "xbdsh $args: rc $rc: $(head -c 200 "$T/out") $(cat "$T/err")"
done
run_timed "$xbdsh" -V
[ $rc -eq 0 ] && grep -q "^xbdsh [0-9]" "$T/out" && ok "xbdsh -V" || fail "xbdsh -V: rc $rc"
run_timed "$xbdsh" help
long=$(awk 'length > 80' "$T/out")
[ $rc -eq 0 ] && [ -z "$long" ] && ok "xbdsh help fits 80 columns" ||
	fail "xbdsh help: rc $rc, lines over 80: $long"

finish

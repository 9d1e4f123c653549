#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Bad arguments and missing privileges, from the command line.
# Every bad number or size given to an option of xbd or xbdsh exits 2
# (packaging/man/xbd.8, EXIT STATUS) with one line on stderr, before
# anything is created.  A user who is not root gets one line
# "PROG: needs root (...)" and exit 1 from every command that needs the
# platform or the control sockets, on the sim (whose files are root's)
# and on Xen (asked for with --platform xen; there is none here, or its
# devices are root's).
. "$(dirname "$0")/../lib/functions.sh"
B=${XBD_BUILD:?XBD_BUILD not set}
xbd=$B/xbd
xbdsh=$B/xbdsh

make_workdir xbd-cli-errors /dev/shm
export XBD_SIM_DIR=$T/sim XBD_RUN_DIR=$T/run XENSTORED_PATH=$T/sim/xenstored.sock
unset XBD_PLATFORM
cleanup() {
	"$xbd" sim stop --dir "$T/sim" >/dev/null 2>&1
	return 0
}
cleanup_fn cleanup

"$xbd" sim start --dir "$T/sim" >"$T/sim.out" 2>&1 || die "xbd sim start: $(cat "$T/sim.out")"
"$xbd" sim vm create vm1 --no-guest >/dev/null || die "cannot create vm1"
truncate -s 1M "$T/disk.raw"
mkdir -p "$T/mnt" "$T/run"
chmod 700 "$T/run"

# expect RC PATTERN PROG ARGS...: exit RC, exactly one line on stderr
# matching PATTERN, nothing on stdout.
expect() {
	local want=$1 pattern=$2 rc
	shift 2
	timeout 20 "$@" >"$T/out" 2>"$T/err" </dev/null
	rc=$?
	if [ $rc -ne "$want" ]; then
		fail "${*}: exit $rc, wanted $want: $(head -c 300 "$T/err")"
	elif [ "$(wc -l <"$T/err")" -ne 1 ] || [ -s "$T/out" ]; then
		fail "${*}: not one line: $(head -c 300 "$T/err") $(head -c 100 "$T/out")"
	elif ! grep -q -- "$pattern" "$T/err"; then
		fail "${*}: $(cat "$T/err") (wanted $pattern)"
	else
		ok "$(cat "$T/err")"
	fi
}

# --- bad numbers and sizes: exit 2, one line ---
usage="(see xbd[sh]* .*--help)$"
img=(--image "$T/disk.raw")
for v in junk 4Q 0 1000 -1 " 1G" 99999999999999999999T; do
	expect 2 "--image: expected a size.*$usage" "$xbd" serve vm1 --backend null --image "$v"
	expect 2 "--bs: expected a size.*$usage" "$xbd" sim vm io vm1 xvda --rw read --bs "$v"
done
for v in junk 0 4Q -1 1.5M; do
	expect 2 "--size: expected a size.*$usage" "$xbd" sim vm io vm1 xvda --rw read --size "$v"
done
for v in junk -1 0x10 99999999999999999999999; do
	expect 2 "--pattern: expected a number.*$usage" "$xbd" sim vm io vm1 xvda --rw read --pattern "$v"
done
for v in 0 -1 1e999 nan x 100000; do
	expect 2 "--time: expected seconds.*$usage" "$xbd" sim vm io vm1 xvda --rw read --time "$v"
done
for v in 0 1025 x; do
	expect 2 "--qd: expected a number.*$usage" "$xbd" sim vm io vm1 xvda --rw read --qd "$v"
done
for o in --timeout --max-queues --max-ring-order --indirect-segments \
	--persistent-grants --workers; do
	expect 2 "$o: expected a number.*$usage" "$xbd" serve vm1 "${img[@]}" "$o" 1k
	expect 2 "$o: expected a number.*$usage" "$xbd" serve vm1 "${img[@]}" "$o" 99999999999
done
expect 2 "--sector-size: expected 512 or 4096.*$usage" "$xbd" serve vm1 "${img[@]}" --sector-size 4k
expect 2 "--timeout: expected a number.*$usage" "$xbd" detach --timeout 0 "$T/mnt"
expect 2 "--owner-pid: expected a process id.*$usage" "$xbd" sim start --dir "$T/sim2" --owner-pid -5
expect 2 "--domid: expected a guest domain id.*$usage" "$xbd" sim guest --domid 0x1
for v in "$T/disk.raw,junk" "$T/disk.raw," ",xvdb"; do
	expect 2 "--disk: expected FILE.*$usage" "$xbd" sim vm create vm2 --no-guest --disk "$v"
done
"$xbd" sim vm destroy vm2 >/dev/null 2>&1 && fail "a bad --disk created vm2"
for v in 0 0.01 x 1e999; do
	expect 2 "-w: expected seconds.*$usage" "$xbdsh" --xbd-only stats vm1 -w "$v"
done
for v in 0 -1 x; do
	expect 2 "-n: expected a positive count.*$usage" "$xbdsh" --xbd-only stats vm1 -w 1 -n "$v"
done

# --- not root: one line "needs root", exit 1 ---
if [ "$(id -u)" -ne 0 ]; then
	echo "note: not root: the needs-root cases are not run"
	finish
fi
requires_prog setpriv
nobody=(setpriv --reuid=65534 --regid=65534 --clear-groups)
"${nobody[@]}" test -x "$xbd" ||
	{ echo "note: nobody cannot run $xbd: the needs-root cases are not run"; finish; }
chmod 755 "$T"
chmod 777 "$T/mnt"
nr="^xbd: needs root (to use the simulated Xen at $T/sim: Permission denied)$"
expect 1 "$nr" "${nobody[@]}" "$xbd" list
expect 1 "$nr" "${nobody[@]}" "$xbd" attach vm1 --mount "$T/mnt"
expect 1 "$nr" "${nobody[@]}" "$xbd" serve vm1 "${img[@]}"
expect 1 "$nr" "${nobody[@]}" "$xbd" detach vm1 xvdb
# xbdsh reads the control sockets first (root's directory), then xenstore
nrsh="^xbdsh: needs root (to read the xbd processes' sockets in $T/run: Permission denied)$"
expect 1 "$nrsh" "${nobody[@]}" "$xbdsh" stats vm1
expect 1 "$nrsh" "${nobody[@]}" "$xbdsh" list
expect 1 "$nrsh" "${nobody[@]}" "$xbdsh" --xbd-only list
export XBD_RUN_DIR=$T/norun # no xbd process: straight to xenstore
nrsh="^xbdsh: needs root (to use the simulated Xen at $T/sim: Permission denied)$"
expect 1 "$nrsh" "${nobody[@]}" "$xbdsh" stats vm1
expect 1 "$nrsh" "${nobody[@]}" "$xbdsh" list
# Xen, which this machine does not run (or whose devices are root's)
unset XENSTORED_PATH XBD_SIM_DIR
expect 1 "^xbd: needs root (to use Xen" "${nobody[@]}" "$xbd" --platform xen list
expect 1 "^xbd: needs root (to use Xen" "${nobody[@]}" "$xbd" --platform xen serve vm1 "${img[@]}"
expect 1 "^xbdsh: needs root (to use Xen" "${nobody[@]}" "$xbdsh" --platform xen list
expect 1 "^xbdsh: needs root (to use Xen" "${nobody[@]}" "$xbdsh" --platform xen stats vm1
# root is told what is really wrong
if [ ! -e /proc/xen/capabilities ]; then
	expect 1 "^xbd: Xen: .*(is this a dom0" "$xbd" --platform xen list
fi
finish

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# xbdsh against real xbd processes on the simulated Xen.  vm1 has a disk
# the sim's blkback serves (xvda) and one that `xbd serve` hot-plugs
# (xvdb); the VM's simulated guest reads them.
#   - a known workload (1000 reads of 8 sectors) moves xvdb's counters by
#     exactly that: rd_req +1000, rd_sect +8000; the read latency
#     histogram counts every read;
#   - counters and rates grow while the guest reads (stats -w);
#   - xvda: ring mapped read-only, in flight from its indices;
#   - `xbd attach` shows up as a second, attach-role device of vm1 whose
#     counters grow while its FUSE file is read;
#   - the serving process killed: said within a second.
. "$(dirname "$0")/xbdsh_common.inc"

requires_prog xenstore-read "package xenstore-utils"
"$xbd" serve --help >/dev/null 2>&1 || skip "xbd serve is not built yet"
"$xbd" sim vm io --help 2>&1 | grep -q -- --rw ||
	skip "xbd sim vm io (the sim guest's workloads) is not available yet"
start_sim
export XBD_ATTACH_LOG=$T/attach.log XBD_SIM_KEEP_LOG=1
mnt=

cleanup_serve() {
	[ -n "$mnt" ] && mountpoint -q "$mnt" 2>/dev/null &&
		{ timeout 40 "$xbd" detach "$mnt" >/dev/null 2>&1 || umount -l "$mnt"; }
	timeout 20 "$xbd" detach vm1 xvdb >/dev/null 2>&1
	# where the daemons' sanitizers report: the runner greps this output
	for f in "$T/serve.log" "$T/attach.log" "$sim_dir/sim.log"; do
		[ -s "$f" ] && { echo "---- $f ----"; tail -n 100 "$f"; }
	done
}
cleanup_fn cleanup_serve

truncate -s 32M "$T/a.img" "$T/b.img"
if ! out=$("$xbd" sim vm create vm1 --disk "$T/a.img,xvda" 2>&1); then
	case "$out" in
	*usage*|*unknown*) skip "xbd sim vm create --disk is not available yet" ;;
	esac
	die "vm create: $out"
fi
domid=$(echo "$out" | tail -n1)
# the sim's blkback takes xvda; if this sim runs none, the test does
be=/local/domain/0/backend/vbd/$domid/51712
if ! wait_for 3 eval '[ "$(xenstore-read $be/state 2>/dev/null)" = 4 ]'; then
	"$xbd" sim blkback >"$T/blkback.log" 2>&1 &
	pids+=($!)
fi
wait_for 10 eval '[ "$(xenstore-read /local/domain/'"$domid"'/device/vbd/51712/state 2>/dev/null)" = 4 ]' ||
	die "vm1's guest did not connect xvda"
if ! "$xbd" serve vm1 --image "$T/b.img" --vdev xvdb --timeout 20 --log "$T/serve.log" \
	>"$T/serve.out" 2>&1; then
	die "xbd serve: $(cat "$T/serve.out")"
fi
ok "vm1 (domain $domid): xvda from the sim's blkback, xvdb from xbd serve"

io() { "$xbd" sim vm io vm1 "$@" >"$T/io.out" 2>&1 || fail "io $*: $(cat "$T/io.out")"; }
j() { jq -r "$2" "$1"; }
xvdb() { j "$1" '.disks[] | select(.vdev == "xvdb" and .role == "guest") | '"$2"; }
snap() { timeout 10 "$xbdsh" stats vm1 --json >"$1" 2>"$T/err" || fail "stats: $(cat "$T/err")"; }

io xvdb --rw write --bs 64k --qd 4 --size 4M --pattern 5
snap "$T/s0"
[ "$(xvdb "$T/s0" .backend)" = xbd ] && [ "$(xvdb "$T/s0" .xbd.role)" = serve ] &&
	ok "xvdb: served by xbd, numbers from its process" || fail "xvdb: $(xvdb "$T/s0" .)"
io xvdb --rw read --bs 4k --qd 1 --size 4000k --verify --pattern 5
snap "$T/s1"
d_req=$(( $(xvdb "$T/s1" .counters.rd_req) - $(xvdb "$T/s0" .counters.rd_req) ))
d_sect=$(( $(xvdb "$T/s1" .counters.rd_sect) - $(xvdb "$T/s0" .counters.rd_sect) ))
[ "$d_req" = 1000 ] && [ "$d_sect" = 8000 ] &&
	ok "1000 reads of 8 sectors: rd_req +1000, rd_sect +8000" ||
	fail "1000 reads of 8 sectors counted as rd_req +$d_req, rd_sect +$d_sect"
[ "$(xvdb "$T/s1" .latency.read.count)" = "$(xvdb "$T/s1" .counters.rd_req)" ] &&
	ok "the read latency histogram counts every read" ||
	fail "histogram $(xvdb "$T/s1" .latency.read.count) != reads $(xvdb "$T/s1" .counters.rd_req)"
[ "$(xvdb "$T/s1" .in_flight)" = 0 ] && ok "nothing in flight when idle" ||
	fail "in flight when idle: $(xvdb "$T/s1" .in_flight)"
check_json_doc "document with real processes" "$T/s1"
# the sim's blkback is an xbd process too: its numbers, else the mapped ring
src=$(j "$T/s1" '.disks[] | select(.vdev == "xvda" and .role == "guest") | .ring.source')
[ "$(j "$T/s1" '.disks[] | select(.vdev == "xvda" and .role == "guest") | .backend')" = blkback ] &&
[[ "$src" == xbd || "$src" == mapped ]] &&
	ok "xvda: the sim's blkback, ring seen ($src)" ||
	fail "xvda: $(j "$T/s1" '.disks[] | select(.vdev == "xvda") | {backend, ring, note}')"

# Counters grow while the guest reads.
"$xbd" sim vm io vm1 xvdb --rw randread --bs 4k --qd 8 --time 3 >"$T/io2.out" 2>&1 &
iop=$!
pids+=($iop)
sleep 0.5
timeout 20 "$xbdsh" stats vm1 --json -w 0.5 -n 3 </dev/zero >"$T/w" 2>"$T/err" || true
wait "$iop" || fail "background read: $(cat "$T/io2.out")"
r2=$(tail -n1 "$T/w" | jq '.disks[] | select(.vdev == "xvdb" and .role == "guest") | .rates.rd_req')
c1=$(head -n1 "$T/w" | jq '.disks[] | select(.vdev == "xvdb" and .role == "guest") | .counters.rd_req')
c3=$(tail -n1 "$T/w" | jq '.disks[] | select(.vdev == "xvdb" and .role == "guest") | .counters.rd_req')
if [ "$(wc -l <"$T/w")" = 3 ] && [ "$c3" -gt "$c1" ] &&
   awk -v r="$r2" 'BEGIN { exit !(r > 0) }'; then
	ok "while the guest reads: rd_req $c1 -> $c3, $r2 reads/s"
else
	fail "stats -w while reading: $(wc -l <"$T/w") docs, $c1 -> $c3, rate $r2: $(cat "$T/err")"
fi

# xbd attach: a second, attach-role device of vm1
if [ -c /dev/fuse ] && [ "$(id -u)" = 0 ]; then
	mnt=$T/mnt
	mkdir -p "$mnt"
	if "$xbd" attach vm1 --mount "$mnt" --disk xvda >"$T/attach.out" 2>&1; then
		snap "$T/a0"
		dd if="$mnt/xvda" of=/dev/null bs=1M count=8 status=none
		snap "$T/a1"
		att() { j "$1" '.disks[] | select(.vdev == "xvda" and .role == "attach") | '"$2"; }
		if [ "$(att "$T/a1" .xbd.role)" = attach ] &&
		   [ "$(att "$T/a1" .counters.rd_sect)" -gt "$(att "$T/a0" .counters.rd_sect)" ]; then
			ok "attach: listed with vm1, counters grow while its file is read"
		else
			fail "attach: $(att "$T/a1" '{backend, counters, note}')"
		fi
		timeout 40 "$xbd" detach "$mnt" >/dev/null 2>&1 || fail "detach $mnt"
	else
		fail "xbd attach: $(cat "$T/attach.out")"
	fi
else
	echo "note: no FUSE here: attach part not run"
fi

# The serving process dies.
spid=$(xvdb "$T/s1" .xbd_pid)
if [ -n "$spid" ] && [ "$spid" != null ]; then
	kill -KILL "$spid"
	wait_for 5 eval '! kill -0 '"$spid"' 2>/dev/null'
	run_timed timeout 10 "$xbdsh" stats vm1 --json
	if [ $rc -eq 1 ] && [ "$ms" -lt 1000 ] && grep -q "xbd process $spid is gone" "$T/err" &&
	   grep -q "vm1: xvdb: served by xbd, but no xbd process answers for it" "$T/err"; then
		ok "serve killed: said in ${ms} ms"
	else
		fail "serve killed: rc $rc, ${ms} ms: $(cat "$T/err")"
	fi
else
	fail "xbdsh names no xbd process for xvdb"
fi

finish

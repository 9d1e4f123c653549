#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# xbdsh and a disk QEMU serves (backend/qdisk): its counters come from
# QEMU's QMP socket (a fake QEMU, test_qmp --serve, answering
# query-blockstats as QEMU 7.2 does, node "xvda-raw") in text, JSON and
# Prometheus output; with no QEMU listening the disk says why it has
# none, and xbdsh still answers in time.
. "$(dirname "$0")/xbdsh_common.inc"

requires_prog xenstore-write "package xenstore-utils"
requires_prog jq "package jq"
fake_qemu=$B/tests/test_qmp
[ -x "$fake_qemu" ] || die "$fake_qemu is not built"
start_sim
"$xbd" sim vm create vm1 --no-guest >"$T/vm.out" 2>&1 || die "vm create: $(cat "$T/vm.out")"
FE=/local/domain/1/device/vbd/51712
BE=/local/domain/0/backend/qdisk/1/51712
xenstore-write $FE/backend $BE $FE/backend-id 0 $FE/state 4 \
	$BE/frontend $FE $BE/frontend-id 1 $BE/dev xvda $BE/state 4 \
	$BE/params aio:/srv/vm1.raw $BE/mode w || die "cannot write vm1's qdisk nodes"

export XBD_QMP_DIR=$T/qmp
mkdir -p "$XBD_QMP_DIR"
: >"$T/qemu.out"
"$fake_qemu" --serve "$XBD_QMP_DIR/qmp-libxl-1" >"$T/qemu.out" 2>"$T/qemu.err" &
pids+=($!)
qemu_pid=$!
wait_for 10 grep -q '^ready' "$T/qemu.out" || die "the fake QEMU did not start: $(cat "$T/qemu.err")"

run_timed "$xbdsh" stats vm1 --json
q() { jq -r ".disks[] | select(.vdev == \"xvda\") | $1" "$T/out"; }
if [ $rc -eq 0 ] && [ "$(q .backend)" = qdisk ] &&
   [ "$(q .counters.rd_req)" = 600 ] && [ "$(q .counters.wr_req)" = 256 ] &&
   [ "$(q .counters.f_req)" = 7 ] && [ "$(q .counters.ds_req)" = 3 ] &&
   [ "$(q .counters.rd_sect)" = $((17301504 / 512)) ] &&
   [ "$(q .counters.wr_sect)" = $((1048576 / 512)) ]; then
	ok "stats --json: QEMU's counters of xvda"
else
	fail "stats --json: rc $rc: $(q .counters) $(q .note) $(cat "$T/err")"
fi
check_json_doc "stats --json with a qdisk disk" "$T/out"

run_timed "$xbdsh" stats vm1 --prometheus
grep -q '^xbd_vbd_read_requests_total{vm="vm1",domid="1",vdev="xvda",server="qdisk",role="guest"} 600$' "$T/out" &&
grep -q '^xbd_vbd_write_sectors_total{vm="vm1",domid="1",vdev="xvda",server="qdisk",role="guest"} 2048$' "$T/out" &&
	ok "prometheus: QEMU's counters of xvda" ||
	fail "prometheus: rc $rc: $(grep xvda "$T/out" | head -n 5) $(cat "$T/err")"

run_timed "$xbdsh" stats vm1
[ $rc -eq 0 ] && grep -Eq '^  total +0 +600 +256 +33792 +2048$' "$T/out" &&
	ok "stats: QEMU's counters in the text view" || fail "stats: rc $rc: $(cat "$T/out" "$T/err")"

# A disk QEMU does not know: said so
xenstore-write $BE/dev xvdq
run_timed "$xbdsh" stats vm1 --json
[ "$(jq -r '.disks[] | select(.vdev == "xvdq") | .counters' "$T/out")" = null ] &&
jq -r '.disks[] | select(.vdev == "xvdq") | .note' "$T/out" | grep -q "QMP" &&
	ok "a disk QEMU does not have: no counters, a note" || fail "xvdq: $(cat "$T/out" "$T/err")"
xenstore-write $BE/dev xvda

# No QEMU: a note, and an answer in time
kill_now "$qemu_pid"
run_timed "$xbdsh" stats vm1 --json
[ $rc -eq 0 ] && [ "$(q .counters)" = null ] && q .note | grep -q "no counters from QEMU's QMP socket" &&
	ok "no QEMU: no counters, a note (${ms} ms)" || fail "no QEMU: rc $rc: $(q .note) $(cat "$T/err")"
finish

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# xbdsh against the simulated Xen: every disk of a VM from xenstore, each
# with the numbers its backend can give.  vm1 has
#   xvda  "kernel blkback": counters from a fake sysfs tree, and a live
#         ring that the guest granted to dom0, mapped read-only by xbdsh
#   xvdb  served by xbd (a fake xbd process with known counters)
#   xvdc  qdisk: no counters
#   xvdd  blkback in a driver domain: its ring is not ours to see
# plus an `xbd attach` frontend on it.  Then the xbd process dies, and the
# VM is destroyed.
. "$(dirname "$0")/xbdsh_common.inc"

requires_prog xenstore-write "package xenstore-utils"
start_sim
"$xbd" sim vm create vm1 -- "$B/tests/test_stats_blkback" --sim-guest "$T/ref" \
	>"$T/vm.out" 2>&1 || die "vm create: $(cat "$T/vm.out")"
wait_for 10 test -s "$T/ref" || die "the guest did not grant its ring"
ref=$(cat "$T/ref")
domid=$(xenstore-read /local/domain/1/name >/dev/null && echo 1)
[ "$domid" = 1 ] || die "vm1 is not domain 1"

FE=/local/domain/1/device/vbd
BE=/local/domain/0/backend
xenstore-write \
	$FE/51712/backend $BE/vbd/1/51712 $FE/51712/backend-id 0 \
	$FE/51712/state 4 $FE/51712/ring-ref "$ref" $FE/51712/event-channel 5 \
	$FE/51712/protocol x86_64-abi \
	$BE/vbd/1/51712/frontend $FE/51712 $BE/vbd/1/51712/frontend-id 1 \
	$BE/vbd/1/51712/dev xvda \
	$BE/vbd/1/51712/params /dev/vg/vm1 $BE/vbd/1/51712/mode w \
	$BE/vbd/1/51712/state 4 $BE/vbd/1/51712/sectors 2097152 \
	$BE/vbd/1/51712/sector-size 512 \
	$FE/51728/backend $BE/xbd/1/51728 $FE/51728/state 4 \
	$BE/xbd/1/51728/frontend $FE/51728 $BE/xbd/1/51728/frontend-id 1 \
	$BE/xbd/1/51728/dev xvdb $BE/xbd/1/51728/state 4 \
	$FE/51744/backend $BE/qdisk/1/51744 $FE/51744/state 3 \
	$BE/qdisk/1/51744/frontend $FE/51744 $BE/qdisk/1/51744/frontend-id 1 \
	$BE/qdisk/1/51744/dev xvdc $BE/qdisk/1/51744/params /srv/c.qcow2 \
	$FE/51760/backend /local/domain/2/backend/vbd/1/51760 $FE/51760/state 4 \
	/local/domain/2/backend/vbd/1/51760/frontend $FE/51760 \
	/local/domain/2/backend/vbd/1/51760/frontend-id 1 \
	$FE/51760/ring-ref "$ref"
sys=$T/sys
st=$sys/bus/xen-backend/devices/vbd-1-51712/statistics
mkdir -p "$st"
for kv in oo_req=4 rd_req=1000 wr_req=20 f_req=2 ds_req=1 rd_sect=8000 wr_sect=160; do
	echo "${kv#*=}" >"$st/${kv%=*}"
done
start_fake pa vm1:1:xvdb vm1:1:xvda:attach:blkback
xsh() { timeout 10 "$xbdsh" --sysfs-root "$sys" "$@"; }

# list
run_timed xsh list
if [ $rc -eq 0 ] &&
   grep -Eq '^vm1 +1  xvda +blkback +Connected +1\.0G  /dev/vg/vm1$' "$T/out" &&
   grep -Eq "^vm1 +1  xvdb +xbd-serve +Connected .*\[xbd pid $pa\]$" "$T/out" &&
   grep -Eq '^vm1 +1  xvdc +qdisk +Initialised .* /srv/c\.qcow2$' "$T/out" &&
   grep -Eq '^vm1 +1  xvdd +blkback ' "$T/out" &&
   grep -Eq '^vm1 +1  xvda@attach +xbd-attach ' "$T/out" &&
   grep -Eq '^Domain-0 +0  -' "$T/out"; then
	ok "list: every disk, its backend and state"
else
	fail "list: rc $rc: $(cat "$T/out" "$T/err")"
fi

# JSON: values by backend, and the documented fields
run_timed xsh stats vm1 --json
[ $rc -eq 0 ] && ok "stats --json: exit 0" || fail "stats --json: rc $rc: $(cat "$T/err")"
cp "$T/out" "$T/doc"
check_json_doc "stats --json on the sim" "$T/doc"
q() { jq -r "$1" "$T/doc"; }
disk() { q ".disks[] | select(.vdev == \"$1\" and .role == \"${2:-guest}\") | $3"; }
[ "$(disk xvda guest .backend)" = blkback ] && [ "$(disk xvda guest .counters.rd_req)" = 1000 ] &&
[ "$(disk xvda guest .counters.rd_sect)" = 8000 ] && [ "$(disk xvda guest .counters.oo_req)" = 4 ] &&
	ok "blkback counters from sysfs" || fail "blkback counters: $(disk xvda guest .counters)"
[ "$(disk xvda guest .ring.source)" = mapped ] && [ "$(disk xvda guest .ring.req_prod)" = 10 ] &&
[ "$(disk xvda guest .ring.rsp_prod)" = 7 ] && [ "$(disk xvda guest .ring.used)" = 3 ] &&
[ "$(disk xvda guest .ring.nr_ents)" = 32 ] && [ "$(disk xvda guest .in_flight)" = 3 ] &&
	ok "blkback ring mapped read-only: 3 of 32 in flight" || fail "mapped ring: $(disk xvda guest .ring)"
[ "$(disk xvdb guest .backend)" = xbd ] && [ "$(disk xvdb guest .counters.rd_req)" = 1000 ] &&
[ "$(disk xvdb guest .latency.read.count)" = 1000 ] && [ "$(disk xvdb guest .xbd.pid)" = null ] &&
[ "$(disk xvdb guest .xbd.role)" = serve ] && [ "$(disk xvdb guest .ring.source)" = xbd ] &&
	ok "xbd disk from its process" || fail "xbd disk: $(disk xvdb guest '.counters, .ring')"
[ "$(disk xvdc guest .counters)" = null ] && disk xvdc guest .note | grep -q "no counters from QEMU's QMP socket" &&
	ok "qdisk: what is known" || fail "qdisk: $(disk xvdc guest .note)"
disk xvdd guest .note | grep -q 'backend in domain 2' && [ "$(disk xvdd guest .ring)" = null ] &&
	ok "driver-domain backend: said so" || fail "xvdd: $(disk xvdd guest .note)"
[ "$(disk xvda attach .backend)" = blkback ] && [ "$(disk xvda attach .read_only)" = true ] &&
	ok "an xbd attach frontend is listed with the VM" || fail "attach: $(disk xvda attach .)"

# by domain id, text
run_timed xsh stats 1
if [ $rc -eq 0 ] && grep -q '^vm1 (domain 1): 5 disks' "$T/out" &&
   grep -Eq '^  total +4 +1000 +20 +8000 +160$' "$T/out" &&
   grep -q 'ring 3/32 used, 29 free (mapped read-only)' "$T/out"; then
	ok "stats by domain id, text"
else
	fail "stats 1: rc $rc: $(cat "$T/out" "$T/err")"
fi

# ring: the requests in flight read from the guest's ring
run_timed xsh ring vm1 xvda
if [ $rc -eq 0 ] && grep -Eq '0x1007 +read +100 +2' "$T/out" &&
   grep -Eq '0x1008 +write\* +4096 +200' "$T/out" &&
   grep -Eq '0x1009 +discard +65536 +0' "$T/out" &&
   grep -q 'req_prod 10  req_event 11  rsp_prod 7  rsp_event 8' "$T/out"; then
	ok "ring VM DISK: indices and requests from the mapped ring"
else
	fail "ring vm1 xvda: rc $rc: $(cat "$T/out" "$T/err")"
fi
run_timed xsh ring vm1 51728
[ $rc -eq 0 ] && grep -q 'req_cons 1013 rsp_prod_pvt 1010' "$T/out" &&
	ok "ring by device id, xbd's private indices" || fail "ring vm1 51728: rc $rc: $(cat "$T/out" "$T/err")"
run_timed xsh ring vm1 xvdc
[ $rc -eq 1 ] && grep -q 'no ring to show' "$T/out" &&
	ok "ring of a disk without one: said, exit 1" || fail "ring xvdc: rc $rc"

# Prometheus covers the blkback disk too
run_timed xsh stats --prometheus
L='vm="vm1",domid="1",vdev="xvda",server="blkback",role="guest"'
if [ $rc -eq 0 ] && grep -q "^xbd_vbd_read_requests_total{$L} 1000$" "$T/out" &&
   grep -q "^xbd_vbd_ring_used_entries{$L} 3$" "$T/out" &&
   grep -q '^xbd_vbd_info{vm="vm1",domid="1",vdev="xvdc",server="qdisk",role="guest",state="Initialised"} 1$' "$T/out"; then
	ok "prometheus: blkback and qdisk disks"
else
	fail "prometheus: rc $rc: $(grep xvda "$T/out" | head -5) $(cat "$T/err")"
fi

# No sysfs entry: a note, not a failure
run_timed "$xbdsh" --sysfs-root "$T/nosys" stats vm1 --json
[ $rc -eq 0 ] && jq -r '.disks[] | select(.vdev == "xvda" and .role == "guest") | .note' "$T/out" |
	grep -q 'no blkback counters' && ok "missing sysfs entry: noted" || fail "no sysfs: rc $rc"

# Unknown VM
run_timed xsh stats vm9
[ $rc -eq 1 ] && [ "$(cat "$T/err")" = "xbdsh: vm9: no such domain" ] &&
	ok "unknown VM: one line" || fail "vm9: rc $rc: $(cat "$T/err")"

# The xbd process serving xvdb dies.
kill_now "$pa"
run_timed xsh stats vm1 --json
if [ $rc -eq 1 ] && [ "$ms" -lt 1000 ] && grep -q "xbd process $pa is gone" "$T/err" &&
   grep -q "^xbdsh: vm1: xvdb: served by xbd, but no xbd process answers for it" "$T/err" &&
   [ "$(jq -r '.disks[] | select(.vdev == "xvda" and .role == "guest") | .counters.rd_req' "$T/out")" = 1000 ]; then
	ok "dead xbd process: said in ${ms} ms, the other disks still shown"
else
	fail "dead xbd process: rc $rc, ${ms} ms: $(cat "$T/err")"
fi

# A wedged xenstored: libxenstore has no timeout, xbdsh's watchdog does.
simpid=$(cat "$sim_dir/pid" 2>/dev/null)
if [ -n "$simpid" ]; then
	kill -STOP "$simpid"
	run_timed timeout 60 "$xbdsh" stats vm1 --json
	kill -CONT "$simpid"
	if [ $rc -eq 1 ] && [ "$ms" -lt 30000 ] &&
	   [ "$(cat "$T/err")" = "xbdsh: no answer within 20 s (is xenstored or the sim stuck?)" ]; then
		ok "stuck xenstored: one line after ${ms} ms"
	else
		fail "stuck xenstored: rc $rc, ${ms} ms: $(cat "$T/err")"
	fi
fi

# The VM is destroyed.
"$xbd" sim vm destroy vm1 >/dev/null 2>&1
run_timed xsh stats vm1
[ $rc -eq 1 ] && grep -q "^xbdsh: vm1: no such domain" "$T/err" &&
	ok "destroyed VM: no such domain" || fail "destroyed vm1: rc $rc: $(cat "$T/err")"

finish

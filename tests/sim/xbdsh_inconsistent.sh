#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A guest points its disk's `backend` node at another VM's backend:
# xbdsh must not show the other VM's I/O under its name.  vm1 and vm2
# each have a disk the sim's blkback serves; vm1's guest reads 1000
# times; vm2 rewrites /local/domain/<vm2>/device/vbd/51712/backend (a
# node its guest owns) to vm1's backend.  vm2's xvda must then read
# "inconsistent" in the text, JSON and Prometheus outputs, with none of
# vm1's counters (its own, from the xbd process that serves it, may
# show); vm1 keeps its own.
. "$(dirname "$0")/xbdsh_common.inc"

requires_prog xenstore-write "package xenstore-utils"
requires_prog jq
"$xbd" sim vm io --help 2>&1 | grep -q -- --rw ||
	skip "xbd sim vm io (the sim guest's workloads) is not available yet"
start_sim
export XBD_SIM_KEEP_LOG=1

truncate -s 16M "$T/a.img" "$T/b.img"
vm() {
	local out
	out=$("$xbd" sim vm create "$1" --disk "$2,xvda" 2>&1) ||
		die "vm create $1: $out"
	echo "$out" | tail -n1
}
d1=$(vm vm1 "$T/a.img")
d2=$(vm vm2 "$T/b.img")
connected() {
	[ "$(xenstore-read "/local/domain/$1/device/vbd/51712/state" 2>/dev/null)" = 4 ]
}
if ! wait_for 3 connected "$d1"; then
	"$xbd" sim blkback >"$T/blkback.log" 2>&1 &
	pids+=($!)
fi
wait_for 10 connected "$d1" || die "vm1's guest did not connect xvda"
wait_for 10 connected "$d2" || die "vm2's guest did not connect xvda"
"$xbd" sim vm io vm1 xvda --rw read --bs 4k --size 4096000 >"$T/io.out" 2>&1 ||
	die "io on vm1: $(cat "$T/io.out")"

be1=/local/domain/0/backend/vbd/$d1/51712
xenstore-write "/local/domain/$d2/device/vbd/51712/backend" "$be1" ||
	die "cannot rewrite vm2's backend node"

xsh() { timeout 10 "$xbdsh" "$@" >"$T/out" 2>"$T/err"; rc=$?; }
q() { jq -r ".disks[] | select(.vdev == \"xvda\" and .role == \"guest\") | $1" "$T/out"; }

xsh stats vm1 --json
rd1=$(q .counters.rd_req)
[ $rc -eq 0 ] && [ "$rd1" -ge 1000 ] 2>/dev/null &&
	ok "vm1's xvda: $rd1 reads" || fail "vm1: rc $rc, rd_req $rd1: $(cat "$T/err")"

# vm2's disk is still served by the sim's blkback, an xbd process that
# says which frontend it serves: its own numbers (no reads) may show
xsh stats vm2 --json
if [ "$(q .state)" = inconsistent ] && q .note | grep -q "$be1" &&
   [ "$(q .backend_path)" = "$be1" ] &&
   [ "$(jq '[.disks[] | select(.vdev == "xvda")] | length' "$T/out")" = 1 ] &&
   [ "$(q '.counters.rd_req // 0')" = 0 ] && [ "$(q '.params // ""')" != "$T/a.img" ]; then
	ok "stats --json: vm2's xvda is inconsistent, without vm1's counters"
else
	fail "stats --json of vm2 (rc $rc): $(cat "$T/out" "$T/err")"
fi
check_json_doc "stats --json of an inconsistent disk" "$T/out"

xsh stats vm2
if grep -q 'xvda .*inconsistent' "$T/out" && ! grep -Eq '\b'"$rd1"'\b' "$T/out"; then
	ok "stats: vm2's xvda inconsistent, none of vm1's numbers"
else
	fail "stats of vm2: $(cat "$T/out" "$T/err")"
fi

xsh stats --prometheus
vm2_lines=$(grep "vm=\"vm2\"" "$T/out")
if echo "$vm2_lines" | grep -q '^xbd_vbd_info{.*vdev="xvda".*state="inconsistent"} 1$' &&
   ! echo "$vm2_lines" | grep -q "^xbd_vbd_read_requests_total.* $rd1\$" &&
   [ "$(echo "$vm2_lines" | grep -c '^xbd_vbd_info{.*vdev="xvda"')" = 1 ] &&
   grep -q "^xbd_vbd_read_requests_total{vm=\"vm1\".* $rd1\$" "$T/out"; then
	ok "prometheus: vm2's xvda state=\"inconsistent\", not vm1's counters; vm1's kept"
else
	fail "prometheus: $(grep -E 'vm="vm[12]"' "$T/out" | grep -E 'info|read_req')"
fi
finish

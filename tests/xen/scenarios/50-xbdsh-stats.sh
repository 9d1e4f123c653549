#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# xbdsh stats on real Xen.  A PV domU reads its disk (served by the
# kernel's blkback) in a loop; `xbdsh stats vm1 --json`, twice a second
# apart, shows blkback's counters (from sysfs) growing and the ring's
# indices (from a read-only mapping of the domU's ring) moving; the human
# output names the backend.  Then xbd serve hot-plugs a second disk that
# the domU reads too, and xbdsh shows that disk's counters from xbd.
# timeout: 240
. "$(dirname "$0")/lib.sh"

mib=1048576
img=$W/blkback.img
served=$W/served.img
serve_log=$W/serve.log

dd if=/dev/urandom of="$img" bs=$mib count=16 2>/dev/null || fail "cannot make $img"
dd if=/dev/urandom of="$served" bs=$mib count=8 2>/dev/null || fail "cannot make $served"
loop_attach loop "$img"

# The domU reads its disks with O_DIRECT (every read reaches the ring)
# until dom0 is done with it (at most 200 s).
cat > "$W/job.sh" <<'JOB'
. /lib/xbd-domu.sh
wait_dev /dev/xvda || exit 1
report reading xvda
end=$(( $(cut -d. -f1 /proc/uptime) + 200 ))
seen_b=
while [ "$(cut -d. -f1 /proc/uptime)" -lt $end ]; do
	dd if=/dev/xvda of=/dev/null bs=65536 iflag=direct 2>/dev/null || exit 2
	if [ -b /dev/xvdb ]; then
		[ -n "$seen_b" ] || { seen_b=1; report reading xvdb; }
		dd if=/dev/xvdb of=/dev/null bs=4096 count=512 iflag=direct 2>/dev/null
	fi
done
JOB
domu_start vm1 --disk "phy:$loop,xvda,r" --script "$W/job.sh"
on_failure xbd_diag "$serve_log" vm1
on_failure 'echo "---- the last xbdsh output ----"; cat "$W/last.out"'
domid=$(xl domid vm1)
domu_wait vm1 '^XBD-DOMU RESULT reading xvda' 120 >/dev/null

sysfs=/sys/bus/xen-backend/devices/vbd-$domid-51712/statistics
[ -r "$sysfs/rd_req" ] || fail "kernel blkback has no $sysfs"

# stats_json: one `xbdsh stats vm1 --json` document, kept in last.out.
stats_json() {
	xbdsh stats vm1 --json > "$W/last.out" 2>&1 ||
		fail "xbdsh stats vm1 --json exited $?: $(head -c 300 "$W/last.out")"
	cat "$W/last.out"
}

# disk_in_both VDEV BACKEND: d1 and d2, VDEV in the documents $j1 and
# $j2, which must both show it, served by BACKEND.
disk_in_both() {
	d1=$(json_disk "$j1" "$1"); d2=$(json_disk "$j2" "$1")
	[ -n "$d1" ] && [ -n "$d2" ] || fail "xbdsh stats vm1 --json shows no $1: $j1"
	[ "$(json_val "$d1" backend)" = "$2" ] ||
		fail "$1's backend is '$(json_val "$d1" backend)', not $2"
}

# reads_grew VDEV: VDEV's rd_req (r1 -> r2) and rd_sect (k1 -> k2)
# grew from $d1 to $d2, while the domU read.
reads_grew() {
	c1=$(json_obj "$d1" counters); c2=$(json_obj "$d2" counters)
	echo "$1 counters, a second apart: $c1 -> $c2"
	r1=$(json_int "$c1" rd_req) || exit 1; r2=$(json_int "$c2" rd_req) || exit 1
	k1=$(json_int "$c1" rd_sect) || exit 1; k2=$(json_int "$c2" rd_sect) || exit 1
	[ "$r2" -gt "$r1" ] || fail "$1's rd_req did not grow while the domU read ($r1 -> $r2)"
	[ "$k2" -gt "$k1" ] || fail "$1's rd_sect did not grow while the domU read ($k1 -> $k2)"
}

# --- a disk of kernel blkback ----------------------------------------
s0=$(cat "$sysfs/rd_req")
j1=$(stats_json) || exit 1
s1=$(cat "$sysfs/rd_req")
sleep 1
j2=$(stats_json) || exit 1
disk_in_both xvda blkback
reads_grew xvda
[ "$s0" -le "$r1" ] && [ "$r1" -le "$s1" ] ||
	fail "rd_req $r1 is not blkback's (sysfs said $s0 before, $s1 after)"

ring1=$(json_obj "$d1" ring); ring2=$(json_obj "$d2" ring)
echo "xvda ring, a second apart: $ring1 -> $ring2"
[ -n "$ring1" ] && [ -n "$ring2" ] ||
	fail "no ring indices for xvda (note: $(json_val "$d1" note))"
[ "$(json_val "$ring1" source)" = mapped ] ||
	fail "xvda's ring source is '$(json_val "$ring1" source)', not mapped"
nr=$(json_int "$ring1" nr_ents) || exit 1
[ "$nr" -ge 32 ] && [ $((nr & (nr - 1))) -eq 0 ] || fail "xvda's ring has $nr entries"
p1=$(json_int "$ring1" req_prod) || exit 1; p2=$(json_int "$ring2" req_prod) || exit 1
q2=$(json_int "$ring2" rsp_prod) || exit 1
[ "$p2" -gt "$p1" ] || fail "req_prod of the mapped ring did not move ($p1 -> $p2)"
[ $((p2 - q2)) -ge 0 ] && [ $((p2 - q2)) -le "$nr" ] ||
	fail "the mapped ring makes no sense: req_prod $p2, rsp_prod $q2, $nr entries"
# Every read blkback counted came through this ring (one queue: the
# domU has one vCPU); the two are read a moment apart, hence the slack.
[ $((p2 + nr)) -ge "$r2" ] || fail "req_prod $p2 is far below blkback's rd_req $r2"

xbdsh stats vm1 > "$W/last.out" 2>&1 || fail "xbdsh stats vm1 exited $?"
cat "$W/last.out"
grep -q xvda "$W/last.out" || fail "xbdsh stats vm1 does not show xvda"
grep -q blkback "$W/last.out" || fail "xbdsh stats vm1 does not name blkback as xvda's backend"

# --- a disk of xbd serve ---------------------------------------------
xbd serve vm1 --image "$served" --vdev xvdb --read-only --log "$serve_log" ||
	fail "xbd serve vm1 --image $served --vdev xvdb exited $?"
on_exit "xbd detach vm1 xvdb >/dev/null 2>&1"
domu_wait vm1 '^XBD-DOMU RESULT reading xvdb' 60 >/dev/null
j1=$(stats_json) || exit 1
sleep 1
j2=$(stats_json) || exit 1
disk_in_both xvdb xbd
[ -n "$(json_disk "$j2" xvda)" ] || fail "with xvdb served, xbdsh lost xvda"
reads_grew xvdb
ring2=$(json_obj "$d2" ring)
echo "xvdb ring: $ring2"
[ "$(json_val "$ring2" source)" = xbd ] ||
	fail "xvdb's ring source is '$(json_val "$ring2" source)', not xbd"
lat=$(grep -o '"latency":{"read":{[^{}]*}' <<< "$d2" | head -n1)
echo "xvdb read latency: ${lat#*\{\"read\":}"
[ "$(json_int "${lat#*\{\"read\":}" count)" -gt 0 ] ||
	fail "xbdsh shows no read latency for xvdb"
xbdsh stats vm1 > "$W/last.out" 2>&1 || fail "xbdsh stats vm1 exited $?"
cat "$W/last.out"
grep -q 'xvdb.*xbd\|xbd.*xvdb' "$W/last.out" ||
	fail "xbdsh stats vm1 does not show xvdb as served by xbd"

xbd detach vm1 xvdb || fail "xbd detach vm1 xvdb exited $?"

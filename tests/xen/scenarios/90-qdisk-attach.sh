#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# qdisk: a PV domU whose disk QEMU serves (backendtype=qdisk, a raw
# file; libxl starts qemu-system-xen as its device model) writes a known
# pattern; `xbd attach vm1` reads the disk exactly (sha256 against the
# file) while the domU runs, through a second instance on kernel blkback
# over a read-only loop device of the file; detach leaves no node and no
# loop device behind.  xbdsh shows the disk with QEMU's own counters
# (QMP query-blockstats), in JSON and for Prometheus.
# timeout: 300
. "$(dirname "$0")/lib.sh"

mib=1048576
img=$W/qdisk.img
dd if=/dev/urandom of="$img" bs=$mib count=16 2>/dev/null || fail "cannot make $img"
cat > "$W/job.sh" <<'JOB'
. /lib/xbd-domu.sh
wait_dev /dev/xvda || exit 1
yes XBD-QDISK-DOMU-WROTE-THIS | head -c 1048576 |
	dd of=/dev/xvda bs=4096 seek=1024 conv=fsync 2>/dev/null || exit 2
report wrote 1
sleep 3600
JOB
on_failure 'echo "---- QEMU (qemu-dm-vm1.log) ----"; cat /var/log/xen/qemu-dm-vm1.log'
domu_start vm1 --disk "format=raw,vdev=xvda,access=rw,backendtype=qdisk,target=$img" \
	--script "$W/job.sh"
on_failure 'echo "---- xenstore backend/qdisk ----"; xenstore-ls -f /local/domain/0/backend/qdisk'
domid=$(xl domid vm1)
be=/local/domain/0/backend/qdisk/$domid/51712
xenstore-exists "$be" || fail "vm1's disk is not served by qdisk (no $be)"
echo "vm1's xvda: $be, params $(xenstore-read "$be/params")"
domu_wait vm1 '^XBD-DOMU RESULT wrote' 120 >/dev/null

dd if="$img" bs=4096 skip=1024 count=256 2>/dev/null |
	cmp -s - <(yes XBD-QDISK-DOMU-WROTE-THIS | head -c $mib) ||
	fail "the domU's write through qdisk is not in $img"
# xbdsh: QEMU's own counters (QMP query-blockstats), in JSON and for Prometheus
json=$(xbdsh stats vm1 --json) || fail "xbdsh stats vm1 --json failed: $json"
disk=$(json_disk "$json" xvda)
[ "$(json_val "$disk" backend)" = qdisk ] || fail "xbdsh: xvda's backend is not qdisk: $disk"
counters=$(json_obj "$disk" counters)
echo "xbdsh: QEMU's counters for xvda: $counters"
wr=$(json_int "$counters" wr_req) || exit 1
wsect=$(json_int "$counters" wr_sect) || exit 1
[ "$wr" -gt 0 ] && [ "$wsect" -ge 2048 ] ||
	fail "xbdsh: the domU wrote 1 MiB, QEMU's counters say $counters"
prom=$(xbdsh stats vm1 --prometheus) || fail "xbdsh stats vm1 --prometheus failed"
grep -E '^xbd_vbd_write_sectors_total\{.*vdev="xvda".*\} [0-9]+' <<< "$prom" ||
	fail "no write sectors of xvda in the Prometheus output: $(grep xvda <<< "$prom" | head)"

want=$(sha256sum < "$img" | cut -d' ' -f1)
loops_before=$(losetup -a | wc -l)

mkdir -p "$W/mnt"
on_exit "xbd detach $W/mnt >/dev/null 2>&1"
on_failure "echo ---- attach.log; cat $W/attach.log"
XBD_ATTACH_LOG=$W/attach.log xbd attach vm1 --mount "$W/mnt" ||
	fail "xbd attach vm1 (a qdisk disk) failed"
xenstore-ls -f /local/domain/0/backend/vbd/0 | grep -E '/(mode|state|params|physical-device) ' || true
got=$(sha256sum < "$W/mnt/xvda" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "sha256 of DIR/xvda $got, the file $want"
dd if="$W/mnt/xvda" bs=4096 skip=1024 count=256 2>/dev/null |
	cmp -s - <(yes XBD-QDISK-DOMU-WROTE-THIS | head -c $mib) ||
	fail "the domU's write is not in DIR/xvda"
dd if=/dev/zero of="$W/mnt/xvda" bs=4k count=1 conv=notrunc 2>/dev/null &&
	fail "a write to the read-only DIR/xvda succeeded"
domu_alive vm1 || fail "the domU died"

detach_clean "$W/mnt" "$img" "$want"
[ "$(losetup -a | wc -l)" = "$loops_before" ] ||
	fail "a loop device is left after detach: $(losetup -a)"
domu_alive vm1 || fail "the domU died after detach"
echo "attach of a qdisk disk: sha256 $want, detach clean"

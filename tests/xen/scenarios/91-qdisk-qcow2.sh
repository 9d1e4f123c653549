#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# qdisk with a qcow2 image: the domU reads and writes it through QEMU,
# and `xbd attach vm1` refuses it with one clear line naming the format
# (kernel blkback reads raw images only), touching nothing: no node, no
# loop device, no mount, the image unchanged.
# timeout: 200
. "$(dirname "$0")/lib.sh"

img=$W/disk.qcow2
# made on the build host with qemu-img (mkinitrd.sh); dom0 has none
cp "$XBD_TESTS/data/disk.qcow2" "$img" || fail "no qcow2 image in $XBD_TESTS/data"
cat > "$W/job.sh" <<'JOB'
. /lib/xbd-domu.sh
wait_dev /dev/xvda || exit 1
yes XBD-QCOW2 | head -c 65536 | dd of=/dev/xvda bs=4096 conv=fsync 2>/dev/null || exit 2
report read "$(dd if=/dev/xvda bs=4096 count=16 2>/dev/null | sha256sum | cut -d' ' -f1)"
sleep 3600
JOB
on_failure 'echo "---- QEMU (qemu-dm-vm1.log) ----"; cat /var/log/xen/qemu-dm-vm1.log'
domu_start vm1 --disk "format=qcow2,vdev=xvda,access=rw,backendtype=qdisk,target=$img" \
	--script "$W/job.sh"
domu_wait vm1 '^XBD-DOMU RESULT read' 120 >/dev/null
[ "$(domu_result vm1 read)" = "$(yes XBD-QCOW2 | head -c 65536 | sha256sum | cut -d' ' -f1)" ] ||
	fail "the domU did not read back what it wrote to its qcow2 disk"

before=$(sha256sum < "$img" | cut -d' ' -f1)
loops_before=$(losetup -a | wc -l)
mkdir -p "$W/mnt"
on_exit "xbd detach $W/mnt >/dev/null 2>&1"
xbd attach vm1 --mount "$W/mnt" > "$W/out" 2>&1 && fail "xbd attach of a qcow2 qdisk disk succeeded"
cat "$W/out"
[ "$(wc -l < "$W/out")" = 1 ] || fail "not one line of error: $(cat "$W/out")"
grep -q 'qcow2' "$W/out" || fail "the error does not name the format: $(cat "$W/out")"
grep -q '^xbd: vm1: xvda: ' "$W/out" || fail "the error does not name the VM and disk: $(cat "$W/out")"
! grep -q " $W/mnt " /proc/mounts || fail "$W/mnt is mounted after a refused attach"
[ -z "$(xenstore-list /local/domain/0/backend/vbd/0 2>/dev/null)" ] ||
	fail "backend nodes left: $(xenstore-ls -f /local/domain/0/backend/vbd/0)"
! xenstore-exists /local/domain/0/device/xbd 2>/dev/null || fail "frontend nodes left"
[ "$(losetup -a | wc -l)" = "$loops_before" ] || fail "a loop device is left: $(losetup -a)"
[ "$(sha256sum < "$img" | cut -d' ' -f1)" = "$before" ] || fail "the image changed"
domu_alive vm1 || fail "the domU died"
echo "a qcow2 qdisk disk is refused: $(cat "$W/out")"

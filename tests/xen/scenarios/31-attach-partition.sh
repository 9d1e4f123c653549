#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Forensics on real Xen: a running PV domU has a partitioned disk served by
# kernel blkback; inside, it makes a filesystem on xvda1, writes a file,
# and unmounts.  In dom0, `xbd attach` shows DIR/xvda1 (the partition,
# found in the MBR), `mount -o ro,loop DIR/xvda1` reads the file the domU
# wrote, and detach leaves nothing in xenstore.  The disk never changes.
# timeout: 300
. "$(dirname "$0")/lib.sh"

img=$W/disk.img
mbr_one_partition "$img" 32 || fail "cannot make $img"
loop_attach loop "$img"

cat > "$W/job.sh" <<'JOB'
. /lib/xbd-domu.sh
wait_dev /dev/xvda1 || exit 1
mke2fs -q -b 4096 -L evidence /dev/xvda1 || exit 2
mkdir -p /mnt/e
mount -t ext4 /dev/xvda1 /mnt/e || exit 3
mkdir -p /mnt/e/var/log
echo "XBD-DOMU-FILE $(cat /proc/sys/kernel/random/boot_id)" > /mnt/e/var/log/evidence.txt
sync
umount /mnt/e || exit 4
report wrote "$(cat /proc/sys/kernel/random/boot_id)"
sleep 3600
JOB
domu_start vm1 --disk "phy:$loop,xvda,w" --script "$W/job.sh"
domu_wait vm1 '^XBD-DOMU RESULT wrote' 120
boot_id=$(domu_result vm1 wrote)
[ -n "$boot_id" ] || fail "the domU did not say what it wrote"
want=$(sha256sum < "$loop" | cut -d' ' -f1)

mkdir -p "$W/mnt" "$W/fs"
on_exit "umount $W/fs 2>/dev/null; xbd detach $W/mnt 2>/dev/null"
xbd attach vm1 --mount "$W/mnt" --log "$W/attach.log" || {
	cat "$W/attach.log" 2>/dev/null
	fail "xbd attach failed"
}
ls -l "$W/mnt"
[ -e "$W/mnt/xvda1" ] || fail "no partition file DIR/xvda1: $(ls "$W/mnt")"
mount -o ro,loop "$W/mnt/xvda1" "$W/fs" || fail "mount -o ro,loop DIR/xvda1 failed"
got=$(cat "$W/fs/var/log/evidence.txt" 2>/dev/null)
[ "$got" = "XBD-DOMU-FILE $boot_id" ] ||
	fail "the file the domU wrote reads '$got', expected 'XBD-DOMU-FILE $boot_id'"
umount "$W/fs" || fail "umount of the partition failed"
detach_clean "$W/mnt" "$loop" "$want"
domu_alive vm1 || fail "the domU died"
echo "partition of a blkback disk read in dom0: '$got'; detach clean"

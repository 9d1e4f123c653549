#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# attach --files on real Xen: a running PV domU makes a file system on
# xvda1 (busybox mke2fs, mounted with the ext4 driver), writes a file,
# syncs and keeps running with it mounted.  In dom0, without any mount
# of the guest's file system, `xbd attach --files` shows the file under
# DIR/files/xvda1 (parsed by libext2fs in the sandboxed child) and
# `xbd cat vm1:/var/log/evidence.txt` prints the same bytes; detach
# leaves nothing behind and the disk never changes.
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
report wrote "$(cat /proc/sys/kernel/random/boot_id)"
sleep 3600
JOB
domu_start vm1 --disk "phy:$loop,xvda,w" --script "$W/job.sh"
domu_wait vm1 '^XBD-DOMU RESULT wrote' 120
boot_id=$(domu_result vm1 wrote)
[ -n "$boot_id" ] || fail "the domU did not say what it wrote"
want=$(sha256sum < "$loop" | cut -d' ' -f1)

mkdir -p "$W/mnt"
on_exit "xbd detach $W/mnt 2>/dev/null"
on_exit "echo ---- attach.log; cat $W/attach.log"
xbd attach vm1 --mount "$W/mnt" --files --log "$W/attach.log" || fail "xbd attach --files failed"
ls -l "$W/mnt" "$W/mnt/files"
got=$(cat "$W/mnt/files/xvda1/var/log/evidence.txt" 2>&1)
[ "$got" = "XBD-DOMU-FILE $boot_id" ] ||
	fail "through the tree the file reads '$got', expected 'XBD-DOMU-FILE $boot_id'"
ls -ln "$W/mnt/files/xvda1/var/log"
cat_got=$(xbd cat vm1:/var/log/evidence.txt 2>&1)
[ "$cat_got" = "$got" ] || fail "xbd cat says '$cat_got', the tree '$got'"
domu_alive vm1 || fail "the domU died"
detach_clean "$W/mnt" "$loop" "$want"
echo "a running domU's file read in user space: '$got' (tree and xbd cat)"

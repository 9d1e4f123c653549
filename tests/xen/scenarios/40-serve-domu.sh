#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# xbd serve hot-plugs a raw image into a running PV domU that has no
# disks; the domU's own kernel blkfront connects it, the domU makes an
# ext2 filesystem on it, writes files, syncs (flushes), trims and
# discards, then dom0 detaches the disk with `xbd detach` while the
# domU watches it go.  dom0 checks the files in the image, the hole the
# discard punched, the counters xbd kept, and that no xenstore node is
# left behind.
# timeout: 240
. "$(dirname "$0")/lib.sh"

img=$W/served.img
vdev=xvdb
devid=51728 # 202<<8 | 1<<4
mib=1048576
truncate -s $((64 * mib)) "$img" || fail "cannot make $img"
serve_log=$W/serve.log

cat > "$W/job.sh" <<'JOB'
. /lib/xbd-domu.sh
wait_dev /dev/xvdb 60 || exit 1
report size "$(blockdev --getsize64 /dev/xvdb)"
# The last 16 MiB stay outside the filesystem, for blkdiscard.
yes XBD-DISCARD-ME | head -c 16777216 |
	dd of=/dev/xvdb bs=1048576 seek=48 conv=fsync 2>/dev/null || exit 2
mke2fs -q -b 4096 -L xbdserve /dev/xvdb 12288 || exit 3
mkdir -p /mnt/d
mount -t ext4 /dev/xvdb /mnt/d || exit 4
echo "hello from the domU, through xbd serve" > /mnt/d/hello.txt
seq 1 200000 > /mnt/d/numbers.txt
mkdir /mnt/d/dir
i=0
while [ $i -lt 20 ]; do
	echo "file $i" > /mnt/d/dir/f$i
	i=$((i + 1))
done
yes XBD-BIG-FILE | head -c 3000000 > /mnt/d/big.bin
report big "$(sha256sum < /mnt/d/big.bin | cut -d' ' -f1)"
sync
fstrim -v /mnt/d; report fstrim $?
umount /mnt/d || exit 5
blkdiscard -o 50331648 -l 16777216 /dev/xvdb; report blkdiscard $?
report region "$(dd if=/dev/xvdb bs=1048576 skip=48 count=16 2>/dev/null | sha256sum | cut -d' ' -f1)"
blockdev --flushbufs /dev/xvdb
report written 1
# dom0 detaches the disk now; blkfront must let it go.
i=0
while [ -b /dev/xvdb ]; do
	i=$((i + 1))
	[ $i -le 300 ] || { report gone no; exit 6; }
	sleep 0.2
done
report gone yes
JOB

domu_start vm1 --script "$W/job.sh"
on_failure xbd_diag "$serve_log" vm1
domid=$(xl domid vm1)
domu_wait vm1 '^XBD-DOMU BOOTED' 120

t0=$(uptime_s)
xbd serve vm1 --image "$img" --vdev $vdev --log "$serve_log" ||
	fail "xbd serve vm1 --image $img --vdev $vdev exited $?"
echo "xbd serve returned after $(since_s "$t0")s: the domU connected $vdev"
be=/local/domain/0/backend/xbd/$domid/$devid
fe=/local/domain/$domid/device/vbd/$devid
[ "$(xenstore-read "$be/state")" = 4 ] || fail "backend $be is not Connected"
[ "$(xenstore-read "$fe/state")" = 4 ] || fail "frontend $fe is not Connected"
serve_pid=$(xenstore-read "$be/xbd-pid") || fail "no $be/xbd-pid"
xbd list | tee "$W/list.out"
grep -q "vm1.*$vdev" "$W/list.out" || fail "xbd list does not show vm1's $vdev"

domu_wait vm1 '^XBD-DOMU RESULT written' 150 >/dev/null
[ "$(domu_result vm1 size)" = $((64 * mib)) ] ||
	fail "the domU saw a $(domu_result vm1 size)-byte $vdev, not 64 MiB"

# What the guest's flushes and discards did, as xbd counted them.
json=$(xbdsh stats vm1 --json) || fail "xbdsh stats vm1 --json failed"
disk=$(json_disk "$json" $vdev)
[ -n "$disk" ] || fail "xbdsh stats vm1 --json shows no $vdev: $json"
reqs=$(json_obj "$disk" requests)
echo "xbd's counters for $vdev: $reqs"
for op in write flush barrier discard; do
	n=$(json_int "$reqs" $op) || exit 1
	printf -v "n_$op" '%s' "$n"
done
[ $((n_flush + n_barrier)) -gt 0 ] ||
	fail "the domU synced, but xbd counted no flush or barrier ($reqs)"
[ "$n_discard" -gt 0 ] || fail "the domU discarded, but xbd counted no discard ($reqs)"
[ "$n_write" -gt 0 ] || fail "xbd counted no write ($reqs)"

t0=$(uptime_s)
xbd detach vm1 $vdev || fail "xbd detach vm1 $vdev exited $?"
echo "xbd detach took $(since_s "$t0")s"
domu_wait vm1 '^XBD-DOMU RESULT gone' 60 >/dev/null
[ "$(domu_result vm1 gone)" = yes ] || fail "$vdev is still in the domU after xbd detach"
domu_wait_exit vm1 60
! kill -0 "$serve_pid" 2>/dev/null || fail "the serving process $serve_pid is still running"
for n in "$be" /local/domain/0/backend/xbd "$fe"; do
	! xenstore-exists "$n" 2>/dev/null || fail "$n is still in xenstore after detach"
done

# The image, as the domU left it.
[ "$(domu_result vm1 fstrim)" = 0 ] || fail "fstrim in the domU failed"
[ "$(domu_result vm1 blkdiscard)" = 0 ] || fail "blkdiscard in the domU failed"
zero16=$(head -c $((16 * mib)) /dev/zero | sha256sum | cut -d' ' -f1)
[ "$(domu_result vm1 region)" = "$zero16" ] ||
	fail "the discarded 16 MiB do not read back as zeroes in the domU"
[ "$(dd if="$img" bs=$mib skip=48 count=16 2>/dev/null | sha256sum | cut -d' ' -f1)" = "$zero16" ] ||
	fail "the discarded 16 MiB are not zeroes in the image"
alloc=$(( $(stat -c %b "$img") * $(stat -c %B "$img") ))
echo "image: $alloc bytes allocated of $((64 * mib))"
[ "$alloc" -le $((48 * mib)) ] ||
	fail "discard punched no hole: $alloc bytes of the image are allocated"

mkdir -p "$W/mnt"
mount -t ext4 -o ro,loop "$img" "$W/mnt" || fail "dom0 cannot mount the image the domU formatted"
on_exit "umount $W/mnt"
[ "$(cat "$W/mnt/hello.txt")" = "hello from the domU, through xbd serve" ] ||
	fail "hello.txt is wrong in the image"
seq 1 200000 | cmp -s - "$W/mnt/numbers.txt" || fail "numbers.txt is wrong in the image"
for i in $(seq 0 19); do
	[ "$(cat "$W/mnt/dir/f$i")" = "file $i" ] || fail "dir/f$i is wrong in the image"
done
big=$(sha256sum < "$W/mnt/big.bin" | cut -d' ' -f1)
[ "$big" = "$(domu_result vm1 big)" ] || fail "big.bin in the image differs from what the domU wrote"
[ "$big" = "$(yes XBD-BIG-FILE | head -c 3000000 | sha256sum | cut -d' ' -f1)" ] ||
	fail "big.bin does not hold its pattern"
echo "the domU's filesystem is in the image: 23 files checked, big.bin sha256 $big"

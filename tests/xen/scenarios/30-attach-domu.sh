#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# xbd attach against the kernel's blkback: a running PV domU's disk
# (phy: on a loop device) is attached in dom0 through a second blkback
# instance and xbd's user-space blkfront; DIR/xvda reads back exactly the
# backing device, including what the domU wrote; --cow writes stay in
# dom0; detach leaves nothing in xenstore; dd with its default block
# size (512 bytes), 4 KiB and 1 MiB blocks, O_DIRECT 4 KiB, and
# sha256sum read it exactly (times printed).
# timeout: 400
. "$(dirname "$0")/lib.sh"

img=$W/disk.img
dd if=/dev/urandom of="$img" bs=1M count=8 2>/dev/null || fail "cannot make $img"
loop_attach loop "$img"
cat > "$W/job.sh" <<'JOB'
. /lib/xbd-domu.sh
wait_dev /dev/xvda || exit 1
yes XBD-DOMU-WROTE-THIS | head -c 1048576 |
	dd of=/dev/xvda bs=4096 seek=1024 conv=fsync 2>/dev/null || exit 2
report wrote 1
sleep 3600
JOB
domu_start vm1 --disk "phy:$loop,xvda,w" --script "$W/job.sh"
domu_wait vm1 '^XBD-DOMU RESULT wrote' 90

mkdir -p "$W/mnt"
on_exit "xbd detach $W/mnt 2>/dev/null"
on_exit "echo ---- attach.log; cat $W/attach.log"
step() { echo "step: $* at $(cut -d' ' -f1 /proc/uptime)"; }
t=$EPOCHREALTIME
XBD_ATTACH_LOG=$W/attach.log xbd attach vm1 --mount "$W/mnt" || {
	cat "$W/attach.log" 2>/dev/null
	fail "xbd attach failed"
}
echo "attach took $(awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}') s"
ls -l "$W/mnt"
xenstore-ls -f /local/domain/0/backend/vbd/0 | grep -E 'mode|state|params|physical' || true
step sha256
want=$(sha256sum < "$loop" | cut -d' ' -f1)
got=$(sha256sum < "$W/mnt/xvda" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "sha256 of DIR/xvda $got, backing device $want"
step domU-write
dd if="$W/mnt/xvda" bs=4096 skip=1024 count=256 2>/dev/null |
	cmp -s - <(yes XBD-DOMU-WROTE-THIS | head -c 1048576) ||
	fail "the domU's write is not in DIR/xvda"
step dd4k
dd if="$W/mnt/xvda" bs=4k count=512 2>/dev/null |
	cmp -s - <(dd if="$loop" bs=4k count=512 2>/dev/null) || fail "dd bs=4k differs"
dd if=/dev/zero of="$W/mnt/xvda" bs=4k count=1 conv=notrunc 2>/dev/null &&
	fail "a write to the read-only DIR/xvda succeeded"
# issue 13: what users run, read whole, with the times (each a new open:
# it starts with an empty cache)
step small-reads
secs() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}'; }
for args in "" bs=4k bs=1M "bs=4k iflag=direct"; do
	t=$EPOCHREALTIME
	# shellcheck disable=SC2086
	got=$(dd if="$W/mnt/xvda" $args 2>/dev/null | sha256sum | cut -d' ' -f1)
	echo "dd ${args:-(default block size)} of DIR/xvda (8 MiB): $(secs "$t") s"
	[ "$got" = "$want" ] || fail "dd ${args:-(default block size)} of DIR/xvda differs from the backing device"
done
t=$EPOCHREALTIME
got=$(sha256sum "$W/mnt/xvda" | cut -d' ' -f1)
echo "sha256sum DIR/xvda (8 MiB): $(secs "$t") s"
[ "$got" = "$want" ] || fail "sha256sum DIR/xvda $got, backing device $want"
step detach
detach_clean "$W/mnt" "$loop" "$want"

step cow
XBD_ATTACH_LOG=$W/attach.log xbd attach vm1 --mount "$W/mnt" --cow || fail "xbd attach --cow failed"
dd if=/dev/zero of="$W/mnt/xvda" bs=1M count=1 conv=notrunc,fsync 2>/dev/null ||
	fail "--cow: write refused"
[ "$(dd if="$W/mnt/xvda" bs=1M count=1 2>/dev/null | tr -d '\0' | wc -c)" = 0 ] ||
	fail "--cow: the write does not read back"
xbd detach "$W/mnt" || fail "xbd detach (cow) failed"
[ "$(sha256sum < "$loop" | cut -d' ' -f1)" = "$want" ] || fail "--cow changed the disk"
domu_alive vm1 || fail "the domU died"
echo "attach of a blkback disk: sha256 $want, detach clean"

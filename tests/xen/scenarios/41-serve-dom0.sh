#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# xbd serve hot-plugs a raw image into dom0 itself: dom0's own kernel
# blkfront (xen-blkfront) connects it as /dev/xvdc; dom0 reads the whole
# disk and writes a pattern through it, and both match the image; then
# `xbd detach 0 xvdc` makes /dev/xvdc go and leaves no xenstore node.
# timeout: 120
. "$(dirname "$0")/lib.sh"

img=$W/dom0.img
vdev=xvdc
dev=/dev/$vdev
devid=51744 # 202<<8 | 2<<4
mib=1048576
serve_log=$W/serve.log
on_failure xbd_diag "$serve_log" Domain-0

[ -d /sys/bus/xen/drivers/vbd ] || modprobe xen-blkfront ||
	fail "dom0 has no kernel blkfront (modprobe xen-blkfront)"
[ ! -e $dev ] || fail "$dev exists before xbd serves it"
dd if=/dev/urandom of="$img" bs=$mib count=32 2>/dev/null || fail "cannot make $img"
sum_before=$(sha256sum < "$img" | cut -d' ' -f1)

t0=$(uptime_s)
xbd serve Domain-0 --image "$img" --vdev $vdev --log "$serve_log" ||
	fail "xbd serve Domain-0 --image $img --vdev $vdev exited $?"
echo "xbd serve returned after $(since_s "$t0")s: dom0's blkfront connected $vdev"
on_exit "xbd detach 0 $vdev >/dev/null 2>&1"
be=/local/domain/0/backend/xbd/0/$devid
fe=/local/domain/0/device/vbd/$devid
serve_pid=$(xenstore-read "$be/xbd-pid") || fail "no $be/xbd-pid"
wait_for 20 test -b $dev || fail "no $dev in dom0 20 s after xbd serve returned"
[ "$(blockdev --getsize64 $dev)" = $((32 * mib)) ] ||
	fail "$dev is $(blockdev --getsize64 $dev) bytes, not 32 MiB"
xbd list | grep -q "Domain-0 *0 *$vdev *Connected" ||
	fail "xbd list does not show Domain-0's $vdev connected: $(xbd list)"

# Reads: the whole disk through blkfront equals the image.
[ "$(sha256sum < $dev | cut -d' ' -f1)" = "$sum_before" ] ||
	fail "reading $dev does not give the image's bytes"

# Writes: 4 MiB of a pattern at 8 MiB, synced, are in the image, and
# nothing else changed.
yes XBD-DOM0-WRITE | head -c $((4 * mib)) > "$W/pattern"
{ head -c $((8 * mib)) "$img"; cat "$W/pattern"; tail -c $((20 * mib)) "$img"; } > "$W/expected"
dd if="$W/pattern" of=$dev bs=65536 seek=128 conv=fsync 2>/dev/null ||
	fail "writing to $dev failed"
cmp "$img" "$W/expected" ||
	fail "the image is not the old image with 4 MiB of pattern at 8 MiB"
blockdev --flushbufs $dev
cmp $dev "$W/expected" || fail "after the write, reading $dev does not give the image"

json=$(xbdsh stats 0 --json) || fail "xbdsh stats 0 --json failed"
reqs=$(json_obj "$(json_disk "$json" $vdev)" requests)
echo "xbd's counters for dom0's $vdev: $reqs"
n=$(json_int "$reqs" write) || exit 1
[ "$n" -gt 0 ] || fail "xbd counted no write ($reqs)"
n=$(json_int "$reqs" flush) || exit 1
m=$(json_int "$reqs" barrier) || exit 1
[ $((n + m)) -gt 0 ] || fail "dd conv=fsync sent no flush or barrier that xbd counted ($reqs)"

t0=$(uptime_s)
xbd detach 0 $vdev || fail "xbd detach 0 $vdev exited $?"
echo "xbd detach took $(since_s "$t0")s"
wait_for 15 eval "[ ! -e $dev ]" || fail "$dev is still there 15 s after xbd detach"
wait_for 10 eval "! kill -0 $serve_pid 2>/dev/null" ||
	fail "the serving process $serve_pid is still running"
for n in "$be" /local/domain/0/backend/xbd "$fe"; do
	! xenstore-exists "$n" 2>/dev/null || fail "$n is still in xenstore after detach"
done
! xbd list | grep -q "$vdev" || fail "xbd list still shows $vdev"
echo "dom0's blkfront read and wrote the served image; $dev went away on detach"

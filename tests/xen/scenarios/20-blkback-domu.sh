#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A PV domU boots with a disk served by the kernel's blkback (phy: on a
# loop device); its job reads the whole disk, writes 1 MiB at 8 MiB and
# reports checksums, which dom0 checks against the backing file.
# timeout: 150
. "$(dirname "$0")/lib.sh"

img=$W/disk.img
dd if=/dev/urandom of="$img" bs=1M count=16 2>/dev/null || fail "cannot make $img"
before=$(sha256sum < "$img" | cut -d' ' -f1)
yes XBD-DOMU-WRITE | head -c 1048576 > "$W/written"
loop_attach loop "$img"

cat > "$W/job.sh" <<'JOB'
. /lib/xbd-domu.sh
wait_dev /dev/xvda || exit 1
report size "$(blockdev --getsize64 /dev/xvda)"
report before "$(sha256sum < /dev/xvda | cut -d' ' -f1)"
yes XBD-DOMU-WRITE | head -c 1048576 |
	dd of=/dev/xvda bs=4096 seek=2048 conv=fsync 2>/dev/null || exit 2
blockdev --flushbufs /dev/xvda
report after "$(sha256sum < /dev/xvda | cut -d' ' -f1)"
JOB
domu_start vm1 --disk "phy:$loop,xvda,w" --script "$W/job.sh"
domu_wait vm1 '^XBD-DOMU BOOTED' 60
domu_wait_exit vm1 60

size=$(domu_result vm1 size)
[ "$size" = 16777216 ] || fail "domU saw a ${size:-?}-byte disk, not 16 MiB"
[ "$(domu_result vm1 before)" = "$before" ] ||
	fail "domU read $(domu_result vm1 before), backing file had $before"
after=$(sha256sum < "$img" | cut -d' ' -f1)
[ "$(domu_result vm1 after)" = "$after" ] ||
	fail "after writing, domU saw $(domu_result vm1 after), backing file has $after"
dd if="$img" bs=4096 skip=2048 count=256 2>/dev/null | cmp -s - "$W/written" ||
	fail "the domU's 1 MiB at offset 8 MiB is not in the backing file"
[ "$after" != "$before" ] || fail "the backing file did not change"
echo "domU read and wrote its blkback disk: sha256 $after"

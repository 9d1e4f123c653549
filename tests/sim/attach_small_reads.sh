#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end: what users run on an attached disk, read with the block
# sizes they use (issue 13).  dd with its default 512-byte blocks, dd
# bs=4k, sha256sum, cat and cp read DIR/xvda and a partition through the
# kernel's page cache; dd iflag=direct goes straight to the ring.  Each
# must give the image's bytes (sha256).  The attach process must stay
# under 64 MiB of resident memory meanwhile, page cache or not.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
requires_prog sfdisk
start_sim

img=$T/disk.img
make_random_image "$img" 48
# one partition at an odd place, so that its reads are not aligned to
# the disk's pages
printf 'label: dos\nstart=2049, size=40000, type=83\n' | sfdisk -q "$img" ||
	die "sfdisk"
sum=$(sha256sum <"$img" | cut -d' ' -f1)
psum=$(dd if="$img" bs=512 skip=2049 count=40000 status=none | sha256sum | cut -d' ' -f1)
vm1_with_xvda "$img"
# Under ASan freed memory waits in a quarantine before reuse, which is
# not the export's: without it the budget below holds there too (the
# shadow and redzones fit in it)
ASAN_OPTIONS="${ASAN_OPTIONS:-}:quarantine_size_mb=0:thread_local_quarantine_size_kb=0" \
	attach vm1 "$T/mnt" || die "attach"
pid=$(sim_pid "attach vm1") || die "no attach process"
f=$T/mnt/xvda

check() { # DESC SUM COMMAND...: COMMAND's output hashes to SUM
	local desc=$1 want=$2 got
	shift 2
	got=$("$@" | sha256sum | cut -d' ' -f1)
	[ "$got" = "$want" ] && ok "$desc equals the image" || fail "$desc differs from the image"
}
check "dd (default block size)" "$sum" dd if="$f" status=none
check "dd bs=4k" "$sum" dd if="$f" bs=4k status=none
check "dd bs=1M" "$sum" dd if="$f" bs=1M status=none
check "dd bs=4k iflag=direct" "$sum" dd if="$f" bs=4k iflag=direct status=none
check "cat" "$sum" cat "$f"
got=$(sha256sum "$f" | cut -d' ' -f1)
[ "$got" = "$sum" ] && ok "sha256sum FILE equals the image's" || fail "sha256sum FILE: $got"
cp "$f" "$T/copy" && cmp -s "$T/copy" "$img" && ok "cp equals the image" || fail "cp differs"
rm -f "$T/copy"
[ -e "$T/mnt/xvda1" ] || fail "no xvda1"
check "dd (default block size) of xvda1" "$psum" dd if="$T/mnt/xvda1" status=none
check "dd bs=4k of xvda1" "$psum" dd if="$T/mnt/xvda1" bs=4k status=none
# a read that starts inside one cached page and ends in another
a=$(dd if="$T/mnt/xvda1" bs=1 skip=4093 count=9000 status=none | sha256sum)
b=$(dd if="$img" bs=1 skip=$((2049 * 512 + 4093)) count=9000 status=none | sha256sum)
[ "$a" = "$b" ] && ok "unaligned 9000 bytes of xvda1" || fail "unaligned read of xvda1 differs"

# many readers at once, cached (readahead) and direct (1 MiB each), and
# fio's largest reads at a deep queue, to see the memory the export
# keeps whatever the workload
for i in 1 2 3 4 5 6 7 8; do
	dd if="$f" of=/dev/null bs=$((i * 4))k status=none &
	dd if="$f" of=/dev/null bs=1M iflag=direct status=none &
done
if command -v fio >/dev/null; then
	for bs in 1M 4k; do
		fio --name=rss --filename="$f" --readonly --rw=randread --bs=$bs \
			--ioengine=libaio --iodepth=64 --direct=1 --numjobs=2 \
			--time_based --runtime=2 --output=/dev/null &
	done
fi
wait
hwm=$(awk '/^VmHWM/ {print $2}' "/proc/$pid/status")
if [ -n "$hwm" ] && [ "$hwm" -le $((64 << 10)) ]; then
	ok "attach's peak resident memory: $hwm KiB (<= 64 MiB)"
else
	fail "attach's peak resident memory: ${hwm:-?} KiB (> 64 MiB)"
fi

"$xbd" detach "$T/mnt" || fail "detach"
finish

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# attach --files against a read-only loop mount of the same partition
# file, on the simulator: reading a 100 MiB file (cold: a fresh attach,
# a fresh loop mount), and `find` with stat over 20000 small files.
# Prints seconds and the tree's share of the loop mount's speed.
#   tests/bench/files.sh [BUILD]    (run under flock /work/bench.lock)
export XBD_BUILD=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/../sim/attach_common.inc"
need_fuse_root
src=$T/files
mkdir -p "$src"
python3 - "$src" <<'PY'
import os, sys
for d in range(20):
    os.mkdir(f"{sys.argv[1]}/d{d:02}")
    for f in range(1000):
        open(f"{sys.argv[1]}/d{d:02}/f{f:04}.txt", "w").write("x" * (f % 100))
PY
head -c $((100 << 20)) /dev/urandom >"$src/big.bin"
img=$T/disk.img
truncate -s 400M "$img"
printf 'label: gpt\nstart=2048, size=716800, type=linux\n' | sfdisk -q "$img"
mkfs.ext4 -q -F -E offset=$((2048 * 512)) -d "$src" "$img" 350M >/dev/null
start_sim
vm1_with_xvda "$img"
secs() { local t=$EPOCHREALTIME; "$@" >/dev/null 2>&1; awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}'; }
for run in 1 2 3; do
	attach vm1 "$T/mnt" --files || die attach
	mkdir -p "$T/fs"
	mount -o ro,loop "$T/mnt/xvda1" "$T/fs" || die "loop mount"
	tree_cat=$(secs cat "$T/mnt/files/xvda1/big.bin")
	loop_cat=$(secs cat "$T/fs/big.bin")
	tree_find=$(secs find "$T/mnt/files/xvda1" -printf '%s %m %T@\n')
	loop_find=$(secs find "$T/fs" -printf '%s %m %T@\n')
	umount "$T/fs"
	"$xbd" detach "$T/mnt"
	echo "run $run: cat 100 MiB: tree $tree_cat s, loop $loop_cat s" \
	     "($(awk -v a="$tree_cat" -v b="$loop_cat" 'BEGIN{printf "%.0f", 100*b/a}')% of loop speed);" \
	     "find 20k files: tree $tree_find s, loop $loop_find s" \
	     "($(awk -v a="$tree_find" -v b="$loop_find" 'BEGIN{printf "%.1f", a/b}')x)"
done
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
finish

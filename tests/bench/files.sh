#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# attach --files against a read-only loop mount of the same partition
# file, on the simulator: reading a 100 MiB file (cold: a fresh attach,
# a fresh loop mount; the image file stays in the page cache), and
# `find` with stat over 20000 small files.  XBD_BENCH_RUNS rounds (5),
# tree and loop mount in turns, the first of them alternating between
# rounds; prints each round, the medians and whether issue 15's targets
# are met: cat at >= 50% of the loop mount's speed, find within 2x its
# time.
#   tests/bench/files.sh [BUILD]    (run under flock /work/bench.lock)
export XBD_BUILD=$(cd "${1:-build}" && pwd)
. "$(dirname "$0")/../sim/attach_common.inc"
need_fuse_root
runs=${XBD_BENCH_RUNS:-5}
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
secs() { local t=$EPOCHREALTIME; "$@" >/dev/null 2>&1; awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.3f", b-a}'; }
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1} END {
	if (NR % 2) print v[(NR + 1) / 2]; else printf "%.3f\n", (v[NR / 2] + v[NR / 2 + 1]) / 2 }'; }
tc=() lc=() tf=() lf=()
for ((run = 1; run <= runs; run++)); do
	attach vm1 "$T/mnt" --files || die attach
	mkdir -p "$T/fs"
	mount -o ro,loop "$T/mnt/xvda1" "$T/fs" || die "loop mount"
	if ((run % 2)); then
		tree_cat=$(secs cat "$T/mnt/files/xvda1/big.bin")
		loop_cat=$(secs cat "$T/fs/big.bin")
		tree_find=$(secs find "$T/mnt/files/xvda1" -printf '%s %m %T@\n')
		loop_find=$(secs find "$T/fs" -printf '%s %m %T@\n')
	else
		loop_cat=$(secs cat "$T/fs/big.bin")
		tree_cat=$(secs cat "$T/mnt/files/xvda1/big.bin")
		loop_find=$(secs find "$T/fs" -printf '%s %m %T@\n')
		tree_find=$(secs find "$T/mnt/files/xvda1" -printf '%s %m %T@\n')
	fi
	umount "$T/fs"
	"$xbd" detach "$T/mnt"
	tc+=("$tree_cat") lc+=("$loop_cat") tf+=("$tree_find") lf+=("$loop_find")
	echo "run $run: cat 100 MiB: tree $tree_cat s, loop $loop_cat s;" \
	     "find 20k files: tree $tree_find s, loop $loop_find s"
done
mtc=$(median "${tc[@]}") mlc=$(median "${lc[@]}")
mtf=$(median "${tf[@]}") mlf=$(median "${lf[@]}")
pct=$(awk -v a="$mtc" -v b="$mlc" 'BEGIN{printf "%.0f", 100*b/a}')
fx=$(awk -v a="$mtf" -v b="$mlf" 'BEGIN{printf "%.2f", a/b}')
met() { awk -v v="$1" -v op="$2" -v t="$3" 'BEGIN{ok = op == ">=" ? v >= t : v <= t
	print ok ? "met" : "MISSED"}'; }
echo "medians of $runs: cat 100 MiB: tree $mtc s, loop $mlc s:" \
     "$pct% of loop speed (target >= 50%: $(met "$pct" '>=' 50))"
echo "medians of $runs: find 20k files: tree $mtf s, loop $mlf s:" \
     "${fx}x (target <= 2x: $(met "$fx" '<=' 2))"
echo "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
finish

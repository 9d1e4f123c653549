# SPDX-License-Identifier: GPL-2.0-or-later
# Shared by tests/bench/*.sh (sourced, not run): the build, a work
# directory that always goes away, medians, dd and fio measurements,
# a simulated Xen of the bench's own, and the summary rows that run.sh
# collects.  Benchmarks are not tests: nothing here asserts a target,
# it measures and says which targets were met.  wait_for, cleanup_fn and
# the work directory are tests/lib/functions.sh's.
. "$(dirname "${BASH_SOURCE[0]}")/../lib/functions.sh"
export LC_ALL=C

bench_top=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
B=${1:-${XBD_BUILD:-build}}
case "$B" in /*) ;; *) B=$bench_top/$B ;; esac
xbd=$B/xbd

RUNS=${XBD_BENCH_RUNS:-5}           # runs per figure; the median is kept
IMG_MB=${XBD_BENCH_IMG_MB:-1024}    # the image: 1 GiB
FIO_TIME=${XBD_BENCH_FIO_TIME:-5}   # seconds per fio run
IO_TIME=${XBD_BENCH_IO_TIME:-3}     # seconds per `xbd sim vm io` run
# the image lives in memory (tmpfs pages are page cache) unless told
# otherwise: no disk, no writeback in the figures
make_workdir xbd-bench "${XBD_BENCH_DIR:-/dev/shm}"
W=$T
export XBD_RUN_DIR=$W/run XBD_ATTACH_LOG=$W/attach.log
unset XBD_PLATFORM

# at_exit COMMAND...: run at exit, quietly, as one string through eval
# (last registered first, before $W goes).
_quiet_eval() { eval "$1" >/dev/null 2>&1; }
at_exit() { cleanup_fn _quiet_eval "$*"; }

say() { printf '%s\n' "$*" >&2; }

# summary NAME VALUE UNIT TARGET-NOTE: one line for run.sh's summary.
summary() {
	[ -n "${XBD_BENCH_SUMMARY:-}" ] && printf '%s\n' "$*" >>"$XBD_BENCH_SUMMARY"
	return 0
}

# median V...: the median of numbers (the mean of the middle two for an
# even count); "-" when there is none.
median() {
	[ $# -eq 0 ] && { echo -; return; }
	printf '%s\n' "$@" | sort -g | awk '{v[NR] = $1}
		END {if (NR % 2) print v[(NR + 1) / 2];
		     else printf "%.6g\n", (v[NR / 2] + v[NR / 2 + 1]) / 2}'
}

# ratio A B [DIGITS]: A/B, or "-" when either is missing or B is 0.
ratio() {
	awk -v a="$1" -v b="$2" -v d="${3:-2}" 'BEGIN {
		if (a == "-" || b == "-" || a == "" || b == "" || b + 0 == 0) print "-";
		else printf "%.*f\n", d, a / b }'
}

# ge A B: A >= B (numbers; false when A is missing).
ge() { awk -v a="$1" -v b="$2" 'BEGIN { exit !(a != "-" && a != "" && a + 0 >= b + 0) }'; }

# fmt V [DIGITS]: a number with DIGITS decimals, or "-".
fmt() { awk -v v="$1" -v d="${2:-0}" 'BEGIN { if (v == "-" || v == "") print "-"; else printf "%.*f\n", d, v }'; }

load() { cut -d' ' -f1-3 /proc/loadavg; }

# drop_file_cache FILE: drops FILE's own pages from the page cache
# (posix_fadvise DONTNEED); used on FUSE files so that no export reads
# from a cache left by an earlier run.  The backing image is untouched.
drop_file_cache() { dd if="$1" iflag=nocache count=0 status=none 2>/dev/null; true; }

# warm FILE: reads FILE so that it sits in the page cache; fails when
# fincore says less than all of it is resident.
warm() {
	local f=$1 res size
	cat "$f" >/dev/null
	command -v fincore >/dev/null || return 0
	res=$(fincore -b -n -o RES "$f" 2>/dev/null | tr -d ' ')
	size=$(stat -c %s "$f")
	[ -z "$res" ] || [ "$res" -ge "$size" ] || { say "bench: $f: only $res of $size bytes in the page cache"; return 1; }
}

# make_image FILE MiB: random contents (generated here, never fetched).
make_image() {
	head -c $(($2 << 20)) /dev/urandom >"$1"
}

# make_fs_disk FILE MiB FS_MiB NFILES: a disk image of random bytes
# whose MBR has one partition, at 1 MiB and FS_MiB long, holding an ext4
# file system of NFILES small files (0.5-16 KiB of random bytes, 200 to
# a directory), all made here.  What forensic tools and a loop mount
# walk; the rest of the disk is what dd, cat and fio read.
FS_OFFSET=$((1 << 20))
make_fs_disk() {
	local f=$1 mb=$2 fsmb=$3 n=$4 tree=$W/fs-tree
	make_image "$f" "$mb" || return 1
	python3 - "$tree" "$n" <<'PY' || return 1
import os, sys
root, n = sys.argv[1], int(sys.argv[2])
rnd = os.urandom(1 << 20)
for i in range(n):
    d = os.path.join(root, "d%03d" % (i // 200))
    if i % 200 == 0:
        os.makedirs(d, exist_ok=True)
    size = 512 + (i * 7919) % (16 << 10)
    off = (i * 104729) % ((1 << 20) - size)
    with open(os.path.join(d, "f%05d" % i), "wb") as out:
        out.write(rnd[off:off + size])
PY
	mkfs.ext4 -q -F -d "$tree" -E lazy_itable_init=0,lazy_journal_init=0 \
		"$W/fs.img" "${fsmb}M" || return 1
	rm -rf "$tree"
	printf 'label: dos\nstart=%d, size=%d, type=83\n' $((FS_OFFSET / 512)) $((fsmb * 2048)) |
		sfdisk -q "$f" || return 1
	dd if="$W/fs.img" of="$f" bs=1M seek=$((FS_OFFSET >> 20)) conv=notrunc status=none || return 1
	rm -f "$W/fs.img"
}

# dd_mbps FILE [DD-ARGS...]: reads FILE with dd (bs=1M, whole, unless
# DD-ARGS say otherwise); prints MB/s (10^6 B/s).
dd_mbps() {
	local out f=$1
	shift
	[ $# -gt 0 ] || set -- bs=1M
	out=$(dd if="$f" of=/dev/null "$@" 2>&1) || { say "dd $f $*: $out"; return 1; }
	echo "$out" | awk '/bytes/ && /copied/ {
		for (i = 1; i <= NF; i++) if ($i ~ /^s,?$/) t = $(i - 1);
		if ($1 + 0 > 0 && t + 0 > 0) { printf "%.1f\n", $1 / t / 1e6; ok = 1 } }
		END { exit !ok }'
}

# fio_randread FILE DIRECT [QD]: 4 KiB random reads over all of FILE,
# queue depth QD (32; libaio, one job), FIO_TIME seconds; prints IOPS.
fio_randread() {
	local out
	out=$(fio --name=randread --filename="$1" --readonly --rw=randread --bs=4k \
		--ioengine=libaio --iodepth="${3:-32}" --direct="$2" --numjobs=1 \
		--invalidate=0 --randrepeat=0 --norandommap \
		--time_based --runtime="$FIO_TIME" --output-format=json 2>&1) ||
		{ say "fio $1: $(echo "$out" | tail -n 3)"; return 1; }
	echo "$out" | sed -n '/^{/,$p' | jq -e '.jobs[0].read.iops' 2>/dev/null |
		awk '$1 > 0 { printf "%.0f\n", $1; ok = 1 } END { exit !ok }' ||
		{ say "fio $1: no IOPS in: $(echo "$out" | tail -n 3)"; return 1; }
}

# repeat N CMD...: runs CMD N times (each prints one number); prints the
# median, or fails when no run gave a number.  The single values go to
# stderr, so the log shows the spread.
repeat() {
	local n=$1 i v vals=()
	shift
	for ((i = 0; i < n; i++)); do
		v=$("$@") && [ -n "$v" ] && vals+=("$v")
	done
	[ ${#vals[@]} -gt 0 ] || return 1
	say "    runs: ${vals[*]}"
	median "${vals[@]}"
}

is_mounted() { grep -q " $1 " /proc/self/mounts; }

# is_tmpfs PATH
is_tmpfs() { [ "$(stat -f -c %T "$1" 2>/dev/null)" = tmpfs ]; }

# ---- the simulated Xen ------------------------------------------------

sim_dir=
# use_sim DIR: later xbd commands use the sim in DIR (each sim gets its
# own run directory too, so two sims' control sockets never meet).
use_sim() {
	sim_dir=$1
	export XBD_SIM_DIR=$1 XENSTORED_PATH=$1/xenstored.sock XBD_RUN_DIR=$1.run
}

# start_sim [NAME]: a sim of the bench's own in $W/NAME (default sim),
# stopped at exit, and used from now on.  Fails (with why in $why) when
# it does not start.
start_sim() {
	local d=$W/${1:-sim}
	[ -x "$xbd" ] || { why="no $xbd (run make first)"; return 1; }
	if ! "$xbd" sim start --dir "$d" --owner-pid $$ >"$d.out" 2>&1; then
		why="the sim does not start: $(head -c 200 "$d.out")"
		return 1
	fi
	at_exit "'$xbd' sim stop --dir '$d'"
	use_sim "$d"
}

# vm_create NAME [FILE,VDEV]...: a sim VM whose simulated guest runs
# (and whose disks, if any, the sim's blkback serves); sets DOMID, or
# fails with $why.
vm_create() {
	local name=$1 args=() d out
	shift
	for d in "$@"; do args+=(--disk "$d"); done
	if ! out=$("$xbd" sim vm create "$name" "${args[@]}" 2>&1); then
		why="xbd sim vm create $name ${args[*]}: $(echo "$out" | head -n1)"
		return 1
	fi
	DOMID=$(echo "$out" | tail -n1)
	[ $# -gt 0 ] && { ensure_blkback "$DOMID" || return 1; }
	if ! wait_for 5 test -S "$sim_dir/guest-$DOMID.sock"; then
		# older sims run a guest only when told to
		"$xbd" sim vm destroy "$name" >/dev/null 2>&1
		if [ $# -gt 0 ] || ! out=$("$xbd" sim vm create "$name" -- "$xbd" sim guest 2>&1) ||
			! DOMID=$(echo "$out" | tail -n1) ||
			! wait_for 5 test -S "$sim_dir/guest-$DOMID.sock"; then
			why="the sim runs no simulated guest for $name (no $sim_dir/guest-$DOMID.sock)"
			return 1
		fi
	fi
}

# ensure_blkback DOMID: the sim's blkback serves the VM's backend/vbd
# devices; a sim that does not run one itself gets one from the bench.
own_blkback=
ensure_blkback() {
	local be
	command -v xenstore-list >/dev/null || return 0
	be=$(xenstore-list "/local/domain/0/backend/vbd/$1" 2>/dev/null | head -n1)
	[ -n "$be" ] || return 0
	be=/local/domain/0/backend/vbd/$1/$be
	be_taken() { [ "$(xenstore-read "$be/state" 2>/dev/null)" != 1 ]; }
	wait_for 3 be_taken && return 0
	if [ -z "$own_blkback" ]; then
		"$xbd" sim blkback >"$W/blkback.log" 2>&1 &
		own_blkback=$!
		at_exit "kill $own_blkback; wait $own_blkback"
	fi
	wait_for 5 be_taken || { why="nobody serves $be (xbd sim blkback: $(head -c 200 "$W/blkback.log"))"; return 1; }
}

# vm_io VM VDEV ARGS...: one `xbd sim vm io` run; prints "MBPS IOPS IOS"
# (IOS: the I/Os done).
vm_io() {
	local out
	out=$("$xbd" sim vm io "$@" 2>&1) || { say "xbd sim vm io $*: $out"; return 1; }
	echo "$out" | awk '/MB\/s/ && /IOPS/ {
		for (i = 1; i <= NF; i++) {
			if ($(i + 1) ~ /^MB\/s/) m = $i;
			if ($(i + 1) ~ /^IOPS/) o = $i;
			if ($(i + 1) == "I/Os") n = $i }
		if (m != "") { print m + 0, o + 0, n + 0; ok = 1 } }
		END { exit !ok }' || { say "xbd sim vm io $*: cannot read: $out"; return 1; }
}

# cpu_ns PID...: CPU time used so far by all threads of the processes, ns.
cpu_ns() {
	local p
	for p in "$@"; do cat /proc/"$p"/task/*/schedstat 2>/dev/null; done |
		awk '{ t += $1 } END { printf "%.0f\n", t }'
}

# sim_guest_pid: the pid of the simulated guest of the current sim.
sim_guest_pid() {
	local p
	for p in /proc/[0-9]*; do
		[[ "$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" == *"sim guest"* ]] || continue
		tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -qx "XBD_SIM_DIR=$sim_dir" || continue
		echo "${p#/proc/}"
		return 0
	done
	return 1
}

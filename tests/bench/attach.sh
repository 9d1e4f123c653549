#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Benchmark (issues 5 and 13): one disk image in memory, read five ways
# in one run:
#   raw       the image file itself
#   floor     tests/bench/fuse_floor.c: a FUSE file answered by one pread
#             on the thread that read the request, the least any FUSE
#             export can cost a reader (a ceiling for the three below
#             with one read at a time; at QD32 more threads can pass it)
#   qsd       qemu-storage-daemon's FUSE export of it
#   nbdfuse   nbdkit's file plugin + nbdfuse
#   xbd       `xbd attach` of a sim VM whose disk is the image, over the
#             sim ring (sim blkback -> user-space blkfront -> FUSE)
# For each, what users run: dd with its default 512-byte blocks and
# with bs=4k over the first SMALL_MB MiB, dd bs=1M, cat, 128 KiB reads
# (cp's) and sha256sum of the whole disk (MB/s), fio 4 KiB random reads
# at queue depth 1 and 32 (IOPS), and on the ext4 partition the image
# holds (FS_FILES small files): sleuthkit's fls -r, tar of it
# loop-mounted read-only, e2fsck -fn (seconds); the median of RUNS
# runs; then the ratios and issue 13's targets (each workload >= 1.5x
# qsd or >= 75% of the raw file, whichever is lower; dd bs=1M, cat and
# fio QD32 >= 3x qsd; QD1 >= 1.5x qsd; sha256sum >= 90% of the raw
# file's) and the attach process's peak RSS (<= 64 MiB).
#
# Fairness:
# - one image (random bytes made here), on tmpfs unless $XBD_BENCH_DIR
#   says otherwise: every reader gets its bytes from the same page cache;
# - all five are set up first and measured in turns (run 1 of each,
#   run 2 of each, ...), so load from elsewhere hits them alike;
# - before each FUSE run the FUSE file's own page cache is dropped
#   (fadvise DONTNEED on the FUSE file, not on the image): all four
#   exports cache reading opens and would otherwise serve repeats from
#   the cache (xbd's open empties it anyway).  dd, cat and sha256sum are
#   plain buffered reads, as a user runs them (the kernel's readahead
#   applies);
# - fio: libaio, iodepth 32, one job, O_DIRECT: all four FUSE servers
#   are libfuse 3 with async direct I/O, so 32 reads really are in flight
#   at the FUSE device for each (the floor answers them one at a time),
#   and no page cache of the FUSE file is
#   involved.  The raw file is read with O_DIRECT too when it is on
#   tmpfs (still memory); on another file system it is read buffered
#   (O_DIRECT would go to the disk).  psync with 32 jobs would give the
#   same concurrency, but adds 32 threads' switching on a 2-core machine
#   to every row and measures the scheduler as much as the export.
#
# Usage: tests/bench/attach.sh [BUILD]   (env: XBD_BENCH_RUNS, _IMG_MB,
#        _SMALL_MB, _FIO_TIME, _DIR, _FS_FILES, XBD_BENCH_ONLY="raw floor
#        qsd nbdfuse xbd", XBD_BENCH_WORKLOADS="dd512 dd4k dd1M cat cp128k
#        sha256 qd1 qd32 fls tar e2fsck": a subset, for a quick look)
. "$(dirname "$0")/lib.sh"

ONLY=${XBD_BENCH_ONLY:-raw floor qsd nbdfuse xbd}
bash "$bench_top/tests/bench/deps.sh" || say "bench: some peers may be missing (see above)"
for c in fio jq fls e2fsck mkfs.ext4 sfdisk losetup python3; do
	command -v $c >/dev/null ||
		{ echo "attach bench: needs $c (tests/bench/deps.sh installs it)"; exit 1; }
done

IMG=$W/disk.img
FS_FILES=${XBD_BENCH_FS_FILES:-20000}
FS_MB=384
[ "$IMG_MB" -ge $((FS_MB + 32)) ] || { echo "attach bench: XBD_BENCH_IMG_MB must be >= $((FS_MB + 32))"; exit 1; }
say "attach bench: making a ${IMG_MB} MiB disk (ext4 partition of $FS_FILES files) in $W"
make_fs_disk "$IMG" "$IMG_MB" "$FS_MB" "$FS_FILES" || { echo "attach bench: cannot make the disk image"; exit 1; }
warm "$IMG" || exit 1
# what an interrupted tar run leaves: its mount, its loop device
detach_loops() {
	local l
	umount "$W/fsmnt" 2>/dev/null
	for l in $(losetup -n -O NAME,BACK-FILE -l | awk -v w="$W" 'index($2, w) == 1 { print $1 }'); do
		losetup -d "$l"
	done
}
at_exit detach_loops
raw_direct=0
is_tmpfs "$IMG" && raw_direct=1

declare -A file pfile why_not
# the small-block dd runs read this much (a 512-byte dd of a whole GiB
# through an uncached export takes minutes)
SMALL_MB=${XBD_BENCH_SMALL_MB:-256}
[ "$SMALL_MB" -le "$IMG_MB" ] || SMALL_MB=$IMG_MB
targets=()
label() {
	case $1 in
	raw) echo "raw file (dd of the image)" ;;
	floor) echo "FUSE floor (fuse_floor.c)" ;;
	qsd) echo "qemu-storage-daemon FUSE" ;;
	nbdfuse) echo "nbdkit file + nbdfuse" ;;
	xbd) echo "xbd attach (sim ring)" ;;
	esac
}

want() { [[ " $ONLY " == *" $1 "* ]]; }

# ---- set-up: each sets file[T] or why_not[T] ---------------------------

setup_raw() { file[raw]=$IMG; }

# the least any FUSE export can do: tests/bench/fuse_floor.c answers
# each read with a pread on the thread that took it from /dev/fuse
setup_floor() {
	local d=$W/floor bin=$W/fuse_floor
	# shellcheck disable=SC2046
	if ! cc -std=gnu11 -O2 -o "$bin" "$bench_top/tests/bench/fuse_floor.c" \
		$(pkg-config --cflags --libs fuse3) >"$W/floor.log" 2>&1; then
		why_not[floor]="fuse_floor.c does not build: $(head -c 200 "$W/floor.log")"
		return
	fi
	mkdir -p "$d"
	"$bin" "$IMG" "$d" >>"$W/floor.log" 2>&1 &
	# SIGTERM: libfuse's handler leaves the loop and unmounts
	at_exit "kill $!; wait $!; umount '$d'"
	wait_for 10 is_mounted "$d" ||
		{ why_not[floor]="fuse_floor did not mount: $(head -c 200 "$W/floor.log")"; return; }
	file[floor]=$d/disk
}

setup_qsd() {
	local f=$W/qsd.img pid
	command -v qemu-storage-daemon >/dev/null ||
		{ why_not[qsd]="qemu-storage-daemon not installed (qemu-system-common)"; return; }
	touch "$f"
	qemu-storage-daemon \
		--blockdev driver=file,node-name=img,filename="$IMG",read-only=on,cache.direct=off,aio=threads \
		--export type=fuse,id=exp,node-name=img,mountpoint="$f",writable=off \
		>"$W/qsd.log" 2>&1 &
	pid=$!
	at_exit "kill $pid; wait $pid; fusermount3 -u '$f'"
	wait_for 10 is_mounted "$f" ||
		{ why_not[qsd]="qemu-storage-daemon did not mount: $(head -c 200 "$W/qsd.log")"; return; }
	file[qsd]=$f
}

setup_nbdfuse() {
	local d=$W/nbd sock=$W/nbd.sock pid
	command -v nbdkit >/dev/null || { why_not[nbdfuse]="nbdkit not installed"; return; }
	command -v nbdfuse >/dev/null || { why_not[nbdfuse]="nbdfuse not installed (libnbd-bin)"; return; }
	mkdir -p "$d"
	nbdkit -f -U "$sock" --readonly file file="$IMG" >"$W/nbdkit.log" 2>&1 &
	pid=$!
	at_exit "kill $pid; wait $pid"
	wait_for 10 test -S "$sock" ||
		{ why_not[nbdfuse]="nbdkit did not start: $(head -c 200 "$W/nbdkit.log")"; return; }
	# nbdfuse stays in the foreground; fusermount3 -u ends it
	nbdfuse -r "$d/disk" --unix "$sock" >"$W/nbdfuse.log" 2>&1 &
	at_exit "fusermount3 -u '$d'; wait $!"
	wait_for 10 is_mounted "$d" ||
		{ why_not[nbdfuse]="nbdfuse did not mount: $(head -c 200 "$W/nbdfuse.log")"; return; }
	file[nbdfuse]=$d/disk
}

setup_xbd() {
	local d=$W/xbd out
	start_sim || { why_not[xbd]=$why; return; }
	vm_create vm1 "$IMG,xvda" || { why_not[xbd]=$why; return; }
	mkdir -p "$d"
	at_exit "'$xbd' detach '$d' || umount -l '$d'"
	if ! out=$("$xbd" attach vm1 --mount "$d" 2>&1); then
		why_not[xbd]="xbd attach vm1: $(echo "$out" | head -n1)"
		return
	fi
	[ -e "$d/xvda" ] || { why_not[xbd]="xbd attach: no $d/xvda"; return; }
	file[xbd]=$d/xvda
	# its partition file, where the file-system workloads read
	[ -e "$d/xvda1" ] && pfile[xbd]=$d/xvda1
	at_pid=$(xenstore-read "$(xenstore-list /local/domain/0/device/xbd 2>/dev/null |
		head -n1 | sed 's|^|/local/domain/0/device/xbd/|')/xbd-pid" 2>/dev/null)
}

for t in raw floor qsd nbdfuse xbd; do
	want "$t" || continue
	targets+=("$t")
	"setup_$t"
	f=${file[$t]:-}
	[ -n "$f" ] || continue
	# the export must give the image's bytes, or its figures mean nothing
	if [ "$(stat -L -c %s "$f")" != "$(stat -c %s "$IMG")" ] || ! cmp -s -n 16M "$f" "$IMG" ||
		! cmp -s -i $(((IMG_MB - 16) << 20)) "$f" "$IMG"; then
		why_not[$t]="$f does not hold the image's bytes"
		unset "file[$t]"
	fi
done

# ---- measurements, in turns --------------------------------------------

# workload NAME UNIT TARGET-KIND DESCRIPTION: the columns, in order.
# TARGET-KIND: small (>= 1.5x qsd or >= 0.75x raw, the lower), qsd15
# (>= 1.5x qsd), qsd3 (>= 3x qsd), raw90 (>= 0.9x raw).  Unit s: the
# wall time of the whole walk (lower is better; ratios and targets are
# taken on its inverse, the speed).
wl_names=()
declare -A wl_unit wl_kind wl_desc
workload() { wl_names+=("$1"); wl_unit[$1]=$2; wl_kind[$1]=$3; wl_desc[$1]=$4; }
workload dd512 MB/s small "dd if=FILE of=/dev/null count=$((SMALL_MB * 2048)) (dd's default 512-byte blocks, first $SMALL_MB MiB)"
workload dd4k MB/s small "dd if=FILE of=/dev/null bs=4k count=$((SMALL_MB * 256)) (first $SMALL_MB MiB)"
workload dd1M MB/s qsd3 "dd if=FILE of=/dev/null bs=1M"
workload cat MB/s qsd3 "cat FILE >/dev/null"
workload cp128k MB/s small "dd if=FILE of=/dev/null bs=128k (cp's read size)"
workload sha256 MB/s raw90 "sha256sum FILE"
workload qd1 IOPS qsd15 "fio 4k randread, libaio, iodepth 1, direct=1, ${FIO_TIME}s"
workload qd32 IOPS qsd3 "fio 4k randread, libaio, iodepth 32, direct=1, ${FIO_TIME}s"
workload fls s small "fls -r -o $((FS_OFFSET / 512)) FILE (ext4, $FS_FILES files)"
workload tar s small "tar cf - of the partition loop-mounted read-only, | cat >/dev/null"
workload e2fsck s small "e2fsck -fn of the partition"
if [ -n "${XBD_BENCH_WORKLOADS:-}" ]; then
	keep=()
	for w in "${wl_names[@]}"; do [[ " $XBD_BENCH_WORKLOADS " == *" $w "* ]] && keep+=("$w"); done
	wl_names=("${keep[@]}")
	[ ${#wl_names[@]} -gt 0 ] || { echo "attach bench: XBD_BENCH_WORKLOADS names no workload"; exit 1; }
fi

# timed_mbps BYTES CMD...: runs CMD; prints BYTES / its wall time in MB/s.
timed_mbps() {
	local bytes=$1 t0 t1
	shift
	t0=$EPOCHREALTIME
	"$@" >/dev/null 2>"$W/timed.err" || { say "$*: $(head -c 200 "$W/timed.err")"; return 1; }
	t1=$EPOCHREALTIME
	awk -v b="$bytes" -v a="$t0" -v z="$t1" 'BEGIN { if (z > a) printf "%.1f\n", b / (z - a) / 1e6; else exit 1 }'
}
# timed_s CMD...: runs CMD; prints its wall time in seconds.
timed_s() {
	local t0 t1
	t0=$EPOCHREALTIME
	"$@" >/dev/null 2>"$W/timed.err" || { say "$*: $(head -c 200 "$W/timed.err")"; return 1; }
	t1=$EPOCHREALTIME
	awk -v a="$t0" -v z="$t1" 'BEGIN { printf "%.3f\n", z - a }'
}
cat_file() { cat "$1"; }
fls_walk() { fls -r -o $((FS_OFFSET / 512)) "$1"; }
# the partition: xbd's own partition file, the others' whole file at
# the partition's offset (e2fsprogs' FILE?offset=N)
part_spec() { if [ -n "${pfile[$1]:-}" ]; then echo "${pfile[$1]}"; else echo "${file[$1]}?offset=$FS_OFFSET"; fi; }
e2fsck_part() { e2fsck -fn "$1"; }
# tar_part TARGET: loop-mounts the partition read-only and reads every
# file with tar (through a pipe: GNU tar reads no file when its archive
# is /dev/null itself)
tar_part() {
	local t=$1 loop m=$W/fsmnt rc
	if [ -n "${pfile[$t]:-}" ]; then
		loop=$(losetup -f --show -r "${pfile[$t]}") || return 1
	else
		loop=$(losetup -f --show -r -o "$FS_OFFSET" --sizelimit $((FS_MB << 20)) "${file[$t]}") || return 1
	fi
	mkdir -p "$m"
	if mount -t ext4 -o ro,noload "$loop" "$m"; then
		tar cf - -C "$m" . | cat >/dev/null
		rc=$?
		umount "$m"
	else
		rc=1
	fi
	losetup -d "$loop"
	return $rc
}

declare -A runs val
one() { # WORKLOAD TARGET
	local w=$1 t=$2 f=${file[$2]} v direct=1 size
	if [ "$t" != raw ]; then
		drop_file_cache "$f"
		[ -z "${pfile[$t]:-}" ] || drop_file_cache "${pfile[$t]}"
	fi
	size=$(stat -L -c %s "$f")
	[ "$t" = raw ] && direct=$raw_direct
	case $w in
	dd512) v=$(dd_mbps "$f" count=$((SMALL_MB * 2048))) ;;
	dd4k) v=$(dd_mbps "$f" bs=4k count=$((SMALL_MB * 256))) ;;
	dd1M) v=$(dd_mbps "$f" bs=1M) ;;
	cat) v=$(timed_mbps "$size" cat_file "$f") ;;
	cp128k) v=$(dd_mbps "$f" bs=128k) ;;
	sha256) v=$(timed_mbps "$size" sha256sum "$f") ;;
	qd1) v=$(fio_randread "$f" "$direct" 1) ;;
	qd32) v=$(fio_randread "$f" "$direct" 32) ;;
	fls) v=$(timed_s fls_walk "$f") ;;
	tar) v=$(timed_s tar_part "$t") ;;
	e2fsck) v=$(timed_s e2fsck_part "$(part_spec "$t")") ;;
	esac && [ -n "$v" ] && runs[$w,$t]+=" $v"
}

load0=$(load)
for ((r = 1; r <= RUNS; r++)); do
	say "attach bench: run $r/$RUNS (load $(load))"
	for w in "${wl_names[@]}"; do
		for t in "${targets[@]}"; do [ -n "${file[$t]:-}" ] && one "$w" "$t"; done
	done
done
for t in "${targets[@]}"; do
	[ -n "${file[$t]:-}" ] || continue
	line="  $t:"
	for w in "${wl_names[@]}"; do
		# shellcheck disable=SC2086
		val[$w,$t]=$(median ${runs[$w,$t]:-})
		line+=" $w${runs[$w,$t]:-} |"
	done
	say "$line"
done

# ---- the table ---------------------------------------------------------

# spd WORKLOAD TARGET: the median as a speed (higher is better): the
# inverse of a time, the figure itself otherwise; "-" when missing.
spd() {
	local v=${val[$1,$2]:--}
	if [ "${wl_unit[$1]}" = s ]; then
		awk -v v="$v" 'BEGIN { if (v == "-" || v == "" || v + 0 == 0) print "-"; else printf "%.6g\n", 1 / v }'
	else
		echo "$v"
	fi
}
# cell WORKLOAD TARGET: the median as the table shows it
cell() { if [ "${wl_unit[$1]}" = s ]; then fmt "${val[$1,$2]:--}" 2; else fmt "${val[$1,$2]:--}"; fi; }

echo
echo "== xbd attach vs peers: ${IMG_MB} MiB image in page cache ($(stat -f -c %T "$W")), median of $RUNS runs =="
for w in "${wl_names[@]}"; do echo "   $w: ${wl_desc[$w]} (${wl_unit[$w]})"; done
echo "   load average before/after: $load0 / $(load); $(date -u '+%F %H:%M UTC')"
printf '%-30s' "reader"
for w in "${wl_names[@]}"; do printf ' %8s' "$w"; done
echo
printf '%-30s' ""
for w in "${wl_names[@]}"; do printf ' %8s' "${wl_unit[$w]}"; done
echo
for t in "${targets[@]}"; do
	printf '%-30s' "$(label "$t")"
	if [ -n "${file[$t]:-}" ]; then
		for w in "${wl_names[@]}"; do printf ' %8s' "$(cell "$w" "$t")"; done
		echo
	else
		echo " not run: ${why_not[$t]:-?}"
	fi
done
echo
printf '%-30s' "speed ratio"
for w in "${wl_names[@]}"; do printf ' %8s' "$w"; done
echo
for t in qsd nbdfuse raw floor; do
	want "$t" || continue
	printf '%-30s' "xbd / $t"
	for w in "${wl_names[@]}"; do printf ' %8s' "$(ratio "$(spd "$w" xbd)" "$(spd "$w" "$t")")"; done
	echo
done

# target WORKLOAD: prints "RATIO-TEXT" and "VERDICT" (two lines) for
# issue 13's target, on speeds.
target() {
	local w=$1 x q r need
	x=$(spd "$w" xbd) q=$(spd "$w" qsd) r=$(spd "$w" raw)
	case ${wl_kind[$w]} in
	small)
		need=$(awk -v q="$q" -v r="$r" 'BEGIN {
			a = (q == "-" || q == "") ? -1 : 1.5 * q; b = (r == "-" || r == "") ? -1 : 0.75 * r;
			if (a < 0 && b < 0) print "-"; else if (a < 0) print b; else if (b < 0) print a;
			else print (a < b ? a : b) }')
		echo "xbd/qsd $(ratio "$x" "$q") (>= 1.5), xbd/raw $(ratio "$x" "$r") (>= 0.75): either" ;;
	qsd15) need=$(awk -v q="$q" 'BEGIN { if (q == "-" || q == "") print "-"; else print 1.5 * q }')
		echo "xbd/qsd $(ratio "$x" "$q") (>= 1.5)" ;;
	qsd3) need=$(awk -v q="$q" 'BEGIN { if (q == "-" || q == "") print "-"; else print 3 * q }')
		echo "xbd/qsd $(ratio "$x" "$q") (>= 3)" ;;
	raw90) need=$(awk -v r="$r" 'BEGIN { if (r == "-" || r == "") print "-"; else print 0.9 * r }')
		echo "xbd/raw $(ratio "$x" "$r") (>= 0.90)" ;;
	esac
	if [ "$x" = - ] || [ "$need" = - ]; then echo "not measured"
	elif ge "$x" "$need"; then echo "met"
	else echo "MISSED"; fi
}
echo
for w in "${wl_names[@]}"; do
	mapfile -t tv < <(target "$w")
	printf 'target %-8s %-58s -> %s\n' "$w:" "${tv[0]}" "${tv[1]}"
	summary "attach|$w: ${tv[0]}|$(cell "$w" xbd) ${wl_unit[$w]}|${tv[1]}"
done
# the attach process's memory: its peak resident set over the whole run
if [ -n "${at_pid:-}" ] && [ -r "/proc/$at_pid/status" ]; then
	hwm=$(awk '/^VmHWM:/ { printf "%.1f", $2 / 1024 }' "/proc/$at_pid/status")
	verdict=MISSED
	ge 64 "$hwm" && verdict=met
	printf 'target %-8s %-58s -> %s\n' "rss:" "xbd attach peak RSS (VmHWM) $hwm MiB (<= 64)" "$verdict"
	summary "attach|peak RSS (<= 64 MiB)|$hwm MiB|$verdict"
fi
for t in "${targets[@]}"; do
	if [ -n "${file[$t]:-}" ]; then
		summary "attach|$(label "$t")|$(fmt "${val[dd1M,$t]:--}") MB/s|$(fmt "${val[qd32,$t]:--}") IOPS"
	else
		summary "attach|$(label "$t")|not run: ${why_not[$t]:-?}|"
	fi
done
exit 0

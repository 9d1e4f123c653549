#!/bin/bash
# Benchmark (issue 5): one image in memory, read four ways in one run:
#   raw       the image file itself
#   qsd       qemu-storage-daemon's FUSE export of it
#   nbdfuse   nbdkit's file plugin + nbdfuse
#   xbd       `xbd attach` of a sim VM whose disk is the image, over the
#             sim ring (sim blkback -> user-space blkfront -> FUSE)
# For each: dd bs=1M of the whole disk (MB/s) and fio 4 KiB random read
# at queue depth 32 (IOPS); the median of RUNS runs; then the ratios.
# Targets: xbd sequential >= 3x qsd, xbd 4k random IOPS >= 2x qsd.
#
# Fairness:
# - one image (random bytes made here), on tmpfs unless $XBD_BENCH_DIR
#   says otherwise: every reader gets its bytes from the same page cache;
# - all four are set up first and measured in turns (run 1 of each,
#   run 2 of each, ...), so load from elsewhere hits them alike;
# - before each FUSE run the FUSE file's own page cache is dropped
#   (fadvise DONTNEED on the FUSE file, not on the image): xbd's export
#   is direct_io; qsd's and nbdfuse's are not, and would otherwise serve
#   repeats from the cache.  dd itself is plain buffered dd, as a user
#   runs it (the kernel's readahead applies where the export allows it);
# - fio: libaio, iodepth 32, one job, O_DIRECT: all three FUSE servers
#   are libfuse 3 with async direct I/O, so 32 reads really are in flight
#   at the FUSE device for each, and no page cache of the FUSE file is
#   involved.  The raw file is read with O_DIRECT too when it is on
#   tmpfs (still memory); on another file system it is read buffered
#   (O_DIRECT would go to the disk).  psync with 32 jobs would give the
#   same concurrency, but adds 32 threads' switching on a 2-core machine
#   to every row and measures the scheduler as much as the export.
#
# Usage: tests/bench/attach.sh [BUILD]   (env: XBD_BENCH_RUNS, _IMG_MB,
#        _FIO_TIME, _DIR, XBD_BENCH_ONLY="raw qsd nbdfuse xbd")
. "$(dirname "$0")/lib.sh"

ONLY=${XBD_BENCH_ONLY:-raw qsd nbdfuse xbd}
bash "$bench_top/tests/bench/deps.sh" || say "bench: some peers may be missing (see above)"
command -v fio >/dev/null && command -v jq >/dev/null ||
	{ echo "attach bench: needs fio and jq (tests/bench/deps.sh installs them)"; exit 1; }

IMG=$W/disk.img
say "attach bench: making a ${IMG_MB} MiB image in $W"
make_image "$IMG" "$IMG_MB"
warm "$IMG" || exit 1
raw_direct=0
is_tmpfs "$IMG" && raw_direct=1

declare -A file why_not seq iops
targets=()
label() {
	case $1 in
	raw) echo "raw file (dd of the image)" ;;
	qsd) echo "qemu-storage-daemon FUSE" ;;
	nbdfuse) echo "nbdkit file + nbdfuse" ;;
	xbd) echo "xbd attach (sim ring)" ;;
	esac
}

want() { [[ " $ONLY " == *" $1 "* ]]; }

# ---- set-up: each sets file[T] or why_not[T] ---------------------------

setup_raw() { file[raw]=$IMG; }

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
}

for t in raw qsd nbdfuse xbd; do
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

declare -A seq_runs iops_runs
one_dd() {
	local t=$1 v
	[ "$t" = raw ] || drop_file_cache "${file[$t]}"
	v=$(dd_mbps "${file[$t]}") && seq_runs[$t]+=" $v"
}
one_fio() {
	local t=$1 v direct=1
	[ "$t" = raw ] && direct=$raw_direct
	[ "$t" = raw ] || drop_file_cache "${file[$t]}"
	v=$(fio_randread "${file[$t]}" "$direct") && iops_runs[$t]+=" $v"
}

load0=$(load)
for ((r = 1; r <= RUNS; r++)); do
	say "attach bench: run $r/$RUNS (load $(load))"
	for t in "${targets[@]}"; do [ -n "${file[$t]:-}" ] && one_dd "$t"; done
	for t in "${targets[@]}"; do [ -n "${file[$t]:-}" ] && one_fio "$t"; done
done
for t in "${targets[@]}"; do
	[ -n "${file[$t]:-}" ] || continue
	# shellcheck disable=SC2086
	seq[$t]=$(median ${seq_runs[$t]:-})
	# shellcheck disable=SC2086
	iops[$t]=$(median ${iops_runs[$t]:-})
	say "  $t: dd MB/s:${seq_runs[$t]:-} | fio IOPS:${iops_runs[$t]:-}"
done

# ---- the table ---------------------------------------------------------

echo
echo "== xbd attach vs peers: ${IMG_MB} MiB image in page cache ($(stat -f -c %T "$W")), median of $RUNS runs =="
echo "   dd: dd if=FILE of=/dev/null bs=1M; fio: 4k randread, libaio, iodepth 32, direct=1, ${FIO_TIME}s"
echo "   load average before/after: $load0 / $(load)"
printf '%-30s %14s %14s\n' "reader" "dd bs=1M MB/s" "4k QD32 IOPS"
for t in "${targets[@]}"; do
	if [ -n "${file[$t]:-}" ]; then
		printf '%-30s %14s %14s\n' "$(label "$t")" "$(fmt "${seq[$t]}")" "$(fmt "${iops[$t]}")"
	else
		printf '%-30s %s\n' "$(label "$t")" "not run: ${why_not[$t]:-?}"
	fi
done
x_seq=${seq[xbd]:--} x_iops=${iops[xbd]:--}
echo
printf '%-30s %14s %14s\n' "ratio" "seq" "4k IOPS"
for t in qsd nbdfuse raw; do
	want "$t" || continue
	printf '%-30s %14s %14s\n' "xbd / $t" "$(ratio "$x_seq" "${seq[$t]:--}")" \
		"$(ratio "$x_iops" "${iops[$t]:--}")"
done
verdict() { # VALUE TARGET
	if [ "$1" = - ]; then echo "not measured"
	elif ge "$1" "$2"; then echo "met"
	else echo "MISSED"; fi
}
r_seq=$(ratio "$x_seq" "${seq[qsd]:--}") r_iops=$(ratio "$x_iops" "${iops[qsd]:--}")
echo
echo "target: xbd seq >= 3x qsd: $r_seq -> $(verdict "$r_seq" 3)"
echo "target: xbd 4k IOPS >= 2x qsd: $r_iops -> $(verdict "$r_iops" 2)"

for t in "${targets[@]}"; do
	if [ -n "${file[$t]:-}" ]; then
		summary "attach|$(label "$t")|$(fmt "${seq[$t]}") MB/s|$(fmt "${iops[$t]}") IOPS"
	else
		summary "attach|$(label "$t")|not run: ${why_not[$t]:-?}|"
	fi
done
summary "attach|xbd/qsd seq (target >= 3)|$r_seq|$(verdict "$r_seq" 3)"
summary "attach|xbd/qsd 4k IOPS (target >= 2)|$r_iops|$(verdict "$r_iops" 2)"
exit 0

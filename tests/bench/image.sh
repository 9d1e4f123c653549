#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Benchmark (issue 16): imaging one disk (a 1 GiB image of random bytes
# in memory, a sim VM's xvda) in one run, five ways:
#   xbd-sha256     xbd image -o FILE --no-md5     (raw, SHA-256 alone)
#   xbd-sha256md5  xbd image -o FILE              (raw, SHA-256 + MD5)
#   dd-sha256sum   dd if=ATTACHED bs=1M | sha256sum   (xbd attach, FUSE)
#   xbd-e01        xbd image --format ewf         (MD5 + SHA-256)
#   ewfacquire     ewfacquire -c deflate:fast -d sha256 of the raw image
#                  file (MD5 + SHA-256, the same compression as xbd's E01)
# and `openssl speed -evp md5` (-evp sha256 as well, for reference):
# what one core hashes.  Each figure is the median of RUNS runs taken in
# turns, in MB/s (10^6 B/s) of disk read; outputs go to the same tmpfs
# and are removed after each run.  Then issue 16's targets: raw SHA-256
# >= 1000 MB/s and >= 2x dd-sha256sum; SHA-256 + MD5 >= 90% of openssl's
# MD5; E01 >= ewfacquire.
# For xbd image and ewfacquire also the CPU time they take: their own
# (user + system, /usr/bin/time) plus the sim's processes' (the blkback
# that serves xbd's ring, schedstat): CPU seconds per GiB, and what they allow
# on this machine's CPUs when nothing else runs (bytes / (CPU / nproc)):
# a bound, not a measurement, for runs on a loaded machine; and the CPUs
# it kept busy on average (CPU s/GiB x GiB/s: above 1 only where the
# work is spread over threads; with autogroup scheduling a loaded
# machine gives a session about one share however many threads it has).
# Usage: tests/bench/image.sh [BUILD]  (env: XBD_BENCH_RUNS (3 here),
#        XBD_BENCH_IMG_MB, XBD_BENCH_DIR, XBD_BENCH_IMAGE_WAYS)
. "$(dirname "$0")/lib.sh"

RUNS=${XBD_BENCH_RUNS:-3}
IMG=$W/disk.img
BYTES=$((IMG_MB << 20))
say "image bench: making a ${IMG_MB} MiB image in $W"
make_image "$IMG" "$IMG_MB"
warm "$IMG" || exit 1

declare -A why_not runs val cpu_runs cpu
ways=(xbd-sha256 xbd-sha256md5 dd-sha256sum xbd-e01 ewfacquire)
# XBD_BENCH_IMAGE_WAYS="xbd-e01 ewfacquire": only those (a quick look)
[ -n "${XBD_BENCH_IMAGE_WAYS:-}" ] && read -ra ways <<<"$XBD_BENCH_IMAGE_WAYS"
start_sim || { echo "image bench: $why"; exit 1; }
vm_create vm1 "$IMG,xvda" || { echo "image bench: $why"; exit 1; }
mnt=$W/mnt
mkdir -p "$mnt"
at_exit "'$xbd' detach '$mnt' || umount -l '$mnt'"
out=$("$xbd" attach vm1 --mount "$mnt" 2>&1) || why_not[dd-sha256sum]="xbd attach: $(echo "$out" | head -n1)"
command -v ewfacquire >/dev/null || why_not[ewfacquire]="ewfacquire not installed (ewf-tools)"

# timed CMD...: runs CMD; prints the disk's bytes / its wall time, MB/s
timed() {
	local t0 t1
	t0=$EPOCHREALTIME
	"$@" >"$W/timed.out" 2>&1 || { say "$*: $(tail -c 300 "$W/timed.out")"; return 1; }
	t1=$EPOCHREALTIME
	awk -v b="$BYTES" -v a="$t0" -v z="$t1" 'BEGIN { if (z > a) printf "%.1f\n", b / (z - a) / 1e6; else exit 1 }'
}
dd_pipe() { dd if="$mnt/xvda" bs=1M status=none | sha256sum; }
ewf_acquire() {
	/usr/bin/time -f '%U %S' -o "$W/time.out" \
		ewfacquire -u -q -c deflate:fast -d sha256 -f encase6 -t "$W/acq" "$IMG" </dev/null
}
# the sim's processes: the daemon, and a blkback or guest of its own
sim_pids() {
	local p
	cat "$sim_dir/pid" 2>/dev/null
	for p in /proc/[0-9]*; do
		case "$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" in
		*"sim blkback"* | *"sim guest"*) ;;
		*) continue ;;
		esac
		tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -qx "XBD_SIM_DIR=$sim_dir" && echo "${p#/proc/}"
	done
}
# xbd_image ARGS...: xbd image, its CPU time in $W/time.out
xbd_image() { /usr/bin/time -f '%U %S' -o "$W/time.out" "$xbd" image vm1 "$@"; }
one() { # WAY: one run, its output removed
	local v c0 c1 pids
	pids=$(sim_pids)
	# shellcheck disable=SC2086
	c0=$(cpu_ns $pids)
	case $1 in
	xbd-sha256) v=$(timed xbd_image -o "$W/o.raw" --no-md5) ;;
	xbd-sha256md5) v=$(timed xbd_image -o "$W/o.raw") ;;
	dd-sha256sum) drop_file_cache "$mnt/xvda"; v=$(timed dd_pipe) ;;
	xbd-e01) v=$(timed xbd_image -o "$W/o" --format ewf) ;;
	ewfacquire) v=$(timed ewf_acquire) ;;
	esac
	# shellcheck disable=SC2086
	c1=$(cpu_ns $pids)
	rm -f "$W"/o.raw* "$W"/o.E* "$W"/o.report.* "$W"/acq.*
	[ -n "$v" ] || return 0
	runs[$1]+=" $v"
	if [ -s "$W/time.out" ]; then
		cpu_runs[$1]+=" $(awk -v a="$c0" -v b="$c1" -v g="$BYTES" 'NR == 1 {
			printf "%.3f\n", ($1 + $2 + (b - a) / 1e9) / (g / 1073741824) }' "$W/time.out")"
		rm -f "$W/time.out"
	fi
}

load0=$(load)
for ((r = 1; r <= RUNS; r++)); do
	say "image bench: run $r/$RUNS (load $(load))"
	for w in "${ways[@]}"; do [ -z "${why_not[$w]:-}" ] && one "$w"; done
done
for w in "${ways[@]}"; do
	# shellcheck disable=SC2086
	val[$w]=$(median ${runs[$w]:-})
	# shellcheck disable=SC2086
	cpu[$w]=$(median ${cpu_runs[$w]:-})
	say "  $w:${runs[$w]:-}${cpu_runs[$w]:+ (CPU s/GiB:${cpu_runs[$w]})}"
done
# openssl speed: the 16384-byte column, in 1000s of bytes per second
speed() {
	openssl speed -seconds 3 -evp "$1" 2>/dev/null |
		awk -v a="$1" 'tolower($1) == a { v = $NF } END { sub(/k$/, "", v); if (v + 0 > 0) printf "%.1f\n", v / 1000; else exit 1 }'
}
md5_speed=$(speed md5) || md5_speed=-
sha256_speed=$(speed sha256) || sha256_speed=-

label() {
	case $1 in
	xbd-sha256) echo "xbd image raw, SHA-256" ;;
	xbd-sha256md5) echo "xbd image raw, SHA-256 + MD5" ;;
	dd-sha256sum) echo "dd bs=1M of attached | sha256sum" ;;
	xbd-e01) echo "xbd image E01 (fast), MD5 + SHA-256" ;;
	ewfacquire) echo "ewfacquire -c deflate:fast -d sha256" ;;
	esac
}
echo
echo "== xbd image: ${IMG_MB} MiB disk in page cache ($(stat -f -c %T "$W")), median of $RUNS runs, MB/s =="
echo "   load average before/after: $load0 / $(load)"
for w in "${ways[@]}"; do
	if [ -n "${why_not[$w]:-}" ]; then
		printf '%-40s not run: %s\n' "$(label "$w")" "${why_not[$w]}"
	else
		printf '%-40s %9s   (runs:%s)\n' "$(label "$w")" "$(fmt "${val[$w]}")" "${runs[$w]:-}"
		[ -n "${cpu_runs[$w]:-}" ] &&
			printf '%-40s %9s   CPU s per GiB (own + sim processes; runs:%s); on %s idle CPUs at most %s MB/s; %s CPUs busy on average\n' \
				"" "$(fmt "${cpu[$w]}" 2)" "${cpu_runs[$w]}" "$(nproc)" \
				"$(awk -v c="${cpu[$w]}" -v n="$(nproc)" 'BEGIN { if (c > 0) printf "%.0f", 1073.741824 * n / c; else print "-" }')" \
				"$(awk -v c="${cpu[$w]}" -v v="${val[$w]}" 'BEGIN { printf "%.2f", c * v / 1073.741824 }')"
	fi
done
printf '%-40s %9s\n' "openssl speed -evp md5 (16 KiB blocks)" "$(fmt "$md5_speed")"
printf '%-40s %9s\n' "openssl speed -evp sha256 (16 KiB blocks)" "$(fmt "$sha256_speed")"

verdict() { if [ "$1" = - ] || [ "$2" = - ]; then echo "not measured"; elif ge "$1" "$2"; then echo met; else echo MISSED; fi; }
s=${val[xbd-sha256]:--} sm=${val[xbd-sha256md5]:--} d=${val[dd-sha256sum]:--}
e=${val[xbd-e01]:--} a=${val[ewfacquire]:--}
need_dd=$(awk -v d="$d" 'BEGIN { if (d == "-" || d == "") print "-"; else print 2 * d }')
need_md5=$(awk -v m="$md5_speed" 'BEGIN { if (m == "-" || m == "") print "-"; else print 0.9 * m }')
t1="raw SHA-256 $(fmt "$s") MB/s (>= 1000)"
t2="raw SHA-256 / dd+sha256sum $(ratio "$s" "$d") (>= 2)"
t3="SHA-256+MD5 / openssl md5 $(ratio "$sm" "$md5_speed") (>= 0.90)"
t4="E01 / ewfacquire $(ratio "$e" "$a") (>= 1)"
echo
printf 'target %s -> %s\n' "$t1" "$(verdict "$s" 1000)" "$t2" "$(verdict "$s" "$need_dd")" \
	"$t3" "$(verdict "$sm" "$need_md5")" "$t4" "$(verdict "$e" "$a")"
summary "image|$t1|$(fmt "$s") MB/s|$(verdict "$s" 1000)"
summary "image|$t2|$(fmt "$d") MB/s dd|$(verdict "$s" "$need_dd")"
summary "image|$t3|$(fmt "$sm") MB/s|$(verdict "$sm" "$need_md5")"
summary "image|$t4|$(fmt "$e") MB/s|$(verdict "$e" "$a")"

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Where the time of a 4 KiB random read through `xbd attach` goes (the
# attach benchmark's missed target), per request, with qemu-storage-
# daemon's FUSE export beside it for comparison:
#   - context switches and CPU time per request of each process on the
#     path (perf stat -e context-switches,task-clock -p PID), during a
#     fio 4k randread QD32 run (libaio, direct), requests counted by fio;
#   - system calls per request of each process (strace -c -f, on a second,
#     shorter run: strace slows it down, the counts per request stand);
#   - for xbd: ring requests, notifications sent/received/suppressed and
#     the highest number in flight, from the control socket (xbdsh --json).
# Needs root, perf, strace, fio, jq.  Not a test.
#   tests/bench/profile_attach.sh [BUILD]   (env: XBD_BENCH_FIO_TIME,
#   XBD_BENCH_QD: the queue depth, 32; 1 for single-request latency)
. "$(dirname "$0")/lib.sh"
for t in perf strace fio jq; do
	command -v $t >/dev/null || { echo "profile: needs $t"; exit 1; }
done
xbdsh=$B/xbdsh
QD=${XBD_BENCH_QD:-32}
IMG=$W/disk.img
make_image "$IMG" "$IMG_MB"
warm "$IMG" || exit 1

fio_run() { # FILE SECONDS -> total I/Os
	fio --name=p --filename="$1" --readonly --rw=randread --bs=4k --ioengine=libaio \
		--iodepth="$QD" --direct=1 --invalidate=0 --randrepeat=0 --norandommap \
		--time_based --runtime="$2" --output-format=json 2>/dev/null |
		sed -n '/^{/,$p' | jq '.jobs[0].read.total_ios'
}

# profile NAME FILE PID... : prints the per-request table for PIDs
profile() {
	local name=$1 file=$2 p n ios secs=$FIO_TIME
	shift 2
	local f bg=()
	fio_run "$file" $((secs + 2)) >"$W/ios.$name" &
	f=$!
	sleep 1
	for p in "$@"; do
		perf stat -x, -e context-switches,task-clock -p "$p" -- sleep "$secs" 2>"$W/stat.$name.$p" &
		bg+=($!)
	done
	wait $f "${bg[@]}"
	ios=$(cat "$W/ios.$name")
	# fio ran secs + 2 s; perf watched secs of it
	n=$(awk -v i="$ios" -v s="$secs" 'BEGIN { printf "%.0f", i * s / (s + 2) }')
	echo "$name: $((ios / (secs + 2))) IOPS; per request (over ~$n requests):"
	for p in "$@"; do
		awk -F, -v n="$n" -v p="$p" -v c="$(tr '\0' ' ' <"/proc/$p/cmdline" | cut -c1-40)" '
			$3 == "context-switches" { cs = $1 }
			$3 == "task-clock" { tc = $1 }
			END { printf "  pid %-7s %-40s %5.2f context switches, %6.1f us CPU\n", p, c, cs / n, tc * 1000 / n }' \
			"$W/stat.$name.$p"
	done
	# system calls: a short run under strace
	fio_run "$file" 4 >"$W/ios2.$name" &
	f=$!
	bg=()
	sleep 1
	for p in "$@"; do
		timeout -s INT 2 strace -c -f -p "$p" -o "$W/strace.$name.$p" 2>/dev/null &
		bg+=($!)
	done
	wait $f "${bg[@]}"
	for p in "$@"; do
		# requests seen by strace: this process's one call per request
		awk -v p="$p" '$NF ~ /^(writev|preadv|pread64|preadv2)$/ && $4 > req { req = $4 }
			/^ *[0-9.]+ +[0-9.]+ +[0-9]+ +[0-9]+/ { calls[$NF] = $4 }
			END { if (!req) { print "  pid " p ": no per-request call seen"; exit }
			      printf "  pid %-7s syscalls per request:", p;
			      for (s in calls) if (s != "total" && calls[s] / req >= 0.05) printf " %s %.2f", s, calls[s] / req;
			      print "" }' "$W/strace.$name.$p"
	done
}

echo "== where a 4k random read (QD$QD, fio libaio direct) goes, $(date -u '+%H:%M UTC'), load $(load) =="

# ---- qemu-storage-daemon ----
if command -v qemu-storage-daemon >/dev/null; then
	touch "$W/qsd.img"
	qemu-storage-daemon \
		--blockdev driver=file,node-name=img,filename="$IMG",read-only=on,cache.direct=off,aio=threads \
		--export type=fuse,id=exp,node-name=img,mountpoint="$W/qsd.img",writable=off >"$W/qsd.log" 2>&1 &
	qsd=$!
	at_exit "kill $qsd; wait $qsd"
	if wait_for 10 is_mounted "$W/qsd.img"; then
		profile qsd "$W/qsd.img" "$qsd"
	fi
	kill $qsd
	wait $qsd 2>/dev/null
fi

# ---- xbd attach ----
start_sim || { echo "xbd: $why"; exit 0; }
vm_create vm1 "$IMG,xvda" || { echo "xbd: $why"; exit 0; }
mkdir -p "$W/mnt"
at_exit "'$xbd' detach '$W/mnt' || umount -l '$W/mnt'"
"$xbd" attach vm1 --mount "$W/mnt" || exit 0
json() { "$xbdsh" stats vm1 --json 2>/dev/null | jq -c '[.disks[] | select(.role == "attach")] | first'; }
at_pid=$(json | jq -r .xbd_pid)
# the second backend instance: the sim's blkback, serving dom0's frontend
bb_pid=
if true; then
	for p in /proc/[0-9]*; do
		[[ "$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" == *"sim blkback"* ]] || continue
		tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -qx "XBD_SIM_DIR=$sim_dir" || continue
		bb_pid=${p#/proc/}
	done
fi
s0=$(json)
profile xbd "$W/mnt/xvda" "$at_pid" ${bb_pid:+"$bb_pid"}
s1=$(json)
jq -rn --argjson a "$s0" --argjson b "$s1" '
	($b.xbd // {}) as $y | ($a.xbd // {}) as $x |
	($y.requests.read - $x.requests.read) as $n |
	"  ring (attach side, whole profile): \($n) read requests; per request: notifications sent \(($y.notify.sent - $x.notify.sent) / $n * 100 | floor / 100), received \(($y.notify.received - $x.notify.received) / $n * 100 | floor / 100), suppressed \(($y.notify.suppressed - $x.notify.suppressed) / $n * 100 | floor / 100); most in flight \($y.in_flight_max)"'
echo "  threads: attach $(ls /proc/"$at_pid"/task | wc -l), blkback $(ls /proc/"${bb_pid:-0}"/task 2>/dev/null | wc -l)"

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Benchmark (issue 6): what keeping the counters costs.  Two sims run
# side by side, each with vm1 and its simulated guest, each served by
# `xbd serve` (null back-end on xvdc, raw from an image in memory on
# xvdb):
#   "on"    xbd as built (BUILD/xbd): every counter and latency histogram;
#   "none"  the same sources built with -DXBD_NO_COUNTERS into
#           BUILD/nocounters (include/xbd/stats.h): every counter update
#           and every latency clock read compiled out.  Its sim, hence
#           its guest's blkfront and its blkback, and its `xbd serve` all
#           run that binary, so both ends of the ring count nothing.
# Comparing against nothing at all measures the whole cost, the plain
# counters included (the runtime switch XBD_STATS=off only stops latency
# timing).  The in-flight list that `xbdsh ring` shows is not a counter
# and stays in both.
#
# The same workloads run in turns on one and the other (RUNS pairs,
# default 31, alternating who goes first): 4 KiB random read QD32 on null
# (the most requests per second, so the largest share of per-request
# counting) and 1 MiB sequential read on raw.  Two figures per run:
#   throughput (IOPS, MB/s) as the guest sees it, and
#   CPU time per I/O of the processes doing the work (the guest and the
#   serving xbd; from /proc/PID/task/*/schedstat).
# Each pair of neighbouring runs (on, none) gives one cost in percent;
# the figure is the median of those, with a distribution-free 95%
# confidence interval (order statistics of the paired costs, binomial).
# Target: < 2%.  "met" needs the whole interval below 2%; an interval
# that straddles 2% is "not resolved", not met.
#
# The build is checked, not assumed: the "none" side's devices must
# report stats_enabled false and 0 reads after the runs, the "on"
# side's true and the reads it did.
#
# A model that needs no second build: the counting code's own cost per
# request (tests/bench/stats_cost.c, on libxbd.a), counted twice per I/O
# (guest blkfront and backend), as a share of the CPU time per I/O
# measured above.  With perf, it also samples the guest and backend
# during a null random read with the counters on and prints the share
# of the counting functions.
#
# Usage: tests/bench/counters.sh [BUILD]   (env: XBD_BENCH_RUNS (31),
#        _IMG_MB, _IO_TIME, _DIR, XBD_BENCH_PERF=0)
XBD_BENCH_RUNS=${XBD_BENCH_RUNS:-31}
. "$(dirname "$0")/lib.sh"

xbdsh=$B/xbdsh
[ -x "$xbdsh" ] || { echo "counters bench: no $xbdsh (run make first)"; exit 1; }
IMG=$W/disk.img

# the build without counters: same sources, same compiler flags as make's
# default, in BUILD/nocounters
say "counters bench: building $B/nocounters (-DXBD_NO_COUNTERS)"
if ! make -s -C "$bench_top" B="$B/nocounters" CPPFLAGS=-DXBD_NO_COUNTERS \
	"$B/nocounters/xbd" >"$W/make.log" 2>&1; then
	echo "== counters on/none: not run: the build without counters failed: $(tail -n 3 "$W/make.log") =="
	summary "counters|on/none cost|not run: build failed|"
	exit 0
fi
declare -A bin=([on]=$B/xbd [none]=$B/nocounters/xbd)

declare -A simdir
# setup SIDE: sim SIDE run by that side's binary, vm1 and its guest, null
# on xvdc and raw on xvdb served by it, read-only: both sides serve the
# one image, and a second writer would be refused (image locks).
setup() {
	local name=$1 d=$W/$1 out xbd=${bin[$1]}
	if ! "$xbd" sim start --dir "$d" --owner-pid $$ >"$d.out" 2>&1; then
		why="the sim does not start: $(head -c 200 "$d.out")"
		return 1
	fi
	at_exit "'$xbd' sim stop --dir '$d'"
	use_sim "$d"
	simdir[$name]=$d
	vm_create vm1 || return 1
	if ! out=$("$xbd" serve vm1 --image "${IMG_MB}M" --backend null --vdev xvdc 2>&1) ||
		! { at_exit "XBD_SIM_DIR='$d' XBD_RUN_DIR='$d.run' '$xbd' detach vm1 xvdc"; } ||
		! out=$("$xbd" serve vm1 --image "$IMG" --backend raw --vdev xvdb \
			--read-only 2>&1); then
		why="xbd serve: $(echo "$out" | head -n1)"
		return 1
	fi
	at_exit "XBD_SIM_DIR='$d' XBD_RUN_DIR='$d.run' '$xbd' detach vm1 xvdb"
}

# disk_field SIDE VDEV JQ-PATH: a field of VDEV's entry in xbdsh's JSON.
disk_field() {
	use_sim "${simdir[$1]}"
	"$xbdsh" stats vm1 --json 2>/dev/null |
		jq -r --arg v "$2" "[.disks[] | select(.vdev == \$v) | $3 | tostring] | first // \"unknown\""
}

make_image "$IMG" "$IMG_MB"
warm "$IMG" || exit 1
if ! setup on || ! setup none; then
	echo "== counters on/none: not run: $why =="
	summary "counters|on/none cost|not run: $why|"
	exit 0
fi

declare -A pids
for side in on none; do
	use_sim "${simdir[$side]}"
	g=$(sim_guest_pid)
	pids["$side rand"]="$g $(disk_field "$side" xvdc .xbd_pid)"
	pids["$side seq"]="$g $(disk_field "$side" xvdb .xbd_pid)"
	# each side's guest must run that side's binary
	[ "$(readlink "/proc/$g/exe")" = "${bin[$side]}" ] ||
		guest_bin_bad+=" $side:$(readlink "/proc/$g/exe")"
done

declare -A runs cpu
wl_rand="--rw randread --bs 4k --qd 32 --time $IO_TIME"
wl_seq="--rw read --bs 1M --qd 4 --time $IO_TIME"
# measure SIDE KIND VDEV ARGS...: one run; appends its rate and ns of CPU
# per I/O to runs[] and cpu[] ("-" when the run failed, so that runs
# stay paired).
measure() {
	local side=$1 kind=$2 c0 c1 v mbps iops ios
	shift 2
	use_sim "${simdir[$side]}"
	# shellcheck disable=SC2086
	c0=$(cpu_ns ${pids["$side $kind"]})
	if ! v=$(xbd=${bin[$side]} vm_io vm1 "$@"); then
		runs["$side $kind"]+=" -"
		cpu["$side $kind"]+=" -"
		return
	fi
	# shellcheck disable=SC2086
	c1=$(cpu_ns ${pids["$side $kind"]})
	read -r mbps iops ios <<<"$v"
	if [ "$kind" = rand ]; then runs["$side $kind"]+=" $iops"; else runs["$side $kind"]+=" $mbps"; fi
	if [ "${ios:-0}" -gt 0 ]; then
		cpu["$side $kind"]+=" $(awk -v a="$c0" -v b="$c1" -v n="$ios" 'BEGIN { printf "%.1f", (b - a) / n }')"
	else
		cpu["$side $kind"]+=" -"
	fi
}

load0=$(load)
for ((r = 1; r <= RUNS; r++)); do
	say "counters bench: run $r/$RUNS (load $(load))"
	order="on none"
	((r % 2)) || order="none on"
	for side in $order; do
		# shellcheck disable=SC2086
		measure "$side" rand xvdc $wl_rand
		# shellcheck disable=SC2086
		measure "$side" seq xvdb $wl_seq
	done
done

# the builds did what they say: reads counted on "on", none on "none"
check_side() { # SIDE WANT-ENABLED: "ok" or what is wrong
	local e1 e2 r1 r2
	e1=$(disk_field "$1" xvdc .xbd.stats_enabled) e2=$(disk_field "$1" xvdb .xbd.stats_enabled)
	r1=$(disk_field "$1" xvdc .counters.rd_req) r2=$(disk_field "$1" xvdb .counters.rd_req)
	if [ "$2" = true ]; then
		[ "$e1,$e2" = true,true ] && [ "$r1" -gt 0 ] 2>/dev/null && [ "$r2" -gt 0 ] 2>/dev/null &&
			{ echo ok; return; }
	else
		[ "$e1,$e2" = false,false ] && [ "$r1,$r2" = 0,0 ] && { echo ok; return; }
	fi
	echo "stats_enabled $e1,$e2, rd_req $r1,$r2"
}
chk_on=$(check_side on true)
chk_none=$(check_side none false)
build_ok=0
[ "$chk_on" = ok ] && [ "$chk_none" = ok ] && [ -z "${guest_bin_bad:-}" ] && build_ok=1

# paired COST-KIND ON-LIST NONE-LIST: the cost of each pair in percent,
# one per line (rate: how much lower with counters; cpu: how much more)
paired() {
	paste <(printf '%s\n' $2) <(printf '%s\n' $3) | awk -v k="$1" '
		$1 != "-" && $2 != "-" && $2 + 0 > 0 {
			if (k == "rate") printf "%.3f\n", ($2 - $1) / $2 * 100;
			else printf "%.3f\n", ($1 - $2) / $2 * 100 }'
}
# ci COSTS...: "MEDIAN LOW HIGH" (distribution-free 95% interval of the
# median from order statistics; LOW/HIGH "-" with fewer than 6 pairs)
ci() {
	printf '%s\n' "$@" | sort -g | awk '{ v[NR] = $1 } END {
		n = NR; if (n == 0) { print "- - -"; exit }
		med = (n % 2) ? v[(n + 1) / 2] : (v[n / 2] + v[n / 2 + 1]) / 2
		# largest k with P(Bin(n, 1/2) <= k - 1) <= 0.025
		k = 0; c = 1; cum = 0; p = 0.5 ^ n
		for (i = 0; i < n; i++) {
			cum += c * p; if (cum > 0.025) break
			k = i + 1; c = c * (n - i) / (i + 1)
		}
		if (k < 1) printf "%.2f - -\n", med
		else printf "%.2f %.2f %.2f\n", med, v[k], v[n + 1 - k] }'
}
verdict() { # MEDIAN LOW HIGH
	if [ "$2" = - ]; then echo "not resolved (too few runs)"
	elif awk -v h="$3" 'BEGIN { exit !(h < 2) }'; then echo met
	elif awk -v l="$2" 'BEGIN { exit !(l >= 2) }'; then echo MISSED
	else echo "not resolved"; fi
}

declare -A med cmed
for k in "on rand" "none rand" "on seq" "none seq"; do
	# shellcheck disable=SC2086
	med[$k]=$(median $(printf '%s\n' ${runs[$k]:-} | grep -v '^-$'))
	# shellcheck disable=SC2086
	cmed[$k]=$(median $(printf '%s\n' ${cpu[$k]:-} | grep -v '^-$'))
	say "  $k: rate${runs[$k]:-} | CPU ns/IO${cpu[$k]:-}"
done

echo
echo "== counters on / compiled out, guest-side on the sim: $RUNS pairs of runs of ${IO_TIME}s each, alternating =="
echo "   on: $B/xbd; none: $B/nocounters/xbd (-DXBD_NO_COUNTERS), for the sim, its guest and xbd serve"
echo "   check: on $chk_on; none $chk_none${guest_bin_bad:+; guest binaries wrong:$guest_bin_bad}"
echo "   load average before/after: $load0 / $(load)"
printf '%-24s %10s %10s %22s   %9s %9s %22s\n' "workload" "rate on" "none" "slower % [95% CI]" \
	"CPU ns/IO" "none" "dearer % [95% CI]"
row() { # LABEL KIND
	local t c
	# shellcheck disable=SC2086
	t=$(ci $(paired rate "${runs[on $2]:-}" "${runs[none $2]:-}"))
	# shellcheck disable=SC2086
	c=$(ci $(paired cpu "${cpu[on $2]:-}" "${cpu[none $2]:-}"))
	printf '%-24s %10s %10s %22s   %9s %9s %22s\n' "$1" "$(fmt "${med[on $2]}")" \
		"$(fmt "${med[none $2]}")" "$(echo "$t" | awk '{ printf "%+.2f [%s, %s]", $1, $2, $3 }')" \
		"$(fmt "${cmed[on $2]}")" "$(fmt "${cmed[none $2]}")" \
		"$(echo "$c" | awk '{ printf "%+.2f [%s, %s]", $1, $2, $3 }')"
	echo "$2 $t $c" >>"$W/costs"
}
: >"$W/costs"
row "null 4k randread QD32" rand
row "raw 1M seq read (MB/s)" seq
echo "   (rate: IOPS or MB/s, medians; the costs are medians of the paired runs' costs;"
echo "    CPU: guest + serving xbd, ns per I/O)"
if [ $build_ok = 1 ]; then
	while read -r kind tm tl th cm cl ch; do
		label="null 4k randread"
		[ "$kind" = seq ] && label="raw 1M seq read"
		echo "target: counters cost < 2%, $label: throughput $tm% [$tl, $th] -> $(verdict "$tm" "$tl" "$th");" \
			"CPU per I/O $cm% [$cl, $ch] -> $(verdict "$cm" "$cl" "$ch")"
		summary "counters|cost of counters, $label|IOPS/MB/s -$tm % [$tl, $th]|$(verdict "$tm" "$tl" "$th")"
		summary "counters|  CPU per I/O, $label|+$cm % [$cl, $ch]|$(verdict "$cm" "$cl" "$ch")"
	done <"$W/costs"
else
	echo "NOT MEASURED: the two builds did not behave as built (on: $chk_on; none: $chk_none${guest_bin_bad:+; guests:$guest_bin_bad})"
	summary "counters|cost of counters|not measured: the builds did not check out|"
fi

# ---- model: the counting code's own cost per request ------------------
if cc -std=gnu11 -O2 -D_GNU_SOURCE -I"$bench_top/include" -o "$W/stats_cost" \
	"$bench_top/tests/bench/stats_cost.c" "$B/libxbd.a" -lpthread >"$W/cost.log" 2>&1 &&
	"$W/stats_cost" >"$W/cost.txt"; then
	c_fe=$(awk '$1 == "count_frontend" {print $2}' "$W/cost.txt")
	c_be=$(awk '$1 == "count_backend" {print $2}' "$W/cost.txt")
	c_feo=$(awk '$1 == "count_frontend_timing_off" {print $2}' "$W/cost.txt")
	c_beo=$(awk '$1 == "count_backend_timing_off" {print $2}' "$W/cost.txt")
	c_clk=$(awk '$1 == "clock_read" {print $2}' "$W/cost.txt")
	c_all=$(awk -v a="$c_fe" -v b="$c_be" 'BEGIN { print a + b }')
	c_off=$(awk -v a="$c_feo" -v b="$c_beo" 'BEGIN { print a + b }')
	share() { awk -v c="$1" -v cpu="$2" 'BEGIN { if (cpu == "-" || cpu + 0 == 0) print "-"; else printf "%.1f\n", c / cpu * 100 }'; }
	echo
	echo "model (tests/bench/stats_cost.c on libxbd.a, best of 7 rounds, one thread, answers in batches of 8):"
	echo "  counting per I/O: guest blkfront $c_fe ns + backend $c_be ns = $c_all ns"
	echo "    ($c_off ns with latency timing off; one clock read: $c_clk ns)"
	echo "  = $(share "$c_all" "${cmed[on rand]}")% of the CPU per I/O of null 4k randread ($(fmt "${cmed[on rand]}") ns),"
	echo "    $(share "$c_all" "${cmed[on seq]}")% of that of raw 1M seq read ($(fmt "${cmed[on seq]}") ns)"
	echo "  of which latency timing: $(share "$(awk -v a="$c_all" -v b="$c_off" 'BEGIN{print a-b}')" "${cmed[on rand]}")% (null randread)"
	echo "  (one thread in a tight loop: what the code costs, not what it adds to a pipeline)"
	summary "counters|model: counting cost, null 4k randread|$(share "$c_all" "${cmed[on rand]}") % of CPU/IO|$(ge "$(share "$c_all" "${cmed[on rand]}")" 2 && echo MISSED || echo met)"
	summary "counters|model: counting cost, raw 1M seq read|$(share "$c_all" "${cmed[on seq]}") % of CPU/IO|$(ge "$(share "$c_all" "${cmed[on seq]}")" 2 && echo MISSED || echo met)"
else
	echo "model: cannot build tests/bench/stats_cost.c: $(head -c 300 "$W/cost.log")"
fi

# ---- perf: the share of the counting functions ---------------------------
[ "${XBD_BENCH_PERF:-1}" = 1 ] && command -v perf >/dev/null || exit 0
use_sim "${simdir[on]}"
# shellcheck disable=SC2086
set -- ${pids[on rand]}
[ $# -eq 2 ] || { echo "perf: cannot find the guest and backend processes"; exit 0; }
# shellcheck disable=SC2086
vm_io vm1 xvdc $wl_rand >/dev/null &
io=$!
sleep 0.5
perf record -q -F 4999 -o "$W/perf.data" -p "$1,$2" -- sleep $((IO_TIME > 2 ? IO_TIME - 1 : 1)) >/dev/null 2>&1
wait $io
perf report -i "$W/perf.data" --no-children --sort sym --stdio 2>/dev/null >"$W/perf.txt"
echo
echo "perf (cpu-clock samples of the guest, pid $1, and the backend, pid $2; null 4k randread QD32, counters on):"
awk '/^ *[0-9.]+%/ {
	pct = $1; sub("%", "", pct);
	if ($0 ~ /xbd_stats_|stat_raise_max|xbd_latency_bucket/) stats += pct;
	if ($0 ~ /xbd_now_ns|clock_gettime/) clk += pct }
	END { printf "  counting functions (xbd_stats_*, stat_raise_max, xbd_latency_bucket): %.2f%% of samples\n", stats;
	      printf "  clock reads (xbd_now_ns, clock_gettime; also used outside the counters): %.2f%%\n", clk }' "$W/perf.txt"
echo "  top symbols:"
grep -E '^ *[0-9.]+%' "$W/perf.txt" | head -n 12 | sed 's/^/    /'
exit 0

#!/bin/bash
# Benchmark (issue 6): what keeping the counters costs.  Two sims run
# side by side, each with vm1 and its simulated guest, each served by
# `xbd serve` (null back-end on xvdc, raw from an image in memory on
# xvdb):
#   "on"   as shipped;
#   "off"  with latency timing switched off: $XBD_BENCH_STATS_OFF (default
#          XBD_STATS=off) in the environment of the sim (hence of its
#          guest's blkfront) and of `xbd serve`, which also gets
#          --no-stats.  The plain counters (requests, sectors, in flight,
#          errors, notifications) are kept either way: xbd has no switch
#          for them, they are what xbdsh shows.
# The same workloads run in turns on one and the other (RUNS times,
# default 9, alternating who goes first): 4 KiB random read QD32 on null
# (the most requests per second, so the largest share of per-request
# counting) and 1 MiB sequential read on raw.  Two figures per side:
#   throughput (IOPS, MB/s) as the guest sees it, and
#   CPU time per I/O of the processes doing the work (the guest and the
#   serving xbd; from /proc/PID/task/*/schedstat), which other load on a
#   shared machine disturbs far less than throughput;
# and the relative cost of "on" against "off" (target: < 2%).
#
# The switch is checked, not assumed: the control socket's
# "stats_enabled" must read false for both disks in the "off" sim and
# true in the "on" one, and the off sim's guest must have $OFF_ENV in its
# environment, else nothing is claimed.
#
# A model that needs neither a switch nor a quiet machine: the counting
# code's own cost per request (tests/bench/stats_cost.c, on libxbd.a),
# counted twice per I/O (guest blkfront and backend), as a share of the
# CPU time per I/O measured above.
#
# With perf, it also samples the guest and backend during a null random
# read with the counters on and prints the share of the counting
# functions (inlined counter updates are charged to their callers).
#
# Usage: tests/bench/counters.sh [BUILD]   (env: XBD_BENCH_RUNS (9),
#        _IMG_MB, _IO_TIME, _DIR, XBD_BENCH_STATS_OFF, XBD_BENCH_PERF=0)
XBD_BENCH_RUNS=${XBD_BENCH_RUNS:-9}
. "$(dirname "$0")/lib.sh"

OFF_ENV=${XBD_BENCH_STATS_OFF:-XBD_STATS=off}
xbdsh=$B/xbdsh
[ -x "$xbdsh" ] || { echo "counters bench: no $xbdsh (run make first)"; exit 1; }
IMG=$W/disk.img

declare -A simdir
# setup NAME SERVE-OPTS [ENV...]: sim NAME, vm1 and its guest, null on
# xvdc and raw on xvdb served with SERVE-OPTS, with ENV in the
# environment of all of them.
setup() {
	local name=$1 d=$W/$1 out opts=$2
	shift 2
	if ! env "$@" "$xbd" sim start --dir "$d" --owner-pid $$ >"$d.out" 2>&1; then
		why="the sim does not start: $(head -c 200 "$d.out")"
		return 1
	fi
	at_exit "'$xbd' sim stop --dir '$d'"
	use_sim "$d"
	simdir[$name]=$d
	vm_create vm1 || return 1
	# shellcheck disable=SC2086
	if ! out=$(env "$@" "$xbd" serve vm1 --image "${IMG_MB}M" --backend null --vdev xvdc $opts 2>&1) ||
		! { at_exit "XBD_SIM_DIR='$d' XBD_RUN_DIR='$d.run' '$xbd' detach vm1 xvdc"; } ||
		! out=$(env "$@" "$xbd" serve vm1 --image "$IMG" --backend raw --vdev xvdb $opts 2>&1); then
		why="xbd serve: $(echo "$out" | head -n1)"
		return 1
	fi
	at_exit "XBD_SIM_DIR='$d' XBD_RUN_DIR='$d.run' '$xbd' detach vm1 xvdb"
}

# disk_field NAME VDEV JQ-PATH: a field of VDEV's entry in xbdsh's JSON.
disk_field() {
	use_sim "${simdir[$1]}"
	"$xbdsh" stats vm1 --json 2>/dev/null |
		jq -r --arg v "$2" "[.disks[] | select(.vdev == \$v) | $3 | tostring] | first // \"unknown\""
}

make_image "$IMG" "$IMG_MB"
warm "$IMG" || exit 1
mode="xbd serve --no-stats, $OFF_ENV for the sim (guest, blkback)"
# shellcheck disable=SC2086
if ! setup on "" || ! setup off --no-stats $OFF_ENV; then
	echo "== counters on/off: not run: $why =="
	summary "counters|on/off cost|not run: $why|"
	exit 0
fi
en_on=$(disk_field on xvdc .xbd.stats_enabled),$(disk_field on xvdb .xbd.stats_enabled)
en_off=$(disk_field off xvdc .xbd.stats_enabled),$(disk_field off xvdb .xbd.stats_enabled)
switch_ok=0
[ "$en_on" = true,true ] && [ "$en_off" = false,false ] && switch_ok=1

declare -A pids
for side in on off; do
	use_sim "${simdir[$side]}"
	g=$(sim_guest_pid)
	pids["$side rand"]="$g $(disk_field "$side" xvdc .xbd_pid)"
	pids["$side seq"]="$g $(disk_field "$side" xvdb .xbd_pid)"
done
# the guest's blkfront has no control socket: its environment must say off
# shellcheck disable=SC2086
set -- ${pids[off rand]}
if [ -n "$OFF_ENV" ] && ! tr '\0' '\n' 2>/dev/null <"/proc/$1/environ" | grep -qxF "$OFF_ENV"; then
	en_off+=",guest:not $OFF_ENV"
	switch_ok=0
fi

declare -A runs cpu
wl_rand="--rw randread --bs 4k --qd 32 --time $IO_TIME"
wl_seq="--rw read --bs 1M --qd 4 --time $IO_TIME"
# measure SIDE KIND VDEV ARGS...: one run; adds its rate and ns of CPU
# per I/O to runs[] and cpu[].
measure() {
	local side=$1 kind=$2 c0 c1 v mbps iops ios
	shift 2
	use_sim "${simdir[$side]}"
	# shellcheck disable=SC2086
	c0=$(cpu_ns ${pids["$side $kind"]})
	v=$(vm_io vm1 "$@") || return
	# shellcheck disable=SC2086
	c1=$(cpu_ns ${pids["$side $kind"]})
	read -r mbps iops ios <<<"$v"
	if [ "$kind" = rand ]; then runs["$side $kind"]+=" $iops"; else runs["$side $kind"]+=" $mbps"; fi
	[ "${ios:-0}" -gt 0 ] && cpu["$side $kind"]+=" $(awk -v a="$c0" -v b="$c1" -v n="$ios" 'BEGIN { printf "%.1f", (b - a) / n }')"
}

load0=$(load)
for ((r = 1; r <= RUNS; r++)); do
	say "counters bench: run $r/$RUNS (load $(load))"
	order="on off"
	((r % 2)) || order="off on"
	for side in $order; do
		# shellcheck disable=SC2086
		measure "$side" rand xvdc $wl_rand
		# shellcheck disable=SC2086
		measure "$side" seq xvdb $wl_seq
	done
done
declare -A med cmed
for k in "on rand" "off rand" "on seq" "off seq"; do
	# shellcheck disable=SC2086
	med[$k]=$(median ${runs[$k]:-})
	# shellcheck disable=SC2086
	cmed[$k]=$(median ${cpu[$k]:-})
	say "  $k: rate${runs[$k]:-} | CPU ns/IO${cpu[$k]:-}"
done
# slower: how much lower the rate is with counters on, in percent
slower() { awk -v on="$1" -v off="$2" 'BEGIN {
	if (on == "-" || off == "-" || off + 0 == 0) print "-";
	else printf "%+.2f\n", (off - on) / off * 100 }'; }
# dearer: how much more CPU per I/O with counters on, in percent
dearer() { awk -v on="$1" -v off="$2" 'BEGIN {
	if (on == "-" || off == "-" || off + 0 == 0) print "-";
	else printf "%+.2f\n", (on - off) / off * 100 }'; }
spread() { # the runs' (max - min) / median, in percent
	# shellcheck disable=SC2086
	printf '%s\n' $1 | sort -g | awk -v m="$2" '{v[NR] = $1} END {
		if (NR < 2 || m + 0 == 0) print "-"; else printf "%.0f\n", (v[NR] - v[1]) / m * 100 }'
}
t_rand=$(slower "${med[on rand]}" "${med[off rand]}")
t_seq=$(slower "${med[on seq]}" "${med[off seq]}")
c_rand=$(dearer "${cmed[on rand]}" "${cmed[off rand]}")
c_seq=$(dearer "${cmed[on seq]}" "${cmed[off seq]}")

echo
echo "== counters on/off, guest-side on the sim: median of $RUNS runs of ${IO_TIME}s each, alternating =="
echo "   measured: $mode"
echo "   stats_enabled from the control socket: on=$en_on off=$en_off"
echo "   load average before/after: $load0 / $(load)"
printf '%-24s %11s %11s %9s %9s   %11s %11s %9s\n' "workload" "rate on" "rate off" "slower %" "spread %" \
	"CPU ns/IO on" "off" "dearer %"
row() { # LABEL KIND
	printf '%-24s %11s %11s %9s %9s   %11s %11s %9s\n' "$1" "$(fmt "${med[on $2]}")" \
		"$(fmt "${med[off $2]}")" "$(slower "${med[on $2]}" "${med[off $2]}")" \
		"$(spread "${runs[on $2]:-}" "${med[on $2]}")/$(spread "${runs[off $2]:-}" "${med[off $2]}")" \
		"$(fmt "${cmed[on $2]}")" "$(fmt "${cmed[off $2]}")" \
		"$(dearer "${cmed[on $2]}" "${cmed[off $2]}")"
}
row "null 4k randread QD32" rand
row "raw 1M seq read (MB/s)" seq
echo "   (rate: IOPS or MB/s; spread: (max - min) / median of the runs, on/off; CPU: guest + serving xbd)"
if [ $switch_ok = 1 ]; then
	verdict() { if [ "$1" = - ]; then echo "not measured"; elif ge "$1" 2; then echo MISSED; else echo met; fi; }
	echo "target: counters cost < 2%: CPU per I/O $c_rand% (randread) -> $(verdict "$c_rand"), $c_seq% (seq) -> $(verdict "$c_seq");"
	echo "        throughput lower by $t_rand% / $t_seq%"
	summary "counters|cost of counters, null 4k randread|CPU/IO $c_rand %, IOPS lower $t_rand %|$(verdict "$c_rand")"
	summary "counters|cost of counters, raw 1M seq read|CPU/IO $c_seq %, MB/s lower $t_seq %|$(verdict "$c_seq")"
else
	echo "NOT MEASURED: the counters could not be switched off (stats_enabled: on=$en_on off=$en_off)"
	summary "counters|cost of counters|not measured: the switch did not take|"
fi

# ---- model: the counting code's own cost per request ------------------
if cc -std=gnu11 -O2 -D_GNU_SOURCE -I"$bench_top/include" -o "$W/stats_cost" \
	"$bench_top/tests/bench/stats_cost.c" "$B/libxbd.a" -lpthread >"$W/cost.log" 2>&1 &&
	"$W/stats_cost" >"$W/cost.txt"; then
	c_all=$(awk '$1 == "count" {print $2}' "$W/cost.txt")
	c_off=$(awk '$1 == "count_timing_off" {print $2}' "$W/cost.txt")
	c_clk=$(awk '$1 == "clock_read" {print $2}' "$W/cost.txt")
	share() { awk -v c="$1" -v cpu="$2" 'BEGIN { if (cpu == "-" || cpu + 0 == 0) print "-"; else printf "%.1f\n", 2 * c / cpu * 100 }'; }
	echo
	echo "model (tests/bench/stats_cost.c on libxbd.a, best of 7 rounds, one thread):"
	echo "  counting one request: $c_all ns per side ($c_off ns with latency timing off; one clock read: $c_clk ns)"
	echo "  two sides per I/O (guest blkfront + backend): $(fmt "$(awk -v c="$c_all" 'BEGIN{print 2*c}')" 0) ns per I/O ="
	echo "    $(share "$c_all" "${cmed[on rand]}")% of the CPU per I/O of null 4k randread ($(fmt "${cmed[on rand]}") ns),"
	echo "    $(share "$c_all" "${cmed[on seq]}")% of that of raw 1M seq read ($(fmt "${cmed[on seq]}") ns)"
	echo "  of which latency timing: $(share "$(awk -v a="$c_all" -v b="$c_off" 'BEGIN{print a-b}')" "${cmed[on rand]}")% (null randread)"
	summary "counters|model: counting cost, null 4k randread|$(share "$c_all" "${cmed[on rand]}") % of CPU/IO|$(ge "$(share "$c_all" "${cmed[on rand]}")" 2 && echo MISSED || echo met)"
	summary "counters|model: counting cost, raw 1M seq read|$(share "$c_all" "${cmed[on seq]}") % of CPU/IO|$(ge "$(share "$c_all" "${cmed[on seq]}")" 2 && echo MISSED || echo met)"
else
	echo "model: cannot build tests/bench/stats_cost.c: $(head -c 300 "$W/cost.log")"
fi

# ---- perf: the share of the counting functions ---------------------------
[ "${XBD_BENCH_PERF:-1}" = 1 ] && command -v perf >/dev/null || exit 0
use_sim "${simdir[on]}"
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

#!/bin/bash
# Benchmark (issue 6): what keeping the counters costs.  Two sims run
# side by side, each with vm1 and its simulated guest, each served
# by `xbd serve` (null back-end, and raw from an image in memory):
#   "on"   as shipped;
#   "off"  with the counters switched off: $XBD_BENCH_STATS_OFF (default
#          XBD_STATS=off) in the environment of the sim (hence of its
#          guest's blkfront) and of `xbd serve`.
# The same workloads run in turns on one and the other (RUNS times,
# default 9): 4 KiB random read QD32 on null (the most requests per
# second, so the largest share of per-request counting) and 1 MiB
# sequential read on raw.  It prints the medians and the relative cost
# (on vs off); the target is < 2%.
#
# The switch is checked, not assumed: the control socket's
# "stats_enabled" must read false in the "off" sim.  When it does not
# (no switch yet), the two sims are alike and the comparison shows the
# noise floor of the method instead; it says so.
#
# With perf available, it also samples both xbd processes (backend and
# guest) during a null random-read run with the counters on and prints
# the share of CPU time in the counting functions (an estimate that
# needs no switch; inlined counter updates are charged to their
# callers, so it is a lower bound).
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
# setup NAME [ENV...]: sim NAME, vm1 and its guest, null on xvdc and raw
# on xvdb, with ENV in the environment of all of them.
setup() {
	local name=$1 out
	shift
	if ! env "$@" bash -c '"$0" sim start --dir "$1" --owner-pid "$2" >"$1.out" 2>&1' \
		"$xbd" "$W/$name" $$; then
		why="the sim does not start: $(head -c 200 "$W/$name.out")"
		return 1
	fi
	at_exit "'$xbd' sim stop --dir '$W/$name'"
	use_sim "$W/$name"
	simdir[$name]=$W/$name
	vm_create vm1 || return 1
	if ! out=$(env "$@" "$xbd" serve vm1 --image "${IMG_MB}M" --backend null --vdev xvdc 2>&1) ||
		! { at_exit "XBD_SIM_DIR='$W/$name' XBD_RUN_DIR='$W/$name.run' '$xbd' detach vm1 xvdc"; } ||
		! out=$(env "$@" "$xbd" serve vm1 --image "$IMG" --backend raw --vdev xvdb 2>&1); then
		why="xbd serve: $(echo "$out" | head -n1)"
		return 1
	fi
	at_exit "XBD_SIM_DIR='$W/$name' XBD_RUN_DIR='$W/$name.run' '$xbd' detach vm1 xvdb"
}

# stats_enabled NAME: what the control socket says for xvdc in sim NAME.
stats_enabled() {
	use_sim "${simdir[$1]}"
	"$xbdsh" stats vm1 --json 2>/dev/null |
		jq -r '[.disks[] | select(.vdev == "xvdc") | .xbd.stats_enabled | tostring] | first // "unknown"'
}

make_image "$IMG" "$IMG_MB"
warm "$IMG" || exit 1
# shellcheck disable=SC2086
if ! setup on || ! setup off $OFF_ENV; then
	echo "== counters on/off: not run: $why =="
	summary "counters|on/off cost|not run: $why|"
	exit 0
fi
en_on=$(stats_enabled on) en_off=$(stats_enabled off)
switch_ok=0
[ "$en_on" = true ] && [ "$en_off" = false ] && switch_ok=1

declare -A runs
wl_rand="--rw randread --bs 4k --qd 32 --time $IO_TIME"
wl_seq="--rw read --bs 1M --qd 4 --time $IO_TIME"
load0=$(load)
for ((r = 1; r <= RUNS; r++)); do
	say "counters bench: run $r/$RUNS (load $(load))"
	# alternate which side goes first, so drift hits both alike
	order="on off"
	((r % 2)) || order="off on"
	for side in $order; do
		use_sim "${simdir[$side]}"
		# shellcheck disable=SC2086
		v=$(vm_io vm1 xvdc $wl_rand) && runs["$side rand"]+=" ${v#* }"
		# shellcheck disable=SC2086
		v=$(vm_io vm1 xvdb $wl_seq) && runs["$side seq"]+=" ${v% *}"
	done
done
declare -A med
for k in "on rand" "off rand" "on seq" "off seq"; do
	# shellcheck disable=SC2086
	med[$k]=$(median ${runs[$k]:-})
	say "  $k:${runs[$k]:-}"
done
# cost of counting: how much slower "on" is than "off", in percent
cost() { awk -v on="$1" -v off="$2" 'BEGIN {
	if (on == "-" || off == "-" || off + 0 == 0) print "-";
	else printf "%.2f\n", (off - on) / off * 100 }'; }
c_rand=$(cost "${med[on rand]}" "${med[off rand]}")
c_seq=$(cost "${med[on seq]}" "${med[off seq]}")
spread() { # the runs' (max - min) / median, in percent
	printf '%s\n' $1 | sort -g | awk -v m="$2" '{v[NR] = $1} END {
		if (NR < 2 || m + 0 == 0) print "-"; else printf "%.1f\n", (v[NR] - v[1]) / m * 100 }'
}

echo
echo "== counters on/off, guest-side on the sim: median of $RUNS runs of ${IO_TIME}s, alternating =="
echo "   off = $OFF_ENV in the environment of the sim (guest blkfront) and of xbd serve"
echo "   stats_enabled from the control socket: on=$en_on off=$en_off"
echo "   load average before/after: $load0 / $(load)"
printf '%-28s %14s %14s %10s %16s\n' "workload" "counters on" "counters off" "cost %" "spread on/off %"
printf '%-28s %14s %14s %10s %16s\n' "null 4k randread QD32 IOPS" "$(fmt "${med[on rand]}")" \
	"$(fmt "${med[off rand]}")" "$c_rand" \
	"$(spread "${runs[on rand]:-}" "${med[on rand]}")/$(spread "${runs[off rand]:-}" "${med[off rand]}")"
printf '%-28s %14s %14s %10s %16s\n' "raw 1M seq read MB/s" "$(fmt "${med[on seq]}")" \
	"$(fmt "${med[off seq]}")" "$c_seq" \
	"$(spread "${runs[on seq]:-}" "${med[on seq]}")/$(spread "${runs[off seq]:-}" "${med[off seq]}")"
if [ $switch_ok = 1 ]; then
	v=met
	ge "$c_rand" 2 && v=MISSED
	ge "$c_seq" 2 && v=MISSED
	[ "$c_rand" = - ] && v="not measured"
	echo "target: counters cost < 2%: randread $c_rand%, seq $c_seq% -> $v"
	summary "counters|cost of counters, null 4k randread|$c_rand %|$v"
	summary "counters|cost of counters, raw 1M seq read|$c_seq %|$v"
else
	echo "NOT MEASURED: '$OFF_ENV' did not switch the counters off (stats_enabled: on=$en_on off=$en_off);"
	echo "  both sims count, so the 'cost' above is the noise floor of this method, not the counters' cost."
	summary "counters|cost of counters|not measured: no switch ($OFF_ENV had no effect); A/A noise ${c_rand}% / ${c_seq}%|"
fi

# ---- perf: the share of the counting functions ---------------------------
[ "${XBD_BENCH_PERF:-1}" = 1 ] && command -v perf >/dev/null || exit 0
use_sim "${simdir[on]}"
be_pid=$("$xbdsh" stats vm1 --json 2>/dev/null | jq -r '.disks[] | select(.vdev == "xvdc") | .xbd_pid')
guest_pid=
for p in /proc/[0-9]*; do
	[[ "$(tr '\0' ' ' 2>/dev/null <"$p/cmdline")" == *"sim guest"* ]] || continue
	tr '\0' '\n' 2>/dev/null <"$p/environ" | grep -qx "XBD_SIM_DIR=${simdir[on]}" || continue
	guest_pid=${p#/proc/}
done
[ -n "$be_pid" ] && [ -n "$guest_pid" ] || { echo "perf: cannot find the backend ($be_pid) or guest ($guest_pid) process"; exit 0; }
# shellcheck disable=SC2086
vm_io vm1 xvdc $wl_rand >/dev/null &
io=$!
sleep 0.5
perf record -q -F 4999 -o "$W/perf.data" -p "$be_pid,$guest_pid" -- sleep $((IO_TIME > 2 ? IO_TIME - 1 : 1)) >/dev/null 2>&1
wait $io
perf report -i "$W/perf.data" --no-children --sort sym --stdio 2>/dev/null >"$W/perf.txt"
echo
echo "perf (cpu-clock samples of the backend, pid $be_pid, and the guest, pid $guest_pid; null 4k randread QD32, counters on):"
awk '/^ *[0-9.]+%/ {
	pct = $1; sub("%", "", pct);
	if ($0 ~ /xbd_stats_|stat_raise_max|xbd_latency_bucket/) stats += pct;
	if ($0 ~ /xbd_now_ns|clock_gettime/) clk += pct;
	total += pct }
	END { printf "  counting functions (xbd_stats_*, stat_raise_max, xbd_latency_bucket): %.2f%% of samples\n", stats;
	      printf "  clock reads (xbd_now_ns, clock_gettime; also used outside the counters): %.2f%%\n", clk }' "$W/perf.txt"
echo "  top symbols:"
grep -E '^ *[0-9.]+%' "$W/perf.txt" | head -n 15 | sed 's/^/    /'
exit 0

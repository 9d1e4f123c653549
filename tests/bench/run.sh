#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `make bench`: runs the benchmarks (attach, serve, counters, image)
# against one build and prints one summary at the end.  Each benchmark prints its own table as it
# goes; its full output (single runs included) is kept in
# BUILD/bench-logs/NAME.log.  A benchmark whose peer tool or xbd command
# is missing says why in its rows, and the others still run.
#   tests/bench/run.sh [BUILD]      (default: build)
#   BENCH="serve counters" tests/bench/run.sh build   runs a subset
# Environment knobs (see lib.sh): XBD_BENCH_RUNS, XBD_BENCH_IMG_MB,
# XBD_BENCH_FIO_TIME, XBD_BENCH_IO_TIME, XBD_BENCH_DIR.
set -u
export LC_ALL=C
here=$(cd "$(dirname "$0")" && pwd)
B=${1:-build}
[ -d "$B" ] || { echo "bench: no build directory $B (run make first)"; exit 1; }
B=$(cd "$B" && pwd)
logs=$B/bench-logs
mkdir -p "$logs"
export XBD_BENCH_SUMMARY=$logs/summary.txt
: >"$XBD_BENCH_SUMMARY"
[ "$(id -u)" -eq 0 ] || echo "bench: not root: FUSE mounts and package installs may fail" >&2

echo "xbd benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC'), $(nproc) CPUs, $(uname -r), build $B"
echo "load average at start: $(cut -d' ' -f1-3 /proc/loadavg)"
for name in ${BENCH:-attach serve counters image}; do
	echo
	echo "######## $name ########"
	bash "$here/$name.sh" "$B" 2>&1 | tee "$logs/$name.log"
	rc=${PIPESTATUS[0]}
	[ "$rc" -eq 0 ] || printf '%s|%s|%s|\n' "$name" "the benchmark failed (exit $rc)" \
		"see $logs/$name.log" >>"$XBD_BENCH_SUMMARY"
done

echo
echo "================================ summary ================================"
awk -F'|' '
	$1 != last { printf "%s\n", $1; last = $1 }
	{ printf "  %-44s %-20s %s\n", $2, $3, $4 }' "$XBD_BENCH_SUMMARY"
echo "(medians; the tables above say how each was taken)"
echo "load average at end: $(cut -d' ' -f1-3 /proc/loadavg)"

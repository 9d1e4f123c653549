#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Runs every test against one build directory and prints one line per
# test, then "N passed, N failed, N skipped".  Unit tests are the
# binaries BUILD/tests/test_*; end-to-end tests are tests/sim/*.sh.
# A test exits 0 (pass), 77 (skip: it prints why) or anything else (fail).
# Logs land in BUILD/test-logs/.  TESTS="name ..." runs a subset.
set -u
case "${1:-}" in -h|--help) sed -n '3,7s/^# \{0,1\}//p' "$0"; echo "usage: $0 [BUILD]"; exit 0 ;; esac
B=${1:-build}
[ -d "$B" ] || { echo "run-tests: $B: no such build directory" >&2; exit 2; }
B=$(cd "$B" && pwd)
top=$(cd "$(dirname "$0")/.." && pwd)
logs=$B/test-logs
mkdir -p "$logs"
export XBD_BUILD=$B XBD_TOP=$top
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=86}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
timeout_s=${XBD_TEST_TIMEOUT:-300}

pass=0 fail=0 skip=0
failed=()
list=()
for t in "$B"/tests/test_*; do [ -x "$t" ] && list+=("$t"); done
for t in "$top"/tests/sim/*.sh; do [ -f "$t" ] && list+=("$t"); done

for t in "${list[@]}"; do
	name=$(basename "$t"); name=${name%.sh}
	if [ -n "${TESTS:-}" ] && ! [[ " $TESTS " == *" $name "* ]]; then continue; fi
	log=$logs/$name.log
	start=$EPOCHREALTIME
	case "$t" in
	*.sh) timeout -k 10 "$timeout_s" bash "$t" >"$log" 2>&1 ;;
	*)    timeout -k 10 "$timeout_s" "$t" >"$log" 2>&1 ;;
	esac
	rc=$?
	secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.1f", b-a}')
	# A sanitizer report anywhere in the log fails the test, even if a
	# child process's exit status was swallowed by the test.
	if [ $rc -ne 77 ] && grep -qE '^(==[0-9]+==ERROR|SUMMARY: (Address|Undefined|Leak)Sanitizer)|runtime error:' "$log"; then
		rc=99
	fi
	if [ $rc -eq 0 ]; then
		pass=$((pass+1)); printf 'PASS %-32s %6ss\n' "$name" "$secs"
	elif [ $rc -eq 77 ]; then
		skip=$((skip+1))
		why=$(grep -m1 '^SKIP:' "$log" | sed 's/^SKIP: *//')
		printf 'SKIP %-32s %s\n' "$name" "${why:-no reason given}"
	else
		fail=$((fail+1)); failed+=("$name")
		[ $rc -eq 124 ] && why="timed out after ${timeout_s}s" || why="exit $rc"
		printf 'FAIL %-32s %6ss (%s)\n' "$name" "$secs" "$why"
		tail -n 25 "$log" | sed 's/^/    | /'
	fi
done
[ ${#failed[@]} -gt 0 ] && echo "failed: ${failed[*]} (logs in $logs)"
echo "$pass passed, $fail failed, $skip skipped"
[ $fail -eq 0 ]

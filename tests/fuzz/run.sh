#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Fuzzes each harness built in BUILD (fuzz_<name>) for SECONDS, one at a
# time, niced, one worker: the machines this runs on are shared.  Starts
# from the committed seeds (tests/fuzz/corpus/<name>) and BUILD's own
# corpus, which keeps what this run found; a crash lands in
# BUILD/artifacts/ and fails the run.  Usage: run.sh BUILD SECONDS [NAME...]
set -u
B=$1 secs=$2
shift 2
top=$(cd "$(dirname "$0")/../.." && pwd)
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
	for f in "$top"/tests/fuzz/fuzz_*.c; do
		n=$(basename "$f" .c); names+=("${n#fuzz_}")
	done
fi
mkdir -p "$B/artifacts"
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
failed=()
for n in "${names[@]}"; do
	mkdir -p "$B/corpus/$n"
	dict=()
	[ -f "$top/tests/fuzz/$n.dict" ] && dict=(-dict="$top/tests/fuzz/$n.dict")
	# response: an input is a list of actions; past 1 KiB one input
	# costs several times more and finds no more
	case $n in response) dict+=(-max_len=1024) ;; esac
	echo "== fuzz_$n for ${secs}s"
	nice -n 10 "$B/fuzz_$n" -max_total_time="$secs" -print_final_stats=1 \
		-artifact_prefix="$B/artifacts/$n-" "${dict[@]}" \
		"$B/corpus/$n" "$top/tests/fuzz/corpus/$n" 2>"$B/fuzz_$n.log"
	rc=$?
	grep -E '^(stat::number_of_executed_units|stat::average_exec_per_sec|Done [0-9]+ runs)' \
		"$B/fuzz_$n.log" | sed 's/^/   /'
	if [ $rc -ne 0 ]; then
		failed+=("$n")
		tail -n 30 "$B/fuzz_$n.log" | sed 's/^/   | /'
	fi
done
if [ ${#failed[@]} -gt 0 ]; then
	echo "fuzz: crashes in ${failed[*]} (inputs in $B/artifacts/)"
	exit 1
fi
echo "fuzz: no crash in ${names[*]}"

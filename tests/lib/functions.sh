# SPDX-License-Identifier: GPL-2.0-or-later
# The helpers every shell test uses (sourced, not run), in the manner of
# nbdkit's tests/functions.sh: checks that count (fail, ok, finish),
# skipping with a reason (skip, requires...), polling (wait_for) and
# cleanup functions that run at exit, last registered first, however the
# test ends.  tests/run-tests.sh reads the verdict from the exit status:
# 0 pass, 77 skip (with a "SKIP: reason" line), anything else fail.
set -u

fails=0

# fail MESSAGE: one failed check; the test goes on (finish says it failed).
fail() { echo "FAIL: $*"; fails=$((fails + 1)); }
# ok MESSAGE: one passed check.
ok() { echo "ok: $*"; }
# die MESSAGE: a failure after which the test cannot go on.
die() { echo "FAIL: $*"; exit 1; }
# skip REASON: the test cannot run here; says why and exits 77.
skip() { echo "SKIP: $*"; exit 77; }

# finish: the test's verdict from the checks so far; exits.
finish() {
	if [ "$fails" -ne 0 ]; then
		echo "$fails check(s) failed"
		exit 1
	fi
	echo "all checks passed"
	exit 0
}

# requires CMD...: runs CMD (output discarded); skips the test when it
# fails.
requires() {
	"$@" >/dev/null 2>&1 || skip "requires: $* failed"
}

# requires_prog PROG [WHERE]: PROG is installed (WHERE: the package that
# has it, for the skip message), else the test skips.
requires_prog() {
	command -v "$1" >/dev/null 2>&1 || skip "$1 not installed${2:+ ($2)}"
}

# requires_root WHY: the test runs as root, else it skips.
requires_root() {
	[ "$(id -u)" -eq 0 ] || skip "needs root ($*)"
}

# wait_for SECONDS CMD...: polls CMD every 0.05 s until it succeeds;
# returns 1 when SECONDS have passed first.
wait_for() {
	local deadline=$((SECONDS + $1))
	shift
	until "$@"; do
		[ $SECONDS -ge $deadline ] && return 1
		sleep 0.05
	done
}

# cleanup_fn CMD...: runs CMD at exit.  Cleanup functions run in the
# reverse order of registration (a work directory registered first goes
# last), whatever a test's last word was: exit, die, skip, a signal.
_cleanup_fns=()
cleanup_fn() {
	_cleanup_fns+=("$(printf '%q ' "$@")")
}
_run_cleanup_fns() {
	local i
	for ((i = ${#_cleanup_fns[@]} - 1; i >= 0; i--)); do
		eval "${_cleanup_fns[i]}"
	done
	_cleanup_fns=()
}
trap _run_cleanup_fns EXIT
# a signal (the runner's timeout sends SIGTERM) exits, so the cleanup runs
trap 'exit 130' INT
trap 'exit 143' TERM

# make_workdir PREFIX [BASE]: a new directory BASE/PREFIX.XXXXXX
# (BASE: /tmp) in $T, removed at exit after every later cleanup.
make_workdir() {
	T=$(mktemp -d "${2:-/tmp}/$1.XXXXXX") || die "mktemp in ${2:-/tmp}"
	cleanup_fn rm -rf "$T"
}

# expect_out DESC WANT CMD...: CMD succeeds and prints exactly WANT
# (stdout and stderr together).
expect_out() {
	local desc=$1 want=$2 got
	shift 2
	if ! got=$("$@" 2>&1); then
		fail "$desc: '$*' failed: $got"
	elif [ "$got" != "$want" ]; then
		fail "$desc: '$*' printed '$got', expected '$want'"
	else
		ok "$desc"
	fi
}

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The kill -9 soak (`make soak`; not part of `make check`).  For about
# SOAK_SECONDS (default 600) it repeats, in an order drawn from SOAK_SEED
# (printed at the start; set it to repeat the choices, not the timing):
#
#  attach: `xbd attach` vm1's disk (read-only, or --cow and written to)
#    and read it whole through a checksum,
#    kill -9 at a random moment the attach, the sim's blkback serving it
#    or vm1's guest; then `xbd list` must show a dead attach dead, `xbd
#    detach` of the dead or orphaned attach must work (or a new attach on
#    the same DIR clean up), and after the recovery a new attach must
#    read the image exactly (its sha256).
#  serve: `xbd serve` a disk (raw or copy-on-write) to vm1, whose guest
#    writes a known pattern with flushes (`xbd sim vm io --flush-every`),
#    kill -9 the serve at a random moment, serve the disk again, and
#    every write a completed flush covered must be there: read back by
#    the guest (--verify) and through the new serve's FUSE mount.
#
# After each iteration: no FUSE mount, no xenstore node of a device that
# is gone, no control socket, no loop device, no xbd process, nothing of
# an exited process in the simulated hypervisor (`xbd sim status`), the
# same grants and ports as when idle before, and the same number of open
# fds in the long-lived sim daemon, blkback and guest.  At the end the
# same after every VM is gone, then the totals: iterations, kills by
# kind, checks, "N passed, N failed"; exit 1 on any failure.  The build
# should have the sanitizers on (make soak builds build/asan): what a
# process that exits reports is a failure too.  Logs of a run stay in
# BUILD/soak-logs/.
# usage: tests/soak/run.sh [BUILD-DIR]   (default build/asan)
set -u
top=$(cd "$(dirname "$0")/../.." && pwd)
B=${1:-$top/build/asan}
XBD_BUILD=$(cd "$B" && pwd) || { echo "soak: no build directory $B" >&2; exit 1; }
export XBD_BUILD
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0:exitcode=86}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
SOAK_SECONDS=${SOAK_SECONDS:-600}
SOAK_SEED=${SOAK_SEED:-$(od -An -N2 -tu2 /dev/urandom | tr -d ' ')}
case "$SOAK_SECONDS$SOAK_SEED" in
*[!0-9]*) echo "soak: SOAK_SECONDS and SOAK_SEED are whole numbers" >&2; exit 2 ;;
esac
echo "soak: seed $SOAK_SEED, ${SOAK_SECONDS}s (SOAK_SEED=$SOAK_SEED repeats the choices)"
RANDOM=$SOAK_SEED

. "$top/tests/sim/attach_common.inc"
need_fuse_root
requires_prog losetup
logs=$XBD_BUILD/soak-logs
rm -rf "$logs"
mkdir -p "$logs"
LOG=$logs/soak.log

# Every check counts; only failures (and the progress) reach stdout.
iter=0 checks=0 fails=0
declare -A kills=([attach]=0 [blkback]=0 [guest]=0 [serve]=0)
declare -A runs=([attach]=0 [serve]=0)
ok() { checks=$((checks + 1)); echo "ok: $*" >>"$LOG"; }
fail() {
	checks=$((checks + 1)) fails=$((fails + 1))
	echo "FAIL: [iteration $iter] $*" | tee -a "$LOG"
}
die() { fail "$*"; exit 1; }
note() { echo "$*" >>"$LOG"; }

summary() {
	local k
	echo "soak: seed $SOAK_SEED, $iter iteration(s) in $((SECONDS - t_start))s:" \
		"attach ${runs[attach]}, serve ${runs[serve]}"
	echo "soak: kills: $(for k in attach blkback guest serve; do
		printf '%s %s, ' "$k" "${kills[$k]}"; done | sed 's/, $//')"
	echo "soak: $checks checks: $((checks - fails)) passed, $fails failed (log: $LOG)"
}
# the logs of the daemons stay (the work directory goes)
keep_logs() {
	local f
	for f in "$T"/*.log "$T"/*.out "$sim_dir/sim.log"; do
		[ -s "$f" ] && cp "$f" "$logs/" 2>/dev/null
	done
	return 0
}
cleanup_fn keep_logs
summary_done=
cleanup_fn eval '[ -n "$summary_done" ] || summary'
t_start=$SECONDS

# The choices come from $RANDOM in this shell only: a subshell's
# $RANDOM is seeded anew, so nothing here runs in $(...).
# pick VAR WORD...: VAR is one of the words.
pick() {
	local _v=$1
	shift
	local a=("$@")
	printf -v "$_v" '%s' "${a[RANDOM % ${#a[@]}]}"
}
# rsleep MS: sleeps up to MS milliseconds.
rsleep() {
	local m=$((RANDOM % $1))
	note "sleeping ${m}ms"
	sleep "$((m / 1000)).$(printf '%03d' $((m % 1000)))"
}

fd_count() { ls "/proc/$1/fd" 2>/dev/null | wc -l; }
# dead_views PID: the memory files of destroyed domains PID holds open.
# A process of the sim keeps its view of each domain it met for its
# whole life (src/sim/sim_hv.h: views are append-only, read lock-free),
# one fd each: a limit of the sim, not an fd xbd leaks; counted apart.
dead_views() {
	ls -l "/proc/$1/fd" 2>/dev/null | grep -c "$sim_dir/mem-[0-9]* (deleted)"
}
# live_fds PID: PID's open fds without those.
live_fds() { echo $(($(fd_count "$1") - $(dead_views "$1"))); }

# status_line DOMID: `xbd sim status`'s counts for the domain.
status_of() {
	"$xbd" sim status --dir "$sim_dir" 2>&1 | awk -v d="dom$1" '$1 == d { $1 = ""; $2 = ""; print }'
}
no_exited() { ! "$xbd" sim status --dir "$sim_dir" 2>&1 | grep -v "of-exited=0" | grep -q .; }

# xbd_procs: the attach and serve processes on this sim.
xbd_procs() { sim_pid " attach vm1" 2>/dev/null || sim_pid " serve vm1" 2>/dev/null; }

# The long-lived processes and what they hold when nothing is attached
# or served (vm1 up, xvda connected): each idle point must match.
base_procs() {
	sim_daemon=$(cat "$sim_dir/pid" 2>/dev/null)
	bb_pid=$(sim_pid "sim blkback" 2>/dev/null) || bb_pid=
	guest_pid=$(sim_pid "sim guest" 2>/dev/null) || guest_pid=
	base_fds="$(fd_count "$sim_daemon") $(live_fds "$bb_pid") $(fd_count "$guest_pid")"
	base_dom0=$(status_of 0)
	base_vm=$(status_of "$DOMID")
	note "idle baseline: fds (sim, blkback, guest) $base_fds; dom0 $base_dom0; vm1 $base_vm"
}

# idle_check WHERE: nothing is left of what came and went.
idle_check() {
	local where=$1 x fds
	x=$(grep -c " $T/" /proc/mounts)
	[ "$x" = 0 ] && ok "$where: no mount" || fail "$where: $x mount(s) left: $(grep " $T/" /proc/mounts)"
	wait_for 5 eval '! xbd_procs >/dev/null' && ok "$where: no xbd process" ||
		fail "$where: xbd process(es) left: $(xbd_procs)"
	# the blkback's own control socket stays
	x=$(find "$XBD_RUN_DIR" -type s ! -name "xbd-$bb_pid.sock" 2>/dev/null)
	[ -z "$x" ] && ok "$where: no control socket" || fail "$where: control socket(s) left: $x"
	x=$(losetup -a 2>/dev/null | grep -F "$T/")
	[ -z "$x" ] && ok "$where: no loop device" || fail "$where: loop device(s) left: $x"
	x=$( { xenstore-list /local/domain/0/device/xbd
		xenstore-list /local/domain/0/backend/vbd/0
		xenstore-list /local/domain/0/backend/xbd
		xenstore-list /local/domain/0/backend/vbd | grep -vx "$DOMID"
		xenstore-list "/local/domain/$DOMID/device/vbd" | grep -vx 51712
	} 2>/dev/null)
	[ -z "$x" ] && ok "$where: no xenstore node left" ||
		fail "$where: xenstore nodes left: $(echo $x)"
	wait_for 3 no_exited && ok "$where: the sim holds nothing of exited processes" ||
		fail "$where: left by exited processes: $("$xbd" sim status --dir "$sim_dir" 2>&1 | tr '\n' '|')"
	x="$(status_of 0)|$(status_of "$DOMID")"
	[ "$x" = "$base_dom0|$base_vm" ] && ok "$where: grants and ports as when idle" ||
		fail "$where: grants and ports (dom0|vm1) '$x', idle before '$base_dom0|$base_vm'"
	fds="$(fd_count "$sim_daemon") $(live_fds "$bb_pid") $(fd_count "$guest_pid")"
	[ "$fds" = "$base_fds" ] && ok "$where: open fds of sim, blkback, guest $fds" ||
		fail "$where: open fds of sim, blkback, guest $fds, idle before $base_fds"
}

# vm1_up: vm1 with the attach image as xvda, connected by its guest,
# which has served a disk once (so that what it opens on first use is
# open when the idle baseline is taken).
vm1_up() {
	local out
	vm_create vm1 "$img,xvda"
	wait_for 20 guest_connected "$DOMID" 51712 || die "vm1's guest did not connect xvda"
	serve_xvdb "" || die "serve xvdb to warm the guest up: $(tail -n 2 "$LOG")"
	out=$(timeout 60 "$xbd" sim vm io vm1 xvdb --rw write --bs 64k --size 1M 2>&1) ||
		die "the guest's first workload: $out"
	out=$(timeout 60 "$xbd" detach vm1 xvdb 2>&1) || die "detach vm1 xvdb: $out"
	wait_for 10 eval '[ -z "$(xenstore-list /local/domain/'"$DOMID"'/device/vbd | grep -vx 51712)" ]' ||
		die "xvdb stayed in vm1"
}

# vm1_again: vm1 destroyed and created anew (after its guest or the
# blkback serving it died); the backend directory of the old one must go.
vm1_again() {
	local old=$DOMID
	timeout 30 "$xbd" sim vm destroy vm1 >>"$LOG" 2>&1 && ok "vm destroy" || fail "vm destroy"
	if [ -n "${1:-}" ]; then
		# the blkback is dead: the toolstack removes what it cannot
		note "toolstack: removing the dead blkback's backend/vbd/$old"
		xenstore-rm "/local/domain/0/backend/vbd/$old" 2>/dev/null
		"$xbd" sim blkback >>"$T/blkback.log" 2>&1 &
		own_blkback=$!
	fi
	wait_for 10 eval '! xenstore-exists /local/domain/0/backend/vbd/'"$old"' 2>/dev/null' &&
		ok "the backend of destroyed dom$old went" ||
		fail "backend/vbd/$old left after vm1 was destroyed"
	vm1_up
	base_procs
}

# read_sums FILE OUT: FILE read whole through sha256sum, pass after
# pass (up to 12, with a block size of the seed's choice), in the
# background (READER); each pass's sum goes as a line to OUT, "error
# STATUS" for a failed one, which ends the reading.
read_sums() {
	local bs
	pick bs 4k 64k 1M 3584 128k
	note "reading with bs=$bs"
	: >"$2"
	(
		for pass in $(seq 1 12); do
			timeout 120 dd if="$1" bs="$bs" status=none | sha256sum >"$2.pass"
			rc=${PIPESTATUS[0]}
			if [ "$rc" != 0 ]; then
				echo "error $rc" >>"$2"
				break
			fi
			cat "$2.pass" >>"$2"
		done
	) 2>>"$LOG" &
	READER=$!
}

# reader_done OUT: the reader finished (no hang); the passes' results
# are OUT's lines.
reader_done() {
	if ! wait_for 90 eval '! kill -0 '"$READER"' 2>/dev/null'; then
		fail "the reader hangs after the kill"
		kill -KILL "$READER" 2>/dev/null
	else
		ok "the reader finished"
	fi
	wait "$READER" 2>/dev/null
}

# attach_fresh: a new attach on $T/mnt that must read the image exactly.
attach_fresh_check() {
	local out
	if out=$(timeout 60 "$xbd" attach vm1 --mount "$T/mnt" 2>&1); then
		ok "attach: $out"
	else
		fail "attach after recovery: $out"
		return
	fi
	[ "$(timeout 120 sha256sum <"$T/mnt/xvda")" = "$sum" ] && ok "the new attach reads the image exactly" ||
		fail "the new attach reads other data than the image"
	[ "$(sha256sum <"$img")" = "$sum" ] && ok "the image was never written" ||
		fail "the VM's image changed"
	out=$(timeout 60 "$xbd" detach "$T/mnt" 2>&1) && ok "detach" || fail "detach: $out"
}

iteration_attach() {
	local what out pid passes line
	runs[attach]=$((runs[attach] + 1))
	local mode want=$sum blk
	pick what attach blkback guest
	pick mode ro cow
	local opts=()
	[ "$mode" = cow ] && opts=(--cow)
	out=$(timeout 60 "$xbd" attach vm1 --mount "$T/mnt" "${opts[@]}" 2>&1) ||
		{ fail "attach ($mode): $out"; return; }
	pid=$(attach_pid) || { fail "no xbd-pid recorded"; return; }
	if [ "$mode" = cow ]; then
		# writes kept in dom0: the reads must see them, the image never
		blk=$((RANDOM % 512))
		head -c 65536 /dev/urandom >"$T/blk"
		cp "$img" "$T/cow-want"
		dd if="$T/blk" of="$T/cow-want" bs=64k seek="$blk" conv=notrunc status=none
		want=$(sha256sum <"$T/cow-want")
		rm -f "$T/cow-want"
		if dd if="$T/blk" of="$T/mnt/xvda" bs=64k seek="$blk" conv=notrunc,fsync \
			status=none 2>>"$LOG"; then
			ok "--cow: wrote 64 KiB at block $blk"
		else
			fail "--cow: cannot write DIR/xvda"
		fi
	fi
	note "attach $mode, killing $what"
	read_sums "$T/mnt/xvda" "$T/sums"
	rsleep 1200
	case $what in
	attach) kill9 "$pid" "xbd attach" ;;
	blkback) pid=$(sim_pid "sim blkback" 2>/dev/null) || { fail "no blkback"; return; }
		 kill9 "$pid" "the sim's blkback" ;;
	guest) pid=$(sim_pid "sim guest" 2>/dev/null) || { fail "no guest"; return; }
	       kill9 "$pid" "vm1's guest" ;;
	esac
	kills[$what]=$((kills[$what] + 1))
	note "killed $what (pid $pid)"
	reader_done "$T/sums"
	# every pass that got to the end saw the image exactly; one that
	# failed is fine unless only the guest was killed
	passes=0
	while read -r line; do
		case "$line" in
		"$want") passes=$((passes + 1)) ;;
		error*) if [ "$what" = guest ]; then
				fail "a read failed when only the guest was killed (dd: ${line#error })"
			else
				ok "a read failed with the $what killed (dd: ${line#error })"
			fi ;;
		*) fail "a read after killing $what got to the end with another checksum" ;;
		esac
	done <"$T/sums"
	[ "$passes" -gt 0 ] && ok "$passes read(s) to the end, checksum equal"
	note "$passes pass(es) whole, $(grep -c error "$T/sums") failed"
	case $what in
	attach)
		list_shows_dead attach xvda
		if [ $((RANDOM % 2)) = 0 ]; then
			out=$(timeout 60 "$xbd" detach "$T/mnt" 2>&1) &&
				ok "detach of a dead attach: $out" || fail "detach of a dead attach: $out"
			attach_fresh_check
		else
			# a new attach on the same DIR cleans up after the dead one
			attach_fresh_check
		fi
		;;
	blkback)
		out=$(timeout 60 "$xbd" detach "$T/mnt" 2>&1) &&
			ok "detach of an attach whose backend died: $out" ||
			fail "detach of an attach whose backend died: $out"
		vm1_again toolstack
		attach_fresh_check
		;;
	guest)
		out=$(timeout 60 "$xbd" detach "$T/mnt" 2>&1) && ok "detach" || fail "detach: $out"
		vm1_again
		attach_fresh_check
		;;
	esac
}

# serve_xvdb MOUNT ARGS...: xbd serve of the serve image as vm1's xvdb.
serve_xvdb() {
	local m=$1 out
	shift
	out=$(timeout 60 "$xbd" serve vm1 --image "$simg" --vdev xvdb --timeout 40 \
		--log "$T/serve.log" ${m:+--mount "$m"} "$@" 2>&1)
	local rc=$?
	note "serve $*: $out"
	return $rc
}

iteration_serve() {
	local backend rw bs qd every secs seed out pid w nblocks io args=()
	runs[serve]=$((runs[serve] + 1))
	pick backend raw cow
	pick rw write randwrite
	pick bs 4096 16384 65536
	pick qd 1 4 16 32
	pick every 1 3 8 32
	pick secs 2 3 4
	seed=$((1000 + iter))
	[ "$backend" = cow ] && args=(--backend cow --overlay "$T/overlay")
	note "serve: $backend, $rw bs $bs qd $qd flush every $every, ${secs}s, pattern $seed"
	serve_xvdb "" "${args[@]}" || { fail "serve: $(tail -n 3 "$LOG")"; return; }
	pid=$(xs_read "/local/domain/0/backend/xbd/$DOMID/51728/xbd-pid") ||
		{ fail "no xbd-pid for xvdb"; return; }
	timeout 90 "$xbd" sim vm io vm1 xvdb --rw "$rw" --bs "$bs" --qd "$qd" \
		--time "$secs" --pattern "$seed" --flush-every "$every" >"$T/io.out" 2>&1 &
	io=$!
	rsleep $((secs * 1000 + 500))
	kill9 "$pid" "xbd serve"
	kills[serve]=$((kills[serve] + 1))
	if ! wait_for 80 eval '! kill -0 '"$io"' 2>/dev/null'; then
		fail "the guest's workload hangs after the serve was killed"
	fi
	wait "$io"
	note "workload (exit $?): $(tr '\n' '|' <"$T/io.out")"
	w=$(sed -n 's/^flushed-writes \([0-9]*\)$/\1/p' "$T/io.out")
	if [ -z "$w" ]; then
		fail "the workload did not say how many writes were flushed: $(cat "$T/io.out")"
		w=0
	fi
	if [ $((RANDOM % 2)) = 0 ]; then
		out=$(timeout 60 "$xbd" detach vm1 xvdb 2>&1) && ok "detach of a dead serve" ||
			fail "detach of a dead serve: $out"
	fi
	mkdir -p "$T/smnt"
	if serve_xvdb "$T/smnt" "${args[@]}"; then
		ok "served again"
	else
		fail "serve again after kill -9: $(tail -n 2 "$LOG")"
		return
	fi
	wait_for 20 guest_connected "$DOMID" 51728 || fail "the guest did not connect xvdb again"
	nblocks=$(($(stat -c %s "$simg") / bs))
	if [ "$w" -gt 0 ] && [ "$rw" = write ]; then
		out=$(timeout 90 "$xbd" sim vm io vm1 xvdb --rw read --bs "$bs" --qd 8 --verify \
			--pattern "$seed" --size $(((w < nblocks ? w : nblocks) * bs)) 2>&1) &&
			ok "the guest read back $w flushed write(s): $out" ||
			fail "the guest lacks flushed writes ($w of pattern $seed): $out"
	fi
	out=$(timeout 120 python3 "$top/tests/soak/flushed.py" "$T/smnt/xvdb" "$rw" "$bs" "$seed" "$w" 2>&1) &&
		ok "every flushed write present ($w writes): $out" ||
		fail "lost flushed writes ($backend, $rw, $w writes): $out"
	out=$(timeout 60 "$xbd" detach vm1 xvdb 2>&1) && ok "detach vm1 xvdb" || fail "detach vm1 xvdb: $out"
}

start_sim
mkdir -p "$T/mnt" "$XBD_RUN_DIR"
mounts+=("$T/mnt" "$T/smnt")
cleanup_fn eval '"$xbd" detach vm1 xvdb >/dev/null 2>&1'
img=$T/disk.img
make_random_image "$img" 32
sum=$(sha256sum <"$img")
simg=$T/served.img
make_random_image "$simg" 16
sim_fds0=$(fd_count "$(cat "$sim_dir/pid")")
vm1_up
base_procs
idle_check "start"

while [ $((SECONDS - t_start)) -lt "$SOAK_SECONDS" ]; do
	iter=$((iter + 1))
	pick kind attach serve
	"iteration_$kind"
	sim_pid "sim blkback" >/dev/null 2>&1 || die "no blkback any more"
	idle_check "after $kind"
	printf 'soak: %4ds iteration %d (%s): %d checks, %d failed\n' \
		$((SECONDS - t_start)) "$iter" "$kind" "$checks" "$fails"
done

# The end: vm1 goes, and with it everything it held.
timeout 30 "$xbd" sim vm destroy vm1 >>"$LOG" 2>&1 && ok "vm destroy" || fail "vm destroy"
wait_for 10 eval '[ -z "$(xenstore-list /local/domain/0/backend/vbd 2>/dev/null)" ]' &&
	ok "end: no backend node left" ||
	fail "end: backend nodes left: $(xenstore-list /local/domain/0/backend/vbd 2>&1)"
x=$(status_of 0)
case "$x" in
*" grants=0 mapped=0 ending=0 frames=0 ports=0 bound=0 of-exited=0") ok "end: dom0 holds nothing" ;;
*) fail "end: dom0 holds $x" ;;
esac
wait_for 3 no_exited && ok "end: nothing of exited processes" ||
	fail "end: left by exited processes: $("$xbd" sim status --dir "$sim_dir" --verbose 2>&1 | tr '\n' '|')"
[ "$(fd_count "$sim_daemon")" = "$sim_fds0" ] && ok "end: the sim daemon's fds as before the first VM" ||
	fail "end: the sim daemon has $(fd_count "$sim_daemon") fds open, $sim_fds0 before the first VM"
x=$(sim_pid "sim blkback" 2>/dev/null) && echo "soak: the blkback holds the views of $(dead_views "$x") destroyed domain(s)"
if [ -n "$own_blkback" ]; then
	kill -TERM "$own_blkback" 2>/dev/null
	wait "$own_blkback" && ok "blkback: exit 0 on SIGTERM" || fail "blkback: exit $? on SIGTERM"
	own_blkback=
fi
out=$("$xbd" sim stop --dir "$sim_dir" 2>&1) && ok "sim stop" || fail "sim stop: $out"
for f in "$T"/*.log "$sim_dir/sim.log"; do
	if [ -f "$f" ] && grep -qE '^(==[0-9]+==ERROR|SUMMARY: (Address|Undefined|Leak)Sanitizer)|runtime error:' "$f"; then
		fail "a sanitizer report in $f"
	fi
done
summary
summary_done=1
[ "$fails" -eq 0 ]

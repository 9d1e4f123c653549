#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `xbd attach --pause`: the VM is paused while attached (its simulated
# guest, which writes a counter pattern without pause, stops; the
# attached disk is one moment of its writes, tests/sim/counter_check.py)
# and runs again at detach; `xbd detach` of a kill -9'd attach unpauses
# it too; a pause the admin made before is never undone, neither by a
# detach nor by the cleanup after a kill -9; --rw is no second writer
# on a paused VM (the sim knows pauses now: no --force needed).
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
check=$(dirname "$0")/counter_check.py
start_sim
BS=4096
REGION=$((8 << 20))
img=$T/disk.img
truncate -s 32M "$img"
vm1_with_xvda "$img"
mnt=$T/mnt

state() { "$xbd" sim vm paused vm1 2>&1; }
max_seq() { python3 "$check" --max "$1" "$BS" "$REGION"; }
advances() {
	local m0
	m0=$(max_seq "$img")
	wait_for 10 eval '[ "$(max_seq "$img")" -gt $((m0 + 500)) ]'
}

"$xbd" sim vm io vm1 xvda --rw counter --bs $BS --qd 8 --size $REGION --time 300 \
	>"$T/io.out" 2>&1 &
bg_pids+=("$!")
advances || die "the guest's counter does not advance: $(cat "$T/io.out")"

# paused while attached; one moment; runs again at detach
attach vm1 "$mnt" --pause --log "$T/attach.log" 2>"$T/err" || die "attach --pause: $(cat "$T/err")"
[ "$(state)" = paused ] && ok "attach --pause: vm1 is paused" || fail "vm1 is $(state)"
dd if="$mnt/xvda" of="$T/copy.raw" bs=1M count=$((REGION >> 20)) status=none || fail "dd"
if m=$(python3 "$check" "$T/copy.raw" $BS $REGION); then
	ok "the attached disk is one moment of the guest's writes (write $m)"
else
	fail "the attached disk is not one moment: $m"
fi
m1=$(max_seq "$img")
sleep 0.5
[ "$(max_seq "$img")" = "$m1" ] && ok "the guest writes nothing while attached" ||
	fail "the guest wrote while paused: $m1 -> $(max_seq "$img")"
[ -n "$(xenstore-ls /local/domain/0/device/xbd 2>/dev/null | grep 'xbd-paused = ')" ] &&
	ok "the pause is recorded beside the attach" || fail "no xbd-paused record"
"$xbd" detach "$mnt" 2>"$T/err" || fail "detach: $(cat "$T/err")"
[ "$(state)" = running ] && ok "detach: vm1 runs again" || fail "after detach vm1 is $(state)"
advances && ok "the guest writes on after detach" || fail "the counter does not advance after detach"

# kill -9: the pause stays until `xbd detach` cleans up, which unpauses
attach vm1 "$mnt" --pause --log "$T/attach.log" 2>"$T/err" || die "attach --pause: $(cat "$T/err")"
pid=$(attach_pid) || die "no attach pid recorded"
kill9 "$pid" "xbd attach"
[ "$(state)" = paused ] && ok "kill -9'd attach: vm1 stays paused" || fail "vm1 is $(state)"
"$xbd" detach "$mnt" 2>"$T/err" || fail "detach of the dead attach: $(cat "$T/err")"
grep -q "vm1: unpaused: the pause of a killed xbd process is undone" "$T/err" &&
	ok "detach of the dead attach says: $(grep unpaused "$T/err")" || fail "detach said: $(cat "$T/err")"
[ "$(state)" = running ] && ok "detach of the dead attach: vm1 runs again" ||
	fail "after detach of the dead attach vm1 is $(state)"
wait_for 3 no_attach_nodes && ok "no nodes left" || fail "nodes left"
"$xbd" detach "$mnt" >/dev/null 2>&1
[ "$(state)" = running ] && ok "a second detach changes nothing" || fail "vm1 is $(state)"

# kill -9 while paused but before the disks are attached: the sim's
# blkback stopped with the guest's requests on its ring, so the attach
# waits for the ring (up to 30 s) after the pause; the pause is
# recorded from the moment it is made, so detach undoes it
blkback=$(pgrep -P "$(cat "$sim_dir/pid")" -f 'sim blkback' | head -n1)
[ -n "$blkback" ] || die "no sim blkback under the sim daemon"
kill -STOP "$blkback"
mkdir -p "$mnt"
mounts+=("$mnt")
"$xbd" attach vm1 --mount "$mnt" --pause --foreground >"$T/fg.log" 2>&1 &
pid=$!
bg_pids+=("$pid")
wait_for 10 eval '[ "$(state)" = paused ]' || fail "attach --pause did not pause vm1: $(cat "$T/fg.log")"
wait_for 5 eval 'xenstore-ls /local/domain/0/device/xbd 2>/dev/null | grep -q "xbd-paused = "' &&
	ok "the pause is recorded while the attach waits for the ring" ||
	fail "no xbd-paused record during the ring wait: $(xenstore-ls /local/domain/0/device/xbd 2>&1)"
kill -0 "$pid" 2>/dev/null && [ ! -e "$mnt/xvda" ] &&
	ok "the attach is still waiting (no disk attached yet)" || fail "the attach got past the ring wait: $(cat "$T/fg.log")"
kill9 "$pid" "xbd attach"
kill -CONT "$blkback"
[ "$(state)" = paused ] && ok "kill -9 in the ring wait: vm1 stays paused" || fail "vm1 is $(state)"
"$xbd" detach "$mnt" 2>"$T/err" || fail "detach of the attach killed in the ring wait: $(cat "$T/err")"
grep -q "vm1: unpaused: the pause of a killed xbd process is undone" "$T/err" &&
	ok "detach of the attach killed in the ring wait: $(grep unpaused "$T/err")" ||
	fail "detach said: $(cat "$T/err")"
[ "$(state)" = running ] && ok "kill -9 in the ring wait: detach lets vm1 run" || fail "vm1 is $(state)"
wait_for 3 no_attach_nodes && ok "no nodes left" || fail "nodes left: $(xenstore-ls -f /local/domain/0/device 2>&1)"
advances || fail "the counter does not advance after that detach"

# --foreground: a SIGHUP (the terminal closed) detaches and unpauses
"$xbd" attach vm1 --mount "$mnt" --pause --foreground >"$T/fg.log" 2>&1 &
pid=$!
bg_pids+=("$pid")
wait_for 10 test -e "$mnt/xvda" || fail "attach --pause --foreground: $(cat "$T/fg.log")"
[ "$(state)" = paused ] || fail "attach --pause --foreground: vm1 is $(state)"
kill -HUP "$pid"
wait_for 10 eval '! kill -0 '"$pid"' 2>/dev/null' || fail "SIGHUP did not end attach --foreground"
[ "$(state)" = running ] && ok "SIGHUP to attach --pause --foreground: vm1 runs again" ||
	fail "after SIGHUP vm1 is $(state): $(cat "$T/fg.log")"
wait_for 3 no_attach_nodes && ok "SIGHUP: no nodes left" || fail "SIGHUP: nodes left"
mountpoint -q "$mnt" && fail "SIGHUP left the mount on $mnt"

# the admin's pause stays: through attach --pause and detach, and
# through a kill -9 and the cleanup
"$xbd" sim vm pause vm1 || fail "sim vm pause"
attach vm1 "$mnt" --pause --log "$T/attach.log" 2>"$T/err" || die "attach --pause: $(cat "$T/err")"
"$xbd" detach "$mnt" 2>"$T/err" || fail "detach: $(cat "$T/err")"
[ "$(state)" = paused ] && ok "detach leaves the admin's pause" || fail "detach undid the admin's pause"
attach vm1 "$mnt" --pause --log "$T/attach.log" 2>"$T/err" || die "attach --pause: $(cat "$T/err")"
kill9 "$(attach_pid)" "xbd attach"
"$xbd" detach "$mnt" 2>"$T/err" || fail "detach of the dead attach: $(cat "$T/err")"
[ "$(state)" = paused ] && ok "the cleanup of a killed attach leaves the admin's pause" ||
	fail "the cleanup undid the admin's pause"
# an attach without --pause that is killed: its cleanup unpauses nothing
attach vm1 "$mnt" --log "$T/attach.log" 2>"$T/err" || die "attach: $(cat "$T/err")"
kill9 "$(attach_pid)" "xbd attach"
"$xbd" detach "$mnt" 2>"$T/err" || fail "detach of the dead attach: $(cat "$T/err")"
[ "$(state)" = paused ] && ok "a killed attach without --pause unpauses nothing" ||
	fail "the cleanup of an attach without --pause unpaused vm1"

# --rw on a paused VM: no second writer, no --force needed
attach vm1 "$mnt" --rw --log "$T/attach.log" 2>"$T/err" &&
	ok "--rw on the paused VM is allowed" || fail "--rw on a paused VM: $(cat "$T/err")"
"$xbd" detach "$mnt" 2>/dev/null
"$xbd" sim vm unpause vm1 || fail "sim vm unpause"
[ "$(state)" = running ] && ok "the admin's unpause lets it run" || fail "vm1 is $(state)"
if attach vm1 "$mnt" --rw --log "$T/attach.log" 2>"$T/err"; then
	fail "--rw on the running VM was allowed"
	"$xbd" detach "$mnt"
else
	grep -q "the VM is running with this disk writable; pause it" "$T/err" &&
		ok "--rw on the running VM refused: $(cat "$T/err")" || fail "refusal: $(cat "$T/err")"
fi
attach vm1 "$mnt" --rw --pause --log "$T/attach.log" 2>"$T/err" &&
	ok "--rw --pause is allowed" || fail "--rw --pause: $(cat "$T/err")"
[ "$(state)" = paused ] && ok "--rw --pause: vm1 paused" || fail "vm1 is $(state)"
"$xbd" detach "$mnt" 2>/dev/null
[ "$(state)" = running ] && ok "--rw --pause: runs again at detach" || fail "vm1 is $(state)"
finish

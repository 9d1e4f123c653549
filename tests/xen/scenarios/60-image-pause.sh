#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# xbd image --pause of a running PV domU's disk (phy: on a loop device)
# while the domU writes to it without pause (each 4 KiB block stamped
# with its write's number, fsync'd).  While xbd holds the pause, the
# xbd process is stopped (SIGSTOP) so that the backing file can be
# hashed at leisure: the moment the image must equal.  Checks: the domU
# is paused (xl's state) during the copy, the image's sha256 equals the
# backing file's while paused, and the report's; the domU runs and
# writes on afterwards; nothing is left in xenstore; SIGTERM mid-copy
# unpauses it; a pause made with `xl pause` before stays; xbd attach
# --pause keeps it paused until detach, also when the attach was killed.
# timeout: 900
. "$(dirname "$0")/lib.sh"

img=$W/disk.img
dd if=/dev/urandom of="$img" bs=1M count=64 2>/dev/null || fail "cannot make $img"
loop_attach loop "$img"
cat > "$W/job.sh" <<'JOB'
. /lib/xbd-domu.sh
wait_dev /dev/xvda || exit 1
i=0
while :; do
	i=$((i + 1))
	yes "XBD-COUNTER $i" | head -c 4096 |
		dd of=/dev/xvda bs=4096 seek=$((i % 2048)) conv=notrunc,fsync 2>/dev/null || exit 2
	[ $i = 20 ] && report writing 1
done
JOB
domu_start vm1 --disk "phy:$loop,xvda,w" --script "$W/job.sh"
domu_wait vm1 '^XBD-DOMU RESULT writing' 120
on_failure "domu_console vm1 | xargs tail -n 20"

state() { xl list vm1 2>/dev/null | awk 'NR == 2 { print $5 }'; }
is_paused() { [[ $(state) == *p* ]]; }
# the domU's writes change the backing file
file_sum() { sha256sum < "$img" | cut -d' ' -f1; }
s0=$(file_sum)
wait_for 30 eval '[ "$(file_sum)" != "$s0" ]' || fail "the domU does not write"
is_paused && fail "vm1 is paused before the test: $(state)"

out=$W/vm1.raw
xbd image vm1 -o "$out" --pause --sha1 >"$W/image.out" 2>"$W/image.err" &
pid=$!
on_exit "kill -CONT $pid 2>/dev/null"
# the pause is recorded once the rings are idle: from then on the disk
# is the moment the image must be
recorded() { xenstore-ls -f /local/domain/0/device 2>/dev/null | grep -q 'xbd-paused = '; }
pause_refused() { grep -q 'built for another Xen version' "$W/image.err"; }
wait_for 60 eval 'recorded || pause_refused' ||
	{ cat "$W/image.err"; fail "xbd image --pause recorded no pause"; }
if pause_refused; then
	# a Xen other than the one xbd was built for (Debian 12's xbd on
	# Debian 13's Xen) refuses libxenctrl's domctls: xbd must say so in
	# one line and leave the domU running, with no image
	wait "$pid" && fail "xbd image --pause succeeded without a pause"
	[ "$(wc -l <"$W/image.err")" = 1 ] || fail "more than one line: $(cat "$W/image.err")"
	is_paused && fail "vm1 left paused: $(state)"
	[ -e "$out" ] && fail "an image was left although the pause was refused"
	skip "pause needs xbd built for this Xen: $(cat "$W/image.err")"
fi
kill -STOP "$pid"
# the record comes right after the pause, before the rings are idle: a
# write the backend still had in flight lands within this second
sleep 1
is_paused && echo "vm1 during the copy: $(state)" || fail "vm1 is not paused during the copy: $(state)"
want=$(file_sum)
sleep 2
[ "$(file_sum)" = "$want" ] || fail "the backing file changed while vm1 was paused"
is_paused || fail "vm1 ran before xbd image was done"
kill -CONT "$pid"
wait "$pid" || { cat "$W/image.err"; fail "xbd image --pause failed"; }
cat "$W/image.out"
got=$(sha256sum < "$out" | cut -d' ' -f1)
[ "$got" = "$want" ] || fail "the image's sha256 $got, the backing file's while paused $want"
grep -q "^sha256 $want\$" "$W/image.out" || fail "xbd image reported another sha256: $(cat "$W/image.out")"
r=$(cat "$out.report.json")
[ "$(json_val "$r" paused)" = true ] || fail "the report does not say paused: ${r:0:400}"
[ "$(json_val "$r" already_paused)" = false ] || fail "the report: already_paused: ${r:0:400}"
[ "$(json_val "$r" rings_checked)" -ge 1 ] 2>/dev/null || fail "the report checked no ring: ${r:0:400}"
grep -A1 '^Paused:' "$out.report.txt"

# the domU runs and writes on
wait_for 10 eval '! is_paused' || fail "vm1 is still paused after xbd image: $(state)"
domu_alive vm1 || fail "vm1 died"
wait_for 30 eval '[ "$(file_sum)" != "$want" ]' || fail "the domU writes nothing after the copy"
echo "vm1 after the copy: $(state), writing"
left=$(xenstore-ls -f /local/domain/0/device 2>/dev/null | grep -v '^/local/domain/0/device = ' || true)
[ -z "$left" ] || fail "left in xenstore: $left"

# SIGTERM mid-copy: the domU runs again and no image is left
xbd image vm1 -o "$W/t.raw" --pause >/dev/null 2>"$W/t.err" &
pid=$!
wait_for 60 recorded || { cat "$W/t.err"; fail "the second xbd image --pause recorded no pause"; }
is_paused || fail "vm1 not paused during the second copy: $(state)"
kill -TERM "$pid"
wait "$pid"
st=$?
[ "$st" = 143 ] || fail "SIGTERM: exit $st: $(cat "$W/t.err")"
wait_for 10 eval '! is_paused' || fail "SIGTERM: vm1 is still paused: $(state)"
[ ! -e "$W/t.raw" ] && [ ! -e "$W/t.raw.partial" ] || fail "SIGTERM left an image: $(ls "$W")"
echo "SIGTERM mid-copy: exit $st, vm1 $(state)"

# a pause the administrator made stays (Xen counts pauses)
xl pause vm1 || fail "xl pause"
admin=$(file_sum)
xbd image vm1 -o "$W/a.raw" --pause >/dev/null 2>"$W/a.err" || fail "image of a paused domU: $(cat "$W/a.err")"
is_paused || fail "xbd image --pause undid the administrator's pause: $(state)"
[ "$(sha256sum < "$W/a.raw" | cut -d' ' -f1)" = "$admin" ] ||
	fail "the image of the paused domU differs from its backing file"
[ "$(json_val "$(cat "$W/a.raw.report.json")" already_paused)" = true ] ||
	fail "the report does not say it was paused before"
xl unpause vm1 || fail "xl unpause"
wait_for 10 eval '! is_paused' || fail "vm1 stays paused after xl unpause: $(state)"
echo "the administrator's pause stayed through xbd image --pause"

# xbd attach --pause: paused while attached (the files are that moment),
# unpaused at detach; a kill -9'd attach --pause is unpaused by detach
mkdir -p "$W/mnt"
on_exit "xbd detach $W/mnt 2>/dev/null"
XBD_ATTACH_LOG=$W/attach.log xbd attach vm1 --mount "$W/mnt" --pause ||
	{ cat "$W/attach.log" 2>/dev/null; fail "xbd attach --pause failed"; }
is_paused || fail "attach --pause: vm1 is not paused: $(state)"
moment=$(file_sum)
[ "$(sha256sum < "$W/mnt/xvda" | cut -d' ' -f1)" = "$moment" ] ||
	fail "attach --pause: DIR/xvda differs from the paused domU's backing file"
xbd detach "$W/mnt" || fail "xbd detach failed"
wait_for 10 eval '! is_paused' || fail "detach: vm1 is still paused: $(state)"
echo "attach --pause: paused while attached, $(state) after detach"
XBD_ATTACH_LOG=$W/attach.log xbd attach vm1 --mount "$W/mnt" --pause ||
	fail "the second xbd attach --pause failed"
apid=$(xenstore-ls -f /local/domain/0/device 2>/dev/null | sed -n 's/.*\/xbd-pid = "\([0-9]*\)"$/\1/p' | head -n1)
[ -n "$apid" ] || fail "no xbd-pid recorded by the attach"
kill -KILL "$apid"
wait_for 5 eval '! kill -0 '"$apid"' 2>/dev/null' || fail "xbd attach survived SIGKILL"
is_paused || fail "vm1 ran after the attach was killed"
xbd detach "$W/mnt" 2>"$W/detach.err" || fail "detach of the killed attach: $(cat "$W/detach.err")"
cat "$W/detach.err"
grep -q "unpaused: the pause of a killed xbd process is undone" "$W/detach.err" ||
	fail "detach of the killed attach did not say it unpaused"
wait_for 10 eval '! is_paused' || fail "vm1 is still paused after detach of the killed attach: $(state)"
domu_alive vm1 || fail "vm1 died"
echo "image --pause of a writing domU: sha256 $want"

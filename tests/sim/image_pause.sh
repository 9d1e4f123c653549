#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end: `xbd image --pause` while the VM's simulated guest writes
# a counter pattern without pause (each block stamped with its write's
# sequence number, tests/sim/counter_check.py says what "one moment"
# means and checks it).  Checks: the image is one moment; the guest runs
# on afterwards (the counter advances); the report records the pause; a
# pause the admin made before stays; SIGINT mid-copy unpauses; a copy
# without --pause, of a disk written meanwhile, is not one moment (so
# that the check can fail); a torn copy is caught by the checker.
. "$(dirname "$0")/attach_common.inc"
requires_prog jq
check=$(dirname "$0")/counter_check.py
start_sim
BS=4096
REGION=$((16 << 20))
img=$T/disk.img
truncate -s 64M "$img"
vm1_with_xvda "$img"

paused() { [ "$("$xbd" sim vm paused vm1 2>&1)" = "$1" ]; }
# max_seq FILE: the highest counter stamp in FILE's region, or -1
max_seq() { python3 "$check" --max "$1" "$BS" "$REGION"; }

# the guest writes, round and round the first 16 MiB, for the whole test
"$xbd" sim vm io vm1 xvda --rw counter --bs $BS --qd 8 --size $REGION --time 120 \
	>"$T/io.out" 2>&1 &
io=$!
bg_pids+=("$io")
wait_for 10 eval '[ "$(max_seq "$img")" -gt 2000 ]' ||
	die "the guest's counter does not advance: $(cat "$T/io.out")"
paused running && ok "the guest runs and writes" || fail "vm1 state: $("$xbd" sim vm paused vm1 2>&1)"

# --pause: one moment, the guest runs on after it
if "$xbd" image vm1 -o "$T/p.raw" --pause >"$T/out" 2>"$T/err"; then
	ok "xbd image --pause: $(head -n1 "$T/out")"
else
	die "xbd image --pause failed: $(cat "$T/err")"
fi
if m=$(python3 "$check" "$T/p.raw" $BS $REGION); then
	ok "the image is one moment of the guest's writes (write $m)"
else
	fail "the --pause image is not one moment: $m"
	m=0
fi
paused running && ok "vm1 runs again after the copy" || fail "vm1 is still paused"
wait_for 10 eval '[ "$(max_seq "$img")" -gt $((m + 1000)) ]' &&
	ok "the guest writes on (counter $(max_seq "$img") > $m)" ||
	fail "the counter stays at $(max_seq "$img") (image: $m)"
j=$T/p.raw.report.json
jq -e '.paused == true and (.pause.paused_utc | test("Z$")) and (.pause.unpaused_utc | test("Z$"))
	and .pause.seconds > 0 and .pause.rings_checked >= 1 and .pause.rings_unchecked == null
	and .pause.already_paused == false' "$j" >/dev/null &&
	ok "the JSON report records the pause: $(jq -c .pause "$j")" || fail "report: $(jq -c '.paused, .pause' "$j")"
python3 "$(dirname "$0")/image_report_check.py" "$j" >"$T/schema.out" &&
	ok "the report is valid against tests/sim/image_report.schema.json" || fail "schema: $(cat "$T/schema.out")"
grep -q "^Paused: *yes, from .* to .*; no request in flight" "$T/p.raw.report.txt" &&
	ok "the text report records the pause" || fail "text report: $(grep -A2 Paused "$T/p.raw.report.txt")"
wait_for 3 no_attach_nodes &&
	ok "no nodes left" || fail "nodes left: $(xenstore-ls -f /local/domain/0/device 2>&1)"

# the checker does catch another moment: one block from an older write
# (a block written twice in the copy's moment: its previous write),
# and a torn block
python3 - "$T/p.raw" "$T/old.raw" "$T/torn.raw" $BS $REGION <<'PY'
import sys
src, old, torn, bs, region = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
d = bytearray(open(src, "rb").read())
n = region // bs
import struct
m = max(struct.unpack_from("<Q", d, b)[0] for b in range(0, region, bs) if d[b:b + 8] == b"xbdcnt01")
b = (m + 1) % n  # the oldest block: its stamp goes back one round
s = struct.unpack_from("<Q", d, b * bs + 8)[0]
o = bytearray(d)
for i in range(b * bs, (b + 1) * bs, 512):
    struct.pack_into("<Q", o, i + 8, s - n if s >= n else s + n)
    o[i + 32:i + 512] = bytes([(s - n if s >= n else s + n) & 0xff]) * 480
open(old, "wb").write(o)
t = bytearray(d)
t[b * bs + 512:b * bs + 1024] = o[b * bs + 512:b * bs + 1024]
open(torn, "wb").write(t)
PY
! python3 "$check" "$T/old.raw" $BS $REGION >"$T/c.out" && ok "checker: a block of another round is caught: $(cat "$T/c.out")" ||
	fail "checker took a block of another round"
! python3 "$check" "$T/torn.raw" $BS $REGION >"$T/c.out" && ok "checker: a torn block is caught: $(cat "$T/c.out")" ||
	fail "checker took a torn block"

# without --pause the guest writes during the copy: not one moment (a
# slow read gives it time: the same disk copied with the progress line)
"$xbd" image vm1 -o "$T/np.raw" >/dev/null 2>"$T/err" || fail "image without --pause: $(cat "$T/err")"
if python3 "$check" "$T/np.raw" $BS $REGION >"$T/c.out"; then
	echo "note: the copy without --pause happened to be one moment ($(cat "$T/c.out")); the guest was slower than the copy"
else
	ok "without --pause the copy is not one moment: $(cat "$T/c.out")"
fi

# a pause the admin made before stays
"$xbd" sim vm pause vm1 || fail "sim vm pause"
paused paused && ok "the admin paused vm1" || fail "sim vm pause did not pause"
"$xbd" image vm1 -o "$T/a.raw" --pause >/dev/null 2>"$T/err" || fail "image of a paused VM: $(cat "$T/err")"
paused paused && ok "the admin's pause stays after xbd image --pause" || fail "xbd image undid the admin's pause"
jq -e '.pause.already_paused == true' "$T/a.raw.report.json" >/dev/null &&
	ok "the report says it was paused before" || fail "report: $(jq -c .pause "$T/a.raw.report.json")"
j=$T/a.raw.report.json
python3 "$(dirname "$0")/image_report_check.py" "$j" >"$T/schema.out" &&
	ok "the report is valid against tests/sim/image_report.schema.json" || fail "schema: $(cat "$T/schema.out")"
grep -q "paused before, and that pause stays" "$T/a.raw.report.txt" && ok "so does the text report" ||
	fail "text report: $(grep -A2 Paused "$T/a.raw.report.txt")"
m1=$(max_seq "$img")
sleep 0.5
[ "$(max_seq "$img")" = "$m1" ] && ok "the paused guest writes nothing (counter stays at $m1)" ||
	fail "the guest wrote while paused: $m1 -> $(max_seq "$img")"
"$xbd" sim vm unpause vm1 || fail "sim vm unpause"
paused running && ok "the admin's unpause lets it run" || fail "still paused"

# SIGINT mid-copy: unpaused, no image
big=$T/big.img
truncate -s 512M "$big"
vm_create vm2 "$big,xvda"
wait_for 10 guest_connected "$DOMID" 51712 || fail "vm2's guest did not connect xvda"
"$xbd" image vm2 -o "$T/int.raw" --pause --progress 2>"$T/int.err" >/dev/null &
pid=$!
wait_for 20 test -e "$T/int.raw.partial" || fail "no partial image appeared"
wait_for 5 eval '[ "$("$xbd" sim vm paused vm2)" = paused ]' && ok "vm2 is paused during the copy" ||
	fail "vm2 not paused during the copy"
kill -INT "$pid"
wait "$pid"
st=$?
[ "$st" = 130 ] && ok "SIGINT: exit 130" || fail "SIGINT: exit $st: $(cat "$T/int.err")"
[ "$("$xbd" sim vm paused vm2)" = running ] && ok "SIGINT: vm2 runs again" || fail "SIGINT: vm2 still paused"
[ ! -e "$T/int.raw" ] && [ ! -e "$T/int.raw.partial" ] && ok "SIGINT: no image left" ||
	fail "SIGINT left: $(ls "$T" | grep int.raw)"
wait_for 3 no_attach_nodes && ok "SIGINT: no nodes left" || fail "SIGINT: nodes left"

# kill -9 mid-copy: the pause stays (nobody is left to undo it) until
# the next xbd image or attach of the disk cleans up what the killed
# process left, which undoes that pause (and only that one)
"$xbd" image vm2 -o "$T/k.raw" --pause --progress 2>"$T/k.err" >/dev/null &
pid=$!
wait_for 20 test -e "$T/k.raw.partial" || fail "no partial image appeared"
wait_for 5 eval '[ "$("$xbd" sim vm paused vm2)" = paused ]' || fail "vm2 not paused during the copy"
kill -KILL "$pid"
wait "$pid" 2>/dev/null
[ "$("$xbd" sim vm paused vm2)" = paused ] && ok "kill -9'd image --pause: vm2 stays paused" ||
	fail "vm2 ran after the kill -9"
"$xbd" image vm2 -o "$T/k2.raw" --force >"$T/k2.out" 2>"$T/k2.err" || fail "image after the kill -9: exit $?: $(cat "$T/k2.err" "$T/k2.out")"
grep -q "vm2: unpaused: the pause of a killed xbd process is undone" "$T/k2.err" &&
	ok "the next xbd image says: $(grep unpaused "$T/k2.err")" || fail "the next xbd image said: $(cat "$T/k2.err")"
[ "$("$xbd" sim vm paused vm2)" = running ] && ok "the killed image's pause is undone" ||
	fail "vm2 is still paused"
wait_for 5 no_attach_nodes && ok "no nodes left after the cleanup" ||
	fail "nodes left: $(xenstore-ls -f /local/domain/0 2>&1 | grep -E '/device/|backend/vbd/0')"
finish

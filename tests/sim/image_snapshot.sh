#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end: `xbd image --snapshot` of a disk whose store is a raw file
# on XFS made with reflinks (mkfs.xfs -m reflink=1 on a loop file),
# while the VM's simulated guest writes a counter pattern without pause
# (tests/sim/counter_check.py says what one moment is).  Checks: the
# image is one moment; the VM was paused only for the clone, and ran
# (and wrote) during the copy; the clone leaves no file behind; the
# report, validated against the schema, names the snapshot.  A store on
# a file system without reflinks (ext4) is refused naming why, with the
# VM running and no image left; --pause with --snapshot is a usage error.
. "$(dirname "$0")/attach_common.inc"
requires_root "loop mounts"
requires_prog mkfs.xfs xfsprogs
requires_prog jq
grep -qw xfs /proc/filesystems || modprobe xfs 2>/dev/null ||
	skip "the kernel has no XFS"
check=$(dirname "$0")/counter_check.py
schema_check=$(dirname "$0")/image_report_check.py
BS=4096
REGION=$((32 << 20))

xfs=$T/xfs
mkdir -p "$xfs"
truncate -s 512M "$T/xfs.img"
mkfs.xfs -q -m reflink=1 "$T/xfs.img" || die "mkfs.xfs -m reflink=1 failed"
mount -o loop "$T/xfs.img" "$xfs" || skip "cannot mount a loop XFS here"
mounts+=("$xfs")
start_sim
img=$xfs/disk.img
truncate -s 64M "$img"
vm1_with_xvda "$img"

state() { "$xbd" sim vm paused vm1 2>&1; }
max_seq() { python3 "$check" --max "$1" "$BS" "$REGION"; }

"$xbd" sim vm io vm1 xvda --rw counter --bs $BS --qd 8 --size $REGION --time 300 \
	>"$T/io.out" 2>&1 &
bg_pids+=("$!")
wait_for 10 eval '[ "$(max_seq "$img")" -gt 2000 ]' ||
	die "the guest's counter does not advance: $(cat "$T/io.out")"

# the usage error first
"$xbd" image vm1 -o "$T/u.raw" --pause --snapshot >/dev/null 2>"$T/err"
[ $? = 2 ] && grep -q -- "--pause .* or --snapshot" "$T/err" &&
	ok "--pause --snapshot: usage error: $(cat "$T/err")" || fail "--pause --snapshot: $(cat "$T/err")"

before=$(ls -A "$xfs")
if "$xbd" image vm1 -o "$T/s.raw" --snapshot --verify >"$T/out" 2>"$T/err"; then
	ok "xbd image --snapshot: $(head -n1 "$T/out")"
else
	die "xbd image --snapshot failed: $(cat "$T/err")"
fi
after_copy=$(max_seq "$img")
if m=$(python3 "$check" "$T/s.raw" $BS $REGION); then
	ok "the image is one moment of the guest's writes (write $m)"
else
	fail "the --snapshot image is not one moment: $m"
	m=0
fi
[ "$(state)" = running ] && ok "vm1 runs after the copy" || fail "vm1 is $(state)"
[ "$after_copy" -gt "$m" ] &&
	ok "the guest wrote during the copy (counter $after_copy > $m at the clone)" ||
	fail "the guest did not write during the copy ($after_copy vs $m)"
wait_for 10 eval '[ "$(max_seq "$img")" -gt $((after_copy + 500)) ]' &&
	ok "the guest writes on" || fail "the counter stays at $(max_seq "$img")"
[ "$(ls -A "$xfs")" = "$before" ] && ok "no clone left beside the store" ||
	fail "left in $xfs: $(ls -A "$xfs")"
j=$T/s.raw.report.json
python3 "$schema_check" "$j" >"$T/schema.out" && ok "the report is valid against the schema" ||
	fail "schema: $(cat "$T/schema.out")"
jq -e --arg s "$img" '.snapshot.kind == "reflink" and .snapshot.store == $s and .paused == true
	and .verified == true' "$j" >/dev/null &&
	ok "the report names the snapshot: $(jq -c .snapshot "$j")" || fail "report: $(jq -c '.snapshot, .pause' "$j")"
# paused for the clone only: the pause ended before the copy began
# (the pause's end is no later than the copy's start, to the second)
jq -e '.pause.unpaused_utc <= .start_utc' "$j" >/dev/null &&
	ok "paused $(jq .pause.seconds "$j") s, before the copy began ($(jq -r .start_utc "$j"))" ||
	fail "the pause ($(jq -c .pause "$j")) outlasted the copy's start $(jq -r .start_utc "$j")"
grep -q "^Snapshot: *reflink clone of $img taken at" "$T/s.raw.report.txt" &&
	ok "the text report names the snapshot" || fail "text report: $(cat "$T/s.raw.report.txt")"
wait_for 3 no_attach_nodes && ok "no nodes left" || fail "nodes left: $(xenstore-ls -f /local/domain/0/device 2>&1)"

# a store without reflinks: ext4 (where $T is), refused naming why
img2=$T/ext4disk.img
truncate -s 16M "$img2"
vm_create vm2 "$img2,xvda"
wait_for 10 guest_connected "$DOMID" 51712 || fail "vm2's guest did not connect xvda"
if "$xbd" image vm2 -o "$T/e.raw" --snapshot >/dev/null 2>"$T/err"; then
	fail "--snapshot of a store on $(stat -f -c %T "$img2") was taken"
else
	grep -q "has no reflinks (FICLONE: .*); it takes XFS made with reflink=1 or btrfs; use --pause" "$T/err" &&
		ok "no reflinks: refused: $(cat "$T/err")" || fail "refusal: $(cat "$T/err")"
fi
[ "$("$xbd" sim vm paused vm2)" = running ] && ok "vm2 runs after the refusal" || fail "vm2 stays paused"
[ ! -e "$T/e.raw" ] && [ ! -e "$T/e.raw.partial" ] && ok "no image left" || fail "left: $(ls "$T" | grep e.raw)"
wait_for 3 no_attach_nodes && ok "no nodes left after the refusal" || fail "nodes left"
finish

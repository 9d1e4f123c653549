#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end: `xbd image --snapshot` of a disk whose store is a raw file
# on each file system with reflinks xbd supports (XFS made with
# mkfs.xfs -m reflink=1, and btrfs, each on a loop file), while the
# VM's simulated guest writes a counter pattern without pause
# (tests/sim/counter_check.py says what one moment is).  Checks: the
# image is one moment; the VM was paused only for the clone, and ran
# (and wrote) during the copy; the clone leaves no file behind; the
# report, validated against the schema, names the snapshot.  A store on
# a file system without reflinks (ext4) is refused naming why, with the
# VM running and no image left; --pause with --snapshot is a usage error.
. "$(dirname "$0")/attach_common.inc"
requires_root "loop mounts"
requires_prog mkfs.xfs xfsprogs
requires_prog mkfs.btrfs btrfs-progs
requires_prog jq
grep -qw xfs /proc/filesystems || modprobe xfs 2>/dev/null ||
	skip "the kernel has no XFS"
grep -qw btrfs /proc/filesystems || modprobe btrfs 2>/dev/null ||
	skip "the kernel has no btrfs"
check=$(dirname "$0")/counter_check.py
schema_check=$(dirname "$0")/image_report_check.py
BS=4096
REGION=$((32 << 20))

start_sim
state() { "$xbd" sim vm paused "$vm" 2>&1; }
max_seq() { python3 "$check" --max "$1" "$BS" "$REGION"; }

# the usage error first
"$xbd" image vm1 -o "$T/u.raw" --pause --snapshot >/dev/null 2>"$T/err"
[ $? = 2 ] && grep -q -- "--pause .* or --snapshot" "$T/err" &&
	ok "--pause --snapshot: usage error: $(cat "$T/err")" || fail "--pause --snapshot: $(cat "$T/err")"

# reflink_case FS VM MKFS...: a VM whose store is on FS made by MKFS on a
# loop file, imaged with --snapshot while its guest writes
reflink_case() {
	local fs=$1 dir=$T/$1 img before after_copy m j
	vm=$2
	shift 2
	mkdir -p "$dir"
	truncate -s 512M "$T/$fs.img"
	"$@" "$T/$fs.img" >"$T/mkfs.out" 2>&1 || die "$*: $(cat "$T/mkfs.out")"
	mount -o loop "$T/$fs.img" "$dir" || skip "cannot mount a loop $fs here"
	mounts+=("$dir")
	img=$dir/disk.img
	truncate -s 64M "$img"
	vm_create "$vm" "$img,xvda"
	wait_for 10 guest_connected "$DOMID" 51712 || fail "$vm's guest did not connect xvda"
	"$xbd" sim vm io "$vm" xvda --rw counter --bs $BS --qd 8 --size $REGION --time 300 \
		>"$T/io-$fs.out" 2>&1 &
	bg_pids+=("$!")
	wait_for 10 eval '[ "$(max_seq "$img")" -gt 2000 ]' ||
		die "$fs: the guest's counter does not advance: $(cat "$T/io-$fs.out")"

	before=$(ls -A "$dir")
	if "$xbd" image "$vm" -o "$T/s-$fs.raw" --snapshot --verify >"$T/out" 2>"$T/err"; then
		ok "$fs: xbd image --snapshot: $(head -n1 "$T/out")"
	else
		fail "$fs: xbd image --snapshot failed: $(cat "$T/err")"
		return
	fi
	after_copy=$(max_seq "$img")
	if m=$(python3 "$check" "$T/s-$fs.raw" $BS $REGION); then
		ok "$fs: the image is one moment of the guest's writes (write $m)"
	else
		fail "$fs: the --snapshot image is not one moment: $m"
		m=0
	fi
	[ "$(state)" = running ] && ok "$fs: $vm runs after the copy" || fail "$fs: $vm is $(state)"
	[ "$after_copy" -gt "$m" ] &&
		ok "$fs: the guest wrote during the copy (counter $after_copy > $m at the clone)" ||
		fail "$fs: the guest did not write during the copy ($after_copy vs $m)"
	wait_for 10 eval '[ "$(max_seq "$img")" -gt $((after_copy + 500)) ]' &&
		ok "$fs: the guest writes on" || fail "$fs: the counter stays at $(max_seq "$img")"
	[ "$(ls -A "$dir")" = "$before" ] && ok "$fs: no clone left beside the store" ||
		fail "$fs: left in $dir: $(ls -A "$dir")"
	j=$T/s-$fs.raw.report.json
	python3 "$schema_check" "$j" >"$T/schema.out" && ok "$fs: the report is valid against the schema" ||
		fail "$fs: schema: $(cat "$T/schema.out")"
	jq -e --arg s "$img" '.snapshot.kind == "reflink" and .snapshot.store == $s and .paused == true
		and .verified == true' "$j" >/dev/null &&
		ok "$fs: the report names the snapshot: $(jq -c .snapshot "$j")" ||
		fail "$fs: report: $(jq -c '.snapshot, .pause' "$j")"
	# paused for the clone only: the pause ended before the copy began
	# (the pause's end is no later than the copy's start, to the second)
	jq -e '.pause.unpaused_utc <= .start_utc' "$j" >/dev/null &&
		ok "$fs: paused $(jq .pause.seconds "$j") s, before the copy began ($(jq -r .start_utc "$j"))" ||
		fail "$fs: the pause ($(jq -c .pause "$j")) outlasted the copy's start $(jq -r .start_utc "$j")"
	grep -q "^Snapshot: *reflink clone of $img taken at" "$T/s-$fs.raw.report.txt" &&
		ok "$fs: the text report names the snapshot" || fail "$fs: text report: $(cat "$T/s-$fs.raw.report.txt")"
	wait_for 3 no_attach_nodes && ok "$fs: no nodes left" ||
		fail "$fs: nodes left: $(xenstore-ls -f /local/domain/0/device 2>&1)"
}
reflink_case xfs vm1 mkfs.xfs -q -m reflink=1
reflink_case btrfs vm3 mkfs.btrfs -q

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
vm=vm2
[ "$(state)" = running ] && ok "vm2 runs after the refusal" || fail "vm2 stays paused"
[ ! -e "$T/e.raw" ] && [ ! -e "$T/e.raw.partial" ] && ok "no image left" || fail "left: $(ls "$T" | grep e.raw)"
wait_for 3 no_attach_nodes && ok "no nodes left after the refusal" || fail "nodes left"
finish

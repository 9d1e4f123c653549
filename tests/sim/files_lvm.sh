#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end: a guest's LVM2 volumes as files of `xbd attach`, read in
# user space.  The VM's disk holds a GPT with two LVM2 physical volumes
# (made by lvm2's own tools, activation off: no device-mapper here) and
# one volume group: `one` (linear, ext4 with known files), `two-x`
# (two segments, after an lvextend), `st` (striped over both PVs).
# Each volume's contents are written at the places lvs reports; DIR
# shows VG-LV files (dashes doubled) with exactly those bytes, which
# are read-only; a corrupted metadata area shows no volume and no
# crash; the image is unchanged afterwards.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
requires_prog pvcreate lvm2
requires_prog sfdisk
requires_prog mkfs.ext4
requires_prog losetup

vg=xbdt$$
img=$T/disk.img
lvmconf="global {activation=0} backup {backup=0 archive=0} devices {use_devicesfile=0 scan_lvs=0}"
loops=()
lvm_cleanup() {
	local l
	for l in "${loops[@]}"; do losetup -d "$l" 2>/dev/null; done
	return 0
}
cleanup_fn lvm_cleanup
lvm_q() { "$@" --config "$lvmconf" >>"$T/lvm.log" 2>&1; }

truncate -s 96M "$img"
printf 'label: gpt\nstart=2048, size=81920, type=lvm\nstart=83968, size=81920, type=lvm\n' |
	sfdisk -q "$img" || die "sfdisk"
p1=$((2048 * 512))
p2=$((83968 * 512))
for o in $p1 $p2; do
	l=$(losetup -f --show -o "$o" --sizelimit $((40 << 20)) "$img") || skip "no loop devices"
	loops+=("$l")
done
lvm_q pvcreate "${loops[@]}" || die "pvcreate: $(tail -n3 "$T/lvm.log")"
lvm_q vgcreate -s 1M "$vg" "${loops[@]}" || die "vgcreate: $(tail -n3 "$T/lvm.log")"
lvm_q lvcreate -an -Zn -L 12M -n one "$vg" "${loops[0]}" || die "lvcreate one"
lvm_q lvcreate -an -Zn -L 4M -n two-x "$vg" "${loops[0]}" || die "lvcreate two-x"
lvm_q lvcreate -an -Zn -L 2M -n gap "$vg" "${loops[0]}" || die "lvcreate gap"
lvm_q lvextend -L 7M "$vg/two-x" "${loops[0]}" || die "lvextend two-x"
lvm_q lvcreate -an -Zn -i 2 -I 64k -L 8M -n st "$vg" || die "lvcreate st"

# lv_layout LV: one line per stripe area: "LVSTART DEVICE PE_START
# PE_COUNT STRIPES STRIPE_SIZE" (bytes and extents, extents of 1 MiB)
lv_layout() {
	lvs --config "$lvmconf" --noheadings --units b --nosuffix --separator ' ' \
		-o seg_start,stripes,stripe_size,seg_pe_ranges "$vg/$1" 2>/dev/null
}
pe_start=$(pvs --config "$lvmconf" --noheadings --units b --nosuffix -o pe_start "${loops[0]}" 2>/dev/null | tr -d ' ')
loop_off() { [ "$1" = "${loops[0]}" ] && echo $p1 || echo $p2; }

# put_lv LV FILE: writes FILE into LV at the places lvs reports.
put_lv() {
	local lv=$1 src=$2 seg_start ranges stripes ssz r dev pes n k
	while read -r seg_start stripes ssz ranges; do
		k=0
		for r in $ranges; do
			dev=${r%%:*}; pes=${r#*:}; pes=${pes%-*}
			if [ "$stripes" = 1 ]; then
				dd if="$src" of="$img" bs=1M skip=$((seg_start >> 20)) \
					seek=$(( ($(loop_off "$dev") + pe_start) / 1048576 + pes )) \
					count=$(( ${r##*-} - pes + 1 )) conv=notrunc status=none
			else
				# stripe k holds chunks k, k+stripes, ...
				local chunks=$(( ( (${r##*-} - pes + 1) << 20 ) / ssz ))
				for ((n = 0; n < chunks; n++)); do
					dd if="$src" of="$img" bs="$ssz" \
						skip=$(( seg_start / ssz + n * stripes + k )) \
						seek=$(( ($(loop_off "$dev") + pe_start + (pes << 20)) / ssz + n )) \
						count=1 conv=notrunc status=none
				done
			fi
			k=$((k + 1))
		done
	done < <(lv_layout "$lv")
}

mkdir -p "$T/files/d"
echo "inside an LVM volume" >"$T/files/hello.txt"
head -c 1000000 /dev/urandom >"$T/files/d/rand.bin"
truncate -s 12M "$T/one.img"
mkfs.ext4 -q -F -d "$T/files" "$T/one.img" >/dev/null || die "mkfs.ext4"
head -c 7M /dev/urandom >"$T/two.img"
head -c 8M /dev/urandom >"$T/st.img"
[ "$(lv_layout two-x | wc -l)" = 2 ] || die "two-x has not two segments: $(lv_layout two-x)"
put_lv one "$T/one.img"
put_lv two-x "$T/two.img"
put_lv st "$T/st.img"
for l in "${loops[@]}"; do losetup -d "$l"; done
loops=()
sum=$(sha256sum <"$img")

start_sim
vm1_with_xvda "$img"
attach vm1 "$T/mnt" || die "attach"
names=$(cd "$T/mnt" && echo *)
want="xvda xvda1 xvda2 $vg-gap $vg-one $vg-st $vg-two--x"
[ "$(echo $names | tr ' ' '\n' | sort | xargs)" = "$(echo $want | tr ' ' '\n' | sort | xargs)" ] &&
	ok "DIR holds the volumes: $names" || fail "DIR holds '$names', want '$want'"
for lv in one:one two--x:two st:st; do
	f=$T/mnt/$vg-${lv%%:*}
	cmp "$f" "$T/${lv#*:}.img" && ok "$vg-${lv%%:*}: the volume's bytes" ||
		fail "$vg-${lv%%:*} differs from what was written"
done
[ "$(stat -c %a "$T/mnt/$vg-one")" = 444 ] && ok "volumes are read-only files" ||
	fail "mode $(stat -c %a "$T/mnt/$vg-one")"
e2fsck -fn "$T/mnt/$vg-one" >"$T/fsck.out" 2>&1 && ok "e2fsck -fn on the volume: clean" ||
	fail "e2fsck: $(tail -n3 "$T/fsck.out")"
"$xbd" detach "$T/mnt" && ok "detach" || fail "detach"

# hostile metadata: random bytes over every copy of the text in both
# PVs' metadata areas (each PV holds the whole group's)
cp "$img" "$T/bad.img"
for o in $p1 $p2; do
	offs=$(grep -abo "$vg {" <(dd if="$img" bs=1M skip=$((o >> 20)) count=1 status=none) | cut -d: -f1)
	[ -n "$offs" ] || die "no metadata text found"
	for off in $offs; do
		head -c 300 /dev/urandom |
			dd of="$T/bad.img" bs=1 seek=$((o + off + 40)) conv=notrunc status=none
	done
done
badsum=$(sha256sum <"$T/bad.img")
vm_create vm2 "$T/bad.img,xvda"
wait_for 10 guest_connected "$DOMID" 51712 || fail "vm2's guest did not connect xvda"
attach vm2 "$T/mnt2" || die "attach vm2"
names=$(cd "$T/mnt2" && echo *)
[ "$names" = "xvda xvda1 xvda2" ] && ok "corrupted metadata: disk and partitions only" ||
	fail "corrupted metadata: DIR holds '$names'"
cmp <(dd if="$T/bad.img" bs=512 skip=2048 count=$((40 << 11)) status=none) "$T/mnt2/xvda1" &&
	ok "the partitions still read" || fail "xvda1 differs"
"$xbd" detach "$T/mnt2" && ok "detach vm2" || fail "detach vm2"
[ "$(sha256sum <"$T/bad.img")" = "$badsum" ] && ok "corrupted image unchanged" || fail "corrupted image changed"
[ "$(sha256sum <"$img")" = "$sum" ] && ok "image unchanged" || fail "image changed"
finish

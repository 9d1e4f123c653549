#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end: a guest's partition tables are hostile.  vm1's xvda has a
# valid GPT (right CRCs) that claims 100000 entries, all the same
# overlapping partition; its xvdb has an MBR whose extended chain links
# 5001 logical partitions; its xvdc a chain of 25100 records with a data
# partition in every 100th (Linux would read them all).  `xbd attach`
# must return within 5 s, show no more partitions per disk than Linux
# would (partition numbers below DISK_MAX_PARTS), and `xbd detach` must
# leave nothing behind.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
start_sim

gpt=$T/gpt.img mbr=$T/mbr.img sparse=$T/sparse.img
tools=$(dirname "$0")/../lib
python3 "$tools/hostile_ptable.py" gpt 100000 "$gpt" &&
	python3 "$tools/hostile_ptable.py" chain 5001 "$mbr" &&
	python3 "$tools/hostile_ptable.py" sparse 25100 "$sparse" ||
	die "cannot build the hostile images"

vm_create vm1 "$gpt,xvda" "$mbr,xvdb" "$sparse,xvdc"
for devid in 51712 51728 51744; do
	wait_for 10 guest_connected "$DOMID" $devid ||
		fail "vm1's guest did not connect disk $devid"
done

start=$EPOCHREALTIME
mkdir -p "$T/mnt"
mounts+=("$T/mnt")
timeout -k 5 60 "$xbd" attach vm1 --mount "$T/mnt" 2>"$T/attach.err"
rc=$?
secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}')
[ $rc -eq 0 ] || die "attach exited $rc after $secs s: $(head -n3 "$T/attach.err")"
if awk -v s="$secs" 'BEGIN{exit !(s < 5)}'; then
	ok "attach returned in $secs s"
else
	fail "attach took $secs s (limit 5 s)"
fi

# partition numbers below Linux's DISK_MAX_PARTS
for d in xvda xvdb xvdc; do
	count=$(find "$T/mnt" -maxdepth 1 -name "$d[0-9]*" | wc -l)
	bad=$(find "$T/mnt" -maxdepth 1 -name "$d[0-9]*" -printf '%f\n' |
		sed "s/^$d//" | awk '$1 >= 256' | head -n1)
	if [ "$count" -le 255 ] && [ -z "$bad" ]; then
		ok "$d shows $count partitions"
	else
		fail "$d shows $count partitions${bad:+ (number $bad)}"
	fi
done
# what Linux shows for the chain: the extended partition, then logical
# partitions 5 to 255
[ -e "$T/mnt/xvdb255" ] && [ ! -e "$T/mnt/xvdb256" ] &&
	ok "xvdb's chain stops at partition 255" || fail "xvdb's chain: $(ls "$T/mnt" | tr '\n' ' ' | tail -c 200)"
[ "$(stat -c %s "$T/mnt/xvdb5" 2>/dev/null)" = 512 ] &&
	ok "logical partition 5 is where its EBR says" || fail "xvdb5 is wrong"

start=$EPOCHREALTIME
if timeout -k 5 30 "$xbd" detach "$T/mnt" 2>"$T/detach.err"; then
	ok "detach in $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}') s"
else
	fail "detach: $(head -n3 "$T/detach.err")"
fi
mountpoint -q "$T/mnt" && fail "DIR is still a mount point" || ok "DIR unmounted"
wait_for 5 no_attach_nodes && ok "no attach nodes left in xenstore" ||
	fail "attach nodes left: $(xenstore-ls /local/domain/0/device 2>/dev/null | head -n5)"
finish

#!/bin/bash
# End-to-end: a guest's partition tables are hostile.  vm1's xvda has a
# valid GPT (right CRCs) that claims 100000 entries, all the same
# overlapping partition; its xvdb has an MBR whose extended chain links
# 5001 logical partitions.  `xbd attach` must return within 5 s, show no
# more partitions per disk than Linux would (partition numbers below
# DISK_MAX_PARTS), and `xbd detach` must leave nothing behind.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
start_sim

gpt=$T/gpt.img mbr=$T/mbr.img
python3 - "$gpt" "$mbr" <<'PY' || die "cannot build the hostile images"
import struct, sys, zlib

SECT = 512
size = 64 << 20
last = size // SECT - 1

def mbr_entry(kind, start, count):
    return struct.pack("<B3sB3sII", 0, b"\0" * 3, kind, b"\0" * 3, start, count)

def boot_sector(entries):
    body = b"".join(entries).ljust(64, b"\0")
    return b"\0" * 446 + body + b"\x55\xaa"

# GPT: protective MBR, header at LBA 1, 100000 entries from LBA 2
n = 100000
first = 2 + n * 128 // SECT
entry = struct.pack("<16s16sQQQ72s", b"\xaf\x3d\xc6\x0f\x83\x84\x72\x47"
                    b"\x8e\x79\x3d\x69\xd8\x47\x7d\xe4", b"\x01" * 16,
                    first, first + 2047, 0, b"\0" * 72)
table = entry * n
hdr = struct.pack("<8sIIIIQQQQ16sQIII", b"EFI PART", 0x10000, 92, 0, 0,
                  1, last, first, last - 34, b"\x02" * 16, 2, n, 128,
                  zlib.crc32(table))
hdr = hdr[:16] + struct.pack("<I", zlib.crc32(hdr)) + hdr[20:]
with open(sys.argv[1], "wb") as f:
    f.truncate(size)
    f.write(boot_sector([mbr_entry(0xEE, 1, last)]))
    f.write(hdr.ljust(SECT, b"\0"))
    f.write(table)

# MBR: one extended partition; EBR k sits at sector 2048 + 2k and holds
# logical partition k (one sector after it) and a link to EBR k + 1
chain = 5001
ext_start, ext_size = 2048, 2 * chain + 2048
with open(sys.argv[2], "wb") as f:
    f.truncate(size)
    f.write(boot_sector([mbr_entry(0x05, ext_start, ext_size)]))
    for k in range(chain):
        links = [mbr_entry(0x83, 1, 1)]
        if k + 1 < chain:
            links.append(mbr_entry(0x05, 2 * (k + 1), 2))
        f.seek((ext_start + 2 * k) * SECT)
        f.write(boot_sector(links))
PY

vm_create vm1 "$gpt,xvda" "$mbr,xvdb"
wait_for 10 guest_connected "$DOMID" 51712 || fail "vm1's guest did not connect xvda"
wait_for 10 guest_connected "$DOMID" 51728 || fail "vm1's guest did not connect xvdb"

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
for d in xvda xvdb; do
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

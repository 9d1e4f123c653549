#!/bin/bash
# End-to-end: attach a disk while the VM's own guest writes to it.  The
# guest first lays pattern 1 over the whole disk, then overwrites random
# 4 KiB blocks with pattern 2 for a few seconds while dom0 attaches and
# copies the disk three times.  Every sector of every copy must be one
# the guest wrote (pattern 1 or 2, naming its own sector): no torn or
# misplaced data.  Once the guest stops, DIR/xvda equals the image.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
start_sim

img=$T/disk.img
truncate -s 32M "$img"
vm1_with_xvda "$img"
"$xbd" sim vm io vm1 xvda --rw write --bs 1M --qd 4 --pattern 1 ||
	die "the guest could not lay the first pattern"

"$xbd" sim vm io vm1 xvda --rw randwrite --bs 4k --qd 16 --time 4 --pattern 2 \
	>"$T/io.out" 2>&1 &
io=$!
bg_pids+=($io)
sleep 0.3
attach vm1 "$T/mnt" || die "attach while the guest writes"
ok "attached while the guest writes"
for i in 1 2 3; do
	dd if="$T/mnt/xvda" of="$T/copy$i" bs=1M status=none || fail "copy $i"
done
wait "$io" && ok "guest: $(cat "$T/io.out")" || fail "guest workload: $(cat "$T/io.out")"

if python3 - "$T"/copy1 "$T"/copy2 "$T"/copy3 <<'PY'
import struct, sys
def expected(seed, s):
    return b"xbdpat01" + struct.pack("<QQ", seed, s) + bytes([(seed + 7 * s + 1) & 0xff]) * 488
mixed = 0
for name in sys.argv[1:]:
    d = open(name, "rb").read()
    two = 0
    for s in range(len(d) // 512):
        sec = d[s * 512:(s + 1) * 512]
        if sec == expected(1, s):
            continue
        if sec == expected(2, s):
            two += 1
            continue
        sys.exit("%s: sector %d is neither pattern: %r" % (name, s, sec[:24]))
    mixed += two > 0
print("copies holding guest writes made while attached:", mixed)
PY
then
	ok "every copied sector is one the guest wrote"
else
	fail "a copy holds data the guest never wrote"
fi
cmp "$T/mnt/xvda" "$img" && ok "after the guest stopped, DIR/xvda equals the image" ||
	fail "DIR/xvda differs from the image after the writes"
"$xbd" sim vm io vm1 xvda --rw read --bs 64k --qd 8 --verify --pattern 1 >/dev/null 2>&1 &&
	fail "verification against the wrong pattern passed" ||
	ok "the guest's verification catches the mixed pattern"
"$xbd" detach "$T/mnt" || fail "detach"
wait_for 3 no_attach_nodes && ok "no attach nodes left" || fail "attach nodes left"
finish

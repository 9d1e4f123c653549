#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end: attach a disk while the VM's own guest writes to it.  The
# guest first lays pattern 1 over the whole disk, then overwrites random
# 4 KiB blocks with pattern 2 for a few seconds while dom0 attaches and
# copies the disk three times, and reads it meanwhile with reads of
# every size, cached and O_DIRECT.  Every sector of every copy and read
# must be one the guest wrote (pattern 1 or 2, naming its own sector):
# no torn or misplaced data.  Once the guest stops, DIR/xvda equals the
# image.  Then the rule of what a reader sees (see below), checked
# exactly, after whole and after partial (random) rewrites.
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
# reads of every size at random sectors, cached and direct, while the
# guest writes: each sector whole
python3 - "$T/mnt/xvda" "$io" >"$T/mixed.out" 2>&1 <<'PY' &
import mmap, os, random, struct, sys
path, guest = sys.argv[1], int(sys.argv[2])
def expected(seed, s):
    return b"xbdpat01" + struct.pack("<QQ", seed, s) + bytes([(seed + 7 * s + 1) & 0xff]) * 488
size = os.path.getsize(path)
buf = mmap.mmap(-1, 1 << 20)  # aligned, for O_DIRECT
reads = 0
while reads < 200 or os.path.exists("/proc/%d" % guest):
    direct = reads % 2
    fd = os.open(path, os.O_RDONLY | (os.O_DIRECT if direct else 0))
    for _ in range(8):
        n = random.choice([1, 8, 129, 2048])
        s0 = random.randrange(0, size // 512 - n)
        got = os.preadv(fd, [memoryview(buf)[:n * 512]], s0 * 512)
        if got != n * 512:
            sys.exit("short read: %d of %d at sector %d" % (got, n * 512, s0))
        for i in range(n):
            sec = buf[i * 512:(i + 1) * 512]
            if sec != expected(1, s0 + i) and sec != expected(2, s0 + i):
                sys.exit("%s read of %d sectors at %d: sector %d torn: %r"
                         % ("direct" if direct else "cached", n, s0, s0 + i, sec[:24]))
        reads += 1
    os.close(fd)
print("%d reads of 1-2048 sectors, every sector whole" % reads)
PY
mixed=$!
for i in 1 2 3; do
	dd if="$T/mnt/xvda" of="$T/copy$i" bs=1M status=none || fail "copy $i"
done
wait "$io" && ok "guest: $(cat "$T/io.out")" || fail "guest workload: $(cat "$T/io.out")"
wait "$mixed" && ok "while the guest wrote: $(cat "$T/mixed.out")" ||
	fail "while the guest wrote: $(cat "$T/mixed.out")"

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

# The rule (man xbd, top of fuse/fuse_export.c): an open sees every
# write the guest completed before it; a file opened earlier may keep
# showing what it read before.  The file opened first reads the whole
# disk (so that the kernel holds its pages) and stays open while the
# guest rewrites the disk, twice; after each rewrite has completed, a
# new open must see only the new pattern, even with the old pages
# cached, and the old file only whole sectors of the old or the new.
if python3 - "$xbd" "$T/mnt/xvda" "$img" <<'PY'
import os, struct, subprocess, sys
xbd, path, img = sys.argv[1:]
def expected(seed, s):
    return b"xbdpat01" + struct.pack("<QQ", seed, s) + bytes([(seed + 7 * s + 1) & 0xff]) * 488
def read_all(fd, size):
    out, off = bytearray(), 0
    while off < size:
        b = os.pread(fd, min(size - off, 4096), off)  # small reads: the cached path
        if not b:
            sys.exit("short read at %d" % off)
        out += b
        off += len(b)
    return bytes(out)
size = os.path.getsize(img)
old_fd = os.open(path, os.O_RDONLY)
before = read_all(old_fd, size)
for seed in (3, 4):
    subprocess.run([xbd, "sim", "vm", "io", "vm1", "xvda", "--rw", "write", "--bs", "64k",
                    "--qd", "4", "--pattern", str(seed)], check=True, stdout=subprocess.DEVNULL)
    stale = 0
    again = read_all(old_fd, size)
    for s in range(size // 512):
        sec = again[s * 512:(s + 1) * 512]
        if sec == expected(seed, s):
            continue
        if sec == before[s * 512:(s + 1) * 512]:
            stale += 1
            continue
        sys.exit("pattern %d: the open file shows sector %d torn" % (seed, s))
    fd = os.open(path, os.O_RDONLY)
    new = read_all(fd, size)
    os.close(fd)
    for s in range(size // 512):
        if new[s * 512:(s + 1) * 512] != expected(seed, s):
            sys.exit("pattern %d: a new open shows sector %d as it was before the guest's write" % (seed, s))
    print("pattern %d: a new open saw all of it; the file opened before showed %d of %d sectors as before"
          % (seed, stale, size // 512))
    before = new
os.close(old_fd)
PY
then
	ok "each open saw every write completed before it"
else
	fail "an open missed a write the guest had completed"
fi
cmp "$T/mnt/xvda" "$img" && ok "DIR/xvda equals the image after the rewrites" ||
	fail "DIR/xvda differs from the image after the rewrites"

# The same rule after partial rewrites (random 4 KiB blocks, so that
# some of the pages an earlier open cached are stale and others not):
# once the guest's writes have completed, a new open, cached with small
# reads or O_DIRECT, equals the image (the backend's file: what it
# completed); the file opened before shows each sector as it was or as
# it is now, never torn.
if python3 - "$xbd" "$T/mnt/xvda" "$img" <<'PY'
import mmap, os, subprocess, sys
xbd, path, img = sys.argv[1:]
size = os.path.getsize(img)
def read_all(fd, bs):
    out, off = bytearray(), 0
    while off < size:
        b = os.pread(fd, min(size - off, bs), off)
        if not b:
            sys.exit("short read at %d" % off)
        out += b
        off += len(b)
    return bytes(out)
def read_direct():
    fd = os.open(path, os.O_RDONLY | os.O_DIRECT)
    buf = mmap.mmap(-1, 1 << 20)
    out = bytearray()
    for off in range(0, size, 1 << 20):
        n = os.preadv(fd, [buf], off)
        out += buf[:n]
    os.close(fd)
    return bytes(out)
old_fd = os.open(path, os.O_RDONLY)
before = read_all(old_fd, 4096)
for seed in (5, 6, 7):
    subprocess.run([xbd, "sim", "vm", "io", "vm1", "xvda", "--rw", "randwrite", "--bs", "4k",
                    "--qd", "8", "--size", "2M", "--pattern", str(seed)], check=True,
                   stdout=subprocess.DEVNULL)
    truth = open(img, "rb").read()
    changed = sum(truth[i:i + 512] != before[i:i + 512] for i in range(0, size, 512))
    if not changed:
        sys.exit("pattern %d: the guest changed nothing" % seed)
    fd = os.open(path, os.O_RDONLY)
    for bs in (512, 4096, 1 << 20):
        if read_all(fd, bs) != truth:
            sys.exit("pattern %d: a new open (reads of %d) differs from what the backend completed" % (seed, bs))
    os.close(fd)
    if read_direct() != truth:
        sys.exit("pattern %d: a new O_DIRECT open differs from what the backend completed" % seed)
    again = read_all(old_fd, 4096)
    stale = 0
    for i in range(0, size, 512):
        sec = again[i:i + 512]
        if sec == truth[i:i + 512]:
            continue
        if sec == before[i:i + 512]:
            stale += 1
            continue
        sys.exit("pattern %d: the open file shows sector %d torn" % (seed, i // 512))
    print("pattern %d: %d sectors rewritten; new opens saw all; the old file showed %d as before"
          % (seed, changed, stale))
    before = again
os.close(old_fd)
PY
then
	ok "after partial rewrites too, each open saw every completed write"
else
	fail "after a partial rewrite, an open missed a completed write"
fi
"$xbd" sim vm io vm1 xvda --rw read --bs 64k --qd 8 --verify --pattern 1 >/dev/null 2>&1 &&
	fail "verification against the wrong pattern passed" ||
	ok "the guest's verification catches the mixed pattern"
"$xbd" detach "$T/mnt" || fail "detach"
wait_for 3 no_attach_nodes && ok "no attach nodes left" || fail "attach nodes left"
finish

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Checks that a copy of a disk the sim guest's counter workload wrote
# (`xbd sim vm io VM VDEV --rw counter`, xbd_counter_fill) is one moment
# of those writes.  Write number s went to block s % n (n blocks of BS
# bytes in the region), every sector of it stamped with s.  The copy is
# one moment when, with M the highest stamp found, every block b holds
# exactly the last write to it up to M: M - ((M - b) % n) when b <= M,
# and nothing (zeros: the disk started zeroed) when b > M.  A block
# newer or older than that, or a torn one (sectors of two writes), is
# a block from another moment.
# usage: counter_check.py IMAGE BS [REGION-BYTES]   -> prints M
# exit 0 one moment, 1 not (first bad block named), 2 not a counter disk
#        counter_check.py --max IMAGE BS [REGION-BYTES]
# prints the highest stamp in the region (-1 for none), whatever the
# rest holds: how far the guest's counter has gone on a live disk
import struct
import sys

MAGIC = b"xbdcnt01"


def highest(path, bs, region):
    with open(path, "rb") as f:
        data = f.read(region)
    m = -1
    for b in range(0, len(data) - bs + 1, bs):
        if data[b:b + 8] == MAGIC:
            m = max(m, struct.unpack_from("<Q", data, b + 8)[0])
    return m


def main():
    if sys.argv[1] == "--max":
        print(highest(sys.argv[2], int(sys.argv[3]), int(sys.argv[4])))
        return 0
    path, bs = sys.argv[1], int(sys.argv[2])
    data = open(path, "rb").read()
    region = int(sys.argv[3]) if len(sys.argv) > 3 else len(data)
    n = region // bs
    stamps = []
    for b in range(n):
        blk = data[b * bs:(b + 1) * bs]
        if blk.count(0) == bs:
            stamps.append(None)
            continue
        seqs = set()
        for i in range(0, bs, 512):
            sec = blk[i:i + 512]
            if sec[:8] != MAGIC:
                print(f"block {b}: sector {i // 512} is not a counter stamp")
                return 2
            seq, blockno, sector = struct.unpack_from("<QQQ", sec, 8)
            if (blockno != b or sector != (b * bs + i) // 512 or
                    sec[32:] != bytes([seq & 0xff]) * 480):
                print(f"block {b}: sector {i // 512} stamp names another place")
                return 2
            seqs.add(seq)
        if len(seqs) != 1:
            print(f"block {b}: torn, sectors of writes {sorted(seqs)}")
            return 1
        stamps.append(seqs.pop())
    written = [s for s in stamps if s is not None]
    if not written:
        print("no counter write in the copy")
        return 2
    m = max(written)
    for b, s in enumerate(stamps):
        want = m - ((m - b) % n) if b <= m else None
        if s != want:
            print(f"not one moment: block {b} holds write {s}, "
                  f"the moment of write {m} has {want} there")
            return 1
    print(m)
    return 0


sys.exit(main())

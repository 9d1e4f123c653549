#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# The soak's check of a disk after a kill -9 of its backend: every block
# that the first W writes of a `xbd sim vm io --rw write|randwrite
# --pattern SEED` workload wrote (W: its "flushed-writes" line, the
# writes a completed flush covered) must hold SEED's pattern.  The block
# order is the workload's own (src/sim/sim_guest.c, xbd_workload_run:
# sequential wraps at the end of the disk; random is splitmix64 seeded
# with SEED ^ 0x5eed), the pattern xbd_pattern_fill's.
# usage: flushed.py FILE write|randwrite BS SEED W
# Exit 0 and a line with the blocks checked, or 1 naming the first bad one.
import struct
import sys

M64 = (1 << 64) - 1


def splitmix64(state):
    state = (state + 0x9E3779B97F4A7C15) & M64
    z = state
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & M64
    return state, z ^ (z >> 31)


def sector(seed, s):
    return (b"xbdpat01" + struct.pack("<QQ", seed & M64, s) +
            bytes([(seed + 7 * s + 1) & 0xFF]) * 488)


def main():
    path, rw, bs, seed, w = sys.argv[1], sys.argv[2], int(sys.argv[3]), \
        int(sys.argv[4]), int(sys.argv[5])
    with open(path, "rb") as f:
        f.seek(0, 2)
        nblocks = f.tell() // bs
        blocks = set()
        if rw == "write":
            blocks = set(range(min(w, nblocks)))
        else:
            state = seed ^ 0x5EED
            for _ in range(w):
                state, z = splitmix64(state)
                blocks.add(z % nblocks)
        for b in sorted(blocks):
            f.seek(b * bs)
            data = f.read(bs)
            first = b * bs // 512
            for i in range(bs // 512):
                if data[i * 512:(i + 1) * 512] != sector(seed, first + i):
                    sys.exit("block %d (sector %d) lacks a flushed write of pattern %d"
                             % (b, first + i, seed))
    print("%d flushed block(s) present" % len(blocks))


main()

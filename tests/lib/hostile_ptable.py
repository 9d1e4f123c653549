#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Hostile partition tables, written into a new 64 MiB sparse disk image
# for tests/unit/test_fuse_export.c and tests/sim/attach_hostile_ptable.sh.
#   hostile_ptable.py gpt N FILE      valid GPT (right CRCs), N entries,
#                                     all the same overlapping partition
#   hostile_ptable.py chain N FILE    MBR whose extended chain links N
#                                     logical partitions of one sector
#   hostile_ptable.py sparse N FILE   the same chain, with a data
#                                     partition in every 100th link only
#   hostile_ptable.py loop-data FILE  an extended record that links to
#                                     itself, with a data partition
#   hostile_ptable.py loop-empty FILE two extended records that link to
#                                     each other, without data
import struct
import sys
import zlib

SECT = 512
SIZE = 64 << 20
LAST = SIZE // SECT - 1
EXT_START = 2048


def entry(kind, start, count):
    return struct.pack("<B3sB3sII", 0, b"\0" * 3, kind, b"\0" * 3, start, count)


def boot_sector(entries):
    return b"\0" * 446 + b"".join(entries).ljust(64, b"\0") + b"\x55\xaa"


def gpt(f, n):
    first = 2 + (n * 128 + SECT - 1) // SECT
    linux_fs = bytes.fromhex("af3dc60f838472478e793d69d8477de4")
    table = struct.pack("<16s16sQQQ72s", linux_fs, b"\1" * 16, first,
                        first + 2047, 0, b"\0" * 72) * n
    hdr = struct.pack("<8sIIIIQQQQ16sQIII", b"EFI PART", 0x10000, 92, 0, 0,
                      1, LAST, first, LAST - 34, b"\2" * 16, 2, n, 128,
                      zlib.crc32(table))
    hdr = hdr[:16] + struct.pack("<I", zlib.crc32(hdr)) + hdr[20:]
    f.write(boot_sector([entry(0xEE, 1, LAST)]))
    f.write(hdr.ljust(SECT, b"\0"))
    f.write(table)


# extended record k sits at EXT_START + 2k (links are relative to the
# extended partition); its data partition is the sector after it
def chain(f, n, every=1):
    f.write(boot_sector([entry(0x05, EXT_START, 2 * n + 2048)]))
    for k in range(n):
        links = [entry(0x83, 1, 1)] if k % every == 0 else []
        if k + 1 < n:
            links.append(entry(0x05, 2 * (k + 1), 2))
        f.seek((EXT_START + 2 * k) * SECT)
        f.write(boot_sector(links))


def loop(f, data):
    f.write(boot_sector([entry(0x05, EXT_START, 4096)]))
    f.seek(EXT_START * SECT)
    if data:
        f.write(boot_sector([entry(0x83, 1, 1), entry(0x05, 0, 2)]))
    else:
        f.write(boot_sector([entry(0x05, 2, 2)]))
        f.seek((EXT_START + 2) * SECT)
        f.write(boot_sector([entry(0x05, 0, 2)]))


def main(argv):
    kind, path = argv[1], argv[-1]
    with open(path, "wb") as f:
        f.truncate(SIZE)
        if kind == "gpt":
            gpt(f, int(argv[2]))
        elif kind == "chain":
            chain(f, int(argv[2]))
        elif kind == "sparse":
            chain(f, int(argv[2]), 100)
        elif kind in ("loop-data", "loop-empty"):
            loop(f, kind == "loop-data")
        else:
            sys.exit("unknown kind " + kind)


main(sys.argv)

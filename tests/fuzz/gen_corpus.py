#!/usr/bin/python3
# Writes the seed corpora of tests/fuzz/ (tests/fuzz/corpus/<name>/):
# small valid inputs of each format, for the fuzzer to start from and
# for `make check` to replay.  Regression inputs (crashes found) sit
# beside them as crash-* files and are never rewritten by this script.
# Usage: gen_corpus.py [NAME...]  (default: every harness)
import os
import struct
import sys
import zlib

TOP = os.path.dirname(os.path.abspath(__file__))


def write(name, seed, data):
    d = os.path.join(TOP, "corpus", name)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + seed), "wb") as f:
        f.write(data)


# ---- ptable: [sector size selector][u32 extra 512-byte sectors][disk]
SEL = {512: 0, 4096: 3, 1024: 4, 2048: 5}


def mbr_entry(kind, start, count, boot=0):
    return struct.pack("<B3sB3sII", boot, b"\0" * 3, kind, b"\0" * 3, start, count)


def boot_sector(entries):
    return b"\0" * 446 + b"".join(entries).ljust(64, b"\0") + b"\x55\xaa"


def disk(sectors, ssz=512):
    return bytearray(sectors * ssz)


def put(d, off, data):
    d[off:off + len(data)] = data


def ptable_input(d, ssz=512, extra=2048, fix_crcs=False):
    return struct.pack("<BI", SEL[ssz] | (8 if fix_crcs else 0), extra) + bytes(d)


def gpt_disk(ssz, n, last_lba, entries=None):
    d = disk(4, ssz)
    linux_fs = bytes.fromhex("af3dc60f838472478e793d69d8477de4")
    if entries is None:
        entries = [(34 + 8 * i, 34 + 8 * i + 7) for i in range(n)]
    table = b"".join(struct.pack("<16s16sQQQ72s", linux_fs, bytes([i + 1]) * 16,
                                 s, e, 0, b"\0" * 72)
                     for i, (s, e) in enumerate(entries))
    table = table.ljust(n * 128, b"\0")
    hdr = struct.pack("<8sIIIIQQQQ16sQIII", b"EFI PART", 0x10000, 92, 0, 0,
                      1, last_lba, 34, last_lba - 33, b"\2" * 16, 2, n, 128,
                      zlib.crc32(table))
    hdr = hdr[:16] + struct.pack("<I", zlib.crc32(hdr)) + hdr[20:]
    put(d, 0, boot_sector([mbr_entry(0xEE, 1, 0xffffffff)]))
    put(d, ssz, hdr)
    d[2 * ssz:] = b""
    return d + table


def ptable():
    ext = 2  # the extended partition starts at sector 2
    # four primaries
    d = disk(2)
    put(d, 0, boot_sector([mbr_entry(0x83, 2048, 4096, 0x80),
                           mbr_entry(0x82, 8192, 1024),
                           mbr_entry(0x07, 16384, 100),
                           mbr_entry(0x0c, 20000, 5)]))
    write("ptable", "mbr-primaries", ptable_input(d, extra=32768))
    # an extended chain of three logicals, one record every 2 sectors
    d = disk(ext + 8)
    put(d, 0, boot_sector([mbr_entry(0x83, 64, 64), mbr_entry(0x05, ext, 1024)]))
    for k in range(3):
        links = [mbr_entry(0x83, 1, 1)]
        if k < 2:
            links.append(mbr_entry(0x05, 2 * (k + 1), 2))
        put(d, (ext + 2 * k) * 512, boot_sector(links))
    write("ptable", "mbr-chain", ptable_input(d))
    # a record linking to itself, with data
    d = disk(ext + 2)
    put(d, 0, boot_sector([mbr_entry(0x0f, ext, 64)]))
    put(d, ext * 512, boot_sector([mbr_entry(0x83, 1, 1), mbr_entry(0x05, 0, 2)]))
    write("ptable", "mbr-loop", ptable_input(d))
    # valid GPTs: 512 and 4096-byte sectors
    write("ptable", "gpt-512", ptable_input(gpt_disk(512, 4, 4095), extra=8192))
    write("ptable", "gpt-4096", ptable_input(gpt_disk(4096, 4, 511), 4096, 4096))
    # GPT with a wrapped entry and one past the end
    write("ptable", "gpt-bad-entries",
          ptable_input(gpt_disk(512, 4, 4095, [(40, 30), (4000, 5000), (50, 60)]), extra=8192))
    # the same, the harness putting the CRCs right (the fuzzer's way in)
    write("ptable", "gpt-fixcrc", ptable_input(gpt_disk(512, 4, 4095), extra=8192,
                                               fix_crcs=True))
    write("ptable", "gpt-4096-fixcrc", ptable_input(gpt_disk(4096, 4, 511), 4096, 4096,
                                                    fix_crcs=True))
    # no table at all
    write("ptable", "empty", ptable_input(disk(2)))


GENERATORS = {"ptable": ptable}

if __name__ == "__main__":
    for name in sys.argv[1:] or GENERATORS:
        GENERATORS[name]()

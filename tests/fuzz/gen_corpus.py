#!/usr/bin/python3
# SPDX-License-Identifier: GPL-2.0-or-later
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


# ---- ring: [f0][f1][u16 max indirect][u64 sectors][u32 start]
#            [u8 n][u32 req_prod move] * n [u16 len][entries]
#            [indirect pages' contents, repeated to fill all 8]
ABI64, ABI32 = 0, 1
# offsets of (id, sector, seg or grefs or nr_sectors) per ABI and kind
RW = {ABI64: (8, 16, 24), ABI32: (4, 12, 20)}
IND = {ABI64: (8, 16, 28), ABI32: (4, 12, 24)}
DISC = {ABI64: (8, 16, 24), ABI32: (4, 12, 20)}
SLOT = {ABI64: 112, ABI32: 108}


def rw_req(abi, op, rid, sector, segs):
    b = bytearray(SLOT[abi])
    i, sec, sg = RW[abi]
    b[0], b[1] = op, len(segs)
    struct.pack_into("<Q", b, i, rid)
    struct.pack_into("<Q", b, sec, sector)
    for k, (gref, first, last) in enumerate(segs):
        struct.pack_into("<IBB", b, sg + 8 * k, gref, first, last)
    return bytes(b)


def ind_req(abi, op, rid, sector, nseg, grefs):
    b = bytearray(SLOT[abi])
    i, sec, g = IND[abi]
    b[0], b[1] = 6, op
    struct.pack_into("<H", b, 2, nseg)
    struct.pack_into("<Q", b, i, rid)
    struct.pack_into("<Q", b, sec, sector)
    for k, gr in enumerate(grefs):
        struct.pack_into("<I", b, g + 4 * k, gr)
    return bytes(b)


def disc_req(abi, rid, sector, count, secure=0):
    b = bytearray(SLOT[abi])
    i, sec, n = DISC[abi]
    b[0], b[1] = 5, secure
    struct.pack_into("<Q", b, i, rid)
    struct.pack_into("<Q", b, sec, sector)
    struct.pack_into("<Q", b, n, count)
    return bytes(b)


def ring_input(abi, reqs, sectors=1 << 20, flags=0x40 | 0x80, f1=1, maxind=256,
               start=0, moves=None, ind_pages=b""):
    moves = moves if moves is not None else [len(reqs)]
    entries = b"".join(reqs)
    return (struct.pack("<BBHQIB", abi | flags, f1, maxind, sectors, start, len(moves))
            + b"".join(struct.pack("<I", m) for m in moves)
            + struct.pack("<H", len(entries)) + entries + ind_pages)


def ind_page(segs):
    return b"".join(struct.pack("<IBBH", g, f, l, 0) for g, f, l in segs)


def ring():
    for abi, tag in ((ABI64, "x86_64"), (ABI32, "x86_32")):
        segs = [(100 + k, 0, 7) for k in range(11)]
        reqs = [rw_req(abi, 0, 1, 0, segs[:1]), rw_req(abi, 1, 2, 8, segs),
                rw_req(abi, 3, 3, 0, []), rw_req(abi, 2, 4, 0, []),
                disc_req(abi, 5, 64, 64, 1),
                ind_req(abi, 0, 6, 128, 20, [7, 8])]
        page = ind_page([(200 + k, 0, 7) for k in range(20)])
        write("ring", tag + "-mixed", ring_input(abi, reqs, ind_pages=page))
        # a 4096-byte-sector disk, read-only, with bad requests
        bad = [rw_req(abi, 1, 1, 0, segs[:1]), rw_req(abi, 0, 2, 1, segs[:1]),
               rw_req(abi, 0, 3, 0, [(1, 3, 2)]), rw_req(abi, 0, 4, (1 << 20) - 1, segs[:2]),
               rw_req(abi, 9, 5, 0, [])]
        write("ring", tag + "-bad", ring_input(abi, bad, flags=0x10 | 0x20))
        # indirect over all 8 pages
        pages = ind_page([(k, 0, 7) for k in range(4)])  # repeated
        write("ring", tag + "-indirect-max",
              ring_input(abi, [ind_req(abi, 1, 9, 0, 4096, list(range(8)))],
                         maxind=4096, sectors=1 << 30, ind_pages=pages))
        # a producer that overflows, after wrapping the index
        write("ring", tag + "-overflow",
              ring_input(abi, [rw_req(abi, 0, 1, 0, segs[:1])] * 2,
                         start=0xfffffffe, moves=[1, 2, 500]))
        # a full two-page ring
        n = 64
        write("ring", tag + "-full",
              ring_input(abi | 2, [rw_req(abi, 0, k, k * 8, segs[:1]) for k in range(n)],
                         moves=[n]))


# ---- response: [f0][f1][u32 sectors][u32 start] then actions:
#   0-3 submit read/write/flush/discard [u32 sector][u16 count]
#   4 answer the next request [how] (+ operands), 6 [u32] rsp_prod, 7 drain
def submit(op, sector, count):
    if count > 256:
        count = 0x8000 | (count - 1)
    else:
        count -= 1
    return struct.pack("<BIH", op, sector, count)


def answer(how=0, *extra):
    return bytes([4, how]) + b"".join(extra)


DRAIN = b"\7"


def response_input(f0, f1, actions, sectors=1 << 16, start=0):
    return struct.pack("<BBII", f0, f1, sectors, start) + b"".join(actions)


def response():
    feats = 4 | 8 | 16  # flush, barrier, discard
    write("response", "direct",
          response_input(feats, 0, [submit(0, 8, 8), submit(1, 0, 88), submit(2, 0, 1),
                                    submit(3, 64, 64), answer(), answer(1), DRAIN,
                                    answer(2), answer(), DRAIN]))
    # indirect: 200 sectors is 25 segments; answered with the ring op
    # and with the indirect op, as Linux does
    write("response", "indirect",
          response_input(feats, 0x3d, [submit(0, 0, 200), submit(1, 256, 200),
                                    answer(), answer(0x40), DRAIN]))
    # the largest: 1024 sectors, 128 segments
    write("response", "indirect-large",
          response_input(feats, 0x3d, [submit(0, 0, 1024), answer(0x40), DRAIN]))
    # the indices wrap while requests are in flight
    write("response", "wrap",
          response_input(feats, 0, [submit(k & 1, 8 * k, 8) for k in range(20)]
                         + [answer() for _ in range(20)] + [DRAIN],
                         start=0xfffffff8))
    # hostile: a duplicate, a bogus id, a bad status, a bad op, a jump
    for tag, acts in (("dup", [answer(), answer(0x80)]),
                      ("bogus-id", [answer(4, struct.pack("<Q", 1 << 40))]),
                      ("bad-status", [answer(16, struct.pack("<H", 7))]),
                      ("bad-op", [answer(8, b"\x09")]),
                      ("jump", [answer(), bytes([6]) + struct.pack("<I", 1000)])):
        write("response", "hostile-" + tag,
              response_input(feats, 0, [submit(0, 0, 8), submit(1, 8, 8)] + acts + [DRAIN]))
    # nothing answered: the device is failed at the end
    write("response", "unanswered", response_input(feats | 32, 0, [submit(0, 0, 8)] * 4))


# ---- cow: [flags][u32 disk in 4 KiB - 1][u8 n][(u8 kind, u32 off, u16 len) * n]
#           [the overlay file]; kind & 3: 0 write, 1 discard, 2 flush, 3 read
def cow_file(disk, cluster=65536, bits=b"", magic=b"XBDCOW\r\n", version=1):
    ncl = (disk + cluster - 1) // cluster
    npages = ((ncl + 63) // 64 * 8 + 4095) // 4096
    data_off = (4096 + npages * 4096 + cluster - 1) // cluster * cluster
    hdr = struct.pack("<8sIIQQQ", magic, version, cluster, disk, 4096, data_off)
    return hdr.ljust(4096, b"\0") + bits.ljust(npages * 4096, b"\0")


def cow_input(disk, ops, file, flags=4):
    return (struct.pack("<BIB", flags, disk // 4096 - 1, len(ops))
            + b"".join(struct.pack("<BIH", *op) for op in ops) + file)


def cow():
    ops = [(0, 0, 16), (3, 0, 128), (2, 0, 0), (1, 65536, 200), (3, 60000, 300),
           (4, 131072, 1), (3, 0, 511)]
    mib = 1 << 20
    write("cow", "valid", cow_input(mib, ops, cow_file(mib, bits=b"\x0a")))
    write("cow", "cluster-4k", cow_input(256 << 10, ops, cow_file(256 << 10, 4096, b"\x55" * 8)))
    # every bit set, those past the last cluster too
    write("cow", "bits-past-end", cow_input(mib + 4096, ops,
                                            cow_file(mib + 4096, bits=b"\xff" * 4096)))
    write("cow", "new", cow_input(mib, ops, b""))
    write("cow", "bad-magic", cow_input(mib, ops, cow_file(mib, magic=b"XBDCOW\r\r")))
    write("cow", "wrong-size", cow_input(2 * mib, ops, cow_file(mib)))
    write("cow", "short-file", cow_input(mib, ops, cow_file(mib), flags=0))


# ---- xenstored: messages [who][type][tx][u16 len][body]; who & 0x80
#      opens a connection as dom(who & 3), else picks connection who % n
XS = dict(CONTROL=0, DIRECTORY=1, READ=2, GET_PERMS=3, WATCH=4, UNWATCH=5,
          TRANSACTION_START=6, TRANSACTION_END=7, INTRODUCE=8, RELEASE=9,
          GET_DOMAIN_PATH=10, WRITE=11, MKDIR=12, RM=13, SET_PERMS=14,
          IS_DOMAIN_INTRODUCED=17, RESUME=18, RESET_WATCHES=21,
          DIRECTORY_PART=22)


def xs_msg(who, op, body, tx=0):
    return struct.pack("<BBBH", who, XS[op], tx, len(body)) + body


def xenstored():
    # connections: 0 is the newest; seeded as [dom1, dom0]
    d0, g1 = 1, 0
    base = b"/local/domain/1"
    write("xenstored", "dom0-tree",
          b"".join([xs_msg(d0, "MKDIR", base + b"\0"),
                    xs_msg(d0, "SET_PERMS", base + b"\0n1\0r0\0"),
                    xs_msg(d0, "WRITE", base + b"/name\0vm1"),
                    xs_msg(d0, "WRITE", base + b"/device/vbd/51712/state\0" + b"1"),
                    xs_msg(d0, "DIRECTORY", base + b"\0"),
                    xs_msg(d0, "DIRECTORY_PART", base + b"\0" + b"0\0"),
                    xs_msg(d0, "GET_PERMS", base + b"\0"),
                    xs_msg(d0, "READ", base + b"/name\0"),
                    xs_msg(d0, "RM", base + b"/device\0"),
                    xs_msg(d0, "GET_DOMAIN_PATH", b"1\0")]))
    write("xenstored", "watch-txn",
          b"".join([xs_msg(d0, "WATCH", b"/local\0tok\0"),
                    xs_msg(d0, "WATCH", b"@introduceDomain\0intro\0"),
                    xs_msg(d0, "TRANSACTION_START", b"\0"),
                    xs_msg(d0, "WRITE", b"/local/x\0y", tx=1),
                    xs_msg(d0, "TRANSACTION_END", b"T\0", tx=1),
                    xs_msg(d0, "INTRODUCE", b"1\0" + b"4660\0" + b"5\0"),
                    xs_msg(d0, "IS_DOMAIN_INTRODUCED", b"1\0"),
                    xs_msg(d0, "UNWATCH", b"/local\0tok\0"),
                    xs_msg(d0, "RELEASE", b"1\0"),
                    xs_msg(d0, "RESET_WATCHES", b"")]))
    # a guest: its own home, relative paths, what it may not touch
    write("xenstored", "guest",
          b"".join([xs_msg(d0, "MKDIR", base + b"\0"),
                    xs_msg(d0, "SET_PERMS", base + b"\0b1\0"),
                    xs_msg(g1, "WRITE", b"data/x\0" + b"1"),
                    xs_msg(g1, "WRITE", b"/local/domain/0/evil\0" + b"1"),
                    xs_msg(g1, "WATCH", b"data\0t\0"),
                    xs_msg(g1, "TRANSACTION_START", b"\0"),
                    xs_msg(g1, "RM", b"data\0", tx=1),
                    xs_msg(g1, "TRANSACTION_END", b"F\0", tx=1),
                    xs_msg(g1, "INTRODUCE", b"2\0" + b"1\0" + b"1\0"),
                    xs_msg(0x81, "READ", b"data/x\0")]))


def xsvalues():
    for i, v in enumerate([b"0", b"18446744073709551615", b"4294967296", b"512M",
                           b"10G", b"4KiB", b"xvda", b"xvdzz15", b"hda1", b"sdb",
                           b"51712", b"/local/domain/0/backend/vbd/1/51712",
                           b"x86_64-abi", b"x86_32-abi", b"", b"-1", b"0x10"]):
        write("xsvalues", "%02d" % i, v)


# ---- ctl: [mode] then a request to the server (mode even) or a reply
#      from a socket to the client (mode odd)
def ctl():
    for tag, req in (("stats", b"stats\n"), ("ring", b"ring\r\n"), ("no-newline", b"stats"),
                     ("unknown", b"version\n"), ("long", b"s" * 80 + b"\n"),
                     ("nul", b"stats\0junk\n"), ("empty-line", b"\n")):
        write("ctl", "server-" + tag, b"\0" + req)
    for tag, rep in (("ok", b'{"version":1,"pid":1,"devices":[{"vm":"vm1","counters":{}}]}\n'),
                     ("refused", b'{"version":1,"error":"no","error_code":"EACCES"}\n'),
                     ("version2", b'{"version":2}\n'), ("version-str", b'{"version":"1"}\n'),
                     ("array", b'[1,2,3]\n'), ("truncated", b'{"version":1,"devices":['),
                     ("two-docs", b'{"version":1}{"version":1}\n'),
                     ("deep", b"[" * 2000 + b"]" * 2000)):
        write("ctl", "reply-" + tag, b"\1" + rep)


GENERATORS = {"ptable": ptable, "ring": ring, "response": response, "cow": cow,
              "xenstored": xenstored, "xsvalues": xsvalues, "ctl": ctl}

if __name__ == "__main__":
    for name in sys.argv[1:] or GENERATORS:
        GENERATORS[name]()

#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
# Prints the SHA-256 of the "sectors" sections (the chunk data with its
# checksums) of an EWF-E01 segment file, one line per section, so that
# two writers' chunks can be compared whatever their headers say.
import hashlib
import struct
import sys

with open(sys.argv[1], "rb") as f:
    data = f.read()
if data[:8] != b"EVF\x09\x0d\x0a\xff\x00":
    sys.exit("%s: not an EWF-E01 file" % sys.argv[1])
off, seen = 13, 0
while off + 76 <= len(data) and seen < 100000:
    kind = data[off:off + 16].rstrip(b"\0").decode("ascii", "replace")
    nxt, size = struct.unpack_from("<QQ", data, off + 16)
    if kind == "sectors":
        print(hashlib.sha256(data[off + 76:off + size]).hexdigest())
    if kind in ("done", "next") or nxt <= off:
        break
    off, seen = nxt, seen + 1

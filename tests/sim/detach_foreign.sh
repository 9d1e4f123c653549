#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `xbd detach DIR` unmounts only the FUSE mount of an `xbd attach`, the
# one its records name: never a tmpfs (or anything else) mounted there,
# never the FUSE mount of an `xbd serve`.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
start_sim

mkdir -p "$T/tm"
mount -t tmpfs -o size=1m xbdtest "$T/tm" || skip "cannot mount a tmpfs"
mounts+=("$T/tm")
echo precious >"$T/tm/file"
"$xbd" detach "$T/tm" 2>"$T/err" && fail "detach of a tmpfs succeeded" ||
	ok "detach of a tmpfs refused: $(cat "$T/err")"
mountpoint -q "$T/tm" && [ "$(cat "$T/tm/file" 2>/dev/null)" = precious ] &&
	ok "the tmpfs and its file are still there" || fail "the tmpfs was unmounted"

# a disk served with its own FUSE mount: detach DIR must leave it alone
make_random_image "$T/disk.img" 8
make_random_image "$T/served.img" 8
vm_create vm1 "$T/disk.img,xvda"
mkdir -p "$T/smnt"
mounts+=("$T/smnt")
"$xbd" serve vm1 --image "$T/served.img" --vdev xvdb --mount "$T/smnt" --timeout 20 \
	2>"$T/serve.err" || die "serve: $(cat "$T/serve.err")"
cleanup_fn eval '"$xbd" detach vm1 xvdb >/dev/null 2>&1'
"$xbd" detach "$T/smnt" 2>"$T/err" && fail "detach DIR of a serve's mount succeeded" ||
	ok "detach DIR of a serve's mount refused: $(cat "$T/err")"
cmp -s "$T/smnt/xvdb" "$T/served.img" && ok "the serve's mount still serves" ||
	fail "the serve's mount is gone"
"$xbd" detach vm1 xvdb && ok "detach VM VDEV" || fail "detach vm1 xvdb"
finish

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end: `xbd attach` of a running sim VM's disks, read-only.  The
# VM's guest has them connected (sim blkback serves them); attach adds a
# second backend instance with dom0 as the frontend and shows the disks
# in a FUSE mount.  Checks: sha256 of DIR/xvda equals the image; dd with
# bs=4k and bs=1M; 7-byte reads at odd offsets; fio randread with
# verification (4 jobs, queue depth 32) on a disk fio wrote beforehand;
# writes refused (EROFS); the images unchanged; detach leaves nothing in
# xenstore and no mount.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
command -v fio >/dev/null || skip "fio not installed"
start_sim

a=$T/a.img b=$T/b.img
make_random_image "$a" 64
truncate -s 32M "$b"
# no verify state file in the caller's directory
fio --name=prep --filename="$b" --rw=write --bs=4k --size=32M --verify=crc32c \
	--verify_state_save=0 \
	--do_verify=0 >"$T/fio-prep.out" 2>&1 || { echo "FAIL: fio prep"; cat "$T/fio-prep.out"; exit 1; }
sum_a=$(sha256sum <"$a") sum_b=$(sha256sum <"$b")

vm_create vm1 "$a,xvda" "$b,xvdb"
wait_for 10 guest_connected "$DOMID" 51712 || fail "vm1's guest did not connect xvda"

start=$EPOCHREALTIME
if ! attach vm1 "$T/mnt" 2>"$T/attach.err"; then
	die "attach: $(cat "$T/attach.err")"
fi
ok "attach returned in $(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}') s"
ls -l "$T/mnt"

[ "$(stat -c %s "$T/mnt/xvda")" = $((64 << 20)) ] && ok "xvda is 64 MiB" ||
	fail "xvda size $(stat -c %s "$T/mnt/xvda")"
[ "$(stat -c %a "$T/mnt/xvda")" = 444 ] && ok "xvda mode 0444" ||
	fail "xvda mode $(stat -c %a "$T/mnt/xvda")"
[ "$(sha256sum <"$T/mnt/xvda")" = "$sum_a" ] && ok "sha256 of DIR/xvda equals the image" ||
	fail "sha256 of DIR/xvda differs from the image"

for bs in 4k 1M; do
	if dd if="$T/mnt/xvda" bs=$bs status=none | cmp - "$a"; then
		ok "dd bs=$bs equals the image"
	else
		fail "dd bs=$bs differs"
	fi
done

if python3 - "$T/mnt/xvda" "$a" <<'PY'
import os, random, sys
f, g = os.open(sys.argv[1], os.O_RDONLY), os.open(sys.argv[2], os.O_RDONLY)
size = os.fstat(g).st_size
rnd = random.Random(5)
offs = [1, 7, 511, 513, 4095, 4097, size - 7, size - 8193] + \
       [rnd.randrange(0, size - 7) | 1 for _ in range(300)]
for o in offs:
    a, b = os.pread(f, 7, o), os.pread(g, 7, o)
    if a != b:
        sys.exit("7 bytes at %d differ: %r != %r" % (o, a, b))
if os.pread(f, 7, size - 3) != os.pread(g, 3, size - 3):
    sys.exit("short read at the end is wrong")
PY
then
	ok "7-byte reads at odd offsets"
else
	fail "7-byte reads at odd offsets"
fi

if fio --name=verify --filename="$T/mnt/xvdb" --rw=randread --bs=4k --size=32M \
	--verify=crc32c --ioengine=libaio --direct=1 --iodepth=32 --numjobs=4 \
	--group_reporting >"$T/fio.out" 2>&1 && grep -q 'err= 0' "$T/fio.out"; then
	ok "fio randread with crc32c verification: $(grep -o 'IOPS=[^,]*' "$T/fio.out" | head -n1)"
else
	fail "fio randread verify: $(grep -E 'verify|err=' "$T/fio.out" | head -n3)"
fi

if dd if=/dev/zero of="$T/mnt/xvda" bs=4k count=1 conv=notrunc status=none 2>"$T/dd.err"; then
	fail "a write to the read-only DIR/xvda succeeded"
elif grep -q "Read-only file system" "$T/dd.err"; then
	ok "writes refused with EROFS"
else
	fail "write refused, but not with EROFS: $(cat "$T/dd.err")"
fi

if "$xbd" detach "$T/mnt"; then
	ok "detach"
else
	fail "detach failed"
fi
mountpoint -q "$T/mnt" && fail "still mounted after detach" || ok "unmounted"
wait_for 3 no_attach_nodes && ok "no attach nodes left in xenstore" ||
	fail "nodes left: $(xenstore-ls -f /local/domain/0 | grep -E 'device|vbd/0')"
[ "$(sha256sum <"$a")" = "$sum_a" ] && [ "$(sha256sum <"$b")" = "$sum_b" ] &&
	ok "images unchanged" || fail "an image changed"
guest_connected "$DOMID" 51712 && ok "the VM's own connection is untouched" ||
	fail "the VM's xvda is no longer connected"
finish

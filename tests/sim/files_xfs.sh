#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end: `xbd attach --files` shows an XFS of the guest as a
# read-only tree DIR/files/xvda1, parsed by libfsxfs in a confined
# child.  The VM's disk (sparse, mkfs.xfs wants 300 MiB) holds a GPT
# whose first partition is an XFS made with mkfs.xfs's defaults (v5,
# bigtime, reflink, ...) and filled through a kernel loop mount at the
# partition's offset: nested directories, 2000 small files, a 20 MiB
# random file and a reflinked copy of it, a sparse file, a preallocated
# one, a hard link, short and long symbolic links, a non-ASCII name,
# odd modes, owners and timestamps (with nanoseconds).  The tree's
# listing and every file's sha256 equal what was written; hard links
# share an inode; holes read as zeros; `xbd ls` and `xbd cat` read it
# without a mount.  A 20 GiB XFS (AGs over 4 GiB) reads, and hostile
# inode numbers in its root (2, the root's own) leave the rest
# readable.  Random bytes over the inodes and directories give errors
# or missing entries, never a crash, and the disk files still read;
# the images are unchanged afterwards.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
requires_prog sfdisk
requires_prog mkfs.xfs xfsprogs
requires_prog losetup
requires_prog python3
grep -qw xfs /proc/filesystems || modprobe xfs 2>/dev/null
grep -qw xfs /proc/filesystems || skip "the kernel has no xfs to fill the image with"

img=$T/disk.img
p1=$((2048 * 512))
psize=$((340 << 20))
truncate -s 360M "$img"
printf 'label: gpt\nstart=2048, size=%d, type=linux\n' $((psize / 512)) |
	sfdisk -q "$img" || die "sfdisk"
loop=
loop_cleanup() {
	[ -n "$loop" ] && { umount "$T/src" 2>/dev/null; losetup -d "$loop" 2>/dev/null; }
	return 0
}
cleanup_fn loop_cleanup
loop=$(losetup -f --show -o $p1 --sizelimit $psize "$img") || skip "no loop devices"
mkfs.xfs -q "$loop" || die "mkfs.xfs"
mkdir -p "$T/src"
mount -t xfs "$loop" "$T/src" || skip "cannot mount the XFS through the loop device"
src=$T/src

python3 - "$src" <<'PY' || die "making the files"
import os, sys
src = sys.argv[1]
for d in range(4):
    os.makedirs(f"{src}/d{d}/sub/deeper")
    for f in range(500):
        with open(f"{src}/d{d}/f{f:03}.txt", "w") as fh:
            fh.write(f"file {d} {f}\n" * (f % 9))
for i in range(40):
    os.symlink(f"target-{i}", f"{src}/d0/sub/deeper/l{i}")
PY
echo "hello from the VM" >"$src/hello.txt"
head -c $((20 << 20)) /dev/urandom >"$src/big.bin"
truncate -s 30M "$src/sparse"
echo "data in the middle" | dd of="$src/sparse" bs=1 seek=$((10 << 20)) conv=notrunc status=none
# preallocated (unwritten extents over the deleted file's blocks: they
# must read as zeros, not as what was there) and a reflinked copy
head -c $((4 << 20)) /dev/urandom >"$src/junk" && sync && rm "$src/junk" && sync
fallocate -l $((4 << 20)) "$src/prealloc" || die "fallocate"
echo "after the preallocation" >>"$src/prealloc"
cp --reflink=always "$src/big.bin" "$src/d2/big.copy" || die "cp --reflink"
echo "twice" >"$src/h1"
ln "$src/h1" "$src/d1/h2"
ln -s hello.txt "$src/link"
long=/$(printf 'very-long-directory-name-%02d/' $(seq 1 30))end
ln -s "$long" "$src/longlink"
echo "grüße" >"$src/$(printf 'gr\xc3\xbc\xc3\x9fe-\xe6\x97\xa5\xe6\x9c\xac.txt')"
mkdir "$src/private"
chmod 0750 "$src/private"
chmod 0604 "$src/hello.txt"
chmod 4755 "$src/d2/f001.txt"
chown 1234:5678 "$src/hello.txt"
chown 4000000000:77 "$src/d3/f002.txt"
touch -h -d '2001-02-03 04:05:06.789123456' "$src/link" "$src/h1"
touch -d '1999-12-31 23:59:59' "$src/big.bin"
touch -d '2100-01-02 03:04:05.5' "$src/d1/f007.txt"
touch -d '1960-06-07 08:09:10' "$src/d1/f008.txt"

# listing: type, mode, owner, size (not of directories), mtime in ns,
# link target
listing() {
	(cd "$1" && find . -printf '%p %y %m %U %G %n %l ' \
		\( -type d -printf '\n' -o -printf '%s %T@\n' \) | sort)
}
listing "$src" >"$T/want.ls"
# where d0's inodes and directory blocks are, for the corruption below
# (inodes of the first AG are at their number times 512)
stat -c %i "$src"/d0/* "$src"/d0/sub/deeper/* >"$T/inodes"
xfs_bmap "$src/d0" "$src/d0/sub/deeper" | sed -n 's/.*: \([0-9]*\)\.\.\([0-9]*\)$/\1 \2/p' >"$T/dirblocks"
[ -s "$T/inodes" ] && [ -s "$T/dirblocks" ] || die "finding d0's inodes and blocks"
(cd "$src" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$T/want.sum"
src0=$T/src0
mkdir -p "$src0" && cp "$src/hello.txt" "$src0/"
umount "$T/src" || die "umount"
losetup -d "$loop" && loop=
sum=$(sha256sum <"$img")

echo "making the image: $SECONDS s"
start_sim
vm1_with_xvda "$img"
attach vm1 "$T/mnt" --files || die "attach --files"
tree=$T/mnt/files/xvda1
[ "$(ls "$T/mnt/files")" = xvda1 ] && ok "files/ holds xvda1" || fail "files/ holds '$(ls "$T/mnt/files")'"
t0=$SECONDS
listing "$tree" >"$T/got.ls"
echo "listing the tree: $((SECONDS - t0)) s"
if cmp -s "$T/want.ls" "$T/got.ls"; then
	ok "listing of $(wc -l <"$T/want.ls") entries equal (names, types, modes, owners, links, sizes, mtimes in ns)"
else
	fail "listing differs: $(diff "$T/want.ls" "$T/got.ls" | head -n 6)"
fi
t0=$SECONDS
(cd "$tree" && find . -type f -print0 | sort -z | xargs -0 sha256sum) >"$T/got.sum"
echo "sha256 of the tree's files: $((SECONDS - t0)) s"
cmp -s "$T/want.sum" "$T/got.sum" && ok "sha256 of all $(wc -l <"$T/want.sum") files equal" ||
	fail "contents differ: $(diff "$T/want.sum" "$T/got.sum" | head -n 4)"
[ "$(stat -c %i "$tree/h1")" = "$(stat -c %i "$tree/d1/h2")" ] &&
	[ "$(stat -c %h "$tree/h1")" = 2 ] && ok "hard links share an inode, nlink 2" ||
	fail "hard links: $(stat -c '%i %h' "$tree/h1" "$tree/d1/h2" | xargs)"
[ "$(stat -c %i "$tree")" != "$(stat -c %i "$tree/h1")" ] || fail "root and h1 share an inode number"
[ "$(readlink "$tree/longlink")" = "$long" ] && [ "$(readlink "$tree/link")" = hello.txt ] &&
	ok "short and long ($(echo -n "$long" | wc -c) bytes) symlinks read as links" ||
	fail "readlink: $(readlink "$tree/link") / $(readlink "$tree/longlink")"
blocks=$(stat -c %b "$tree/sparse")
[ "$blocks" -lt 1024 ] && ok "the sparse file keeps its holes ($blocks blocks)" ||
	fail "sparse file has $blocks blocks"
cmp <(head -c $((10 << 20)) "$tree/sparse") <(head -c $((10 << 20)) /dev/zero) &&
	ok "the hole reads as zeros" || fail "the hole does not read as zeros"
[ "$(stat -c %b "$tree/big.bin")" -ge $((20 << 11)) ] && ok "big.bin's blocks counted" ||
	fail "big.bin has $(stat -c %b "$tree/big.bin") blocks"
if (echo x >>"$tree/hello.txt") 2>/dev/null || touch "$tree/new" 2>/dev/null; then
	fail "the tree took a write"
else
	ok "writes refused"
fi
cmp <(dd if="$img" bs=512 skip=2048 count=$((psize / 512)) status=none) "$T/mnt/xvda1" &&
	ok "xvda1 still the partition's bytes" || fail "xvda1 differs"
"$xbd" detach "$T/mnt" && ok "detach" || fail "detach"

# without a mount
out=$("$xbd" ls vm1:xvda1:/d1 2>"$T/err") && echo "$out" | grep -q ' h2$' &&
	ok "xbd ls vm1:xvda1:/d1" || fail "xbd ls: $(cat "$T/err") $(echo "$out" | head -n 3)"
[ "$("$xbd" cat vm1:xvda1:/big.bin | sha256sum | cut -d' ' -f1)" = \
	"$(grep ' ./big.bin$' "$T/want.sum" | cut -d' ' -f1)" ] &&
	ok "xbd cat vm1:xvda1:/big.bin: same bytes" || fail "xbd cat big.bin"
[ "$("$xbd" cat vm1:/link)" = "hello from the VM" ] && ok "xbd cat vm1:/link (the default file system)" ||
	fail "xbd cat vm1:/link: $("$xbd" cat vm1:/link 2>&1 | head -n 2)"
[ "$(sha256sum <"$img")" = "$sum" ] && ok "image unchanged" || fail "image changed"

# a 20 GiB XFS (sparse): allocation groups of 5 GiB, past the 32-bit
# AG offsets libfsxfs 20201117 computes; made by mkfs.xfs -p (a
# protofile, no mount), with directories in several AGs
big=$T/big.img
truncate -s $(((20 << 30) + (2 << 20))) "$big"
printf 'label: gpt\nstart=2048, size=%d, type=linux\n' $((20 << 21)) | sfdisk -q "$big" || die "sfdisk big"
{
	echo "boot"; echo "0 0"; echo "d--755 0 0"
	echo "hello ---644 1000 100 $src0/hello.txt"
	for d in a b c d e f; do
		echo "$d d--755 0 0"
		for i in $(seq 1 30); do echo " f$i ---644 0 0 $src0/hello.txt"; done
		echo "\$"
	done
	echo "lnk l--777 0 0 hello"
	echo "\$"
} >"$T/proto"
loop=$(losetup -f --show -o $p1 --sizelimit $((20 << 30)) "$big") || skip "no loop devices"
mkfs.xfs -q -p "$T/proto" "$loop" || die "mkfs.xfs -p"
agblocks=$(xfs_db -r -c sb -c 'p agblocks' "$loop" | awk '{print $3}')
agsize=$((agblocks * 4096))
losetup -d "$loop" && loop=
vm_create vmbig "$big,xvda"
wait_for 10 guest_connected "$DOMID" 51712 || fail "vmbig: guest did not connect"
attach vmbig "$T/big" --files || die "attach vmbig --files"
want=$(cd "$T/big/files/xvda1" 2>/dev/null && find . -type f -exec cat {} + | sort | uniq -c | xargs)
got_dirs=$(cd "$T/big/files/xvda1" && find . -mindepth 1 -type d | sort | xargs)
# XFS's own inode numbers (the low 32 bits of st_ino): AG k's start at
# k << (agblklog + 3)
max_ino=0
for i in $(stat -c %i "$T/big/files/xvda1"/?); do
	[ $((i & 0xffffffff)) -gt "$max_ino" ] && max_ino=$((i & 0xffffffff))
done
[ "$agsize" -gt $((4 << 30)) ] && [ "$want" = "181 hello from the VM" ] &&
	[ "$got_dirs" = "./a ./b ./c ./d ./e ./f" ] && [ "$(readlink "$T/big/files/xvda1/lnk")" = hello ] &&
	[ "$max_ino" -ge $((agblocks * 8)) ] &&
	ok "20 GiB XFS (AGs of $((agsize >> 30)) GiB, inodes up to $max_ino): 6 directories, 181 files read" ||
	fail "20 GiB XFS: agsize $agsize, dirs '$got_dirs', contents '$want', inodes up to $max_ino"
"$xbd" detach "$T/big" || fail "detach vmbig"
# hostile inode numbers in the root (a short-form directory): "lnk"
# names inode 2 (in the AG headers, not an inode; the protocol's root
# number): it is left out, never the root; "a" names the root itself:
# the kernel refuses the directory alias, the rest reads
loop=$(losetup -f --show -o $p1 --sizelimit $((20 << 30)) "$big") || skip "no loop devices"
rootino=$(xfs_db -r -c sb -c 'p rootino' "$loop" | awk '{print $3}')
names=$(xfs_db -r -c "inode $rootino" -c 'p u3' "$loop" | sed -n 's/.*list\[\([0-9]*\)\].name = "\(.*\)"/\1 \2/p')
i_lnk=$(echo "$names" | awk '$2 == "lnk" {print $1}')
i_a=$(echo "$names" | awk '$2 == "a" {print $1}')
xfs_db -x -c "inode $rootino" -c "write u3.sfdir3.list[$i_lnk].inumber.i4 2" \
	-c "write u3.sfdir3.list[$i_a].inumber.i4 $rootino" "$loop" >/dev/null || die "xfs_db write"
losetup -d "$loop" && loop=
attach vmbig "$T/big" --files || die "attach vmbig again"
r=$T/big/files/xvda1
timeout 20 ls -la "$r" >"$T/root.ls" 2>&1
awk '{print "  ls: " $1, $2, $NF}' "$T/root.ls"
timeout 20 find "$r" >/dev/null 2>&1
timeout 20 stat "$r/lnk" >/dev/null 2>&1 && [ "$(stat -c %i "$r/lnk")" = "$(stat -c %i "$r")" ] &&
	fail "inode 2 answered as the root"
[ "$(cat "$r/hello" 2>/dev/null)" = "hello from the VM" ] && grep -q ' b$' "$T/root.ls" &&
	mountpoint -q "$T/big" && ok "hostile inode numbers (2, the root): the rest reads ($(grep -c . "$T/root.ls") lines of ls)" ||
	fail "hostile inode numbers: $(head -c 300 "$T/root.ls")"
"$xbd" detach "$T/big" || fail "detach vmbig (hostile)"
rm -f "$big"

# hostile: random bytes over the first AG's inode chunks and directory
# blocks (the first MiBs after the AG headers); each attempt must leave
# the export working
seed=${XBD_TEST_SEED:-$$}
echo "corruption seed $seed (XBD_TEST_SEED=$seed to replay)"
for round in $CORRUPT_ROUNDS; do
	cp --sparse=always "$img" "$T/bad.img"
	# 16 random bytes over 20 of d0's inode cores (rounds 1 and 3) and
	# 20 places of its directory blocks and d0/sub/deeper's (2 and 3)
	python3 - "$T/bad.img" $((seed + round)) $p1 "$T/inodes" "$T/dirblocks" $round <<'PY' || die "corrupting"
import random, sys
r = random.Random(int(sys.argv[2]))
base = int(sys.argv[3])
inodes = [int(l) for l in open(sys.argv[4])]
blocks = [tuple(map(int, l.split())) for l in open(sys.argv[5])]
rnd = int(sys.argv[6]) % 3
offs = [i * 512 + r.randrange(0, 176) for i in r.sample(inodes, 20)] if rnd != 2 else []
for _ in range(20 if rnd != 1 else 0):
    a, b = r.choice(blocks)
    offs.append(r.randrange(a * 512, (b + 1) * 512))
with open(sys.argv[1], "r+b") as f:
    for o in offs:
        f.seek(base + o)
        f.write(bytes(r.randrange(256) for _ in range(16)))
PY
	files_corrupt_round "$round" "$T/bad.img" 25
done
grep -E 'ERROR: AddressSanitizer|runtime error' "$T/attach.log" && fail "sanitizer reports"
finish

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end: `xbd attach --files` shows an NTFS file system of the
# guest as a read-only tree DIR/files/xvda1, parsed by libntfs-3g in a
# confined child.  The VM's disk holds a GPT whose first partition is
# an NTFS made by mkntfs and filled through ntfs-3g (a loop device at
# the partition's offset): nested directories, 2900 small files (2500
# in one directory: more than one reply of the child), a
# 20 MiB file of random bytes, a sparse file, a hard link, symbolic
# links (Interix ones as ntfs-3g writes them, reparse points as Windows
# does), junctions, a DOS 8.3 name, a compressed file, names beyond
# ASCII (one outside the BMP), old and new timestamps; the volume is
# left hibernated (a hiberfil.sys).  The tree's listing (names, types, sizes, mtimes, link
# targets) and every file's sha256 equal the source's; hard links share
# an inode; the sparse file reads its holes as zeros with fewer blocks;
# the system files are hidden; `xbd ls` and `xbd cat VM:xvda1:PATH`
# read the volume; random bytes over the MFT (seeded: SEED=N repeats a
# run) give errors or missing entries, never a crash, and the disk
# files still read; the images are unchanged afterwards.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
requires_prog sfdisk
requires_prog losetup
requires_prog mkntfs ntfs-3g
requires_prog ntfs-3g ntfs-3g
requires_prog python3

src=$T/src
mnt=$T/ntfs
SEED=${SEED-$RANDOM}
loop=
ntfs_cleanup() {
	mountpoint -q "$mnt" 2>/dev/null && umount "$mnt" 2>/dev/null
	[ -n "$loop" ] && losetup -d "$loop" 2>/dev/null
	return 0
}
cleanup_fn ntfs_cleanup

mkdir -p "$src" "$mnt"
python3 - "$src" <<'PY' || die "making the files"
import os, sys
src = sys.argv[1]
# d0: more entries than one reply of the child holds (256 KiB)
for d, n in ((0, 2500), (1, 200), (2, 200)):
    os.makedirs(f"{src}/many/d{d}")
    for f in range(n):
        with open(f"{src}/many/d{d}/f{f:04}.txt", "w") as fh:
            fh.write(f"file {d} {f}\n" * (f % 5))
os.makedirs(f"{src}/a/b/c/d/e")
with open(f"{src}/a/b/c/d/e/deep.txt", "w") as fh:
    fh.write("deep down\n")
with open(f"{src}/h\u00e9llo w\u00f6rld \u2603.txt", "w") as fh:
    fh.write("snowman\n")
with open(f"{src}/emoji \U0001F600.txt", "w") as fh:
    fh.write("outside the BMP\n")
os.makedirs(f"{src}/packed")
with open(f"{src}/packed/seq.txt", "w") as fh:
    fh.write("".join(f"{i}\n" for i in range(300000)))
PY
echo "hello from the VM" >"$src/hello.txt"
head -c $((20 << 20)) /dev/urandom >"$src/big.bin"
ln -s hello.txt "$src/link"
ln -s a/b/c "$src/dirlink"
ln -s /nonexistent/target "$src/dangling"
# made Windows' way on the NTFS side below: a symbolic link and two
# junctions (reparse points), a long name with a DOS 8.3 twin
ln -s a/b/c/d/e/deep.txt "$src/wlink"
ln -s /a/b "$src/junc"
ln -s /.NTFS-3G/D:/x "$src/otherdrive"
echo "long" >"$src/a long file name.txt"
echo "twice" >"$src/h1"
ln "$src/h1" "$src/h2"
: >"$src/empty"
touch -d '2001-02-03 04:05:06.789' "$src/h1"
touch -d '1960-06-07 08:09:10.5' "$src/hello.txt"
touch -d '2099-12-31 23:59:59' "$src/big.bin"

img=$T/disk.img
truncate -s 160M "$img"
# Microsoft basic data
printf 'label: gpt\nstart=2048, size=262144, type=EBD0A0A2-B9E5-4433-87C0-68B6B72699C7\n' |
	sfdisk -q "$img" || die "sfdisk"
loop=$(losetup -f --show -o $((2048 * 512)) --sizelimit $((262144 * 512)) "$img") ||
	skip "no loop devices"
mkntfs -F -Q -q -L guest -p 2048 "$loop" >"$T/mkntfs.log" 2>&1 || die "mkntfs: $(tail -n3 "$T/mkntfs.log")"
ntfs-3g -o compression "$loop" "$mnt" 2>"$T/ntfs3g.log" ||
	skip "ntfs-3g does not mount here: $(head -c 300 "$T/ntfs3g.log")"
# what is written into packed/ is compressed (FILE_ATTR_COMPRESSED)
mkdir "$mnt/packed"
python3 -c 'import os, sys; os.setxattr(sys.argv[1], "system.ntfs_attrib_be", (0x810).to_bytes(4, "big"))' \
	"$mnt/packed" || die "setting the compressed attribute"
cp -a "$src/." "$mnt/" || die "copying into the NTFS"
python3 - "$mnt" <<'PY' || die "making reparse points and a DOS name through ntfs-3g"
import os, struct, sys
m = sys.argv[1]
def reparse(tag, subst, shown, flags=None):
    s, p = subst.encode("utf-16-le"), shown.encode("utf-16-le")
    body = struct.pack("<HHHH", 0, len(s), len(s), len(p))
    if flags is not None:
        body += struct.pack("<I", flags)
    body += s + p
    return struct.pack("<IHH", tag, len(body), 0) + body
for name, isdir, data in (
        ("wlink", False, reparse(0xA000000C, "a\\b\\c\\d\\e\\deep.txt", "deep", 1)),
        ("junc", True, reparse(0xA0000003, "\\??\\C:\\a\\b", "C:\\a\\b")),
        ("otherdrive", True, reparse(0xA0000003, "\\??\\D:\\x", "D:\\x"))):
    os.unlink(f"{m}/{name}")
    if isdir:
        os.mkdir(f"{m}/{name}")
    else:
        open(f"{m}/{name}", "w").close()
    os.setxattr(f"{m}/{name}", "system.ntfs_reparse_data", data)
os.setxattr(f"{m}/a long file name.txt", "system.ntfs_dos_name", b"ALONGF~1.TXT")
PY
# sparse: a seek and a write on both sides (ntfs-3g leaves the hole unallocated)
for d in "$src" "$mnt"; do
	truncate -s 50M "$d/sparse"
	echo "data in the middle" | dd of="$d/sparse" bs=1 seek=$((10 << 20)) conv=notrunc status=none
	touch -d '2010-10-10 10:10:10' "$d/sparse"
done
# hibernated, as Windows leaves it: the tree reads it all the same
# (read-only, nothing replayed), where ntfs-3g refuses to write
for d in "$src" "$mnt"; do
	{ printf HIBR; head -c 8188 /dev/zero; } >"$d/hiberfil.sys"
	touch -d '2020-02-02 02:02:02' "$d/hiberfil.sys"
done
touch -r "$src/many" "$mnt/many"
ntfs_blocks=$(stat -c %b "$mnt/sparse")
packed_blocks=$(stat -c %b "$mnt/packed/seq.txt")
umount "$mnt" || die "umount ntfs-3g"
# (ntfs-3g 2022 falls back to a read-only mount; older ones refuse)
if ntfs-3g "$loop" "$mnt" 2>"$T/ntfs3g.log"; then
	opts=$(awk -v m="$mnt" '$2 == m {print $4}' /proc/mounts)
	umount "$mnt"
else
	opts=refused
fi
grep -qi hibernated "$T/ntfs3g.log" && case ,$opts, in *,ro,*|,refused,) true ;; *) false ;; esac &&
	ok "ntfs-3g sees the volume hibernated ($opts): $(grep -m1 -i hibernated "$T/ntfs3g.log")" ||
	fail "ntfs-3g on the hibernated volume: $opts, $(head -c 300 "$T/ntfs3g.log")"
losetup -d "$loop"
loop=
sum=$(sha256sum <"$img")
echo "making the image: $SECONDS s (ntfs-3g's sparse file: $ntfs_blocks blocks)"

start_sim
vm1_with_xvda "$img"
attach vm1 "$T/mnt" --files || die "attach --files"
tree=$T/mnt/files/xvda1
[ "$(ls "$T/mnt/files")" = xvda1 ] && ok "files/ holds xvda1" || fail "files/ holds '$(ls "$T/mnt/files")'"

# lookups first, with nothing listed yet: the last entry of the big
# directory (in its index allocation), a name outside the BMP
[ "$(cat "$tree/many/d0/f2499.txt")" = "$(cat "$src/many/d0/f2499.txt")" ] &&
	[ "$(cat "$tree/emoji 😀.txt")" = "outside the BMP" ] && ok "lookups before any listing" ||
	fail "lookups before any listing"
stat "$tree/many/d0/F2499.TXT" >/dev/null 2>&1 && fail "a lookup ignored case" ||
	ok "lookups keep case, as ntfs-3g's"

# listing: name, type, size and mtime of files, link targets
listing() {
	(cd "$1" && find . -printf '%p %y %l ' \( -type f -printf '%s %Ts\n' -o -printf '\n' \) |
		LC_ALL=C sort)
}
listing "$src" >"$T/want.ls"
t0=$SECONDS
listing "$tree" >"$T/got.ls"
echo "listing the tree: $((SECONDS - t0)) s"
if cmp -s "$T/want.ls" "$T/got.ls"; then
	ok "listing of $(wc -l <"$T/want.ls") entries equal (names, types, sizes, mtimes, links)"
else
	fail "listing differs: $(diff "$T/want.ls" "$T/got.ls" | head -n 6)"
fi
(cd "$src" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) >"$T/want.sum"
t0=$SECONDS
(cd "$tree" && find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum) >"$T/got.sum"
echo "sha256 of the tree's files: $((SECONDS - t0)) s"
cmp -s "$T/want.sum" "$T/got.sum" && ok "sha256 of all $(wc -l <"$T/want.sum") files equal" ||
	fail "contents differ: $(diff "$T/want.sum" "$T/got.sum" | head -n 4)"
t0=$(date +%s%N)
cat "$tree/big.bin" >/dev/null
echo "reading the 20 MiB file through the tree: $((($(date +%s%N) - t0) / 1000000)) ms"
for f in h1 hello.txt; do
	[ "$(stat -c %y "$tree/$f")" = "$(stat -c %y "$src/$f")" ] &&
		ok "$f: mtime $(stat -c %y "$tree/$f") to the 100 ns" ||
		fail "$f: mtime $(stat -c %y "$tree/$f"), written $(stat -c %y "$src/$f")"
done
[ "$(stat -c %i "$tree/h1")" = "$(stat -c %i "$tree/h2")" ] &&
	[ "$(stat -c %h "$tree/h1")" = 2 ] && ok "hard links share an inode, nlink 2" ||
	fail "hard links: $(stat -c '%i %h' "$tree/h1" "$tree/h2" | xargs)"
[ "$(stat -c %i "$tree")" != "$(stat -c %i "$tree/h1")" ] || fail "the root shares an inode"
[ "$(readlink "$tree/dangling")" = /nonexistent/target ] && [ "$(cat "$tree/link")" = "hello from the VM" ] &&
	ok "symbolic links read as links" || fail "readlink dangling: $(readlink "$tree/dangling")"
[ "$(readlink "$tree/junc")" = /a/b ] && [ "$(cat "$tree/wlink")" = "deep down" ] &&
	ok "a Windows symbolic link and a junction read as links" ||
	fail "reparse points: junc -> $(readlink "$tree/junc"), wlink -> $(readlink "$tree/wlink")"
[ "$(stat -c %h "$tree/a long file name.txt")" = 1 ] && ! ls "$tree" | grep -q "ALONGF" &&
	ok "a DOS 8.3 twin neither listed nor counted as a link" ||
	fail "DOS name: nlink $(stat -c %h "$tree/a long file name.txt"), $(ls "$tree" | grep ALONGF)"
blocks=$(stat -c %b "$tree/sparse")
[ "$blocks" -lt 2048 ] && [ "$blocks" = "$ntfs_blocks" ] &&
	ok "the sparse file keeps its holes ($blocks blocks, as ntfs-3g counts)" ||
	fail "sparse file has $blocks blocks, ntfs-3g $ntfs_blocks"
blocks=$(stat -c %b "$tree/packed/seq.txt")
[ "$blocks" = "$packed_blocks" ] && [ "$blocks" -lt $(($(stat -c %s "$src/packed/seq.txt") / 512)) ] &&
	ok "a compressed file reads (its sha256 above) with $blocks blocks, as ntfs-3g counts" ||
	fail "compressed file: $blocks blocks, ntfs-3g $packed_blocks"
cmp -s <(head -c $((10 << 20)) "$tree/sparse") <(head -c $((10 << 20)) /dev/zero) &&
	ok "its hole reads as zeros" || fail "the hole does not read as zeros"
perms=$(stat -c '%a %u %g' "$tree/hello.txt" "$tree/a" | xargs)
[ "$perms" = "444 0 0 555 0 0" ] && ok "files 0444, directories 0555, owner root" ||
	fail "modes and owners: $perms"
ls -a "$tree" | grep -q '^\$' && fail "system files listed: $(ls -a "$tree" | grep '^\$' | xargs)" ||
	ok "no \$MFT ... \$Extend in the root"
stat "$tree/\$MFT" >/dev/null 2>&1 || stat "$tree/\$Extend" >/dev/null 2>&1 &&
	fail "a system file looked up" || ok "system files not found by name"
if (echo x >>"$tree/hello.txt") 2>/dev/null || touch "$tree/new" 2>/dev/null; then
	fail "the tree took a write"
else
	ok "writes refused"
fi
cmp <(dd if="$img" bs=512 skip=2048 count=262144 status=none) "$T/mnt/xvda1" &&
	ok "xvda1 still the partition's bytes" || fail "xvda1 differs"
"$xbd" detach "$T/mnt" && ok "detach" || fail "detach"
[ "$(sha256sum <"$img")" = "$sum" ] && ok "image unchanged" || fail "image changed"

# without a mount
names=$("$xbd" ls vm1:xvda1:/a/b 2>"$T/err" | awk '{print $NF}' | xargs)
[ "$names" = c ] && ok "xbd ls vm1:xvda1:/a/b" || fail "xbd ls: '$names' $(cat "$T/err")"
[ "$("$xbd" cat vm1:xvda1:/big.bin | sha256sum)" = "$(sha256sum <"$src/big.bin")" ] &&
	ok "xbd cat vm1:xvda1:/big.bin: same bytes" || fail "xbd cat big.bin"
[ "$("$xbd" cat "vm1:xvda1:/héllo wörld ☃.txt")" = snowman ] &&
	ok "xbd cat of a non-ASCII name" || fail "xbd cat of a non-ASCII name"
no_attach_nodes && ok "nothing attached after ls and cat" || fail "ls/cat left nodes"
[ "$(sha256sum <"$img")" = "$sum" ] && ok "image unchanged by ls and cat" || fail "image changed"

# hostile: random bytes over MFT records (over the system files' in
# the last round); each attempt must leave the export working
read -r mft_off rec_size < <(python3 - "$img" <<'PY'
import struct, sys
with open(sys.argv[1], "rb") as f:
    f.seek(2048 * 512)
    b = f.read(512)
bps, spc = struct.unpack_from("<HB", b, 11)
mft_lcn, = struct.unpack_from("<q", b, 0x30)
c = struct.unpack_from("<b", b, 0x40)[0]
rec = c * bps * spc if c > 0 else 1 << -c
print(2048 * 512 + mft_lcn * bps * spc, rec)
PY
) || die "reading the boot sector"
echo "MFT at byte $mft_off, records of $rec_size bytes; SEED=$SEED"
for round in $CORRUPT_ROUNDS; do
	cp --sparse=always "$img" "$T/bad.img"
	# records: the files' (16 on), or in round 3 the system files'
	range=$([ "$round" = 3 ] && echo "0 16" || echo "16 3000")
	python3 - "$T/bad.img" "$mft_off" "$rec_size" $range "$((SEED + round))" <<'PY'
import random, sys
path, mft, rec, first, end, seed = sys.argv[1], *map(int, sys.argv[2:])
r = random.Random(seed)
with open(path, "r+b") as f:
    for _ in range(60 if first else 8):
        f.seek(mft + r.randrange(first, end) * rec + r.randrange(0, rec - 16))
        f.write(bytes(r.randrange(256) for _ in range(r.choice((1, 4, 16)))))
PY
	files_corrupt_round "$round" "$T/bad.img" 60
done
grep -E 'ERROR: AddressSanitizer|runtime error' "$T/attach.log" && fail "sanitizer reports"
finish

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `make demo`: xbd's main job end to end on the simulated Xen.
# Installs what is missing, builds, starts a simulated Xen, creates vm1
# with a partitioned ext4 disk holding known files, attaches the disk in
# dom0 with `xbd attach`, mounts its partition read-only through the FUSE
# file, reads the files, prints the disk's statistics, detaches, and
# ends by imaging the disk with `xbd image` (hashed while read, with a
# report) and cleaning up.
set -euo pipefail
top=$(cd "$(dirname "$0")/.." && pwd)
cd "$top"

step() { printf '\n\033[1m==> %s\033[0m\n' "$*"; }
show() { printf '$ %s\n' "$*"; "$@"; }

if [ "$(id -u)" -ne 0 ]; then
	echo "make demo: run as root (it mounts FUSE and loop filesystems)" >&2
	exit 1
fi
step "installing what is missing"
bash tests/install-deps.sh
step "building"
make -j"$(nproc)" >/dev/null
XBD=$top/build/xbd XBDSH=$top/build/xbdsh

work=$(mktemp -d /tmp/xbd-demo.XXXXXX)
export XBD_SIM_DIR=$work/sim
cleanup() {
	set +e
	mountpoint -q "$work/fs" && umount "$work/fs"
	mountpoint -q "$work/vm1" && "$XBD" detach "$work/vm1"
	[ -e "$XBD_SIM_DIR/pid" ] && "$XBD" sim stop
	rm -rf "$work"
}
trap cleanup EXIT

step "making vm1's disk: 64 MiB, one partition, ext4 with known files"
mkdir -p "$work/files/etc" "$work/files/var/log"
echo "vm1" > "$work/files/etc/hostname"
printf 'Nov 21 12:00:01 vm1 sshd[812]: Accepted publickey for root\n' > "$work/files/var/log/auth.log"
head -c 4M /dev/urandom > "$work/files/data.bin"
truncate -s 64M "$work/vm1.img"
printf 'label: dos\nstart=2048, type=83\n' | sfdisk -q "$work/vm1.img"
mkfs.ext4 -q -F -E offset=$((2048 * 512)) -d "$work/files" "$work/vm1.img" 63M
show sha256sum "$work/vm1.img"
image_sum=$(sha256sum < "$work/vm1.img")

step "starting the simulated Xen and vm1 (its guest connects the disk)"
show "$XBD" sim start
show "$XBD" sim vm create vm1 --disk "$work/vm1.img,xvda"
show "$XBD" sim vm list

step "attaching vm1's disk in dom0, read-only"
mkdir -p "$work/vm1" "$work/fs"
show "$XBD" attach vm1 --mount "$work/vm1" --files
show ls -l "$work/vm1"
show sha256sum "$work/vm1/xvda"
if [ "$(sha256sum < "$work/vm1/xvda")" != "$image_sum" ]; then
	echo "demo: the disk read through xbd differs from the image" >&2
	exit 1
fi

step "mounting the partition through the FUSE file and reading the files"
show mount -o ro,loop "$work/vm1/xvda1" "$work/fs"
show ls -lR "$work/fs" --ignore=lost+found
show cat "$work/fs/etc/hostname" "$work/fs/var/log/auth.log"
show cmp "$work/fs/data.bin" "$work/files/data.bin"
umount "$work/fs"

step "the same files without the kernel: parsed in user space, in a sandbox"
show ls -lR "$work/vm1/files/xvda1" --ignore=lost+found
show diff -r -x lost+found "$work/files" "$work/vm1/files/xvda1"
show "$XBD" cat vm1:/etc/hostname

step "ring statistics for vm1's disks"
show "$XBDSH" stats vm1

step "detaching"
show "$XBD" detach "$work/vm1"

step "imaging vm1's disk, paused for one moment: raw, SHA-256 and MD5 computed while reading, verified"
show "$XBD" image vm1 --disk xvda -o "$work/vm1-evidence.raw" --pause --verify
show cat "$work/vm1-evidence.raw.report.txt"
if [ "$(jq -r .hashes.sha256 "$work/vm1-evidence.raw.report.json")  -" != "$image_sum" ]; then
	echo "demo: the reported SHA-256 is not the disk's" >&2
	exit 1
fi

step "stopping"
show "$XBD" sim stop
if [ "$(sha256sum < "$work/vm1.img")" != "$image_sum" ]; then
	echo "demo: the image changed although it was attached read-only" >&2
	exit 1
fi
echo
echo "demo finished: vm1's disk read through xbd had the image's sha256, the image is unchanged,"
echo "and xbd image's report holds the same SHA-256."

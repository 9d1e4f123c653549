#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Installs what xbd needs to build and test on Debian 12, if missing.
# Used by .ci/run and `make demo`; safe to run again.
set -eu
. "$(dirname "$0")/lib/packages.sh"
pkgs=(
	build-essential pkg-config
	libfuse3-dev fuse3 libxen-dev libreadline-dev libjson-c-dev libblkid-dev
	libssl-dev libewf-dev zlib1g-dev # xbd image: OpenSSL EVP hashes, E01 output, its chunks
	python3-jsonschema xfsprogs btrfs-progs # image report schema; reflinks (--snapshot)
	libseccomp-dev libext2fs-dev # the confined parsers of guest LVM and file systems
	ntfs-3g-dev ntfs-3g        # NTFS trees (libntfs-3g); mkntfs and ntfs-3g in files_ntfs
	libfsxfs-dev libbfio-dev   # the confined parser of guest XFS
	lvm2                       # files_lvm: guest volume groups (activation off)
	xenstore-utils             # xenstore-read/-write/... against the sim
	clang                      # make fuzz: libFuzzer harnesses (tests/fuzz/)
	ewf-tools                  # ewfverify, ewfinfo, ewfexport in the image tests
	e2fsprogs fdisk util-linux # mkfs.ext4, e2fsck, sfdisk, losetup
	fio tmux expect jq python3 python3-prometheus-client procps psmisc
	prometheus                 # promtool check metrics/rules in the xbdsh tests
	debhelper dpkg-dev         # make deb
	qemu-utils                 # qemu-io: QEMU and xbd honour each other's image locks
	qemu-system-x86 cpio kmod  # the real-Xen tier
	xz-utils debian-archive-keyring # its Debian 13 entry: plain modules, signed lists
)
mapfile -t missing < <(missing_packages "${pkgs[@]}")
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]} (run as root)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

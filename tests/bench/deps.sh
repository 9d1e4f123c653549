#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Installs what the benchmarks compare xbd with, if missing (Debian 12):
#   qemu-storage-daemon (its FUSE export)   package qemu-system-common
#   nbdkit (file plugin)                    package nbdkit
#   nbdfuse                                 package libnbd-bin
#   fio, jq, fincore (figures), fuse3       fio jq util-linux-extra fuse3
#   fls; mkfs.ext4, e2fsck; sfdisk; python3 sleuthkit e2fsprogs fdisk python3
#     (the file-system workloads of attach.sh)
#   perf (where the time goes)              linux-perf
# Safe to run again; as non-root it only says what is missing.
set -u
. "$(dirname "$0")/../lib/packages.sh"
pkgs=(qemu-system-common nbdkit libnbd-bin fio jq fuse3 util-linux-extra sleuthkit e2fsprogs fdisk python3 linux-perf)
mapfile -t missing < <(missing_packages "${pkgs[@]}")
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "bench deps: missing packages: ${missing[*]} (run as root)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q >/dev/null
# linux-perf is only for finding where the time goes; the rest is needed
apt-get install -y -q --no-install-recommends "${missing[@]}" >/dev/null && exit 0
needed=()
for p in "${missing[@]}"; do [ "$p" = linux-perf ] || needed+=("$p"); done
[ ${#needed[@]} -eq 0 ] || apt-get install -y -q --no-install-recommends "${needed[@]}"

#!/bin/bash
# Installs what xbd needs to build and test on Debian 12, if missing.
# Used by .ci/run and `make demo`; safe to run again.
set -eu
pkgs=(
	build-essential pkg-config
	libfuse3-dev fuse3 libxen-dev libreadline-dev libjson-c-dev libblkid-dev
	xenstore-utils             # xenstore-read/-write/... against the sim
	e2fsprogs fdisk util-linux # mkfs.ext4, e2fsck, sfdisk, losetup
	fio tmux expect jq python3 python3-prometheus-client procps psmisc
	qemu-system-x86 cpio kmod  # the real-Xen tier
)
missing=()
for p in "${pkgs[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
		missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
	echo "install-deps: missing packages: ${missing[*]} (run as root)" >&2
	exit 1
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

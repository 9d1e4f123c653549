#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Fetches the Debian packages the real-Xen tier boots from and unpacks
# them into a cache (nothing is installed on the host):
#   CACHE/debs/*.deb   what `apt-get download` fetched, reused later
#   CACHE/root/        every package unpacked with `dpkg -x`
#   CACHE/kver         the kernel version (linux-image-amd64's dependency)
# Usage: fetch.sh CACHE XBD_BINARY...   (the xbd binaries name the
# libraries they need; their packages are fetched too, found with ldd).
set -euo pipefail
cache=$1; shift
mkdir -p "$cache/debs" "$cache/root/.unpacked"
cache=$(cd "$cache" && pwd)

say() { echo "xen-tier: $*" >&2; }

# apt-cache needs package lists; a fresh machine may have none yet.
if ! apt-cache show --no-all-versions linux-image-amd64 >/dev/null 2>&1; then
	say "no apt package lists: running apt-get update"
	apt-get update -q >&2
fi

kpkg=$(apt-cache depends linux-image-amd64 |
	awk '$1 == "Depends:" && $2 ~ /^linux-image-6\.1\./ { print $2; exit }')
[ -n "$kpkg" ] || { say "cannot find the kernel package linux-image-amd64 depends on"; exit 1; }

pkgs=(
	"$kpkg" xen-hypervisor-4.17-amd64 xen-utils-4.17 xen-utils-common
	xenstore-utils busybox-static
	libxencall1 libxenevtchn1 libxenforeignmemory1 libxengnttab1
	libxenmisc4.17 libxenstore4 libxentoollog1 libxenhypfs1
	libxendevicemodel1 libxentoolcore1 libyajl2
	fuse3 qemu-system-xen qemu-system-data
)
# libxl starts qemu-system-xen's QEMU as the backend of qdisk disks; the
# libraries in its dependency closure come from packages too, since a
# host with only qemu-system-x86 lacks some (libspice-server1, ...).
pkgs+=($(apt-cache depends --recurse --no-recommends --no-suggests \
	--no-conflicts --no-breaks --no-replaces --no-enhances qemu-system-xen |
	awk '$1 ~ /^lib/ && $1 != "libc6" && $1 != "libgcc-s1" { print $1 }'))
# The packages that hold xbd's own shared libraries, except glibc and
# libgcc (copied from the host, which is the same Debian release).
for lib in $(ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u); do
	real=$(readlink -f "$lib")
	pkg=$(dpkg -S "$lib" 2>/dev/null || dpkg -S "$real" 2>/dev/null ||
		dpkg -S "${real#/usr}" 2>/dev/null || true)
	pkg=${pkg%%:*}
	case "$pkg" in
	'') say "warning: no package owns $lib; it will be copied from the host" ;;
	libc6|libgcc-s1) ;;
	*) pkgs+=("$pkg") ;;
	esac
done
mapfile -t pkgs < <(printf '%s\n' "${pkgs[@]}" | sort -u)

missing=()
for p in "${pkgs[@]}"; do
	compgen -G "$cache/debs/${p}_*.deb" >/dev/null || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	say "downloading ${#missing[@]} packages: ${missing[*]}"
	# A scratch dir: apt-get download leaves partial files on failure.
	tmp=$(mktemp -d "$cache/debs/.dl.XXXXXX")
	# apt drops root to _apt for downloads when that user may write here.
	[ "$(id -u)" -ne 0 ] || chown _apt "$tmp" 2>/dev/null || true
	(cd "$tmp" && apt-get download -q "${missing[@]}" >&2) ||
		{ rm -rf "$tmp"; say "apt-get download failed"; exit 1; }
	mv "$tmp"/*.deb "$cache/debs/"
	rmdir "$tmp"
fi

for p in "${pkgs[@]}"; do
	for deb in "$cache/debs/${p}"_*.deb; do
		stamp=$cache/root/.unpacked/$(basename "$deb")
		[ -e "$stamp" ] && continue
		say "unpacking $(basename "$deb")"
		dpkg -x "$deb" "$cache/root"
		touch "$stamp"
	done
done
kver=${kpkg#linux-image-}
# The package leaves modules.dep to its postinst: make it here, so that
# mkinitrd.sh can ask modprobe for each module's dependencies.
if [ ! -s "$cache/root/lib/modules/$kver/modules.dep.bin" ]; then
	depmod -b "$cache/root" "$kver" ||
		{ say "depmod on the unpacked kernel failed"; exit 1; }
fi
echo "$kver" > "$cache/kver"

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Fetches the Debian packages the real-Xen tier boots from and unpacks
# them into a cache (nothing is installed on the host):
#   CACHE/debs/*.deb   what `apt-get download` fetched, reused later
#   CACHE/root/        every package unpacked with `dpkg -x`
#   CACHE/kver         the kernel version (linux-image-amd64's dependency)
# Usage: fetch.sh CACHE XBD_BINARY...   (the xbd binaries name the
# libraries they need; their packages are fetched too, found with ldd).
# XBD_XEN picks the matrix entry: 4.17 (default: Debian 12, the host's
# own release and apt sources) or 4.20 (Debian 13: a private apt
# configuration and state under CACHE/apt; the host's apt is not
# touched).
set -euo pipefail
cache=$1; shift
xen=${XBD_XEN:-4.17}
mkdir -p "$cache/debs" "$cache/root/.unpacked"
cache=$(cd "$cache" && pwd)

say() { echo "xen-tier: $*" >&2; }

# closure PACKAGE...: the lib* packages these depend on, recursively
closure() {
	apt-cache depends --recurse --no-recommends --no-suggests \
		--no-conflicts --no-breaks --no-replaces --no-enhances "$@" |
		awk '$1 ~ /^lib/ { print $1 }' | sort -u
}

case $xen in
4.17)
	# apt-cache needs package lists; a fresh machine may have none yet.
	if ! apt-cache show --no-all-versions linux-image-amd64 >/dev/null 2>&1; then
		say "no apt package lists: running apt-get update"
		apt-get update -q >&2
	fi ;;
4.20)
	# Debian 13 through apt's own clients, with a configuration, package
	# lists and an (empty) dpkg status of our own; the host's keyring
	# (debian-archive-keyring) checks the release.
	a=$cache/apt
	mkdir -p "$a/lists/partial" "$a/cache/archives/partial" \
		"$a/etc/sources.list.d" "$a/etc/preferences.d"
	[ -e "$a/status" ] || : > "$a/status"
	echo "deb http://deb.debian.org/debian trixie main" > "$a/etc/sources.list"
	cat > "$a/apt.conf" <<-CONF
	Dir::State "$a";
	Dir::State::lists "$a/lists";
	Dir::State::status "$a/status";
	Dir::Cache "$a/cache";
	Dir::Etc::sourcelist "$a/etc/sources.list";
	Dir::Etc::sourceparts "$a/etc/sources.list.d";
	Dir::Etc::preferences "$a/etc/preferences";
	Dir::Etc::preferencesparts "$a/etc/preferences.d";
	APT::Architecture "amd64";
	APT::Architectures { "amd64"; };
	CONF
	export APT_CONFIG=$a/apt.conf
	# lists older than a day are fetched again (security updates)
	if [ -z "$(find "$a/lists" -maxdepth 1 -name '*_Packages*' -mtime -1 2>/dev/null)" ]; then
		say "Debian 13 package lists (private apt state in $a)"
		[ "$(id -u)" -ne 0 ] || chown -R _apt "$a/lists" 2>/dev/null || true
		apt-get update -q >&2 || { say "apt-get update for Debian 13 failed"; exit 1; }
	fi ;;
*) say "XBD_XEN=$xen: the matrix has 4.17 and 4.20"; exit 1 ;;
esac

kpkg=$(apt-cache depends linux-image-amd64 |
	awk '$1 == "Depends:" && $2 ~ /^linux-image-6\.[0-9]+\./ { print $2; exit }')
[ -n "$kpkg" ] || { say "cannot find the kernel package linux-image-amd64 depends on"; exit 1; }

pkgs=(
	"$kpkg" "xen-hypervisor-$xen-amd64" "xen-utils-$xen" xen-utils-common
	xenstore-utils busybox-static fuse3 qemu-system-xen qemu-system-data
)
if [ "$xen" = 4.17 ]; then
	pkgs+=(libxencall1 libxenevtchn1 libxenforeignmemory1 libxengnttab1
		libxenmisc4.17 libxenstore4 libxentoollog1 libxenhypfs1
		libxendevicemodel1 libxentoolcore1 libyajl2)
	# libxl starts qemu-system-xen's QEMU as the backend of qdisk disks;
	# the libraries in its dependency closure come from packages too,
	# since a host with only qemu-system-x86 lacks some (libspice-server1).
	# glibc and libgcc come from the host, which is Debian 12 too.
	pkgs+=($(closure qemu-system-xen | grep -vx 'libc6\|libgcc-s1'))
else
	# Every library of dom0's Debian 13 programs, glibc included.
	pkgs+=($(closure "xen-utils-$xen" xenstore-utils qemu-system-xen fuse3))
fi
# The packages that hold xbd's own shared libraries, except glibc and
# libgcc (copied from the host, which is the same Debian release).  On
# 4.20 they come from the host (xbd is built here, against Debian 12's
# sonames), where Debian 13 has none of the same soname.
[ "$xen" = 4.17 ] || set --
for lib in $([ $# -eq 0 ] || ldd "$@" | awk '$2 == "=>" && $3 ~ /^\// { print $3 }' | sort -u); do
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
# Debian 13 ships everything under /usr (merged /usr): the links a
# Debian 12 tree has, so that lib/modules, bin/busybox ... work alike.
for l in bin sbin lib lib64; do
	[ -e "$cache/root/$l" ] || [ ! -d "$cache/root/usr/$l" ] ||
		ln -s "usr/$l" "$cache/root/$l"
done
kver=${kpkg#linux-image-}
# The package leaves modules.dep to its postinst: make it here, so that
# mkinitrd.sh can ask modprobe for each module's dependencies.
if [ ! -s "$cache/root/lib/modules/$kver/modules.dep.bin" ]; then
	depmod -b "$cache/root" "$kver" ||
		{ say "depmod on the unpacked kernel failed"; exit 1; }
fi
echo "$kver" > "$cache/kver"

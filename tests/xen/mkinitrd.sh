#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds what QEMU boots for the real-Xen tier, from the package cache
# that fetch.sh filled:
#   OUT/xen            the hypervisor, uncompressed (QEMU's multiboot
#                      loader cannot read the gzipped one)
#   OUT/vmlinuz        the kernel (dom0's, and every domU's)
#   OUT/base.cpio.gz   dom0's fixed part: busybox, bash, flock, the Xen
#                      tools and their libraries, kernel modules, the domU
#                      kernel and initramfs; rebuilt when its inputs change
#   OUT/dom0.cpio.gz   base.cpio.gz followed by a second archive with /init,
#                      xbd, xbdsh, their libraries, xbd-randread and the
#                      scenarios (the kernel unpacks concatenated archives
#                      in order)
# Usage: mkinitrd.sh CACHE BUILD OUT SCENARIO.sh...
# XBD_XEN: the matrix entry the cache holds (4.17 or 4.20, see fetch.sh).
set -euo pipefail
cache=$(cd "$1" && pwd); build=$(cd "$2" && pwd); out=$3; shift 3
here=$(cd "$(dirname "$0")" && pwd)
mkdir -p "$out"; out=$(cd "$out" && pwd)
root=$cache/root
kver=$(cat "$cache/kver")
xen=${XBD_XEN:-4.17}
xenbin=usr/lib/xen-$xen/bin
libdir=usr/lib/x86_64-linux-gnu
# Libraries come from the unpacked packages first, then from the host
# (on 4.17 glibc, libgcc and the few base libraries every Debian 12
# has; on 4.20 only what xbd links that Debian 13 has no soname of).
libpath=$root/$libdir:$root/lib/x86_64-linux-gnu
# The loader that resolves them as dom0 will: the unpacked glibc's when
# the cache has one (4.20), else the host's (ldd).
loader=
[ ! -x "$root/$libdir/ld-linux-x86-64.so.2" ] || loader=$root/$libdir/ld-linux-x86-64.so.2

say() { echo "xen-tier: $*" >&2; }

dom0_modules=(xen-evtchn xen-gntdev xen-gntalloc xen-privcmd xenfs
	xen-blkback xen-blkfront loop ext4 fuse)
domU_modules=(xen-blkfront ext4)
xen_bins=(xl xenstored xenconsoled xen-init-dom0 libxl-save-helper
	xenconsole lsevtchn)

# A skeleton root: merged /usr as on Debian 12, busybox for the rest.
skeleton() { # DIR
	local d=$1 applet
	mkdir -p "$d"/{bin,dev,etc,proc,sys,run,tmp,mnt,root,usr/lib,var}
	ln -sfn bin "$d/sbin"
	ln -sfn ../bin "$d/usr/bin"
	ln -sfn ../bin "$d/usr/sbin"
	ln -sfn usr/lib "$d/lib"
	ln -sfn /run "$d/var/run"
	cp "$root/bin/busybox" "$d/bin/busybox"
	for applet in $("$root/bin/busybox" --list); do
		[ -e "$d/bin/$applet" ] || ln -s busybox "$d/bin/$applet"
	done
	printf 'root:x:0:0:root:/root:/bin/sh\n' > "$d/etc/passwd"
	printf 'root:x:0:\n' > "$d/etc/group"
}

# Kernel modules named on the command line, with everything they need.
add_modules() { # DIR MODULE...
	local d=$1 m f; shift
	local mdir=lib/modules/$kver
	mkdir -p "$d/$mdir"
	for m in "$@"; do
		modprobe -d "$root" -S "$kver" --show-depends "$m" |
			awk '$1 == "insmod" { print $2 }'
	done | sort -u | while read -r f; do
		f=${f#"$root/"}; f=${f#./}
		mkdir -p "$d/$(dirname "$f")"
		# Debian 13 compresses modules; busybox's modprobe wants them plain
		case $f in
		*.ko.xz) xz -dc "$root/$f" > "$d/${f%.xz}" ;;
		*) cp "$root/$f" "$d/$f" ;;
		esac
	done
	cp "$root/$mdir"/modules.{order,builtin,builtin.modinfo} "$d/$mdir/"
	depmod -b "$d" "$kver"
}

# Copies binaries' shared libraries (and the loader) into DIR.
add_libs() { # DIR FILE...
	local d=$1 lib; shift
	mkdir -p "$d/$libdir" "$d/lib64"
	list_libs "$@" 2>/dev/null | awk '
		$2 == "=>" && $3 ~ /^\// { print $3 }
		$2 == "=>" && $3 == "not" { print "MISSING " $1 }
		$1 ~ /^\/.*ld-linux/ { print $1 }' | sort -u | while read -r lib; do
		case "$lib" in
		MISSING*) say "warning: ${lib#MISSING } not found for $*" ;;
		*ld-linux*) cp -L "${loader:-$lib}" "$d/lib64/" ;;
		*) cp -L "$lib" "$d/$libdir/" ;;
		esac
	done
}

list_libs() { # FILE...: ldd's lines for each
	local f
	if [ -z "$loader" ]; then
		LD_LIBRARY_PATH=$libpath ldd "$@"
		return
	fi
	for f in "$@"; do
		"$loader" --library-path "$libpath" --list "$f"
	done
}

mkcpio() { # DIR OUT.cpio.gz
	(cd "$1" && find . -mindepth 1 | LC_ALL=C sort |
		cpio --quiet -o -H newc -R 0:0) | gzip -1 > "$2.tmp"
	mv "$2.tmp" "$2"
}

build_domU() { # DIR
	local d=$1
	skeleton "$d"
	add_modules "$d" "${domU_modules[@]}"
	cp "$here/domU-init" "$d/init"
	chmod 755 "$d/init"
	cp "$here/domU-lib.sh" "$d/lib/xbd-domu.sh"
}

build_base() { # DIR
	local d=$1 b bins=()
	skeleton "$d"
	add_modules "$d" "${dom0_modules[@]}"
	mkdir -p "$d/$xenbin" "$d/etc/xen"
	for b in "${xen_bins[@]}"; do
		cp "$root/$xenbin/$b" "$d/$xenbin/"
		bins+=("$root/$xenbin/$b")
	done
	# xenstore-read, -write, ... are links to one binary.
	cp -a "$root"/usr/bin/xenstore* "$d/bin/"
	bins+=("$root/usr/bin/xenstore")
	cp -a "$root/etc/xen/scripts" "$root/etc/xen/xl.conf" "$d/etc/xen/"
	cp -a "$root/bin/fusermount3" "$d/bin/"
	# QEMU, which libxl starts as the backend of a PV domU's qdisk disks
	mkdir -p "$d/usr/libexec"
	cp "$root/usr/libexec/xen-qemu-system-i386" "$d/usr/libexec/"
	bins+=("$root/usr/libexec/xen-qemu-system-i386")
	# libxl gives it -vnc none, and QEMU then wants its keymap
	mkdir -p "$d/usr/share/qemu"
	cp -a "$root/usr/share/qemu/keymaps" "$d/usr/share/qemu/"
	# libxl's block hotplug script needs bash and flock (busybox has
	# neither); the host's are from the same Debian release.
	cp "$(command -v bash)" "$(command -v flock)" "$d/bin/"
	bins+=("$d/bin/bash" "$d/bin/flock" "$root/bin/fusermount3")
	add_libs "$d" "${bins[@]}"
	# glibc loads libgcc_s for pthread_cancel; xl aborts without it.
	if [ -e "$root/$libdir/libgcc_s.so.1" ]; then
		cp -L "$root/$libdir/libgcc_s.so.1" "$d/$libdir/"
	else
		cp -L "$(ldconfig -p | awk '/libgcc_s.so.1 .*x86-64/ { print $NF; exit }')" \
			"$d/$libdir/"
	fi
	mkdir -p "$d/xbd-tests/domU"
	cp "$out/vmlinuz" "$d/xbd-tests/domU/vmlinuz"
	cp "$out/domU.cpio.gz" "$d/xbd-tests/domU/initrd.gz"
}

build_overlay() { # DIR SCENARIO...
	local d=$1; shift
	mkdir -p "$d/bin" "$d/xbd-tests/scenarios"
	cp "$here/dom0-init" "$d/init"
	cp "$here/run-scenarios" "$d/xbd-tests/"
	chmod 755 "$d/init" "$d/xbd-tests/run-scenarios"
	cp "$build/xbd" "$build/xbdsh" "$d/bin/"
	# Static: the busybox domUs of the peer scenarios run it too.
	${CC:-cc} -O2 -static -o "$d/bin/xbd-randread" "$here/randread.c"
	# A qcow2 image for the qdisk scenarios (dom0 has no qemu-img).
	mkdir -p "$d/xbd-tests/data"
	qemu-img create -q -f qcow2 "$d/xbd-tests/data/disk.qcow2" 16M
	add_libs "$d" "$build/xbd" "$build/xbdsh"
	cp "$here/scenarios/lib.sh" "$d/xbd-tests/scenarios/"
	[ $# -eq 0 ] || cp "$@" "$d/xbd-tests/scenarios/"
}

zcat "$root/boot/xen-$xen-amd64.gz" > "$out/xen.tmp" && mv "$out/xen.tmp" "$out/xen"
cp "$root/boot/vmlinuz-$kver" "$out/vmlinuz"

# The fixed part depends only on the packages and on this script.
key=$( (ls "$root/.unpacked"; cat "$0" "$here/domU-init" "$here/domU-lib.sh"; echo "$kver") | sha256sum | cut -c1-16)
if [ "$(cat "$out/base.key" 2>/dev/null)" != "$key" ] || [ ! -s "$out/base.cpio.gz" ]; then
	say "building the dom0 and domU base images"
	rm -rf "$out/domU-root" "$out/base-root"
	build_domU "$out/domU-root"
	mkcpio "$out/domU-root" "$out/domU.cpio.gz"
	build_base "$out/base-root"
	mkcpio "$out/base-root" "$out/base.cpio.gz"
	rm -rf "$out/domU-root" "$out/base-root"
	echo "$key" > "$out/base.key"
fi
rm -rf "$out/overlay-root"
build_overlay "$out/overlay-root" "$@"
mkcpio "$out/overlay-root" "$out/overlay.cpio.gz"
rm -rf "$out/overlay-root"
cat "$out/base.cpio.gz" "$out/overlay.cpio.gz" > "$out/dom0.cpio.gz"

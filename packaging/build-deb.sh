#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Builds the Debian package of xbd without touching the source tree:
# copies the tree (tracked and new files, not build directories) into a
# temporary directory, puts packaging/debian there as debian/, runs
# `dpkg-buildpackage -us -uc -b' and moves the .deb, .buildinfo and
# .changes into OUTDIR (default build/deb).  Before building it checks
# that debian/control's Build-Depends and tests/install-deps.sh agree and
# that debian/changelog's version is the Makefile's XBD_VERSION.
#   packaging/build-deb.sh [OUTDIR]        (or: make deb DEBDIR=OUTDIR)
# DEB_BUILD_OPTIONS=nocheck skips the tests run during the build;
# XBD_DEB_REF=HEAD (or any commit) packages that commit instead of the
# working tree.
set -eu

top=$(cd "$(dirname "$0")/.." && pwd)
out=${1:-$top/build/deb}
mkdir -p "$out"
out=$(cd "$out" && pwd)

die() { echo "build-deb: $*" >&2; exit 1; }

for t in dpkg-buildpackage dpkg-parsechangelog dh; do
	command -v "$t" >/dev/null ||
		die "$t not found (apt-get install dpkg-dev debhelper)"
done

# --- a clean copy of the tree ------------------------------------------
tmp=$(mktemp -d /tmp/xbd-deb.XXXXXX)
trap 'rm -rf "$tmp"' EXIT
src=$tmp/xbd
mkdir "$src"
cd "$top"
if [ -n "${XBD_DEB_REF:-}" ]; then
	git archive --format=tar "$XBD_DEB_REF" | tar -x -C "$src"
elif git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
	# tracked and new files that exist, as the working tree has them
	git ls-files -z --cached --others --exclude-standard |
		while IFS= read -r -d '' f; do [ -f "$f" ] && printf '%s\0' "$f"; done |
		tar -c --null -T - -f - | tar -x -C "$src"
else
	tar -c --exclude='./build' --exclude='./build-*' --exclude='./debian' \
		-f - . | tar -x -C "$src"
fi
rm -rf "$src/debian"
cp -r "$src/packaging/debian" "$src/debian"

# --- consistency checks, on the copy ------------------------------------
deb=$src/debian
upstream=$(sed -n 's/^XBD_VERSION *:= *//p' "$src/Makefile")
version=$(dpkg-parsechangelog -l "$deb/changelog" -S Version)
[ "${version%-*}" = "$upstream" ] ||
	die "debian/changelog says $version but the Makefile's XBD_VERSION is $upstream (add a changelog entry: dch -v $upstream-1)"

# Build-Depends without debhelper-compat and without test-only
# (<!nocheck>) entries: exactly the build packages of install-deps.sh
# (the words before the `xenstore-utils' line, minus build-essential,
# which Debian assumes).
bdeps=$(sed -n '/^Build-Depends:/,/^[A-Z]/p' "$deb/control" | sed '$d' |
	sed 's/^Build-Depends://' | tr ',' '\n' | grep -v '<!nocheck>' |
	sed 's/(.*)//; s/[[:space:]]//g' | grep -v '^$' |
	grep -v '^debhelper-compat$' | sort)
ideps=$(sed -n '/^pkgs=(/,/^)/p' "$src/tests/install-deps.sh" |
	sed '1d;$d; s/#.*//' | sed -n '1,/xenstore-utils/p' |
	tr -s ' \t' '\n' | grep -v -e '^$' -e '^xenstore-utils$' \
	-e '^build-essential$' -e '^fuse3$' | sort)
if [ "$bdeps" != "$ideps" ]; then
	echo "build-deb: debian/control Build-Depends and tests/install-deps.sh disagree:" >&2
	diff <(echo "$bdeps") <(echo "$ideps") | sed -n 's/^</  only in control:/p; s/^>/  only in install-deps.sh:/p' >&2
	exit 1
fi

mv "$src" "$tmp/xbd-$upstream"
src=$tmp/xbd-$upstream

# --- build ---------------------------------------------------------------
cd "$src"
echo "build-deb: building xbd $version in $src"
dpkg-buildpackage -us -uc -b
cd "$tmp"
shopt -s nullglob
files=(xbd*_"$version"_*.deb xbd_"$version"_*.buildinfo xbd_"$version"_*.changes)
[ ${#files[@]} -gt 0 ] || die "dpkg-buildpackage made no package"
mv -f "${files[@]}" "$out"/
for f in "${files[@]}"; do echo "build-deb: $out/$f"; done

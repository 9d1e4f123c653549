# SPDX-License-Identifier: GPL-2.0-or-later
# Debian package checks for the scripts that install what the tests and
# the benchmarks need (sourced, not run).

# missing_packages PKG...: prints, one a line, the packages of PKG that
# are not installed.
missing_packages() {
	local p
	for p in "$@"; do
		dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' ||
			echo "$p"
	done
	return 0
}

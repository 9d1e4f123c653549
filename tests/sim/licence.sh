#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Every source file states its licence (SPDX line near its top), as
# COPYING and debian/copyright say: GPL-2.0-or-later.
. "$(dirname "$0")/../lib/functions.sh"
cd "$XBD_TOP" || die "no source tree at $XBD_TOP"
git rev-parse --git-dir >/dev/null 2>&1 || skip "not a git checkout: cannot list the source files"
missing=$(git ls-files -- '*.c' '*.h' '*.sh' '*.inc' '*.py' Makefile '*.8' |
	while read -r f; do
		head -c 400 "$f" | grep -q 'SPDX-License-Identifier: GPL-2.0-or-later' || echo "$f"
	done)
[ -z "$missing" ] && ok "every source file has the SPDX line" ||
	fail "no SPDX line in: $(echo $missing)"
grep -q "GNU GENERAL PUBLIC LICENSE" COPYING && ok "COPYING holds the GPL" || fail "COPYING"
grep -q "^License: GPL-2.0-or-later" packaging/debian/copyright &&
	ok "debian/copyright says GPL-2.0-or-later" || fail "debian/copyright"
finish

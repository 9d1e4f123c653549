#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The manual pages (packaging/man/xbd.8, xbdsh.8) against the programs:
# they render with man-db and groff without a warning, whatis can parse
# their NAME line, their version is the programs', and every command and
# long option that `xbd --help', `xbd COMMAND --help', `xbdsh --help' and
# `xbdsh help' print is documented, so the pages cannot drift from the code.
. "$(dirname "$0")/../lib/functions.sh"

requires_prog man "package man-db"
requires_prog groff "package groff-base"

B=${XBD_BUILD:?XBD_BUILD must name the build directory}
TOP=${XBD_TOP:-$(cd "$(dirname "$0")/../.." && pwd)}
xbd=$B/xbd
xbdsh=$B/xbdsh
man_dir=$TOP/packaging/man
make_workdir xbd-man
# no simulator or Xen is needed: only help texts are read
export XBD_SIM_DIR=$T/no-sim XBD_RUN_DIR=$T/run HOME=$T
unset XBD_PLATFORM XBD_DEBUG

for page in xbd.8 xbdsh.8; do
	src=$man_dir/$page
	if [ ! -f "$src" ]; then
		fail "$src is missing"
		continue
	fi
	warn=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$src" 2>&1 >"$T/$page.txt")
	if [ -n "$warn" ]; then
		fail "$page: man --warnings says: $warn"
	elif [ ! -s "$T/$page.txt" ]; then
		fail "$page: renders to nothing"
	else
		ok "$page renders without warnings"
	fi
	if command -v lexgrog >/dev/null; then
		if out=$(lexgrog "$src" 2>&1) && [[ $out != *"parse failed"* ]]; then
			ok "$page: whatis can read its NAME line"
		else
			fail "$page: lexgrog: $out"
		fi
	fi
	for sec in NAME SYNOPSIS DESCRIPTION OPTIONS COMMANDS ENVIRONMENT FILES \
		   "EXIT STATUS" EXAMPLES "SEE ALSO"; do
		[ "$page" = xbd.8 ] && [ "$sec" = OPTIONS ] && sec="GLOBAL OPTIONS"
		grep -qx "$sec" "$T/$page.txt" || fail "$page: no $sec section"
	done
done

# `.TH ... "xbd 0.1.0"' must be the version the programs print.
for prog in xbd xbdsh; do
	v=$("$B/$prog" --version 2>&1)
	v=${v##* }
	if grep -q "^\.TH .*\"xbd $v\"" "$man_dir/$prog.8"; then
		ok "$prog.8 is for version $v"
	else
		fail "$prog.8: .TH does not say \"xbd $v\" ($prog --version: $v)"
	fi
done

# documented_option PAGE OPT: OPT (--foo-bar) is in PAGE as \-\-foo\-bar.
documented_option() {
	grep -qF -- "${2//-/\\-}" "$1"
}

# documented_command PAGE NAME: a .SS heading starts with NAME.
documented_command() {
	grep -Eq "^\.SS \"?$2([ \"]|\$)" "$1"
}

# check_options PAGE WHAT HELP-TEXT: every long option in HELP-TEXT.
check_options() {
	local page=$1 what=$2 text=$3 opt n=0
	for opt in $(grep -oE -- '--[a-z][a-z0-9-]*' <<<"$text" | sort -u); do
		n=$((n + 1))
		documented_option "$page" "$opt" ||
			fail "$(basename "$page"): $what: option $opt is not documented"
	done
	echo "   $what: $n options"
}

# xbd: the commands of `xbd --help', then each command's own --help.
help=$("$xbd" --help 2>&1) || fail "xbd --help failed: $help"
cmds=$(sed -nE 's/^  xbd ([a-z][a-z-]*).*/\1/p' <<<"$help" | sort -u)
if [ -z "$cmds" ]; then
	fail "xbd --help lists no commands: $help"
fi
check_options "$man_dir/xbd.8" "xbd --help" "$help"
for c in $cmds; do
	if documented_command "$man_dir/xbd.8" "$c"; then
		ok "xbd.8 documents xbd $c"
	else
		fail "xbd.8 has no .SS section for \`xbd $c' (listed by xbd --help)"
	fi
	# a command without --help says so on stderr; its options are none
	check_options "$man_dir/xbd.8" "xbd $c --help" "$("$xbd" "$c" --help 2>/dev/null)"
done
for env in XBD_SIM_DIR XBD_PLATFORM XBD_DEBUG XENSTORED_PATH XBD_RUN_DIR; do
	grep -q "^\.B $env\$" "$man_dir/xbd.8" || fail "xbd.8: ENVIRONMENT lacks $env"
done
for f in /run/xbd/ /run/xbd\\-sim/; do
	grep -qF ".I $f" "$man_dir/xbd.8" || fail "xbd.8: FILES lacks $f"
done

# xbdsh: options of `xbdsh --help', commands of `xbdsh help'.
help=$("$xbdsh" --help 2>&1) || fail "xbdsh --help failed: $help"
check_options "$man_dir/xbdsh.8" "xbdsh --help" "$help"
help=$("$xbdsh" help 2>&1) || fail "xbdsh help failed: $help"
check_options "$man_dir/xbdsh.8" "xbdsh help" "$help"
cmds=$(sed -nE 's/^  ([a-z]+).*/\1/p' <<<"$help" | sort -u)
[ -z "$cmds" ] && fail "xbdsh help lists no commands: $help"
for c in $cmds; do
	if documented_command "$man_dir/xbdsh.8" "$c"; then
		ok "xbdsh.8 documents $c"
	else
		fail "xbdsh.8 has no .SS section for \`$c' (listed by xbdsh help)"
	fi
done

finish

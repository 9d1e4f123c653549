#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end: Debian's xenstore-utils tools (unmodified libxenstore) against
# the sim's xenstored, started by `xbd sim start`: write, read, ls, list,
# exists, rm, chmod, and watch events seen through xenstore-watch.
. "$(dirname "$0")/../lib/functions.sh"

for t in xenstore-write xenstore-read xenstore-ls xenstore-list \
	 xenstore-exists xenstore-rm xenstore-chmod xenstore-watch; do
	requires_prog "$t" "package xenstore-utils"
done

xbd=${XBD_BUILD:?XBD_BUILD must name the build directory}/xbd
make_workdir xbd-xstools
d=$T
watchers=()

cleanup() {
	local p
	for p in "${watchers[@]}"; do kill "$p" 2>/dev/null; done
	"$xbd" sim stop --dir "$d" >/dev/null 2>&1
}
cleanup_fn cleanup

# expect_fail DESC CMD...: CMD exits non-zero.
expect_fail() {
	local desc=$1
	shift
	if "$@" >/dev/null 2>&1; then fail "$desc: '$*' succeeded"; else ok "$desc"; fi
}

# start_watch FILE N PATH: xenstore-watch -n N PATH in the background,
# output to FILE; returns once the watch has fired its first event.
start_watch() {
	timeout 10 xenstore-watch -n "$2" "$3" >"$1" 2>&1 &
	watchers+=($!)
	wait_for 5 grep -q . "$1"
}

# watch_result FILE WANT DESC: the watcher exits and printed WANT.
watch_result() {
	local pid=${watchers[-1]}
	wait "$pid"
	local rc=$?
	if [ $rc -ne 0 ]; then
		fail "$3: xenstore-watch exited $rc: $(cat "$1")"
	elif [ "$(cat "$1")" != "$2" ]; then
		fail "$3: events '$(tr '\n' ' ' <"$1")', expected '$(echo "$2" | tr '\n' ' ')'"
	else
		ok "$3"
	fi
}

"$xbd" sim start --dir "$d" || die "xbd sim start --dir $d"
wait_for 5 test -S "$d/xenstored.sock" ||
	die "no $d/xenstored.sock after xbd sim start"
export XENSTORED_PATH=$d/xenstored.sock

# Writing, reading, listing.
expect_out "write two nodes" "" xenstore-write /t/a hello /t/b "two words"
expect_out "read one" "hello" xenstore-read /t/a
expect_out "read two" $'hello\ntwo words' xenstore-read /t/a /t/b
expect_out "read with prefix" "/t/a: hello" xenstore-read -p /t/a
expect_fail "read a missing node" xenstore-read /t/missing
expect_out "exists" "" xenstore-exists /t/a
expect_fail "exists, missing" xenstore-exists /t/missing
expect_out "list" $'a\nb' xenstore-list /t
expect_out "list with prefix" $'/t/a\n/t/b' xenstore-list -p /t
expect_fail "list a missing node" xenstore-list /t/missing
expect_out "ls" $'a = "hello"\nb = "two words"' xenstore-ls /t
expect_out "escaped value" 'x\ty' sh -c 'xenstore-write /t/esc "x\\ty" && xenstore-read /t/esc'
expect_out "relative path" "r" sh -c \
	'xenstore-write rel r && xenstore-read /local/domain/0/rel'
root=$(xenstore-list / 2>&1)
if grep -qx tool <<<"$root" && grep -qx local <<<"$root" &&
   grep -qx t <<<"$root"; then
	ok "list / shows tool, local and what we wrote"
else
	fail "list /: $(tr '\n' ' ' <<<"$root")"
fi
expect_fail "invalid path" xenstore-write /t//bad x

# Permissions.
expect_out "chmod" "" xenstore-chmod /t/a r5 b7
if xenstore-ls -p /t | grep -q '^a = "hello".*(r5,b7)$'; then
	ok "ls -p shows the new permissions"
else
	fail "ls -p: $(xenstore-ls -p /t 2>&1 | tr '\n' ' ')"
fi
expect_out "chmod -r reaches the children" "" sh -c \
	'xenstore-write /t/c/d 1 && xenstore-chmod -r /t/c n0 r3'
if xenstore-ls -p /t/c | grep -q '^d = "1".*(n0,r3)$'; then
	ok "recursive chmod"
else
	fail "ls -p after chmod -r: $(xenstore-ls -p /t/c 2>&1 | tr '\n' ' ')"
fi

# Removing.
expect_out "rm" "" xenstore-rm /t/b
expect_out "list after rm" $'a\nesc\nc' xenstore-list /t
expect_out "rm of a missing node under an existing one" "" xenstore-rm /t/b
expect_fail "rm under a missing parent" xenstore-rm /t/missing/x
expect_out "rm -t tidies empty parents" "" sh -c \
	'xenstore-write /tidy/x/y/z 1 && xenstore-rm -t /tidy/x/y/z'
expect_fail "tidied parents are gone" xenstore-exists /tidy

# Watches: the initial firing, then a change below the watched node.
start_watch "$d/w1" 2 /w || fail "xenstore-watch never fired"
xenstore-write /w/x 1
watch_result "$d/w1" $'/w\n/w/x' "watch: initial event and a write"

# Removing a subtree fires the watch set on a node inside it.
start_watch "$d/w2" 2 /w/x || fail "xenstore-watch never fired"
xenstore-rm /w
watch_result "$d/w2" $'/w/x\n/w/x' "watch: rm of the parent"

# Changes elsewhere do not fire; mkdir and chmod do.
start_watch "$d/w3" 3 /m || fail "xenstore-watch never fired"
xenstore-write /elsewhere 1
xenstore-write /m/a 1
xenstore-chmod /m/a n0
watch_result "$d/w3" $'/m\n/m/a\n/m/a' "watch: only changes at or below"

finish

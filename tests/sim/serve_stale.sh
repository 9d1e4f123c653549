#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# After kill -9 of `xbd serve`: `xbd list` shows the disk dead (not
# Connected with a dead PID), a new serve of the same disk removes what
# the killed one left and says so (not "the VM already has this disk"),
# and `xbd detach VM VDEV` clears a dead one.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
start_sim
make_random_image "$T/disk.img" 8
make_random_image "$T/served.img" 8
vm_create vm1 "$T/disk.img,xvda"
be=/local/domain/0/backend/xbd/$DOMID/51728
cleanup_fn eval '"$xbd" detach vm1 xvdb >/dev/null 2>&1'

serve() {
	"$xbd" serve vm1 --image "$T/served.img" --vdev xvdb --timeout 20 2>"$T/serve.err"
}
serve || die "serve: $(cat "$T/serve.err")"
pid=$(xs_read "$be/xbd-pid") || die "no xbd-pid in $be"
kill9 "$pid" serve
list_shows_dead serve xvdb

if serve; then
	grep -q "removed what xbd serve (pid $pid)" "$T/serve.err" &&
		ok "a new serve cleaned up: $(cat "$T/serve.err")" ||
		fail "cleaned silently: $(cat "$T/serve.err")"
else
	fail "a new serve of the same disk: $(cat "$T/serve.err")"
fi
wait_for 10 state_is "$be" 4 && ok "served again, Connected" || fail "not connected again"
"$xbd" list | grep -E "^vm1 .* xvdb .* Connected .* serve " >/dev/null &&
	ok "xbd list: Connected" || fail "list: $("$xbd" list)"

pid=$(xs_read "$be/xbd-pid")
kill9 "$pid" serve
"$xbd" detach vm1 xvdb 2>"$T/err" && ok "detach of a dead serve" ||
	fail "detach of a dead serve: $(cat "$T/err")"
xenstore-exists "$be" 2>/dev/null && fail "$be left" || ok "no backend nodes left"
[ -z "$("$xbd" list)" ] && ok "xbd list: empty" || fail "list: $("$xbd" list)"

# a killed serve --mount leaves a dead FUSE mount: the next serve names
# the command that removes it, and that command does
mkdir -p "$T/mnt"
cleanup_fn eval 'mountpoint -q "$T/mnt" && umount -l "$T/mnt"'
"$xbd" serve vm1 --image "$T/served.img" --vdev xvdb --timeout 20 --mount "$T/mnt" \
	2>"$T/serve.err" || die "serve --mount: $(cat "$T/serve.err")"
pid=$(xs_read "$be/xbd-pid")
kill9 "$pid" serve
if "$xbd" serve vm1 --image "$T/served.img" --vdev xvdb --timeout 20 --mount "$T/mnt" \
	2>"$T/serve.err"; then
	fail "served over a dead mount"
else
	grep -q "dead xbd mount is left there; \`xbd detach $T/mnt\` removes it" "$T/serve.err" &&
		ok "serve over a dead mount names the fix" ||
		fail "serve over a dead mount: $(cat "$T/serve.err")"
fi
"$xbd" detach "$T/mnt" 2>"$T/err" && ! mountpoint -q "$T/mnt" &&
	ok "detach DIR removed the dead mount" || fail "detach DIR: $(cat "$T/err")"
"$xbd" detach vm1 xvdb >/dev/null 2>&1
finish

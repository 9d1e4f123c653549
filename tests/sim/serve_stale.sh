#!/bin/bash
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
finish

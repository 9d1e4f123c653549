#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A killed attach's record names its mount by device number, and the
# kernel hands a freed number to the next FUSE mount: once the dead
# mount is gone, a serve --mount on the same DIR may carry it.  Neither
# `xbd detach DIR` nor a new attach may take that live mount away.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
start_sim
make_random_image "$T/disk.img" 8
make_random_image "$T/served.img" 8
vm1_with_xvda "$T/disk.img"
serve_mounted() { grep -q " $T/mnt .* xbd:vm1:xvdb " /proc/self/mountinfo; }

attach vm1 "$T/mnt" || die "attach"
pid=$(attach_pid) || die "no xbd-pid recorded"
kill9 "$pid" attach
umount -l "$T/mnt" # the user takes the dead mount off by hand
cleanup_fn eval '"$xbd" detach vm1 xvdb >/dev/null 2>&1; mountpoint -q "$T/mnt" && umount -l "$T/mnt"'
"$xbd" serve vm1 --image "$T/served.img" --vdev xvdb --timeout 20 --mount "$T/mnt" \
	2>"$T/serve.err" || die "serve --mount: $(cat "$T/serve.err")"
serve_mounted || die "serve's mount is not on $T/mnt"

"$xbd" detach "$T/mnt" 2>"$T/err"
serve_mounted && ok "detach DIR left serve's live mount alone" ||
	fail "detach DIR unmounted serve's live mount: $(cat "$T/err")"
if "$xbd" attach vm1 --mount "$T/mnt" 2>"$T/err"; then
	fail "attach mounted over serve's mount"
	"$xbd" detach "$T/mnt" >/dev/null 2>&1
else
	ok "attach refused: $(cat "$T/err")"
fi
serve_mounted && ok "serve's mount is still there" || fail "serve's mount is gone"
finish

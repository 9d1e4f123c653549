#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# xbd serve --mount DIR takes DIR as attach does: a mount point is
# refused (a later unmount by path could take the wrong mount), and so
# is a DIR holding files (they would be hidden) unless --nonempty.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
start_sim
make_random_image "$T/disk.img" 8
make_random_image "$T/served.img" 8
vm_create vm1 "$T/disk.img,xvda"
cleanup_fn eval '"$xbd" detach vm1 xvdb >/dev/null 2>&1'
serve_at() {
	"$xbd" serve vm1 --image "$T/served.img" --vdev xvdb --timeout 20 --mount "$@" \
		2>"$T/serve.err"
}

mkdir -p "$T/tmpfs" "$T/full" "$T/empty"
mount -t tmpfs xbdtest "$T/tmpfs" || die "cannot mount a tmpfs"
cleanup_fn umount -l "$T/tmpfs"
echo keep >"$T/tmpfs/file"
if serve_at "$T/tmpfs"; then
	fail "served over a tmpfs mount point"
	"$xbd" detach vm1 xvdb >/dev/null 2>&1
else
	grep -q "already a mount point" "$T/serve.err" && ok "mount point refused" ||
		fail "mount point: $(cat "$T/serve.err")"
fi
[ "$(cat "$T/tmpfs/file")" = keep ] && ok "the tmpfs file is untouched" || fail "tmpfs file"

echo keep >"$T/full/file"
if serve_at "$T/full"; then
	fail "served over a non-empty DIR"
	"$xbd" detach vm1 xvdb >/dev/null 2>&1
else
	grep -q "not empty" "$T/serve.err" && ok "non-empty DIR refused" ||
		fail "non-empty: $(cat "$T/serve.err")"
fi
serve_at "$T/full" --nonempty && [ -e "$T/full/xvdb" ] &&
	ok "--nonempty mounts over the files" || fail "--nonempty: $(cat "$T/serve.err")"
"$xbd" detach vm1 xvdb 2>"$T/err" || fail "detach: $(cat "$T/err")"
wait_for 10 bash -c "! mountpoint -q '$T/full'" && [ "$(cat "$T/full/file")" = keep ] &&
	ok "after detach the files are there again" || fail "files after detach"

(cd "$T" && serve_at empty) && [ -e "$T/empty/xvdb" ] &&
	ok "a relative, empty DIR is served" || fail "relative DIR: $(cat "$T/serve.err")"
finish

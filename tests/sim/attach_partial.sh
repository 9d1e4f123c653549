#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# One disk that cannot be attached (here xvdb, which `xbd serve` serves)
# does not cost the others: `xbd attach VM` attaches xvda, names xvdb on
# stderr with its reason and exits 3; naming it with --disk is an error.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
start_sim
make_random_image "$T/disk.img" 8
make_random_image "$T/served.img" 8
vm1_with_xvda "$T/disk.img"
"$xbd" serve vm1 --image "$T/served.img" --vdev xvdb --timeout 20 2>"$T/serve.err" ||
	die "serve: $(cat "$T/serve.err")"
cleanup_fn eval '"$xbd" detach vm1 xvdb >/dev/null 2>&1'

attach vm1 "$T/mnt" 2>"$T/err"
rc=$?
[ "$rc" = 3 ] && ok "partial attach exits 3" || fail "partial attach: exit $rc: $(cat "$T/err")"
grep -q "xvdb.*served by \`xbd serve\`" "$T/err" && grep -q "skipped xvdb (see above); attached xvda" "$T/err" &&
	ok "xvdb named with its reason: $(tr '\n' '|' <"$T/err")" || fail "stderr: $(cat "$T/err")"
cmp -s "$T/mnt/xvda" "$T/disk.img" && ok "xvda attached" || fail "xvda not attached"
[ ! -e "$T/mnt/xvdb" ] && ok "no xvdb in DIR" || fail "xvdb in DIR"
"$xbd" detach "$T/mnt" || fail "detach"

attach vm1 "$T/mnt2" --disk xvdb 2>"$T/err"
rc=$?
[ "$rc" = 1 ] && ok "--disk xvdb: exit 1: $(tail -n1 "$T/err")" ||
	fail "--disk xvdb: exit $rc: $(cat "$T/err")"
mountpoint -q "$T/mnt2" && fail "--disk xvdb left a mount" || ok "nothing mounted"
wait_for 3 no_attach_nodes && ok "no attach nodes left" || fail "attach nodes left"
finish

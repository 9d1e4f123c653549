#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end: the backend vanishes under `xbd attach`.  While readers
# loop over DIR/xvda, the sim's blkback is killed (SIGKILL: nothing in
# xenstore changes, no more answers on the ring).  Every reader must get
# EIO within 5 seconds, never hang; detach must still take everything
# away.
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
random_vm1 64
attach vm1 "$T/mnt" || die "attach"

# readers: loop until a read fails, then record how it failed and when
for i in 1 2 3; do
	(
		while dd if="$T/mnt/xvda" of=/dev/null bs=$((i * 64))k iflag=direct \
			status=none 2>"$T/reader$i.err"; do :; done
		echo "$EPOCHREALTIME" >"$T/reader$i.done"
	) &
	bg_pids+=($!)
done
sleep 0.5
pid=$(sim_pid "sim blkback") || die "no sim blkback process"
t0=$EPOCHREALTIME
kill -KILL "$pid"
ok "killed the sim blkback (pid $pid)"
for i in 1 2 3; do
	if wait_for 8 test -s "$T/reader$i.done"; then
		ms=$(awk -v a="$t0" -v b="$(cat "$T/reader$i.done")" 'BEGIN{printf "%d", (b-a)*1000}')
		if [ "$ms" -lt 5000 ] && grep -q "Input/output error" "$T/reader$i.err"; then
			ok "reader $i got EIO after $ms ms"
		else
			fail "reader $i: after $ms ms: $(cat "$T/reader$i.err")"
		fi
	else
		fail "reader $i still reading 8 s after the backend died"
	fi
done
dd if="$T/mnt/xvda" of=/dev/null bs=4k count=1 iflag=direct status=none 2>"$T/late.err" &&
	fail "a read after the failure succeeded" ||
	{ grep -q "Input/output error" "$T/late.err" && ok "later reads get EIO at once"; } ||
	fail "later read: $(cat "$T/late.err")"

start=$SECONDS
"$xbd" detach "$T/mnt" && ok "detach after the backend died ($((SECONDS - start)) s)" ||
	fail "detach"
mountpoint -q "$T/mnt" && fail "still mounted" || ok "unmounted"
wait_for 3 no_attach_nodes && ok "no attach nodes left" ||
	fail "nodes left: $(xenstore-ls -f /local/domain/0 | grep -E 'device|vbd/0')"
[ -z "$own_blkback" ] || { wait "$own_blkback" 2>/dev/null; own_blkback=; }
finish

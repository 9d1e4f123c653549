#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# A guest that keeps rewriting its own device/ nodes makes every
# hot-plug transaction that touches them conflict.  `xbd serve --timeout
# 3` must still end within about that long (the retries are bounded in
# number and time, and --timeout covers the whole operation), exit
# non-zero with one clear error line, and leave no node behind.
. "$(dirname "$0")/attach_common.inc"
requires_prog xenstore-write xenstore-utils
start_sim

# vm1 has no blkfront of its own: the loop below is its guest, writing
# through the domain's own xenstore connection
"$xbd" sim vm create vm1 --no-guest >"$T/vm.out" 2>&1 || die "vm create: $(cat "$T/vm.out")"
domid=$(tail -n1 "$T/vm.out")
guest_sock=$sim_dir/xs-dom$domid.sock
wait_for 5 test -S "$guest_sock" || skip "the sim gives vm1 no xenstore socket of its own"
dev=/local/domain/$domid/device/vbd
XENSTORED_PATH=$guest_sock xenstore-write "$dev/99999/x" 1 ||
	skip "vm1's guest cannot write its own device/ nodes here"
# as fast as the wire allows: xs_wire WRITEs on the guest's socket, from
# a few connections at once
for w in 1 2 3; do
python3 - "$guest_sock" "$dev" <<'PY' >"$T/guest$w.log" 2>&1 &
import socket, struct, sys
XS_WRITE = 11
s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
s.connect(sys.argv[1])
vbd = sys.argv[2].encode()
def call(kind, payload):
    s.sendall(struct.pack("<IIII", kind, 0, 0, len(payload)) + payload)
    hdr = b""
    while len(hdr) < 16:
        hdr += s.recv(16 - len(hdr))
    left = struct.unpack("<IIII", hdr)[3]
    while left:
        left -= len(s.recv(left))
call(XS_WRITE, vbd + b"\0")
print("writing", flush=True)
while True:
    call(XS_WRITE, vbd + b"\0")
PY
bg_pids+=($!)
wait_for 10 grep -q writing "$T/guest$w.log" ||
	die "the guest loop did not start: $(cat "$T/guest$w.log")"
done

truncate -s 16M "$T/disk.raw"
start=$EPOCHREALTIME
timeout -k 5 60 "$xbd" serve vm1 --image "$T/disk.raw" --vdev xvdb --timeout 3 \
	>"$T/serve.out" 2>"$T/serve.err"
rc=$?
secs=$(awk -v a="$start" -v b="$EPOCHREALTIME" 'BEGIN{printf "%.2f", b-a}')
kill -KILL "${bg_pids[@]}" 2>/dev/null
echo "serve: exit $rc after $secs s: $(cat "$T/serve.err")"
if awk -v s="$secs" 'BEGIN{exit !(s < 5.5)}'; then
	ok "serve --timeout 3 ended in $secs s"
else
	fail "serve --timeout 3 took $secs s"
fi
if [ $rc -ne 0 ] && [ $rc -ne 124 ] && [ "$(grep -c . "$T/serve.err")" = 1 ] &&
   grep -Eq "^xbd: vm1: xvdb: .*(kept changing|did not connect)" "$T/serve.err"; then
	ok "exit $rc, one line: $(cat "$T/serve.err")"
else
	fail "exit $rc: $(cat "$T/serve.out" "$T/serve.err")"
fi
wait_for 5 eval '[ -z "$(xenstore-list /local/domain/0/backend/xbd/'"$domid"' 2>/dev/null)" ]' &&
	ok "no backend node left" || fail "backend nodes left: $(xenstore-ls /local/domain/0/backend/xbd 2>&1 | head -n5)"
xenstore-read "$dev/51728/backend" >/dev/null 2>&1 &&
	fail "frontend node left: $dev/51728" || ok "no frontend node left"
finish

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end: the simulated guest (`xbd sim guest`, the blkfront of a
# sim VM) and its workloads (`xbd sim vm io`).  The guest connects both
# disks of vm1; sequential and random writes lay a pattern that the image
# file then holds exactly; random and sequential reads verify it; a
# wrong pattern, an unknown disk or VM fail clearly; SIGTERM makes the
# guest close its disks properly (Closed, no ring nodes left).
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
start_sim

a=$T/a.img b=$T/b.img
truncate -s 32M "$a"
truncate -s 8M "$b"
vm_create vm1 "$a,xvda" "$b,xvdb"
wait_for 10 guest_connected "$DOMID" 51712 || fail "xvda did not connect"
wait_for 10 guest_connected "$DOMID" 51728 || fail "xvdb did not connect"
ok "the guest connected both disks"

# io DESC ARGS...: a workload that must succeed
io() { vm_io_ok vm1 "$@"; }
io "sequential write" xvda --rw write --bs 1M --qd 8 --pattern 7
io "random write, 2 s" xvda --rw randwrite --bs 4k --qd 32 --time 2 --pattern 7
io "random read with verification, 2 s" xvda --rw randread --bs 4k --qd 32 --time 2 --verify --pattern 7
io "sequential read with verification" xvda --rw read --bs 256k --qd 4 --verify --pattern 7
io "big requests (indirect)" xvda --rw read --bs 4M --qd 2 --size 16M --verify --pattern 7
io "second disk" xvdb --rw write --bs 64k --qd 1 --size 8M --pattern 9

if python3 - "$a" 7 "$b" 9 <<'PY'
import struct, sys
for name, seed in zip(sys.argv[1::2], sys.argv[2::2]):
    seed = int(seed)
    d = open(name, "rb").read()
    for s in range(len(d) // 512):
        want = b"xbdpat01" + struct.pack("<QQ", seed, s) + bytes([(seed + 7 * s + 1) & 0xff]) * 488
        if d[s * 512:(s + 1) * 512] != want:
            sys.exit("%s: sector %d wrong" % (name, s))
PY
then
	ok "the image files hold exactly the patterns written"
else
	fail "the image files do not hold the patterns"
fi

# refuse DESC WANT ARGS...: a workload that must fail with WANT
refuse() {
	local desc=$1 want=$2 out
	shift 2
	if out=$("$xbd" sim vm io "$@" 2>&1); then
		fail "$desc: succeeded: $out"
	elif [[ "$out" == *"$want"* ]]; then
		ok "$desc: $out"
	else
		fail "$desc: '$out' lacks '$want'"
	fi
}
refuse "wrong pattern" "verification failed" vm1 xvda --rw read --bs 64k --verify --pattern 8
refuse "unknown disk" "no connected disk xvdc" vm1 xvdc --rw read --bs 4k --size 4k
refuse "unknown VM" "nosuchvm: no such domain" nosuchvm xvda --rw read
refuse "block size not a sector multiple" "a multiple of 512" vm1 xvda --rw read --bs 1000

pid=$(sim_pid "sim guest" "XBD_SIM_DOMID=$DOMID") || die "no guest process"
kill -TERM "$pid"
for id in 51712 51728; do
	fe=/local/domain/$DOMID/device/vbd/$id
	if wait_for 10 state_is "$fe" 6; then
		ok "SIGTERM: the guest closed $id"
	else
		fail "SIGTERM: $id is in state $(xs_read "$fe/state")"
	fi
	[ -z "$(xs_read "$fe/ring-ref0")$(xs_read "$fe/event-channel")" ] &&
		ok "no ring nodes left for $id" || fail "ring nodes left for $id"
done
wait_for 5 eval '! kill -0 '"$pid"' 2>/dev/null' && ok "the guest exited" ||
	fail "the guest is still running"
[ ! -e "$sim_dir/guest-$DOMID.sock" ] && ok "its control socket is gone" ||
	fail "the guest's socket is still there"
finish

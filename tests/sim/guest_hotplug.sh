#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# End-to-end: disks hot-plugged into a running sim VM by `xbd serve`
# (backend type xbd) are connected by the VM's simulated guest, carry
# verified data, and are let go when unplugged (`xbd detach VM VDEV`);
# the same name plugged again connects again.  The guest's blkfront meets
# every shape the backend offers: 4096-byte sectors; no persistent
# grants, no indirect descriptors, a one-page ring; and a backend whose
# image fails some sectors (those I/Os fail, the disk stays usable).
. "$(dirname "$0")/attach_common.inc"
need_fuse_root
start_sim
vm_create vm2
ok "vm2 runs with no disks (domain $DOMID)"

# plug DESC VDEV IMAGE [SERVE-ARGS...]: xbd serve, which returns once the
# guest has connected the disk
plug() {
	local desc=$1 vdev=$2 img=$3
	shift 3
	if "$xbd" serve vm2 --image "$img" --vdev "$vdev" --timeout 20 "$@" \
		>"$T/serve.out" 2>&1; then
		ok "$desc: the guest connected $vdev"
		return 0
	fi
	fail "$desc: serve: $(cat "$T/serve.out")"
	return 1
}
unplug() {
	if "$xbd" detach vm2 "$1" 2>"$T/detach.err"; then
		ok "unplugged $1"
	else
		fail "detach vm2 $1: $(cat "$T/detach.err")"
	fi
}
io() { vm_io_ok vm2 "$@"; }
gone() { [ -z "$(xenstore-list "/local/domain/$DOMID/device/vbd" 2>/dev/null)" ]; }

truncate -s 16M "$T/x.img"
plug "default backend" xvdb "$T/x.img" &&
	io "write" xvdb --rw write --bs 128k --qd 8 --pattern 3 &&
	io "randread verified" xvdb --rw randread --bs 4k --qd 32 --time 1 --verify --pattern 3
unplug xvdb
wait_for 5 gone && ok "the guest let xvdb go, no nodes left" || fail "xvdb nodes left"

plug "plugged again" xvdb "$T/x.img" &&
	io "read verified after re-plug" xvdb --rw read --bs 1M --qd 2 --verify --pattern 3
unplug xvdb

truncate -s 16M "$T/y.img"
plug "4096-byte sectors" xvdc "$T/y.img" --sector-size 4096 &&
	io "write" xvdc --rw randwrite --bs 4k --qd 16 --time 1 --pattern 4 &&
	refuse_out=$("$xbd" sim vm io vm2 xvdc --rw read --bs 512 --size 4k 2>&1)
[ -n "${refuse_out:-}" ] && ok "512-byte I/O refused on a 4096-byte disk" ||
	fail "512-byte I/O on a 4096-byte disk was accepted"
unplug xvdc

plug "plain backend" xvdb "$T/x.img" --no-persistent --indirect-segments 0 --max-ring-order 0 &&
	io "big reads split into 11-segment requests" xvdb --rw read --bs 4M --qd 4 --verify --pattern 3 &&
	io "random writes" xvdb --rw randwrite --bs 8k --qd 64 --time 1 --pattern 3
unplug xvdb

plug "failing sectors" xvdb "$T/x.img" --inject-errors 2048-2055 &&
	{
		out=$("$xbd" sim vm io vm2 xvdb --rw read --bs 4k --size 2M 2>&1) &&
			fail "reading failing sectors succeeded: $out" ||
			ok "reading failing sectors fails: $out"
		io "the rest of the disk still reads" xvdb --rw read --bs 4k --size 1M --verify --pattern 3
	}
unplug xvdb
wait_for 5 gone && ok "no device nodes left" || fail "device nodes left"
pid=$(sim_pid "sim guest" "XBD_SIM_DOMID=$DOMID") && ok "the guest is still running" ||
	fail "the guest died"
finish

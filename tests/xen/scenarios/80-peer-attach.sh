#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The kernel as a peer of `xbd attach`, in one boot: a running PV domU's
# disk (phy: on a loop device, writable in the domU) is read in dom0
# through dom0's own kernel blkfront (a second, read-only blkback
# instance, `xl block-attach 0`, as /dev/xvdf) and through `xbd attach`
# (DIR/xvda).  Both read the disk's exact bytes.  dd bs=1M, dd bs=4k,
# sha256sum and random 4 KiB O_DIRECT reads (xbd-randread, one process)
# are timed on each, alternated, over rounds, every run cold; the
# medians and xbd's speed relative to the kernel's are printed.  The
# figures are emulated (TCG): only the ratios mean something.
# Knobs: XBD_PEER_MB (32), XBD_PEER_ROUNDS (3), XBD_PEER_RAND (1000).
# timeout: 600
. "$(dirname "$0")/lib.sh"

mib=1048576
size_mb=${XBD_PEER_MB:-32}
rounds=${XBD_PEER_ROUNDS:-3}
nrand=${XBD_PEER_RAND:-1000}
kdev=/dev/xvdf
img=$W/disk.img
times=$W/times

dd if=/dev/urandom of="$img" bs=$mib count="$size_mb" 2>/dev/null || fail "cannot make $img"
want=$(sha256sum < "$img" | cut -d' ' -f1)
loop_attach loop "$img"
cat > "$W/job.sh" <<'JOB'
. /lib/xbd-domu.sh
wait_dev /dev/xvda || exit 1
report ready 1
sleep 3600
JOB
domu_start vm1 --disk "phy:$loop,xvda,w" --script "$W/job.sh"
domu_wait vm1 '^XBD-DOMU RESULT ready' 90 >/dev/null

# Xen's `block` hotplug script refuses a second instance of a device a
# guest has writable ("mounted read-write in a guest domain"); this one
# only tells blkback which device to open, as `block` does after its
# checks.  libxl runs it with the backend's xenstore path.
cat > "$W/block-peer" <<'SCRIPT'
#!/bin/sh
[ "$1" = add ] || exit 0
dev=$(xenstore-read "$XENBUS_PATH/params") || exit 1
mm=$(stat -L -c %t:%T "$dev") || exit 1
xenstore-write "$XENBUS_PATH/physical-device" "$mm" \
	"$XENBUS_PATH/physical-device-path" "$dev"
SCRIPT
chmod 755 "$W/block-peer"
[ ! -e $kdev ] || fail "$kdev exists before the kernel peer is attached"
xl block-attach 0 "format=raw,vdev=${kdev#/dev/},access=ro,script=$W/block-peer,target=$loop" ||
	fail "xl block-attach 0 of $loop (read-only, private hotplug script) failed"
on_exit "xl block-detach 0 ${kdev#/dev/} >/dev/null 2>&1"
wait_for 30 test -b $kdev || fail "no $kdev in dom0 30 s after xl block-attach 0"

mkdir -p "$W/mnt"
on_exit "xbd detach $W/mnt >/dev/null 2>&1"
XBD_ATTACH_LOG=$W/attach.log xbd attach vm1 --mount "$W/mnt" || {
	cat "$W/attach.log" 2>/dev/null
	fail "xbd attach vm1 failed"
}
xdev=$W/mnt/xvda

# run WORKLOAD PEER FILE: one cold, timed run, its seconds in $times.
run() {
	local w=$1 peer=$2 f=$3 t secs out
	drop_caches
	t=$EPOCHREALTIME
	case $w in
	dd-1M) dd if="$f" of=/dev/null bs=1M 2>/dev/null || fail "dd bs=1M of $f failed" ;;
	dd-4k) dd if="$f" of=/dev/null bs=4k 2>/dev/null || fail "dd bs=4k of $f failed" ;;
	sha256)
		out=$(sha256sum < "$f" | cut -d' ' -f1)
		[ "$out" = "$want" ] || fail "sha256sum of $f ($peer): $out, the disk has $want" ;;
	rand-4k)
		out=$(xbd-randread "$f" "$nrand") || fail "xbd-randread $f failed" ;;
	esac
	secs=$(awk -v a="$t" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.3f", b - a }')
	# randread times its own reads, without its exec and open
	[ "$w" != rand-4k ] || secs=${out#* }
	echo "$w $peer $secs" >> "$times"
	echo "round $r: $w $peer ${secs}s"
}

: > "$times"
for ((r = 1; r <= rounds; r++)); do
	for w in dd-1M dd-4k sha256 rand-4k; do
		# who goes first alternates from round to round
		if ((r % 2)); then
			run $w kernel $kdev; run $w xbd "$xdev"
		else
			run $w xbd "$xdev"; run $w kernel $kdev
		fi
	done
done
domu_alive vm1 || fail "the domU died while its disk was read"

echo "XBD-PEER attach: $size_mb MiB, $rounds rounds, $nrand random reads;" \
	"ratio = xbd attach's speed / dom0's kernel blkfront's (medians)"
peer_table "$times" kernel xbd | sed 's/^/XBD-PEER attach: /'
# the single runs, in order: how much the emulation wandered
sed 's/^/XBD-PEER attach run: /' "$times"

xl block-detach 0 ${kdev#/dev/} || fail "xl block-detach 0 ${kdev#/dev/} failed"
wait_for 15 eval "[ ! -e $kdev ]" || fail "$kdev is still there after xl block-detach"
# (after the kernel peer's nodes went: this checks backend/vbd/0 is empty)
detach_clean "$W/mnt" "$loop" "$want"

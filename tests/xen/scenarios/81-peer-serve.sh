#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The kernel as a peer of `xbd serve`, in one boot: a PV domU has one
# disk served by the kernel's blkback (phy: on a loop device, xvda) and
# one hot-plugged by `xbd serve` from a raw image (xvdb), both of the
# same size on dom0's tmpfs.  The domU's kernel blkfront writes a
# pattern to each with dd bs=1M conv=fsync, and reads each with dd
# bs=1M, dd bs=4k, sha256sum and random 4 KiB O_DIRECT reads
# (xbd-randread, one process), alternated, over rounds, every read cold.
# Both disks must end up holding the pattern; the medians and xbd's
# speed relative to blkback's are printed.  Emulated (TCG): only the
# ratios mean something.
# Knobs: XBD_PEER_MB (32), XBD_PEER_ROUNDS (3), XBD_PEER_RAND (500: a
# random read takes ~5 ms in an emulated 1-vCPU domU).
# timeout: 600
. "$(dirname "$0")/lib.sh"

mib=1048576
size_mb=${XBD_PEER_MB:-32}
rounds=${XBD_PEER_ROUNDS:-3}
nrand=${XBD_PEER_RAND:-500}
kimg=$W/blkback.img
ximg=$W/served.img
serve_log=$W/serve.log
times=$W/times

# Sparse: the domU fills them.
truncate -s $((size_mb * mib)) "$kimg" "$ximg" || fail "cannot make the images"
loop_attach loop "$kimg"

mkdir -p "$W/job"
cp /bin/xbd-randread "$W/job/randread"
cat > "$W/job/run.sh" <<JOB
size_mb=$size_mb rounds=$rounds nrand=$nrand
JOB
cat >> "$W/job/run.sh" <<'JOB'
. /lib/xbd-domu.sh
wait_dev /dev/xvda || exit 1
wait_dev /dev/xvdb 120 || exit 1
# The pattern, in the domU's memory: 1 MiB of text, repeated.
yes XBD-PEER-PATTERN | head -c 1048576 > /tmp/mib || exit 2
i=0
while [ $i -lt $size_mb ]; do cat /tmp/mib; i=$((i + 1)); done > /tmp/pattern
rm /tmp/mib
want=$(sha256sum < /tmp/pattern | cut -d' ' -f1)
report pattern "$want"
up() { cut -d' ' -f1 /proc/uptime; }
# run WORKLOAD PEER DEV: one timed run; reads start cold
run() {
	sync
	echo 7 > /proc/sys/vm/drop_caches # 4: log it once only
	t=$(up)
	case $1 in
	write-1M) dd if=/tmp/pattern of=$3 bs=1048576 conv=fsync 2>/dev/null || exit 3 ;;
	dd-1M) dd if=$3 of=/dev/null bs=1048576 2>/dev/null || exit 4 ;;
	dd-4k) dd if=$3 of=/dev/null bs=4096 2>/dev/null || exit 5 ;;
	sha256)
		sum=$(sha256sum < $3 | cut -d' ' -f1)
		[ "$sum" = "$want" ] || { echo "sha256 of $3 ($2): $sum, not $want"; exit 6; } ;;
	rand-4k) out=$(./randread $3 $nrand) || exit 7 ;;
	esac
	secs=$(awk -v a="$t" -v b="$(up)" 'BEGIN { printf "%.2f", b - a }')
	[ "$1" != rand-4k ] || secs=${out#* }
	report time "$1 $2 $secs"
}
r=1
while [ $r -le $rounds ]; do
	for w in write-1M dd-1M dd-4k sha256 rand-4k; do
		if [ $((r % 2)) = 1 ]; then
			run $w blkback /dev/xvda; run $w xbd /dev/xvdb
		else
			run $w xbd /dev/xvdb; run $w blkback /dev/xvda
		fi
	done
	r=$((r + 1))
done
report done 1
# dom0 detaches xvdb now; blkfront must let it go.
i=0
while [ -b /dev/xvdb ]; do
	i=$((i + 1))
	[ $i -le 300 ] || { report gone no; exit 8; }
	sleep 0.2
done
report gone yes
JOB

domu_start vm1 --disk "phy:$loop,xvda,w" --job "$W/job" --memory 256
on_failure xbd_diag "$serve_log" vm1
domu_wait vm1 '^XBD-DOMU BOOTED' 120 >/dev/null
xbd serve vm1 --image "$ximg" --vdev xvdb --log "$serve_log" ||
	fail "xbd serve vm1 --image $ximg --vdev xvdb exited $?"
on_exit "xbd detach vm1 xvdb >/dev/null 2>&1"

domu_wait vm1 '^XBD-DOMU RESULT done' 500 >/dev/null
xbd detach vm1 xvdb || fail "xbd detach vm1 xvdb exited $?"
domu_wait vm1 '^XBD-DOMU RESULT gone' 60 >/dev/null
[ "$(domu_result vm1 gone)" = yes ] || fail "xvdb is still in the domU after xbd detach"
domu_wait_exit vm1 60

want=$(domu_result vm1 pattern)
for f in "$kimg" "$ximg"; do
	got=$(sha256sum < "$f" | cut -d' ' -f1)
	[ "$got" = "$want" ] || fail "$f does not hold the pattern the domU wrote ($got, not $want)"
done

tr -d '\r' < "$(domu_console vm1)" | sed -n 's/^XBD-DOMU RESULT time //p' > "$times"
[ "$(wc -l < "$times")" = $((rounds * 10)) ] ||
	fail "the domU reported $(wc -l < "$times") timed runs, not $((rounds * 10))"
echo "XBD-PEER serve: $size_mb MiB, $rounds rounds, $nrand random reads, in the domU;" \
	"ratio = xbd serve's speed / kernel blkback's (medians)"
peer_table "$times" blkback xbd | sed 's/^/XBD-PEER serve: /'
# the single runs, in order: how much the emulation wandered
sed 's/^/XBD-PEER serve run: /' "$times"

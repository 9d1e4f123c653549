#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Multi-queue, multi-page rings as Linux's blkfront lays them out: a PV
# domU with 2 vCPUs whose blkfront may use 4-page rings
# (xen_blkfront.max_ring_page_order=2) writes ring-page-order once in its
# device directory and ring-ref0..3 and event-channel in queue-0/ and
# queue-1/.  xbdsh must map such a ring of a kernel-blkback disk (xvda),
# and xbd serve must connect such a frontend (xvdb) and serve it.
# timeout: 240
. "$(dirname "$0")/lib.sh"

mib=1048576
img=$W/blkback.img
served=$W/served.img
serve_log=$W/serve.log
problems=()
problem() { # REASON: a failed check; the scenario goes on and fails at the end
	echo "PROBLEM: $*"
	problems+=("$*")
}

dd if=/dev/urandom of="$img" bs=$mib count=16 2>/dev/null || fail "cannot make $img"
truncate -s $((64 * mib)) "$served" || fail "cannot make $served"
loop_attach loop "$img"

cat > "$W/job.sh" <<'JOB'
. /lib/xbd-domu.sh
wait_dev /dev/xvda || exit 1
report params "$(cat /sys/module/xen_blkfront/parameters/max_ring_page_order) $(ls /sys/block/xvda/mq | wc -l)"
# Keep xvda's ring busy for xbdsh (for a minute or two at most).
( i=0; while [ $i -lt 600 ] && [ ! -e /tmp/stop ]; do
	dd if=/dev/xvda of=/dev/null bs=65536 count=64 iflag=direct 2>/dev/null
	i=$((i + 1)); sleep 0.1; done ) &
reader=$!
if wait_dev /dev/xvdb 120; then
	report xvdb-queues "$(ls /sys/block/xvdb/mq | wc -l)"
	yes XBD-MULTIQUEUE | head -c 8388608 > /tmp/pat
	dd if=/tmp/pat of=/dev/xvdb bs=1048576 oflag=direct conv=fsync 2>/dev/null
	report xvdb-write $?
	report xvdb-read "$(dd if=/dev/xvdb bs=1048576 count=8 iflag=direct 2>/dev/null | sha256sum | cut -d' ' -f1)"
	report xvdb-written 1
	i=0
	while [ -b /dev/xvdb ] && [ $i -lt 150 ]; do sleep 0.2; i=$((i + 1)); done
fi
touch /tmp/stop
wait $reader
report done 1
JOB
# The kernel command line reaches blkfront through modprobe; the last
# "extra" of the configuration is the one xl uses.
domu_start vm1 --disk "phy:$loop,xvda,r" --script "$W/job.sh" --cfg 'vcpus = 2' \
	--cfg "extra = 'console=hvc0 panic=-1 quiet cryptomgr.notests xen_blkfront.max_ring_page_order=2'" --memory 256
on_failure xbd_diag "$serve_log" vm1
domid=$(xl domid vm1)
domu_wait vm1 '^XBD-DOMU RESULT params ' 120 >/dev/null
read -r order queues <<< "$(domu_result vm1 params)"
[ "$order" = 2 ] && [ "$queues" = 2 ] ||
	fail "setup: the domU's blkfront has max_ring_page_order ${order:-?} and ${queues:-?} queues, not 2 and 2"

# --- xvda, kernel blkback: xbdsh maps queue 0's 4-page ring ---------
fe=/local/domain/$domid/device/vbd/51712
[ "$(xenstore-read $fe/ring-page-order 2>/dev/null)" = 2 ] &&
	xenstore-exists $fe/queue-0/ring-ref3 && ! xenstore-exists $fe/queue-0/ring-page-order ||
	fail "setup: xvda's frontend is not laid out as expected: $(xenstore-ls $fe | tr -s ' \n' ' ' | head -c 400)"
sleep 1
json=$(timeout 30 xbdsh stats vm1 --json) || fail "xbdsh stats vm1 --json exited $?"
disk=$(json_disk "$json" xvda)
ring=$(json_obj "$disk" ring)
echo "xvda (blkback, 2 queues x 4 pages): ${ring:-no ring} note: $(json_val "$disk" note)"
if [ -z "$ring" ]; then
	echo "xvda's frontend, as Linux's blkfront wrote it:"
	xenstore-ls -f $fe | grep -E '(ring-page-order|queues|ring-ref[0-9]*|event-channel) ' | grep -v 'ring-ref[1-9]'
	problem "xbdsh shows no ring for a blkback disk with 2 queues of 4-page rings (note: $(json_val "$disk" note))"
elif [ "$(json_val "$ring" nr_ents)" != 128 ]; then
	problem "xbdsh shows a $(json_val "$ring" nr_ents)-entry ring for xvda, not the 128 entries of a 4-page ring"
fi

# --- xvdb, xbd serve: a frontend with 2 queues x 4 pages -------------
if timeout 60 xbd serve vm1 --image "$served" --vdev xvdb --log "$serve_log" 2> "$W/serve.err"; then
	on_exit "xbd detach vm1 xvdb >/dev/null 2>&1"
	domu_wait vm1 '^XBD-DOMU RESULT xvdb-written ' 120 >/dev/null
	echo "xvdb: the domU used $(domu_result vm1 xvdb-queues) queues"
	json=$(xbdsh stats vm1 --json) || fail "xbdsh stats vm1 --json exited $?"
	feat=$(json_obj "$(json_disk "$json" xvdb)" features)
	echo "xvdb features: $feat"
	[ "$(json_val "$feat" ring_pages)" = 4 ] ||
		problem "xbd serves xvdb with $(json_val "$feat" ring_pages)-page rings, not the 4 pages the domU asked for"
	pat=$(yes XBD-MULTIQUEUE | head -c $((8 * mib)) | sha256sum | cut -d' ' -f1)
	[ "$(domu_result vm1 xvdb-write)" = 0 ] || problem "the domU's write to xvdb failed"
	[ "$(domu_result vm1 xvdb-read)" = "$pat" ] || problem "the domU read back other bytes from xvdb"
	[ "$(head -c $((8 * mib)) "$served" | sha256sum | cut -d' ' -f1)" = "$pat" ] ||
		problem "the domU's 8 MiB are not in the served image"
	xbd detach vm1 xvdb || problem "xbd detach vm1 xvdb exited $?"
	domu_wait_exit vm1 90
else
	rc=$?
	cat "$W/serve.err"
	problem "xbd serve could not connect a blkfront with 2 queues of 4-page rings (exit $rc: $(head -n1 "$W/serve.err"))"
fi
! xenstore-exists /local/domain/0/backend/xbd || problem "backend/xbd is still in xenstore"
! xenstore-exists /local/domain/$domid/device/vbd/51728 2>/dev/null || problem "vm1's device/vbd/51728 is still in xenstore"

[ ${#problems[@]} -eq 0 ] || fail "$(IFS=';'; echo "${problems[*]}" | sed 's/;/; /g')"

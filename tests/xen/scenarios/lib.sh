# SPDX-License-Identifier: GPL-2.0-or-later
# Helpers for real-Xen scenarios (bash, run in dom0 by run-scenarios).
# A scenario starts with:
#     . "$(dirname "$0")/lib.sh"
# and ends with exit 0 (pass); fail/skip end it early.  $W is a fresh
# work directory on /tmp.  Cleanups registered with on_exit run in
# reverse order however the scenario ends.
set -u

XBD_TESTS=${XBD_TESTS:-/xbd-tests}
XBD_CONSOLE_DIR=${XBD_CONSOLE_DIR:-/var/log/xen/console}
W=$(mktemp -d "/tmp/${XBD_SCENARIO:-scenario}.XXXXXX")

_cleanups=()
on_exit() { # COMMAND...: run at exit (as one string, through eval)
	_cleanups+=("$*")
}
_run_cleanups() {
	local i
	for ((i = ${#_cleanups[@]} - 1; i >= 0; i--)); do
		eval "${_cleanups[i]}" || true
	done
}
trap _run_cleanups EXIT
# Registered first, so it runs last: dom0's tmpfs is its memory, and
# the images of earlier scenarios left there ran Xen 4.20's dom0 (a
# bigger initramfs) out of it.  Never through a mount left behind.
on_exit "grep -q ' $W/' /proc/mounts || rm -rf '$W'"

_result() { # WORD REASON...
	echo "$1: ${*:2}" >&2
	[ -z "${XBD_RESULT:-}" ] || echo "${*:2}" > "$XBD_RESULT"
}
fail() { _result FAIL "$@"; exit 1; }
skip() { _result SKIP "$@"; exit 77; }

# check DESCRIPTION COMMAND...: runs COMMAND; fails the scenario with
# DESCRIPTION if it fails.
check() {
	local what=$1; shift
	"$@" || fail "$what"
}

uptime_s() { cut -d' ' -f1 /proc/uptime; }
since_s() { # T0 from uptime_s: seconds since then
	awk -v a="$1" -v b="$(uptime_s)" 'BEGIN { printf "%.1f", b - a }'
}

# wait_for SECONDS COMMAND...: retries COMMAND every 0.2 s; 1 on timeout.
wait_for() {
	local secs=$1 i=0; shift
	until "$@"; do
		i=$((i + 1))
		[ $i -le $((secs * 5)) ] || return 1
		sleep 0.2
	done
}

# mbr_one_partition FILE MIB: FILE, MIB MiB of zeros, with an MBR whose
# one Linux partition runs from sector 2048 to the end, written by hand
# (dom0 has no sfdisk): entry at byte 446, signature at 510.
mbr_one_partition() {
	local entry
	dd if=/dev/zero of="$1" bs=1M count="$2" 2>/dev/null || return 1
	le32() { printf '\\x%02x\\x%02x\\x%02x\\x%02x' $(($1 & 255)) $(($1 >> 8 & 255)) \
		$(($1 >> 16 & 255)) $(($1 >> 24 & 255)); }
	entry="\\x00\\x00\\x00\\x00\\x83\\x00\\x00\\x00$(le32 2048)$(le32 $(($2 * 2048 - 2048)))"
	printf "$entry" | dd of="$1" bs=1 seek=446 conv=notrunc 2>/dev/null &&
		printf '\x55\xaa' | dd of="$1" bs=1 seek=510 conv=notrunc 2>/dev/null
}

# loop_attach VAR FILE [ro]: sets VAR to a loop device now backed by
# FILE; detached at exit.  (Not in $(...): on_exit must run here.)
loop_attach() {
	local dev
	dev=$(losetup -f) || fail "no free loop device"
	losetup ${3:+-r} "$dev" "$2" || fail "losetup $dev $2"
	on_exit "losetup -d $dev"
	printf -v "$1" '%s' "$dev"
}

# detach_clean DIR DISK SHA256: `xbd detach DIR` of an attach to a
# blkback disk unmounts DIR, leaves no node of dom0's second backend
# instance or of xbd's frontend, and DISK still hashes to SHA256.
detach_clean() {
	xbd detach "$1" || fail "xbd detach failed"
	grep -q " $1 " /proc/mounts && fail "still mounted after detach"
	[ -z "$(xenstore-list /local/domain/0/backend/vbd/0 2>/dev/null)" ] ||
		fail "backend nodes left: $(xenstore-ls -f /local/domain/0/backend/vbd/0)"
	xenstore-exists /local/domain/0/device/xbd && fail "frontend nodes left"
	[ "$(sha256sum < "$2" | cut -d' ' -f1)" = "$3" ] || fail "the disk changed"
}

# --- PV domUs -------------------------------------------------------
# The domU runs the same kernel as dom0 and a busybox initramfs
# (tests/xen/domU-init); a job directory is appended to it as /job, and
# its run.sh runs once blkfront is loaded.  `. /lib/xbd-domu.sh` in the
# job gives wait_dev and report (see tests/xen/domU-lib.sh).

domu_console() { # NAME: its console log, written by xenconsoled
	echo "$XBD_CONSOLE_DIR/guest-$1.log"
}

domu_alive() { # NAME
	xl domid "$1" >/dev/null 2>&1
}

# domu_start NAME [--disk XL-DISK-SPEC]... [--job DIR | --script FILE]
#            [--memory MB] [--cfg 'xl line']...
# Creates and boots the domU; it is destroyed at exit.  Without --disk
# it has no disks (a user-space backend can hot-plug its own).
domu_start() {
	local name=$1; shift
	local disks=() job= memory=128 extra=() cfg initrd jobroot t0
	while [ $# -gt 0 ]; do
		case $1 in
		--disk) disks+=("'$2'"); shift 2 ;;
		--job) job=$2; shift 2 ;;
		--script)
			mkdir -p "$W/$name-job"
			cp "$2" "$W/$name-job/run.sh"
			job=$W/$name-job; shift 2 ;;
		--memory) memory=$2; shift 2 ;;
		--cfg) extra+=("$2"); shift 2 ;;
		*) fail "domu_start: unknown option $1" ;;
		esac
	done
	initrd=$W/$name-initrd.gz
	cp "$XBD_TESTS/domU/initrd.gz" "$initrd"
	if [ -n "$job" ]; then
		[ -f "$job/run.sh" ] || fail "domu_start: $job has no run.sh"
		jobroot=$W/$name-jobroot
		rm -rf "$jobroot"; mkdir -p "$jobroot"
		cp -r "$job" "$jobroot/job"
		# A second archive after the first: the kernel unpacks both.
		(cd "$jobroot" && find . -mindepth 1 | cpio -o -H newc 2>/dev/null) |
			gzip >> "$initrd" || fail "domu_start: cannot pack the job"
	fi
	cfg=$W/$name.cfg
	{
		echo "name = '$name'"
		echo "type = 'pv'"
		echo "kernel = '$XBD_TESTS/domU/vmlinuz'"
		echo "ramdisk = '$initrd'"
		echo "extra = 'console=hvc0 panic=-1 quiet cryptomgr.notests'"
		echo "memory = $memory"
		echo "vcpus = 1"
		echo "on_poweroff = 'destroy'"
		echo "on_crash = 'destroy'"
		echo "disk = [ $(IFS=,; echo "${disks[*]}") ]"
		printf '%s\n' "${extra[@]}"
	} > "$cfg"
	rm -f "$(domu_console "$name")"
	echo "domu_start: creating $name (disks: ${disks[*]:-none})"
	t0=$(uptime_s)
	if ! xl create -q "$cfg" > "$W/$name-create.log" 2>&1; then
		cat "$W/$name-create.log"
		fail "xl create $name failed"
	fi
	on_exit "domu_destroy $name"
	echo "domu_start: $name is domain $(xl domid "$name") (xl create: $(since_s "$t0")s)"
}

domu_destroy() { # NAME: gone, whatever its state
	domu_alive "$1" || return 0
	xl destroy "$1" >/dev/null 2>&1
	wait_for 10 eval "! domu_alive $1"
}

_domu_console_tail() { # NAME
	echo "---- last lines of $1's console ----"
	tail -n 30 "$(domu_console "$1")" 2>/dev/null | tr -d '\r'
	echo "----"
}

# domu_wait NAME ERE [SECONDS]: waits for a console line matching ERE
# and prints it; fails if the domain dies first or time runs out.
domu_wait() {
	local name=$1 re=$2 secs=${3:-60} log line i=0
	log=$(domu_console "$name")
	while :; do
		line=$(tr -d '\r' < "$log" 2>/dev/null | grep -E -m1 -- "$re")
		if [ -n "$line" ]; then
			echo "$line"
			return 0
		fi
		if ! domu_alive "$name" && [ $i -gt 0 ]; then
			# One last look: xenconsoled may have drained late.
			sleep 0.5
			line=$(tr -d '\r' < "$log" 2>/dev/null | grep -E -m1 -- "$re")
			[ -n "$line" ] && { echo "$line"; return 0; }
			_domu_console_tail "$name" >&2
			fail "$name died before printing /$re/"
		fi
		i=$((i + 1))
		if [ $i -gt $((secs * 5)) ]; then
			_domu_console_tail "$name" >&2
			fail "$name: no /$re/ on its console within ${secs}s"
		fi
		sleep 0.2
	done
}

# domu_result NAME KEY: the value the job reported with `report KEY ...`.
domu_result() {
	tr -d '\r' < "$(domu_console "$1")" |
		sed -n "s/^XBD-DOMU RESULT $2 //p" | tail -n 1
}

# domu_wait_exit NAME [SECONDS]: waits until the job ends and the domain
# is gone; fails unless the job exited 0.
domu_wait_exit() {
	local name=$1 secs=${2:-90} line status t0
	t0=$(uptime_s)
	line=$(domu_wait "$name" '^XBD-DOMU JOB-EXIT ' "$secs") || exit 1
	echo "domu_wait_exit: $line (waited $(since_s "$t0")s)"
	status=${line#XBD-DOMU JOB-EXIT }
	wait_for 15 eval "! domu_alive $name" || fail "$name did not power off"
	if [ "$status" != 0 ]; then
		_domu_console_tail "$name"
		fail "$name's job exited with status $status"
	fi
}

# --- one-line JSON (xbdsh stats --json), without a JSON tool in dom0 ---
# xbdsh prints each document on one line, keys in a fixed order: every
# disk object starts with "vdev", and its flat objects ("counters",
# "ring", "requests", ...) come before the nested "xbd" copy.

# json_disk JSON VDEV: the text of the disk object for VDEV (up to the
# next disk); empty when there is none.
json_disk() {
	sed 's/{"vdev":"/\n&/g' <<< "$1" | grep -m1 -F "{\"vdev\":\"$2\""
}

# json_obj TEXT KEY: the first flat object "KEY":{...} in TEXT.
json_obj() {
	grep -o -m1 "\"$2\":{[^{}]*}" <<< "$1" | head -n1
}

# json_val TEXT KEY: the first scalar value of "KEY" in TEXT (strings
# without their quotes); empty when absent.
json_val() {
	grep -o "\"$2\":\(\"[^\"]*\"\|[-0-9.eE+]*\|true\|false\|null\)" <<< "$1" |
		head -n1 | sed "s/^\"$2\"://; s/^\"\(.*\)\"\$/\1/"
}

# json_int TEXT KEY: the first value of "KEY" in TEXT, which must be an
# integer; fails the scenario otherwise.
json_int() {
	local v
	v=$(json_val "$1" "$2")
	[[ $v =~ ^[0-9]+$ ]] || fail "no integer \"$2\" in: ${1:0:300}"
	echo "$v"
}

# --- what a failure needs to be understood --------------------------

# on_failure COMMAND...: like on_exit, but only when the scenario failed
# or skipped (its reason is in $XBD_RESULT).  Registered after
# domu_start, it runs while the domain and its xenstore nodes still exist.
on_failure() {
	on_exit "[ ! -s \"\${XBD_RESULT:-}\" ] || { $*; }"
}

# xbd_diag LOG VM: xbd's log (xbd serve --log LOG), dom0's kernel lines
# about Xen and block devices, the xenstore nodes of xbd's backends and of
# VM's virtual disks, and VM's console (unless VM is dom0).
xbd_diag() {
	local log=$1 vm=$2 domid
	echo "---- xbd's log ($log) ----"
	cat "$log" 2>/dev/null
	echo "---- dom0's kernel: Xen and block lines (tail) ----"
	dmesg | grep -i 'xen\|blk\|vbd' | tail -n 20
	domid=$(xl domid "$vm" 2>/dev/null) || domid=
	echo "---- xenstore: backend/xbd, $vm's device/vbd ----"
	xenstore-ls -f /local/domain/0/backend/xbd 2>&1 | head -n 40
	[ -z "$domid" ] ||
		xenstore-ls -f "/local/domain/$domid/device/vbd" 2>&1 | grep -v 'ring-ref[1-9]' | head -n 60
	[ "${domid:-0}" = 0 ] || _domu_console_tail "$vm"
}

# --- the kernel as a peer: alternated runs, medians, ratios ---------
# A times file holds lines "WORKLOAD PEER SECONDS", in any order.

drop_caches() { # dom0's page cache, so that every run starts cold
	sync
	echo 7 > /proc/sys/vm/drop_caches # 4: log it once only
}

# peer_table FILE BASE OTHER: per workload (in first-seen order) the
# median seconds of BASE and OTHER, the run count, and OTHER's speed
# relative to BASE's (BASE's median / OTHER's): above 1, OTHER is faster.
peer_table() {
	awk -v base="$2" -v other="$3" '
	function median(list,   a, k, i, j, s) {
		k = split(list, a, " ")
		for (i = 2; i <= k; i++)
			for (j = i; j > 1 && a[j - 1] + 0 > a[j] + 0; j--) {
				s = a[j]; a[j] = a[j - 1]; a[j - 1] = s
			}
		return k % 2 ? a[(k + 1) / 2] : (a[k / 2] + a[k / 2 + 1]) / 2
	}
	!($1 in seen) { seen[$1] = 1; order[++nw] = $1 }
	{ t[$1, $2] = t[$1, $2] " " $3; n[$1, $2]++ }
	END {
		printf "%-10s %10s %10s %5s %7s\n", "workload", base, other, "runs", "ratio"
		for (i = 1; i <= nw; i++) {
			w = order[i]
			if (!((w, base) in t) || !((w, other) in t))
				continue
			mb = median(t[w, base]); mo = median(t[w, other])
			printf "%-10s %9.2fs %9.2fs %5d %7s\n", w, mb, mo, n[w, other],
				(mo > 0 ? sprintf("%.2f", mb / mo) : "-")
		}
	}' "$1"
}

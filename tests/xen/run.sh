#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The real-Xen tier: boots Xen with a PV Linux dom0 under QEMU (software
# emulation, no Xen on the host) and runs the scenarios in
# tests/xen/scenarios/ inside dom0 against the freshly built xbd.  Two
# matrix entries: Xen 4.17 + Linux 6.1 (Debian 12) and Xen 4.20 + Linux
# 6.12 (Debian 13) for hypervisor, dom0 and domU.
#
# Usage: tests/xen/run.sh BUILD [--shell] [SCENARIO...]
#   BUILD      the build directory holding xbd and xbdsh (`make` output);
#              the package cache goes to BUILD/xen-cache, the boot images
#              and the serial log to BUILD/xen-run (-4.20 appended to
#              both for Xen 4.20)
#   --shell    interactive: a dom0 shell on this terminal, no scenarios run
#   SCENARIO   run only these (names like 20-blkback-domu)
# Environment: XEN (4.17, the default, or 4.20: the matrix entry),
# XBD_XEN_TIMEOUT (seconds for the whole QEMU run, 900),
# XBD_XEN_BOOT_TIMEOUT (seconds for dom0 to come up, 150; booted again
# once if it does not, or if its kernel reports a soft lockup first).
# Prints one line per scenario and "N passed, N failed"; exits non-zero
# on any failure.  See tests/xen/README.md.
set -u
here=$(cd "$(dirname "$0")" && pwd)

usage() {
	sed -n '9,22s/^# \{0,1\}//p' "$0"
	exit "$1"
}

[ $# -ge 1 ] || usage 2
case $1 in -h|--help) usage 0 ;; esac
B=$1; shift
shell=0
only=()
for a in "$@"; do
	case $a in
	--shell) shell=1 ;;
	-h|--help) usage 0 ;;
	-*) echo "xen-tier: unknown option $a" >&2; usage 2 ;;
	*) only+=("${a%.sh}") ;;
	esac
done

say() { echo "xen-tier: $*"; }
die() { echo "xen-tier: $*" >&2; echo "0 passed, 1 failed"; exit 1; }

[ -d "$B" ] || die "no build directory $B (run make first)"
B=$(cd "$B" && pwd)
for f in xbd xbdsh; do
	[ -x "$B/$f" ] || die "$B/$f is missing (run make first)"
done
for tool in qemu-system-x86_64 qemu-img cpio depmod modprobe apt-get dpkg timeout setpriv; do
	command -v "$tool" >/dev/null ||
		die "$tool not found (tests/install-deps.sh installs what the tier needs)"
done
# The dom0 binaries must not need the sanitizer runtimes.
if ldd "$B/xbd" | grep -q 'libasan\|libubsan'; then
	die "$B/xbd is a sanitizer build; use a plain build (make)"
fi

scenarios=()
if [ ${#only[@]} -gt 0 ]; then
	for n in "${only[@]}"; do
		[ -f "$here/scenarios/$n.sh" ] || die "no scenario $n in $here/scenarios"
		scenarios+=("$here/scenarios/$n.sh")
	done
else
	for s in "$here"/scenarios/[0-9]*.sh; do
		[ -f "$s" ] && scenarios+=("$s")
	done
fi
[ ${#scenarios[@]} -gt 0 ] || die "no scenarios in $here/scenarios"

case ${XEN:-4.17} in
4.17) sfx= ;;
4.20) sfx=-4.20 ;;
*) die "XEN=$XEN: the matrix has 4.17 and 4.20" ;;
esac
export XBD_XEN=${XEN:-4.17}
cache=$B/xen-cache$sfx
run=$B/xen-run$sfx
mkdir -p "$cache" "$run"
now() { echo "$EPOCHREALTIME"; }
since() { awk -v a="$1" -v b="$EPOCHREALTIME" 'BEGIN { printf "%.1f", b - a }'; }

t=$(now)
"$here/fetch.sh" "$cache" "$B/xbd" "$B/xbdsh" || die "fetching the Debian packages failed"
t_fetch=$(since "$t")
t=$(now)
"$here/mkinitrd.sh" "$cache" "$B" "$run/boot" "${scenarios[@]}" ||
	die "building the boot images failed"
t_images=$(since "$t")

# The QEMU line of shared/XEN-UNDER-QEMU.md: TCG (the host's KVM is not usable),
# a CPU model a PV dom0 survives, Xen on the serial port, dom0 on hvc0.
xen_args="console=com1 com1=115200,8n1 dom0_mem=512M,max:512M dom0_max_vcpus=2 bootscrub=0 loglvl=all guest_loglvl=all"
# No crypto self-tests: seconds of emulated boot for nothing we test.
dom0_args="console=hvc0 earlyprintk=xen panic=-1 cryptomgr.notests"
[ $shell -eq 1 ] && dom0_args+=" xbd.shell"
qemu=(qemu-system-x86_64 -accel tcg,tb-size=256 -cpu qemu64,+svm -m 1536M -smp 2
	-nographic -no-reboot -monitor none
	-kernel "$run/boot/xen" -append "$xen_args"
	-initrd "$run/boot/vmlinuz $dom0_args,$run/boot/dom0.cpio.gz")

if [ $shell -eq 1 ]; then
	say "dom0 shell: 'poweroff -f' ends the run (Ctrl-a x kills QEMU)"
	# An hour at most, so a forgotten session does not run forever.
	exec timeout --foreground 3600 "${qemu[@]}" -serial mon:stdio
fi

limit=${XBD_XEN_TIMEOUT:-900}
serial=$run/serial.log
qpid=
stop_qemu() { # QEMU runs under timeout, in timeout's process group
	local i
	[ -n "$qpid" ] || return 0
	kill -TERM -- "-$qpid" 2>/dev/null
	for i in 1 2 3 4 5 6 7 8 9 10; do
		kill -0 -- "-$qpid" 2>/dev/null || break
		sleep 0.5
	done
	kill -KILL -- "-$qpid" 2>/dev/null
	wait "$qpid" 2>/dev/null
}
trap stop_qemu EXIT
trap 'stop_qemu; exit 130' INT TERM

# A TCG-emulated SMP dom0 very rarely hangs early in boot (a vCPU stuck
# on kernel code patched under it, which the kernel reports as a soft
# lockup: seen once in ~20 boots).  That says nothing about xbd: a dom0
# that reports a soft lockup or is not up within $boot_limit s is booted
# again, once, and the run says so.
boot_limit=${XBD_XEN_BOOT_TIMEOUT:-150}
boot_qemu() { # sets qrc; 0 when dom0 came up (or QEMU ended), 1 on a hang
	local start=$SECONDS up=0
	# QEMU runs in timeout's own process group, so killing the group
	# takes it along.  Should this script die without its traps (kill
	# -9), the parent-death signals end timeout, then QEMU.
	: >"$serial.raw" # exists before the first look at it
	setpriv --pdeathsig TERM timeout -k 10 "$limit" \
		setpriv --pdeathsig KILL "${qemu[@]}" -serial stdio \
		</dev/null >"$serial.raw" 2>&1 &
	qpid=$!
	while [ $up -eq 0 ] && kill -0 "$qpid" 2>/dev/null; do
		if grep -qa 'XBD-DOM0 \(UP\|FAIL\)' "$serial.raw"; then
			up=1
		elif [ $((SECONDS - start)) -ge "$boot_limit" ] ||
			grep -qa 'watchdog: BUG: soft lockup' "$serial.raw"; then
			stop_qemu
			qpid=
			return 1
		else
			sleep 0.5
		fi
	done
	wait "$qpid"
	qrc=$?
	qpid=
	return 0
}

say "booting Xen $XBD_XEN and dom0 under QEMU (at most ${limit}s; serial log: $serial)"
t=$(now)
retried=
rm -f "$serial.hung"
if ! boot_qemu; then
	retried="dom0 hung while booting and was booted again (first log: $serial.hung)"
	tr -d '\r' < "$serial.raw" > "$serial.hung"
	say "$retried"
	boot_qemu || qrc=hung
fi
t_boot=$(since "$t")
tr -d '\r' < "$serial.raw" > "$serial"
rm -f "$serial.raw"

case $qrc in
0) qemu_end="QEMU exited" ;;
124) qemu_end="QEMU killed after ${limit}s" ;;
hung) qemu_end="dom0 hung while booting, twice" ;;
*) qemu_end="QEMU exited with status $qrc" ;;
esac
say "fetch ${t_fetch}s, images ${t_images}s, QEMU ${t_boot}s ($qemu_end)"
[ -z "$retried" ] || say "note: $retried"

scenario_log() { # NAME: that scenario's lines of the serial log
	awk -v n="$1" '
		$0 ~ "XBD-SCENARIO-START " n "$" { on = 1; next }
		on && index($0, "XBD-SCENARIO " n " ") { exit }
		on { print }' "$serial"
}
log_tail() {
	echo "    ---- last lines of dom0's serial console ($serial) ----"
	tail -n "${1:-60}" "$serial" | sed 's/^/    | /'
}

pass=0 fail=0 skip=0
if ! grep -q '^XBD-DOM0 UP' "$serial"; then
	why=$(grep -m1 '^XBD-DOM0 FAIL' "$serial" | sed 's/^XBD-DOM0 FAIL //')
	echo "FAIL dom0 never reached the scenarios: ${why:+bring-up failed at $why; }$qemu_end"
	log_tail 80
	echo "0 passed, 1 failed"
	exit 1
fi
for s in "${scenarios[@]}"; do
	name=$(basename "$s" .sh)
	line=$(grep -m1 "^XBD-SCENARIO $name " "$serial")
	read -r -a f <<< "${line#"XBD-SCENARIO $name "}"
	set -- "${f[@]}"
	verdict=${1:-}
	case $verdict in
	PASS)
		pass=$((pass + 1))
		printf 'PASS %-32s %8s\n' "$name" "${2:-}" ;;
	SKIP)
		skip=$((skip + 1))
		printf 'SKIP %-32s %s\n' "$name" "${*:2}" ;;
	FAIL)
		fail=$((fail + 1))
		printf 'FAIL %-32s %8s (%s)\n' "$name" "${2:-}" "${*:3}"
		scenario_log "$name" | tail -n 60 | sed 's/^/    | /' ;;
	*)
		fail=$((fail + 1))
		if grep -q "^XBD-SCENARIO-START $name\$" "$serial"; then
			printf 'FAIL %-32s (no result: dom0 stopped during it; %s)\n' "$name" "$qemu_end"
			log_tail 60
		else
			printf 'FAIL %-32s (never started: %s)\n' "$name" "$qemu_end"
		fi ;;
	esac
done
if [ $fail -eq 0 ] && ! grep -q '^XBD-DOM0 DONE' "$serial"; then
	fail=$((fail + 1))
	echo "FAIL dom0 did not finish the run: $qemu_end"
	log_tail 40
fi
[ $fail -eq 0 ] || say "full serial log: $serial"
if [ $skip -gt 0 ]; then
	echo "$pass passed, $fail failed, $skip skipped"
else
	echo "$pass passed, $fail failed"
fi
[ $fail -eq 0 ]

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Benchmark (issue 4): guest-side figures of `xbd serve` on the sim.
# One sim VM (vm1) and its simulated guest; xbd serves it two disks at
# once: xvdb from a raw image in memory (--backend raw) and xvdc from the
# null back-end (--backend null).  The guest's workload engine
# (`xbd sim vm io`) measures, in turns, RUNS times each:
#   1 MiB sequential read and write (queue depth SEQ_QD, default 4),
#   4 KiB random read at queue depth 32,
# and the table gives the medians.  Targets on a 2-core machine:
# raw 1 MiB sequential read >= 3 GB/s; null 4 KiB random read QD32
# >= 300k IOPS.
#
# Usage: tests/bench/serve.sh [BUILD]   (env: XBD_BENCH_RUNS, _IMG_MB,
#        _IO_TIME, _DIR, _SEQ_QD; XBD_BENCH_EXTRA_ENV="VAR=VALUE ..." is
#        put in the environment of the sim (so its guests) and of
#        `xbd serve`: counters.sh uses it)
. "$(dirname "$0")/lib.sh"

SEQ_QD=${XBD_BENCH_SEQ_QD:-4}
TAG=${XBD_BENCH_TAG:-serve}
# shellcheck disable=SC2086
[ -n "${XBD_BENCH_EXTRA_ENV:-}" ] && export ${XBD_BENCH_EXTRA_ENV}

why=
ok=1
start_sim || ok=0
[ $ok = 1 ] && { vm_create vm1 || ok=0; }

IMG=$W/disk.img
declare -A served why_not
if [ $ok = 1 ]; then
	say "serve bench: making a ${IMG_MB} MiB image in $W"
	make_image "$IMG" "$IMG_MB"
	warm "$IMG" || exit 1
	for spec in "raw xvdb $IMG" "null xvdc ${IMG_MB}M"; do
		set -- $spec
		if out=$("$xbd" serve vm1 --image "$3" --backend "$1" --vdev "$2" 2>&1); then
			at_exit "'$xbd' detach vm1 $2"
			served[$1]=$2
		else
			why_not[$1]="xbd serve vm1 --backend $1: $(echo "$out" | head -n1)"
		fi
	done
else
	why_not[raw]=$why why_not[null]=$why
fi

# name -> `xbd sim vm io` arguments after VM VDEV
declare -A wl=(
	[seqread]="--rw read --bs 1M --qd $SEQ_QD --time $IO_TIME"
	[seqwrite]="--rw write --bs 1M --qd $SEQ_QD --time $IO_TIME"
	[randread]="--rw randread --bs 4k --qd 32 --time $IO_TIME"
)
wl_order=(seqread seqwrite randread)
declare -A runs # "be wl" -> values (MB/s for seq, IOPS for rand)

load0=$(load)
for ((r = 1; r <= RUNS; r++)); do
	say "serve bench: run $r/$RUNS (load $(load))"
	for be in raw null; do
		[ -n "${served[$be]:-}" ] || continue
		for w in "${wl_order[@]}"; do
			# shellcheck disable=SC2086
			if v=$(vm_io vm1 "${served[$be]}" ${wl[$w]}); then
				read -r mbps iops _ <<<"$v"
				case $w in
				rand*) runs["$be $w"]+=" $iops" ;;
				*) runs["$be $w"]+=" $mbps" ;;
				esac
			fi
		done
	done
done

declare -A med
for be in raw null; do
	for w in "${wl_order[@]}"; do
		# shellcheck disable=SC2086
		med["$be $w"]=$(median ${runs["$be $w"]:-})
		[ -n "${runs["$be $w"]:-}" ] && say "  $be $w:${runs["$be $w"]}"
	done
done

echo
echo "== xbd serve, guest-side on the sim ($TAG): ${IMG_MB} MiB raw image in page cache ($(stat -f -c %T "$W")), median of $RUNS runs of ${IO_TIME}s =="
echo "   xbd sim vm io vm1 VDEV --rw read|write --bs 1M --qd $SEQ_QD; --rw randread --bs 4k --qd 32"
echo "   load average before/after: $load0 / $(load)"
printf '%-14s %18s %18s %20s\n' "back-end" "1M seq read MB/s" "1M seq write MB/s" "4k randread QD32 IOPS"
for be in raw null; do
	if [ -n "${served[$be]:-}" ]; then
		printf '%-14s %18s %18s %20s\n' "$be" "$(fmt "${med["$be seqread"]}")" \
			"$(fmt "${med["$be seqwrite"]}")" "$(fmt "${med["$be randread"]}")"
		summary "$TAG|$be 1M seq read|$(fmt "${med["$be seqread"]}") MB/s|"
		summary "$TAG|$be 1M seq write|$(fmt "${med["$be seqwrite"]}") MB/s|"
		summary "$TAG|$be 4k randread QD32|$(fmt "${med["$be randread"]}") IOPS|"
	else
		printf '%-14s %s\n' "$be" "not run: ${why_not[$be]:-?}"
		summary "$TAG|$be|not run: ${why_not[$be]:-?}|"
	fi
done
verdict() { # VALUE TARGET
	if [ "$1" = - ]; then echo "not measured"
	elif ge "$1" "$2"; then echo "met"
	else echo "MISSED"; fi
}
echo
echo "target: raw 1M seq read >= 3000 MB/s: $(fmt "${med[raw seqread]}") -> $(verdict "${med[raw seqread]}" 3000)"
echo "target: null 4k randread QD32 >= 300000 IOPS: $(fmt "${med[null randread]}") -> $(verdict "${med[null randread]}" 300000)"
summary "$TAG|raw 1M seq read (target >= 3000 MB/s)|$(fmt "${med[raw seqread]}")|$(verdict "${med[raw seqread]}" 3000)"
summary "$TAG|null 4k randread QD32 (target >= 300k)|$(fmt "${med[null randread]}")|$(verdict "${med[null randread]}" 300000)"
# for counters.sh: the raw medians, one per line
if [ -n "${XBD_BENCH_MEDIANS:-}" ]; then
	for k in "${!med[@]}"; do echo "$k ${med[$k]}"; done >"$XBD_BENCH_MEDIANS"
fi
exit 0

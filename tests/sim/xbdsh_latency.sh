#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Latency percentiles against known latencies: vm1's xvdb is served by
# `xbd serve` from an errinject image that delays every request by
# 100 ms and those touching its first 24 sectors by 1 s.  The guest
# reads 100 requests of 4 KiB one at a time: 3 slow, 97 fast.  p50 must
# be within 5% of 100 ms and p99 and p99.9 within 5% of 1 s, in the
# JSON and the text; p90 lies between them (on a loaded machine a tenth
# of the sleepers can wake 10 ms late: the tail of the fast ones is
# the machine's, not the histogram's); the Prometheus histogram's fixed
# bounds bracket them.
. "$(dirname "$0")/attach_common.inc"
xbdsh=$(dirname "$xbd")/xbdsh
requires_prog jq
requires_prog xenstore-read xenstore-utils
start_sim

truncate -s 8M "$T/a.img"
truncate -s 8M "$T/b.img"
vm_create vm1 "$T/a.img,xvda"
"$xbd" serve vm1 --image "$T/b.img" --vdev xvdb \
	--inject-errors 'delay=100000,delay=1000000@0-23' --log "$T/serve.log" \
	>"$T/serve.out" 2>&1 || die "xbd serve: $(cat "$T/serve.out" "$T/serve.log")"
bg_pids+=("$(xs_read /local/domain/0/backend/xbd/$DOMID/51728/xbd-pid 2>/dev/null)")
wait_for 10 guest_connected "$DOMID" 51728 || die "vm1's guest did not connect xvdb"
vm_io_ok vm1 "100 reads of 4 KiB, one at a time" xvdb --rw read --bs 4k --qd 1 --size 400k

"$xbdsh" stats vm1 --json >"$T/doc" 2>"$T/err" || fail "stats --json: $(cat "$T/err")"
lat() { jq -r ".disks[] | select(.vdev == \"xvdb\") | .latency.read.$1" "$T/doc"; }
# within PCT% of WANT_NS
near() { awk -v v="$1" -v w="$2" 'BEGIN { d = v - w; if (d < 0) d = -d; exit !(d <= 0.05 * w) }'; }
count=$(lat count)
[ "$count" -ge 100 ] && ok "100 reads timed ($count)" || fail "reads timed: $count"
for p in p50_ns:100000000 p99_ns:1000000000 p999_ns:1000000000; do
	v=$(lat "${p%%:*}")
	if near "$v" "${p#*:}"; then
		ok "${p%%:*} $v ns, within 5% of ${p#*:}"
	else
		fail "${p%%:*} $v ns, not within 5% of ${p#*:}"
	fi
done

p90=$(lat p90_ns)
[ "$p90" -ge 95000000 ] && [ "$p90" -lt 500000000 ] && ok "p90 $p90 ns: a fast one's" ||
	fail "p90 $p90 ns"

# the text: p50 .. p99.9
"$xbdsh" stats vm1 >"$T/text" 2>&1
if grep -Eq '^    read +(9[5-9]|10[0-4])\.[0-9]+ms +[0-9.]+ms +(9[5-9][0-9]\.[0-9]+ms|1\.0[0-4]s) ' "$T/text"; then
	ok "text: read p50 ~100ms, p99 ~1s"
else
	fail "text: $(grep -A3 latency "$T/text")"
fi

# Prometheus: none under 2^26 ns (67 ms); the fast ones under 2^27 ns
# (134 ms); the 3 slow ones above 1.5*2^29 ns (805 ms), all under
# 2^30 ns (1.07 s)
"$xbdsh" stats vm1 --prometheus >"$T/prom" 2>&1
b() { grep -E "^xbd_vbd_request_latency_seconds_bucket\{.*vdev=\"xvdb\".*op=\"read\",le=\"$1\"\}" "$T/prom" | awk '{print $2}'; }
under67=$(b 0.067108864) under134=$(b 0.134217728) under805=$(b 0.805306368) under1073=$(b 1.07374182)
if [ "$under67" = 0 ] && [ "$under134" -ge $((count - 10)) ] && [ "$under805" = $((count - 3)) ] &&
   [ "$under1073" = "$count" ]; then
	ok "Prometheus buckets: 0 < 67 ms, $under134 < 134 ms, $under805 < 805 ms, $under1073 < 1.07 s"
else
	fail "Prometheus buckets: <67ms $under67, <134ms $under134, <805ms $under805, <1.07s $under1073 (count $count)"
fi
finish

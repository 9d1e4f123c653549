#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# Latency percentiles against known latencies: vm1's xvdb is served by
# `xbd serve` from an errinject image that delays every request by
# 10 ms and those touching its first 40 sectors by 100 ms.  The guest
# reads 200 requests of 4 KiB one at a time: 5 slow, 195 fast.  p50 and
# p90 must be within 5% of 10 ms, p99 and p99.9 within 5% of 100 ms,
# in the text, the JSON and the Prometheus histogram (whose bounds
# bracket them).
. "$(dirname "$0")/attach_common.inc"
xbdsh=$(dirname "$xbd")/xbdsh
requires_prog jq
requires_prog xenstore-read xenstore-utils
start_sim

truncate -s 8M "$T/a.img"
truncate -s 8M "$T/b.img"
vm_create vm1 "$T/a.img,xvda"
"$xbd" serve vm1 --image "$T/b.img" --vdev xvdb \
	--inject-errors 'delay=10000,delay=100000@0-39' --log "$T/serve.log" \
	>"$T/serve.out" 2>&1 || die "xbd serve: $(cat "$T/serve.out" "$T/serve.log")"
bg_pids+=("$(xs_read /local/domain/0/backend/xbd/$DOMID/51728/xbd-pid 2>/dev/null)")
wait_for 10 guest_connected "$DOMID" 51728 || die "vm1's guest did not connect xvdb"
vm_io_ok vm1 "200 reads of 4 KiB, one at a time" xvdb --rw read --bs 4k --qd 1 --size 800k

"$xbdsh" stats vm1 --json >"$T/doc" 2>"$T/err" || fail "stats --json: $(cat "$T/err")"
lat() { jq -r ".disks[] | select(.vdev == \"xvdb\") | .latency.read.$1" "$T/doc"; }
# within PCT% of WANT_NS
near() { awk -v v="$1" -v w="$2" 'BEGIN { d = v - w; if (d < 0) d = -d; exit !(d <= 0.05 * w) }'; }
count=$(lat count)
[ "$count" -ge 200 ] && ok "200 reads timed ($count)" || fail "reads timed: $count"
for p in p50_ns:10000000 p90_ns:10000000 p99_ns:100000000 p999_ns:100000000; do
	v=$(lat "${p%%:*}")
	if near "$v" "${p#*:}"; then
		ok "${p%%:*} $v ns, within 5% of ${p#*:}"
	else
		fail "${p%%:*} $v ns, not within 5% of ${p#*:}"
	fi
done

# the text: p50 .. p99.9
"$xbdsh" stats vm1 >"$T/text" 2>&1
if grep -Eq '^    read +(9\.[5-9][0-9]|10\.[0-4][0-9])ms +[0-9.]+ms +(9[5-9]|10[0-4])\.[0-9]+ms' "$T/text"; then
	ok "text: read p50 ~10ms, p99 ~100ms"
else
	fail "text: $(grep -A3 latency "$T/text")"
fi

# Prometheus: none under 2^23 ns (8.39 ms); most fast requests under
# 1.5*2^23 ns (12.6 ms: a loaded machine may hold up a few); at least
# the 5 slow ones above 2^26 ns (67 ms); all under 2^27 ns (134 ms)
"$xbdsh" stats vm1 --prometheus >"$T/prom" 2>&1
b() { grep -E "^xbd_vbd_request_latency_seconds_bucket\{.*vdev=\"xvdb\".*op=\"read\",le=\"$1\"\}" "$T/prom" | awk '{print $2}'; }
under8=$(b 0.008388608) under12=$(b 0.012582912) under67=$(b 0.067108864) under134=$(b 0.134217728)
if [ "$under8" = 0 ] && [ "$under12" -ge 185 ] && [ "$under67" -le 195 ] &&
   [ "$under134" = "$count" ]; then
	ok "Prometheus buckets: 0 < 8.4 ms, $under12 < 12.6 ms, $under134 < 134 ms"
else
	fail "Prometheus buckets: <8.4ms $under8, <12.6ms $under12, <67ms $under67, <134ms $under134 (count $count)"
fi
finish

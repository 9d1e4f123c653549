#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `xbdsh stats --prometheus`: the text exposition format, checked line by
# line here (HELP and TYPE before each family's samples, names, labels,
# values, no duplicate series, histograms cumulative and consistent) and,
# where python3-prometheus-client is installed, by its parser; values
# against the known counters of fake xbd processes; label escaping.
. "$(dirname "$0")/xbdsh_common.inc"

start_fake pa vm1:5:xvdb vm1:5:xvda:attach:blkback 'q"x\y:7:xvdd'
start_fake pb vm2:6:xvdc

run_timed "$xbdsh" --xbd-only stats --prometheus
[ $rc -eq 0 ] && ok "exit 0" || fail "exit $rc: $(cat "$T/err")"
[ -s "$T/err" ] && fail "stderr not empty: $(cat "$T/err")"
cp "$T/out" "$T/prom"

# --- structure, independent of any library ---
awk '
function fail(msg) { print "FAIL: line " NR ": " msg ": " $0; bad++ }
/^# HELP / { help[$3] = 1; next }
/^# TYPE / {
	if (!($3 in help)) fail("TYPE before HELP")
	if ($4 !~ /^(counter|gauge|histogram)$/) fail("unknown type")
	if ($3 in type) fail("family declared twice")
	type[$3] = $4; next
}
/^#/ { fail("stray comment"); next }
/^$/ { fail("empty line"); next }
{
	if (!match($0, /^[a-zA-Z_:][a-zA-Z0-9_:]*/)) { fail("bad metric name"); next }
	name = substr($0, 1, RLENGTH); rest = substr($0, RLENGTH + 1)
	fam = name; sub(/_(bucket|sum|count)$/, "", fam)
	if (!(name in type) && !(fam in type && type[fam] == "histogram"))
		{ fail("sample before its TYPE"); next }
	labels = ""
	if (substr(rest, 1, 1) == "{") {
		end = index(rest, "} "); if (!end) { fail("unterminated labels"); next }
		labels = substr(rest, 2, end - 2); rest = substr(rest, end + 1)
		l = labels
		while (l != "") {
			if (!match(l, /^[a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*"/)) { fail("bad label"); break }
			l = substr(l, RLENGTH + 1); sub(/^,/, "", l)
		}
	}
	if (rest !~ /^ [-+]?([0-9]+(\.[0-9]*)?([eE][-+]?[0-9]+)?|\+Inf|NaN)$/) fail("bad value")
	key = name "{" labels "}"
	if (key in seen) fail("duplicate series")
	seen[key] = 1
	if (name ~ /_bucket$/) {
		series = labels; sub(/(^|,)le="[^"]*"/, "", series)
		v = substr(rest, 2) + 0
		if ((fam series) in last && v < last[fam series]) fail("bucket not cumulative")
		last[fam series] = v
		if (labels ~ /(^|,)le="\+Inf"/) inf[fam series] = v
	}
	if (name ~ /_count$/ && type[fam] == "histogram") cnt[fam labels] = substr(rest, 2) + 0
	n++
}
END {
	for (k in cnt) if (!(k in inf) || inf[k] != cnt[k]) { print "FAIL: +Inf bucket != _count for " k; bad++ }
	print n " samples, " length(type) " families"
	exit bad ? 1 : 0
}' "$T/prom" >"$T/awk" 2>&1 && ok "structure: $(tail -n1 "$T/awk")" ||
	fail "structure: $(head -n 5 "$T/awk")"

# --- values ---
expect_sample() { # DESC REGEX
	if grep -Eq "$2" "$T/prom"; then ok "$1"; else fail "$1: no line matching $2"; fi
}
L='vm="vm1",domid="5",vdev="xvdb",server="xbd-serve",role="guest"'
expect_sample "reads" "^xbd_vbd_read_requests_total\{$L\} 1000$"
expect_sample "read sectors" "^xbd_vbd_read_sectors_total\{$L\} 8000$"
expect_sample "writes" "^xbd_vbd_write_requests_total\{$L\} 10$"
expect_sample "write sectors" "^xbd_vbd_write_sectors_total\{$L\} 160$"
expect_sample "flushes" "^xbd_vbd_flush_requests_total\{$L\} 2$"
expect_sample "OO" "^xbd_vbd_oo_requests_total\{$L\} 3$"
expect_sample "in flight" "^xbd_vbd_in_flight_requests\{$L\} 3$"
expect_sample "ring size" "^xbd_vbd_ring_entries\{$L\} 32$"
expect_sample "ring used" "^xbd_vbd_ring_used_entries\{$L\} 3$"
expect_sample "errors by kind" "^xbd_vbd_errors_total\{$L,kind=\"io\"\} 1$"
expect_sample "suppressed notifications" "^xbd_vbd_notifications_total\{$L,kind=\"suppressed\"\} 300$"
expect_sample "latency count" "^xbd_vbd_request_latency_seconds_count\{$L,op=\"read\"\} 1000$"
expect_sample "latency +Inf" "^xbd_vbd_request_latency_seconds_bucket\{$L,op=\"read\",le=\"\+Inf\"\} 1000$"
# 900 reads took 20 us: all of them below the 32.768 us bound
expect_sample "latency bucket" "^xbd_vbd_request_latency_seconds_bucket\{$L,op=\"read\",le=\"3.2768e-05\"\} 900$"
expect_sample "attach role" '^xbd_vbd_info\{vm="vm1",domid="5",vdev="xvda",server="xbd-attach",role="attach",state="Connected"\} 1$'
expect_sample "second process" '^xbd_vbd_read_requests_total\{vm="vm2",domid="6",vdev="xvdc",server="xbd-serve",role="guest"\} 1000$'
expect_sample "escaped label" '^xbd_vbd_info\{vm="q\\"x\\\\y",domid="7",'
expect_sample "unreachable processes" '^xbdsh_unreachable_xbd_processes 0$'

# --- promtool, Prometheus's own parser and linter ---
if command -v promtool >/dev/null; then
	if promtool check metrics <"$T/prom" >"$T/promtool" 2>&1; then
		ok "promtool check metrics: clean"
	else
		fail "promtool check metrics: $(head -n 5 "$T/promtool")"
	fi
else
	fail "promtool is missing (package prometheus; tests/install-deps.sh installs it)"
fi
# the same fixed bounds for every histogram: a fleet's can be summed
n=$(grep '^xbd_vbd_request_latency_seconds_bucket' "$T/prom" |
	sed 's/.*le="\([^"]*\)".*/\1/' | sort | uniq -c | awk '{print $1}' | sort -u | wc -l)
[ "$n" = 1 ] && ok "every histogram has the same le bounds" ||
	fail "le bounds differ between series"
# flush counts flushes and barriers; no barrier histogram of its own
grep -q 'op="barrier"' "$T/prom" && fail "a barrier histogram" ||
	ok "histograms for read, write, flush, discard"

# --- a real parser, where installed ---
if /usr/bin/python3 -c 'import prometheus_client' 2>/dev/null; then
	if /usr/bin/python3 - "$T/prom" >"$T/py" 2>&1 <<'EOF'
import sys
from prometheus_client.parser import text_string_to_metric_families
fams = list(text_string_to_metric_families(open(sys.argv[1]).read()))
names = {f.name: f for f in fams}
reads = [s for s in names["xbd_vbd_read_requests"].samples
         if s.labels.get("vdev") == "xvdb"]
assert reads and reads[0].value == 1000, reads
weird = [s for s in names["xbd_vbd_info"].samples if s.labels["domid"] == "7"]
assert weird and weird[0].labels["vm"] == 'q"x\\y', weird
hist = names["xbd_vbd_request_latency_seconds"]
assert hist.type == "histogram"
print(len(fams), "families parsed")
EOF
	then
		ok "prometheus_client parses it: $(tail -n1 "$T/py")"
	else
		fail "prometheus_client: $(tail -n 5 "$T/py")"
	fi
else
	echo "note: python3-prometheus-client not installed; structure checked by awk only"
fi

# --- one VM only ---
run_timed "$xbdsh" --xbd-only stats vm2 --prometheus
if [ $rc -eq 0 ] && grep -q 'vm="vm2"' "$T/out" && ! grep -q 'vm="vm1"' "$T/out"; then
	ok "stats VM --prometheus: that VM only"
else
	fail "stats vm2 --prometheus: rc $rc, $(grep -c 'vm="vm1"' "$T/out") vm1 lines"
fi

# --- a process that is gone: the rest is still exported, exit 1 ---
kill_now "$pb"
run_timed "$xbdsh" --xbd-only stats --prometheus
if [ $rc -ne 0 ] && grep -q "xbd process $pb is gone" "$T/err" &&
   grep -q '^xbdsh_unreachable_xbd_processes 1$' "$T/out" &&
   grep -q 'vdev="xvdb"' "$T/out" && [ "$ms" -lt 1000 ]; then
	ok "gone process: reported in ${ms} ms, others still exported"
else
	fail "gone process: rc $rc, ${ms} ms, stderr: $(cat "$T/err")"
fi

# --- usage errors ---
run_timed "$xbdsh" --xbd-only stats vm1 --prometheus --json
[ $rc -eq 2 ] && [ "$(wc -l <"$T/err")" -eq 1 ] && ok "--json with --prometheus: usage, one line" ||
	fail "--json --prometheus: rc $rc: $(cat "$T/err")"
run_timed "$xbdsh" --xbd-only stats vm1 --prometheus -w 1
[ $rc -eq 2 ] && ok "-w with --prometheus: usage" || fail "-w --prometheus: rc $rc"

finish

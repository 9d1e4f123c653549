#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# An attach is one disk, on a whole host (tests/sim/xbdsh_host.inc):
# dom0's `xbd attach` of vm1's xvda is listed once, under vm1, as
# xvda@attach (not as a Domain-0 disk), and `ring` and `stats` accept
# that name; in Prometheus it is one series per metric, with labels vm,
# vdev, server and role, and promtool finds the whole output clean
# with no duplicate series.  The shipped exporter (packaging/prometheus/
# xbd-prom) writes the same into a textfile directory, atomically.
# Last, each simulator sees only its own xbd processes: with no
# $XBD_RUN_DIR, a second sim's xbdsh does not list the first's disks.
. "$(dirname "$0")/attach_common.inc"
requires_prog jq
. "$(dirname "$0")/xbdsh_host.inc"
host_setup

# --- list ---
"$xbdsh" list >"$T/list" 2>"$T/err" || fail "list: $(cat "$T/err")"
[ "$(grep -c 'xvda@attach' "$T/list")" = 1 ] &&
	grep -Eq '^vm1 +[0-9]+  xvda@attach +xbd-attach +Connected' "$T/list" &&
	ok "list: the attach once, under vm1" || fail "list: $(cat "$T/list")"
grep -Eq '^Domain-0 +0  - *$' "$T/list" && ok "list: Domain-0 has no disk" ||
	fail "list: $(grep Domain-0 "$T/list")"
"$xbdsh" list --json >"$T/lj" 2>"$T/err" || fail "list --json: $(cat "$T/err")"
"$(dirname "$xbd")/tests/test_ctl" --check-doc xbdsh-list <"$T/lj" >"$T/check" 2>&1 &&
	ok "list --json: documented fields ($(tail -n1 "$T/check"))" || fail "list --json doc: $(cat "$T/check")"
n=$(jq '[.vms[].disks[] | select(.role == "attach")] | length' "$T/lj")
who=$(jq -r '.vms[] | select(.disks[].role == "attach") | .vm' "$T/lj")
[ "$n" = 1 ] && [ "$who" = vm1 ] && ok "list --json: one attach, vm1's" ||
	fail "list --json: $n attaches, under '$who'"
[ "$(jq '[.vms[].disks[]] | length' "$T/lj")" = 6 ] && ok "list --json: 6 disks" ||
	fail "list --json: $(jq -c '[.vms[].disks[].name]' "$T/lj")"

# --- ring and stats take the name ---
"$xbdsh" ring vm1 xvda@attach >"$T/ring" 2>"$T/err"
grep -q "dom0's xbd attach of vm1's xvda" "$T/ring" && grep -q 'requests in flight' "$T/ring" &&
	ok "ring vm1 xvda@attach" || fail "ring xvda@attach: $(cat "$T/ring" "$T/err")"
"$xbdsh" ring vm1 xvda >"$T/ring" 2>"$T/err"
head -n1 "$T/ring" | grep -q '^vm1 xvda  blkback' && ok "ring vm1 xvda: the guest's own" ||
	fail "ring vm1 xvda: $(head -n1 "$T/ring")"
"$xbdsh" stats vm1 >"$T/stats" 2>"$T/err"
[ "$(grep -c '^xvda@attach ' "$T/stats")" = 1 ] && [ "$(grep -c '^xvda ' "$T/stats")" = 1 ] &&
	ok "stats vm1: xvda and xvda@attach" || fail "stats vm1: $(cat "$T/stats")"
"$xbdsh" stats vm1 --json >"$T/sj"
[ "$(jq -r '.disks[] | select(.name == "xvda@attach") | .server' "$T/sj")" = xbd-attach ] &&
	ok "stats --json: name and server" || fail "stats --json: $(jq -c '[.disks[] | [.name, .server]]' "$T/sj")"

# --- Prometheus ---
"$xbdsh" stats --prometheus >"$T/prom" 2>"$T/err" || fail "prometheus: $(cat "$T/err")"
if command -v promtool >/dev/null; then
	promtool check metrics <"$T/prom" >"$T/pt" 2>&1 && ok "promtool check metrics: clean" ||
		fail "promtool: $(head -n 5 "$T/pt")"
else
	fail "promtool is missing (package prometheus; tests/install-deps.sh installs it)"
fi
dups=$(grep -v '^#' "$T/prom" | sed 's/ [^ ]*$//' | sort | uniq -d | head -n 3)
[ -z "$dups" ] && ok "no duplicate series" || fail "duplicate series: $dups"
att=$(grep -c '^xbd_vbd_read_requests_total{.*role="attach"' "$T/prom")
grep -Eq '^xbd_vbd_read_requests_total\{vm="vm1",domid="[0-9]+",vdev="xvda",server="xbd-attach",role="attach"\} [1-9]' "$T/prom" &&
	[ "$att" = 1 ] && ok "the attach: one series, labels vm vdev server role" ||
	fail "attach series: $(grep 'role="attach"' "$T/prom" | grep read_requests)"
grep -q 'vm="Domain-0"' "$T/prom" && fail "Domain-0 series: the attach counted twice" ||
	ok "no Domain-0 series"
[ "$(grep -c '^xbd_vbd_info{' "$T/prom")" = 6 ] && ok "6 disks exported" ||
	fail "info series: $(grep '^xbd_vbd_info{' "$T/prom")"

# --- the exporter ---
top=$(cd "$(dirname "$0")/../.." && pwd)
mkdir -p "$T/textfile"
XBDSH=$xbdsh "$top/packaging/prometheus/xbd-prom" "$T/textfile" 2>"$T/err"
rc=$?
[ $rc -eq 0 ] && [ -s "$T/textfile/xbd.prom" ] && [ "$(ls -A "$T/textfile")" = xbd.prom ] &&
	grep -q '^xbd_vbd_info{vm="vm3"' "$T/textfile/xbd.prom" &&
	ok "xbd-prom: xbd.prom written, no temporary file left" ||
	fail "xbd-prom: rc $rc, $(ls -A "$T/textfile"), $(cat "$T/err")"
XBD_PROM_DIR=$T/nowhere XBDSH=$xbdsh "$top/packaging/prometheus/xbd-prom" 2>"$T/err"
[ $? -eq 1 ] && grep -q 'no such directory' "$T/err" && ok "xbd-prom: a missing directory, one line" ||
	fail "xbd-prom missing dir: $(cat "$T/err")"
if command -v promtool >/dev/null; then
	promtool check rules "$top/packaging/prometheus/xbd-alerts.yml" >"$T/pt" 2>&1 &&
		ok "promtool check rules: the example alerts" || fail "alerts: $(cat "$T/pt")"
fi

# --- a second simulator sees only its own processes ---
sim2=$T/sim2
# its processes (its blkback, its guests) inherit its environment: no
# $XBD_RUN_DIR there either
env -u XBD_RUN_DIR "$xbd" sim start --dir "$sim2" --owner-pid $$ >"$T/sim2.out" 2>&1 ||
	die "sim2: $(cat "$T/sim2.out")"
truncate -s 8M "$T/c.img"
(
	unset XBD_RUN_DIR
	export XBD_SIM_DIR=$sim2 XENSTORED_PATH=$sim2/xenstored.sock
	"$xbd" sim vm create other --disk "$T/c.img,xvda" >/dev/null 2>&1 || exit 3
	wait_for 10 eval '[ -n "$(ls "$sim2"/run/*.sock 2>/dev/null)" ]' || exit 4
	"$xbdsh" --xbd-only list >"$T/l2" 2>&1
	"$xbdsh" list >"$T/l2x" 2>&1
)
st=$?
"$xbd" sim stop --dir "$sim2" >/dev/null 2>&1
if [ $st -eq 0 ] && grep -q '^other ' "$T/l2" && ! grep -q '^vm1 ' "$T/l2" &&
   grep -q '^other ' "$T/l2x" && ! grep -Eq '^vm[123] ' "$T/l2x"; then
	ok "second sim: its own processes only ($sim2/run)"
else
	fail "second sim: status $st: $(cat "$T/l2" "$T/l2x" 2>/dev/null)"
fi
# and the first sim's xbdsh does not see the second's either
"$xbdsh" --xbd-only list >"$T/l1" 2>&1
grep -q '^other ' "$T/l1" && fail "first sim lists the second's VM" || ok "first sim: not the second's"
finish

#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# xbdsh fed by a pipe: commands from stdin without a prompt; the exit
# status says whether one failed; watch and `stats -w` stop when input
# arrives or ends; `-w` JSON documents with rates that follow a busy
# device; the text view; all documents checked against the field tables.
. "$(dirname "$0")/xbdsh_common.inc"

start_fake pa --busy vm1:5:xvdb vm1:5:xvda:attach:blkback
start_fake pb vm2:6:xvdc

# A script of commands.
run_timed timeout 20 "$xbdsh" --xbd-only < <(
	printf 'help\nlist\n\n# a comment\nstats vm1 --json\nring vm1 xvdb\nquit\nstats vm2\n')
if [ $rc -eq 0 ] && ! grep -q 'xbdsh>' "$T/out" && grep -q '^commands:' "$T/out" &&
   grep -q '^vm2 *6  xvdc' "$T/out" && grep -q 'ring: 32 entries' "$T/out" &&
   ! grep -q '^vm2 (domain 6)' "$T/out"; then
	ok "piped commands run in order, no prompt, quit stops"
else
	fail "piped commands: rc $rc, stderr $(cat "$T/err"), out: $(head -c 400 "$T/out")"
fi
grep '^{' "$T/out" >"$T/doc1"
[ "$(jq -r '.disks | map(.vdev) | sort | join(",")' "$T/doc1")" = "xvda,xvdb" ] &&
	ok "the JSON line parses" || fail "JSON line: $(head -c 300 "$T/doc1")"
check_json_doc "piped --json document" "$T/doc1"

run_timed timeout 20 "$xbdsh" --xbd-only < <(printf 'stats nosuch\nlist\n')
[ $rc -eq 1 ] && grep -q '^vm1 ' "$T/out" && ok "a failing command: exit 1, the rest still runs" ||
	fail "failing command: rc $rc"
run_timed timeout 20 "$xbdsh" --xbd-only < <(printf 'stats\n')
[ $rc -eq 2 ] && ok "a misused command: exit 2" || fail "misused: rc $rc"

# watch stops when input arrives (and leaves it for the next command).
run_timed timeout 20 "$xbdsh" --xbd-only < <(printf 'watch vm1 -w 0.2\nhelp\n')
if [ $rc -eq 0 ] && [ "$ms" -lt 3000 ] && [ "$(grep -c '^vm1 (domain 5)' "$T/out")" = 1 ] &&
   grep -q '^commands:' "$T/out"; then
	ok "watch: one frame, then the next command (${ms} ms)"
else
	fail "watch then help: rc $rc, ${ms} ms: $(head -c 300 "$T/out")"
fi
# A one-shot command with stdin at its end (cron, scripts): stdin is no
# keyboard, so the view goes on until -n or a signal, like watch(1).
run_timed timeout -k 3 -s INT 2 "$xbdsh" --xbd-only watch vm1 -w 0.2 </dev/null
frames=$(grep -c '^vm1 (domain 5)' "$T/out")
[ "$frames" -ge 3 ] && [ "$ms" -lt 4000 ] &&
	ok "watch </dev/null: refreshed $frames times until SIGINT (rc $rc)" ||
	fail "watch </dev/null: rc $rc, $frames frames, ${ms} ms"
# With stdin open and silent, -n decides.
mkfifo "$T/silent"
sleep 60 >"$T/silent" &
pids+=($!)
run_timed timeout 20 "$xbdsh" --xbd-only watch vm1 -w 0.2 -n 3 <"$T/silent"
[ $rc -eq 0 ] && [ "$(grep -c '^vm1 (domain 5)' "$T/out")" = 3 ] && [ "$ms" -lt 5000 ] &&
	ok "watch -n 3: three frames in ${ms} ms" || fail "watch -n 3: rc $rc, ${ms} ms"

# stats -w: one document per refresh, rates from the second one on.
run_timed timeout 20 "$xbdsh" --xbd-only stats vm1 --json -w 0.3 -n 3 <"$T/silent"
if [ $rc -eq 0 ] && [ "$(wc -l <"$T/out")" = 3 ]; then
	ok "stats -w -n 3 --json: three documents"
else
	fail "stats -w --json: rc $rc, $(wc -l <"$T/out") lines: $(cat "$T/err")"
fi
cp "$T/out" "$T/docs"
check_json_doc "stats -w documents" "$T/docs"
first=$(head -n1 "$T/docs" | jq '.disks[] | select(.vdev == "xvdb") | .rates')
rd=$(tail -n1 "$T/docs" | jq '.disks[] | select(.vdev == "xvdb") | .rates.rd_req')
if [ "$first" = null ] && awk -v r="$rd" 'BEGIN { exit !(r > 100) }'; then
	ok "rates: none at first, then $rd reads/s from the busy device"
else
	fail "rates: first $first, last rd_req $rd"
fi
t1=$(head -n1 "$T/docs" | jq .time_ns)
t3=$(tail -n1 "$T/docs" | jq .time_ns)
awk -v a="$t1" -v b="$t3" 'BEGIN { d = (b - a) / 1e9; exit !(d > 0.5 && d < 2) }' &&
	ok "refresh interval respected" || fail "time_ns went from $t1 to $t3"

# The text view: xentop's columns, rates, ring, latency.
run_timed timeout 20 "$xbdsh" --xbd-only stats vm2
if [ $rc -eq 0 ] &&
   grep -Eq '^ +OO +RD +WR +RSECT +WSECT$' "$T/out" &&
   grep -Eq '^  total +3 +1000 +10 +8000 +160$' "$T/out" &&
   grep -Eq '^  per sec +0\.0 +0\.0 +0\.0 +0\.0 +0\.0$' "$T/out" &&
   grep -q 'in flight 3, ring 3/32 used, 29 free' "$T/out" &&
   grep -Eq '^    read +20\.0us +20\.0us +400\.0us +400\.0us +400\.0us$' "$T/out"; then
	ok "text block: counters, rates, ring, latency"
else
	fail "text block: rc $rc: $(cat "$T/out")"
fi
run_timed timeout 20 "$xbdsh" --xbd-only stats vm1
awk '/^  per sec/ { if ($4 > 100) found = 1 } END { exit !found }' "$T/out" &&
	ok "text rates of the busy device" || fail "text rates: $(grep 'per sec' "$T/out")"

# Repeated text blocks, piped: each under its timestamp (xentop's -d/-i).
run_timed timeout 20 "$xbdsh" --xbd-only stats vm2 -d 0.2 -i 3 </dev/null
n=$(grep -Ec '^[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[+-][0-9]{4}  every 0\.2s' "$T/out")
[ $rc -eq 0 ] && [ "$n" = 3 ] && [ "$(grep -c '^vm2 (domain 6)' "$T/out")" = 3 ] &&
	ok "stats -d 0.2 -i 3: three timestamped blocks" || fail "stats -d -i: rc $rc, $n stamps: $(head -n 3 "$T/out")"
run_timed timeout 20 "$xbdsh" --xbd-only stats vm2 --json -d 0.2 -i 2 </dev/null
[ "$(jq -r .time "$T/out" | grep -Ec '^[0-9]{4}-[0-9]{2}-[0-9]{2}T')" = 2 ] &&
	ok "stats --json -d: each document has its time" || fail "--json time: $(cat "$T/out")"

# -v after the command, as xl takes it; xbd help, as xl help
run_timed timeout 20 "$xbdsh" --xbd-only stats vm2 -v
[ $rc -eq 0 ] && grep -q '^vm2 (domain 6)' "$T/out" && ok "xbdsh stats vm2 -v" ||
	fail "stats -v: rc $rc: $(cat "$T/err")"
run_timed "$xbd" help
[ $rc -eq 0 ] && grep -q 'xbd attach' "$T/out" && ok "xbd help: the commands" || fail "xbd help: rc $rc $(cat "$T/err")"
run_timed "$xbd" help serve
[ $rc -eq 0 ] && grep -q '^usage: xbd serve' "$T/out" && ok "xbd help serve" || fail "xbd help serve: rc $rc"
run_timed "$xbd" help frob
[ $rc -eq 2 ] && [ "$(wc -l <"$T/err")" = 1 ] && ok "xbd help frob: usage error, one line" ||
	fail "xbd help frob: rc $rc: $(cat "$T/err")"
run_timed "$xbd" list --json -v
[ $rc -ne 2 ] && ok "xbd list --json -v: -v taken after the command (rc $rc)" ||
	fail "xbd list -v: usage error: $(cat "$T/err")"

finish

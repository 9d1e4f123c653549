#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# `xbdsh top` on a whole host (tests/sim/xbdsh_host.inc: three VMs,
# blkback-style, served and attached disks, busy), driven in tmux at
# 80x24 and 200x50: the header, a line per VM and per disk, the attach
# once; no line wrapped or longer than the terminal; the sort keys
# change the order; a resize redraws at the new size; h shows help;
# q quits with status 0.  Then batch mode: -b -i 3 prints three
# samples, each under its timestamp.
. "$(dirname "$0")/attach_common.inc"
requires_prog tmux
. "$(dirname "$0")/xbdsh_host.inc"
host_setup

sock=$T/tmux.sock
cleanup_tmux() { tmux -S "$sock" kill-server 2>/dev/null; return 0; }
cleanup_fn cleanup_tmux
# screen [-J]: what the pane shows now
screen() { tmux -S "$sock" capture-pane -p "$@" -t top 2>/dev/null; }
# shows TEXT [SECONDS]: the screen shows TEXT (a grep -E pattern)
shows() { want=$1; wait_for "${2:-10}" eval 'screen | grep -Eq -- "$want"'; }

# start_top COLS ROWS: xbdsh top in a tmux window of that size
start_top() {
	tmux -S "$sock" kill-server 2>/dev/null
	rm -f "$sock" "$T/top.exit"
	tmux -S "$sock" -f /dev/null new-session -d -s top -x "$1" -y "$2" \
		"$xbdsh top -d 1; echo \"exit \$?\" >$T/top.exit; sleep 30" ||
		die "tmux new-session failed"
	tmux -S "$sock" set-option -t top -g status off >/dev/null
	tmux -S "$sock" resize-window -t top -x "$1" -y "$2" 2>/dev/null
}

# fits COLS ROWS DESC: nothing wrapped, nothing wider than COLS, no more
# than ROWS lines
fits() {
	local cols=$1 rows=$2 desc=$3 wide n nj
	screen >"$T/screen"
	screen -J >"$T/screenj"
	wide=$(awk -v c="$cols" 'length($0) > c' "$T/screen" | wc -l)
	n=$(wc -l <"$T/screen")
	nj=$(wc -l <"$T/screenj")
	if [ "$wide" -eq 0 ] && [ "$n" -le "$rows" ] && [ "$n" -eq "$nj" ]; then
		ok "$desc: $n lines, none wider than $cols, none wrapped"
	else
		fail "$desc: $wide lines wider than $cols, $n lines ($nj joined): $(cat "$T/screen")"
	fi
}

# --- 80x24 ---
start_top 80 24
shows '^  xvdb +xbd-serve' 15 || die "top did not draw: $(screen)"
shows 'RD/s' && shows '[0-9.]+ MB/s' || true
screen >"$T/s80"
grep -Eq "^xbdsh top - $(hostname | cut -c1-20).* - [0-9]{2}:[0-9]{2}:[0-9]{2} - every 1\.0s" "$T/s80" &&
	ok "header: host, time, delay" || fail "header: $(head -n2 "$T/s80")"
grep -Eq '^3 VMs, 6 disks: rd [0-9.]+/s [0-9.]+MB/s, wr [0-9.]+/s [0-9.]+MB/s, in flight [0-9]+, errors 0$' "$T/s80" &&
	ok "totals line, whole at 80 columns" ||
	fail "totals: $(sed -n 2p "$T/s80")"
grep -Eq "^vm1 \($DOM1\)" "$T/s80" && grep -Eq "^vm2 \($DOM2\)" "$T/s80" &&
	grep -Eq "^vm3 \($DOM3\)" "$T/s80" && ok "a line per VM" || fail "VM lines: $(cat "$T/s80")"
grep -Eq '^  xvda +blkback +Conn' "$T/s80" && ok "blkback-style disks" || fail "no blkback disk: $(cat "$T/s80")"
grep -Eq '^  xvdb +xbd-serve +Conn' "$T/s80" && ok "served disks" || fail "no served disk"
[ "$(grep -Ec '^  xvda@attach +xbd-attach +Conn .* [0-9]+$' "$T/s80")" = 1 ] && ok "the attach, once, under vm1" ||
	fail "attach: $(grep xvda@attach "$T/s80")"
grep -q 'Domain-0' "$T/s80" && fail "Domain-0 listed: the attach counted twice" ||
	ok "no Domain-0 disk"
# vm1's served disk is busy: a rate and a p99 in ms
grep -Eq '^  xvdb +xbd-serve +Conn +[1-9][0-9.]* .* [0-9.]+ms +0$' "$T/s80" &&
	ok "busy served disk: rate and p99" || fail "busy disk: $(grep xvdb "$T/s80")"
fits 80 24 "80x24"

# sort keys: s moves to the server column, > to state, < back; the
# header says which and marks its column
tmux -S "$sock" send-keys -t top s
shows 'sort server' 5 && shows 'SERVER\*' 2 && ok "s: sort by server" || fail "s: $(head -n4 "$(screen >"$T/x"; echo "$T/x")")"
tmux -S "$sock" send-keys -t top '>' '>'
shows 'sort rd/s' 5 && ok "> >: sort by rd/s" || fail "> >: $(screen | head -n1)"
# by rd/s the busiest VM comes first: vm2 (bursts) is last
screen >"$T/sorted"
first=$(grep -Eo '^vm[0-9]' "$T/sorted" | head -n1)
last=$(grep -Eo '^vm[0-9]' "$T/sorted" | tail -n1)
[ "$last" = vm2 ] && [ "$first" != vm2 ] && ok "rd/s order: $first first, vm2 last" ||
	fail "rd/s order: $(grep -Eo '^vm[0-9]' "$T/sorted" | tr '\n' ' ')"
tmux -S "$sock" send-keys -t top '<' '<' '<'
shows 'sort vm' 5 && ok "< < <: back to vm" || fail "<: $(screen | head -n1)"
tmux -S "$sock" send-keys -t top h
shows 'Any key returns' 5 && ok "h: help" || fail "h: $(screen | head -n3)"
tmux -S "$sock" send-keys -t top x
shows '^vm1 \(' 5 && ok "a key leaves the help" || fail "after help: $(screen | head -n3)"
tmux -S "$sock" send-keys -t top d 2 Enter
shows 'every 2\.0s' 5 && ok "d 2: delay 2 s" || fail "d: $(screen | head -n1)"

# --- resize to 200x50: redrawn at the new size ---
tmux -S "$sock" resize-window -t top -x 200 -y 50
shows '^  xvda@attach +xbd-attach' 5
sleep 2.5
fits 200 50 "resized to 200x50"
tmux -S "$sock" send-keys -t top q
wait_for 5 test -s "$T/top.exit" && [ "$(cat "$T/top.exit")" = "exit 0" ] &&
	ok "q quits, status 0" || fail "q: $(cat "$T/top.exit" 2>/dev/null) $(screen | head -n3)"

# --- 200x50 from the start ---
start_top 200 50
shows '^  xvdb +xbd-serve' 15 || fail "200x50: top did not draw"
sleep 1.5
fits 200 50 "200x50"
[ "$(grep -Ec '^(vm[0-9]|  xv)' <(screen))" = 9 ] && ok "200x50: 3 VM and 6 disk lines" ||
	fail "200x50: $(screen)"
tmux -S "$sock" send-keys -t top q
wait_for 5 test -s "$T/top.exit" && ok "200x50: q quits" || fail "200x50: q did not quit"

# --- a tiny terminal: cut, never wrapped ---
start_top 40 8
shows 'xbdsh top' 15
sleep 1.5
fits 40 8 "40x8"
screen | grep -q 'more lines' && ok "40x8: says what does not fit" || fail "40x8: $(screen)"
tmux -S "$sock" send-keys -t top q
wait_for 5 test -s "$T/top.exit" || fail "40x8: q did not quit"

# --- batch: -b -i 3 ---
timeout 30 "$xbdsh" top -b -i 3 -d 0.5 >"$T/batch" 2>"$T/batch.err"
rc=$?
n=$(grep -Ec '^xbdsh top [0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}[+-][0-9]{4} ' "$T/batch")
[ $rc -eq 0 ] && [ "$n" = 3 ] && [ "$(grep -c '^  xvda@attach ' "$T/batch")" = 3 ] &&
	ok "-b -i 3: three timestamped samples" ||
	fail "-b -i 3: rc $rc, $n samples: $(head -n 12 "$T/batch") $(cat "$T/batch.err")"
grep -q $'\033' "$T/batch" && fail "batch output has escape sequences" || ok "batch: plain text"
# piped, without -b: batch too
timeout 30 "$xbdsh" top -i 1 | grep -Eq '^xbdsh top [0-9]{4}-' && ok "piped: batch" || fail "piped top"
# usage errors
"$xbdsh" top -d 0 >/dev/null 2>"$T/err"; [ $? = 2 ] && ok "-d 0: usage error" || fail "-d 0: $(cat "$T/err")"
"$xbdsh" top -i x >/dev/null 2>"$T/err"; [ $? = 2 ] && ok "-i x: usage error" || fail "-i x: $(cat "$T/err")"
"$xbdsh" top -s nosuch >/dev/null 2>"$T/err"; [ $? = 2 ] && ok "-s nosuch: usage error" || fail "-s: $(cat "$T/err")"
finish

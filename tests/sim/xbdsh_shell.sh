#!/bin/bash
# SPDX-License-Identifier: GPL-2.0-or-later
# The interactive shell in a real terminal (tmux): tab completion of
# commands, VM names and disks; history kept in ~/.xbdsh_history across
# sessions; watch refreshing in place until a key is pressed; Ctrl-D.
. "$(dirname "$0")/xbdsh_common.inc"

requires_prog tmux

start_fake pa alpha:5:xvdb alpha:5:xvdc alpine:6:xvda
tmux_sock=$T/tmux.sock
tm() { tmux -S "$tmux_sock" "$@"; }

# save_screen: the whole scrollback of the session into screens.log,
# where sanitizer reports would show.
save_screen() {
	tm capture-pane -p -S - -t "$sess" >>"$T/screens.log" 2>/dev/null
}

# start_shell NAME: xbdsh in a new tmux session (the earlier ones stay,
# so the tmux server does not come and go between them).
start_shell() {
	sess=$1
	tm -f /dev/null new-session -d -s "$sess" -x 150 -y 45 \
		"$xbdsh --xbd-only; echo \"EXITED rc=\$?\"; sleep 60"
}

pane() { tm capture-pane -p -t "$sess"; }
# The line the cursor is on (readline's current input line).
cursor_line() {
	local y
	y=$(tm display-message -p -t "$sess" '#{cursor_y}')
	pane | sed -n "$((y + 1))p" | sed 's/ *$//'
}

pane_has() { pane | grep -Eq -- "$1"; }
line_is() { [ "$(cursor_line)" = "$1" ]; }

# wait_pane DESC REGEX: the screen shows REGEX within 10 s.
wait_pane() {
	if wait_for 10 pane_has "$2"; then
		ok "$1"
	else
		fail "$1: screen has no '$2':"
		pane | sed 's/^/    | /' | grep -v '^    | $'
	fi
}

# wait_line DESC TEXT: the input line becomes exactly TEXT within 10 s.
wait_line() {
	if wait_for 10 line_is "$2"; then
		ok "$1"
	else
		fail "$1: input line is '$(cursor_line)', expected '$2'"
	fi
}

start_shell first
wait_pane "banner and prompt" '^xbdsh> ?$'

# Commands.
tm send-keys -t "$sess" 'sta' Tab
wait_line "command completion" 'xbdsh> stats'
# VM names: a common prefix first, then the candidates listed.
tm send-keys -t "$sess" 'al' Tab
wait_line "VM name: common prefix" 'xbdsh> stats alp'
tm send-keys -t "$sess" Tab Tab
wait_pane "VM name: candidates listed" 'alpha +alpine'
tm send-keys -t "$sess" 'ha' Tab
wait_line "VM name completed" 'xbdsh> stats alpha'
tm send-keys -t "$sess" Enter
wait_pane "stats ran" '^alpha \(domain 5\): 2 disks'
tm send-keys -t "$sess" 'clear-not-a-command' Enter
wait_pane "unknown command: one line" "unknown command 'clear-not-a-command'"

# Disks of the VM named before them; options do not count as positions.
tm send-keys -t "$sess" 'ring alpha xv' Tab
wait_line "disk: common prefix" 'xbdsh> ring alpha xvd'
tm send-keys -t "$sess" Tab Tab
wait_pane "disk candidates listed" 'xvdb +xvdc'
tm send-keys -t "$sess" 'c' Enter
wait_pane "ring ran" 'ring: 32 entries'
tm send-keys -t "$sess" 'watch -w 0.3 alp' Tab
wait_line "VM completion after an option" 'xbdsh> watch -w 0.3 alp'
tm send-keys -t "$sess" 'ine' Tab
wait_line "VM completion after an option, completed" 'xbdsh> watch -w 0.3 alpine'
tm send-keys -t "$sess" Enter
wait_pane "watch refreshes in place" 'every 0\.3s, any key stops'
if pane | grep -q '^xbdsh> '; then
	fail "watch did not clear the screen"
else
	ok "watch cleared the screen"
fi
sleep 0.8
tm send-keys -t "$sess" x
wait_pane "a key stops watch" '^xbdsh> ?$'

# History: within the session, then saved and read by the next one.
tm send-keys -t "$sess" 'help' Enter
wait_pane "help ran" '^commands:'
tm send-keys -t "$sess" Up
wait_line "Up recalls the last command" 'xbdsh> help'
tm send-keys -t "$sess" C-u 'quit' Enter
wait_pane "quit" 'EXITED rc=0'
if grep -qx 'help' "$HOME/.xbdsh_history" &&
   grep -qx 'stats alpha' "$HOME/.xbdsh_history" &&
   grep -qx 'ring alpha xvdc' "$HOME/.xbdsh_history"; then
	ok "history saved in ~/.xbdsh_history"
else
	fail "history file: $(tr '\n' '|' <"$HOME/.xbdsh_history" 2>&1)"
fi

save_screen
start_shell second
wait_pane "second session" '^xbdsh> ?$'
tm send-keys -t "$sess" Up Up
wait_line "history of the last session" 'xbdsh> help'
tm send-keys -t "$sess" C-u C-r 'ring al'
wait_pane "reverse search finds an old command" "ring alpha xvdc"
tm send-keys -t "$sess" C-g C-u C-d
wait_pane "Ctrl-D leaves" 'EXITED rc=0'
# the runner looks for sanitizer reports in this test's output
save_screen
echo "--- screens ---"
cat "$T/screens.log"
if grep '^xbdsh: ' "$T/screens.log" | grep -vq "unknown command 'clear-not-a-command'"; then
	fail "the shell printed unexpected errors"
fi

finish

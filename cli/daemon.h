/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Going to the background, and saying when we are ready: the one way
 * the long-running commands (attach, serve) do both.
 *
 * In the background, the command forks before doing anything; the
 * parent waits until the child calls xbd_daemon_ready() and exits 0,
 * or, if the child exits first, exits with the child's status (its
 * error line is already printed).  In the foreground there is one
 * process, which tells systemd through $NOTIFY_SOCKET (sd_notify(3))
 * instead.  Either way the child says "ready" with the same call.
 */
#ifndef XBD_CLI_DAEMON_H
#define XBD_CLI_DAEMON_H

#include <stdbool.h>

struct xbd_daemon {
	const char *what;   /* the command, for messages ("serve") */
	int ready_fd;       /* to the waiting parent; -1: none (any more) */
	int log_fd;         /* the background process's stderr; -1: none */
	int ready_exit;     /* the waiting parent's exit status once ready
			     * (0 unless the caller sets it before ready) */
	bool ready;
};

/* foreground: prepares the systemd notification and returns 0.
 * Otherwise forks: returns 0 in the child, which goes on to do the
 * work; returns 1 in the parent once the child is ready or gone, with
 * the exit status in *status (the child's ready_exit when ready).  log_fd (or -1) was opened by the caller
 * before, so that a relative path is the caller's and a mistake is
 * reported at once; it is the daemon's from here on.  Negative errno
 * when the fork cannot be made (one line printed). */
int xbd_daemon_start(struct xbd_daemon *d, const char *what, bool foreground,
		     int log_fd, int *status);

/* The work is set up: the waiting parent returns to the shell (after
 * this process has left the caller's session, working directory,
 * terminal and pipes: stdin and stdout on /dev/null, stderr on the log
 * or /dev/null), and systemd hears READY=1 with STATUS=status when
 * status is not NULL.  Only the first call does anything. */
void xbd_daemon_ready(struct xbd_daemon *d, const char *status);

/* The daemon's end of the pipe and its log, when it stops before
 * being ready (exiting does the same). */
void xbd_daemon_close(struct xbd_daemon *d);

/* systemd's readiness protocol, for what runs in the foreground under
 * a Type=notify unit.  init takes $NOTIFY_SOCKET (a path, or '@' for an
 * abstract name) out of the environment; notify sends one datagram
 * such as "STOPPING=1", and does nothing when there is no socket.
 * notify is async-signal-safe. */
void xbd_cli_notify_init(void);
void xbd_cli_notify(const char *state);

#endif

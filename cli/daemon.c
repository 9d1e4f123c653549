/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Going to the background with one ready protocol (cli/daemon.h). */
#include "cli/daemon.h"
#include "xbd/common.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

#define READY_BYTE 'R'

/* systemd's notification socket (sd_notify(3)); -1 when not under it */
static int notify_fd = -1;
static struct sockaddr_un notify_addr;
static socklen_t notify_len;

void xbd_cli_notify_init(void)
{
	const char *path = getenv("NOTIFY_SOCKET");
	size_t len = path ? strlen(path) : 0;

	if (notify_fd >= 0 || !len)
		return;
	/* a path, or an abstract socket written with a leading '@' */
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(notify_addr.sun_path)) {
		xbd_debug("NOTIFY_SOCKET=%s: not a socket xbd can use", path);
		return;
	}
	notify_addr.sun_family = AF_UNIX;
	memcpy(notify_addr.sun_path, path, len);
	if (path[0] == '@')
		notify_addr.sun_path[0] = '\0';
	notify_len = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len);
	notify_fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (notify_fd < 0)
		xbd_debug("NOTIFY_SOCKET: %s", strerror(errno));
	/* what we start must not speak for us */
	unsetenv("NOTIFY_SOCKET");
}

void xbd_cli_notify(const char *state)
{
	if (notify_fd >= 0)
		(void)sendto(notify_fd, state, strlen(state), MSG_NOSIGNAL,
			      (const struct sockaddr *)&notify_addr, notify_len);
}

/* The parent: the child's ready byte, else its exit status. */
static int wait_for_child(const char *what, pid_t pid, int fd)
{
	unsigned char c[2] = { 0, 0 };
	ssize_t n;
	int status;

	/* the ready byte and the exit status come in one write */
	do
		n = read(fd, c, sizeof(c));
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n >= 1 && c[0] == READY_BYTE)
		return n == 2 ? c[1] : 0;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status) ? WEXITSTATUS(status) : 1;
	xbd_err("%s: the background process died (signal %d)", what,
		WTERMSIG(status));
	return 1;
}

int xbd_daemon_start(struct xbd_daemon *d, const char *what, bool foreground,
		     int log_fd, int *status)
{
	int pfd[2], err;
	pid_t pid;

	*d = (struct xbd_daemon){ .what = what, .ready_fd = -1, .log_fd = -1 };
	if (foreground) {
		if (log_fd >= 0)
			close(log_fd);
		xbd_cli_notify_init();
		return 0;
	}
	/* before any thread exists: fork copies only the caller's */
	if (pipe2(pfd, O_CLOEXEC)) {
		err = -errno;
		xbd_err("%s: %s", what, xbd_strerror(err));
		goto fail;
	}
	fflush(NULL);
	pid = fork();
	if (pid < 0) {
		err = -errno;
		xbd_err("%s: cannot fork: %s", what, xbd_strerror(err));
		close(pfd[0]);
		close(pfd[1]);
		goto fail;
	}
	if (pid > 0) {
		if (log_fd >= 0)
			close(log_fd);
		close(pfd[1]);
		*status = wait_for_child(what, pid, pfd[0]);
		return 1;
	}
	close(pfd[0]);
	d->ready_fd = pfd[1];
	d->log_fd = log_fd;
	return 0;

fail:
	if (log_fd >= 0)
		close(log_fd);
	return err;
}

/* A daemon must not hold its caller's session, working directory,
 * terminal or pipes (a shell's $(...) would wait for them). */
static void detach_from_caller(struct xbd_daemon *d)
{
	int null = open("/dev/null", O_RDWR | O_CLOEXEC);

	setsid();
	if (chdir("/"))
		xbd_debug("chdir /: %s", strerror(errno));
	if (null >= 0) {
		dup2(null, 0);
		dup2(null, 1);
	}
	if (d->log_fd >= 0 || null >= 0)
		dup2(d->log_fd >= 0 ? d->log_fd : null, 2);
	if (null >= 0)
		close(null);
	if (d->log_fd >= 0)
		close(d->log_fd);
	d->log_fd = -1;
}

void xbd_daemon_ready(struct xbd_daemon *d, const char *status)
{
	char msg[256];
	unsigned char c[2] = { READY_BYTE, (unsigned char)d->ready_exit };

	if (d->ready)
		return;
	d->ready = true;
	if (d->ready_fd >= 0) {
		detach_from_caller(d);
		if (write(d->ready_fd, c, sizeof(c)) != sizeof(c))
			xbd_debug("cannot reach the waiting parent");
		close(d->ready_fd);
		d->ready_fd = -1;
	}
	snprintf(msg, sizeof(msg), "READY=1%s%s", status ? "\nSTATUS=" : "",
		 status ? status : "");
	xbd_cli_notify(msg);
}

void xbd_daemon_close(struct xbd_daemon *d)
{
	if (d->ready_fd >= 0)
		close(d->ready_fd);
	d->ready_fd = -1;
	if (d->log_fd >= 0)
		close(d->log_fd);
	d->log_fd = -1;
}

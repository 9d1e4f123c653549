/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sim daemon's clients: `xbd sim start` (forking the daemon and
 * waiting until it serves), stop, and the vm commands, each one request
 * on DIR/ctl.sock (the protocol is described in sim_daemon.c).
 */
#include "sim_daemon.h"
#include "xbd/platform.h"
#include "xbd/common.h"
#include "xbd/util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>

/* ------------------------------------------------------------------ */
/* The client side                                                     */

static int mkdir_p(const char *dir)
{
	char path[4096];
	size_t i, len = strlen(dir);

	if (len == 0 || len >= sizeof(path))
		return -ENAMETOOLONG;
	memcpy(path, dir, len + 1);
	for (i = 1; i <= len; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		path[i] = '\0';
		if (mkdir(path, 0755) < 0 && errno != EEXIST)
			return -errno;
		path[i] = dir[i];
	}
	return 0;
}

/* The daemon's pid from dir/pid, or 0. */
static pid_t read_pid(const char *dir)
{
	char path[4096], buf[32] = "";
	int fd;
	ssize_t n;

	if (sim_dir_path(path, sizeof(path), dir, "pid"))
		return 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return 0;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return 0;
	buf[n] = '\0';
	return (pid_t)atoi(buf);
}

int xbd_sim_start(const char *dir_arg, int owner_pid)
{
	char path[4096], msg[4200], dir[PATH_MAX];
	int lock_fd, ready[2], err;
	size_t used = 0;
	pid_t pid;

	if ((err = mkdir_p(dir_arg))) {
		xbd_err("%s: %s", dir_arg, xbd_strerror(err));
		return err;
	}
	/* The daemon and its guests work from /, so they need it absolute. */
	if (!realpath(dir_arg, dir)) {
		err = -errno;
		xbd_err("%s: %s", dir_arg, xbd_strerror(err));
		return err;
	}
	if ((err = sim_dir_path(path, sizeof(path), dir, "pid"))) {
		xbd_err("%s: %s", dir, xbd_strerror(err));
		return err;
	}
	{
		struct sockaddr_un sa;

		if ((err = sim_unix_addr(&sa, dir, "xs-dom32767.sock"))) {
			xbd_err("%s: path too long for the sim's sockets", dir);
			return err;
		}
	}
	lock_fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0644);
	if (lock_fd < 0) {
		err = -errno;
		xbd_err("%s: %s", path, xbd_strerror(err));
		return err;
	}
	/* The daemon inherits the lock and holds it for its whole life. */
	if (flock(lock_fd, LOCK_EX | LOCK_NB) < 0) {
		err = errno == EWOULDBLOCK ? -EBUSY : -errno;
		close(lock_fd);
		if (err == -EBUSY)
			xbd_err("%s: already in use by a running simulator (pid %d)",
				dir, (int)read_pid(dir));
		else
			xbd_err("%s: %s", path, xbd_strerror(err));
		return err;
	}
	if (pipe2(ready, O_CLOEXEC) < 0) {
		err = -errno;
		close(lock_fd);
		xbd_err("pipe: %s", xbd_strerror(err));
		return err;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		err = -errno;
		close(ready[0]);
		close(ready[1]);
		close(lock_fd);
		xbd_err("fork: %s", xbd_strerror(err));
		return err;
	}
	if (pid == 0) {
		close(ready[0]);
		exit(sim_daemon_main(dir, owner_pid, lock_fd, ready[1]));
	}
	close(ready[1]);
	close(lock_fd);
	for (;;) {
		ssize_t n = read(ready[0], msg + used, sizeof(msg) - 1 - used);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0 || used + (size_t)n >= sizeof(msg) - 1) {
			if (n > 0)
				used += (size_t)n;
			break;
		}
		used += (size_t)n;
	}
	msg[used] = '\0';
	close(ready[0]);
	if (!strcmp(msg, "ok"))
		return 0;
	waitpid(pid, NULL, 0);
	if (used)
		xbd_err("%s", msg);
	else
		xbd_err("%s: the simulator died while starting (see %s/sim.log)",
			dir, dir);
	return -EIO;
}

static int ctl_connect(const char *dir, int *out)
{
	struct sockaddr_un sa;
	int fd, err;

	if ((err = sim_unix_addr(&sa, dir, XBD_SIM_CTL_SOCKET))) {
		xbd_err("%s: %s", dir, xbd_strerror(err));
		return err;
	}
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		err = -errno;
		xbd_err("socket: %s", xbd_strerror(err));
		return err;
	}
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		close(fd);
		if (err == -ENOENT || err == -ECONNREFUSED) {
			xbd_err("%s: no simulator running (start one with `xbd sim start`)",
				dir);
			return -ESRCH;
		}
		xbd_err("%s: %s", sa.sun_path, xbd_strerror(err));
		return err;
	}
	*out = fd;
	return 0;
}

/* Sends one request (fields joined by tabs) and reads the whole reply.
 * On "ok" returns 0 and the text after the first line in *rest (NULL ok);
 * on "err" prints the daemon's message and returns its errno. */
static int ctl_call(const char *dir, const char *const *fields, char **first,
		    char **rest)
{
	size_t len = 0, used = 0, cap = 4096, i;
	unsigned long long deadline;
	char *req = NULL, *buf = NULL, *nl;
	int fd = -1, err;

	for (i = 0; fields[i]; i++) {
		if (strpbrk(fields[i], "\t\n")) {
			xbd_err("'%s': tabs and newlines cannot be passed to the simulator",
				fields[i]);
			return -EINVAL;
		}
		len += strlen(fields[i]) + 1;
	}
	if (len + 1 > CTL_MAX_REQUEST) {
		xbd_err("request too long for the simulator");
		return -E2BIG;
	}
	req = malloc(len + 1);
	buf = malloc(cap);
	if (!req || !buf) {
		err = -ENOMEM;
		xbd_err("out of memory");
		goto out;
	}
	req[0] = '\0';
	for (i = 0; fields[i]; i++) {
		strcat(req, fields[i]);
		strcat(req, fields[i + 1] ? "\t" : "\n");
	}
	if ((err = ctl_connect(dir, &fd)))
		goto out;
	if ((err = sim_write_all(fd, req, strlen(req)))) {
		xbd_err("%s: sending to the simulator: %s", dir, xbd_strerror(err));
		goto out;
	}
	deadline = xbd_now_ns() + CTL_REPLY_TIMEOUT_MS * 1000000ull;
	for (;;) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		long long left = (long long)(deadline - xbd_now_ns()) / 1000000;
		ssize_t n;

		if (left <= 0 || poll(&pfd, 1, (int)left) == 0) {
			err = -ETIMEDOUT;
			xbd_err("%s: the simulator does not answer", dir);
			goto out;
		}
		if (used + 1 >= cap) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				err = -ENOMEM;
				xbd_err("out of memory");
				goto out;
			}
			buf = nb;
			cap *= 2;
		}
		n = read(fd, buf + used, cap - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			err = -errno;
			xbd_err("%s: reading from the simulator: %s", dir,
				xbd_strerror(err));
			goto out;
		}
		if (n == 0)
			break;
		used += (size_t)n;
	}
	buf[used] = '\0';
	nl = strchr(buf, '\n');
	if (!nl) {
		err = -EPROTO;
		xbd_err("%s: the simulator closed the connection without an answer",
			dir);
		goto out;
	}
	*nl = '\0';
	if (!strncmp(buf, "err\t", 4)) {
		char *msg = strchr(buf + 4, '\t');
		int e = atoi(buf + 4);

		xbd_err("%s", msg ? msg + 1 : buf + 4);
		err = e > 0 ? -e : -EIO;
		goto out;
	}
	if (strcmp(buf, "ok") && strncmp(buf, "ok\t", 3)) {
		err = -EPROTO;
		xbd_err("%s: unexpected answer from the simulator: %s", dir, buf);
		goto out;
	}
	if (first)
		*first = strdup(buf[2] ? buf + 3 : "");
	if (rest)
		*rest = strdup(nl + 1);
	if ((first && !*first) || (rest && !*rest)) {
		if (first)
			free(*first);
		if (rest)
			free(*rest);
		err = -ENOMEM;
		xbd_err("out of memory");
	}
out:
	if (fd >= 0)
		close(fd);
	free(req);
	free(buf);
	return err;
}


/* Whether the daemon's log holds a sanitizer report (the markers the
 * test runner looks for). */
static bool log_has_report(const char *path)
{
	static const char *const markers[] = { "==ERROR", "Sanitizer",
					       "runtime error:" };
	char buf[65536 + 64];
	size_t keep = 0, i;
	ssize_t n;
	bool found = false;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return false;
	while (!found && (n = read(fd, buf + keep, sizeof(buf) - 1 - keep)) > 0) {
		size_t len = keep + (size_t)n;

		buf[len] = '\0';
		for (i = 0; i < XBD_ARRAY_SIZE(markers) && !found; i++)
			found = strstr(buf, markers[i]) != NULL;
		/* a marker may straddle two reads */
		keep = len < 32 ? len : 32;
		memmove(buf, buf + len - keep, keep);
	}
	close(fd);
	return found;
}

/* A clean stop leaves dir as it was before start; a log that reports
 * errors (or that $XBD_SIM_KEEP_LOG asks for) stays. */
static void remove_log(const char *dir)
{
	const char *keep = getenv("XBD_SIM_KEEP_LOG");
	char path[4096];

	if (sim_dir_path(path, sizeof(path), dir, "sim.log") || (keep && *keep))
		return;
	if (log_has_report(path))
		xbd_err("%s: the simulator reported errors; kept its log", path);
	else
		unlink(path);
}

int xbd_sim_stop(const char *dir)
{
	static const char *const req[] = { "stop", NULL };
	pid_t pid = read_pid(dir);
	struct xbd_proc daemon_proc = { .pid = pid };
	unsigned long long deadline;
	int err;

	/* the daemon as it is now, start time and all: the PID alone could
	 * be another process's by the time it has exited */
	if (pid > 0 && xbd_proc_of(pid, &daemon_proc))
		pid = 0;
	err = ctl_call(dir, req, NULL, NULL);
	if (err)
		return err;
	/* ctl_call returned at end of file: the daemon closed everything.
	 * Wait for the process itself. */
	deadline = xbd_now_ns() + STOP_WAIT_MS * 1000000ull;
	while (pid > 0 && xbd_proc_alive(&daemon_proc)) {
		if (xbd_now_ns() > deadline) {
			xbd_err("%s: the simulator (pid %d) does not exit", dir,
				(int)pid);
			return -ETIMEDOUT;
		}
		usleep(1000);
	}
	remove_log(dir);
	return 0;
}

int xbd_sim_vm_create(const char *dir, const char *name,
		      char *const guest_argv[], uint16_t *domid)
{
	const char **req;
	char *first = NULL;
	size_t n = 0, i;
	int err;

	while (guest_argv && guest_argv[n])
		n++;
	req = calloc(n + 3, sizeof(*req));
	if (!req) {
		xbd_err("out of memory");
		return -ENOMEM;
	}
	req[0] = "create";
	req[1] = name;
	for (i = 0; i < n; i++)
		req[2 + i] = guest_argv[i];
	err = ctl_call(dir, req, &first, NULL);
	free(req);
	if (err)
		return err;
	if (domid)
		*domid = (uint16_t)atoi(first);
	free(first);
	return 0;
}

int xbd_sim_vm_destroy(const char *dir, const char *name)
{
	const char *req[] = { "destroy", name, NULL };

	return ctl_call(dir, req, NULL, NULL);
}

int xbd_sim_vm_list(const char *dir, struct xbd_domain_info **list,
		    unsigned *count)
{
	static const char *const req[] = { "list", NULL };
	struct xbd_domain_info *out;
	char *rest = NULL, *line, *save = NULL;
	unsigned n = 0, lines = 0;
	int err = ctl_call(dir, req, NULL, &rest);

	if (err)
		return err;
	for (line = rest; *line; line++)
		lines += *line == '\n';
	out = calloc(lines ? lines : 1, sizeof(*out));
	if (!out) {
		free(rest);
		xbd_err("out of memory");
		return -ENOMEM;
	}
	for (line = strtok_r(rest, "\n", &save); line && n < lines;
	     line = strtok_r(NULL, "\n", &save)) {
		char *tab = strchr(line, '\t');

		if (!tab)
			continue;
		*tab = '\0';
		out[n].domid = (uint16_t)atoi(line);
		snprintf(out[n].name, sizeof(out[n].name), "%s", tab + 1);
		n++;
	}
	free(rest);
	*list = out;
	*count = n;
	return 0;
}

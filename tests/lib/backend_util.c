/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers shared by the backend tests: running xbd commands, killing
 * whatever they left running at exit, waiting on xenstore nodes
 * (declared in backend_util.h). */
#include "tests/lib/backend_util.h"


#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xbd/common.h"
#include "xbd/platform.h"
#include "xbd/util.h"
#include "tests/lib/testlib.h"

#define BT_MAX_PIDS 64

static pid_t bt_pids[BT_MAX_PIDS];
static unsigned bt_npids;
static pid_t bt_owner;

/* Everything still running goes at exit (even when a check failed). */
static void bt_kill_all(void)
{
	unsigned i;

	if (getpid() != bt_owner)
		return;
	for (i = 0; i < bt_npids; i++)
		if (bt_pids[i] > 0 && kill(bt_pids[i], SIGKILL) == 0)
			waitpid(bt_pids[i], NULL, WNOHANG);
	/* give killed daemons a moment to let go of the sim */
	if (bt_npids)
		usleep(100 * 1000);
	bt_npids = 0;
}

/* Kills pid at exit, unless it is gone by then.  The first call also
 * registers the handler, which runs before the sim is stopped when
 * called after xbd_test_sim_start(). */
void bt_track(pid_t pid)
{
	if (!bt_owner) {
		bt_owner = getpid();
		atexit(bt_kill_all);
	}
	if (pid > 0 && bt_npids < BT_MAX_PIDS)
		bt_pids[bt_npids++] = pid;
}

/* Starts `xbd ARGS...` (NULL-terminated); its output goes to ours. */
pid_t bt_spawnv(const char *const *args)
{
	const char *argv[48];
	unsigned n = 0;
	pid_t pid;

	argv[n++] = "xbd";
	while (*args && n < 47)
		argv[n++] = *args++;
	argv[n] = NULL;
	pid = xbd_test_fork();
	if (pid == 0) {
		execv(xbd_test_xbd_path(), (char *const *)argv);
		fprintf(stderr, "%s: %s\n", xbd_test_xbd_path(), strerror(errno));
		_exit(127);
	}
	bt_track(pid);
	return pid;
}

/* args[] = arg and the rest of ap up to NULL (at most 47), NULL-ended. */
static void collect_args(const char *args[48], const char *arg, va_list ap)
{
	unsigned n = 0;

	while (arg && n < 47) {
		args[n++] = arg;
		arg = va_arg(ap, const char *);
	}
	args[n] = NULL;
}

pid_t bt_spawn(const char *arg, ...)
{
	const char *args[48];
	va_list ap;

	va_start(ap, arg);
	collect_args(args, arg, ap);
	va_end(ap);
	return bt_spawnv(args);
}

/* The exit status of our child pid within ms (128+signal when killed);
 * -1 on timeout, after which it is killed. */
int bt_wait(pid_t pid, int ms)
{
	uint64_t deadline = xbd_now_ns() + (uint64_t)ms * 1000000u;
	int status;

	for (;;) {
		pid_t r = waitpid(pid, &status, WNOHANG);

		if (r == pid)
			break;
		if (r < 0 && errno != EINTR)
			return -1;
		if (xbd_now_ns() > deadline) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
			return -1;
		}
		usleep(5000);
	}
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* Runs `xbd ARGS...` to completion (at most ms); its exit status. */
int bt_run(int ms, const char *arg, ...)
{
	const char *args[48];
	va_list ap;

	va_start(ap, arg);
	collect_args(args, arg, ap);
	va_end(ap);
	return bt_wait(bt_spawnv(args), ms);
}

/* The one liveness check (xbd/util.h): a zombie counts as gone. */
bool bt_pid_alive(pid_t pid)
{
	return xbd_proc_alive(&(struct xbd_proc){ .pid = pid });
}

bool bt_wait_pid_gone(pid_t pid, int ms)
{
	uint64_t deadline = xbd_now_ns() + (uint64_t)ms * 1000000u;

	while (bt_pid_alive(pid)) {
		waitpid(pid, NULL, WNOHANG); /* when it is our child */
		if (xbd_now_ns() > deadline)
			return false;
		usleep(10000);
	}
	return true;
}

bool bt_exists(struct xbd_platform *p, const char *path)
{
	char *v = NULL;
	int err = xbd_xs_read(p, XBD_XS_NO_TXN, path, &v, NULL);

	free(v);
	return err == 0;
}

/* Waits until path reads `want` (NULL: until it exists). */
bool bt_wait_value(struct xbd_platform *p, const char *path,
		   const char *want, int ms)
{
	uint64_t deadline = xbd_now_ns() + (uint64_t)ms * 1000000u;

	for (;;) {
		char *v = NULL;
		bool ok = false;

		if (!xbd_xs_read_str(p, path, &v))
			ok = !want || !strcmp(v, want);
		free(v);
		if (ok)
			return true;
		if (xbd_now_ns() > deadline)
			return false;
		usleep(5000);
	}
}

bool bt_wait_gone(struct xbd_platform *p, const char *path, int ms)
{
	uint64_t deadline = xbd_now_ns() + (uint64_t)ms * 1000000u;

	while (bt_exists(p, path)) {
		if (xbd_now_ns() > deadline)
			return false;
		usleep(5000);
	}
	return true;
}

long long bt_read_ll(struct xbd_platform *p, const char *path)
{
	char *v = NULL;
	long long n = -1;

	if (!xbd_xs_read_str(p, path, &v))
		n = strtoll(v, NULL, 10);
	free(v);
	return n;
}

/* Deterministic bytes: the same (seed, offset) always gives the same. */
void bt_pattern(void *buf, size_t len, uint64_t seed, uint64_t off)
{
	unsigned char *b = buf;
	size_t i;

	for (i = 0; i < len; i++) {
		uint64_t x = (seed + off + i) * 0x9e3779b97f4a7c15ull;

		b[i] = (unsigned char)(x >> 56 ^ x >> 29);
	}
}

/* A file of len pattern bytes. */
void bt_make_file(const char *path, size_t len, uint64_t seed)
{
	char *buf = malloc(len);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

	if (!buf || fd < 0) {
		perror(path);
		exit(1);
	}
	bt_pattern(buf, len, seed, 0);
	if (write(fd, buf, len) != (ssize_t)len) {
		perror(path);
		exit(1);
	}
	close(fd);
	free(buf);
}

/* The whole file, malloc'd; *len its size. */
char *bt_read_file(const char *path, size_t *len)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	off_t size;
	char *buf;

	if (fd < 0)
		return NULL;
	size = lseek(fd, 0, SEEK_END);
	buf = malloc(size > 0 ? (size_t)size : 1);
	if (!buf || pread(fd, buf, (size_t)size, 0) != size) {
		free(buf);
		close(fd);
		return NULL;
	}
	close(fd);
	*len = (size_t)size;
	return buf;
}

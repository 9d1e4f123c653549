/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Test helpers: a simulated Xen of the test's own, and a message channel
 * between a test's processes (declared in tests/lib/testlib.h). */
#include "tests/lib/testlib.h"
#include "xbd/common.h"
#include "xbd/util.h"
#include "src/sim/sim.h"

#include <errno.h>
#include <fcntl.h>
#include <ftw.h>
#include <libgen.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#define MSG_TIMEOUT_MS 10000

static char sim_dir[64];
static pid_t sim_owner; /* the process that started the sim */
static char xbd_path[4096];

const char *xbd_test_xbd_path(void)
{
	const char *build = getenv("XBD_BUILD");
	char exe[4096];
	ssize_t n;

	if (xbd_path[0])
		return xbd_path;
	if (build && *build) {
		snprintf(xbd_path, sizeof(xbd_path), "%s/xbd", build);
		return xbd_path;
	}
	/* BUILD/tests/test_foo -> BUILD/xbd */
	n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	if (n <= 0) {
		snprintf(xbd_path, sizeof(xbd_path), "build/xbd");
		return xbd_path;
	}
	exe[n] = '\0';
	snprintf(xbd_path, sizeof(xbd_path), "%s/xbd", dirname(dirname(exe)));
	return xbd_path;
}

/* Runs xbd with argv (argv[0] included); its exit status. */
static int run_xbd(char *const argv[])
{
	int status;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -1;
	if (pid == 0) {
		execv(xbd_test_xbd_path(), argv);
		fprintf(stderr, "%s: %s\n", xbd_test_xbd_path(), strerror(errno));
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
}

/* The daemon's log goes to our stderr, so that the test runner sees any
 * sanitizer report the daemon wrote. */
static void copy_sim_log(void)
{
	char path[128], buf[4096];
	ssize_t n;
	int fd;

	snprintf(path, sizeof(path), "%s/sim.log", sim_dir);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	fprintf(stderr, "---- %s ----\n", path);
	fflush(stderr);
	while ((n = read(fd, buf, sizeof(buf))) > 0)
		if (write(2, buf, (size_t)n) != n)
			break;
	close(fd);
	fprintf(stderr, "---- end of sim log ----\n");
}

static int remove_entry(const char *path, const struct stat *st, int type,
			struct FTW *ftw)
{
	(void)st;
	(void)ftw;
	if (type == FTW_DP)
		rmdir(path);
	else
		unlink(path);
	return 0;
}

/* The whole directory: tests may keep their own files in it too. */
static void remove_sim_dir(void)
{
	nftw(sim_dir, remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

int xbd_test_sim_stop(void)
{
	char *argv[] = { (char *)"xbd", (char *)"sim", (char *)"stop",
			 (char *)"--dir", sim_dir, NULL };
	int rc;

	if (!sim_dir[0] || getpid() != sim_owner)
		return 0; /* not started, or a forked child of the owner */
	setenv("XBD_SIM_KEEP_LOG", "1", 1);
	rc = run_xbd(argv);
	unsetenv("XBD_SIM_KEEP_LOG");
	copy_sim_log();
	remove_sim_dir();
	sim_dir[0] = '\0';
	return rc == 0 ? 0 : -1;
}

static void stop_at_exit(void)
{
	xbd_test_sim_stop();
}

const char *xbd_test_sim_start(void)
{
	static bool registered;
	char owner[32];
	char *argv[] = { (char *)"xbd", (char *)"sim", (char *)"start",
			 (char *)"--dir", sim_dir, (char *)"--owner-pid", owner,
			 NULL };
	int rc;

	/* tmpfs if there is one: domain memory is a shared file there */
	snprintf(sim_dir, sizeof(sim_dir), "%s/xbd-test-sim.XXXXXX",
		 access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
	if (!mkdtemp(sim_dir)) {
		fprintf(stderr, "mkdtemp: %s\n", strerror(errno));
		exit(1);
	}
	snprintf(owner, sizeof(owner), "%d", (int)getpid());
	rc = run_xbd(argv);
	if (rc != 0) {
		fprintf(stderr, "%s sim start --dir %s: exit %d\n",
			xbd_test_xbd_path(), sim_dir, rc);
		copy_sim_log();
		remove_sim_dir();
		exit(1);
	}
	sim_owner = getpid();
	if (!registered) {
		atexit(stop_at_exit);
		registered = true;
	}
	setenv(XBD_SIM_DIR_ENV, sim_dir, 1);
	return sim_dir;
}

uint16_t xbd_test_sim_vm_create(const char *name)
{
	uint16_t domid;

	if (xbd_sim_vm_create(sim_dir, name, NULL, &domid)) {
		fprintf(stderr, "cannot create sim domain %s\n", name);
		exit(1);
	}
	return domid;
}

/* A test that uses this file may open the sim platform, through it or
 * by itself: hand libxbd the sim's opener before main() runs.  (A test
 * that links nothing from here calls xbd_platform_set_sim() itself.) */
__attribute__((constructor)) static void use_sim_platform(void)
{
	xbd_platform_set_sim(xbd_platform_sim_open);
}

struct xbd_platform *xbd_test_sim_open(uint16_t domid)
{
	struct xbd_platform_config cfg = {
		.kind = XBD_PLATFORM_SIM, .sim_dir = sim_dir, .sim_domid = domid,
	};
	struct xbd_platform *p;
	int err = xbd_platform_open(&cfg, &p);

	if (err) {
		fprintf(stderr, "cannot open the sim in %s as domain %u: %s\n",
			sim_dir, domid, xbd_strerror(err));
		exit(1);
	}
	return p;
}

pid_t xbd_test_fork(void)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		perror("fork");
		exit(1);
	}
	return pid;
}

pid_t xbd_test_fork_guest(int (*guest)(int fd, uint16_t self, uint16_t other),
			  uint16_t self, uint16_t other, int *peer_fd)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) < 0) {
		perror("socketpair");
		exit(1);
	}
	pid = xbd_test_fork();
	if (pid == 0) {
		close(sv[0]);
		exit(guest(sv[1], self, other));
	}
	close(sv[1]);
	*peer_fd = sv[0];
	return pid;
}

int xbd_test_guest_and_host(int (*guest)(int fd, uint16_t self, uint16_t other),
			    void (*host)(int fd, uint16_t guest_id, uint16_t other),
			    struct xbd_platform **dom0)
{
	uint16_t guest_id = xbd_test_sim_vm_create("guest");
	uint16_t other = xbd_test_sim_vm_create("other");
	int fd, status = -1;
	pid_t pid;

	pid = xbd_test_fork_guest(guest, guest_id, other, &fd);
	*dom0 = xbd_test_sim_open(0);
	host(fd, guest_id, other);
	waitpid(pid, &status, 0);
	close(fd);
	xbd_platform_close(*dom0);
	*dom0 = NULL;
	return WIFEXITED(status) && WEXITSTATUS(status) == 0 ? 0 : -1;
}

void xbd_test_send(int fd, const void *msg, size_t len)
{
	const char *p = msg;

	while (len) {
		ssize_t n = write(fd, p, len);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "test message: write: %s\n",
				n < 0 ? strerror(errno) : "short write");
			exit(1);
		}
		p += n;
		len -= (size_t)n;
	}
}

void xbd_test_recv(int fd, void *msg, size_t len)
{
	char *p = msg;

	while (len) {
		ssize_t n;

		if (xbd_wait_readable(fd, MSG_TIMEOUT_MS) <= 0) {
			fprintf(stderr, "test message: peer silent for %d ms\n",
				MSG_TIMEOUT_MS);
			exit(1);
		}
		n = read(fd, p, len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0) {
			fprintf(stderr, "test message: %s\n",
				n < 0 ? strerror(errno) : "peer hung up");
			exit(1);
		}
		p += n;
		len -= (size_t)n;
	}
}

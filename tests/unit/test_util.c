/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The one size parser, the one number parser, the one liveness check. */
#include "xbd/common.h"
#include "xbd/util.h"
#include "tests/lib/check.h"

#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static void size_ok(const char *s, uint64_t expect)
{
	uint64_t v = 0;
	int err = xbd_parse_byte_size(s, &v);

	CHECK_EQ(err, 0);
	if (err || v != expect)
		fprintf(stderr, "  size '%s': %d, %llu\n", s, err,
			(unsigned long long)v);
	CHECK(v == expect);
}

static void size_bad(const char *s, int expect)
{
	uint64_t v = 12345;

	CHECK_EQ(xbd_parse_byte_size(s, &v), expect);
	CHECK(v == 12345); /* untouched on failure */
}

static void test_sizes(void)
{
	size_ok("0", 0);
	size_ok("4096", 4096);
	size_ok("4k", 4096);
	size_ok("4K", 4096);
	size_ok("4KiB", 4096);
	size_ok("4KB", 4096);
	size_ok("4kib", 4096);
	size_ok("4Ki", 4096);
	size_ok("1M", 1u << 20);
	size_ok("1MiB", 1u << 20);
	size_ok("10G", 10ull << 30);
	size_ok("2TiB", 2ull << 40);
	size_ok("18446744073709551615", UINT64_MAX);
	size_ok("16777215T", 16777215ull << 40);

	size_bad("16777216T", -ERANGE);
	size_bad("18446744073709551616", -ERANGE);
	size_bad("99999999999999999999999", -ERANGE);
	size_bad("", -EINVAL);
	size_bad(NULL, -EINVAL);
	size_bad("K", -EINVAL);
	size_bad("-1", -EINVAL);
	size_bad("+1", -EINVAL);
	size_bad(" 1", -EINVAL);
	size_bad("1 ", -EINVAL);
	size_bad("0x10", -EINVAL);
	size_bad("1.5G", -EINVAL);
	size_bad("1B", -EINVAL);
	size_bad("1iB", -EINVAL);
	size_bad("1KK", -EINVAL);
	size_bad("1KiBx", -EINVAL);
	size_bad("1P", -EINVAL);
}

static void uint_ok(const char *s, unsigned long long max,
		    unsigned long long expect)
{
	unsigned long long v = 0;

	CHECK_EQ(xbd_parse_uint(s, max, &v), 0);
	CHECK(v == expect);
}

static void test_uints(void)
{
	unsigned long long v = 7;

	uint_ok("0", 0, 0);
	uint_ok("42", 42, 42);
	uint_ok("007", 10, 7);
	uint_ok("65535", UINT16_MAX, 65535);
	uint_ok("18446744073709551615", UINT64_MAX, UINT64_MAX);
	CHECK_EQ(xbd_parse_uint("43", 42, &v), -ERANGE);
	CHECK_EQ(xbd_parse_uint("1", 0, &v), -ERANGE);
	CHECK_EQ(xbd_parse_uint("65536", UINT16_MAX, &v), -ERANGE);
	CHECK_EQ(xbd_parse_uint("18446744073709551616", UINT64_MAX, &v), -ERANGE);
	CHECK_EQ(xbd_parse_uint("", 10, &v), -EINVAL);
	CHECK_EQ(xbd_parse_uint(NULL, 10, &v), -EINVAL);
	CHECK_EQ(xbd_parse_uint("-1", UINT64_MAX, &v), -EINVAL);
	CHECK_EQ(xbd_parse_uint("+1", 10, &v), -EINVAL);
	CHECK_EQ(xbd_parse_uint(" 1", 10, &v), -EINVAL);
	CHECK_EQ(xbd_parse_uint("1x", 10, &v), -EINVAL);
	CHECK_EQ(xbd_parse_uint("1K", UINT64_MAX, &v), -EINVAL);
	CHECK(v == 7); /* untouched on failure */
}

/* A child that exits at once; *rec names it while it runs. */
static pid_t short_child(struct xbd_proc *rec)
{
	int pfd[2];
	pid_t pid;
	char c;

	if (pipe(pfd))
		return -1;
	pid = fork();
	if (pid == 0) {
		close(pfd[1]);
		/* waits to be looked at, then exits */
		if (read(pfd[0], &c, 1) < 0)
			_exit(1);
		_exit(0);
	}
	close(pfd[0]);
	if (pid > 0) {
		CHECK_EQ(xbd_proc_of(pid, rec), 0);
		CHECK(xbd_proc_alive(rec));
	}
	close(pfd[1]); /* EOF: the child exits */
	return pid;
}

static bool is_zombie(pid_t pid)
{
	siginfo_t si = { 0 };

	return waitid(P_PID, (id_t)pid, &si, WEXITED | WNOHANG | WNOWAIT) == 0 &&
	       si.si_pid == pid;
}

/* A child that names itself comm and waits to be killed. */
static pid_t named_child(const char *comm)
{
	int pfd[2];
	char c;
	pid_t pid;

	if (pipe(pfd))
		return -1;
	pid = fork();
	if (pid == 0) {
		prctl(PR_SET_NAME, comm, 0, 0, 0);
		if (write(pfd[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(pfd[1]);
	if (pid > 0 && read(pfd[0], &c, 1) != 1)
		pid = -1;
	close(pfd[0]);
	return pid;
}

static void test_liveness(void)
{
	struct xbd_proc self, rec, wrong, bare;
	struct timespec ms = { 0, 1000000 };
	int i;
	pid_t pid;

	CHECK_EQ(xbd_proc_self(&self), 0);
	CHECK(self.pid == getpid());
	CHECK(self.start != 0);
	CHECK(xbd_proc_alive(&self));

	/* the same PID with another start time: a later process that got
	 * the PID again, never the recorded one */
	wrong = self;
	wrong.start++;
	CHECK(!xbd_proc_alive(&wrong));
	/* an old record without a start time: only an xbd process can be
	 * the one recorded (this test program is not xbd) ... */
	bare = (struct xbd_proc){ .pid = self.pid };
	CHECK(!xbd_proc_alive(&bare));
	/* ... and one named xbd may be */
	pid = named_child("xbd");
	CHECK(pid > 0);
	bare = (struct xbd_proc){ .pid = pid };
	CHECK(xbd_proc_alive(&bare));
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
	CHECK(!xbd_proc_alive(&bare));

	/* a zombie has exited: dead, though its PID still exists */
	pid = short_child(&rec);
	CHECK(pid > 0);
	for (i = 0; i < 5000 && pid > 0 && !is_zombie(pid); i++)
		nanosleep(&ms, NULL);
	CHECK(kill(pid, 0) == 0); /* the PID is still taken */
	CHECK(!xbd_proc_alive(&rec));
	bare = (struct xbd_proc){ .pid = pid };
	CHECK(!xbd_proc_alive(&bare));

	/* reaped: the PID is free */
	CHECK(waitpid(pid, NULL, 0) == pid);
	CHECK(!xbd_proc_alive(&rec));
	CHECK(!xbd_proc_alive(&bare));
	CHECK_EQ(xbd_proc_of(pid, &rec), -ESRCH);

	bare = (struct xbd_proc){ .pid = 0 };
	CHECK(!xbd_proc_alive(&bare));
	bare.pid = -1;
	CHECK(!xbd_proc_alive(&bare));
}

int main(void)
{
	test_sizes();
	test_uints();
	test_liveness();
	return check_report("test_util");
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The confined child (src/sandbox.c): what it may do (read its volume
 * through the parent, in range), what it may not (files, sockets, root),
 * and what its parent makes of a child that crashes, hangs or talks
 * nonsense: -EIO at once and for good, never a hang or a crash.
 */
#include "xbd/sandbox.h"
#include "xbd/common.h"
#include "tests/lib/check.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#define VOL_SIZE 4096u

static int vol_read(void *ctx, uint32_t src, void *buf, size_t len, uint64_t off)
{
	(void)ctx;
	if (src != 0 || off > VOL_SIZE || len > VOL_SIZE - off)
		return -EINVAL;
	for (size_t i = 0; i < len; i++)
		((unsigned char *)buf)[i] = (unsigned char)(off + i);
	return 0;
}

struct report {
	uint32_t uid, euid;
	int32_t open_ret, open_errno, bad_read, other_src;
	unsigned char data[16];
};

static int child_report(int fd, void *arg)
{
	struct report r;

	(void)arg;
	memset(&r, 0, sizeof(r));
	r.uid = (uint32_t)getuid();
	r.euid = (uint32_t)geteuid();
	r.open_ret = open("/etc/passwd", O_RDONLY);
	r.open_errno = errno;
	r.bad_read = xbd_sb_child_read(fd, 0, r.data, 16, VOL_SIZE - 8);
	r.other_src = xbd_sb_child_read(fd, 1, r.data, 16, 0);
	if (xbd_sb_child_read(fd, 0, r.data, 16, 100))
		return 1;
	return xbd_sb_send(fd, XBD_SB_REPLY, &r, sizeof(r)) ? 1 : 0;
}

static int child_socket(int fd, void *arg)
{
	(void)fd;
	(void)arg;
	return socket(AF_INET, SOCK_STREAM, 0) >= 0 ? 0 : 3;
}

static int child_hang(int fd, void *arg)
{
	volatile unsigned long n = 0;

	(void)fd;
	(void)arg;
	for (;;)
		n++;
	return 0;
}

static int child_segv(int fd, void *arg)
{
	(void)fd;
	(void)arg;
	*(volatile int *)(uintptr_t)64 = 1; /* not NULL: no UBSan report */
	return 0;
}

static int child_nonsense(int fd, void *arg)
{
	(void)arg;
	xbd_sb_send(fd, 99, "junk", 4);
	return 0;
}

static int child_huge(int fd, void *arg)
{
	struct xbd_sb_hdr h = { .op = XBD_SB_REPLY, .len = XBD_SB_MAX + 1 };

	(void)arg;
	return write(fd, &h, sizeof(h)) == sizeof(h) ? 0 : 1;
}

/* Reads the page at arg: a shared mapping of the parent's (like a
 * granted page) must be gone, so this dies; a private one is there. */
static int child_peek(int fd, void *arg)
{
	char c = *(volatile char *)arg;

	return xbd_sb_send(fd, XBD_SB_REPLY, &c, 1) ? 1 : 0;
}

static int child_stderr(int fd, void *arg)
{
	static const char msg[] = "complaint: test\x1b[31m report\n";

	(void)arg;
	if (write(2, msg, sizeof(msg) - 1) != (ssize_t)sizeof(msg) - 1)
		return 1;
	return xbd_sb_send(fd, XBD_SB_REPLY, "ok", 2) ? 1 : 0;
}

static void shared_maps(void)
{
	char *shared = mmap(NULL, 4096, PROT_READ | PROT_WRITE,
			    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	char *priv = malloc(1);
	struct xbd_sandbox *sb;
	void *reply;
	size_t len;

	CHECK(shared != MAP_FAILED && priv);
	if (shared == MAP_FAILED || !priv)
		return;
	shared[0] = 's';
	priv[0] = 'p';
	CHECK_EQ(xbd_sandbox_start("peek", child_peek, shared, vol_read, NULL, &sb), 0);
	CHECK_EQ(xbd_sandbox_call(sb, 0, NULL, 0, &reply, &len), -EIO);
	xbd_sandbox_stop(sb);
	CHECK_EQ(xbd_sandbox_start("peek", child_peek, priv, vol_read, NULL, &sb), 0);
	CHECK_EQ(xbd_sandbox_call(sb, 0, NULL, 0, &reply, &len), 0);
	CHECK(len == 1 && reply && *(char *)reply == 'p');
	free(reply);
	xbd_sandbox_stop(sb);
	munmap(shared, 4096);
	free(priv);
}

/* What the child writes to its stderr reaches ours, as printable text. */
static void child_stderr_logged(void)
{
	char path[] = "/tmp/test_sandbox.XXXXXX", got[4096];
	int f = mkstemp(path), saved = dup(2);
	struct xbd_sandbox *sb;
	void *reply;
	size_t len;
	ssize_t n;

	CHECK(f >= 0 && saved >= 0);
	if (f < 0 || saved < 0)
		return;
	unlink(path);
	fflush(stderr);
	dup2(f, 2);
	CHECK_EQ(xbd_sandbox_start("err", child_stderr, NULL, vol_read, NULL, &sb), 0);
	CHECK_EQ(xbd_sandbox_call(sb, 0, NULL, 0, &reply, &len), 0);
	free(reply);
	xbd_sandbox_stop(sb);
	fflush(stderr);
	dup2(saved, 2);
	close(saved);
	n = pread(f, got, sizeof(got) - 1, 0);
	close(f);
	CHECK(n > 0);
	got[n > 0 ? n : 0] = 0;
	CHECK(strstr(got, "err: parser says: complaint: test?[31m report") != NULL);
}

/* fn's child must fail the call with -EIO, and the next call at once. */
static void dies(const char *what, xbd_sandbox_main_fn *fn, unsigned timeout_ms)
{
	struct xbd_sandbox *sb;
	void *reply;
	size_t len;

	CHECK_EQ(xbd_sandbox_start(what, fn, NULL, vol_read, NULL, &sb), 0);
	if (timeout_ms)
		xbd_sandbox_set_timeout(sb, timeout_ms);
	CHECK_EQ(xbd_sandbox_call(sb, 0, NULL, 0, &reply, &len), -EIO);
	CHECK(reply == NULL);
	CHECK_EQ(xbd_sandbox_call(sb, 16, "x", 1, &reply, &len), -EIO);
	xbd_sandbox_stop(sb);
}

int main(void)
{
	struct xbd_sandbox *sb;
	struct report r;
	void *reply;
	size_t len;

	CHECK_EQ(xbd_sandbox_start("test", child_report, NULL, vol_read, NULL, &sb), 0);
	CHECK_EQ(xbd_sandbox_call(sb, 0, NULL, 0, &reply, &len), 0);
	CHECK_EQ(len, sizeof(r));
	if (reply && len == sizeof(r)) {
		memcpy(&r, reply, sizeof(r));
		if (geteuid() == 0) {
			CHECK(r.uid != 0);
			CHECK(r.euid != 0);
		}
		CHECK_EQ(r.open_ret, -1);       /* no files */
		CHECK_EQ(r.open_errno, EACCES);
		CHECK_EQ(r.bad_read, -EINVAL);  /* past its volume */
		CHECK_EQ(r.other_src, -EINVAL); /* not its volume */
		CHECK_EQ(r.data[0], 100);
		CHECK_EQ(r.data[15], 115);
	}
	free(reply);
	xbd_sandbox_stop(sb);

	dies("socket", child_socket, 0);       /* seccomp kills it */
	dies("segv", child_segv, 0);
	dies("hang", child_hang, 300);
	dies("nonsense", child_nonsense, 0);
	dies("huge", child_huge, 0);
	shared_maps();
	child_stderr_logged();
	return check_report("test_sandbox");
}

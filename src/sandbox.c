/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Confined children for parsing guest-written metadata (see
 * include/xbd/sandbox.h for what the child may do and why it reads the
 * disk through its parent).
 *
 * Why fork without exec: the parsers are linked into xbd already, and
 * the child needs none of the parent's state but the socket; exec would
 * need a helper binary on a path (and the test and fuzz programs would
 * need one too).  The child confines itself at once, before it has read
 * a guest byte, and never returns from its main function.
 */
#include "xbd/sandbox.h"
#include "xbd/common.h"
#include "xbd/util.h"

#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <poll.h>
#include <seccomp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* The child's uid is this plus its pid: no account has it (Debian's
 * dynamic and system ranges are far below), and no two live children
 * share one, so a confined child cannot signal or trace another. */
#define SB_UID_BASE 0x6b000000u
#define SB_FD 3

struct xbd_sandbox {
	pid_t pid;
	int fd;                   /* non-blocking */
	bool dead;
	unsigned timeout_ms;
	xbd_sandbox_read_fn *rd;
	void *rd_ctx;
	char what[64];
};

/* ---- the child ---- */

static int confine_seccomp(void)
{
	static const int mem[] = {
		SCMP_SYS(brk), SCMP_SYS(mmap), SCMP_SYS(munmap), SCMP_SYS(mremap),
		SCMP_SYS(madvise), SCMP_SYS(mprotect), SCMP_SYS(exit),
		SCMP_SYS(exit_group), SCMP_SYS(rt_sigreturn),
		SCMP_SYS(rt_sigprocmask), SCMP_SYS(futex), SCMP_SYS(clock_gettime),
		SCMP_SYS(gettimeofday), SCMP_SYS(getpid), SCMP_SYS(gettid),
		SCMP_SYS(sched_yield), SCMP_SYS(sigaltstack), SCMP_SYS(getuid),
		SCMP_SYS(geteuid), SCMP_SYS(getgid), SCMP_SYS(getegid),
	};
	/* the socket's calls, on the socket only */
	static const int io[] = {
		SCMP_SYS(read), SCMP_SYS(write), SCMP_SYS(readv), SCMP_SYS(writev),
		SCMP_SYS(sendto), SCMP_SYS(recvfrom),
	};
	/* what libraries try on the side (stdio's fstat of stderr, isatty,
	 * a stray open): refused, not fatal */
	static const int refused[] = {
		SCMP_SYS(fstat), SCMP_SYS(newfstatat), SCMP_SYS(ioctl),
		SCMP_SYS(lseek), SCMP_SYS(openat), SCMP_SYS(open),
		SCMP_SYS(close), SCMP_SYS(getrandom), SCMP_SYS(prctl),
		SCMP_SYS(readlink), SCMP_SYS(getcwd), SCMP_SYS(statx),
	};
	scmp_filter_ctx ctx = seccomp_init(SCMP_ACT_KILL_PROCESS);
	int err = 0;

	if (!ctx)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(mem) / sizeof(mem[0]) && !err; i++)
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, mem[i], 0);
	for (size_t i = 0; i < sizeof(io) / sizeof(io[0]) && !err; i++) {
		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, io[i], 1,
				       SCMP_A0(SCMP_CMP_EQ, SB_FD));
		if (!err)
			err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EBADF), io[i], 1,
					       SCMP_A0(SCMP_CMP_NE, SB_FD));
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]) && !err; i++)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), refused[i], 0);
	if (!err)
		err = seccomp_load(ctx);
	seccomp_release(ctx);
	return err;
}

/* Everything before the first guest byte; any failure ends the child. */
static int confine(int sock, pid_t parent)
{
	char dir[] = "/tmp/xbd-sandbox.XXXXXX";
	struct rlimit zero = { 0, 0 }, nofile = { SB_FD + 1, SB_FD + 1 };
	int null, dfd;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		return -1;
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (null < 0 || dup2(null, 0) < 0 || dup2(null, 1) < 0 || dup2(null, 2) < 0)
		return -1;
	if (sock == SB_FD) {
		if (fcntl(sock, F_SETFD, 0))
			return -1;
	} else if (dup2(sock, SB_FD) < 0) {
		return -1;
	}
	/* a deleted empty directory as the root: nothing can be made in it */
	if (!mkdtemp(dir))
		return -1;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rmdir(dir) || dfd < 0 || fchdir(dfd) || chroot(".") || chdir("/"))
		return -1;
	if (syscall(SYS_close_range, SB_FD + 1, ~0u, 0))
		return -1;
	if (setrlimit(RLIMIT_NOFILE, &nofile) || setrlimit(RLIMIT_FSIZE, &zero) ||
	    setrlimit(RLIMIT_CORE, &zero))
		return -1;
	if (geteuid() == 0) {
		uid_t id = SB_UID_BASE + (uid_t)getpid();

		for (int cap = 0; cap <= CAP_LAST_CAP; cap++)
			if (prctl(PR_CAPBSET_DROP, cap, 0, 0, 0) && errno != EINVAL)
				return -1;
		if (setgroups(0, NULL) || setresgid(id, id, id) ||
		    setresuid(id, id, id))
			return -1;
		if (getuid() != id || geteuid() != id || setuid(0) == 0)
			return -1;
		/* the new ids cleared the parent-death signal: armed again,
		 * and the parent checked again in case it died in between */
		if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
			return -1;
	}
	if (setrlimit(RLIMIT_NPROC, &zero))
		return -1;
	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) || prctl(PR_SET_DUMPABLE, 0))
		return -1;
	return confine_seccomp() ? -1 : 0;
}

static int child_full(int fd, void *buf, size_t len, bool out)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = out ? send(fd, (char *)buf + done, len - done, MSG_NOSIGNAL)
				: recv(fd, (char *)buf + done, len - done, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EPIPE;
		done += (size_t)r;
	}
	return 0;
}

int xbd_sb_send(int fd, uint32_t op, const void *buf, size_t len)
{
	struct xbd_sb_hdr h = { .op = op, .len = (uint32_t)len };
	int err;

	if (len > XBD_SB_MAX)
		return -EMSGSIZE;
	err = child_full(fd, &h, sizeof(h), true);
	return err || !len ? err : child_full(fd, (void *)buf, len, true);
}

int xbd_sb_recv(int fd, uint32_t *op, void *buf, size_t cap, size_t *len)
{
	struct xbd_sb_hdr h;
	int err = child_full(fd, &h, sizeof(h), false);

	if (err)
		return err;
	if (h.len > cap)
		return -EMSGSIZE;
	*op = h.op;
	*len = h.len;
	return h.len ? child_full(fd, buf, h.len, false) : 0;
}

int xbd_sb_child_read(int fd, uint32_t src, void *buf, size_t len, uint64_t off)
{
	struct xbd_sb_read rq = { .src = src, .len = (uint32_t)len, .off = off };
	struct xbd_sb_hdr h;
	int32_t e;
	int err;

	if (len > XBD_SB_MAX)
		return -EINVAL;
	err = xbd_sb_send(fd, XBD_SB_READ, &rq, sizeof(rq));
	if (!err)
		err = child_full(fd, &h, sizeof(h), false);
	if (err)
		return err;
	if (h.op == XBD_SB_ERR && h.len == sizeof(e)) {
		err = child_full(fd, &e, sizeof(e), false);
		return err ? err : e < 0 ? e : -EIO;
	}
	if (h.op != XBD_SB_DATA || h.len != len)
		return -EPROTO;
	return child_full(fd, buf, len, false);
}

/* ---- the parent ---- */

static long long ms_left(unsigned long long deadline)
{
	unsigned long long now = xbd_now_ns();

	return now >= deadline ? 0 : (long long)((deadline - now) / 1000000) + 1;
}

/* All of len, or -ETIMEDOUT past the deadline, or -EPIPE when the
 * child has gone. */
static int parent_full(int fd, void *buf, size_t len, bool out,
		       unsigned long long deadline)
{
	size_t done = 0;

	while (done < len) {
		ssize_t r = out ? send(fd, (char *)buf + done, len - done, MSG_NOSIGNAL)
				: recv(fd, (char *)buf + done, len - done, 0);

		if (r > 0) {
			done += (size_t)r;
			continue;
		}
		if (r == 0)
			return -EPIPE;
		if (errno == EINTR)
			continue;
		if (errno != EAGAIN && errno != EWOULDBLOCK)
			return -errno;
		struct pollfd pfd = { .fd = fd, .events = out ? POLLOUT : POLLIN };
		long long left = ms_left(deadline);

		if (!left)
			return -ETIMEDOUT;
		if (poll(&pfd, 1, (int)(left > 60000 ? 60000 : left)) < 0 &&
		    errno != EINTR)
			return -errno;
	}
	return 0;
}

static int parent_send(struct xbd_sandbox *sb, uint32_t op, const void *buf,
		       size_t len, unsigned long long deadline)
{
	struct xbd_sb_hdr h = { .op = op, .len = (uint32_t)len };
	int err = parent_full(sb->fd, &h, sizeof(h), true, deadline);

	return err || !len ? err : parent_full(sb->fd, (void *)buf, len, true, deadline);
}

static void sandbox_kill(struct xbd_sandbox *sb, const char *why)
{
	int status = 0;

	if (sb->dead)
		return;
	sb->dead = true;
	kill(sb->pid, SIGKILL);
	while (waitpid(sb->pid, &status, 0) < 0 && errno == EINTR)
		;
	if (why) {
		if (WIFSIGNALED(status) && WTERMSIG(status) != SIGKILL)
			xbd_err("%s: parser killed by signal %d (%s); its files now answer EIO",
				sb->what, WTERMSIG(status), strsignal(WTERMSIG(status)));
		else
			xbd_err("%s: parser stopped: %s; its files now answer EIO",
				sb->what, why);
	}
}

/* Serves one XBD_SB_READ of the child's. */
static int serve_read(struct xbd_sandbox *sb, const void *payload, size_t len,
		      unsigned long long deadline)
{
	struct xbd_sb_read rq;
	int32_t e;
	void *buf;
	int err;

	if (len != sizeof(rq))
		return -EPROTO;
	memcpy(&rq, payload, sizeof(rq));
	if (rq.len > XBD_SB_MAX)
		return -EPROTO;
	buf = malloc(rq.len ? rq.len : 1);
	if (!buf)
		return -ENOMEM;
	err = sb->rd(sb->rd_ctx, rq.src, buf, rq.len, rq.off);
	if (err) {
		e = err;
		err = parent_send(sb, XBD_SB_ERR, &e, sizeof(e), deadline);
	} else {
		err = parent_send(sb, XBD_SB_DATA, buf, rq.len, deadline);
	}
	free(buf);
	return err;
}

int xbd_sandbox_call(struct xbd_sandbox *sb, uint32_t op, const void *req,
		     size_t req_len, void **reply, size_t *len)
{
	unsigned long long deadline = xbd_now_ns() +
				      sb->timeout_ms * 1000000ull;
	void *buf = NULL;
	int err = 0;

	*reply = NULL;
	*len = 0;
	if (sb->dead)
		return -EIO;
	if (op)
		err = parent_send(sb, op, req, req_len, deadline);
	while (!err) {
		struct xbd_sb_hdr h;

		err = parent_full(sb->fd, &h, sizeof(h), false, deadline);
		if (err)
			break;
		if (h.len > XBD_SB_MAX) {
			err = -EPROTO;
			break;
		}
		buf = malloc(h.len ? h.len : 1);
		if (!buf) {
			err = -ENOMEM;
			break;
		}
		err = parent_full(sb->fd, buf, h.len, false, deadline);
		if (err)
			break;
		if (h.op == XBD_SB_REPLY) {
			*reply = buf;
			*len = h.len;
			return 0;
		}
		err = h.op == XBD_SB_READ ? serve_read(sb, buf, h.len, deadline)
					  : -EPROTO;
		free(buf);
		buf = NULL;
	}
	free(buf);
	sandbox_kill(sb, err == -ETIMEDOUT ? "no answer in time" :
			 err == -EPROTO ? "broke the protocol" :
			 err == -EPIPE ? "exited" : xbd_strerror(err));
	return -EIO;
}

int xbd_sandbox_start(const char *what, xbd_sandbox_main_fn *fn, void *arg,
		      xbd_sandbox_read_fn *rd, void *rd_ctx,
		      struct xbd_sandbox **out)
{
	struct xbd_sandbox *sb = calloc(1, sizeof(*sb));
	int sv[2], err;
	pid_t parent;

	if (!sb)
		return -ENOMEM;
	snprintf(sb->what, sizeof(sb->what), "%s", what);
	sb->timeout_ms = XBD_SB_TIMEOUT_MS;
	sb->rd = rd;
	sb->rd_ctx = rd_ctx;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		err = -errno;
		free(sb);
		return err;
	}
	parent = getpid();
	sb->pid = fork();
	if (sb->pid < 0) {
		err = -errno;
		close(sv[0]);
		close(sv[1]);
		free(sb);
		return err;
	}
	if (sb->pid == 0) {
		close(sv[0]);
		if (confine(sv[1], parent))
			_exit(126);
		_exit(fn(SB_FD, arg));
	}
	close(sv[1]);
	sb->fd = sv[0];
	if (fcntl(sb->fd, F_SETFL, O_NONBLOCK)) {
		err = -errno;
		sandbox_kill(sb, NULL);
		close(sb->fd);
		free(sb);
		return err;
	}
	*out = sb;
	return 0;
}

void xbd_sandbox_set_timeout(struct xbd_sandbox *sb, unsigned ms)
{
	sb->timeout_ms = ms;
}

void xbd_sandbox_stop(struct xbd_sandbox *sb)
{
	if (!sb)
		return;
	sandbox_kill(sb, NULL);
	close(sb->fd);
	free(sb);
}

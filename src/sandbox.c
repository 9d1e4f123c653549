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
#include <sys/mman.h>
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
#define SB_ERR_FD 2
/* Bytes of a child's stderr logged at most (then dropped): a hostile
 * parser must not fill the log. */
#define SB_ERR_MAX (256u << 10)
#define SB_ERR_LINE 240

struct xbd_sandbox {
	pid_t pid;
	int fd;                   /* non-blocking */
	bool dead;
	unsigned timeout_ms;
	xbd_sandbox_read_fn *rd;
	void *rd_ctx;
	int err_fd;               /* the child's stderr, non-blocking; -1 at EOF */
	size_t err_logged, err_len;
	char err_line[SB_ERR_LINE + 1];
	char what[64];
};

/* ---- the child ---- */

/* libseccomp's SCMP_A0 leaves datum_b unset, which clang's
 * -Wmissing-field-initializers (make fuzz) refuses. */
static struct scmp_arg_cmp arg0(enum scmp_compare op, scmp_datum_t v)
{
	return (struct scmp_arg_cmp){ .arg = 0, .op = op, .datum_a = v, .datum_b = 0 };
}

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
		/* write(v) on stderr too, for sanitizer reports (a pipe the
		 * parent logs); the rules of one call must not overlap */
		bool out = io[i] == SCMP_SYS(write) || io[i] == SCMP_SYS(writev);

		err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, io[i], 1,
				       arg0(SCMP_CMP_EQ, SB_FD));
		if (!err && !out)
			err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EBADF), io[i], 1,
					       arg0(SCMP_CMP_NE, SB_FD));
		if (!err && out)
			err = seccomp_rule_add(ctx, SCMP_ACT_ALLOW, io[i], 1,
					       arg0(SCMP_CMP_EQ, SB_ERR_FD));
		if (!err && out)
			err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EBADF), io[i], 1,
					       arg0(SCMP_CMP_LT, SB_ERR_FD));
		if (!err && out)
			err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EBADF), io[i], 1,
					       arg0(SCMP_CMP_GT, SB_FD));
	}
	for (size_t i = 0; i < sizeof(refused) / sizeof(refused[0]) && !err; i++)
		err = seccomp_rule_add(ctx, SCMP_ACT_ERRNO(EACCES), refused[i], 0);
	if (!err)
		err = seccomp_load(ctx);
	seccomp_release(ctx);
	return err;
}

/*
 * Unmaps every shared mapping the child inherited from its parent: a
 * frontend's granted pool and rings (gntalloc), a backend's mapped
 * grants (gntdev), the simulator's views of guest memory -- other
 * disks' bytes, which a parser taken over by a hostile image could
 * otherwise read.  All of them are MAP_SHARED, and the child needs no
 * shared mapping at all, so all go, wherever they were made.  (Not
 * MADV_DONTFORK where they are made: the simulator and the tests fork
 * processes that go on using the platform's mappings.)  Unmapping
 * only drops the child's references, as its exit would.  Private
 * memory stays the parent's copy on write: freed buffers of its heap
 * may still hold another disk's bytes (only an exec of a fresh image
 * would leave none).
 */
static int drop_shared_maps(void)
{
	int fd = open("/proc/self/maps", O_RDONLY | O_CLOEXEC);
	size_t len = 0, cap = 1 << 16;
	char *buf = malloc(cap + 1), *line;
	int err = 0;

	if (fd < 0 || !buf) {
		if (fd >= 0)
			close(fd);
		free(buf);
		return -1;
	}
	for (;;) {
		ssize_t r;

		if (len == cap) {
			char *nb = realloc(buf, 2 * cap + 1);

			if (!nb) {
				err = -1;
				break;
			}
			buf = nb;
			cap *= 2;
		}
		r = read(fd, buf + len, cap - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			err = r < 0 ? -1 : 0;
			break;
		}
		len += (size_t)r;
	}
	close(fd);
	buf[len] = 0;
	/* the whole list is read before the first munmap changes it */
	for (line = buf; !err && line && *line; ) {
		char *nl = strchr(line, '\n');
		unsigned long lo, hi;
		char perms[5];

		if (nl)
			*nl = 0;
		if (sscanf(line, "%lx-%lx %4s", &lo, &hi, perms) != 3)
			err = -1;
		else if (perms[3] == 's' && munmap((void *)lo, hi - lo))
			err = -1;
		line = nl ? nl + 1 : NULL;
	}
	free(buf);
	return err;
}

/* What a hostile volume can make a parser allocate: a bound of its own
 * for each child, as the parent bounds what it keeps of the answers.
 * Not under AddressSanitizer, whose shadow memory is counted as data. */
static int limit_data(void)
{
#if defined(__SANITIZE_ADDRESS__)
	return 0;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
	return 0;
#endif
#endif
	struct rlimit data = { XBD_SB_DATA_MAX, XBD_SB_DATA_MAX };

	return setrlimit(RLIMIT_DATA, &data);
}

/* Everything before the first guest byte; any failure ends the child. */
static int confine(int sock, int errw, pid_t parent)
{
	char dir[] = "/tmp/xbd-sandbox.XXXXXX";
	struct rlimit zero = { 0, 0 }, nofile = { SB_FD + 1, SB_FD + 1 };
	int null, dfd;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) || getppid() != parent)
		return -1;
	if (drop_shared_maps())
		return -1;
	/* out of the way of 0-3 first, whatever numbers they had; the
	 * copies go in close_range below */
	sock = fcntl(sock, F_DUPFD_CLOEXEC, 10);
	errw = fcntl(errw, F_DUPFD_CLOEXEC, 10);
	null = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (sock < 0 || errw < 0 || null < 0 || dup2(null, 0) < 0 ||
	    dup2(null, 1) < 0 || dup2(errw, SB_ERR_FD) < 0 || dup2(sock, SB_FD) < 0)
		return -1;
	/* a deleted empty directory as the root: nothing can be made in it */
	if (!mkdtemp(dir))
		return -1;
	dfd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (rmdir(dir) || dfd < 0 || fchdir(dfd) || chroot(".") || chdir("/"))
		return -1;
	if (syscall(SYS_close_range, SB_FD + 1, ~0u, 0))
		return -1;
	/* a child that writes more than the pipe holds within one request
	 * loses the excess rather than blocking until it is killed */
	if (fcntl(SB_ERR_FD, F_SETFL, O_NONBLOCK))
		return -1;
	if (setrlimit(RLIMIT_NOFILE, &nofile) || setrlimit(RLIMIT_FSIZE, &zero) ||
	    setrlimit(RLIMIT_CORE, &zero) || limit_data())
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

/* Logs what the child wrote to its stderr (a sanitizer's report, a
 * library's complaint), a line at a time, unprintable bytes as '?',
 * up to SB_ERR_MAX bytes per child; never waits. */
static void err_line_flush(struct xbd_sandbox *sb)
{
	if (!sb->err_len)
		return;
	sb->err_line[sb->err_len] = 0;
	if (sb->err_logged < SB_ERR_MAX)
		xbd_err("%s: parser says: %s", sb->what, sb->err_line);
	sb->err_logged += sb->err_len;
	if (sb->err_logged >= SB_ERR_MAX && sb->err_logged - sb->err_len < SB_ERR_MAX)
		xbd_err("%s: parser says more; the rest is dropped", sb->what);
	sb->err_len = 0;
}

static void drain_stderr(struct xbd_sandbox *sb)
{
	char buf[4096];

	while (sb->err_fd >= 0) {
		ssize_t r = read(sb->err_fd, buf, sizeof(buf));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0) {
			if (r == 0 || (errno != EAGAIN && errno != EWOULDBLOCK)) {
				err_line_flush(sb);
				close(sb->err_fd);
				sb->err_fd = -1;
			}
			return;
		}
		for (ssize_t i = 0; i < r; i++) {
			unsigned char c = (unsigned char)buf[i];

			if (c == '\n') {
				err_line_flush(sb);
				continue;
			}
			sb->err_line[sb->err_len++] = c >= 0x20 && c < 0x7f ? (char)c : '?';
			if (sb->err_len == SB_ERR_LINE)
				err_line_flush(sb);
		}
	}
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
	drain_stderr(sb);   /* all of it: the child is gone */
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
			drain_stderr(sb);
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
	int sv[2], ep[2], err;
	pid_t parent;

	if (!sb)
		return -ENOMEM;
	/* the child's stderr: a pipe, not a file it could misuse */
	if (pipe2(ep, O_CLOEXEC)) {
		err = -errno;
		free(sb);
		return err;
	}
	snprintf(sb->what, sizeof(sb->what), "%s", what);
	sb->timeout_ms = XBD_SB_TIMEOUT_MS;
	sb->rd = rd;
	sb->rd_ctx = rd_ctx;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv)) {
		err = -errno;
		close(ep[0]);
		close(ep[1]);
		free(sb);
		return err;
	}
	parent = getpid();
	sb->pid = fork();
	if (sb->pid < 0) {
		err = -errno;
		close(sv[0]);
		close(sv[1]);
		close(ep[0]);
		close(ep[1]);
		free(sb);
		return err;
	}
	if (sb->pid == 0) {
		close(sv[0]);
		close(ep[0]);
		if (confine(sv[1], ep[1], parent))
			_exit(126);
		_exit(fn(SB_FD, arg));
	}
	close(sv[1]);
	close(ep[1]);
	sb->fd = sv[0];
	sb->err_fd = ep[0];
	if (fcntl(sb->fd, F_SETFL, O_NONBLOCK) ||
	    fcntl(sb->err_fd, F_SETFL, O_NONBLOCK)) {
		err = -errno;
		sandbox_kill(sb, NULL);
		close(sb->fd);
		if (sb->err_fd >= 0)
			close(sb->err_fd);
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
	if (sb->err_fd >= 0)
		close(sb->err_fd);
	free(sb);
}

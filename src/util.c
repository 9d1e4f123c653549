/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The number parsers, the process-liveness check and the bounded wait
 * for a readable fd (xbd/util.h). */
#include "xbd/util.h"
#include "xbd/common.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

int xbd_parse_uint(const char *s, unsigned long long max,
		   unsigned long long *out)
{
	unsigned long long v = 0;

	if (!s || !*s)
		return -EINVAL;
	/* by hand: strtoull takes blanks, a sign and wraps "-1" around */
	for (; *s; s++) {
		unsigned d = (unsigned)(*s - '0');

		if (*s < '0' || *s > '9')
			return -EINVAL;
		if (d > max || v > (max - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

int xbd_parse_byte_size(const char *s, uint64_t *out)
{
	unsigned long long v = 0;
	unsigned shift = 0;
	const char *p = s;

	if (!s || *s < '0' || *s > '9')
		return -EINVAL;
	for (; *p >= '0' && *p <= '9'; p++) {
		unsigned d = (unsigned)(*p - '0');

		if (v > (UINT64_MAX - d) / 10)
			return -ERANGE;
		v = v * 10 + d;
	}
	switch (*p) {
	case '\0': break;
	case 'K': case 'k': shift = 10; p++; break;
	case 'M': case 'm': shift = 20; p++; break;
	case 'G': case 'g': shift = 30; p++; break;
	case 'T': case 't': shift = 40; p++; break;
	default: return -EINVAL;
	}
	if (shift && *p == 'i')
		p++;
	if (shift && (*p == 'B' || *p == 'b'))
		p++;
	if (*p)
		return -EINVAL;
	if (shift && v > (UINT64_MAX >> shift))
		return -ERANGE;
	*out = (uint64_t)v << shift;
	return 0;
}

/* State letter and start time from /proc/PID/stat.  -ENOENT when /proc
 * has no such entry (the process is gone, or /proc hides it). */
static int read_stat(pid_t pid, char *state, unsigned long long *start,
		     char *comm, size_t comm_len)
{
	char path[48], buf[1024];
	const char *p;
	ssize_t n;
	int fd, field;

	snprintf(path, sizeof(path), "/proc/%ld/stat", (long)pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return n < 0 ? -errno : -ENOENT; /* reaped while we read */
	buf[n] = '\0';
	/* "pid (comm) S ...": comm may hold blanks and ')', so fields are
	 * counted from the last ')' on; the state is field 3 */
	p = strrchr(buf, ')');
	if (!p || p[1] != ' ' || !p[2])
		return -EPROTO;
	if (comm) {
		const char *open_paren = strchr(buf, '(');

		if (!open_paren || open_paren > p)
			return -EPROTO;
		snprintf(comm, comm_len, "%.*s", (int)(p - open_paren - 1),
			 open_paren + 1);
	}
	*state = p[2];
	for (field = 3, p += 2; field < 22; field++) {
		p = strchr(p, ' ');
		if (!p)
			return -EPROTO;
		p++;
	}
	if (sscanf(p, "%llu", start) != 1)
		return -EPROTO;
	return 0;
}

int xbd_proc_of(pid_t pid, struct xbd_proc *out)
{
	char state;
	int err;

	if (pid <= 0)
		return -ESRCH;
	err = read_stat(pid, &state, &out->start, NULL, 0);
	if (err == -ENOENT)
		return -ESRCH;
	if (err)
		return err;
	out->pid = pid;
	return 0;
}

int xbd_proc_self(struct xbd_proc *out)
{
	return xbd_proc_of(getpid(), out);
}

bool xbd_proc_alive(const struct xbd_proc *p)
{
	unsigned long long start;
	char state, comm[32];
	int err;

	if (p->pid <= 0)
		return false;
	err = read_stat(p->pid, &state, &start, comm, sizeof(comm));
	if (err) {
		/* /proc hidden (hidepid) or unreadable: only the PID can be
		 * asked about, so only its absence proves anything */
		return !(kill(p->pid, 0) < 0 && errno == ESRCH);
	}
	if (state == 'Z' || state == 'X')
		return false;
	/* no start time: a record of an older xbd.  Its PID may be anyone's
	 * by now; only an xbd process can still be the one recorded (and
	 * the callers signal what they find alive) */
	if (!p->start)
		return !strcmp(comm, "xbd");
	return p->start == start;
}

int xbd_wait_readable(int fd, int ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	unsigned long long deadline = xbd_now_ns() + (unsigned long long)ms * 1000000ull;
	int r;

	/* a signal does not cut the wait short: poll again for what is left */
	for (;;) {
		long long left = (long long)(deadline - xbd_now_ns()) / 1000000;

		r = poll(&pfd, 1, left > 0 ? (int)left : 0);
		if (r >= 0 || errno != EINTR)
			break;
	}
	if (r < 0)
		return -errno;
	return r > 0;
}

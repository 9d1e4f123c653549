/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sim xenstored's connections: the Unix sockets (dom0's, and each
 * introduced guest's), reading requests, queueing replies and events,
 * the poll loop in its own thread, start and stop.
 */
#include "sim_xenstored.h"
#include "xbd/common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Output                                                             */

static int queue_msg(struct conn *c, uint32_t type, uint32_t req_id,
		     uint32_t tx_id, const void *payload, uint32_t len)
{
	struct xsd_sockmsg hdr = {
		.type = type, .req_id = req_id, .tx_id = tx_id, .len = len,
	};
	struct outmsg *m = malloc(sizeof(*m) + sizeof(hdr) + len);

	if (!m)
		return -ENOMEM;
	m->next = NULL;
	m->len = sizeof(hdr) + len;
	m->done = 0;
	memcpy(m->data, &hdr, sizeof(hdr));
	if (len)
		memcpy(m->data + sizeof(hdr), payload, len);
	*c->out_tail = m;
	c->out_tail = &m->next;
	c->out_bytes += m->len;
	return 0;
}

/* Replies echo the request's type, req_id and tx_id, as xenstored does. */
static int reply_typed(struct request *rq, uint32_t type, const void *data,
		       uint32_t len)
{
	if (len > XENSTORE_PAYLOAD_MAX)
		return -E2BIG;
	/* A client whose xsd_reply is lost would wait forever: drop it. */
	if (queue_msg(rq->c, type, rq->hdr->req_id, rq->hdr->tx_id, data, len))
		xsd_conn_kill(rq->xs, rq->c);
	return 0;
}

int xsd_reply(struct request *rq, const void *data, uint32_t len)
{
	return reply_typed(rq, rq->hdr->type, data, len);
}

int xsd_reply_ok(struct request *rq)
{
	return xsd_reply(rq, "OK", sizeof("OK"));
}

void xsd_reply_error(struct request *rq, int err)
{
	size_t i, found = 0; /* xsd_errors[0] is EINVAL: the fallback */

	for (i = 0; i < XBD_ARRAY_SIZE(xsd_errors); i++) {
		if (xsd_errors[i].errnum == err) {
			found = i;
			break;
		}
	}
	reply_typed(rq, XS_ERROR, xsd_errors[found].errstring,
		    strlen(xsd_errors[found].errstring) + 1);
}

void xsd_send_event(struct conn *c, const char *path, const char *token)
{
	char buf[XENSTORE_PAYLOAD_MAX];
	size_t plen = strlen(path) + 1, tlen = strlen(token) + 1;

	/* xenstored does not send over-long events either. */
	if (plen + tlen > sizeof(buf))
		return;
	if (c->out_bytes > OUT_DROP_BYTES) {
		xbd_debug("sim xenstored: dom%u is not reading, event %s dropped",
			  c->domid, path);
		return;
	}
	memcpy(buf, path, plen);
	memcpy(buf + plen, token, tlen);
	if (queue_msg(c, XS_WATCH_EVENT, 0, 0, buf, plen + tlen))
		xbd_debug("sim xenstored: out of memory, event %s dropped",
			  path);
}

static void conn_flush(struct sim_xenstored *xs, struct conn *c)
{
	while (c->out && !c->dead) {
		struct outmsg *m = c->out;
		ssize_t r = send(c->fd, m->data + m->done, m->len - m->done,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				xsd_conn_kill(xs, c);
			return;
		}
		m->done += (size_t)r;
		if (m->done < m->len)
			continue;
		c->out = m->next;
		if (!c->out)
			c->out_tail = &c->out;
		c->out_bytes -= m->len;
		free(m);
	}
}

/* ------------------------------------------------------------------ */
/* Listening sockets                                                  */

/* Connects to path: a live server there answers. */
static bool socket_is_live(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live;

	if (fd < 0)
		return false;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return live;
}

int xsd_listen_unix(const char *path, int *out, struct stat *st)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	if (socket_is_live(path))
		return -EADDRINUSE;
	if (unlink(path) && errno != ENOENT)
		return -errno;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    chmod(path, 0600) || listen(fd, SOMAXCONN) ||
	    (st && stat(path, st)))
		goto fail;
	*out = fd;
	return 0;
fail:
	rc = -errno;
	close(fd);
	unlink(path);
	return rc;
}
/* ------------------------------------------------------------------ */
/* Connections and the poll loop                                      */

void xsd_conn_kill(struct sim_xenstored *xs, struct conn *c)
{
	if (c->dead)
		return;
	c->dead = true; /* closed and freed at the end of the poll round */
	xsd_conn_drop_watches(c);
	xsd_conn_drop_txns(xs, c);
}

static void conn_free(struct conn *c)
{
	while (c->out) {
		struct outmsg *m = c->out;

		c->out = m->next;
		free(m);
	}
	close(c->fd);
	free(c);
}

static void conn_read(struct sim_xenstored *xs, struct conn *c)
{
	unsigned int msgs = 0;

	while (!c->dead && msgs < MSGS_PER_ROUND &&
	       c->out_bytes < OUT_PAUSE_BYTES) {
		char *dst;
		size_t want;
		ssize_t r;

		if (c->hdr_got < sizeof(c->hdr)) {
			dst = (char *)&c->hdr + c->hdr_got;
			want = sizeof(c->hdr) - c->hdr_got;
		} else if (c->body_got < c->hdr.len) {
			dst = c->body + c->body_got;
			want = c->hdr.len - c->body_got;
		} else {
			xsd_process_message(xs, c);
			c->hdr_got = c->body_got = 0;
			msgs++;
			continue;
		}
		r = recv(c->fd, dst, want, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0) {
			xsd_conn_kill(xs, c); /* gone, or broken */
			return;
		}
		if (c->hdr_got < sizeof(c->hdr)) {
			c->hdr_got += (size_t)r;
			if (c->hdr_got == sizeof(c->hdr) &&
			    c->hdr.len > XENSTORE_PAYLOAD_MAX) {
				/* Out of step for good, as in xenstored. */
				xbd_debug("sim xenstored: dom%u sent a %u-byte "
					  "payload, dropped", c->domid,
					  c->hdr.len);
				xsd_conn_kill(xs, c);
				return;
			}
		} else {
			c->body_got += (size_t)r;
		}
	}
}

/* Whether one more connection fits: a guest cannot crowd out dom0. */
static bool conn_allowed(const struct sim_xenstored *xs, unsigned int domid)
{
	const struct conn *c;
	unsigned int mine = 0;

	if (domid == 0)
		return true;
	if (xs->nconns >= MAX_CONNECTIONS)
		return false;
	for (c = xs->conns; c; c = c->next)
		mine += c->domid == domid && !c->dead;
	return mine < GUEST_MAX_CONNECTIONS;
}

static void accept_conns(struct sim_xenstored *xs, int lfd,
			 unsigned int domid)
{
	unsigned int i;

	for (i = 0; i < ACCEPTS_PER_ROUND; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				xbd_debug("sim xenstored: accept: %s",
					  strerror(errno));
				xs->accept_paused_until =
					xbd_now_ns() + ACCEPT_PAUSE_NS;
			}
			return;
		}
		c = conn_allowed(xs, domid) ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			xbd_debug("sim xenstored: dom%u: connection refused",
				  domid);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->domid = domid;
		c->out_tail = &c->out;
		c->next = xs->conns;
		xs->conns = c;
		xs->nconns++;
	}
}

static int pfd_add(struct sim_xenstored *xs, size_t *n, int fd, short events,
		   enum pfd_kind kind, void *ptr)
{
	if (*n == xs->pfd_cap) {
		size_t cap = xs->pfd_cap ? xs->pfd_cap * 2 : 16;
		struct pollfd *p = realloc(xs->pfds, cap * sizeof(*p));
		struct pfd_owner *o;

		if (!p)
			return -ENOMEM;
		xs->pfds = p;
		o = realloc(xs->owners, cap * sizeof(*o));
		if (!o)
			return -ENOMEM;
		xs->owners = o;
		xs->pfd_cap = cap;
	}
	xs->pfds[*n] = (struct pollfd){ .fd = fd, .events = events };
	xs->owners[*n] = (struct pfd_owner){ .kind = kind, .ptr = ptr };
	(*n)++;
	return 0;
}

/* Without memory for the whole set, serve what fits this round.  Returns
 * the poll timeout: -1, or until accepting resumes. */
static int build_pollfds(struct sim_xenstored *xs, size_t *count)
{
	unsigned long long now = xbd_now_ns();
	bool accepting = now >= xs->accept_paused_until;
	int timeout = accepting ? -1 :
		(int)((xs->accept_paused_until - now) / 1000000 + 1);
	struct domain *d;
	struct conn *c;
	size_t n = 0;

	*count = 0;
	if (pfd_add(xs, &n, xs->wake[0], POLLIN, PFD_WAKE, NULL))
		return 100;
	*count = n;
	if (accepting) {
		if (pfd_add(xs, &n, xs->listen_fd, POLLIN, PFD_LISTEN_DOM0,
			    NULL))
			goto out;
		for (d = xs->domains; d; d = d->next)
			if (pfd_add(xs, &n, d->listen_fd, POLLIN,
				    PFD_LISTEN_GUEST, d))
				goto out;
	}
	for (c = xs->conns; c; c = c->next) {
		short ev = c->out_bytes < OUT_PAUSE_BYTES ? POLLIN : 0;

		if (c->out)
			ev |= POLLOUT;
		if (pfd_add(xs, &n, c->fd, ev, PFD_CONN, c))
			goto out;
	}
out:
	*count = n;
	return timeout;
}

void xsd_reap(struct sim_xenstored *xs)
{
	struct conn **pc = &xs->conns;
	struct domain **pd = &xs->domains;

	while (*pc) {
		struct conn *c = *pc;

		if (c->dead) {
			*pc = c->next;
			xs->nconns--;
			conn_free(c);
		} else {
			pc = &c->next;
		}
	}
	while (*pd) {
		struct domain *d = *pd;

		if (d->released) {
			*pd = d->next;
			free(d->sock_path);
			free(d);
		} else {
			pd = &d->next;
		}
	}
}

static void *server_main(void *arg)
{
	struct sim_xenstored *xs = arg;

	for (;;) {
		size_t n, i;
		int timeout = build_pollfds(xs, &n);
		struct conn *c;

		if (poll(xs->pfds, n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			xbd_err("sim xenstored: poll: %s", strerror(errno));
			break;
		}
		if (n && xs->pfds[0].revents)
			break; /* sim_xenstored_stop() */
		for (i = 1; i < n; i++) {
			short re = xs->pfds[i].revents;
			struct domain *d;

			if (!re)
				continue;
			switch (xs->owners[i].kind) {
			case PFD_WAKE:
				break;
			case PFD_LISTEN_DOM0:
				accept_conns(xs, xs->listen_fd, 0);
				break;
			case PFD_LISTEN_GUEST:
				d = xs->owners[i].ptr;
				if (!d->released)
					accept_conns(xs, d->listen_fd,
						     d->domid);
				break;
			case PFD_CONN:
				c = xs->owners[i].ptr;
				if (re & POLLOUT)
					conn_flush(xs, c);
				if (!c->dead && (re & (POLLIN | POLLHUP | POLLERR)))
					conn_read(xs, c);
				break;
			}
		}
		/* Most replies fit the socket buffer: send them now. */
		for (c = xs->conns; c; c = c->next)
			if (c->out && !c->dead)
				conn_flush(xs, c);
		xsd_reap(xs);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                     */

void xsd_free_state(struct sim_xenstored *xs)
{
	size_t i;

	while (xs->conns) {
		struct conn *c = xs->conns;

		xs->conns = c->next;
		xsd_conn_kill(xs, c);
		conn_free(c);
	}
	while (xs->domains) {
		struct domain *d = xs->domains;

		xs->domains = d->next;
		if (!d->released) {
			close(d->listen_fd);
			unlink(d->sock_path);
		}
		free(d->sock_path);
		free(d);
	}
	xsd_table_clear(&xs->store);
	xsd_forget_deletions(xs);
	for (i = 0; i < SPECIAL_COUNT; i++)
		free(xs->special[i].p);
	free(xs->pfds);
	free(xs->owners);
}

/* Removes our socket, unless someone else's has replaced it since. */
static void remove_socket(struct sim_xenstored *xs)
{
	struct stat st;

	if (!stat(xs->sock_path, &st) && st.st_dev == xs->sock_dev &&
	    st.st_ino == xs->sock_ino)
		unlink(xs->sock_path);
}

int sim_xenstored_start(const char *dir, struct sim_xenstored **out)
{
	struct sim_xenstored *xs;
	sigset_t all, old;
	struct stat st;
	int rc;

	xs = calloc(1, sizeof(*xs));
	if (!xs)
		return -ENOMEM;
	xs->listen_fd = xs->wake[0] = xs->wake[1] = -1;
	xs->dir = strdup(dir);
	if (!xs->dir || asprintf(&xs->sock_path, "%s/%s", dir,
				 XBD_SIM_XS_SOCKET) < 0) {
		xs->sock_path = NULL;
		rc = -ENOMEM;
		goto fail_state;
	}
	rc = xsd_seed_store(xs);
	if (rc)
		goto fail_state;
	if (pipe2(xs->wake, O_CLOEXEC | O_NONBLOCK)) {
		rc = -errno;
		goto fail_state;
	}
	rc = xsd_listen_unix(xs->sock_path, &xs->listen_fd, &st);
	if (rc) {
		xbd_err("sim xenstored: %s: %s", xs->sock_path,
			xbd_strerror(rc));
		goto fail_pipe;
	}
	xs->sock_dev = st.st_dev;
	xs->sock_ino = st.st_ino;

	/* Signals are the embedding program's business, not this thread's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&xs->thread, NULL, server_main, xs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		xbd_err("sim xenstored: cannot start its thread: %s",
			xbd_strerror(rc));
		goto fail_socket;
	}
	xs->thread_started = true;
	*out = xs;
	return 0;

fail_socket:
	close(xs->listen_fd);
	remove_socket(xs);
fail_pipe:
	close(xs->wake[0]);
	close(xs->wake[1]);
fail_state:
	xsd_free_state(xs);
	free(xs->sock_path);
	free(xs->dir);
	free(xs);
	return rc;
}

void sim_xenstored_stop(struct sim_xenstored *xs)
{
	if (!xs)
		return;
	if (xs->thread_started) {
		while (write(xs->wake[1], "x", 1) < 0 && errno == EINTR)
			;
		pthread_join(xs->thread, NULL);
	}
	xsd_free_state(xs);
	close(xs->listen_fd);
	remove_socket(xs);
	close(xs->wake[0]);
	close(xs->wake[1]);
	free(xs->sock_path);
	free(xs->dir);
	free(xs);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket's client (include/xbd/ctl.h): asks every xbd
 * process's server at once, under one deadline, and reads the replies
 * through accessors that take any field as possibly missing, null or
 * of the wrong type (a reply is another process's word).
 */
#include "ctl_priv.h"
#include "xbd/ctl.h"
#include "xbd/common.h"
#include "xbd/util.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json.h>
#include <limits.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Client                                                             */

struct ctl_conn {
	struct xbd_ctl_reply *reply;
	int fd;
	bool sent;
	char *buf;
	size_t len, cap;
};

/* Parses a whole reply; -EPROTO unless it is a document we understand,
 * -EACCES / -EINVAL when the server refused the request. */
static int parse_reply(const char *buf, size_t len, struct json_object **doc)
{
	struct json_tokener *tok = json_tokener_new();
	struct json_object *o, *v;
	int err = 0;

	if (!tok)
		return -ENOMEM;
	o = json_tokener_parse_ex(tok, buf, (int)len);
	if (!o || json_tokener_get_error(tok) != json_tokener_success ||
	    !json_object_is_type(o, json_type_object) ||
	    !json_object_object_get_ex(o, "version", &v) ||
	    !json_object_is_type(v, json_type_int) ||
	    json_object_get_int(v) != XBD_CTL_VERSION) {
		json_object_put(o);
		json_tokener_free(tok);
		return -EPROTO;
	}
	json_tokener_free(tok);
	if (json_object_object_get_ex(o, "error_code", &v)) {
		const char *code = json_object_get_string(v);

		err = code && !strcmp(code, "EACCES") ? -EACCES : -EINVAL;
		json_object_put(o);
		return err;
	}
	*doc = o;
	return 0;
}

static void conn_finish(struct ctl_conn *c, int err)
{
	if (!err)
		err = parse_reply(c->buf, c->len, &c->reply->doc);
	c->reply->err = err;
	if (c->fd >= 0)
		close(c->fd);
	c->fd = -1;
}

static void conn_start(struct ctl_conn *c)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	if (strlen(c->reply->socket) >= sizeof(sa.sun_path)) {
		conn_finish(c, -ENAMETOOLONG);
		return;
	}
	strcpy(sa.sun_path, c->reply->socket);
	c->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (c->fd < 0) {
		conn_finish(c, -errno);
		return;
	}
	/* A Unix connect completes at once or fails at once: refused or
	 * missing means nobody listens any more; EAGAIN means the listener
	 * is alive but not accepting (its backlog is full). */
	if (connect(c->fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		int err = errno == EAGAIN ? -ETIMEDOUT : -errno;

		conn_finish(c, err);
	}
}

static void conn_send(struct ctl_conn *c, const char *request)
{
	char line[CTL_MAX_REQUEST];
	int n = snprintf(line, sizeof(line), "%s\n", request);

	if (n < 0 || (size_t)n >= sizeof(line)) {
		conn_finish(c, -EINVAL);
		return;
	}
	/* A few bytes into an empty socket buffer: sent whole or not at all. */
	if (send(c->fd, line, (size_t)n, MSG_NOSIGNAL) != n) {
		conn_finish(c, errno == EAGAIN ? -ETIMEDOUT :
			       errno == EPIPE ? -ECONNRESET : -errno);
		return;
	}
	c->sent = true;
}

static void conn_read(struct ctl_conn *c)
{
	ssize_t n;

	if (c->cap - c->len < 4096) {
		size_t cap = c->cap ? c->cap * 2 : 16384;
		char *nb;

		if (cap > CTL_MAX_REPLY) {
			conn_finish(c, -EPROTO);
			return;
		}
		nb = realloc(c->buf, cap);
		if (!nb) {
			conn_finish(c, -ENOMEM);
			return;
		}
		c->buf = nb;
		c->cap = cap;
	}
	n = recv(c->fd, c->buf + c->len, c->cap - c->len, 0);
	if (n < 0) {
		if (errno != EAGAIN && errno != EINTR)
			conn_finish(c, -errno);
		return;
	}
	if (n == 0) {
		/* The server closes after its answer; nothing at all means
		 * it refused us (not root) or died mid-way. */
		conn_finish(c, c->len ? 0 : -ECONNRESET);
		return;
	}
	c->len += (size_t)n;
}

/* Drives every connection to an answer or an error before the deadline. */
static void run_conns(struct ctl_conn *conns, unsigned n, const char *request,
		      int timeout_ms)
{
	uint64_t deadline = xbd_now_ns() + (uint64_t)timeout_ms * 1000000u;
	struct pollfd *pfd = calloc(n ? n : 1, sizeof(*pfd));
	unsigned i;

	for (i = 0; i < n; i++) {
		conn_start(&conns[i]);
		if (conns[i].fd >= 0)
			conn_send(&conns[i], request);
	}
	while (pfd) {
		uint64_t now = xbd_now_ns();
		unsigned live = 0;
		int r;

		for (i = 0; i < n; i++) {
			if (conns[i].fd < 0)
				continue;
			pfd[live].fd = conns[i].fd;
			pfd[live].events = POLLIN;
			pfd[live].revents = 0;
			live++;
		}
		if (!live || now >= deadline)
			break;
		r = poll(pfd, live, (int)((deadline - now) / 1000000u) + 1);
		if (r < 0 && errno != EINTR)
			break;
		for (i = 0; r > 0 && i < n; i++) {
			unsigned k;

			if (conns[i].fd < 0)
				continue;
			for (k = 0; k < live && pfd[k].fd != conns[i].fd; k++)
				;
			if (k < live && pfd[k].revents)
				conn_read(&conns[i]);
		}
	}
	for (i = 0; i < n; i++)
		if (conns[i].fd >= 0)
			conn_finish(&conns[i], pfd ? -ETIMEDOUT : -ENOMEM);
	free(pfd);
}

static int list_sockets(const char *dir, struct xbd_ctl_reply **out,
			unsigned *count)
{
	struct xbd_ctl_reply *r = NULL;
	unsigned n = 0, cap = 0;
	struct dirent *de;
	DIR *dh;
	int err = 0;

	*out = NULL;
	*count = 0;
	dh = opendir(dir);
	if (!dh)
		return errno == ENOENT ? 0 : -errno;
	while ((de = readdir(dh))) {
		pid_t pid = xbd_ctl_socket_name_pid(de->d_name);
		struct xbd_proc proc;

		if (pid <= 0)
			continue;
		if (n == cap) {
			struct xbd_ctl_reply *nr;

			cap = cap ? cap * 2 : 8;
			nr = realloc(r, cap * sizeof(*r));
			if (!nr) {
				err = -ENOMEM;
				break;
			}
			r = nr;
		}
		memset(&r[n], 0, sizeof(r[n]));
		r[n].pid = pid;
		xbd_ctl_socket_proc(dirfd(dh), pid, &proc);
		r[n].start = proc.start;
		if (asprintf(&r[n].socket, "%s/%s", dir, de->d_name) < 0) {
			err = -ENOMEM;
			break;
		}
		n++;
	}
	closedir(dh);
	if (err) {
		xbd_ctl_replies_free(r, n);
		return err;
	}
	*out = r;
	*count = n;
	return 0;
}

int xbd_ctl_query_all(const char *run_dir, const char *request,
		      int timeout_ms, struct xbd_ctl_reply **replies,
		      unsigned *count)
{
	struct ctl_conn *conns;
	unsigned i, n;
	int err;

	err = list_sockets(run_dir ? run_dir : xbd_ctl_run_dir(), replies,
			   &n);
	if (err)
		return err;
	conns = calloc(n ? n : 1, sizeof(*conns));
	if (!conns) {
		xbd_ctl_replies_free(*replies, n);
		*replies = NULL;
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		conns[i].reply = &(*replies)[i];
		conns[i].fd = -1;
	}
	run_conns(conns, n, request, timeout_ms);
	for (i = 0; i < n; i++)
		free(conns[i].buf);
	free(conns);
	*count = n;
	return 0;
}

int xbd_ctl_query(const char *socket_path, const char *request,
		  int timeout_ms, struct json_object **doc)
{
	struct xbd_ctl_reply reply = { .socket = (char *)socket_path };
	struct ctl_conn conn = { .reply = &reply, .fd = -1 };

	run_conns(&conn, 1, request, timeout_ms);
	free(conn.buf);
	if (!reply.err)
		*doc = reply.doc;
	return reply.err;
}

/* ------------------------------------------------------------------ */
/* Reading a reply                                                     */

struct json_object *xbd_ctl_get(struct json_object *o, const char *dotted)
{
	const char *p = dotted;

	while (o && p && *p) {
		size_t len = strcspn(p, ".");
		struct json_object *next = NULL;
		char key[64];

		if (len >= sizeof(key) ||
		    !json_object_is_type(o, json_type_object))
			return NULL;
		memcpy(key, p, len);
		key[len] = '\0';
		if (!json_object_object_get_ex(o, key, &next))
			return NULL;
		o = next;
		p += len + (p[len] == '.');
	}
	return o;
}

struct json_object *xbd_ctl_get_object(struct json_object *o,
				       const char *dotted)
{
	o = xbd_ctl_get(o, dotted);
	return json_object_is_type(o, json_type_object) ? o : NULL;
}

struct json_object *xbd_ctl_get_array(struct json_object *o,
				      const char *dotted)
{
	o = xbd_ctl_get(o, dotted);
	return json_object_is_type(o, json_type_array) ? o : NULL;
}

const char *xbd_ctl_get_str(struct json_object *o, const char *dotted)
{
	o = xbd_ctl_get(o, dotted);
	return json_object_is_type(o, json_type_string) ?
	       json_object_get_string(o) : NULL;
}

uint64_t xbd_ctl_get_u64(struct json_object *o, const char *dotted,
			 bool *known)
{
	bool ok;

	o = xbd_ctl_get(o, dotted);
	/* json-c keeps a large value unsigned, a negative one signed: a
	 * negative int64 is the only kind of integer that is not ours */
	ok = json_object_is_type(o, json_type_int) &&
	     json_object_get_int64(o) >= 0;
	if (known)
		*known = ok;
	return ok ? json_object_get_uint64(o) : 0;
}

bool xbd_ctl_get_bool(struct json_object *o, const char *dotted, bool *known)
{
	bool ok;

	o = xbd_ctl_get(o, dotted);
	ok = json_object_is_type(o, json_type_boolean);
	if (known)
		*known = ok;
	return ok && json_object_get_boolean(o);
}

void xbd_ctl_replies_free(struct xbd_ctl_reply *replies, unsigned count)
{
	unsigned i;

	for (i = 0; i < count; i++) {
		free(replies[i].socket);
		json_object_put(replies[i].doc);
	}
	free(replies);
}

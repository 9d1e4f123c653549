/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A QMP client of one command (include/xbd/qmp.h): QEMU's block
 * statistics for the disks it serves as qdisk backend.  QMP is a stream
 * of JSON objects: a greeting, then one reply per command, with events
 * in between.  Every read is bounded by the caller's deadline and every
 * message by a size cap; QEMU's reply is parsed with the same care as
 * any other process's word.
 */
#include "xbd/qmp.h"
#include "xbd/common.h"
#include "xbd/util.h"

#include <errno.h>
#include <json.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

/* query-blockstats of a few dozen disks is some tens of KiB. */
#define QMP_MAX_MESSAGE (1u << 20)

struct qmp_conn {
	int fd;
	struct json_tokener *tok;
	unsigned long long deadline_ns; /* xbd_now_ns() clock */
	size_t off, len;
	char buf[4096];
};

/* The next JSON object of the stream, within the deadline. */
static int qmp_next(struct qmp_conn *c, struct json_object **out)
{
	size_t msg_bytes = 0;

	for (;;) {
		unsigned long long now = xbd_now_ns();
		ssize_t n;
		int r;

		if (c->off < c->len) {
			size_t avail = c->len - c->off;
			struct json_object *o;

			o = json_tokener_parse_ex(c->tok, c->buf + c->off, (int)avail);
			if (o) {
				c->off += json_tokener_get_parse_end(c->tok);
				json_tokener_reset(c->tok);
				if (!json_object_is_type(o, json_type_object)) {
					json_object_put(o);
					return -EPROTO;
				}
				*out = o;
				return 0;
			}
			if (json_tokener_get_error(c->tok) != json_tokener_continue)
				return -EPROTO;
			c->off = c->len;
			msg_bytes += avail;
			if (msg_bytes > QMP_MAX_MESSAGE)
				return -EPROTO;
		}
		if (now >= c->deadline_ns)
			return -ETIMEDOUT;
		/* rounded up: a wait of 0 ms would spin */
		r = xbd_wait_readable(c->fd, (int)((c->deadline_ns - now + 999999) / 1000000));
		if (r == 0)
			return -ETIMEDOUT;
		if (r < 0)
			return r;
		n = read(c->fd, c->buf, sizeof(c->buf));
		if (n == 0)
			return -ECONNRESET;
		if (n < 0) {
			if (errno == EINTR || errno == EAGAIN)
				continue;
			return -errno;
		}
		c->off = 0;
		c->len = (size_t)n;
	}
}

/* Runs one command; *ret is its "return" value (a reference the caller
 * puts).  Events that arrive before the reply are skipped. */
static int qmp_execute(struct qmp_conn *c, const char *command,
		       struct json_object **ret)
{
	char line[128];
	int len = snprintf(line, sizeof(line), "{\"execute\":\"%s\"}\n", command);
	unsigned skipped;

	/* A few bytes into an empty socket buffer: sent whole or not at all. */
	if (send(c->fd, line, (size_t)len, MSG_NOSIGNAL) != len)
		return errno == EAGAIN ? -ETIMEDOUT : errno == EPIPE ? -ECONNRESET : -errno;
	for (skipped = 0; skipped < 1000; skipped++) {
		struct json_object *msg, *v;
		int err = qmp_next(c, &msg);

		if (err)
			return err;
		if (json_object_object_get_ex(msg, "return", &v)) {
			*ret = json_object_get(v);
			json_object_put(msg);
			return 0;
		}
		if (json_object_object_get_ex(msg, "error", &v)) {
			json_object_put(msg);
			return -EREMOTEIO;
		}
		json_object_put(msg); /* an event */
	}
	return -EPROTO;
}

static uint64_t get_u64(struct json_object *o, const char *key)
{
	struct json_object *v;
	int64_t x;

	if (!o || !json_object_object_get_ex(o, key, &v) ||
	    !json_object_is_type(v, json_type_int))
		return 0;
	x = json_object_get_int64(v);
	return x < 0 ? 0 : (uint64_t)x;
}

static void get_str(struct json_object *o, const char *key, char *buf, size_t len)
{
	struct json_object *v;

	buf[0] = '\0';
	if (json_object_object_get_ex(o, key, &v) &&
	    json_object_is_type(v, json_type_string))
		snprintf(buf, len, "%s", json_object_get_string(v));
}

int xbd_qmp_parse_blockstats(struct json_object *ret,
			     struct xbd_qmp_blockstats **out, unsigned *n)
{
	struct xbd_qmp_blockstats *s;
	size_t i, count;

	if (!json_object_is_type(ret, json_type_array))
		return -EPROTO;
	count = json_object_array_length(ret);
	if (count > XBD_QMP_MAX_DEVICES)
		count = XBD_QMP_MAX_DEVICES;
	s = calloc(count ? count : 1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	for (i = 0; i < count; i++) {
		struct json_object *e = json_object_array_get_idx(ret, i), *st = NULL;

		if (!json_object_is_type(e, json_type_object))
			continue;
		get_str(e, "node-name", s[i].node_name, sizeof(s[i].node_name));
		get_str(e, "qdev", s[i].qdev, sizeof(s[i].qdev));
		if (!json_object_object_get_ex(e, "stats", &st) ||
		    !json_object_is_type(st, json_type_object))
			continue;
		s[i].rd_bytes = get_u64(st, "rd_bytes");
		s[i].wr_bytes = get_u64(st, "wr_bytes");
		s[i].rd_ops = get_u64(st, "rd_operations");
		s[i].wr_ops = get_u64(st, "wr_operations");
		s[i].flush_ops = get_u64(st, "flush_operations");
		s[i].unmap_ops = get_u64(st, "unmap_operations");
		s[i].rd_total_ns = get_u64(st, "rd_total_time_ns");
		s[i].wr_total_ns = get_u64(st, "wr_total_time_ns");
		s[i].flush_total_ns = get_u64(st, "flush_total_time_ns");
	}
	*out = s;
	*n = (unsigned)count;
	return 0;
}

int xbd_qmp_blockstats_fd(int fd, int timeout_ms,
			  struct xbd_qmp_blockstats **out, unsigned *n)
{
	struct json_object *greeting = NULL, *ret = NULL, *v;
	struct qmp_conn *c;
	int err;

	c = calloc(1, sizeof(*c));
	if (!c)
		return -ENOMEM;
	c->fd = fd;
	c->deadline_ns = xbd_now_ns() + (unsigned long long)timeout_ms * 1000000;
	c->tok = json_tokener_new();
	if (!c->tok) {
		err = -ENOMEM;
		goto out;
	}
	/* QEMU greets only the client it serves; a second one waits. */
	err = qmp_next(c, &greeting);
	if (err)
		goto out;
	if (!json_object_object_get_ex(greeting, "QMP", &v)) {
		err = -EPROTO;
		goto out;
	}
	err = qmp_execute(c, "qmp_capabilities", &ret);
	if (err)
		goto out;
	json_object_put(ret);
	ret = NULL;
	err = qmp_execute(c, "query-blockstats", &ret);
	if (!err)
		err = xbd_qmp_parse_blockstats(ret, out, n);
out:
	json_object_put(ret);
	json_object_put(greeting);
	if (c->tok)
		json_tokener_free(c->tok);
	free(c);
	return err;
}

int xbd_qmp_query_blockstats(const char *path, int timeout_ms,
			     struct xbd_qmp_blockstats **out, unsigned *n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, err;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	/* A Unix connect completes or fails at once; EAGAIN: the listener's
	 * backlog is full. */
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0)
		err = errno == EAGAIN ? -ETIMEDOUT : -errno;
	else
		err = xbd_qmp_blockstats_fd(fd, timeout_ms, out, n);
	close(fd);
	return err;
}

int xbd_qmp_domain_blockstats(const char *dir, uint16_t domid, int timeout_ms,
			      struct xbd_qmp_blockstats **out, unsigned *n)
{
	static const char *const names[] = { "qmp-libxenstat", "qmp-libxl" };
	char path[256];
	size_t i;
	int err = -ENOENT;

	if (!dir)
		dir = getenv("XBD_QMP_DIR");
	if (!dir || !*dir)
		dir = XBD_QMP_DEFAULT_DIR;
	for (i = 0; i < XBD_ARRAY_SIZE(names); i++) {
		snprintf(path, sizeof(path), "%s/%s-%u", dir, names[i], domid);
		err = xbd_qmp_query_blockstats(path, timeout_ms, out, n);
		/* the next socket, when this one is missing or busy */
		if (err != -ENOENT && err != -ECONNREFUSED && err != -ETIMEDOUT)
			break;
	}
	return err;
}

const struct xbd_qmp_blockstats *
xbd_qmp_find_vdev(const struct xbd_qmp_blockstats *s, unsigned n,
		  const char *vdev)
{
	size_t len = strlen(vdev);
	unsigned i;

	for (i = 0; i < n && len; i++)
		if (!strncmp(s[i].node_name, vdev, len) && s[i].node_name[len] == '-')
			return &s[i];
	return NULL;
}

int xbd_qmp_disk_counters(const char *dir, uint16_t domid, const char *vdev,
			  int timeout_ms, struct xbd_blkback_counters *c,
			  struct xbd_qmp_blockstats *raw)
{
	const struct xbd_qmp_blockstats *e;
	struct xbd_qmp_blockstats *s;
	unsigned n;
	int err;

	err = xbd_qmp_domain_blockstats(dir, domid, timeout_ms, &s, &n);
	if (err)
		return err;
	e = xbd_qmp_find_vdev(s, n, vdev);
	if (!e) {
		free(s);
		return -ENODEV;
	}
	memset(c, 0, sizeof(*c));
	c->rd_req = e->rd_ops;
	c->wr_req = e->wr_ops;
	c->f_req = e->flush_ops;
	c->ds_req = e->unmap_ops;
	c->rd_sect = e->rd_bytes / 512;
	c->wr_sect = e->wr_bytes / 512;
	if (raw)
		*raw = *e;
	free(s);
	return 0;
}

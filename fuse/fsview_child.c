/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The confined child's side of the file system trees: finds which
 * parser (struct fsv_parser) knows the volume, decodes each request of
 * the parent once, and encodes the parser's answer within the bounds
 * of its op, so that no parser handles the wire format itself.
 */
#include "fuse/fsview.h"
#include "xbd/sandbox.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

/* In the order they are tried: the cheaper and commoner first. */
static const struct fsv_parser *const parsers[] = {
	&fsv_parser_ext,
	&fsv_parser_ntfs,
	&fsv_parser_xfs,
};

struct fsv_fs {
	const struct fsv_parser *p;
	void *fs;
};

struct fsv_dir_out {
	char *buf;
	size_t used, cap;
};

bool fsv_emit(struct fsv_dir_out *o, uint64_t ino, uint32_t dtype,
	      const char *name, size_t namelen, const struct fsv_attr *attr)
{
	struct fsv_dirent de = { .ino = ino, .type = dtype };
	struct fsv_attr at;

	if (!fsv_name_valid(ino, name, namelen))
		return true;         /* not a name the parent takes: left out */
	if (attr && !fsv_attr_valid(attr))
		attr = NULL;         /* its lookup answers EIO, the rest lists */
	if (o->used + sizeof(de) + sizeof(at) + namelen > o->cap)
		return false;
	de.namelen = (uint32_t)namelen;
	de.has_attr = attr != NULL;
	if (attr)
		at = *attr;
	else
		memset(&at, 0, sizeof(at));
	memcpy(o->buf + o->used, &de, sizeof(de));
	memcpy(o->buf + o->used + sizeof(de), &at, sizeof(at));
	memcpy(o->buf + o->used + sizeof(de) + sizeof(at), name, namelen);
	o->used += sizeof(de) + sizeof(at) + namelen;
	return true;
}

int fsv_open(uint64_t size, fsv_read_fn *rd, void *ctx, struct fsv_fs **out)
{
	struct fsv_fs *f = calloc(1, sizeof(*f));
	int err = -EINVAL;

	if (!f)
		return -ENOMEM;
	for (size_t i = 0; i < sizeof(parsers) / sizeof(parsers[0]); i++) {
		err = parsers[i]->open(size, rd, ctx, &f->fs);
		if (!err) {
			f->p = parsers[i];
			*out = f;
			return 0;
		}
		if (err == -ENOMEM)
			break;
	}
	free(f);
	return err == -ENOMEM ? err : -EINVAL;
}

void fsv_close(struct fsv_fs *f)
{
	if (!f)
		return;
	f->p->close(f->fs);
	free(f);
}

static int do_readdir(struct fsv_fs *f, uint64_t dir, uint64_t cookie, char *out,
		      size_t cap, size_t *len)
{
	struct fsv_dir_out o = { .buf = out + 8, .cap = cap - 8 };
	uint64_t next = 0;
	int err = f->p->readdir(f->fs, dir, cookie, &o, &next);

	if (err)
		return err;
	memcpy(out, &next, 8);
	*len = 8 + o.used;
	return 0;
}

int fsv_handle(struct fsv_fs *f, uint32_t op, const void *req, size_t len,
	       void **out, size_t *out_len)
{
	size_t cap = op == FSV_READ ? XBD_SB_MAX + 4 :
		     op == FSV_READDIR ? FSV_READDIR_BYTES :
		     op == FSV_MAP ? 4 + 8 + FSV_MAP_MAX * sizeof(struct fsv_extent) :
		     FSV_LINK_MAX + 64;
	char *r = malloc(cap);
	int32_t st = -EINVAL;
	size_t body = 0;
	uint64_t a = 0, b = 0;
	struct fsv_attr at;

	if (!r)
		return -ENOMEM;
	if (len >= 8)
		memcpy(&a, req, 8);
	if (len >= 16)
		memcpy(&b, (const char *)req + 8, 8);
	switch (op) {
	case FSV_INIT:
		memset(r + 4, 0, 16);
		strncpy(r + 4, f->p->type, 15);
		body = 16;
		st = 0;
		break;
	case FSV_GETATTR:
		if (len == 8) {
			st = f->p->getattr(f->fs, a, &at);
			memcpy(r + 4, &at, sizeof(at));
			body = sizeof(at);
		}
		break;
	case FSV_LOOKUP:
		if (len > 8 && len - 8 <= FSV_NAME_MAX &&
		    !memchr((const char *)req + 8, '/', len - 8) &&
		    !memchr((const char *)req + 8, 0, len - 8)) {
			st = f->p->lookup(f->fs, a, (const char *)req + 8, len - 8, &at);
			memcpy(r + 4, &at, sizeof(at));
			body = sizeof(at);
		}
		break;
	case FSV_READDIR:
		if (len == 16)
			st = do_readdir(f, a, b, r + 4, cap - 4, &body);
		break;
	case FSV_READLINK:
		if (len == 8) {
			st = f->p->readlink(f->fs, a, r + 4, &body);
			if (!st && body > FSV_LINK_MAX)
				st = -EIO;
		}
		break;
	case FSV_READ:
		if (len == sizeof(struct fsv_read)) {
			struct fsv_read q;

			memcpy(&q, req, sizeof(q));
			if (q.len <= XBD_SB_MAX) {
				st = f->p->read(f->fs, q.ino, q.off, r + 4, q.len, &body);
				if (!st && body > q.len)
					st = -EIO;
			}
		}
		break;
	case FSV_MAP:
		st = -ENOSYS;       /* the parent stops asking */
		if (len == sizeof(struct fsv_read) && f->p->map) {
			struct fsv_read q;
			uint64_t size = 0;
			unsigned n = 0;

			struct fsv_extent *x = malloc(FSV_MAP_MAX * sizeof(*x));

			memcpy(&q, req, sizeof(q));
			st = x ? f->p->map(f->fs, q.ino, q.off, q.len, x,
					   FSV_MAP_MAX, &n, &size) : -ENOMEM;
			if (!st && n > FSV_MAP_MAX)
				st = -EIO;
			if (!st) {
				memcpy(r + 4, &size, 8);
				memcpy(r + 4 + 8, x, (size_t)n * sizeof(*x));
				body = 8 + (size_t)n * sizeof(*x);
			}
			free(x);
		}
		break;
	}
	if (st)
		body = 0;
	memcpy(r, &st, 4);
	*out = r;
	*out_len = 4 + body;
	return 0;
}

static int sock_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	return xbd_sb_child_read(*(int *)ctx, 0, buf, len, off);
}

int fsv_child_main(int fd, void *arg)
{
	uint64_t size = *(uint64_t *)arg;
	struct fsv_fs *f = NULL;
	char *req = malloc(FSV_NAME_MAX + 64);
	int err = -EPROTO;

	if (!req)
		return 1;
	for (;;) {
		uint32_t op;
		size_t len, out_len;
		void *out;

		if (xbd_sb_recv(fd, &op, req, FSV_NAME_MAX + 64, &len))
			break;
		/* opened on the first request: its reads are then the
		 * only traffic on the socket */
		if (op == FSV_INIT && !f)
			err = fsv_open(size, sock_read, &fd, &f);
		if (err) {
			int32_t st = err;

			if (xbd_sb_send(fd, XBD_SB_REPLY, &st, sizeof(st)))
				break;
			continue;
		}
		if (fsv_handle(f, op, req, len, &out, &out_len))
			break;
		err = xbd_sb_send(fd, XBD_SB_REPLY, out, out_len);
		free(out);
		if (err)
			break;
	}
	free(req);
	fsv_close(f);
	return 0;
}

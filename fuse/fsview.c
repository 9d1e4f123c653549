/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * attach --files: each recognised file system on a disk, a partition
 * or an LVM volume of the export as a read-only tree, DIR/files/NAME/,
 * NAME being the file the file system lies in (xvda1, VG-LV, xvda).
 * The parsing is done by a confined child per file system (fsview_ext.c
 * in src/sandbox.c's sandbox); this file is the parent's half: it
 * turns FUSE requests into the child's protocol (fuse/fsview.h),
 * checks every answer, and serves the child's disk reads, bounded to
 * the file system's own volume.
 *
 * Inodes: DIR/files is FSV_BIT; inode i of tree t is FSV_BIT | t << 32 | i,
 * so that hard links share one inode number and the export's own files
 * (numbered from 2 upwards) never meet them.
 *
 * A child that crashes, hangs (XBD_SB_TIMEOUT_MS per request), or
 * breaks the protocol is killed and logged (src/sandbox.c); its tree
 * then answers EIO until the disk is detached; it is not restarted,
 * since the same image would only do the same again.  The other trees
 * and the disk files are not affected.  Requests to one tree are served
 * one at a time (the child is single-threaded); file data is read by
 * us where the child maps it (FSV_MAP), several reads at once.
 *
 * What a reader sees while the guest writes.  A tree is a view of the
 * volume as its child read it, not a snapshot: the child reads a
 * metadata block when it first needs it and keeps it while its caches
 * do (fsview_ext.c's chunks, libext2fs' own), file data is read from
 * the volume when the kernel's page cache misses, and the kernel keeps
 * a tree's names and attributes for FSV_TIMEOUT and its file pages
 * across opens (keep_cache): the tree never changes by itself.  So a
 * reader of a volume the guest is writing may see parts of different
 * moments: new bytes of a file under its old size, a deleted file
 * still listed, its blocks already another file's, or EIO where a
 * structure changed under the child.  Never bytes from outside the
 * volume, and never a write (the trees are read-only).  For one
 * consistent moment: pause the guest (attach --pause) or attach a
 * snapshot; to see later writes: detach and attach again.
 */
#include "fuse/private.h"
#include "fuse/fsview.h"
#include "fuse/lvm.h"
#include "xbd/common.h"
#include "xbd/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define FSV_BIT FSV_DIR_INO
/* Tree ids are never reused: the kernel may hold a tree's inodes for
 * FSV_TIMEOUT, and they must not come to name another tree's files.
 * 30 bits (those between the tree's inode and FSV_BIT): a rescan a
 * second for 34 years. */
#define FSV_MAX_TREES ((1u << 30) - 1)
#define FSV_MAX_DIRENTS (1u << 20)  /* entries of one directory we list */
/* Bytes of one directory's listing we hold (entries, attributes and
 * names: ~40 MiB for 2^18 entries with 32-byte names), and of all the
 * listings open at once: a hostile or huge directory costs EIO, not
 * the daemon's memory. */
#define FSV_MAX_DIR_BYTES (64u << 20)
#define FSV_MAX_LISTED (256u << 20)
/* Seconds the kernel keeps a tree's names and attributes: a view
 * (see above), so long; `find` then walks on what READDIRPLUS gave,
 * without a LOOKUP per name. */
#define FSV_TIMEOUT 3600.0

struct fsv_tree {
	struct fsv_tree *next;
	unsigned id;
	unsigned refs;            /* the list's and each request's; fx_fsview.lock */
	struct fx_node *node;     /* the volume, with a reference */
	struct xbd_sandbox *sb;
	uint64_t size;
	pthread_mutex_t lock;     /* one request at a time */
	atomic_bool no_map;       /* the parser answers no FSV_MAP */
	char type[16];
	char name[XBD_FUSE_NAME_MAX + 1];
};

/* A FUSE request for a tree, for the tree threads. */
struct fsv_job {
	struct fsv_job *next;
	int op;                   /* FSV_GETATTR, ... */
	fuse_req_t req;
	fuse_ino_t ino;
	size_t size;
	off_t off;
	struct fuse_file_info fi;
	char name[];
};

#define FSV_THREADS 4
/* jobs of our own besides the FSV_ ops: a READDIR that must list */
#define FSV_JOB_LIST 100
#define FSV_JOB_LIST_PLUS 101

struct fx_fsview {
	pthread_mutex_t lock;     /* trees, and the queue below */
	struct fsv_tree *trees;
	unsigned next_id;
	pthread_cond_t work;
	struct fsv_job *head, *tail;
	bool stop;
	pthread_t threads[FSV_THREADS];
	unsigned nthreads;
	atomic_size_t listed;     /* bytes of the open listings (fsv_dir) */
	/* the open listings: the kernel's RELEASEDIR may not come before
	 * the export stops (a release is sent late, asynchronously) */
	struct fsv_dir *dirs;
	struct xbd_fuse *fx;
};

bool fsview_ino(fuse_ino_t ino)
{
	return (uint64_t)ino & FSV_BIT;
}

static fuse_ino_t mk_ino(const struct fsv_tree *t, uint64_t i)
{
	return (fuse_ino_t)(FSV_BIT | (uint64_t)t->id << 32 | i);
}

static void tree_free(struct xbd_fuse *fx, struct fsv_tree *t)
{
	xbd_sandbox_stop(t->sb);
	node_put(fx, t->node);
	pthread_mutex_destroy(&t->lock);
	free(t);
}

/* A tree with a reference (tree_put), or NULL: a request keeps its
 * tree, child included, even if its disk goes meanwhile. */
static struct fsv_tree *tree_of(struct xbd_fuse *fx, fuse_ino_t ino)
{
	unsigned id = (unsigned)(((uint64_t)ino & ~FSV_BIT) >> 32);
	struct fsv_tree *t;

	if (!fx->fsv)
		return NULL;
	pthread_mutex_lock(&fx->fsv->lock);
	for (t = fx->fsv->trees; t && t->id != id; t = t->next)
		;
	if (t)
		t->refs++;
	pthread_mutex_unlock(&fx->fsv->lock);
	return t;
}

static void tree_put(struct xbd_fuse *fx, struct fsv_tree *t)
{
	bool last;

	if (!t)
		return;
	pthread_mutex_lock(&fx->fsv->lock);
	last = --t->refs == 0;
	pthread_mutex_unlock(&fx->fsv->lock);
	if (last)
		tree_free(fx, t);
}

static uint64_t fs_ino(fuse_ino_t ino)
{
	return (uint64_t)ino & 0xffffffffu;
}

/* ---- the child's disk ---- */

static int tree_read(void *ctx, uint32_t src, void *buf, size_t len, uint64_t off)
{
	struct fsv_tree *t = ctx;
	int err;

	if (src != 0 || off > t->size || len > t->size - off)
		return -EINVAL;
	if (!disk_enter(t->node->disk))
		return -EIO;
	err = node_pread(t->node, buf, len, off);
	disk_leave(t->node->disk);
	return err;
}

/* One request to t's child: 0 and the body (malloc'd; *blen bytes), or
 * negative errno (the child's, or -EIO when it is gone). */
static int call(struct fsv_tree *t, uint32_t op, const void *req, size_t len,
		char **body, size_t *blen)
{
	void *reply;
	size_t rlen;
	int32_t st;
	int err;

	pthread_mutex_lock(&t->lock);
	err = xbd_sandbox_call(t->sb, op, req, len, &reply, &rlen);
	pthread_mutex_unlock(&t->lock);
	if (err)
		return -EIO;
	if (rlen < 4) {
		free(reply);
		return -EIO;
	}
	memcpy(&st, reply, 4);
	if (st) {
		free(reply);
		/* errnos the child may give; anything else is EIO */
		return st == -ENOENT || st == -ENOTDIR || st == -EINVAL ||
		       st == -ENAMETOOLONG ||
		       (op == FSV_READ && st == -EACCES) ||
		       (op == FSV_MAP && (st == -ENOSYS || st == -EOPNOTSUPP)) ? st : -EIO;
	}
	memmove(reply, (char *)reply + 4, rlen - 4);
	*body = reply;
	*blen = rlen - 4;
	return 0;
}

static int attr_check(const struct fsv_attr *a)
{
	return fsv_attr_valid(a) ? 0 : -EIO;
}

static void attr_to_stat(struct fsv_tree *t, const struct fsv_attr *ap,
			 struct stat *st);

static int getattr(struct fsv_tree *t, uint64_t ino, uint32_t op,
		   const void *req, size_t len, struct stat *st)
{
	struct fsv_attr a;
	char *b;
	size_t bl;
	int err = call(t, op, req, len, &b, &bl);

	if (err)
		return err;
	if (bl != sizeof(a)) {
		free(b);
		return -EIO;
	}
	memcpy(&a, b, sizeof(a));
	free(b);
	if (attr_check(&a) || (op == FSV_GETATTR && a.ino != ino))
		return -EIO;
	attr_to_stat(t, &a, st);
	return 0;
}

static void attr_to_stat(struct fsv_tree *t, const struct fsv_attr *ap,
			 struct stat *st)
{
	struct fsv_attr a = *ap;

	memset(st, 0, sizeof(*st));
	st->st_ino = mk_ino(t, a.ino);
	/* the guest's bits as they are: the mount is nosuid, and nothing
	 * in a tree can be written whatever they say */
	st->st_mode = a.mode & (S_IFMT | 07777);
	st->st_nlink = a.nlink;
	st->st_uid = a.uid;
	st->st_gid = a.gid;
	st->st_size = (off_t)a.size;
	st->st_blocks = (blkcnt_t)a.blocks;
	st->st_blksize = 4096;
	st->st_atim = (struct timespec){ (time_t)a.atime, a.atime_ns };
	st->st_mtim = (struct timespec){ (time_t)a.mtime, a.mtime_ns };
	st->st_ctim = (struct timespec){ (time_t)a.ctime, a.ctime_ns };
}

static int tree_getattr(struct fsv_tree *t, uint64_t ino, struct stat *st)
{
	return getattr(t, ino, FSV_GETATTR, &ino, sizeof(ino), st);
}

static void files_stat(struct xbd_fuse *fx, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = FSV_BIT;
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
	st->st_uid = fx->uid;
	st->st_gid = fx->gid;
	st->st_atim = st->st_mtim = st->st_ctim = fx->born;
}

static void reply_entry(fuse_req_t req, const struct stat *st, double timeout)
{
	struct fuse_entry_param e;

	memset(&e, 0, sizeof(e));
	e.ino = st->st_ino;
	e.generation = 1;
	e.attr = *st;
	e.attr_timeout = timeout;
	e.entry_timeout = timeout;
	fuse_reply_entry(req, &e);
}

/* ---- FUSE operations on DIR/files and below ---- */

bool fsview_root_lookup(struct xbd_fuse *fx, fuse_req_t req, const char *name)
{
	struct stat st;

	if (!fx->fsv || strcmp(name, FSV_DIR_NAME))
		return false;
	files_stat(fx, &st);
	reply_entry(req, &st, FX_TIMEOUT);
	return true;
}

static void do_lookup(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t parent,
		   const char *name)
{
	struct fsv_tree *t;
	struct stat st;
	char buf[8 + FSV_NAME_MAX];
	size_t len = strlen(name);
	int err;

	if ((uint64_t)parent == FSV_BIT) {
		pthread_mutex_lock(&fx->fsv->lock);
		for (t = fx->fsv->trees; t && strcmp(t->name, name); t = t->next)
			;
		if (t)
			t->refs++;
		pthread_mutex_unlock(&fx->fsv->lock);
		err = t ? tree_getattr(t, FSV_ROOT_INO, &st) : -ENOENT;
	} else {
		uint64_t dir = fs_ino(parent);

		t = tree_of(fx, parent);
		if (!t || len > FSV_NAME_MAX) {
			err = t ? -ENAMETOOLONG : -ENOENT;
		} else {
			memcpy(buf, &dir, 8);
			memcpy(buf + 8, name, len);
			err = getattr(t, 0, FSV_LOOKUP, buf, 8 + len, &st);
		}
	}
	tree_put(fx, t);
	if (err)
		fuse_reply_err(req, -err);
	else
		/* a tree's name comes and goes with its disk */
		reply_entry(req, &st, (uint64_t)parent == FSV_BIT ? FX_TIMEOUT : FSV_TIMEOUT);
}

static void do_getattr(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t ino)
{
	struct fsv_tree *t;
	struct stat st;
	int err;

	if ((uint64_t)ino == FSV_BIT) {
		files_stat(fx, &st);
		fuse_reply_attr(req, &st, FX_TIMEOUT);
		return;
	}
	t = tree_of(fx, ino);
	err = t ? tree_getattr(t, fs_ino(ino), &st) : -ENOENT;
	tree_put(fx, t);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_attr(req, &st, FSV_TIMEOUT);
}

static void do_readlink(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t ino)
{
	struct fsv_tree *t = tree_of(fx, ino);
	uint64_t i = fs_ino(ino);
	char *b = NULL, *s;
	size_t bl = 0;
	int err = t ? call(t, FSV_READLINK, &i, sizeof(i), &b, &bl) : -ENOENT;

	tree_put(fx, t);
	if (!err && (bl > FSV_LINK_MAX || memchr(b, 0, bl)))
		err = -EIO;
	s = err ? NULL : malloc(bl + 1);
	if (!err && !s)
		err = -ENOMEM;
	if (err) {
		free(b);
		fuse_reply_err(req, -err);
		return;
	}
	memcpy(s, b, bl);
	s[bl] = 0;
	fuse_reply_readlink(req, s);
	free(s);
	free(b);
}

/* A directory's entries, fetched whole at the first READDIR of an
 * open (not at OPENDIR: the kernel caches a tree's listings,
 * FOPEN_CACHE_DIR, and a walk served from that cache then costs the
 * child nothing): readdir's offsets then stay stable however the
 * kernel pages through them. */
struct fsv_dir {
	struct fsv_dir *prev, *next;  /* fx_fsview's open listings */
	char *buf;                /* struct fsv_dirent + name, packed */
	size_t len;
	size_t charged;           /* of fx_fsview's listed */
	bool loaded;              /* buf holds the listing */
};

static struct fsv_dir *dir_new(struct xbd_fuse *fx)
{
	struct fsv_dir *d = calloc(1, sizeof(*d));
	struct fx_fsview *v = fx->fsv;

	if (!d)
		return NULL;
	pthread_mutex_lock(&v->lock);
	d->next = v->dirs;
	if (v->dirs)
		v->dirs->prev = d;
	v->dirs = d;
	pthread_mutex_unlock(&v->lock);
	return d;
}

static void dir_free(struct xbd_fuse *fx, struct fsv_dir *d)
{
	struct fx_fsview *v = fx->fsv;

	if (!d)
		return;
	pthread_mutex_lock(&v->lock);
	if (d->prev)
		d->prev->next = d->next;
	else
		v->dirs = d->next;
	if (d->next)
		d->next->prev = d->prev;
	pthread_mutex_unlock(&v->lock);
	atomic_fetch_sub(&v->listed, d->charged);
	free(d->buf);
	free(d);
}

static int dirent_check(const struct fsv_dirent *d, const char *name)
{
	return fsv_name_valid(d->ino, name, d->namelen) ? 0 : -EIO;
}

static int list_dir(struct xbd_fuse *fx, struct fsv_tree *t, uint64_t dir,
		    struct fsv_dir *out)
{
	uint64_t cookie = 0, n = 0;

	out->buf = NULL;
	out->len = 0;
	do {
		uint64_t req[2] = { dir, cookie }, next, n_before = n;
		char *b, *nb;
		size_t bl, at = 8;
		int err = call(t, FSV_READDIR, req, sizeof(req), &b, &bl);

		if (err)
			return err;
		if (bl < 8 || bl > FSV_READDIR_BYTES) {
			free(b);
			return -EIO;
		}
		memcpy(&next, b, 8);
		/* each batch moves on, and the listing stays bounded */
		while (at < bl) {
			struct fsv_dirent d;

			if (bl - at < sizeof(d)) {
				free(b);
				return -EIO;
			}
			struct fsv_attr a;

			memcpy(&d, b + at, sizeof(d));
			if (bl - at - sizeof(d) < sizeof(a) ||
			    d.namelen > bl - at - sizeof(d) - sizeof(a) ||
			    dirent_check(&d, b + at + sizeof(d) + sizeof(a))) {
				free(b);
				return -EIO;
			}
			memcpy(&a, b + at + sizeof(d), sizeof(a));
			if (d.has_attr > 1 ||
			    (d.has_attr && (attr_check(&a) || a.ino != d.ino))) {
				free(b);
				return -EIO;
			}
			at += sizeof(d) + sizeof(a) + d.namelen;
			n++;
		}
		/* the cookie is the parser's own position (it may pass over
		 * entries it cannot send): it only moves on, and every batch
		 * but the last carries an entry, so the listing ends */
		if ((next && (next <= cookie || n == n_before)) || n > FSV_MAX_DIRENTS) {
			free(b);
			return -EIO;
		}
		if (out->len + bl - 8 > FSV_MAX_DIR_BYTES ||
		    atomic_fetch_add(&fx->fsv->listed, bl - 8) + bl - 8 > FSV_MAX_LISTED) {
			if (out->len + bl - 8 <= FSV_MAX_DIR_BYTES)
				atomic_fetch_sub(&fx->fsv->listed, bl - 8);
			free(b);
			xbd_err("%s: directory %llu: listing past %u MiB (or all open listings past %u MiB): EIO",
				t->name, (unsigned long long)dir, FSV_MAX_DIR_BYTES >> 20, FSV_MAX_LISTED >> 20);
			return -EIO;
		}
		out->charged += bl - 8;
		nb = realloc(out->buf, out->len + bl - 8);
		if (!nb) {
			free(b);
			return -ENOMEM;
		}
		out->buf = nb;
		memcpy(out->buf + out->len, b + 8, bl - 8);
		out->len += bl - 8;
		free(b);
		cookie = next;
	} while (cookie);
	return 0;
}

static void do_opendir(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t ino,
		    struct fuse_file_info *fi)
{
	struct fsv_dir *d = dir_new(fx);
	struct fsv_tree *t;
	int err = 0;

	if (!d) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if ((uint64_t)ino != FSV_BIT) {
		t = tree_of(fx, ino);
		err = t ? 0 : -ENOENT;
		tree_put(fx, t);
		/* a view: the listing the kernel has stays right */
		fi->cache_readdir = 1;
		fi->keep_cache = 1;
	}
	if (err) {
		dir_free(fx, d);
		fuse_reply_err(req, -err);
		return;
	}
	fi->fh = (uintptr_t)d;
	if (fuse_reply_open(req, fi) == -ENOENT)
		dir_free(fx, d);
}

void fsview_releasedir(fuse_req_t req, struct fuse_file_info *fi)
{
	dir_free(fuse_req_userdata(req), (struct fsv_dir *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

static void submit(struct xbd_fuse *fx, int op, fuse_req_t req, fuse_ino_t ino,
		   const char *name, size_t size, off_t off,
		   const struct fuse_file_info *fi);

static void reply_dir(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t ino,
		      size_t size, off_t off, struct fsv_dir *d, bool plus);

/* The kernel sends one READDIR of an open directory at a time (it
 * waits for the answer under the file's readdir lock), so the first
 * one alone fetches the listing. */
void fsview_readdir(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t ino,
		    size_t size, off_t off, struct fuse_file_info *fi, bool plus)
{
	struct fsv_dir *d = (struct fsv_dir *)(uintptr_t)fi->fh;

	if ((uint64_t)ino != FSV_BIT && d && !d->loaded)
		/* from the child: on a tree thread (see submit) */
		submit(fx, plus ? FSV_JOB_LIST_PLUS : FSV_JOB_LIST, req, ino, NULL,
		       size, off, fi);
	else
		reply_dir(fx, req, ino, size, off, d, plus);
}

static void do_list(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t ino,
		    size_t size, off_t off, struct fuse_file_info *fi, bool plus)
{
	struct fsv_dir *d = (struct fsv_dir *)(uintptr_t)fi->fh;
	struct fsv_tree *t = tree_of(fx, ino);
	int err = t ? list_dir(fx, t, fs_ino(ino), d) : -ENOENT;

	tree_put(fx, t);
	if (err) {
		/* nothing kept: a later READDIR asks again */
		atomic_fetch_sub(&fx->fsv->listed, d->charged);
		d->charged = 0;
		free(d->buf);
		d->buf = NULL;
		d->len = 0;
		fuse_reply_err(req, -err);
		return;
	}
	d->loaded = true;
	reply_dir(fx, req, ino, size, off, d, plus);
}

static void reply_dir(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t ino,
		      size_t size, off_t off, struct fsv_dir *d, bool plus)
{
	struct fsv_tree *t = (uint64_t)ino == FSV_BIT ? NULL : tree_of(fx, ino);
	char *buf = malloc(size);
	size_t used = 0, at = 0;
	off_t idx = 0;

	if (!buf) {
		tree_put(fx, t);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if ((uint64_t)ino == FSV_BIT) {
		/* the trees, by name */
		pthread_mutex_lock(&fx->fsv->lock);
		for (struct fsv_tree *x = fx->fsv->trees; x; x = x->next, idx++) {
			struct fuse_entry_param e = { .attr = {
				.st_ino = mk_ino(x, FSV_ROOT_INO), .st_mode = S_IFDIR } };
			size_t need;

			if (idx < off)
				continue;
			/* (plus: a name only, ino 0; its lookup asks the child) */
			need = plus ? fuse_add_direntry_plus(req, buf + used, size - used,
							     x->name, &e, idx + 1) :
				      fuse_add_direntry(req, buf + used, size - used,
							x->name, &e.attr, idx + 1);
			if (need > size - used)
				break;
			used += need;
		}
		pthread_mutex_unlock(&fx->fsv->lock);
	} else if (t && d) {
		while (at < d->len) {
			struct fsv_dirent e;
			struct fsv_attr a;
			struct fuse_entry_param ep;
			char name[FSV_NAME_MAX + 1];
			size_t need;

			memcpy(&e, d->buf + at, sizeof(e));
			memcpy(&a, d->buf + at + sizeof(e), sizeof(a));
			memcpy(name, d->buf + at + sizeof(e) + sizeof(a), e.namelen);
			name[e.namelen] = 0;
			at += sizeof(e) + sizeof(a) + e.namelen;
			if (idx++ < off)
				continue;
			memset(&ep, 0, sizeof(ep));
			if (plus && e.has_attr) {
				/* checked in list_dir: an entry, as lookup gives */
				attr_to_stat(t, &a, &ep.attr);
				ep.ino = ep.attr.st_ino;
				ep.generation = 1;
				ep.attr_timeout = FSV_TIMEOUT;
				ep.entry_timeout = FSV_TIMEOUT;
			} else {
				ep.attr.st_ino = mk_ino(t, e.ino);
				ep.attr.st_mode = DTTOIF(e.type);
			}
			need = plus ? fuse_add_direntry_plus(req, buf + used, size - used,
							     name, &ep, idx) :
				      fuse_add_direntry(req, buf + used, size - used,
							name, &ep.attr, idx);
			if (need > size - used)
				break;
			used += need;
		}
	}
	tree_put(fx, t);
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void do_open(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t ino,
		 struct fuse_file_info *fi)
{
	struct fsv_tree *t = tree_of(fx, ino);
	struct stat st;
	int err;

	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	err = t ? tree_getattr(t, fs_ino(ino), &st) : -ENOENT;
	tree_put(fx, t);
	if (!err && !S_ISREG(st.st_mode))
		err = S_ISDIR(st.st_mode) ? -EISDIR : -EACCES;
	if (err) {
		fuse_reply_err(req, -err);
		return;
	}
	fi->fh = 0;
	fi->keep_cache = 1;   /* a view: see the top of this file */
	fuse_reply_open(req, fi);
}

/* Bytes off..off+size of file ino, read by us from where the child
 * says they lie (FSV_MAP): several reads of a file, and of other files
 * of the tree, are then served at once, and no data byte passes
 * through the child.  The child can only name bytes of its own volume
 * (tree_read bounds them), which it could read anyway.  0 and *done
 * (fewer than size only at the end of the file), -ENOSYS or
 * -EOPNOTSUPP when the child cannot map (its parser, this file), or
 * negative errno. */
static int read_mapped(struct fsv_tree *t, uint64_t ino, char *buf, size_t size,
		       uint64_t off, size_t *done)
{
	*done = 0;
	while (*done < size) {
		struct fsv_read q = { .ino = ino, .off = off + *done,
				      .len = (uint32_t)(size - *done) };
		uint64_t fsize, at = q.off, end;
		char *b;
		size_t bl;
		int err = call(t, FSV_MAP, &q, sizeof(q), &b, &bl);

		if (err)
			return err;
		if (bl < 8 || (bl - 8) % sizeof(struct fsv_extent) ||
		    (bl - 8) / sizeof(struct fsv_extent) > FSV_MAP_MAX) {
			free(b);
			return -EIO;
		}
		memcpy(&fsize, b, 8);
		end = fsize <= q.off ? q.off : fsize - q.off < q.len ? fsize : q.off + q.len;
		for (size_t i = 8; i < bl && !err; i += sizeof(struct fsv_extent)) {
			struct fsv_extent x;

			memcpy(&x, b + i, sizeof(x));
			if (x.off != at || !x.len || x.len > end - at || x.zero > 1)
				err = -EIO;
			else if (x.zero)
				memset(buf + (at - off), 0, x.len);
			else if (tree_read(t, 0, buf + (at - off), x.len, x.phys))
				err = -EIO;
			at += x.len;
		}
		free(b);
		if (err)
			return err;
		*done = at - off;
		if (at == end && end < q.off + q.len)
			return 0;       /* the end of the file */
		if (at == q.off)
			return -EIO;    /* no progress */
	}
	return 0;
}

/* A read of the FUSE size: mapped when the parser can, else in
 * FSV_READ requests that fit the protocol; fewer bytes only at the end
 * of the file. */
static void do_read(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t ino,
		 size_t size, off_t off)
{
	struct fsv_tree *t = tree_of(fx, ino);
	size_t chunk = XBD_SB_MAX / 2, done = 0;
	char *buf = size ? malloc(size) : NULL;
	int err = !t ? -ENOENT : off < 0 ? -EINVAL : size && !buf ? -ENOMEM : 0;

	if (!err && size && !atomic_load(&t->no_map)) {
		err = read_mapped(t, fs_ino(ino), buf, size, (uint64_t)off, &done);
		if (err == -ENOSYS)
			atomic_store(&t->no_map, true);
		if (err == -ENOSYS || err == -EOPNOTSUPP)
			err = 0;
		else
			size = done;    /* done, one way or the other */
		if (err)
			done = 0;
	}
	while (!err && done < size) {
		struct fsv_read q = { .ino = fs_ino(ino), .off = (uint64_t)off + done,
				      .len = (uint32_t)(size - done < chunk ? size - done : chunk) };
		char *b;
		size_t bl;

		err = call(t, FSV_READ, &q, sizeof(q), &b, &bl);
		if (err)
			break;
		if (bl > q.len) {
			free(b);
			err = -EIO;
			break;
		}
		memcpy(buf + done, b, bl);
		free(b);
		done += bl;
		if (bl < q.len)
			break;
	}
	tree_put(fx, t);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_buf(req, buf, done);
	free(buf);
}

/* ---- the tree threads ----
 * A request of a tree waits for its child (up to XBD_SB_TIMEOUT_MS when
 * the child hangs): done on the export's reader thread, it would stop
 * every other file of the export meanwhile.  So the reader queues it
 * here and goes on; one of these threads runs and answers it.  Requests
 * to one tree still go one at a time (its child is single-threaded). */

static void run_job(struct xbd_fuse *fx, struct fsv_job *j)
{
	switch (j->op) {
	case FSV_LOOKUP:
		do_lookup(fx, j->req, j->ino, j->name);
		break;
	case FSV_GETATTR:
		do_getattr(fx, j->req, j->ino);
		break;
	case FSV_READLINK:
		do_readlink(fx, j->req, j->ino);
		break;
	case FSV_READDIR:
		do_opendir(fx, j->req, j->ino, &j->fi);
		break;
	case FSV_INIT:
		do_open(fx, j->req, j->ino, &j->fi);
		break;
	case FSV_READ:
		do_read(fx, j->req, j->ino, j->size, j->off);
		break;
	case FSV_JOB_LIST:
	case FSV_JOB_LIST_PLUS:
		do_list(fx, j->req, j->ino, j->size, j->off, &j->fi,
			j->op == FSV_JOB_LIST_PLUS);
		break;
	}
	free(j);
}

static void *tree_thread(void *arg)
{
	struct fx_fsview *v = arg;

	pthread_mutex_lock(&v->lock);
	for (;;) {
		struct fsv_job *j = v->head;

		if (!j) {
			if (v->stop)
				break;
			pthread_cond_wait(&v->work, &v->lock);
			continue;
		}
		v->head = j->next;
		if (!v->head)
			v->tail = NULL;
		pthread_mutex_unlock(&v->lock);
		run_job(v->fx, j);
		pthread_mutex_lock(&v->lock);
	}
	pthread_mutex_unlock(&v->lock);
	return NULL;
}

/* Queues the request; runs it here when that cannot be done. */
static void submit(struct xbd_fuse *fx, int op, fuse_req_t req, fuse_ino_t ino,
		   const char *name, size_t size, off_t off,
		   const struct fuse_file_info *fi)
{
	size_t nlen = name ? strlen(name) + 1 : 1;
	struct fsv_job *j = calloc(1, sizeof(*j) + nlen);
	struct fx_fsview *v = fx->fsv;

	if (!j) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	j->op = op;
	j->req = req;
	j->ino = ino;
	j->size = size;
	j->off = off;
	if (fi)
		j->fi = *fi;
	if (name)
		memcpy(j->name, name, nlen);
	pthread_mutex_lock(&v->lock);
	if (!v->nthreads || v->stop) {
		pthread_mutex_unlock(&v->lock);
		run_job(fx, j);
		return;
	}
	if (v->tail)
		v->tail->next = j;
	else
		v->head = j;
	v->tail = j;
	pthread_cond_signal(&v->work);
	pthread_mutex_unlock(&v->lock);
}

void fsview_lookup(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t parent,
		   const char *name)
{
	submit(fx, FSV_LOOKUP, req, parent, name, 0, 0, NULL);
}

void fsview_getattr(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t ino)
{
	submit(fx, FSV_GETATTR, req, ino, NULL, 0, 0, NULL);
}

void fsview_readlink(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t ino)
{
	submit(fx, FSV_READLINK, req, ino, NULL, 0, 0, NULL);
}

void fsview_opendir(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t ino,
		    struct fuse_file_info *fi)
{
	submit(fx, FSV_READDIR, req, ino, NULL, 0, 0, fi);
}

void fsview_open(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t ino,
		 struct fuse_file_info *fi)
{
	submit(fx, FSV_INIT, req, ino, NULL, 0, 0, fi);
}

void fsview_read(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t ino,
		 size_t size, off_t off)
{
	submit(fx, FSV_READ, req, ino, NULL, size, off, NULL);
}

/* After the reader has stopped (no new requests): the queued ones are
 * answered, then the threads end; before the session goes. */
void fsview_stop_threads(struct xbd_fuse *fx)
{
	struct fx_fsview *v = fx->fsv;

	if (!v)
		return;
	pthread_mutex_lock(&v->lock);
	v->stop = true;
	pthread_cond_broadcast(&v->work);
	pthread_mutex_unlock(&v->lock);
	for (unsigned i = 0; i < v->nthreads; i++)
		pthread_join(v->threads[i], NULL);
	v->nthreads = 0;
}

/* ---- making and ending trees ---- */

static int tree_child(int fd, void *arg)
{
	return fsv_child_main(fd, arg);
}

/* A tree for node n if a file system the children know lies in it. */
static void try_tree(struct xbd_fuse *fx, struct fx_node *n)
{
	struct fsv_tree *t = calloc(1, sizeof(*t));
	char what[XBD_FUSE_NAME_MAX + 16];
	char *b = NULL;
	size_t bl = 0;
	int err;

	if (!t)
		return;
	pthread_mutex_init(&t->lock, NULL);
	snprintf(t->name, sizeof(t->name), "%s", n->name);
	t->size = n->size;
	node_get(n);
	t->node = n;
	snprintf(what, sizeof(what), "%s: files", n->name);
	err = xbd_sandbox_start(what, tree_child, &t->size, tree_read, t, &t->sb);
	if (!err)
		err = call(t, FSV_INIT, NULL, 0, &b, &bl);
	if (!err && (bl != sizeof(t->type) || !memchr(b, 0, bl)))
		err = -EIO;
	if (err) {
		free(b);
		tree_free(fx, t);
		return;
	}
	memcpy(t->type, b, sizeof(t->type));
	free(b);
	pthread_mutex_lock(&fx->fsv->lock);
	if (fx->fsv->next_id >= FSV_MAX_TREES) {
		pthread_mutex_unlock(&fx->fsv->lock);
		xbd_err("%s: no tree: all %u tree numbers used", n->name, FSV_MAX_TREES);
		tree_free(fx, t);
		return;
	}
	t->id = ++fx->fsv->next_id;
	t->refs = 1;
	t->next = fx->fsv->trees;
	fx->fsv->trees = t;
	pthread_mutex_unlock(&fx->fsv->lock);
	xbd_info("%s: %s file system, under %s/%s/%s", n->name, t->type,
		 fx->mountpoint, FSV_DIR_NAME, t->name);
}

int fsview_add_disk(struct xbd_fuse *fx, const char *disk_name)
{
	struct fx_node *list[FX_DISK_MAX_PARTS + LVM_MAX_LV];
	struct fx_disk *d = NULL;
	unsigned n = 0;

	if (!fx->fsv) {
		struct fx_fsview *v = calloc(1, sizeof(*v));

		if (!v)
			return -ENOMEM;
		pthread_mutex_init(&v->lock, NULL);
		pthread_cond_init(&v->work, NULL);
		v->fx = fx;
		/* without threads, requests run on the reader (see submit) */
		while (v->nthreads < FSV_THREADS &&
		       !pthread_create(&v->threads[v->nthreads], NULL, tree_thread, v))
			v->nthreads++;
		fx->fsv = v;
	}
	pthread_rwlock_rdlock(&fx->lock);
	for (struct fx_node *x = fx->nodes; x; x = x->next)
		if (!x->is_partition && !strcmp(x->name, disk_name))
			d = x->disk;
	for (struct fx_node *x = fx->nodes; x && n < sizeof(list) / sizeof(list[0]);
	     x = x->next) {
		if (x->disk != d)
			continue;
		node_get(x);
		list[n++] = x;
	}
	pthread_rwlock_unlock(&fx->lock);
	for (unsigned i = 0; i < n; i++) {
		try_tree(fx, list[i]);
		node_put(fx, list[i]);
	}
	return 0;
}

/* Ends the trees on disk d (its partitions were read again, or it
 * goes), or all when d is NULL (the export ends: no request runs).  A
 * request running keeps its tree until it ends (tree_put); the kernel
 * is told the names are gone, and the inodes it may still hold name
 * no tree (ids are never reused): ENOENT. */
void fsview_remove_disk(struct xbd_fuse *fx, struct fx_disk *d)
{
	struct fsv_tree *gone = NULL;

	if (!fx->fsv)
		return;
	pthread_mutex_lock(&fx->fsv->lock);
	for (struct fsv_tree **p = &fx->fsv->trees; *p; ) {
		struct fsv_tree *t = *p;

		if (!d || t->node->disk == d) {
			*p = t->next;
			t->next = gone;
			gone = t;
		} else {
			p = &t->next;
		}
	}
	pthread_mutex_unlock(&fx->fsv->lock);
	while (gone) {
		struct fsv_tree *t = gone;

		gone = t->next;
		if (d)
			fuse_lowlevel_notify_inval_entry(fx->se, FSV_BIT, t->name,
							 strlen(t->name));
		tree_put(fx, t);
	}
	if (!d) {
		fsview_stop_threads(fx);
		while (fx->fsv->dirs)
			dir_free(fx, fx->fsv->dirs);
		pthread_mutex_destroy(&fx->fsv->lock);
		pthread_cond_destroy(&fx->fsv->work);
		free(fx->fsv);
		fx->fsv = NULL;
	}
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * FUSE export of disk images (API in include/xbd/fuse_export.h), on the
 * libfuse3 low-level API with our own worker threads.  This file holds
 * the FUSE operations and the public API; the disks and files, the
 * threads and the partition tables have files of their own (see
 * fuse/private.h).
 *
 * What a reader sees.  The disk under a file can change at any time (a
 * guest writes to a served disk, or to a disk we are attached to), and
 * forensics must be able to see what is there now.  The rule: every
 * open sees every write the backend completed before the open (and
 * every write made through this export before it); a file opened
 * earlier may keep showing what it read before, a page at a time.
 * So an open for reading only is cached (direct_io 0) and empties the
 * file's page cache (keep_cache 0: the kernel drops the inode's pages
 * at open, waiting for reads in flight, so no page read before the
 * open survives it).  The kernel's readahead then turns small
 * sequential reads (dd's 512 bytes, sha256sum's 32 KiB, 4 KiB tools)
 * into large requests with several in flight, where direct_io made
 * each read() a round trip to the disk.  The window is FX_READAHEAD
 * (set_readahead), which also bounds the memory a sequential reader
 * makes us use.  An open for writing is direct_io, as is one with
 * O_DIRECT: writes reach the image at once and there are never dirty
 * pages of ours in the kernel (no writeback cache), and O_DIRECT
 * readers (fio, dd iflag=direct, large copies) keep the uncached path
 * with its asynchronous requests.  Attributes never change (the
 * disk's size is fixed, mtime is the export's birth), so nothing but
 * an open invalidates; AUTO_INVAL_DATA is off.
 *
 * Uncached reads come at any offset and length, so we read the
 * enclosing sector-aligned window into one buffer and reply from
 * inside it (no extra copy); unaligned writes do read-modify-write
 * under a per-disk lock.  Large requests (1 MiB max_read/max_write,
 * async direct I/O, async reads) keep many requests in flight; reads
 * do not even hold a thread while the image works on them (see
 * fx_read).
 *
 * Threads: one reader and a pool of workers.  The reader alone reads
 * /dev/fuse and answers, on its own thread, everything that never
 * waits: names, attributes, open and close, and reads that an image
 * can start without waiting (a blkfront's asynchronous reads, a raw
 * file's pages already in memory).  Whatever may wait (writes, fsync,
 * reads a file system must fetch from its disk) goes to the workers.
 * Why one reader: with several threads reading /dev/fuse, each request
 * woke a different thread and they fought over the FUSE device's
 * queue lock; 4 KiB reads at queue depth 32 ran at 110k/s with 16
 * such threads and 160k/s with one (tests/bench/attach.sh).
 *
 * Why our own loop instead of fuse_session_loop_mt(): stopping must
 * work even when a reader holds a file open, i.e. when the kernel will
 * not end the connection by itself.  The reader polls the
 * (non-blocking) /dev/fuse fd and an eventfd that tells it to leave;
 * workers wait on a condition variable and leave once the queue is
 * empty.  Closing the /dev/fuse fd afterwards aborts the connection, so
 * any process still inside the mount gets an error (ENOTCONN, or
 * ECONNABORTED for a request in flight) instead of hanging.
 *
 * A blkfront image lends its granted pool pages for a read
 * (xbd_image_read_lent) and the reply is written from them
 * (read_lent_done): one copy of every byte less, and no buffer of ours.
 * The frontend reserves all of a read's pages before its first ring
 * request goes out, so a 1 MiB read stays two 512 KiB ring requests
 * served in parallel (an earlier try lent only reads of one ring
 * request, and 1 MiB reads lost that parallelism).
 * Not done: splicing raw images' page cache straight into the reply
 * (one copy less).  A 1 MiB reply does not fit the default 1 MiB pipe
 * limit with its header, and most images (cow, remote disks) have no
 * fd to splice from.
 */
#include "fuse/private.h"
#include "xbd/common.h"
#include "xbd/mounts.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/sysmacros.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* ---- attributes ---- */

static void node_stat(struct xbd_fuse *fx, const struct fx_node *n,
		      struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = n->ino;
	st->st_mode = S_IFREG | (n->disk->read_only || n->map ? 0444 : 0644);
	st->st_nlink = 1;
	st->st_uid = fx->uid;
	st->st_gid = fx->gid;
	st->st_size = (off_t)n->size;
	st->st_blocks = (blkcnt_t)(n->size / 512);
	st->st_blksize = FX_MAX_IO; /* tools size their reads by this */
	st->st_atim = st->st_mtim = st->st_ctim = fx->born;
}

static void root_stat(struct xbd_fuse *fx, struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = FUSE_ROOT_ID;
	st->st_mode = S_IFDIR | 0555;
	st->st_nlink = 2;
	st->st_uid = fx->uid;
	st->st_gid = fx->gid;
	st->st_atim = st->st_ctim = fx->born;
	pthread_rwlock_rdlock(&fx->lock);
	st->st_mtim = fx->root_mtime;
	pthread_rwlock_unlock(&fx->lock);
}

/* ---- FUSE operations ---- */

static void fx_init(void *userdata, struct fuse_conn_info *conn)
{
	struct xbd_fuse *fx = userdata;

	conn->max_write = FX_MAX_IO;
	conn->max_read = FX_MAX_IO; /* must match the max_read mount option */
	/* several requests of one large direct I/O in flight at once */
	if (conn->capable & FUSE_CAP_ASYNC_DIO)
		conn->want |= FUSE_CAP_ASYNC_DIO;
	/* readahead of cached opens: several requests in flight too */
	if (conn->capable & FUSE_CAP_ASYNC_READ)
		conn->want |= FUSE_CAP_ASYNC_READ;
	/* the kernel keeps the smaller of this and its own default;
	 * set_readahead() raises its default once the mount answers */
	conn->max_readahead = FX_READAHEAD;
	/* our mtime never changes, so a check per read would only cost a
	 * GETATTR a second (see the top of this file for what a reader
	 * sees) */
	conn->want &= ~(unsigned)FUSE_CAP_AUTO_INVAL_DATA;
	/* writes must land in our buffer, not a pipe we would copy from */
	conn->want &= ~(unsigned)FUSE_CAP_SPLICE_READ;
	conn->want &= ~(unsigned)FUSE_CAP_WRITEBACK_CACHE;
	/* READDIRPLUS is for the trees of --files only: on the root it
	 * made a listing wait for reads in flight of a disk's file */
	if (!fx->files)
		conn->want &= ~(unsigned)(FUSE_CAP_READDIRPLUS | FUSE_CAP_READDIRPLUS_AUTO);
	else
		/* always: in AUTO mode the kernel asks plus for a directory's
		 * first page only, and `find` then sent one LOOKUP per name */
		conn->want &= ~(unsigned)FUSE_CAP_READDIRPLUS_AUTO;
	conn->max_background = 64;
	conn->congestion_threshold = 48;

	pthread_mutex_lock(&fx->init_lock);
	fx->initialised = true;
	pthread_cond_broadcast(&fx->init_cond);
	pthread_mutex_unlock(&fx->init_lock);
}

static void fx_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct xbd_fuse *fx = fuse_req_userdata(req);
	struct fuse_entry_param e;
	struct fx_node *n;

	memset(&e, 0, sizeof(e));
	if (fsview_ino(parent)) {
		fsview_lookup(fx, req, parent, name);
		return;
	}
	if (parent != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (fsview_root_lookup(fx, req, name))
		return;
	pthread_rwlock_rdlock(&fx->lock);
	n = find_name(fx, name);
	if (n)
		node_stat(fx, n, &e.attr);
	pthread_rwlock_unlock(&fx->lock);
	if (!n) {
		/* an error reply leaves no negative entry that would hide
		 * a disk added later */
		fuse_reply_err(req, ENOENT);
		return;
	}
	e.ino = e.attr.st_ino;
	e.generation = 1;
	e.attr_timeout = FX_TIMEOUT;
	e.entry_timeout = FX_TIMEOUT;
	fuse_reply_entry(req, &e);
}

static void fx_getattr(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	struct xbd_fuse *fx = fuse_req_userdata(req);
	struct fx_node *n;
	struct stat st;

	if (ino == FUSE_ROOT_ID) {
		root_stat(fx, &st);
		fuse_reply_attr(req, &st, FX_TIMEOUT);
		return;
	}
	if (fsview_ino(ino)) {
		fsview_getattr(fx, req, ino);
		return;
	}
	if (fi && fi->fh) {
		n = (struct fx_node *)(uintptr_t)fi->fh;
		node_get(n);
	} else {
		n = node_by_ino(fx, ino);
	}
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	node_stat(fx, n, &st);
	node_put(fx, n);
	fuse_reply_attr(req, &st, FX_TIMEOUT);
}

static void fx_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr,
		       int to_set, struct fuse_file_info *fi)
{
	struct xbd_fuse *fx = fuse_req_userdata(req);
	struct fx_node *n;
	struct stat st;
	int err = 0;

	(void)fi;
	if (ino == FUSE_ROOT_ID) {
		fuse_reply_err(req, EPERM);
		return;
	}
	if (fsview_ino(ino)) {
		fuse_reply_err(req, EROFS);
		return;
	}
	n = node_by_ino(fx, ino);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if (n->disk->read_only || n->map)
		err = EROFS;
	else if ((to_set & FUSE_SET_ATTR_SIZE) && (uint64_t)attr->st_size != n->size)
		err = EPERM; /* a disk has the size it has; use conv=notrunc */
	else if (to_set & (FUSE_SET_ATTR_MODE | FUSE_SET_ATTR_UID | FUSE_SET_ATTR_GID))
		err = EPERM;
	/* times: accepted and forgotten, so that touch and cp -p work */
	if (!err)
		node_stat(fx, n, &st);
	node_put(fx, n);
	if (err)
		fuse_reply_err(req, err);
	else
		fuse_reply_attr(req, &st, FX_TIMEOUT);
}

static void fx_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct xbd_fuse *fx = fuse_req_userdata(req);
	struct fx_node *n;

	if (ino == FUSE_ROOT_ID) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if (fsview_ino(ino)) {
		fsview_open(fx, req, ino, fi);
		return;
	}
	n = node_by_ino(fx, ino);
	if (!n) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY && (n->disk->read_only || n->map)) {
		node_put(fx, n);
		fuse_reply_err(req, EROFS);
		return;
	}
	fi->fh = (uintptr_t)n; /* the open file's reference */
	/* See the top of this file: reading opens share the kernel's page
	 * cache, which this open empties (keep_cache 0); an open that
	 * writes, or asks for O_DIRECT, goes to the image every time. */
	fi->direct_io = (fi->flags & O_ACCMODE) != O_RDONLY ||
			(fi->flags & O_DIRECT);
	fi->keep_cache = 0;
	fi->noflush = 1;       /* close has nothing to flush; fsync does */
	if (fuse_reply_open(req, fi) == -ENOENT) /* interrupted: no release */
		node_put(fx, n);
}

static void fx_release(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	if (!fsview_ino(ino))
		node_put(fuse_req_userdata(req), (struct fx_node *)(uintptr_t)fi->fh);
	fuse_reply_err(req, 0);
}

/* Each worker keeps its I/O buffer between requests: a fresh 1 MiB
 * malloc per request costs page faults on every request. */
__thread char *worker_buf;
__thread size_t worker_buf_len;

static char *io_buffer(size_t len)
{
	if (len > worker_buf_len) {
		free(worker_buf);
		worker_buf_len = 0;
		worker_buf = malloc(len < FX_MAX_IO ? FX_MAX_IO : len);
		if (worker_buf)
			worker_buf_len = len < FX_MAX_IO ? FX_MAX_IO : len;
	}
	return worker_buf;
}

/* The aligned window [*a0, *a1) of the disk that covers n's bytes
 * [off, off+len); the caller has clamped them to the node. */
static void io_window(const struct fx_node *n, uint64_t off, uint64_t len,
		      uint64_t *a0, uint64_t *a1)
{
	uint64_t align = n->disk->align, abs = n->start + off;

	*a0 = abs / align * align;
	*a1 = (abs + len + align - 1) / align * align;
}

/*
 * Reads are asynchronous: the reader thread starts the read and goes
 * back to /dev/fuse; whoever completes it (the image's own thread, a
 * worker, or the reader itself when the data was at hand) replies.  So
 * requests in flight are not capped by the number of threads, and no
 * thread sleeps per request.  A read holds its node (so the disk stays
 * allocated), the disk's gate (so remove waits for it) and the export's
 * count (so stop waits for it before the session goes).
 */
struct fx_read {
	struct fx_read *next;     /* on the export's free list */
	struct xbd_fuse *fx;
	struct fx_node *node;
	fuse_req_t req;
	size_t skip, len;         /* the reply inside buf */
	bool lend;                /* read with xbd_image_read_lent, no buf */
	struct iovec iov;         /* the aligned window */
	uint64_t iov_offset;      /* its place on the disk */
	char *buf;
	size_t cap;
};

#define FX_READ_MIN_BUF (64u << 10)
#define FX_READ_CACHE 64          /* contexts kept for reuse */
#define FX_READ_CACHE_LARGE 8     /* of them with more than the minimum */

/* Room for len bytes in r's buffer; false without memory. */
static bool read_buf_fit(struct fx_read *r, size_t len)
{
	if (r->cap < len) {
		size_t cap = len < FX_READ_MIN_BUF ? FX_READ_MIN_BUF : len;

		free(r->buf);
		r->buf = malloc(cap);
		r->cap = r->buf ? cap : 0;
	}
	return r->cap >= len;
}

/* A read context with room for len bytes (buffers are reused: a fresh
 * large malloc per request costs page faults on every request). */
static struct fx_read *read_get(struct xbd_fuse *fx, size_t len)
{
	struct fx_read *r;

	pthread_mutex_lock(&fx->read_lock);
	r = fx->read_free;
	if (r) {
		fx->read_free = r->next;
		fx->read_nfree--;
	}
	pthread_mutex_unlock(&fx->read_lock);
	if (!r) {
		r = calloc(1, sizeof(*r));
		if (!r)
			return NULL;
	}
	if (!read_buf_fit(r, len)) {
		free(r);
		return NULL;
	}
	r->fx = fx;
	return r;
}

static void read_free(struct fx_read *r)
{
	free(r->buf);
	free(r);
}

static void read_put(struct xbd_fuse *fx, struct fx_read *r)
{
	pthread_mutex_lock(&fx->read_lock);
	if (fx->read_nfree >= FX_READ_CACHE_LARGE && r->cap > FX_READ_MIN_BUF) {
		/* a burst of large reads: keep the context, not its buffer */
		free(r->buf);
		r->buf = NULL;
		r->cap = 0;
	}
	if (fx->read_nfree < FX_READ_CACHE) {
		r->next = fx->read_free;
		fx->read_free = r;
		fx->read_nfree++;
		r = NULL;
	}
	pthread_mutex_unlock(&fx->read_lock);
	if (r)
		read_free(r);
}

/* Counts a read of `bytes` (its buffer) in; waits while the reads in
 * flight already hold FX_READ_BYTES_MAX.  Only the reader thread calls
 * it, and what it waits for never needs the reader: a read in flight
 * is finished by the image's thread or a worker. */
static void reads_enter(struct xbd_fuse *fx, size_t bytes)
{
	pthread_mutex_lock(&fx->read_lock);
	while (fx->reads_bytes && fx->reads_bytes + bytes > FX_READ_BYTES_MAX)
		pthread_cond_wait(&fx->reads_idle, &fx->read_lock);
	fx->reads_active++;
	fx->reads_bytes += bytes;
	pthread_mutex_unlock(&fx->read_lock);
}

static void reads_leave(struct xbd_fuse *fx, size_t bytes)
{
	pthread_mutex_lock(&fx->read_lock);
	fx->reads_active--;
	fx->reads_bytes -= bytes;
	pthread_cond_broadcast(&fx->reads_idle); /* drain, or a waiting read */
	pthread_mutex_unlock(&fx->read_lock);
}

/* Waits for every read started to have replied. */
static void reads_drain(struct xbd_fuse *fx)
{
	pthread_mutex_lock(&fx->read_lock);
	while (fx->reads_active)
		pthread_cond_wait(&fx->reads_idle, &fx->read_lock);
	pthread_mutex_unlock(&fx->read_lock);
}

/* After the reply: what the read held, let go. */
static void read_finish(struct fx_read *r)
{
	struct xbd_fuse *fx = r->fx;
	struct fx_node *n = r->node;
	size_t bytes = r->iov.iov_len;

	disk_leave(n->disk);
	node_put(fx, n);
	read_put(fx, r);
	reads_leave(fx, bytes); /* last: stop may free fx once this is 0 */
}

static void read_done(void *opaque, int err)
{
	struct fx_read *r = opaque;

	if (err)
		fuse_reply_err(r->req, -err);
	else
		fuse_reply_buf(r->req, r->buf + r->skip, r->len);
	read_finish(r);
}

/*
 * A lent read's end: the reply is written straight from the image's
 * pages (a blkfront's pool), one copy less than through r->buf.  Here,
 * on the image's completion thread: handing large replies to the
 * workers (so that the kernel's copies into the page cache run on two
 * CPUs) made a cached 1 MiB dd slower on a busy machine (430 against
 * 570 MB/s, medians of 6 alternating runs).
 */
static bool read_lent_done(void *opaque, int err, struct iovec *iov,
			   int iovcnt, void *loan)
{
	struct fx_read *r = opaque;
	size_t skip = r->skip, left = r->len;
	int i = 0, j;

	if (err) {
		fuse_reply_err(r->req, -err);
		read_finish(r);
		return false;
	}
	/* the window is the request's sectors: cut it to its bytes */
	while (i < iovcnt && skip >= iov[i].iov_len)
		skip -= iov[i++].iov_len;
	if (i < iovcnt) {
		iov[i].iov_base = (char *)iov[i].iov_base + skip;
		iov[i].iov_len -= skip;
	}
	for (j = i; j < iovcnt && left > iov[j].iov_len; j++)
		left -= iov[j].iov_len;
	if (j >= iovcnt) { /* shorter than asked: never from a checked image */
		fuse_reply_err(r->req, EIO);
		xbd_image_lent_return(r->node->disk->img, loan);
		read_finish(r);
		return true;
	}
	iov[j].iov_len = left;
	fuse_reply_iov(r->req, iov + i, j - i + 1);
	/* back before the read lets go of the disk (which may then go) */
	xbd_image_lent_return(r->node->disk->img, loan);
	read_finish(r);
	return true;
}

/* A worker's part of a read that could not start without waiting. */
void read_blocking(struct fx_read *r)
{
	read_done(r, xbd_image_preadv(r->node->disk->img, &r->iov, 1,
				      r->iov_offset));
}

/* Starts r on the reader's thread without waiting for a disk: a
 * blkfront starts it on the ring; an image that never sleeps, or a raw
 * file whose pages are in memory, reads it here; anything else goes to
 * a worker. */
static void read_start(struct xbd_fuse *fx, struct fx_read *r)
{
	struct fx_disk *d = r->node->disk;
	struct xbd_image *img = d->img;
	int err;

	if (r->lend) { /* the image's pages, not r->buf (fx_read) */
		err = xbd_image_read_lent(img, r->iov_offset, r->iov.iov_len,
					  read_lent_done, r);
		if (err != -EOPNOTSUPP) {
			if (err)
				read_done(r, err);
			return;
		}
		if (!xbd_image_can_lend(img))
			atomic_store_explicit(&d->try_lent, false,
					      memory_order_relaxed);
		if (!read_buf_fit(r, r->iov.iov_len)) {
			read_done(r, -ENOMEM);
			return;
		}
		r->iov.iov_base = r->buf;
	}
	if (xbd_image_reads_async(img) || img->nonblocking) {
		err = xbd_image_preadv_async(img, &r->iov, 1, r->iov_offset,
					     read_done, r);
		if (err)
			read_done(r, err);
		return;
	}
	if (atomic_load_explicit(&d->try_nowait, memory_order_relaxed)) {
		err = xbd_image_try_preadv_nowait(img, &r->iov, 1, r->iov_offset);
		if (!err) {
			read_done(r, 0);
			return;
		}
		if (err == -EOPNOTSUPP) /* this file cannot: never again */
			atomic_store_explicit(&d->try_nowait, false,
					      memory_order_relaxed);
		/* else it would wait, or failed: the worker's blocking read
		 * waits, or names the error */
	}
	if (!queue_read(fx, r))
		read_blocking(r); /* no memory for a job: wait here */
}

static void fx_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		    struct fuse_file_info *fi)
{
	struct xbd_fuse *fx = fuse_req_userdata(req);
	struct fx_node *n = (struct fx_node *)(uintptr_t)fi->fh;
	uint64_t len, a0, a1;
	struct fx_read *r;
	bool lend;

	if (fsview_ino(ino)) {
		fsview_read(fx, req, ino, size, off);
		return;
	}
	if (n->map && !lvm_map_linear(n->map)) { /* an LVM volume: lvm.c */
		lvm_read(fx, req, n, size, off);
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((uint64_t)off >= n->size || size == 0) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	len = n->size - (uint64_t)off;
	if (len > size)
		len = size;
	io_window(n, (uint64_t)off, len, &a0, &a1);
	reads_enter(fx, a1 - a0); /* before the buffer: memory stays bounded */
	/* no buffer of ours when the image lends its own */
	lend = atomic_load_explicit(&n->disk->try_lent, memory_order_relaxed);
	r = read_get(fx, lend ? 0 : a1 - a0);
	if (!r) {
		reads_leave(fx, a1 - a0);
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (!disk_enter(n->disk)) {
		read_put(fx, r);
		reads_leave(fx, a1 - a0);
		fuse_reply_err(req, EIO);
		return;
	}
	node_get(n);
	r->node = n;
	r->req = req;
	r->skip = n->start + (uint64_t)off - a0;
	r->len = len;
	r->lend = lend;
	r->iov = (struct iovec){ .iov_base = r->buf, .iov_len = a1 - a0 };
	r->iov_offset = a0;
	read_start(fx, r);
}

/* Unaligned write: read the covering sectors, patch, write back. */
static int write_rmw(struct fx_node *n, const char *data, uint64_t off,
		     uint64_t len)
{
	struct fx_disk *d = n->disk;
	uint64_t a0, a1;
	char *buf;
	int err;

	io_window(n, off, len, &a0, &a1);
	buf = io_buffer(a1 - a0);
	if (!buf)
		return -ENOMEM;
	pthread_mutex_lock(&d->rmw_lock);
	err = xbd_image_pread(d->img, buf, a1 - a0, a0);
	if (!err) {
		memcpy(buf + (n->start + off - a0), data, len);
		err = xbd_image_pwrite(d->img, buf, a1 - a0, a0);
	}
	pthread_mutex_unlock(&d->rmw_lock);
	return err;
}

static void fx_write(fuse_req_t req, fuse_ino_t ino, const char *data,
		     size_t size, off_t off, struct fuse_file_info *fi)
{
	struct fx_node *n = (struct fx_node *)(uintptr_t)fi->fh;
	struct fx_disk *d;
	uint64_t len, abs;
	int err;

	if (fsview_ino(ino) || !n) {
		fuse_reply_err(req, EROFS);
		return;
	}
	d = n->disk;
	if (d->read_only) {
		fuse_reply_err(req, EROFS);
		return;
	}
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((uint64_t)off >= n->size) {
		fuse_reply_err(req, size ? ENOSPC : 0);
		return;
	}
	len = n->size - (uint64_t)off;
	if (len > size)
		len = size; /* a short write at the end, like a block device */
	abs = n->start + (uint64_t)off;
	if (!disk_enter(d)) {
		fuse_reply_err(req, EIO);
		return;
	}
	if (abs % d->align == 0 && len % d->align == 0)
		err = xbd_image_pwrite(d->img, data, len, abs);
	else
		err = write_rmw(n, data, (uint64_t)off, len);
	disk_leave(d);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_write(req, len);
}

static void fx_fsync(fuse_req_t req, fuse_ino_t ino, int datasync,
		     struct fuse_file_info *fi)
{
	struct fx_node *n = (struct fx_node *)(uintptr_t)fi->fh;
	int err = -EIO;

	(void)datasync;
	/* a tree's files are read-only and carry no node: the kernel
	 * sends fsync for read-only opens too */
	if (fsview_ino(ino) || !n) {
		fuse_reply_err(req, 0);
		return;
	}
	if (disk_enter(n->disk)) {
		err = n->disk->read_only ? 0 : xbd_image_flush(n->disk->img);
		disk_leave(n->disk);
	}
	fuse_reply_err(req, -err);
}

static void fx_flush(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	(void)ino;
	(void)fi;
	fuse_reply_err(req, 0);
}

static void fx_opendir(fuse_req_t req, fuse_ino_t ino,
		       struct fuse_file_info *fi)
{
	if (fsview_ino(ino)) {
		fsview_opendir(fuse_req_userdata(req), req, ino, fi);
		return;
	}
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	fuse_reply_open(req, fi);
}

/* plus: READDIRPLUS, whose entries here carry no lookup (ino 0): the
 * kernel uses them as plain names, as from READDIR (only the trees of
 * --files fill them in, see fsview.c). */
static void readdir_any(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
			struct fuse_file_info *fi, bool plus)
{
	struct xbd_fuse *fx = fuse_req_userdata(req);
	char *buf;
	size_t used = 0;
	off_t idx = 0;
	bool files_done = false;

	if (fsview_ino(ino)) {
		fsview_readdir(fx, req, ino, size, off, fi, plus);
		return;
	}
	if (ino != FUSE_ROOT_ID) {
		fuse_reply_err(req, ENOTDIR);
		return;
	}
	buf = malloc(size);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	pthread_rwlock_rdlock(&fx->lock);
	/* entry i is ".", "..", then the nodes; its next offset is i + 1 */
	struct fx_node *n = fx->nodes;
	for (idx = 0; ; idx++) {
		struct stat st = { .st_mode = S_IFDIR };
		const char *name;

		if (idx == 0) {
			name = ".";
			st.st_ino = FUSE_ROOT_ID;
		} else if (idx == 1) {
			name = "..";
			st.st_ino = FUSE_ROOT_ID;
		} else if (n) {
			name = n->name;
			st.st_ino = n->ino;
			st.st_mode = S_IFREG;
			n = n->next;
		} else if (fx->fsv && !files_done) {
			files_done = true; /* after the files: DIR/files */
			name = FSV_DIR_NAME;
			st.st_ino = FSV_DIR_INO;
		} else {
			break;
		}
		if (idx < off)
			continue;
		struct fuse_entry_param e = { .attr = st };
		size_t need = plus ? fuse_add_direntry_plus(req, buf + used, size - used,
							    name, &e, idx + 1) :
				     fuse_add_direntry(req, buf + used, size - used, name,
						       &st, idx + 1);
		if (need > size - used)
			break;
		used += need;
	}
	pthread_rwlock_unlock(&fx->lock);
	fuse_reply_buf(req, buf, used);
	free(buf);
}

static void fx_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	readdir_any(req, ino, size, off, fi, false);
}

static void fx_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size,
			   off_t off, struct fuse_file_info *fi)
{
	readdir_any(req, ino, size, off, fi, true);
}

static void fx_readlink(fuse_req_t req, fuse_ino_t ino)
{
	if (fsview_ino(ino))
		fsview_readlink(fuse_req_userdata(req), req, ino);
	else
		fuse_reply_err(req, EINVAL);
}

static void fx_releasedir(fuse_req_t req, fuse_ino_t ino,
			  struct fuse_file_info *fi)
{
	if (fsview_ino(ino))
		fsview_releasedir(req, fi);
	else
		fuse_reply_err(req, 0);
}

static const struct fuse_lowlevel_ops fx_ops = {
	.readlink = fx_readlink,
	.releasedir = fx_releasedir,
	.init = fx_init,
	.lookup = fx_lookup,
	.getattr = fx_getattr,
	.setattr = fx_setattr,
	.open = fx_open,
	.release = fx_release,
	.read = fx_read,
	.write = fx_write,
	.flush = fx_flush,
	.fsync = fx_fsync,
	.opendir = fx_opendir,
	.readdir = fx_readdir,
	.readdirplus = fx_readdirplus,
};

/* ---- the public API ---- */

static void free_list(struct fx_node *n)
{
	while (n) {
		struct fx_node *next = n->next;

		node_free(n);
		n = next;
	}
}

/* Drops the kernel's cached pages of the nodes in `list` (linked by
 * next), whose disks are retired: no read can fill them again, so a
 * file still open gets errors, as it would uncached, instead of pages
 * of a disk that is gone.  Waits for reads of them in flight, which
 * the reader thread answers (it must still run). */
static void drop_cached_pages(struct xbd_fuse *fx, const struct fx_node *list)
{
	for (const struct fx_node *n = list; n; n = n->next)
		fuse_lowlevel_notify_inval_inode(fx->se, n->ino, 0, 0);
}

/* Before the threads stop: every disk retired, then their pages
 * dropped (see drop_cached_pages).  No lock: only the owner's thread
 * changes the table, and it is here. */
static void retire_all(struct xbd_fuse *fx)
{
	struct fx_node *n;

	if (!fx->se || !fx->reader_started || atomic_load(&fx->unmounted))
		return;
	for (n = fx->nodes; n; n = n->next)
		if (!n->is_partition)
			disk_retire(n->disk);
	drop_cached_pages(fx, fx->nodes);
}

/* The mount on top of our directory is the one we made. */
static bool own_mount_on_top(const struct xbd_fuse *fx)
{
	struct xbd_mount m;
	char dev[sizeof(fx->dev)];

	if (xbd_mount_at(fx->mountpoint, &m))
		return false;
	xbd_mount_dev_str(&m, dev, sizeof(dev));
	return !strcmp(dev, fx->dev) && xbd_mount_is_xbd(&m);
}

/* The kernel has ended the connection: the mount is gone, or was
 * aborted (poll says POLLERR, as libfuse itself asks before it
 * unmounts by path). */
static bool conn_ended(struct xbd_fuse *fx)
{
	struct pollfd pfd = { .fd = fuse_session_fd(fx->se) };

	return poll(&pfd, 1, 0) == 1 && (pfd.revents & POLLERR);
}

const char *xbd_fuse_dev(const struct xbd_fuse *fx)
{
	return fx->dev;
}

int xbd_fuse_detach(struct xbd_fuse *fx)
{
	int err;

	if (fx->detached)
		return 0;
	if (!own_mount_on_top(fx))
		return -EBUSY;
	err = xbd_umount_lazy(fx->mountpoint);
	if (!err)
		fx->detached = true;
	return err;
}

void xbd_fuse_stop(struct xbd_fuse *fx)
{
	if (!fx)
		return;
	retire_all(fx);
	/* Threads first, then the reads they started: both reply on the
	 * session fd, which the unmount below closes (its number could be
	 * reused under them). */
	stop_threads(fx);
	fsview_stop_threads(fx);
	reads_drain(fx);
	if (fx->se) {
		/* libfuse unmounts by path, which would take whatever lies
		 * on top of the directory now: only when that is ours */
		if (!fx->detached && fx->dev[0] && !own_mount_on_top(fx)) {
			if (!atomic_load(&fx->unmounted))
				xbd_err("%s: another mount lies on top of xbd's; left in place",
					fx->mountpoint);
			fx->detached = true; /* or it was unmounted from outside */
		}
		/* closes /dev/fuse (aborting the connection if the mount is
		 * busy) and detaches the mount lazily.  Once the connection
		 * has ended libfuse unmounts nothing by path; a detached
		 * mount whose connection lives on (a user still holds a
		 * file) is left to destroy, whose closing of /dev/fuse frees
		 * it (libfuse then keeps its copy of the path: a few bytes) */
		if (!fx->detached || conn_ended(fx))
			fuse_session_unmount(fx->se);
		fuse_session_destroy(fx->se);
	}
	/* no request can run any more: open files no longer matter */
	fsview_remove_disk(fx, NULL);
	free_list(fx->nodes);
	free_list(fx->retired);
	if (fx->stop_fd >= 0)
		close(fx->stop_fd);
	pthread_rwlock_destroy(&fx->lock);
	pthread_mutex_destroy(&fx->init_lock);
	pthread_cond_destroy(&fx->init_cond);
	while (fx->read_free) {
		struct fx_read *r = fx->read_free;

		fx->read_free = r->next;
		read_free(r);
	}
	pthread_mutex_destroy(&fx->read_lock);
	pthread_cond_destroy(&fx->reads_idle);
	pthread_mutex_destroy(&fx->pool_lock);
	pthread_cond_destroy(&fx->pool_work);
	free(fx->mountpoint);
	free(fx);
}

static int wait_initialised(struct xbd_fuse *fx)
{
	struct timespec until;
	int err = 0;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += FX_INIT_WAIT_S;
	pthread_mutex_lock(&fx->init_lock);
	while (!fx->initialised && !err)
		err = pthread_cond_timedwait(&fx->init_cond, &fx->init_lock, &until);
	err = fx->initialised ? 0 : -ETIMEDOUT;
	pthread_mutex_unlock(&fx->init_lock);
	return err;
}

/*
 * The kernel caps a FUSE mount's readahead at its default (128 KiB)
 * whatever INIT asks for; a window that small keeps a single 128 KiB
 * request in flight and leaves the ring idle between them.  The mount's
 * own bdi can be raised once the mount exists.  Without it (no /sys,
 * not root) reads are correct, only slower.
 */
static void set_readahead(const char *mountpoint, dev_t dev)
{
	char path[96], val[24];
	int fd, len;

	snprintf(path, sizeof(path), "/sys/class/bdi/%u:%u/read_ahead_kb",
		 major(dev), minor(dev));
	len = snprintf(val, sizeof(val), "%u\n", FX_READAHEAD >> 10);
	fd = open(path, O_WRONLY | O_CLOEXEC);
	if (fd < 0 || write(fd, val, (size_t)len) != len)
		xbd_debug("%s: readahead left at the kernel's default: %s: %s",
			 mountpoint, path, strerror(errno));
	if (fd >= 0)
		close(fd);
}

int xbd_fuse_start(const char *mountpoint, const struct xbd_fuse_opts *opts,
		   struct xbd_fuse **out)
{
	static const struct xbd_fuse_opts defaults;
	struct xbd_fuse *fx;
	char mount_opts[256], fsname[96];
	char *argv[] = { "xbd", "-o", mount_opts, NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, argv);
	struct stat st;
	int err;

	if (!opts)
		opts = &defaults;
	fx = calloc(1, sizeof(*fx));
	if (!fx) {
		xbd_err("%s: out of memory", mountpoint);
		return -ENOMEM;
	}
	fx->stop_fd = -1;
	pthread_rwlock_init(&fx->lock, NULL);
	pthread_mutex_init(&fx->init_lock, NULL);
	pthread_cond_init(&fx->init_cond, NULL);
	pthread_mutex_init(&fx->read_lock, NULL);
	pthread_cond_init(&fx->reads_idle, NULL);
	pthread_mutex_init(&fx->pool_lock, NULL);
	pthread_cond_init(&fx->pool_work, NULL);
	fx->read_only = opts->read_only;
	fx->files = opts->files;
	fx->uid = getuid();
	fx->gid = getgid();
	fx->next_ino = FUSE_ROOT_ID + 1;
	clock_gettime(CLOCK_REALTIME, &fx->born);
	fx->root_mtime = fx->born;

	fx->mountpoint = realpath(mountpoint, NULL);
	if (!fx->mountpoint || stat(fx->mountpoint, &st) || !S_ISDIR(st.st_mode)) {
		err = fx->mountpoint ? -ENOTDIR : -errno;
		xbd_err("%s: cannot mount here: %s", mountpoint, xbd_strerror(err));
		goto fail;
	}
	fx->stop_fd = eventfd(0, EFD_CLOEXEC);
	if (fx->stop_fd < 0) {
		err = -errno;
		xbd_err("%s: eventfd: %s", mountpoint, xbd_strerror(err));
		goto fail;
	}

	snprintf(fsname, sizeof(fsname), "%s", opts->fsname ? opts->fsname : "");
	for (char *c = fsname; *c; c++)
		if (!isalnum((unsigned char)*c) && !strchr("._:/-", *c))
			*c = '_'; /* a comma would end the option */
	snprintf(mount_opts, sizeof(mount_opts),
		 "fsname=" XBD_FUSE_SOURCE_PREFIX "%s,subtype=xbd,nosuid,nodev,noatime,"
		 "default_permissions,max_read=%u%s%s", fsname, FX_MAX_IO,
		 opts->allow_other ? ",allow_other" : "", opts->read_only ? ",ro" : "");
	fx->se = fuse_session_new(&args, &fx_ops, sizeof(fx_ops), fx);
	fuse_opt_free_args(&args);
	if (!fx->se) {
		err = -EINVAL;
		xbd_err("%s: cannot create the FUSE session", mountpoint);
		goto fail;
	}
	if (fuse_session_mount(fx->se, fx->mountpoint)) {
		err = -EIO;
		xbd_err("%s: FUSE mount failed (is /dev/fuse there? are we root?)",
			mountpoint);
		fuse_session_destroy(fx->se);
		fx->se = NULL;
		goto fail;
	}
	/* non-blocking, so that the reader can take what is queued and
	 * then go back to poll (see fx_reader) */
	int fl = fcntl(fuse_session_fd(fx->se), F_GETFL);
	if (fl < 0 || fcntl(fuse_session_fd(fx->se), F_SETFL, fl | O_NONBLOCK)) {
		err = -errno;
		xbd_err("%s: /dev/fuse: %s", mountpoint, xbd_strerror(err));
		goto fail;
	}
	err = start_threads(fx, opts->threads ? opts->threads : FX_DEFAULT_THREADS);
	if (err) {
		xbd_err("%s: cannot start the FUSE threads: %s", mountpoint,
			xbd_strerror(err));
		goto fail;
	}
	err = wait_initialised(fx);
	/* the kernel has the INIT reply once a request gets through */
	if (!err && (stat(fx->mountpoint, &st) || st.st_ino != FUSE_ROOT_ID))
		err = -EIO;
	if (err) {
		xbd_err("%s: the FUSE mount does not answer: %s", mountpoint,
			xbd_strerror(err));
		goto fail;
	}
	/* what tells our mount from any other later on */
	snprintf(fx->dev, sizeof(fx->dev), "%u:%u", major(st.st_dev), minor(st.st_dev));
	set_readahead(mountpoint, st.st_dev);
	*out = fx;
	return 0;

fail:
	xbd_fuse_stop(fx);
	return err;
}

bool xbd_fuse_mounted(const struct xbd_fuse *fx)
{
	return !atomic_load(&((struct xbd_fuse *)fx)->unmounted);
}

static bool valid_name(const char *name)
{
	size_t len = strlen(name);

	return len > 0 && len <= XBD_FUSE_NAME_MAX && !strchr(name, '/') &&
	       strcmp(name, ".") && strcmp(name, "..");
}

/* The disk node called `name`, with a reference, or NULL. */
static struct fx_node *disk_node(struct xbd_fuse *fx, const char *name)
{
	struct fx_node *n;

	pthread_rwlock_rdlock(&fx->lock);
	n = find_name(fx, name);
	if (n && n->is_partition)
		n = NULL;
	if (n)
		node_get(n);
	pthread_rwlock_unlock(&fx->lock);
	return n;
}

int xbd_fuse_add_disk(struct xbd_fuse *fx, const char *name,
		      struct xbd_image *img, unsigned flags)
{
	struct fx_disk *d;
	struct fx_node *n;
	int err;

	if (!valid_name(name)) {
		xbd_err("fuse: '%s' is not a valid disk file name", name);
		return -EINVAL;
	}
	d = disk_new(img, fx->read_only || (flags & XBD_FUSE_DISK_READ_ONLY));
	n = d ? node_new(fx, d, name, 0, img->size, false) : NULL;
	if (!n) {
		free(d);
		xbd_err("fuse: %s: out of memory", name);
		return -ENOMEM;
	}
	pthread_rwlock_wrlock(&fx->lock);
	err = find_name(fx, name) ? -EEXIST : 0;
	if (!err) {
		node_get(n); /* ours, for the probe below */
		append_nodes(fx, n);
	}
	pthread_rwlock_unlock(&fx->lock);
	if (err) {
		xbd_err("fuse: %s: a file of that name is already exported", name);
		node_free(n);
		return err;
	}
	fuse_lowlevel_notify_inval_entry(fx->se, FUSE_ROOT_ID, name, strlen(name));
	if (!(flags & XBD_FUSE_NO_PARTITIONS)) {
		err = probe_partitions(fx, n);
		if (err)
			xbd_info("%s: no partitions shown: %s", name, xbd_strerror(err));
	}
	if (flags & XBD_FUSE_FILES)
		fsview_add_disk(fx, name);
	node_put(fx, n);
	return 0;
}

int xbd_fuse_rescan_partitions(struct xbd_fuse *fx, const char *name)
{
	struct fx_node *n = disk_node(fx, name), *old = NULL;
	int err;

	if (!n) {
		xbd_err("fuse: %s: no such disk", name);
		return -ENOENT;
	}
	pthread_rwlock_wrlock(&fx->lock);
	unlink_nodes(fx, n->disk, true, &old);
	pthread_rwlock_unlock(&fx->lock);
	fsview_remove_disk(fx, n->disk);
	release_unlinked(fx, old);
	err = probe_partitions(fx, n);
	if (err)
		xbd_err("fuse: %s: cannot read the partition table: %s", name,
			xbd_strerror(err));
	if (fx->files)
		fsview_add_disk(fx, name);
	node_put(fx, n);
	return err;
}

int xbd_fuse_remove_disk(struct xbd_fuse *fx, const char *name)
{
	struct fx_node *n = disk_node(fx, name), *old = NULL;
	struct fx_disk *d;

	if (!n) {
		xbd_err("fuse: %s: no such disk", name);
		return -ENOENT;
	}
	d = n->disk;
	pthread_rwlock_wrlock(&fx->lock);
	unlink_nodes(fx, d, false, &old);
	pthread_rwlock_unlock(&fx->lock);
	fsview_remove_disk(fx, d);
	/* gone before waiting: a probe running now adds no partition */
	disk_retire(d);
	drop_cached_pages(fx, old);
	release_unlinked(fx, old);
	node_put(fx, n);
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * cow image back-end: a base image that is only ever read, plus an
 * overlay file that takes every write.  The disk is cut into 64 KiB
 * clusters; a bitmap says which clusters live in the overlay.  Reads
 * merge the two; the first write to a cluster copies the rest of it
 * from the base ("copy-up") under a per-cluster lock, so concurrent
 * writers to one cluster never lose each other's bytes.  The base may
 * be any image (a raw gold image, an attached remote disk, ...).
 *
 * Overlay file layout (all integers little-endian):
 *   [0, 4096)               header: struct cow_header
 *   [4096, data_off)        bitmap, bit c = cluster c is in the overlay
 *   [data_off, +size)       the disk's bytes at their own offsets (sparse)
 * A named overlay is persistent: it can be opened again over the same
 * base (the header records the base's size, which is checked).  Its
 * bitmap reaches the file only on flush, after the data it covers is
 * durable, so a crash loses unflushed writes but never shows a cluster
 * whose data did not make it.  An unnamed overlay is an unlinked
 * temporary file whose bitmap is never written.
 */
#include "image_priv.h"
#include "xbd/common.h"

#include <endian.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#define COW_MAGIC "XBDCOW\r\n"
#define COW_VERSION 1
#define COW_CLUSTER_SHIFT 16 /* 64 KiB: few bitmap bits, cheap copy-up */
#define COW_HEADER_SIZE 4096u
#define COW_PAGE 4096u       /* bitmap is written back in pages of this */
#define COW_STRIPES 256      /* cluster locks, cluster % COW_STRIPES */
#define COW_ZERO_CHUNK (1u << 20)

struct cow_header {
	char magic[8];
	uint32_t version;
	uint32_t cluster_size;
	uint64_t image_size;
	uint64_t bitmap_offset;
	uint64_t data_offset;
};

struct cow_image {
	struct xbd_image pub;
	struct xbd_image *base;
	int fd;
	bool persistent;
	unsigned shift;          /* log2 of the cluster size */
	uint64_t nclusters;
	uint64_t data_off;       /* where disk byte 0 lives in the overlay */
	size_t npages;           /* bitmap pages */
	_Atomic uint64_t *bitmap;
	_Atomic unsigned char *dirty; /* per bitmap page: not yet written */
	uint64_t *snapshot;      /* flush's copy of the bitmap */
	bool *pending;           /* flush: pages in the snapshot */
	atomic_bool punch_ok;    /* overlay file system can punch holes */
	pthread_mutex_t flush_lock;
	pthread_mutex_t stripe[COW_STRIPES];
};

#define WORDS_PER_PAGE (COW_PAGE / sizeof(uint64_t))

static struct cow_image *to_cow(struct xbd_image *img)
{
	return (struct cow_image *)img;
}

static uint64_t cluster_size(const struct cow_image *c)
{
	return (uint64_t)1 << c->shift;
}

static bool cow_in_overlay(struct cow_image *c, uint64_t cl)
{
	/* acquire: pairs with cow_mark's release, so the cluster's data
	 * is in the overlay before we read it from there */
	uint64_t w = atomic_load_explicit(&c->bitmap[cl / 64], memory_order_acquire);

	return (w >> (cl % 64)) & 1;
}

static void cow_mark(struct cow_image *c, uint64_t cl)
{
	/* release: the copied-up data is written before the bit shows */
	atomic_fetch_or_explicit(&c->bitmap[cl / 64], (uint64_t)1 << (cl % 64),
				 memory_order_release);
	/* release: flush sees the bit once it sees the page dirty */
	atomic_store_explicit(&c->dirty[cl / 64 / WORDS_PER_PAGE], 1,
			      memory_order_release);
}

/* Makes overlay bytes [off, off+len) (disk offsets) read as zeroes. */
static int cow_zero_overlay(struct cow_image *c, uint64_t off, uint64_t len)
{
	if (atomic_load_explicit(&c->punch_ok, memory_order_relaxed)) {
		if (!fallocate(c->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
			       (off_t)(c->data_off + off), (off_t)len))
			return 0;
		if (errno != EOPNOTSUPP)
			return -errno;
		atomic_store_explicit(&c->punch_ok, false, memory_order_relaxed);
	}

	size_t chunk = len < COW_ZERO_CHUNK ? (size_t)len : COW_ZERO_CHUNK;
	void *zero = calloc(1, chunk);
	int err = zero ? 0 : -ENOMEM;

	while (!err && len > 0) {
		size_t n = len < chunk ? (size_t)len : chunk;
		struct iovec v = { .iov_base = zero, .iov_len = n };

		err = xbd_fd_pwritev_full(c->fd, &v, 1, c->data_off + off);
		off += n;
		len -= n;
	}
	free(zero);
	return err;
}

/*
 * Writes disk bytes [pos, pos+len), all inside cluster cl which is not
 * (or was not, when the caller looked) in the overlay: the bytes come
 * from iov at `skip`, or are zeroes when iov is NULL (discard).  The
 * rest of the cluster is copied up from the base.  Holding the
 * cluster's lock, re-checks the bit: another writer may have copied
 * the cluster up meanwhile, and then a plain overlay write is right.
 */
static int cow_write_cluster(struct cow_image *c, uint64_t cl, uint64_t pos,
			     uint64_t len, const struct iovec *iov, int iovcnt,
			     size_t skip, struct iovec *slice)
{
	pthread_mutex_t *lock = &c->stripe[cl % COW_STRIPES];
	uint64_t cl_start = cl << c->shift;
	uint64_t cl_len = cluster_size(c);
	bool copied_up = false;
	char *buf = NULL;
	int err, n;

	if (cl_start + cl_len > c->pub.size)
		cl_len = c->pub.size - cl_start;

	pthread_mutex_lock(lock);
	if (cow_in_overlay(c, cl)) {
		copied_up = true;
	} else if (pos == cl_start && len == cl_len) {
		/* the whole cluster is new: nothing to copy up */
		if (iov) {
			n = xbd_iov_slice(iov, iovcnt, skip, len, slice);
			err = xbd_fd_pwritev_full(c->fd, slice, n, c->data_off + pos);
		} else {
			err = cow_zero_overlay(c, pos, len);
		}
		if (!err)
			cow_mark(c, cl);
	} else {
		buf = malloc(cl_len);
		err = buf ? xbd_image_pread(c->base, buf, cl_len, cl_start) : -ENOMEM;
		if (!err) {
			if (iov)
				xbd_iov_to_buf(iov, iovcnt, skip, buf + (pos - cl_start), len);
			else
				memset(buf + (pos - cl_start), 0, len);
			struct iovec v = { .iov_base = buf, .iov_len = cl_len };
			err = xbd_fd_pwritev_full(c->fd, &v, 1, c->data_off + cl_start);
		}
		if (!err)
			cow_mark(c, cl);
	}
	pthread_mutex_unlock(lock);
	free(buf);

	if (copied_up) {
		if (!iov)
			return cow_zero_overlay(c, pos, len);
		n = xbd_iov_slice(iov, iovcnt, skip, len, slice);
		return xbd_fd_pwritev_full(c->fd, slice, n, c->data_off + pos);
	}
	return err;
}

/* End of the run of clusters from `pos` that share pos's placement,
 * capped at `end`. */
static uint64_t cow_run_end(struct cow_image *c, uint64_t pos, uint64_t end,
			    bool in_overlay)
{
	uint64_t next = ((pos >> c->shift) + 1) << c->shift;

	while (next < end && cow_in_overlay(c, next >> c->shift) == in_overlay)
		next += cluster_size(c);
	return next < end ? next : end;
}

/* Room for a slice of an iov: on the stack for the usual short iovs. */
struct slice_buf {
	struct iovec small[16];
	struct iovec *v;
};

static int slice_buf_init(struct slice_buf *s, int iovcnt)
{
	s->v = s->small;
	if (iovcnt > (int)XBD_ARRAY_SIZE(s->small)) {
		s->v = malloc(sizeof(*s->v) * (size_t)iovcnt);
		if (!s->v)
			return -ENOMEM;
	}
	return 0;
}

static void slice_buf_free(struct slice_buf *s)
{
	if (s->v != s->small)
		free(s->v);
}

static int cow_preadv(struct xbd_image *img, const struct iovec *iov,
		      int iovcnt, uint64_t offset)
{
	struct cow_image *c = to_cow(img);
	uint64_t len = xbd_iov_length(iov, iovcnt), end = offset + len;
	struct slice_buf s;
	int err;

	assert(xbd_image_valid_range(img, offset, len));
	if ((err = slice_buf_init(&s, iovcnt)))
		return err;
	for (uint64_t pos = offset; !err && pos < end; ) {
		bool in = cow_in_overlay(c, pos >> c->shift);
		uint64_t run_end = cow_run_end(c, pos, end, in);
		int n = xbd_iov_slice(iov, iovcnt, pos - offset, run_end - pos, s.v);

		if (in)
			err = xbd_fd_preadv_full(c->fd, s.v, n, c->data_off + pos);
		else
			err = xbd_image_preadv(c->base, s.v, n, pos);
		pos = run_end;
	}
	slice_buf_free(&s);
	return err;
}

/* Write (iov != NULL) or discard (iov == NULL) of [offset, offset+len). */
static int cow_modify(struct cow_image *c, const struct iovec *iov, int iovcnt,
		      uint64_t offset, uint64_t len)
{
	uint64_t end = offset + len;
	struct slice_buf s;
	int err;

	assert(xbd_image_valid_range(&c->pub, offset, len));
	assert(!c->pub.read_only);
	if ((err = slice_buf_init(&s, iovcnt)))
		return err;
	for (uint64_t pos = offset; !err && pos < end; ) {
		uint64_t cl = pos >> c->shift;
		uint64_t run_end;

		if (cow_in_overlay(c, cl)) {
			run_end = cow_run_end(c, pos, end, true);
			if (iov) {
				int n = xbd_iov_slice(iov, iovcnt, pos - offset,
						      run_end - pos, s.v);
				err = xbd_fd_pwritev_full(c->fd, s.v, n,
							  c->data_off + pos);
			} else {
				err = cow_zero_overlay(c, pos, run_end - pos);
			}
		} else {
			run_end = (cl + 1) << c->shift;
			if (run_end > end)
				run_end = end;
			err = cow_write_cluster(c, cl, pos, run_end - pos, iov, iovcnt,
						pos - offset, s.v);
		}
		pos = run_end;
	}
	slice_buf_free(&s);
	return err;
}

static int cow_pwritev(struct xbd_image *img, const struct iovec *iov,
		       int iovcnt, uint64_t offset)
{
	return cow_modify(to_cow(img), iov, iovcnt, offset,
			  xbd_iov_length(iov, iovcnt));
}

static int cow_discard(struct xbd_image *img, uint64_t offset, uint64_t len)
{
	return cow_modify(to_cow(img), NULL, 0, offset, len);
}

static uint64_t bitmap_off(void)
{
	return COW_HEADER_SIZE;
}

static int cow_flush(struct xbd_image *img)
{
	struct cow_image *c = to_cow(img);
	int err = 0;

	/* An unnamed overlay dies with the process: nothing to keep. */
	if (!c->persistent)
		return 0;

	pthread_mutex_lock(&c->flush_lock);
	for (size_t p = 0; p < c->npages; p++) {
		/* acquire: pairs with cow_mark, so the bits are seen */
		c->pending[p] = atomic_exchange_explicit(&c->dirty[p], 0,
							 memory_order_acquire);
		if (!c->pending[p])
			continue;
		for (size_t w = p * WORDS_PER_PAGE; w < (p + 1) * WORDS_PER_PAGE; w++)
			c->snapshot[w] = htole64(atomic_load_explicit(
				&c->bitmap[w], memory_order_relaxed));
	}
	/* the data behind every bit in the snapshot, before the bits */
	if (fdatasync(c->fd))
		err = -errno;
	for (size_t p = 0; p < c->npages; p++) {
		if (!c->pending[p])
			continue;
		if (!err) {
			struct iovec v = { .iov_base = &c->snapshot[p * WORDS_PER_PAGE],
					   .iov_len = COW_PAGE };
			err = xbd_fd_pwritev_full(c->fd, &v, 1,
						  bitmap_off() + p * COW_PAGE);
		}
		if (err) /* try again on the next flush */
			atomic_store_explicit(&c->dirty[p], 1, memory_order_relaxed);
	}
	if (!err && fdatasync(c->fd))
		err = -errno;
	pthread_mutex_unlock(&c->flush_lock);
	return err;
}

static void cow_free(struct cow_image *c)
{
	for (int i = 0; i < COW_STRIPES; i++)
		pthread_mutex_destroy(&c->stripe[i]);
	pthread_mutex_destroy(&c->flush_lock);
	free(c->bitmap);
	free(c->dirty);
	free(c->snapshot);
	free(c->pending);
	free(c);
}

static void cow_close(struct xbd_image *img)
{
	struct cow_image *c = to_cow(img);
	int err = cow_flush(img);

	if (err)
		xbd_err("cow overlay: final flush failed: %s", xbd_strerror(err));
	close(c->fd);
	xbd_image_close(c->base);
	cow_free(c);
}

static const struct xbd_image_ops cow_ops = {
	.name = "cow",
	.preadv = cow_preadv,
	.pwritev = cow_pwritev,
	.flush = cow_flush,
	.discard = cow_discard,
	.close = cow_close,
};

static uint64_t round_up(uint64_t v, uint64_t to)
{
	return (v + to - 1) / to * to;
}

/* Sizes the bitmap and places the data for a cluster size. */
static int cow_layout(struct cow_image *c, unsigned shift)
{
	size_t nwords;

	c->shift = shift;
	c->nclusters = round_up(c->pub.size, cluster_size(c)) >> shift;
	nwords = round_up(c->nclusters, 64) / 64;
	c->npages = round_up(nwords, WORDS_PER_PAGE) / WORDS_PER_PAGE;
	c->data_off = round_up(bitmap_off() + c->npages * COW_PAGE, cluster_size(c));
	c->bitmap = calloc(c->npages * WORDS_PER_PAGE, sizeof(*c->bitmap));
	c->snapshot = calloc(c->npages * WORDS_PER_PAGE, sizeof(*c->snapshot));
	c->dirty = calloc(c->npages, sizeof(*c->dirty));
	c->pending = calloc(c->npages, sizeof(*c->pending));
	if (!c->bitmap || !c->snapshot || !c->dirty || !c->pending)
		return -ENOMEM;
	return 0;
}

static int cow_pread_fd(int fd, void *buf, size_t len, uint64_t off)
{
	struct iovec v = { .iov_base = buf, .iov_len = len };

	return xbd_fd_preadv_full(fd, &v, 1, off);
}

/* A new overlay: header written and made durable before any data. */
static int cow_create(struct cow_image *c, const char *path)
{
	struct cow_header h = {
		.version = htole32(COW_VERSION),
		.cluster_size = htole32((uint32_t)cluster_size(c)),
		.image_size = htole64(c->pub.size),
		.bitmap_offset = htole64(bitmap_off()),
		.data_offset = htole64(c->data_off),
	};
	struct iovec v = { .iov_base = &h, .iov_len = sizeof(h) };
	int err;

	memcpy(h.magic, COW_MAGIC, sizeof(h.magic));
	if (ftruncate(c->fd, (off_t)(c->data_off + c->pub.size))) {
		err = -errno;
		xbd_err("%s: cannot size the overlay: %s", path, xbd_strerror(err));
		return err;
	}
	if (!c->persistent)
		return 0;
	err = xbd_fd_pwritev_full(c->fd, &v, 1, 0);
	if (!err && fdatasync(c->fd))
		err = -errno;
	if (err)
		xbd_err("%s: cannot write the overlay header: %s", path,
			xbd_strerror(err));
	return err;
}

/* An overlay written before: check that it belongs to this base. */
static int cow_load(struct cow_image *c, const char *path, uint64_t file_size)
{
	struct cow_header h;
	uint32_t csize;
	unsigned shift;
	int err;

	err = cow_pread_fd(c->fd, &h, sizeof(h), 0);
	if (err || memcmp(h.magic, COW_MAGIC, sizeof(h.magic)) ||
	    le32toh(h.version) != COW_VERSION) {
		xbd_err("%s: exists and is not an xbd overlay (refusing to touch it)",
			path);
		return -EINVAL;
	}
	csize = le32toh(h.cluster_size);
	for (shift = 12; shift <= 20 && (1u << shift) != csize; shift++)
		;
	if (shift > 20 || csize < c->pub.sector_size) {
		xbd_err("%s: bad overlay cluster size %u", path, csize);
		return -EINVAL;
	}
	if (le64toh(h.image_size) != c->pub.size) {
		xbd_err("%s: overlay is for a %llu-byte disk, the base has %llu bytes",
			path, (unsigned long long)le64toh(h.image_size),
			(unsigned long long)c->pub.size);
		return -EINVAL;
	}
	err = cow_layout(c, shift);
	if (err)
		return err;
	if (le64toh(h.bitmap_offset) != bitmap_off() ||
	    le64toh(h.data_offset) != c->data_off ||
	    file_size < c->data_off + c->pub.size) {
		xbd_err("%s: overlay header does not match its size (damaged?)", path);
		return -EINVAL;
	}
	err = cow_pread_fd(c->fd, c->snapshot, c->npages * COW_PAGE, bitmap_off());
	if (err) {
		xbd_err("%s: cannot read the overlay bitmap: %s", path,
			xbd_strerror(err));
		return err;
	}
	for (size_t w = 0; w < c->npages * WORDS_PER_PAGE; w++) {
		uint64_t bits = le64toh(c->snapshot[w]);

		/* bits past the last cluster mean nothing */
		if (w * 64 + 64 > c->nclusters)
			bits &= w * 64 >= c->nclusters ? 0 :
				((uint64_t)1 << (c->nclusters - w * 64)) - 1;
		atomic_init(&c->bitmap[w], bits);
	}
	return 0;
}

static int cow_open_overlay(struct cow_image *c, const char *path)
{
	struct stat st;
	int err;

	if (!path) {
		const char *dir = getenv("TMPDIR");
		char tmpl[4096];

		/* overlays can grow big: /var/tmp rather than tmpfs, unless
		 * there is none (a minimal dom0) */
		if (!dir || !*dir)
			dir = access("/var/tmp", W_OK) ? "/tmp" : "/var/tmp";
		c->fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
		if (c->fd < 0) {
			snprintf(tmpl, sizeof(tmpl), "%s/xbd-overlay.XXXXXX", dir);
			c->fd = mkostemp(tmpl, O_CLOEXEC);
			if (c->fd >= 0)
				unlink(tmpl);
		}
		if (c->fd < 0) {
			err = -errno;
			xbd_err("%s: cannot create a temporary overlay: %s", dir,
				xbd_strerror(err));
			return err;
		}
		c->persistent = false;
		err = cow_layout(c, COW_CLUSTER_SHIFT);
		return err ? err : cow_create(c, dir);
	}

	c->persistent = true;
	c->fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0600);
	if (c->fd < 0) {
		err = -errno;
		xbd_err("%s: cannot open the overlay: %s", path, xbd_strerror(err));
		return err;
	}
	if (fstat(c->fd, &st) || !S_ISREG(st.st_mode)) {
		xbd_err("%s: the overlay must be a regular file", path);
		return -EINVAL;
	}
	if (flock(c->fd, LOCK_EX | LOCK_NB)) {
		err = -errno;
		xbd_err("%s: overlay is in use by another process", path);
		return err;
	}
	if (st.st_size == 0) {
		err = cow_layout(c, COW_CLUSTER_SHIFT);
		return err ? err : cow_create(c, path);
	}
	return cow_load(c, path, (uint64_t)st.st_size);
}

int xbd_image_open_cow(struct xbd_image *base, const char *overlay_path,
		       struct xbd_image **out)
{
	struct cow_image *c = calloc(1, sizeof(*c));
	int err;

	if (!c) {
		xbd_err("cow image: out of memory");
		xbd_image_close(base);
		return -ENOMEM;
	}
	c->fd = -1;
	c->base = base;
	c->pub = (struct xbd_image){
		.ops = &cow_ops,
		.size = base->size,
		.sector_size = base->sector_size,
		.read_only = false,
		.can_flush = true,
		.can_discard = true,
		.nonblocking = false,
	};
	atomic_init(&c->punch_ok, true);
	pthread_mutex_init(&c->flush_lock, NULL);
	for (int i = 0; i < COW_STRIPES; i++)
		pthread_mutex_init(&c->stripe[i], NULL);

	err = cow_open_overlay(c, overlay_path);
	if (err) {
		if (err == -ENOMEM)
			xbd_err("cow image: out of memory");
		if (c->fd >= 0)
			close(c->fd);
		xbd_image_close(base);
		cow_free(c);
		return err;
	}
	*out = &c->pub;
	return 0;
}

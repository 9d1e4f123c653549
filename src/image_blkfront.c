/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * An attached disk as an image (xbd_frontend_open_image): `xbd attach`
 * hands it to the FUSE export, which reads it like any other back-end.
 * Unaligned I/O is widened to whole sectors through a bounce buffer
 * (read-modify-write for writes).  Part of the frontend's data side.
 */
#include "frontend_priv.h"
#include "image_priv.h"

#include <assert.h>
#include <errno.h>
#include <pthread.h>
#include <stdlib.h>

struct fe_image {
	struct xbd_image img;
	struct xbd_frontend *fe;
};

static struct xbd_frontend *image_fe(struct xbd_image *img)
{
	return ((struct fe_image *)img)->fe;
}

/* [*a0, *a1): the smallest sector-aligned range covering [off, off+len). */
static void align_range(const struct xbd_frontend *fe, uint64_t off,
			uint64_t len, uint64_t *a0, uint64_t *a1)
{
	uint64_t ss = fe->info.sector_size;

	*a0 = off & ~(ss - 1);
	*a1 = (off + len + ss - 1) & ~(ss - 1);
}

/*
 * A synchronous read or write of any alignment.  The ring moves whole
 * sectors: an unaligned range goes through a bounce buffer that covers
 * it, and a write becomes read-modify-write of those sectors, one at a
 * time so that two of them cannot undo each other.
 */
static int fe_img_io(struct xbd_image *img, enum xbd_frontend_op op,
		     const struct iovec *iov, int iovcnt, uint64_t offset)
{
	struct xbd_frontend *fe = image_fe(img);
	size_t len = xbd_iov_length(iov, iovcnt);
	uint64_t a0, a1;
	struct iovec b;
	int err;

	assert(xbd_image_valid_range(img, offset, len));
	align_range(fe, offset, len, &a0, &a1);
	if (a0 == offset && a1 == offset + len)
		return xbd_fe_io_sync(fe, op, iov, iovcnt, offset, len);
	b.iov_len = a1 - a0;
	b.iov_base = malloc(b.iov_len);
	if (!b.iov_base)
		return -ENOMEM;
	if (op == XBD_FRONTEND_READ) {
		err = xbd_fe_io_sync(fe, XBD_FRONTEND_READ, &b, 1, a0, b.iov_len);
		if (!err)
			xbd_iov_from_buf(iov, iovcnt, 0,
					 (char *)b.iov_base + (offset - a0), len);
	} else {
		pthread_mutex_lock(&fe->rmw_lock);
		err = xbd_fe_io_sync(fe, XBD_FRONTEND_READ, &b, 1, a0, b.iov_len);
		if (!err) {
			xbd_iov_to_buf(iov, iovcnt, 0,
				       (char *)b.iov_base + (offset - a0), len);
			err = xbd_fe_io_sync(fe, XBD_FRONTEND_WRITE, &b, 1, a0,
					     b.iov_len);
		}
		pthread_mutex_unlock(&fe->rmw_lock);
	}
	free(b.iov_base);
	return err;
}

static int fe_img_preadv(struct xbd_image *img, const struct iovec *iov,
			 int iovcnt, uint64_t offset)
{
	return fe_img_io(img, XBD_FRONTEND_READ, iov, iovcnt, offset);
}

/* Sector-aligned reads go to the ring and return at once; others take
 * the synchronous path (with its bounce buffer) and finish here. */
static int fe_img_preadv_async(struct xbd_image *img, const struct iovec *iov,
			       int iovcnt, uint64_t offset,
			       xbd_image_done_fn done, void *opaque)
{
	struct xbd_frontend *fe = image_fe(img);
	size_t len = xbd_iov_length(iov, iovcnt);
	uint64_t a0, a1;

	assert(xbd_image_valid_range(img, offset, len));
	align_range(fe, offset, len, &a0, &a1);
	if (len == 0 || a0 != offset || a1 != offset + len) {
		done(opaque, fe_img_preadv(img, iov, iovcnt, offset));
		return 0;
	}
	return xbd_fe_io_submit(fe, XBD_FRONTEND_READ, iov, iovcnt, offset, len,
				done, opaque);
}

/* Aligned reads the pool can lend whole; others are read with a copy. */
static int fe_img_read_lent(struct xbd_image *img, uint64_t offset,
			    uint64_t len, xbd_image_lent_fn done, void *opaque)
{
	struct xbd_frontend *fe = image_fe(img);
	uint64_t a0, a1;
	int err;

	assert(xbd_image_valid_range(img, offset, len));
	align_range(fe, offset, len, &a0, &a1);
	if (len == 0 || a0 != offset || a1 != offset + len)
		return -EOPNOTSUPP;
	err = xbd_fe_io_read_lent(fe, offset, len, done, opaque);
	return err == -E2BIG ? -EOPNOTSUPP : err;
}

static void fe_img_lent_return(struct xbd_image *img, void *loan)
{
	xbd_fe_io_lent_return(image_fe(img), loan);
}

static int fe_img_pwritev(struct xbd_image *img, const struct iovec *iov,
			  int iovcnt, uint64_t offset)
{
	assert(!img->read_only);
	return fe_img_io(img, XBD_FRONTEND_WRITE, iov, iovcnt, offset);
}

static int fe_img_flush(struct xbd_image *img)
{
	return xbd_fe_io_sync(image_fe(img), XBD_FRONTEND_FLUSH, NULL, 0, 0, 0);
}

static int fe_img_discard(struct xbd_image *img, uint64_t offset, uint64_t len)
{
	assert(xbd_image_valid_range(img, offset, len));
	assert(!img->read_only);
	return xbd_fe_io_sync(image_fe(img), XBD_FRONTEND_DISCARD, NULL, 0, offset, len);
}

static void fe_img_close(struct xbd_image *img)
{
	free(img);
}

static const struct xbd_image_ops fe_image_ops = {
	.name = "blkfront",
	.preadv = fe_img_preadv,
	.pwritev = fe_img_pwritev,
	.flush = fe_img_flush,
	.discard = fe_img_discard,
	.close = fe_img_close,
	.preadv_async = fe_img_preadv_async,
	.read_lent = fe_img_read_lent,
	.lent_return = fe_img_lent_return,
};

int xbd_frontend_open_image(struct xbd_frontend *fe, bool read_only,
			    struct xbd_image **out)
{
	struct fe_image *fi;

	if (!read_only && fe->info.read_only)
		return -EROFS;
	fi = calloc(1, sizeof(*fi));
	if (!fi)
		return -ENOMEM;
	fi->fe = fe;
	fi->img.ops = &fe_image_ops;
	fi->img.size = fe->info.sectors * 512u;
	fi->img.sector_size = fe->info.sector_size;
	fi->img.read_only = read_only;
	fi->img.can_flush = fe->info.flush || fe->info.barrier;
	fi->img.can_discard = !read_only && fe->info.discard;
	fi->img.nonblocking = false;
	*out = &fi->img;
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The inside of the image seam (include/xbd/image.h): the ops table a
 * back-end fills in, as an nbdkit plugin does.  Only src/image.c and the
 * back-ends (src/image_*.c, and test back-ends) include this; everyone
 * else calls the xbd_image_* wrappers, which check a request's range and
 * the read-only flag once, so the ops below only assert them.
 */
#ifndef XBD_IMAGE_PRIV_H
#define XBD_IMAGE_PRIV_H

#include <assert.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "xbd/image.h"

/* Every op is called through a wrapper in src/image.c: [offset,
 * offset + length) lies inside the image, and pwritev and discard are
 * never called on a read-only image. */
struct xbd_image_ops {
	const char *name; /* "raw", "cow", "null", "errinject", "blkfront" */
	int (*preadv)(struct xbd_image *img, const struct iovec *iov, int iovcnt,
		      uint64_t offset);
	int (*pwritev)(struct xbd_image *img, const struct iovec *iov,
		       int iovcnt, uint64_t offset);
	/* Everything completed before is durable when this returns. */
	int (*flush)(struct xbd_image *img);
	/* May be NULL (no discard).  Reads of a discarded range return
	 * zeroes for raw and cow. */
	int (*discard)(struct xbd_image *img, uint64_t offset, uint64_t len);
	/* May be NULL.  As xbd_image_try_preadv_nowait. */
	int (*try_preadv_nowait)(struct xbd_image *img, const struct iovec *iov,
				 int iovcnt, uint64_t offset);
	void (*close)(struct xbd_image *img);
	/* May be NULL (reads are synchronous only).  As
	 * xbd_image_preadv_async; the back-end keeps working until done
	 * was called for every read it accepted. */
	int (*preadv_async)(struct xbd_image *img, const struct iovec *iov,
			    int iovcnt, uint64_t offset, xbd_image_done_fn done,
			    void *opaque);
	/* May be NULL.  As xbd_image_read_lent. */
	int (*read_lent)(struct xbd_image *img, uint64_t offset, uint64_t len,
			 xbd_image_lent_fn done, void *opaque);
	/* Set with read_lent.  As xbd_image_lent_return. */
	void (*lent_return)(struct xbd_image *img, void *loan);
};

/* [offset, offset+len) lies inside the image.  The wrappers checked it;
 * back-ends assert it. */
static inline bool xbd_image_valid_range(const struct xbd_image *img,
					 uint64_t offset, uint64_t len)
{
	return offset <= img->size && len <= img->size - offset;
}

/* preadv/pwritev on an fd until the whole iov is done: retries short
 * transfers and EINTR, splits at IOV_MAX.  End of file before the end
 * of the iov is -EIO.  Returns 0 or -errno. */
int xbd_fd_preadv_full(int fd, const struct iovec *iov, int iovcnt,
		       uint64_t offset);
int xbd_fd_pwritev_full(int fd, const struct iovec *iov, int iovcnt,
			uint64_t offset);

/* xbd_image_open_raw with the lock chosen (xbd_image_open_by_name). */
int xbd_image_open_raw_locked(const char *path, bool read_only,
			      enum xbd_image_lock lock, struct xbd_image **out);

/* Takes the image locks of src/image_lock.c on fd, the open image at
 * path (named in the error line): 0, -EBUSY when another user is in the
 * way (one line names it), or -errno.  The locks go with the fd's last
 * close. */
int xbd_image_lock_fd(int fd, const char *path, bool write,
		      enum xbd_image_lock how);

#endif

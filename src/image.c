/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The image seam's choke point: every call into a back-end goes through
 * a wrapper here, which checks the request's range and the read-only
 * flag once (the back-ends only assert them), as nbdkit's
 * server/backend.c does for its plugins.  Also opening a back-end by
 * name (as `xbd serve --backend` does), and the iovec and
 * full-transfer helpers the back-ends share.
 */
#include "image_priv.h"
#include "xbd/common.h"
#include "xbd/util.h"

#include <errno.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <sys/uio.h>

/* 0 if [offset, offset+len) lies inside the image (and, for a write,
 * the image is writable); else -EINVAL (out of range, overflow) or
 * -EROFS.  The one range check of a request. */
static int check_io(const struct xbd_image *img, uint64_t offset,
		    uint64_t len, bool write)
{
	if (!xbd_image_valid_range(img, offset, len))
		return -EINVAL;
	if (write && img->read_only)
		return -EROFS;
	return 0;
}

size_t xbd_iov_length(const struct iovec *iov, int iovcnt)
{
	size_t len = 0;

	for (int i = 0; i < iovcnt; i++)
		len += iov[i].iov_len;
	return len;
}

/* A walk over bytes [skip, ...) of iov[]: where the walk stands. */
struct iov_walk {
	const struct iovec *iov;
	int iovcnt, i;
	size_t skip;
};

/* The next piece of the walk, at most max bytes: its start in *p and
 * its length; 0 once iov[] is used up. */
static size_t iov_next(struct iov_walk *w, size_t max, char **p)
{
	for (; w->i < w->iovcnt; w->i++) {
		size_t seg = w->iov[w->i].iov_len;

		if (w->skip >= seg) {
			w->skip -= seg;
			continue;
		}
		size_t take = seg - w->skip < max ? seg - w->skip : max;
		*p = (char *)w->iov[w->i].iov_base + w->skip;
		w->i++;
		w->skip = 0;
		return take;
	}
	return 0;
}

int xbd_iov_slice(const struct iovec *iov, int iovcnt, size_t skip,
		  size_t len, struct iovec *out)
{
	struct iov_walk w = { .iov = iov, .iovcnt = iovcnt, .skip = skip };
	size_t take;
	char *p;
	int n = 0;

	while (len > 0 && (take = iov_next(&w, len, &p))) {
		out[n].iov_base = p;
		out[n].iov_len = take;
		n++;
		len -= take;
	}
	return n;
}

/* Copies bytes [skip, skip+len) of iov[] to or from a flat buffer. */
static void iov_copy(const struct iovec *iov, int iovcnt, size_t skip,
		     char *buf, size_t len, bool to_buf)
{
	struct iov_walk w = { .iov = iov, .iovcnt = iovcnt, .skip = skip };
	size_t take;
	char *p;

	while (len > 0 && (take = iov_next(&w, len, &p))) {
		if (to_buf)
			memcpy(buf, p, take);
		else
			memcpy(p, buf, take);
		buf += take;
		len -= take;
	}
}

void xbd_iov_to_buf(const struct iovec *iov, int iovcnt, size_t skip,
		    void *buf, size_t len)
{
	iov_copy(iov, iovcnt, skip, buf, len, true);
}

void xbd_iov_from_buf(const struct iovec *iov, int iovcnt, size_t skip,
		      const void *buf, size_t len)
{
	iov_copy(iov, iovcnt, skip, (char *)buf, len, false);
}

static int fd_iov_full(int fd, const struct iovec *iov, int iovcnt,
		       uint64_t offset, bool write)
{
	size_t total = xbd_iov_length(iov, iovcnt), done = 0;
	struct iovec *rest = NULL; /* made only after a short transfer */
	int err = 0;

	while (done < total) {
		const struct iovec *v = iov;
		int n = iovcnt;
		ssize_t r;

		if (done > 0 || iovcnt > IOV_MAX) {
			if (!rest) {
				rest = malloc(sizeof(*rest) * (size_t)iovcnt);
				if (!rest) {
					err = -ENOMEM;
					break;
				}
			}
			n = xbd_iov_slice(iov, iovcnt, done, total - done, rest);
			v = rest;
		}
		if (n > IOV_MAX)
			n = IOV_MAX;
		if (write)
			r = pwritev(fd, v, n, (off_t)(offset + done));
		else
			r = preadv(fd, v, n, (off_t)(offset + done));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			err = -errno;
			break;
		}
		if (r == 0) {
			/* end of file: the file shrank under us */
			err = -EIO;
			break;
		}
		done += (size_t)r;
	}
	free(rest);
	return err;
}

int xbd_fd_preadv_full(int fd, const struct iovec *iov, int iovcnt,
		       uint64_t offset)
{
	return fd_iov_full(fd, iov, iovcnt, offset, false);
}

int xbd_fd_pwritev_full(int fd, const struct iovec *iov, int iovcnt,
			uint64_t offset)
{
	return fd_iov_full(fd, iov, iovcnt, offset, true);
}

int xbd_image_preadv(struct xbd_image *img, const struct iovec *iov,
		     int iovcnt, uint64_t offset)
{
	int err = check_io(img, offset, xbd_iov_length(iov, iovcnt), false);

	return err ? err : img->ops->preadv(img, iov, iovcnt, offset);
}

int xbd_image_pwritev(struct xbd_image *img, const struct iovec *iov,
		      int iovcnt, uint64_t offset)
{
	int err = check_io(img, offset, xbd_iov_length(iov, iovcnt), true);

	return err ? err : img->ops->pwritev(img, iov, iovcnt, offset);
}

int xbd_image_pread(struct xbd_image *img, void *buf, size_t len,
		    uint64_t offset)
{
	struct iovec iov = { .iov_base = buf, .iov_len = len };

	return xbd_image_preadv(img, &iov, 1, offset);
}

int xbd_image_pwrite(struct xbd_image *img, const void *buf, size_t len,
		     uint64_t offset)
{
	struct iovec iov = { .iov_base = (void *)buf, .iov_len = len };

	return xbd_image_pwritev(img, &iov, 1, offset);
}

int xbd_image_preadv_async(struct xbd_image *img, const struct iovec *iov,
			   int iovcnt, uint64_t offset, xbd_image_done_fn done,
			   void *opaque)
{
	int err = check_io(img, offset, xbd_iov_length(iov, iovcnt), false);

	if (err)
		return err;
	if (img->ops->preadv_async)
		return img->ops->preadv_async(img, iov, iovcnt, offset, done, opaque);
	done(opaque, img->ops->preadv(img, iov, iovcnt, offset));
	return 0;
}

int xbd_image_try_preadv_nowait(struct xbd_image *img, const struct iovec *iov,
				int iovcnt, uint64_t offset)
{
	int err = check_io(img, offset, xbd_iov_length(iov, iovcnt), false);

	if (err)
		return err;
	if (!img->ops->try_preadv_nowait)
		return -EOPNOTSUPP;
	return img->ops->try_preadv_nowait(img, iov, iovcnt, offset);
}

int xbd_image_read_lent(struct xbd_image *img, uint64_t offset, uint64_t len,
			xbd_image_lent_fn done, void *opaque)
{
	int err = check_io(img, offset, len, false);

	if (err)
		return err;
	if (!img->ops->read_lent)
		return -EOPNOTSUPP;
	return img->ops->read_lent(img, offset, len, done, opaque);
}

void xbd_image_lent_return(struct xbd_image *img, void *loan)
{
	img->ops->lent_return(img, loan);
}

int xbd_image_flush(struct xbd_image *img)
{
	if (!img->can_flush || !img->ops->flush)
		return 0;
	return img->ops->flush(img);
}

int xbd_image_discard(struct xbd_image *img, uint64_t offset, uint64_t len)
{
	int err = check_io(img, offset, len, true);

	if (err)
		return err;
	if (!xbd_image_can_discard(img))
		return -EOPNOTSUPP;
	return img->ops->discard(img, offset, len);
}

void xbd_image_close(struct xbd_image *img)
{
	if (img)
		img->ops->close(img);
}

const char *xbd_image_name(const struct xbd_image *img)
{
	return img->ops->name;
}

bool xbd_image_reads_async(const struct xbd_image *img)
{
	return img->ops->preadv_async != NULL;
}

bool xbd_image_can_lend(const struct xbd_image *img)
{
	return img->ops->read_lent != NULL;
}

bool xbd_image_can_read_nowait(const struct xbd_image *img)
{
	return img->ops->try_preadv_nowait != NULL;
}

bool xbd_image_can_discard(const struct xbd_image *img)
{
	return img->can_discard && img->ops->discard != NULL;
}

int xbd_image_open_by_name(const char *backend, const char *path,
			   const char *overlay_path, bool read_only,
			   enum xbd_image_lock lock, struct xbd_image **out)
{
	struct xbd_image *base;
	uint64_t size;
	int err;

	if (!strcmp(backend, "raw"))
		return xbd_image_open_raw_locked(path, read_only, lock, out);
	if (!strcmp(backend, "null")) {
		if (xbd_parse_byte_size(path, &size) || size == 0 || size % 512) {
			xbd_err("null image: bad size '%s' (a multiple of 512, e.g. 1G)",
				path ? path : "");
			return -EINVAL;
		}
		err = xbd_image_open_null(size, out);
		if (!err)
			(*out)->read_only = read_only;
		return err;
	}
	if (!strcmp(backend, "cow")) {
		/* the gold image is only ever read */
		err = xbd_image_open_raw_locked(path, true, lock, &base);
		if (err)
			return err;
		err = xbd_image_open_cow(base, overlay_path, out);
		if (!err && read_only)
			(*out)->read_only = true;
		return err;
	}
	xbd_err("unknown image back-end '%s' (raw, cow or null)", backend);
	return -EINVAL;
}

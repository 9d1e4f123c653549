/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * null image back-end: reads return zeroes, writes are dropped.  It
 * never sleeps, so the backend can run it inline; used to measure the
 * ring and the FUSE export without any storage underneath.
 */
#include "image_priv.h"
#include "xbd/common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static int null_preadv(struct xbd_image *img, const struct iovec *iov,
		       int iovcnt, uint64_t offset)
{
	assert(xbd_image_valid_range(img, offset, xbd_iov_length(iov, iovcnt)));
	for (int i = 0; i < iovcnt; i++)
		memset(iov[i].iov_base, 0, iov[i].iov_len);
	return 0;
}

static int null_pwritev(struct xbd_image *img, const struct iovec *iov,
			int iovcnt, uint64_t offset)
{
	assert(xbd_image_valid_range(img, offset, xbd_iov_length(iov, iovcnt)));
	assert(!img->read_only);
	return 0;
}

static int null_flush(struct xbd_image *img)
{
	(void)img;
	return 0;
}

static int null_discard(struct xbd_image *img, uint64_t offset, uint64_t len)
{
	assert(xbd_image_valid_range(img, offset, len));
	assert(!img->read_only);
	return 0;
}

static void null_close(struct xbd_image *img)
{
	free(img);
}

static const struct xbd_image_ops null_ops = {
	.name = "null",
	.preadv = null_preadv,
	.pwritev = null_pwritev,
	.flush = null_flush,
	.discard = null_discard,
	.close = null_close,
};

int xbd_image_open_null(uint64_t size, struct xbd_image **out)
{
	struct xbd_image *img;

	if (size == 0 || size % 512) {
		xbd_err("null image: size %llu is not a positive multiple of 512",
			(unsigned long long)size);
		return -EINVAL;
	}
	img = calloc(1, sizeof(*img));
	if (!img) {
		xbd_err("null image: out of memory");
		return -ENOMEM;
	}
	*img = (struct xbd_image){
		.ops = &null_ops,
		.size = size,
		.sector_size = 512,
		.can_flush = true,
		.can_discard = true,
		.nonblocking = true,
	};
	*out = img;
	return 0;
}

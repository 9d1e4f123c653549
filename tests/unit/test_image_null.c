/* SPDX-License-Identifier: GPL-2.0-or-later */
/* null image back-end: zeroes, dropped writes, bounds, by-name sizes. */
#include "tests/lib/check.h"
#include "xbd/image.h"

#include <errno.h>
#include <string.h>

int main(void)
{
	struct xbd_image *img = NULL;
	unsigned char buf[8192];
	struct iovec v[2] = { { buf, 4096 }, { buf + 4096, 4096 } };

	CHECK_EQ(xbd_image_open_null(1 << 20, &img), 0);
	CHECK(!strcmp(xbd_image_name(img), "null"));
	CHECK(img->nonblocking && !img->read_only && img->can_flush && img->can_discard);
	CHECK_EQ(img->size, 1 << 20);

	memset(buf, 0xAA, sizeof(buf));
	CHECK_EQ(xbd_image_pwrite(img, buf, sizeof(buf), 0), 0);
	CHECK_EQ(xbd_image_preadv(img, v, 2, 0), 0);
	int zero = 1;
	for (size_t i = 0; i < sizeof(buf); i++)
		zero &= buf[i] == 0;
	CHECK(zero);

	CHECK_EQ(xbd_image_pread(img, buf, 1024, (1 << 20) - 512), -EINVAL);
	CHECK_EQ(xbd_image_preadv(img, v, 2, (1 << 20) - 4096), -EINVAL);
	CHECK_EQ(xbd_image_pwritev(img, v, 2, (1 << 20) - 4096), -EINVAL);
	CHECK_EQ(xbd_image_discard(img, 1 << 20, 512), -EINVAL);
	CHECK_EQ(xbd_image_discard(img, 0, 1 << 20), 0);
	CHECK_EQ(xbd_image_flush(img), 0);
	xbd_image_close(img);

	CHECK_EQ(xbd_image_open_null(1000, &img), -EINVAL);
	CHECK_EQ(xbd_image_open_null(0, &img), -EINVAL);

	CHECK_EQ(xbd_image_open_by_name("null", "10G", NULL, false,
					XBD_IMAGE_LOCK_EXCL, &img), 0);
	CHECK_EQ(img->size, 10ull << 30);
	xbd_image_close(img);
	CHECK_EQ(xbd_image_open_by_name("null", "4096", NULL, true,
					XBD_IMAGE_LOCK_EXCL, &img), 0);
	CHECK_EQ(img->size, 4096);
	CHECK_EQ(xbd_image_pwrite(img, buf, 512, 0), -EROFS);
	xbd_image_close(img);
	CHECK_EQ(xbd_image_open_by_name("null", "1X", NULL, false,
					XBD_IMAGE_LOCK_EXCL, &img), -EINVAL);
	CHECK_EQ(xbd_image_open_by_name("null", "-1", NULL, false,
					XBD_IMAGE_LOCK_EXCL, &img), -EINVAL);
	CHECK_EQ(xbd_image_open_by_name("null", "100", NULL, false,
					XBD_IMAGE_LOCK_EXCL, &img), -EINVAL);
	CHECK_EQ(xbd_image_open_by_name("null", "99999999999T", NULL, false,
					XBD_IMAGE_LOCK_EXCL, &img),
		 -EINVAL);
	return check_report("test_image_null");
}

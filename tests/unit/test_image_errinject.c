/* SPDX-License-Identifier: GPL-2.0-or-later */
/* errinject image back-end: I/O touching the listed sectors fails with
 * -EIO and never reaches the base; everything else passes through. */
#include "tests/lib/check.h"
#include "tests/lib/image_util.h"
#include "xbd/common.h"
#include "xbd/image.h"

#include <errno.h>

#define SIZE (256u * 512)

static int open_ei(const char *path, const char *spec, struct xbd_image **out)
{
	struct xbd_image *base;

	if (xbd_image_open_raw(path, false, &base))
		return -1;
	return xbd_image_open_errinject(base, spec, out);
}

int main(void)
{
	unsigned char *gold = malloc(SIZE), buf[4096], *file;
	struct xbd_image *img;
	const char *path;
	size_t len;

	tu_scratch("errinject");
	path = tu_path("disk.img");
	tu_fill(gold, SIZE, 5, 0);
	tu_write_file(path, gold, SIZE);

	CHECK_EQ(open_ei(path, "8-15,100", &img), 0);
	CHECK(!strcmp(xbd_image_name(img), "errinject"));
	CHECK_EQ(img->size, SIZE);
	CHECK(!img->read_only && img->can_discard);

	CHECK_EQ(xbd_image_pread(img, buf, 4096, 0), 0);      /* sectors 0-7 */
	CHECK(!memcmp(buf, gold, 4096));
	CHECK_EQ(xbd_image_pread(img, buf, 512, 8 * 512), -EIO);
	CHECK_EQ(xbd_image_pread(img, buf, 1024, 7 * 512), -EIO);   /* 7-8 */
	CHECK_EQ(xbd_image_pread(img, buf, 512, 15 * 512), -EIO);
	CHECK_EQ(xbd_image_pread(img, buf, 512, 16 * 512), 0);
	CHECK(!memcmp(buf, gold + 16 * 512, 512));
	CHECK_EQ(xbd_image_pread(img, buf, 4096, 96 * 512), -EIO); /* 96-103 */
	CHECK_EQ(xbd_image_pread(img, buf, 512, 101 * 512), 0);

	/* failing writes and discards never reach the base */
	memset(buf, 0x55, sizeof(buf));
	CHECK_EQ(xbd_image_pwrite(img, buf, 1024, 99 * 512), -EIO);
	CHECK_EQ(xbd_image_discard(img, 14 * 512, 2048), -EIO);
	CHECK_EQ(xbd_image_pwrite(img, buf, 512, 200 * 512), 0);
	CHECK_EQ(xbd_image_discard(img, 300 * 512 - 4096, 4096), -EINVAL);
	CHECK_EQ(xbd_image_pread(img, buf, 512, SIZE), -EINVAL);
	CHECK_EQ(xbd_image_flush(img), 0);
	xbd_image_close(img);
	file = tu_read_file(path, &len);
	CHECK(!memcmp(file, gold, 200 * 512));
	CHECK(file[200 * 512] == 0x55 && file[201 * 512 - 1] == 0x55);
	CHECK(!memcmp(file + 201 * 512, gold + 201 * 512, SIZE - 201 * 512));
	free(file);

	/* bad specs: one error, base closed (ASan would see a leak) */
	const char *bad[] = { "", "abc", "5-3", "1-", "-4", "1,,2", "0-256",
			      "256", "3x", "1-2,", " 1" };
	for (size_t i = 0; i < XBD_ARRAY_SIZE(bad); i++) {
		int err = open_ei(path, bad[i], &img);
		CHECK_EQ(err, -EINVAL);
		if (err)
			continue;
		fprintf(stderr, "accepted bad spec '%s'\n", bad[i]);
		xbd_image_close(img);
	}
	CHECK_EQ(open_ei(path, "0-255", &img), 0);
	CHECK_EQ(xbd_image_pread(img, buf, 512, 0), -EIO);
	xbd_image_close(img);
	free(gold);
	return check_report("test_image_errinject");
}

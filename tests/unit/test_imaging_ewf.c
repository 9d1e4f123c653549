/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The E01 writer with its compressing threads (src/imaging_ewf.c through
 * xbd_image_out_*): media data given in pieces of any size, across
 * chunk and job boundaries, with zero, uniform and random chunks and a
 * short last chunk, reads back (libewf, xbd_image_verify) with the
 * digests of what was written, at every level and thread count; an
 * image closed before its commit leaves no segment. */
#include "tests/lib/check.h"
#include "xbd/imaging.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* 37 chunks of 32 KiB and 5 sectors: the last chunk is short */
#define SIZE (37u * 32768 + 5 * 512)

static unsigned char data[SIZE];

static void make_data(void)
{
	unsigned x = 12345, i;

	for (i = 0; i < SIZE; i++) {
		x = x * 1103515245u + 12345u;
		data[i] = (unsigned char)(x >> 16);
	}
	memset(data + 3 * 32768, 0, 4 * 32768);           /* zero chunks */
	memset(data + 9 * 32768, 0xAA, 2 * 32768);        /* uniform, non-zero */
	for (i = 0; i < 5 * 32768; i++)                    /* compressible */
		data[14 * 32768 + i] = "xbd image "[i % 10];
	memset(data + 36 * 32768, 0, SIZE - 36 * 32768);  /* a zero short end */
}

static void one(const char *dir, enum xbd_ewf_compression level, unsigned threads,
		size_t piece)
{
	char path[PATH_MAX], hex[XBD_HASH_COUNT][2 * XBD_HASH_MAX_BYTES + 1];
	char want_hex[XBD_HASH_COUNT][2 * XBD_HASH_MAX_BYTES + 1];
	bool want[XBD_HASH_COUNT] = { [XBD_HASH_MD5] = true, [XBD_HASH_SHA256] = true };
	struct xbd_image_out_opts o = { .format = XBD_IMAGE_EWF, .path = path,
					.size = SIZE, .sector_size = 512,
					.compression = level, .threads = threads };
	struct xbd_hashset *hs;
	struct xbd_image_out *io;
	uint64_t bytes = 0;
	size_t off, n;

	snprintf(path, sizeof(path), "%s/l%d-t%u-p%zu", dir, (int)level, threads, piece);
	CHECK_EQ(xbd_image_out_open(&o, &io), 0);
	for (off = 0; off < SIZE; off += n) {
		n = SIZE - off < piece ? SIZE - off : piece;
		CHECK_EQ(xbd_image_out_write(io, data + off, n), 0);
	}
	CHECK_EQ(xbd_image_out_commit(io, NULL, NULL), 0);
	xbd_image_out_close(io);

	CHECK_EQ(xbd_hashset_new(want, &hs), 0);
	CHECK_EQ(xbd_hashset_update(hs, data, SIZE), 0);
	CHECK_EQ(xbd_hashset_final(hs, want_hex), 0);
	xbd_hashset_free(hs);
	strcat(path, ".E01");
	CHECK_EQ(xbd_image_verify(XBD_IMAGE_EWF, path, want, hex, &bytes, NULL, NULL), 0);
	CHECK_EQ(bytes, SIZE);
	CHECK(!strcmp(hex[XBD_HASH_MD5], want_hex[XBD_HASH_MD5]));
	CHECK(!strcmp(hex[XBD_HASH_SHA256], want_hex[XBD_HASH_SHA256]));
	unlink(path);
}

int main(void)
{
	char dir[] = "/tmp/xbd-test-ewf.XXXXXX", path[PATH_MAX], seg[PATH_MAX + 16];
	static const size_t pieces[] = { 1u << 20, 32768, 4096, 1000, 77777 };
	struct xbd_image_out_opts o = { .format = XBD_IMAGE_EWF, .path = path,
					.size = SIZE, .sector_size = 512 };
	struct xbd_image_out *io;
	int level;
	size_t i;

	make_data();
	CHECK(mkdtemp(dir) != NULL);
	for (level = 0; level < XBD_EWF_COMPRESSION_COUNT; level++)
		one(dir, level, 0, pieces[level % 5]);
	for (i = 0; i < sizeof(pieces) / sizeof(pieces[0]); i++)
		one(dir, XBD_EWF_FAST, i % 2 ? 1 : 3, pieces[i]);

	/* stopped midway: nothing under either name */
	snprintf(path, sizeof(path), "%s/stopped", dir);
	CHECK_EQ(xbd_image_out_open(&o, &io), 0);
	CHECK_EQ(xbd_image_out_write(io, data, SIZE / 2), 0);
	xbd_image_out_close(io);
	snprintf(seg, sizeof(seg), "%s.partial.E01", path);
	CHECK(access(seg, F_OK) && errno == ENOENT);
	snprintf(seg, sizeof(seg), "%s.E01", path);
	CHECK(access(seg, F_OK) && errno == ENOENT);
	CHECK_EQ(rmdir(dir), 0);
	return check_report("test_imaging_ewf");
}

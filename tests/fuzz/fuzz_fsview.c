/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The file system view's child (fuse/fsview_child.c and every parser of
 * it: libext2fs behind our io_manager, ...) on a hostile image: the input is the image (zeros
 * follow up to 4 MiB).  The harness opens it as the child does and walks
 * it with the requests the parent sends (getattr, readdir, lookup,
 * readlink, read), checking that every read stays inside the image and
 * every reply has the length its op allows.  The work per input is
 * bounded: at most MAX_REQ requests.
 */
#include "tests/fuzz/fuzz.h"
#include "fuse/fsview.h"
#include "xbd/sandbox.h"

#include <errno.h>

#define IMG_SIZE (4u << 20)
#define MAX_REQ 200

struct mem_img {
	const uint8_t *data;
	size_t len;
};

static int mem_read(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct mem_img *m = ctx;

	FUZZ_CHECK(off <= IMG_SIZE && len <= IMG_SIZE - off);
	memset(buf, 0, len);
	if (off < m->len)
		memcpy(buf, m->data + off, len < m->len - off ? len : m->len - off);
	return 0;
}

/* One request; its status, and the body in *body (*blen bytes). */
static int32_t req(struct fsv_fs *e, uint32_t op, const void *q, size_t qlen,
		   char **body, size_t *blen, unsigned *n)
{
	void *out;
	size_t len;
	int32_t st;

	(*n)++;
	FUZZ_CHECK(fsv_handle(e, op, q, qlen, &out, &len) == 0);
	FUZZ_CHECK(len >= 4 && len <= XBD_SB_MAX + 4);
	memcpy(&st, out, 4);
	FUZZ_CHECK(st <= 0);
	if (st)
		FUZZ_CHECK(len == 4);
	memmove(out, (char *)out + 4, len - 4);
	*body = out;
	*blen = len - 4;
	return st;
}

static void walk(struct fsv_fs *e, uint64_t dir, int depth, unsigned *n)
{
	uint64_t q[2] = { dir, 0 };
	char *b;
	size_t bl, at = 8;

	if (depth > 4 || *n >= MAX_REQ)
		return;
	if (req(e, FSV_READDIR, q, sizeof(q), &b, &bl, n)) {
		free(b);
		return;
	}
	FUZZ_CHECK(bl >= 8 && bl <= FSV_READDIR_BYTES);
	while (at < bl && *n < MAX_REQ) {
		struct fsv_dirent d;
		struct fsv_attr a;
		char lk[8 + FSV_NAME_MAX], *x;
		size_t xl;

		FUZZ_CHECK(bl - at >= sizeof(d) + sizeof(a));
		memcpy(&d, b + at, sizeof(d));
		memcpy(&a, b + at + sizeof(d), sizeof(a));
		FUZZ_CHECK(d.namelen <= FSV_NAME_MAX &&
			   d.namelen <= bl - at - sizeof(d) - sizeof(a));
		memcpy(lk, &dir, 8);
		memcpy(lk + 8, b + at + sizeof(d) + sizeof(a), d.namelen);
		at += sizeof(d) + sizeof(a) + d.namelen;
		if (!d.namelen || req(e, FSV_LOOKUP, lk, 8 + d.namelen, &x, &xl, n)) {
			if (d.namelen)
				free(x);
			continue;
		}
		FUZZ_CHECK(xl == sizeof(a));
		memcpy(&a, x, sizeof(a));
		free(x);
		if ((a.mode & 0170000) == 0040000) {
			walk(e, a.ino, depth + 1, n);
		} else if ((a.mode & 0170000) == 0120000) {
			if (!req(e, FSV_READLINK, &a.ino, 8, &x, &xl, n))
				FUZZ_CHECK(xl <= FSV_LINK_MAX);
			free(x);
		} else {
			struct fsv_read r = { .ino = a.ino, .off = 0, .len = 65536 };

			if (!req(e, FSV_READ, &r, sizeof(r), &x, &xl, n))
				FUZZ_CHECK(xl <= r.len);
			free(x);
			if (!req(e, FSV_MAP, &r, sizeof(r), &x, &xl, n))
				FUZZ_CHECK(xl >= 8 && (xl - 8) % sizeof(struct fsv_extent) == 0 &&
					   (xl - 8) / sizeof(struct fsv_extent) <= FSV_MAP_MAX);
			free(x);
		}
	}
	free(b);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct mem_img m = { .data = data, .len = size };
	struct fsv_fs *e;
	uint64_t root = FSV_ROOT_INO;
	unsigned n = 0;
	char *b;
	size_t bl;

	if (fsv_open(IMG_SIZE, mem_read, &m, &e))
		return 0;
	if (!req(e, FSV_GETATTR, &root, 8, &b, &bl, &n))
		FUZZ_CHECK(bl == sizeof(struct fsv_attr));
	free(b);
	walk(e, FSV_ROOT_INO, 0, &n);
	fsv_close(e);
	return 0;
}

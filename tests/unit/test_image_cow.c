/* SPDX-License-Identifier: GPL-2.0-or-later */
/* cow image back-end: reads merge overlay and base, partial-cluster
 * writes keep the rest of the cluster, discard zeroes, concurrent
 * writers to one cluster lose nothing, persistent overlays reopen, the
 * base is never written, and any image can be the base. */
#include "tests/lib/check.h"
#include "tests/lib/image_util.h"
#include "xbd/image.h"

#include <errno.h>
#include <pthread.h>

#define CL 65536u
/* not a whole number of clusters: the last one is short */
#define SIZE (64u * CL + 3 * 512)

static unsigned char *gold, *model;

static struct xbd_image *open_cow(const char *base_path, const char *overlay)
{
	struct xbd_image *base, *img = NULL;

	CHECK_EQ(xbd_image_open_raw(base_path, true, &base), 0);
	CHECK_EQ(xbd_image_open_cow(base, overlay, &img), 0);
	return img;
}

/* The image reads exactly as the model, in odd-sized pieces too. */
static void check_model(struct xbd_image *img)
{
	unsigned char *buf = malloc(SIZE);

	CHECK_EQ(xbd_image_pread(img, buf, SIZE, 0), 0);
	CHECK(!memcmp(buf, model, SIZE));
	for (uint64_t off = 0; off + 3 * 512 <= SIZE; off += 7 * 512 * 11) {
		memset(buf, 0xEE, 3 * 512);
		CHECK_EQ(xbd_image_pread(img, buf, 3 * 512, off), 0);
		CHECK(!memcmp(buf, model + off, 3 * 512));
	}
	free(buf);
}

static void model_write(struct xbd_image *img, uint64_t off, size_t len,
			uint64_t seed)
{
	unsigned char *buf = malloc(len);

	tu_fill(buf, len, seed, off);
	CHECK_EQ(xbd_image_pwrite(img, buf, len, off), 0);
	memcpy(model + off, buf, len);
	free(buf);
}

static void model_discard(struct xbd_image *img, uint64_t off, size_t len)
{
	CHECK_EQ(xbd_image_discard(img, off, len), 0);
	memset(model + off, 0, len);
}

static void test_basic(const char *base_path, const char *overlay)
{
	struct xbd_image *img = open_cow(base_path, overlay);
	unsigned char buf[1024];

	CHECK(!strcmp(xbd_image_name(img), "cow"));
	CHECK_EQ(img->size, SIZE);
	CHECK(!img->read_only && img->can_flush && img->can_discard);
	memcpy(model, gold, SIZE);
	check_model(img);

	model_write(img, 1000 * 512, 512, 11);           /* inside a cluster */
	model_write(img, 3 * CL, CL, 12);                /* a whole cluster */
	model_write(img, 5 * CL - 1024, 4096, 13);       /* across a boundary */
	model_write(img, 7 * CL + 512, 3 * CL, 14);      /* partial, whole, partial */
	model_write(img, SIZE - 1024, 1024, 15);         /* the short last cluster */
	model_write(img, 1000 * 512 + 512, 512, 16);     /* next to an earlier write */
	check_model(img);

	model_discard(img, 20 * CL + 512, 1024);         /* partial, not copied up */
	model_discard(img, 21 * CL, 2 * CL);             /* whole clusters */
	model_discard(img, 3 * CL + 4096, 8192);         /* partial, copied up */
	model_discard(img, 7 * CL, CL);                  /* whole, copied up */
	model_discard(img, SIZE - 512, 512);
	check_model(img);
	model_write(img, 21 * CL + 512, 512, 17);        /* write into discarded */
	check_model(img);

	CHECK_EQ(xbd_image_pread(img, buf, 1024, SIZE - 512), -EINVAL);
	CHECK_EQ(xbd_image_pwrite(img, buf, 1024, SIZE - 512), -EINVAL);
	struct iovec v = { .iov_base = buf, .iov_len = 1024 };
	CHECK_EQ(xbd_image_pwritev(img, &v, 1, UINT64_MAX - 511), -EINVAL);
	CHECK_EQ(xbd_image_preadv(img, &v, 1, SIZE), -EINVAL);
	CHECK_EQ(xbd_image_discard(img, SIZE - 512, 1024), -EINVAL);
	CHECK_EQ(xbd_image_flush(img), 0);
	check_model(img);
	xbd_image_close(img);
}

/* Many segments, split across clusters at odd places. */
static void test_iov(const char *base_path)
{
	struct xbd_image *img = open_cow(base_path, NULL);
	enum { N = 40 };
	struct iovec iov[N];
	unsigned char *data = malloc(N * 3584), *back = malloc(N * 3584);
	uint64_t off = 2 * CL - 7 * 512;

	memcpy(model, gold, SIZE);
	tu_fill(data, N * 3584, 21, 0);
	for (int i = 0; i < N; i++)
		iov[i] = (struct iovec){ data + i * 3584, 3584 };
	CHECK_EQ(xbd_image_pwritev(img, iov, N, off), 0);
	memcpy(model + off, data, N * 3584);
	for (int i = 0; i < N; i++)
		iov[i].iov_base = back + i * 3584;
	CHECK_EQ(xbd_image_preadv(img, iov, N, off), 0);
	CHECK(!memcmp(back, data, N * 3584));
	check_model(img);
	xbd_image_close(img);
	free(data);
	free(back);
}

struct racer {
	struct xbd_image *img;
	int id, nthreads;
	pthread_barrier_t *go;
	int errors;
};

/* Thread i writes sector i, i+n, i+2n, ... of each cluster, clusters
 * in a shuffled order, all racing for the same copy-ups. */
static void *racer_main(void *arg)
{
	struct racer *r = arg;
	unsigned char buf[512];

	pthread_barrier_wait(r->go);
	for (uint64_t k = 0; k < 48; k++) {
		uint64_t cl = (k * 7 + (uint64_t)r->id) % 48 + 8;

		for (uint64_t s = (uint64_t)r->id; s < CL / 512; s += (uint64_t)r->nthreads * 5) {
			uint64_t off = cl * CL + s * 512;

			tu_fill(buf, 512, 500, off);
			if (xbd_image_pwrite(r->img, buf, 512, off))
				r->errors++;
		}
	}
	return NULL;
}

static void test_concurrent_cluster(const char *base_path)
{
	enum { T = 8 };
	struct xbd_image *img = open_cow(base_path, NULL);
	pthread_t t[T];
	struct racer r[T];
	pthread_barrier_t go;
	unsigned char one[512];

	memcpy(model, gold, SIZE);
	for (uint64_t cl = 8; cl < 56; cl++) {
		for (uint64_t s = 0; s < CL / 512; s++) {
			if (s % (T * 5) >= T)
				continue; /* nobody writes it: stays base */
			uint64_t off = cl * CL + s * 512;
			tu_fill(one, 512, 500, off);
			memcpy(model + off, one, 512);
		}
	}
	pthread_barrier_init(&go, NULL, T);
	for (int i = 0; i < T; i++) {
		r[i] = (struct racer){ .img = img, .id = i, .nthreads = T, .go = &go };
		pthread_create(&t[i], NULL, racer_main, &r[i]);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(r[i].errors, 0);
	}
	pthread_barrier_destroy(&go);
	check_model(img);
	xbd_image_close(img);
}

static void test_persistent(const char *base_path)
{
	const char *ov = tu_path("persist.ovl");
	struct xbd_image *img, *img2, *base;
	unsigned char buf[512];

	memcpy(model, gold, SIZE);
	img = open_cow(base_path, ov);
	model_write(img, 10 * CL + 512, 512, 31);
	model_write(img, 12 * CL, CL, 32);
	model_discard(img, 30 * CL, CL);
	CHECK_EQ(xbd_image_flush(img), 0);
	model_write(img, 40 * CL, 4096, 33); /* made durable by close */

	/* one user at a time */
	CHECK_EQ(xbd_image_open_raw(base_path, true, &base), 0);
	CHECK_EQ(xbd_image_open_cow(base, ov, &img2), -EWOULDBLOCK);
	xbd_image_close(img);

	img = open_cow(base_path, ov);
	check_model(img);
	model_write(img, 10 * CL + 1024, 512, 34);
	xbd_image_close(img);
	img = open_cow(base_path, ov);
	check_model(img);
	xbd_image_close(img);

	/* an overlay made for another base size is refused */
	tu_fill(buf, sizeof(buf), 3, 0);
	tu_write_file(tu_path("small.img"), buf, sizeof(buf));
	CHECK_EQ(xbd_image_open_raw(tu_path("small.img"), true, &base), 0);
	CHECK_EQ(xbd_image_open_cow(base, ov, &img), -EINVAL);

	/* an existing file that is not an overlay (here: the gold image
	 * itself) is refused and left alone; so is a directory */
	CHECK_EQ(xbd_image_open_raw(base_path, true, &base), 0);
	CHECK_EQ(xbd_image_open_cow(base, base_path, &img), -EINVAL);
	CHECK_EQ(xbd_image_open_raw(base_path, true, &base), 0);
	CHECK(xbd_image_open_cow(base, tu_dir, &img) < 0);
}

/* The base can be any image: a failing one, a null one. */
static void test_other_bases(const char *base_path)
{
	struct xbd_image *base, *ei, *img;
	unsigned char *buf = malloc(CL);

	/* sectors 256-263 = cluster 2, bytes 0-4095 */
	CHECK_EQ(xbd_image_open_raw(base_path, true, &base), 0);
	CHECK_EQ(xbd_image_open_errinject(base, "256-263", &ei), 0);
	CHECK_EQ(xbd_image_open_cow(ei, NULL, &img), 0);
	CHECK_EQ(xbd_image_pread(img, buf, 512, 2 * CL), -EIO);
	CHECK_EQ(xbd_image_pread(img, buf, 512, 2 * CL + 8192), 0);
	CHECK_EQ(xbd_image_pwrite(img, buf, 512, 2 * CL + 8192), -EIO); /* copy-up */
	CHECK_EQ(xbd_image_pread(img, buf, 512, 2 * CL + 8192), 0);
	CHECK(!memcmp(buf, gold + 2 * CL + 8192, 512));
	tu_fill(buf, CL, 41, 0);
	CHECK_EQ(xbd_image_pwrite(img, buf, CL, 2 * CL), 0); /* no copy-up */
	memset(buf, 0, CL);
	CHECK_EQ(xbd_image_pread(img, buf, CL, 2 * CL), 0);  /* now readable */
	unsigned char *want = malloc(CL);
	tu_fill(want, CL, 41, 0);
	CHECK(!memcmp(buf, want, CL));
	free(want);
	xbd_image_close(img);

	CHECK_EQ(xbd_image_open_null(4 * CL, &base), 0);
	CHECK_EQ(xbd_image_open_cow(base, NULL, &img), 0);
	tu_fill(buf, 512, 42, 0);
	CHECK_EQ(xbd_image_pwrite(img, buf, 512, CL + 512), 0);
	memset(buf, 0xFF, CL);
	CHECK_EQ(xbd_image_pread(img, buf, CL, CL), 0);
	CHECK(tu_all_zero(buf, 512) && tu_all_zero(buf + 1024, CL - 1024));
	xbd_image_close(img);

	/* read-only cow through the by-name door */
	CHECK_EQ(xbd_image_open_by_name("cow", base_path, NULL, true,
					XBD_IMAGE_LOCK_EXCL, &img), 0);
	CHECK(img->read_only);
	CHECK_EQ(xbd_image_pwrite(img, buf, 512, 0), -EROFS);
	CHECK_EQ(xbd_image_discard(img, 0, 512), -EROFS);
	xbd_image_close(img);
	CHECK_EQ(xbd_image_open_by_name("cow", base_path, NULL, false,
					XBD_IMAGE_LOCK_EXCL, &img), 0);
	CHECK(!img->read_only);
	CHECK_EQ(xbd_image_pwrite(img, buf, 512, 0), 0);
	xbd_image_close(img);
	free(buf);
}

int main(void)
{
	char before[65], after[65];
	const char *base_path;

	tu_scratch("cow");
	setenv("TMPDIR", tu_dir, 1); /* unnamed overlays land here */
	base_path = tu_path("gold.img");
	gold = malloc(SIZE);
	model = malloc(SIZE);
	tu_fill(gold, SIZE, 1, 0);
	tu_write_file(base_path, gold, SIZE);
	chmod(base_path, 0444);
	CHECK_EQ(tu_sha256(base_path, before), 0);

	test_basic(base_path, NULL);
	test_basic(base_path, tu_path("named.ovl"));
	test_iov(base_path);
	for (int i = 0; i < 10; i++) /* races show up on some runs only */
		test_concurrent_cluster(base_path);
	test_persistent(base_path);
	test_other_bases(base_path);

	CHECK_EQ(tu_sha256(base_path, after), 0);
	CHECK(!strcmp(before, after));
	free(gold);
	free(model);
	return check_report("test_image_cow");
}

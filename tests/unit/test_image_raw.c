/* SPDX-License-Identifier: GPL-2.0-or-later */
/* raw image back-end: bounds, read-only, discard, flush, big iovecs,
 * concurrent writers, shrinking files, opening by name, image locks. */
#include "tests/lib/check.h"
#include "tests/lib/image_util.h"
#include "xbd/image.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <unistd.h>

#define SIZE (1u << 20)

static void test_bounds_and_data(const char *path, const unsigned char *gold)
{
	struct xbd_image *img;
	unsigned char *buf = malloc(SIZE);
	size_t len;

	CHECK_EQ(xbd_image_open_raw(path, false, &img), 0);
	CHECK_EQ(img->size, SIZE);
	CHECK_EQ(img->sector_size, 512);
	CHECK(!img->read_only && img->can_flush && img->can_discard);
	CHECK(!strcmp(xbd_image_name(img), "raw"));

	CHECK_EQ(xbd_image_pread(img, buf, SIZE, 0), 0);
	CHECK(!memcmp(buf, gold, SIZE));

	/* out of range: refused, never clamped, by every wrapper */
	CHECK_EQ(xbd_image_pread(img, buf, 1024, SIZE - 512), -EINVAL);
	CHECK_EQ(xbd_image_pread(img, buf, 512, SIZE), -EINVAL);
	CHECK_EQ(xbd_image_pread(img, buf, 0, SIZE), 0);
	CHECK_EQ(xbd_image_pread(img, buf, 512, UINT64_MAX - 511), -EINVAL);
	struct iovec v = { .iov_base = buf, .iov_len = 1024 };
	CHECK_EQ(xbd_image_preadv(img, &v, 1, SIZE - 512), -EINVAL);
	CHECK_EQ(xbd_image_pwritev(img, &v, 1, SIZE - 512), -EINVAL);
	CHECK_EQ(xbd_image_pwritev(img, &v, 1, UINT64_MAX - 511), -EINVAL);
	CHECK_EQ(xbd_image_discard(img, SIZE - 512, 1024), -EINVAL);
	CHECK_EQ(xbd_image_discard(img, SIZE, 512), -EINVAL);
	free(tu_read_file(path, &len));
	CHECK_EQ(len, SIZE); /* nothing written past the end */

	/* write, read back through the image and the file */
	tu_fill(buf, 8192, 7, 0);
	CHECK_EQ(xbd_image_pwrite(img, buf, 8192, 4096), 0);
	CHECK_EQ(xbd_image_pwrite(img, buf, 512, SIZE - 512), 0);
	CHECK_EQ(xbd_image_flush(img), 0);
	unsigned char *file = tu_read_file(path, &len);
	CHECK(!memcmp(file + 4096, buf, 8192));
	CHECK(!memcmp(file + SIZE - 512, buf, 512));
	CHECK(!memcmp(file, gold, 4096));
	CHECK(!memcmp(file + 12288, gold + 12288, SIZE - 12288 - 512));
	free(file);

	/* discard: reads return zeroes, the file keeps its size */
	CHECK_EQ(xbd_image_discard(img, 65536, 131072), 0);
	CHECK_EQ(xbd_image_pread(img, buf, 262144, 0), 0);
	CHECK(tu_all_zero(buf + 65536, 131072));
	CHECK(!memcmp(buf + 196608, gold + 196608, 65536));
	CHECK(buf[65535] == gold[65535]);
	struct stat st;
	CHECK(stat(path, &st) == 0 && st.st_size == SIZE);

	xbd_image_close(img);
	free(buf);
}

static void test_read_only(const char *path)
{
	struct xbd_image *img;
	unsigned char buf[512] = { 1 };
	char before[65], after[65];

	CHECK_EQ(tu_sha256(path, before), 0);
	CHECK_EQ(xbd_image_open_raw(path, true, &img), 0);
	CHECK(img->read_only && !img->can_discard);
	CHECK_EQ(xbd_image_pwrite(img, buf, 512, 0), -EROFS);
	struct iovec v = { .iov_base = buf, .iov_len = 512 };
	CHECK_EQ(xbd_image_pwritev(img, &v, 1, 0), -EROFS);
	CHECK_EQ(xbd_image_discard(img, 0, 512), -EROFS);
	CHECK_EQ(xbd_image_discard(img, 0, 512), -EROFS);
	CHECK_EQ(xbd_image_flush(img), 0);
	CHECK_EQ(xbd_image_pread(img, buf, 512, 0), 0);
	xbd_image_close(img);
	CHECK_EQ(tu_sha256(path, after), 0);
	CHECK(!strcmp(before, after));
}

/* more segments than IOV_MAX, of odd sizes, in both directions */
static void test_big_iov(const char *path)
{
	enum { N = IOV_MAX * 2 + 3 };
	struct iovec *iov = calloc(N, sizeof(*iov));
	unsigned char *data = malloc(SIZE), *back = malloc(SIZE);
	struct xbd_image *img;
	size_t off = 0;

	tu_fill(data, SIZE, 99, 0);
	for (int i = 0; i < N; i++) {
		size_t seg = i % 3 == 0 ? 100 : i % 3 == 1 ? 412 : 512;
		iov[i].iov_base = data + off;
		iov[i].iov_len = seg;
		off += seg;
	}
	CHECK_EQ(off % 512, 0);
	CHECK_EQ(xbd_image_open_raw(path, false, &img), 0);
	CHECK_EQ(xbd_image_pwritev(img, iov, N, 512), 0);
	CHECK_EQ(xbd_image_pread(img, back, off, 512), 0);
	CHECK(!memcmp(back, data, off));
	memset(back, 0, SIZE);
	for (int i = 0; i < N; i++)
		iov[i].iov_base = back + ((char *)iov[i].iov_base - (char *)data);
	CHECK_EQ(xbd_image_preadv(img, iov, N, 512), 0);
	CHECK(!memcmp(back, data, off));
	xbd_image_close(img);
	free(iov);
	free(data);
	free(back);
}

struct writer {
	struct xbd_image *img;
	int id;
	int errors;
};

/* each thread owns every 8th 4 KiB block */
static void *writer_main(void *arg)
{
	struct writer *w = arg;
	unsigned char buf[4096], back[4096];

	for (int round = 0; round < 4; round++) {
		for (uint64_t b = (uint64_t)w->id; b < SIZE / 4096; b += 8) {
			tu_fill(buf, sizeof(buf), 1000 + (uint64_t)round, b * 4096);
			if (xbd_image_pwrite(w->img, buf, 4096, b * 4096) ||
			    xbd_image_pread(w->img, back, 4096, b * 4096) ||
			    memcmp(buf, back, 4096))
				w->errors++;
		}
	}
	return NULL;
}

static void test_concurrent(const char *path)
{
	struct xbd_image *img;
	pthread_t t[8];
	struct writer w[8];
	unsigned char *want = malloc(SIZE), *file;
	size_t len;

	CHECK_EQ(xbd_image_open_raw(path, false, &img), 0);
	for (int i = 0; i < 8; i++) {
		w[i] = (struct writer){ .img = img, .id = i };
		pthread_create(&t[i], NULL, writer_main, &w[i]);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(w[i].errors, 0);
	}
	xbd_image_close(img);
	tu_fill(want, SIZE, 1003, 0);
	file = tu_read_file(path, &len);
	CHECK(len == SIZE && !memcmp(file, want, SIZE));
	free(file);
	free(want);
}

/* a file that shrinks under the image: EOF is an error, not a hang */
static void test_shrunk(const char *path)
{
	struct xbd_image *img;
	unsigned char buf[4096];

	CHECK_EQ(xbd_image_open_raw(path, false, &img), 0);
	CHECK_EQ(truncate(path, SIZE / 2), 0);
	CHECK_EQ(xbd_image_pread(img, buf, 4096, SIZE - 4096), -EIO);
	CHECK_EQ(xbd_image_pread(img, buf, 4096, SIZE / 2 - 2048), -EIO);
	CHECK_EQ(xbd_image_pread(img, buf, 4096, 0), 0);
	xbd_image_close(img);
}

static void test_open_errors(void)
{
	struct xbd_image *img = NULL;
	unsigned char odd[1000] = { 0 };

	CHECK_EQ(xbd_image_open_raw(tu_path("missing"), true, &img), -ENOENT);
	tu_write_file(tu_path("odd"), odd, sizeof(odd));
	CHECK_EQ(xbd_image_open_raw(tu_path("odd"), true, &img), -EINVAL);
	tu_write_file(tu_path("empty"), odd, 0);
	CHECK_EQ(xbd_image_open_raw(tu_path("empty"), true, &img), -EINVAL);
	CHECK_EQ(xbd_image_open_raw(tu_dir, true, &img), -EINVAL);
	CHECK_EQ(xbd_image_open_by_name("qcow9", tu_path("odd"), NULL, true,
					XBD_IMAGE_LOCK_EXCL, &img), -EINVAL);
	CHECK(img == NULL);
}

static void test_by_name(const char *path)
{
	struct xbd_image *img;

	CHECK_EQ(xbd_image_open_by_name("raw", path, NULL, true,
					XBD_IMAGE_LOCK_EXCL, &img), 0);
	CHECK(!strcmp(xbd_image_name(img), "raw") && img->read_only);
	xbd_image_close(img);
	CHECK_EQ(xbd_image_open_by_name("raw", path, NULL, false,
					XBD_IMAGE_LOCK_EXCL, &img), 0);
	CHECK(!img->read_only);
	xbd_image_close(img);
}

static int open_as(const char *path, bool ro, enum xbd_image_lock lock,
		   struct xbd_image **img)
{
	*img = NULL;
	return xbd_image_open_by_name("raw", path, NULL, ro, lock, img);
}

/* Two writers refuse each other, readers share, a reader and a writer
 * refuse each other in either order; a cow's gold image counts as read;
 * --share-rw and the sim's blkback (no locks) get through. */
static void test_locks(const char *path)
{
	struct xbd_image *a, *b, *c;

	CHECK_EQ(open_as(path, false, XBD_IMAGE_LOCK_EXCL, &a), 0);
	CHECK_EQ(open_as(path, false, XBD_IMAGE_LOCK_EXCL, &b), -EBUSY);
	CHECK(b == NULL);
	CHECK_EQ(open_as(path, true, XBD_IMAGE_LOCK_EXCL, &b), -EBUSY);
	CHECK_EQ(xbd_image_open_by_name("cow", path, NULL, false,
					XBD_IMAGE_LOCK_EXCL, &b), -EBUSY);
	CHECK_EQ(open_as(path, false, XBD_IMAGE_LOCK_SHARE_RW, &b), 0);
	xbd_image_close(b);
	CHECK_EQ(open_as(path, false, XBD_IMAGE_LOCK_NONE, &b), 0);
	xbd_image_close(b);
	xbd_image_close(a);

	CHECK_EQ(open_as(path, true, XBD_IMAGE_LOCK_EXCL, &a), 0);
	CHECK_EQ(open_as(path, true, XBD_IMAGE_LOCK_EXCL, &b), 0);
	CHECK_EQ(xbd_image_open_by_name("cow", path, NULL, false,
					XBD_IMAGE_LOCK_EXCL, &c), 0);
	xbd_image_close(c);
	CHECK_EQ(open_as(path, false, XBD_IMAGE_LOCK_EXCL, &c), -EBUSY);
	xbd_image_close(b);
	xbd_image_close(a);

	/* the locks went with the close */
	CHECK_EQ(open_as(path, false, XBD_IMAGE_LOCK_EXCL, &a), 0);
	xbd_image_close(a);
}

/* A writer in another process is refused in one line that names it. */
static void test_lock_names_holder(const char *path)
{
	char msg[512] = "", want[64];
	int ready[2], hold[2], err_fd, saved;
	struct xbd_image *img;
	ssize_t n;
	pid_t pid;

	CHECK_EQ(pipe(ready), 0);
	CHECK_EQ(pipe(hold), 0);
	fflush(NULL);
	pid = fork();
	if (pid == 0) {
		char c;

		close(ready[0]);
		close(hold[1]);
		if (xbd_image_open_raw(path, false, &img))
			_exit(1);
		(void)!write(ready[1], "x", 1);
		(void)!read(hold[0], &c, 1); /* until the parent closes it */
		xbd_image_close(img);
		_exit(0);
	}
	close(ready[1]);
	close(hold[0]);
	CHECK_EQ(read(ready[0], msg, 1), 1);

	err_fd = open(tu_path("lock.err"), O_RDWR | O_CREAT | O_TRUNC, 0600);
	saved = dup(2);
	dup2(err_fd, 2);
	CHECK_EQ(xbd_image_open_raw(path, false, &img), -EBUSY);
	dup2(saved, 2);
	close(saved);
	n = pread(err_fd, msg, sizeof(msg) - 1, 0);
	close(err_fd);
	msg[n > 0 ? n : 0] = 0;
	snprintf(want, sizeof(want), "test_image_raw, pid %d)\n", (int)pid);
	CHECK(strstr(msg, ": in use by another writer (") != NULL);
	CHECK(strstr(msg, want) != NULL);
	CHECK(strchr(msg, '\n') == msg + strlen(msg) - 1); /* one line */
	if (!strstr(msg, want))
		fprintf(stderr, "lock error line: %s", msg);

	close(hold[1]);
	close(ready[0]);
	waitpid(pid, NULL, 0);
	CHECK_EQ(xbd_image_open_raw(path, false, &img), 0);
	xbd_image_close(img);
}

int main(void)
{
	unsigned char *gold = malloc(SIZE);
	const char *path;

	tu_scratch("raw");
	path = tu_path("disk.img");
	tu_fill(gold, SIZE, 1, 0);
	tu_write_file(path, gold, SIZE);

	test_read_only(path);
	test_bounds_and_data(path, gold);
	test_big_iov(path);
	test_concurrent(path);
	test_by_name(path);
	test_open_errors();
	test_locks(path);
	test_lock_names_holder(path);
	test_shrunk(path);
	free(gold);
	return check_report("test_image_raw");
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The copy-on-write overlay (src/image_cow.c): an overlay file someone
 * else may have written (an old run, another tool, a damaged disk) is
 * opened again over a base, and its header and bitmap are believed
 * only as far as they check out.  The input is the file's bytes; a
 * flag byte has the harness make the header agree with the base where
 * the fuzzer would rarely guess it (size, offsets, file length).
 *
 * Checks: opening never reads or writes outside what it sized (ASan);
 * an overlay that opens serves reads and writes; and what was written
 * and flushed reads back the same after closing and opening it again,
 * whatever bitmap it started with.
 */
#include "tests/fuzz/fuzz.h"
#include "xbd/image.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <unistd.h>

#define WINDOW (256u << 10) /* the part of the disk the ops touch */
#define MAX_OPS 8

static char path[4096];

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static uint64_t get_le64(const uint8_t *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static void remove_overlay(void)
{
	unlink(path);
	*strrchr(path, '/') = '\0';
	rmdir(path);
}

static int open_overlay(uint64_t size, struct xbd_image **img)
{
	struct xbd_image *base;

	FUZZ_CHECK(xbd_image_open_null(size, &base) == 0);
	return xbd_image_open_cow(base, path, img);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static uint8_t *shadow, *buf;
	struct fz in = { data, size };
	struct xbd_image *img;
	uint64_t disk, window, need;
	unsigned nops, i;
	uint8_t flags;
	int fd;

	if (!path[0]) {
		const char *tmp = getenv("TMPDIR");

		fuzz_quiet_logs();
		/* tmpfs: the overlay is synced on every flush */
		if (!tmp || !*tmp)
			tmp = access("/dev/shm", W_OK) ? "/tmp" : "/dev/shm";
		snprintf(path, sizeof(path), "%s/xbd-fuzz-cow.XXXXXX", tmp);
		FUZZ_CHECK(mkdtemp(path));
		strcat(path, "/overlay");
		atexit(remove_overlay);
		shadow = malloc(WINDOW);
		buf = malloc(WINDOW);
		FUZZ_CHECK(shadow && buf);
	}
	flags = fz_u8(&in);
	/* 4 KiB .. 4 GiB, in 4 KiB steps */
	disk = ((uint64_t)(fz_u32(&in) & 0xfffff) + 1) * 4096;
	nops = fz_u8(&in) % (MAX_OPS + 1);
	struct { uint8_t kind; uint32_t off, len; } ops[MAX_OPS];
	for (i = 0; i < nops; i++) {
		ops[i].kind = fz_u8(&in);
		ops[i].off = fz_u32(&in);
		ops[i].len = fz_u16(&in);
	}

	/* the file: what is left of the input */
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FUZZ_CHECK(fd >= 0);
	if (in.n) {
		uint8_t *file = malloc(in.n);

		FUZZ_CHECK(file);
		memcpy(file, in.p, in.n);
		if (flags & 1 && in.n >= 40)
			put_le64(file + 16, disk);       /* image_size */
		if (flags & 2 && in.n >= 40)
			put_le64(file + 24, 4096);       /* bitmap_offset */
		FUZZ_CHECK(write(fd, file, in.n) == (ssize_t)in.n);
		need = in.n >= 40 ? get_le64(file + 32) + disk : 0; /* data_offset */
		if (flags & 4 && need > in.n && need < (1ull << 40))
			FUZZ_CHECK(ftruncate(fd, (off_t)need) == 0);
		free(file);
	}
	close(fd);

	if (open_overlay(disk, &img))
		return 0;
	FUZZ_CHECK(img->size == disk);
	window = disk < WINDOW ? disk : WINDOW;
	FUZZ_CHECK(xbd_image_pread(img, shadow, window, 0) == 0);
	for (i = 0; i < nops; i++) {
		uint64_t off = ops[i].off % window / 512 * 512;
		uint64_t len = ((uint64_t)ops[i].len * 512) % (window - off) / 512 * 512;

		switch (ops[i].kind & 3) {
		case 0:
			memset(buf, ops[i].kind | 1, len);
			FUZZ_CHECK(xbd_image_pwrite(img, buf, len, off) == 0);
			memcpy(shadow + off, buf, len);
			break;
		case 1:
			if (xbd_image_discard(img, off, len) == 0)
				memset(shadow + off, 0, len);
			break;
		case 2:
			FUZZ_CHECK(xbd_image_flush(img) == 0);
			break;
		case 3:
			FUZZ_CHECK(xbd_image_pread(img, buf, len, off) == 0);
			FUZZ_CHECK(!memcmp(buf, shadow + off, len));
			break;
		}
	}
	FUZZ_CHECK(xbd_image_flush(img) == 0);
	xbd_image_close(img);
	/* flushed: the same bytes after opening it again */
	FUZZ_CHECK(open_overlay(disk, &img) == 0);
	FUZZ_CHECK(xbd_image_pread(img, buf, window, 0) == 0);
	FUZZ_CHECK(!memcmp(buf, shadow, window));
	xbd_image_close(img);
	return 0;
}

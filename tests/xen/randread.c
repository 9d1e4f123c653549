// SPDX-License-Identifier: GPL-2.0-or-later
/*
 * The real-Xen tier's random-read workload (busybox has no fio): COUNT
 * reads of 4 KiB at random 4 KiB-aligned offsets of FILE (a block
 * device or a FUSE file), with O_DIRECT, one at a time, in one process.
 * The offsets come from a fixed seed, so every peer reads the same ones.
 * Built static, so that dom0 and the busybox domU can both run it.
 * Prints "COUNT SECONDS" (monotonic clock) on success.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <linux/fs.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define BLK 4096u

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	uint64_t size = 0, blocks, x = 0x9e3779b97f4a7c15ull;
	unsigned long count, i;
	struct stat st;
	char *end;
	void *buf;
	double t0;
	int fd;

	if (argc != 3) {
		fprintf(stderr, "usage: %s FILE COUNT\n", argv[0]);
		return 2;
	}
	errno = 0;
	count = strtoul(argv[2], &end, 10);
	if (errno || *end || !count || count > 100000000ul) {
		fprintf(stderr, "randread: bad count '%s'\n", argv[2]);
		return 2;
	}
	fd = open(argv[1], O_RDONLY | O_DIRECT);
	if (fd < 0 || fstat(fd, &st)) {
		fprintf(stderr, "randread: %s: %s\n", argv[1], strerror(errno));
		return 1;
	}
	if (S_ISBLK(st.st_mode)) {
		if (ioctl(fd, BLKGETSIZE64, &size)) {
			fprintf(stderr, "randread: %s: %s\n", argv[1], strerror(errno));
			return 1;
		}
	} else {
		size = (uint64_t)st.st_size;
	}
	blocks = size / BLK;
	if (!blocks) {
		fprintf(stderr, "randread: %s is smaller than 4 KiB\n", argv[1]);
		return 1;
	}
	if (posix_memalign(&buf, BLK, BLK)) {
		fprintf(stderr, "randread: out of memory\n");
		return 1;
	}
	t0 = now_s();
	for (i = 0; i < count; i++) {
		ssize_t n;

		/* xorshift64: cheap, and the same sequence for every peer */
		x ^= x << 13;
		x ^= x >> 7;
		x ^= x << 17;
		n = pread(fd, buf, BLK, (off_t)((x % blocks) * BLK));
		if (n != (ssize_t)BLK) {
			fprintf(stderr, "randread: %s: read %lu: %s\n", argv[1], i,
				n < 0 ? strerror(errno) : "short read");
			return 1;
		}
	}
	printf("%lu %.3f\n", count, now_s() - t0);
	free(buf);
	close(fd);
	return 0;
}

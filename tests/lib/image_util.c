/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers shared by the image and FUSE tests: a scratch directory that
 * goes away at exit, files of known bytes, whole-file reads (declared in
 * image_util.h). */
#include "tests/lib/image_util.h"


#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

char tu_dir[256];
static pid_t tu_owner; /* only the process that made it removes it */

static int tu_rm_one(const char *path, const struct stat *st, int flag,
		     struct FTW *ftw)
{
	(void)st;
	(void)flag;
	(void)ftw;
	return remove(path);
}

static void tu_cleanup(void)
{
	if (tu_dir[0] && getpid() == tu_owner)
		nftw(tu_dir, tu_rm_one, 16, FTW_DEPTH | FTW_PHYS);
}

/* Makes the scratch directory (removed at exit); returns its path. */
const char *tu_scratch(const char *name)
{
	const char *tmp = getenv("TMPDIR");

	snprintf(tu_dir, sizeof(tu_dir), "%s/xbd-%s.XXXXXX",
		 tmp && *tmp ? tmp : "/tmp", name);
	if (!mkdtemp(tu_dir)) {
		perror("mkdtemp");
		exit(1);
	}
	tu_owner = getpid();
	atexit(tu_cleanup);
	return tu_dir;
}

/* "<scratch>/<name>" in a static ring of buffers. */
const char *tu_path(const char *name)
{
	static char bufs[8][512];
	static int next;
	char *p = bufs[next++ % 8];

	snprintf(p, sizeof(bufs[0]), "%s/%s", tu_dir, name);
	return p;
}

/* Deterministic bytes: byte i of stream `seed`. */
void tu_fill(void *buf, size_t len, uint64_t seed, uint64_t start)
{
	unsigned char *p = buf;

	for (size_t i = 0; i < len; i++) {
		uint64_t x = (start + i) * 0x9E3779B97F4A7C15ull ^ seed;
		x ^= x >> 29;
		p[i] = (unsigned char)(x * 0xBF58476D1CE4E5B9ull >> 56);
	}
}

void tu_write_file(const char *path, const void *buf, size_t len)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);

	if (fd < 0 || write(fd, buf, len) != (ssize_t)len || close(fd)) {
		perror(path);
		exit(1);
	}
}

/* The whole file, malloc'd; *len gets its size. */
unsigned char *tu_read_file(const char *path, size_t *len)
{
	struct stat st;
	unsigned char *buf;
	int fd = open(path, O_RDONLY);

	if (fd < 0 || fstat(fd, &st)) {
		perror(path);
		exit(1);
	}
	buf = malloc((size_t)st.st_size + 1);
	if (!buf || pread(fd, buf, (size_t)st.st_size, 0) != st.st_size) {
		perror(path);
		exit(1);
	}
	close(fd);
	*len = (size_t)st.st_size;
	return buf;
}

/* sha256sum of a file as 64 hex digits in out[65]. */
int tu_sha256(const char *path, char out[65])
{
	char cmd[600];
	FILE *p;
	int ok;

	snprintf(cmd, sizeof(cmd), "sha256sum '%s'", path);
	p = popen(cmd, "r");
	if (!p)
		return -1;
	ok = fscanf(p, "%64s", out) == 1;
	return pclose(p) == 0 && ok ? 0 : -1;
}

bool tu_all_zero(const unsigned char *p, size_t len)
{
	for (size_t i = 0; i < len; i++)
		if (p[i])
			return false;
	return true;
}

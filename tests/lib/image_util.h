/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers shared by the image and FUSE tests (tests/lib/image_util.c):
 * a scratch directory that goes away at exit, files of known bytes,
 * whole-file reads. */
#ifndef XBD_TEST_IMAGE_UTIL_H
#define XBD_TEST_IMAGE_UTIL_H

#include <fcntl.h>
#include <ftw.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* The scratch directory made by tu_scratch(). */
extern char tu_dir[256];

/* Makes the scratch directory (removed at exit); returns its path. */
const char *tu_scratch(const char *name);
/* "<scratch>/<name>" in a static ring of buffers. */
const char *tu_path(const char *name);
/* Deterministic bytes: byte i of stream `seed`. */
void tu_fill(void *buf, size_t len, uint64_t seed, uint64_t start);
/* Writes a whole file; exits 1 on failure. */
void tu_write_file(const char *path, const void *buf, size_t len);
/* The whole file, malloc'd; *len gets its size. */
unsigned char *tu_read_file(const char *path, size_t *len);
/* sha256sum of a file as 64 hex digits in out[65]. */
int tu_sha256(const char *path, char out[65]);
/* No byte of p[0..len) is set. */
bool tu_all_zero(const unsigned char *p, size_t len);

#endif

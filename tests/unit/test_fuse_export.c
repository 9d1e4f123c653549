/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * FUSE export, end to end on a real mount: a 64 MiB disk with an MBR,
 * an ext4 partition and a patterned one, exported read-only from raw
 * and writable from cow, checked with the tools people use on it
 * (sha256sum, dd, cmp, fdisk, mount -o loop, e2fsck, sfdisk) and with
 * odd-sized reads from C; hostile partition tables show what Linux
 * would show of them, fast.  Also: a failing image gives EIO, removed
 * disks fail open files, and stopping with busy files does not hang;
 * an image with asynchronous reads gets many in flight with two
 * workers, and remove and stop wait for the reads inside it; reads that
 * wait inside a synchronous image run on all the workers at once and
 * do not hold up the rest of the export.
 *
 * The test runs in a child; the parent only waits and then cleans up
 * mounts and files, so a crash or a timeout leaves nothing behind.
 */
#include "tests/lib/check.h"
#include "tests/lib/image_util.h"
#include "xbd/common.h"
#include "xbd/fuse_export.h"
#include "xbd/image.h"
#include "src/image_priv.h" /* the test back-ends below */

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <sys/wait.h>
#include <time.h>

#define MiB (1024u * 1024u)
#define DISK_SIZE (64 * MiB)
#define P1_START (1 * MiB)
#define P1_SIZE (16 * MiB)
#define P2_START (P1_START + P1_SIZE)
#define P2_SIZE (DISK_SIZE - P2_START)

static const char *img_path, *mnt, *fsmnt;
static unsigned char *disk; /* what the disk image holds */

/* Runs a shell command; returns its exit status (-1: did not run). */
static int run(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int run(const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	int st;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	printf("+ %s\n", cmd);
	fflush(stdout);
	st = system(cmd);
	return st == -1 || !WIFEXITED(st) ? -1 : WEXITSTATUS(st);
}

static const char *in_mnt(const char *name)
{
	static char bufs[4][512];
	static int next;
	char *p = bufs[next++ % 4];

	snprintf(p, sizeof(bufs[0]), "%s/%s", mnt, name);
	return p;
}

/* Files for the ext4 partition: names and sizes, content from tu_fill. */
static const struct {
	const char *name;
	size_t size;
} fs_files[] = {
	{ "empty", 0 }, { "small.txt", 7 }, { "page", 4096 },
	{ "odd.bin", 123457 }, { "dir/big.bin", 3 * MiB + 17 },
};

static void build_disk(void)
{
	char fsroot[512];
	int fd;

	snprintf(fsroot, sizeof(fsroot), "%s", tu_path("fsroot"));
	CHECK(mkdir(fsroot, 0755) == 0);
	CHECK(mkdir(tu_path("fsroot/dir"), 0755) == 0);
	for (size_t i = 0; i < XBD_ARRAY_SIZE(fs_files); i++) {
		unsigned char *b = malloc(fs_files[i].size + 1);
		char p[600];

		tu_fill(b, fs_files[i].size, 100 + i, 0);
		snprintf(p, sizeof(p), "%s/%s", fsroot, fs_files[i].name);
		tu_write_file(p, b, fs_files[i].size);
		free(b);
	}
	CHECK_EQ(run("truncate -s %u '%s'", DISK_SIZE, img_path), 0);
	CHECK_EQ(run("printf 'label: dos\\nstart=%u,size=%u,type=83\\nstart=%u,type=83\\n'"
		     " | sfdisk -q '%s'", P1_START / 512, P1_SIZE / 512,
		     P2_START / 512, img_path), 0);
	CHECK_EQ(run("mkfs.ext4 -q -F -d '%s' '%s' 16M && dd if='%s' of='%s' bs=1M"
		     " seek=1 conv=notrunc status=none", fsroot, tu_path("p1.img"),
		     tu_path("p1.img"), img_path), 0);
	/* partition 2: a pattern, so every byte of it is known */
	unsigned char *p2 = malloc(P2_SIZE);
	tu_fill(p2, P2_SIZE, 77, 0);
	fd = open(img_path, O_WRONLY);
	CHECK(fd >= 0 && pwrite(fd, p2, P2_SIZE, P2_START) == (ssize_t)P2_SIZE);
	close(fd);
	free(p2);
	size_t len;
	disk = tu_read_file(img_path, &len);
	CHECK_EQ(len, DISK_SIZE);
	chmod(img_path, 0444);
}

/* The directory holds exactly these names. */
static void check_listing(const char *const *want, size_t nwant)
{
	DIR *d = opendir(mnt);
	struct dirent *e;
	size_t seen = 0;

	CHECK(d != NULL);
	if (!d)
		return;
	while ((e = readdir(d))) {
		bool known = !strcmp(e->d_name, ".") || !strcmp(e->d_name, "..");

		for (size_t i = 0; i < nwant; i++)
			if (!strcmp(e->d_name, want[i])) {
				known = true;
				seen++;
			}
		if (!known)
			fprintf(stderr, "unexpected file %s\n", e->d_name);
		CHECK(known);
	}
	closedir(d);
	CHECK_EQ(seen, nwant);
}

static void check_stat(const char *name, uint64_t size, mode_t mode)
{
	struct stat st;

	CHECK(stat(in_mnt(name), &st) == 0);
	CHECK(S_ISREG(st.st_mode));
	CHECK_EQ(st.st_mode & 07777, mode);
	CHECK_EQ(st.st_size, size);
}

/* 7-byte reads at odd offsets (and across the end) through the file
 * `name`, which shows disk bytes [base, base+size). */
static void check_odd_reads(const char *name, const unsigned char *want,
			    uint64_t base, uint64_t size)
{
	int fd = open(in_mnt(name), O_RDONLY);
	unsigned char buf[16];
	int bad = 0;

	CHECK(fd >= 0);
	for (uint64_t i = 0, off = 1; i < 500; i++, off = (off * 7919 + 4093) % size) {
		ssize_t want_n = size - off < 7 ? (ssize_t)(size - off) : 7;
		ssize_t n = pread(fd, buf, 7, (off_t)off);

		if (n != want_n || memcmp(buf, want + base + off, (size_t)n))
			bad++;
	}
	/* around the boundaries a partition has */
	uint64_t edges[] = { 0, 1, 511, 512, 4095, size - 7, size - 5, size - 1 };
	for (size_t i = 0; i < XBD_ARRAY_SIZE(edges); i++) {
		uint64_t off = edges[i];
		ssize_t want_n = size - off < 7 ? (ssize_t)(size - off) : 7;
		ssize_t n = pread(fd, buf, 7, (off_t)off);

		if (n != want_n || memcmp(buf, want + base + off, (size_t)n))
			bad++;
	}
	CHECK_EQ(pread(fd, buf, 7, (off_t)size), 0);
	CHECK_EQ(pread(fd, buf, 7, (off_t)size + 4096), 0);
	CHECK_EQ(bad, 0);
	close(fd);
}

static void check_fs_files(const char *root)
{
	for (size_t i = 0; i < XBD_ARRAY_SIZE(fs_files); i++) {
		char p[600];
		size_t len;
		unsigned char *want = malloc(fs_files[i].size + 1), *got;

		tu_fill(want, fs_files[i].size, 100 + i, 0);
		snprintf(p, sizeof(p), "%s/%s", root, fs_files[i].name);
		got = tu_read_file(p, &len);
		CHECK_EQ(len, fs_files[i].size);
		CHECK(len == fs_files[i].size && !memcmp(got, want, len));
		free(got);
		free(want);
	}
}

static void test_read_only_export(struct xbd_fuse *fx, const char *img_sha)
{
	static const char *const names[] = { "xvda", "xvda1", "xvda2" };
	char sha[65];
	int fd;

	check_listing(names, 3);
	check_stat("xvda", DISK_SIZE, 0444);
	check_stat("xvda1", P1_SIZE, 0444);
	check_stat("xvda2", P2_SIZE, 0444);

	CHECK_EQ(tu_sha256(in_mnt("xvda"), sha), 0);
	CHECK(!strcmp(sha, img_sha));
	CHECK_EQ(run("[ \"$(dd if='%s' bs=4k status=none | sha256sum | cut -c1-64)\" = %s ]",
		     in_mnt("xvda"), img_sha), 0);
	CHECK_EQ(run("[ \"$(dd if='%s' bs=1M status=none | sha256sum | cut -c1-64)\" = %s ]",
		     in_mnt("xvda"), img_sha), 0);
	CHECK_EQ(run("cmp '%s' '%s'", in_mnt("xvda"), img_path), 0);
	CHECK_EQ(run("cmp -n %u '%s' '%s' 0 %u", P2_SIZE, in_mnt("xvda2"), img_path,
		     P2_START), 0);
	check_odd_reads("xvda", disk, 0, DISK_SIZE);
	check_odd_reads("xvda1", disk, P1_START, P1_SIZE);
	check_odd_reads("xvda2", disk, P2_START, P2_SIZE);

	CHECK_EQ(run("fdisk -l '%s' | grep -E '^%s[12] ' | wc -l | grep -qx 2",
		     in_mnt("xvda"), in_mnt("xvda")), 0);
	CHECK_EQ(run("e2fsck -fn '%s'", in_mnt("xvda1")), 0);
	CHECK_EQ(run("mount -o ro,loop '%s' '%s'", in_mnt("xvda1"), fsmnt), 0);
	check_fs_files(fsmnt);
	CHECK_EQ(run("umount '%s'", fsmnt), 0);

	/* read-only at every door */
	errno = 0;
	CHECK(open(in_mnt("xvda"), O_WRONLY) < 0 && errno == EROFS);
	errno = 0;
	CHECK(open(in_mnt("xvda1"), O_RDWR) < 0 && errno == EROFS);
	errno = 0;
	CHECK(truncate(in_mnt("xvda"), 0) < 0 && errno == EROFS);
	errno = 0;
	CHECK(open(in_mnt("new"), O_WRONLY | O_CREAT, 0644) < 0);
	CHECK(run("echo x | dd of='%s' conv=notrunc status=none 2>/dev/null",
		  in_mnt("xvda2")) != 0);
	CHECK_EQ(tu_sha256(img_path, sha), 0);
	CHECK(!strcmp(sha, img_sha));

	/* fsync on a read-only file is fine */
	fd = open(in_mnt("xvda"), O_RDONLY);
	CHECK(fd >= 0 && fsync(fd) == 0);
	close(fd);
	(void)fx;
}

struct reader {
	const char *path;
	int id;
	int bad;
};

/* A full pass over the disk in 1 MiB reads, starting at a different
 * place in each thread. */
static void *reader_main(void *arg)
{
	struct reader *r = arg;
	unsigned char *buf = malloc(MiB);
	int fd = open(r->path, O_RDONLY);

	if (fd < 0)
		r->bad++;
	for (unsigned i = 0; fd >= 0 && i < DISK_SIZE / MiB; i++) {
		uint64_t off = (uint64_t)((i + (unsigned)r->id * 17) % (DISK_SIZE / MiB)) * MiB;

		if (pread(fd, buf, MiB, (off_t)off) != MiB || memcmp(buf, disk + off, MiB))
			r->bad++;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	return NULL;
}

static void test_parallel_readers(void)
{
	enum { T = 4 };
	pthread_t t[T];
	struct reader r[T];

	for (int i = 0; i < T; i++) {
		r[i] = (struct reader){ .path = in_mnt("xvda"), .id = i };
		pthread_create(&t[i], NULL, reader_main, &r[i]);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(r[i].bad, 0);
	}
}

static void put32(unsigned char *p, uint32_t v)
{
	p[0] = (unsigned char)v;
	p[1] = (unsigned char)(v >> 8);
	p[2] = (unsigned char)(v >> 16);
	p[3] = (unsigned char)(v >> 24);
}

/* GPT disks, Linux's "p" names, and a hostile MBR whose partitions run
 * past the end of the disk. */
static void test_partition_tables(struct xbd_fuse *fx)
{
	char gpt[512], evil[512];
	struct xbd_image *g, *e;
	unsigned char *mbr = calloc(1, 4 * MiB);

	snprintf(gpt, sizeof(gpt), "%s", tu_path("gpt.img"));
	snprintf(evil, sizeof(evil), "%s", tu_path("evil.img"));

	CHECK_EQ(run("truncate -s 8M '%s' && printf 'label: gpt\\nsize=1M\\nsize=2M\\n"
		     "size=1M\\n' | sfdisk -q '%s'", gpt, gpt), 0);
	CHECK_EQ(xbd_image_open_raw(gpt, true, &g), 0);
	CHECK_EQ(xbd_fuse_add_disk(fx, "nvme0n1", g, 0), 0);
	check_stat("nvme0n1p1", MiB, 0444);
	check_stat("nvme0n1p2", 2 * MiB, 0444);
	check_stat("nvme0n1p3", MiB, 0444);
	CHECK_EQ(xbd_fuse_remove_disk(fx, "nvme0n1"), 0);
	xbd_image_close(g);

	/* entry 1: sectors 2048.. +100000 (the disk has 8192);
	 * entry 2: starts past the end */
	mbr[510] = 0x55;
	mbr[511] = 0xAA;
	mbr[446 + 4] = 0x83;
	put32(mbr + 446 + 8, 2048);
	put32(mbr + 446 + 12, 100000);
	mbr[462 + 4] = 0x83;
	put32(mbr + 462 + 8, 9000);
	put32(mbr + 462 + 12, 100);
	tu_write_file(evil, mbr, 4 * MiB);
	CHECK_EQ(xbd_image_open_raw(evil, true, &e), 0);
	CHECK_EQ(xbd_fuse_add_disk(fx, "xvde", e, 0), 0);
	CHECK(access(in_mnt("xvde2"), F_OK) < 0);
	check_stat("xvde1", 3 * MiB, 0444); /* cut at the end of the disk */
	CHECK_EQ(xbd_fuse_remove_disk(fx, "xvde"), 0);
	xbd_image_close(e);
	free(mbr);
}

/* Files of the mount named NAME followed by a digit (or "p" and one). */
static unsigned count_partitions(const char *name)
{
	size_t len = strlen(name);
	DIR *d = opendir(mnt);
	struct dirent *e;
	unsigned n = 0;

	CHECK(d != NULL);
	while (d && (e = readdir(d)))
		if (!strncmp(e->d_name, name, len) && e->d_name[len] &&
		    strchr("p0123456789", e->d_name[len]))
			n++;
	if (d)
		closedir(d);
	return n;
}

/* Exports a disk made by tests/lib/hostile_ptable.py (KIND ARGS) as
 * `name`; returns its partition files.  However hostile its table, the
 * probe ends fast (wall time checked only as a safety net: speed is the
 * benchmarks' business) and shows no partition numbered from Linux's
 * DISK_MAX_PARTS on. */
static unsigned add_hostile(struct xbd_fuse *fx, const char *name,
			    const char *args, struct xbd_image **img)
{
	const char *top = getenv("XBD_TOP");
	char path[512], last[64];
	struct timespec t0, t1;
	unsigned n;

	snprintf(path, sizeof(path), "%s", tu_path(name));
	CHECK_EQ(run("python3 '%s/tests/lib/hostile_ptable.py' %s '%s'",
		     top && *top ? top : ".", args, path), 0);
	CHECK_EQ(xbd_image_open_raw(path, true, img), 0);
	clock_gettime(CLOCK_MONOTONIC, &t0);
	CHECK_EQ(xbd_fuse_add_disk(fx, name, *img, 0), 0);
	clock_gettime(CLOCK_MONOTONIC, &t1);
	double secs = (double)(t1.tv_sec - t0.tv_sec) +
		      (double)(t1.tv_nsec - t0.tv_nsec) / 1e9;
	n = count_partitions(name);
	printf("%s (%s): %u partitions in %.3f s\n", name, args, n, secs);
	CHECK(secs < 5.0);
	CHECK(n <= 255);
	snprintf(last, sizeof(last), "%s256", name);
	CHECK(access(in_mnt(last), F_OK) < 0);
	return n;
}

static void remove_hostile(struct xbd_fuse *fx, const char *name,
			   struct xbd_image *img)
{
	CHECK_EQ(xbd_fuse_remove_disk(fx, name), 0);
	xbd_image_close(img);
	unlink(tu_path(name));
}

/* Partition tables a guest wrote to keep an attach busy: what Linux
 * would show of each, and no more. */
static void test_hostile_tables(struct xbd_fuse *fx)
{
	struct xbd_image *img;

	/* a GPT array larger than Linux reads: no partitions at all */
	CHECK_EQ(add_hostile(fx, "xvdg", "gpt 100000", &img), 0);
	remove_hostile(fx, "xvdg", img);
	/* within that size: entries 1 to 255, all the same, overlapping */
	CHECK_EQ(add_hostile(fx, "xvdh", "gpt 4096", &img), 255);
	check_stat("xvdh1", MiB, 0444);
	check_stat("xvdh255", MiB, 0444);
	remove_hostile(fx, "xvdh", img);
	/* the extended partition (its first sectors), logicals 5 to 255 */
	CHECK_EQ(add_hostile(fx, "xvdi", "chain 5001", &img), 252);
	check_stat("xvdi1", 1024, 0444);
	check_stat("xvdi5", 512, 0444);
	check_stat("xvdi255", 512, 0444);
	remove_hostile(fx, "xvdi", img);
	/* the most records Linux follows, empty ones between data ones:
	 * fewer are read, so a prefix of the partitions shows */
	CHECK(add_hostile(fx, "xvdj", "sparse 25100", &img) >= 2);
	remove_hostile(fx, "xvdj", img);
	/* a record that links to itself: its partition again and again,
	 * as Linux shows it, up to the limit */
	CHECK_EQ(add_hostile(fx, "xvdk", "loop-data", &img), 252);
	remove_hostile(fx, "xvdk", img);
	/* two empty records that link to each other */
	CHECK_EQ(add_hostile(fx, "xvdl", "loop-empty", &img), 1);
	remove_hostile(fx, "xvdl", img);
}

/* Disks come and go while mounted; an open file of a removed disk
 * fails with EIO; a failing image gives EIO. */
static void test_add_remove(struct xbd_fuse *fx)
{
	struct xbd_image *null_img, *base, *bad;
	unsigned char buf[4096];
	int fd;

	CHECK_EQ(xbd_image_open_null(MiB, &null_img), 0);
	CHECK_EQ(xbd_fuse_add_disk(fx, "xvdb", null_img, XBD_FUSE_NO_PARTITIONS), 0);
	CHECK_EQ(xbd_fuse_add_disk(fx, "xvdb", null_img, 0), -EEXIST);
	CHECK_EQ(xbd_fuse_add_disk(fx, "xvda1", null_img, 0), -EEXIST);
	CHECK_EQ(xbd_fuse_add_disk(fx, "a/b", null_img, 0), -EINVAL);
	CHECK_EQ(xbd_fuse_add_disk(fx, "..", null_img, 0), -EINVAL);
	CHECK_EQ(xbd_fuse_add_disk(fx, "", null_img, 0), -EINVAL);
	check_stat("xvdb", MiB, 0644);
	fd = open(in_mnt("xvdb"), O_RDWR);
	CHECK(fd >= 0);
	memset(buf, 0xAB, sizeof(buf));
	CHECK_EQ(pwrite(fd, buf, sizeof(buf), 0), sizeof(buf));
	CHECK_EQ(pread(fd, buf, sizeof(buf), 4096), sizeof(buf));
	CHECK(tu_all_zero(buf, sizeof(buf)));
	CHECK_EQ(xbd_fuse_remove_disk(fx, "xvdb"), 0);
	CHECK_EQ(xbd_fuse_remove_disk(fx, "xvdb"), -ENOENT);
	errno = 0;
	CHECK(pread(fd, buf, sizeof(buf), 0) < 0 && errno == EIO);
	close(fd);
	xbd_image_close(null_img); /* the export no longer touches it */
	errno = 0;
	CHECK(access(in_mnt("xvdb"), F_OK) < 0 && errno == ENOENT);

	/* sectors 2048-2055: the first 4 KiB of partition 1 */
	CHECK_EQ(xbd_image_open_raw(img_path, true, &base), 0);
	CHECK_EQ(xbd_image_open_errinject(base, "2048-2055", &bad), 0);
	CHECK_EQ(xbd_fuse_add_disk(fx, "xvdc", bad, 0), 0);
	static const char *const names[] = { "xvda", "xvda1", "xvda2", "xvdc",
					     "xvdc1", "xvdc2" };
	check_listing(names, 6);
	fd = open(in_mnt("xvdc1"), O_RDONLY);
	CHECK(fd >= 0);
	errno = 0;
	CHECK(pread(fd, buf, 512, 0) < 0 && errno == EIO);
	errno = 0;
	CHECK(pread(fd, buf, 7, 4090) < 0 && errno == EIO);
	CHECK_EQ(pread(fd, buf, 512, 4096), 512);
	CHECK(!memcmp(buf, disk + P1_START + 4096, 512));
	close(fd);
	CHECK(run("dd if='%s' of=/dev/null bs=1M status=none", in_mnt("xvdc")) != 0);
	CHECK_EQ(xbd_fuse_remove_disk(fx, "xvdc"), 0);
	xbd_image_close(bad);
	check_listing(names, 3);
}

#define RMW_SECTORS 2048

struct rmw_writer {
	const char *path;
	uint64_t base; /* where the file starts on the disk */
	pthread_barrier_t *go;
	int id;
	int bad;
};

/* Thread t writes bytes [t*128, t*128+128) of each of RMW_SECTORS
 * sectors of partition 2, once: all threads read-modify-write the same
 * sectors at once, and any lost update shows.
 * Half go through xvda, half through xvda2: the kernel serialises
 * direct writes to one file, not to two files of one disk. */
static void *rmw_main(void *arg)
{
	struct rmw_writer *w = arg;
	unsigned char piece[128];
	int fd = open(w->path, O_WRONLY);

	if (fd < 0)
		w->bad++;
	for (uint64_t s = 0; s < RMW_SECTORS; s++) {
		uint64_t off = 5 * MiB + s * 512 + (uint64_t)w->id * 128;

		tu_fill(piece, sizeof(piece), 321, off);
		pthread_barrier_wait(w->go); /* all on the same sector at once */
		if (pwrite(fd, piece, sizeof(piece), (off_t)(off + P2_START - w->base)) !=
		    sizeof(piece))
			w->bad++;
	}
	if (fd >= 0)
		close(fd);
	return NULL;
}

static void test_rmw_writers(void)
{
	enum { T = 4 };
	pthread_t t[T];
	struct rmw_writer w[T];
	pthread_barrier_t go;

	pthread_barrier_init(&go, NULL, T);
	for (int i = 0; i < T; i++) {
		w[i] = (struct rmw_writer){ .path = in_mnt(i % 2 ? "xvda2" : "xvda"),
					    .base = i % 2 ? P2_START : 0, .go = &go,
					    .id = i };
		pthread_create(&t[i], NULL, rmw_main, &w[i]);
	}
	for (int i = 0; i < T; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(w[i].bad, 0);
	}
	pthread_barrier_destroy(&go);
	for (uint64_t s = 0; s < RMW_SECTORS; s++) {
		uint64_t off = 5 * MiB + s * 512;

		tu_fill(disk + P2_START + off, T * 128, 321, off);
	}
	unsigned char *back = malloc(RMW_SECTORS * 512);
	int fd = open(in_mnt("xvda2"), O_RDONLY);
	CHECK_EQ(pread(fd, back, RMW_SECTORS * 512, 5 * MiB), RMW_SECTORS * 512);
	CHECK(!memcmp(back, disk + P2_START + 5 * MiB, RMW_SECTORS * 512));
	close(fd);
	free(back);
}

/* attach --files: a rescan ends the disk's trees and makes new ones,
 * more times than tree numbers were once allowed (255); the tree keeps
 * reading, and is listed once. */
static void test_files_rescan(void)
{
	struct xbd_fuse_opts o = { .files = true, .threads = 2 };
	struct xbd_image *img;
	struct xbd_fuse *fx;
	char root[600];
	struct dirent *e;
	DIR *d;
	int n = 0;

	CHECK_EQ(xbd_image_open_raw(img_path, true, &img), 0);
	CHECK_EQ(xbd_fuse_start(mnt, &o, &fx), 0);
	CHECK_EQ(xbd_fuse_add_disk(fx, "xvda", img, XBD_FUSE_FILES), 0);
	snprintf(root, sizeof(root), "%s/files/xvda1", mnt);
	check_fs_files(root);
	for (int i = 0; i < 300; i++)
		CHECK_EQ(xbd_fuse_rescan_partitions(fx, "xvda"), 0);
	check_fs_files(root);
	snprintf(root, sizeof(root), "%s/files", mnt);
	d = opendir(root);
	CHECK(d != NULL);
	while (d && (e = readdir(d)))
		n += !strcmp(e->d_name, "xvda1");
	if (d)
		closedir(d);
	CHECK_EQ(n, 1);
	xbd_fuse_stop(fx);
	xbd_image_close(img);
}

static void test_cow_export(const char *img_sha)
{
	struct xbd_image *base, *img;
	struct xbd_fuse *fx;
	unsigned char *buf = malloc(2 * MiB), *back = malloc(MiB);
	char sha[65];
	int fd;

	CHECK_EQ(xbd_image_open_raw(img_path, true, &base), 0);
	CHECK_EQ(xbd_image_open_cow(base, NULL, &img), 0);
	CHECK_EQ(xbd_fuse_start(mnt, NULL, &fx), 0);
	CHECK_EQ(xbd_fuse_add_disk(fx, "xvda", img, 0), 0);
	check_stat("xvda", DISK_SIZE, 0644);
	check_stat("xvda1", P1_SIZE, 0644);

	/* unaligned and aligned writes, seen through disk and partition */
	fd = open(in_mnt("xvda2"), O_RDWR);
	CHECK(fd >= 0);
	tu_fill(buf, 2 * MiB, 900, 0);
	CHECK_EQ(pwrite(fd, buf, 13, 1001), 13);
	CHECK_EQ(pwrite(fd, buf + 13, MiB, 3 * MiB), MiB);
	CHECK_EQ(pwrite(fd, buf, 600, 8 * MiB - 300), 600);
	CHECK_EQ(fsync(fd), 0);
	/* never outside the partition: short at the end, ENOSPC after */
	CHECK_EQ(pwrite(fd, buf, 10, P2_SIZE - 3), 3);
	errno = 0;
	CHECK(pwrite(fd, buf, 10, P2_SIZE) < 0 && errno == ENOSPC);
	close(fd);
	memcpy(disk + P2_START + 1001, buf, 13);
	memcpy(disk + P2_START + 3 * MiB, buf + 13, MiB);
	memcpy(disk + P2_START + 8 * MiB - 300, buf, 600);
	memcpy(disk + DISK_SIZE - 3, buf, 3);
	CHECK_EQ(run("printf HELLO | dd of='%s' bs=1 seek=%u conv=notrunc status=none",
		     in_mnt("xvda"), P2_START + 77), 0);
	memcpy(disk + P2_START + 77, "HELLO", 5);
	test_rmw_writers();
	CHECK_EQ(xbd_image_pread(img, back, MiB, P2_START + 3 * MiB), 0);
	CHECK(!memcmp(back, buf + 13, MiB));
	check_odd_reads("xvda", disk, 0, DISK_SIZE);
	check_odd_reads("xvda2", disk, P2_START, P2_SIZE);
	/* partition 1 was not touched by any of that */
	CHECK_EQ(run("cmp -n %u '%s' '%s' 0 %u", P1_SIZE, in_mnt("xvda1"), img_path,
		     P1_START), 0);

	/* a file system on it, written through a loop device */
	CHECK_EQ(run("mount -o loop '%s' '%s'", in_mnt("xvda1"), fsmnt), 0);
	CHECK_EQ(run("echo written-through-cow > '%s/new.txt'", fsmnt), 0);
	CHECK_EQ(run("umount '%s'", fsmnt), 0);
	CHECK_EQ(run("e2fsck -fn '%s'", in_mnt("xvda1")), 0);
	CHECK_EQ(run("mount -o ro,loop '%s' '%s'", in_mnt("xvda1"), fsmnt), 0);
	CHECK_EQ(run("grep -qx written-through-cow '%s/new.txt'", fsmnt), 0);
	check_fs_files(fsmnt);
	CHECK_EQ(run("umount '%s'", fsmnt), 0);

	/* a disk keeps its size */
	errno = 0;
	CHECK(truncate(in_mnt("xvda"), 0) < 0 && errno == EPERM);

	/* repartition through the export, then rescan */
	CHECK_EQ(run("sfdisk -q --no-reread --delete '%s' 2", in_mnt("xvda")), 0);
	CHECK_EQ(xbd_fuse_rescan_partitions(fx, "xvda"), 0);
	static const char *const names[] = { "xvda", "xvda1" };
	check_listing(names, 2);

	xbd_fuse_stop(fx);
	xbd_image_close(img);
	free(buf);
	free(back);
	CHECK_EQ(tu_sha256(img_path, sha), 0);
	CHECK(!strcmp(sha, img_sha)); /* the gold image never changed */
}

/* Stop with a file held open here and a dd loop running elsewhere:
 * neither the stop nor the readers hang, and the readers get errors. */
/*
 * An image whose reads complete later, on a thread of its own, as the
 * blkfront image's do: the export must keep many reads in flight with
 * few workers, reply from the image's thread, and wait for those
 * replies on remove and stop.  Reads are held until `hold` of them wait
 * (or 200 ms passed), then completed after delay_ms.
 */
struct late_read {
	struct late_read *next;
	const struct iovec *iov;
	int iovcnt;
	uint64_t off;
	xbd_image_done_fn done;
	void *opaque;
};

struct late_img {
	struct xbd_image img;
	struct xbd_image *base;
	pthread_mutex_t m;
	pthread_cond_t cv;
	struct late_read *head;
	unsigned queued, queued_max;
	unsigned started, done_called; /* done_called: before done runs */
	unsigned hold, delay_ms;
	unsigned long long first_ns;
	bool stop;
	pthread_t thread;
};

static void *late_main(void *arg)
{
	struct late_img *li = arg;

	pthread_mutex_lock(&li->m);
	for (;;) {
		bool ready = li->queued && (li->queued >= li->hold || li->stop ||
					    xbd_now_ns() - li->first_ns > 200000000ull);
		if (!ready) {
			if (li->stop && !li->queued)
				break;
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			ts.tv_nsec += 10000000;
			if (ts.tv_nsec >= 1000000000) {
				ts.tv_sec++;
				ts.tv_nsec -= 1000000000;
			}
			pthread_cond_timedwait(&li->cv, &li->m, &ts);
			continue;
		}
		struct late_read *batch = li->head;
		li->head = NULL;
		li->queued = 0;
		pthread_mutex_unlock(&li->m);
		if (li->delay_ms)
			usleep(li->delay_ms * 1000);
		while (batch) {
			struct late_read *r = batch;
			int err = xbd_image_preadv(li->base, r->iov, r->iovcnt, r->off);

			batch = r->next;
			pthread_mutex_lock(&li->m);
			li->done_called++;
			pthread_mutex_unlock(&li->m);
			r->done(r->opaque, err);
			free(r);
		}
		pthread_mutex_lock(&li->m);
	}
	pthread_mutex_unlock(&li->m);
	return NULL;
}

static int late_preadv_async(struct xbd_image *img, const struct iovec *iov,
			     int iovcnt, uint64_t off, xbd_image_done_fn done,
			     void *opaque)
{
	struct late_img *li = (struct late_img *)img;
	struct late_read *r = calloc(1, sizeof(*r));

	if (!r)
		return -ENOMEM;
	*r = (struct late_read){ .iov = iov, .iovcnt = iovcnt, .off = off,
				 .done = done, .opaque = opaque };
	pthread_mutex_lock(&li->m);
	if (!li->queued)
		li->first_ns = xbd_now_ns();
	r->next = li->head;      /* newest first: completions out of order */
	li->head = r;
	li->started++;
	if (++li->queued > li->queued_max)
		li->queued_max = li->queued;
	pthread_cond_signal(&li->cv);
	pthread_mutex_unlock(&li->m);
	return 0;
}

static int late_preadv(struct xbd_image *img, const struct iovec *iov,
		       int iovcnt, uint64_t off)
{
	return xbd_image_preadv(((struct late_img *)img)->base, iov, iovcnt, off);
}

static int late_pwritev(struct xbd_image *img, const struct iovec *iov,
			int iovcnt, uint64_t off)
{
	(void)img, (void)iov, (void)iovcnt, (void)off;
	return -EROFS;
}

static void late_close(struct xbd_image *img)
{
	struct late_img *li = (struct late_img *)img;

	pthread_mutex_lock(&li->m);
	li->stop = true;
	pthread_cond_signal(&li->cv);
	pthread_mutex_unlock(&li->m);
	pthread_join(li->thread, NULL);
	xbd_image_close(li->base);
	pthread_mutex_destroy(&li->m);
	pthread_cond_destroy(&li->cv);
	free(li);
}

static const struct xbd_image_ops late_ops = {
	.name = "late",
	.preadv = late_preadv,
	.pwritev = late_pwritev,
	.close = late_close,
	.preadv_async = late_preadv_async,
};

static struct late_img *late_open(void)
{
	struct late_img *li = calloc(1, sizeof(*li));

	CHECK(li != NULL);
	CHECK_EQ(xbd_image_open_raw(img_path, true, &li->base), 0);
	li->img = *li->base;
	li->img.ops = &late_ops;
	li->hold = 1;
	pthread_mutex_init(&li->m, NULL);
	pthread_cond_init(&li->cv, NULL);
	CHECK_EQ(pthread_create(&li->thread, NULL, late_main, li), 0);
	return li;
}

static void late_set(struct late_img *li, unsigned hold, unsigned delay_ms)
{
	pthread_mutex_lock(&li->m);
	li->hold = hold;
	li->delay_ms = delay_ms;
	li->queued_max = 0;
	pthread_mutex_unlock(&li->m);
}

static bool late_all_done(struct late_img *li)
{
	bool all;

	pthread_mutex_lock(&li->m);
	all = li->started == li->done_called;
	pthread_mutex_unlock(&li->m);
	return all;
}

struct one_read {
	const char *path;
	uint64_t off;
	pthread_t t;
	ssize_t n;
	int err;
	bool same;
};

/* O_DIRECT: each read reaches the image, which is what these tests
 * watch; a cached open would first wait for the file's reads already
 * in flight (the open empties the file's page cache). */
static void *one_read_main(void *arg)
{
	struct one_read *o = arg;
	unsigned char buf[4096];
	int fd = open(o->path, O_RDONLY | O_DIRECT);

	o->n = fd < 0 ? -1 : pread(fd, buf, sizeof(buf), (off_t)o->off);
	o->err = o->n < 0 ? errno : 0;
	o->same = o->n == (ssize_t)sizeof(buf) && !memcmp(buf, disk + o->off, sizeof(buf));
	if (fd >= 0)
		close(fd);
	return NULL;
}

/* A read is waiting in the image; `what` (remove or stop) must wait for
 * its reply, which is the data or EIO. */
static void check_waits_for_late_read(struct xbd_fuse *fx, struct late_img *li,
				      bool stop)
{
	struct one_read o = { .path = in_mnt("xvdl"), .off = 8192 };

	late_set(li, 1, 400);
	CHECK_EQ(pthread_create(&o.t, NULL, one_read_main, &o), 0);
	for (int i = 0; i < 100 && late_all_done(li); i++)
		usleep(10 * 1000);
	CHECK(!late_all_done(li)); /* the read is inside the image */
	if (stop)
		xbd_fuse_stop(fx);
	else
		CHECK_EQ(xbd_fuse_remove_disk(fx, "xvdl"), 0);
	CHECK(late_all_done(li));
	pthread_join(o.t, NULL);
	CHECK(o.same || (o.n < 0 && (o.err == EIO || o.err == ENOTCONN ||
				     o.err == ECONNABORTED)));
}

static void test_async_image(void)
{
	struct xbd_fuse_opts two = { .threads = 2 };
	enum { R = 16 };
	struct one_read o[R];
	struct late_img *li = late_open();
	struct xbd_fuse *fx;

	CHECK_EQ(xbd_fuse_start(mnt, &two, &fx), 0);
	CHECK_EQ(xbd_fuse_add_disk(fx, "xvdl", &li->img, 0), 0);
	CHECK_EQ(run("cmp '%s' '%s'", in_mnt("xvdl"), img_path), 0);
	CHECK_EQ(run("cmp -n %u '%s' '%s' 0 %u", P2_SIZE, in_mnt("xvdl2"), img_path,
		     P2_START), 0);
	check_odd_reads("xvdl", disk, 0, DISK_SIZE);
	check_odd_reads("xvdl2", disk, P2_START, P2_SIZE);

	/* more reads in flight than workers */
	late_set(li, 12, 0);
	for (int i = 0; i < R; i++) {
		o[i] = (struct one_read){ .path = in_mnt("xvdl"),
					  .off = (uint64_t)i * 1234567 / 4096 * 4096 };
		CHECK_EQ(pthread_create(&o[i].t, NULL, one_read_main, &o[i]), 0);
	}
	for (int i = 0; i < R; i++) {
		pthread_join(o[i].t, NULL);
		CHECK(o[i].same);
	}
	printf("late image: %u reads waiting at once with 2 workers\n", li->queued_max);
	CHECK(li->queued_max >= 12);

	check_waits_for_late_read(fx, li, false);
	CHECK_EQ(xbd_fuse_add_disk(fx, "xvdl", &li->img, XBD_FUSE_NO_PARTITIONS), 0);
	check_waits_for_late_read(fx, li, true);
	xbd_image_close(&li->img);
}

/*
 * A synchronous image whose reads wait inside it: each read waits until
 * `hold` reads are inside at once, or until released.  Such reads go to
 * the export's workers, so they must be inside together (as many as
 * there are workers), and while they wait the reader thread must still
 * answer names, attributes and reads of other disks.
 */
struct gate_img {
	struct xbd_image img;
	struct xbd_image *base;
	pthread_mutex_t m;
	pthread_cond_t cv;
	unsigned inside, inside_max, hold;
	bool open_gate;
};

static int gate_preadv(struct xbd_image *img, const struct iovec *iov,
		       int iovcnt, uint64_t off)
{
	struct gate_img *g = (struct gate_img *)img;
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&g->m);
	if (++g->inside > g->inside_max)
		g->inside_max = g->inside;
	pthread_cond_broadcast(&g->cv);
	while (!g->open_gate && g->inside_max < g->hold &&
	       pthread_cond_timedwait(&g->cv, &g->m, &until) == 0)
		;
	pthread_mutex_unlock(&g->m);
	int err = xbd_image_preadv(g->base, iov, iovcnt, off);
	pthread_mutex_lock(&g->m);
	g->inside--;
	pthread_mutex_unlock(&g->m);
	return err;
}

static int gate_pwritev(struct xbd_image *img, const struct iovec *iov,
			int iovcnt, uint64_t off)
{
	(void)img, (void)iov, (void)iovcnt, (void)off;
	return -EROFS;
}

static void gate_close(struct xbd_image *img)
{
	struct gate_img *g = (struct gate_img *)img;

	xbd_image_close(g->base);
	pthread_mutex_destroy(&g->m);
	pthread_cond_destroy(&g->cv);
	free(g);
}

static const struct xbd_image_ops gate_ops = {
	.name = "gate",
	.preadv = gate_preadv,
	.pwritev = gate_pwritev,
	.close = gate_close,
};

static void gate_wait_inside(struct gate_img *g, unsigned n)
{
	struct timespec until;

	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += 5;
	pthread_mutex_lock(&g->m);
	while (g->inside < n &&
	       pthread_cond_timedwait(&g->cv, &g->m, &until) == 0)
		;
	pthread_mutex_unlock(&g->m);
}

static void test_blocking_image(void)
{
	struct xbd_fuse_opts four = { .threads = 4 };
	struct gate_img *g = calloc(1, sizeof(*g));
	struct xbd_image *null_img;
	struct xbd_fuse *fx;
	struct one_read o[4];
	struct stat st;

	CHECK(g != NULL);
	CHECK_EQ(xbd_image_open_raw(img_path, true, &g->base), 0);
	g->img = *g->base;
	g->img.ops = &gate_ops;
	g->hold = 4;
	pthread_mutex_init(&g->m, NULL);
	pthread_cond_init(&g->cv, NULL);
	CHECK_EQ(xbd_image_open_null(MiB, &null_img), 0);
	CHECK_EQ(xbd_fuse_start(mnt, &four, &fx), 0);
	CHECK_EQ(xbd_fuse_add_disk(fx, "xvdg", &g->img, XBD_FUSE_NO_PARTITIONS), 0);
	CHECK_EQ(xbd_fuse_add_disk(fx, "null0", null_img, 0), 0);

	/* four waiting reads, four workers: all inside at once */
	unsigned long long t0 = xbd_now_ns();
	for (int i = 0; i < 4; i++) {
		o[i] = (struct one_read){ .path = in_mnt("xvdg"),
					  .off = (uint64_t)(i + 1) * 3 * MiB };
		CHECK_EQ(pthread_create(&o[i].t, NULL, one_read_main, &o[i]), 0);
	}
	for (int i = 0; i < 4; i++) {
		pthread_join(o[i].t, NULL);
		CHECK(o[i].same);
	}
	printf("blocking image: %u reads inside at once with 4 workers, %.0f ms\n",
	       g->inside_max, (double)(xbd_now_ns() - t0) / 1e6);
	CHECK_EQ(g->inside_max, 4u);
	CHECK(xbd_now_ns() - t0 < 4000000000ull);

	/* every worker held by that disk: the rest of the export answers */
	pthread_mutex_lock(&g->m);
	g->hold = 100;
	pthread_mutex_unlock(&g->m);
	for (int i = 0; i < 4; i++)
		CHECK_EQ(pthread_create(&o[i].t, NULL, one_read_main, &o[i]), 0);
	gate_wait_inside(g, 4);
	CHECK_EQ(g->inside, 4u);
	t0 = xbd_now_ns();
	check_listing((const char *const[]){ "xvdg", "null0" }, 2);
	CHECK_EQ(stat(in_mnt("null0"), &st), 0);
	struct one_read z = { .path = in_mnt("null0"), .off = 4096 };
	CHECK_EQ(pthread_create(&z.t, NULL, one_read_main, &z), 0);
	pthread_join(z.t, NULL);
	CHECK_EQ(z.n, 4096);
	printf("blocking image: listing, stat and a read of another disk took "
	       "%.1f ms with every worker waiting\n",
	       (double)(xbd_now_ns() - t0) / 1e6);
	CHECK(xbd_now_ns() - t0 < 1000000000ull);
	pthread_mutex_lock(&g->m);
	g->open_gate = true;
	pthread_cond_broadcast(&g->cv);
	pthread_mutex_unlock(&g->m);
	for (int i = 0; i < 4; i++) {
		pthread_join(o[i].t, NULL);
		CHECK(o[i].same);
	}
	xbd_fuse_stop(fx);
	xbd_image_close(null_img);
	xbd_image_close(&g->img);
}

static void test_stop_busy(struct xbd_fuse *fx)
{
	unsigned char buf[4096];
	int fd = open(in_mnt("xvda"), O_RDONLY);
	pid_t pid;
	int st;

	CHECK(fd >= 0);
	pid = fork();
	if (pid == 0) {
		execl("/bin/sh", "sh", "-c",
		      "while dd if=\"$0\" of=/dev/null bs=64k status=none; do :; done",
		      in_mnt("xvda"), (char *)NULL);
		_exit(127);
	}
	CHECK(pid > 0);
	usleep(300 * 1000);
	unsigned long long t0 = xbd_now_ns();
	xbd_fuse_stop(fx);
	CHECK(xbd_now_ns() - t0 < 5000000000ull);
	errno = 0;
	CHECK(pread(fd, buf, sizeof(buf), 0) < 0);
	CHECK(errno == ENOTCONN || errno == ECONNABORTED || errno == EIO);
	close(fd);
	/* the dd loop ends on its own once the disk is gone */
	for (int i = 0; i < 100 && waitpid(pid, &st, WNOHANG) == 0; i++)
		usleep(100 * 1000);
	if (waitpid(pid, &st, WNOHANG) == 0) {
		CHECK(!"dd loop still running after stop");
		kill(pid, SIGKILL);
		waitpid(pid, &st, 0);
	}
	errno = 0;
	CHECK(access(in_mnt("xvda"), F_OK) < 0);
}

static int test_main(void)
{
	struct xbd_image *img;
	struct xbd_fuse *fx;
	char img_sha[65];

	build_disk();
	CHECK_EQ(tu_sha256(img_path, img_sha), 0);

	CHECK_EQ(xbd_image_open_raw(img_path, true, &img), 0);
	CHECK_EQ(xbd_fuse_start(mnt, NULL, &fx), 0);
	CHECK_EQ(xbd_fuse_add_disk(fx, "xvda", img, 0), 0);
	CHECK(xbd_fuse_mounted(fx));
	test_read_only_export(fx, img_sha);
	test_parallel_readers();
	test_partition_tables(fx);
	test_hostile_tables(fx);
	test_add_remove(fx);
	test_stop_busy(fx);
	xbd_image_close(img);

	test_files_rescan();
	test_async_image(); /* before the cow test changes `disk` */
	test_blocking_image();
	test_cow_export(img_sha);

	/* a read-only mount shows even writable images read-only */
	struct xbd_fuse_opts ro = { .read_only = true, .threads = 2 };
	CHECK_EQ(xbd_image_open_null(MiB, &img), 0);
	CHECK_EQ(xbd_fuse_start(mnt, &ro, &fx), 0);
	CHECK_EQ(xbd_fuse_add_disk(fx, "null0", img, 0), 0);
	check_stat("null0", MiB, 0444);
	errno = 0;
	CHECK(open(in_mnt("null0"), O_WRONLY) < 0 && errno == EROFS);
	xbd_fuse_stop(fx);
	xbd_image_close(img);

	/* unmounted from outside: the export notices, stop still works */
	CHECK_EQ(xbd_fuse_start(mnt, NULL, &fx), 0);
	CHECK_EQ(run("umount '%s'", mnt), 0);
	for (int i = 0; i < 50 && xbd_fuse_mounted(fx); i++)
		usleep(100 * 1000);
	CHECK(!xbd_fuse_mounted(fx));
	xbd_fuse_stop(fx);

	/* a mount point that is not there */
	CHECK(xbd_fuse_start(tu_path("nowhere"), NULL, &fx) < 0);
	free(disk);
	return check_report("test_fuse_export");
}

static bool have(const char *tool)
{
	return run("command -v %s >/dev/null", tool) == 0;
}

int main(void)
{
	static const char *const tools[] = { "sfdisk", "mkfs.ext4", "e2fsck",
		"fdisk", "sha256sum", "dd", "cmp", "mount", "umount", "truncate",
		"python3" };
	char mnt_buf[512], fsmnt_buf[512], img_buf[512];
	int fd, st;
	pid_t pid;

	if (geteuid() != 0) {
		printf("SKIP: needs root (FUSE and loop mounts)\n");
		return 77;
	}
	fd = open("/dev/fuse", O_RDWR);
	if (fd < 0) {
		printf("SKIP: /dev/fuse: %s\n", strerror(errno));
		return 77;
	}
	close(fd);
	if (access("/dev/loop-control", F_OK)) {
		printf("SKIP: no loop devices (/dev/loop-control) for mount -o loop\n");
		return 77;
	}
	for (size_t i = 0; i < XBD_ARRAY_SIZE(tools); i++) {
		if (!have(tools[i])) {
			printf("SKIP: %s is not installed\n", tools[i]);
			return 77;
		}
	}

	tu_scratch("fuse");
	/* tu_path's buffers get reused: keep our own copies */
	snprintf(img_buf, sizeof(img_buf), "%s", tu_path("disk.img"));
	img_path = img_buf;
	snprintf(mnt_buf, sizeof(mnt_buf), "%s", tu_path("mnt"));
	snprintf(fsmnt_buf, sizeof(fsmnt_buf), "%s", tu_path("fsmnt"));
	mnt = mnt_buf;
	fsmnt = fsmnt_buf;
	if (mkdir(mnt, 0755) || mkdir(fsmnt, 0755)) {
		perror("mkdir");
		return 1;
	}

	fflush(stdout);
	pid = fork();
	if (pid == 0) {
		alarm(200);       /* a hang fails the test, the parent cleans up */
		exit(test_main());
	}
	if (pid < 0 || waitpid(pid, &st, 0) != pid)
		return 1;
	/* whatever the child left mounted (fsmnt first: it sits on mnt) */
	run("umount -l '%s' 2>/dev/null", fsmnt);
	run("umount -l '%s' 2>/dev/null", mnt);
	if (WIFSIGNALED(st)) {
		fprintf(stderr, "test_fuse_export: child killed by signal %d\n",
			WTERMSIG(st));
		return 1;
	}
	return WEXITSTATUS(st);
}

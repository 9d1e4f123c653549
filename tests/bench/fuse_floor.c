/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The floor of any FUSE export, a peer of tests/bench/attach.sh: the
 * least a FUSE server can do per read.  One file, MOUNT/disk, whose
 * reads are a pread of IMAGE answered at once on the one thread that
 * read the request from /dev/fuse (libfuse's single-threaded loop): no
 * ring, no backend, no second thread.  A synchronous reader of this
 * file pays the FUSE round trip itself and nothing else, so its rate is
 * the ceiling for qsd, nbdfuse and xbd alike for one reader at a time
 * (QD1, a file-system walk); with many reads in flight (QD32) a server
 * with more threads can pass it.
 * Usage: fuse_floor IMAGE MOUNT   (stays in the foreground; umount ends it)
 */
#define FUSE_USE_VERSION 34
#include <fuse_lowlevel.h>

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DISK_INO 2

static int image_fd = -1;
static off_t image_size;

static void disk_stat(struct stat *st)
{
	memset(st, 0, sizeof(*st));
	st->st_ino = DISK_INO;
	st->st_mode = S_IFREG | 0444;
	st->st_nlink = 1;
	st->st_size = image_size;
}

static void floor_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
	struct fuse_entry_param e;

	if (parent != FUSE_ROOT_ID || strcmp(name, "disk")) {
		fuse_reply_err(req, ENOENT);
		return;
	}
	memset(&e, 0, sizeof(e));
	e.ino = DISK_INO;
	e.attr_timeout = e.entry_timeout = 3600;
	disk_stat(&e.attr);
	fuse_reply_entry(req, &e);
}

static void floor_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	struct stat st;

	(void)fi;
	if (ino == FUSE_ROOT_ID) {
		memset(&st, 0, sizeof(st));
		st.st_ino = FUSE_ROOT_ID;
		st.st_mode = S_IFDIR | 0555;
		st.st_nlink = 2;
	} else if (ino == DISK_INO) {
		disk_stat(&st);
	} else {
		fuse_reply_err(req, ENOENT);
		return;
	}
	fuse_reply_attr(req, &st, 3600);
}

static void floor_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
	if (ino != DISK_INO) {
		fuse_reply_err(req, EISDIR);
		return;
	}
	if ((fi->flags & O_ACCMODE) != O_RDONLY) {
		fuse_reply_err(req, EROFS);
		return;
	}
	fuse_reply_open(req, fi);
}

static void floor_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
		       struct fuse_file_info *fi)
{
	static char buf[1 << 20];
	ssize_t n;

	(void)ino;
	(void)fi;
	if (size > sizeof(buf))
		size = sizeof(buf);
	n = pread(image_fd, buf, size, off);
	if (n < 0)
		fuse_reply_err(req, errno);
	else
		fuse_reply_buf(req, buf, (size_t)n);
}

static const struct fuse_lowlevel_ops floor_ops = {
	.lookup = floor_lookup,
	.getattr = floor_getattr,
	.open = floor_open,
	.read = floor_read,
};

int main(int argc, char **argv)
{
	char *fargs[] = { argv[0], "-o", "ro", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(3, fargs);
	struct fuse_session *se;
	struct stat st;
	int rc = 1;

	if (argc != 3) {
		fprintf(stderr, "usage: %s IMAGE MOUNT\n", argv[0]);
		return 2;
	}
	image_fd = open(argv[1], O_RDONLY);
	if (image_fd < 0 || fstat(image_fd, &st)) {
		perror(argv[1]);
		return 1;
	}
	image_size = st.st_size;
	se = fuse_session_new(&args, &floor_ops, sizeof(floor_ops), NULL);
	if (!se)
		return 1;
	if (fuse_set_signal_handlers(se) == 0) {
		if (fuse_session_mount(se, argv[2]) == 0) {
			rc = fuse_session_loop(se) ? 1 : 0;
			fuse_session_unmount(se);
		}
		fuse_remove_signal_handlers(se);
	}
	fuse_session_destroy(se);
	fuse_opt_free_args(&args);
	close(image_fd);
	return rc;
}

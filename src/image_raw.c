/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * raw image back-end: the disk's bytes are a file's or a block device's
 * bytes, one to one.  positioned I/O (preadv/pwritev) on one shared fd
 * makes every op thread-safe without locks.
 */
#include "image_priv.h"
#include "xbd/common.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/fs.h>
#include <stdlib.h>
#include <linux/magic.h>
#include <sys/ioctl.h>
#include <sys/vfs.h>
#include <sys/stat.h>
#include <unistd.h>

struct raw_image {
	struct xbd_image pub;
	int fd;
	bool in_memory; /* on tmpfs: reads never wait for a device */
};

static struct raw_image *to_raw(struct xbd_image *img)
{
	return (struct raw_image *)img;
}

static int raw_preadv(struct xbd_image *img, const struct iovec *iov,
		      int iovcnt, uint64_t offset)
{
	assert(xbd_image_valid_range(img, offset, xbd_iov_length(iov, iovcnt)));
	return xbd_fd_preadv_full(to_raw(img)->fd, iov, iovcnt, offset);
}

static int raw_try_preadv_nowait(struct xbd_image *img, const struct iovec *iov,
				 int iovcnt, uint64_t offset)
{
	size_t len = xbd_iov_length(iov, iovcnt);
	ssize_t n;

	assert(xbd_image_valid_range(img, offset, len));
	if (iovcnt > IOV_MAX)
		return -EAGAIN; /* preadv would split it: not worth it here */
	/* tmpfs answers RWF_NOWAIT with EOPNOTSUPP, but its pages are
	 * memory (swap aside): a plain read there does not wait for a
	 * device either. */
	n = preadv2(to_raw(img)->fd, iov, iovcnt, (off_t)offset,
		    to_raw(img)->in_memory ? 0 : RWF_NOWAIT);
	if (n < 0)
		return errno == EINTR ? -EAGAIN : -errno;
	/* short: the rest is not cached (or the file shrank): the caller's
	 * blocking preadv tells which */
	return (size_t)n == len ? 0 : -EAGAIN;
}

static int raw_pwritev(struct xbd_image *img, const struct iovec *iov,
		       int iovcnt, uint64_t offset)
{
	assert(xbd_image_valid_range(img, offset, xbd_iov_length(iov, iovcnt)));
	assert(!img->read_only);
	return xbd_fd_pwritev_full(to_raw(img)->fd, iov, iovcnt, offset);
}

static int raw_flush(struct xbd_image *img)
{
	if (img->read_only)
		return 0;
	return fdatasync(to_raw(img)->fd) ? -errno : 0;
}

static int raw_discard(struct xbd_image *img, uint64_t offset, uint64_t len)
{
	assert(xbd_image_valid_range(img, offset, len));
	assert(!img->read_only);
	if (len == 0)
		return 0;
	/* On a file this deallocates (reads then see zeroes); on a block
	 * device the kernel zeroes the range, discarding where it can. */
	if (fallocate(to_raw(img)->fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE,
		      (off_t)offset, (off_t)len))
		return errno == ENOTSUP ? -EOPNOTSUPP : -errno;
	return 0;
}

static void raw_close(struct xbd_image *img)
{
	close(to_raw(img)->fd);
	free(img);
}

static const struct xbd_image_ops raw_ops = {
	.name = "raw",
	.preadv = raw_preadv,
	.pwritev = raw_pwritev,
	.flush = raw_flush,
	.discard = raw_discard,
	.close = raw_close,
	.try_preadv_nowait = raw_try_preadv_nowait,
};

int xbd_image_open_raw(const char *path, bool read_only,
		       struct xbd_image **out)
{
	return xbd_image_open_raw_locked(path, read_only, XBD_IMAGE_LOCK_EXCL,
					 out);
}

int xbd_image_open_raw_locked(const char *path, bool read_only,
			      enum xbd_image_lock lock, struct xbd_image **out)
{
	struct raw_image *raw;
	struct statfs sfs;
	struct stat st;
	uint64_t size;
	unsigned sector_size = 512;
	int fd, err;

	fd = open(path, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		xbd_err("%s: cannot open image: %s", path, xbd_strerror(err));
		return err;
	}
	if (fstat(fd, &st)) {
		err = -errno;
		xbd_err("%s: %s", path, xbd_strerror(err));
		goto out_close;
	}
	if (S_ISBLK(st.st_mode)) {
		int ssz = 0;

		if (ioctl(fd, BLKGETSIZE64, &size)) {
			err = -errno;
			xbd_err("%s: cannot get the device size: %s", path,
				xbd_strerror(err));
			goto out_close;
		}
		if (!ioctl(fd, BLKSSZGET, &ssz) && ssz == 4096)
			sector_size = 4096;
	} else if (S_ISREG(st.st_mode)) {
		size = (uint64_t)st.st_size;
	} else {
		err = -EINVAL;
		xbd_err("%s: not a regular file or block device", path);
		goto out_close;
	}
	err = xbd_image_lock_fd(fd, path, !read_only, lock);
	if (err)
		goto out_close;
	if (size == 0 || size % 512) {
		err = -EINVAL;
		xbd_err("%s: size %llu is not a positive multiple of 512 bytes",
			path, (unsigned long long)size);
		goto out_close;
	}
	raw = calloc(1, sizeof(*raw));
	if (!raw) {
		err = -ENOMEM;
		xbd_err("%s: out of memory", path);
		goto out_close;
	}
	raw->fd = fd;
	raw->in_memory = S_ISREG(st.st_mode) && !fstatfs(fd, &sfs) &&
			 sfs.f_type == TMPFS_MAGIC;
	raw->pub = (struct xbd_image){
		.ops = &raw_ops,
		.size = size,
		.sector_size = sector_size,
		.read_only = read_only,
		.can_flush = !read_only,
		.can_discard = !read_only,
		.nonblocking = false,
	};
	*out = &raw->pub;
	return 0;

out_close:
	close(fd);
	return err;
}

/*
 * Image back-ends: what a disk's bytes live in, as one ops table in the
 * manner of nbdkit plugins.  The backend serves an image to a guest; the
 * frontend exposes an attached disk as an image; the FUSE export and the
 * copy-on-write overlay work on any image.  All ops are thread-safe and
 * may run concurrently (many requests in flight).
 *
 * Offsets and lengths are bytes; callers keep them 512-byte aligned.
 * Functions return 0 (the whole length was transferred) or -errno.
 */
#ifndef XBD_IMAGE_H
#define XBD_IMAGE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/uio.h>

struct xbd_image;

struct xbd_image_ops {
	const char *name; /* "raw", "cow", "null", "errinject", "blkfront" */
	int (*preadv)(struct xbd_image *img, const struct iovec *iov, int iovcnt,
		      uint64_t offset);
	int (*pwritev)(struct xbd_image *img, const struct iovec *iov,
		       int iovcnt, uint64_t offset);
	/* Everything completed before is durable when this returns. */
	int (*flush)(struct xbd_image *img);
	/* May be NULL (no discard).  Reads of a discarded range return
	 * zeroes for raw and cow. */
	int (*discard)(struct xbd_image *img, uint64_t offset, uint64_t len);
	void (*close)(struct xbd_image *img);
};

/* Every back-end's handle starts with this public header. */
struct xbd_image {
	const struct xbd_image_ops *ops;
	uint64_t size;         /* bytes, a multiple of 512 */
	unsigned sector_size;  /* logical: 512 or 4096 */
	bool read_only;        /* pwritev/discard fail with -EROFS */
	bool can_flush;
	bool can_discard;
	bool nonblocking;      /* ops never sleep: run them inline */
};

/* raw: a file or block device; O_RDONLY when read_only. */
int xbd_image_open_raw(const char *path, bool read_only,
		       struct xbd_image **out);
/* cow: `base` (only ever read) plus a sparse overlay file at
 * overlay_path (created; NULL = an unlinked temporary file).  Takes
 * ownership of base. */
int xbd_image_open_cow(struct xbd_image *base, const char *overlay_path,
		       struct xbd_image **out);
/* null: answers OK, drops writes, reads zeroes. */
int xbd_image_open_null(uint64_t size, struct xbd_image **out);
/* errinject: wraps base; I/O touching a listed byte range fails with
 * -EIO.  spec: "START-END[,START-END...]" in 512-byte sectors,
 * inclusive.  Takes ownership of base. */
int xbd_image_open_errinject(struct xbd_image *base, const char *spec,
			     struct xbd_image **out);

/* Opens by back-end name ("raw", "cow", "null") as `xbd serve` does:
 * cow uses `path` as the gold image and overlay_path (may be NULL). */
int xbd_image_open_by_name(const char *backend, const char *path,
			   const char *overlay_path, bool read_only,
			   struct xbd_image **out);

int xbd_image_pread(struct xbd_image *img, void *buf, size_t len,
		    uint64_t offset);
int xbd_image_pwrite(struct xbd_image *img, const void *buf, size_t len,
		     uint64_t offset);
void xbd_image_close(struct xbd_image *img);

#endif

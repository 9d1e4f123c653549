/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Image back-ends: what a disk's bytes live in, as one ops table in the
 * manner of nbdkit plugins.  The backend serves an image to a guest; the
 * frontend exposes an attached disk as an image; the FUSE export and the
 * copy-on-write overlay work on any image.  All calls are thread-safe and
 * may run concurrently (many requests in flight).
 *
 * Callers use the xbd_image_* wrappers below: they are the one place a
 * request's range and the read-only flag are checked.  The ops table
 * and the back-ends behind it are private (src/image_priv.h).
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

/* Completion of an asynchronous read: 0 (the whole length was read) or
 * -errno. */
typedef void (*xbd_image_done_fn)(void *opaque, int err);

/* The ops table is private to the back-ends (src/image_priv.h). */
struct xbd_image_ops;

/* Every back-end's handle starts with this public header. */
struct xbd_image {
	const struct xbd_image_ops *ops; /* opaque outside the back-ends */
	uint64_t size;         /* bytes, a multiple of 512 */
	unsigned sector_size;  /* logical: 512 or 4096 */
	bool read_only;        /* pwritev/discard fail with -EROFS */
	bool can_flush;
	bool can_discard;
	bool nonblocking;      /* ops never sleep: run them inline */
};

/*
 * How an image file is shared with other processes while open: locks in
 * QEMU's lock bytes (src/image_lock.c), so that xbd and QEMU refuse to
 * be a second writer of one image, or to write one that another reads.
 */
enum xbd_image_lock {
	XBD_IMAGE_LOCK_EXCL,     /* readers share; a writer has it alone */
	XBD_IMAGE_LOCK_SHARE_RW, /* others may write too (--share-rw): a
				  * conflict is a warning, not a refusal */
	XBD_IMAGE_LOCK_NONE,     /* no locks: the sim's stand-in for the
				  * kernel's blkback, which takes none */
};

/* raw: a file or block device; O_RDONLY when read_only.  Locked
 * XBD_IMAGE_LOCK_EXCL: -EBUSY (and a line naming the other user) when
 * another process is in the way. */
int xbd_image_open_raw(const char *path, bool read_only,
		       struct xbd_image **out);
/* cow: `base` (only ever read) plus a sparse overlay file at
 * overlay_path (created; NULL = an unlinked temporary file in $TMPDIR
 * or /var/tmp).  A named overlay that exists is opened again if it was
 * made for a base of this size; anything else there is refused, never
 * overwritten.  Takes ownership of base (closes it on failure too). */
int xbd_image_open_cow(struct xbd_image *base, const char *overlay_path,
		       struct xbd_image **out);
/* null: answers OK, drops writes, reads zeroes. */
int xbd_image_open_null(uint64_t size, struct xbd_image **out);
/* errinject: wraps base; I/O touching a listed byte range fails with
 * -EIO.  spec: "START-END[,START-END...]" in 512-byte sectors,
 * inclusive ("8-15,100").  Takes ownership of base (closes it on
 * failure too). */
int xbd_image_open_errinject(struct xbd_image *base, const char *spec,
			     struct xbd_image **out);

/* Opens by back-end name ("raw", "cow", "null") as `xbd serve` does:
 * cow uses `path` as the gold image (locked as read-only: it is never
 * written) and overlay_path (may be NULL); null takes its size from
 * `path` ("4096", "512M", "10G"; K/M/G/T are powers of 1024) and locks
 * nothing.  A read-only cow refuses writes but may show an existing
 * overlay. */
int xbd_image_open_by_name(const char *backend, const char *path,
			   const char *overlay_path, bool read_only,
			   enum xbd_image_lock lock, struct xbd_image **out);

/* The open functions above print one xbd_err() line naming what failed
 * before returning -errno. */

/*
 * Calling an image.  These wrappers check the range and the read-only
 * flag before calling the back-end, so a caller's bug gets -EINVAL or
 * -EROFS, never I/O outside the image; the back-ends rely on it.  flush
 * is 0 for an image that cannot flush (nothing to make durable);
 * discard is -EOPNOTSUPP when the image has none.
 */
int xbd_image_preadv(struct xbd_image *img, const struct iovec *iov,
		     int iovcnt, uint64_t offset);
int xbd_image_pwritev(struct xbd_image *img, const struct iovec *iov,
		      int iovcnt, uint64_t offset);
int xbd_image_pread(struct xbd_image *img, void *buf, size_t len,
		    uint64_t offset);
int xbd_image_pwrite(struct xbd_image *img, const void *buf, size_t len,
		     uint64_t offset);
/* Asynchronous read: returns at once, 0 and done(opaque, err) is called
 * exactly once, from any thread (possibly before this returns); or
 * -errno, and done is never called.  iov must stay valid until done.
 * Close the image only after the last done.  On an image that cannot
 * read asynchronously (xbd_image_reads_async false) it reads
 * synchronously and calls done before returning 0. */
int xbd_image_preadv_async(struct xbd_image *img, const struct iovec *iov,
			   int iovcnt, uint64_t offset, xbd_image_done_fn done,
			   void *opaque);
/* A read that never waits for the disk (raw: only from the page cache,
 * with RWF_NOWAIT), for callers that would rather hand a read to a
 * thread that may sleep than sleep themselves.  0: all of it was read.
 * -EAGAIN: it would have to wait (part of iov may have been written:
 * read all of it again with preadv).  -EOPNOTSUPP: this image or file
 * cannot be read so (tmpfs, FUSE, no such op ...): do not try again.
 * Else -errno. */
int xbd_image_try_preadv_nowait(struct xbd_image *img, const struct iovec *iov,
				int iovcnt, uint64_t offset);
/* A read whose bytes the back-end lends instead of copying them into
 * the caller's buffers (a blkfront's granted pages): done(opaque, 0,
 * iov, iovcnt, loan) gets [offset, offset+len) there (the array may be
 * changed, not the bytes), valid until done returns false (the image
 * takes them back after that: close it only later), or, when it
 * returns true, until the caller gives them back with
 * xbd_image_lent_return(img, loan) (from any thread; the back-end's
 * pages are short meanwhile).  On an error done(opaque, -errno, NULL,
 * 0, NULL), whose answer does not matter.  Returns 0, and done is
 * called exactly once, from any thread; or -errno, and done is never
 * called: -EOPNOTSUPP when this image, or this range (unaligned, too
 * large), cannot be lent (read it with xbd_image_preadv_async). */
typedef bool (*xbd_image_lent_fn)(void *opaque, int err, struct iovec *iov,
				  int iovcnt, void *loan);
int xbd_image_read_lent(struct xbd_image *img, uint64_t offset, uint64_t len,
			xbd_image_lent_fn done, void *opaque);
void xbd_image_lent_return(struct xbd_image *img, void *loan);
int xbd_image_flush(struct xbd_image *img);
int xbd_image_discard(struct xbd_image *img, uint64_t offset, uint64_t len);
void xbd_image_close(struct xbd_image *img);

/* What a back-end offers, for callers choosing how to call it. */
const char *xbd_image_name(const struct xbd_image *img); /* "raw", "cow", ... */
/* The back-end starts reads and completes them later (a blkfront). */
bool xbd_image_reads_async(const struct xbd_image *img);
/* xbd_image_read_lent may succeed (else it is -EOPNOTSUPP). */
bool xbd_image_can_lend(const struct xbd_image *img);
/* xbd_image_try_preadv_nowait may succeed (else it is -EOPNOTSUPP). */
bool xbd_image_can_read_nowait(const struct xbd_image *img);
/* can_discard, and the back-end has a discard op. */
bool xbd_image_can_discard(const struct xbd_image *img);

/*
 * iovec helpers.
 */

size_t xbd_iov_length(const struct iovec *iov, int iovcnt);
/* Fills out[] (room for iovcnt entries) with the part of iov[] that
 * covers bytes [skip, skip+len); returns the number of entries. */
int xbd_iov_slice(const struct iovec *iov, int iovcnt, size_t skip,
		  size_t len, struct iovec *out);
/* Copies between bytes [skip, skip+len) of iov[] and a flat buffer. */
void xbd_iov_to_buf(const struct iovec *iov, int iovcnt, size_t skip,
		    void *buf, size_t len);
void xbd_iov_from_buf(const struct iovec *iov, int iovcnt, size_t skip,
		      const void *buf, size_t len);

#endif

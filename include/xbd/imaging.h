/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Evidence imaging (`xbd image`): a disk read through a connected
 * struct xbd_frontend, in large reads with several in flight, handed in
 * order to a writer thread (raw file or E01 through libewf) and to one
 * hashing thread per digest (OpenSSL EVP: MD5, SHA-1, SHA-256), so that
 * hashing and writing overlap the reads.  Unreadable sectors stop the
 * copy, or are replaced by zeros and listed (skip_errors).
 */
#ifndef XBD_IMAGING_H
#define XBD_IMAGING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XBD_EWF_MAX_THREADS 16   /* compressing threads at most */

struct xbd_frontend;
struct xbd_platform;

enum xbd_hash {
	XBD_HASH_MD5,
	XBD_HASH_SHA1,
	XBD_HASH_SHA256,
	XBD_HASH_COUNT,
};
#define XBD_HASH_MAX_BYTES 32
/* "md5", "sha1", "sha256" */
const char *xbd_hash_name(enum xbd_hash h);

/* A set of digests computed together on one thread (for --verify). */
struct xbd_hashset;
int xbd_hashset_new(const bool want[XBD_HASH_COUNT], struct xbd_hashset **out);
int xbd_hashset_update(struct xbd_hashset *hs, const void *buf, size_t len);
/* hex[h] gets the lower-case hex digest of each wanted h ("" else). */
int xbd_hashset_final(struct xbd_hashset *hs,
		      char hex[XBD_HASH_COUNT][2 * XBD_HASH_MAX_BYTES + 1]);
void xbd_hashset_free(struct xbd_hashset *hs);

/* Unreadable 512-byte sectors [start, end], inclusive. */
struct xbd_sector_range {
	uint64_t start, end;
};

/* The image's destination: raw file or E01 (src/imaging_out.c).  The
 * data goes to a temporary name (NAME.partial, NAME.partial.E01) that
 * only xbd_image_out_commit gives the final name. */
struct xbd_image_out;
enum xbd_image_format { XBD_IMAGE_RAW, XBD_IMAGE_EWF };
/* E01 compression, as ewfacquire's -c names it: deflate at zlib's level
 * 1 (fast, the default here), 9 (best); none; none but chunks of one
 * repeated byte deflated (empty-block). */
enum xbd_ewf_compression {
	XBD_EWF_FAST,
	XBD_EWF_BEST,
	XBD_EWF_NONE,
	XBD_EWF_EMPTY_BLOCK,
	XBD_EWF_COMPRESSION_COUNT,
};
/* "fast", "best", "none", "empty-block" */
const char *xbd_ewf_compression_name(enum xbd_ewf_compression c);
struct xbd_image_out_opts {
	enum xbd_image_format format;
	const char *path;            /* raw: the file; ewf: its first segment (.E01) */
	bool force;                  /* replace an existing image */
	bool sparse;                 /* raw: holes where the disk reads zeros */
	uint64_t size;               /* bytes */
	unsigned sector_size;
	/* ewf case metadata, each NULL when not given */
	const char *case_number, *evidence_number, *examiner, *description, *notes;
	enum xbd_ewf_compression compression;
	unsigned threads;            /* ewf: compressing threads; 0: one per online CPU */
};
/* Checks that nothing is in the way and creates the temporary file.
 * Prints one error line on failure. */
int xbd_image_out_open(const struct xbd_image_out_opts *o, struct xbd_image_out **out);
/* Data in order, from offset 0 on. */
int xbd_image_out_write(struct xbd_image_out *io, const void *buf, size_t len);
/* E01: records unreadable sectors (--skip-errors) as acquiry errors,
 * which ewfinfo lists; raw: nothing.  Before xbd_image_out_commit. */
int xbd_image_out_add_errors(struct xbd_image_out *io,
			     const struct xbd_sector_range *bad, unsigned n);
/* Stores the digests (E01: where ewfverify reads them; binary digests,
 * NULL when not computed), finishes the file, renames it to its name. */
int xbd_image_out_commit(struct xbd_image_out *io,
			 const uint8_t *md5, const uint8_t *sha1);
/* Removes the temporary file(s) unless committed; frees.  NULL: no-op. */
void xbd_image_out_close(struct xbd_image_out *io);
/* The final name of the first file (the .E01 for ewf). */
const char *xbd_image_out_name(const struct xbd_image_out *io);

/* Reads a written image back (raw or E01) and hashes its media data.
 * tick (may be NULL) is called after every read with the bytes so far;
 * non-zero stops it with -EINTR. */
int xbd_image_verify(enum xbd_image_format format, const char *path,
		     const bool want[XBD_HASH_COUNT],
		     char hex[XBD_HASH_COUNT][2 * XBD_HASH_MAX_BYTES + 1],
		     uint64_t *bytes, int (*tick)(void *arg, uint64_t done),
		     void *tick_arg);

struct xbd_image;
struct xbd_imaging_opts {
	struct xbd_frontend *fe;
	/* read this image instead of fe (a snapshot of the disk's store);
	 * fe may be NULL then.  Not closed here. */
	struct xbd_image *src;
	uint64_t size;               /* bytes to read from 0 */
	unsigned sector_size;        /* the retry unit after a failed read */
	bool want[XBD_HASH_COUNT];
	bool skip_errors;
	struct xbd_image_out *out;
	/* Called on the calling thread about every 200 ms and at the end
	 * with the bytes hashed and written so far; non-zero stops the
	 * copy (xbd_imaging_run then returns -EINTR). */
	int (*tick)(void *arg, uint64_t done);
	void *tick_arg;
};

struct xbd_imaging_result {
	char hex[XBD_HASH_COUNT][2 * XBD_HASH_MAX_BYTES + 1];
	uint8_t digest[XBD_HASH_COUNT][XBD_HASH_MAX_BYTES];
	uint64_t bytes;              /* read and written */
	struct xbd_sector_range *bad; /* skip_errors: zero-filled sectors */
	unsigned nbad;
	uint64_t bad_sectors;        /* total in bad[] */
	uint64_t stop_sector;        /* the unreadable sector that stopped it */
	bool out_failed;             /* the error was the image's writer's (printed) */
};

/* 0; -EIO when a sector could not be read (stop_sector says which;
 * with skip_errors only when the device failed altogether); -EINTR
 * when tick stopped it; another -errno from the writer or the device.
 * Free the result with xbd_imaging_result_free. */
int xbd_imaging_run(const struct xbd_imaging_opts *o, struct xbd_imaging_result *r);
void xbd_imaging_result_free(struct xbd_imaging_result *r);

/* --pause (src/imaging_pause.c): the VM paused and its rings idle, for
 * `xbd image` and `xbd attach`. */
struct xbd_vm_pause {
	uint16_t domid;
	bool paused;                 /* we hold one pause of it */
	bool was_paused;             /* it was paused before (somebody else's) */
	unsigned long long pause_ns, idle_ns, unpause_ns; /* xbd_now_ns() */
	char paused_utc[32], unpaused_utc[32];
	unsigned rings_checked;      /* rings seen idle */
	char unchecked[256];         /* disks whose rings could not be seen, why */
	char record_dir[128];        /* "" or where the pause is recorded */
};
/* Pauses domid (a pause of ours, counted: one the admin made stays),
 * records it in record_dir (may be NULL; xbd_vm_pause_record) at once,
 * so that a kill -9 from then on leaves a pause the cleanup undoes,
 * then waits up to timeout_ms until no request is in flight on any ring
 * of its disks.  stop (may be NULL) is asked between looks; non-zero
 * gives -EINTR.  On failure prints one line naming vm and leaves the
 * VM as it was. */
int xbd_vm_pause(struct xbd_platform *p, const char *vm, uint16_t domid,
		 const char *record_dir, unsigned timeout_ms,
		 int (*stop)(void *arg), void *arg, struct xbd_vm_pause *ps);
/* Undoes xbd_vm_pause (nothing when it holds no pause): the record
 * goes first, so that a crash in between leaves the VM paused rather
 * than have a cleanup undo a pause that is not ours. */
int xbd_vm_unpause(struct xbd_platform *p, const char *vm, struct xbd_vm_pause *ps);

/* The record of a pause beside the instance that made it (in its
 * frontend directory dir): "DOMID NAME". */
#define XBD_PAUSED_NODE "xbd-paused"
int xbd_vm_pause_record(struct xbd_platform *p, const char *dir, const char *vm,
			uint16_t domid);
void xbd_vm_pause_unrecord(struct xbd_platform *p, const char *dir);
/* A dead process's recorded pause undone: the record removed first,
 * then one unpause, when the domain still has that id and name.  1 when
 * unpaused, 0 when there was nothing to undo, or -errno. */
int xbd_vm_pause_undo_recorded(struct xbd_platform *p, const char *dir);

/* --snapshot (src/imaging_snapshot.c): a reflink clone of the disk's
 * store.  Each prints one line naming `what` (VM/VDEV) and why on
 * failure.  _store: the file to clone (a raw file, or the file behind a
 * loop device, in this domain); -EOPNOTSUPP for other stores (LVM
 * volumes among them).  _prepare: an unnamed file (O_TMPFILE) on the
 * store's file system, done before the pause.  _clone: FICLONE of store
 * into it; -EOPNOTSUPP etc. when the file system has no reflinks. */
struct xbd_vm_disk;
int xbd_snapshot_store(const struct xbd_vm_disk *d, uint16_t self_domid,
		       const char *what, char *store, size_t len);
int xbd_snapshot_prepare(const char *store, const char *what, int *fd);
int xbd_snapshot_clone(const char *store, int fd, const char *what);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * FUSE export: a directory holding one file per disk (`xvda`) whose
 * bytes are the disk image's, plus one file per partition found in its
 * MBR or GPT (`xvda1`, `xvda2`, ...; `nvme0n1p1` when the disk name
 * ends in a digit).  Nothing else appears in it.  Disks come and go
 * while it is mounted.  Files are read-only (0444, writes fail with
 * EROFS) unless the image is writable and the disk was added writable
 * (0644).  fsync flushes the image.  Each open sees the image as it is
 * at the open: a file opened for reading only is read through the
 * kernel's page cache, which the open empties; a file opened for
 * writing or with O_DIRECT is not cached (top of fuse/fuse_export.c).
 *
 * The export runs its own threads; the calls below come from
 * the owner's thread, never from inside an image op, and never
 * concurrently with xbd_fuse_stop().  Removing a disk and stopping wait
 * for the requests already inside the image, so image ops must end
 * (with an error if need be: a vanished peer is -EIO) rather than
 * block forever.
 */
#ifndef XBD_FUSE_EXPORT_H
#define XBD_FUSE_EXPORT_H

#include <stdbool.h>

struct xbd_image;
struct xbd_fuse;

struct xbd_fuse_opts {
	bool read_only;   /* mount read-only; every disk is shown read-only */
	bool allow_other; /* other users may enter (modes still apply) */
	const char *fsname; /* who mounted it, after "xbd:" in the mount's
			     * source ("vm1" gives "xbd:vm1"); NULL: "xbd:".
			     * Characters other than letters, digits and
			     * ._:/- become '_'. */
	unsigned threads; /* workers for requests that may wait (writes,
			   * fsync, reads of a synchronous image that must
			   * go to its disk); 0 = 16.  One more thread reads
			   * /dev/fuse and answers everything else. */
	bool files;       /* disks will be added with XBD_FUSE_FILES */
};

#define XBD_FUSE_NAME_MAX 64

/* Mounts an empty export on `mountpoint` (an existing directory).
 * Returns once the mount answers.  opts may be NULL (defaults). */
int xbd_fuse_start(const char *mountpoint, const struct xbd_fuse_opts *opts,
		   struct xbd_fuse **out);

/* Flags for xbd_fuse_add_disk. */
#define XBD_FUSE_DISK_READ_ONLY  (1u << 0) /* even if the image is writable */
#define XBD_FUSE_NO_PARTITIONS   (1u << 1) /* do not look for partitions */
#define XBD_FUSE_FILES           (1u << 2) /* file systems as trees under files/ */

/* Shows `img` as the file `name` and its partitions beside it.  The
 * image stays the caller's: keep it open until the disk is removed or
 * the export stopped.  -EEXIST if the name is taken, -EINVAL if it is
 * not a plain file name.  A partition table that cannot be read is
 * not an error (the disk shows without partitions). */
int xbd_fuse_add_disk(struct xbd_fuse *fx, const char *name,
		      struct xbd_image *img, unsigned flags);

/* Reads the partition table again (after the disk was repartitioned)
 * and replaces the disk's partition files. */
int xbd_fuse_rescan_partitions(struct xbd_fuse *fx, const char *name);

/* Removes the disk's file and its partitions.  When this returns no
 * request touches the image any more (the caller may close it); files
 * still open on it fail with EIO. */
int xbd_fuse_remove_disk(struct xbd_fuse *fx, const char *name);

/* False once the export was unmounted from outside (umount). */
bool xbd_fuse_mounted(const struct xbd_fuse *fx);

/* "MAJOR:MINOR" of the mounted file system, which no other mount has
 * while this one lives: what xbd records to recognise its mount later
 * (src/mounts.c reads it back from mountinfo). */
const char *xbd_fuse_dev(const struct xbd_fuse *fx);

/* Takes the mount off its directory lazily (umount -l): new opens fail,
 * files already open (a reader, a loop device) keep working, and the
 * export serves them until the last one closes, when the kernel ends
 * the connection and xbd_fuse_mounted() turns false.  Only our own
 * mount is taken off: when another one lies on top of it now, nothing
 * is unmounted and -EBUSY is returned. */
int xbd_fuse_detach(struct xbd_fuse *fx);

/* Unmounts (lazily if the mount is busy: processes that still hold a
 * file get errors, never a hang), stops the workers and frees
 * everything.  Images are not closed.  NULL is ignored.  Unmounts only
 * our own mount: after xbd_fuse_detach, or when another mount lies on
 * top of ours, nothing is unmounted by path (the connection is ended,
 * which frees a detached mount). */
void xbd_fuse_stop(struct xbd_fuse *fx);

#endif

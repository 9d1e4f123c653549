/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the host's mount table and process table say about a directory:
 * which mount lies on top of it (from /proc/self/mountinfo), and who
 * uses the files under it (open files, working directories, loop
 * devices).  xbd unmounts only what it recorded as its own and, like
 * umount, refuses to detach what is in use; both answers come from here
 * so that attach, serve and detach judge alike.
 */
#ifndef XBD_MOUNTS_H
#define XBD_MOUNTS_H

#include <limits.h>
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* The FUSE export's file system type (subtype "xbd") and the start of
 * its mount source ("xbd:vm1" for an attach, "xbd:vm1:xvdb" for a
 * serve), as fuse/fuse_export.c sets them. */
#define XBD_FUSE_FSTYPE "fuse.xbd"
#define XBD_FUSE_SOURCE_PREFIX "xbd:"

struct xbd_mount {
	unsigned major, minor;  /* st_dev of the mounted file system */
	char fstype[64];        /* "fuse.xbd", "tmpfs", ... */
	char source[256];       /* "xbd:vm1", "/dev/sda1", ... */
};

/* The mount on top of dir (an absolute path without a trailing '/'):
 * 0; -ENOENT when nothing is mounted there; negative errno when the
 * table cannot be read.  Names are decoded (mountinfo writes a blank
 * as \040). */
int xbd_mount_at(const char *dir, struct xbd_mount *out);

/* Whether m is an xbd FUSE export (type and source as xbd sets them). */
bool xbd_mount_is_xbd(const struct xbd_mount *m);

/* "MAJOR:MINOR" of m, as xbd records a mount (xbd-mount-dev). */
void xbd_mount_dev_str(const struct xbd_mount *m, char *buf, size_t size);

/* umount -l dir: umount2(MNT_DETACH), else (not root) fusermount3 -u -z.
 * The caller has made sure the mount on top of dir is the one meant. */
int xbd_umount_lazy(const char *dir);

/* Whether the mount on top of dir is an xbd export whose process is
 * gone (the kernel answers ENOTCONN). */
bool xbd_mount_dead(const char *dir);

/*
 * Who uses the files under dir: processes with a file under it open or
 * their working directory in it (/proc/PID/fd, /proc/PID/cwd), and loop
 * devices backed by a file under it (/sys/block/loop* /loop/backing_file).
 * The processes in skip[0..nskip) (xbd's own) and the caller are left
 * out.  Returns how many were found and describes them in buf, one
 * phrase each, comma-separated ("pid 1234 (dd) has xvda open, /dev/loop3
 * is backed by xvda1"), truncated with "..." when buf is short.
 */
unsigned xbd_dir_users(const char *dir, const pid_t *skip, unsigned nskip,
		       char *buf, size_t size);

#endif

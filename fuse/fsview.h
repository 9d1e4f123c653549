/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The read-only trees of a guest's file systems (attach --files): the
 * protocol between the export (fsview.c, the parent) and the confined
 * parser of one file system (fsview_ext.c, the child).  Every request
 * is answered by XBD_SB_REPLY whose payload starts with an int32: 0 or
 * a negative errno, then the op's body.  The parent checks every body.
 */
#ifndef XBD_FUSE_FSVIEW_H
#define XBD_FUSE_FSVIEW_H

#include <stddef.h>
#include <stdint.h>

#define FSV_INIT 16u        /* -> char type[16] */
#define FSV_GETATTR 17u     /* u64 ino -> struct fsv_attr */
#define FSV_LOOKUP 18u      /* u64 dir, name -> struct fsv_attr */
#define FSV_READDIR 19u     /* u64 dir, u64 cookie -> u64 next (0: end), then
			     * fsv_dirent, fsv_attr, name; ... */
#define FSV_READLINK 20u    /* u64 ino -> the target's bytes */
#define FSV_READ 21u        /* struct fsv_read -> bytes (fewer at the end of the file) */

#define FSV_NAME_MAX 255
#define FSV_LINK_MAX 4096
#define FSV_READDIR_BYTES (256u << 10)
#define FSV_ROOT_INO 2      /* ext2's; the child maps its own root to it */

struct fsv_attr {
	uint64_t ino, size, blocks;
	uint32_t mode, nlink, uid, gid;
	int64_t atime, mtime, ctime;
	uint32_t atime_ns, mtime_ns, ctime_ns, pad;
};

struct fsv_dirent {
	uint64_t ino;
	uint32_t type;      /* DT_* */
	uint32_t namelen;   /* the name follows, not NUL-terminated */
	uint32_t has_attr;  /* attr holds the inode's attributes */
	uint32_t pad;
};

struct fsv_read {
	uint64_t ino, off;
	uint32_t len, pad;
};

/* The child's main loop for ext2/3/4 (fsview_ext.c): answers requests
 * on fd until the parent goes.  Not static so that tests/fuzz/ drives
 * the same handler. */
int fsv_ext_main(int fd, void *arg);
/* One request, as the loop handles it: the reply (malloc'd) in *out. */
struct fsv_ext;
int fsv_ext_open(uint64_t size, int (*rd)(void *, void *, size_t, uint64_t),
		 void *ctx, struct fsv_ext **out);
int fsv_ext_handle(struct fsv_ext *e, uint32_t op, const void *req, size_t len,
		   void **out, size_t *out_len);
void fsv_ext_close(struct fsv_ext *e);

#endif

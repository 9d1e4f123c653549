/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The read-only trees of a guest's file systems (attach --files): the
 * protocol between the export (fsview.c, the parent) and the confined
 * parser of one file system (fsview_child.c and a struct fsv_parser:
 * fsview_ext.c, ...).  Every request
 * is answered by XBD_SB_REPLY whose payload starts with an int32: 0 or
 * a negative errno, then the op's body.  The parent checks every body.
 */
#ifndef XBD_FUSE_FSVIEW_H
#define XBD_FUSE_FSVIEW_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>

#define FSV_INIT 16u        /* -> char type[16] */
#define FSV_GETATTR 17u     /* u64 ino -> struct fsv_attr */
#define FSV_LOOKUP 18u      /* u64 dir, name -> struct fsv_attr */
#define FSV_READDIR 19u     /* u64 dir, u64 cookie -> u64 next (0: end), then
			     * fsv_dirent, fsv_attr, name; ... */
#define FSV_READLINK 20u    /* u64 ino -> the target's bytes */
#define FSV_READ 21u        /* struct fsv_read -> bytes (fewer at the end of the file) */
#define FSV_MAP 22u         /* struct fsv_read -> u64 file size, then struct
			     * fsv_extent...: where the bytes lie on the volume */

#define FSV_NAME_MAX 255
#define FSV_LINK_MAX 4096
#define FSV_READDIR_BYTES (256u << 10)
#define FSV_MAP_MAX 512     /* extents of one FSV_MAP answer */
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

/* Bytes off..off+len of a file: at byte phys of the volume, or zeros
 * (a hole, an unwritten extent). */
struct fsv_extent {
	uint64_t off, len, phys;
	uint32_t zero, pad;
};

/* What the parent takes (it checks again: the child is not trusted);
 * the child leaves out, or sends without attributes, what fails. */
static inline bool fsv_attr_valid(const struct fsv_attr *a)
{
	switch (a->mode & S_IFMT) {
	case S_IFREG: case S_IFDIR: case S_IFLNK: case S_IFCHR: case S_IFBLK:
	case S_IFIFO: case S_IFSOCK:
		break;
	default:
		return false;
	}
	return a->ino && a->ino <= 0xffffffffu && a->size <= (1ull << 62) &&
	       a->atime_ns < 1000000000u && a->mtime_ns < 1000000000u &&
	       a->ctime_ns < 1000000000u;
}

static inline bool fsv_name_valid(uint64_t ino, const char *name, size_t len)
{
	return ino && ino <= 0xffffffffu && len && len <= FSV_NAME_MAX &&
	       !memchr(name, '/', len) && !memchr(name, 0, len) &&
	       !(len == 1 && name[0] == '.') &&
	       !(len == 2 && name[0] == '.' && name[1] == '.');
}

/* Reads len bytes of the volume at off: 0 or negative errno. */
typedef int fsv_read_fn(void *ctx, void *buf, size_t len, uint64_t off);

/* A directory listing being built for FSV_READDIR. */
struct fsv_dir_out;
/* Adds one entry (attr NULL: not known); false when the reply is full
 * and the entry was not added: the listing resumes at it. */
bool fsv_emit(struct fsv_dir_out *o, uint64_t ino, uint32_t dtype,
	      const char *name, size_t namelen, const struct fsv_attr *attr);

/*
 * One kind of file system the confined child reads: a parser behind the
 * protocol above (fsview_child.c decodes the requests and bounds the
 * replies once, for all of them).  Inode numbers are the parser's own,
 * at most 32 bits, its root answered as FSV_ROOT_INO.  Every call
 * returns 0 or a negative errno.
 */
struct fsv_parser {
	const char *type;   /* FSV_INIT's answer, at most 15 bytes */
	/* -EINVAL (or any error) when the bytes hold no such file system */
	int (*open)(uint64_t size, fsv_read_fn *rd, void *ctx, void **fs);
	void (*close)(void *fs);
	int (*getattr)(void *fs, uint64_t ino, struct fsv_attr *a);
	int (*lookup)(void *fs, uint64_t dir, const char *name, size_t len,
		      struct fsv_attr *a);
	/* entries of dir from position cookie on (0: the first), "." and
	 * ".." left out; *next: the position to go on from, past cookie,
	 * 0 when the listing is whole */
	int (*readdir)(void *fs, uint64_t dir, uint64_t cookie,
		       struct fsv_dir_out *o, uint64_t *next);
	/* out holds FSV_LINK_MAX bytes */
	int (*readlink)(void *fs, uint64_t ino, char *out, size_t *len);
	/* at most len bytes at off; fewer only at the end of the file */
	int (*read)(void *fs, uint64_t ino, uint64_t off, char *out,
		    uint32_t len, size_t *got);
	/* optional: where bytes off..off+len of ino lie, in at most max
	 * extents in order from off (fewer bytes at the end of the file or
	 * when max runs out), and the file's size; -EOPNOTSUPP for a file
	 * whose bytes are not plain on the volume (inline, compressed,
	 * encrypted): the parent then asks read.  With it, the parent
	 * reads a file's data itself, several requests at once, instead of
	 * all of it passing through this one-threaded child twice. */
	int (*map)(void *fs, uint64_t ino, uint64_t off, uint32_t len,
		   struct fsv_extent *out, unsigned max, unsigned *n,
		   uint64_t *size);
};

extern const struct fsv_parser fsv_parser_ext;
extern const struct fsv_parser fsv_parser_ntfs;
extern const struct fsv_parser fsv_parser_xfs;

/* The child's main loop: answers requests on fd until the parent goes;
 * the first FSV_INIT finds the file system (arg: its uint64_t size). */
int fsv_child_main(int fd, void *arg);

/* The same, one request at a time (tests/fuzz/ drives these). */
struct fsv_fs;
/* The first parser that recognises the bytes: 0 or negative errno. */
int fsv_open(uint64_t size, fsv_read_fn *rd, void *ctx, struct fsv_fs **out);
/* One request: its reply (malloc'd; int32 status, then the body) in
 * *out.  Fails only when out of memory. */
int fsv_handle(struct fsv_fs *f, uint32_t op, const void *req, size_t len,
	       void **out, size_t *out_len);
void fsv_close(struct fsv_fs *f);

#endif

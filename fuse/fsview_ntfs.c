/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * NTFS for the confined child, with libntfs-3g (what ntfs-3g and
 * ntfsprogs use), mounted read-only: the journal is neither replayed
 * nor reset, a dirty or hibernated volume is read as it stands.  Its
 * disk is a struct ntfs_device_operations of ours that reads through
 * the parent (see include/xbd/sandbox.h), with fsview_cache.c's cache;
 * it opens, stats and ioctls nothing.  Inode numbers are MFT record
 * numbers, with the root (record 5) and record 2 ($LogFile, never
 * shown) swapped so that the root answers as FSV_ROOT_INO.  The system files ($MFT ... $Extend)
 * are hidden as ntfs-3g hides them.  NTFS has no Unix owners: every
 * entry shows uid and gid 0, directories 0555, files 0444, links 0777.
 */
#include "fuse/fsview.h"
#include "fuse/fsview_cache.h"
#include "xbd/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <stdarg.h>              /* before ntfs-3g/logging.h, which needs it */

#include <ntfs-3g/types.h>
#include <ntfs-3g/attrib.h>
#include <ntfs-3g/device.h>
#include <ntfs-3g/dir.h>
#include <ntfs-3g/inode.h>
#include <ntfs-3g/layout.h>
#include <ntfs-3g/logging.h>
#include <ntfs-3g/reparse.h>
#include <ntfs-3g/unistr.h>
#include <ntfs-3g/volume.h>

#define NTFS_ROOT_REC 5          /* FILE_root */
#define MAX_NAMES 1024           /* $FILE_NAME attributes counted per inode */
/* An Interix symbolic link: the magic, then at most PATH_MAX UTF-16 units */
#define INTX_MAX (sizeof(INTX_FILE_TYPES) + 2 * 4096)

struct fsv_ntfs {
	ntfs_volume *vol;
	uint64_t size;
	struct fsv_cache *cache;  /* the volume's bytes, through the parent */
	uint64_t records;        /* MFT records the volume claims */
	s64 pos;                 /* the device's, for seek and read */
	ntfs_inode *file_ni;     /* the last file read, kept open */
	ntfs_attr *file_na;
	/* where the last listing that filled its reply stopped: its
	 * directory, index (the protocol's cookie) and library position */
	uint64_t rd_dir, rd_idx;
	s64 rd_pos;
};

/* ---- the device: reads through the parent, nothing else ---- */

static int dev_open(struct ntfs_device *dev, int flags)
{
	if ((flags & O_ACCMODE) != O_RDONLY) {
		errno = EROFS;
		return -1;
	}
	NDevSetOpen(dev);
	NDevSetReadOnly(dev);
	return 0;
}

static int dev_close(struct ntfs_device *dev)
{
	NDevClearOpen(dev);
	return 0;
}

static s64 dev_pread(struct ntfs_device *dev, void *buf, s64 count, s64 off)
{
	struct fsv_ntfs *n = dev->d_private;
	int err;

	if (count < 0 || off < 0) {
		errno = EINVAL;
		return -1;
	}
	if ((uint64_t)off >= n->size)
		return 0;
	if ((uint64_t)count > n->size - (uint64_t)off)
		count = (s64)(n->size - (uint64_t)off);
	err = fsv_cache_read(n->cache, buf, (size_t)count, (uint64_t)off);
	if (err) {
		errno = -err;
		return -1;
	}
	return count;
}

/* seek and read: the boot sector's check that the volume's last
 * sector is there */
static s64 dev_seek(struct ntfs_device *dev, s64 off, int whence)
{
	struct fsv_ntfs *n = dev->d_private;
	s64 base = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? n->pos :
		   whence == SEEK_END ? (s64)n->size : -1;

	if (base < 0 || (off > 0 && off > INT64_MAX - base) || base + off < 0) {
		errno = EINVAL;
		return -1;
	}
	n->pos = base + off;
	return n->pos;
}

static s64 dev_read(struct ntfs_device *dev, void *buf, s64 count)
{
	struct fsv_ntfs *n = dev->d_private;
	s64 r = dev_pread(dev, buf, count, n->pos);

	if (r > 0)
		n->pos += r;
	return r;
}

static s64 dev_write(struct ntfs_device *dev, const void *buf, s64 count)
{
	(void)dev; (void)buf; (void)count;
	errno = EROFS;
	return -1;
}

static s64 dev_pwrite(struct ntfs_device *dev, const void *buf, s64 count, s64 off)
{
	(void)dev; (void)buf; (void)count; (void)off;
	errno = EROFS;
	return -1;
}

static int dev_sync(struct ntfs_device *dev)
{
	(void)dev;
	return 0;
}

static int dev_stat(struct ntfs_device *dev, struct stat *st)
{
	struct fsv_ntfs *n = dev->d_private;

	memset(st, 0, sizeof(*st));
	st->st_mode = S_IFREG | 0444;
	st->st_size = (off_t)n->size;
	return 0;
}

static int dev_ioctl(struct ntfs_device *dev, unsigned long req, void *arg)
{
	(void)dev; (void)req; (void)arg;
	errno = ENOTTY;
	return -1;
}

static struct ntfs_device_operations xbd_ntfs_ops = {
	.open = dev_open,
	.close = dev_close,
	.seek = dev_seek,
	.read = dev_read,
	.write = dev_write,
	.pread = dev_pread,
	.pwrite = dev_pwrite,
	.sync = dev_sync,
	.stat = dev_stat,
	.ioctl = dev_ioctl,
};

/* ---- inode numbers ---- */

static uint64_t rec_to_ino(uint64_t rec)
{
	return rec == NTFS_ROOT_REC ? FSV_ROOT_INO : rec == FSV_ROOT_INO ? NTFS_ROOT_REC : rec;
}

/* The MFT record of inode ino, or -ENOENT for what is never shown:
 * the system files and records past the MFT's end. */
static int64_t ino_to_rec(struct fsv_ntfs *n, uint64_t ino)
{
	uint64_t rec = rec_to_ino(ino);    /* the swap is its own inverse */

	if (rec != NTFS_ROOT_REC && rec < FILE_first_user)
		return -ENOENT;
	if (rec >= n->records || rec > UINT32_MAX)
		return -ENOENT;
	return (int64_t)rec;
}

static int open_ino(struct fsv_ntfs *n, uint64_t ino, ntfs_inode **out)
{
	int64_t rec = ino_to_rec(n, ino);
	ntfs_inode *ni;

	if (rec < 0)
		return (int)rec;
	ni = ntfs_inode_open(n->vol, (MFT_REF)rec);
	if (!ni)
		return errno == ENOMEM ? -ENOMEM : errno == ENOENT ? -ENOENT : -EIO;
	/* an extent of another record, or a record no directory names */
	if (ni->mrec->base_mft_record || !ni->mrec->link_count) {
		ntfs_inode_close(ni);
		return -ENOENT;
	}
	*out = ni;
	return 0;
}

/* ---- attributes ---- */

/* 100 ns units since 1601 to Unix seconds and nanoseconds */
static void nt_time(sle64 t, int64_t *sec, uint32_t *nsec)
{
	int64_t v = sle64_to_cpu(t);
	const int64_t off = 116444736000000000LL;   /* 1601 to 1970 */
	int64_t s, r;

	/* a time this far out (beyond 14000 years) shows as 1970 */
	if (v < INT64_MIN / 2 || v > INT64_MAX / 2)
		v = off;
	v -= off;
	s = v / 10000000;
	r = v % 10000000;
	if (r < 0) {
		s--;
		r += 10000000;
	}
	*sec = s;
	*nsec = (uint32_t)(r * 100);
}

/* Hard links: the names not in the DOS namespace (a DOS 8.3 name
 * beside a long one is no link of its own). */
static uint32_t count_links(ntfs_inode *ni)
{
	ntfs_attr_search_ctx *ctx = ntfs_attr_get_search_ctx(ni, NULL);
	uint32_t links = 0;

	if (!ctx)
		return 1;
	for (unsigned i = 0; i < MAX_NAMES; i++) {
		const FILE_NAME_ATTR *fn;
		const ATTR_RECORD *a;

		if (ntfs_attr_lookup(AT_FILE_NAME, AT_UNNAMED, 0, CASE_SENSITIVE, 0,
				     NULL, 0, ctx))
			break;
		a = ctx->attr;
		if (a->non_resident ||
		    le32_to_cpu(a->value_length) < offsetof(FILE_NAME_ATTR, file_name) ||
		    le16_to_cpu(a->value_offset) + (uint64_t)le32_to_cpu(a->value_length) >
		    le32_to_cpu(a->length))
			continue;
		fn = (const FILE_NAME_ATTR *)((const char *)a + le16_to_cpu(a->value_offset));
		if (fn->file_name_type != FILE_NAME_DOS)
			links++;
	}
	ntfs_attr_put_search_ctx(ctx);
	return links ? links : 1;
}

/* The target of an Interix symbolic link (what ntfs-3g writes for
 * `ln -s`), malloc'd, in *out. */
static int intx_target(ntfs_inode *ni, char **out)
{
	ntfs_attr *na = ntfs_attr_open(ni, AT_DATA, AT_UNNAMED, 0);
	INTX_FILE *f = NULL;
	int len, err = -EIO;

	if (!na)
		return -EIO;
	if (na->data_size <= (s64)sizeof(INTX_FILE_TYPES) || na->data_size > (s64)INTX_MAX) {
		err = na->data_size > (s64)INTX_MAX ? -ENAMETOOLONG : -EINVAL;
		goto out;
	}
	f = malloc((size_t)na->data_size);
	if (!f) {
		err = -ENOMEM;
		goto out;
	}
	if (ntfs_attr_pread(na, 0, na->data_size, f) != na->data_size)
		goto out;
	if (f->magic != INTX_SYMBOLIC_LINK) {
		err = -EINVAL;
		goto out;
	}
	*out = NULL;
	/* (the buffer is malloc'd: its target is aligned for ntfschar) */
	len = ntfs_ucstombs((const ntfschar *)((const char *)f + offsetof(INTX_FILE, target)),
			    (int)((na->data_size - (s64)offsetof(INTX_FILE, target)) /
				     (s64)sizeof(ntfschar)), out, 0);
	err = len < 0 ? -EIO : 0;
out:
	free(f);
	ntfs_attr_close(na);
	return err;
}

/* A link's target (malloc'd), for a reparse point libntfs-3g
 * translates (symbolic links, junctions, WSL links) or an Interix
 * link; -EINVAL for anything else. */
static int link_target(ntfs_inode *ni, char **out)
{
	if (ni->flags & FILE_ATTR_REPARSE_POINT) {
		/* absolute targets come out under "/": the volume's root
		 * as the mount point, the tree's place being unknown here */
		*out = ntfs_make_symlink(ni, "");
		return *out ? 0 : -EINVAL;
	}
	if ((ni->flags & FILE_ATTR_SYSTEM) && !(ni->mrec->flags & MFT_RECORD_IS_DIRECTORY) &&
	    ntfs_interix_types(ni) == NTFS_DT_LNK)
		return intx_target(ni, out);
	return -EINVAL;
}

static int ni_attr(ntfs_inode *ni, uint64_t ino, struct fsv_attr *a)
{
	char *target = NULL;
	bool dir = ni->mrec->flags & MFT_RECORD_IS_DIRECTORY;

	memset(a, 0, sizeof(*a));
	a->ino = ino;
	if (link_target(ni, &target) == 0) {
		a->mode = S_IFLNK | 0777;
		a->size = strlen(target);
		a->nlink = count_links(ni);
		free(target);
	} else if (dir) {
		ntfs_attr *na = ntfs_attr_open(ni, AT_INDEX_ALLOCATION, NTFS_INDEX_I30, 4);

		a->mode = S_IFDIR | 0555;
		/* as ntfs-3g: the index's size, 1 link (find then never
		 * counts on subdirectories) */
		if (na) {
			a->size = na->data_size > 0 ? (uint64_t)na->data_size : 0;
			a->blocks = na->allocated_size > 0 ? (uint64_t)na->allocated_size >> 9 : 0;
			ntfs_attr_close(na);
		}
		a->nlink = 1;
	} else {
		uint32_t t = NTFS_DT_REG;

		if (ni->flags & FILE_ATTR_SYSTEM)
			t = ntfs_interix_types(ni);
		a->mode = (t == NTFS_DT_FIFO ? S_IFIFO : t == NTFS_DT_SOCK ? S_IFSOCK :
			   t == NTFS_DT_CHR ? S_IFCHR : t == NTFS_DT_BLK ? S_IFBLK : S_IFREG) | 0444;
		a->size = ni->data_size > 0 ? (uint64_t)ni->data_size : 0;
		/* a sparse or compressed file's: what it has allocated */
		a->blocks = ni->allocated_size > 0 ? ((uint64_t)ni->allocated_size + 511) >> 9 : 0;
		a->nlink = count_links(ni);
	}
	nt_time(ni->last_access_time, &a->atime, &a->atime_ns);
	nt_time(ni->last_data_change_time, &a->mtime, &a->mtime_ns);
	nt_time(ni->last_mft_change_time, &a->ctime, &a->ctime_ns);
	return 0;
}

static int get_attr(struct fsv_ntfs *n, uint64_t ino, struct fsv_attr *a)
{
	ntfs_inode *ni;
	int err = open_ino(n, ino, &ni);

	if (err)
		return err;
	err = ni_attr(ni, ino, a);
	ntfs_inode_close(ni);
	return err;
}

/* ---- the ops ---- */

static void drop_file(struct fsv_ntfs *n)
{
	if (n->file_na)
		ntfs_attr_close(n->file_na);
	if (n->file_ni)
		ntfs_inode_close(n->file_ni);
	n->file_na = NULL;
	n->file_ni = NULL;
}

static int ntfs_open_fs(uint64_t size, fsv_read_fn *rd, void *ctx, void **out)
{
	struct fsv_ntfs *n = calloc(1, sizeof(*n));
	struct ntfs_device *dev;
	char boot[512];
	int err;

	if (!n)
		return -ENOMEM;
	n->size = size;
	/* the library's messages would go nowhere (the child's stderr
	 * is /dev/null) and flood the fuzzer's */
	ntfs_log_set_handler(ntfs_log_handler_null);
	/* a cheap look at the boot sector before the library's work */
	if (size < sizeof(boot) || rd(ctx, boot, sizeof(boot), 0) ||
	    memcmp(boot + 3, "NTFS    ", 8)) {
		free(n);
		return -EINVAL;
	}
	if (fsv_cache_new(size, rd, ctx, &n->cache)) {
		free(n);
		return -ENOMEM;
	}
	dev = ntfs_device_alloc("xbd", 0, &xbd_ntfs_ops, n);
	if (!dev) {
		fsv_cache_free(n->cache);
		free(n);
		return -ENOMEM;
	}
	/* (without ntfs_create_lru_caches: its inode cache leaks an inode
	 * opened twice at once, as a file being read and listed) */
	n->vol = ntfs_device_mount(dev, NTFS_MNT_RDONLY);
	if (!n->vol) {
		err = errno == ENOMEM ? -ENOMEM : -EINVAL;
		ntfs_device_free(dev);
		fsv_cache_free(n->cache);
		free(n);
		return err;
	}
	/* the system files out of listings, as ntfs-3g shows them */
	NVolClearShowSysFiles(n->vol);
	NVolSetShowHidFiles(n->vol);
	n->records = n->vol->mft_na->initialized_size > 0 ?
		(uint64_t)n->vol->mft_na->initialized_size >> n->vol->mft_record_size_bits : 0;
	*out = n;
	return 0;
}

static void ntfs_close_fs(void *fs)
{
	struct fsv_ntfs *n = fs;

	if (!n)
		return;
	drop_file(n);
	ntfs_umount(n->vol, FALSE);
	fsv_cache_free(n->cache);
	free(n);
}

static int ntfs_getattr(void *fs, uint64_t ino, struct fsv_attr *a)
{
	return get_attr(fs, ino, a);
}

static int ntfs_lookup(void *fs, uint64_t dir, const char *name, size_t len,
		       struct fsv_attr *a)
{
	struct fsv_ntfs *n = fs;
	char buf[FSV_NAME_MAX + 1];
	ntfschar *uname = NULL;
	ntfs_inode *dn;
	u64 mref;
	int ulen;
	int err = open_ino(n, dir, &dn);

	if (err)
		return err;
	if (!(dn->mrec->flags & MFT_RECORD_IS_DIRECTORY)) {
		ntfs_inode_close(dn);
		return -ENOTDIR;
	}
	memcpy(buf, name, len);
	buf[len] = 0;
	/* (not ntfs_inode_lookup_by_mbsname: without the library's lookup
	 * cache it converts a NULL name on a case-sensitive volume) */
	ulen = ntfs_mbstoucs(buf, &uname);
	mref = ulen > 0 ? ntfs_inode_lookup_by_name(dn, uname, ulen) : (u64)-1;
	free(uname);
	ntfs_inode_close(dn);
	if (mref == (u64)-1)
		return ulen > 0 && errno == ENOMEM ? -ENOMEM : -ENOENT;
	/* the hidden system files: not there */
	if (ino_to_rec(n, rec_to_ino(MREF(mref))) < 0 || MREF(mref) == NTFS_ROOT_REC)
		return -ENOENT;
	return get_attr(n, rec_to_ino(MREF(mref)), a);
}

struct rd_ctx {
	struct fsv_ntfs *n;
	struct fsv_dir_out *o;
	s64 from;                /* entries before this position: sent already */
	uint64_t skip;           /* entries still to pass over (sent already) */
	uint64_t sent;
	s64 next;                /* the position of the entry that did not fit */
	bool full;
};

static int fill(void *priv, const ntfschar *uname, const int ulen, const int type,
		const s64 pos, const MFT_REF mref, const unsigned dt)
{
	struct rd_ctx *c = priv;
	uint64_t rec = MREF(mref), ino = rec_to_ino(rec);
	char *name = NULL;
	struct fsv_attr at;
	bool has_attr;
	uint32_t dtype;
	int len;

	/* the DOS 8.3 twin of a long name; the dot entries; the system files */
	if (pos < c->from || type == FILE_NAME_DOS || rec == NTFS_ROOT_REC ||
	    ino_to_rec(c->n, ino) < 0)
		return 0;
	len = ntfs_ucstombs(uname, ulen, &name, 0);
	/* a name that is no UTF-16 (hostile) or no file name here: left out */
	if (len <= 0 || len > FSV_NAME_MAX || memchr(name, '/', (size_t)len) ||
	    !strcmp(name, ".") || !strcmp(name, "..")) {
		free(name);
		return 0;
	}
	if (c->skip) {
		c->skip--;
		free(name);
		return 0;
	}
	has_attr = get_attr(c->n, ino, &at) == 0;
	dtype = has_attr ? IFTODT(at.mode) : dt == NTFS_DT_REPARSE ? DT_LNK : dt;
	if (!fsv_emit(c->o, ino, dtype, name, (size_t)len, has_attr ? &at : NULL)) {
		free(name);
		c->full = true;
		c->next = pos;
		return -1;
	}
	c->sent++;
	free(name);
	return 0;
}

/*
 * The cookie is the index of the first entry not yet sent.  A listing
 * that goes on where the last one stopped resumes at its library
 * position; any other walks from the start.  ntfs_readdir resumes in
 * the index allocation correctly only at a block whose number is a
 * multiple of 8 (it tests the index bitmap from that byte's first
 * bit), so the walk starts at such a block (512 KiB holds 8 blocks of
 * the largest size, 64 KiB) and passes over the entries before the
 * position.
 */
static int ntfs_readdir_fs(void *fs, uint64_t dir, uint64_t cookie,
			   struct fsv_dir_out *o, uint64_t *next)
{
	struct fsv_ntfs *n = fs;
	struct rd_ctx c = { .n = n, .o = o, .from = 2, .skip = cookie };
	s64 rs = (s64)n->vol->mft_record_size, pos;
	ntfs_inode *dn;
	int err, rc;

	if (cookie && cookie == n->rd_idx && dir == n->rd_dir && n->rd_pos >= 2) {
		c.from = n->rd_pos;
		c.skip = 0;
	}
	n->rd_pos = 0;
	/* past "." and "..": positions 0 and 1 */
	pos = c.from < rs ? c.from : rs + ((c.from - rs) & ~(((s64)8 << 16) - 1));
	err = open_ino(n, dir, &dn);
	if (err)
		return err;
	if (!(dn->mrec->flags & MFT_RECORD_IS_DIRECTORY)) {
		ntfs_inode_close(dn);
		return -ENOTDIR;
	}
	rc = ntfs_readdir(dn, &pos, &c, fill);
	err = errno;
	ntfs_inode_close(dn);
	if (c.full) {
		/* not even one entry: no progress */
		if (!c.sent || c.next <= c.from)
			return -EIO;
		*next = cookie + c.sent;
		n->rd_dir = dir;
		n->rd_idx = *next;
		n->rd_pos = c.next;
		return 0;
	}
	if (rc)
		return err == ENOMEM ? -ENOMEM : -EIO;
	*next = 0;
	return 0;
}

static int ntfs_readlink_fs(void *fs, uint64_t ino, char *out, size_t *len)
{
	struct fsv_ntfs *n = fs;
	ntfs_inode *ni;
	char *target = NULL;
	int err = open_ino(n, ino, &ni);

	if (err)
		return err;
	err = link_target(ni, &target);
	ntfs_inode_close(ni);
	if (err)
		return err;
	*len = strlen(target);
	if (*len > FSV_LINK_MAX)
		err = -ENAMETOOLONG;
	else
		memcpy(out, target, *len);
	free(target);
	return err;
}

static int ntfs_read_fs(void *fs, uint64_t ino, uint64_t off, char *out,
			uint32_t len, size_t *got)
{
	struct fsv_ntfs *n = fs;
	size_t done = 0;

	if (!n->file_ni || rec_to_ino(n->file_ni->mft_no) != ino) {
		int err;

		drop_file(n);
		err = open_ino(n, ino, &n->file_ni);
		if (err)
			return err;
		if (n->file_ni->mrec->flags & MFT_RECORD_IS_DIRECTORY) {
			drop_file(n);
			return -EISDIR;
		}
		n->file_na = ntfs_attr_open(n->file_ni, AT_DATA, AT_UNNAMED, 0);
		if (!n->file_na) {
			err = errno == ENOENT ? 0 : -EIO;
			drop_file(n);
			/* no $DATA (an Interix FIFO, say): nothing to read */
			*got = 0;
			return err;
		}
	}
	if (off > INT64_MAX)
		return -EINVAL;
	/* the unnamed $DATA; holes read as zeros, compressed runs
	 * uncompressed by the library, encrypted ones refused (EACCES) */
	while (done < len) {
		s64 r = ntfs_attr_pread(n->file_na, (s64)(off + done), (s64)(len - done),
					out + done);

		if (r < 0) {
			int err = errno == EACCES ? -EACCES : -EIO;

			drop_file(n);
			return err;
		}
		if (r == 0)
			break;
		done += (size_t)r;
	}
	*got = done;
	return 0;
}

const struct fsv_parser fsv_parser_ntfs = {
	.type = "ntfs",
	.open = ntfs_open_fs,
	.close = ntfs_close_fs,
	.getattr = ntfs_getattr,
	.lookup = ntfs_lookup,
	.readdir = ntfs_readdir_fs,
	.readlink = ntfs_readlink_fs,
	.read = ntfs_read_fs,
};

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * XFS for the confined child, with libyal's libfsxfs (read-only by
 * design: it has no write path, and it never replays the log).  Its
 * disk is a libbfio handle of ours whose reads go through the parent
 * (include/xbd/sandbox.h), through fsview_cache.c: the
 * library reads a block at a time, and each miss is a round trip.
 *
 * libfsxfs 20201117 (Debian 12) walks directories, finds names and
 * reads file data and link targets; what it does not give is read here
 * from the fixed 176-byte inode core: the link count and the block
 * count (it has no getter for them) and the timestamps (it reads the
 * "bigtime" ones that mkfs.xfs 6.1 makes by default as seconds and
 * nanoseconds, giving dates around 1999).
 *
 * Inode numbers: XFS's are 64-bit (AG number, block, index), the
 * protocol's at most 32.  When every inode number the geometry allows
 * fits in 32 bits (up to 2 TiB with mkfs.xfs's 4 allocation groups),
 * a number is its own; the root is
 * answered as FSV_ROOT_INO, and the few that cannot be their own (a
 * real 2, 0 or 1 named by hostile metadata) get numbers past the
 * largest valid one.  Otherwise every inode seen gets a number of a
 * table, in the order met, at most MAP_MAX of them (then -EOVERFLOW).
 */
#include "fuse/fsview.h"
#include "fuse/fsview_cache.h"
#include "xbd/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <limits.h>
#define LIBFSXFS_HAVE_BFIO 1
#include <libbfio.h>
#include <libfsxfs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAP_MAX (4u << 20)       /* inodes numbered by the table */
#define DIR_MAX (1u << 20)       /* entries of one directory (fsview.c's bound) */
#define NAMES_MAX (64u << 20)    /* name bytes of one directory (fsview.c's bound) */
#define NDIRS 4                  /* directories indexed at once (find walks up and down) */
#define CORE 176                 /* bytes of a v3 inode core we read */
#define DIFLAG2_BIGTIME (1ull << 3)

struct xfs_io {
	struct fsv_cache *cache;
	uint64_t size, pos;
	/* libfsxfs 20201117 steps from one AG's superblock to the next by
	 * agblocks * blocksize in 32 bits: with AGs of 4 GiB or more
	 * (mkfs.xfs's default above 16 GiB) it reads AG k's superblock
	 * and AGI at k * w instead of k * p.  While it opens the volume,
	 * those two reads of each AG, in order, are moved where it meant. */
	bool fix_on, fix_agi;
	uint32_t fix_k, fix_n;
	uint64_t fix_w, fix_p, fix_agi_off;
};

/* One directory's names and XFS inodes, in the library's order, with a
 * hash table over the names: libfsxfs 20201117 has no lookup by name
 * (its get_sub_file_entry_by_utf8_name is a stub that fails). */
struct dir_index {
	uint64_t ino;             /* ours; 0: none */
	uint64_t used;            /* when last used, for eviction */
	size_t n;
	uint64_t *xino;
	uint32_t *noff;           /* name i at names + noff[i], nlen[i] bytes */
	uint16_t *nlen;
	char *names;
	uint32_t *slots;          /* entry + 1; 0: empty */
	size_t nslots;
};

struct fsv_xfs {
	struct xfs_io io;
	libbfio_handle_t *bfio;
	libfsxfs_volume_t *vol;
	/* geometry, from the superblock, checked */
	uint32_t blocksize, agblocks, agcount, inodesize;
	unsigned inopblog, agblklog;
	uint64_t rootino;
	uint64_t ident_lim;       /* numbers below are their own; 0: none */
	/* the table: xfs -> ours (open addressing), ours - base -> xfs */
	uint64_t *keys;
	uint32_t *vals;
	size_t cap, n;
	uint64_t *rev;
	size_t rev_cap;
	uint64_t base;
	struct dir_index dirs[NDIRS]; /* the last directories listed or searched */
	uint64_t clock;
	/* the last file read, kept open */
	libfsxfs_file_entry_t *file;
	uint64_t file_ino;
};

/* ---- the disk, through the parent ---- */

static int disk_read(struct xfs_io *io, void *buf, size_t len, uint64_t off)
{
	return fsv_cache_read(io->cache, buf, len, off) ? -EIO : 0;
}

/* libbfio's callbacks: a handle that is always open, read-only */
static int bio_open(intptr_t *h, int flags, libbfio_error_t **error)
{
	(void)h; (void)error;
	return flags & ~LIBBFIO_ACCESS_FLAG_READ ? -1 : 1;
}

static int bio_close(intptr_t *h, libbfio_error_t **error)
{
	(void)h; (void)error;
	return 0;
}

static int bio_yes(intptr_t *h, libbfio_error_t **error)
{
	(void)h; (void)error;
	return 1;
}

/* Where the library meant to read at off (see fix_on). */
static uint64_t fix_off(struct xfs_io *io, uint64_t off)
{
	uint64_t k = io->fix_k;

	if (!io->fix_on || k >= io->fix_n)
		return off;
	if (!io->fix_agi && off == k * io->fix_w) {
		io->fix_agi = true;
		return k * io->fix_p;
	}
	if (io->fix_agi && off == k * io->fix_w + io->fix_agi_off) {
		io->fix_agi = false;
		io->fix_k++;
		return k * io->fix_p + io->fix_agi_off;
	}
	return off;
}

static ssize_t bio_read(intptr_t *h, uint8_t *buf, size_t size, libbfio_error_t **error)
{
	struct xfs_io *io = (struct xfs_io *)h;
	uint64_t at = fix_off(io, io->pos);

	(void)error;
	if (at >= io->size)
		return 0;
	if (size > io->size - at)
		size = (size_t)(io->size - at);
	if (size > SSIZE_MAX || disk_read(io, buf, size, at))
		return -1;
	io->pos += size;
	return (ssize_t)size;
}

static ssize_t bio_write(intptr_t *h, const uint8_t *buf, size_t size,
			 libbfio_error_t **error)
{
	(void)h; (void)buf; (void)size; (void)error;
	return -1;
}

static off64_t bio_seek(intptr_t *h, off64_t off, int whence, libbfio_error_t **error)
{
	struct xfs_io *io = (struct xfs_io *)h;
	int64_t from = whence == SEEK_SET ? 0 : whence == SEEK_CUR ? (int64_t)io->pos :
		       whence == SEEK_END ? (int64_t)io->size : -1;

	(void)error;
	if (from < 0 || (off < 0 && -off > from) || (off > 0 && off > INT64_MAX - from))
		return -1;
	io->pos = (uint64_t)(from + off);
	return (off64_t)io->pos;
}

static int bio_size(intptr_t *h, size64_t *size, libbfio_error_t **error)
{
	(void)error;
	*size = ((struct xfs_io *)h)->size;
	return 1;
}

/* Where XFS inode xi is on the disk: 0 or -ENOENT. */
static int inode_pos(const struct fsv_xfs *x, uint64_t xi, uint64_t *off)
{
	uint64_t agno = xi >> (x->agblklog + x->inopblog);
	uint64_t agbno = (xi >> x->inopblog) & ((1ull << x->agblklog) - 1);

	if (agno >= x->agcount || agbno >= x->agblocks)
		return -ENOENT;
	*off = (agno * x->agblocks + agbno) * x->blocksize +
	       (xi & ((1ull << x->inopblog) - 1)) * x->inodesize;
	return 0;
}

/* ---- inode numbers ---- */

static size_t slot_of(const struct fsv_xfs *x, uint64_t k)
{
	return (size_t)((k * 0x9e3779b97f4a7c15ull) >> 20) & (x->cap - 1);
}

static int map_grow(struct fsv_xfs *x)
{
	size_t cap = x->cap ? x->cap * 2 : 1024;
	uint64_t *keys = calloc(cap, sizeof(*keys));
	uint32_t *vals = calloc(cap, sizeof(*vals));
	uint64_t *old_k = x->keys;
	uint32_t *old_v = x->vals;
	size_t old_cap = x->cap;

	if (!keys || !vals) {
		free(keys);
		free(vals);
		return -ENOMEM;
	}
	x->keys = keys;
	x->vals = vals;
	x->cap = cap;
	for (size_t i = 0; i < old_cap; i++) {
		size_t s;

		if (!old_k[i])
			continue;
		for (s = slot_of(x, old_k[i]); keys[s]; s = (s + 1) & (cap - 1))
			;
		keys[s] = old_k[i];
		vals[s] = old_v[i];
	}
	free(old_k);
	free(old_v);
	return 0;
}

/* Our number of XFS inode xi: 0 or negative errno. */
static int to_ours(struct fsv_xfs *x, uint64_t xi, uint64_t *out)
{
	uint64_t off;
	size_t s;

	if (xi == x->rootino) {
		*out = FSV_ROOT_INO;
		return 0;
	}
	if (xi < x->ident_lim && xi > FSV_ROOT_INO) {
		*out = xi;
		return 0;
	}
	/* only numbers of the geometry are numbered (and never 0, the
	 * table's empty mark): hostile metadata cannot fill the table
	 * with inodes that do not exist */
	if (!xi || inode_pos(x, xi, &off))
		return -EIO;
	if (x->cap) {
		for (s = slot_of(x, xi); x->keys[s]; s = (s + 1) & (x->cap - 1))
			if (x->keys[s] == xi) {
				*out = x->vals[s];
				return 0;
			}
	}
	if (x->n >= MAP_MAX || x->base + x->n > UINT32_MAX)
		return -EOVERFLOW;
	if ((x->n + 1) * 2 > x->cap && map_grow(x))
		return -ENOMEM;
	if (x->n == x->rev_cap) {
		size_t cap = x->rev_cap ? x->rev_cap * 2 : 1024;
		uint64_t *rev = realloc(x->rev, cap * sizeof(*rev));

		if (!rev)
			return -ENOMEM;
		x->rev = rev;
		x->rev_cap = cap;
	}
	for (s = slot_of(x, xi); x->keys[s]; s = (s + 1) & (x->cap - 1))
		;
	x->keys[s] = xi;
	x->vals[s] = (uint32_t)(x->base + x->n);
	x->rev[x->n] = xi;
	*out = x->base + x->n++;
	return 0;
}

/* The XFS inode of our number: 0 or -ENOENT. */
static int to_xfs(const struct fsv_xfs *x, uint64_t ino, uint64_t *out)
{
	if (ino == FSV_ROOT_INO)
		*out = x->rootino;
	else if (ino < x->ident_lim && ino > FSV_ROOT_INO)
		*out = ino;
	else if (ino >= x->base && ino - x->base < x->n)
		*out = x->rev[ino - x->base];
	else
		return -ENOENT;
	return 0;
}

/* ---- the inode core ---- */

static uint16_t be16(const uint8_t *p) { return (uint16_t)(p[0] << 8 | p[1]); }
static uint32_t be32(const uint8_t *p) { return (uint32_t)be16(p) << 16 | be16(p + 2); }
static uint64_t be64(const uint8_t *p) { return (uint64_t)be32(p) << 32 | be32(p + 4); }

static void timestamp(const uint8_t *p, bool big, int64_t *sec, uint32_t *ns)
{
	if (big) {
		/* nanoseconds since the old epoch's start, 1901-12-13 */
		uint64_t t = be64(p);

		*sec = (int64_t)(t / 1000000000u) - ((int64_t)1 << 31);
		*ns = (uint32_t)(t % 1000000000u);
	} else {
		*sec = (int32_t)be32(p);
		*ns = be32(p + 4);
		if (*ns >= 1000000000u)
			*ns = 0;
	}
}

static int inode_head(struct fsv_xfs *x, uint64_t xi, uint8_t c[8])
{
	uint64_t off;

	return inode_pos(x, xi, &off) || disk_read(&x->io, c, 8, off) ? -EIO : 0;
}

static int get_attr_xfs(struct fsv_xfs *x, uint64_t xi, uint64_t ours,
			struct fsv_attr *a)
{
	uint8_t c[CORE];
	uint64_t off;
	bool v3, big;

	if (inode_pos(x, xi, &off))
		return -ENOENT;
	if (disk_read(&x->io, c, CORE, off))
		return -EIO;
	if (be16(c) != 0x494e || (c[4] != 2 && c[4] != 3))
		return -EIO;             /* "IN", an inode of version 2 or 3 */
	v3 = c[4] == 3;
	if (v3 && be64(c + 152) != xi)
		return -EIO;             /* not the inode it says it is */
	if (!be16(c + 2))
		return -ENOENT;          /* free */
	big = v3 && (be64(c + 120) & DIFLAG2_BIGTIME);
	memset(a, 0, sizeof(*a));
	a->ino = ours;
	a->mode = be16(c + 2);
	a->uid = be32(c + 8);
	a->gid = be32(c + 12);
	a->nlink = be32(c + 16);
	timestamp(c + 32, big, &a->atime, &a->atime_ns);
	timestamp(c + 40, big, &a->mtime, &a->mtime_ns);
	timestamp(c + 48, big, &a->ctime, &a->ctime_ns);
	a->size = be64(c + 56);
	if (a->size > INT64_MAX)
		return -EIO;
	/* file system blocks (data, attributes, mapping btree) */
	a->blocks = be64(c + 64);
	if (a->blocks > (UINT64_MAX >> 16))
		return -EIO;
	a->blocks *= x->blocksize / 512;
	return 0;
}

static int get_attr(struct fsv_xfs *x, uint64_t ours, struct fsv_attr *a)
{
	uint64_t xi;

	if (to_xfs(x, ours, &xi))
		return -ENOENT;
	return get_attr_xfs(x, xi, ours, a);
}

/* ---- the volume ---- */

static unsigned log2_exact(uint64_t v)
{
	unsigned l = 0;

	while ((1ull << l) < v && l < 63)
		l++;
	return l;
}

static int read_super(struct fsv_xfs *x)
{
	uint8_t sb[256];
	uint64_t dblocks;
	unsigned shift;

	if (disk_read(&x->io, sb, sizeof(sb), 0) || memcmp(sb, "XFSB", 4))
		return -EINVAL;
	x->blocksize = be32(sb + 4);
	dblocks = be64(sb + 8);
	x->rootino = be64(sb + 56);
	x->agblocks = be32(sb + 84);
	x->agcount = be32(sb + 88);
	x->inodesize = be16(sb + 104);
	x->inopblog = sb[123];
	x->agblklog = sb[124];
	if (x->blocksize < 512 || x->blocksize > 65536 ||
	    (x->blocksize & (x->blocksize - 1)) || sb[120] != log2_exact(x->blocksize) ||
	    x->inodesize < 256 || x->inodesize > 2048 ||
	    (x->inodesize & (x->inodesize - 1)) || x->inodesize > x->blocksize ||
	    be16(sb + 106) != x->blocksize / x->inodesize ||
	    x->inopblog != log2_exact(x->blocksize / x->inodesize) ||
	    !x->agblocks || !x->agcount || x->agblklog != log2_exact(x->agblocks) ||
	    dblocks > (uint64_t)x->agcount * x->agblocks ||
	    (uint64_t)(x->agcount - 1) * x->agblocks >= dblocks ||
	    dblocks > x->io.size / x->blocksize || be16(sb + 102) < 512 ||
	    be16(sb + 102) > x->blocksize)
		return -EINVAL;
	x->io.fix_p = (uint64_t)x->agblocks * x->blocksize;
	x->io.fix_w = (uint32_t)x->io.fix_p;
	x->io.fix_n = x->agcount;
	x->io.fix_agi_off = 2u * be16(sb + 102);   /* 2 sectors in */
	shift = x->agblklog + x->inopblog;
	x->base = 3;
	if (shift <= 32 && ((uint64_t)x->agcount << shift) <= (1ull << 32)) {
		x->ident_lim = (uint64_t)x->agcount << shift;
		if (x->ident_lim > x->base)
			x->base = x->ident_lim;
	}
	return 0;
}

static void dir_free(struct dir_index *d)
{
	free(d->xino);
	free(d->noff);
	free(d->nlen);
	free(d->names);
	free(d->slots);
	memset(d, 0, sizeof(*d));
}

static void xfs_close(void *fs)
{
	struct fsv_xfs *x = fs;

	if (!x)
		return;
	for (int i = 0; i < NDIRS; i++)
		dir_free(&x->dirs[i]);
	if (x->file)
		libfsxfs_file_entry_free(&x->file, NULL);
	if (x->vol) {
		libfsxfs_volume_close(x->vol, NULL);
		libfsxfs_volume_free(&x->vol, NULL);
	}
	if (x->bfio)
		libbfio_handle_free(&x->bfio, NULL);
	free(x->keys);
	free(x->vals);
	free(x->rev);
	fsv_cache_free(x->io.cache);
	free(x);
}

static int xfs_open(uint64_t size, fsv_read_fn *rd, void *ctx, void **out)
{
	struct fsv_xfs *x = calloc(1, sizeof(*x));
	libfsxfs_error_t *lerr = NULL;
	int r, err = -EINVAL;

	if (!x)
		return -ENOMEM;
	x->io.size = size;
	err = fsv_cache_new(size, rd, ctx, &x->io.cache);
	if (err)
		goto fail;
	/* our own checks first: the library sees only a sane geometry */
	err = read_super(x);
	if (err)
		goto fail;
	err = -ENOMEM;
	if (libbfio_handle_initialize(&x->bfio, (intptr_t *)&x->io, NULL, NULL,
				      bio_open, bio_close, bio_read, bio_write,
				      bio_seek, bio_yes, bio_yes, bio_size,
				      LIBBFIO_FLAG_IO_HANDLE_NON_MANAGED, NULL) != 1)
		goto fail;
	if (libfsxfs_volume_initialize(&x->vol, &lerr) != 1)
		goto fail;
	err = -EINVAL;
	x->io.fix_on = x->io.fix_w != x->io.fix_p;
	r = libfsxfs_volume_open_file_io_handle(x->vol, x->bfio, LIBFSXFS_OPEN_READ,
						&lerr);
	x->io.fix_on = false;
	/* (an error it noted and went on from is freed too) */
	libfsxfs_error_free(&lerr);
	if (r != 1) {
		libfsxfs_volume_free(&x->vol, NULL);
		goto fail;
	}
	*out = x;
	return 0;
fail:
	libfsxfs_error_free(&lerr);
	xfs_close(x);
	return err;
}

/* The file entry of our inode ino, kept in *slot for the next call. */
static int entry(struct fsv_xfs *x, uint64_t ino, libfsxfs_file_entry_t **slot,
		 uint64_t *slot_ino, libfsxfs_file_entry_t **out)
{
	uint64_t xi;

	if (*slot && *slot_ino == ino) {
		*out = *slot;
		return 0;
	}
	if (to_xfs(x, ino, &xi))
		return -ENOENT;
	if (*slot)
		libfsxfs_file_entry_free(slot, NULL);
	if (libfsxfs_volume_get_file_entry_by_inode(x->vol, xi, slot, NULL) != 1) {
		*slot = NULL;
		return -EIO;
	}
	*slot_ino = ino;
	*out = *slot;
	return 0;
}

static int is_dir(struct fsv_xfs *x, uint64_t ino)
{
	struct fsv_attr a;
	int err = get_attr(x, ino, &a);

	return err ? err : S_ISDIR(a.mode) ? 0 : -ENOTDIR;
}

static uint32_t name_hash(const char *p, size_t len)
{
	uint32_t h = 2166136261u;     /* FNV-1a */

	while (len--)
		h = (h ^ (uint8_t)*p++) * 16777619u;
	return h;
}

/* The index of directory ino (ours), from the library: each entry's
 * name and inode number, once for as long as it stays among the NDIRS
 * last used. */
static int dir_load(struct fsv_xfs *x, uint64_t ino, struct dir_index **out)
{
	struct dir_index *d = &x->dirs[0];
	libfsxfs_file_entry_t *de = NULL;
	libfsxfs_error_t *lerr = NULL;
	size_t names_cap = 0, names_len = 0;
	int n = 0, err;
	uint64_t xi;

	for (int i = 0; i < NDIRS; i++) {
		if (x->dirs[i].ino == ino) {
			x->dirs[i].used = ++x->clock;
			*out = &x->dirs[i];
			return 0;
		}
		if (x->dirs[i].used < d->used)
			d = &x->dirs[i];
	}
	dir_free(d);
	err = is_dir(x, ino);
	if (err)
		return err;
	if (to_xfs(x, ino, &xi))
		return -ENOENT;
	if (libfsxfs_volume_get_file_entry_by_inode(x->vol, xi, &de, &lerr) != 1 ||
	    libfsxfs_file_entry_get_number_of_sub_file_entries(de, &n, &lerr) != 1) {
		err = -EIO;
		goto out;
	}
	err = -EIO;
	if (n < 0 || (unsigned)n > DIR_MAX)
		goto out;
	err = -ENOMEM;
	for (d->nslots = 16; d->nslots < 2 * (size_t)n; d->nslots *= 2)
		;
	d->xino = malloc(((size_t)n + 1) * sizeof(*d->xino));
	d->noff = malloc(((size_t)n + 1) * sizeof(*d->noff));
	d->nlen = malloc(((size_t)n + 1) * sizeof(*d->nlen));
	d->slots = calloc(d->nslots, sizeof(*d->slots));
	if (!d->xino || !d->noff || !d->nlen || !d->slots)
		goto out;
	for (int i = 0; i < n; i++) {
		libfsxfs_file_entry_t *e = NULL;
		uint8_t name[FSV_NAME_MAX + 1];
		size_t len = 0;
		uint64_t sub;
		int ok;

		if (libfsxfs_file_entry_get_sub_file_entry_by_index(de, i, &e, &lerr) != 1) {
			/* a broken inode: its name is left out */
			libfsxfs_error_free(&lerr);
			continue;
		}
		/* the name's UTF-8 bytes and a NUL, at most FSV_NAME_MAX */
		ok = libfsxfs_file_entry_get_utf8_name_size(e, &len, NULL) == 1 &&
		     len >= 2 && len <= sizeof(name) &&
		     libfsxfs_file_entry_get_utf8_name(e, name, len, NULL) == 1 &&
		     libfsxfs_file_entry_get_inode_number(e, &sub, NULL) == 1;
		libfsxfs_file_entry_free(&e, NULL);
		if (!ok)
			continue;
		len = strnlen((char *)name, len);
		if (!len || memchr(name, '/', len) || (len == 1 && name[0] == '.') ||
		    (len == 2 && name[0] == '.' && name[1] == '.'))
			continue;
		if (names_len + len > NAMES_MAX) {
			/* more than the parent would keep of the listing */
			err = -EIO;
			goto out;
		}
		if (names_len + len > names_cap) {
			size_t cap = names_cap ? names_cap * 2 : 4096;
			char *p = realloc(d->names, cap);

			if (!p)
				goto out;
			d->names = p;
			names_cap = cap;
		}
		memcpy(d->names + names_len, name, len);
		d->xino[d->n] = sub;
		d->noff[d->n] = (uint32_t)names_len;
		d->nlen[d->n] = (uint16_t)len;
		names_len += len;
		for (size_t s = name_hash((char *)name, len) & (d->nslots - 1); ;
		     s = (s + 1) & (d->nslots - 1))
			if (!d->slots[s]) {
				d->slots[s] = (uint32_t)d->n + 1;
				break;
			}
		d->n++;
	}
	d->ino = ino;
	d->used = ++x->clock;
	*out = d;
	err = 0;
out:
	libfsxfs_error_free(&lerr);
	if (de)
		libfsxfs_file_entry_free(&de, NULL);
	if (err)
		dir_free(d);
	return err;
}

static uint32_t dtype(uint32_t mode)
{
	switch (mode & S_IFMT) {
	case S_IFREG: return DT_REG;
	case S_IFDIR: return DT_DIR;
	case S_IFLNK: return DT_LNK;
	case S_IFCHR: return DT_CHR;
	case S_IFBLK: return DT_BLK;
	case S_IFIFO: return DT_FIFO;
	case S_IFSOCK: return DT_SOCK;
	}
	return DT_UNKNOWN;
}

/* The attributes of entry i of d, under our number. */
static int entry_attr(struct fsv_xfs *x, const struct dir_index *d, size_t i,
		      struct fsv_attr *a)
{
	uint64_t ours;
	int err = to_ours(x, d->xino[i], &ours);

	return err ? err : get_attr_xfs(x, d->xino[i], ours, a);
}

static int xfs_readdir(void *fs, uint64_t dir, uint64_t cookie,
		       struct fsv_dir_out *o, uint64_t *next)
{
	struct fsv_xfs *x = fs;
	struct dir_index *d;
	int err = dir_load(x, dir, &d);

	if (err)
		return err;
	*next = 0;
	for (uint64_t i = cookie; i < d->n; i++) {
		struct fsv_attr a;
		uint64_t ours;
		bool has;

		err = to_ours(x, d->xino[i], &ours);
		if (err == -ENOMEM || err == -EOVERFLOW)
			return err;
		if (err)
			continue;            /* inode 0: left out */
		/* a broken inode: named, without attributes (they answer EIO) */
		has = !get_attr_xfs(x, d->xino[i], ours, &a);
		if (!fsv_emit(o, ours, has ? dtype(a.mode) : DT_UNKNOWN,
			      d->names + d->noff[i], d->nlen[i],
			      has ? &a : NULL)) {
			*next = i;
			break;
		}
	}
	return 0;
}

static int xfs_getattr(void *fs, uint64_t ino, struct fsv_attr *a)
{
	return get_attr(fs, ino, a);
}

static int xfs_lookup(void *fs, uint64_t dir, const char *name, size_t len,
		      struct fsv_attr *a)
{
	struct fsv_xfs *x = fs;
	struct dir_index *d;
	int err = dir_load(x, dir, &d);

	if (err)
		return err;
	for (size_t s = name_hash(name, len) & (d->nslots - 1); d->slots[s];
	     s = (s + 1) & (d->nslots - 1)) {
		uint32_t i = d->slots[s] - 1;

		if (d->nlen[i] == len && !memcmp(d->names + d->noff[i], name, len))
			return entry_attr(x, d, i, a);
	}
	return -ENOENT;
}

static int xfs_read(void *fs, uint64_t ino, uint64_t off, char *out,
		    uint32_t len, size_t *got)
{
	struct fsv_xfs *x = fs;
	libfsxfs_file_entry_t *f;
	struct fsv_attr a;
	size_t done = 0;
	int err = get_attr(x, ino, &a);

	if (!err && !S_ISREG(a.mode))
		err = -EINVAL;
	if (!err)
		err = entry(x, ino, &x->file, &x->file_ino, &f);
	if (err)
		return err;
	if (off > INT64_MAX)
		return -EINVAL;
	while (done < len) {
		ssize_t r = libfsxfs_file_entry_read_buffer_at_offset(
			f, (uint8_t *)out + done, len - done, (off64_t)(off + done), NULL);

		if (r < 0)
			return -EIO;
		if (!r)
			break;
		if ((size_t)r > len - done)
			return -EIO;
		done += (size_t)r;
	}
	*got = done;
	return 0;
}

/* A v5 symlink held in blocks: each extent starts with a 56-byte
 * header ("XSLM", the offset and length of the target's bytes it
 * holds) that libfsxfs 20201117 does not strip, so the extents in the
 * inode's data fork are read here (at most 3 of them, as the kernel
 * writes; a target is at most 1024 bytes). */
static int remote_link(struct fsv_xfs *x, uint64_t xi, uint64_t size, char *out)
{
	uint8_t c[CORE + 3 * 16], *buf;
	uint32_t next, got = 0;
	uint64_t off;
	int err = -EIO;

	if (inode_pos(x, xi, &off) || disk_read(&x->io, c, CORE, off))
		return -EIO;
	next = be32(c + 76);
	if (!next || next > 3 || CORE + next * 16 > x->inodesize ||
	    disk_read(&x->io, c + CORE, next * 16, off + CORE))
		return -EIO;
	buf = malloc(FSV_LINK_MAX + 56);
	if (!buf)
		return -ENOMEM;
	memset(out, 0, size);     /* overlapping extents leave no stale bytes */
	for (uint32_t e = 0; e < next; e++) {
		const uint8_t *r = c + CORE + e * 16;
		uint64_t l0 = be64(r), l1 = be64(r + 8);
		uint64_t fsb = (l0 & 0x1ff) << 43 | l1 >> 21;
		uint64_t ag = fsb >> x->agblklog, agb = fsb & ((1ull << x->agblklog) - 1);
		uint64_t bytes = (l1 & 0x1fffff) * x->blocksize;
		uint32_t so, sb;

		if (ag >= x->agcount || agb >= x->agblocks || bytes <= 56)
			goto out;
		if (bytes > FSV_LINK_MAX + 56)
			bytes = FSV_LINK_MAX + 56;
		if (disk_read(&x->io, buf, (size_t)bytes, (ag * x->agblocks + agb) * x->blocksize))
			goto out;
		so = be32(buf + 4);
		sb = be32(buf + 8);
		if (be32(buf) != 0x58534c4d || sb > bytes - 56 || so > size || sb > size - so)
			goto out;
		memcpy(out + so, buf + 56, sb);
		got += sb;
	}
	err = got == size ? 0 : -EIO;
out:
	free(buf);
	return err;
}

static int xfs_readlink(void *fs, uint64_t ino, char *out, size_t *len)
{
	struct fsv_xfs *x = fs;
	libfsxfs_file_entry_t *e;
	struct fsv_attr a;
	uint8_t c[8];
	uint64_t xi;
	size_t n = 0;
	int err = get_attr(x, ino, &a);

	if (!err && !S_ISLNK(a.mode))
		err = -EINVAL;
	if (!err && a.size > FSV_LINK_MAX)
		err = -ENAMETOOLONG;
	if (!err && (to_xfs(x, ino, &xi) || !a.size))
		err = -EIO;
	if (err)
		return err;
	if (inode_head(x, xi, c))
		return -EIO;
	if (c[4] == 3 && c[5] == 2) {       /* v3, extents */
		*len = a.size;
		return remote_link(x, xi, a.size, out);
	}
	err = entry(x, ino, &x->file, &x->file_ino, &e);
	if (err)
		return err;
	/* the library's string, NUL-terminated, at most the link's size
	 * plus the NUL (a target is bytes, at most 1024 of them in XFS) */
	if (libfsxfs_file_entry_get_utf8_symbolic_link_target_size(e, &n, NULL) != 1 ||
	    !n || n > FSV_LINK_MAX ||
	    libfsxfs_file_entry_get_utf8_symbolic_link_target(e, (uint8_t *)out, n,
							      NULL) != 1)
		return -EIO;
	*len = strnlen(out, n);
	return 0;
}

const struct fsv_parser fsv_parser_xfs = {
	.type = "xfs",
	.open = xfs_open,
	.close = xfs_close,
	.getattr = xfs_getattr,
	.lookup = xfs_lookup,
	.readdir = xfs_readdir,
	.readlink = xfs_readlink,
	.read = xfs_read,
};

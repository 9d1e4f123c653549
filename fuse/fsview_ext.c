/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * ext2/3/4 for the confined child, with e2fsprogs' libext2fs (what
 * debugfs and fuse2fs use), opened read-only, the journal not replayed.
 * Its disk is an io_manager of ours that reads through the parent (see
 * include/xbd/sandbox.h), through fsview_cache.c: libext2fs reads a
 * block at a time (inode tables, directories, file data), and each miss
 * is a round trip through the parent.
 */
#include "fuse/fsview.h"
#include "fuse/fsview_cache.h"
#include "xbd/sandbox.h"

#include <dirent.h>
#include <errno.h>
#include <stdbool.h>
#include <ext2fs/ext2fs.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

struct fsv_ext {
	ext2_filsys fs;
	uint64_t size;
	struct fsv_cache *cache;
	ext2_file_t file;         /* the last file read, kept open */
	ext2_ino_t file_ino;
};

/* libext2fs opens its io channel by name: the one being opened. */
static struct fsv_ext *opening;

static errcode_t raw_read(struct fsv_ext *e, void *buf, size_t len, uint64_t off)
{
	return fsv_cache_read(e->cache, buf, len, off) ? EXT2_ET_SHORT_READ : 0;
}

static errcode_t io_open(const char *name, int flags, io_channel *channel)
{
	io_channel io;
	errcode_t err;

	(void)name;
	if (!opening || (flags & IO_FLAG_RW))
		return EXT2_ET_BAD_DEVICE_NAME;
	err = ext2fs_get_memzero(sizeof(*io), &io);
	if (err)
		return err;
	io->magic = EXT2_ET_MAGIC_IO_CHANNEL;
	io->manager = NULL; /* set by the caller below */
	io->block_size = 1024;
	io->refcount = 1;
	io->private_data = opening;
	*channel = io;
	return 0;
}

static errcode_t io_close(io_channel io)
{
	if (--io->refcount > 0)
		return 0;
	ext2fs_free_mem(&io);
	return 0;
}

static errcode_t io_set_blksize(io_channel io, int blksize)
{
	if (blksize <= 0 || blksize > 65536)
		return EXT2_ET_INVALID_ARGUMENT;
	io->block_size = blksize;
	return 0;
}

static errcode_t io_read64(io_channel io, unsigned long long block, int count,
			   void *data)
{
	struct fsv_ext *e = io->private_data;
	uint64_t len = count < 0 ? (uint64_t)-(long long)count
				 : (uint64_t)count * (uint64_t)io->block_size;

	if (block > UINT64_MAX / (uint64_t)io->block_size || len > (64u << 20))
		return EXT2_ET_SHORT_READ;
	return raw_read(e, data, len, block * (uint64_t)io->block_size);
}

static errcode_t io_read(io_channel io, unsigned long block, int count, void *data)
{
	return io_read64(io, block, count, data);
}

static errcode_t io_write(io_channel io, unsigned long block, int count,
			  const void *data)
{
	(void)io; (void)block; (void)count; (void)data;
	return EXT2_ET_RO_FILSYS;
}

static errcode_t io_write64(io_channel io, unsigned long long block, int count,
			    const void *data)
{
	(void)io; (void)block; (void)count; (void)data;
	return EXT2_ET_RO_FILSYS;
}

static errcode_t io_flush(io_channel io)
{
	(void)io;
	return 0;
}

static struct struct_io_manager xbd_io_manager = {
	.magic = EXT2_ET_MAGIC_IO_MANAGER,
	.name = "xbd sandbox",
	.open = io_open,
	.close = io_close,
	.set_blksize = io_set_blksize,
	.read_blk = io_read,
	.write_blk = io_write,
	.flush = io_flush,
	.read_blk64 = io_read64,
	.write_blk64 = io_write64,
};

static errcode_t io_open_set(const char *name, int flags, io_channel *channel)
{
	errcode_t err = io_open(name, flags, channel);

	if (!err)
		(*channel)->manager = &xbd_io_manager;
	return err;
}

static int ext_open(uint64_t size, fsv_read_fn *rd, void *ctx, void **out)
{
	struct fsv_ext *e = calloc(1, sizeof(*e));
	errcode_t err;

	if (!e)
		return -ENOMEM;
	e->size = size;
	if (fsv_cache_new(size, rd, ctx, &e->cache)) {
		free(e);
		return -ENOMEM;
	}
	xbd_io_manager.open = io_open_set;
	opening = e;
	err = ext2fs_open2("xbd", NULL, EXT2_FLAG_64BITS | EXT2_FLAG_IGNORE_CSUM_ERRORS,
			   0, 0, &xbd_io_manager, &e->fs);
	opening = NULL;
	if (err) {
		fsv_cache_free(e->cache);
		free(e);
		return -EINVAL;
	}
	*out = e;
	return 0;
}

static void ext_close(void *fs)
{
	struct fsv_ext *e = fs;

	if (!e)
		return;
	if (e->file)
		ext2fs_file_close(e->file);
	ext2fs_close_free(&e->fs);
	fsv_cache_free(e->cache);
	free(e);
}

static int ino_ok(struct fsv_ext *e, uint64_t ino)
{
	return ino >= 1 && ino <= e->fs->super->s_inodes_count;
}

static int get_attr(struct fsv_ext *e, uint64_t ino, struct fsv_attr *a)
{
	struct ext2_inode_large in;

	if (!ino_ok(e, ino))
		return -ENOENT;
	memset(&in, 0, sizeof(in));
	if (ext2fs_read_inode_full(e->fs, (ext2_ino_t)ino, (struct ext2_inode *)&in,
				   sizeof(in)))
		return -EIO;
	if (!in.i_links_count && !in.i_mode)
		return -ENOENT;
	memset(a, 0, sizeof(*a));
	a->ino = ino;
	a->mode = in.i_mode;
	a->nlink = in.i_links_count;
	a->uid = inode_uid(in);
	a->gid = inode_gid(in);
	a->size = EXT2_I_SIZE(&in);
	a->blocks = ext2fs_get_stat_i_blocks(e->fs, (struct ext2_inode *)&in);
	a->atime = (int32_t)in.i_atime;
	a->mtime = (int32_t)in.i_mtime;
	a->ctime = (int32_t)in.i_ctime;
	if (EXT2_INODE_SIZE(e->fs->super) > EXT2_GOOD_OLD_INODE_SIZE &&
	    in.i_extra_isize >= 16) {
		/* the low two bits extend the seconds past 2038 */
		a->ctime += (int64_t)(in.i_ctime_extra & 3) << 32;
		a->mtime += (int64_t)(in.i_mtime_extra & 3) << 32;
		a->atime += (int64_t)(in.i_atime_extra & 3) << 32;
		a->ctime_ns = in.i_ctime_extra >> 2;
		a->mtime_ns = in.i_mtime_extra >> 2;
		a->atime_ns = in.i_atime_extra >> 2;
	}
	return 0;
}

struct rd_ctx {
	struct fsv_ext *e;
	struct fsv_dir_out *o;
	uint64_t skip, idx;
	bool full;
};

static int dir_cb(ext2_ino_t dir, int entry, struct ext2_dir_entry *d, int offset,
		  int blocksize, char *buf, void *priv)
{
	struct rd_ctx *c = priv;
	unsigned len = ext2fs_dirent_name_len(d);
	static const uint32_t types[] = {
		[EXT2_FT_REG_FILE] = DT_REG, [EXT2_FT_DIR] = DT_DIR,
		[EXT2_FT_CHRDEV] = DT_CHR, [EXT2_FT_BLKDEV] = DT_BLK,
		[EXT2_FT_FIFO] = DT_FIFO, [EXT2_FT_SOCK] = DT_SOCK,
		[EXT2_FT_SYMLINK] = DT_LNK,
	};
	int ft = ext2fs_dirent_file_type(d);
	struct fsv_attr at;
	bool has_attr;

	(void)dir; (void)entry; (void)offset; (void)blocksize; (void)buf;
	if (!d->inode || (len == 1 && d->name[0] == '.') ||
	    (len == 2 && d->name[0] == '.' && d->name[1] == '.'))
		return 0;
	if (c->idx < c->skip) {
		c->idx++;
		return 0;
	}
	/* the attributes too: one request for what `ls -l` and find need */
	has_attr = get_attr(c->e, d->inode, &at) == 0;
	if (!fsv_emit(c->o, d->inode,
		      ft > 0 && ft < (int)(sizeof(types) / sizeof(types[0])) ?
		      types[ft] : DT_UNKNOWN, d->name, len, has_attr ? &at : NULL)) {
		c->full = true;
		return DIRENT_ABORT;
	}
	c->idx++;
	return 0;
}

static int ext_readdir(void *fs, uint64_t dir, uint64_t cookie,
		       struct fsv_dir_out *o, uint64_t *next)
{
	struct fsv_ext *e = fs;
	struct rd_ctx c = { .e = e, .o = o, .skip = cookie };

	if (!ino_ok(e, dir))
		return -ENOENT;
	if (ext2fs_check_directory(e->fs, (ext2_ino_t)dir))
		return -ENOTDIR;
	if (ext2fs_dir_iterate2(e->fs, (ext2_ino_t)dir, 0, NULL, dir_cb, &c))
		return -EIO;
	*next = c.full ? c.idx : 0;
	return 0;
}

static int ext_getattr(void *fs, uint64_t ino, struct fsv_attr *a)
{
	return get_attr(fs, ino, a);
}

static int ext_lookup(void *fs, uint64_t dir, const char *name, size_t len,
		      struct fsv_attr *a)
{
	struct fsv_ext *e = fs;
	ext2_ino_t ino;

	if (!ino_ok(e, dir))
		return -ENOENT;
	if (ext2fs_lookup(e->fs, (ext2_ino_t)dir, name, (int)len, NULL, &ino))
		return -ENOENT;
	return get_attr(e, ino, a);
}

static int ext_read(void *fs, uint64_t ino, uint64_t off, char *out,
		    uint32_t len, size_t *got)
{
	struct fsv_ext *e = fs;
	unsigned int n = 0;

	if (!ino_ok(e, ino))
		return -ENOENT;
	if (!e->file || e->file_ino != ino) {
		if (e->file)
			ext2fs_file_close(e->file);
		e->file = NULL;
		if (ext2fs_file_open(e->fs, (ext2_ino_t)ino, 0, &e->file))
			return -EIO;
		e->file_ino = (ext2_ino_t)ino;
	}
	if (ext2fs_file_llseek(e->file, off, EXT2_SEEK_SET, NULL) ||
	    ext2fs_file_read(e->file, out, len, &n))
		return -EIO;
	*got = n;
	return 0;
}

static int ext_map(void *fs, uint64_t ino, uint64_t off, uint32_t len,
		   struct fsv_extent *out, unsigned max, unsigned *n, uint64_t *size)
{
	struct fsv_ext *e = fs;
	struct ext2_inode in;
	unsigned bs = e->fs->blocksize;
	uint64_t end;
	unsigned k = 0;

	*n = 0;
	if (!ino_ok(e, ino) || ext2fs_read_inode(e->fs, (ext2_ino_t)ino, &in))
		return -ENOENT;
	if (!LINUX_S_ISREG(in.i_mode))
		return -EINVAL;
	if (in.i_flags & EXT4_INLINE_DATA_FL)
		return -EOPNOTSUPP;
	*size = EXT2_I_SIZE(&in);
	if (off >= *size)
		return 0;
	end = *size - off < len ? *size : off + len;
	while (off < end) {
		blk64_t pblk = 0;
		int flags = 0;
		uint64_t in_blk = off % bs, take = bs - in_blk;
		bool zero;

		if (take > end - off)
			take = end - off;
		if (off / bs > 0xffffffffu ||
		    ext2fs_bmap2(e->fs, (ext2_ino_t)ino, &in, NULL, 0, off / bs,
				 &flags, &pblk))
			return -EIO;
		if (pblk >= ext2fs_blocks_count(e->fs->super))
			return -EIO;
		zero = !pblk || (flags & BMAP_RET_UNINIT);
		if (k && out[k - 1].zero == zero &&
		    (zero || out[k - 1].phys + out[k - 1].len == pblk * bs + in_blk)) {
			out[k - 1].len += take;
		} else {
			if (k == max)
				break;
			out[k++] = (struct fsv_extent){ .off = off, .len = take,
				.phys = zero ? 0 : pblk * bs + in_blk, .zero = zero };
		}
		off += take;
	}
	*n = k;
	return 0;
}

static int ext_readlink(void *fs, uint64_t ino, char *out, size_t *len)
{
	struct fsv_ext *e = fs;
	struct ext2_inode in;
	uint64_t size;

	if (!ino_ok(e, ino) || ext2fs_read_inode(e->fs, (ext2_ino_t)ino, &in))
		return -ENOENT;
	if (!LINUX_S_ISLNK(in.i_mode))
		return -EINVAL;
	size = EXT2_I_SIZE(&in);
	if (size > FSV_LINK_MAX)
		return -ENAMETOOLONG;
	if (ext2fs_is_fast_symlink(&in)) {
		if (size > sizeof(in.i_block))
			return -EIO;
		memcpy(out, in.i_block, size);
		*len = size;
		return 0;
	}
	if (in.i_flags & EXT4_INLINE_DATA_FL) {
		size_t n = FSV_LINK_MAX;
		char tmp[FSV_LINK_MAX + 64];

		if (ext2fs_inline_data_size(e->fs, (ext2_ino_t)ino, &n) || n > sizeof(tmp) ||
		    ext2fs_inline_data_get(e->fs, (ext2_ino_t)ino, &in, tmp, &n))
			return -EIO;
		*len = n < size ? n : size;
		memcpy(out, tmp, *len);
		return 0;
	}
	return ext_read(e, ino, 0, out, (uint32_t)size, len);
}

const struct fsv_parser fsv_parser_ext = {
	.type = "ext4",
	.open = ext_open,
	.close = ext_close,
	.getattr = ext_getattr,
	.lookup = ext_lookup,
	.readdir = ext_readdir,
	.readlink = ext_readlink,
	.read = ext_read,
	.map = ext_map,
};

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A read cache of aligned chunks for a confined parser's volume: the
 * libraries read metadata a record or a block at a time, and each miss
 * is a round trip through the parent.  One for every parser:
 * direct-mapped, with read-ahead when the misses come in order.
 */
#include "fuse/fsview_cache.h"
#include "xbd/sandbox.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define CHUNK (32u << 10)
#define NCHUNKS 512              /* 16 MiB */
#define READAHEAD_CHUNKS 16      /* 512 KiB at once when reading in order */

struct fsv_cache {
	uint64_t size;
	fsv_read_fn *rd;
	void *ctx;
	char *mem;                /* NCHUNKS chunks of CHUNK bytes */
	uint64_t tag[NCHUNKS];    /* chunk number + 1 held in each; 0: none */
	uint64_t last_miss;       /* the chunk after the last one fetched */
};

int fsv_cache_new(uint64_t size, fsv_read_fn *rd, void *ctx, struct fsv_cache **out)
{
	struct fsv_cache *c = calloc(1, sizeof(*c));

	if (!c)
		return -ENOMEM;
	c->mem = malloc((size_t)NCHUNKS * CHUNK);
	if (!c->mem) {
		free(c);
		return -ENOMEM;
	}
	c->size = size;
	c->rd = rd;
	c->ctx = ctx;
	*out = c;
	return 0;
}

void fsv_cache_free(struct fsv_cache *c)
{
	if (!c)
		return;
	free(c->mem);
	free(c);
}

/* Chunk number n, from the cache or the parent (the volume's last
 * chunk may be shorter). */
static const char *chunk(struct fsv_cache *c, uint64_t n, int *err)
{
	unsigned slot = (unsigned)(n % NCHUNKS), k = 1;
	char *p = c->mem + (size_t)slot * CHUNK;
	uint64_t off = n * CHUNK;
	size_t len;

	if (c->tag[slot] == n + 1)
		return p;
	if (c->last_miss == n && n)
		k = READAHEAD_CHUNKS;
	if (k > NCHUNKS - slot)
		k = NCHUNKS - slot;
	len = c->size - off < (uint64_t)k * CHUNK ? (size_t)(c->size - off) : (size_t)k * CHUNK;
	k = (unsigned)((len + CHUNK - 1) / CHUNK);
	for (unsigned i = 0; i < k; i++)
		c->tag[slot + i] = 0;
	*err = c->rd(c->ctx, p, len, off);
	if (*err)
		return NULL;
	for (unsigned i = 0; i < k; i++)
		c->tag[slot + i] = n + i + 1;
	c->last_miss = n + k;
	return p;
}

int fsv_cache_read(struct fsv_cache *c, void *buf, size_t len, uint64_t off)
{
	char *p = buf;
	int err = 0;

	if (off > c->size || len > c->size - off)
		return -EIO;
	if (len > 4 * CHUNK) {
		/* file data, mostly: straight through, in messages that fit */
		while (len && !err) {
			size_t n = len > XBD_SB_MAX ? XBD_SB_MAX : len;

			err = c->rd(c->ctx, p, n, off);
			p += n;
			off += n;
			len -= n;
		}
		return err;
	}
	while (len) {
		size_t in = (size_t)(off % CHUNK), n = CHUNK - in < len ? CHUNK - in : len;
		const char *src = chunk(c, off / CHUNK, &err);

		if (!src)
			return err;
		memcpy(p, src + in, n);
		p += n;
		off += n;
		len -= n;
	}
	return 0;
}

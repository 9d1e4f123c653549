/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A read cache over a confined parser's fsv_read_fn (fuse/fsview.h):
 * small reads are served from aligned chunks fetched from the parent,
 * large ones pass straight through.
 */
#ifndef XBD_FUSE_FSVIEW_CACHE_H
#define XBD_FUSE_FSVIEW_CACHE_H

#include "fuse/fsview.h"

struct fsv_cache;

/* A cache of the volume of size bytes that rd reads: 0 or -ENOMEM. */
int fsv_cache_new(uint64_t size, fsv_read_fn *rd, void *ctx, struct fsv_cache **out);
void fsv_cache_free(struct fsv_cache *c);
/* len bytes at off, all inside the volume: 0 or negative errno. */
int fsv_cache_read(struct fsv_cache *c, void *buf, size_t len, uint64_t off);

#endif

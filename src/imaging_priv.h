/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Inside the imaging code: the E01 chunk compressor (src/imaging_ewf.c)
 * that src/imaging_out.c writes through, and libewf's error line.
 */
#ifndef XBD_IMAGING_PRIV_H
#define XBD_IMAGING_PRIV_H

#include <libewf.h>
#include <stddef.h>
#include <stdint.h>

/* One line "NAME: WHAT: cause" for a libewf failure; frees e (may be
 * NULL).  -EIO. */
int xbd_ewf_fail(const char *what, const char *name, libewf_error_t **e);

/* Media data cut into the handle's chunks, each packed (deflated, or
 * kept with its Adler-32 when deflate does not shrink it) as
 * libewf_handle_prepare_write_chunk would, on worker threads, and
 * written in order with libewf_handle_write_chunk from the thread that
 * calls _write and _flush.  level and flags: libewf's compression
 * values (LIBEWF_COMPRESSION_*, LIBEWF_COMPRESS_FLAG_*), set on the
 * handle as well.  workers: 0 for one per online CPU.  name: for error
 * lines. */
struct xbd_ewf_chunker;
int xbd_ewf_chunker_new(libewf_handle_t *h, const char *name, int8_t level,
			uint8_t flags, unsigned workers, struct xbd_ewf_chunker **out);
/* The next len bytes of media data. */
int xbd_ewf_chunker_write(struct xbd_ewf_chunker *c, const void *buf, size_t len);
/* Packs and writes what is left (the last chunk may be short). */
int xbd_ewf_chunker_flush(struct xbd_ewf_chunker *c);
/* Stops the workers; NULL: no-op. */
void xbd_ewf_chunker_free(struct xbd_ewf_chunker *c);
/* How many workers it runs. */
unsigned xbd_ewf_chunker_workers(const struct xbd_ewf_chunker *c);

#endif

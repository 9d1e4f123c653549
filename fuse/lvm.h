/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * LVM2 in user space: the guest's logical volumes as files of the
 * export.  lvm_meta.c reads the on-disk labels and text metadata (in a
 * confined child, src/sandbox.c); lvm.c checks its answer and maps
 * reads of a volume onto its physical volumes.
 */
#ifndef XBD_FUSE_LVM_H
#define XBD_FUSE_LVM_H

#include "xbd/sandbox.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define LVM_MAX_SRC 16        /* physical volumes of one disk we look at */
#define LVM_MAX_LV 256
#define LVM_MAX_SEG 1024      /* segments of all volumes together */
#define LVM_MAX_STRIPES 16
#define LVM_NAME_MAX 127      /* as lvm2's NAME_LEN - 1 */
#define LVM_TEXT_MAX (1u << 20)

/* The child's answer, as sent: struct lvm_reply_hdr, nlv struct lvm_lv,
 * nseg struct lvm_seg.  All in bytes. */
struct lvm_reply_hdr {
	uint32_t nlv, nseg;
};

struct lvm_lv {
	char vg[LVM_NAME_MAX + 1];
	char name[LVM_NAME_MAX + 1];
	uint64_t size;
};

struct lvm_stripe {
	uint32_t src;         /* which physical volume the parent gave */
	uint32_t pad;
	uint64_t off;         /* byte offset on it */
};

struct lvm_seg {
	uint32_t lv;          /* index into the volumes */
	uint32_t nstripes;
	uint64_t lv_off, len;
	uint64_t stripe_size; /* bytes; 0 with one stripe */
	struct lvm_stripe stripe[LVM_MAX_STRIPES];
};

/* Whether a sector-0..3 sample holds an LVM2 label (its fixed magic). */
bool lvm_has_label(const void *first_2k, size_t len);

/* The child's work: reads the labels and metadata of sources
 * 0..nsrc-1 with rd and builds the reply (malloc'd) in *out.  0 or
 * negative errno; bounded whatever the disk holds. */
int lvm_parse(xbd_sandbox_read_fn *rd, void *ctx, uint32_t nsrc,
	      const uint64_t *src_size, void **out, size_t *out_len);

/* The parent's check of a reply against the sources' sizes: 0 or
 * -EPROTO. */
int lvm_reply_check(const void *reply, size_t len, uint32_t nsrc,
		    const uint64_t *src_size);

#endif

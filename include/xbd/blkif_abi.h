/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The two on-ring layouts of blkif.  <xen/io/blkif.h> gives the native
 * (x86_64) one; the x86_32 layout differs only in alignment (64-bit
 * fields are 4-byte aligned on i386), which #pragma pack(4) reproduces.
 * A frontend that writes no `protocol` node is assumed to be x86_32, as
 * Linux blkback does on x86.
 */
#ifndef XBD_BLKIF_ABI_H
#define XBD_BLKIF_ABI_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

/* <xen/io/ring.h> needs these before it is included: C11 fences stand
 * in for the hypervisor's barriers (ring/blkif_ring.c says what each of
 * its own uses orders). */
#ifndef __XEN_INTERFACE_VERSION__
#define __XEN_INTERFACE_VERSION__ 0x00040e00
#endif
#define xen_mb() atomic_thread_fence(memory_order_seq_cst)
#define xen_rmb() atomic_thread_fence(memory_order_acquire)
#define xen_wmb() atomic_thread_fence(memory_order_release)

#include <xen/xen.h>
#include <xen/grant_table.h>
#include <xen/io/ring.h>
#include <xen/io/blkif.h>
#include <xen/io/protocols.h>

#if !defined(__x86_64__)
#error "xbd's native blkif ABI is x86_64"
#endif

#pragma pack(push, 4)
struct blkif_x86_32_request {
	uint8_t operation;
	uint8_t nr_segments;
	blkif_vdev_t handle;
	uint64_t id;
	blkif_sector_t sector_number;
	struct blkif_request_segment seg[BLKIF_MAX_SEGMENTS_PER_REQUEST];
};
struct blkif_x86_32_request_discard {
	uint8_t operation;
	uint8_t flag;
	blkif_vdev_t handle;
	uint64_t id;
	blkif_sector_t sector_number;
	uint64_t nr_sectors;
};
struct blkif_x86_32_request_indirect {
	uint8_t operation;
	uint8_t indirect_op;
	uint16_t nr_segments;
	uint64_t id;
	blkif_sector_t sector_number;
	blkif_vdev_t handle;
	uint16_t _pad1;
	grant_ref_t indirect_grefs[BLKIF_MAX_INDIRECT_PAGES_PER_REQUEST];
	uint64_t _pad2;
};
struct blkif_x86_32_response {
	uint64_t id;
	uint8_t operation;
	int16_t status;
};
#pragma pack(pop)

DEFINE_RING_TYPES(blkif_x86_32, struct blkif_x86_32_request,
		  struct blkif_x86_32_response);

/* The layouts the protocol documents; a compiler that disagrees must not
 * build xbd. */
_Static_assert(sizeof(struct blkif_request) == 112, "x86_64 request");
_Static_assert(offsetof(struct blkif_request, id) == 8, "x86_64 id");
_Static_assert(offsetof(struct blkif_request, seg) == 24, "x86_64 segs");
_Static_assert(sizeof(struct blkif_response) == 16, "x86_64 response");
_Static_assert(offsetof(struct blkif_request_indirect, indirect_grefs) == 28,
	       "x86_64 indirect grefs");
_Static_assert(offsetof(struct blkif_request_discard, nr_sectors) == 24,
	       "x86_64 discard");
_Static_assert(sizeof(struct blkif_x86_32_request) == 108, "x86_32 request");
_Static_assert(offsetof(struct blkif_x86_32_request, id) == 4, "x86_32 id");
_Static_assert(offsetof(struct blkif_x86_32_request, seg) == 20, "x86_32 segs");
_Static_assert(sizeof(struct blkif_x86_32_response) == 12, "x86_32 response");
_Static_assert(offsetof(struct blkif_x86_32_response, status) == 10,
	       "x86_32 status");
_Static_assert(offsetof(struct blkif_x86_32_request_indirect, indirect_grefs) == 24,
	       "x86_32 indirect grefs");
_Static_assert(offsetof(struct blkif_x86_32_request_discard, nr_sectors) == 20,
	       "x86_32 discard");
_Static_assert(sizeof(struct blkif_request_segment) == 8, "segment");
_Static_assert(offsetof(struct blkif_sring, ring) == 64, "ring header");

/* Segment descriptors per indirect page (same layout in both ABIs). */
#define XBD_SEGS_PER_INDIRECT_PAGE \
	(4096u / sizeof(struct blkif_request_segment))

#endif

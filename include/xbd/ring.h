/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The blkif ring, one implementation for both roles.
 *
 * The backend takes each request off the shared ring exactly once into a
 * local, validated struct xbd_blkif_request; the frontend writes requests
 * from that same local form and takes each response off the ring once.
 * Notification follows the event-index protocol of <xen/io/ring.h>, with
 * the final-check tail before either side sleeps.  Event channels are not
 * touched here: push/final-check functions say whether to notify or
 * whether more work is waiting, and the caller acts on it.
 *
 * A ring is driven by one thread at a time per direction: callers
 * serialise request consumption and response production.
 */
#ifndef XBD_RING_H
#define XBD_RING_H

#include <stdbool.h>
#include <stdint.h>

#include "xbd/blkif_abi.h"

#define XBD_RING_MAX_ORDER 4          /* 16 pages, 512 entries */
#define XBD_RING_MAX_PAGES (1u << XBD_RING_MAX_ORDER)
#define XBD_BLKIF_MAX_SEGS 11         /* direct request */
#define XBD_BLKIF_MAX_INDIRECT_PAGES 8
#define XBD_BLKIF_SEGS_PER_INDIRECT_PAGE 512
#define XBD_BLKIF_MAX_INDIRECT_SEGS \
	(XBD_BLKIF_MAX_INDIRECT_PAGES * XBD_BLKIF_SEGS_PER_INDIRECT_PAGE)


enum xbd_blkif_abi {
	XBD_BLKIF_ABI_X86_64,
	XBD_BLKIF_ABI_X86_32,
};

/* `protocol` node value (NULL when absent) -> ABI. Absent means x86_32,
 * as Linux blkback assumes on x86.  -EINVAL for an unknown protocol. */
int xbd_blkif_abi_from_protocol(const char *protocol, enum xbd_blkif_abi *abi);
const char *xbd_blkif_abi_protocol(enum xbd_blkif_abi abi);

struct xbd_blkif_seg {
	uint32_t gref;
	uint8_t first_sect; /* 512-byte sectors inside the 4 KiB page */
	uint8_t last_sect;  /* inclusive, <= 7 */
};

/* What the backend advertised; requests are checked against it. */
struct xbd_blkif_limits {
	uint64_t nr_sectors;            /* disk size, 512-byte sectors */
	unsigned sector_size;           /* 512 or 4096 */
	bool read_only;
	bool flush;                     /* feature-flush-cache */
	bool barrier;                   /* feature-barrier */
	bool discard;                   /* feature-discard */
	unsigned max_indirect_segments; /* 0: no indirect descriptors */
};

/* One request in local form.  For the backend, `status` says whether it
 * passed validation: anything but BLKIF_RSP_OKAY is the status to
 * answer with, at once. */
struct xbd_blkif_request {
	uint64_t id;
	uint8_t op;          /* effective op (an indirect request's indirect_op) */
	uint8_t ring_op;     /* the operation byte as found on the ring */
	bool indirect;
	bool discard_secure;
	int16_t status;
	uint16_t handle;
	uint64_t sector;     /* 512-byte units, always */
	uint64_t nr_sectors; /* total; known after segments are read */
	uint32_t nr_segments;
	unsigned nr_indirect_pages;
	uint32_t indirect_grefs[XBD_BLKIF_MAX_INDIRECT_PAGES];
	struct xbd_blkif_seg seg[XBD_BLKIF_MAX_SEGS]; /* direct requests */
};

struct xbd_blkif_response {
	uint64_t id;
	uint8_t op;
	int16_t status;
};

/* Snapshot of the shared and private indices (for `xbdsh ring`). */
struct xbd_blkif_ring_state {
	unsigned nr_ents;
	uint32_t req_prod, req_event, rsp_prod, rsp_event; /* shared */
	uint32_t req_cons, rsp_prod_pvt; /* backend's private */
	uint32_t req_prod_pvt, rsp_cons; /* frontend's private */
};

/* Entries in a ring of nr_pages pages for an ABI (32 per page). */
unsigned xbd_blkif_ring_entries(enum xbd_blkif_abi abi, unsigned nr_pages);

/* Decodes the request in slot idx of a ring that others drive, from one
 * private copy of the slot, without validating it: for looking at a
 * ring (xbdsh), never for serving one. */
void xbd_blkif_peek_request(enum xbd_blkif_abi abi, const void *sring,
			    unsigned nr_ents, uint32_t idx,
			    struct xbd_blkif_request *req);

/* --- backend side --- */
/* Both ABIs' ring structs share their header fields, which are reached
 * through .native whatever the ABI; only entries differ. */
union xbd_blkif_back_rings {
	blkif_back_ring_t native;
	blkif_x86_32_back_ring_t x86_32;
};
union xbd_blkif_front_rings {
	blkif_front_ring_t native;
	blkif_x86_32_front_ring_t x86_32;
};

struct xbd_blkif_back {
	enum xbd_blkif_abi abi;
	union xbd_blkif_back_rings r;
	bool broken; /* a producer overflow was seen: stop using the ring */
};

/* Attaches to an already initialised shared ring of nr_pages at mem. */
int xbd_blkif_back_init(struct xbd_blkif_back *b, void *mem, unsigned nr_pages,
			enum xbd_blkif_abi abi);
/* Takes the next request off the ring, copied once and validated.
 * 1: *req is filled (check req->status); 0: nothing to take (or no room
 * for its response yet); -EPROTO: the frontend broke the ring (producer
 * index beyond what the ring can hold): shut the device down. */
int xbd_blkif_back_next_request(struct xbd_blkif_back *b,
				const struct xbd_blkif_limits *lim,
				struct xbd_blkif_request *req);
/* Reads and validates an indirect request's segments from its indirect
 * pages (mapped or copied: pages[i] for i < req->nr_indirect_pages) into
 * segs[0 .. req->nr_segments).  Sets req->nr_sectors; returns the status
 * to answer with (OKAY when valid). */
int16_t xbd_blkif_read_indirect_segments(struct xbd_blkif_request *req,
					 const struct xbd_blkif_limits *lim,
					 const void *const *pages,
					 struct xbd_blkif_seg *segs);
/* Queues one response (not visible to the peer until push). */
void xbd_blkif_back_put_response(struct xbd_blkif_back *b, uint64_t id,
				 uint8_t op, int16_t status);
/* Publishes queued responses; true when the frontend must be notified. */
bool xbd_blkif_back_push_responses(struct xbd_blkif_back *b);
/* Before sleeping: re-arms req_event; true when requests arrived
 * meanwhile (do not sleep). */
bool xbd_blkif_back_final_check(struct xbd_blkif_back *b);
void xbd_blkif_back_state(const struct xbd_blkif_back *b,
			  struct xbd_blkif_ring_state *st);

/* --- frontend side --- */
struct xbd_blkif_front {
	enum xbd_blkif_abi abi;
	union xbd_blkif_front_rings r;
	bool broken;
};

/* Initialises the shared ring in mem (zeroed pages) and attaches. */
int xbd_blkif_front_init(struct xbd_blkif_front *f, void *mem,
			 unsigned nr_pages, enum xbd_blkif_abi abi);
unsigned xbd_blkif_front_free_slots(const struct xbd_blkif_front *f);
/* Writes one request into the next free slot (not visible until push).
 * -EBUSY: the ring is full. */
int xbd_blkif_front_put_request(struct xbd_blkif_front *f,
				const struct xbd_blkif_request *req);
/* Writes segment descriptors into an indirect page (up to 512). */
void xbd_blkif_write_indirect_segments(void *page,
				       const struct xbd_blkif_seg *segs,
				       unsigned n);
/* Publishes queued requests; true when the backend must be notified. */
bool xbd_blkif_front_push_requests(struct xbd_blkif_front *f);
/* Takes the next response off the ring, copied once.  1: *rsp filled;
 * 0: none; -EPROTO: the backend produced more responses than requests
 * outstanding (the caller fails all I/O). Validating id/op against what
 * is outstanding is the caller's job. */
int xbd_blkif_front_next_response(struct xbd_blkif_front *f,
				  struct xbd_blkif_response *rsp);
/* Before sleeping: re-arms rsp_event; true when responses arrived. */
bool xbd_blkif_front_final_check(struct xbd_blkif_front *f);
/* Responses wait on the ring: a peek for the consuming thread, which
 * may poll with it instead of sleeping until notified. */
bool xbd_blkif_front_has_responses(const struct xbd_blkif_front *f);
void xbd_blkif_front_state(const struct xbd_blkif_front *f,
			   struct xbd_blkif_ring_state *st);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * blkif ring: request parsing and validation (backend), request
 * encoding and response intake (frontend), and event-index notification
 * for both, over the macros of <xen/io/ring.h>.
 *
 * Everything read from the shared pages is read exactly once (a volatile
 * copy, RING_COPY_*) and only the copy is looked at afterwards: the peer
 * may rewrite the slot at any time.
 */
#include "xbd/ring.h"

#include <errno.h>
#include <string.h>

/* A shared index, read once: the peer writes it concurrently. */
#define READ_SHARED(x) (*(volatile __typeof__(x) *)&(x))
#define WRITE_SHARED(x, v) (*(volatile __typeof__(x) *)&(x) = (v))

int xbd_blkif_abi_from_protocol(const char *protocol, enum xbd_blkif_abi *abi)
{
	if (!protocol || !*protocol)
		*abi = XBD_BLKIF_ABI_X86_32;
	else if (!strcmp(protocol, XEN_IO_PROTO_ABI_X86_64))
		*abi = XBD_BLKIF_ABI_X86_64;
	else if (!strcmp(protocol, XEN_IO_PROTO_ABI_X86_32))
		*abi = XBD_BLKIF_ABI_X86_32;
	else
		return -EINVAL;
	return 0;
}

const char *xbd_blkif_abi_protocol(enum xbd_blkif_abi abi)
{
	return abi == XBD_BLKIF_ABI_X86_32 ? XEN_IO_PROTO_ABI_X86_32
					   : XEN_IO_PROTO_ABI_X86_64;
}

unsigned xbd_blkif_ring_entries(enum xbd_blkif_abi abi, unsigned nr_pages)
{
	size_t bytes = (size_t)nr_pages * 4096u;

	if (abi == XBD_BLKIF_ABI_X86_32)
		return __CONST_RING_SIZE(blkif_x86_32, bytes);
	return __CONST_RING_SIZE(blkif, bytes);
}

static int check_ring_pages(unsigned nr_pages)
{
	/* 1, 2, 4, 8 or 16 pages: ring-page-order 0..4 */
	if (nr_pages == 0 || nr_pages > XBD_RING_MAX_PAGES ||
	    (nr_pages & (nr_pages - 1)))
		return -EINVAL;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Validation                                                         */
/* ------------------------------------------------------------------ */

/* Sum of the segments' sectors, or -1 if a segment is malformed. */
static int64_t segments_sectors(const struct xbd_blkif_seg *segs, uint32_t n)
{
	uint64_t total = 0;
	uint32_t i;

	for (i = 0; i < n; i++) {
		if (segs[i].last_sect >= 4096 / 512 ||
		    segs[i].first_sect > segs[i].last_sect)
			return -1;
		total += (uint64_t)segs[i].last_sect - segs[i].first_sect + 1;
	}
	return (int64_t)total;
}

/* Range and alignment checks shared by reads, writes and discards. */
static int16_t check_range(const struct xbd_blkif_request *req,
			   const struct xbd_blkif_limits *lim)
{
	uint64_t align = lim->sector_size / 512;

	if (req->nr_sectors > lim->nr_sectors ||
	    req->sector > lim->nr_sectors - req->nr_sectors)
		return BLKIF_RSP_ERROR;
	/* a 4096-byte-sector disk takes only whole logical sectors */
	if (align > 1 && ((req->sector | req->nr_sectors) & (align - 1)))
		return BLKIF_RSP_ERROR;
	return BLKIF_RSP_OKAY;
}

static bool op_writes(uint8_t op)
{
	return op == BLKIF_OP_WRITE || op == BLKIF_OP_WRITE_BARRIER ||
	       op == BLKIF_OP_FLUSH_DISKCACHE || op == BLKIF_OP_DISCARD;
}

/*
 * The documented answers (tests/unit/test_ring_validate.c has one test
 * per line):
 *   unknown operation                          -> ERROR
 *   flush/barrier/discard/indirect not offered -> EOPNOTSUPP
 *   read/write with 0 or more than 11 segments -> ERROR
 *   flush/barrier with more than 11 segments   -> ERROR
 *   a segment with first_sect > last_sect or last_sect > 7 -> ERROR
 *   sectors beyond the end of the disk          -> ERROR
 *   not aligned to a 4096-byte sector size      -> ERROR
 *   any write, flush, barrier or discard on a read-only disk -> ERROR
 *   indirect with an op other than read/write   -> ERROR
 *   indirect with 0 segments, or more than offered -> ERROR
 */
static int16_t validate_direct(struct xbd_blkif_request *req,
			       const struct xbd_blkif_limits *lim)
{
	int64_t sectors;

	switch (req->op) {
	case BLKIF_OP_READ:
	case BLKIF_OP_WRITE:
		if (req->nr_segments == 0)
			return BLKIF_RSP_ERROR;
		break;
	case BLKIF_OP_FLUSH_DISKCACHE:
		if (!lim->flush)
			return BLKIF_RSP_EOPNOTSUPP;
		break;
	case BLKIF_OP_WRITE_BARRIER:
		if (!lim->barrier)
			return BLKIF_RSP_EOPNOTSUPP;
		break;
	default:
		return BLKIF_RSP_ERROR;
	}
	if (req->nr_segments > BLKIF_MAX_SEGMENTS_PER_REQUEST)
		return BLKIF_RSP_ERROR;
	if (lim->read_only && op_writes(req->op))
		return BLKIF_RSP_ERROR;
	sectors = segments_sectors(req->seg, req->nr_segments);
	if (sectors < 0)
		return BLKIF_RSP_ERROR;
	req->nr_sectors = (uint64_t)sectors;
	/* an empty flush or barrier names no range (Linux sends sector 0
	 * or the position of the request it drains) */
	if (req->nr_sectors == 0)
		return BLKIF_RSP_OKAY;
	return check_range(req, lim);
}

static int16_t validate_discard(struct xbd_blkif_request *req,
				const struct xbd_blkif_limits *lim)
{
	if (!lim->discard)
		return BLKIF_RSP_EOPNOTSUPP;
	if (lim->read_only)
		return BLKIF_RSP_ERROR;
	return check_range(req, lim);
}

static int16_t validate_indirect(struct xbd_blkif_request *req,
				 const struct xbd_blkif_limits *lim)
{
	if (!lim->max_indirect_segments)
		return BLKIF_RSP_EOPNOTSUPP;
	if (req->op != BLKIF_OP_READ && req->op != BLKIF_OP_WRITE)
		return BLKIF_RSP_ERROR;
	if (req->nr_segments == 0 ||
	    req->nr_segments > lim->max_indirect_segments ||
	    req->nr_segments > XBD_BLKIF_MAX_INDIRECT_SEGS)
		return BLKIF_RSP_ERROR;
	if (lim->read_only && op_writes(req->op))
		return BLKIF_RSP_ERROR;
	req->nr_indirect_pages =
		(req->nr_segments + XBD_BLKIF_SEGS_PER_INDIRECT_PAGE - 1) /
		XBD_BLKIF_SEGS_PER_INDIRECT_PAGE;
	/* the range is checked once the segments are read */
	return BLKIF_RSP_OKAY;
}

int16_t xbd_blkif_read_indirect_segments(struct xbd_blkif_request *req,
					 const struct xbd_blkif_limits *lim,
					 const void *const *pages,
					 struct xbd_blkif_seg *segs)
{
	uint32_t i;
	int64_t sectors;

	for (i = 0; i < req->nr_segments; i++) {
		const volatile struct blkif_request_segment *src =
			(const volatile struct blkif_request_segment *)
				pages[i / XBD_BLKIF_SEGS_PER_INDIRECT_PAGE] +
			i % XBD_BLKIF_SEGS_PER_INDIRECT_PAGE;

		/* one read of each field: segs[] is the only copy used */
		segs[i].gref = src->gref;
		segs[i].first_sect = src->first_sect;
		segs[i].last_sect = src->last_sect;
	}
	sectors = segments_sectors(segs, req->nr_segments);
	if (sectors < 0)
		return BLKIF_RSP_ERROR;
	req->nr_sectors = (uint64_t)sectors;
	return check_range(req, lim);
}

/* ------------------------------------------------------------------ */
/* The two ABIs as layouts: one codec for both                         */
/* ------------------------------------------------------------------ */

/*
 * Where each field of each request kind sits in a slot of one ABI.  The
 * offsets come from the typed structs (offsetof), so the codec below is
 * written once and cannot disagree with the layouts the static asserts
 * in blkif_abi.h pin down.  The operation byte (0), nr_segments / flag /
 * indirect_op (1) and the rw handle (2) sit at the same place in both.
 */
struct blkif_layout {
	size_t slot_size;
	size_t rw_id, rw_sector, rw_seg;
	size_t discard_id, discard_sector, discard_nr_sectors;
	size_t ind_nr_segments, ind_id, ind_sector, ind_handle, ind_grefs;
};

#define BLKIF_LAYOUT(rw_t, discard_t, indirect_t)                           \
	{                                                                   \
		.slot_size = sizeof(rw_t),                                  \
		.rw_id = offsetof(rw_t, id),                                \
		.rw_sector = offsetof(rw_t, sector_number),                 \
		.rw_seg = offsetof(rw_t, seg),                              \
		.discard_id = offsetof(discard_t, id),                      \
		.discard_sector = offsetof(discard_t, sector_number),       \
		.discard_nr_sectors = offsetof(discard_t, nr_sectors),      \
		.ind_nr_segments = offsetof(indirect_t, nr_segments),       \
		.ind_id = offsetof(indirect_t, id),                         \
		.ind_sector = offsetof(indirect_t, sector_number),          \
		.ind_handle = offsetof(indirect_t, handle),                 \
		.ind_grefs = offsetof(indirect_t, indirect_grefs),          \
	}

static const struct blkif_layout layouts[] = {
	[XBD_BLKIF_ABI_X86_64] = BLKIF_LAYOUT(blkif_request_t,
					      blkif_request_discard_t,
					      blkif_request_indirect_t),
	[XBD_BLKIF_ABI_X86_32] = BLKIF_LAYOUT(struct blkif_x86_32_request,
					      struct blkif_x86_32_request_discard,
					      struct blkif_x86_32_request_indirect),
};

/* A slot's bytes, copied once off the ring (big enough for either ABI). */
union blkif_slot_copy {
	blkif_request_t native;
	struct blkif_x86_32_request x86_32;
	uint8_t bytes[sizeof(blkif_request_t)];
};

static uint64_t get64(const uint8_t *p, size_t off)
{
	uint64_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

static uint16_t get16(const uint8_t *p, size_t off)
{
	uint16_t v;

	memcpy(&v, p + off, sizeof(v));
	return v;
}

static void put64(uint8_t *p, size_t off, uint64_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

static void put16(uint8_t *p, size_t off, uint16_t v)
{
	memcpy(p + off, &v, sizeof(v));
}

/* Decodes a private copy of a slot (never the shared slot itself). */
static void decode_request(const struct blkif_layout *l, const uint8_t *slot,
			   struct xbd_blkif_request *req)
{
	uint32_t i, n;

	req->ring_op = slot[0];
	switch (slot[0]) {
	case BLKIF_OP_DISCARD:
		req->op = BLKIF_OP_DISCARD;
		req->discard_secure = slot[1] & BLKIF_DISCARD_SECURE;
		req->handle = get16(slot, 2);
		req->id = get64(slot, l->discard_id);
		req->sector = get64(slot, l->discard_sector);
		req->nr_sectors = get64(slot, l->discard_nr_sectors);
		break;
	case BLKIF_OP_INDIRECT:
		req->op = slot[1];
		req->indirect = true;
		req->nr_segments = get16(slot, l->ind_nr_segments);
		req->id = get64(slot, l->ind_id);
		req->sector = get64(slot, l->ind_sector);
		req->handle = get16(slot, l->ind_handle);
		memcpy(req->indirect_grefs, slot + l->ind_grefs,
		       sizeof(req->indirect_grefs));
		break;
	default:
		req->op = slot[0];
		req->nr_segments = slot[1];
		req->handle = get16(slot, 2);
		req->id = get64(slot, l->rw_id);
		req->sector = get64(slot, l->rw_sector);
		/* more than 11 is rejected by validation; read no further */
		n = req->nr_segments < BLKIF_MAX_SEGMENTS_PER_REQUEST ?
			    req->nr_segments : BLKIF_MAX_SEGMENTS_PER_REQUEST;
		for (i = 0; i < n; i++) {
			struct blkif_request_segment seg;

			memcpy(&seg, slot + l->rw_seg + i * sizeof(seg), sizeof(seg));
			req->seg[i].gref = seg.gref;
			req->seg[i].first_sect = seg.first_sect;
			req->seg[i].last_sect = seg.last_sect;
		}
		break;
	}
}

/* Encodes into a zeroed private buffer; the caller copies it whole into
 * the slot, so the backend sees a complete request or (before push)
 * nothing, and no stale bytes of ours leak into padding. */
static void encode_request(const struct blkif_layout *l,
			   const struct xbd_blkif_request *req, uint8_t *slot)
{
	uint32_t i;

	slot[0] = req->ring_op;
	switch (req->ring_op) {
	case BLKIF_OP_DISCARD:
		slot[1] = req->discard_secure ? BLKIF_DISCARD_SECURE : 0;
		put16(slot, 2, req->handle);
		put64(slot, l->discard_id, req->id);
		put64(slot, l->discard_sector, req->sector);
		put64(slot, l->discard_nr_sectors, req->nr_sectors);
		break;
	case BLKIF_OP_INDIRECT:
		slot[1] = req->op;
		put16(slot, l->ind_nr_segments, (uint16_t)req->nr_segments);
		put64(slot, l->ind_id, req->id);
		put64(slot, l->ind_sector, req->sector);
		put16(slot, l->ind_handle, req->handle);
		memcpy(slot + l->ind_grefs, req->indirect_grefs,
		       sizeof(req->indirect_grefs));
		break;
	default:
		slot[1] = (uint8_t)req->nr_segments;
		put16(slot, 2, req->handle);
		put64(slot, l->rw_id, req->id);
		put64(slot, l->rw_sector, req->sector);
		for (i = 0; i < req->nr_segments && i < BLKIF_MAX_SEGMENTS_PER_REQUEST; i++) {
			struct blkif_request_segment seg = {
				.gref = req->seg[i].gref,
				.first_sect = req->seg[i].first_sect,
				.last_sect = req->seg[i].last_sect,
			};

			memcpy(slot + l->rw_seg + i * sizeof(seg), &seg, sizeof(seg));
		}
		break;
	}
}

/* The shared half of a state snapshot (the header is the same for both
 * ABIs and both roles). */
static void read_shared_indices(blkif_sring_t *s, unsigned nr_ents,
				struct xbd_blkif_ring_state *st)
{
	memset(st, 0, sizeof(*st));
	st->nr_ents = nr_ents;
	st->req_prod = READ_SHARED(s->req_prod);
	st->req_event = READ_SHARED(s->req_event);
	st->rsp_prod = READ_SHARED(s->rsp_prod);
	st->rsp_event = READ_SHARED(s->rsp_event);
}

void xbd_blkif_peek_request(enum xbd_blkif_abi abi, const void *sring,
			    unsigned nr_ents, uint32_t idx,
			    struct xbd_blkif_request *req)
{
	union blkif_slot_copy copy;
	unsigned slot = idx & (nr_ents - 1);

	/* one volatile copy of the slot; only the copy is decoded */
	if (abi == XBD_BLKIF_ABI_X86_32)
		copy.x86_32 = *(const volatile struct blkif_x86_32_request *)
			&((const blkif_x86_32_sring_t *)sring)->ring[slot].req;
	else
		copy.native = *(const volatile blkif_request_t *)
			&((const blkif_sring_t *)sring)->ring[slot].req;
	memset(req, 0, sizeof(*req));
	decode_request(&layouts[abi], copy.bytes, req);
}

/* ------------------------------------------------------------------ */
/* Backend                                                            */
/* ------------------------------------------------------------------ */

int xbd_blkif_back_init(struct xbd_blkif_back *b, void *mem, unsigned nr_pages,
			enum xbd_blkif_abi abi)
{
	size_t bytes = (size_t)nr_pages * 4096u;
	int err = check_ring_pages(nr_pages);

	if (err)
		return err;
	memset(b, 0, sizeof(*b));
	b->abi = abi;
	if (abi == XBD_BLKIF_ABI_X86_32)
		BACK_RING_INIT(&b->r.x86_32, (blkif_x86_32_sring_t *)mem, bytes);
	else
		BACK_RING_INIT(&b->r.native, (blkif_sring_t *)mem, bytes);
	return 0;
}

int xbd_blkif_back_next_request(struct xbd_blkif_back *b,
				const struct xbd_blkif_limits *lim,
				struct xbd_blkif_request *req)
{
	blkif_back_ring_t *r = &b->r.native;
	union blkif_slot_copy copy;
	RING_IDX prod;

	if (b->broken)
		return -EPROTO;
	prod = READ_SHARED(r->sring->req_prod);
	xen_rmb(); /* read req_prod before the requests it publishes */
	if (RING_REQUEST_PROD_OVERFLOW(r, prod)) {
		b->broken = true;
		return -EPROTO;
	}
	if (r->req_cons == prod)
		return 0;
	/* never take more requests than there is room to answer */
	if (RING_REQUEST_CONS_OVERFLOW(r, r->req_cons))
		return 0;

	memset(req, 0, sizeof(*req));
	if (b->abi == XBD_BLKIF_ABI_X86_32)
		RING_COPY_REQUEST(&b->r.x86_32, r->req_cons, &copy.x86_32);
	else
		RING_COPY_REQUEST(r, r->req_cons, &copy.native);
	r->req_cons++;
	decode_request(&layouts[b->abi], copy.bytes, req);

	if (req->ring_op == BLKIF_OP_DISCARD)
		req->status = validate_discard(req, lim);
	else if (req->ring_op == BLKIF_OP_INDIRECT)
		req->status = validate_indirect(req, lim);
	else
		req->status = validate_direct(req, lim);
	return 1;
}

void xbd_blkif_back_put_response(struct xbd_blkif_back *b, uint64_t id,
				 uint8_t op, int16_t status)
{
	blkif_back_ring_t *r = &b->r.native;

	/* Written field by field: the slot is shared and the peer may have
	 * left anything in it. */
	if (b->abi == XBD_BLKIF_ABI_X86_32) {
		struct blkif_x86_32_response *rsp =
			RING_GET_RESPONSE(&b->r.x86_32, r->rsp_prod_pvt);

		rsp->id = id;
		rsp->operation = op;
		rsp->status = status;
	} else {
		blkif_response_t *rsp = RING_GET_RESPONSE(r, r->rsp_prod_pvt);

		rsp->id = id;
		rsp->operation = op;
		rsp->status = status;
	}
	r->rsp_prod_pvt++;
}

bool xbd_blkif_back_push_responses(struct xbd_blkif_back *b)
{
	blkif_back_ring_t *r = &b->r.native;
	int notify;

	if (READ_SHARED(r->sring->rsp_prod) == r->rsp_prod_pvt)
		return false;
	RING_PUSH_RESPONSES_AND_CHECK_NOTIFY(r, notify);
	return notify;
}

bool xbd_blkif_back_final_check(struct xbd_blkif_back *b)
{
	blkif_back_ring_t *r = &b->r.native;
	int more;

	if (b->broken)
		return false;
	RING_FINAL_CHECK_FOR_REQUESTS(r, more);
	return more;
}

void xbd_blkif_back_state(const struct xbd_blkif_back *b,
			  struct xbd_blkif_ring_state *st)
{
	const blkif_back_ring_t *r = &b->r.native;

	read_shared_indices(r->sring, r->nr_ents, st);
	st->req_cons = r->req_cons;
	st->rsp_prod_pvt = r->rsp_prod_pvt;
}

/* ------------------------------------------------------------------ */
/* Frontend                                                           */
/* ------------------------------------------------------------------ */

int xbd_blkif_front_init(struct xbd_blkif_front *f, void *mem,
			 unsigned nr_pages, enum xbd_blkif_abi abi)
{
	size_t bytes = (size_t)nr_pages * 4096u;
	int err = check_ring_pages(nr_pages);

	if (err)
		return err;
	memset(f, 0, sizeof(*f));
	f->abi = abi;
	if (abi == XBD_BLKIF_ABI_X86_32) {
		SHARED_RING_INIT((blkif_x86_32_sring_t *)mem);
		FRONT_RING_INIT(&f->r.x86_32, (blkif_x86_32_sring_t *)mem, bytes);
	} else {
		SHARED_RING_INIT((blkif_sring_t *)mem);
		FRONT_RING_INIT(&f->r.native, (blkif_sring_t *)mem, bytes);
	}
	return 0;
}

unsigned xbd_blkif_front_free_slots(const struct xbd_blkif_front *f)
{
	return RING_FREE_REQUESTS(&f->r.native);
}

int xbd_blkif_front_put_request(struct xbd_blkif_front *f,
				const struct xbd_blkif_request *req)
{
	blkif_front_ring_t *r = &f->r.native;
	union blkif_slot_copy slot;

	if (RING_FULL(r))
		return -EBUSY;
	memset(&slot, 0, sizeof(slot));
	encode_request(&layouts[f->abi], req, slot.bytes);
	if (f->abi == XBD_BLKIF_ABI_X86_32)
		*RING_GET_REQUEST(&f->r.x86_32, r->req_prod_pvt) = slot.x86_32;
	else
		*RING_GET_REQUEST(r, r->req_prod_pvt) = slot.native;
	r->req_prod_pvt++;
	return 0;
}

void xbd_blkif_write_indirect_segments(void *page,
				       const struct xbd_blkif_seg *segs,
				       unsigned n)
{
	struct blkif_request_segment *dst = page;

	/* whole descriptors, padding included, so no stale bytes leak */
	memset(dst, 0, (size_t)n * sizeof(*dst));
	unsigned i;

	for (i = 0; i < n && i < XBD_BLKIF_SEGS_PER_INDIRECT_PAGE; i++) {
		dst[i].gref = segs[i].gref;
		dst[i].first_sect = segs[i].first_sect;
		dst[i].last_sect = segs[i].last_sect;
	}
}

bool xbd_blkif_front_push_requests(struct xbd_blkif_front *f)
{
	blkif_front_ring_t *r = &f->r.native;
	int notify;

	if (READ_SHARED(r->sring->req_prod) == r->req_prod_pvt)
		return false;
	RING_PUSH_REQUESTS_AND_CHECK_NOTIFY(r, notify);
	return notify;
}

int xbd_blkif_front_next_response(struct xbd_blkif_front *f,
				  struct xbd_blkif_response *rsp)
{
	blkif_front_ring_t *r = &f->r.native;
	RING_IDX prod;

	if (f->broken)
		return -EPROTO;
	prod = READ_SHARED(r->sring->rsp_prod);
	xen_rmb(); /* read rsp_prod before the responses it publishes */
	/* more responses than requests we published: a broken backend */
	if (RING_RESPONSE_PROD_OVERFLOW(r, prod) ||
	    (RING_IDX)(prod - r->rsp_cons) > (RING_IDX)(r->req_prod_pvt - r->rsp_cons)) {
		f->broken = true;
		return -EPROTO;
	}
	if (r->rsp_cons == prod)
		return 0;
	if (f->abi == XBD_BLKIF_ABI_X86_32) {
		struct blkif_x86_32_response copy;

		RING_COPY_RESPONSE(&f->r.x86_32, r->rsp_cons, &copy);
		rsp->id = copy.id;
		rsp->op = copy.operation;
		rsp->status = copy.status;
	} else {
		blkif_response_t copy;

		RING_COPY_RESPONSE(r, r->rsp_cons, &copy);
		rsp->id = copy.id;
		rsp->op = copy.operation;
		rsp->status = copy.status;
	}
	r->rsp_cons++;
	return 1;
}

bool xbd_blkif_front_final_check(struct xbd_blkif_front *f)
{
	blkif_front_ring_t *r = &f->r.native;
	int more;

	if (f->broken)
		return false;
	RING_FINAL_CHECK_FOR_RESPONSES(r, more);
	return more;
}

bool xbd_blkif_front_has_responses(const struct xbd_blkif_front *f)
{
	const blkif_front_ring_t *r = &f->r.native;

	return !f->broken && READ_SHARED(r->sring->rsp_prod) != r->rsp_cons;
}

void xbd_blkif_front_state(const struct xbd_blkif_front *f,
			   struct xbd_blkif_ring_state *st)
{
	const blkif_front_ring_t *r = &f->r.native;

	read_shared_indices(r->sring, r->nr_ents, st);
	st->req_prod_pvt = r->req_prod_pvt;
	st->rsp_cons = r->rsp_cons;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The backend's request path (ring/blkif_ring.c): a shared ring and
 * indirect descriptor pages as a hostile guest wrote them, in either
 * ABI, taken off the ring by the copy-once parser and validated as the
 * backend does before it touches an image or a grant.  The guest may
 * move req_prod anywhere between two takes, backwards included.
 *
 * Checks what the data path relies on: a request is taken only when the
 * guest published it and there is room to answer it; an overflowing
 * producer breaks the ring for good; and every request that validation
 * passes is well formed: a known op the disk offers, 1..11 direct or
 * 1..max indirect segments each inside its page, its range inside the
 * disk and aligned to its sector size, no write to a read-only disk.
 *
 * Input: a header (ABI, ring order, limits, the ring's starting index,
 * req_prod, further req_prod moves), then the ring's entries (missing
 * bytes read as zeros), then the indirect pages' contents, repeated.
 */
#include "tests/fuzz/fuzz.h"
#include "xbd/ring.h"

#include <errno.h>
#include <stdbool.h>

#define MAX_MOVES 16

static bool writes(uint8_t op)
{
	return op == BLKIF_OP_WRITE || op == BLKIF_OP_WRITE_BARRIER ||
	       op == BLKIF_OP_FLUSH_DISKCACHE || op == BLKIF_OP_DISCARD;
}

static void check_segs(const struct xbd_blkif_seg *segs, uint32_t n,
		       uint64_t nr_sectors)
{
	uint64_t total = 0;

	for (uint32_t i = 0; i < n; i++) {
		FUZZ_CHECK(segs[i].first_sect <= segs[i].last_sect);
		FUZZ_CHECK(segs[i].last_sect <= 7);
		total += segs[i].last_sect - segs[i].first_sect + 1u;
	}
	FUZZ_CHECK(total == nr_sectors);
}

static void check_range(const struct xbd_blkif_request *req,
			const struct xbd_blkif_limits *lim)
{
	uint64_t align = lim->sector_size / 512;

	if (!req->nr_sectors && req->op != BLKIF_OP_READ && req->op != BLKIF_OP_WRITE)
		return; /* an empty flush, barrier or discard names no range */
	FUZZ_CHECK(req->nr_sectors <= lim->nr_sectors);
	FUZZ_CHECK(req->sector <= lim->nr_sectors - req->nr_sectors);
	FUZZ_CHECK(req->sector % align == 0 && req->nr_sectors % align == 0);
}

/* A request validation passed: everything the data path assumes. */
static void check_valid(struct xbd_blkif_request *req,
			const struct xbd_blkif_limits *lim, void *const *pages)
{
	FUZZ_CHECK(!lim->read_only || !writes(req->op));
	if (req->ring_op == BLKIF_OP_DISCARD) {
		FUZZ_CHECK(lim->discard && req->op == BLKIF_OP_DISCARD);
		check_range(req, lim);
		return;
	}
	if (!req->indirect) {
		FUZZ_CHECK(req->op == req->ring_op);
		FUZZ_CHECK(req->op == BLKIF_OP_READ || req->op == BLKIF_OP_WRITE ||
			   (req->op == BLKIF_OP_FLUSH_DISKCACHE && lim->flush) ||
			   (req->op == BLKIF_OP_WRITE_BARRIER && lim->barrier));
		FUZZ_CHECK(req->nr_segments <= XBD_BLKIF_MAX_SEGS);
		FUZZ_CHECK(req->nr_segments ||
			   (req->op != BLKIF_OP_READ && req->op != BLKIF_OP_WRITE));
		check_segs(req->seg, req->nr_segments, req->nr_sectors);
		check_range(req, lim);
		return;
	}
	FUZZ_CHECK(req->ring_op == BLKIF_OP_INDIRECT);
	FUZZ_CHECK(lim->max_indirect_segments);
	FUZZ_CHECK(req->op == BLKIF_OP_READ || req->op == BLKIF_OP_WRITE);
	FUZZ_CHECK(req->nr_segments >= 1 &&
		   req->nr_segments <= lim->max_indirect_segments &&
		   req->nr_segments <= XBD_BLKIF_MAX_INDIRECT_SEGS);
	FUZZ_CHECK(req->nr_indirect_pages >= 1 &&
		   req->nr_indirect_pages <= XBD_BLKIF_MAX_INDIRECT_PAGES);
	FUZZ_CHECK((req->nr_indirect_pages - 1) * XBD_BLKIF_SEGS_PER_INDIRECT_PAGE <
			   req->nr_segments &&
		   req->nr_segments <=
			   req->nr_indirect_pages * XBD_BLKIF_SEGS_PER_INDIRECT_PAGE);

	/* exactly as many descriptors as the request has: ASan sees one
	 * written past them */
	struct xbd_blkif_seg *segs = malloc(req->nr_segments * sizeof(*segs));

	FUZZ_CHECK(segs);
	if (xbd_blkif_read_indirect_segments(req, lim, (const void *const *)pages,
					     segs) == BLKIF_RSP_OKAY) {
		check_segs(segs, req->nr_segments, req->nr_sectors);
		FUZZ_CHECK(req->nr_sectors);
		check_range(req, lim);
	}
	free(segs);
}

/* The indirect pages: the rest of the input over and over (zeros when
 * there is none), so that 4096 descriptors cost a few bytes of input
 * and the fuzzer's inputs stay small and fast. */
static void fill_pages(void *const *pages, const uint8_t *p, size_t n)
{
	for (unsigned i = 0; i < XBD_BLKIF_MAX_INDIRECT_PAGES; i++) {
		uint8_t *dst = pages[i];

		if (!n) {
			memset(dst, 0, 4096);
			continue;
		}
		for (size_t off = 0; off < 4096;) {
			size_t k = 4096 - off < n ? 4096 - off : n;

			memcpy(dst + off, p, k);
			off += k;
		}
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static void *ring, *pages[XBD_BLKIF_MAX_INDIRECT_PAGES];
	static const unsigned orders[8] = { 0, 0, 1, 0, 2, 3, 4, 0 };
	struct fz in = { data, size };
	struct xbd_blkif_limits lim;
	struct xbd_blkif_back b;
	enum xbd_blkif_abi abi;
	uint32_t start, moves[MAX_MOVES], taken = 0;
	unsigned nr_pages, nr_ents, nmoves, i;
	size_t ring_bytes, len;
	uint8_t f0, f1;
	blkif_sring_t *s;

	if (!ring) {
		ring = aligned_alloc(4096, XBD_RING_MAX_PAGES * 4096);
		for (i = 0; i < XBD_BLKIF_MAX_INDIRECT_PAGES; i++)
			pages[i] = aligned_alloc(4096, 4096);
	}
	f0 = fz_u8(&in);
	f1 = fz_u8(&in);
	abi = f0 & 1 ? XBD_BLKIF_ABI_X86_32 : XBD_BLKIF_ABI_X86_64;
	nr_pages = 1u << orders[(f0 >> 1) & 7];
	lim = (struct xbd_blkif_limits){
		.sector_size = f0 & 0x10 ? 4096 : 512,
		.read_only = f0 & 0x20,
		.flush = f0 & 0x40,
		.barrier = f0 & 0x80,
		.discard = f1 & 1,
		.max_indirect_segments = fz_u16(&in) & 0x1fff,
		.nr_sectors = fz_u64(&in),
	};
	/* mostly realistic disks, now and then any number at all */
	if (!(f1 & 2))
		lim.nr_sectors &= 0xffffffffffull;
	start = fz_u32(&in);
	nmoves = fz_u8(&in) % (MAX_MOVES + 1);
	for (i = 0; i < nmoves; i++)
		moves[i] = fz_u32(&in);

	ring_bytes = (size_t)nr_pages * 4096;
	memset(ring, 0, ring_bytes);
	s = ring;
	len = fz_u16(&in);
	if (len > ring_bytes - 64)
		len = ring_bytes - 64;
	fz_bytes(&in, (uint8_t *)ring + 64, len);
	fill_pages(pages, in.p, in.n);

	FUZZ_CHECK(xbd_blkif_back_init(&b, ring, nr_pages, abi) == 0);
	nr_ents = b.r.native.nr_ents;
	FUZZ_CHECK(nr_ents == xbd_blkif_ring_entries(abi, nr_pages));
	/* the backend's own indices after 2^32 - start requests: the
	 * arithmetic must hold across the wrap */
	b.r.native.req_cons = b.r.native.rsp_prod_pvt = start;
	s->rsp_prod = start;
	s->req_prod = start + moves[0] * (nmoves > 0);

	for (i = 0; i < 4 * nr_ents + MAX_MOVES; i++) {
		struct xbd_blkif_request req, peek;
		uint32_t prod, cons = b.r.native.req_cons;
		int r;

		if (i > 0 && i < nmoves)
			s->req_prod = start + moves[i];
		prod = s->req_prod;
		r = xbd_blkif_back_next_request(&b, &lim, &req);
		if (r == -EPROTO) {
			FUZZ_CHECK(b.broken);
			FUZZ_CHECK(xbd_blkif_back_next_request(&b, &lim, &req) == -EPROTO);
			FUZZ_CHECK(!xbd_blkif_back_final_check(&b));
			break;
		}
		FUZZ_CHECK(!b.broken);
		/* the producer was in range: at most a ring of unanswered */
		FUZZ_CHECK(prod - b.r.native.rsp_prod_pvt <= nr_ents);
		if (r == 0) {
			FUZZ_CHECK(b.r.native.req_cons == cons);
			if (i >= nmoves)
				break;
			continue;
		}
		FUZZ_CHECK(r == 1);
		FUZZ_CHECK(cons != prod && b.r.native.req_cons == cons + 1);
		FUZZ_CHECK(cons - b.r.native.rsp_prod_pvt < nr_ents);
		taken++;
		/* xbdsh's decoding of the same slot agrees with the backend's */
		xbd_blkif_peek_request(abi, ring, nr_ents, cons, &peek);
		FUZZ_CHECK(peek.id == req.id && peek.ring_op == req.ring_op &&
			   peek.op == req.op && peek.sector == req.sector);
		FUZZ_CHECK(req.status == BLKIF_RSP_OKAY || req.status == BLKIF_RSP_ERROR ||
			   req.status == BLKIF_RSP_EOPNOTSUPP);
		if (req.status == BLKIF_RSP_OKAY)
			check_valid(&req, &lim, pages);
		/* answer every other one at once, the rest a step later, so
		 * that the ring fills up now and then */
		if (i & 1) {
			xbd_blkif_back_put_response(&b, req.id, req.ring_op, req.status);
			while (b.r.native.rsp_prod_pvt != b.r.native.req_cons)
				xbd_blkif_back_put_response(&b, 0, 0, BLKIF_RSP_ERROR);
			xbd_blkif_back_push_responses(&b);
			FUZZ_CHECK(s->rsp_prod == b.r.native.rsp_prod_pvt);
			xbd_blkif_back_final_check(&b);
		}
	}
	FUZZ_CHECK(taken <= 4 * nr_ents + MAX_MOVES);
	return 0;
}

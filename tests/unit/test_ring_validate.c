/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * blkif request validation: one case per rule documented in
 * ring/blkif_ring.c, in both ABIs, plus the encode/decode round trip,
 * responses, notification suppression and producer-overflow detection.
 * Malformed requests are written raw into the shared slots, as a hostile
 * guest would.
 */
#include "xbd/ring.h"
#include "tests/lib/check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct xbd_blkif_limits base_limits = {
	.nr_sectors = 2048, /* 1 MiB */
	.sector_size = 512,
	.flush = true,
	.barrier = true,
	.discard = true,
	.max_indirect_segments = 256,
};

struct harness {
	void *mem;
	struct xbd_blkif_front f;
	struct xbd_blkif_back b;
};

static void harness_init(struct harness *h, enum xbd_blkif_abi abi, unsigned pages)
{
	h->mem = aligned_alloc(4096, pages * 4096u);
	memset(h->mem, 0, pages * 4096u);
	CHECK_EQ(xbd_blkif_front_init(&h->f, h->mem, pages, abi), 0);
	CHECK_EQ(xbd_blkif_back_init(&h->b, h->mem, pages, abi), 0);
}

static void harness_fini(struct harness *h)
{
	free(h->mem);
}

/* A well-formed 8-sector read at sector 8, which each case then breaks. */
static struct xbd_blkif_request good_read(void)
{
	struct xbd_blkif_request r;

	memset(&r, 0, sizeof(r));
	r.id = 0x1122334455667788ull;
	r.op = r.ring_op = BLKIF_OP_READ;
	r.sector = 8;
	r.nr_segments = 1;
	r.seg[0].gref = 42;
	r.seg[0].first_sect = 0;
	r.seg[0].last_sect = 7;
	return r;
}

/* Sends one request through the ring and returns what the backend made
 * of it. */
static struct xbd_blkif_request roundtrip(enum xbd_blkif_abi abi,
					  const struct xbd_blkif_request *in,
					  const struct xbd_blkif_limits *lim)
{
	struct harness h;
	struct xbd_blkif_request out;

	memset(&out, 0, sizeof(out));
	harness_init(&h, abi, 1);
	CHECK_EQ(xbd_blkif_front_put_request(&h.f, in), 0);
	xbd_blkif_front_push_requests(&h.f);
	CHECK_EQ(xbd_blkif_back_next_request(&h.b, lim, &out), 1);
	CHECK_EQ(xbd_blkif_back_next_request(&h.b, lim, &out) == 0, 1);
	harness_fini(&h);
	return out;
}

static int16_t status_of(enum xbd_blkif_abi abi, const struct xbd_blkif_request *in,
			 const struct xbd_blkif_limits *lim)
{
	struct xbd_blkif_request out = roundtrip(abi, in, lim);

	CHECK_EQ(out.id, in->id); /* the id is echoed even for bad requests */
	return out.status;
}

static void test_rules(enum xbd_blkif_abi abi)
{
	struct xbd_blkif_limits lim = base_limits;
	struct xbd_blkif_request r, out;

	/* valid read decodes exactly */
	r = good_read();
	out = roundtrip(abi, &r, &lim);
	CHECK_EQ(out.status, BLKIF_RSP_OKAY);
	CHECK_EQ(out.id, r.id);
	CHECK_EQ(out.op, BLKIF_OP_READ);
	CHECK_EQ(out.sector, 8);
	CHECK_EQ(out.nr_sectors, 8);
	CHECK_EQ(out.seg[0].gref, 42);

	/* unknown operation -> ERROR */
	r = good_read();
	r.op = r.ring_op = 4; /* BLKIF_OP_RESERVED_1 */
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_ERROR);
	r.op = r.ring_op = 200;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_ERROR);

	/* 0 segments on a read/write -> ERROR */
	r = good_read();
	r.nr_segments = 0;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_ERROR);

	/* more than 11 segments -> ERROR (the 12th is never looked at) */
	r = good_read();
	r.nr_segments = 12;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_ERROR);
	r.nr_segments = 255;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_ERROR);

	/* 11 segments is fine */
	r = good_read();
	r.nr_segments = 11;
	for (unsigned i = 0; i < 11; i++)
		r.seg[i] = (struct xbd_blkif_seg){ .gref = i, .first_sect = 0, .last_sect = 7 };
	out = roundtrip(abi, &r, &lim);
	CHECK_EQ(out.status, BLKIF_RSP_OKAY);
	CHECK_EQ(out.nr_sectors, 88);

	/* first_sect > last_sect -> ERROR */
	r = good_read();
	r.seg[0].first_sect = 5;
	r.seg[0].last_sect = 4;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_ERROR);

	/* last_sect > 7 -> ERROR */
	r = good_read();
	r.seg[0].last_sect = 8;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_ERROR);

	/* sectors past the end -> ERROR; the last sector itself is fine */
	r = good_read();
	r.sector = 2048 - 8;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_OKAY);
	r.sector = 2048 - 7;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_ERROR);
	r.sector = UINT64_MAX - 3; /* wraps if added naively */
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_ERROR);

	/* write on a read-only disk -> ERROR; read is fine */
	lim.read_only = true;
	r = good_read();
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_OKAY);
	r.op = r.ring_op = BLKIF_OP_WRITE;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_ERROR);
	r.op = r.ring_op = BLKIF_OP_FLUSH_DISKCACHE;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_ERROR);
	lim = base_limits;

	/* 4096-byte sectors: misaligned start or length -> ERROR */
	lim.sector_size = 4096;
	r = good_read();
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_OKAY);
	r.sector = 4;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_ERROR);
	r = good_read();
	r.seg[0].last_sect = 3;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_ERROR);
	lim = base_limits;

	/* flush: empty flush OK; with data it is a write; not offered ->
	 * EOPNOTSUPP.  Same for barrier. */
	r = good_read();
	r.op = r.ring_op = BLKIF_OP_FLUSH_DISKCACHE;
	r.nr_segments = 0;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_OKAY);
	r.nr_segments = 1;
	out = roundtrip(abi, &r, &lim);
	CHECK_EQ(out.status, BLKIF_RSP_OKAY);
	CHECK_EQ(out.nr_sectors, 8);
	lim.flush = false;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_EOPNOTSUPP);
	r.op = r.ring_op = BLKIF_OP_WRITE_BARRIER;
	r.nr_segments = 0;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_OKAY);
	lim.barrier = false;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_EOPNOTSUPP);
	lim = base_limits;

	/* discard: in range OK (fields decoded), past the end ERROR, not
	 * offered EOPNOTSUPP, read-only ERROR */
	memset(&r, 0, sizeof(r));
	r.id = 77;
	r.op = r.ring_op = BLKIF_OP_DISCARD;
	r.sector = 100;
	r.nr_sectors = 900;
	r.discard_secure = true;
	out = roundtrip(abi, &r, &lim);
	CHECK_EQ(out.status, BLKIF_RSP_OKAY);
	CHECK_EQ(out.sector, 100);
	CHECK_EQ(out.nr_sectors, 900);
	CHECK_EQ(out.discard_secure, 1);
	r.nr_sectors = 2048;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_ERROR);
	r.nr_sectors = 8;
	lim.discard = false;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_EOPNOTSUPP);
	lim = base_limits;
	lim.read_only = true;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_ERROR);
	lim = base_limits;

	/* indirect: decoded; bad inner op, 0 segments, more than offered,
	 * not offered at all */
	memset(&r, 0, sizeof(r));
	r.id = 5;
	r.ring_op = BLKIF_OP_INDIRECT;
	r.op = BLKIF_OP_WRITE;
	r.indirect = true;
	r.sector = 16;
	r.nr_segments = 256;
	for (unsigned i = 0; i < 8; i++)
		r.indirect_grefs[i] = 1000 + i;
	out = roundtrip(abi, &r, &lim);
	CHECK_EQ(out.status, BLKIF_RSP_OKAY);
	CHECK_EQ(out.indirect, 1);
	CHECK_EQ(out.op, BLKIF_OP_WRITE);
	CHECK_EQ(out.nr_segments, 256);
	CHECK_EQ(out.nr_indirect_pages, 1);
	CHECK_EQ(out.indirect_grefs[0], 1000);
	CHECK_EQ(out.indirect_grefs[7], 1007);
	r.nr_segments = 257;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_ERROR);
	r.nr_segments = 0;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_ERROR);
	r.nr_segments = 8;
	r.op = BLKIF_OP_DISCARD;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_ERROR);
	r.op = BLKIF_OP_READ;
	lim.max_indirect_segments = 0;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_EOPNOTSUPP);
	lim = base_limits;
	lim.max_indirect_segments = 4096;
	r.nr_segments = 4096;
	out = roundtrip(abi, &r, &lim);
	CHECK_EQ(out.status, BLKIF_RSP_OKAY);
	CHECK_EQ(out.nr_indirect_pages, 8);
	r.nr_segments = 4097; /* needs a 9th indirect page */
	lim.max_indirect_segments = 65535;
	CHECK_EQ(status_of(abi, &r, &lim), BLKIF_RSP_ERROR);
}

/* Indirect segment pages: each descriptor checked, sectors summed, range
 * checked against the disk. */
static void test_indirect_segments(void)
{
	struct xbd_blkif_limits lim = base_limits;
	struct xbd_blkif_request r;
	struct xbd_blkif_seg segs[600], in[600];
	void *pages[2];
	int16_t st;

	pages[0] = aligned_alloc(4096, 4096);
	pages[1] = aligned_alloc(4096, 4096);
	for (unsigned i = 0; i < 600; i++)
		in[i] = (struct xbd_blkif_seg){ .gref = 5000 + i, .first_sect = 1, .last_sect = 2 };
	xbd_blkif_write_indirect_segments(pages[0], in, 512);
	xbd_blkif_write_indirect_segments(pages[1], in + 512, 88);
	memset(&r, 0, sizeof(r));
	r.indirect = true;
	r.op = BLKIF_OP_READ;
	r.nr_segments = 600;
	r.nr_indirect_pages = 2;
	r.sector = 0;
	st = xbd_blkif_read_indirect_segments(&r, &lim, (const void *const *)pages, segs);
	CHECK_EQ(st, BLKIF_RSP_OKAY);
	CHECK_EQ(r.nr_sectors, 1200);
	CHECK_EQ(segs[0].gref, 5000);
	CHECK_EQ(segs[599].gref, 5599);
	CHECK_EQ(segs[513].first_sect, 1);

	/* past the end of the disk once summed */
	r.sector = 2048 - 1199;
	st = xbd_blkif_read_indirect_segments(&r, &lim, (const void *const *)pages, segs);
	CHECK_EQ(st, BLKIF_RSP_ERROR);

	/* one bad descriptor deep in the second page */
	in[550].last_sect = 9;
	xbd_blkif_write_indirect_segments(pages[1], in + 512, 88);
	r.sector = 0;
	st = xbd_blkif_read_indirect_segments(&r, &lim, (const void *const *)pages, segs);
	CHECK_EQ(st, BLKIF_RSP_ERROR);
	free(pages[0]);
	free(pages[1]);
}

/* Responses in both ABIs, the backend echoing what the frontend sent. */
static void test_responses(enum xbd_blkif_abi abi)
{
	struct harness h;
	struct xbd_blkif_request r = good_read(), got;
	struct xbd_blkif_response rsp;
	unsigned i;

	harness_init(&h, abi, 2);
	CHECK_EQ(h.b.r.native.nr_ents, 64);
	for (i = 0; i < 64; i++) {
		r.id = 1000 + i;
		CHECK_EQ(xbd_blkif_front_put_request(&h.f, &r), 0);
	}
	/* the 65th finds the ring full */
	CHECK_EQ(xbd_blkif_front_put_request(&h.f, &r), -EBUSY);
	/* first push: the backend armed req_event=1, so it must be told */
	CHECK_EQ(xbd_blkif_front_push_requests(&h.f), 1);
	for (i = 0; i < 64; i++) {
		CHECK_EQ(xbd_blkif_back_next_request(&h.b, &base_limits, &got), 1);
		CHECK_EQ(got.id, 1000 + i);
		xbd_blkif_back_put_response(&h.b, got.id, got.op,
					    i == 3 ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY);
	}
	CHECK_EQ(xbd_blkif_back_push_responses(&h.b), 1);
	for (i = 0; i < 64; i++) {
		CHECK_EQ(xbd_blkif_front_next_response(&h.f, &rsp), 1);
		CHECK_EQ(rsp.id, 1000 + i);
		CHECK_EQ(rsp.op, BLKIF_OP_READ);
		CHECK_EQ(rsp.status, i == 3 ? BLKIF_RSP_ERROR : BLKIF_RSP_OKAY);
	}
	CHECK_EQ(xbd_blkif_front_next_response(&h.f, &rsp), 0);
	/* nothing pending: final checks re-arm the event indices */
	CHECK_EQ(xbd_blkif_front_final_check(&h.f), 0);
	CHECK_EQ(xbd_blkif_back_final_check(&h.b), 0);

	/* suppression: the backend has not re-armed past req 65, so a
	 * second request pushed right after the first needs no event */
	r.id = 1;
	xbd_blkif_front_put_request(&h.f, &r);
	CHECK_EQ(xbd_blkif_front_push_requests(&h.f), 1);
	r.id = 2;
	xbd_blkif_front_put_request(&h.f, &r);
	CHECK_EQ(xbd_blkif_front_push_requests(&h.f), 0);
	/* the final-check tail: the backend sees work before sleeping */
	CHECK_EQ(xbd_blkif_back_final_check(&h.b), 1);
	harness_fini(&h);
}

/* A frontend that moves req_prod far past the ring breaks it; so does
 * a backend producing more responses than requests. */
static void test_overflow(enum xbd_blkif_abi abi)
{
	struct harness h;
	struct xbd_blkif_request got;
	struct xbd_blkif_response rsp;
	blkif_sring_t *s;

	harness_init(&h, abi, 1);
	s = h.mem;
	s->req_prod = 1000;
	CHECK_EQ(xbd_blkif_back_next_request(&h.b, &base_limits, &got), -EPROTO);
	CHECK_EQ(h.b.broken, 1);
	CHECK_EQ(xbd_blkif_back_next_request(&h.b, &base_limits, &got), -EPROTO);
	harness_fini(&h);

	harness_init(&h, abi, 1);
	s = h.mem;
	s->rsp_prod = 1; /* no request was ever sent */
	CHECK_EQ(xbd_blkif_front_next_response(&h.f, &rsp), -EPROTO);
	harness_fini(&h);

	/* exactly a full ring is legal */
	harness_init(&h, abi, 1);
	s = h.mem;
	s->req_prod = 32;
	CHECK_EQ(xbd_blkif_back_next_request(&h.b, &base_limits, &got), 1);
	CHECK_EQ(got.status, BLKIF_RSP_ERROR); /* zeroed slot: read, 0 segs */
	harness_fini(&h);
}

static void test_abi_names(void)
{
	enum xbd_blkif_abi abi;

	CHECK_EQ(xbd_blkif_abi_from_protocol(NULL, &abi), 0);
	CHECK_EQ(abi, XBD_BLKIF_ABI_X86_32);
	CHECK_EQ(xbd_blkif_abi_from_protocol("x86_64-abi", &abi), 0);
	CHECK_EQ(abi, XBD_BLKIF_ABI_X86_64);
	CHECK_EQ(xbd_blkif_abi_from_protocol("x86_32-abi", &abi), 0);
	CHECK_EQ(abi, XBD_BLKIF_ABI_X86_32);
	CHECK_EQ(xbd_blkif_abi_from_protocol("arm-abi", &abi), -EINVAL);
	CHECK_EQ(xbd_blkif_ring_entries(XBD_BLKIF_ABI_X86_64, 1), 32);
	CHECK_EQ(xbd_blkif_ring_entries(XBD_BLKIF_ABI_X86_64, 16), 512);
	CHECK_EQ(xbd_blkif_ring_entries(XBD_BLKIF_ABI_X86_32, 16), 512);
}

/* Entries of the two ABIs land at their documented byte offsets. */
static void test_layout(void)
{
	struct harness h;
	struct xbd_blkif_request r = good_read();
	uint8_t *slot;

	harness_init(&h, XBD_BLKIF_ABI_X86_32, 1);
	xbd_blkif_front_put_request(&h.f, &r);
	xbd_blkif_front_put_request(&h.f, &r);
	slot = (uint8_t *)h.mem + 64 + 108; /* second x86_32 entry */
	CHECK_EQ(slot[0], BLKIF_OP_READ);
	CHECK_EQ(slot[1], 1);
	CHECK(!memcmp(slot + 4, &r.id, 8));
	CHECK(!memcmp(slot + 12, &r.sector, 8));
	harness_fini(&h);

	harness_init(&h, XBD_BLKIF_ABI_X86_64, 1);
	xbd_blkif_front_put_request(&h.f, &r);
	xbd_blkif_front_put_request(&h.f, &r);
	slot = (uint8_t *)h.mem + 64 + 112;
	CHECK(!memcmp(slot + 8, &r.id, 8));
	CHECK(!memcmp(slot + 16, &r.sector, 8));
	harness_fini(&h);
}

int main(void)
{
	test_rules(XBD_BLKIF_ABI_X86_64);
	test_rules(XBD_BLKIF_ABI_X86_32);
	test_indirect_segments();
	test_responses(XBD_BLKIF_ABI_X86_64);
	test_responses(XBD_BLKIF_ABI_X86_32);
	test_overflow(XBD_BLKIF_ABI_X86_64);
	test_overflow(XBD_BLKIF_ABI_X86_32);
	test_abi_names();
	test_layout();
	return check_report("test_ring_validate");
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The frontend's response path (src/frontend_io.c, over the response
 * side of ring/blkif_ring.c): requests go on the ring through the real
 * submission code, and a hostile backend answers them, or not: with
 * the right ids or made-up ones, duplicates, wrong operations, unknown
 * statuses, a response producer that jumps anywhere.
 *
 * Checks what the frontend promises: it never touches memory outside
 * its slots, pool and the caller's buffers (ASan); a backend that plays
 * by the rules never fails the device; every I/O is completed exactly
 * once, by a response or by failing the device; and the page pool and
 * the in-flight count balance.
 *
 * No threads: the harness calls the completion thread's drain itself,
 * and sets req_event so that submission never wants to notify (there is
 * no event channel).  Input: a header (ring size, features, disk size,
 * the starting ring index), then actions, one byte each plus operands.
 */
#include "tests/fuzz/fuzz.h"
#include "src/frontend_priv.h"

#include <sanitizer/asan_interface.h>
#include <stdbool.h>

#define MAX_IOS 256
#define MAX_ACTIONS 512

struct io_rec {
	unsigned done;
	int err;
	struct iovec iov;
};

/* The callers' buffers, cut from one arena with poisoned gaps between
 * them: fresh megabytes from malloc for every input made the harness
 * spend its time in page faults. */
#define ARENA_SIZE (8u << 20)
#define ARENA_GAP 64
static uint8_t arena[ARENA_SIZE] __attribute__((aligned(4096)));
static size_t arena_used;

static void *arena_get(size_t len)
{
	void *p;

	if (len > ARENA_SIZE - arena_used ||
	    ARENA_SIZE - arena_used - len < ARENA_GAP)
		return NULL;
	p = arena + arena_used;
	ASAN_UNPOISON_MEMORY_REGION(p, len);
	arena_used += (len + ARENA_GAP + 63) & ~(size_t)63;
	return p;
}

static void arena_reset(void)
{
	ASAN_POISON_MEMORY_REGION(arena, arena_used);
	arena_used = 0;
}

static void io_done(void *opaque, int err)
{
	struct io_rec *r = opaque;

	r->done++;
	r->err = err;
}

/* The shadow table is allocated per input; with ASan's default
 * quarantine (256 MiB) each one came from fresh pages. */
const char *__asan_default_options(void);
const char *__asan_default_options(void)
{
	return "quarantine_size_mb=8";
}

/* Keeps the frontend from notifying: the backend (us) asked for an
 * event only far ahead. */
static void no_notify(struct xbd_frontend *fe)
{
	fe->ring.r.native.sring->req_event = fe->ring.r.native.req_prod_pvt + 0x80000000u;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned pool_sizes[4] = { 32, 64, 256, 1024 };
	static const unsigned indirect[8] = { 0, 0, 32, 64, 128, 256, 512, 4096 };
	static const int16_t statuses[4] = { BLKIF_RSP_OKAY, BLKIF_RSP_ERROR,
					     BLKIF_RSP_EOPNOTSUPP, BLKIF_RSP_OKAY };
	static void *ring_mem, *pool;
	static bool quiet;
	struct fz in = { data, size };
	struct xbd_frontend fe;
	struct io_rec *ios[MAX_IOS];
	unsigned nios = 0, nr_pages, i, a;
	uint32_t start, bprod, bcons;
	bool hostile = false;
	blkif_sring_t *s;
	uint8_t f0, f1;

	if (!quiet) {
		fuzz_quiet_logs();
		quiet = true;
	}
	if (!ring_mem) {
		ring_mem = aligned_alloc(4096, 4 * 4096);
		pool = aligned_alloc(4096, 1024 * 4096);
		FUZZ_CHECK(ring_mem && pool);
		ASAN_POISON_MEMORY_REGION(arena, ARENA_SIZE);
	}
	f0 = fz_u8(&in);
	f1 = fz_u8(&in);
	nr_pages = 1u << (f0 & 3) % 3;

	memset(&fe, 0, sizeof(fe));
	fe.name = "fuzz";
	fe.stop_fd = -1;
	pthread_mutex_init(&fe.lock, NULL);
	pthread_cond_init(&fe.space, NULL);
	pthread_mutex_init(&fe.rmw_lock, NULL);
	xbd_stats_init(&fe.stats);
	fe.info.sector_size = 512;
	fe.info.sectors = (fz_u32(&in) & 0xfffff) + 1;
	fe.info.flush = f0 & 4;
	fe.info.barrier = f0 & 8;
	fe.info.discard = f0 & 16;
	fe.info.read_only = f0 & 32;
	fe.info.max_indirect_segments = indirect[f1 & 7];
	fe.pool = pool;
	fe.pool_pages = pool_sizes[(f1 >> 3) & 3];
	fe.pool_refs = calloc(fe.pool_pages, sizeof(*fe.pool_refs));
	FUZZ_CHECK(fe.pool_refs);
	for (i = 0; i < fe.pool_pages; i++)
		fe.pool_refs[i] = 1000 + i;
	fe.ring_mem = ring_mem;
	memset(ring_mem, 0, nr_pages * 4096);
	FUZZ_CHECK(xbd_blkif_front_init(&fe.ring, ring_mem, nr_pages,
					XBD_BLKIF_ABI_X86_64) == 0);
	s = fe.ring.r.native.sring;
	/* the indices after 2^32 - start requests: they must wrap */
	start = fz_u32(&in);
	fe.ring.r.native.req_prod_pvt = fe.ring.r.native.rsp_cons = start;
	s->req_prod = s->rsp_prod = start;
	s->rsp_event = start + 1;
	bprod = bcons = start;
	fe.info.ring_pages = nr_pages;
	fe.info.ring_entries = fe.ring.r.native.nr_ents;
	FUZZ_CHECK(xbd_fe_io_setup(&fe, f1 & 0x20 ? 0 : 16) == 0);

	for (a = 0; a < MAX_ACTIONS && in.n; a++) {
		uint8_t act = fz_u8(&in);

		switch (act & 7) {
		case 0: case 1: case 2: case 3: {
			/* a read, write, flush or discard of one ring request,
			 * when a slot and its pages are free (else the
			 * submitter would wait for the completion thread) */
			enum xbd_frontend_op op = (enum xbd_frontend_op)(act & 3);
			uint64_t max = (uint64_t)fe.info.max_segments * 8;
			uint64_t sector = fz_u32(&in) % fe.info.sectors;
			uint16_t v = fz_u16(&in);
			/* mostly up to 32 pages (indirect past 11), which
			 * keeps the fuzzer fast; now and then the most */
			uint64_t count = (v & 0x8000 ? v : v & 0xff) % max + 1;
			struct io_rec *r;
			void *buf;

			if (nios == MAX_IOS || fe.free_slot >= fe.nr_slots ||
			    fe.nr_free_pages < fe.pages_per_slot)
				break;
			if (count > fe.info.sectors - sector)
				count = fe.info.sectors - sector;
			buf = arena_get(count * 512);
			if (!buf)
				break;
			r = calloc(1, sizeof(*r));
			FUZZ_CHECK(r);
			r->iov = (struct iovec){ buf, count * 512 };
			no_notify(&fe);
			if (xbd_frontend_submit(&fe, op, &r->iov, 1, sector * 512,
						count * 512, io_done, r)) {
				free(r);
				break;
			}
			ios[nios++] = r;
			break;
		}
		case 4: case 5: {
			/* answer the next request on the ring, as asked or
			 * with some of its fields changed */
			uint8_t how = fz_u8(&in);
			struct xbd_blkif_request req;
			blkif_response_t *rsp;
			bool again = how & 0x80 && bcons != start;
			uint32_t idx = bcons;

			if (again)
				idx = bcons - 1; /* the previous one again */
			else if (bcons == s->req_prod)
				break;
			else
				bcons++;
			xbd_blkif_peek_request(XBD_BLKIF_ABI_X86_64, s,
					       fe.ring.r.native.nr_ents, idx, &req);
			rsp = RING_GET_RESPONSE(&fe.ring.r.native, bprod);
			rsp->id = req.id;
			rsp->operation = how & 0x40 ? req.op : req.ring_op;
			rsp->status = statuses[how & 3];
			if (how & 4)
				rsp->id ^= fz_u64(&in);
			if (how & 8)
				rsp->operation = fz_u8(&in);
			if (how & 16)
				rsp->status = (int16_t)fz_u16(&in);
			hostile |= again || (how & 0x1c);
			bprod++;
			if (!(how & 32))
				s->rsp_prod = bprod;
			break;
		}
		case 6:
			/* a producer index anywhere */
			s->rsp_prod = start + fz_u32(&in);
			hostile = true;
			break;
		case 7:
			xbd_fe_io_drain_responses(&fe);
			FUZZ_CHECK(hostile || !fe.err);
			break;
		}
	}
	xbd_fe_io_drain_responses(&fe);
	FUZZ_CHECK(hostile || !fe.err);
	/* every page back in the pool once nothing is in flight (a failed
	 * device keeps them from the pool: the backend may still write) */
	if (!fe.err && !fe.pending)
		FUZZ_CHECK(fe.nr_free_pages == fe.pool_pages);
	FUZZ_CHECK(fe.nr_free_pages <= fe.pool_pages);
	/* a frontend whose backend never answered ends like this */
	xbd_fe_io_fail(&fe, -EIO, "end of input");
	FUZZ_CHECK(fe.pending == 0);
	FUZZ_CHECK(xbd_fe_io_wait_drained(&fe, 0));
	for (i = 0; i < nios; i++) {
		FUZZ_CHECK(ios[i]->done == 1);
		free(ios[i]);
	}
	arena_reset();
	free(fe.slots);
	free(fe.slot_pages);
	free(fe.batch);
	free(fe.finished);
	free(fe.batch_done);
	free(fe.free_pages);
	free(fe.pool_refs);
	pthread_mutex_destroy(&fe.rmw_lock);
	pthread_cond_destroy(&fe.space);
	pthread_mutex_destroy(&fe.lock);
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The user-space blkfront's data path: a pool of pages granted once and
 * reused for every request, the shadow table of requests in flight
 * (slots), splitting I/O into ring requests, the completion thread and
 * its validation of every response, and failing the device.  The
 * xenbus side is in src/frontend.c.
 *
 * Data is copied between the caller's buffers and the pool pages, never
 * handed to the backend in place: a backend writing into a page after
 * its request was failed can only scribble on the pool, which a failed
 * device never uses again.
 */
#include "frontend_priv.h"
#include "xbd/common.h"
#include "xbd/ctl.h"
#include "xbd/image.h"
#include "xbd/util.h"

#include <assert.h>
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define DEFAULT_MAX_SEGMENTS 128u   /* 512 KiB per request */
#define POLL_MS 100                 /* completion thread's tick */
#define STOPPED_GAP_MS 1000         /* a longer gap between ticks: we were stopped */
#define FE_SPIN_US 0                /* a lone read's submitter's spin: off */
#define SLOT_BITS 16                /* request id: generation << 16 | slot */

enum slot_state {
	SLOT_FREE,
	SLOT_PREPARING, /* taken by a submitter, not on the ring yet */
	SLOT_PENDING,   /* on the ring: a response is expected */
	SLOT_COMPLETING /* response taken; its data is being copied */
};

struct fe_io {
	struct xbd_frontend *fe;
	enum xbd_frontend_op op;
	const struct iovec *iov;
	int iovcnt;
	uint64_t offset, len;
	unsigned parts; /* outstanding ring requests, +1 while submitting */
	int err;        /* first error of any part */
	xbd_frontend_done_fn done;
	void *opaque;
	/* a lent read (xbd_fe_io_read_lent): its data pages by page of the
	 * io (UINT32_MAX until their part answers), held until done */
	uint32_t *lent;
	unsigned nlent;
	unsigned reserved;    /* pool pages still promised to its parts */
	xbd_fe_lent_fn lent_done;
	/* its submitter's "I wait for the answer myself" (spin_for_answer),
	 * cleared under the lock when others are in flight; NULL: never */
	bool *spin;
};

struct fe_slot {
	enum slot_state state;
	uint64_t id;          /* as sent: generation << SLOT_BITS | index */
	uint64_t generation;
	struct fe_io *io;
	uint8_t ring_op;      /* as on the ring */
	uint8_t op;           /* effective (an indirect request's indirect_op) */
	bool indirect;
	uint64_t sector;
	uint32_t nr_segments;
	uint32_t bytes;       /* data bytes (0 for flush, discard) */
	uint64_t nr_sectors;  /* 512-byte sectors it covers */
	uint64_t io_skip;     /* where this part starts inside io */
	uint64_t start_ns;
	int16_t status;       /* the response's, once COMPLETING */
	unsigned nr_pages;    /* data pages then indirect pages */
	uint32_t *pages;      /* pool page indices */
	unsigned next_free;
};

/* ------------------------------------------------------------------ */
/* Failing the device                                                 */
/* ------------------------------------------------------------------ */

static void lent_finish(struct fe_io *io);

static void io_finish(struct fe_io *io)
{
	if (io->lent)
		lent_finish(io);
	else
		io->done(io->opaque, io->err);
}

/* Records one part's result; true when it was the io's last part. */
static bool io_part_done_locked(struct fe_io *io, int err)
{
	if (err && !io->err)
		io->err = err;
	return --io->parts == 0;
}

static void slot_free_locked(struct xbd_frontend *fe, unsigned i)
{
	struct fe_slot *s = &fe->slots[i];

	s->state = SLOT_FREE;
	s->io = NULL;
	s->generation++;
	s->next_free = fe->free_slot;
	fe->free_slot = i;
}

static void pages_free_locked(struct xbd_frontend *fe, struct fe_slot *s)
{
	unsigned k;

	for (k = 0; k < s->nr_pages; k++)
		fe->free_pages[fe->nr_free_pages++] = s->pages[k];
	s->nr_pages = 0;
}

static enum xbd_stat_op stat_op(uint8_t op)
{
	switch (op) {
	case BLKIF_OP_WRITE:
		return XBD_OP_WRITE;
	case BLKIF_OP_FLUSH_DISKCACHE:
		return XBD_OP_FLUSH;
	case BLKIF_OP_WRITE_BARRIER:
		return XBD_OP_BARRIER;
	case BLKIF_OP_DISCARD:
		return XBD_OP_DISCARD;
	default:
		return XBD_OP_READ;
	}
}

/*
 * Marks the device failed and fails every request on the ring.  Their
 * pages stay out of the pool (the backend may still write them); the
 * pool is never used again.  Returns the ios whose last part this was,
 * chained through their opaque-free list in *finished (the caller calls
 * them without the lock).  Called with fe->lock held.
 */
static unsigned fail_locked(struct xbd_frontend *fe, int err, const char *why,
			    struct fe_io **finished, unsigned cap)
{
	unsigned i, n = 0;

	if (!fe->err) {
		fe->err = err;
		if (!fe->closing)
			xbd_err("%s: %s: failing the device", fe_name(fe), why);
	}
	for (i = 0; i < fe->nr_slots; i++) {
		struct fe_slot *s = &fe->slots[i];

		if (s->state != SLOT_PENDING)
			continue;
		xbd_stats_complete(&fe->stats, stat_op(s->op), 0, 0);
		xbd_stat_add(&fe->stats.errors[XBD_ERR_IO], 1);
		fe->pending--;
		if (io_part_done_locked(s->io, -EIO) && n < cap)
			finished[n++] = s->io;
		s->nr_pages = 0; /* leaked to the backend, see above */
		slot_free_locked(fe, i);
	}
	pthread_cond_broadcast(&fe->space);
	return n;
}

void xbd_fe_io_fail(struct xbd_frontend *fe, int err, const char *why)
{
	struct fe_io **finished = calloc(fe->nr_slots ? fe->nr_slots : 1,
					 sizeof(*finished));
	unsigned n, i;

	pthread_mutex_lock(&fe->lock);
	n = fail_locked(fe, err, why, finished, finished ? fe->nr_slots : 0);
	pthread_mutex_unlock(&fe->lock);
	for (i = 0; i < n; i++)
		io_finish(finished[i]);
	free(finished);
}

void xbd_frontend_fail(struct xbd_frontend *fe, const char *why)
{
	xbd_fe_io_fail(fe, -EIO, why);
}

int xbd_frontend_status(struct xbd_frontend *fe)
{
	int err;

	pthread_mutex_lock(&fe->lock);
	err = fe->err;
	pthread_mutex_unlock(&fe->lock);
	return err;
}

/* ------------------------------------------------------------------ */
/* Responses                                                          */
/* ------------------------------------------------------------------ */

/* Checks a response against the shadow table.  Returns the slot index,
 * or -1 with *why set for a protocol violation. */
static int check_response(struct xbd_frontend *fe,
			  const struct xbd_blkif_response *rsp,
			  const char **why)
{
	uint64_t idx = rsp->id & ((1u << SLOT_BITS) - 1);
	struct fe_slot *s;

	if (idx >= fe->nr_slots) {
		*why = "response with an id out of range";
		return -1;
	}
	s = &fe->slots[idx];
	if (s->state != SLOT_PENDING || s->id != rsp->id) {
		*why = "response for a request not in flight (bogus or duplicate id)";
		return -1;
	}
	/* Linux blkback answers an indirect request with its indirect_op;
	 * answering with the ring op is accepted too. */
	if (rsp->op != s->ring_op && !(s->indirect && rsp->op == s->op)) {
		*why = "response with the wrong operation";
		return -1;
	}
	if (rsp->status != BLKIF_RSP_OKAY && rsp->status != BLKIF_RSP_ERROR &&
	    rsp->status != BLKIF_RSP_EOPNOTSUPP) {
		*why = "response with an unknown status";
		return -1;
	}
	return (int)idx;
}

static int status_errno(int16_t status)
{
	switch (status) {
	case BLKIF_RSP_OKAY:
		return 0;
	case BLKIF_RSP_EOPNOTSUPP:
		return -EOPNOTSUPP;
	default:
		return -EIO;
	}
}

static void *pool_page(struct xbd_frontend *fe, uint32_t idx)
{
	return (char *)fe->pool + (size_t)idx * XBD_PAGE_SIZE;
}

/* A lent read's answered part keeps its data pages, in the io's order,
 * until the whole read is done; its indirect pages go back at once. */
static void lend_pages_locked(struct xbd_frontend *fe, struct fe_slot *s)
{
	unsigned k, first = (unsigned)(s->io_skip / XBD_PAGE_SIZE);

	for (k = 0; k < s->nr_segments; k++)
		s->io->lent[first + k] = s->pages[k];
	for (; k < s->nr_pages; k++)
		fe->free_pages[fe->nr_free_pages++] = s->pages[k];
	s->nr_pages = 0;
}

/* The end of a lent read: its pages shown to the caller, then given
 * back, now or when the caller is done with them.  The iovec array lies
 * right after the io, the page list after that (xbd_fe_io_read_lent). */
static void lent_finish(struct fe_io *io)
{
	struct xbd_frontend *fe = io->fe;
	struct iovec *iov = (struct iovec *)(io + 1);
	uint64_t left = io->len;
	unsigned k;

	for (k = 0; !io->err && k < io->nlent; k++) {
		iov[k].iov_base = pool_page(fe, io->lent[k]);
		iov[k].iov_len = left < XBD_PAGE_SIZE ? left : XBD_PAGE_SIZE;
		left -= iov[k].iov_len;
	}
	if (io->err) {
		/* the pages back first: once told, the caller may close */
		xbd_fe_lent_fn done = io->lent_done;
		void *opaque = io->opaque;
		int err = io->err;

		xbd_fe_io_lent_return(fe, io);
		done(opaque, err, NULL, 0, NULL);
		return;
	}
	if (!io->lent_done(io->opaque, 0, iov, (int)io->nlent, io))
		xbd_fe_io_lent_return(fe, io);
	/* else kept: xbd_fe_io_lent_return gives them back */
}

void xbd_fe_io_lent_return(struct xbd_frontend *fe, void *loan)
{
	struct fe_io *io = loan;
	unsigned k;

	pthread_mutex_lock(&fe->lock);
	for (k = 0; k < io->nlent; k++)
		if (io->lent[k] != UINT32_MAX)
			fe->free_pages[fe->nr_free_pages++] = io->lent[k];
	pthread_cond_broadcast(&fe->space);
	pthread_mutex_unlock(&fe->lock);
	free(io);
}

/* Moves a slot's data between its pages and the caller's buffers: a
 * write's in before the request goes out, a read's out once answered. */
static void copy_data(struct xbd_frontend *fe, const struct fe_slot *s,
		      bool to_pages)
{
	uint32_t done = 0;
	unsigned k;

	for (k = 0; done < s->bytes; k++) {
		uint32_t n = s->bytes - done < XBD_PAGE_SIZE ? s->bytes - done
							     : XBD_PAGE_SIZE;
		void *page = pool_page(fe, s->pages[k]);

		if (to_pages)
			xbd_iov_to_buf(s->io->iov, s->io->iovcnt,
				       s->io_skip + done, page, n);
		else
			xbd_iov_from_buf(s->io->iov, s->io->iovcnt,
					 s->io_skip + done, page, n);
		done += n;
	}
}

/*
 * Takes up to cap available responses off the ring and completes them,
 * with the caller's scratch arrays (the completion thread's are the
 * device's; a submitter waiting for its own answer brings its own, so
 * both may drain at once: each response is taken once, under the
 * lock).  Data is copied out without the lock (slots are COMPLETING
 * meanwhile, so a second response for them is still a violation).
 * Returns the number of responses handled.
 */
static unsigned drain_some(struct xbd_frontend *fe, unsigned *batch,
			   struct fe_io **finished,
			   struct xbd_stats_done *batch_done, unsigned cap)
{
	unsigned n = 0, nfin = 0, i;
	struct xbd_blkif_response rsp;
	const char *why = NULL;
	uint64_t now;
	int r;

	pthread_mutex_lock(&fe->lock);
	if (fe->err) {
		pthread_mutex_unlock(&fe->lock);
		return 0;
	}
	while (n < cap) {
		int idx;

		r = xbd_blkif_front_next_response(&fe->ring, &rsp);
		if (r == 0)
			break;
		if (r < 0) {
			why = "backend produced more responses than requests";
			break;
		}
		idx = check_response(fe, &rsp, &why);
		if (idx < 0)
			break;
		fe->slots[idx].state = SLOT_COMPLETING;
		fe->slots[idx].status = rsp.status;
		fe->pending--;
		batch[n++] = (unsigned)idx;
	}
	if (n) {
		fe->last_progress_ns = xbd_now_ns();
		/* relaxed: a submitter's spin only looks for a change; the
		 * lock orders everything it then reads */
		atomic_fetch_add_explicit(&fe->answered, n, memory_order_relaxed);
	}
	pthread_mutex_unlock(&fe->lock);

	for (i = 0; i < n; i++) {
		struct fe_slot *s = &fe->slots[batch[i]];

		if (s->status == BLKIF_RSP_OKAY && s->op == BLKIF_OP_READ &&
		    !s->io->lent)
			copy_data(fe, s, false);
	}

	if (n) {
		unsigned nerr = 0;

		now = xbd_stats_now(&fe->stats);
		pthread_mutex_lock(&fe->lock);
		for (i = 0; i < n; i++) {
			unsigned idx = batch[i];
			struct fe_slot *s = &fe->slots[idx];
			int err = status_errno(s->status);

			batch_done[i] = (struct xbd_stats_done){
				.start_ns = s->start_ns,
				.sectors = err ? 0 : s->nr_sectors,
				.op = stat_op(s->op),
			};
			nerr += err != 0;
			if (s->io->lent && !err)
				lend_pages_locked(fe, s);
			pages_free_locked(fe, s);
			if (io_part_done_locked(s->io, err))
				finished[nfin++] = s->io;
			slot_free_locked(fe, idx);
		}
		pthread_cond_broadcast(&fe->space);
		pthread_mutex_unlock(&fe->lock);
		/* outside the lock: batch_done is the caller's, and in
		 * flight is ours (publish_in_flight_locked), not the stats' */
		xbd_stats_complete_batch(&fe->stats, batch_done, n, now);
		if (nerr)
			xbd_stat_add(&fe->stats.errors[XBD_ERR_IO], nerr);
		for (i = 0; i < nfin; i++)
			io_finish(finished[i]);
	}

	if (why) {
		xbd_stat_add(&fe->stats.errors[XBD_ERR_PROTOCOL], 1);
		xbd_fe_io_fail(fe, -EIO, why);
	}
	return n;
}

unsigned xbd_fe_io_drain_responses(struct xbd_frontend *fe)
{
	return drain_some(fe, fe->batch, fe->finished, fe->batch_done,
			  fe->nr_slots);
}

/*
 * Fails the device when requests wait longer than io_timeout_ms for an
 * answer.  Only time this process ran counts: the completion thread
 * checks at least every POLL_MS, so a longer gap since its last check
 * (a SIGSTOP or Ctrl-Z, a debugger, a frozen host) is time in which
 * answers could not be taken, and the backend gets its whole timeout
 * again from now.  Without that `xbd image` stopped for a few seconds
 * failed its disk as soon as it was continued.
 */
static void check_progress(struct xbd_frontend *fe, uint64_t *last_check_ns)
{
	uint64_t now;
	bool stalled;

	pthread_mutex_lock(&fe->lock);
	/* read under the lock: a submitter or drain stamps last_progress_ns
	 * under it too, never later than this */
	now = xbd_now_ns();
	if (now - *last_check_ns > STOPPED_GAP_MS * 1000000ull)
		fe->last_progress_ns = now;
	*last_check_ns = now;
	stalled = !fe->err && fe->pending &&
		  now - fe->last_progress_ns >
			  (unsigned long long)fe->io_timeout_ms * 1000000ull;
	pthread_mutex_unlock(&fe->lock);
	if (stalled) {
		char why[96];

		snprintf(why, sizeof(why), "backend did not answer for %u ms",
			 fe->io_timeout_ms);
		xbd_fe_io_fail(fe, -EIO, why);
	}
}

/* Takes every response there is, then re-arms the ring's event
 * (rsp_event) so that the next one is notified; again while responses
 * raced in.  Skipped while a submitter's spin left it unarmed on
 * purpose (see spin_for_answer): nothing is then in flight but what
 * that submitter watches itself. */
static void drain_and_arm(struct xbd_frontend *fe, unsigned *batch,
			  struct fe_io **finished,
			  struct xbd_stats_done *batch_done, unsigned cap)
{
	for (;;) {
		bool more;

		while (drain_some(fe, batch, finished, batch_done, cap) == cap)
			;
		pthread_mutex_lock(&fe->lock);
		more = !fe->err && !fe->rsp_unarmed &&
		       xbd_blkif_front_final_check(&fe->ring);
		pthread_mutex_unlock(&fe->lock);
		if (!more)
			break;
	}
}

void *xbd_fe_io_completion_main(void *arg)
{
	struct xbd_frontend *fe = arg;
	struct pollfd pfd[2] = {
		{ .fd = xbd_evtchn_fd(fe->evtchn), .events = POLLIN },
		{ .fd = fe->stop_fd, .events = POLLIN },
	};
	uint64_t last_check_ns = xbd_now_ns();

	while (!atomic_load(&fe->stop_threads)) {
		bool got = false;
		uint32_t port;

		if (poll(pfd, 2, POLL_MS) > 0 && (pfd[0].revents & POLLIN)) {
			/* Ours once found, no read more: it stays masked
			 * until the unmask below, so no second event of it
			 * waits, and another port's makes the next poll
			 * return at once (a read that finds nothing was one
			 * system call of each request's eight). */
			while (!got && xbd_evtchn_pending(fe->evtchn, &port) == 0) {
				if (port == fe->port)
					got = true;
				else
					xbd_evtchn_unmask(fe->evtchn, port);
			}
			if (got)
				xbd_stat_add(&fe->stats.notify_received, 1);
		}
		/* Look at the ring on every tick, event or not: a lost
		 * notification costs a tick, not a hang. */
		drain_and_arm(fe, fe->batch, fe->finished, fe->batch_done,
			      fe->nr_slots);
		/* after draining: events from now on wake us again */
		if (got)
			xbd_evtchn_unmask(fe->evtchn, fe->port);
		check_progress(fe, &last_check_ns);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* A submitter waiting for its own answer                             */
/* ------------------------------------------------------------------ */

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	atomic_signal_fence(memory_order_seq_cst);
#endif
}

static __thread int spin_watch_fd = -1;

void xbd_frontend_spin_watch(int fd)
{
	spin_watch_fd = fd;
}

/* The spinning thread has other work waiting. */
static bool spin_called_away(void)
{
	struct pollfd pfd = { .fd = spin_watch_fd, .events = POLLIN };

	return poll(&pfd, 1, 0) > 0;
}

#define SPIN_DRAIN_CAP 8        /* responses one spinning drain takes */
#define SPIN_MISSES_MAX 4       /* spins in a row without answer ... */
#define SPIN_BACKOFF 256        /* ... then this many requests without */

/*
 * A read that was alone on the ring (queue depth 1: a synchronous
 * reader) waits for its answer here, on the submitting thread, for up
 * to fe->spin_ns, and completes it itself: the completion thread is not
 * woken, and the ring is left unarmed (rsp_event not moved on) while
 * nothing else is in flight, so the backend does not notify at all for
 * the next such read either.  That takes a wake-up, the backend's
 * notification and the completion thread's event-channel read off each
 * synchronous read.  No answer in time: the ring is armed as usual and
 * the completion thread takes the answer; several such misses in a row
 * (a loaded machine, where the backend waits for a CPU, or a slow
 * backend) stop spinning for a while, since the spin then only takes
 * CPU time the backend needs.
 */
static void spin_for_answer(struct xbd_frontend *fe)
{
	unsigned batch[SPIN_DRAIN_CAP];
	struct fe_io *finished[SPIN_DRAIN_CAP];
	struct xbd_stats_done batch_done[SPIN_DRAIN_CAP];
	uint64_t seen = atomic_load_explicit(&fe->answered, memory_order_relaxed);
	uint64_t end = xbd_now_ns() + fe->spin_ns;
	bool answered = false, away = false, idle, unarmed;
	unsigned i = 0;

	for (;;) {
		if (xbd_blkif_front_has_responses(&fe->ring)) {
			drain_some(fe, batch, finished, batch_done, SPIN_DRAIN_CAP);
			answered = true;
			break;
		}
		/* the completion thread took it (a tick, another event) */
		if (atomic_load_explicit(&fe->answered, memory_order_relaxed) != seen) {
			answered = true;
			break;
		}
		if ((++i & 31) == 0 &&
		    (xbd_now_ns() >= end || (away = spin_called_away())))
			break;
		cpu_relax();
	}
	pthread_mutex_lock(&fe->lock);
	idle = fe->pending == 0 && !fe->err;
	/* Unarmed only with nothing in flight: whoever submits next arms
	 * it (submit_part) unless it spins itself. */
	unarmed = answered && idle;
	fe->rsp_unarmed = unarmed;
	pthread_mutex_unlock(&fe->lock);
	if (!unarmed)
		drain_and_arm(fe, batch, finished, batch_done, SPIN_DRAIN_CAP);
	if (answered) {
		atomic_store_explicit(&fe->spin_misses, 0, memory_order_relaxed);
	} else if (!away && atomic_fetch_add_explicit(&fe->spin_misses, 1,
						      memory_order_relaxed) + 1 >= SPIN_MISSES_MAX) {
		atomic_store_explicit(&fe->spin_misses, 0, memory_order_relaxed);
		atomic_store_explicit(&fe->spin_skip, SPIN_BACKOFF, memory_order_relaxed);
	}
}

void xbd_fe_io_wait_spinners(struct xbd_frontend *fe)
{
	/* acquire: pairs with spin_for_answer's release; a spin ends
	 * within spin_ns */
	while (atomic_load_explicit(&fe->spinners, memory_order_acquire))
		sched_yield();
}

/* Whether a submitter of a one-request read should offer to spin. */
static bool may_spin(struct xbd_frontend *fe)
{
	unsigned skip;

	if (!fe->spin_ns || spin_watch_fd < 0)
		return false;
	skip = atomic_load_explicit(&fe->spin_skip, memory_order_relaxed);
	if (skip) {
		atomic_store_explicit(&fe->spin_skip, skip - 1, memory_order_relaxed);
		return false;
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Submission                                                         */
/* ------------------------------------------------------------------ */

static unsigned indirect_pages_for(unsigned segs)
{
	return (segs + XBD_BLKIF_SEGS_PER_INDIRECT_PAGE - 1) /
	       XBD_BLKIF_SEGS_PER_INDIRECT_PAGE;
}

/* Waits for a free slot and npages pool pages; takes them (from io's
 * reservation, if it has one).  Returns the slot index or -errno (the
 * device failed or is closing). */
static int take_resources_locked(struct xbd_frontend *fe, struct fe_io *io,
				 unsigned npages)
{
	bool reserved = io->reserved != 0;
	bool counted = false;
	struct fe_slot *s;
	unsigned i, k;

	for (;;) {
		if (fe->err)
			return fe->err;
		if (fe->closing)
			return -EIO;
		if (fe->free_slot < fe->nr_slots &&
		    (reserved ? fe->nr_free_pages
			      : fe->nr_free_pages - fe->nr_reserved) >= npages)
			break;
		if (!counted) {
			xbd_stat_add_serialised(&fe->stats.ring_full, 1);
			counted = true;
		}
		pthread_cond_wait(&fe->space, &fe->lock);
	}
	i = fe->free_slot;
	s = &fe->slots[i];
	fe->free_slot = s->next_free;
	s->state = SLOT_PREPARING;
	s->nr_pages = npages;
	for (k = 0; k < npages; k++)
		s->pages[k] = fe->free_pages[--fe->nr_free_pages];
	if (reserved) {
		fe->nr_reserved -= npages;
		io->reserved -= npages;
	}
	return (int)i;
}

/* Segment k of a prepared read or write: page k, from sector 0 of the
 * page (data is copied, so it need not follow the disk's alignment). */
static void slot_segment(const struct xbd_frontend *fe, const struct fe_slot *s,
			 unsigned k, struct xbd_blkif_seg *seg)
{
	uint32_t left = s->bytes - k * XBD_PAGE_SIZE;
	uint32_t n = left < XBD_PAGE_SIZE ? left : XBD_PAGE_SIZE;

	seg->gref = fe->pool_refs[s->pages[k]];
	seg->first_sect = 0;
	seg->last_sect = (uint8_t)(n / 512u - 1);
}

/* Builds the request of a prepared slot (and its indirect pages). */
static void build_request(struct xbd_frontend *fe, const struct fe_slot *s,
			  struct xbd_blkif_request *req)
{
	struct xbd_blkif_seg chunk[XBD_BLKIF_SEGS_PER_INDIRECT_PAGE];
	unsigned k, j, nseg = s->nr_segments;

	memset(req, 0, sizeof(*req));
	req->id = s->id;
	req->op = s->op;
	req->ring_op = s->ring_op;
	req->indirect = s->indirect;
	req->sector = s->sector;
	req->nr_segments = nseg;
	if (s->op == BLKIF_OP_DISCARD) {
		req->nr_sectors = s->nr_sectors;
		return;
	}
	if (!s->indirect) {
		for (k = 0; k < nseg; k++)
			slot_segment(fe, s, k, &req->seg[k]);
		return;
	}
	for (j = 0; j * XBD_BLKIF_SEGS_PER_INDIRECT_PAGE < nseg; j++) {
		unsigned first = j * XBD_BLKIF_SEGS_PER_INDIRECT_PAGE;
		unsigned cnt = nseg - first < XBD_BLKIF_SEGS_PER_INDIRECT_PAGE
				       ? nseg - first
				       : XBD_BLKIF_SEGS_PER_INDIRECT_PAGE;
		uint32_t page = s->pages[nseg + j];

		for (k = 0; k < cnt; k++)
			slot_segment(fe, s, first + k, &chunk[k]);
		xbd_blkif_write_indirect_segments(pool_page(fe, page), chunk, cnt);
		req->indirect_grefs[j] = fe->pool_refs[page];
	}
}

/* Puts one part of io on the ring.  op: the BLKIF op; for reads and
 * writes [skip, skip+bytes) of the io; nr_sectors for a discard.
 * Returns 0 or -errno (then the part was not counted in io). */
static int submit_part(struct xbd_frontend *fe, struct fe_io *io, uint8_t op,
		       uint64_t sector, uint64_t skip, uint32_t bytes,
		       uint64_t nr_sectors)
{
	unsigned nseg = 0, npages = 0;
	bool indirect = false, notify;
	struct xbd_blkif_request req;
	struct fe_slot *s;
	int idx, err;

	if (op == BLKIF_OP_READ || op == BLKIF_OP_WRITE) {
		nseg = (bytes + XBD_PAGE_SIZE - 1) / XBD_PAGE_SIZE;
		indirect = nseg > XBD_BLKIF_MAX_SEGS;
		npages = nseg + (indirect ? indirect_pages_for(nseg) : 0);
		nr_sectors = bytes / 512u;
	}

	pthread_mutex_lock(&fe->lock);
	idx = take_resources_locked(fe, io, npages);
	if (idx < 0) {
		pthread_mutex_unlock(&fe->lock);
		return idx;
	}
	s = &fe->slots[idx];
	s->id = (s->generation << SLOT_BITS) | (uint64_t)idx;
	s->io = io;
	s->op = op;
	s->ring_op = indirect ? BLKIF_OP_INDIRECT : op;
	s->indirect = indirect;
	s->sector = sector;
	s->nr_segments = nseg;
	s->bytes = nseg ? bytes : 0;
	s->nr_sectors = nr_sectors;
	s->io_skip = skip;
	io->parts++;
	pthread_mutex_unlock(&fe->lock);

	if (op == BLKIF_OP_WRITE)
		copy_data(fe, s, true);
	build_request(fe, s, &req);

	pthread_mutex_lock(&fe->lock);
	err = fe->err ? fe->err : fe->closing ? -EIO : 0;
	if (!err && io->spin && fe->pending != 0)
		*io->spin = false; /* not alone: the completion thread's */
	/* Re-arm a ring a spinning submitter left unarmed, unless this
	 * request's submitter spins for it itself; nothing is in flight
	 * then, so no answer can have come unnotified. */
	if (!err && fe->rsp_unarmed && !(io->spin && *io->spin)) {
		fe->rsp_unarmed = false;
		xbd_blkif_front_final_check(&fe->ring);
	}
	/* a slot guarantees a ring entry (slots == ring entries); a full
	 * ring here means our own accounting broke: fail safe */
	if (!err && xbd_blkif_front_put_request(&fe->ring, &req))
		err = -EIO;
	if (err) {
		pages_free_locked(fe, s);
		slot_free_locked(fe, (unsigned)idx);
		io->parts--;
		pthread_cond_broadcast(&fe->space);
		pthread_mutex_unlock(&fe->lock);
		return err;
	}
	s->state = SLOT_PENDING;
	if (fe->pending++ == 0)
		fe->last_progress_ns = xbd_now_ns();
	if (fe->pending > fe->pending_max)
		fe->pending_max = fe->pending;
	s->start_ns = xbd_stats_now(&fe->stats);
	if (indirect)
		xbd_stat_add_serialised(&fe->stats.indirect_reqs, 1);
	notify = xbd_blkif_front_push_requests(&fe->ring);
	xbd_stat_add_serialised(notify ? &fe->stats.notify_sent
				       : &fe->stats.notify_suppressed, 1);
	pthread_mutex_unlock(&fe->lock);
	/* outside the lock: a system call; the event channel outlives every
	 * submitter (close comes after the last I/O has returned) */
	if (notify)
		xbd_evtchn_notify(fe->evtchn, fe->port);
	return 0;
}

static bool io_drop_guard(struct xbd_frontend *fe, struct fe_io *io, int err)
{
	bool last;

	pthread_mutex_lock(&fe->lock);
	last = io_part_done_locked(io, err);
	pthread_mutex_unlock(&fe->lock);
	return last;
}

static int check_aligned(const struct xbd_frontend *fe, uint64_t offset,
			 uint64_t len)
{
	uint64_t ss = fe->info.sector_size;

	return (offset | len) & (ss - 1) ? -EINVAL : 0;
}

/* [offset, offset+len) lies on the disk.  Checked once: by
 * xbd_frontend_submit for its callers, by the image wrappers for the
 * image adaptor (whose size is the disk's). */
static bool in_disk(const struct xbd_frontend *fe, uint64_t offset,
		    uint64_t len)
{
	uint64_t size = fe->info.sectors * 512u;

	return offset <= size && len <= size - offset;
}

/* Splits io into ring requests and submits them; io->done is called
 * once all have completed (possibly before this returns). */
static void submit_io(struct xbd_frontend *fe, struct fe_io *io)
{
	uint64_t max_bytes = (uint64_t)fe->info.max_segments * XBD_PAGE_SIZE;
	uint64_t done = 0;
	int err = 0;

	io->parts = 1; /* held until every part is on the ring */
	io->err = 0;
	switch (io->op) {
	case XBD_FRONTEND_READ:
	case XBD_FRONTEND_WRITE:
		while (done < io->len) {
			uint64_t n = io->len - done < max_bytes ? io->len - done
								: max_bytes;

			err = submit_part(fe, io,
					  io->op == XBD_FRONTEND_READ ? BLKIF_OP_READ
								      : BLKIF_OP_WRITE,
					  (io->offset + done) / 512u, done,
					  (uint32_t)n, 0);
			if (err)
				break;
			done += n;
		}
		break;
	case XBD_FRONTEND_FLUSH:
		/* nothing to make durable on a read-only disk (and the
		 * backend would refuse a flush there) */
		if (fe->info.read_only)
			break;
		if (fe->info.flush)
			err = submit_part(fe, io, BLKIF_OP_FLUSH_DISKCACHE, 0, 0, 0, 0);
		else if (fe->info.barrier)
			err = submit_part(fe, io, BLKIF_OP_WRITE_BARRIER, 0, 0, 0, 0);
		break;
	case XBD_FRONTEND_DISCARD:
		err = submit_part(fe, io, BLKIF_OP_DISCARD, io->offset / 512u, 0, 0,
				  io->len / 512u);
		break;
	}
	if (io->reserved) { /* a part failed: the rest is not taken */
		pthread_mutex_lock(&fe->lock);
		fe->nr_reserved -= io->reserved;
		io->reserved = 0;
		pthread_cond_broadcast(&fe->space);
		pthread_mutex_unlock(&fe->lock);
	}
	if (io_drop_guard(fe, io, err))
		io_finish(io);
}

static int check_submit(struct xbd_frontend *fe, enum xbd_frontend_op op,
			uint64_t offset, uint64_t len)
{
	int err = xbd_frontend_status(fe);

	if (err)
		return -EIO;
	switch (op) {
	case XBD_FRONTEND_WRITE:
	case XBD_FRONTEND_DISCARD:
		if (fe->info.read_only)
			return -EROFS;
		if (op == XBD_FRONTEND_DISCARD && !fe->info.discard)
			return -EOPNOTSUPP;
		/* fall through */
	case XBD_FRONTEND_READ:
		return check_aligned(fe, offset, len);
	case XBD_FRONTEND_FLUSH:
		return 0;
	}
	return -EINVAL;
}

struct async_io {
	struct fe_io io;
	xbd_frontend_done_fn done;
	void *opaque;
};

static void async_done(void *opaque, int err)
{
	struct async_io *a = opaque;
	xbd_frontend_done_fn done = a->done;
	void *user = a->opaque;

	free(a);
	done(user, err);
}

/* Starts a checked request. */
static int submit_async(struct xbd_frontend *fe, enum xbd_frontend_op op,
			const struct iovec *iov, int iovcnt, uint64_t offset,
			uint64_t len, xbd_frontend_done_fn done, void *opaque)
{
	struct async_io *a;

	if ((op == XBD_FRONTEND_READ || op == XBD_FRONTEND_WRITE) &&
	    xbd_iov_length(iov, iovcnt) < len)
		return -EINVAL;
	a = calloc(1, sizeof(*a));
	if (!a)
		return -ENOMEM;
	a->done = done;
	a->opaque = opaque;
	a->io = (struct fe_io){ .fe = fe, .op = op, .iov = iov, .iovcnt = iovcnt,
				.offset = offset, .len = len, .done = async_done,
				.opaque = a };
	submit_io(fe, &a->io);
	return 0;
}

int xbd_frontend_submit(struct xbd_frontend *fe, enum xbd_frontend_op op,
			const struct iovec *iov, int iovcnt, uint64_t offset,
			uint64_t len, xbd_frontend_done_fn done, void *opaque)
{
	int err = check_submit(fe, op, offset, len);

	if (!err && op != XBD_FRONTEND_FLUSH && !in_disk(fe, offset, len))
		err = -EINVAL;
	return err ? err : submit_async(fe, op, iov, iovcnt, offset, len, done,
					opaque);
}

int xbd_fe_io_submit(struct xbd_frontend *fe, enum xbd_frontend_op op,
		     const struct iovec *iov, int iovcnt, uint64_t offset,
		     uint64_t len, xbd_frontend_done_fn done, void *opaque)
{
	int err = check_submit(fe, op, offset, len);

	assert(op == XBD_FRONTEND_FLUSH || in_disk(fe, offset, len));
	return err ? err : submit_async(fe, op, iov, iovcnt, offset, len, done,
					opaque);
}

/* Pool pages a read of len bytes takes, its parts' indirect pages
 * included. */
static unsigned read_pages_for(const struct xbd_frontend *fe, uint64_t len)
{
	uint64_t max_bytes = (uint64_t)fe->info.max_segments * XBD_PAGE_SIZE;
	unsigned need = 0;

	for (uint64_t at = 0; at < len; at += max_bytes) {
		uint64_t n = len - at < max_bytes ? len - at : max_bytes;
		unsigned segs = (unsigned)((n + XBD_PAGE_SIZE - 1) / XBD_PAGE_SIZE);

		need += segs + (segs > XBD_BLKIF_MAX_SEGS ? indirect_pages_for(segs) : 0);
	}
	return need;
}

int xbd_fe_io_read_lent(struct xbd_frontend *fe, uint64_t offset,
			uint64_t len, xbd_fe_lent_fn done, void *opaque)
{
	int err = check_submit(fe, XBD_FRONTEND_READ, offset, len);
	unsigned need, nlent;
	struct fe_io *io;
	bool spin, counted;

	assert(in_disk(fe, offset, len));
	if (err)
		return err;
	if (len == 0)
		return -EINVAL;
	need = read_pages_for(fe, len);
	if (need > fe->pool_pages / 2)
		return -E2BIG;
	nlent = (unsigned)((len + XBD_PAGE_SIZE - 1) / XBD_PAGE_SIZE);
	/* the io, the iovec array lent_finish fills, the page list */
	io = malloc(sizeof(*io) + nlent * (sizeof(struct iovec) + sizeof(uint32_t)));
	if (!io)
		return -ENOMEM;
	*io = (struct fe_io){ .fe = fe, .op = XBD_FRONTEND_READ, .offset = offset,
			      .len = len, .opaque = opaque, .nlent = nlent,
			      .lent_done = done };
	io->lent = (uint32_t *)((struct iovec *)(io + 1) + nlent);
	memset(io->lent, 0xff, nlent * sizeof(uint32_t));
	/* All of the read's pages promised at once: parts that each held
	 * pages while waiting for more, held by other reads' answered
	 * parts, could wait for one another forever. */
	pthread_mutex_lock(&fe->lock);
	while (!fe->err && !fe->closing &&
	       fe->nr_free_pages - fe->nr_reserved < need)
		pthread_cond_wait(&fe->space, &fe->lock);
	err = fe->err ? fe->err : fe->closing ? -EIO : 0;
	if (!err) {
		fe->nr_reserved += need;
		io->reserved = need;
	}
	pthread_mutex_unlock(&fe->lock);
	if (err) {
		free(io);
		return err;
	}
	/* one ring request: a synchronous reader's, if nothing else is in
	 * flight (submit_part decides) */
	spin = len <= (uint64_t)fe->info.max_segments * XBD_PAGE_SIZE &&
	       may_spin(fe);
	io->spin = spin ? &spin : NULL;
	/* counted before the read can finish: its caller may then let go
	 * of the disk, and a close waits for us (xbd_fe_io_wait_spinners) */
	counted = spin;
	if (counted)
		atomic_fetch_add_explicit(&fe->spinners, 1, memory_order_relaxed);
	submit_io(fe, io);
	/* io may be gone now; spin may have been cleared (not alone) */
	if (spin)
		spin_for_answer(fe);
	/* release: our last touch of fe comes before a close sees 0 */
	if (counted)
		atomic_fetch_sub_explicit(&fe->spinners, 1, memory_order_release);
	return 0;
}

struct sync_wait {
	pthread_mutex_t m;
	pthread_cond_t cv;
	bool done;
	int err;
};

static void sync_done(void *opaque, int err)
{
	struct sync_wait *w = opaque;

	pthread_mutex_lock(&w->m);
	w->err = err;
	w->done = true;
	pthread_cond_signal(&w->cv);
	pthread_mutex_unlock(&w->m);
}

int xbd_fe_io_sync(struct xbd_frontend *fe, enum xbd_frontend_op op,
		   const struct iovec *iov, int iovcnt, uint64_t offset,
		   uint64_t len)
{
	struct sync_wait w = { .done = false };
	struct fe_io io = { .fe = fe, .op = op, .iov = iov, .iovcnt = iovcnt,
			    .offset = offset, .len = len, .done = sync_done,
			    .opaque = &w };
	int err = check_submit(fe, op, offset, len);

	assert(op == XBD_FRONTEND_FLUSH || in_disk(fe, offset, len));
	if (err)
		return err;
	if (len == 0 && (op == XBD_FRONTEND_READ || op == XBD_FRONTEND_WRITE))
		return 0;
	pthread_mutex_init(&w.m, NULL);
	pthread_cond_init(&w.cv, NULL);
	submit_io(fe, &io);
	pthread_mutex_lock(&w.m);
	while (!w.done)
		pthread_cond_wait(&w.cv, &w.m);
	pthread_mutex_unlock(&w.m);
	pthread_cond_destroy(&w.cv);
	pthread_mutex_destroy(&w.m);
	return w.err;
}

/* ------------------------------------------------------------------ */
/* Information                                                        */
/* ------------------------------------------------------------------ */

void xbd_frontend_get_info(const struct xbd_frontend *fe,
			   struct xbd_frontend_info *info)
{
	*info = fe->info;
}

/* The frontend never counts in flight in the stats (its submitters and
 * its completion thread would share that counter): pending is it,
 * stored there when someone looks. */
static void publish_in_flight_locked(struct xbd_frontend *fe)
{
	atomic_store_explicit(&fe->stats.in_flight, fe->pending,
			      memory_order_relaxed);
	atomic_store_explicit(&fe->stats.in_flight_max, fe->pending_max,
			      memory_order_relaxed);
}

struct xbd_stats *xbd_frontend_stats(struct xbd_frontend *fe)
{
	pthread_mutex_lock(&fe->lock);
	publish_in_flight_locked(fe);
	pthread_mutex_unlock(&fe->lock);
	return &fe->stats;
}

void xbd_frontend_ctl_query(void *opaque, struct xbd_ctl_state *st)
{
	struct xbd_frontend *fe = opaque;
	unsigned i;

	pthread_mutex_lock(&fe->lock);
	publish_in_flight_locked(fe);
	st->xenbus_state = fe->state;
	st->sectors = fe->info.sectors;
	st->sector_size = fe->info.sector_size;
	st->features.ring_pages = fe->info.ring_pages;
	st->features.persistent = fe->info.persistent;
	st->features.max_indirect_segments =
		fe->info.max_segments > XBD_BLKIF_MAX_SEGS ? fe->info.max_segments : 0;
	st->features.flush = fe->info.flush;
	st->features.barrier = fe->info.barrier;
	st->features.discard = fe->info.discard;
	snprintf(st->features.protocol, sizeof(st->features.protocol), "%s",
		 xbd_blkif_abi_protocol(XBD_BLKIF_ABI_X86_64));
	if (fe->ring_mem)
		xbd_blkif_front_state(&fe->ring, &st->ring);
	if (st->inflight) {
		st->inflight_len = 0;
		st->inflight_total = 0;
		for (i = 0; i < fe->nr_slots; i++) {
			const struct fe_slot *s = &fe->slots[i];
			struct xbd_ctl_request *q;

			if (s->state != SLOT_PENDING)
				continue;
			st->inflight_total++;
			if (st->inflight_len >= st->inflight_cap)
				continue;
			q = &st->inflight[st->inflight_len++];
			q->id = s->id;
			q->op = s->op;
			q->indirect = s->indirect;
			q->nr_segments = (uint16_t)s->nr_segments;
			q->sector = s->sector;
			q->start_ns = s->start_ns;
		}
	}
	pthread_mutex_unlock(&fe->lock);
}

/* ------------------------------------------------------------------ */
/* Slots                                                              */
/* ------------------------------------------------------------------ */

/* Sizes the shadow table once the segment count is known. */
int xbd_fe_io_setup(struct xbd_frontend *fe, unsigned max_segs_cfg)
{
	unsigned segs = XBD_BLKIF_MAX_SEGS, i;

	if (fe->info.max_indirect_segments > XBD_BLKIF_MAX_SEGS) {
		segs = max_segs_cfg ? max_segs_cfg : DEFAULT_MAX_SEGMENTS;
		if (segs > fe->info.max_indirect_segments)
			segs = fe->info.max_indirect_segments;
	}
	/* a request never needs more than half the pool: no deadlock
	 * between two large requests each holding part of it */
	while (segs > 1 && segs + (segs > XBD_BLKIF_MAX_SEGS ?
				   indirect_pages_for(segs) : 0) > fe->pool_pages / 2)
		segs /= 2;
	fe->info.max_segments = segs;
	/* A lone read's submitter spinning for its answer
	 * (spin_for_answer): XBD_FE_SPIN_US microseconds at most; off
	 * by default until a quiet machine shows it pays (under load,
	 * 50 us was a wash: tests/bench/README.md). */
	{
		const char *env = getenv("XBD_FE_SPIN_US");
		unsigned long long us = FE_SPIN_US;

		if (env && xbd_parse_uint(env, 100000, &us))
			us = FE_SPIN_US;
		fe->spin_ns = us * 1000u;
	}
	fe->pages_per_slot = segs + (segs > XBD_BLKIF_MAX_SEGS ?
				     indirect_pages_for(segs) : 0);

	fe->nr_slots = fe->info.ring_entries;
	fe->slots = calloc(fe->nr_slots, sizeof(*fe->slots));
	fe->slot_pages = calloc((size_t)fe->nr_slots * fe->pages_per_slot,
				sizeof(*fe->slot_pages));
	fe->batch = calloc(fe->nr_slots, sizeof(*fe->batch));
	fe->finished = calloc(fe->nr_slots, sizeof(*fe->finished));
	fe->batch_done = calloc(fe->nr_slots, sizeof(*fe->batch_done));
	fe->free_pages = calloc(fe->pool_pages, sizeof(*fe->free_pages));
	if (!fe->slots || !fe->slot_pages || !fe->batch || !fe->finished ||
	    !fe->batch_done ||
	    !fe->free_pages)
		return -ENOMEM;
	for (i = 0; i < fe->nr_slots; i++) {
		fe->slots[i].pages = fe->slot_pages + (size_t)i * fe->pages_per_slot;
		fe->slots[i].next_free = i + 1;
	}
	fe->free_slot = 0;
	for (i = 0; i < fe->pool_pages; i++)
		fe->free_pages[i] = fe->pool_pages - 1 - i;
	fe->nr_free_pages = fe->pool_pages;
	return 0;
}

bool xbd_fe_io_wait_drained(struct xbd_frontend *fe, unsigned ms)
{
	unsigned long long deadline = xbd_now_ns() + ms * 1000000ull;
	bool busy;

	for (;;) {
		unsigned i;

		pthread_mutex_lock(&fe->lock);
		busy = false;
		for (i = 0; i < fe->nr_slots && !busy; i++)
			busy = fe->slots[i].state != SLOT_FREE;
		pthread_mutex_unlock(&fe->lock);
		if (!busy || xbd_now_ns() >= deadline)
			return !busy;
		fe_sleep_ms(5);
	}
}

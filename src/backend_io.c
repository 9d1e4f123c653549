/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The backend's data path.  Each queue (ring) has a thread that takes
 * requests off the ring (copied once and validated by ring/blkif_ring.c),
 * reaches the guest's data through persistently mapped grants or grant
 * copy, and hands the image I/O to the device's worker threads, so a slow
 * request does not stall the ring; images that never sleep (null) are
 * served inline, and so are small reads that the image can serve without
 * waiting (raw: from the page cache), the worker getting only those that
 * would wait.  Responses are pushed with event-index notification and
 * the final check before the thread sleeps; a queue's event channel stays
 * masked from the pending read until the ring is drained.
 */
#include "backend_priv.h"
#include "xbd/common.h"
#include "xbd/ctl.h"

#include <errno.h>
#include <poll.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define SECTOR 512u

static void wake(int fd)
{
	uint64_t one = 1;
	ssize_t r = write(fd, &one, sizeof(one));

	(void)r; /* a full eventfd counter already wakes the reader */
}

static void drain_wake(int fd)
{
	uint64_t v;
	ssize_t r = read(fd, &v, sizeof(v));

	(void)r; /* EAGAIN: nothing to drain */
}

/* ------------------------------------------------------------------ */
/* Persistent grants                                                  */
/* ------------------------------------------------------------------ */

static struct be_pgrant *pg_slot(struct be_queue *q, uint32_t gref)
{
	unsigned mask = q->pg_size - 1;
	unsigned i = (gref * 2654435761u) & mask;

	/* the table is never more than half full: an empty slot ends it */
	while (q->pg[i].used && q->pg[i].gref != gref)
		i = (i + 1) & mask;
	return &q->pg[i];
}

/* The page of gref mapped persistently (mapping it on first use), or
 * NULL: grant copy instead (no persistent grants, pool full, a grant we
 * cannot map, or a read-only grant where the guest's page is written). */
static void *pg_get(struct be_queue *q, uint32_t gref, bool write_to_guest)
{
	struct be_dev *d = q->dev;
	struct be_pgrant *e;
	void *addr;
	bool writable = true;
	int err;

	if (!q->pg)
		return NULL;
	e = pg_slot(q, gref);
	if (e->used)
		return !write_to_guest || e->writable ? e->addr : NULL;
	if (q->pg_count >= q->pg_max)
		return NULL;
	err = xbd_map_grants(d->be->p, d->fe_domid, 1, &gref, true, &addr);
	if (err == -EPERM) {
		/* a read-only grant still serves the guest's writes */
		writable = false;
		err = xbd_map_grants(d->be->p, d->fe_domid, 1, &gref,
					    false, &addr);
	}
	if (err) {
		/* out of mapping room (gntdev's limit, memory): stop trying,
		 * grant copy serves the rest */
		if (err != -EINVAL && err != -EPERM && err != -ESRCH)
			q->pg_max = q->pg_count;
		return NULL;
	}
	e->used = true;
	e->gref = gref;
	e->writable = writable;
	e->addr = addr;
	q->pg_count++;
	xbd_stat_add(&d->stats.pgrants_in_use, 1);
	return !write_to_guest || writable ? addr : NULL;
}

static void pg_release_all(struct be_queue *q)
{
	struct be_dev *d = q->dev;
	unsigned i;

	if (!q->pg)
		return;
	for (i = 0; i < q->pg_size; i++) {
		if (!q->pg[i].used)
			continue;
		xbd_unmap_grants(d->be->p, q->pg[i].addr, 1);
		atomic_fetch_sub_explicit(&d->stats.pgrants_in_use, 1,
					  memory_order_relaxed);
	}
	free(q->pg);
	q->pg = NULL;
	q->pg_count = 0;
}

/* ------------------------------------------------------------------ */
/* Building a request's data                                          */
/* ------------------------------------------------------------------ */

#define PREP_HOLD 1 /* not now: retry when requests in flight complete */

static void append_iov(struct be_req *r, void *base, size_t len)
{
	struct iovec *prev = r->iovcnt ? &r->iov[r->iovcnt - 1] : NULL;

	if (prev && (char *)prev->iov_base + prev->iov_len == (char *)base) {
		prev->iov_len += len;
		return;
	}
	r->iov[r->iovcnt].iov_base = base;
	r->iov[r->iovcnt].iov_len = len;
	r->iovcnt++;
}

static void bounce_free(struct be_queue *q, struct be_req *r)
{
	free(r->bounce);
	q->bounce_bytes -= r->bounce_cap;
	r->bounce = NULL;
	r->bounce_cap = 0;
}

/* 0, PREP_HOLD (over the memory budget while others are in flight), or
 * -ENOMEM. */
static int bounce_reserve(struct be_queue *q, struct be_req *r, size_t need)
{
	size_t cap = (need + XBD_PAGE_SIZE - 1) & ~(size_t)(XBD_PAGE_SIZE - 1);

	if (need <= r->bounce_cap)
		return 0;
	if (q->bounce_bytes - r->bounce_cap + cap > BE_BOUNCE_BUDGET &&
	    q->dispatched > 0)
		return PREP_HOLD;
	bounce_free(q, r);
	r->bounce = aligned_alloc(XBD_PAGE_SIZE, cap);
	if (!r->bounce)
		return -ENOMEM;
	r->bounce_cap = cap;
	q->bounce_bytes += cap;
	return 0;
}

/* Each segment's bytes: a persistently mapped page where there is one,
 * else a slice of the bounce buffer that grant copy fills or drains. */
static int prepare_data(struct be_queue *q, struct be_req *r)
{
	bool to_guest = r->req.op == BLKIF_OP_READ;
	uint32_t i, n = r->req.nr_segments;
	size_t need = 0, pos = 0;
	int err;

	/* first pass: which segments are mapped (iov[i] holds the page
	 * address or NULL, uncompacted) */
	for (i = 0; i < n; i++) {
		const struct xbd_blkif_seg *s = &r->segs[i];
		size_t len = (size_t)(s->last_sect - s->first_sect + 1) * SECTOR;
		char *page = pg_get(q, s->gref, to_guest);

		r->iov[i].iov_base = page ? page + s->first_sect * SECTOR : NULL;
		r->iov[i].iov_len = len;
		if (!page)
			need += len;
	}
	if (need) {
		err = bounce_reserve(q, r, need);
		if (err)
			return err;
	}
	/* second pass: compact into disk order, merging neighbours */
	r->iovcnt = 0;
	r->ncopies = 0;
	for (i = 0; i < n; i++) {
		const struct xbd_blkif_seg *s = &r->segs[i];
		void *base = r->iov[i].iov_base;
		size_t len = r->iov[i].iov_len;

		if (!base) {
			struct xbd_grant_copy *c = &r->copies[r->ncopies++];

			base = r->bounce + pos;
			pos += len;
			*c = (struct xbd_grant_copy){
				.domid = q->dev->fe_domid,
				.ref = s->gref,
				.offset = (uint16_t)(s->first_sect * SECTOR),
				.len = (uint16_t)len,
				.to_grant = to_guest,
				.local = base,
			};
		}
		append_iov(r, base, len);
	}
	return 0;
}

/* Runs the request's grant copies; -EFAULT if any segment failed. */
static int copy_grants(struct be_req *r)
{
	struct be_dev *d = r->q->dev;
	unsigned i;
	int err;

	err = xbd_copy_grants(d->be->p, r->copies, r->ncopies);
	if (err)
		return -EFAULT;
	for (i = 0; i < r->ncopies; i++)
		if (r->copies[i].status)
			return -EFAULT;
	return 0;
}

/* An indirect request's segment descriptors, read once from its
 * indirect pages (mapped persistently, or copied in). */
static int16_t read_indirect(struct be_queue *q, struct be_req *r)
{
	struct be_dev *d = q->dev;
	const void *pages[XBD_BLKIF_MAX_INDIRECT_PAGES];
	struct xbd_grant_copy copies[XBD_BLKIF_MAX_INDIRECT_PAGES];
	unsigned i, ncopies = 0, n = r->req.nr_indirect_pages;
	int16_t st;

	if (n > XBD_BLKIF_MAX_INDIRECT_PAGES || !q->ind_pages) {
		r->err_kind = XBD_ERR_BAD_REQUEST;
		return BLKIF_RSP_ERROR;
	}
	for (i = 0; i < n; i++) {
		pages[i] = pg_get(q, r->req.indirect_grefs[i], false);
		if (pages[i])
			continue;
		pages[i] = (char *)q->ind_pages + (size_t)i * XBD_PAGE_SIZE;
		copies[ncopies++] = (struct xbd_grant_copy){
			.domid = d->fe_domid,
			.ref = r->req.indirect_grefs[i],
			.len = XBD_PAGE_SIZE,
			.local = (void *)pages[i],
		};
	}
	if (ncopies) {
		int err = xbd_copy_grants(d->be->p, copies, ncopies);

		for (i = 0; !err && i < ncopies; i++)
			if (copies[i].status)
				err = copies[i].status;
		if (err) {
			r->err_kind = XBD_ERR_BAD_GRANT;
			return BLKIF_RSP_ERROR;
		}
	}
	st = xbd_blkif_read_indirect_segments(&r->req, &d->lim, pages,
					      r->ind_segs);
	if (st != BLKIF_RSP_OKAY)
		r->err_kind = XBD_ERR_BAD_REQUEST;
	return st;
}

/* ------------------------------------------------------------------ */
/* Executing (worker thread, or inline for nonblocking images)        */
/* ------------------------------------------------------------------ */

static void set_status(struct be_req *r, int err)
{
	if (err) {
		r->status = err == -EOPNOTSUPP ? BLKIF_RSP_EOPNOTSUPP
					       : BLKIF_RSP_ERROR;
		r->err_kind = err == -EFAULT ? XBD_ERR_BAD_GRANT : XBD_ERR_IO;
	} else {
		r->status = BLKIF_RSP_OKAY;
	}
}

static void execute(struct be_req *r)
{
	struct xbd_image *img = r->q->dev->image;
	uint64_t off = r->req.sector * SECTOR;
	int err = 0;

	switch (r->req.op) {
	case BLKIF_OP_READ:
		err = xbd_image_preadv(img, r->iov, r->iovcnt, off);
		if (!err && r->ncopies)
			err = copy_grants(r);
		break;
	case BLKIF_OP_WRITE:
	case BLKIF_OP_FLUSH_DISKCACHE:
	case BLKIF_OP_WRITE_BARRIER:
		if (r->req.nr_segments) {
			if (r->ncopies)
				err = copy_grants(r);
			if (!err)
				err = xbd_image_pwritev(img, r->iov, r->iovcnt, off);
		}
		/* durable before the answer: this write and all before it */
		if (!err && r->req.op != BLKIF_OP_WRITE)
			err = xbd_image_flush(img);
		break;
	case BLKIF_OP_DISCARD:
		err = xbd_image_discard(img, off, r->req.nr_sectors * SECTOR);
		break;
	default:
		err = -EINVAL;
		break;
	}
	set_status(r, err);
}

/* A small read tried here on the queue thread, without waiting (see
 * BE_INLINE_READ_MAX).  False: it would wait, or this image cannot try;
 * a worker does it. */
static bool read_inline(struct be_queue *q, struct be_req *r)
{
	struct xbd_image *img = q->dev->image;
	int err;

	if (!q->try_nowait || r->req.op != BLKIF_OP_READ ||
	    r->req.nr_sectors * SECTOR > BE_INLINE_READ_MAX)
		return false;
	err = xbd_image_try_preadv_nowait(img, r->iov, r->iovcnt,
					  r->req.sector * SECTOR);
	if (err == -EOPNOTSUPP)
		q->try_nowait = false;
	if (err)
		return false; /* the worker's preadv waits, or names the error */
	if (r->ncopies)
		err = copy_grants(r);
	set_status(r, err);
	return true;
}

static void *worker_main(void *arg)
{
	struct be_dev *d = arg;

	pthread_mutex_lock(&d->job_lock);
	for (;;) {
		struct be_req *r;
		struct be_queue *q;
		bool first;

		while (!d->job_head && !d->workers_stop)
			pthread_cond_wait(&d->job_cond, &d->job_lock);
		r = d->job_head;
		if (!r)
			break;
		d->job_head = r->next;
		if (!d->job_head)
			d->job_tail = NULL;
		pthread_mutex_unlock(&d->job_lock);

		execute(r);
		q = r->q;
		pthread_mutex_lock(&q->done_lock);
		first = !q->done;
		r->next = q->done;
		q->done = r;
		pthread_mutex_unlock(&q->done_lock);
		if (first)
			wake(q->wake_fd);

		pthread_mutex_lock(&d->job_lock);
	}
	pthread_mutex_unlock(&d->job_lock);
	return NULL;
}

static void submit_job(struct be_dev *d, struct be_req *r)
{
	r->next = NULL;
	pthread_mutex_lock(&d->job_lock);
	if (d->job_tail)
		d->job_tail->next = r;
	else
		d->job_head = r;
	d->job_tail = r;
	pthread_cond_signal(&d->job_cond);
	pthread_mutex_unlock(&d->job_lock);
}

/* ------------------------------------------------------------------ */
/* The queue thread                                                   */
/* ------------------------------------------------------------------ */

static enum xbd_stat_op stat_op_of(uint8_t op)
{
	switch (op) {
	case BLKIF_OP_WRITE:
		return XBD_OP_WRITE;
	case BLKIF_OP_WRITE_BARRIER:
		return XBD_OP_BARRIER;
	case BLKIF_OP_FLUSH_DISKCACHE:
		return XBD_OP_FLUSH;
	case BLKIF_OP_DISCARD:
		return XBD_OP_DISCARD;
	default:
		return XBD_OP_READ;
	}
}

static bool op_writes(uint8_t op)
{
	return op == BLKIF_OP_WRITE || op == BLKIF_OP_WRITE_BARRIER ||
	       op == BLKIF_OP_FLUSH_DISKCACHE || op == BLKIF_OP_DISCARD;
}

static void push(struct be_queue *q);

/* Requests taken enter the stats' in-flight count in one addition per
 * batch; called before anything leaves it, so it never goes below 0. */
static void flush_taken(struct be_queue *q)
{
	if (q->taken_uncounted) {
		xbd_stats_inflight_add(&q->dev->stats, q->taken_uncounted);
		q->taken_uncounted = 0;
	}
}

/* Queues the response and gives the slot back.  An answered request
 * leaves the stats at the push (see count_answered). */
static void answer(struct be_queue *q, struct be_req *r, int16_t status)
{
	struct be_dev *d = q->dev;
	/* Linux blkback answers an indirect request with its real op */
	uint8_t op = r->req.indirect ? r->req.op : r->req.ring_op;

	xbd_blkif_back_put_response(&q->ring, r->req.id, op, status);
	q->answered++;
	atomic_store_explicit(&r->pub_meta, 0, memory_order_relaxed);
	if (r->counted && status == BLKIF_RSP_OKAY) {
		q->unpushed[q->nunpushed++] = (struct xbd_stats_done){
			.start_ns = r->t0,
			.sectors = r->req.nr_sectors,
			.op = r->stat_op,
		};
	} else if (r->counted) {
		flush_taken(q);
		xbd_stats_inflight_dec(&d->stats);
	}
	r->counted = false;
	if (status != BLKIF_RSP_OKAY && r->err_kind >= 0)
		xbd_stat_add(&d->stats.errors[r->err_kind], 1);
	/* big bounce buffers are not kept while memory is tight */
	if (r->bounce_cap > (256u << 10) && q->bounce_bytes > BE_BOUNCE_BUDGET / 2)
		bounce_free(q, r);
	r->next = q->free;
	q->free = r;
	q->inflight--;
	if (q->nunpushed == BE_STATS_BATCH)
		push(q);
}

static void complete(struct be_queue *q, struct be_req *r)
{
	q->dispatched--;
	if (r->req.op == BLKIF_OP_WRITE_BARRIER)
		q->barrier_running = false;
	answer(q, r, r->status);
}

/* Hands a taken request to I/O, or holds it back: a barrier waits until
 * everything before it has completed, and a request that needs bounce
 * memory over the budget waits for others to give theirs back. */
static void dispatch(struct be_queue *q, struct be_req *r)
{
	struct be_dev *d = q->dev;
	int err;

	if (r->req.op == BLKIF_OP_WRITE_BARRIER && q->dispatched > 0) {
		q->held = r;
		return;
	}
	if (r->req.nr_segments && r->req.op != BLKIF_OP_DISCARD) {
		err = prepare_data(q, r);
		if (err == PREP_HOLD) {
			q->held = r;
			return;
		}
		if (err) {
			r->err_kind = XBD_ERR_IO;
			answer(q, r, BLKIF_RSP_ERROR);
			return;
		}
	}
	if (r->req.op == BLKIF_OP_WRITE_BARRIER)
		q->barrier_running = true;
	q->dispatched++;
	if (d->image->nonblocking) {
		execute(r);
		complete(q, r);
	} else if (read_inline(q, r)) {
		complete(q, r);
	} else {
		submit_job(d, r);
	}
}

/* now: when the batch this request came in with was taken off the
 * ring (xbd_now_ns(), one read per batch). */
static void take(struct be_queue *q, struct be_req *r, uint64_t now)
{
	struct be_dev *d = q->dev;
	int16_t st;

	r->segs = r->req.seg;
	r->iovcnt = 0;
	r->ncopies = 0;
	r->err_kind = -1;
	r->counted = false;
	if (r->req.status != BLKIF_RSP_OKAY) {
		r->err_kind = d->lim.read_only && op_writes(r->req.op)
				      ? XBD_ERR_READ_ONLY
				      : XBD_ERR_BAD_REQUEST;
		answer(q, r, r->req.status);
		return;
	}
	r->stat_op = stat_op_of(r->req.op);
	r->t0 = d->stats.enabled ? now : 0; /* in flight: flush_taken */
	q->taken_uncounted++;
	r->counted = true;
	atomic_store_explicit(&r->pub_id, r->req.id, memory_order_relaxed);
	atomic_store_explicit(&r->pub_sector, r->req.sector, memory_order_relaxed);
	atomic_store_explicit(&r->pub_start, now, memory_order_relaxed);
	/* release: a reader that sees it busy sees the fields above */
	atomic_store_explicit(&r->pub_meta,
			      PUB_BUSY | (r->req.indirect ? PUB_INDIRECT : 0) |
				      (uint32_t)r->req.op << 16 |
				      (r->req.nr_segments & 0xffff),
			      memory_order_release);
	if (r->req.indirect) {
		xbd_stat_add(&d->stats.indirect_reqs, 1);
		st = read_indirect(q, r);
		if (st != BLKIF_RSP_OKAY) {
			answer(q, r, st);
			return;
		}
		r->segs = r->ind_segs;
	}
	dispatch(q, r);
}

static void collect_completions(struct be_queue *q)
{
	struct be_req *r;

	pthread_mutex_lock(&q->done_lock);
	r = q->done;
	q->done = NULL;
	pthread_mutex_unlock(&q->done_lock);
	while (r) {
		struct be_req *next = r->next;

		complete(q, r);
		r = next;
	}
}

/* The requests answered OKAY since the last push leave flight and are
 * counted, all with one end time: the push's (one clock read per batch
 * of responses). */
static void count_answered(struct be_queue *q)
{
	struct xbd_stats *s = &q->dev->stats;

	if (!q->nunpushed)
		return;
	flush_taken(q);
	xbd_stats_end_batch(s, q->unpushed, q->nunpushed, xbd_stats_now(s));
	q->nunpushed = 0;
}

static void push(struct be_queue *q)
{
	struct be_dev *d = q->dev;

	if (!q->answered)
		return;
	q->answered = 0;
	/* counted before the guest can see the answers, so that a reader
	 * of the stats who saw them sees them counted */
	count_answered(q);
	if (xbd_blkif_back_push_responses(&q->ring)) {
		xbd_stat_add(&d->stats.notify_sent, 1);
		xbd_evtchn_notify(q->evtchn, q->local_port);
	} else {
		xbd_stat_add(&d->stats.notify_suppressed, 1);
	}
}

static void mark_broken(struct be_queue *q)
{
	struct be_dev *d = q->dev;

	xbd_stat_add(&d->stats.errors[XBD_ERR_PROTOCOL], 1);
	/* release: the counted error is seen by whoever sees it broken */
	atomic_store_explicit(&q->broken, true, memory_order_release);
	wake(d->be->wake_fd); /* the xenbus side closes the device */
}

/* Everything there is to do now: answers, new requests, the push and
 * the final check that makes sleeping safe. */
static void service(struct be_queue *q, bool stop)
{
	struct be_dev *d = q->dev;

	for (;;) {
		uint64_t taken_at;
		bool broken;

		collect_completions(q);
		if (q->held && stop) {
			struct be_req *r = q->held;

			q->held = NULL;
			r->err_kind = XBD_ERR_IO;
			answer(q, r, BLKIF_RSP_ERROR);
		} else if (q->held) {
			struct be_req *r = q->held;

			q->held = NULL;
			dispatch(q, r);
		}
		broken = atomic_load_explicit(&q->broken, memory_order_relaxed);
		taken_at = 0;
		while (!stop && !broken && !q->held && !q->barrier_running) {
			struct be_req *r = q->free;
			int n;

			if (!r) {
				xbd_stat_add(&d->stats.ring_full, 1);
				break;
			}
			n = xbd_blkif_back_next_request(&q->ring, &d->lim, &r->req);
			if (n == 0)
				break;
			if (n < 0) {
				mark_broken(q);
				broken = true;
				break;
			}
			q->free = r->next;
			q->inflight++;
			if (!taken_at)
				taken_at = xbd_now_ns(); /* once per batch */
			take(q, r, taken_at);
		}
		flush_taken(q);
		push(q);
		if (stop || broken || q->held || q->barrier_running || !q->free)
			return;
		/* re-arms req_event; requests that raced in are taken now */
		if (!xbd_blkif_back_final_check(&q->ring))
			return;
	}
}

static void *queue_main(void *arg)
{
	struct be_queue *q = arg;
	struct be_dev *d = q->dev;
	struct pollfd pfd[2] = {
		{ .fd = xbd_evtchn_fd(q->evtchn), .events = POLLIN },
		{ .fd = q->wake_fd, .events = POLLIN },
	};

	for (;;) {
		/* acquire: pairs with xbd_be_io_stop's release of the flag */
		bool stop = atomic_load_explicit(&q->stop, memory_order_acquire);
		bool ours = false;
		uint32_t port;

		drain_wake(q->wake_fd);
		/* pending() masks the port: it stays masked until the ring is
		 * drained, so a flood of events costs one pass */
		while (xbd_evtchn_pending(q->evtchn, &port) == 0) {
			xbd_stat_add(&d->stats.notify_received, 1);
			if (port == q->local_port)
				ours = true;
			else
				xbd_evtchn_unmask(q->evtchn, port);
		}
		service(q, stop);
		if (ours)
			xbd_evtchn_unmask(q->evtchn, q->local_port);
		if (stop && q->inflight == 0)
			break;
		if (poll(pfd, 2, -1) < 0 && errno != EINTR)
			break;
		/* a dead channel (peer gone) stays readable: stop watching it
		 * and let the xenbus side tear the device down */
		if (pfd[0].revents & (POLLERR | POLLHUP | POLLNVAL))
			pfd[0].fd = -1;
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                     */
/* ------------------------------------------------------------------ */

static int alloc_slots(struct be_queue *q)
{
	struct be_dev *d = q->dev;
	unsigned nents = q->ring.r.native.nr_ents;
	unsigned maxseg = d->lim.max_indirect_segments > XBD_BLKIF_MAX_SEGS
				  ? d->lim.max_indirect_segments
				  : XBD_BLKIF_MAX_SEGS;
	unsigned i;

	q->nslots = nents < BE_MAX_INFLIGHT ? nents : BE_MAX_INFLIGHT;
	q->slots = calloc(q->nslots, sizeof(*q->slots));
	if (!q->slots)
		return -ENOMEM;
	for (i = 0; i < q->nslots; i++) {
		struct be_req *r = &q->slots[i];

		r->q = q;
		r->iov = calloc(maxseg, sizeof(*r->iov));
		r->copies = calloc(maxseg, sizeof(*r->copies));
		if (d->lim.max_indirect_segments)
			r->ind_segs = calloc(d->lim.max_indirect_segments,
					     sizeof(*r->ind_segs));
		if (!r->iov || !r->copies ||
		    (d->lim.max_indirect_segments && !r->ind_segs))
			return -ENOMEM;
		r->next = q->free;
		q->free = r;
	}
	return 0;
}

static void free_slots(struct be_queue *q)
{
	unsigned i;

	for (i = 0; q->slots && i < q->nslots; i++) {
		struct be_req *r = &q->slots[i];

		free(r->iov);
		free(r->copies);
		free(r->ind_segs);
		bounce_free(q, r);
	}
	free(q->slots);
	q->slots = NULL;
	q->free = NULL;
	q->nslots = 0;
}

static int queue_setup(struct be_queue *q, const char **why)
{
	struct be_dev *d = q->dev;
	int err;

	err = xbd_map_grants(d->be->p, d->fe_domid, q->nr_ring_pages,
			      q->ring_refs, true, &q->ring_mem);
	if (err) {
		q->ring_mem = NULL;
		*why = "cannot map the ring";
		return err;
	}
	err = xbd_blkif_back_init(&q->ring, q->ring_mem, q->nr_ring_pages, d->abi);
	if (err) {
		*why = "bad ring size";
		return err;
	}
	err = xbd_evtchn_open(d->be->p, &q->evtchn);
	if (err) {
		q->evtchn = NULL;
		*why = "cannot open an event channel";
		return err;
	}
	err = xbd_evtchn_bind_interdomain(q->evtchn, d->fe_domid,
					   q->remote_port, &q->local_port);
	if (err) {
		*why = "cannot bind the event channel";
		return err;
	}
	q->port_bound = true;
	q->try_nowait = xbd_image_can_read_nowait(d->image);
	*why = "out of memory";
	if (alloc_slots(q))
		return -ENOMEM;
	if (d->persistent && d->be->params.persistent_max) {
		q->pg_max = d->be->params.persistent_max;
		q->pg_size = 1;
		while (q->pg_size <= 2 * q->pg_max)
			q->pg_size <<= 1;
		q->pg = calloc(q->pg_size, sizeof(*q->pg));
		if (!q->pg)
			return -ENOMEM;
	}
	if (d->lim.max_indirect_segments) {
		q->ind_pages = aligned_alloc(XBD_PAGE_SIZE,
					     XBD_BLKIF_MAX_INDIRECT_PAGES *
						     XBD_PAGE_SIZE);
		if (!q->ind_pages)
			return -ENOMEM;
	}
	return 0;
}

static void queue_teardown(struct be_queue *q)
{
	struct be_dev *d = q->dev;

	pg_release_all(q);
	free_slots(q);
	free(q->ind_pages);
	q->ind_pages = NULL;
	if (q->evtchn) {
		if (q->port_bound)
			xbd_evtchn_unbind(q->evtchn, q->local_port);
		xbd_evtchn_close(q->evtchn);
		q->evtchn = NULL;
		q->port_bound = false;
	}
	if (q->ring_mem) {
		xbd_unmap_grants(d->be->p, q->ring_mem, q->nr_ring_pages);
		q->ring_mem = NULL;
	}
	if (q->wake_fd >= 0) {
		close(q->wake_fd);
		q->wake_fd = -1;
	}
	pthread_mutex_destroy(&q->done_lock);
}

int xbd_be_io_start(struct be_dev *d, const char **why)
{
	unsigned i;
	int err = 0;

	/* everything stop() looks at is valid before the first failure */
	for (i = 0; i < d->nr_queues; i++) {
		struct be_queue *q = &d->queues[i];

		q->dev = d;
		q->index = i;
		q->wake_fd = -1;
		pthread_mutex_init(&q->done_lock, NULL);
	}
	pthread_mutex_init(&d->job_lock, NULL);
	pthread_cond_init(&d->job_cond, NULL);
	d->workers_stop = false;
	d->job_head = d->job_tail = NULL;
	pthread_mutex_lock(&d->lock);
	d->connected = true;
	pthread_mutex_unlock(&d->lock);

	for (i = 0; i < d->nr_queues; i++) {
		struct be_queue *q = &d->queues[i];

		q->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
		if (q->wake_fd < 0) {
			err = -errno;
			*why = "cannot create an eventfd";
			goto fail;
		}
		err = queue_setup(q, why);
		if (err)
			goto fail;
	}
	if (!d->image->nonblocking) {
		d->workers = calloc(d->be->params.workers, sizeof(*d->workers));
		if (!d->workers) {
			err = -ENOMEM;
			*why = "out of memory";
			goto fail;
		}
		for (i = 0; i < d->be->params.workers; i++) {
			err = -pthread_create(&d->workers[i], NULL, worker_main, d);
			if (err) {
				*why = "cannot start an I/O thread";
				goto fail;
			}
			d->nworkers++;
		}
	}
	for (i = 0; i < d->nr_queues; i++) {
		struct be_queue *q = &d->queues[i];

		err = -pthread_create(&q->thread, NULL, queue_main, q);
		if (err) {
			*why = "cannot start a ring thread";
			goto fail;
		}
		q->thread_started = true;
	}
	return 0;
fail:
	xbd_be_io_stop(d);
	return err;
}

void xbd_be_io_stop(struct be_dev *d)
{
	unsigned i;

	if (!d->connected)
		return;
	/* queue threads finish and answer what they took; the workers
	 * must still run for that */
	for (i = 0; i < d->nr_queues; i++) {
		struct be_queue *q = &d->queues[i];

		if (!q->thread_started)
			continue;
		/* release: what we did before is seen by the stopping thread */
		atomic_store_explicit(&q->stop, true, memory_order_release);
		wake(q->wake_fd);
		pthread_join(q->thread, NULL);
		q->thread_started = false;
	}
	pthread_mutex_lock(&d->job_lock);
	d->workers_stop = true;
	pthread_cond_broadcast(&d->job_cond);
	pthread_mutex_unlock(&d->job_lock);
	for (i = 0; i < d->nworkers; i++)
		pthread_join(d->workers[i], NULL);
	free(d->workers);
	d->workers = NULL;
	d->nworkers = 0;
	pthread_mutex_destroy(&d->job_lock);
	pthread_cond_destroy(&d->job_cond);

	/* the control socket may be reading ring indices: not while the
	 * ring goes away */
	pthread_mutex_lock(&d->lock);
	for (i = 0; i < d->nr_queues; i++)
		queue_teardown(&d->queues[i]);
	free(d->queues);
	d->queues = NULL;
	d->nr_queues = 0;
	d->connected = false;
	pthread_mutex_unlock(&d->lock);
}

bool xbd_be_io_broken(struct be_dev *d)
{
	unsigned i;

	for (i = 0; d->connected && i < d->nr_queues; i++)
		/* acquire: pairs with mark_broken's release */
		if (atomic_load_explicit(&d->queues[i].broken, memory_order_acquire))
			return true;
	return false;
}

void xbd_be_io_ring_state(struct be_dev *d, struct xbd_blkif_ring_state *st)
{
	memset(st, 0, sizeof(*st));
	pthread_mutex_lock(&d->lock);
	if (d->connected && d->nr_queues && d->queues[0].ring_mem)
		xbd_blkif_back_state(&d->queues[0].ring, st);
	pthread_mutex_unlock(&d->lock);
}

void xbd_be_io_inflight(struct be_dev *d, struct xbd_ctl_state *st)
{
	unsigned i, j;

	/* we can list them: none unless found below */
	st->inflight_total = 0;
	st->inflight_len = 0;
	pthread_mutex_lock(&d->lock);
	for (i = 0; d->connected && i < d->nr_queues; i++) {
		struct be_queue *q = &d->queues[i];

		for (j = 0; q->slots && j < q->nslots; j++) {
			struct be_req *r = &q->slots[j];
			/* acquire: pairs with take()'s release of the fields */
			uint32_t meta = atomic_load_explicit(&r->pub_meta,
							     memory_order_acquire);
			struct xbd_ctl_request *out;

			if (!(meta & PUB_BUSY))
				continue;
			st->inflight_total++;
			if (st->inflight_len >= st->inflight_cap)
				continue;
			out = &st->inflight[st->inflight_len++];
			out->id = atomic_load_explicit(&r->pub_id, memory_order_relaxed);
			out->sector = atomic_load_explicit(&r->pub_sector,
							   memory_order_relaxed);
			out->start_ns = atomic_load_explicit(&r->pub_start,
							     memory_order_relaxed);
			out->op = (uint8_t)(meta >> 16);
			out->indirect = meta & PUB_INDIRECT;
			out->nr_segments = (uint16_t)meta;
		}
	}
	pthread_mutex_unlock(&d->lock);
}

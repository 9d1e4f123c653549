/*
 * The user-space blkfront (include/xbd/frontend.h): handshake, a pool of
 * pages granted once and reused for every request, the shadow table of
 * requests in flight, response validation, and the liveness rules that
 * turn a vanished backend into -EIO instead of a hang.
 *
 * Threads: any number of submitters; one completion thread per device
 * (event channel, responses, the no-progress timeout); one monitor
 * thread per device (backend state and domain, over xenstore, so that a
 * slow xenstore never delays the completion thread).  fe->lock guards
 * the ring, the shadow table, the page pool and the device state.
 *
 * Data is copied between the caller's buffers and the pool pages, never
 * handed to the backend in place: a backend writing into a page after
 * its request was failed can only scribble on the pool, which a failed
 * device never uses again.
 */
#include "xbd/frontend.h"
#include "xbd/common.h"
#include "xbd/ctl.h"
#include "xbd/image.h"
#include "xbd/ring.h"
#include "xbd/stats.h"
#include "xbd/xenbus.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define MIN_POOL_PAGES 16u
#define DEFAULT_MAX_SEGMENTS 128u   /* 512 KiB per request */
#define POLL_MS 100                 /* completion thread's tick */
#define MONITOR_MS 250              /* backend state / domain checks */
#define MONITOR_READ_ERRORS 4       /* failed state reads in a row: gone */
#define CLOSE_WAIT_MS 3000u         /* each close step, healthy backend */
#define CLOSE_WAIT_FAILED_MS 500u   /* each close step, failed device */
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

struct xbd_frontend {
	struct xbd_platform *p;
	const struct xbd_platform_ops *ops;
	char *fe_path, *be_path, *name;
	uint16_t be_domid;
	unsigned io_timeout_ms;

	struct xbd_frontend_info info;
	enum xenbus_state state;  /* ours, as last written */

	/* grants */
	void *ring_mem;
	unsigned ring_pages;
	uint32_t ring_refs[XBD_RING_MAX_PAGES];
	void *pool;
	uint32_t *pool_refs;
	unsigned pool_pages;
	uint32_t *free_pages;     /* stack of free page indices */
	unsigned nr_free_pages;

	/* event channel */
	struct xbd_evtchn *evtchn;
	uint32_t port;
	bool port_bound;

	pthread_mutex_t lock;
	pthread_cond_t space;     /* a slot or pages were released; or failure */
	struct xbd_blkif_front ring;
	struct fe_slot *slots;
	unsigned nr_slots;
	unsigned free_slot;       /* head of the free list; nr_slots = none */
	unsigned pages_per_slot;
	uint32_t *slot_pages;
	unsigned pending;         /* slots in PENDING */
	unsigned pending_max;     /* the most there were */
	uint64_t last_progress_ns;
	int err;                  /* != 0: the device is failed */
	bool closing;

	/* completion thread's scratch: slots taken off the ring in a
	 * batch, the ios they finished, and what the stats count of them */
	unsigned *batch;
	struct fe_io **finished;
	struct xbd_stats_done *batch_done;

	pthread_t completion_thread, monitor_thread;
	bool threads_started;
	_Atomic bool stop_threads;
	pthread_mutex_t monitor_lock;
	pthread_cond_t monitor_cv;

	pthread_mutex_t rmw_lock; /* serialises unaligned writes */

	struct xbd_stats stats;
};

static const char *fe_name(const struct xbd_frontend *fe)
{
	return fe->name ? fe->name : fe->fe_path;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* ------------------------------------------------------------------ */
/* xenstore helpers                                                   */
/* ------------------------------------------------------------------ */

static int be_read_uint(struct xbd_frontend *fe, const char *key,
			unsigned long long dflt, unsigned long long *v)
{
	char path[512];
	int err;

	snprintf(path, sizeof(path), "%s/%s", fe->be_path, key);
	err = xbd_xs_read_uint(fe->p, path, v);
	if (err == -ENOENT) {
		*v = dflt;
		return 0;
	}
	return err;
}

static bool be_flag(struct xbd_frontend *fe, const char *key)
{
	unsigned long long v;

	return be_read_uint(fe, key, 0, &v) == 0 && v == 1;
}

static int fe_write(struct xbd_frontend *fe, xbd_xs_txn t, const char *key,
		    const char *fmt, unsigned long long v)
{
	char path[512];

	snprintf(path, sizeof(path), "%s/%s", fe->fe_path, key);
	return xbd_xs_printf(fe->p, t, path, fmt, v);
}

static int fe_switch_state(struct xbd_frontend *fe, enum xenbus_state s)
{
	int err = xbd_xenbus_switch_state(fe->p, fe->fe_path, s);

	if (!err)
		fe->state = s;
	return err;
}

/* False once the toolstack removed our directory: writing a state then
 * would recreate a stray node. */
static bool fe_dir_present(struct xbd_frontend *fe)
{
	char *v = NULL;
	int err = fe->ops->xs_read(fe->p, XBD_XS_NO_TXN, fe->fe_path, &v, NULL);

	free(v);
	return err != -ENOENT;
}

static bool state_is_down(enum xenbus_state s)
{
	return s == XenbusStateClosing || s == XenbusStateClosed;
}

/* Polls the backend's state until want(state) or the deadline.  0 when
 * reached; -ETIMEDOUT; -ENODEV when the backend closes (or its node
 * vanishes) while we wait for something else; other xenstore errors. */
static int wait_backend(struct xbd_frontend *fe, bool (*want)(enum xenbus_state),
			unsigned timeout_ms, enum xenbus_state *last)
{
	unsigned long long deadline = xbd_now_ns() + timeout_ms * 1000000ull;
	unsigned delay = 1;
	enum xenbus_state s = XenbusStateUnknown;
	int err;

	for (;;) {
		err = xbd_xenbus_read_state(fe->p, fe->be_path, &s);
		if (last)
			*last = s;
		if (err)
			return err;
		if (want(s))
			return 0;
		if (state_is_down(s) && !want(XenbusStateClosed))
			return -ENODEV;
		if (xbd_now_ns() >= deadline)
			return -ETIMEDOUT;
		sleep_ms(delay);
		if (delay < 50)
			delay *= 2;
	}
}

static bool want_initwait(enum xenbus_state s)
{
	return s == XenbusStateInitWait;
}

static bool want_connected(enum xenbus_state s)
{
	return s == XenbusStateConnected;
}

static bool want_closing(enum xenbus_state s)
{
	/* Unknown: the node is gone, nobody will answer */
	return s == XenbusStateClosing || s == XenbusStateClosed ||
	       s == XenbusStateUnknown;
}

static bool want_closed(enum xenbus_state s)
{
	return s == XenbusStateClosed || s == XenbusStateUnknown;
}

/* ------------------------------------------------------------------ */
/* Failing the device                                                 */
/* ------------------------------------------------------------------ */

static void io_finish(struct fe_io *io)
{
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

static void fail_device(struct xbd_frontend *fe, int err, const char *why)
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
	fail_device(fe, -EIO, why);
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

/* A read's data, from its pages to the caller's buffers. */
static void copy_out(struct xbd_frontend *fe, const struct fe_slot *s)
{
	uint32_t done = 0;
	unsigned k;

	for (k = 0; done < s->bytes; k++) {
		uint32_t n = s->bytes - done < XBD_PAGE_SIZE ? s->bytes - done
							     : XBD_PAGE_SIZE;

		xbd_iov_from_buf(s->io->iov, s->io->iovcnt, s->io_skip + done,
				 pool_page(fe, s->pages[k]), n);
		done += n;
	}
}

static void copy_in(struct xbd_frontend *fe, const struct fe_slot *s)
{
	uint32_t done = 0;
	unsigned k;

	for (k = 0; done < s->bytes; k++) {
		uint32_t n = s->bytes - done < XBD_PAGE_SIZE ? s->bytes - done
							     : XBD_PAGE_SIZE;

		xbd_iov_to_buf(s->io->iov, s->io->iovcnt, s->io_skip + done,
			       pool_page(fe, s->pages[k]), n);
		done += n;
	}
}

/*
 * Takes every available response off the ring and completes it.  Data
 * is copied out without the lock (slots are COMPLETING meanwhile, so a
 * second response for them is still a violation).  Returns the number of
 * responses handled.
 */
static unsigned drain_responses(struct xbd_frontend *fe)
{
	struct fe_io **finished = fe->finished;
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
	while (n < fe->nr_slots) {
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
		fe->batch[n++] = (unsigned)idx;
	}
	if (n)
		fe->last_progress_ns = xbd_now_ns();
	pthread_mutex_unlock(&fe->lock);

	for (i = 0; i < n; i++) {
		struct fe_slot *s = &fe->slots[fe->batch[i]];

		if (s->status == BLKIF_RSP_OKAY && s->op == BLKIF_OP_READ)
			copy_out(fe, s);
	}

	if (n) {
		unsigned nerr = 0;

		now = xbd_stats_now(&fe->stats);
		pthread_mutex_lock(&fe->lock);
		for (i = 0; i < n; i++) {
			unsigned idx = fe->batch[i];
			struct fe_slot *s = &fe->slots[idx];
			int err = status_errno(s->status);

			fe->batch_done[i] = (struct xbd_stats_done){
				.start_ns = s->start_ns,
				.sectors = err ? 0 : s->nr_sectors,
				.op = stat_op(s->op),
			};
			nerr += err != 0;
			pages_free_locked(fe, s);
			if (io_part_done_locked(s->io, err))
				finished[nfin++] = s->io;
			slot_free_locked(fe, idx);
		}
		pthread_cond_broadcast(&fe->space);
		pthread_mutex_unlock(&fe->lock);
		/* outside the lock: batch_done is this thread's, and in
		 * flight is ours (publish_in_flight_locked), not the stats' */
		xbd_stats_complete_batch(&fe->stats, fe->batch_done, n, now);
		if (nerr)
			xbd_stat_add(&fe->stats.errors[XBD_ERR_IO], nerr);
		for (i = 0; i < nfin; i++)
			io_finish(finished[i]);
	}

	if (why) {
		xbd_stat_add(&fe->stats.errors[XBD_ERR_PROTOCOL], 1);
		fail_device(fe, -EIO, why);
	}
	return n;
}

static void check_progress(struct xbd_frontend *fe)
{
	bool stalled;

	pthread_mutex_lock(&fe->lock);
	stalled = !fe->err && fe->pending &&
		  xbd_now_ns() - fe->last_progress_ns >
			  (unsigned long long)fe->io_timeout_ms * 1000000ull;
	pthread_mutex_unlock(&fe->lock);
	if (stalled) {
		char why[96];

		snprintf(why, sizeof(why), "backend did not answer for %u ms",
			 fe->io_timeout_ms);
		fail_device(fe, -EIO, why);
	}
}

static void *completion_main(void *arg)
{
	struct xbd_frontend *fe = arg;
	struct pollfd pfd = { .fd = fe->ops->evtchn_fd(fe->evtchn),
			      .events = POLLIN };

	while (!atomic_load(&fe->stop_threads)) {
		bool got = false;
		uint32_t port;

		if (poll(&pfd, 1, POLL_MS) > 0) {
			while (fe->ops->evtchn_pending(fe->evtchn, &port) == 0) {
				if (port == fe->port)
					got = true;
				else
					fe->ops->evtchn_unmask(fe->evtchn, port);
			}
			if (got)
				xbd_stat_add(&fe->stats.notify_received, 1);
		}
		/* Look at the ring on every tick, event or not: a lost
		 * notification costs a tick, not a hang. */
		for (;;) {
			bool more;

			drain_responses(fe);
			pthread_mutex_lock(&fe->lock);
			more = !fe->err && xbd_blkif_front_final_check(&fe->ring);
			pthread_mutex_unlock(&fe->lock);
			if (!more)
				break;
		}
		/* after draining: events from now on wake us again */
		if (got)
			fe->ops->evtchn_unmask(fe->evtchn, fe->port);
		check_progress(fe);
	}
	return NULL;
}

/* Backend state and domain: a backend that leaves Connected, vanishes
 * from xenstore, or whose domain dies fails the device at once. */
static void *monitor_main(void *arg)
{
	struct xbd_frontend *fe = arg;
	unsigned read_errors = 0;

	for (;;) {
		struct timespec ts;
		enum xenbus_state s;
		char why[128];
		int err, alive;
		bool stop;

		clock_gettime(CLOCK_REALTIME, &ts);
		ts.tv_nsec += MONITOR_MS * 1000000L;
		if (ts.tv_nsec >= 1000000000L) {
			ts.tv_sec++;
			ts.tv_nsec -= 1000000000L;
		}
		pthread_mutex_lock(&fe->monitor_lock);
		if (!atomic_load(&fe->stop_threads))
			pthread_cond_timedwait(&fe->monitor_cv, &fe->monitor_lock, &ts);
		stop = atomic_load(&fe->stop_threads);
		pthread_mutex_unlock(&fe->monitor_lock);
		if (stop)
			break;
		if (xbd_frontend_status(fe))
			continue;

		why[0] = 0;
		err = xbd_xenbus_read_state(fe->p, fe->be_path, &s);
		read_errors = err ? read_errors + 1 : 0;
		/* one failed read may be a hiccup; xenstore gone for a second
		 * is not */
		if (err && read_errors >= MONITOR_READ_ERRORS)
			snprintf(why, sizeof(why), "cannot read backend state: %s",
				 xbd_strerror(err));
		else if (err)
			continue;
		else if (s == XenbusStateUnknown)
			snprintf(why, sizeof(why), "backend %s vanished", fe->be_path);
		else if (s != XenbusStateConnected)
			snprintf(why, sizeof(why), "backend left Connected (now %s)",
				 xbd_xenbus_state_name(s));
		if (!why[0]) {
			alive = fe->ops->domain_alive(fe->p, fe->be_domid);
			if (alive == 0)
				snprintf(why, sizeof(why), "backend domain %u is gone",
					 fe->be_domid);
		}
		if (why[0])
			fail_device(fe, -EIO, why);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Submission                                                         */
/* ------------------------------------------------------------------ */

static unsigned indirect_pages_for(unsigned segs)
{
	return (segs + XBD_BLKIF_SEGS_PER_INDIRECT_PAGE - 1) /
	       XBD_BLKIF_SEGS_PER_INDIRECT_PAGE;
}

/* Waits for a free slot and npages pool pages; takes them.  Returns the
 * slot index or -errno (the device failed or is closing). */
static int take_resources_locked(struct xbd_frontend *fe, unsigned npages)
{
	bool counted = false;
	struct fe_slot *s;
	unsigned i, k;

	for (;;) {
		if (fe->err)
			return fe->err;
		if (fe->closing)
			return -EIO;
		if (fe->free_slot < fe->nr_slots && fe->nr_free_pages >= npages)
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
	idx = take_resources_locked(fe, npages);
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
		copy_in(fe, s);
	build_request(fe, s, &req);

	pthread_mutex_lock(&fe->lock);
	err = fe->err ? fe->err : fe->closing ? -EIO : 0;
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
		fe->ops->evtchn_notify(fe->evtchn, fe->port);
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

	if ((offset | len) & (ss - 1))
		return -EINVAL;
	if (offset > fe->info.sectors * 512u ||
	    len > fe->info.sectors * 512u - offset)
		return -EINVAL;
	return 0;
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

int xbd_frontend_submit(struct xbd_frontend *fe, enum xbd_frontend_op op,
			const struct iovec *iov, int iovcnt, uint64_t offset,
			uint64_t len, xbd_frontend_done_fn done, void *opaque)
{
	struct async_io *a;
	int err = check_submit(fe, op, offset, len);

	if (err)
		return err;
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

static int sync_io(struct xbd_frontend *fe, enum xbd_frontend_op op,
		   const struct iovec *iov, int iovcnt, uint64_t offset,
		   uint64_t len)
{
	struct sync_wait w = { .done = false };
	struct fe_io io = { .fe = fe, .op = op, .iov = iov, .iovcnt = iovcnt,
			    .offset = offset, .len = len, .done = sync_done,
			    .opaque = &w };
	int err = check_submit(fe, op, offset, len);

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
/* The image                                                          */
/* ------------------------------------------------------------------ */

struct fe_image {
	struct xbd_image img;
	struct xbd_frontend *fe;
};

static struct xbd_frontend *image_fe(struct xbd_image *img)
{
	return ((struct fe_image *)img)->fe;
}

/* [*a0, *a1): the smallest sector-aligned range covering [off, off+len). */
static void align_range(const struct xbd_frontend *fe, uint64_t off,
			uint64_t len, uint64_t *a0, uint64_t *a1)
{
	uint64_t ss = fe->info.sector_size;

	*a0 = off & ~(ss - 1);
	*a1 = (off + len + ss - 1) & ~(ss - 1);
}

static int fe_img_preadv(struct xbd_image *img, const struct iovec *iov,
			 int iovcnt, uint64_t offset)
{
	struct xbd_frontend *fe = image_fe(img);
	size_t len = xbd_iov_length(iov, iovcnt);
	uint64_t a0, a1;
	struct iovec b;
	int err = xbd_image_check_io(img, offset, len, false);

	if (err)
		return err;
	align_range(fe, offset, len, &a0, &a1);
	if (a0 == offset && a1 == offset + len)
		return sync_io(fe, XBD_FRONTEND_READ, iov, iovcnt, offset, len);
	/* unaligned: read the covering sectors into a bounce buffer */
	b.iov_len = a1 - a0;
	b.iov_base = malloc(b.iov_len);
	if (!b.iov_base)
		return -ENOMEM;
	err = sync_io(fe, XBD_FRONTEND_READ, &b, 1, a0, b.iov_len);
	if (!err)
		xbd_iov_from_buf(iov, iovcnt, 0, (char *)b.iov_base + (offset - a0),
				 len);
	free(b.iov_base);
	return err;
}

/* Sector-aligned reads go to the ring and return at once; others take
 * the synchronous path (with its bounce buffer) and finish here. */
static int fe_img_preadv_async(struct xbd_image *img, const struct iovec *iov,
			       int iovcnt, uint64_t offset,
			       xbd_image_done_fn done, void *opaque)
{
	struct xbd_frontend *fe = image_fe(img);
	size_t len = xbd_iov_length(iov, iovcnt);
	uint64_t a0, a1;
	int err = xbd_image_check_io(img, offset, len, false);

	if (err)
		return err;
	align_range(fe, offset, len, &a0, &a1);
	if (len == 0 || a0 != offset || a1 != offset + len) {
		done(opaque, fe_img_preadv(img, iov, iovcnt, offset));
		return 0;
	}
	return xbd_frontend_submit(fe, XBD_FRONTEND_READ, iov, iovcnt, offset,
				   len, done, opaque);
}

static int fe_img_pwritev(struct xbd_image *img, const struct iovec *iov,
			  int iovcnt, uint64_t offset)
{
	struct xbd_frontend *fe = image_fe(img);
	size_t len = xbd_iov_length(iov, iovcnt);
	uint64_t a0, a1;
	struct iovec b;
	int err = xbd_image_check_io(img, offset, len, true);

	if (err)
		return err;
	align_range(fe, offset, len, &a0, &a1);
	if (a0 == offset && a1 == offset + len)
		return sync_io(fe, XBD_FRONTEND_WRITE, iov, iovcnt, offset, len);
	/* unaligned: read-modify-write of the covering sectors, one at a
	 * time so that two of them cannot undo each other */
	b.iov_len = a1 - a0;
	b.iov_base = malloc(b.iov_len);
	if (!b.iov_base)
		return -ENOMEM;
	pthread_mutex_lock(&fe->rmw_lock);
	err = sync_io(fe, XBD_FRONTEND_READ, &b, 1, a0, b.iov_len);
	if (!err) {
		xbd_iov_to_buf(iov, iovcnt, 0, (char *)b.iov_base + (offset - a0),
			       len);
		err = sync_io(fe, XBD_FRONTEND_WRITE, &b, 1, a0, b.iov_len);
	}
	pthread_mutex_unlock(&fe->rmw_lock);
	free(b.iov_base);
	return err;
}

static int fe_img_flush(struct xbd_image *img)
{
	return sync_io(image_fe(img), XBD_FRONTEND_FLUSH, NULL, 0, 0, 0);
}

static int fe_img_discard(struct xbd_image *img, uint64_t offset, uint64_t len)
{
	int err = xbd_image_check_io(img, offset, len, true);

	if (err)
		return err;
	return sync_io(image_fe(img), XBD_FRONTEND_DISCARD, NULL, 0, offset, len);
}

static void fe_img_close(struct xbd_image *img)
{
	free(img);
}

static const struct xbd_image_ops fe_image_ops = {
	.name = "blkfront",
	.preadv = fe_img_preadv,
	.pwritev = fe_img_pwritev,
	.flush = fe_img_flush,
	.discard = fe_img_discard,
	.close = fe_img_close,
	.preadv_async = fe_img_preadv_async,
};

int xbd_frontend_open_image(struct xbd_frontend *fe, bool read_only,
			    struct xbd_image **out)
{
	struct fe_image *fi;

	if (!read_only && fe->info.read_only)
		return -EROFS;
	fi = calloc(1, sizeof(*fi));
	if (!fi)
		return -ENOMEM;
	fi->fe = fe;
	fi->img.ops = &fe_image_ops;
	fi->img.size = fe->info.sectors * 512u;
	fi->img.sector_size = fe->info.sector_size;
	fi->img.read_only = read_only;
	fi->img.can_flush = fe->info.flush || fe->info.barrier;
	fi->img.can_discard = !read_only && fe->info.discard;
	fi->img.nonblocking = false;
	*out = &fi->img;
	return 0;
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
/* Connection                                                         */
/* ------------------------------------------------------------------ */

/* Shares the pool, as large as the budget allows, halving on refusal
 * (gntalloc's limit counts every grant of the host). */
static int share_pool(struct xbd_frontend *fe, unsigned want)
{
	int err = -ENOMEM;
	unsigned n;

	for (n = want; n >= MIN_POOL_PAGES; n /= 2) {
		fe->pool_refs = calloc(n, sizeof(*fe->pool_refs));
		if (!fe->pool_refs)
			return -ENOMEM;
		err = fe->ops->share_pages(fe->p, fe->be_domid, n, true,
					   fe->pool_refs, &fe->pool);
		if (!err) {
			fe->pool_pages = n;
			if (n < want)
				xbd_info("%s: granted %u data pages (wanted %u)",
					 fe_name(fe), n, want);
			return 0;
		}
		free(fe->pool_refs);
		fe->pool_refs = NULL;
		if (err != -ENOSPC && err != -ENOMEM)
			break;
	}
	return err;
}

static int write_ring_nodes(struct xbd_frontend *fe, unsigned order)
{
	int tries, err = 0;

	for (tries = 0; tries < 20; tries++) {
		xbd_xs_txn t;
		unsigned i;

		err = fe->ops->xs_transaction_start(fe->p, &t);
		if (err)
			return err;
		if (order == 0) {
			err = fe_write(fe, t, "ring-ref", "%llu", fe->ring_refs[0]);
		} else {
			err = fe_write(fe, t, "ring-page-order", "%llu", order);
			for (i = 0; !err && i < fe->ring_pages; i++) {
				char key[32];

				snprintf(key, sizeof(key), "ring-ref%u", i);
				err = fe_write(fe, t, key, "%llu", fe->ring_refs[i]);
			}
		}
		if (!err)
			err = fe_write(fe, t, "event-channel", "%llu", fe->port);
		if (!err) {
			char path[512];

			snprintf(path, sizeof(path), "%s/protocol", fe->fe_path);
			err = fe->ops->xs_write(fe->p, t, path, XEN_IO_PROTO_ABI_X86_64,
						strlen(XEN_IO_PROTO_ABI_X86_64));
		}
		if (!err)
			err = fe_write(fe, t, "feature-persistent", "%llu", 1);
		if (err) {
			fe->ops->xs_transaction_end(fe->p, t, true);
			return err;
		}
		err = fe->ops->xs_transaction_end(fe->p, t, false);
		if (err != -EAGAIN)
			return err;
	}
	return err;
}

static void remove_ring_nodes(struct xbd_frontend *fe)
{
	static const char *const keys[] = {
		"ring-ref", "ring-page-order", "event-channel", "protocol",
		"feature-persistent",
	};
	char path[512];
	unsigned i;

	for (i = 0; i < XBD_ARRAY_SIZE(keys); i++) {
		snprintf(path, sizeof(path), "%s/%s", fe->fe_path, keys[i]);
		fe->ops->xs_rm(fe->p, XBD_XS_NO_TXN, path);
	}
	for (i = 0; i < XBD_RING_MAX_PAGES; i++) {
		snprintf(path, sizeof(path), "%s/ring-ref%u", fe->fe_path, i);
		fe->ops->xs_rm(fe->p, XBD_XS_NO_TXN, path);
	}
}

/* Reads what the backend published on Connected. */
static int read_connected_info(struct xbd_frontend *fe)
{
	struct xbd_frontend_info *in = &fe->info;
	unsigned long long sectors, ssize, vinfo, ind;
	char path[512], *mode = NULL;
	int err;

	err = be_read_uint(fe, "sectors", 0, &sectors);
	if (!err)
		err = be_read_uint(fe, "sector-size", 512, &ssize);
	if (!err)
		err = be_read_uint(fe, "info", 0, &vinfo);
	if (!err)
		err = be_read_uint(fe, "feature-max-indirect-segments", 0, &ind);
	if (err) {
		xbd_err("%s: backend %s: bad connection details: %s", fe_name(fe),
			fe->be_path, xbd_strerror(err));
		return err;
	}
	if (ssize != 512 && ssize != 4096) {
		xbd_err("%s: backend %s: unsupported sector-size %llu", fe_name(fe),
			fe->be_path, ssize);
		return -EINVAL;
	}
	if (sectors == 0 || sectors > (UINT64_MAX >> 10) ||
	    (sectors & (ssize / 512 - 1))) {
		xbd_err("%s: backend %s: bad disk size (%llu sectors)", fe_name(fe),
			fe->be_path, sectors);
		return -EINVAL;
	}
	in->sectors = sectors;
	in->sector_size = (unsigned)ssize;
	in->cdrom = vinfo & VDISK_CDROM;
	in->removable = vinfo & VDISK_REMOVABLE;
	in->read_only = vinfo & VDISK_READONLY;
	snprintf(path, sizeof(path), "%s/mode", fe->be_path);
	if (xbd_xs_read_str(fe->p, path, &mode) == 0) {
		if (!strchr(mode, 'w'))
			in->read_only = true;
		free(mode);
	}
	in->flush = be_flag(fe, "feature-flush-cache");
	in->barrier = be_flag(fe, "feature-barrier");
	in->discard = be_flag(fe, "feature-discard");
	in->persistent = be_flag(fe, "feature-persistent");
	in->max_indirect_segments = ind > XBD_BLKIF_MAX_INDIRECT_SEGS
					    ? XBD_BLKIF_MAX_INDIRECT_SEGS
					    : (unsigned)ind;
	return 0;
}

/* Sizes the shadow table once the segment count is known. */
static int setup_slots(struct xbd_frontend *fe, unsigned max_segs_cfg)
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

static void release_grants(struct xbd_frontend *fe)
{
	if (fe->port_bound) {
		fe->ops->evtchn_unbind(fe->evtchn, fe->port);
		fe->port_bound = false;
	}
	if (fe->evtchn) {
		fe->ops->evtchn_close(fe->evtchn);
		fe->evtchn = NULL;
	}
	if (fe->pool) {
		fe->ops->unshare_pages(fe->p, fe->pool, fe->pool_pages);
		fe->pool = NULL;
	}
	if (fe->ring_mem) {
		fe->ops->unshare_pages(fe->p, fe->ring_mem, fe->ring_pages);
		fe->ring_mem = NULL;
	}
}

static void free_frontend(struct xbd_frontend *fe)
{
	free(fe->slots);
	free(fe->slot_pages);
	free(fe->batch);
	free(fe->finished);
	free(fe->batch_done);
	free(fe->free_pages);
	free(fe->pool_refs);
	free(fe->fe_path);
	free(fe->be_path);
	free(fe->name);
	pthread_mutex_destroy(&fe->lock);
	pthread_cond_destroy(&fe->space);
	pthread_mutex_destroy(&fe->monitor_lock);
	pthread_cond_destroy(&fe->monitor_cv);
	pthread_mutex_destroy(&fe->rmw_lock);
	free(fe);
}

static void stop_threads(struct xbd_frontend *fe)
{
	if (!fe->threads_started)
		return;
	pthread_mutex_lock(&fe->monitor_lock);
	atomic_store(&fe->stop_threads, true);
	pthread_cond_broadcast(&fe->monitor_cv);
	pthread_mutex_unlock(&fe->monitor_lock);
	pthread_join(fe->monitor_thread, NULL);
	pthread_join(fe->completion_thread, NULL);
	fe->threads_started = false;
}

/* The handshake up to our Connected, and the threads. */
static int handshake(struct xbd_frontend *fe, const struct xbd_frontend_config *cfg)
{
	unsigned timeout = cfg->connect_timeout_ms ? cfg->connect_timeout_ms
						   : XBD_FRONTEND_CONNECT_TIMEOUT_MS;
	unsigned grants = cfg->max_grants ? cfg->max_grants
					  : XBD_FRONTEND_DEFAULT_GRANTS;
	int max_order = cfg->max_ring_order < 0 ? XBD_RING_MAX_ORDER
						: cfg->max_ring_order;
	unsigned long long be_order;
	enum xenbus_state bs, own;
	unsigned order;
	int err;

	/* Initialising first: a backend that saw us Closed before goes
	 * back to InitWait on it (reconnection). */
	err = xbd_xenbus_read_state(fe->p, fe->fe_path, &own);
	if (!err && own != XenbusStateInitialising)
		err = fe_switch_state(fe, XenbusStateInitialising);
	if (err) {
		xbd_err("%s: cannot write frontend state at %s: %s", fe_name(fe),
			fe->fe_path, xbd_strerror(err));
		return err;
	}
	err = wait_backend(fe, want_initwait, timeout, &bs);
	if (err) {
		if (bs == XenbusStateConnected)
			xbd_err("%s: backend %s is already connected to another frontend",
				fe_name(fe), fe->be_path);
		else
			xbd_err("%s: backend %s did not reach InitWait (state %s): %s",
				fe_name(fe), fe->be_path, xbd_xenbus_state_name(bs),
				err == -ETIMEDOUT ? "timed out" : xbd_strerror(err));
		return err == -ETIMEDOUT ? -ETIMEDOUT : -ENODEV;
	}

	err = be_read_uint(fe, "max-ring-page-order", 0, &be_order);
	if (err)
		be_order = 0;
	order = be_order < (unsigned long long)max_order ? (unsigned)be_order
							  : (unsigned)max_order;
	if (order > XBD_RING_MAX_ORDER)
		order = XBD_RING_MAX_ORDER;
	/* the ring must leave room for a useful pool */
	while (order > 0 && (1u << order) * 4 > grants)
		order--;
	fe->ring_pages = 1u << order;
	err = fe->ops->share_pages(fe->p, fe->be_domid, fe->ring_pages, true,
				   fe->ring_refs, &fe->ring_mem);
	if (err) {
		xbd_err("%s: cannot grant the ring to domain %u: %s", fe_name(fe),
			fe->be_domid, xbd_strerror(err));
		return err;
	}
	err = xbd_blkif_front_init(&fe->ring, fe->ring_mem, fe->ring_pages,
				   XBD_BLKIF_ABI_X86_64);
	if (err)
		return err;
	fe->info.ring_pages = fe->ring_pages;
	fe->info.ring_entries = xbd_blkif_ring_entries(XBD_BLKIF_ABI_X86_64,
						       fe->ring_pages);

	err = share_pool(fe, grants > fe->ring_pages + MIN_POOL_PAGES
				     ? grants - fe->ring_pages
				     : MIN_POOL_PAGES);
	if (err) {
		xbd_err("%s: cannot grant data pages to domain %u: %s", fe_name(fe),
			fe->be_domid, xbd_strerror(err));
		return err;
	}
	fe->info.pool_pages = fe->pool_pages;

	err = fe->ops->evtchn_open(fe->p, &fe->evtchn);
	if (!err)
		err = fe->ops->evtchn_alloc_unbound(fe->evtchn, fe->be_domid,
						    &fe->port);
	if (err) {
		xbd_err("%s: cannot open an event channel to domain %u: %s",
			fe_name(fe), fe->be_domid, xbd_strerror(err));
		return err;
	}
	fe->port_bound = true;

	err = write_ring_nodes(fe, order);
	if (!err)
		err = fe_switch_state(fe, XenbusStateInitialised);
	if (err) {
		xbd_err("%s: cannot publish the ring at %s: %s", fe_name(fe),
			fe->fe_path, xbd_strerror(err));
		return err;
	}

	err = wait_backend(fe, want_connected, timeout, &bs);
	if (err) {
		xbd_err("%s: backend %s did not connect (state %s): %s", fe_name(fe),
			fe->be_path, xbd_xenbus_state_name(bs),
			err == -ETIMEDOUT ? "timed out" : xbd_strerror(err));
		return err == -ETIMEDOUT ? -ETIMEDOUT : -ENODEV;
	}
	err = read_connected_info(fe);
	if (err)
		return err;
	if (cfg->need_write && fe->info.read_only) {
		xbd_err("%s: backend %s offers the disk read-only; cannot open it for writing",
			fe_name(fe), fe->be_path);
		return -EROFS;
	}
	err = setup_slots(fe, cfg->max_segments);
	if (err)
		return err;
	if (fe->info.persistent) {
		atomic_store(&fe->stats.pgrants_max, fe->pool_pages);
		atomic_store(&fe->stats.pgrants_in_use, fe->pool_pages);
	}

	atomic_store(&fe->stop_threads, false);
	if (pthread_create(&fe->completion_thread, NULL, completion_main, fe))
		return -EAGAIN;
	if (pthread_create(&fe->monitor_thread, NULL, monitor_main, fe)) {
		atomic_store(&fe->stop_threads, true);
		pthread_join(fe->completion_thread, NULL);
		return -EAGAIN;
	}
	fe->threads_started = true;
	err = fe_switch_state(fe, XenbusStateConnected);
	if (err) {
		xbd_err("%s: cannot write frontend state: %s", fe_name(fe),
			xbd_strerror(err));
		stop_threads(fe);
		return err;
	}
	xbd_debug("%s: connected: %llu sectors of %u, %s, ring %u pages, %u data pages, %u segments/request%s",
		  fe_name(fe), (unsigned long long)fe->info.sectors,
		  fe->info.sector_size, fe->info.read_only ? "ro" : "rw",
		  fe->ring_pages, fe->pool_pages, fe->info.max_segments,
		  fe->info.persistent ? ", persistent grants" : "");
	return 0;
}

int xbd_frontend_connect(struct xbd_platform *p,
			 const struct xbd_frontend_config *cfg,
			 struct xbd_frontend **out)
{
	struct xbd_frontend *fe;
	int err;

	if (!cfg->frontend_path || !cfg->backend_path)
		return -EINVAL;
	fe = calloc(1, sizeof(*fe));
	if (!fe)
		return -ENOMEM;
	fe->p = p;
	fe->ops = xbd_platform_ops_of(p);
	fe->be_domid = cfg->backend_domid;
	fe->io_timeout_ms = cfg->io_timeout_ms ? cfg->io_timeout_ms
					       : XBD_FRONTEND_IO_TIMEOUT_MS;
	fe->fe_path = strdup(cfg->frontend_path);
	fe->be_path = strdup(cfg->backend_path);
	fe->name = cfg->name ? strdup(cfg->name) : NULL;
	pthread_mutex_init(&fe->lock, NULL);
	pthread_cond_init(&fe->space, NULL);
	pthread_mutex_init(&fe->monitor_lock, NULL);
	pthread_cond_init(&fe->monitor_cv, NULL);
	pthread_mutex_init(&fe->rmw_lock, NULL);
	xbd_stats_init(&fe->stats);
	if (!fe->fe_path || !fe->be_path || (cfg->name && !fe->name)) {
		free_frontend(fe);
		return -ENOMEM;
	}
	err = handshake(fe, cfg);
	if (err) {
		/* tell the backend we are gone, then take everything back */
		fe_switch_state(fe, XenbusStateClosed);
		release_grants(fe);
		remove_ring_nodes(fe);
		free_frontend(fe);
		return err;
	}
	*out = fe;
	return 0;
}

static bool wait_drained(struct xbd_frontend *fe, unsigned ms)
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
		sleep_ms(5);
	}
}

void xbd_frontend_close(struct xbd_frontend *fe)
{
	enum xenbus_state bs;
	bool present;
	unsigned step;
	int failed;

	if (!fe)
		return;
	/* no new I/O; what is in flight gets its chance to finish */
	pthread_mutex_lock(&fe->lock);
	fe->closing = true;
	pthread_cond_broadcast(&fe->space);
	failed = fe->err;
	pthread_mutex_unlock(&fe->lock);
	if (!failed)
		wait_drained(fe, fe->io_timeout_ms);
	/* from here on the backend closing is expected, not a failure */
	stop_threads(fe);

	step = xbd_frontend_status(fe) ? CLOSE_WAIT_FAILED_MS : CLOSE_WAIT_MS;
	present = fe_dir_present(fe);
	if (present) {
		fe_switch_state(fe, XenbusStateClosing);
		wait_backend(fe, want_closing, step, &bs);
		fe_switch_state(fe, XenbusStateClosed);
		wait_backend(fe, want_closed, step, &bs);
		if (bs != XenbusStateClosed && bs != XenbusStateUnknown)
			xbd_info("%s: backend still %s after we closed",
				 fe_name(fe), xbd_xenbus_state_name(bs));
	}

	fail_device(fe, -EIO, "closed");
	release_grants(fe);
	if (present)
		remove_ring_nodes(fe);
	free_frontend(fe);
}

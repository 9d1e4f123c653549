/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Insides of the frontend shared by its halves: src/frontend.c (the
 * xenbus side: handshake, the monitor thread, close),
 * src/frontend_io.c (the data path: slots, the page pool, submission,
 * the completion thread) and src/image_blkfront.c (the frontend as an
 * image).  The public API is include/xbd/frontend.h.
 *
 * Threads: any number of submitters; one completion thread per device
 * (event channel, responses, the no-progress timeout); one monitor
 * thread per device (backend state and domain, over xenstore, so that a
 * slow xenstore never delays the completion thread).  fe->lock guards
 * the ring, the shadow table, the page pool and the device state.
 */
#ifndef XBD_FRONTEND_PRIV_H
#define XBD_FRONTEND_PRIV_H

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <time.h>
#include <xen/io/xenbus.h>

#include "xbd/frontend.h"
#include "xbd/platform.h"
#include "xbd/ring.h"
#include "xbd/stats.h"

struct fe_slot;
struct fe_io;

struct xbd_frontend {
	struct xbd_platform *p;
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
	unsigned nr_reserved;     /* of them promised to lent reads' parts */
	/* a lone read's submitter waiting for its own answer
	 * (spin_for_answer in src/frontend_io.c) */
	uint64_t spin_ns;         /* how long at most (XBD_FE_SPIN_US), 0: never */
	_Atomic unsigned spin_misses, spin_skip;
	_Atomic unsigned spinners; /* submitters in or entering the spin */
	_Atomic uint64_t answered; /* responses taken off the ring */
	bool rsp_unarmed;         /* rsp_event left behind on purpose (lock) */

	/* event channel */
	struct xbd_evtchn *evtchn;
	uint32_t port;
	bool port_bound;

	pthread_mutex_t lock;
	pthread_cond_t space;     /* a slot or pages were released; or failure */
	struct xbd_blkif_front ring;
	struct fe_slot *slots;     /* the shadow table (src/frontend_io.c) */
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
	int stop_fd;              /* eventfd: wakes the completion thread to stop */
	pthread_mutex_t monitor_lock;
	pthread_cond_t monitor_cv;

	pthread_mutex_t rmw_lock; /* serialises unaligned writes */

	struct xbd_stats stats;
};

static inline const char *fe_name(const struct xbd_frontend *fe)
{
	return fe->name ? fe->name : fe->fe_path;
}

static inline void fe_sleep_ms(unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* --- src/frontend_io.c --- */
/* Sizes the shadow table and the page pool's free list once the
 * backend's segment limit is known (max_segs_cfg 0: the default). */
int xbd_fe_io_setup(struct xbd_frontend *fe, unsigned max_segs_cfg);
/* The completion thread (started by the handshake, stopped by close). */
void *xbd_fe_io_completion_main(void *arg);
/* Takes every response off the ring, checks it against the requests in
 * flight and completes them; a bad one fails the device.  Returns how
 * many were handled.  The completion thread's, and tests/fuzz/'s. */
unsigned xbd_fe_io_drain_responses(struct xbd_frontend *fe);
/* Returns once no submitter spins for its answer any more (before the
 * ring and the device go). */
void xbd_fe_io_wait_spinners(struct xbd_frontend *fe);

/* Marks the device failed (first err wins) and fails every request on
 * the ring with -EIO. */
void xbd_fe_io_fail(struct xbd_frontend *fe, int err, const char *why);
/* Waits up to ms for every slot to be free; true when they are. */
bool xbd_fe_io_wait_drained(struct xbd_frontend *fe, unsigned ms);
/* The image adaptor's entries: xbd_frontend_submit, and the same
 * waited for, for a range the image wrappers already checked (it is
 * only asserted here).  0 or -errno. */
int xbd_fe_io_submit(struct xbd_frontend *fe, enum xbd_frontend_op op,
		     const struct iovec *iov, int iovcnt, uint64_t offset,
		     uint64_t len, xbd_frontend_done_fn done, void *opaque);
int xbd_fe_io_sync(struct xbd_frontend *fe, enum xbd_frontend_op op,
		   const struct iovec *iov, int iovcnt, uint64_t offset,
		   uint64_t len);
/* A read whose data is lent, not copied: as xbd_image_read_lent, for
 * aligned ranges the wrappers checked, the data in the pool pages.
 * -E2BIG when the read needs more pages than a lent read may hold (the
 * caller reads it the copying way); else as xbd_fe_io_submit. */
typedef bool (*xbd_fe_lent_fn)(void *opaque, int err, struct iovec *iov,
			       int iovcnt, void *loan);
int xbd_fe_io_read_lent(struct xbd_frontend *fe, uint64_t offset,
			uint64_t len, xbd_fe_lent_fn done, void *opaque);
/* Gives a loan the done of xbd_fe_io_read_lent kept back to the pool. */
void xbd_fe_io_lent_return(struct xbd_frontend *fe, void *loan);

#endif

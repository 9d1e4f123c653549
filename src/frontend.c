/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The user-space blkfront's xenbus side (include/xbd/frontend.h): the
 * handshake that grants the ring and the page pool and follows the
 * backend to Connected, the monitor thread that turns a vanished
 * backend or domain into a failed device instead of a hang, and close.
 * The data path is in src/frontend_io.c; src/frontend_priv.h has the
 * device struct and the threads.
 */
#include "frontend_priv.h"
#include "xbd/common.h"
#include "xbd/xenbus.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#define MIN_POOL_PAGES 16u
#define MONITOR_MS 250              /* backend state / domain checks */
#define MONITOR_READ_ERRORS 4       /* failed state reads in a row: gone */
#define CLOSE_WAIT_MS 3000u         /* each close step, healthy backend */
#define CLOSE_WAIT_FAILED_MS 500u   /* each close step, failed device */

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
	int err = xbd_xs_read(fe->p, XBD_XS_NO_TXN, fe->fe_path, &v, NULL);

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
		fe_sleep_ms(delay);
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
			alive = xbd_domain_alive(fe->p, fe->be_domid);
			if (alive == 0)
				snprintf(why, sizeof(why), "backend domain %u is gone",
					 fe->be_domid);
		}
		if (why[0])
			xbd_fe_io_fail(fe, -EIO, why);
	}
	return NULL;
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
		err = xbd_share_pages(fe->p, fe->be_domid, n, true,
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

struct ring_nodes {
	struct xbd_frontend *fe;
	unsigned order;
};

static int ring_nodes_txn(struct xbd_platform *p, xbd_xs_txn t, void *arg)
{
	const struct ring_nodes *rn = arg;
	struct xbd_frontend *fe = rn->fe;
	char path[512];
	unsigned i;
	int err;

	(void)p;
	if (rn->order == 0) {
		err = fe_write(fe, t, "ring-ref", "%llu", fe->ring_refs[0]);
	} else {
		err = fe_write(fe, t, "ring-page-order", "%llu", rn->order);
		for (i = 0; !err && i < fe->ring_pages; i++) {
			char key[32];

			snprintf(key, sizeof(key), "ring-ref%u", i);
			err = fe_write(fe, t, key, "%llu", fe->ring_refs[i]);
		}
	}
	if (!err)
		err = fe_write(fe, t, "event-channel", "%llu", fe->port);
	if (!err) {
		snprintf(path, sizeof(path), "%s/protocol", fe->fe_path);
		err = xbd_xs_write(fe->p, t, path, XEN_IO_PROTO_ABI_X86_64,
					strlen(XEN_IO_PROTO_ABI_X86_64));
	}
	if (!err)
		err = fe_write(fe, t, "feature-persistent", "%llu", 1);
	return err;
}

static int write_ring_nodes(struct xbd_frontend *fe, unsigned order)
{
	struct ring_nodes rn = { .fe = fe, .order = order };

	return xbd_xs_transaction(fe->p, ring_nodes_txn, &rn);
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
		xbd_xs_rm(fe->p, XBD_XS_NO_TXN, path);
	}
	for (i = 0; i < XBD_RING_MAX_PAGES; i++) {
		snprintf(path, sizeof(path), "%s/ring-ref%u", fe->fe_path, i);
		xbd_xs_rm(fe->p, XBD_XS_NO_TXN, path);
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


static void release_grants(struct xbd_frontend *fe)
{
	if (fe->port_bound) {
		xbd_evtchn_unbind(fe->evtchn, fe->port);
		fe->port_bound = false;
	}
	if (fe->evtchn) {
		xbd_evtchn_close(fe->evtchn);
		fe->evtchn = NULL;
	}
	if (fe->pool) {
		xbd_unshare_pages(fe->p, fe->pool, fe->pool_pages);
		fe->pool = NULL;
	}
	if (fe->ring_mem) {
		xbd_unshare_pages(fe->p, fe->ring_mem, fe->ring_pages);
		fe->ring_mem = NULL;
	}
}

static void free_frontend(struct xbd_frontend *fe)
{
	if (fe->stop_fd >= 0)
		close(fe->stop_fd);
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

/* Makes the completion thread look at stop_threads now, not at its
 * next tick (without the eventfd it still stops, at that tick). */
static void wake_completion(struct xbd_frontend *fe)
{
	if (fe->stop_fd >= 0)
		(void)eventfd_write(fe->stop_fd, 1);
}

static void stop_threads(struct xbd_frontend *fe)
{
	if (!fe->threads_started)
		return;
	pthread_mutex_lock(&fe->monitor_lock);
	atomic_store(&fe->stop_threads, true);
	pthread_cond_broadcast(&fe->monitor_cv);
	pthread_mutex_unlock(&fe->monitor_lock);
	wake_completion(fe);
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
	err = xbd_share_pages(fe->p, fe->be_domid, fe->ring_pages, true,
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

	err = xbd_evtchn_open(fe->p, &fe->evtchn);
	if (!err)
		err = xbd_evtchn_alloc_unbound(fe->evtchn, fe->be_domid,
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
	err = xbd_fe_io_setup(fe, cfg->max_segments);
	if (err)
		return err;
	if (fe->info.persistent) {
		atomic_store(&fe->stats.pgrants_max, fe->pool_pages);
		atomic_store(&fe->stats.pgrants_in_use, fe->pool_pages);
	}

	atomic_store(&fe->stop_threads, false);
	if (pthread_create(&fe->completion_thread, NULL, xbd_fe_io_completion_main, fe))
		return -EAGAIN;
	if (pthread_create(&fe->monitor_thread, NULL, monitor_main, fe)) {
		atomic_store(&fe->stop_threads, true);
		wake_completion(fe);
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
	/* without it the completion thread sees a stop at its next tick */
	fe->stop_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
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
		xbd_fe_io_wait_drained(fe, fe->io_timeout_ms);
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

	xbd_fe_io_fail(fe, -EIO, "closed");
	xbd_fe_io_wait_spinners(fe);
	release_grants(fe);
	if (present)
		remove_ring_nodes(fe);
	free_frontend(fe);
}


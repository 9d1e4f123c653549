/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The backend's xenbus side: the nodes a device is made of, the state
 * handshake with the frontend, and the loop that follows xenstore
 * watches, domain deaths, broken rings and timeouts for every device of
 * the process.  The data path is in src/backend_io.c.
 *
 * Handshake (as Linux blkback): publish features, InitWait; when the
 * frontend is Initialised (or already Connected), map its rings, bind its
 * event channels, publish the disk's size and go Connected; when it goes
 * Closing, disconnect and follow; when it is Closed, be Closed, and go
 * away if the device is offline.  A detach (online = 0) or a stop walks
 * Closing first and waits for the frontend, at most close_timeout_ms.
 * How devices arrive (hot-plugged by `xbd serve`, adopted from a
 * toolstack's backend directory) is in src/backend_devices.c.
 */
#include "backend_priv.h"
#include "xbd/common.h"
#include "xbd/ctl.h"
#include "xbd/toolstack.h"
#include "xbd/util.h"
#include "xbd/xenbus.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

#define TOKEN_RELEASE "xbd-be-release"
#define TOKEN_DEV_PREFIX "xbd-be-dev-"
#define TICK_MS 1000

static const struct xbd_backend_params default_params = {
	.max_ring_order = XBD_BACKEND_DEFAULT_RING_ORDER,
	.max_indirect_segs = XBD_BACKEND_DEFAULT_INDIRECT_SEGS,
	.max_queues = XBD_BACKEND_DEFAULT_MAX_QUEUES,
	.persistent_max = XBD_BACKEND_DEFAULT_PERSISTENT_MAX,
	.workers = XBD_BACKEND_DEFAULT_WORKERS,
	.close_timeout_ms = XBD_BACKEND_DEFAULT_CLOSE_TIMEOUT_MS,
};

/* ------------------------------------------------------------------ */
/* xenstore helpers                                                   */
/* ------------------------------------------------------------------ */

static void join_path(char *buf, size_t len, const char *dir, const char *node)
{
	snprintf(buf, len, "%s/%s", dir, node);
}

int xbd_be_read_node(struct xbd_backend *be, const char *dir, const char *node,
		     char **value)
{
	char path[BE_PATH_MAX + 64];

	join_path(path, sizeof(path), dir, node);
	return xbd_xs_read_str(be->p, path, value);
}

int xbd_be_read_uint_node(struct xbd_backend *be, const char *dir,
			  const char *node, unsigned long long *v)
{
	char path[BE_PATH_MAX + 64];

	join_path(path, sizeof(path), dir, node);
	return xbd_xs_read_uint(be->p, path, v);
}

int xbd_be_write_node(struct xbd_backend *be, xbd_xs_txn t, const char *dir,
		      const char *node, const char *fmt, ...)
{
	char path[BE_PATH_MAX + 64];
	char *s;
	va_list ap;
	int n, err;

	join_path(path, sizeof(path), dir, node);
	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	err = xbd_xs_write(be->p, t, path, s, (size_t)n);
	free(s);
	return err;
}

const char *xbd_be_dev_label(const struct be_dev *d)
{
	return d->vm_name ? d->vm_name : "?";
}

static void emit(struct be_dev *d, enum xbd_backend_event ev, const char *msg)
{
	if (d->be->event_fn)
		d->be->event_fn(d->be->event_opaque, (struct xbd_backend_dev *)d,
				ev, msg);
}

/* Transaction bodies that write into the device's backend directory
 * first check that it is still there: a toolstack removing the device
 * must not see nodes come back.  -ENOENT: it went away. */
static int write_state_txn(struct xbd_platform *p XBD_UNUSED, xbd_xs_txn t,
			   void *arg)
{
	struct be_dev *d = arg;

	if (!xbd_xs_exists(d->be->p, t, d->be_path))
		return -ENOENT;
	return xbd_be_write_node(d->be, t, d->be_path, "state", "%d", (int)d->state);
}

/* Writes our state (d->state), in a transaction. */
static void switch_state(struct be_dev *d, enum xenbus_state state)
{
	struct xbd_backend *be = d->be;
	int err;

	d->state = state;
	err = xbd_xs_transaction(be->p, write_state_txn, d);
	if (err == -ENOENT)
		return; /* removed by the toolstack: nothing to say */
	if (err)
		xbd_debug("%s: %s: cannot write state %s: %s", xbd_be_dev_label(d),
			  d->vdev, xbd_xenbus_state_name(state),
			  xbd_strerror(err));
	else
		xbd_debug("%s: %s: backend %s", xbd_be_dev_label(d), d->vdev,
			  xbd_xenbus_state_name(state));
}

/* ------------------------------------------------------------------ */
/* Devices                                                            */
/* ------------------------------------------------------------------ */

static void ctl_query(void *opaque, struct xbd_ctl_state *st)
{
	struct be_dev *d = opaque;

	st->xenbus_state = d->state;
	if (d->connected) {
		st->features.ring_pages = 1u << d->ring_order;
		st->features.persistent = d->persistent;
		snprintf(st->features.protocol, sizeof(st->features.protocol),
			 "%s", xbd_blkif_abi_protocol(d->abi));
	}
	xbd_be_io_ring_state(d, &st->ring);
	if (st->inflight)
		xbd_be_io_inflight(d, st);
}

void xbd_be_ctl_register(struct be_dev *d)
{
	struct xbd_backend *be = d->be;
	struct xbd_ctl_device desc = {
		.vm = d->vm_name,
		.domid = d->fe_domid,
		.vdev = d->vdev,
		.devid = d->devid,
		.role = XBD_CTL_SERVE,
		.backend = d->hotplugged ? "xbd" : "blkback",
		.image = d->image_path,
		.image_format = d->image_format,
		.frontend_path = d->fe_path,
		.backend_path = d->be_path,
		.mount = d->mount,
		.read_only = d->lim.read_only,
		.sectors = d->lim.nr_sectors,
		.sector_size = d->lim.sector_size,
		.features = {
			.max_indirect_segments = d->lim.max_indirect_segments,
			.flush = d->lim.flush,
			.barrier = d->lim.barrier,
			.discard = d->lim.discard,
		},
		.stats = &d->stats,
		.query = ctl_query,
		.opaque = d,
	};

	if (!be->ctl || !d->image)
		return;
	if (xbd_ctl_add_device(be->ctl, &desc, &d->ctl_dev))
		d->ctl_dev = NULL;
}

struct be_dev *xbd_be_dev_new(struct xbd_backend *be, const char *type,
			      uint16_t fe, uint32_t devid)
{
	struct be_dev *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->be = be;
	d->serial = ++be->next_serial;
	snprintf(d->type, sizeof(d->type), "%s", type);
	d->fe_domid = fe;
	d->devid = devid;
	if (xbd_devid_to_vdev(devid, d->vdev, sizeof(d->vdev)))
		snprintf(d->vdev, sizeof(d->vdev), "%u", devid);
	xbd_backend_path(d->be_path, sizeof(d->be_path), be->self, type, fe,
			 devid);
	xbd_frontend_path(d->fe_path, sizeof(d->fe_path), fe, devid);
	snprintf(d->token, sizeof(d->token), TOKEN_DEV_PREFIX "%u", d->serial);
	d->state = XenbusStateInitialising;
	pthread_mutex_init(&d->lock, NULL);
	xbd_stats_init(&d->stats);
	d->next = be->devs;
	be->devs = d;
	return d;
}

static void dev_free(struct be_dev *d)
{
	if (d->ctl_dev)
		xbd_ctl_remove_device(d->be->ctl, d->ctl_dev);
	if (d->image)
		xbd_image_close(d->image);
	pthread_mutex_destroy(&d->lock);
	free(d->vm_name);
	free(d->image_path);
	free(d->image_format);
	free(d->mount);
	free(d);
}

void xbd_be_set_limits(struct xbd_backend *be, struct be_dev *d)
{
	struct xbd_image *img = d->image;
	bool ro = d->read_only || img->read_only;

	d->read_only = ro;
	d->lim = (struct xbd_blkif_limits){
		.nr_sectors = img->size / 512,
		.sector_size = img->sector_size ? img->sector_size : 512,
		.read_only = ro,
		.flush = !ro,
		.barrier = !ro,
		.discard = !ro && xbd_image_can_discard(img),
		.max_indirect_segments = be->params.max_indirect_segs,
	};
}

/* What we offer, written before InitWait. */
int xbd_be_write_features(struct be_dev *d, xbd_xs_txn t)
{
	struct xbd_backend *be = d->be;
	const struct xbd_blkif_limits *l = &d->lim;
	int err = 0;

	err |= xbd_be_write_node(be, t, d->be_path, "feature-flush-cache", "%d", l->flush);
	err |= xbd_be_write_node(be, t, d->be_path, "feature-barrier", "%d", l->barrier);
	err |= xbd_be_write_node(be, t, d->be_path, "feature-discard", "%d", l->discard);
	if (l->discard) {
		err |= xbd_be_write_node(be, t, d->be_path, "discard-granularity", "%u",
				  l->sector_size);
		err |= xbd_be_write_node(be, t, d->be_path, "discard-alignment", "0");
		err |= xbd_be_write_node(be, t, d->be_path, "discard-secure", "0");
	}
	err |= xbd_be_write_node(be, t, d->be_path, "feature-persistent", "%d",
			  !be->params.no_persistent);
	if (l->max_indirect_segments)
		err |= xbd_be_write_node(be, t, d->be_path,
				  "feature-max-indirect-segments", "%u",
				  l->max_indirect_segments);
	err |= xbd_be_write_node(be, t, d->be_path, "max-ring-page-order", "%u",
			  be->params.max_ring_order);
	if (be->params.max_queues > 1)
		err |= xbd_be_write_node(be, t, d->be_path, "multi-queue-max-queues",
				  "%u", be->params.max_queues);
	return err ? -EIO : 0;
}

/* Features, hotplug-status and InitWait, in one transaction. */
int xbd_be_publish_features_txn(struct xbd_platform *p XBD_UNUSED,
				xbd_xs_txn t, void *arg)
{
	struct be_dev *d = arg;
	int err;

	if (!xbd_xs_exists(d->be->p, t, d->be_path))
		return -ENOENT;
	err = xbd_be_write_features(d, t);
	err |= xbd_be_write_node(d->be, t, d->be_path, "hotplug-status", "connected");
	err |= xbd_be_write_node(d->be, t, d->be_path, "state", "%d",
			  XenbusStateInitWait);
	return err ? -EIO : 0;
}

/* A fatal error on the device, as xenbus_dev_fatal: say why in `error`,
 * stop serving, go Closing and wait for the frontend. */
static void dev_disconnect(struct be_dev *d);
void xbd_be_dev_fatal(struct be_dev *d, const char *why, int err)
{
	struct xbd_backend *be = d->be;
	char msg[256];

	if (err)
		snprintf(msg, sizeof(msg), "%s: %s", why, xbd_strerror(err));
	else
		snprintf(msg, sizeof(msg), "%s", why);
	xbd_info("%s: %s: %s", xbd_be_dev_label(d), d->vdev, msg);
	d->failed = true;
	dev_disconnect(d);
	if (xbd_xs_exists(be->p, XBD_XS_NO_TXN, d->be_path))
		xbd_be_write_node(be, XBD_XS_NO_TXN, d->be_path, "error", "%d %s",
			   err ? -err : EIO, msg);
	if (d->state != XenbusStateClosing && d->state != XenbusStateClosed)
		switch_state(d, XenbusStateClosing);
	emit(d, XBD_BACKEND_FAILED, msg);
}

static void dev_disconnect(struct be_dev *d)
{
	if (!d->connected)
		return;
	xbd_be_io_stop(d);
	xbd_debug("%s: %s: disconnected", xbd_be_dev_label(d), d->vdev);
	emit(d, XBD_BACKEND_CLOSED, NULL);
}

/* The device is done: stop serving, drop the watches and (when it is
 * ours) every node; it is freed by the loop. */
void xbd_be_dev_finish(struct be_dev *d, const char *why)
{
	struct xbd_backend *be = d->be;

	if (d->removed)
		return;
	dev_disconnect(d);
	if (d->fe_watched)
		xbd_xs_unwatch(be->p, d->fe_path, d->token);
	if (d->be_watched)
		xbd_xs_unwatch(be->p, d->be_path, d->token);
	d->fe_watched = d->be_watched = false;
	if (d->state != XenbusStateClosed)
		switch_state(d, XenbusStateClosed);
	/* ours; or a dead VM's, which no toolstack clears on the sim */
	if (d->hotplugged || d->vm_gone) {
		char parent[BE_PATH_MAX];

		if (d->hotplugged)
			xbd_xs_rm(be->p, XBD_XS_NO_TXN, d->fe_path);
		xbd_xs_rm(be->p, XBD_XS_NO_TXN, d->be_path);
		/* backend/<type>/<fe>, then backend/<type>, go with their
		 * last device (checked in a transaction: another server may
		 * be adding one) */
		snprintf(parent, sizeof(parent), "/local/domain/%u/backend/%s/%u",
			 be->self, d->type, d->fe_domid);
		xbd_xs_rm_if_empty(be->p, parent);
		if (d->hotplugged) {
			snprintf(parent, sizeof(parent), "/local/domain/%u/backend/%s",
				 be->self, d->type);
			xbd_xs_rm_if_empty(be->p, parent);
		}
		/* and what we made on the way, if nothing else is in it */
		if (d->made_be_root) {
			snprintf(parent, sizeof(parent), "/local/domain/%u/backend",
				 be->self);
			xbd_xs_rm_if_empty(be->p, parent);
		}
		if (d->made_fe_vbd) {
			snprintf(parent, sizeof(parent), "/local/domain/%u/device/vbd",
				 d->fe_domid);
			xbd_xs_rm_if_empty(be->p, parent);
		}
	}
	xbd_debug("%s: %s: removed (%s)", xbd_be_dev_label(d), d->vdev, why);
	d->removed = true;
	emit(d, XBD_BACKEND_REMOVED, why);
}

static void dev_begin_close(struct be_dev *d)
{
	if (d->closing)
		return;
	d->closing = true;
	d->close_deadline_ns = xbd_now_ns() +
			       (uint64_t)d->be->params.close_timeout_ms * 1000000u;
	if (d->state != XenbusStateClosing && d->state != XenbusStateClosed)
		switch_state(d, XenbusStateClosing);
}

static int read_fe_uint(struct be_dev *d, const char *dir, const char *node,
			unsigned long long max, unsigned long long *v)
{
	char *s = NULL;
	int err = xbd_be_read_node(d->be, dir, node, &s);

	if (!err)
		err = xbd_parse_uint(s, max, v) ? -EINVAL : 0;
	free(s);
	return err;
}

/* One queue's ring-ref(s) and event-channel, from dir. */
static int read_queue_nodes(struct be_dev *d, const char *dir,
			    struct be_queue *q, const char **why)
{
	unsigned long long v, order = 0;
	unsigned i;
	int err;

	/* ring-page-order sits in the device directory even when the refs
	 * are per queue (Linux blkfront, blkif.h); older or odd frontends
	 * may put it beside the refs: accept that too. */
	err = read_fe_uint(d, d->fe_path, "ring-page-order", 64, &order);
	if (err == -ENOENT && strcmp(dir, d->fe_path))
		err = read_fe_uint(d, dir, "ring-page-order", 64, &order);
	if (err && err != -ENOENT) {
		*why = "bad ring-page-order";
		return err;
	}
	if (order > d->be->params.max_ring_order) {
		*why = "ring-page-order above max-ring-page-order";
		return -EINVAL;
	}
	if (err == -ENOENT) {
		err = read_fe_uint(d, dir, "ring-ref", UINT32_MAX, &v);
		if (err) {
			*why = "bad or missing ring-ref";
			return err;
		}
		q->nr_ring_pages = 1;
		q->ring_refs[0] = (uint32_t)v;
	} else {
		q->nr_ring_pages = 1u << order;
		d->ring_order = (unsigned)order;
		for (i = 0; i < q->nr_ring_pages; i++) {
			char node[32];

			snprintf(node, sizeof(node), "ring-ref%u", i);
			err = read_fe_uint(d, dir, node, UINT32_MAX, &v);
			if (err) {
				*why = "bad or missing ring-ref<N>";
				return err;
			}
			q->ring_refs[i] = (uint32_t)v;
		}
	}
	err = read_fe_uint(d, dir, "event-channel", UINT32_MAX, &v);
	if (err) {
		*why = "bad or missing event-channel";
		return err;
	}
	q->remote_port = (uint32_t)v;
	return 0;
}

/* The disk's size and kind, and Connected, in one transaction. */
static int publish_disk_txn(struct xbd_platform *p XBD_UNUSED, xbd_xs_txn t,
			    void *arg)
{
	struct be_dev *d = arg;
	struct xbd_backend *be = d->be;
	int err = 0;

	if (!xbd_xs_exists(be->p, t, d->be_path))
		return -ENOENT;
	/* sectors in 512-byte units whatever sector-size says, as Linux
	 * blkback and blkfront count them */
	err |= xbd_be_write_node(be, t, d->be_path, "sectors", "%llu",
			  (unsigned long long)d->lim.nr_sectors);
	err |= xbd_be_write_node(be, t, d->be_path, "sector-size", "%u",
			  d->lim.sector_size);
	err |= xbd_be_write_node(be, t, d->be_path, "physical-sector-size", "%u",
			  d->lim.sector_size);
	err |= xbd_be_write_node(be, t, d->be_path, "info", "%u",
			  d->lim.read_only ? VDISK_READONLY : 0);
	err |= xbd_be_write_node(be, t, d->be_path, "state", "%d",
			  XenbusStateConnected);
	return err ? -EIO : 0;
}

/* Reads what the frontend published and starts serving it. */
static void dev_connect(struct be_dev *d)
{
	struct xbd_backend *be = d->be;
	unsigned long long v;
	const char *why = NULL;
	char *proto = NULL;
	unsigned i, nq = 1;
	int err;

	d->ring_order = 0;
	err = read_fe_uint(d, d->fe_path, "multi-queue-num-queues", 0xffff, &v);
	if (!err) {
		if (v == 0 || v > be->params.max_queues || be->params.max_queues < 2) {
			xbd_be_dev_fatal(d, "bad multi-queue-num-queues", -EINVAL);
			return;
		}
		nq = (unsigned)v;
	} else if (err != -ENOENT) {
		xbd_be_dev_fatal(d, "bad multi-queue-num-queues", err);
		return;
	}
	err = xbd_be_read_node(be, d->fe_path, "protocol", &proto);
	if (err && err != -ENOENT) {
		xbd_be_dev_fatal(d, "cannot read protocol", err);
		return;
	}
	err = xbd_blkif_abi_from_protocol(proto, &d->abi);
	free(proto);
	if (err) {
		xbd_be_dev_fatal(d, "unknown protocol", err);
		return;
	}
	d->persistent = false;
	if (!be->params.no_persistent &&
	    !read_fe_uint(d, d->fe_path, "feature-persistent", 1, &v))
		d->persistent = v == 1;

	d->queues = calloc(nq, sizeof(*d->queues));
	if (!d->queues) {
		xbd_be_dev_fatal(d, "out of memory", -ENOMEM);
		return;
	}
	d->nr_queues = nq;
	for (i = 0; i < nq; i++) {
		char dir[BE_PATH_MAX + 32];

		/* one queue: the nodes sit in the frontend directory itself */
		if (nq == 1)
			snprintf(dir, sizeof(dir), "%s", d->fe_path);
		else
			snprintf(dir, sizeof(dir), "%s/queue-%u", d->fe_path, i);
		err = read_queue_nodes(d, dir, &d->queues[i], &why);
		if (err)
			break;
		/* all queues use one ring size */
		if (i && d->queues[i].nr_ring_pages != d->queues[0].nr_ring_pages) {
			why = "queues with different ring sizes";
			err = -EINVAL;
			break;
		}
	}
	if (err) {
		free(d->queues);
		d->queues = NULL;
		d->nr_queues = 0;
		xbd_be_dev_fatal(d, why, err);
		return;
	}
	xbd_stat_add(&d->stats.pgrants_max,
		     d->persistent ? (uint64_t)be->params.persistent_max * nq : 0);
	err = xbd_be_io_start(d, &why);
	if (err) {
		xbd_be_dev_fatal(d, why, err);
		return;
	}

	err = xbd_xs_transaction(be->p, publish_disk_txn, d);
	if (err) {
		xbd_be_dev_fatal(d, "cannot publish the disk", err);
		return;
	}
	d->state = XenbusStateConnected;
	d->ever_connected = true;
	xbd_info("%s: %s: connected (%u queue%s, %u ring page%s, %s%s)",
		 xbd_be_dev_label(d), d->vdev, nq, nq > 1 ? "s" : "",
		 d->queues[0].nr_ring_pages,
		 d->queues[0].nr_ring_pages > 1 ? "s" : "",
		 xbd_blkif_abi_protocol(d->abi),
		 d->persistent ? ", persistent grants" : "");
	emit(d, XBD_BACKEND_CONNECTED, NULL);
}

/* Is there a ring the frontend may still be using? */
static bool fe_may_use_ring(enum xenbus_state fe)
{
	return fe == XenbusStateInitialised || fe == XenbusStateConnected ||
	       fe == XenbusStateClosing;
}

/* Something changed under the device's nodes: bring it up to date. */
void xbd_be_dev_evaluate(struct be_dev *d)
{
	struct xbd_backend *be = d->be;
	unsigned long long online = 0;
	enum xenbus_state fe;
	int err;

	if (d->removed)
		return;
	err = xbd_be_read_uint_node(be, d->be_path, "online", &online);
	if (err == -ENOENT && !xbd_xs_exists(be->p, XBD_XS_NO_TXN, d->be_path)) {
		xbd_be_dev_finish(d, "backend node removed");
		return;
	}
	if (err)
		online = 0;
	if (xbd_xenbus_read_state(be->p, d->fe_path, &fe))
		fe = XenbusStateUnknown; /* garbage reads as gone, as Linux */
	if (fe == XenbusStateUnknown && (d->fe_seen || d->hotplugged) &&
	    !xbd_xs_exists(be->p, XBD_XS_NO_TXN, d->fe_path)) {
		d->vm_gone = xbd_domain_alive(be->p, d->fe_domid) == 0;
		xbd_be_dev_finish(d, d->vm_gone ? "the VM is gone" : "frontend gone");
		return;
	}
	if (fe != XenbusStateUnknown)
		d->fe_seen = true;
	if (fe != d->fe_state)
		xbd_debug("%s: %s: frontend %s", xbd_be_dev_label(d), d->vdev,
			  xbd_xenbus_state_name(fe));
	d->fe_state = fe;
	if (!online)
		dev_begin_close(d);

	switch (fe) {
	case XenbusStateInitialising:
		/* the frontend starts over (driver reload): so do we */
		if (d->state == XenbusStateClosed && !d->closing && d->image) {
			d->failed = false;
			switch_state(d, XenbusStateInitWait);
		}
		break;
	case XenbusStateInitialised:
	case XenbusStateConnected:
		if (d->state == XenbusStateInitWait && !d->closing && !d->failed)
			dev_connect(d);
		break;
	case XenbusStateClosing:
		dev_disconnect(d);
		if (d->state != XenbusStateClosing && d->state != XenbusStateClosed)
			switch_state(d, XenbusStateClosing);
		break;
	case XenbusStateClosed:
		dev_disconnect(d);
		if (d->state != XenbusStateClosed)
			switch_state(d, XenbusStateClosed);
		if (d->closing) {
			xbd_be_dev_finish(d, "closed");
			return;
		}
		break;
	default:
		break;
	}
	/* closing, and no ring to wait for: done now */
	if (d->closing && !fe_may_use_ring(fe))
		xbd_be_dev_finish(d, "closed");
}

struct be_dev *xbd_be_find_dev(struct xbd_backend *be, const char *type,
			       uint16_t fe, uint32_t devid)
{
	struct be_dev *d;

	for (d = be->devs; d; d = d->next)
		if (!d->removed && d->fe_domid == fe && d->devid == devid &&
		    !strcmp(d->type, type))
			return d;
	return NULL;
}

int xbd_be_watch_dev(struct be_dev *d)
{
	struct xbd_backend *be = d->be;
	int err;

	err = xbd_xs_watch(be->p, d->fe_path, d->token);
	if (err)
		return err;
	d->fe_watched = true;
	/* a blkback's type watch already covers its backend nodes */
	if (d->hotplugged) {
		err = xbd_xs_watch(be->p, d->be_path, d->token);
		if (err)
			return err;
		d->be_watched = true;
	}
	return 0;
}

void xbd_be_read_vm_name(struct be_dev *d)
{
	char path[64];

	snprintf(path, sizeof(path), "/local/domain/%u/name", d->fe_domid);
	if (xbd_xs_read_str(d->be->p, path, &d->vm_name))
		d->vm_name = NULL;
	if (!d->vm_name && asprintf(&d->vm_name, "dom%u", d->fe_domid) < 0)
		d->vm_name = NULL;
}

/* ------------------------------------------------------------------ */
/* The loop                                                           */
/* ------------------------------------------------------------------ */

static void handle_watch(struct xbd_backend *be, const char *path,
			 const char *token)
{
	struct be_dev *d;

	if (!strcmp(token, XBD_BE_TOKEN_TYPE)) {
		xbd_be_type_event(be, path);
		return;
	}
	if (!strcmp(token, TOKEN_RELEASE)) {
		for (d = be->devs; d; d = d->next)
			if (!d->removed &&
			    xbd_domain_alive(be->p, d->fe_domid) == 0) {
				d->vm_gone = true;
				xbd_be_dev_finish(d, "the VM is gone");
			}
		return;
	}
	for (d = be->devs; d; d = d->next)
		if (!strcmp(d->token, token)) {
			xbd_be_dev_evaluate(d);
			return;
		}
}

static void tick(struct xbd_backend *be, uint64_t connect_deadline_ns)
{
	uint64_t now = xbd_now_ns();
	struct be_dev *d;

	for (d = be->devs; d; d = d->next) {
		if (d->removed)
			continue;
		if (xbd_domain_alive(be->p, d->fe_domid) == 0) {
			d->vm_gone = true;
			xbd_be_dev_finish(d, "the VM is gone");
			continue;
		}
		if (d->connected && xbd_be_io_broken(d))
			xbd_be_dev_fatal(d, "the frontend broke the ring", -EPROTO);
		if (d->closing && now >= d->close_deadline_ns) {
			xbd_info("%s: %s: the frontend did not close in time",
				 xbd_be_dev_label(d), d->vdev);
			xbd_be_dev_finish(d, "close timed out");
			continue;
		}
		if (connect_deadline_ns && now >= connect_deadline_ns &&
		    !d->ever_connected && d->hotplugged && !d->closing) {
			emit(d, XBD_BACKEND_FAILED,
			     "the VM's blkfront did not connect the disk in time");
			xbd_be_dev_finish(d, "connect timed out");
		}
	}
}

static void reap(struct xbd_backend *be)
{
	struct be_dev **pp = &be->devs;

	while (*pp) {
		struct be_dev *d = *pp;

		if (d->removed) {
			*pp = d->next;
			dev_free(d);
		} else {
			pp = &d->next;
		}
	}
}

static void begin_stop(struct xbd_backend *be)
{
	struct be_dev *d;

	be->stopping = true;
	for (d = be->devs; d; d = d->next) {
		if (d->removed)
			continue;
		dev_begin_close(d);
		xbd_be_dev_evaluate(d);
	}
}

int xbd_backend_run(struct xbd_backend *be, uint64_t connect_deadline_ns)
{
	int xs_fd = xbd_xs_watch_fd(be->p);
	uint64_t next_tick = 0;

	for (;;) {
		struct pollfd pfd[2] = {
			{ .fd = xs_fd, .events = POLLIN },
			{ .fd = be->wake_fd, .events = POLLIN },
		};
		char *path, *token;
		uint64_t v, now;
		int timeout;
		ssize_t r;

		if (atomic_load(&be->stop_requested) && !be->stopping)
			begin_stop(be);
		while (xbd_xs_read_watch(be->p, &path, &token) == 0) {
			handle_watch(be, path, token);
			free(path);
			free(token);
		}
		now = xbd_now_ns();
		if (now >= next_tick) {
			tick(be, connect_deadline_ns);
			next_tick = now + TICK_MS * 1000000ull;
		} else {
			struct be_dev *d;

			/* broken rings are acted on at once */
			for (d = be->devs; d; d = d->next)
				if (!d->removed && d->connected &&
				    xbd_be_io_broken(d))
					xbd_be_dev_fatal(d, "the frontend broke the ring",
						  -EPROTO);
		}
		reap(be);
		if (!be->devs && (be->stopping || !be->type_dir[0]))
			return 0;
		timeout = (int)((next_tick - now) / 1000000u) + 1;
		if (poll(pfd, 2, timeout) < 0 && errno != EINTR)
			return -errno;
		r = read(be->wake_fd, &v, sizeof(v));
		(void)r;
	}
}

void xbd_backend_stop(struct xbd_backend *be)
{
	uint64_t one = 1;
	ssize_t r;

	atomic_store(&be->stop_requested, true);
	r = write(be->wake_fd, &one, sizeof(one));
	(void)r;
}

/* ------------------------------------------------------------------ */
/* Life cycle                                                         */
/* ------------------------------------------------------------------ */

int xbd_backend_create(struct xbd_platform *p,
		       const struct xbd_backend_params *params,
		       struct xbd_backend **out)
{
	struct xbd_backend *be = calloc(1, sizeof(*be));

	if (!be)
		return -ENOMEM;
	be->p = p;
	be->self = xbd_platform_self_domid(p);
	if (xbd_proc_self(&be->proc))
		be->proc = (struct xbd_proc){ .pid = getpid() }; /* no /proc */
	be->params = params ? *params : default_params;
	if (be->params.max_ring_order > XBD_RING_MAX_ORDER)
		be->params.max_ring_order = XBD_RING_MAX_ORDER;
	if (be->params.max_indirect_segs > XBD_BLKIF_MAX_INDIRECT_SEGS)
		be->params.max_indirect_segs = XBD_BLKIF_MAX_INDIRECT_SEGS;
	if (!be->params.max_queues)
		be->params.max_queues = 1;
	if (!be->params.workers)
		be->params.workers = default_params.workers;
	if (!be->params.close_timeout_ms)
		be->params.close_timeout_ms = default_params.close_timeout_ms;
	be->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	if (be->wake_fd < 0) {
		int err = -errno;

		free(be);
		return err;
	}
	/* a domain's death, when the platform reports it this way */
	be->release_watched =
		xbd_xs_watch(p, "@releaseDomain", TOKEN_RELEASE) == 0;
	*out = be;
	return 0;
}

void xbd_backend_params_defaults(struct xbd_backend_params *params)
{
	*params = default_params;
}

void xbd_backend_set_event_fn(struct xbd_backend *be, xbd_backend_event_fn fn,
			      void *opaque)
{
	be->event_fn = fn;
	be->event_opaque = opaque;
}

void xbd_backend_set_ctl(struct xbd_backend *be, struct xbd_ctl *ctl)
{
	be->ctl = ctl;
}

void xbd_backend_destroy(struct xbd_backend *be)
{
	struct be_dev *d;

	if (!be)
		return;
	be->stopping = true;
	for (d = be->devs; d; d = d->next)
		xbd_be_dev_finish(d, "shutting down");
	reap(be);
	if (be->type_dir[0])
		xbd_xs_unwatch(be->p, be->type_dir, XBD_BE_TOKEN_TYPE);
	if (be->release_watched)
		xbd_xs_unwatch(be->p, "@releaseDomain", TOKEN_RELEASE);
	close(be->wake_fd);
	free(be);
}

const char *xbd_backend_dev_vdev(const struct xbd_backend_dev *dev)
{
	return ((const struct be_dev *)dev)->vdev;
}

const char *xbd_backend_dev_vm(const struct xbd_backend_dev *dev)
{
	return xbd_be_dev_label((const struct be_dev *)dev);
}

struct xbd_image *xbd_backend_dev_image(struct xbd_backend_dev *dev)
{
	return ((struct be_dev *)dev)->image;
}

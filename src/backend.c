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

#define TOKEN_TYPE "xbd-be-type"
#define TOKEN_RELEASE "xbd-be-release"
#define TOKEN_DEV_PREFIX "xbd-be-dev-"
#define TICK_MS 1000
#define MAX_GUEST_DOMID 0x7fefu /* DOMID_FIRST_RESERVED - 1 */

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

static int read_node(struct xbd_backend *be, const char *dir, const char *node,
		     char **value)
{
	char path[BE_PATH_MAX + 64];

	join_path(path, sizeof(path), dir, node);
	return xbd_xs_read_str(be->p, path, value);
}

static int read_uint_node(struct xbd_backend *be, const char *dir,
			  const char *node, unsigned long long *v)
{
	char path[BE_PATH_MAX + 64];

	join_path(path, sizeof(path), dir, node);
	return xbd_xs_read_uint(be->p, path, v);
}

static int write_node(struct xbd_backend *be, xbd_xs_txn t, const char *dir,
		      const char *node, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
static int write_node(struct xbd_backend *be, xbd_xs_txn t, const char *dir,
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
	err = be->ops->xs_write(be->p, t, path, s, (size_t)n);
	free(s);
	return err;
}

static const char *dev_label(const struct be_dev *d)
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
	return write_node(d->be, t, d->be_path, "state", "%d", (int)d->state);
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
		xbd_debug("%s: %s: cannot write state %s: %s", dev_label(d),
			  d->vdev, xbd_xenbus_state_name(state),
			  xbd_strerror(err));
	else
		xbd_debug("%s: %s: backend %s", dev_label(d), d->vdev,
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

static void ctl_register(struct be_dev *d)
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

static struct be_dev *dev_new(struct xbd_backend *be, const char *type,
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

static void set_limits(struct xbd_backend *be, struct be_dev *d)
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
static int write_features(struct be_dev *d, xbd_xs_txn t)
{
	struct xbd_backend *be = d->be;
	const struct xbd_blkif_limits *l = &d->lim;
	int err = 0;

	err |= write_node(be, t, d->be_path, "feature-flush-cache", "%d", l->flush);
	err |= write_node(be, t, d->be_path, "feature-barrier", "%d", l->barrier);
	err |= write_node(be, t, d->be_path, "feature-discard", "%d", l->discard);
	if (l->discard) {
		err |= write_node(be, t, d->be_path, "discard-granularity", "%u",
				  l->sector_size);
		err |= write_node(be, t, d->be_path, "discard-alignment", "0");
		err |= write_node(be, t, d->be_path, "discard-secure", "0");
	}
	err |= write_node(be, t, d->be_path, "feature-persistent", "%d",
			  !be->params.no_persistent);
	if (l->max_indirect_segments)
		err |= write_node(be, t, d->be_path,
				  "feature-max-indirect-segments", "%u",
				  l->max_indirect_segments);
	err |= write_node(be, t, d->be_path, "max-ring-page-order", "%u",
			  be->params.max_ring_order);
	if (be->params.max_queues > 1)
		err |= write_node(be, t, d->be_path, "multi-queue-max-queues",
				  "%u", be->params.max_queues);
	return err ? -EIO : 0;
}

/* Features, hotplug-status and InitWait, in one transaction. */
static int publish_features_txn(struct xbd_platform *p XBD_UNUSED,
				xbd_xs_txn t, void *arg)
{
	struct be_dev *d = arg;
	int err;

	if (!xbd_xs_exists(d->be->p, t, d->be_path))
		return -ENOENT;
	err = write_features(d, t);
	err |= write_node(d->be, t, d->be_path, "hotplug-status", "connected");
	err |= write_node(d->be, t, d->be_path, "state", "%d",
			  XenbusStateInitWait);
	return err ? -EIO : 0;
}

/* A fatal error on the device, as xenbus_dev_fatal: say why in `error`,
 * stop serving, go Closing and wait for the frontend. */
static void dev_disconnect(struct be_dev *d);
static void dev_fatal(struct be_dev *d, const char *why, int err)
{
	struct xbd_backend *be = d->be;
	char msg[256];

	if (err)
		snprintf(msg, sizeof(msg), "%s: %s", why, xbd_strerror(err));
	else
		snprintf(msg, sizeof(msg), "%s", why);
	xbd_info("%s: %s: %s", dev_label(d), d->vdev, msg);
	d->failed = true;
	dev_disconnect(d);
	if (xbd_xs_exists(be->p, XBD_XS_NO_TXN, d->be_path))
		write_node(be, XBD_XS_NO_TXN, d->be_path, "error", "%d %s",
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
	xbd_debug("%s: %s: disconnected", dev_label(d), d->vdev);
	emit(d, XBD_BACKEND_CLOSED, NULL);
}

/* The device is done: stop serving, drop the watches and (when it is
 * ours) every node; it is freed by the loop. */
static void dev_finish(struct be_dev *d, const char *why)
{
	struct xbd_backend *be = d->be;

	if (d->removed)
		return;
	dev_disconnect(d);
	if (d->fe_watched)
		be->ops->xs_unwatch(be->p, d->fe_path, d->token);
	if (d->be_watched)
		be->ops->xs_unwatch(be->p, d->be_path, d->token);
	d->fe_watched = d->be_watched = false;
	if (d->state != XenbusStateClosed)
		switch_state(d, XenbusStateClosed);
	/* ours; or a dead VM's, which no toolstack clears on the sim */
	if (d->hotplugged || d->vm_gone) {
		char parent[BE_PATH_MAX];

		if (d->hotplugged)
			be->ops->xs_rm(be->p, XBD_XS_NO_TXN, d->fe_path);
		be->ops->xs_rm(be->p, XBD_XS_NO_TXN, d->be_path);
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
	xbd_debug("%s: %s: removed (%s)", dev_label(d), d->vdev, why);
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
	int err = read_node(d->be, dir, node, &s);

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
	err |= write_node(be, t, d->be_path, "sectors", "%llu",
			  (unsigned long long)d->lim.nr_sectors);
	err |= write_node(be, t, d->be_path, "sector-size", "%u",
			  d->lim.sector_size);
	err |= write_node(be, t, d->be_path, "physical-sector-size", "%u",
			  d->lim.sector_size);
	err |= write_node(be, t, d->be_path, "info", "%u",
			  d->lim.read_only ? VDISK_READONLY : 0);
	err |= write_node(be, t, d->be_path, "state", "%d",
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
			dev_fatal(d, "bad multi-queue-num-queues", -EINVAL);
			return;
		}
		nq = (unsigned)v;
	} else if (err != -ENOENT) {
		dev_fatal(d, "bad multi-queue-num-queues", err);
		return;
	}
	err = read_node(be, d->fe_path, "protocol", &proto);
	if (err && err != -ENOENT) {
		dev_fatal(d, "cannot read protocol", err);
		return;
	}
	err = xbd_blkif_abi_from_protocol(proto, &d->abi);
	free(proto);
	if (err) {
		dev_fatal(d, "unknown protocol", err);
		return;
	}
	d->persistent = false;
	if (!be->params.no_persistent &&
	    !read_fe_uint(d, d->fe_path, "feature-persistent", 1, &v))
		d->persistent = v == 1;

	d->queues = calloc(nq, sizeof(*d->queues));
	if (!d->queues) {
		dev_fatal(d, "out of memory", -ENOMEM);
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
		dev_fatal(d, why, err);
		return;
	}
	xbd_stat_add(&d->stats.pgrants_max,
		     d->persistent ? (uint64_t)be->params.persistent_max * nq : 0);
	err = xbd_be_io_start(d, &why);
	if (err) {
		dev_fatal(d, why, err);
		return;
	}

	err = xbd_xs_transaction(be->p, publish_disk_txn, d);
	if (err) {
		dev_fatal(d, "cannot publish the disk", err);
		return;
	}
	d->state = XenbusStateConnected;
	d->ever_connected = true;
	xbd_info("%s: %s: connected (%u queue%s, %u ring page%s, %s%s)",
		 dev_label(d), d->vdev, nq, nq > 1 ? "s" : "",
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
static void dev_evaluate(struct be_dev *d)
{
	struct xbd_backend *be = d->be;
	unsigned long long online = 0;
	enum xenbus_state fe;
	int err;

	if (d->removed)
		return;
	err = read_uint_node(be, d->be_path, "online", &online);
	if (err == -ENOENT && !xbd_xs_exists(be->p, XBD_XS_NO_TXN, d->be_path)) {
		dev_finish(d, "backend node removed");
		return;
	}
	if (err)
		online = 0;
	if (xbd_xenbus_read_state(be->p, d->fe_path, &fe))
		fe = XenbusStateUnknown; /* garbage reads as gone, as Linux */
	if (fe == XenbusStateUnknown && (d->fe_seen || d->hotplugged) &&
	    !xbd_xs_exists(be->p, XBD_XS_NO_TXN, d->fe_path)) {
		d->vm_gone = be->ops->domain_alive(be->p, d->fe_domid) == 0;
		dev_finish(d, d->vm_gone ? "the VM is gone" : "frontend gone");
		return;
	}
	if (fe != XenbusStateUnknown)
		d->fe_seen = true;
	if (fe != d->fe_state)
		xbd_debug("%s: %s: frontend %s", dev_label(d), d->vdev,
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
			dev_finish(d, "closed");
			return;
		}
		break;
	default:
		break;
	}
	/* closing, and no ring to wait for: done now */
	if (d->closing && !fe_may_use_ring(fe))
		dev_finish(d, "closed");
}

static struct be_dev *find_dev(struct xbd_backend *be, const char *type,
			       uint16_t fe, uint32_t devid)
{
	struct be_dev *d;

	for (d = be->devs; d; d = d->next)
		if (!d->removed && d->fe_domid == fe && d->devid == devid &&
		    !strcmp(d->type, type))
			return d;
	return NULL;
}

static int watch_dev(struct be_dev *d)
{
	struct xbd_backend *be = d->be;
	int err;

	err = be->ops->xs_watch(be->p, d->fe_path, d->token);
	if (err)
		return err;
	d->fe_watched = true;
	/* a blkback's type watch already covers its backend nodes */
	if (d->hotplugged) {
		err = be->ops->xs_watch(be->p, d->be_path, d->token);
		if (err)
			return err;
		d->be_watched = true;
	}
	return 0;
}

static void read_vm_name(struct be_dev *d)
{
	char path[64];

	snprintf(path, sizeof(path), "/local/domain/%u/name", d->fe_domid);
	if (xbd_xs_read_str(d->be->p, path, &d->vm_name))
		d->vm_name = NULL;
	if (!d->vm_name && asprintf(&d->vm_name, "dom%u", d->fe_domid) < 0)
		d->vm_name = NULL;
}

/* ------------------------------------------------------------------ */
/* xbd serve: hot-plugging                                             */
/* ------------------------------------------------------------------ */

/* What the toolstack module writes after a hot-plugged device's
 * standard nodes, in the same transaction: the serving process, the
 * features, and InitWait (this backend is ready at once). */
static int hotplug_fill(struct xbd_platform *p, xbd_xs_txn t,
			const char *be_path XBD_UNUSED, void *arg)
{
	struct be_dev *d = arg;
	int err = xbd_xs_write_proc(p, t, d->be_path, &d->be->proc);

	err = err ? err : write_features(d, t);
	return err ? err : write_node(d->be, t, d->be_path, "state", "%d",
				      XenbusStateInitWait);
}

/* Both directories, as a toolstack writes them (src/toolstack.c). */
static int hotplug_nodes(struct be_dev *d)
{
	const char *be_extra[] = { "xbd-format", d->image_format,
				   "hotplug-status", "connected", NULL };
	struct xbd_vbd_made made = { 0 };
	struct xbd_vbd_spec s = {
		.fe_domid = d->fe_domid, .be_domid = d->be->self,
		.be_type = d->type, .devid = d->devid, .vdev = d->vdev,
		.params = d->image_path,
		.type = strcmp(d->image_format, "null") ? "file" : "null",
		.mode = d->lim.read_only ? "r" : "w",
		.be_extra = be_extra, .be_fill = hotplug_fill, .be_fill_arg = d,
		.made = &made,
	};
	int err = xbd_vbd_create(d->be->p, &s, NULL, 0);

	d->made_be_root = made.be_root;
	d->made_fe_vbd = made.fe_vbd;
	return err;
}

int xbd_backend_hotplug(struct xbd_backend *be,
			const struct xbd_backend_disk *disk,
			struct xbd_backend_dev **out)
{
	struct be_dev *d;
	int err, alive;

	if (be->stopping) {
		xbd_image_close(disk->image);
		return -ESHUTDOWN;
	}
	alive = be->ops->domain_alive(be->p, disk->fe_domid);
	if (alive <= 0) {
		xbd_err("%s: no such domain", disk->vm_name);
		xbd_image_close(disk->image);
		return alive < 0 ? alive : -ESRCH;
	}
	d = dev_new(be, XBD_BACKEND_TYPE, disk->fe_domid, disk->devid);
	if (!d) {
		xbd_err("%s: out of memory", disk->vm_name);
		xbd_image_close(disk->image);
		return -ENOMEM;
	}
	d->hotplugged = true;
	d->image = disk->image;
	d->read_only = disk->read_only;
	d->vm_name = strdup(disk->vm_name);
	d->image_path = strdup(disk->image_path ? disk->image_path : "");
	d->image_format = strdup(disk->image_format ? disk->image_format
						    : xbd_image_name(disk->image));
	d->mount = disk->mount ? strdup(disk->mount) : NULL;
	if (!d->vm_name || !d->image_path || !d->image_format ||
	    (disk->mount && !d->mount)) {
		err = -ENOMEM;
		xbd_err("%s: out of memory", disk->vm_name);
		goto fail;
	}
	set_limits(be, d);

	err = hotplug_nodes(d);
	if (err == -EEXIST) {
		xbd_err("%s: %s: the VM already has this disk", d->vm_name,
			d->vdev);
		goto fail;
	}
	if (err == -EAGAIN) {
		/* xbd_xs_transaction gave up: something kept writing there */
		xbd_err("%s: %s: cannot write the device's xenstore nodes: they "
			"kept changing (is the guest rewriting its device/ nodes?)",
			d->vm_name, d->vdev);
		goto fail;
	}
	if (err) {
		xbd_err("%s: %s: cannot write the device's xenstore nodes: %s",
			d->vm_name, d->vdev, xbd_strerror(err));
		goto fail;
	}
	d->state = XenbusStateInitWait;
	err = watch_dev(d);
	if (err) {
		xbd_err("%s: %s: cannot watch xenstore: %s", d->vm_name, d->vdev,
			xbd_strerror(err));
		dev_finish(d, "watch failed");
		return err;
	}
	ctl_register(d);
	xbd_debug("%s: %s: hot-plugged at %s", d->vm_name, d->vdev, d->be_path);
	if (out)
		*out = (struct xbd_backend_dev *)d;
	return 0;
fail:
	d->removed = true; /* nothing was written: freed by the loop */
	return err;
}

/* ------------------------------------------------------------------ */
/* blkback: adopting a toolstack's devices                             */
/* ------------------------------------------------------------------ */

/* params: "PATH" (raw), or "raw:PATH", "cow:PATH", "null:SIZE". */
static int open_params(const char *params, bool ro, struct xbd_image **img,
		       char **format)
{
	static const char *const kinds[] = { "raw", "cow", "null" };
	const char *kind = "raw", *path = params;
	size_t i;

	for (i = 0; i < XBD_ARRAY_SIZE(kinds); i++) {
		size_t n = strlen(kinds[i]);

		if (!strncmp(params, kinds[i], n) && params[n] == ':') {
			kind = kinds[i];
			path = params + n + 1;
		}
	}
	*format = strdup(kind);
	if (!*format)
		return -ENOMEM;
	/* as the kernel's blkback, which takes no image locks: the
	 * toolstack and `xbd serve`'s xenstore check keep writers apart */
	return xbd_image_open_by_name(kind, path, NULL, ro, XBD_IMAGE_LOCK_NONE,
				      img);
}

static void try_adopt(struct xbd_backend *be, uint16_t fe, uint32_t devid)
{
	char dir[BE_PATH_MAX], *fe_path = NULL, *params = NULL, *mode = NULL;
	unsigned long long online = 0, fe_id, state = XenbusStateInitialising;
	struct be_dev *d;
	int err;

	if (be->stopping || find_dev(be, be->watch_type, fe, devid))
		return;
	xbd_backend_path(dir, sizeof(dir), be->self, be->watch_type, fe, devid);
	/* a toolstack writes these in one transaction; until they are all
	 * there, the next watch event tries again */
	if (read_uint_node(be, dir, "online", &online) || online != 1 ||
	    read_uint_node(be, dir, "frontend-id", &fe_id) || fe_id != fe ||
	    read_node(be, dir, "frontend", &fe_path) ||
	    read_node(be, dir, "params", &params) ||
	    read_node(be, dir, "mode", &mode))
		goto out;
	err = read_uint_node(be, dir, "state", &state);
	if ((err && err != -ENOENT) || state > XenbusStateInitialising)
		goto out; /* not a fresh device (closed, or another server's) */
	if (strncmp(fe_path, "/local/domain/", 14) || strlen(fe_path) >= BE_PATH_MAX)
		goto out;

	d = dev_new(be, be->watch_type, fe, devid);
	if (!d)
		goto out;
	snprintf(d->fe_path, sizeof(d->fe_path), "%s", fe_path);
	read_vm_name(d);
	d->read_only = !strchr(mode, 'w');
	d->image_path = strdup(params);
	err = open_params(params, d->read_only, &d->image, &d->image_format);
	if (!err) {
		set_limits(be, d);
		ctl_register(d);
	}
	if (watch_dev(d)) {
		dev_finish(d, "watch failed");
		goto out;
	}
	if (err) {
		dev_fatal(d, "cannot open the image", err);
		goto out;
	}
	err = xbd_xs_transaction(be->p, publish_features_txn, d);
	if (err) {
		dev_finish(d, "cannot publish features");
		goto out;
	}
	d->state = XenbusStateInitWait;
	xbd_info("%s: %s: serving %s%s", dev_label(d), d->vdev, params,
		 d->read_only ? " (read-only)" : "");
	dev_evaluate(d);
out:
	free(fe_path);
	free(params);
	free(mode);
}

/* Every device under the type directory: adopt the new ones, bring the
 * known ones up to date. */
static void scan_type_dir(struct xbd_backend *be)
{
	char **fes = NULL;
	unsigned nfe = 0, i, j;
	struct be_dev *d;

	for (d = be->devs; d; d = d->next)
		if (!strcmp(d->type, be->watch_type))
			dev_evaluate(d);
	if (be->ops->xs_directory(be->p, XBD_XS_NO_TXN, be->type_dir, &fes, &nfe))
		return;
	for (i = 0; i < nfe; i++) {
		char dir[BE_PATH_MAX + 16];
		char **ids = NULL;
		unsigned nid = 0;
		unsigned long long fe, id;

		if (xbd_parse_uint(fes[i], MAX_GUEST_DOMID, &fe))
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", be->type_dir, fes[i]);
		if (be->ops->xs_directory(be->p, XBD_XS_NO_TXN, dir, &ids, &nid))
			continue;
		for (j = 0; j < nid; j++)
			if (!xbd_parse_uint(ids[j], UINT32_MAX, &id))
				try_adopt(be, (uint16_t)fe, (uint32_t)id);
		free(ids);
	}
	free(fes);
}

/* A type watch event: path is the type dir or below. */
static void type_event(struct xbd_backend *be, const char *path)
{
	size_t n = strlen(be->type_dir);
	char fe_s[16], id_s[16];
	unsigned long long fe, id;
	struct be_dev *d;

	if (strncmp(path, be->type_dir, n) || (path[n] && path[n] != '/'))
		return;
	if (path[n] && sscanf(path + n, "/%15[^/]/%15[^/]", fe_s, id_s) == 2 &&
	    !xbd_parse_uint(fe_s, MAX_GUEST_DOMID, &fe) &&
	    !xbd_parse_uint(id_s, UINT32_MAX, &id)) {
		d = find_dev(be, be->watch_type, (uint16_t)fe, (uint32_t)id);
		if (d)
			dev_evaluate(d);
		else
			try_adopt(be, (uint16_t)fe, (uint32_t)id);
		return;
	}
	scan_type_dir(be);
}

int xbd_backend_watch_type(struct xbd_backend *be, const char *type)
{
	int err;

	if (be->type_dir[0] || strlen(type) >= sizeof(be->watch_type))
		return -EINVAL;
	snprintf(be->watch_type, sizeof(be->watch_type), "%s", type);
	snprintf(be->type_dir, sizeof(be->type_dir), "/local/domain/%u/backend/%s",
		 be->self, type);
	err = be->ops->xs_watch(be->p, be->type_dir, TOKEN_TYPE);
	if (err) {
		xbd_err("cannot watch %s: %s", be->type_dir, xbd_strerror(err));
		be->type_dir[0] = '\0';
	}
	return err;
}

/* ------------------------------------------------------------------ */
/* The loop                                                           */
/* ------------------------------------------------------------------ */

static void handle_watch(struct xbd_backend *be, const char *path,
			 const char *token)
{
	struct be_dev *d;

	if (!strcmp(token, TOKEN_TYPE)) {
		type_event(be, path);
		return;
	}
	if (!strcmp(token, TOKEN_RELEASE)) {
		for (d = be->devs; d; d = d->next)
			if (!d->removed &&
			    be->ops->domain_alive(be->p, d->fe_domid) == 0) {
				d->vm_gone = true;
				dev_finish(d, "the VM is gone");
			}
		return;
	}
	for (d = be->devs; d; d = d->next)
		if (!strcmp(d->token, token)) {
			dev_evaluate(d);
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
		if (be->ops->domain_alive(be->p, d->fe_domid) == 0) {
			d->vm_gone = true;
			dev_finish(d, "the VM is gone");
			continue;
		}
		if (d->connected && xbd_be_io_broken(d))
			dev_fatal(d, "the frontend broke the ring", -EPROTO);
		if (d->closing && now >= d->close_deadline_ns) {
			xbd_info("%s: %s: the frontend did not close in time",
				 dev_label(d), d->vdev);
			dev_finish(d, "close timed out");
			continue;
		}
		if (connect_deadline_ns && now >= connect_deadline_ns &&
		    !d->ever_connected && d->hotplugged && !d->closing) {
			emit(d, XBD_BACKEND_FAILED,
			     "the VM's blkfront did not connect the disk in time");
			dev_finish(d, "connect timed out");
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
		dev_evaluate(d);
	}
}

int xbd_backend_run(struct xbd_backend *be, uint64_t connect_deadline_ns)
{
	int xs_fd = be->ops->xs_watch_fd(be->p);
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
		while (be->ops->xs_read_watch(be->p, &path, &token) == 0) {
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
					dev_fatal(d, "the frontend broke the ring",
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
	be->ops = xbd_platform_ops_of(p);
	be->self = be->ops->self_domid(p);
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
		be->ops->xs_watch(p, "@releaseDomain", TOKEN_RELEASE) == 0;
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
		dev_finish(d, "shutting down");
	reap(be);
	if (be->type_dir[0])
		be->ops->xs_unwatch(be->p, be->type_dir, TOKEN_TYPE);
	if (be->release_watched)
		be->ops->xs_unwatch(be->p, "@releaseDomain", TOKEN_RELEASE);
	close(be->wake_fd);
	free(be);
}

const char *xbd_backend_dev_vdev(const struct xbd_backend_dev *dev)
{
	return ((const struct be_dev *)dev)->vdev;
}

const char *xbd_backend_dev_vm(const struct xbd_backend_dev *dev)
{
	return dev_label((const struct be_dev *)dev);
}

struct xbd_image *xbd_backend_dev_image(struct xbd_backend_dev *dev)
{
	return ((struct be_dev *)dev)->image;
}

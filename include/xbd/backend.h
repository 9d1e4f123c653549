/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The block backend (the blkback role), as a library object with two
 * front doors:
 *  - `xbd serve` hot-plugs one disk into a running VM: it writes the
 *    backend nodes under backend/xbd and the frontend nodes itself
 *    (xbd_backend_hotplug), serves the VM's blkfront, and removes every
 *    node when the disk is detached or the VM goes away;
 *  - `xbd sim blkback`, the sim's stand-in for Linux blkback, serves
 *    every device a toolstack creates under backend/vbd
 *    (xbd_backend_watch_type) and leaves the nodes to the toolstack.
 *
 * One struct xbd_backend serves any number of devices from one process.
 * Its xenbus side runs in the thread that calls xbd_backend_run(); each
 * ring (queue) has its own thread and each device its own image I/O
 * workers, so one device's slow image or broken guest never stalls
 * another.
 */
#ifndef XBD_BACKEND_H
#define XBD_BACKEND_H

#include <stdbool.h>
#include <stdint.h>

#include "xbd/platform.h"

struct xbd_backend;     /* opaque: one serving process */
struct xbd_backend_dev; /* opaque: one served disk */
struct xbd_image;
struct xbd_ctl;

/* What the backend offers: start from xbd_backend_params_defaults().
 * max_queues 0 means 1; workers and close_timeout_ms 0 take the
 * defaults. */
struct xbd_backend_params {
	unsigned max_ring_order;     /* max-ring-page-order, <= 4 */
	unsigned max_indirect_segs;  /* feature-max-indirect-segments */
	unsigned max_queues;         /* multi-queue-max-queues (1: no node) */
	bool no_persistent;          /* do not offer feature-persistent */
	unsigned persistent_max;     /* persistent grants kept per queue */
	unsigned workers;            /* image I/O threads per device */
	unsigned close_timeout_ms;   /* how long a closing frontend may take */
};

#define XBD_BACKEND_DEFAULT_RING_ORDER 4
#define XBD_BACKEND_DEFAULT_INDIRECT_SEGS 256
#define XBD_BACKEND_DEFAULT_MAX_QUEUES 4
#define XBD_BACKEND_DEFAULT_PERSISTENT_MAX 2048
#define XBD_BACKEND_DEFAULT_WORKERS 4
#define XBD_BACKEND_DEFAULT_CLOSE_TIMEOUT_MS 10000

/* xbd's own backend type (never "vbd", the kernel blkback's). */
#define XBD_BACKEND_TYPE "xbd"

/* One disk for xbd_backend_hotplug(). */
struct xbd_backend_disk {
	const char *vm_name;      /* for messages and `xbd list` */
	uint16_t fe_domid;
	uint32_t devid;
	struct xbd_image *image;  /* ownership passes to the backend */
	const char *image_path;   /* `params` */
	const char *image_format; /* "raw", "cow", "null" */
	bool read_only;           /* mode r; the image should be read-only */
	const char *mount;        /* FUSE path of the disk, for the ctl socket */
};

enum xbd_backend_event {
	XBD_BACKEND_CONNECTED, /* the frontend's ring is mapped, state 4 */
	XBD_BACKEND_FAILED,    /* connecting failed; msg says why */
	XBD_BACKEND_CLOSED,    /* disconnected (frontend closed, ring broken) */
	XBD_BACKEND_REMOVED,   /* gone: the device is freed after this call */
};

/* Called from xbd_backend_run()'s thread.  msg is a one-line reason for
 * FAILED (else NULL). */
typedef void (*xbd_backend_event_fn)(void *opaque, struct xbd_backend_dev *dev,
				     enum xbd_backend_event ev, const char *msg);

void xbd_backend_params_defaults(struct xbd_backend_params *params);

/* params may be NULL (defaults).  The platform must outlive the
 * backend. */
int xbd_backend_create(struct xbd_platform *p,
		       const struct xbd_backend_params *params,
		       struct xbd_backend **out);
void xbd_backend_set_event_fn(struct xbd_backend *be, xbd_backend_event_fn fn,
			      void *opaque);
/* Devices register with this control server (NULL: none). */
void xbd_backend_set_ctl(struct xbd_backend *be, struct xbd_ctl *ctl);

/*
 * Hot-plugs a disk: writes the backend nodes (backend/xbd/<fe>/<devid>,
 * dom0's, readable by the guest) and the frontend nodes
 * (device/vbd/<devid>, the guest's, readable by dom0) in one
 * transaction, and starts serving.  Checks first and writes nothing on
 * failure: -EEXIST when the device already exists (ours or anyone's),
 * -ESRCH when the domain is gone.  Prints one error line on failure.
 * The image belongs to the backend even on failure.
 */
int xbd_backend_hotplug(struct xbd_backend *be,
			const struct xbd_backend_disk *disk,
			struct xbd_backend_dev **out);

/* Serves every device a toolstack creates under
 * /local/domain/<self>/backend/<type>/ (blkback's behaviour). */
int xbd_backend_watch_type(struct xbd_backend *be, const char *type);

/*
 * The xenbus loop: runs until xbd_backend_stop() has been called and
 * every device has closed, or, when the backend serves only hot-plugged
 * devices, until the last one is gone (detached, or its VM went away).
 * deadline_ns (xbd_now_ns() clock; 0 = none) fires the events
 * callback with FAILED for every device not yet connected by then, then
 * closes it.
 */
int xbd_backend_run(struct xbd_backend *be, uint64_t connect_deadline_ns);
/* Async-signal-safe: asks the loop to close every device (walking
 * Closing/Closed) and return. */
void xbd_backend_stop(struct xbd_backend *be);
/* Closes whatever remains at once and frees everything. */
void xbd_backend_destroy(struct xbd_backend *be);

/* About one device (valid until its REMOVED event). */
const char *xbd_backend_dev_vdev(const struct xbd_backend_dev *dev);
const char *xbd_backend_dev_vm(const struct xbd_backend_dev *dev);
struct xbd_image *xbd_backend_dev_image(struct xbd_backend_dev *dev);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Looking at virtual disks that xbd does not serve (src/blkback_sysfs.c):
 * which disks a domain has and who serves each (from xenstore), the Linux
 * blkback counters in sysfs, and a read-only look at a disk's live ring.
 *
 * Nothing here writes anything: not xenstore, not sysfs, not the ring.
 */
#ifndef XBD_BLKBACK_SYSFS_H
#define XBD_BLKBACK_SYSFS_H

#include <stdbool.h>
#include <stdint.h>

#include "xbd/platform.h"

#define XBD_SYSFS_DEFAULT_ROOT "/sys"

/* The files of /sys/bus/xen-backend/devices/vbd-D-N/statistics/. */
struct xbd_blkback_counters {
	uint64_t oo_req;  /* requests that found no free request (OO) */
	uint64_t rd_req;
	uint64_t wr_req;
	uint64_t f_req;   /* flushes and barriers */
	uint64_t ds_req;  /* discards */
	uint64_t rd_sect;
	uint64_t wr_sect;
};

/* Reads the counters of vbd-<domid>-<devid> under sysfs_root (NULL: /sys).
 * -ENOENT when kernel blkback has no such device; -EINVAL for a file
 * that is not a number. */
int xbd_blkback_read_counters(const char *sysfs_root, uint16_t domid,
			      uint32_t devid, struct xbd_blkback_counters *out);

enum xbd_vbd_backend {
	XBD_VBD_UNKNOWN,
	XBD_VBD_BLKBACK, /* backend/vbd: Linux blkback */
	XBD_VBD_QDISK,   /* backend/qdisk: QEMU */
	XBD_VBD_TAPDISK, /* backend/vbd3: tapback + tapdisk */
	XBD_VBD_XBD,     /* backend/xbd: xbd serve */
};

/* "xbd", "blkback", "qdisk", "tapdisk", "unknown". */
const char *xbd_vbd_backend_name(enum xbd_vbd_backend kind);
/* Kind and backend domain from a backend path
 * /local/domain/<be>/backend/<type>/<fe>/<devid>; -EINVAL when the path
 * does not have that form. */
int xbd_vbd_backend_parse(const char *backend_path, enum xbd_vbd_backend *kind,
			  uint16_t *be_domid);

#define XBD_VBD_MAX_RING_PAGES 16

/* One virtual disk of a domain, as xenstore describes it. */
struct xbd_vbd {
	uint16_t domid;
	uint32_t devid;
	char vdev[24];              /* backend's "dev", else from devid */
	char frontend_path[64];
	char backend_path[128];     /* "" when the frontend names none */
	/* backend_path is not this device's backend (xbd_vbd_backend_check):
	 * nothing below was read from it */
	bool backend_inconsistent;
	enum xbd_vbd_backend backend;
	uint16_t backend_domid;     /* XBD_DOMID_INVALID when unknown */
	unsigned frontend_state;    /* XenbusState, 0 unknown */
	unsigned backend_state;
	char params[256];           /* backend "params": image or device */
	bool read_only;             /* backend "mode" is "r" */
	uint64_t sectors;           /* 0 unknown */
	unsigned sector_size;       /* 0 unknown */
	/* the ring, as the frontend published it (queue 0 for multi-queue) */
	unsigned nr_ring_refs;      /* 0: no ring published */
	uint32_t ring_refs[XBD_VBD_MAX_RING_PAGES];
	unsigned nr_queues;         /* 1 unless multi-queue */
	uint32_t event_channel;
	char protocol[24];          /* "" when the frontend wrote none */
};

/* Every disk in /local/domain/<domid>/device/vbd, sorted by devid.  A
 * domain without disks gives count 0.  Free the array with free(). */
int xbd_vbd_list(struct xbd_platform *p, uint16_t domid, struct xbd_vbd **out,
		 unsigned *count);

/* Reads queue q's ring (refs, event channel) of a multi-queue disk into
 * v, for xbd_vbd_ring_peek (xbd_vbd_list reads queue 0's).  -ENODATA
 * when that queue published none. */
int xbd_vbd_select_queue(struct xbd_platform *p, struct xbd_vbd *v,
			 unsigned q);

/* What a read-only look at a ring shows. */
struct xbd_ring_peek {
	unsigned nr_ents;
	uint32_t req_prod, req_event, rsp_prod, rsp_event;
	/* requests published and not yet answered: req_prod - rsp_prod */
	uint32_t used;
	/* the indices make no sense (more outstanding than the ring holds) */
	bool inconsistent;
	/* The requests in the slots [rsp_prod, req_prod): best effort, as
	 * the backend may be writing responses over them meanwhile. */
	unsigned nr_requests;
	struct xbd_ring_peek_request {
		uint64_t id;
		uint8_t op;           /* BLKIF_OP_*; indirect: the real op */
		bool indirect;
		uint16_t nr_segments;
		uint64_t sector;
	} requests[512];
};

/* Maps the disk's ring pages read-only (the grants are the frontend's),
 * copies the indices and the requests in flight once, and unmaps.
 * -ENODATA: no ring published; -EPERM: the grants are not ours to map
 * (a backend in another domain); other errors from map_grants. */
int xbd_vbd_ring_peek(struct xbd_platform *p, const struct xbd_vbd *v,
		      struct xbd_ring_peek *out);

#endif

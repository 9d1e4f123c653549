/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The blkfront side of blkif, in user space: one struct xbd_frontend per
 * attached disk.  It performs the frontend half of the xenbus handshake
 * against a backend that a toolstack has set up, drives the shared ring
 * from a pool of pages granted once and reused for every request, and
 * exports the disk as a struct xbd_image (thread-safe; synchronous, plus
 * the asynchronous preadv_async for aligned reads) and through an
 * asynchronous submit call.
 *
 * The backend is not trusted: every response is checked against what is
 * outstanding, and a protocol violation, a backend that leaves Connected
 * or a backend that stops answering fails the device: every waiting and
 * later I/O gets -EIO, nothing hangs.
 *
 * The frontend never reads xenstore watches (the platform's watch queue
 * belongs to the program); it polls the few nodes it needs.
 */
#ifndef XBD_FRONTEND_H
#define XBD_FRONTEND_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>

#include "xbd/platform.h"

struct xbd_frontend;
struct xbd_image;
struct xbd_stats;
struct xbd_ctl_state;

struct xbd_frontend_config {
	/* Our xenbus directory (it exists: the toolstack made it) and the
	 * backend's, with the backend's domain. */
	const char *frontend_path;
	const char *backend_path;
	uint16_t backend_domid;
	/* For messages: "vm1/xvda". NULL: the frontend path. */
	const char *name;
	/* Fail with -EROFS at connection if the backend only offers read. */
	bool need_write;
	/* Pages granted to the backend in all (ring, data, indirect pages);
	 * 0: XBD_FRONTEND_DEFAULT_GRANTS.  Sharing fewer is tried when the
	 * platform refuses (gntalloc's limit is 1024 grants). */
	unsigned max_grants;
	/* Ring pages are 1 << min(this, backend's max-ring-page-order);
	 * -1: XBD_RING_MAX_ORDER. */
	int max_ring_order;
	/* Cap on segments per request (indirect); 0: default. */
	unsigned max_segments;
	/* Handshake time limit, ms; 0: XBD_FRONTEND_CONNECT_TIMEOUT_MS. */
	unsigned connect_timeout_ms;
	/* Requests outstanding and no response for this long: the backend
	 * is gone; 0: XBD_FRONTEND_IO_TIMEOUT_MS. */
	unsigned io_timeout_ms;
};

#define XBD_FRONTEND_DEFAULT_GRANTS 512u
#define XBD_FRONTEND_CONNECT_TIMEOUT_MS 10000u
#define XBD_FRONTEND_IO_TIMEOUT_MS 3000u

/* What the handshake negotiated. */
struct xbd_frontend_info {
	uint64_t sectors;       /* 512-byte units */
	unsigned sector_size;   /* logical: 512 or 4096 */
	bool read_only;         /* mode r, or info has VDISK_READONLY */
	bool cdrom, removable;
	bool persistent;        /* both ends use persistent grants */
	bool flush, barrier, discard;
	unsigned ring_pages;
	unsigned ring_entries;
	unsigned max_segments;  /* per request: 11, or indirect's */
	unsigned max_indirect_segments; /* backend's offer, 0: none */
	unsigned pool_pages;    /* data and indirect pages granted */
};

/* Connects (the whole handshake, bounded by connect_timeout_ms).  Prints
 * one error line naming the device on failure. */
int xbd_frontend_connect(struct xbd_platform *p,
			 const struct xbd_frontend_config *cfg,
			 struct xbd_frontend **out);
/* Walks Closing and Closed with the backend (bounded waits), fails
 * anything still outstanding with -EIO, unbinds the event channel,
 * ungrants every page and removes the nodes the frontend wrote.  The
 * images opened on it must be closed first.  NULL is a no-op. */
void xbd_frontend_close(struct xbd_frontend *fe);

void xbd_frontend_get_info(const struct xbd_frontend *fe,
			   struct xbd_frontend_info *info);
/* The device's counters; in_flight and in_flight_max as of this call
 * (the frontend counts requests in flight itself and stores them in the
 * stats when asked: here and in xbd_frontend_ctl_query). */
struct xbd_stats *xbd_frontend_stats(struct xbd_frontend *fe);
/* 0 while usable; the -errno that failed the device otherwise. */
int xbd_frontend_status(struct xbd_frontend *fe);
/* Fails the device now (every waiting I/O gets -EIO). */
void xbd_frontend_fail(struct xbd_frontend *fe, const char *why);

/* A new image handle on the device ("blkfront"): preadv / pwritev /
 * flush / discard, thread-safe, any number of them in flight.  Offsets
 * and lengths need no alignment for reads; writes must be aligned to
 * the sector size.  Closing the image leaves the device connected. */
int xbd_frontend_open_image(struct xbd_frontend *fe, bool read_only,
			    struct xbd_image **out);

/* Asynchronous I/O.  done(opaque, 0 or -errno) is called exactly once,
 * from the frontend's completion thread (or from the submitting thread
 * when the I/O fails before reaching the ring), unless submit returns
 * an error.  iov must stay valid until then.  Read and write ranges must
 * be aligned to the sector size.  Submit may wait for free pages or ring
 * slots but never longer than the device stays alive. */
enum xbd_frontend_op {
	XBD_FRONTEND_READ,
	XBD_FRONTEND_WRITE,
	XBD_FRONTEND_FLUSH,
	XBD_FRONTEND_DISCARD,
};
typedef void (*xbd_frontend_done_fn)(void *opaque, int err);
int xbd_frontend_submit(struct xbd_frontend *fe, enum xbd_frontend_op op,
			const struct iovec *iov, int iovcnt, uint64_t offset,
			uint64_t len, xbd_frontend_done_fn done, void *opaque);

/* Lets the calling thread wait briefly for the answer to a read it
 * submitted alone (queue depth 1, a synchronous reader's; at most
 * $XBD_FE_SPIN_US microseconds) and complete it itself, instead of
 * sleeping while the completion thread is woken for it.  fd: readable
 * when the thread has other work (the FUSE reader's /dev/fuse), which
 * ends the wait at once; -1: the thread never waits (the default). */
void xbd_frontend_spin_watch(int fd);

/* Fills a control-socket state (xenbus state, features, ring indices,
 * in-flight list); a xbd_ctl_query_fn with the frontend as opaque. */
void xbd_frontend_ctl_query(void *fe, struct xbd_ctl_state *st);

#endif

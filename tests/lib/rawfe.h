/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A bare blkfront for the backend tests (tests/lib/rawfe.c): it does the
 * frontend handshake itself and puts requests on the ring exactly as
 * told, valid or not, so a test can play a well-behaved guest with any
 * ABI, ring size or queue count, or a hostile one (raw slot and index
 * writes, through the fields of struct rawfe).
 */
#ifndef XBD_TEST_RAWFE_H
#define XBD_TEST_RAWFE_H

#include <errno.h>
#include <poll.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "xbd/common.h"
#include "xbd/platform.h"
#include "xbd/ring.h"
#include "xbd/xenbus.h"

#define RAWFE_MAX_QUEUES 4

struct rawq {
	void *ring;
	unsigned npages;
	uint32_t refs[XBD_RING_MAX_PAGES];
	struct xbd_blkif_front f;
	struct xbd_evtchn *e;
	uint32_t port;
};

struct rawfe {
	struct xbd_platform *p;
	char fe_path[128];
	char be_path[192];
	enum xbd_blkif_abi abi;
	unsigned nq;
	struct rawq q[RAWFE_MAX_QUEUES];
	/* pages granted (writable) to the backend's domain */
	unsigned char *data;
	uint32_t *data_refs;
	unsigned ndata;
	bool connected;
};

struct rawfe_opts {
	unsigned order;      /* ring-page-order; 0 writes plain ring-ref */
	bool order_node;     /* write ring-page-order even when 0 */
	unsigned nq;         /* >1: multi-queue-num-queues */
	enum xbd_blkif_abi abi;
	bool no_protocol;    /* leave `protocol` out (x86_32 then) */
	bool persistent;     /* feature-persistent = 1 */
	unsigned data_pages;
	/* hostile handshakes */
	const char *bad_ring_ref;  /* written instead of the real one */
	const char *bad_order;     /* ring-page-order as written */
};

/* Writes fe_path/node = the formatted value. */
int rawfe_write(struct rawfe *rf, const char *node, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* The backend's state, waiting up to ms for `want` (0: no wait). */
int rawfe_be_state(struct rawfe *rf, int want, int ms);
/* Publishes rings and channels and waits for the backend to connect.
 * 0 when it did; the backend's state otherwise (negative: setup). */
int rawfe_connect(struct rawfe *rf, const struct rawfe_opts *o);
/* Walks Closing/Closed with the backend, lets go of the rings and
 * removes the nodes it published. */
void rawfe_close(struct rawfe *rf);
/* Lets go of the rings, channels and data pages. */
void rawfe_destroy(struct rawfe *rf);
void rawfe_init(struct rawfe *rf, struct xbd_platform *p,
		const char *fe_path, const char *be_path);
/* Notifies the backend on queue qi's channel. */
void rawfe_kick(struct rawfe *rf, unsigned qi);
/* Puts req on queue qi's ring and pushes it. */
int rawfe_send(struct rawfe *rf, unsigned qi,
	       const struct xbd_blkif_request *req);
/* One response within ms: 1, or 0 on timeout, -EPROTO on a bad ring. */
int rawfe_recv(struct rawfe *rf, unsigned qi,
	       struct xbd_blkif_response *rsp, int ms);
/* Sends and waits for the answer; its status, or 99 on no answer (or
 * an answer with the wrong id). */
int rawfe_do(struct rawfe *rf, unsigned qi,
	     const struct xbd_blkif_request *req, int ms);
/* A read or write of whole data pages [page, page+n) at sector. */
struct xbd_blkif_request rawfe_rw(struct rawfe *rf, uint8_t op,
				  uint64_t id, uint64_t sector,
				  unsigned page, unsigned n);
/* Data page i. */
unsigned char *rawfe_page(struct rawfe *rf, unsigned i);

#endif

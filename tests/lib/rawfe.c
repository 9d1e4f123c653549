/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A bare blkfront for the backend tests: it does the frontend handshake
 * itself and puts requests on the ring exactly as told, valid or not,
 * so a test can play a well-behaved guest with any ABI, ring size or
 * queue count, or a hostile one (raw slot and index writes).  The
 * interface is in rawfe.h.
 */
#include "tests/lib/rawfe.h"

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

int rawfe_write(struct rawfe *rf, const char *node, const char *fmt, ...)
{
	char path[256], val[128];
	va_list ap;

	snprintf(path, sizeof(path), "%s/%s", rf->fe_path, node);
	va_start(ap, fmt);
	vsnprintf(val, sizeof(val), fmt, ap);
	va_end(ap);
	return xbd_xs_write(rf->p, XBD_XS_NO_TXN, path, val, strlen(val));
}

/* The backend's state, waiting up to ms for `want` (0: no wait). */
int rawfe_be_state(struct rawfe *rf, int want, int ms)
{
	uint64_t deadline = xbd_now_ns() + (uint64_t)ms * 1000000u;
	enum xenbus_state st = XenbusStateUnknown;

	for (;;) {
		if (xbd_xenbus_read_state(rf->p, rf->be_path, &st))
			st = XenbusStateUnknown;
		if (!want || (int)st == want || xbd_now_ns() > deadline)
			return (int)st;
		usleep(2000);
	}
}

static void rawfe_free_queues(struct rawfe *rf)
{
	unsigned i;

	for (i = 0; i < RAWFE_MAX_QUEUES; i++) {
		struct rawq *q = &rf->q[i];

		if (q->e) {
			xbd_evtchn_unbind(q->e, q->port);
			xbd_evtchn_close(q->e);
			q->e = NULL;
		}
		if (q->ring) {
			xbd_unshare_pages(rf->p, q->ring, q->npages);
			q->ring = NULL;
		}
	}
}

/* Publishes rings and channels and waits for the backend to connect.
 * 0 when it did; the backend's state otherwise (negative: setup). */
int rawfe_connect(struct rawfe *rf, const struct rawfe_opts *o)
{
	unsigned i, j, nq = o->nq ? o->nq : 1;
	int err;

	rf->abi = o->abi;
	rf->nq = nq;
	if (!rf->data && o->data_pages) {
		void *addr;

		rf->ndata = o->data_pages;
		rf->data_refs = calloc(rf->ndata, sizeof(*rf->data_refs));
		err = xbd_share_pages(rf->p, 0, rf->ndata, true, rf->data_refs,
					   &addr);
		if (err)
			return err;
		rf->data = addr;
	}
	rawfe_write(rf, "state", "%d", XenbusStateInitialising);
	if (rawfe_be_state(rf, XenbusStateInitWait, 5000) != XenbusStateInitWait)
		return -ETIMEDOUT;
	for (i = 0; i < nq; i++) {
		struct rawq *q = &rf->q[i];
		char dir[32] = "", node[64];

		q->npages = 1u << o->order;
		err = xbd_share_pages(rf->p, 0, q->npages, true, q->refs,
					   &q->ring);
		if (err)
			return err;
		xbd_blkif_front_init(&q->f, q->ring, q->npages, o->abi);
		err = xbd_evtchn_open(rf->p, &q->e);
		if (!err)
			err = xbd_evtchn_alloc_unbound(q->e, 0, &q->port);
		if (err)
			return err;
		if (nq > 1)
			snprintf(dir, sizeof(dir), "queue-%u/", i);
		/* as Linux blkfront (and blkif.h) lay it out: ring-page-order
		 * once in the device directory, the refs per queue */
		if (i == 0 && o->bad_order)
			rawfe_write(rf, "ring-page-order", "%s", o->bad_order);
		else if (i == 0 && (o->order || o->order_node))
			rawfe_write(rf, "ring-page-order", "%u", o->order);
		for (j = 0; j < q->npages; j++) {
			if (o->order || o->order_node || o->bad_order)
				snprintf(node, sizeof(node), "%sring-ref%u", dir, j);
			else
				snprintf(node, sizeof(node), "%sring-ref", dir);
			if (o->bad_ring_ref)
				rawfe_write(rf, node, "%s", o->bad_ring_ref);
			else
				rawfe_write(rf, node, "%u", q->refs[j]);
		}
		snprintf(node, sizeof(node), "%sevent-channel", dir);
		rawfe_write(rf, node, "%u", q->port);
	}
	if (nq > 1)
		rawfe_write(rf, "multi-queue-num-queues", "%u", nq);
	if (!o->no_protocol)
		rawfe_write(rf, "protocol", "%s", xbd_blkif_abi_protocol(o->abi));
	rawfe_write(rf, "feature-persistent", "%d", o->persistent);
	rawfe_write(rf, "state", "%d", XenbusStateInitialised);
	err = rawfe_be_state(rf, XenbusStateConnected, 5000);
	if (err != XenbusStateConnected)
		return err ? err : -ETIMEDOUT;
	rawfe_write(rf, "state", "%d", XenbusStateConnected);
	rf->connected = true;
	return 0;
}

/* Walks Closing/Closed with the backend, lets go of the rings and
 * removes the nodes it published. */
void rawfe_close(struct rawfe *rf)
{
	static const char *const nodes[] = {
		"ring-ref", "ring-page-order", "event-channel", "protocol",
		"feature-persistent", "multi-queue-num-queues",
	};
	char path[256];
	unsigned i;

	rawfe_write(rf, "state", "%d", XenbusStateClosing);
	rawfe_be_state(rf, XenbusStateClosing, 3000);
	rawfe_write(rf, "state", "%d", XenbusStateClosed);
	rawfe_be_state(rf, XenbusStateClosed, 3000);
	rawfe_free_queues(rf);
	for (i = 0; i < XBD_ARRAY_SIZE(nodes); i++) {
		snprintf(path, sizeof(path), "%s/%s", rf->fe_path, nodes[i]);
		xbd_xs_rm(rf->p, XBD_XS_NO_TXN, path);
	}
	for (i = 0; i < XBD_RING_MAX_PAGES; i++) {
		snprintf(path, sizeof(path), "%s/ring-ref%u", rf->fe_path, i);
		xbd_xs_rm(rf->p, XBD_XS_NO_TXN, path);
	}
	for (i = 0; i < RAWFE_MAX_QUEUES; i++) {
		snprintf(path, sizeof(path), "%s/queue-%u", rf->fe_path, i);
		xbd_xs_rm(rf->p, XBD_XS_NO_TXN, path);
	}
	rf->connected = false;
}

void rawfe_destroy(struct rawfe *rf)
{
	rawfe_free_queues(rf);
	if (rf->data)
		xbd_unshare_pages(rf->p, rf->data, rf->ndata);
	free(rf->data_refs);
	rf->data = NULL;
	rf->data_refs = NULL;
}

void rawfe_init(struct rawfe *rf, struct xbd_platform *p,
		const char *fe_path, const char *be_path)
{
	memset(rf, 0, sizeof(*rf));
	rf->p = p;
	snprintf(rf->fe_path, sizeof(rf->fe_path), "%s", fe_path);
	snprintf(rf->be_path, sizeof(rf->be_path), "%s", be_path);
}

void rawfe_kick(struct rawfe *rf, unsigned qi)
{
	xbd_evtchn_notify(rf->q[qi].e, rf->q[qi].port);
}

/* Puts req on queue qi's ring and pushes it. */
int rawfe_send(struct rawfe *rf, unsigned qi,
	       const struct xbd_blkif_request *req)
{
	int err = xbd_blkif_front_put_request(&rf->q[qi].f, req);

	if (err)
		return err;
	if (xbd_blkif_front_push_requests(&rf->q[qi].f))
		rawfe_kick(rf, qi);
	return 0;
}

/* One response within ms: 1, or 0 on timeout, -EPROTO on a bad ring. */
int rawfe_recv(struct rawfe *rf, unsigned qi,
	       struct xbd_blkif_response *rsp, int ms)
{
	struct rawq *q = &rf->q[qi];
	uint64_t deadline = xbd_now_ns() + (uint64_t)ms * 1000000u;

	for (;;) {
		struct pollfd pfd = { .fd = xbd_evtchn_fd(q->e), .events = POLLIN };
		uint32_t port;
		int r = xbd_blkif_front_next_response(&q->f, rsp);
		int64_t left;

		if (r)
			return r;
		if (xbd_blkif_front_final_check(&q->f))
			continue;
		left = (int64_t)(deadline - xbd_now_ns()) / 1000000;
		if (left <= 0)
			return 0;
		poll(&pfd, 1, left > 50 ? 50 : (int)left);
		while (xbd_evtchn_pending(q->e, &port) == 0)
			xbd_evtchn_unmask(q->e, port);
	}
}

/* Sends and waits for the answer; its status, or 99 on no answer (or
 * an answer with the wrong id). */
int rawfe_do(struct rawfe *rf, unsigned qi,
	     const struct xbd_blkif_request *req, int ms)
{
	struct xbd_blkif_response rsp;

	if (rawfe_send(rf, qi, req))
		return 98;
	if (rawfe_recv(rf, qi, &rsp, ms) != 1 || rsp.id != req->id)
		return 99;
	return rsp.status;
}

/* A read or write of whole data pages [page, page+n) at sector. */
struct xbd_blkif_request rawfe_rw(struct rawfe *rf, uint8_t op,
				  uint64_t id, uint64_t sector,
				  unsigned page, unsigned n)
{
	struct xbd_blkif_request r;
	unsigned i;

	memset(&r, 0, sizeof(r));
	r.id = id;
	r.op = r.ring_op = op;
	r.sector = sector;
	r.nr_segments = n;
	for (i = 0; i < n && i < XBD_BLKIF_MAX_SEGS; i++) {
		r.seg[i].gref = rf->data_refs[page + i];
		r.seg[i].first_sect = 0;
		r.seg[i].last_sect = 7;
	}
	return r;
}

unsigned char *rawfe_page(struct rawfe *rf, unsigned i)
{
	return rf->data + (size_t)i * XBD_PAGE_SIZE;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The user-space blkfront against a fake backend built on the backend
 * half of the ring code, on two platforms: an in-process fake (memory
 * xenstore, grant table, event channels with the masking contract of
 * libxenevtchn) and the sim, where the backend runs in another process
 * acting as a driver domain.  Covers the handshake and its nodes, data
 * integrity with many threads and many requests in flight (direct,
 * indirect, multi-page rings, unaligned reads, a tiny grant budget),
 * read-only disks, 4096-byte sectors, the workload engine, and a hostile
 * or vanishing backend: bogus id, duplicate response, rsp_prod beyond
 * req_prod, wrong op, unknown status, stale id, a backend that stops
 * answering, is killed, leaves Connected, or whose domain dies.  Each
 * must end in -EIO, never a crash or a hang; close must give back every
 * grant and port and remove our nodes.
 */
#include "xbd/frontend.h"
#include "src/platform_priv.h" /* its fake platform is an implementation */
#include "xbd/toolstack.h"
#include "xbd/image.h"
#include "xbd/ring.h"
#include "xbd/stats.h"
#include "xbd/ctl.h"
#include "xbd/common.h"
#include "src/sim/sim.h"
#include "tests/lib/testlib.h"
#include "xbd/xenbus.h"
#include "tests/lib/check.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/wait.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* Fake platform                                                      */
/* ------------------------------------------------------------------ */

#define MAX_NODES 512
#define MAX_GRANTS 8192
#define MAX_PORTS 16

struct node {
	char *path, *value;
};

/* One port: its owner's handle and the port at the other end (0 while
 * unbound); delivery follows libxenevtchn's masking contract. */
struct fake_port {
	bool used;
	struct fake_evtchn *owner;
	uint32_t remote;
	bool masked, queued, pending_masked;
};

struct fake_platform {
	struct xbd_platform_base base;
	pthread_mutex_t lock;
	struct node nodes[MAX_NODES];
	void *grant_page[MAX_GRANTS];
	bool grant_live[MAX_GRANTS];
	unsigned next_ref;
	unsigned shared_pages; /* live */
	/* unshared memory stays until the end, as a page the peer still
	 * maps stays alive on Xen */
	void *blocks[256];
	unsigned nblocks;
	unsigned refuse_above; /* share_pages of more pages: -ENOSPC */
	struct fake_port ports[MAX_PORTS];
	unsigned open_evtchns;
	_Atomic int domain_alive;
};

struct fake_evtchn {
	struct xbd_evtchn_base base;
	struct fake_platform *fp;
	int efd;
};

static struct fake_platform *fp_of(struct xbd_platform *p)
{
	return (struct fake_platform *)p;
}

static struct xbd_platform *P(struct fake_platform *fp)
{
	return (struct xbd_platform *)fp;
}

static void fp_close(struct xbd_platform *p)
{
	(void)p;
}

static uint16_t fp_self(struct xbd_platform *p)
{
	(void)p;
	return 0;
}

static int fp_share(struct xbd_platform *p, uint16_t domid, unsigned count,
		    bool writable, uint32_t *refs, void **addr)
{
	struct fake_platform *fp = fp_of(p);
	char *mem;
	unsigned i;

	(void)domid;
	(void)writable;
	if (fp->refuse_above && count > fp->refuse_above)
		return -ENOSPC;
	pthread_mutex_lock(&fp->lock);
	if (fp->next_ref + count > MAX_GRANTS) {
		pthread_mutex_unlock(&fp->lock);
		return -ENOSPC;
	}
	mem = aligned_alloc(4096, (size_t)count * 4096);
	memset(mem, 0, (size_t)count * 4096);
	for (i = 0; i < count; i++) {
		unsigned r = fp->next_ref++;

		fp->grant_page[r] = mem + (size_t)i * 4096;
		fp->grant_live[r] = true;
		refs[i] = r;
	}
	fp->shared_pages += count;
	pthread_mutex_unlock(&fp->lock);
	*addr = mem;
	return 0;
}

static int fp_unshare(struct xbd_platform *p, void *addr, unsigned count)
{
	struct fake_platform *fp = fp_of(p);
	unsigned r, found = 0;

	pthread_mutex_lock(&fp->lock);
	for (r = 0; r < fp->next_ref; r++) {
		char *pg = fp->grant_page[r];

		if (fp->grant_live[r] && pg >= (char *)addr &&
		    pg < (char *)addr + (size_t)count * 4096) {
			fp->grant_live[r] = false;
			found++;
		}
	}
	fp->shared_pages -= found;
	if (fp->nblocks < XBD_ARRAY_SIZE(fp->blocks))
		fp->blocks[fp->nblocks++] = addr;
	else
		abort();
	pthread_mutex_unlock(&fp->lock);
	return found == count ? 0 : -EINVAL;
}

/* The backend's mapping: the frontend's own pages (a multi-page map must
 * be of pages shared together, which lie side by side). */
static int fp_map(struct xbd_platform *p, uint16_t domid, unsigned count,
		  const uint32_t *refs, bool writable, void **addr)
{
	struct fake_platform *fp = fp_of(p);
	unsigned i;
	int err = 0;

	(void)domid;
	(void)writable;
	pthread_mutex_lock(&fp->lock);
	for (i = 0; i < count && !err; i++)
		if (refs[i] >= MAX_GRANTS || !fp->grant_live[refs[i]] ||
		    (char *)fp->grant_page[refs[i]] !=
			    (char *)fp->grant_page[refs[0]] + (size_t)i * 4096)
			err = -EINVAL;
	if (!err)
		*addr = fp->grant_page[refs[0]];
	pthread_mutex_unlock(&fp->lock);
	return err;
}

static int fp_unmap(struct xbd_platform *p, void *addr, unsigned count)
{
	(void)p, (void)addr, (void)count;
	return 0;
}

static int fp_evtchn_open(struct xbd_platform *p, struct xbd_evtchn **out)
{
	struct fake_evtchn *e = calloc(1, sizeof(*e));

	e->base.ops = fp_of(p)->base.ops;
	e->fp = fp_of(p);
	e->efd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
	pthread_mutex_lock(&e->fp->lock);
	e->fp->open_evtchns++;
	pthread_mutex_unlock(&e->fp->lock);
	*out = (struct xbd_evtchn *)e;
	return 0;
}

static void fp_evtchn_close(struct xbd_evtchn *xe)
{
	struct fake_evtchn *e = (struct fake_evtchn *)xe;
	unsigned i;

	pthread_mutex_lock(&e->fp->lock);
	for (i = 0; i < MAX_PORTS; i++) {
		struct fake_port *fpt = &e->fp->ports[i];

		if (fpt->used && fpt->owner == e) {
			if (fpt->remote)
				e->fp->ports[fpt->remote].remote = 0;
			fpt->used = false;
		}
	}
	e->fp->open_evtchns--;
	pthread_mutex_unlock(&e->fp->lock);
	close(e->efd);
	free(e);
}

static int fp_evtchn_fd(struct xbd_evtchn *xe)
{
	return ((struct fake_evtchn *)xe)->efd;
}

static int new_port(struct fake_evtchn *e, uint32_t remote, uint32_t *port)
{
	unsigned i;

	pthread_mutex_lock(&e->fp->lock);
	for (i = 1; i < MAX_PORTS; i++) {
		struct fake_port *fpt = &e->fp->ports[i];

		if (fpt->used)
			continue;
		memset(fpt, 0, sizeof(*fpt));
		fpt->used = true;
		fpt->owner = e;
		fpt->remote = remote;
		if (remote)
			e->fp->ports[remote].remote = i;
		*port = i;
		pthread_mutex_unlock(&e->fp->lock);
		return 0;
	}
	pthread_mutex_unlock(&e->fp->lock);
	return -ENOSPC;
}

static int fp_alloc_unbound(struct xbd_evtchn *xe, uint16_t remote,
			    uint32_t *port)
{
	(void)remote;
	return new_port((struct fake_evtchn *)xe, 0, port);
}

static int fp_bind(struct xbd_evtchn *xe, uint16_t d, uint32_t rp, uint32_t *port)
{
	struct fake_evtchn *e = (struct fake_evtchn *)xe;

	(void)d;
	if (rp == 0 || rp >= MAX_PORTS || !e->fp->ports[rp].used ||
	    e->fp->ports[rp].remote)
		return -EINVAL;
	return new_port(e, rp, port);
}

static int fp_unbind(struct xbd_evtchn *xe, uint32_t port)
{
	struct fake_evtchn *e = (struct fake_evtchn *)xe;
	struct fake_port *fpt = &e->fp->ports[port];

	pthread_mutex_lock(&e->fp->lock);
	if (fpt->used && fpt->remote)
		e->fp->ports[fpt->remote].remote = 0;
	fpt->used = false;
	pthread_mutex_unlock(&e->fp->lock);
	return 0;
}

/* Raises `port`: delivered (and masked) unless masked already, then
 * remembered until unmask. */
static void raise_port_locked(struct fake_platform *fp, uint32_t port)
{
	struct fake_port *fpt = &fp->ports[port];
	uint64_t one = 1;

	if (!fpt->used)
		return;
	if (fpt->masked) {
		fpt->pending_masked = true;
	} else {
		fpt->masked = true;
		fpt->queued = true;
		if (write(fpt->owner->efd, &one, 8) != 8)
			abort();
	}
}

static int fp_notify(struct xbd_evtchn *xe, uint32_t port)
{
	struct fake_evtchn *e = (struct fake_evtchn *)xe;
	int err = 0;

	pthread_mutex_lock(&e->fp->lock);
	if (port >= MAX_PORTS || !e->fp->ports[port].used ||
	    e->fp->ports[port].owner != e)
		err = -EINVAL;
	else if (e->fp->ports[port].remote)
		raise_port_locked(e->fp, e->fp->ports[port].remote);
	pthread_mutex_unlock(&e->fp->lock);
	return err;
}

static int fp_pending(struct xbd_evtchn *xe, uint32_t *port)
{
	struct fake_evtchn *e = (struct fake_evtchn *)xe;
	uint64_t v;
	unsigned i;

	pthread_mutex_lock(&e->fp->lock);
	if (read(e->efd, &v, 8) < 0) {
		/* nothing new; queued ports may remain */
	}
	for (i = 0; i < MAX_PORTS; i++) {
		struct fake_port *fpt = &e->fp->ports[i];

		if (fpt->used && fpt->owner == e && fpt->queued) {
			fpt->queued = false;
			*port = i;
			pthread_mutex_unlock(&e->fp->lock);
			return 0;
		}
	}
	pthread_mutex_unlock(&e->fp->lock);
	return -EAGAIN;
}

static int fp_unmask(struct xbd_evtchn *xe, uint32_t port)
{
	struct fake_evtchn *e = (struct fake_evtchn *)xe;
	struct fake_port *fpt = &e->fp->ports[port];

	pthread_mutex_lock(&e->fp->lock);
	fpt->masked = false;
	if (fpt->pending_masked) {
		fpt->pending_masked = false;
		raise_port_locked(e->fp, port);
	}
	pthread_mutex_unlock(&e->fp->lock);
	return 0;
}

static struct node *find_node(struct fake_platform *fp, const char *path)
{
	unsigned i;

	for (i = 0; i < MAX_NODES; i++)
		if (fp->nodes[i].path && !strcmp(fp->nodes[i].path, path))
			return &fp->nodes[i];
	return NULL;
}

static int fp_xs_read(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		      char **value, size_t *len)
{
	struct fake_platform *fp = fp_of(p);
	struct node *n;

	(void)t;
	pthread_mutex_lock(&fp->lock);
	n = find_node(fp, path);
	if (n) {
		*value = strdup(n->value);
		if (len)
			*len = strlen(n->value);
	} else {
		/* a directory exists while it has children; it reads "" */
		size_t l = strlen(path);
		unsigned i;

		for (i = 0; i < MAX_NODES && !n; i++)
			if (fp->nodes[i].path && !strncmp(fp->nodes[i].path, path, l) &&
			    fp->nodes[i].path[l] == '/')
				n = &fp->nodes[i];
		if (n) {
			*value = strdup("");
			if (len)
				*len = 0;
		}
	}
	pthread_mutex_unlock(&fp->lock);
	return n ? 0 : -ENOENT;
}

static int fp_xs_write(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		       const void *value, size_t len)
{
	struct fake_platform *fp = fp_of(p);
	struct node *n;
	unsigned i;

	(void)t;
	pthread_mutex_lock(&fp->lock);
	n = find_node(fp, path);
	if (!n) {
		for (i = 0; i < MAX_NODES && fp->nodes[i].path; i++)
			;
		if (i == MAX_NODES)
			abort();
		n = &fp->nodes[i];
		n->path = strdup(path);
	} else {
		free(n->value);
	}
	n->value = strndup(value, len);
	pthread_mutex_unlock(&fp->lock);
	return 0;
}

static int fp_xs_mkdir(struct xbd_platform *p, xbd_xs_txn t, const char *path)
{
	(void)p, (void)t, (void)path;
	return 0;
}

static int fp_xs_rm(struct xbd_platform *p, xbd_xs_txn t, const char *path)
{
	struct fake_platform *fp = fp_of(p);
	size_t l = strlen(path);
	unsigned i;

	(void)t;
	pthread_mutex_lock(&fp->lock);
	for (i = 0; i < MAX_NODES; i++) {
		struct node *n = &fp->nodes[i];

		if (n->path && !strncmp(n->path, path, l) &&
		    (n->path[l] == 0 || n->path[l] == '/')) {
			free(n->path);
			free(n->value);
			n->path = n->value = NULL;
		}
	}
	pthread_mutex_unlock(&fp->lock);
	return 0;
}

static int fp_xs_directory(struct xbd_platform *p, xbd_xs_txn t,
			   const char *path, char ***names, unsigned *count)
{
	(void)p, (void)t, (void)path, (void)names, (void)count;
	return -ENOSYS;
}

static int fp_txn_start(struct xbd_platform *p, xbd_xs_txn *t)
{
	(void)p;
	*t = 1;
	return 0;
}

static int fp_txn_end(struct xbd_platform *p, xbd_xs_txn t, bool abort_)
{
	(void)p, (void)t, (void)abort_;
	return 0;
}

static int fp_domain_alive(struct xbd_platform *p, uint16_t domid)
{
	(void)domid;
	return atomic_load(&fp_of(p)->domain_alive);
}

static const struct xbd_platform_ops fake_ops = {
	.name = "fake",
	.close = fp_close,
	.self_domid = fp_self,
	.share_pages = fp_share,
	.unshare_pages = fp_unshare,
	.map_grants = fp_map,
	.unmap_grants = fp_unmap,
	.evtchn_open = fp_evtchn_open,
	.evtchn_close = fp_evtchn_close,
	.evtchn_fd = fp_evtchn_fd,
	.evtchn_alloc_unbound = fp_alloc_unbound,
	.evtchn_bind_interdomain = fp_bind,
	.evtchn_unbind = fp_unbind,
	.evtchn_notify = fp_notify,
	.evtchn_pending = fp_pending,
	.evtchn_unmask = fp_unmask,
	.xs_read = fp_xs_read,
	.xs_write = fp_xs_write,
	.xs_mkdir = fp_xs_mkdir,
	.xs_rm = fp_xs_rm,
	.xs_directory = fp_xs_directory,
	.xs_transaction_start = fp_txn_start,
	.xs_transaction_end = fp_txn_end,
	.domain_alive = fp_domain_alive,
};

static struct fake_platform *fp_new(void)
{
	struct fake_platform *fp = calloc(1, sizeof(*fp));

	fp->base.ops = &fake_ops;
	pthread_mutex_init(&fp->lock, NULL);
	fp->next_ref = 8; /* ref 0..7 never valid */
	atomic_store(&fp->domain_alive, 1);
	return fp;
}

static void fp_free(struct fake_platform *fp)
{
	unsigned i;

	for (i = 0; i < MAX_NODES; i++) {
		free(fp->nodes[i].path);
		free(fp->nodes[i].value);
	}
	for (i = 0; i < fp->nblocks; i++)
		free(fp->blocks[i]);
	pthread_mutex_destroy(&fp->lock);
	free(fp);
}

/* xenstore through the seam: fake or sim alike */
static void xs_put(struct xbd_platform *p, const char *dir, const char *key,
		   const char *fmt, unsigned long long v)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	xbd_xs_printf(p, XBD_XS_NO_TXN, path, fmt, v);
}

static long long xs_get(struct xbd_platform *p, const char *dir, const char *key)
{
	char path[256];
	unsigned long long v;

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	if (xbd_xs_read_uint(p, path, &v))
		return -1;
	return (long long)v;
}

static bool xs_has(struct xbd_platform *p, const char *dir, const char *key)
{
	char path[256], *v = NULL;
	int err;

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	err = xbd_xs_read_str(p, path, &v);
	free(v);
	return err == 0;
}

/* ------------------------------------------------------------------ */
/* Fake backend                                                       */
/* ------------------------------------------------------------------ */

#define FE_DIR "/local/domain/0/device/xbd/51712"
#define BE_DIR "/local/domain/0/backend/vbd/0/51712"
#define MAP_SLOTS 4096 /* grant mappings kept: the frontend's pool is small */

enum hostile {
	H_NONE,
	H_BOGUS_ID,      /* answer with an id never sent */
	H_DUPLICATE,     /* answer one request twice (another is waiting,
			  * so the ring's own count check passes) */
	H_PROD_BEYOND,   /* rsp_prod beyond what was requested */
	H_WRONG_OP,      /* answer a read as a write */
	H_BAD_STATUS,    /* status 7 */
	H_SILENT,        /* stop answering (process killed) */
	H_CLOSE,         /* leave Connected while requests wait */
	H_DOMAIN_DIES,   /* backend domain destroyed (fake platform only) */
	H_STALE_ID,      /* answer a request with a previous id of its slot */
};

struct be_map {
	uint32_t ref;
	void *addr;
};

struct fake_be {
	struct xbd_platform *p;   /* the backend's platform */
	struct fake_platform *fp; /* the same, when it is the fake */
	const char *fe_dir, *be_dir;
	uint16_t fe_domid;
	uint8_t *disk;
	uint64_t size;
	unsigned sector_size;
	unsigned max_order;
	unsigned max_indirect;
	bool read_only, persistent;
	enum hostile hostile;
	unsigned hostile_after; /* requests served normally first */

	pthread_t th;
	_Atomic bool stop;
	_Atomic bool triggered;
	_Atomic unsigned served;
	uint64_t last_id;
	uint64_t held_id; /* H_DUPLICATE: the request kept back */
	uint8_t held_op;
	struct xbd_evtchn *ev;
	uint32_t port;            /* ours, bound to the frontend's */
	void *ring_mem;
	unsigned ring_pages;
	struct be_map maps[MAP_SLOTS]; /* open addressing by ref */
	struct xbd_blkif_back ring;
};

/* A grant of the frontend, mapped once and kept (as blkback keeps
 * persistent grants); NULL for a ref that does not map. */
static void *be_page(struct fake_be *be, uint32_t ref)
{
	unsigned i, h = (ref * 2654435761u) % MAP_SLOTS;
	void *addr;

	for (i = 0; i < MAP_SLOTS; i++) {
		struct be_map *m = &be->maps[(h + i) % MAP_SLOTS];

		if (m->addr && m->ref == ref)
			return m->addr;
		if (!m->addr) {
			if (xbd_map_grants(be->p, be->fe_domid, 1, &ref, true,
					   &addr))
				return NULL;
			m->ref = ref;
			m->addr = addr;
			return addr;
		}
	}
	return NULL;
}

static void be_unmap_all(struct fake_be *be)
{
	unsigned i;

	for (i = 0; i < MAP_SLOTS; i++) {
		if (be->maps[i].addr)
			xbd_unmap_grants(be->p, be->maps[i].addr, 1);
		be->maps[i].addr = NULL;
	}
}

static void be_io(struct fake_be *be, struct xbd_blkif_request *req,
		  const struct xbd_blkif_limits *lim)
{
	struct xbd_blkif_seg *segs = req->seg;
	struct xbd_blkif_seg *ind = NULL;
	uint64_t pos;
	uint32_t i;

	if (req->status != BLKIF_RSP_OKAY)
		return;
	if (req->indirect) {
		const void *pages[XBD_BLKIF_MAX_INDIRECT_PAGES];

		for (i = 0; i < req->nr_indirect_pages; i++) {
			pages[i] = be_page(be, req->indirect_grefs[i]);
			if (!pages[i]) {
				req->status = BLKIF_RSP_ERROR;
				return;
			}
		}
		ind = calloc(req->nr_segments, sizeof(*ind));
		req->status = xbd_blkif_read_indirect_segments(req, lim, pages, ind);
		segs = ind;
		if (req->status != BLKIF_RSP_OKAY)
			goto out;
	}
	switch (req->op) {
	case BLKIF_OP_READ:
	case BLKIF_OP_WRITE:
		pos = req->sector * 512;
		for (i = 0; i < req->nr_segments; i++) {
			char *pg = be_page(be, segs[i].gref);
			size_t off = segs[i].first_sect * 512u;
			size_t n = (segs[i].last_sect - segs[i].first_sect + 1) * 512u;

			if (!pg) {
				req->status = BLKIF_RSP_ERROR;
				goto out;
			}
			if (req->op == BLKIF_OP_READ)
				memcpy(pg + off, be->disk + pos, n);
			else
				memcpy(be->disk + pos, pg + off, n);
			pos += n;
		}
		break;
	case BLKIF_OP_DISCARD:
		memset(be->disk + req->sector * 512, 0, req->nr_sectors * 512);
		break;
	default:
		break;
	}
out:
	free(ind);
}

static bool be_wait_fe_state(struct fake_be *be, long long want)
{
	while (!atomic_load(&be->stop)) {
		if (xs_get(be->p, be->fe_dir, "state") == want)
			return true;
		usleep(1000);
	}
	return false;
}

static void be_push(struct fake_be *be)
{
	if (xbd_blkif_back_push_responses(&be->ring))
		xbd_evtchn_notify(be->ev, be->port);
}

/* What a hostile backend does instead of answering `req`. */
static bool be_misbehave(struct fake_be *be, const struct xbd_blkif_request *req)
{
	blkif_back_ring_t *r = &be->ring.r.native;

	if (be->hostile == H_NONE || atomic_load(&be->served) < be->hostile_after ||
	    atomic_load(&be->triggered))
		return false;
	switch (be->hostile) {
	case H_BOGUS_ID:
		xbd_blkif_back_put_response(&be->ring, req->id + 12345, req->ring_op,
					    BLKIF_RSP_OKAY);
		break;
	case H_DUPLICATE:
		if (!be->held_id) {
			be->held_id = req->id | 1ull << 63;
			be->held_op = req->op;
			return true;
		}
		be->held_id &= ~(1ull << 63);
		xbd_blkif_back_put_response(&be->ring, be->held_id, be->held_op, 0);
		xbd_blkif_back_put_response(&be->ring, be->held_id, be->held_op, 0);
		break;
	case H_PROD_BEYOND:
		xbd_blkif_back_put_response(&be->ring, req->id, req->ring_op, 0);
		r->rsp_prod_pvt += 5;
		break;
	case H_WRONG_OP:
		xbd_blkif_back_put_response(&be->ring, req->id, BLKIF_OP_WRITE, 0);
		break;
	case H_BAD_STATUS:
		xbd_blkif_back_put_response(&be->ring, req->id, req->ring_op, 7);
		break;
	case H_STALE_ID:
		if (!be->last_id)
			return false;
		xbd_blkif_back_put_response(&be->ring, be->last_id, req->ring_op, 0);
		break;
	case H_SILENT:
		break;
	case H_CLOSE:
		xs_put(be->p, be->be_dir, "state", "%llu", XenbusStateClosing);
		break;
	case H_DOMAIN_DIES:
		if (be->fp)
			atomic_store(&be->fp->domain_alive, 0);
		break;
	default:
		return false;
	}
	atomic_store(&be->triggered, true);
	be_push(be);
	return true;
}

static void be_serve(struct fake_be *be, const struct xbd_blkif_limits *lim)
{
	struct pollfd pfd = { .fd = xbd_evtchn_fd(be->ev), .events = POLLIN };

	while (!atomic_load(&be->stop)) {
		struct xbd_blkif_request req;
		bool got = false;
		uint32_t port;
		int r;

		if (poll(&pfd, 1, 5) > 0)
			while (xbd_evtchn_pending(be->ev, &port) == 0)
				got = true;
		if (xs_get(be->p, be->fe_dir, "state") >= XenbusStateClosing)
			return;
		if (atomic_load(&be->triggered) &&
		    (be->hostile == H_SILENT || be->hostile == H_CLOSE ||
		     be->hostile == H_DOMAIN_DIES))
			continue; /* dead: never answers again */
		for (;;) {
			while ((r = xbd_blkif_back_next_request(&be->ring, lim, &req)) == 1) {
				if (be_misbehave(be, &req))
					continue;
				be_io(be, &req, lim);
				xbd_blkif_back_put_response(&be->ring, req.id,
							    req.op == BLKIF_OP_READ ||
								    req.op == BLKIF_OP_WRITE
								    ? req.op
								    : req.ring_op,
							    req.status);
				be->last_id = req.id;
				atomic_fetch_add(&be->served, 1);
			}
			be_push(be);
			if (r < 0 || !xbd_blkif_back_final_check(&be->ring))
				break;
		}
		if (got)
			xbd_evtchn_unmask(be->ev, be->port);
	}
}

/* The backend's whole life, as blkback lives it: InitWait, map the ring
 * and bind the channel on Initialised, Connected, serve, and the close
 * walk (unless "dead"). */
static void *be_main(void *arg)
{
	struct fake_be *be = arg;
	struct xbd_blkif_limits lim = {
		.nr_sectors = be->size / 512,
		.sector_size = be->sector_size,
		.read_only = be->read_only,
		.flush = true,
		.discard = !be->read_only,
		.max_indirect_segments = be->max_indirect,
	};
	uint32_t refs[XBD_RING_MAX_PAGES];
	long long order;
	unsigned i;

	xs_put(be->p, be->be_dir, "max-ring-page-order", "%llu", be->max_order);
	if (be->max_indirect)
		xs_put(be->p, be->be_dir, "feature-max-indirect-segments", "%llu",
		       be->max_indirect);
	xs_put(be->p, be->be_dir, "state", "%llu", XenbusStateInitWait);
	if (!be_wait_fe_state(be, XenbusStateInitialised))
		return NULL;

	order = xs_get(be->p, be->fe_dir, "ring-page-order");
	if (order < 0)
		order = 0;
	be->ring_pages = 1u << order;
	for (i = 0; i < be->ring_pages; i++) {
		char key[32];

		snprintf(key, sizeof(key), order ? "ring-ref%u" : "ring-ref", i);
		refs[i] = (uint32_t)xs_get(be->p, be->fe_dir, key);
	}
	if (xbd_map_grants(be->p, be->fe_domid, be->ring_pages, refs, true,
			   &be->ring_mem) ||
	    xbd_evtchn_open(be->p, &be->ev) ||
	    xbd_evtchn_bind_interdomain(be->ev, be->fe_domid,
					(uint32_t)xs_get(be->p, be->fe_dir,
							 "event-channel"),
					&be->port) ||
	    xbd_blkif_back_init(&be->ring, be->ring_mem, be->ring_pages,
				XBD_BLKIF_ABI_X86_64))
		abort();

	xs_put(be->p, be->be_dir, "sectors", "%llu", be->size / 512);
	xs_put(be->p, be->be_dir, "sector-size", "%llu", be->sector_size);
	xs_put(be->p, be->be_dir, "info", "%llu", be->read_only ? VDISK_READONLY : 0);
	xs_put(be->p, be->be_dir, "feature-flush-cache", "%llu", 1);
	if (!be->read_only)
		xs_put(be->p, be->be_dir, "feature-discard", "%llu", 1);
	xs_put(be->p, be->be_dir, "feature-persistent", "%llu", be->persistent);
	xs_put(be->p, be->be_dir, "state", "%llu", XenbusStateConnected);

	be_serve(be, &lim);

	if (!(atomic_load(&be->triggered) && be->hostile == H_SILENT)) {
		if (be_wait_fe_state(be, XenbusStateClosing) ||
		    xs_get(be->p, be->fe_dir, "state") == XenbusStateClosed)
			xs_put(be->p, be->be_dir, "state", "%llu", XenbusStateClosing);
		if (be_wait_fe_state(be, XenbusStateClosed))
			xs_put(be->p, be->be_dir, "state", "%llu", XenbusStateClosed);
	}
	/* "dead" backends still give back what they hold when the test
	 * ends: the test checks the frontend, not our leaks */
	be_unmap_all(be);
	xbd_unmap_grants(be->p, be->ring_mem, be->ring_pages);
	xbd_evtchn_close(be->ev);
	return NULL;
}

static void fill_disk(uint8_t *disk, uint64_t size)
{
	uint64_t i;

	for (i = 0; i < size / 8; i++)
		((uint64_t *)disk)[i] = i * 0x9e3779b97f4a7c15ull;
}

/* The fake platform, frontend and backend in this process. */
struct rig {
	struct fake_platform *fp;
	struct fake_be be;
	struct xbd_frontend *fe;
	struct xbd_frontend_config cfg;
};

static void rig_defaults(struct rig *r, uint64_t size)
{
	memset(r, 0, sizeof(*r));
	r->fp = fp_new();
	r->be.p = P(r->fp);
	r->be.fp = r->fp;
	r->be.fe_dir = FE_DIR;
	r->be.be_dir = BE_DIR;
	r->be.size = size;
	r->be.sector_size = 512;
	r->be.max_order = 2;
	r->be.max_indirect = 256;
	r->be.persistent = true;
	r->cfg.frontend_path = FE_DIR;
	r->cfg.backend_path = BE_DIR;
	r->cfg.backend_domid = 0;
	r->cfg.name = "test/xvda";
	r->cfg.max_ring_order = -1;
	r->cfg.io_timeout_ms = 1000;
	r->cfg.connect_timeout_ms = 5000;
}

static int rig_start(struct rig *r)
{
	int err;

	r->be.disk = malloc(r->be.size);
	fill_disk(r->be.disk, r->be.size);
	xs_put(P(r->fp), FE_DIR, "state", "%llu", XenbusStateInitialising);
	xs_put(P(r->fp), BE_DIR, "state", "%llu", XenbusStateInitialising);
	pthread_create(&r->be.th, NULL, be_main, &r->be);
	err = xbd_frontend_connect(P(r->fp), &r->cfg, &r->fe);
	if (err)
		r->fe = NULL;
	return err;
}

static void rig_stop(struct rig *r)
{
	xbd_frontend_close(r->fe);
	atomic_store(&r->be.stop, true);
	pthread_join(r->be.th, NULL);
	/* everything given back */
	CHECK_EQ(r->fp->shared_pages, 0);
	CHECK_EQ(r->fp->open_evtchns, 0);
	if (r->fe) {
		CHECK(!xs_has(P(r->fp), FE_DIR, "ring-ref"));
		CHECK(!xs_has(P(r->fp), FE_DIR, "ring-ref0"));
		CHECK(!xs_has(P(r->fp), FE_DIR, "event-channel"));
		CHECK_EQ(xs_get(P(r->fp), FE_DIR, "state"), XenbusStateClosed);
	}
	free(r->be.disk);
	fp_free(r->fp);
}

/* ------------------------------------------------------------------ */
/* Tests                                                              */
/* ------------------------------------------------------------------ */

static void test_handshake_and_data(void)
{
	struct xbd_frontend_info info;
	struct xbd_image *img;
	struct rig r;
	uint8_t *buf;
	size_t size = 4 << 20;

	rig_defaults(&r, size);
	CHECK_EQ(rig_start(&r), 0);
	if (!r.fe)
		goto out;
	CHECK_EQ(xs_get(P(r.fp), FE_DIR, "state"), XenbusStateConnected);
	CHECK_EQ(xs_get(P(r.fp), FE_DIR, "ring-page-order"), 2);
	CHECK(xs_has(P(r.fp), FE_DIR, "ring-ref3"));
	CHECK(!xs_has(P(r.fp), FE_DIR, "ring-ref4"));
	CHECK(xs_has(P(r.fp), FE_DIR, "event-channel"));
	CHECK_EQ(xs_get(P(r.fp), FE_DIR, "feature-persistent"), 1);
	{
		char *proto = NULL;

		fp_xs_read((struct xbd_platform *)r.fp, 0, FE_DIR "/protocol", &proto, NULL);
		CHECK(proto && !strcmp(proto, "x86_64-abi"));
		free(proto);
	}
	xbd_frontend_get_info(r.fe, &info);
	CHECK_EQ(info.sectors, size / 512);
	CHECK_EQ(info.ring_pages, 4);
	CHECK_EQ(info.ring_entries, 128);
	CHECK(info.persistent);
	CHECK(info.max_segments > 11);
	CHECK(!info.read_only);

	CHECK_EQ(xbd_frontend_open_image(r.fe, false, &img), 0);
	buf = malloc(size);
	CHECK_EQ(xbd_image_pread(img, buf, size, 0), 0);
	CHECK(memcmp(buf, r.be.disk, size) == 0);
	/* write a pattern over 1 MiB at an odd sector, read it back */
	memset(buf, 0xa5, 1 << 20);
	CHECK_EQ(xbd_image_pwrite(img, buf, 1 << 20, 512 * 13), 0);
	CHECK(memcmp(r.be.disk + 512 * 13, buf, 1 << 20) == 0);
	memset(buf, 0, 1 << 20);
	CHECK_EQ(xbd_image_pread(img, buf, 1 << 20, 512 * 13), 0);
	CHECK_EQ(buf[0], 0xa5);
	CHECK_EQ(buf[(1 << 20) - 1], 0xa5);
	/* 7-byte reads at odd offsets */
	for (size_t off = 3; off < size - 7; off += 123457) {
		uint8_t small[7];

		CHECK_EQ(xbd_image_pread(img, small, 7, off), 0);
		CHECK(memcmp(small, r.be.disk + off, 7) == 0);
	}
	/* unaligned write: read-modify-write */
	CHECK_EQ(xbd_image_pwrite(img, "hello", 5, 1001), 0);
	CHECK(memcmp(r.be.disk + 1001, "hello", 5) == 0);
	/* flush, discard, out of range */
	CHECK_EQ(xbd_image_flush(img), 0);
	CHECK_EQ(xbd_image_discard(img, 4096, 8192), 0);
	CHECK_EQ(r.be.disk[4096], 0);
	CHECK_EQ(xbd_image_pread(img, buf, 1024, size - 512), -EINVAL);
	CHECK(xbd_stat_get(&xbd_frontend_stats(r.fe)->reqs[XBD_OP_READ]) > 0);
	CHECK(xbd_stat_get(&xbd_frontend_stats(r.fe)->indirect_reqs) > 0);
	CHECK_EQ(xbd_stat_get(&xbd_frontend_stats(r.fe)->in_flight), 0);
	free(buf);
	xbd_image_close(img);
out:
	rig_stop(&r);
}

/* Many threads, random reads and writes, each thread owning its own
 * region; every read is checked against a model. */
struct worker {
	struct xbd_image *img;
	uint8_t *model;
	uint64_t base, len;
	unsigned seed;
	int errors;
};

static void *worker_main(void *arg)
{
	struct worker *w = arg;
	uint8_t *buf = malloc(256 << 10);
	unsigned i;

	for (i = 0; i < 300; i++) {
		uint64_t n = ((uint64_t)(rand_r(&w->seed) % 64) + 1) * 4096;
		uint64_t off = (rand_r(&w->seed) % ((w->len - n) / 512 + 1)) * 512;

		if (rand_r(&w->seed) % 3 == 0) {
			memset(buf, (int)(rand_r(&w->seed) & 0xff), n);
			if (xbd_image_pwrite(w->img, buf, n, w->base + off))
				w->errors++;
			memcpy(w->model + off, buf, n);
		} else {
			if (xbd_image_pread(w->img, buf, n, w->base + off) ||
			    memcmp(buf, w->model + off, n))
				w->errors++;
		}
	}
	free(buf);
	return NULL;
}

static void run_workers(struct rig *r, unsigned nthreads)
{
	struct worker w[16];
	pthread_t th[16];
	struct xbd_image *img;
	uint64_t region = r->be.size / nthreads;
	unsigned i;

	CHECK_EQ(xbd_frontend_open_image(r->fe, false, &img), 0);
	for (i = 0; i < nthreads; i++) {
		w[i] = (struct worker){ .img = img, .base = i * region,
					.len = region, .seed = i + 1 };
		w[i].model = malloc(region);
		memcpy(w[i].model, r->be.disk + w[i].base, region);
		pthread_create(&th[i], NULL, worker_main, &w[i]);
	}
	for (i = 0; i < nthreads; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(w[i].errors, 0);
		CHECK(memcmp(r->be.disk + w[i].base, w[i].model, region) == 0);
		free(w[i].model);
	}
	CHECK(xbd_stat_get(&xbd_frontend_stats(r->fe)->in_flight_max) > 1);
	CHECK_EQ(xbd_frontend_status(r->fe), 0);
	xbd_image_close(img);
}

static void test_threads_indirect(void)
{
	struct rig r;

	rig_defaults(&r, 16 << 20);
	CHECK_EQ(rig_start(&r), 0);
	if (r.fe)
		run_workers(&r, 8);
	rig_stop(&r);
}

/* No indirect descriptors, one ring page, a tiny grant budget: requests
 * split into 11-segment pieces and wait for pages. */
static void test_threads_direct_small_pool(void)
{
	struct xbd_frontend_info info;
	struct rig r;

	rig_defaults(&r, 8 << 20);
	r.be.max_indirect = 0;
	r.be.max_order = 0;
	r.be.persistent = false;
	r.cfg.max_grants = 40;
	CHECK_EQ(rig_start(&r), 0);
	if (r.fe) {
		xbd_frontend_get_info(r.fe, &info);
		CHECK_EQ(info.max_segments, 11);
		CHECK_EQ(info.ring_pages, 1);
		CHECK(info.pool_pages <= 39);
		CHECK(xs_has(P(r.fp), FE_DIR, "ring-ref"));
		CHECK(!xs_has(P(r.fp), FE_DIR, "ring-page-order"));
		run_workers(&r, 6);
		CHECK(xbd_stat_get(&xbd_frontend_stats(r.fe)->ring_full) > 0);
	}
	rig_stop(&r);
}

/* The platform refuses big grant batches (gntalloc's limit): the pool
 * shrinks and everything still works. */
static void test_grant_limit(void)
{
	struct xbd_frontend_info info;
	struct rig r;

	rig_defaults(&r, 2 << 20);
	r.fp->refuse_above = 100;
	CHECK_EQ(rig_start(&r), 0);
	if (r.fe) {
		xbd_frontend_get_info(r.fe, &info);
		CHECK(info.pool_pages <= 100 && info.pool_pages >= 16);
		run_workers(&r, 4);
	}
	rig_stop(&r);
}

struct async_ctx {
	pthread_mutex_t m;
	pthread_cond_t cv;
	unsigned done, errors;
};

static void async_cb(void *opaque, int err)
{
	struct async_ctx *a = opaque;

	pthread_mutex_lock(&a->m);
	a->done++;
	if (err)
		a->errors++;
	pthread_cond_signal(&a->cv);
	pthread_mutex_unlock(&a->m);
}

/* Asynchronous submission: 256 reads of 4 KiB in flight at once from
 * one thread, then checked. */
static void test_async(void)
{
	enum { N = 256 };
	struct async_ctx a = { .done = 0 };
	struct iovec iov[N];
	uint8_t *buf;
	struct rig r;
	unsigned i;

	pthread_mutex_init(&a.m, NULL);
	pthread_cond_init(&a.cv, NULL);
	rig_defaults(&r, 4 << 20);
	CHECK_EQ(rig_start(&r), 0);
	if (!r.fe)
		goto out;
	buf = malloc(N * 4096);
	for (i = 0; i < N; i++) {
		iov[i].iov_base = buf + i * 4096;
		iov[i].iov_len = 4096;
		CHECK_EQ(xbd_frontend_submit(r.fe, XBD_FRONTEND_READ, &iov[i], 1,
					     (uint64_t)((i * 37) % 1024) * 4096, 4096,
					     async_cb, &a), 0);
	}
	pthread_mutex_lock(&a.m);
	while (a.done < N)
		pthread_cond_wait(&a.cv, &a.m);
	pthread_mutex_unlock(&a.m);
	CHECK_EQ(a.errors, 0);
	for (i = 0; i < N; i++)
		CHECK(memcmp(buf + i * 4096, r.be.disk + ((i * 37) % 1024) * 4096,
			     4096) == 0);
	/* misaligned async I/O is refused */
	CHECK_EQ(xbd_frontend_submit(r.fe, XBD_FRONTEND_READ, &iov[0], 1, 100, 4096,
				     async_cb, &a), -EINVAL);
	free(buf);
out:
	rig_stop(&r);
	pthread_cond_destroy(&a.cv);
	pthread_mutex_destroy(&a.m);
}

static void test_read_only(void)
{
	struct xbd_image *img;
	struct rig r;
	char buf[512];

	rig_defaults(&r, 1 << 20);
	r.be.read_only = true;
	CHECK_EQ(rig_start(&r), 0);
	if (r.fe) {
		CHECK_EQ(xbd_frontend_open_image(r.fe, false, &img), -EROFS);
		CHECK_EQ(xbd_frontend_open_image(r.fe, true, &img), 0);
		CHECK_EQ(xbd_image_pread(img, buf, 512, 0), 0);
		CHECK_EQ(xbd_image_pwrite(img, buf, 512, 0), -EROFS);
		CHECK_EQ(xbd_image_flush(img), 0);
		xbd_image_close(img);
	}
	rig_stop(&r);

	/* asked for writing: refused at connection, everything given back */
	rig_defaults(&r, 1 << 20);
	r.be.read_only = true;
	r.cfg.need_write = true;
	CHECK_EQ(rig_start(&r), -EROFS);
	rig_stop(&r);
}

static void test_4k_sectors(void)
{
	struct xbd_image *img;
	struct rig r;
	uint8_t *buf = malloc(65536);

	rig_defaults(&r, 4 << 20);
	r.be.sector_size = 4096;
	CHECK_EQ(rig_start(&r), 0);
	if (r.fe) {
		CHECK_EQ(xbd_frontend_open_image(r.fe, false, &img), 0);
		CHECK_EQ(img->sector_size, 4096);
		/* 512-aligned but not 4096-aligned: bounced, still exact */
		CHECK_EQ(xbd_image_pread(img, buf, 1024, 512), 0);
		CHECK(memcmp(buf, r.be.disk + 512, 1024) == 0);
		memset(buf, 0x5a, 65536);
		CHECK_EQ(xbd_image_pwrite(img, buf, 65536, 8192), 0);
		CHECK(memcmp(r.be.disk + 8192, buf, 65536) == 0);
		CHECK_EQ(xbd_stat_get(&xbd_frontend_stats(r.fe)->errors[XBD_ERR_IO]), 0);
		xbd_image_close(img);
	}
	rig_stop(&r);
	free(buf);
}

/* A hostile or vanishing backend: the waiting read gets -EIO within
 * `limit_ms`, later I/O too, and close still cleans up. */
static void hostile_case(enum hostile h, unsigned after, unsigned io_timeout_ms,
			 unsigned limit_ms, bool protocol_error)
{
	struct xbd_image *img;
	struct rig r;
	uint8_t *buf = malloc(1 << 20);
	unsigned long long t0, ms;
	unsigned i;
	int err = 0;

	rig_defaults(&r, 4 << 20);
	r.be.hostile = h;
	r.be.hostile_after = after;
	r.cfg.io_timeout_ms = io_timeout_ms;
	CHECK_EQ(rig_start(&r), 0);
	if (!r.fe)
		goto out;
	CHECK_EQ(xbd_frontend_open_image(r.fe, false, &img), 0);
	t0 = xbd_now_ns();
	/* 1 MiB reads: two requests in flight each time */
	for (i = 0; i < 50 && !err; i++)
		err = xbd_image_pread(img, buf, 1 << 20, 4096 * i);
	ms = (xbd_now_ns() - t0) / 1000000;
	CHECK_EQ(err, -EIO);
	CHECK(ms < limit_ms);
	if (ms >= limit_ms)
		fprintf(stderr, "hostile case %d took %llu ms\n", h, ms);
	CHECK_EQ(xbd_frontend_status(r.fe), -EIO);
	CHECK_EQ(xbd_image_pread(img, buf, 4096, 0), -EIO);
	CHECK_EQ(xbd_image_pwrite(img, buf, 4096, 0), -EIO);
	if (protocol_error)
		CHECK(xbd_stat_get(&xbd_frontend_stats(r.fe)->errors[XBD_ERR_PROTOCOL]) > 0);
	xbd_image_close(img);
out:
	rig_stop(&r);
	free(buf);
}

static void test_hostile(void)
{
	hostile_case(H_BOGUS_ID, 4, 1000, 500, true);
	hostile_case(H_DUPLICATE, 4, 1000, 500, true);
	hostile_case(H_PROD_BEYOND, 4, 1000, 500, true);
	hostile_case(H_WRONG_OP, 4, 1000, 500, true);
	hostile_case(H_BAD_STATUS, 4, 1000, 500, true);
	hostile_case(H_STALE_ID, 4, 1000, 500, true);
}

static void test_vanishing(void)
{
	/* killed: nothing in xenstore changes; the default timeout must
	 * still answer well within 5 s */
	hostile_case(H_SILENT, 5, 0, 5000, false);
	hostile_case(H_CLOSE, 5, 60000, 1500, false);
	hostile_case(H_DOMAIN_DIES, 5, 60000, 1500, false);
}

/* Many threads blocked on a dead backend (some waiting for ring slots)
 * all get -EIO. */
struct blocked {
	struct xbd_image *img;
	int err;
};

static void *blocked_main(void *arg)
{
	struct blocked *b = arg;
	uint8_t *buf = malloc(1 << 20);

	b->err = xbd_image_pread(b->img, buf, 1 << 20, 0);
	free(buf);
	return NULL;
}

static void test_dead_many_waiters(void)
{
	struct blocked b[12];
	pthread_t th[12];
	struct rig r;
	unsigned i;
	unsigned long long t0;

	rig_defaults(&r, 4 << 20);
	r.be.hostile = H_SILENT;
	r.be.hostile_after = 0;
	r.cfg.max_grants = 64; /* most threads wait for pages */
	CHECK_EQ(rig_start(&r), 0);
	if (!r.fe)
		goto out;
	t0 = xbd_now_ns();
	for (i = 0; i < 12; i++) {
		CHECK_EQ(xbd_frontend_open_image(r.fe, true, &b[i].img), 0);
		pthread_create(&th[i], NULL, blocked_main, &b[i]);
	}
	for (i = 0; i < 12; i++) {
		pthread_join(th[i], NULL);
		CHECK_EQ(b[i].err, -EIO);
		xbd_image_close(b[i].img);
	}
	CHECK((xbd_now_ns() - t0) / 1000000 < 3000);
out:
	rig_stop(&r);
}

/* Backend never reaches InitWait: connection times out, nothing left. */
static void test_connect_timeout(void)
{
	struct fake_platform *fp = fp_new();
	struct xbd_frontend_config cfg = {
		.frontend_path = FE_DIR, .backend_path = BE_DIR,
		.max_ring_order = -1, .connect_timeout_ms = 200,
	};
	struct xbd_frontend *fe = NULL;

	xs_put(P(fp), BE_DIR, "state", "%llu", XenbusStateInitialising);
	CHECK_EQ(xbd_frontend_connect((struct xbd_platform *)fp, &cfg, &fe),
		 -ETIMEDOUT);
	CHECK_EQ(fp->shared_pages, 0);
	CHECK_EQ(fp->open_evtchns, 0);
	/* a backend already Closed */
	xs_put(P(fp), BE_DIR, "state", "%llu", XenbusStateClosed);
	CHECK_EQ(xbd_frontend_connect((struct xbd_platform *)fp, &cfg, &fe), -ENODEV);
	fp_free(fp);
}

/* The control-socket view. */
static void test_ctl_query(void)
{
	struct xbd_ctl_request inflight[4];
	struct xbd_ctl_state st;
	struct rig r;

	rig_defaults(&r, 1 << 20);
	CHECK_EQ(rig_start(&r), 0);
	if (r.fe) {
		memset(&st, 0, sizeof(st));
		st.inflight = inflight;
		st.inflight_cap = 4;
		xbd_frontend_ctl_query(r.fe, &st);
		CHECK_EQ(st.xenbus_state, XenbusStateConnected);
		CHECK_EQ(st.sectors, 2048);
		CHECK_EQ(st.ring.nr_ents, 128);
		CHECK_EQ(st.inflight_total, 0);
		CHECK(!strcmp(st.features.protocol, "x86_64-abi"));
		CHECK(st.features.persistent);
	}
	rig_stop(&r);
}

/* The workload engine on a fake disk: a pattern laid by writes reads
 * back verified; a wrong seed is caught; a read-only disk refuses. */
static void test_workload(void)
{
	struct xbd_workload_result res;
	struct xbd_workload w = { .rw = XBD_WL_WRITE, .bs = 64 << 10, .qd = 8,
				  .seed = 42 };
	struct rig r;

	rig_defaults(&r, 4 << 20);
	CHECK_EQ(rig_start(&r), 0);
	if (!r.fe)
		goto out;
	CHECK_EQ(xbd_workload_run(r.fe, &w, &res), 0);
	CHECK_EQ(res.bytes, 4 << 20);
	CHECK_EQ(xbd_pattern_check(r.be.disk, 4 << 20, 0, 42), -1);
	w.rw = XBD_WL_RANDREAD;
	w.bs = 4096;
	w.qd = 32;
	w.seconds = 0.3;
	w.verify = true;
	CHECK_EQ(xbd_workload_run(r.fe, &w, &res), 0);
	CHECK(res.ios > 100);
	w.rw = XBD_WL_RANDWRITE;
	w.seconds = 0.2;
	w.verify = false;
	CHECK_EQ(xbd_workload_run(r.fe, &w, &res), 0);
	w.rw = XBD_WL_READ;
	w.bs = 1 << 20;
	w.seconds = 0;
	w.verify = true;
	CHECK_EQ(xbd_workload_run(r.fe, &w, &res), 0);
	w.seed = 43;
	CHECK_EQ(xbd_workload_run(r.fe, &w, &res), -EILSEQ);
	CHECK(strstr(res.error, "verification failed") != NULL);
	w.bs = 1000;
	CHECK_EQ(xbd_workload_run(r.fe, &w, &res), -EINVAL);
out:
	rig_stop(&r);
}

/* The toolstack removed our directory before we closed (a hot-unplug):
 * close must not write a stray state node back. */
static void test_close_after_unplug(void)
{
	struct rig r;

	rig_defaults(&r, 1 << 20);
	CHECK_EQ(rig_start(&r), 0);
	if (r.fe) {
		xs_put(P(r.fp), BE_DIR, "state", "%llu", XenbusStateClosing);
		fp_xs_rm(P(r.fp), 0, FE_DIR);
		xbd_frontend_close(r.fe);
		CHECK(!xs_has(P(r.fp), FE_DIR, "state"));
		r.fe = NULL;
	}
	atomic_store(&r.be.stop, true);
	pthread_join(r.be.th, NULL);
	CHECK_EQ(r.fp->shared_pages, 0);
	CHECK_EQ(r.fp->open_evtchns, 0);
	free(r.be.disk);
	fp_free(r.fp);
}

/* ------------------------------------------------------------------ */
/* On the sim: the backend in another process, as a driver domain     */
/* ------------------------------------------------------------------ */

#define SIM_DISK (4u << 20)

struct sim_rig {
	const char *sim_dir;
	uint16_t be_domid;
	char be_dir[160];
	pid_t child;
	struct xbd_platform *p; /* dom0's: the frontend and the toolstack */
	struct xbd_frontend *fe;
};

/* The child: domain be_domid serving a 4 MiB memory disk. */
static void sim_backend_child(uint16_t be_domid, const char *be_dir,
			      enum hostile h, unsigned after)
{
	static struct fake_be be;

	memset(&be, 0, sizeof(be));
	be.p = xbd_test_sim_open(be_domid);
	be.fe_dir = FE_DIR;
	be.be_dir = be_dir;
	be.fe_domid = 0;
	be.size = SIM_DISK;
	be.sector_size = 512;
	be.max_order = 1;
	be.max_indirect = 64;
	be.persistent = true;
	be.hostile = h;
	be.hostile_after = after;
	be.disk = malloc(SIM_DISK);
	fill_disk(be.disk, SIM_DISK);
	be_main(&be);
	/* _exit: the test's exit handlers (which stop the sim) are the
	 * parent's */
	_exit(0);
}

static int sim_rig_start(struct sim_rig *r, enum hostile h, unsigned after,
			 unsigned io_timeout_ms)
{
	struct xbd_vbd_spec spec = { .fe_domid = 0, .be_domid = r->be_domid,
				     .be_type = "vbd", .devid = 51712,
				     .fe_path = FE_DIR, .params = "memory",
				     .type = "file", .mode = "w" };
	struct xbd_frontend_config cfg = {
		.frontend_path = FE_DIR, .backend_domid = r->be_domid,
		.name = "sim/xvda", .max_ring_order = -1,
		.io_timeout_ms = io_timeout_ms, .connect_timeout_ms = 10000,
	};
	int err;

	r->fe = NULL;
	err = xbd_vbd_create(r->p, &spec, r->be_dir, sizeof(r->be_dir));
	CHECK_EQ(err, 0);
	if (err)
		return err;
	fflush(NULL);
	r->child = fork();
	if (r->child == 0)
		sim_backend_child(r->be_domid, r->be_dir, h, after);
	cfg.backend_path = r->be_dir;
	err = xbd_frontend_connect(r->p, &cfg, &r->fe);
	CHECK_EQ(err, 0);
	return err;
}

static void sim_rig_stop(struct sim_rig *r)
{
	unsigned i;
	int status = -1;

	xbd_frontend_close(r->fe);
	r->fe = NULL;
	for (i = 0; i < 500 && waitpid(r->child, &status, WNOHANG) == 0; i++)
		usleep(10000);
	if (i == 500) {
		kill(r->child, SIGKILL);
		waitpid(r->child, &status, 0);
	}
	xbd_vbd_destroy(r->p, FE_DIR, r->be_dir);
	CHECK(!xs_has(r->p, FE_DIR, "state"));
}

static uint64_t expected_word(uint64_t i)
{
	return i * 0x9e3779b97f4a7c15ull;
}

/* Data across processes, through real shared grants and channels. */
static void sim_case_data(struct sim_rig *r)
{
	struct xbd_workload_result res;
	struct xbd_workload w = { .rw = XBD_WL_WRITE, .bs = 128 << 10, .qd = 4,
				  .size = 1 << 20, .seed = 9 };
	struct xbd_image *img;
	uint64_t *buf = malloc(SIM_DISK);
	uint64_t i, bad = 0;

	if (sim_rig_start(r, H_NONE, 0, 0))
		goto out;
	CHECK_EQ(xbd_frontend_open_image(r->fe, false, &img), 0);
	CHECK_EQ(xbd_image_pread(img, buf, SIM_DISK, 0), 0);
	for (i = 0; i < SIM_DISK / 8; i++)
		bad += buf[i] != expected_word(i);
	CHECK_EQ(bad, 0);
	CHECK_EQ(xbd_workload_run(r->fe, &w, &res), 0);
	w.rw = XBD_WL_RANDREAD;
	w.bs = 4096;
	w.qd = 32;
	w.verify = true;
	w.seconds = 0.3;
	CHECK_EQ(xbd_workload_run(r->fe, &w, &res), 0);
	CHECK(res.ios > 100);
	printf("sim: randread 4k qd32 across processes: %.0f IOPS\n",
	       res.seconds > 0 ? res.ios / res.seconds : 0);
	xbd_image_close(img);
out:
	sim_rig_stop(r);
	free(buf);
}

/* Reads until one fails; its error, and when (in *t_err). */
static int read_until_error(struct xbd_image *img, unsigned long long *t_err)
{
	uint8_t *buf = malloc(1 << 20);
	unsigned i;
	int err = 0;

	/* 1 MiB: several requests in flight (the backend offers 64
	 * segments per request) */
	for (i = 0; !err && i < 100000; i++)
		err = xbd_image_pread(img, buf, 1 << 20,
				      ((uint64_t)i << 20) % SIM_DISK);
	*t_err = xbd_now_ns();
	free(buf);
	return err;
}

static void sim_case_hostile(struct sim_rig *r, enum hostile h)
{
	unsigned long long t0 = xbd_now_ns(), t1;
	struct xbd_image *img;

	if (sim_rig_start(r, h, 4, 2000))
		goto out;
	CHECK_EQ(xbd_frontend_open_image(r->fe, true, &img), 0);
	CHECK_EQ(read_until_error(img, &t1), -EIO);
	CHECK((t1 - t0) / 1000000 < 1500);
	CHECK_EQ(xbd_stat_get(&xbd_frontend_stats(r->fe)->errors[XBD_ERR_PROTOCOL]), 1);
	CHECK_EQ(xbd_image_pread(img, &t0, 8, 0), -EIO);
	xbd_image_close(img);
out:
	sim_rig_stop(r);
}

struct killer {
	pid_t pid;
	unsigned long long t_kill;
};

static void *killer_main(void *arg)
{
	struct killer *k = arg;

	usleep(300000);
	k->t_kill = xbd_now_ns();
	kill(k->pid, SIGKILL);
	return NULL;
}

/* The backend process dies mid-read (nothing in xenstore changes): the
 * reader gets EIO within 5 s with the default timeout. */
static void sim_case_killed(struct sim_rig *r)
{
	struct killer k = { 0 };
	unsigned long long t1;
	struct xbd_image *img;
	pthread_t th;

	if (sim_rig_start(r, H_NONE, 0, 0))
		goto out;
	CHECK_EQ(xbd_frontend_open_image(r->fe, true, &img), 0);
	k.pid = r->child;
	pthread_create(&th, NULL, killer_main, &k);
	CHECK_EQ(read_until_error(img, &t1), -EIO);
	pthread_join(th, NULL);
	printf("sim: backend killed: EIO after %llu ms\n", (t1 - k.t_kill) / 1000000);
	CHECK((t1 - k.t_kill) / 1000000 < 5000);
	xbd_image_close(img);
out:
	sim_rig_stop(r);
}

/* The driver domain is destroyed mid-read: EIO at once (its domain is
 * gone and its backend directory with it). */
static void sim_case_domain_destroyed(struct sim_rig *r, const char *name)
{
	unsigned long long t0, t1;
	struct xbd_image *img;

	if (sim_rig_start(r, H_NONE, 0, 60000))
		goto out;
	CHECK_EQ(xbd_frontend_open_image(r->fe, true, &img), 0);
	t0 = xbd_now_ns();
	CHECK_EQ(xbd_sim_vm_destroy(r->sim_dir, name), 0);
	CHECK_EQ(read_until_error(img, &t1), -EIO);
	printf("sim: driver domain destroyed: EIO after %llu ms\n", (t1 - t0) / 1000000);
	CHECK((t1 - t0) / 1000000 < 2000);
	xbd_image_close(img);
out:
	sim_rig_stop(r);
}

static void test_sim(void)
{
	struct sim_rig r = { 0 };

	r.sim_dir = xbd_test_sim_start();
	r.be_domid = xbd_test_sim_vm_create("drv");
	r.p = xbd_test_sim_open(0);
	sim_case_data(&r);
	sim_case_hostile(&r, H_BOGUS_ID);
	sim_case_hostile(&r, H_DUPLICATE);
	sim_case_hostile(&r, H_PROD_BEYOND);
	sim_case_hostile(&r, H_WRONG_OP);
	sim_case_hostile(&r, H_BAD_STATUS);
	sim_case_killed(&r);
	sim_case_domain_destroyed(&r, "drv");
	xbd_platform_close(r.p);
	CHECK_EQ(xbd_test_sim_stop(), 0);
}

int main(void)
{
	test_handshake_and_data();
	test_threads_indirect();
	test_threads_direct_small_pool();
	test_grant_limit();
	test_async();
	test_read_only();
	test_4k_sectors();
	test_hostile();
	test_vanishing();
	test_dead_many_waiters();
	test_connect_timeout();
	test_ctl_query();
	test_workload();
	test_close_after_unplug();
	test_sim();
	return check_report("test_frontend");
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sim's event channels: ports in the domain's shared state, one FIFO
 * per handle so that its fd polls like libxenevtchn's, and the pending
 * and mask bits with libxenevtchn's contract (pending masks the port;
 * unmask re-delivers an event that came in between).
 */
#include "sim_hv.h"
#include "xbd/common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xenstore.h>

static _Atomic uint32_t evtchn_seq;

/* ------------------------------------------------------------------ */
/* Event channel ports                                                 */

uint64_t sim_port_word(unsigned state, uint16_t rdom, uint32_t rport)
{
	return (uint64_t)state << P_STATE_SHIFT |
	       (uint64_t)rdom << P_RDOM_SHIFT | (rport & P_RPORT);
}

static unsigned port_state(uint64_t w)
{
	return (unsigned)(w >> P_STATE_SHIFT) & 7u;
}

static uint16_t port_rdom(uint64_t w)
{
	return (uint16_t)(w >> P_RDOM_SHIFT);
}

static uint32_t port_rport(uint64_t w)
{
	return (uint32_t)(w & P_RPORT);
}

/* Reserves the lowest free port of s for owner, as Xen allocates. */
int sim_port_alloc(struct sim_dom_shm *s, uint64_t owner, uint32_t *port)
{
	uint32_t i;

	for (i = 1; i < SIM_NR_PORTS; i++) {
		struct sim_port *sp = &s->ports[i];
		uint64_t old = atomic_load_explicit(&sp->word, memory_order_relaxed);

		if (old != 0)
			continue;
		/* acquire: the port's previous life is over */
		if (atomic_compare_exchange_strong_explicit(
			    &sp->word, &old, sim_port_word(PS_RESERVED, 0, 0),
			    memory_order_acquire, memory_order_relaxed)) {
			/* published by the release store of the bound word */
			atomic_store_explicit(&sp->owner, owner, memory_order_relaxed);
			*port = i;
			return 0;
		}
	}
	return -ENOSPC;
}

static void port_free(struct sim_dom_shm *s, uint32_t port)
{
	atomic_store_explicit(&s->ports[port].owner, 0, memory_order_relaxed);
	/* release: the peer's end was unbound before this port is reusable */
	atomic_store_explicit(&s->ports[port].word, 0, memory_order_release);
}

/* The peer end rport of v becomes unbound if it is still bound to
 * (dom, port); port UINT32_MAX matches any port of dom. */
void sim_port_unbind_peer(struct sim_view *v, uint32_t rport, uint16_t dom,
			  uint32_t port)
{
	struct sim_port *pp;
	uint64_t old, new;

	if (rport == 0 || rport >= SIM_NR_PORTS)
		return;
	pp = &v->shm->ports[rport];
	old = atomic_load_explicit(&pp->word, memory_order_relaxed);
	do {
		if (port_state(old) != PS_INTERDOMAIN || port_rdom(old) != dom ||
		    (port != UINT32_MAX && port_rport(old) != port))
			return;
		new = (old & P_EVENT_BITS) | sim_port_word(PS_UNBOUND, dom, 0);
		/* acq_rel: ordered with the binding it undoes */
	} while (!atomic_compare_exchange_weak_explicit(&pp->word, &old, new,
							memory_order_acq_rel,
							memory_order_relaxed));
}

/* Closes a bound or unbound port, as EVTCHNOP_close does. */
void sim_port_close(struct sim_views *vs, struct sim_view *mine,
		    uint32_t port)
{
	/* acquire: the binding is read as its binder published it */
	uint64_t w = atomic_load_explicit(&mine->shm->ports[port].word,
					  memory_order_acquire);
	struct sim_view *peer;

	if (port_state(w) == PS_INTERDOMAIN &&
	    sim_views_get(vs, port_rdom(w), &peer) == 0)
		sim_port_unbind_peer(peer, port_rport(w), mine->domid, port);
	port_free(mine->shm, port);
}

/* An open FIFO of the handle `id` (ours or a peer's), or -1 if it is gone.
 * Called with e->lock held. */
static int peer_fd(struct sim_evtchn *e, uint64_t id)
{
	char path[4096];
	struct sim_peer_fd *slot;
	unsigned i;
	int fd;

	if (id == e->id)
		return e->fd;
	for (i = 0; i < SIM_PEER_FDS; i++)
		if (e->peers[i].id == id)
			return e->peers[i].fd;
	if (sim_path(path, sizeof(path), e->p->dir, "ev-%u-%u",
		     (unsigned)(id >> 32), (unsigned)id))
		return -1;
	/* Read-write, so that a peer closing its end can never SIGPIPE us. */
	fd = open(path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (fd < 0)
		return -1;
	slot = &e->peers[e->next_peer++ % SIM_PEER_FDS];
	if (slot->id)
		close(slot->fd);
	slot->id = id;
	slot->fd = fd;
	return fd;
}

/* Hands the port to its handle: its number goes into the handle's FIFO. */
static void port_deliver(struct sim_evtchn *e, uint64_t owner, uint32_t port)
{
	uint32_t p32 = port;
	ssize_t n;
	int fd;

	if (!owner)
		return; /* nobody listens (e.g. a toolstack's xenstore port) */
	pthread_mutex_lock(&e->lock);
	fd = peer_fd(e, owner);
	if (fd >= 0) {
		do
			n = write(fd, &p32, sizeof(p32));
		while (n < 0 && errno == EINTR);
		if (n != (ssize_t)sizeof(p32))
			xbd_debug("sim: event for port %u lost: %s", port,
				  n < 0 ? strerror(errno) : "short write");
	}
	pthread_mutex_unlock(&e->lock);
}

/* Sets v's port pending, if it is (still) bound to (from_dom, from_port),
 * or whatever it is bound to when check is false.  An unmasked port is
 * masked and delivered; a masked one only stays pending. */
static void port_raise(struct sim_evtchn *e, struct sim_view *v, uint32_t port,
		       bool check, uint16_t from_dom, uint32_t from_port)
{
	struct sim_port *pp = &v->shm->ports[port];
	uint64_t old = atomic_load_explicit(&pp->word, memory_order_relaxed);
	uint64_t new;

	do {
		if (port_state(old) != PS_INTERDOMAIN)
			return;
		if (check && (port_rdom(old) != from_dom ||
			      port_rport(old) != from_port))
			return;
		if ((old & P_MASKED) && (old & P_PENDING))
			return;
		new = old | ((old & P_MASKED) ? P_PENDING : P_MASKED);
		/* acq_rel: the sender's writes (e.g. a ring's producer index)
		 * happen before the receiver sees the event, and the owner
		 * stored at bind time is visible here */
	} while (!atomic_compare_exchange_weak_explicit(&pp->word, &old, new,
							memory_order_acq_rel,
							memory_order_relaxed));
	if (!(old & P_MASKED))
		port_deliver(e, atomic_load_explicit(&pp->owner,
						     memory_order_relaxed), port);
}

/* ------------------------------------------------------------------ */
/* Event channel operations                                            */

int sim_evtchn_open(struct xbd_platform *p, struct xbd_evtchn **out)
{
	struct sim_platform *sp = sim_of(p);
	struct sim_evtchn *e;
	uint32_t seq;
	int err;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->base.ops = &sim_platform_ops;
	e->p = sp;
	e->fd = -1;
	pthread_mutex_init(&e->lock, NULL);
	seq = atomic_fetch_add_explicit(&evtchn_seq, 1, memory_order_relaxed) + 1;
	e->id = (uint64_t)(uint32_t)getpid() << 32 | seq;
	if ((err = sim_path(e->path, sizeof(e->path), sp->dir, "ev-%u-%u",
			    (unsigned)getpid(), seq)))
		goto fail;
	unlink(e->path); /* a dead process with our pid left it */
	if (mkfifo(e->path, 0600) < 0) {
		err = -errno;
		goto fail;
	}
	e->fd = open(e->path, O_RDWR | O_NONBLOCK | O_CLOEXEC);
	if (e->fd < 0) {
		err = -errno;
		unlink(e->path);
		goto fail;
	}
	*out = (struct xbd_evtchn *)e;
	return 0;
fail:
	pthread_mutex_destroy(&e->lock);
	free(e);
	return err;
}

void sim_evtchn_close(struct xbd_evtchn *xe)
{
	struct sim_evtchn *e = sev_of(xe);
	struct sim_dom_shm *s;
	unsigned i;

	if (!e)
		return;
	s = e->p->me->shm;
	/* As closing /dev/xen/evtchn does: every port of the handle closes. */
	for (i = 1; i < SIM_NR_PORTS; i++)
		if (atomic_load_explicit(&s->ports[i].owner,
					 memory_order_relaxed) == e->id)
			sim_port_close(&e->p->views, e->p->me, i);
	for (i = 0; i < SIM_PEER_FDS; i++)
		if (e->peers[i].id)
			close(e->peers[i].fd);
	close(e->fd);
	unlink(e->path);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

int sim_evtchn_fd(struct xbd_evtchn *e)
{
	return sev_of(e)->fd;
}

/* Our port `port`, or NULL if it is out of range or not this handle's. */
static struct sim_port *own_port(struct sim_evtchn *e, uint32_t port)
{
	struct sim_port *pp;

	if (port == 0 || port >= SIM_NR_PORTS)
		return NULL;
	pp = &e->p->me->shm->ports[port];
	if (atomic_load_explicit(&pp->owner, memory_order_relaxed) != e->id)
		return NULL;
	return pp;
}

int sim_evtchn_alloc_unbound(struct xbd_evtchn *xe,
			     uint16_t remote_domid, uint32_t *port)
{
	struct sim_evtchn *e = sev_of(xe);
	struct sim_dom_shm *s = e->p->me->shm;
	int err;

	if (sim_view_dead(e->p->me))
		return -ESRCH;
	if (remote_domid == XBD_DOMID_SELF)
		remote_domid = e->p->self;
	if ((err = sim_port_alloc(s, e->id, port)))
		return err;
	/* release: the owner is visible with the port's new state */
	atomic_store_explicit(&s->ports[*port].word,
			      sim_port_word(PS_UNBOUND, remote_domid, 0),
			      memory_order_release);
	return 0;
}

int sim_evtchn_bind_interdomain(struct xbd_evtchn *xe,
				uint16_t remote_domid,
				uint32_t remote_port, uint32_t *port)
{
	struct sim_evtchn *e = sev_of(xe);
	struct sim_platform *sp = e->p;
	struct sim_view *rv;
	struct sim_port *rp;
	uint64_t old, new;
	uint32_t lp;
	int err;

	if (sim_view_dead(sp->me))
		return -ESRCH;
	if (remote_domid == XBD_DOMID_SELF)
		remote_domid = sp->self;
	if ((err = sim_views_get(&sp->views, remote_domid, &rv)))
		return err;
	if (sim_view_dead(rv))
		return -ESRCH;
	if (remote_port == 0 || remote_port >= SIM_NR_PORTS)
		return -EINVAL;
	if ((err = sim_port_alloc(sp->me->shm, e->id, &lp)))
		return err;
	rp = &rv->shm->ports[remote_port];
	old = atomic_load_explicit(&rp->word, memory_order_relaxed);
	do {
		if (port_state(old) != PS_UNBOUND || port_rdom(old) != sp->self) {
			port_free(sp->me->shm, lp);
			return -EINVAL;
		}
		new = (old & P_EVENT_BITS) |
		      sim_port_word(PS_INTERDOMAIN, sp->self, lp);
		/* acq_rel: our port's owner is visible before the remote
		 * end can notify it */
	} while (!atomic_compare_exchange_weak_explicit(&rp->word, &old, new,
							memory_order_acq_rel,
							memory_order_relaxed));
	/* release: the binding is complete before our port is used */
	atomic_store_explicit(&sp->me->shm->ports[lp].word,
			      sim_port_word(PS_INTERDOMAIN, remote_domid, remote_port),
			      memory_order_release);
	/* Xen sets the new port pending, so that nothing sent to the unbound
	 * end is lost: a bind always brings one (maybe spurious) event. */
	port_raise(e, sp->me, lp, false, 0, 0);
	*port = lp;
	return 0;
}

int sim_evtchn_unbind(struct xbd_evtchn *xe, uint32_t port)
{
	struct sim_evtchn *e = sev_of(xe);

	if (!own_port(e, port))
		return -EINVAL;
	sim_port_close(&e->p->views, e->p->me, port);
	return 0;
}

int sim_evtchn_notify(struct xbd_evtchn *xe, uint32_t port)
{
	struct sim_evtchn *e = sev_of(xe);
	struct sim_port *pp = own_port(e, port);
	struct sim_view *rv;
	uint64_t w;

	if (!pp)
		return -ENOTCONN; /* as the Linux evtchn driver answers */
	/* acquire: the binding's remote end is read as it was published */
	w = atomic_load_explicit(&pp->word, memory_order_acquire);
	switch (port_state(w)) {
	case PS_INTERDOMAIN:
		/* A peer that is gone or going just drops the event. */
		if (sim_views_get(&e->p->views, port_rdom(w), &rv) == 0 &&
		    port_rport(w) < SIM_NR_PORTS)
			port_raise(e, rv, port_rport(w), true, e->p->self, port);
		return 0;
	case PS_UNBOUND:
		return 0; /* Xen drops it silently */
	default:
		return -EINVAL;
	}
}

int sim_evtchn_pending(struct xbd_evtchn *xe, uint32_t *port)
{
	struct sim_evtchn *e = sev_of(xe);
	uint32_t p32;
	ssize_t n;

	do
		n = read(e->fd, &p32, sizeof(p32));
	while (n < 0 && errno == EINTR);
	if (n < 0)
		return errno == EAGAIN ? -EAGAIN : -errno;
	if (n != (ssize_t)sizeof(p32) || p32 == 0 || p32 >= SIM_NR_PORTS)
		return -EIO; /* written by another process: checked */
	*port = p32;
	return 0;
}

int sim_evtchn_unmask(struct xbd_evtchn *xe, uint32_t port)
{
	struct sim_evtchn *e = sev_of(xe);
	struct sim_port *pp = own_port(e, port);
	uint64_t old, new;

	if (!pp)
		return -EINVAL;
	old = atomic_load_explicit(&pp->word, memory_order_relaxed);
	do {
		if (!(old & P_MASKED))
			return 0;
		/* Pending meanwhile: stays masked and goes out again. */
		new = (old & P_PENDING) ? old & ~P_PENDING : old & ~P_MASKED;
		/* acq_rel: what the sender wrote before a notify that found
		 * the port masked is visible once we re-deliver it */
	} while (!atomic_compare_exchange_weak_explicit(&pp->word, &old, new,
							memory_order_acq_rel,
							memory_order_relaxed));
	if (old & P_PENDING)
		port_deliver(e, e->id, port);
	return 0;
}

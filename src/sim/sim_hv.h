/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sim platform: what Xen gives a domain, simulated in shared memory
 * under the sim directory, so that processes acting as different domains
 * (dom0 tools, guest helpers, tests) see one hypervisor:
 *
 *   domains        the table of domains (written by the daemon only)
 *   dom-<N>        domain N's grant table, frame allocator and ports
 *   mem-<N>        domain N's memory: the frames its grants name
 *   ev-<pid>-<k>   one FIFO per event channel handle; delivering an event
 *                  writes its port number there, so a handle's fd is a
 *                  real fd for poll/epoll
 *
 * Processes change this state concurrently, so each grant entry, port and
 * domain slot keeps all of its state in one 64-bit (or 32-bit) word that
 * only ever changes by compare-and-swap.  Domain ids are never reused
 * while a sim runs, so a view of a dead domain stays harmless.
 *
 * The daemon's half (sim_hv_*, in sim_hv.c) creates and kills domains.
 *
 * This header is private to the sim platform's parts: sim_hv.c (the
 * shared state, views, domains, the daemon's side), sim_grant.c,
 * sim_evtchn.c and sim_platform.c (the ops table).
 */
#ifndef XBD_SIM_HV_H
#define XBD_SIM_HV_H

#include "xbd/platform.h"
#include "src/platform_priv.h"
#include "src/sim/sim.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SIM_MAGIC 0x4d444258u /* "XBDM" */
#define SIM_VERSION 2u
#define SIM_PS ((size_t)XBD_PAGE_SIZE)
#define SIM_NR_FRAMES 65536u  /* memory per domain: 256 MiB, sparse */
#define SIM_NR_GRANTS 65536u
#define SIM_FIRST_GRANT 8u    /* Xen reserves refs 0..7 */
#define SIM_NR_PORTS 4096u    /* the 2-level ABI's limit on x86_64 */
#define SIM_PEER_FDS 8u       /* peer FIFOs an evtchn handle keeps open */

/* Grant entry word: grantee, map count, flags, generation. */
#define G_GRANTEE 0xffffull
#define G_MAP_ONE (1ull << 16)
#define G_MAPS (0xffffull << 16)
#define G_INUSE (1ull << 32)
#define G_READONLY (1ull << 33)
#define G_ENDING (1ull << 34)   /* unshared while mapped: freed at last unmap */
#define G_RESERVED (1ull << 35) /* being filled in by the granter */
#define G_GEN_SHIFT 36
#define G_GEN_MASK ((1ull << 28) - 1)

/* owner and mapper name processes, as the kernel knows who holds an
 * evtchn, gntalloc or gntdev file: the daemon reclaims what a process
 * that died without cleaning up held (sim_hv_reap). */
#define SIM_MAPPER_SHARED UINT32_MAX /* mapped by several: never reaped */
struct sim_grant {
	_Atomic uint64_t word;
	_Atomic uint32_t frame; /* set while RESERVED, stable while INUSE */
	_Atomic uint32_t owner;  /* pid of the granting process; 0: none known */
	_Atomic uint32_t mapper; /* pid of the process holding its maps */
	uint32_t pad;
};

/* Port word: remote port, remote domain, state, pending and mask bits. */
#define P_RPORT 0xffffull
#define P_RDOM_SHIFT 16
#define P_STATE_SHIFT 32
#define P_PENDING (1ull << 35)
#define P_MASKED (1ull << 36)
#define P_EVENT_BITS (P_PENDING | P_MASKED)
enum { PS_FREE, PS_RESERVED, PS_UNBOUND, PS_INTERDOMAIN };

struct sim_port {
	_Atomic uint64_t word;
	_Atomic uint64_t owner; /* the evtchn handle: pid << 32 | seq; 0 none */
};

struct sim_dom_shm {
	uint32_t magic, version, domid;
	_Atomic uint32_t dead;
	_Atomic uint32_t grant_hint, frame_hint;
	/* Pausing, as Xen's controller pause count: the domain's (sim)
	 * vCPU issues nothing while pause_count > 0, and vcpu_busy counts
	 * its threads between xbd_sim_vcpu_enter and _exit, which a pause
	 * waits out, so that it is synchronous as Xen's is. */
	_Atomic uint32_t pause_count, vcpu_busy;
	uint32_t pad[8];
	_Atomic uint64_t frame_used[SIM_NR_FRAMES / 64];
	struct sim_grant grants[SIM_NR_GRANTS];
	struct sim_port ports[SIM_NR_PORTS];
};

/* Domain slot word: state << 16 | domid. */
enum { DS_FREE, DS_ALIVE, DS_DYING };
struct sim_dom_slot {
	_Atomic uint32_t word;
	char name[XBD_SIM_NAME_MAX + 1];
};

struct sim_domains {
	uint32_t magic, version;
	struct sim_dom_slot slot[XBD_SIM_MAX_DOMAINS];
};

/* One domain's shared state as mapped in this process. */
struct sim_view {
	struct sim_view *next; /* immutable once published */
	uint16_t domid;
	int mem_fd;
	struct sim_dom_shm *shm;
	_Atomic(unsigned char *) mem; /* all of its memory, for grant copy */
};

/* The views of one process: lock-free lookup, append-only. */
struct sim_views {
	const char *dir;
	pthread_mutex_t lock; /* serialises opening */
	_Atomic(struct sim_view *) head;
};

struct sim_page {
	uint32_t ref, frame;
	uint64_t gen;
};

/* A contiguous area made by share_pages or map_grants. */
struct sim_area {
	struct sim_area *next;
	void *addr;
	unsigned count;
	struct sim_view *view; /* the granting domain */
	struct sim_page pages[];
};

struct sim_platform {
	struct xbd_platform_base base; /* first: see platform.h */
	uint16_t self;
	char *dir;
	struct sim_domains *domains;
	struct sim_views views;
	struct sim_view *me;
	pthread_mutex_t lock; /* guards shares and maps */
	struct sim_area *shares, *maps;
};

struct sim_peer_fd {
	uint64_t id;
	int fd;
};

struct sim_evtchn {
	struct xbd_evtchn_base base; /* first: see platform.h */
	struct sim_platform *p;
	uint64_t id; /* the owner value of our ports */
	int fd;      /* our FIFO, opened read-write so it never sees EOF */
	char path[4096];
	pthread_mutex_t lock; /* guards peers */
	struct sim_peer_fd peers[SIM_PEER_FDS];
	unsigned next_peer;
};

static inline struct sim_platform *sim_of(struct xbd_platform *p)
{
	return (struct sim_platform *)p;
}

static inline struct sim_evtchn *sev_of(struct xbd_evtchn *e)
{
	return (struct sim_evtchn *)e;
}

/* --- sim_hv.c --- */
/* The daemon's side of the state files (domains table, per-domain grant
 * tables, memory and event channel ports).  Only the daemon
 * (sim_daemon.c) calls these. */
struct sim_hv;
/* Fresh state in dir (stale files of a dead sim are replaced), with
 * Domain-0 alive. */
int sim_hv_create(const char *dir, struct sim_hv **out);
/* Removes every state file and frees hv. */
void sim_hv_destroy(struct sim_hv *hv);
int sim_hv_domain_add(struct sim_hv *hv, uint16_t domid, const char *name);
/* What a crash looks like: the domain is dying, its grants can no longer
 * be mapped, its ports are closed (peers' become unbound) and the grants
 * it had mapped from others count as unmapped. */
void sim_hv_domain_kill(struct sim_hv *hv, uint16_t domid);
/* What the kernel does when a process exits: the ports, grants and
 * grant maps of sim processes that are gone (killed, never cleaned up)
 * are closed, ended and dropped, and their event FIFOs removed.
 * Returns how many things were reclaimed. */
unsigned sim_hv_reap(struct sim_hv *hv);
/* Forgets a killed domain: its table slot and state files go. */
void sim_hv_domain_remove(struct sim_hv *hv, uint16_t domid);
/* An unbound port of domid for remote (e.g. the xenstore port). */
int sim_hv_alloc_unbound(struct sim_hv *hv, uint16_t domid, uint16_t remote,
			 uint32_t *port);

int sim_path(char *buf, size_t len, const char *dir, const char *fmt,
	     ...) __attribute__((format(printf, 4, 5)));
int sim_map_file(const char *path, size_t size, bool create, bool writable,
		 void **out);
int sim_views_get(struct sim_views *vs, uint16_t domid,
		  struct sim_view **out);
void sim_views_free(struct sim_views *vs);
unsigned char *sim_view_mem(struct sim_view *v);
bool sim_view_dead(struct sim_view *v);
/* Whether process pid has exited (gone, or a zombie); a reused pid
 * counts as alive, which only delays a reclaim. */
bool sim_pid_gone(uint32_t pid);
int sim_domains_alive(struct sim_domains *d, uint16_t domid);

/* --- sim_grant.c --- */
int sim_share_pages(struct xbd_platform *p, uint16_t domid,
		    unsigned count, bool writable, uint32_t *refs,
		    void **addr);
void sim_share_end(struct sim_area *a);
int sim_unshare_pages(struct xbd_platform *p, void *addr,
		      unsigned count);
int sim_map_grants(struct xbd_platform *p, uint16_t domid,
		   unsigned count, const uint32_t *refs, bool writable,
		   void **addr);
void sim_map_end(struct sim_area *a);
int sim_unmap_grants(struct xbd_platform *p, void *addr, unsigned count);
int sim_grant_copy(struct xbd_platform *p, struct xbd_grant_copy *segs,
		   unsigned count);
void sim_grant_drop_maps(struct sim_view *v, uint32_t ref, uint16_t grantee);
/* For sim_hv_reap: ends v's grant ref for its dead granter (it lingers
 * while mapped); drops the maps of ref held by the dead process mapper. */
bool sim_grant_reap_end(struct sim_view *v, uint32_t ref);
bool sim_grant_reap_maps(struct sim_view *v, uint32_t ref, uint32_t mapper);

/* --- sim_evtchn.c --- */
uint64_t sim_port_word(unsigned state, uint16_t rdom, uint32_t rport);
int sim_port_alloc(struct sim_dom_shm *s, uint64_t owner, uint32_t *port);
void sim_port_unbind_peer(struct sim_view *v, uint32_t rport, uint16_t dom,
			  uint32_t port);
void sim_port_close(struct sim_views *vs, struct sim_view *mine,
		    uint32_t port);
int sim_evtchn_open(struct xbd_platform *p, struct xbd_evtchn **out);
void sim_evtchn_close(struct xbd_evtchn *xe);
int sim_evtchn_fd(struct xbd_evtchn *e);
int sim_evtchn_alloc_unbound(struct xbd_evtchn *xe,
			     uint16_t remote_domid, uint32_t *port);
int sim_evtchn_bind_interdomain(struct xbd_evtchn *xe,
				uint16_t remote_domid,
				uint32_t remote_port, uint32_t *port);
int sim_evtchn_unbind(struct xbd_evtchn *xe, uint32_t port);
int sim_evtchn_notify(struct xbd_evtchn *xe, uint32_t port);
int sim_evtchn_pending(struct xbd_evtchn *xe, uint32_t *port);
int sim_evtchn_unmask(struct xbd_evtchn *xe, uint32_t port);

/* --- sim_platform.c --- */
extern const struct xbd_platform_ops sim_platform_ops;

#endif

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
 * The daemon's half (sim_hv_*, at the end) creates and kills domains.
 */
#include "xbd/platform.h"
#include "xbd/platform_xs.h"
#include "src/sim/sim.h"
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

#define SIM_MAGIC 0x4d444258u /* "XBDM" */
#define SIM_VERSION 1u
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

struct sim_grant {
	_Atomic uint64_t word;
	_Atomic uint32_t frame; /* set while RESERVED, stable while INUSE */
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
	uint32_t pad[10];
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

static const struct xbd_platform_ops sim_ops;
static _Atomic uint32_t evtchn_seq;

static struct sim_platform *sim_of(struct xbd_platform *p)
{
	return (struct sim_platform *)p;
}

static struct sim_evtchn *sev_of(struct xbd_evtchn *e)
{
	return (struct sim_evtchn *)e;
}

static int sim_path(char *buf, size_t len, const char *dir, const char *fmt,
		    ...) __attribute__((format(printf, 4, 5)));
static int sim_path(char *buf, size_t len, const char *dir, const char *fmt,
		    ...)
{
	va_list ap;
	int off = snprintf(buf, len, "%s/", dir), n;

	if (off < 0 || (size_t)off >= len)
		return -ENAMETOOLONG;
	va_start(ap, fmt);
	n = vsnprintf(buf + off, len - (size_t)off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len - (size_t)off)
		return -ENAMETOOLONG;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Views of domains' shared state                                      */

static void view_free(struct sim_view *v)
{
	unsigned char *mem = atomic_load_explicit(&v->mem, memory_order_relaxed);

	if (mem)
		munmap(mem, (size_t)SIM_NR_FRAMES * SIM_PS);
	if (v->shm)
		munmap(v->shm, sizeof(*v->shm));
	if (v->mem_fd >= 0)
		close(v->mem_fd);
	free(v);
}

/* Maps a whole file; with `create`, makes it (size bytes of zeroes) under
 * a temporary name first, so nobody ever maps a half-made file. */
static int map_file(const char *path, size_t size, bool create, bool writable,
		    void **out)
{
	struct stat st;
	int fd, err = 0;
	void *m;

	fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC |
			(create ? O_CREAT | O_TRUNC : 0), 0600);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	if (create && ftruncate(fd, (off_t)size) < 0) {
		err = -errno;
		goto out;
	}
	if (fstat(fd, &st) < 0 || (size_t)st.st_size != size) {
		err = -EPROTO; /* another sim version, or not ours */
		goto out;
	}
	m = mmap(NULL, size, PROT_READ | (writable ? PROT_WRITE : 0),
		 MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		err = -errno;
		goto out;
	}
	*out = m;
out:
	close(fd);
	return err;
}

/* Opens (or with create, makes) domain domid's state files. */
static int view_open(const char *dir, uint16_t domid, bool create,
		     struct sim_view **out)
{
	char path[4096], tmp[4096];
	struct sim_view *v;
	void *m;
	int err;

	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->domid = domid;
	v->mem_fd = -1;

	if ((err = sim_path(path, sizeof(path), dir, "mem-%u", domid)))
		goto fail;
	if (create) {
		if ((err = sim_path(tmp, sizeof(tmp), dir, "mem-%u.new", domid)))
			goto fail;
		v->mem_fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (v->mem_fd < 0 ||
		    ftruncate(v->mem_fd, (off_t)SIM_NR_FRAMES * (off_t)SIM_PS) < 0 ||
		    rename(tmp, path) < 0) {
			err = -errno;
			unlink(tmp);
			goto fail;
		}
	} else {
		v->mem_fd = open(path, O_RDWR | O_CLOEXEC);
		if (v->mem_fd < 0) {
			err = errno == ENOENT ? -ESRCH : -errno;
			goto fail;
		}
	}

	if ((err = sim_path(path, sizeof(path), dir, "dom-%u", domid)))
		goto fail;
	if (create) {
		if ((err = sim_path(tmp, sizeof(tmp), dir, "dom-%u.new", domid)) ||
		    (err = map_file(tmp, sizeof(*v->shm), true, true, &m)))
			goto fail;
		v->shm = m;
		v->shm->magic = SIM_MAGIC;
		v->shm->version = SIM_VERSION;
		v->shm->domid = domid;
		if (rename(tmp, path) < 0) {
			err = -errno;
			unlink(tmp);
			goto fail;
		}
	} else {
		if ((err = map_file(path, sizeof(*v->shm), false, true, &m)))
			goto fail;
		v->shm = m;
		if (v->shm->magic != SIM_MAGIC || v->shm->version != SIM_VERSION ||
		    v->shm->domid != domid) {
			err = -EPROTO;
			goto fail;
		}
	}
	*out = v;
	return 0;
fail:
	view_free(v);
	return err;
}

static struct sim_view *views_find(struct sim_views *vs, uint16_t domid)
{
	struct sim_view *v;

	/* acquire: a view's fields are written before it is published */
	for (v = atomic_load_explicit(&vs->head, memory_order_acquire); v;
	     v = v->next)
		if (v->domid == domid)
			return v;
	return NULL;
}

static void views_publish(struct sim_views *vs, struct sim_view *v)
{
	v->next = atomic_load_explicit(&vs->head, memory_order_relaxed);
	/* release: the view is complete before readers can find it */
	atomic_store_explicit(&vs->head, v, memory_order_release);
}

/* The view of domid, opened on first use.  -ESRCH: no such domain. */
static int views_get(struct sim_views *vs, uint16_t domid,
		     struct sim_view **out)
{
	struct sim_view *v = views_find(vs, domid);
	int err = 0;

	if (v) {
		*out = v;
		return 0;
	}
	pthread_mutex_lock(&vs->lock);
	v = views_find(vs, domid);
	if (!v && !(err = view_open(vs->dir, domid, false, &v)))
		views_publish(vs, v);
	pthread_mutex_unlock(&vs->lock);
	if (!err)
		*out = v;
	return err;
}

static void views_free(struct sim_views *vs)
{
	struct sim_view *v = atomic_load_explicit(&vs->head, memory_order_relaxed);

	while (v) {
		struct sim_view *next = v->next;

		view_free(v);
		v = next;
	}
	atomic_store_explicit(&vs->head, NULL, memory_order_relaxed);
}

/* All of the domain's memory mapped here, for grant copies. */
static unsigned char *view_mem(struct sim_view *v)
{
	unsigned char *m = atomic_load_explicit(&v->mem, memory_order_acquire);
	unsigned char *expected = NULL;
	void *n;

	if (m)
		return m;
	n = mmap(NULL, (size_t)SIM_NR_FRAMES * SIM_PS, PROT_READ | PROT_WRITE,
		 MAP_SHARED, v->mem_fd, 0);
	if (n == MAP_FAILED)
		return NULL;
	/* acq_rel: publish our mapping, or see the one another thread won with */
	if (atomic_compare_exchange_strong_explicit(&v->mem, &expected, n,
						    memory_order_acq_rel,
						    memory_order_acquire))
		return n;
	munmap(n, (size_t)SIM_NR_FRAMES * SIM_PS);
	return expected;
}

static bool view_dead(struct sim_view *v)
{
	/* acquire: once we see the domain dead we also see what the daemon
	 * tore down before marking it */
	return atomic_load_explicit(&v->shm->dead, memory_order_acquire) != 0;
}

/* ------------------------------------------------------------------ */
/* Frames and grant entries                                            */

static int frame_alloc(struct sim_dom_shm *s, uint32_t *frame)
{
	const unsigned words = SIM_NR_FRAMES / 64;
	unsigned start = atomic_load_explicit(&s->frame_hint,
					      memory_order_relaxed) / 64;
	unsigned i;

	for (i = 0; i < words; i++) {
		_Atomic uint64_t *w = &s->frame_used[(start + i) % words];
		uint64_t old = atomic_load_explicit(w, memory_order_relaxed);

		while (~old) {
			unsigned bit = (unsigned)__builtin_ctzll(~old);

			/* acquire: the frame's last owner is done with it
			 * (pairs with the release in frame_free) */
			if (atomic_compare_exchange_weak_explicit(
				    w, &old, old | (1ull << bit),
				    memory_order_acquire, memory_order_relaxed)) {
				*frame = ((start + i) % words) * 64 + bit;
				atomic_store_explicit(&s->frame_hint, *frame + 1,
						      memory_order_relaxed);
				return 0;
			}
		}
	}
	return -ENOMEM;
}

static void frame_free(struct sim_dom_shm *s, uint32_t frame)
{
	/* release: every access to the frame happens before its reuse */
	atomic_fetch_and_explicit(&s->frame_used[frame / 64],
				  ~(1ull << (frame % 64)), memory_order_release);
}

static uint64_t grant_gen(uint64_t w)
{
	return (w >> G_GEN_SHIFT) & G_GEN_MASK;
}

static uint64_t grant_free_word(uint64_t gen)
{
	return gen << G_GEN_SHIFT;
}

/* Reserves a free entry (refs rotate, as Xen's free list spreads them). */
static int grant_alloc(struct sim_dom_shm *s, uint32_t *ref, uint64_t *gen)
{
	const uint32_t n = SIM_NR_GRANTS - SIM_FIRST_GRANT;
	uint32_t start = atomic_fetch_add_explicit(&s->grant_hint, 1,
						   memory_order_relaxed);
	uint32_t i;

	for (i = 0; i < n; i++) {
		uint32_t r = SIM_FIRST_GRANT + (start + i) % n;
		_Atomic uint64_t *w = &s->grants[r].word;
		uint64_t old = atomic_load_explicit(w, memory_order_relaxed);
		uint64_t g = (grant_gen(old) + 1) & G_GEN_MASK;

		if (old & (G_INUSE | G_RESERVED))
			continue;
		/* acquire: the entry's previous life is over before we refill it */
		if (atomic_compare_exchange_strong_explicit(
			    w, &old, grant_free_word(g) | G_RESERVED,
			    memory_order_acquire, memory_order_relaxed)) {
			atomic_store_explicit(&s->grant_hint, r - SIM_FIRST_GRANT + 1,
					      memory_order_relaxed);
			*ref = r;
			*gen = g;
			return 0;
		}
	}
	return -ENOSPC;
}

static void grant_publish(struct sim_dom_shm *s, uint32_t ref, uint64_t gen,
			  uint32_t frame, uint16_t grantee, bool readonly)
{
	struct sim_grant *g = &s->grants[ref];

	atomic_store_explicit(&g->frame, frame, memory_order_relaxed);
	/* release: the frame (and its zeroed contents) are visible before
	 * anyone can map the grant */
	atomic_store_explicit(&g->word, grant_free_word(gen) | G_INUSE |
				  (readonly ? G_READONLY : 0) | grantee,
			      memory_order_release);
}

static void grant_unreserve(struct sim_dom_shm *s, uint32_t ref, uint64_t gen)
{
	/* release: nothing of this attempt leaks into the entry's next life */
	atomic_store_explicit(&s->grants[ref].word, grant_free_word(gen),
			      memory_order_release);
}

/* Takes one map reference on v's grant `ref` for domain `mapper`, with
 * Xen's checks, and reads the frame it names. */
static int grant_get(struct sim_view *v, uint16_t mapper, uint32_t ref,
		     bool write, uint32_t *frame, uint64_t *gen)
{
	struct sim_grant *g;
	uint64_t old, new;
	uint32_t f;

	if (view_dead(v))
		return -ESRCH;
	if (ref < SIM_FIRST_GRANT || ref >= SIM_NR_GRANTS)
		return -EINVAL;
	g = &v->shm->grants[ref];
	old = atomic_load_explicit(&g->word, memory_order_relaxed);
	do {
		if (!(old & G_INUSE) || (old & G_ENDING))
			return -EINVAL;
		if ((old & G_GRANTEE) != mapper)
			return -EPERM;
		if (write && (old & G_READONLY))
			return -EPERM;
		if ((old & G_MAPS) == G_MAPS)
			return -EBUSY;
		new = old + G_MAP_ONE;
		/* acquire: the frame the granter stored before publishing
		 * the entry is visible (pairs with grant_publish) */
	} while (!atomic_compare_exchange_weak_explicit(&g->word, &old, new,
							memory_order_acquire,
							memory_order_relaxed));
	/* Stable while we hold a map reference; still validated, since the
	 * table is shared with the other domain. */
	f = atomic_load_explicit(&g->frame, memory_order_relaxed);
	*gen = grant_gen(new);
	if (f >= SIM_NR_FRAMES) {
		atomic_fetch_sub_explicit(&g->word, G_MAP_ONE, memory_order_relaxed);
		return -EINVAL;
	}
	*frame = f;
	return 0;
}

/* Drops a map reference; frees an ended grant's entry and frame with its
 * last one.  A reference the daemon already dropped (our domain was
 * killed) or of an older life of the entry is ignored. */
static void grant_put(struct sim_view *v, uint32_t ref, uint32_t frame,
		      uint64_t gen)
{
	struct sim_grant *g = &v->shm->grants[ref];
	uint64_t old = atomic_load_explicit(&g->word, memory_order_relaxed);
	uint64_t new;

	do {
		if (grant_gen(old) != gen || !(old & G_INUSE) || !(old & G_MAPS))
			return;
		new = old - G_MAP_ONE;
		if (!(new & G_MAPS) && (new & G_ENDING))
			new = grant_free_word(gen);
		/* release: our accesses to the page happen before the
		 * granter (or a new owner of the frame) can see it free */
	} while (!atomic_compare_exchange_weak_explicit(&g->word, &old, new,
							memory_order_release,
							memory_order_relaxed));
	if (!(new & G_INUSE))
		frame_free(v->shm, frame);
}

/* The granter ends a grant; a mapped one lingers until its last unmap. */
static void grant_end(struct sim_view *v, uint32_t ref, uint32_t frame)
{
	struct sim_grant *g = &v->shm->grants[ref];
	uint64_t old = atomic_load_explicit(&g->word, memory_order_relaxed);
	uint64_t new;

	do {
		if (!(old & G_INUSE))
			return;
		new = (old & G_MAPS) ? old | G_ENDING
				     : grant_free_word(grant_gen(old));
		/* release: the granter's writes to the page happen before
		 * the frame can go to a new owner */
	} while (!atomic_compare_exchange_weak_explicit(&g->word, &old, new,
							memory_order_release,
							memory_order_relaxed));
	if (!(new & G_INUSE))
		frame_free(v->shm, frame);
}

/* ------------------------------------------------------------------ */
/* Grant operations                                                    */

static void *area_reserve(unsigned count)
{
	void *a = mmap(NULL, count * SIM_PS, PROT_NONE,
		       MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);

	return a == MAP_FAILED ? NULL : a;
}

/* Maps the frames of v's memory one after another at area; consecutive
 * frames share one mmap. */
static int area_map(struct sim_view *v, struct sim_area *a, int prot)
{
	unsigned i, j;

	for (i = 0; i < a->count; i = j) {
		for (j = i + 1; j < a->count &&
		     a->pages[j].frame == a->pages[j - 1].frame + 1; j++)
			;
		if (mmap((char *)a->addr + i * SIM_PS, (j - i) * SIM_PS, prot,
			 MAP_SHARED | MAP_FIXED, v->mem_fd,
			 (off_t)a->pages[i].frame * (off_t)SIM_PS) == MAP_FAILED)
			return -errno;
	}
	return 0;
}

static struct sim_area *area_new(unsigned count, struct sim_view *v)
{
	struct sim_area *a = calloc(1, sizeof(*a) + count * sizeof(a->pages[0]));

	if (!a)
		return NULL;
	a->count = count;
	a->view = v;
	a->addr = area_reserve(count);
	if (!a->addr) {
		free(a);
		return NULL;
	}
	return a;
}

static void area_free(struct sim_area *a)
{
	munmap(a->addr, a->count * SIM_PS);
	free(a);
}

static void area_link(struct sim_platform *sp, struct sim_area **list,
		      struct sim_area *a)
{
	pthread_mutex_lock(&sp->lock);
	a->next = *list;
	*list = a;
	pthread_mutex_unlock(&sp->lock);
}

/* Unlinks the area at addr; -EINVAL if there is none of that size. */
static int area_unlink(struct sim_platform *sp, struct sim_area **list,
		       void *addr, unsigned count, struct sim_area **out)
{
	struct sim_area **pp;
	int err = -EINVAL;

	pthread_mutex_lock(&sp->lock);
	for (pp = list; *pp; pp = &(*pp)->next) {
		if ((*pp)->addr == addr) {
			if ((*pp)->count == count) {
				*out = *pp;
				*pp = (*pp)->next;
				err = 0;
			}
			break;
		}
	}
	pthread_mutex_unlock(&sp->lock);
	return err;
}

static int sim_share_pages(struct xbd_platform *p, uint16_t domid,
			   unsigned count, bool writable, uint32_t *refs,
			   void **addr)
{
	struct sim_platform *sp = sim_of(p);
	struct sim_dom_shm *s = sp->me->shm;
	struct sim_area *a;
	unsigned i, n = 0, frames = 0;
	int err;

	if (count == 0 || count > SIM_NR_GRANTS)
		return -EINVAL;
	if (view_dead(sp->me))
		return -ESRCH;
	a = area_new(count, sp->me);
	if (!a)
		return -ENOMEM;
	for (n = 0; n < count; n++)
		if ((err = grant_alloc(s, &a->pages[n].ref, &a->pages[n].gen)))
			goto fail;
	for (frames = 0; frames < count; frames++)
		if ((err = frame_alloc(s, &a->pages[frames].frame)))
			goto fail;
	if ((err = area_map(sp->me, a, PROT_READ | PROT_WRITE)))
		goto fail;
	memset(a->addr, 0, count * SIM_PS);
	for (i = 0; i < count; i++) {
		grant_publish(s, a->pages[i].ref, a->pages[i].gen,
			      a->pages[i].frame, domid, !writable);
		refs[i] = a->pages[i].ref;
	}
	area_link(sp, &sp->shares, a);
	*addr = a->addr;
	return 0;
fail:
	for (i = 0; i < frames; i++)
		frame_free(s, a->pages[i].frame);
	for (i = 0; i < n; i++)
		grant_unreserve(s, a->pages[i].ref, a->pages[i].gen);
	area_free(a);
	return err;
}

static void share_end(struct sim_area *a)
{
	unsigned i;

	/* Our own mapping goes first: an ended grant's frame may be reused. */
	munmap(a->addr, a->count * SIM_PS);
	for (i = 0; i < a->count; i++)
		grant_end(a->view, a->pages[i].ref, a->pages[i].frame);
	free(a);
}

static int sim_unshare_pages(struct xbd_platform *p, void *addr,
			     unsigned count)
{
	struct sim_platform *sp = sim_of(p);
	struct sim_area *a;
	int err = area_unlink(sp, &sp->shares, addr, count, &a);

	if (!err)
		share_end(a);
	return err;
}

static int sim_map_grants(struct xbd_platform *p, uint16_t domid,
			  unsigned count, const uint32_t *refs, bool writable,
			  void **addr)
{
	struct sim_platform *sp = sim_of(p);
	struct sim_view *v;
	struct sim_area *a;
	unsigned i, n;
	int err;

	if (count == 0 || count > SIM_NR_GRANTS)
		return -EINVAL;
	if (domid == XBD_DOMID_SELF)
		domid = sp->self;
	if ((err = views_get(&sp->views, domid, &v)))
		return err;
	a = area_new(count, v);
	if (!a)
		return -ENOMEM;
	for (n = 0; n < count; n++) {
		a->pages[n].ref = refs[n];
		if ((err = grant_get(v, sp->self, refs[n], writable,
				     &a->pages[n].frame, &a->pages[n].gen)))
			goto fail;
	}
	if ((err = area_map(v, a, PROT_READ | (writable ? PROT_WRITE : 0))))
		goto fail;
	area_link(sp, &sp->maps, a);
	*addr = a->addr;
	return 0;
fail:
	for (i = 0; i < n; i++)
		grant_put(v, a->pages[i].ref, a->pages[i].frame, a->pages[i].gen);
	area_free(a);
	return err;
}

static void map_end(struct sim_area *a)
{
	unsigned i;

	munmap(a->addr, a->count * SIM_PS);
	for (i = 0; i < a->count; i++)
		grant_put(a->view, a->pages[i].ref, a->pages[i].frame,
			  a->pages[i].gen);
	free(a);
}

static int sim_unmap_grants(struct xbd_platform *p, void *addr, unsigned count)
{
	struct sim_platform *sp = sim_of(p);
	struct sim_area *a;
	int err = area_unlink(sp, &sp->maps, addr, count, &a);

	if (!err)
		map_end(a);
	return err;
}

static int copy_segment(struct sim_platform *sp, struct xbd_grant_copy *seg)
{
	uint16_t domid = seg->domid == XBD_DOMID_SELF ? sp->self : seg->domid;
	struct sim_view *v;
	unsigned char *mem, *page;
	uint32_t frame;
	uint64_t gen;
	int err;

	if ((size_t)seg->offset + seg->len > SIM_PS || !seg->local)
		return -EINVAL;
	if ((err = views_get(&sp->views, domid, &v)))
		return err;
	if (!(mem = view_mem(v)))
		return -ENOMEM;
	if ((err = grant_get(v, sp->self, seg->ref, seg->to_grant, &frame, &gen)))
		return err;
	page = mem + (size_t)frame * SIM_PS + seg->offset;
	if (seg->to_grant)
		memcpy(page, seg->local, seg->len);
	else
		memcpy(seg->local, page, seg->len);
	grant_put(v, seg->ref, frame, gen);
	return 0;
}

static int sim_grant_copy(struct xbd_platform *p, struct xbd_grant_copy *segs,
			  unsigned count)
{
	unsigned i;

	for (i = 0; i < count; i++)
		segs[i].status = (int16_t)copy_segment(sim_of(p), &segs[i]);
	return 0;
}

/* ------------------------------------------------------------------ */
/* Event channel ports                                                 */

static uint64_t port_word(unsigned state, uint16_t rdom, uint32_t rport)
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
static int port_alloc(struct sim_dom_shm *s, uint64_t owner, uint32_t *port)
{
	uint32_t i;

	for (i = 1; i < SIM_NR_PORTS; i++) {
		struct sim_port *sp = &s->ports[i];
		uint64_t old = atomic_load_explicit(&sp->word, memory_order_relaxed);

		if (old != 0)
			continue;
		/* acquire: the port's previous life is over */
		if (atomic_compare_exchange_strong_explicit(
			    &sp->word, &old, port_word(PS_RESERVED, 0, 0),
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
static void port_unbind_peer(struct sim_view *v, uint32_t rport, uint16_t dom,
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
		new = (old & P_EVENT_BITS) | port_word(PS_UNBOUND, dom, 0);
		/* acq_rel: ordered with the binding it undoes */
	} while (!atomic_compare_exchange_weak_explicit(&pp->word, &old, new,
							memory_order_acq_rel,
							memory_order_relaxed));
}

/* Closes a bound or unbound port, as EVTCHNOP_close does. */
static void port_close(struct sim_views *vs, struct sim_view *mine,
		       uint32_t port)
{
	/* acquire: the binding is read as its binder published it */
	uint64_t w = atomic_load_explicit(&mine->shm->ports[port].word,
					  memory_order_acquire);
	struct sim_view *peer;

	if (port_state(w) == PS_INTERDOMAIN &&
	    views_get(vs, port_rdom(w), &peer) == 0)
		port_unbind_peer(peer, port_rport(w), mine->domid, port);
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

static int sim_evtchn_open(struct xbd_platform *p, struct xbd_evtchn **out)
{
	struct sim_platform *sp = sim_of(p);
	struct sim_evtchn *e;
	uint32_t seq;
	int err;

	e = calloc(1, sizeof(*e));
	if (!e)
		return -ENOMEM;
	e->base.ops = &sim_ops;
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

static void sim_evtchn_close(struct xbd_evtchn *xe)
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
			port_close(&e->p->views, e->p->me, i);
	for (i = 0; i < SIM_PEER_FDS; i++)
		if (e->peers[i].id)
			close(e->peers[i].fd);
	close(e->fd);
	unlink(e->path);
	pthread_mutex_destroy(&e->lock);
	free(e);
}

static int sim_evtchn_fd(struct xbd_evtchn *e)
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

static int sim_evtchn_alloc_unbound(struct xbd_evtchn *xe,
				    uint16_t remote_domid, uint32_t *port)
{
	struct sim_evtchn *e = sev_of(xe);
	struct sim_dom_shm *s = e->p->me->shm;
	int err;

	if (view_dead(e->p->me))
		return -ESRCH;
	if (remote_domid == XBD_DOMID_SELF)
		remote_domid = e->p->self;
	if ((err = port_alloc(s, e->id, port)))
		return err;
	/* release: the owner is visible with the port's new state */
	atomic_store_explicit(&s->ports[*port].word,
			      port_word(PS_UNBOUND, remote_domid, 0),
			      memory_order_release);
	return 0;
}

static int sim_evtchn_bind_interdomain(struct xbd_evtchn *xe,
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

	if (view_dead(sp->me))
		return -ESRCH;
	if (remote_domid == XBD_DOMID_SELF)
		remote_domid = sp->self;
	if ((err = views_get(&sp->views, remote_domid, &rv)))
		return err;
	if (view_dead(rv))
		return -ESRCH;
	if (remote_port == 0 || remote_port >= SIM_NR_PORTS)
		return -EINVAL;
	if ((err = port_alloc(sp->me->shm, e->id, &lp)))
		return err;
	rp = &rv->shm->ports[remote_port];
	old = atomic_load_explicit(&rp->word, memory_order_relaxed);
	do {
		if (port_state(old) != PS_UNBOUND || port_rdom(old) != sp->self) {
			port_free(sp->me->shm, lp);
			return -EINVAL;
		}
		new = (old & P_EVENT_BITS) |
		      port_word(PS_INTERDOMAIN, sp->self, lp);
		/* acq_rel: our port's owner is visible before the remote
		 * end can notify it */
	} while (!atomic_compare_exchange_weak_explicit(&rp->word, &old, new,
							memory_order_acq_rel,
							memory_order_relaxed));
	/* release: the binding is complete before our port is used */
	atomic_store_explicit(&sp->me->shm->ports[lp].word,
			      port_word(PS_INTERDOMAIN, remote_domid, remote_port),
			      memory_order_release);
	/* Xen sets the new port pending, so that nothing sent to the unbound
	 * end is lost: a bind always brings one (maybe spurious) event. */
	port_raise(e, sp->me, lp, false, 0, 0);
	*port = lp;
	return 0;
}

static int sim_evtchn_unbind(struct xbd_evtchn *xe, uint32_t port)
{
	struct sim_evtchn *e = sev_of(xe);

	if (!own_port(e, port))
		return -EINVAL;
	port_close(&e->p->views, e->p->me, port);
	return 0;
}

static int sim_evtchn_notify(struct xbd_evtchn *xe, uint32_t port)
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
		if (views_get(&e->p->views, port_rdom(w), &rv) == 0 &&
		    port_rport(w) < SIM_NR_PORTS)
			port_raise(e, rv, port_rport(w), true, e->p->self, port);
		return 0;
	case PS_UNBOUND:
		return 0; /* Xen drops it silently */
	default:
		return -EINVAL;
	}
}

static int sim_evtchn_pending(struct xbd_evtchn *xe, uint32_t *port)
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

static int sim_evtchn_unmask(struct xbd_evtchn *xe, uint32_t port)
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

/* ------------------------------------------------------------------ */
/* Domains and the platform                                            */

/* The slot word (state << 16 | domid) of domid, or 0 if it has none. */
static uint32_t domains_word(struct sim_domains *d, uint16_t domid)
{
	unsigned i;

	for (i = 0; i < XBD_SIM_MAX_DOMAINS; i++) {
		/* acquire: a slot's name is written before it is published */
		uint32_t w = atomic_load_explicit(&d->slot[i].word,
						  memory_order_acquire);

		if ((w >> 16) != DS_FREE && (w & 0xffff) == domid)
			return w;
	}
	return 0;
}

/* The slot index of domid (daemon side: the only writer), or -1. */
static int domains_find(struct sim_domains *d, uint16_t domid)
{
	unsigned i;

	for (i = 0; i < XBD_SIM_MAX_DOMAINS; i++) {
		uint32_t w = atomic_load_explicit(&d->slot[i].word,
						  memory_order_relaxed);

		if ((w >> 16) != DS_FREE && (w & 0xffff) == domid)
			return (int)i;
	}
	return -1;
}

static int domains_alive(struct sim_domains *d, uint16_t domid)
{
	return (domains_word(d, domid) >> 16) == DS_ALIVE;
}

static int sim_domain_alive(struct xbd_platform *p, uint16_t domid)
{
	return domains_alive(sim_of(p)->domains, domid);
}

static uint16_t sim_self_domid(struct xbd_platform *p)
{
	return sim_of(p)->self;
}

static void sim_close(struct xbd_platform *p)
{
	struct sim_platform *sp = sim_of(p);

	if (!sp)
		return;
	while (sp->maps) {
		struct sim_area *a = sp->maps;

		sp->maps = a->next;
		map_end(a);
	}
	while (sp->shares) {
		struct sim_area *a = sp->shares;

		sp->shares = a->next;
		share_end(a);
	}
	if (sp->base.xs)
		xs_close(sp->base.xs);
	views_free(&sp->views);
	if (sp->domains)
		munmap(sp->domains, sizeof(*sp->domains));
	pthread_mutex_destroy(&sp->lock);
	pthread_mutex_destroy(&sp->views.lock);
	free(sp->dir);
	free(sp);
}

static const struct xbd_platform_ops sim_ops = {
	.name = "sim",
	.close = sim_close,
	.self_domid = sim_self_domid,
	.share_pages = sim_share_pages,
	.unshare_pages = sim_unshare_pages,
	.map_grants = sim_map_grants,
	.unmap_grants = sim_unmap_grants,
	.grant_copy = sim_grant_copy,
	.evtchn_open = sim_evtchn_open,
	.evtchn_close = sim_evtchn_close,
	.evtchn_fd = sim_evtchn_fd,
	.evtchn_alloc_unbound = sim_evtchn_alloc_unbound,
	.evtchn_bind_interdomain = sim_evtchn_bind_interdomain,
	.evtchn_unbind = sim_evtchn_unbind,
	.evtchn_notify = sim_evtchn_notify,
	.evtchn_pending = sim_evtchn_pending,
	.evtchn_unmask = sim_evtchn_unmask,
	XBD_PLATFORM_XS_OPS,
	.domain_alive = sim_domain_alive,
};

static int sim_domid_from_env(uint16_t *domid)
{
	const char *s = getenv(XBD_SIM_DOMID_ENV);
	char *end;
	unsigned long v;

	if (!s || !*s)
		return 0;
	errno = 0;
	v = strtoul(s, &end, 10);
	if (*end || errno || v > XBD_SIM_MAX_DOMID)
		return -EINVAL;
	*domid = (uint16_t)v;
	return 0;
}

const char *xbd_sim_default_dir(void)
{
	const char *env = getenv(XBD_SIM_DIR_ENV);

	return env && *env ? env : "/run/xbd-sim";
}

int xbd_platform_sim_open(const struct xbd_platform_config *cfg,
			  struct xbd_platform **out)
{
	const char *dir = cfg->sim_dir ? cfg->sim_dir : xbd_sim_default_dir();
	struct sim_platform *sp;
	char path[4096];
	void *m;
	int err;

	sp = calloc(1, sizeof(*sp));
	if (!sp)
		return -ENOMEM;
	sp->base.ops = &sim_ops;
	pthread_mutex_init(&sp->lock, NULL);
	pthread_mutex_init(&sp->views.lock, NULL);
	sp->self = cfg->sim_domid;
	if (!sp->self && (err = sim_domid_from_env(&sp->self)))
		goto fail;
	if (!(sp->dir = strdup(dir))) {
		err = -ENOMEM;
		goto fail;
	}
	sp->views.dir = sp->dir;

	if ((err = sim_path(path, sizeof(path), dir, "domains")))
		goto fail;
	if ((err = map_file(path, sizeof(*sp->domains), false, false, &m))) {
		err = err == -ESRCH ? -ENOENT : err; /* no sim there */
		goto fail;
	}
	sp->domains = m;
	if (sp->domains->magic != SIM_MAGIC || sp->domains->version != SIM_VERSION) {
		err = -EPROTO;
		goto fail;
	}
	if (!domains_alive(sp->domains, sp->self)) {
		err = -ESRCH;
		goto fail;
	}
	if ((err = views_get(&sp->views, sp->self, &sp->me)))
		goto fail;

	if (sp->self == 0)
		err = sim_path(path, sizeof(path), dir, "%s", XBD_SIM_XS_SOCKET);
	else
		err = sim_path(path, sizeof(path), dir, "xs-dom%u.sock", sp->self);
	if (err || (err = xbd_xs_connect(path, &sp->base.xs)))
		goto fail;
	*out = (struct xbd_platform *)sp;
	return 0;
fail:
	sim_close((struct xbd_platform *)sp);
	return err;
}

/* ------------------------------------------------------------------ */
/* The daemon's side                                                   */

struct sim_hv {
	char *dir;
	struct sim_domains *domains;
	struct sim_views views;
};

/* Removes the state files a sim keeps in dir (not sockets: their owners
 * remove those). */
static void remove_state_files(const char *dir)
{
	static const char *const prefixes[] = { "dom-", "mem-", "ev-", "domains" };
	char path[4096];
	struct dirent *de;
	DIR *d = opendir(dir);
	size_t i;

	if (!d)
		return;
	while ((de = readdir(d))) {
		for (i = 0; i < XBD_ARRAY_SIZE(prefixes); i++) {
			if (!strncmp(de->d_name, prefixes[i], strlen(prefixes[i])) &&
			    !sim_path(path, sizeof(path), dir, "%s", de->d_name)) {
				unlink(path);
				break;
			}
		}
	}
	closedir(d);
}

int sim_hv_create(const char *dir, struct sim_hv **out)
{
	char path[4096], tmp[4096];
	struct sim_hv *hv;
	void *m;
	int err;

	hv = calloc(1, sizeof(*hv));
	if (!hv)
		return -ENOMEM;
	pthread_mutex_init(&hv->views.lock, NULL);
	if (!(hv->dir = strdup(dir))) {
		err = -ENOMEM;
		goto fail;
	}
	hv->views.dir = hv->dir;
	remove_state_files(dir);
	if ((err = sim_path(path, sizeof(path), dir, "domains")) ||
	    (err = sim_path(tmp, sizeof(tmp), dir, "domains.new")) ||
	    (err = map_file(tmp, sizeof(*hv->domains), true, true, &m)))
		goto fail;
	hv->domains = m;
	hv->domains->magic = SIM_MAGIC;
	hv->domains->version = SIM_VERSION;
	if (rename(tmp, path) < 0) {
		err = -errno;
		unlink(tmp);
		goto fail;
	}
	if ((err = sim_hv_domain_add(hv, 0, "Domain-0")))
		goto fail;
	*out = hv;
	return 0;
fail:
	sim_hv_destroy(hv);
	return err;
}

void sim_hv_destroy(struct sim_hv *hv)
{
	if (!hv)
		return;
	views_free(&hv->views);
	if (hv->domains)
		munmap(hv->domains, sizeof(*hv->domains));
	if (hv->dir)
		remove_state_files(hv->dir);
	pthread_mutex_destroy(&hv->views.lock);
	free(hv->dir);
	free(hv);
}

int sim_hv_domain_add(struct sim_hv *hv, uint16_t domid, const char *name)
{
	struct sim_dom_slot *slot = NULL;
	struct sim_view *v;
	unsigned i;
	int err;

	if (domid > XBD_SIM_MAX_DOMID || strlen(name) > XBD_SIM_NAME_MAX)
		return -EINVAL;
	if (domains_find(hv->domains, domid) >= 0 || views_find(&hv->views, domid))
		return -EEXIST;
	for (i = 0; i < XBD_SIM_MAX_DOMAINS && !slot; i++)
		if (atomic_load_explicit(&hv->domains->slot[i].word,
					 memory_order_relaxed) >> 16 == DS_FREE)
			slot = &hv->domains->slot[i];
	if (!slot)
		return -ENOSPC;
	if ((err = view_open(hv->dir, domid, true, &v)))
		return err;
	views_publish(&hv->views, v);
	snprintf(slot->name, sizeof(slot->name), "%s", name);
	/* release: the domain's files and name exist before it is alive */
	atomic_store_explicit(&slot->word, (uint32_t)DS_ALIVE << 16 | domid,
			      memory_order_release);
	return 0;
}

/* The mappings a killed grantee had of v's grant ref count as unmapped. */
static void grant_drop_maps(struct sim_view *v, uint32_t ref, uint16_t grantee)
{
	struct sim_grant *g = &v->shm->grants[ref];
	uint64_t old = atomic_load_explicit(&g->word, memory_order_relaxed);
	uint64_t new;

	do {
		if (!(old & G_INUSE) || (old & G_GRANTEE) != grantee ||
		    !(old & G_MAPS))
			return;
		new = (old & G_ENDING) ? grant_free_word(grant_gen(old))
				       : old & ~G_MAPS;
		/* release: as the unmaps this stands for */
	} while (!atomic_compare_exchange_weak_explicit(&g->word, &old, new,
							memory_order_release,
							memory_order_relaxed));
	if (!(new & G_INUSE))
		frame_free(v->shm, atomic_load_explicit(&g->frame,
							memory_order_relaxed));
}

void sim_hv_domain_kill(struct sim_hv *hv, uint16_t domid)
{
	int i = domains_find(hv->domains, domid);
	struct sim_view *v = views_find(&hv->views, domid), *o;
	uint32_t port, ref;

	if (i < 0 || !v)
		return;
	/* release: nothing below happens before peers can see it dying */
	atomic_store_explicit(&hv->domains->slot[i].word,
			      (uint32_t)DS_DYING << 16 | domid, memory_order_release);
	/* seq_cst: dead before its ports and grant entries are torn down */
	atomic_store(&v->shm->dead, 1);

	/* Its ports close; the peers' ends become unbound. */
	for (port = 1; port < SIM_NR_PORTS; port++)
		if (atomic_load_explicit(&v->shm->ports[port].word,
					 memory_order_relaxed))
			port_close(&hv->views, v, port);

	for (o = atomic_load_explicit(&hv->views.head, memory_order_relaxed); o;
	     o = o->next) {
		if (o == v || view_dead(o))
			continue;
		/* A bind that raced with the kill is undone too. */
		for (port = 1; port < SIM_NR_PORTS; port++)
			port_unbind_peer(o, port, domid, UINT32_MAX);
		/* Its mappings of others' grants died with it. */
		for (ref = SIM_FIRST_GRANT; ref < SIM_NR_GRANTS; ref++)
			grant_drop_maps(o, ref, domid);
	}
}

void sim_hv_domain_remove(struct sim_hv *hv, uint16_t domid)
{
	struct sim_view *prev, *v;
	char path[4096];
	int i = domains_find(hv->domains, domid);

	if (!sim_path(path, sizeof(path), hv->dir, "dom-%u", domid))
		unlink(path);
	if (!sim_path(path, sizeof(path), hv->dir, "mem-%u", domid))
		unlink(path);
	/* Only the daemon's single thread uses hv's views. */
	v = atomic_load_explicit(&hv->views.head, memory_order_relaxed);
	if (v && v->domid == domid) {
		atomic_store_explicit(&hv->views.head, v->next, memory_order_relaxed);
		view_free(v);
	} else {
		for (prev = v; prev && (v = prev->next); prev = v) {
			if (v->domid == domid) {
				prev->next = v->next;
				view_free(v);
				break;
			}
		}
	}
	if (i >= 0)
		/* release: peers see the slot free after the files went */
		atomic_store_explicit(&hv->domains->slot[i].word, 0,
				      memory_order_release);
}

int sim_hv_alloc_unbound(struct sim_hv *hv, uint16_t domid, uint16_t remote,
			 uint32_t *port)
{
	struct sim_view *v = views_find(&hv->views, domid);
	int err;

	if (!v)
		return -ESRCH;
	if ((err = port_alloc(v->shm, 0, port)))
		return err;
	/* release: the port is complete when it shows as unbound */
	atomic_store_explicit(&v->shm->ports[*port].word,
			      port_word(PS_UNBOUND, remote, 0),
			      memory_order_release);
	return 0;
}

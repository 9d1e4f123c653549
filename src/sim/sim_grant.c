/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sim's grant tables: frames of a domain's memory, grant entries kept
 * in one word each and changed only by compare-and-swap, and the grant
 * operations of the platform (share, map, copy) with Xen's checks: a bad
 * ref, a grant not given to us, a write to a read-only grant, a dead
 * granter.
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
	atomic_store_explicit(&g->owner, (uint32_t)getpid(), memory_order_relaxed);
	atomic_store_explicit(&g->mapper, 0, memory_order_relaxed);
	/* release: the frame, owner (and the zeroed contents) are visible
	 * before anyone can map the grant */
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

	if (sim_view_dead(v))
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
	if (!(new & G_MAPS))
		/* advisory: a map racing with this makes it 0 (never reaped) */
		atomic_store_explicit(&g->mapper, 0, memory_order_relaxed);
	if (!(new & G_INUSE))
		frame_free(v->shm, frame);
}

/* Records this process as the holder of a map of ref (for sim_hv_reap);
 * a second process mapping it makes it SHARED, which is never reaped. */
static void grant_note_mapper(struct sim_view *v, uint32_t ref)
{
	_Atomic uint32_t *m = &v->shm->grants[ref].mapper;
	uint32_t me = (uint32_t)getpid(), prev = 0;

	if (!atomic_compare_exchange_strong_explicit(m, &prev, me,
						     memory_order_relaxed,
						     memory_order_relaxed) &&
	    prev != me)
		atomic_store_explicit(m, SIM_MAPPER_SHARED, memory_order_relaxed);
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

int sim_share_pages(struct xbd_platform *p, uint16_t domid,
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
	if (sim_view_dead(sp->me))
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

void sim_share_end(struct sim_area *a)
{
	unsigned i;

	/* Our own mapping goes first: an ended grant's frame may be reused. */
	munmap(a->addr, a->count * SIM_PS);
	for (i = 0; i < a->count; i++)
		grant_end(a->view, a->pages[i].ref, a->pages[i].frame);
	free(a);
}

int sim_unshare_pages(struct xbd_platform *p, void *addr,
		      unsigned count)
{
	struct sim_platform *sp = sim_of(p);
	struct sim_area *a;
	int err = area_unlink(sp, &sp->shares, addr, count, &a);

	if (!err)
		sim_share_end(a);
	return err;
}

int sim_map_grants(struct xbd_platform *p, uint16_t domid,
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
	if ((err = sim_views_get(&sp->views, domid, &v)))
		return err;
	a = area_new(count, v);
	if (!a)
		return -ENOMEM;
	for (n = 0; n < count; n++) {
		a->pages[n].ref = refs[n];
		if ((err = grant_get(v, sp->self, refs[n], writable,
				     &a->pages[n].frame, &a->pages[n].gen)))
			goto fail;
		grant_note_mapper(v, refs[n]);
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

void sim_map_end(struct sim_area *a)
{
	unsigned i;

	munmap(a->addr, a->count * SIM_PS);
	for (i = 0; i < a->count; i++)
		grant_put(a->view, a->pages[i].ref, a->pages[i].frame,
			  a->pages[i].gen);
	free(a);
}

int sim_unmap_grants(struct xbd_platform *p, void *addr, unsigned count)
{
	struct sim_platform *sp = sim_of(p);
	struct sim_area *a;
	int err = area_unlink(sp, &sp->maps, addr, count, &a);

	if (!err)
		sim_map_end(a);
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
	if ((err = sim_views_get(&sp->views, domid, &v)))
		return err;
	if (!(mem = sim_view_mem(v)))
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

int sim_grant_copy(struct xbd_platform *p, struct xbd_grant_copy *segs,
		   unsigned count)
{
	unsigned i;

	for (i = 0; i < count; i++)
		segs[i].status = (int16_t)copy_segment(sim_of(p), &segs[i]);
	return 0;
}

/* The mappings a killed grantee had of v's grant ref count as unmapped. */
void sim_grant_drop_maps(struct sim_view *v, uint32_t ref, uint16_t grantee)
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
	atomic_store_explicit(&g->mapper, 0, memory_order_relaxed);
	if (!(new & G_INUSE))
		frame_free(v->shm, atomic_load_explicit(&g->frame,
							memory_order_relaxed));
}

bool sim_grant_reap_end(struct sim_view *v, uint32_t ref)
{
	uint64_t w = atomic_load_explicit(&v->shm->grants[ref].word,
					  memory_order_relaxed);

	if (!(w & G_INUSE) || (w & G_ENDING))
		return false;
	grant_end(v, ref, atomic_load_explicit(&v->shm->grants[ref].frame,
					       memory_order_relaxed));
	return true;
}

bool sim_grant_reap_maps(struct sim_view *v, uint32_t ref, uint32_t mapper)
{
	struct sim_grant *g = &v->shm->grants[ref];
	uint64_t old = atomic_load_explicit(&g->word, memory_order_relaxed);
	uint64_t new;

	do {
		if (!(old & G_INUSE) || !(old & G_MAPS) ||
		    atomic_load_explicit(&g->mapper, memory_order_relaxed) != mapper)
			return false;
		new = (old & G_ENDING) ? grant_free_word(grant_gen(old))
				       : old & ~G_MAPS;
		/* release: as the unmaps this stands for */
	} while (!atomic_compare_exchange_weak_explicit(&g->word, &old, new,
							memory_order_release,
							memory_order_relaxed));
	atomic_store_explicit(&g->mapper, 0, memory_order_relaxed);
	if (!(new & G_INUSE))
		frame_free(v->shm, atomic_load_explicit(&g->frame,
							memory_order_relaxed));
	return true;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sim platform's ops table: what the platform seam calls, the handle
 * (opening and closing it) and domain queries.  Grants, event channels
 * and the shared state are in sim_grant.c, sim_evtchn.c and sim_hv.c.
 */
#include "sim_hv.h"
#include "xbd/common.h"
#include "xbd/util.h"

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

static int sim_domain_alive(struct xbd_platform *p, uint16_t domid)
{
	return sim_domains_alive(sim_of(p)->domains, domid);
}

/* How long a pause waits for a guest thread inside its vCPU section
 * (a submit waiting for a ring slot): bounded, as a guest process may
 * be stopped or gone. */
#define SIM_PAUSE_WAIT_MS 5000

/* domid's shared state, for dom0's pause calls (a guest cannot pause
 * another domain, as in Xen, where only the control domain may). */
static int pause_view(struct xbd_platform *p, uint16_t domid,
		      struct sim_view **v)
{
	struct sim_platform *sp = sim_of(p);

	if (sp->self != 0)
		return -EPERM;
	if (!sim_domains_alive(sp->domains, domid))
		return -ESRCH;
	return sim_views_get(&sp->views, domid, v);
}

static int sim_domain_pause(struct xbd_platform *p, uint16_t domid)
{
	unsigned long long deadline;
	struct sim_view *v;
	uint32_t old;
	int err = pause_view(p, domid, &v);

	if (err)
		return err;
	old = atomic_load(&v->shm->pause_count);
	do {
		if (old >= 255)
			return -EOVERFLOW;
		/* seq_cst, with vcpu_enter's: either the guest sees the
		 * pause, or we see it busy and wait for it */
	} while (!atomic_compare_exchange_weak(&v->shm->pause_count, &old, old + 1));
	deadline = xbd_now_ns() + SIM_PAUSE_WAIT_MS * 1000000ull;
	while (atomic_load(&v->shm->vcpu_busy) && !sim_view_dead(v) &&
	       xbd_now_ns() < deadline)
		usleep(200);
	return 0;
}

static int sim_domain_unpause(struct xbd_platform *p, uint16_t domid)
{
	struct sim_view *v;
	uint32_t old;
	int err = pause_view(p, domid, &v);

	if (err)
		return err;
	old = atomic_load(&v->shm->pause_count);
	do {
		if (old == 0)
			return -EINVAL; /* as Xen: not paused */
	} while (!atomic_compare_exchange_weak(&v->shm->pause_count, &old, old - 1));
	return 0;
}

static int sim_domain_paused(struct xbd_platform *p, uint16_t domid)
{
	struct sim_platform *sp = sim_of(p);
	struct sim_view *v;
	int err;

	if (!sim_domains_alive(sp->domains, domid))
		return -ESRCH;
	err = sim_views_get(&sp->views, domid, &v);
	if (err)
		return err;
	return atomic_load(&v->shm->pause_count) > 0 || sim_view_dead(v);
}

int xbd_sim_vcpu_enter(struct xbd_platform *p)
{
	struct sim_dom_shm *s = sim_of(p)->me->shm;

	for (;;) {
		/* seq_cst: busy is visible before we look at the pause
		 * count (sim_domain_pause does the reverse) */
		atomic_fetch_add(&s->vcpu_busy, 1);
		if (!atomic_load(&s->pause_count))
			return 0;
		atomic_fetch_sub(&s->vcpu_busy, 1);
		if (sim_view_dead(sim_of(p)->me))
			return -ESRCH;
		usleep(500);
	}
}

void xbd_sim_vcpu_exit(struct xbd_platform *p)
{
	atomic_fetch_sub(&sim_of(p)->me->shm->vcpu_busy, 1);
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
		sim_map_end(a);
	}
	while (sp->shares) {
		struct sim_area *a = sp->shares;

		sp->shares = a->next;
		sim_share_end(a);
	}
	if (sp->base.xs)
		xs_close(sp->base.xs);
	sim_views_free(&sp->views);
	if (sp->domains)
		munmap(sp->domains, sizeof(*sp->domains));
	pthread_mutex_destroy(&sp->lock);
	pthread_mutex_destroy(&sp->views.lock);
	free(sp->dir);
	free(sp);
}

const struct xbd_platform_ops sim_platform_ops = {
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
	.domain_paused = sim_domain_paused,
	.domain_pause = sim_domain_pause,
	.domain_unpause = sim_domain_unpause,
};

int xbd_sim_domid_from_env(uint16_t *domid)
{
	const char *s = getenv(XBD_SIM_DOMID_ENV);
	unsigned long long v;

	if (!s || !*s)
		return 0;
	if (xbd_parse_uint(s, XBD_SIM_MAX_DOMID, &v))
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
	sp->base.ops = &sim_platform_ops;
	pthread_mutex_init(&sp->lock, NULL);
	pthread_mutex_init(&sp->views.lock, NULL);
	sp->self = cfg->sim_domid;
	if (!sp->self && (err = xbd_sim_domid_from_env(&sp->self)))
		goto fail;
	if (!(sp->dir = strdup(dir))) {
		err = -ENOMEM;
		goto fail;
	}
	sp->views.dir = sp->dir;

	if ((err = sim_path(path, sizeof(path), dir, "domains")))
		goto fail;
	if ((err = sim_map_file(path, sizeof(*sp->domains), false, false, &m))) {
		err = err == -ESRCH ? -ENOENT : err; /* no sim there */
		goto fail;
	}
	sp->domains = m;
	if (sp->domains->magic != SIM_MAGIC || sp->domains->version != SIM_VERSION) {
		err = -EPROTO;
		goto fail;
	}
	if (!sim_domains_alive(sp->domains, sp->self)) {
		err = -ESRCH;
		goto fail;
	}
	if ((err = sim_views_get(&sp->views, sp->self, &sp->me)))
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

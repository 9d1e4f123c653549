/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The "xen" platform: thin wrappers over the Xen libraries a real dom0
 * has (libxengntshr/libxengnttab, libxenevtchn, libxenstore, libxenctrl).
 *
 * Each device is opened on first use, so that a dom0 without, say,
 * xen-gntalloc loaded can still do everything that does not share pages:
 * the missing piece fails with -ENODEV and one error line naming it.
 * The libraries' own log messages go to xbd_debug(), not to stderr.
 */
#include "xbd/platform.h"
#include "src/platform_priv.h"
#include "xbd/common.h"
#include "xbd/util.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <xenctrl.h>
#include <xenevtchn.h>
#include <xengnttab.h>
#include <xenstore.h>
#include <xentoollog.h>

struct xen_platform {
	struct xbd_platform_base base; /* first: see platform.h */
	uint16_t self;
	pthread_mutex_t lock; /* guards the lazy opens below */
	xengntshr_handle *gntshr;
	xengnttab_handle *gnttab;
	xc_interface *xc;
	int gntshr_state, gnttab_state, xc_state; /* see lazy_open() */
};

struct xen_evtchn {
	struct xbd_evtchn_base base; /* first: see platform.h */
	xenevtchn_handle *h;
};

static const struct xbd_platform_ops xen_ops;

static struct xen_platform *xen_of(struct xbd_platform *p)
{
	return (struct xen_platform *)p;
}

static xenevtchn_handle *evtchn_of(struct xbd_evtchn *e)
{
	return ((struct xen_evtchn *)e)->h;
}

/* The libraries report failures through errno; a missing device node
 * means the driver (or Xen itself) is not there. */
static int neg_errno(void)
{
	int e = errno ? errno : EIO;

	return e == ENOENT ? -ENODEV : -e;
}

static void quiet_vmessage(struct xentoollog_logger *logger,
			   xentoollog_level level, int errnoval,
			   const char *context, const char *format, va_list al)
{
	char msg[256];

	(void)logger;
	(void)level;
	vsnprintf(msg, sizeof(msg), format, al);
	if (errnoval >= 0)
		xbd_debug("%s: %s: %s", context ? context : "xen", msg,
			  strerror(errnoval));
	else
		xbd_debug("%s: %s", context ? context : "xen", msg);
}

static void quiet_destroy(struct xentoollog_logger *logger)
{
	(void)logger;
}

static struct xentoollog_logger quiet_logger = {
	.vmessage = quiet_vmessage,
	.destroy = quiet_destroy,
};

/* Runs `open` once under the lock.  *state: 0 not tried yet, 1 open,
 * or the negative errno of the failed open, reported once and returned
 * on every later call. */
static int lazy_open(struct xen_platform *x, int *state,
		     int (*open)(struct xen_platform *x), const char *what)
{
	int ret;

	pthread_mutex_lock(&x->lock);
	if (*state == 0) {
		errno = 0;
		ret = open(x);
		*state = ret ? ret : 1;
		if (ret)
			xbd_err("xen: cannot open %s: %s", what,
				xbd_strerror(ret));
	}
	ret = *state < 0 ? *state : 0;
	pthread_mutex_unlock(&x->lock);
	return ret;
}

static int open_gntshr(struct xen_platform *x)
{
	x->gntshr = xengntshr_open(&quiet_logger, 0);
	return x->gntshr ? 0 : neg_errno();
}

static int open_gnttab(struct xen_platform *x)
{
	x->gnttab = xengnttab_open(&quiet_logger, 0);
	return x->gnttab ? 0 : neg_errno();
}

static int open_xc(struct xen_platform *x)
{
	x->xc = xc_interface_open(&quiet_logger, &quiet_logger, 0);
	return x->xc ? 0 : neg_errno();
}

static int need_gntshr(struct xen_platform *x)
{
	return lazy_open(x, &x->gntshr_state, open_gntshr,
			 "/dev/xen/gntalloc (is xen-gntalloc loaded?)");
}

static int need_gnttab(struct xen_platform *x)
{
	return lazy_open(x, &x->gnttab_state, open_gnttab,
			 "/dev/xen/gntdev (is xen-gntdev loaded?)");
}

static int need_xc(struct xen_platform *x)
{
	return lazy_open(x, &x->xc_state, open_xc,
			 "/dev/xen/privcmd (is xen-privcmd loaded?)");
}

static void xen_close(struct xbd_platform *p)
{
	struct xen_platform *x = xen_of(p);

	if (x->xc)
		xc_interface_close(x->xc);
	if (x->gnttab)
		xengnttab_close(x->gnttab);
	if (x->gntshr)
		xengntshr_close(x->gntshr);
	if (x->base.xs)
		xs_close(x->base.xs);
	pthread_mutex_destroy(&x->lock);
	free(x);
}

static uint16_t xen_self_domid(struct xbd_platform *p)
{
	return xen_of(p)->self;
}

static int xen_share_pages(struct xbd_platform *p, uint16_t domid,
			   unsigned count, bool writable, uint32_t *refs,
			   void **addr)
{
	struct xen_platform *x = xen_of(p);
	void *a;
	int err = need_gntshr(x);

	if (err)
		return err;
	if (count == 0 || count > INT32_MAX)
		return -EINVAL;
	errno = 0;
	a = xengntshr_share_pages(x->gntshr, domid, (int)count, refs, writable);
	if (!a)
		return neg_errno();
	/* gntalloc hands out zeroed pages, as the seam promises. */
	*addr = a;
	return 0;
}

static int xen_unshare_pages(struct xbd_platform *p, void *addr,
			     unsigned count)
{
	struct xen_platform *x = xen_of(p);
	int err = need_gntshr(x);

	if (err)
		return err;
	if (xengntshr_unshare(x->gntshr, addr, count))
		return neg_errno();
	return 0;
}

static int xen_map_grants(struct xbd_platform *p, uint16_t domid,
			  unsigned count, const uint32_t *refs, bool writable,
			  void **addr)
{
	struct xen_platform *x = xen_of(p);
	void *a;
	int err = need_gnttab(x);

	if (err)
		return err;
	if (count == 0)
		return -EINVAL;
	errno = 0;
	/* The library does not write refs; its prototype lacks the const. */
	a = xengnttab_map_domain_grant_refs(x->gnttab, count, domid,
					    (uint32_t *)refs,
					    writable ? PROT_READ | PROT_WRITE
						     : PROT_READ);
	if (!a)
		return neg_errno();
	*addr = a;
	return 0;
}

static int xen_unmap_grants(struct xbd_platform *p, void *addr,
			    unsigned count)
{
	struct xen_platform *x = xen_of(p);
	int err = need_gnttab(x);

	if (err)
		return err;
	if (xengnttab_unmap(x->gnttab, addr, count))
		return neg_errno();
	return 0;
}

static int16_t gntst_to_errno(int16_t st)
{
	switch (st) {
	case GNTST_okay:
		return 0;
	case GNTST_bad_domain:
		return -ESRCH;
	case GNTST_bad_gntref:
	case GNTST_bad_copy_arg:
		return -EINVAL;
	case GNTST_permission_denied:
		return -EPERM;
	case GNTST_eagain:
		return -EAGAIN;
	default:
		return -EIO;
	}
}

static int xen_grant_copy(struct xbd_platform *p, struct xbd_grant_copy *segs,
			  unsigned count)
{
	struct xen_platform *x = xen_of(p);
	xengnttab_grant_copy_segment_t *ops;
	unsigned i;
	int err = need_gnttab(x);

	if (err)
		return err;
	if (count == 0)
		return 0;
	ops = calloc(count, sizeof(*ops));
	if (!ops)
		return -ENOMEM;
	for (i = 0; i < count; i++) {
		union xengnttab_copy_ptr *gref, *local;

		if ((unsigned)segs[i].offset + segs[i].len > XBD_PAGE_SIZE) {
			free(ops);
			return -EINVAL;
		}
		gref = segs[i].to_grant ? &ops[i].dest : &ops[i].source;
		local = segs[i].to_grant ? &ops[i].source : &ops[i].dest;
		gref->foreign.ref = segs[i].ref;
		gref->foreign.offset = segs[i].offset;
		gref->foreign.domid = segs[i].domid;
		local->virt = segs[i].local;
		ops[i].len = segs[i].len;
		ops[i].flags = segs[i].to_grant ? GNTCOPY_dest_gref
						: GNTCOPY_source_gref;
	}
	errno = 0;
	if (xengnttab_grant_copy(x->gnttab, count, ops)) {
		err = neg_errno();
		free(ops);
		return err;
	}
	for (i = 0; i < count; i++)
		segs[i].status = gntst_to_errno(ops[i].status);
	free(ops);
	return 0;
}

static int xen_evtchn_open(struct xbd_platform *p, struct xbd_evtchn **out)
{
	struct xen_evtchn *e = calloc(1, sizeof(*e));
	int flags, err;

	(void)p;
	if (!e)
		return -ENOMEM;
	e->base.ops = &xen_ops;
	errno = 0;
	e->h = xenevtchn_open(&quiet_logger, 0);
	if (!e->h) {
		err = neg_errno();
		xbd_err("xen: cannot open /dev/xen/evtchn (is xen-evtchn loaded?): %s",
			xbd_strerror(err));
		free(e);
		return err;
	}
	/* The seam's pending() never blocks: it answers -EAGAIN instead. */
	flags = fcntl(xenevtchn_fd(e->h), F_GETFL);
	if (flags < 0 ||
	    fcntl(xenevtchn_fd(e->h), F_SETFL, flags | O_NONBLOCK) < 0) {
		err = -errno;
		xenevtchn_close(e->h);
		free(e);
		return err;
	}
	*out = (struct xbd_evtchn *)e;
	return 0;
}

static void xen_evtchn_close(struct xbd_evtchn *e)
{
	if (!e)
		return;
	/* Closing the handle unbinds every port bound through it. */
	xenevtchn_close(evtchn_of(e));
	free(e);
}

static int xen_evtchn_fd(struct xbd_evtchn *e)
{
	return xenevtchn_fd(evtchn_of(e));
}

static int port_result(xenevtchn_port_or_error_t r, uint32_t *port)
{
	if (r < 0)
		return neg_errno();
	*port = (uint32_t)r;
	return 0;
}

static int xen_evtchn_alloc_unbound(struct xbd_evtchn *e,
				    uint16_t remote_domid, uint32_t *port)
{
	errno = 0;
	return port_result(xenevtchn_bind_unbound_port(evtchn_of(e),
						       remote_domid), port);
}

static int xen_evtchn_bind_interdomain(struct xbd_evtchn *e,
				       uint16_t remote_domid,
				       uint32_t remote_port, uint32_t *port)
{
	errno = 0;
	return port_result(xenevtchn_bind_interdomain(evtchn_of(e),
						      remote_domid,
						      remote_port), port);
}

static int xen_evtchn_unbind(struct xbd_evtchn *e, uint32_t port)
{
	errno = 0;
	return xenevtchn_unbind(evtchn_of(e), port) ? neg_errno() : 0;
}

static int xen_evtchn_notify(struct xbd_evtchn *e, uint32_t port)
{
	errno = 0;
	return xenevtchn_notify(evtchn_of(e), port) ? neg_errno() : 0;
}

static int xen_evtchn_pending(struct xbd_evtchn *e, uint32_t *port)
{
	xenevtchn_port_or_error_t r;

	errno = 0;
	r = xenevtchn_pending(evtchn_of(e));
	if (r < 0)
		return errno == EAGAIN || errno == EWOULDBLOCK ? -EAGAIN
							       : neg_errno();
	*port = (uint32_t)r;
	return 0;
}

static int xen_evtchn_unmask(struct xbd_evtchn *e, uint32_t port)
{
	errno = 0;
	return xenevtchn_unmask(evtchn_of(e), port) ? neg_errno() : 0;
}

/* The hypervisor's record of domid: 1 and *info, 0 when there is no
 * such domain, or -errno. */
static int domain_info(struct xen_platform *x, uint16_t domid,
		       xc_dominfo_t *info)
{
	int n, err = need_xc(x);

	if (err)
		return err;
	errno = 0;
	/* Fills in the first domain whose id is >= domid. */
	n = xc_domain_getinfo(x->xc, domid, 1, info);
	if (n < 0)
		return errno == ESRCH ? 0 : neg_errno();
	return n == 1 && info->domid == domid;
}

static int xen_domain_alive(struct xbd_platform *p, uint16_t domid)
{
	xc_dominfo_t info;
	int r = domain_info(xen_of(p), domid, &info);

	/* Xen refuses (EACCES) a domctl of another interface version: this
	 * libxenctrl is not the running Xen's (xbd built for an older Xen,
	 * e.g. Debian 12's binary on Debian 13's Xen 4.20).  xenstored's
	 * stable protocol still says which domains exist: it forgets a
	 * domain when the domain dies (a shut-down one counts as alive
	 * until then). */
	if (r == -EACCES)
		return xs_is_domain_introduced(xbd_platform_xs_handle(p), domid);
	return r <= 0 ? r : !info.dying && !info.shutdown;
}

/* A domctl refused with EACCES: Xen checks the interface version
 * before anything else, and dom0's root is otherwise allowed them. */
static int domctl_err(void)
{
	return errno == EACCES ? -XBD_E_XEN_VERSION : neg_errno();
}

static int xen_domain_paused(struct xbd_platform *p, uint16_t domid)
{
	xc_dominfo_t info;
	int r = domain_info(xen_of(p), domid, &info);

	if (r == 0)
		return -ESRCH;
	if (r == -EACCES)
		return -XBD_E_XEN_VERSION;
	return r < 0 ? r : info.paused || info.shutdown || info.dying;
}

/* XEN_DOMCTL_pausedomain: Xen counts these pauses per domain (up to
 * 255) and returns once the vCPUs are descheduled. */
static int xen_domain_pause(struct xbd_platform *p, uint16_t domid)
{
	struct xen_platform *x = xen_of(p);
	int err = need_xc(x);

	if (err)
		return err;
	errno = 0;
	return xc_domain_pause(x->xc, domid) ? domctl_err() : 0;
}

static int xen_domain_unpause(struct xbd_platform *p, uint16_t domid)
{
	struct xen_platform *x = xen_of(p);
	int err = need_xc(x);

	if (err)
		return err;
	errno = 0;
	return xc_domain_unpause(x->xc, domid) ? domctl_err() : 0;
}

static const struct xbd_platform_ops xen_ops = {
	.name = "xen",
	.close = xen_close,
	.self_domid = xen_self_domid,
	.share_pages = xen_share_pages,
	.unshare_pages = xen_unshare_pages,
	.map_grants = xen_map_grants,
	.unmap_grants = xen_unmap_grants,
	.grant_copy = xen_grant_copy,
	.evtchn_open = xen_evtchn_open,
	.evtchn_close = xen_evtchn_close,
	.evtchn_fd = xen_evtchn_fd,
	.evtchn_alloc_unbound = xen_evtchn_alloc_unbound,
	.evtchn_bind_interdomain = xen_evtchn_bind_interdomain,
	.evtchn_unbind = xen_evtchn_unbind,
	.evtchn_notify = xen_evtchn_notify,
	.evtchn_pending = xen_evtchn_pending,
	.evtchn_unmask = xen_evtchn_unmask,
	XBD_PLATFORM_XS_OPS,
	.domain_alive = xen_domain_alive,
	.domain_paused = xen_domain_paused,
	.domain_pause = xen_domain_pause,
	.domain_unpause = xen_domain_unpause,
};

int xbd_platform_xen_open(const struct xbd_platform_config *cfg,
			  struct xbd_platform **out)
{
	struct xen_platform *x;
	char *s;
	unsigned long long id;
	int err;

	(void)cfg;
	x = calloc(1, sizeof(*x));
	if (!x)
		return -ENOMEM;
	x->base.ops = &xen_ops;
	pthread_mutex_init(&x->lock, NULL);
	err = xbd_xs_connect(NULL, &x->base.xs);
	if (err) {
		err = err == -ENOENT ? -ENODEV : err;
		goto fail;
	}
	/* A relative path is under our own /local/domain/<id>; dom0 may
	 * not have "domid" written (older toolstacks), and is 0. */
	if (xbd_xs_op_read((struct xbd_platform *)x, XBD_XS_NO_TXN, "domid",
			   &s, NULL) == 0) {
		if (!xbd_parse_uint(s, XBD_DOMID_SELF - 1, &id))
			x->self = (uint16_t)id;
		free(s);
	}
	*out = (struct xbd_platform *)x;
	return 0;
fail:
	pthread_mutex_destroy(&x->lock);
	free(x);
	return err;
}

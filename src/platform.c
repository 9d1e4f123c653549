/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The platform seam's front: chooses and opens a platform, and the
 * wrappers every caller goes through to its ops table (the checks that
 * hold for all implementations are made here, once); small xenstore
 * helpers over them.
 */
#include "src/platform_priv.h"
#include "xbd/common.h"
#include "xbd/util.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

int xbd_platform_parse_kind(const char *s, enum xbd_platform_kind *kind)
{
	if (!strcmp(s, "xen"))
		*kind = XBD_PLATFORM_XEN;
	else if (!strcmp(s, "sim"))
		*kind = XBD_PLATFORM_SIM;
	else if (!strcmp(s, "auto"))
		*kind = XBD_PLATFORM_AUTO;
	else
		return -EINVAL;
	return 0;
}

enum xbd_platform_kind xbd_platform_resolve(enum xbd_platform_kind kind)
{
	const char *env;
	enum xbd_platform_kind k;

	if (kind != XBD_PLATFORM_AUTO)
		return kind;
	env = getenv("XBD_PLATFORM");
	if (env && *env && !xbd_platform_parse_kind(env, &k) &&
	    k != XBD_PLATFORM_AUTO)
		return k;
	/* Naming a sim directory means "use that simulated platform". */
	env = getenv("XBD_SIM_DIR");
	if (env && *env)
		return XBD_PLATFORM_SIM;
	if (access("/proc/xen/capabilities", F_OK) == 0)
		return XBD_PLATFORM_XEN;
	return XBD_PLATFORM_SIM;
}

/* The one place libxbd meets the sim: a pointer, so that libxbd has no
 * link-time dependency on libxbdsim.a (see xbd_platform_set_sim). */
static xbd_platform_open_fn *sim_open;

void xbd_platform_set_sim(xbd_platform_open_fn *open)
{
	sim_open = open;
}

int xbd_platform_open(const struct xbd_platform_config *cfg,
		      struct xbd_platform **out)
{
	switch (xbd_platform_resolve(cfg->kind)) {
	case XBD_PLATFORM_XEN:
		return xbd_platform_xen_open(cfg, out);
	case XBD_PLATFORM_SIM:
		return sim_open ? sim_open(cfg, out) : -ENOSYS;
	default:
		return -EINVAL;
	}
}

void xbd_platform_close(struct xbd_platform *p)
{
	if (p)
		xbd_platform_ops_of(p)->close(p);
}

const char *xbd_platform_name(struct xbd_platform *p)
{
	return xbd_platform_ops_of(p)->name;
}

uint16_t xbd_platform_self_domid(struct xbd_platform *p)
{
	return xbd_platform_ops_of(p)->self_domid(p);
}

int xbd_share_pages(struct xbd_platform *p, uint16_t domid, unsigned count,
		    bool writable, uint32_t *refs, void **addr)
{
	if (count == 0)
		return -EINVAL;
	return xbd_platform_ops_of(p)->share_pages(p, domid, count, writable,
						   refs, addr);
}

int xbd_unshare_pages(struct xbd_platform *p, void *addr, unsigned count)
{
	return xbd_platform_ops_of(p)->unshare_pages(p, addr, count);
}

int xbd_map_grants(struct xbd_platform *p, uint16_t domid, unsigned count,
		   const uint32_t *refs, bool writable, void **addr)
{
	if (count == 0)
		return -EINVAL;
	return xbd_platform_ops_of(p)->map_grants(p, domid, count, refs,
						  writable, addr);
}

int xbd_unmap_grants(struct xbd_platform *p, void *addr, unsigned count)
{
	return xbd_platform_ops_of(p)->unmap_grants(p, addr, count);
}

int xbd_copy_grants(struct xbd_platform *p, struct xbd_grant_copy *segs,
		    unsigned count)
{
	if (count == 0)
		return 0;
	return xbd_platform_ops_of(p)->grant_copy(p, segs, count);
}

int xbd_evtchn_open(struct xbd_platform *p, struct xbd_evtchn **out)
{
	return xbd_platform_ops_of(p)->evtchn_open(p, out);
}

void xbd_evtchn_close(struct xbd_evtchn *e)
{
	if (e)
		xbd_evtchn_ops_of(e)->evtchn_close(e);
}

int xbd_evtchn_fd(struct xbd_evtchn *e)
{
	return xbd_evtchn_ops_of(e)->evtchn_fd(e);
}

int xbd_evtchn_alloc_unbound(struct xbd_evtchn *e, uint16_t remote_domid,
			     uint32_t *port)
{
	return xbd_evtchn_ops_of(e)->evtchn_alloc_unbound(e, remote_domid,
							  port);
}

int xbd_evtchn_bind_interdomain(struct xbd_evtchn *e, uint16_t remote_domid,
				uint32_t remote_port, uint32_t *port)
{
	return xbd_evtchn_ops_of(e)->evtchn_bind_interdomain(e, remote_domid,
							     remote_port,
							     port);
}

int xbd_evtchn_unbind(struct xbd_evtchn *e, uint32_t port)
{
	return xbd_evtchn_ops_of(e)->evtchn_unbind(e, port);
}

int xbd_evtchn_notify(struct xbd_evtchn *e, uint32_t port)
{
	return xbd_evtchn_ops_of(e)->evtchn_notify(e, port);
}

int xbd_evtchn_pending(struct xbd_evtchn *e, uint32_t *port)
{
	return xbd_evtchn_ops_of(e)->evtchn_pending(e, port);
}

int xbd_evtchn_unmask(struct xbd_evtchn *e, uint32_t port)
{
	return xbd_evtchn_ops_of(e)->evtchn_unmask(e, port);
}

int xbd_xs_read(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		char **value, size_t *len)
{
	return xbd_platform_ops_of(p)->xs_read(p, t, path, value, len);
}

int xbd_xs_write(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		 const void *value, size_t len)
{
	return xbd_platform_ops_of(p)->xs_write(p, t, path, value, len);
}

int xbd_xs_mkdir(struct xbd_platform *p, xbd_xs_txn t, const char *path)
{
	return xbd_platform_ops_of(p)->xs_mkdir(p, t, path);
}

int xbd_xs_rm(struct xbd_platform *p, xbd_xs_txn t, const char *path)
{
	return xbd_platform_ops_of(p)->xs_rm(p, t, path);
}

int xbd_xs_directory(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		     char ***names, unsigned *count)
{
	return xbd_platform_ops_of(p)->xs_directory(p, t, path, names, count);
}

int xbd_xs_get_perms(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		     struct xbd_xs_perm **perms, unsigned *count)
{
	return xbd_platform_ops_of(p)->xs_get_perms(p, t, path, perms, count);
}

int xbd_xs_set_perms(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		     const struct xbd_xs_perm *perms, unsigned count)
{
	return xbd_platform_ops_of(p)->xs_set_perms(p, t, path, perms, count);
}

int xbd_xs_watch(struct xbd_platform *p, const char *path, const char *token)
{
	return xbd_platform_ops_of(p)->xs_watch(p, path, token);
}

int xbd_xs_unwatch(struct xbd_platform *p, const char *path,
		   const char *token)
{
	return xbd_platform_ops_of(p)->xs_unwatch(p, path, token);
}

int xbd_xs_watch_fd(struct xbd_platform *p)
{
	return xbd_platform_ops_of(p)->xs_watch_fd(p);
}

int xbd_xs_read_watch(struct xbd_platform *p, char **path, char **token)
{
	return xbd_platform_ops_of(p)->xs_read_watch(p, path, token);
}

int xbd_xs_transaction_start(struct xbd_platform *p, xbd_xs_txn *t)
{
	return xbd_platform_ops_of(p)->xs_transaction_start(p, t);
}

int xbd_xs_transaction_end(struct xbd_platform *p, xbd_xs_txn t, bool abort)
{
	return xbd_platform_ops_of(p)->xs_transaction_end(p, t, abort);
}

int xbd_domain_lookup(struct xbd_platform *p, const char *name,
		      uint16_t *domid)
{
	return xbd_platform_ops_of(p)->domain_lookup(p, name, domid);
}

int xbd_domain_alive(struct xbd_platform *p, uint16_t domid)
{
	return xbd_platform_ops_of(p)->domain_alive(p, domid);
}

int xbd_domain_list(struct xbd_platform *p, struct xbd_domain_info **list,
		    unsigned *count)
{
	return xbd_platform_ops_of(p)->domain_list(p, list, count);
}

int xbd_domain_paused(struct xbd_platform *p, uint16_t domid)
{
	const struct xbd_platform_ops *ops = xbd_platform_ops_of(p);

	return ops->domain_paused ? ops->domain_paused(p, domid) : -EOPNOTSUPP;
}

int xbd_domain_pause(struct xbd_platform *p, uint16_t domid)
{
	const struct xbd_platform_ops *ops = xbd_platform_ops_of(p);

	/* a domain that stops itself never comes back to unpause */
	if (domid == ops->self_domid(p) || domid >= XBD_DOMID_SELF)
		return -EINVAL;
	return ops->domain_pause ? ops->domain_pause(p, domid) : -EOPNOTSUPP;
}

int xbd_domain_unpause(struct xbd_platform *p, uint16_t domid)
{
	const struct xbd_platform_ops *ops = xbd_platform_ops_of(p);

	if (domid == ops->self_domid(p) || domid >= XBD_DOMID_SELF)
		return -EINVAL;
	return ops->domain_unpause ? ops->domain_unpause(p, domid) : -EOPNOTSUPP;
}

int xbd_xs_read_str(struct xbd_platform *p, const char *path, char **value)
{
	return xbd_xs_read(p, XBD_XS_NO_TXN, path, value, NULL);
}

int xbd_xs_read_uint(struct xbd_platform *p, const char *path,
		     unsigned long long *v)
{
	char *s;
	int err = xbd_xs_read_str(p, path, &s);

	if (err)
		return err;
	if (xbd_parse_uint(s, UINT64_MAX, v))
		err = -EINVAL;
	free(s);
	return err;
}

int xbd_xs_directory_ids(struct xbd_platform *p, const char *path,
			 uint32_t max, uint32_t **ids, unsigned *count)
{
	char **names = NULL;
	unsigned n = 0, i, m = 0;
	uint32_t *out;
	int err;

	err = xbd_xs_directory(p, XBD_XS_NO_TXN, path, &names, &n);
	if (err)
		return err;
	out = calloc(n ? n : 1, sizeof(*out));
	for (i = 0; out && i < n; i++) {
		unsigned long long v;

		if (!xbd_parse_uint(names[i], max, &v))
			out[m++] = (uint32_t)v;
	}
	free(names);
	if (!out)
		return -ENOMEM;
	*ids = out;
	*count = m;
	return 0;
}

int xbd_xs_write_proc(struct xbd_platform *p, xbd_xs_txn t, const char *dir,
		      const struct xbd_proc *proc)
{
	char path[512];
	int err;

	snprintf(path, sizeof(path), "%s/" XBD_XS_PID_NODE, dir);
	err = xbd_xs_printf(p, t, path, "%ld", (long)proc->pid);
	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/" XBD_XS_PID_START_NODE, dir);
	return xbd_xs_printf(p, t, path, "%llu", proc->start);
}

int xbd_xs_read_proc(struct xbd_platform *p, const char *dir,
		     struct xbd_proc *proc)
{
	unsigned long long v;
	char path[512];
	int err;

	snprintf(path, sizeof(path), "%s/" XBD_XS_PID_NODE, dir);
	err = xbd_xs_read_uint(p, path, &v);
	if (err)
		return err;
	if (v == 0 || v > INT_MAX)
		return -EINVAL;
	proc->pid = (pid_t)v;
	snprintf(path, sizeof(path), "%s/" XBD_XS_PID_START_NODE, dir);
	if (xbd_xs_read_uint(p, path, &proc->start))
		proc->start = 0; /* an older xbd's record, or torn: unknown */
	return 0;
}

int xbd_xs_printf(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		  const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n, err;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	err = xbd_xs_write(p, t, path, s, (size_t)n);
	free(s);
	return err;
}

bool xbd_xs_exists(struct xbd_platform *p, xbd_xs_txn t, const char *path)
{
	char *v = NULL;
	int err = xbd_platform_ops_of(p)->xs_read(p, t, path, &v, NULL);

	free(v);
	return err != -ENOENT;
}

int xbd_xs_transaction(struct xbd_platform *p,
		       int (*fn)(struct xbd_platform *p, xbd_xs_txn t, void *arg),
		       void *arg)
{
	const struct xbd_platform_ops *ops = xbd_platform_ops_of(p);
	unsigned long long deadline = xbd_now_ns() + XBD_XS_TXN_MS * 1000000ull;
	unsigned tries;
	xbd_xs_txn t;
	int err = -EAGAIN;

	for (tries = 0; tries < XBD_XS_TXN_TRIES; tries++) {
		if (tries) {
			/* a growing pause, so that a writer looping on the
			 * same nodes does not win every race */
			struct timespec ts = { 0, (long)(tries < 20 ? tries : 20) * 1000000L };

			if (xbd_now_ns() >= deadline)
				break;
			nanosleep(&ts, NULL);
		}
		err = ops->xs_transaction_start(p, &t);
		if (err)
			return err;
		err = fn(p, t, arg);
		if (err) {
			ops->xs_transaction_end(p, t, true);
			return err;
		}
		err = ops->xs_transaction_end(p, t, false);
		if (err != -EAGAIN)
			return err;
	}
	return err;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The platform seam's private side, for its implementations only:
 * src/platform.c (the wrappers), src/platform_xen.c, src/platform_xs.c
 * and the sim's platform (src/sim/; the sim depends on libxbd, never the
 * reverse).  Callers use the wrappers in xbd/platform.h.
 *
 * The xenstore half is shared: the sim's xenstored speaks the real wire
 * protocol, so both platforms use one libxenstore-based implementation
 * (src/platform_xs.c) and differ only in how they connect.
 */
#ifndef XBD_PLATFORM_PRIV_H
#define XBD_PLATFORM_PRIV_H

#include "xbd/platform.h"

struct xs_handle;

/* One entry per wrapper of xbd/platform.h, which documents each.  The
 * wrappers have made the checks common to all implementations. */
struct xbd_platform_ops {
	const char *name; /* "xen" or "sim" */
	void (*close)(struct xbd_platform *p);

	uint16_t (*self_domid)(struct xbd_platform *p);

	/* --- grant sharing (frontend side, gntshr) --- */
	int (*share_pages)(struct xbd_platform *p, uint16_t domid,
			   unsigned count, bool writable, uint32_t *refs,
			   void **addr);
	int (*unshare_pages)(struct xbd_platform *p, void *addr,
			     unsigned count);

	/* --- grant mapping (backend side, gnttab) --- */
	int (*map_grants)(struct xbd_platform *p, uint16_t domid,
			  unsigned count, const uint32_t *refs, bool writable,
			  void **addr);
	int (*unmap_grants)(struct xbd_platform *p, void *addr,
			    unsigned count);
	int (*grant_copy)(struct xbd_platform *p, struct xbd_grant_copy *segs,
			  unsigned count);

	/* --- event channels --- */
	int (*evtchn_open)(struct xbd_platform *p, struct xbd_evtchn **out);
	void (*evtchn_close)(struct xbd_evtchn *e);
	int (*evtchn_fd)(struct xbd_evtchn *e);
	int (*evtchn_alloc_unbound)(struct xbd_evtchn *e, uint16_t remote_domid,
				    uint32_t *port);
	int (*evtchn_bind_interdomain)(struct xbd_evtchn *e,
				       uint16_t remote_domid,
				       uint32_t remote_port, uint32_t *port);
	int (*evtchn_unbind)(struct xbd_evtchn *e, uint32_t port);
	int (*evtchn_notify)(struct xbd_evtchn *e, uint32_t port);
	int (*evtchn_pending)(struct xbd_evtchn *e, uint32_t *port);
	int (*evtchn_unmask)(struct xbd_evtchn *e, uint32_t port);

	/* --- xenstore --- */
	int (*xs_read)(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		       char **value, size_t *len);
	int (*xs_write)(struct xbd_platform *p, xbd_xs_txn t, const char *path,
			const void *value, size_t len);
	int (*xs_mkdir)(struct xbd_platform *p, xbd_xs_txn t, const char *path);
	int (*xs_rm)(struct xbd_platform *p, xbd_xs_txn t, const char *path);
	int (*xs_directory)(struct xbd_platform *p, xbd_xs_txn t,
			    const char *path, char ***names, unsigned *count);
	int (*xs_get_perms)(struct xbd_platform *p, xbd_xs_txn t,
			    const char *path, struct xbd_xs_perm **perms,
			    unsigned *count);
	int (*xs_set_perms)(struct xbd_platform *p, xbd_xs_txn t,
			    const char *path, const struct xbd_xs_perm *perms,
			    unsigned count);
	int (*xs_watch)(struct xbd_platform *p, const char *path,
			const char *token);
	int (*xs_unwatch)(struct xbd_platform *p, const char *path,
			  const char *token);
	int (*xs_watch_fd)(struct xbd_platform *p);
	int (*xs_read_watch)(struct xbd_platform *p, char **path, char **token);
	int (*xs_transaction_start)(struct xbd_platform *p, xbd_xs_txn *t);
	int (*xs_transaction_end)(struct xbd_platform *p, xbd_xs_txn t,
				  bool abort);

	/* --- domains --- */
	int (*domain_lookup)(struct xbd_platform *p, const char *name,
			     uint16_t *domid);
	int (*domain_alive)(struct xbd_platform *p, uint16_t domid);
	int (*domain_list)(struct xbd_platform *p, struct xbd_domain_info **list,
			   unsigned *count);
	/* May be NULL (no pause).  As xbd_domain_paused, _pause and
	 * _unpause, which made sure domid is not ours. */
	int (*domain_paused)(struct xbd_platform *p, uint16_t domid);
	int (*domain_pause)(struct xbd_platform *p, uint16_t domid);
	int (*domain_unpause)(struct xbd_platform *p, uint16_t domid);
};

/* Every implementation's platform and event channel handles start
 * with this, so that the wrappers can reach the ops table. */
struct xbd_platform_base {
	const struct xbd_platform_ops *ops;
	struct xs_handle *xs; /* libxenstore connection (src/platform_xs.c) */
};
struct xbd_evtchn_base {
	const struct xbd_platform_ops *ops;
};

static inline const struct xbd_platform_ops *
xbd_platform_ops_of(struct xbd_platform *p)
{
	return ((struct xbd_platform_base *)p)->ops;
}

static inline const struct xbd_platform_ops *
xbd_evtchn_ops_of(struct xbd_evtchn *e)
{
	return ((struct xbd_evtchn_base *)e)->ops;
}

/* The xen implementation (src/platform_xen.c). */
int xbd_platform_xen_open(const struct xbd_platform_config *cfg,
			  struct xbd_platform **out);

/* --- src/platform_xs.c --- */
/* Connects with xs_open(); socket_path NULL means libxenstore's default
 * (xenstored socket or /dev/xen/xenbus), otherwise that Unix socket. */
int xbd_xs_connect(const char *socket_path, struct xs_handle **out);

/* The xenstore entries of an ops table.  Each platform keeps its
 * libxenstore connection in its base (xs, set at open time); these
 * reach it through xbd_platform_xs_handle(). */
struct xs_handle *xbd_platform_xs_handle(struct xbd_platform *p);

int xbd_xs_op_read(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		   char **value, size_t *len);
int xbd_xs_op_write(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		    const void *value, size_t len);
int xbd_xs_op_mkdir(struct xbd_platform *p, xbd_xs_txn t, const char *path);
int xbd_xs_op_rm(struct xbd_platform *p, xbd_xs_txn t, const char *path);
int xbd_xs_op_directory(struct xbd_platform *p, xbd_xs_txn t,
			const char *path, char ***names, unsigned *count);
int xbd_xs_op_get_perms(struct xbd_platform *p, xbd_xs_txn t,
			const char *path, struct xbd_xs_perm **perms,
			unsigned *count);
int xbd_xs_op_set_perms(struct xbd_platform *p, xbd_xs_txn t,
			const char *path, const struct xbd_xs_perm *perms,
			unsigned count);
int xbd_xs_op_watch(struct xbd_platform *p, const char *path,
		    const char *token);
int xbd_xs_op_unwatch(struct xbd_platform *p, const char *path,
		      const char *token);
int xbd_xs_op_watch_fd(struct xbd_platform *p);
int xbd_xs_op_read_watch(struct xbd_platform *p, char **path, char **token);
int xbd_xs_op_transaction_start(struct xbd_platform *p, xbd_xs_txn *t);
int xbd_xs_op_transaction_end(struct xbd_platform *p, xbd_xs_txn t,
			      bool abort);
/* Domain lookup by /local/domain/<id>/name, as xl does. */
int xbd_xs_op_domain_lookup(struct xbd_platform *p, const char *name,
			    uint16_t *domid);
int xbd_xs_op_domain_list(struct xbd_platform *p,
			  struct xbd_domain_info **list, unsigned *count);

/* Fills the xenstore and domain-lookup entries of an ops table. */
#define XBD_PLATFORM_XS_OPS                                   \
	.xs_read = xbd_xs_op_read,                            \
	.xs_write = xbd_xs_op_write,                          \
	.xs_mkdir = xbd_xs_op_mkdir,                          \
	.xs_rm = xbd_xs_op_rm,                                \
	.xs_directory = xbd_xs_op_directory,                  \
	.xs_get_perms = xbd_xs_op_get_perms,                  \
	.xs_set_perms = xbd_xs_op_set_perms,                  \
	.xs_watch = xbd_xs_op_watch,                          \
	.xs_unwatch = xbd_xs_op_unwatch,                      \
	.xs_watch_fd = xbd_xs_op_watch_fd,                    \
	.xs_read_watch = xbd_xs_op_read_watch,                \
	.xs_transaction_start = xbd_xs_op_transaction_start,  \
	.xs_transaction_end = xbd_xs_op_transaction_end,      \
	.domain_lookup = xbd_xs_op_domain_lookup,             \
	.domain_list = xbd_xs_op_domain_list

#endif

/*
 * The platform seam: everything xbd needs from Xen, as one ops table.
 *
 * Two implementations are chosen at run time: "xen" (thin wrappers over
 * libxengnttab/libxengntshr, libxenevtchn, libxenstore, libxenctrl) and
 * "sim" (the simulated hypervisor in src/sim_*.c).  Protocol code above
 * this line never knows which one it talks to.
 *
 * Conventions: every function returns 0 or a negative errno.  Strings and
 * arrays handed back are malloc'd and freed by the caller with free().
 */
#ifndef XBD_PLATFORM_H
#define XBD_PLATFORM_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define XBD_PAGE_SIZE 4096u
#define XBD_DOMID_SELF 0x7ff0u   /* DOMID_SELF, as in Xen */
#define XBD_DOMID_INVALID 0x7ff4u

struct xbd_platform;  /* opaque: one connection to Xen (or the sim) */
struct xbd_evtchn;    /* opaque: one event channel handle (own fd) */
struct xs_handle;

typedef uint32_t xbd_xs_txn;  /* 0 = no transaction */
#define XBD_XS_NO_TXN 0u

/* xenstore permission entry, as in xs_wire / xenstore_lib */
#define XBD_XS_PERM_NONE  0u
#define XBD_XS_PERM_READ  1u
#define XBD_XS_PERM_WRITE 2u
#define XBD_XS_PERM_BOTH  3u
struct xbd_xs_perm {
	uint16_t domid;
	uint8_t perms; /* XBD_XS_PERM_* */
};

/* One segment of a grant copy (as in xengnttab_grant_copy_segment_t,
 * restricted to what a block backend needs: one side is always a
 * grant ref of the peer, the other a local buffer). */
struct xbd_grant_copy {
	uint16_t domid;     /* peer owning the grant */
	uint32_t ref;
	uint16_t offset;    /* inside the granted page */
	uint16_t len;       /* offset + len <= XBD_PAGE_SIZE */
	bool to_grant;      /* true: local -> granted page (a read's data) */
	void *local;
	int16_t status;     /* out: 0 or a negative errno for this segment */
};

struct xbd_domain_info {
	uint16_t domid;
	char name[64];
};

struct xbd_platform_ops {
	const char *name; /* "xen" or "sim" */
	void (*close)(struct xbd_platform *p);

	/* Our own domain id (0 in dom0; a guest's id for a sim guest). */
	uint16_t (*self_domid)(struct xbd_platform *p);

	/* --- grant sharing (frontend side, gntshr) --- */
	/* Share `count` fresh zeroed pages with `domid`; they are mapped here
	 * contiguously at *addr and refs[i] names page i. */
	int (*share_pages)(struct xbd_platform *p, uint16_t domid,
			   unsigned count, bool writable, uint32_t *refs,
			   void **addr);
	/* Ends the grants of pages shared by share_pages (whole batch). A
	 * page the peer still maps stays alive until the peer unmaps it. */
	int (*unshare_pages)(struct xbd_platform *p, void *addr,
			     unsigned count);

	/* --- grant mapping (backend side, gnttab) --- */
	/* Map `count` grants of `domid` contiguously at *addr. Fails with
	 * -EINVAL for a bad ref, -EPERM for a grant not given to us or a
	 * write mapping of a read-only grant, -ESRCH for a dead domain. */
	int (*map_grants)(struct xbd_platform *p, uint16_t domid,
			  unsigned count, const uint32_t *refs, bool writable,
			  void **addr);
	int (*unmap_grants)(struct xbd_platform *p, void *addr,
			    unsigned count);
	/* Copy between local buffers and granted pages without mapping
	 * them.  Returns 0 if the batch was attempted; per-segment results
	 * are in segs[i].status. */
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
	/* Next pending port, now masked; -EAGAIN when none is pending. */
	int (*evtchn_pending)(struct xbd_evtchn *e, uint32_t *port);
	int (*evtchn_unmask)(struct xbd_evtchn *e, uint32_t port);

	/* --- xenstore --- */
	int (*xs_read)(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		       char **value, size_t *len);
	int (*xs_write)(struct xbd_platform *p, xbd_xs_txn t, const char *path,
			const void *value, size_t len);
	int (*xs_mkdir)(struct xbd_platform *p, xbd_xs_txn t, const char *path);
	int (*xs_rm)(struct xbd_platform *p, xbd_xs_txn t, const char *path);
	/* *names is one malloc'd block: an array of *count pointers
	 * followed by the strings; free(*names) frees all. */
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
	/* Next fired watch without blocking: -EAGAIN when none. */
	int (*xs_read_watch)(struct xbd_platform *p, char **path, char **token);
	int (*xs_transaction_start)(struct xbd_platform *p, xbd_xs_txn *t);
	/* Commit (abort=false) or abort. -EAGAIN: conflict, retry it. */
	int (*xs_transaction_end)(struct xbd_platform *p, xbd_xs_txn t,
				  bool abort);

	/* --- domains --- */
	int (*domain_lookup)(struct xbd_platform *p, const char *name,
			     uint16_t *domid);
	/* 1 alive, 0 gone (or dying), negative errno on failure. */
	int (*domain_alive)(struct xbd_platform *p, uint16_t domid);
	int (*domain_list)(struct xbd_platform *p, struct xbd_domain_info **list,
			   unsigned *count);
	/* May be NULL (the sim has no pause).  As xbd_domain_paused. */
	int (*domain_paused)(struct xbd_platform *p, uint16_t domid);
};

/* Every implementation's platform and event channel handles start
 * with this, so the wrappers below can reach the ops table. */
struct xbd_platform_base {
	const struct xbd_platform_ops *ops;
	struct xs_handle *xs; /* libxenstore connection (src/platform_xs.c) */
};
struct xbd_evtchn_base {
	const struct xbd_platform_ops *ops;
};

enum xbd_platform_kind { XBD_PLATFORM_AUTO, XBD_PLATFORM_XEN, XBD_PLATFORM_SIM };

struct xbd_platform_config {
	enum xbd_platform_kind kind;
	/* sim only: the state directory (NULL: $XBD_SIM_DIR or the
	 * default) and which domain this process acts as (0 = dom0). */
	const char *sim_dir;
	uint16_t sim_domid;
};

/* Resolves AUTO: $XBD_PLATFORM ("xen"/"sim"), else xen when
 * /proc/xen/capabilities exists, else sim. */
enum xbd_platform_kind xbd_platform_resolve(enum xbd_platform_kind kind);
int xbd_platform_parse_kind(const char *s, enum xbd_platform_kind *kind);
const char *xbd_sim_default_dir(void); /* $XBD_SIM_DIR or /run/xbd-sim */

int xbd_platform_open(const struct xbd_platform_config *cfg,
		      struct xbd_platform **out);
void xbd_platform_close(struct xbd_platform *p);

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

static inline int xbd_evtchn_notify(struct xbd_evtchn *e, uint32_t port)
{
	return xbd_evtchn_ops_of(e)->evtchn_notify(e, port);
}

/* Implementations (src/platform_xen.c, src/sim_platform.c). */
int xbd_platform_xen_open(const struct xbd_platform_config *cfg,
			  struct xbd_platform **out);
int xbd_platform_sim_open(const struct xbd_platform_config *cfg,
			  struct xbd_platform **out);

/* 1 when the domain's vCPUs cannot run (paused, or shut down and not
 * yet destroyed), 0 when it runs, -ESRCH when there is no such domain,
 * -EOPNOTSUPP when the platform cannot tell (the sim), or -errno. */
int xbd_domain_paused(struct xbd_platform *p, uint16_t domid);

/* Convenience wrappers over the xenstore ops (src/platform.c). */
int xbd_xs_read_str(struct xbd_platform *p, const char *path, char **value);
int xbd_xs_read_uint(struct xbd_platform *p, const char *path,
		     unsigned long long *v);
/* Runs fn(p, t, arg) in a transaction, again while the commit conflicts
 * (-EAGAIN).  A non-zero return from fn aborts the transaction and is
 * returned as it is. */
int xbd_xs_transaction(struct xbd_platform *p,
		       int (*fn)(struct xbd_platform *p, xbd_xs_txn t, void *arg),
		       void *arg);
int xbd_xs_printf(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The platform seam: everything xbd needs from Xen, as one ops table
 * behind the wrapper functions below; the table itself is private to
 * the implementations (src/platform_priv.h).
 *
 * Two implementations are chosen at run time: "xen" (thin wrappers over
 * libxengnttab/libxengntshr, libxenevtchn, libxenstore, libxenctrl) and
 * "sim" (the simulated hypervisor, src/sim/, its own library that libxbd
 * never links: a program hands it over with xbd_platform_set_sim()).
 * Protocol code above this line never knows which one it talks to.
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

enum xbd_platform_kind { XBD_PLATFORM_AUTO, XBD_PLATFORM_XEN, XBD_PLATFORM_SIM };

struct xbd_platform_config {
	enum xbd_platform_kind kind;
	/* sim only: the state directory (NULL: $XBD_SIM_DIR or the
	 * default) and which domain this process acts as (0 = dom0). */
	const char *sim_dir;
	uint16_t sim_domid;
};

/* Resolves AUTO: $XBD_PLATFORM ("xen"/"sim"), else sim when
 * $XBD_SIM_DIR is set, else xen when /proc/xen/capabilities exists,
 * else sim. */
enum xbd_platform_kind xbd_platform_resolve(enum xbd_platform_kind kind);
int xbd_platform_parse_kind(const char *s, enum xbd_platform_kind *kind);

/* How a platform is opened: the xen one is part of libxbd; the sim one
 * lives in libxbdsim.a (test infrastructure, never linked into libxbd),
 * so a program that may run on the sim passes its opener once, in
 * main() before any thread starts: xbd_platform_set_sim(
 * xbd_platform_sim_open).  Until then, opening the sim fails with
 * -ENOSYS. */
typedef int xbd_platform_open_fn(const struct xbd_platform_config *cfg,
				 struct xbd_platform **out);
void xbd_platform_set_sim(xbd_platform_open_fn *open);

int xbd_platform_open(const struct xbd_platform_config *cfg,
		      struct xbd_platform **out);
void xbd_platform_close(struct xbd_platform *p);

/*
 * The seam's calls.  Callers use only these; each forwards to the
 * platform's ops table, after the checks that hold for every
 * implementation, so that those are made once, here.
 */
const char *xbd_platform_name(struct xbd_platform *p); /* "xen" or "sim" */
/* Our own domain id (0 in dom0; a guest's id for a sim guest). */
uint16_t xbd_platform_self_domid(struct xbd_platform *p);

/* --- grant sharing (frontend side, gntshr) --- */
/* Share `count` (> 0) fresh zeroed pages with `domid`; they are mapped
 * here contiguously at *addr and refs[i] names page i. */
int xbd_share_pages(struct xbd_platform *p, uint16_t domid, unsigned count,
		    bool writable, uint32_t *refs, void **addr);
/* Ends the grants of pages shared by xbd_share_pages (whole batch).  A
 * page the peer still maps stays alive until the peer unmaps it. */
int xbd_unshare_pages(struct xbd_platform *p, void *addr, unsigned count);

/* --- grant mapping (backend side, gnttab) --- */
/* Map `count` (> 0) grants of `domid` contiguously at *addr.  Fails with
 * -EINVAL for a bad ref, -EPERM for a grant not given to us or a write
 * mapping of a read-only grant, -ESRCH for a dead domain. */
int xbd_map_grants(struct xbd_platform *p, uint16_t domid, unsigned count,
		   const uint32_t *refs, bool writable, void **addr);
int xbd_unmap_grants(struct xbd_platform *p, void *addr, unsigned count);
/* Copy between local buffers and granted pages without mapping them.
 * Returns 0 if the batch was attempted; per-segment results are in
 * segs[i].status. */
int xbd_copy_grants(struct xbd_platform *p, struct xbd_grant_copy *segs,
		    unsigned count);

/* --- event channels --- */
int xbd_evtchn_open(struct xbd_platform *p, struct xbd_evtchn **out);
void xbd_evtchn_close(struct xbd_evtchn *e);
int xbd_evtchn_fd(struct xbd_evtchn *e);
int xbd_evtchn_alloc_unbound(struct xbd_evtchn *e, uint16_t remote_domid,
			     uint32_t *port);
int xbd_evtchn_bind_interdomain(struct xbd_evtchn *e, uint16_t remote_domid,
				uint32_t remote_port, uint32_t *port);
int xbd_evtchn_unbind(struct xbd_evtchn *e, uint32_t port);
int xbd_evtchn_notify(struct xbd_evtchn *e, uint32_t port);
/* Next pending port, now masked; -EAGAIN when none is pending. */
int xbd_evtchn_pending(struct xbd_evtchn *e, uint32_t *port);
int xbd_evtchn_unmask(struct xbd_evtchn *e, uint32_t port);

/* --- xenstore --- */
/* len may be NULL; the value is NUL-terminated either way. */
int xbd_xs_read(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		char **value, size_t *len);
int xbd_xs_write(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		 const void *value, size_t len);
int xbd_xs_mkdir(struct xbd_platform *p, xbd_xs_txn t, const char *path);
int xbd_xs_rm(struct xbd_platform *p, xbd_xs_txn t, const char *path);
/* *names is one malloc'd block: an array of *count pointers followed by
 * the strings; free(*names) frees all. */
int xbd_xs_directory(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		     char ***names, unsigned *count);
int xbd_xs_get_perms(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		     struct xbd_xs_perm **perms, unsigned *count);
int xbd_xs_set_perms(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		     const struct xbd_xs_perm *perms, unsigned count);
int xbd_xs_watch(struct xbd_platform *p, const char *path, const char *token);
int xbd_xs_unwatch(struct xbd_platform *p, const char *path,
		   const char *token);
int xbd_xs_watch_fd(struct xbd_platform *p);
/* Next fired watch without blocking: -EAGAIN when none. */
int xbd_xs_read_watch(struct xbd_platform *p, char **path, char **token);
int xbd_xs_transaction_start(struct xbd_platform *p, xbd_xs_txn *t);
/* Commit (abort=false) or abort.  -EAGAIN: conflict, retry it. */
int xbd_xs_transaction_end(struct xbd_platform *p, xbd_xs_txn t, bool abort);

/* --- domains --- */
int xbd_domain_lookup(struct xbd_platform *p, const char *name,
		      uint16_t *domid);
/* 1 alive, 0 gone (or dying), negative errno on failure. */
int xbd_domain_alive(struct xbd_platform *p, uint16_t domid);
/* free(*list). */
int xbd_domain_list(struct xbd_platform *p, struct xbd_domain_info **list,
		    unsigned *count);
/* 1 when the domain's vCPUs cannot run (paused, or shut down and not
 * yet destroyed), 0 when it runs, -ESRCH when there is no such domain,
 * -EOPNOTSUPP when the platform cannot tell (the sim), or -errno. */
int xbd_domain_paused(struct xbd_platform *p, uint16_t domid);
/* Stops the domain's vCPUs, as `xl pause` does, and returns once they
 * are stopped: from then on the guest puts nothing new on its rings.
 * Pauses are counted (Xen's controller pause count), so each pause is
 * undone by one unpause and a pause somebody else made stays.
 * -ESRCH no such domain, -EINVAL our own domain, -EPERM not allowed,
 * -EOVERFLOW too many pauses; -EOPNOTSUPP when the platform cannot. */
int xbd_domain_pause(struct xbd_platform *p, uint16_t domid);
/* Undoes one xbd_domain_pause; -EINVAL when the domain is not paused. */
int xbd_domain_unpause(struct xbd_platform *p, uint16_t domid);

/* Convenience wrappers over the xenstore ops (src/platform.c). */
int xbd_xs_read_str(struct xbd_platform *p, const char *path, char **value);
int xbd_xs_read_uint(struct xbd_platform *p, const char *path,
		     unsigned long long *v);
/* The entries of directory path that are decimal numbers up to max
 * (domain or device ids), in xenstore's order; the others are skipped,
 * as a guest may write any name there.  *ids is freed by the caller. */
int xbd_xs_directory_ids(struct xbd_platform *p, const char *path,
			 uint32_t max, uint32_t **ids, unsigned *count);
/* Whether path exists (true too when it cannot be read for another
 * reason than absence: only -ENOENT proves it is not there). */
bool xbd_xs_exists(struct xbd_platform *p, xbd_xs_txn t, const char *path);
/* Runs fn(p, t, arg) in a transaction, again while the commit conflicts
 * (-EAGAIN), but at most XBD_XS_TXN_TRIES times and for XBD_XS_TXN_MS
 * (a guest rewriting its own nodes can make every commit conflict);
 * then -EAGAIN.  A non-zero return from fn aborts the transaction and
 * is returned as it is (a positive one lets fn stop without error). */
#define XBD_XS_TXN_TRIES 50
#define XBD_XS_TXN_MS 5000
int xbd_xs_transaction(struct xbd_platform *p,
		       int (*fn)(struct xbd_platform *p, xbd_xs_txn t, void *arg),
		       void *arg);
int xbd_xs_printf(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		  const char *fmt, ...) __attribute__((format(printf, 4, 5)));

/* The process that owns a device directory of xbd's: dir/xbd-pid holds
 * its PID (as ever, for the tools that read it) and dir/xbd-pid-start
 * its start time, so that a reused PID is never taken for it (see
 * struct xbd_proc).  Written in the caller's transaction; a directory
 * from before start times were kept reads as start 0 (unknown). */
#define XBD_XS_PID_NODE "xbd-pid"
#define XBD_XS_PID_START_NODE "xbd-pid-start"
struct xbd_proc;
int xbd_xs_write_proc(struct xbd_platform *p, xbd_xs_txn t, const char *dir,
		      const struct xbd_proc *proc);
/* -ENOENT without an xbd-pid; -EINVAL when it is not a PID. */
int xbd_xs_read_proc(struct xbd_platform *p, const char *dir,
		     struct xbd_proc *proc);

#endif

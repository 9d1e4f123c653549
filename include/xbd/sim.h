/*
 * The simulated hypervisor: layout of its state directory and the
 * interfaces between its parts.  The sim is test infrastructure that keeps
 * Xen's semantics (see ../shared/DESIGN.md, "sim").
 *
 * State directory (default /run/xbd-sim, or $XBD_SIM_DIR / --dir):
 *   pid                 the daemon's pid (xbd sim start)
 *   ctl.sock            the daemon's control socket (vm create/destroy/list, stop)
 *   xenstored.sock      xenstore, as dom0 (XENSTORED_PATH for xenstore-* tools)
 *   xs-dom<N>.sock      xenstore as guest domain N; exists while N is
 *                       introduced (INTRODUCE creates it, RELEASE removes it)
 *   domains             shared table of domains (ids, names, alive)
 *   ...                 grant tables, domain memory and event channel
 *                       state: private to src/sim_platform.c
 */
#ifndef XBD_SIM_H
#define XBD_SIM_H

#include <stdint.h>

#define XBD_SIM_XS_SOCKET "xenstored.sock"
#define XBD_SIM_CTL_SOCKET "ctl.sock"

/* --- src/sim_xenstored.c: the xenstore daemon --- */
struct sim_xenstored;

/* Listens on DIR/xenstored.sock (connections there are dom0) and serves
 * the xenstored wire protocol from its own thread until stopped. */
int sim_xenstored_start(const char *dir, struct sim_xenstored **out);
/* Closes every connection, removes the sockets, frees everything. */
void sim_xenstored_stop(struct sim_xenstored *xs);

/* --- src/sim_platform.c: the hypervisor's shared state --- */
/* A guest process of the sim finds its identity in the environment: the
 * daemon starts a domain's guest helper with these set, and
 * xbd_platform_sim_open() acts as $XBD_SIM_DOMID when cfg->sim_domid
 * is 0. */
#define XBD_SIM_DIR_ENV "XBD_SIM_DIR"
#define XBD_SIM_DOMID_ENV "XBD_SIM_DOMID"
#define XBD_SIM_NAME_MAX 63     /* longest domain name */
#define XBD_SIM_MAX_DOMAINS 256 /* live at once, dom0 included */
#define XBD_SIM_MAX_DOMID 0x7fefu /* DOMID_FIRST_RESERVED - 1 */

/* The daemon's side of the state files (domains table, per-domain grant
 * tables, memory and event channel ports).  Only the daemon calls these. */
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
/* Forgets a killed domain: its table slot and state files go. */
void sim_hv_domain_remove(struct sim_hv *hv, uint16_t domid);
/* An unbound port of domid for remote (e.g. the xenstore port). */
int sim_hv_alloc_unbound(struct sim_hv *hv, uint16_t domid, uint16_t remote,
			 uint32_t *port);

/* --- src/sim_daemon.c: the sim daemon and its control client --- */
struct xbd_domain_info;
/* Each prints one error line on failure and returns a negative errno. */
/* Starts a daemon on dir (created if missing), returns once it serves;
 * -EBUSY when a live sim already uses dir.  With owner_pid > 0 the
 * daemon also stops when that process exits (tests use it, so that a
 * crashed test leaves no sim behind). */
int xbd_sim_start(const char *dir, int owner_pid);
/* Destroys every domain, stops the daemon, waits until it is gone. */
int xbd_sim_stop(const char *dir);
/* Creates domain `name`.  guest_argv (NULL, or NULL-terminated) is run
 * as the domain's guest process, with XBD_SIM_DIR, XBD_SIM_DOMID and
 * XBD_PLATFORM=sim in its environment; destroy kills it. */
int xbd_sim_vm_create(const char *dir, const char *name,
		      char *const guest_argv[], uint16_t *domid);
/* name is a domain name or id; -ENOENT for an unknown one. */
int xbd_sim_vm_destroy(const char *dir, const char *name);
/* Domain-0 first; free(*list). */
int xbd_sim_vm_list(const char *dir, struct xbd_domain_info **list,
		    unsigned *count);

#endif

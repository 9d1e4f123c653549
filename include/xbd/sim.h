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

#endif

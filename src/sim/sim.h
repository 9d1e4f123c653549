/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The simulated hypervisor's public front (libxbdsim.a): what `xbd sim`,
 * xbdsh and the tests call, and the layout of its state directory.  The
 * sim is test infrastructure that keeps Xen's semantics (DESIGN.md,
 * "sim"); libxbd never includes this header, it reaches the sim only
 * through the hook xbd_platform_set_sim().
 *
 * State directory (default /run/xbd-sim, or $XBD_SIM_DIR / --dir):
 *   pid                 the daemon's pid (xbd sim start)
 *   ctl.sock            the daemon's control socket (vm create/destroy/list, stop)
 *   xenstored.sock      xenstore, as dom0 (XENSTORED_PATH for xenstore-* tools)
 *   xs-dom<N>.sock      xenstore as guest domain N; exists while N is
 *                       introduced (INTRODUCE creates it, RELEASE removes it)
 *   domains             shared table of domains (ids, names, alive)
 *   ...                 grant tables, domain memory and event channel
 *                       state: private to the sim platform (src/sim/)
 */
#ifndef XBD_SIM_H
#define XBD_SIM_H

#include "xbd/platform.h"

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#define XBD_SIM_XS_SOCKET "xenstored.sock"
#define XBD_SIM_CTL_SOCKET "ctl.sock"

/* --- the xenstore daemon --- */
struct sim_xenstored;

/* Listens on DIR/xenstored.sock (connections there are dom0) and serves
 * the xenstored wire protocol from its own thread until stopped. */
int sim_xenstored_start(const char *dir, struct sim_xenstored **out);
/* Closes every connection, removes the sockets, frees everything. */
void sim_xenstored_stop(struct sim_xenstored *xs);

/* --- the platform: grants, event channels, the hypervisor's state --- */
/* A guest process of the sim finds its identity in the environment: the
 * daemon starts a domain's guest helper with these set, and
 * xbd_platform_sim_open() acts as $XBD_SIM_DOMID when cfg->sim_domid
 * is 0. */
#define XBD_SIM_DIR_ENV "XBD_SIM_DIR"
#define XBD_SIM_DOMID_ENV "XBD_SIM_DOMID"
#define XBD_SIM_NAME_MAX 63     /* longest domain name */
#define XBD_SIM_MAX_DOMAINS 256 /* live at once, dom0 included */
#define XBD_SIM_MAX_DOMID 0x7fefu /* DOMID_FIRST_RESERVED - 1 */

/* Opens the sim platform: what a program that may run on the sim hands
 * to libxbd in main(), with xbd_platform_set_sim(). */
int xbd_platform_sim_open(const struct xbd_platform_config *cfg,
			  struct xbd_platform **out);
const char *xbd_sim_default_dir(void); /* $XBD_SIM_DIR or /run/xbd-sim */
/* The control sockets of this sim's xbd processes (DIR/run), unless
 * $XBD_RUN_DIR says otherwise (cli/common.c); removed at stop when
 * empty. */
#define XBD_SIM_RUN_SUBDIR "run"
/* $XBD_SIM_DOMID into *domid: 0 (*domid untouched when it is unset or
 * empty), or -EINVAL when it is not a domain id. */
int xbd_sim_domid_from_env(uint16_t *domid);

/* The calling guest's simulated vCPU (p acts as a guest domain): what
 * issues the guest's I/O runs between these two.  enter waits while the
 * domain is paused (a paused domain's vCPUs do not run) and holds a
 * pause off until exit, so that once xbd_domain_pause returns, nothing
 * new reaches the guest's rings.  enter: 0, or -ESRCH when the domain
 * died meanwhile. */
int xbd_sim_vcpu_enter(struct xbd_platform *p);
void xbd_sim_vcpu_exit(struct xbd_platform *p);

/* --- the sim daemon and its control client --- */
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

/* `xbd sim status` (sim_status.c): one line per live domain with the
 * grants (mapped, ending), frames and event channel ports it holds,
 * and one with the event FIFOs of the processes using the sim; with
 * verbose, each of them.  Read-only.  0, or -errno with one error line. */
int xbd_sim_status(const char *dir, bool verbose, FILE *out);

/* ------------------------------------------------------------------ */
/* The simulated guest (src/sim/sim_guest.c)                          */
/* ------------------------------------------------------------------ */

struct xbd_frontend;

/* A workload on one disk, in the manner of fio. */
enum xbd_workload_rw {
	XBD_WL_READ, XBD_WL_WRITE, XBD_WL_RANDREAD, XBD_WL_RANDWRITE,
	/* sequential writes, round and round the region, each block
	 * stamped with its write's sequence number (xbd_counter_fill) */
	XBD_WL_COUNTER,
};

struct xbd_workload {
	enum xbd_workload_rw rw;
	uint32_t bs;      /* bytes per I/O, a multiple of the sector size */
	unsigned qd;      /* I/Os in flight */
	uint64_t size;    /* region [0, size) of the disk; 0: all of it.
			   * Without `seconds`, also the bytes to transfer */
	double seconds;   /* > 0: run this long instead */
	bool verify;      /* reads check the pattern */
	uint64_t seed;    /* of the pattern written (and checked) */
	/* > 0: writes flush the disk after every this many writes (and at
	 * the end), once every write issued before has completed */
	unsigned flush_every;
	/* the guest's own platform: I/O is issued only while its domain
	 * is not paused (xbd_sim_vcpu_enter); NULL: regardless */
	struct xbd_platform *vcpu;
};

struct xbd_workload_result {
	uint64_t bytes, ios;
	/* with flush_every: the writes (the first this many of the
	 * workload's order) that a completed flush covers, even when the
	 * workload failed later */
	uint64_t flushed;
	double seconds;
	char error[160];  /* why it failed, when it did */
};

/* Parses "read", "write", "randread", "randwrite". */
int xbd_workload_parse_rw(const char *s, enum xbd_workload_rw *rw);
const char *xbd_workload_rw_name(enum xbd_workload_rw rw);

/* The verifiable pattern: every 512-byte sector names itself.  Bytes
 * 0-7 "xbdpat01", 8-15 the seed and 16-23 the sector number (both
 * little-endian), 24-511 the byte (seed + 7 * sector + 1) & 0xff. */
void xbd_pattern_fill(void *buf, size_t len, uint64_t offset, uint64_t seed);
/* -1 when it matches, else the byte offset (inside buf) of the first
 * sector that does not. */
long long xbd_pattern_check(const void *buf, size_t len, uint64_t offset,
			    uint64_t seed);

/* The counter pattern: write number seq (0, 1, ...) goes to block
 * seq % blocks of the region, and each of its 512-byte sectors holds
 * bytes 0-7 "xbdcnt01", 8-15 seq, 16-23 the block number, 24-31 the
 * sector's number on the disk (little-endian), 32-511 the byte seq &
 * 0xff.  A copy of the region is one moment of the guest's writes when
 * every block holds the last write to it of seqs 0..M, M being the
 * highest seq in the copy (and blocks beyond M none). */
void xbd_counter_fill(void *buf, size_t len, uint64_t offset, uint64_t seq,
		      uint64_t block);

/* Runs a workload on a connected frontend.  0, or -errno with
 * res->error saying why (-EILSEQ: verification failed). */
int xbd_workload_run(struct xbd_frontend *fe, const struct xbd_workload *w,
		     struct xbd_workload_result *res);

/*
 * `xbd sim guest`: acts as sim domain `domid` the way a Linux guest's
 * blkfront does: connects every disk that appears in its device/vbd,
 * closes it when the backend closes, and serves workload requests on
 * SIM_DIR/guest-<domid>.sock.  Returns on SIGTERM or SIGINT, with every
 * disk closed properly.
 */
int xbd_sim_guest_run(uint16_t domid);
#define XBD_SIM_GUEST_SOCKET "guest-%u.sock"

/* `xbd sim vm io`: asks VM's guest to run w on vdev (waiting up to 10 s
 * for the disk to connect).  Prints one error line on failure. */
int xbd_sim_vm_io(const char *vm, const char *vdev,
		  const struct xbd_workload *w, struct xbd_workload_result *res);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xbdsh internals: the model of "every disk of a VM" built from xenstore,
 * the xbd control sockets, blkback's sysfs counters and read-only ring
 * looks (cli/sh_model.c); its renderings as text, JSON and Prometheus
 * (cli/sh_output.c); the commands (cli/sh_cmds.c); and the interactive
 * shell (cli/sh_repl.c).
 */
#ifndef XBD_SH_H
#define XBD_SH_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "xbd/blkback_sysfs.h"
#include "xbd/ctl.h"
#include "xbd/platform.h"
#include "xbd/stats.h"

struct json_object;

/* Options and lazily opened connections, for one xbdsh process. */
struct sh_ctx {
	enum xbd_platform_kind platform_kind;
	const char *sysfs_root;    /* NULL: /sys */
	const char *run_dir;       /* NULL: $XBD_RUN_DIR or /run/xbd */
	bool xbd_only;             /* no xenstore: xbd processes only */
	bool interactive;          /* the shell on a terminal */
	struct xbd_platform *platform; /* opened on first use */
	int platform_err;          /* the open's error, reported once */
};

/* Opens the platform on first use; prints one error line on failure. */
int sh_platform(struct sh_ctx *ctx, struct xbd_platform **p);
void sh_ctx_close(struct sh_ctx *ctx);

/* Latency of one operation, from an xbd device. */
struct sh_latency {
	uint64_t count, total_ns, max_ns, p50_ns, p90_ns, p99_ns, p999_ns;
	uint64_t buckets[XBD_LAT_BUCKETS]; /* as include/xbd/stats.h */
};

/* One request in flight, from whichever source could see it. */
struct sh_request {
	uint64_t id;
	const char *op;     /* static string */
	bool indirect;
	unsigned nr_segments;
	uint64_t sector;
	int64_t age_ns;     /* -1: unknown */
};

/* One disk of a VM, whichever backend serves it. */
struct sh_disk {
	char vm[64];
	uint16_t domid;
	char vdev[24];
	char name[40];           /* what commands accept: vdev, or
				  * "xvda@attach" for dom0's attach of it */
	uint32_t devid;
	char backend[16];        /* "xbd", "blkback", "qdisk", "tapdisk", "unknown" */
	int backend_domid;       /* -1 unknown */
	char role[8];            /* "guest" or "attach" */
	char state[16];          /* XenbusState name of the frontend */
	char frontend_path[64];
	char backend_path[128];
	char params[256];
	bool read_only;
	uint64_t sectors;        /* 0 unknown */
	pid_t xbd_pid;           /* the xbd process serving it, 0 none */

	bool have_counters;
	struct xbd_blkback_counters c;
	/* Where c came from: "xbd" (the serving process), "sysfs"
	 * (blkback), or another source that knows a backend xbd cannot
	 * ask itself (a qdisk's QEMU over QMP: sh_disk_other_source()).
	 * NULL without counters. */
	const char *counter_source;
	bool have_in_flight;
	uint64_t in_flight;
	bool have_ring;
	const char *ring_source; /* "xbd" or "mapped" */
	unsigned nr_ents;
	uint32_t req_prod, req_event, rsp_prod, rsp_event, used;
	bool have_latency;
	struct sh_latency lat[XBD_OP_COUNT];
	/* `ring` command only */
	unsigned nr_requests, total_requests;
	struct sh_request *requests; /* malloc'd */

	struct json_object *xbd; /* xbd: the device's control-socket entry */
	char note[200];          /* why something is missing */
	bool failed;             /* the note is an error, not a limitation */
};

/* Every disk of one VM at one moment. */
struct sh_sample {
	char vm[64];
	uint16_t domid;
	uint64_t time_ns;
	struct sh_disk *disks;
	unsigned n;
};

/* What the control sockets answered, fetched once per refresh. */
struct sh_xbd {
	struct xbd_ctl_reply *replies;
	unsigned n;
	unsigned unreachable;  /* processes gone or not answering */
	char problems[8][160]; /* one line each, for the first eight */
};

/* A VM known to xenstore or to an xbd process. */
struct sh_vm {
	char name[64];
	uint16_t domid;
};

/* --- cli/sh_model.c --- */
/* Asks every xbd process (request "stats" or "ring").  A process that
 * is gone or does not answer is noted in x->problems (and the socket of
 * a process that no longer exists is removed).  0, or a negative errno
 * (line printed) when the run directory cannot be read. */
int sh_xbd_fetch(struct sh_ctx *ctx, const char *request, struct sh_xbd *x);
/* Adds from's problems that `to` does not have yet. */
void sh_xbd_merge_problems(struct sh_xbd *to, const struct sh_xbd *from);
/* Prints x->problems, one "xbdsh: ..." line each. */
void sh_xbd_report(const struct sh_xbd *x);
void sh_xbd_free(struct sh_xbd *x);
/* The VM named (a name, or a domain id): -ENOENT with a line printed. */
int sh_vm_resolve(struct sh_ctx *ctx, const struct sh_xbd *x, const char *vm,
		  struct sh_vm *out);
/* Every VM, sorted by domain id. */
int sh_vm_list(struct sh_ctx *ctx, const struct sh_xbd *x, struct sh_vm **vms,
	       unsigned *count);
/* Every disk of vm.  with_ring: also the requests in flight (needs x
 * fetched with "ring").  Disks whose numbers cannot be read carry a
 * note; returns 1 when one of them failed (sh_sample_report prints
 * those), a negative errno (line printed) when the VM's disks cannot be
 * listed at all. */
int sh_sample_take(struct sh_ctx *ctx, const struct sh_xbd *x,
		   const struct sh_vm *vm, bool with_ring, struct sh_sample *s);
void sh_sample_report(const struct sh_sample *s);
void sh_sample_free(struct sh_sample *s);
/* The disk of s with that name ("xvda", "xvda@attach") or vdev (or
 * devid), or NULL. */
struct sh_disk *sh_sample_find(struct sh_sample *s, const char *disk);
/* Who serves the disk: "xbd-serve", "xbd-attach", "blkback", "qdisk",
 * "tapdisk" or "unknown". */
const char *sh_disk_server(const struct sh_disk *d);

/* --- cli/sh_output.c --- */
/* Human units: "850ns", "32.8us", "1.20ms", "2.50s"; "1.0G". */
void sh_fmt_ns(char *buf, size_t len, uint64_t ns);
void sh_fmt_size(char *buf, size_t len, uint64_t bytes);
/* One block per disk; rates against prev (NULL: none yet). */
void sh_print_stats(FILE *f, const struct sh_sample *s,
		    const struct sh_sample *prev);
/* The xbdsh document (packaging/xbd-stats-json.md), one line. */
void sh_print_json(FILE *f, const struct sh_sample *s,
		   const struct sh_sample *prev);
/* Prometheus text exposition of several VMs' samples. */
void sh_print_prometheus(FILE *f, const struct sh_sample *s, unsigned n,
			 unsigned unreachable_processes);
void sh_print_ring(FILE *f, const struct sh_sample *s, const struct sh_disk *d);
void sh_print_list(FILE *f, struct sh_sample *s, unsigned n);
/* The same as one JSON document (packaging/xbd-stats-json.md). */
void sh_print_list_json(FILE *f, struct sh_sample *s, unsigned n);

/* --- cli/sh_cmds.c --- */
/* Runs one command line's words; returns the exit status (0, 1, 2). */
int sh_run_command(struct sh_ctx *ctx, int argc, char **argv);
/* Names of the commands (NULL-terminated), for help and completion. */
extern const char *const sh_command_names[];
/* Which argument of a command is a VM / a disk (0: none). */
void sh_command_args(const char *cmd, int *vm_arg, int *disk_arg);

/* --- cli/sh_top.c --- */
/* `top`: every disk of the host, refreshed; the exit status. */
int sh_cmd_top(struct sh_ctx *ctx, int argc, char **argv);

/* --- cli/sh_repl.c --- */
/* The shell: readline on a terminal, plain lines otherwise. */
int sh_repl(struct sh_ctx *ctx);
/* True once a key was pressed (terminal) or input arrived / ended
 * (otherwise), waiting at most timeout_ms; the key is consumed on a
 * terminal, left for the next command otherwise. */
bool sh_wait_key(int timeout_ms);
/* Whether input on stdin ends a refreshing view (a tty, or piped
 * shell commands), rather than only -n or a signal. */
bool sh_watch_stops_on_input(void);
/* Set by SIGINT/SIGTERM; the watch loop and the shell check it. */
extern volatile int sh_interrupted;
void sh_install_signals(void);
/* A command (or one refresh of a view) that takes longer than this is
 * stuck: one line and exit 1.  Armed while working, not while waiting
 * for the user. */
#define SH_DEADLINE_S 20
#define XBD_SH_STR_(x) #x
#define XBD_SH_STR(x) XBD_SH_STR_(x)
void sh_watchdog(bool on);

#endif

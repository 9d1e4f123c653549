/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket: how an xbd process (`xbd serve`, `xbd attach`) shows
 * its devices' statistics to xbdsh.
 *
 * Server side: a process starts one server (xbd_ctl_start), which listens
 * on RUN_DIR/xbd-<pid>.sock (RUN_DIR is $XBD_RUN_DIR or /run/xbd, mode
 * 0700; the socket is 0600) from its own thread, serving several clients
 * at once so that a slow one never delays another.  Each device registers a
 * descriptor with xbd_ctl_add_device and unregisters before it goes away.
 * A client sends one request line and gets one JSON document back
 * (packaging/xbd-stats-json.md documents every field):
 *   "stats\n"  counters, features and ring indices of every device
 *   "ring\n"   the same, plus the list of requests in flight
 *
 * Client side: xbd_ctl_query_all asks every socket in the run directory
 * at once and never waits longer than its timeout; a dead process (stale
 * socket) is reported as gone, not waited for.
 */
#ifndef XBD_CTL_H
#define XBD_CTL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

#include "xbd/ring.h"

struct xbd_stats;
struct json_object;

#define XBD_CTL_VERSION 1             /* "version" of the JSON document */
#define XBD_CTL_DEFAULT_RUN_DIR "/run/xbd"
#define XBD_CTL_TIMEOUT_MS 1000       /* client: whole query, all sockets */
#define XBD_CTL_INFLIGHT_UNKNOWN (~0u)
/* Server: connections served at once.  One more drops the oldest, so a
 * few silent clients cannot lock the others out; each connection has
 * 2 s from accept to the last byte of its answer. */
#define XBD_CTL_MAX_CLIENTS 16

enum xbd_ctl_role {
	XBD_CTL_SERVE,  /* we are the backend: `xbd serve` */
	XBD_CTL_ATTACH, /* we are the frontend: `xbd attach` */
};

/* Negotiated features.  Zero / false / "" when not (yet) negotiated. */
struct xbd_ctl_features {
	unsigned ring_pages;            /* 1 << ring-page-order */
	bool persistent;                /* feature-persistent in use */
	unsigned max_indirect_segments; /* 0: no indirect requests */
	bool flush, barrier, discard;   /* feature-flush-cache, -barrier, -discard */
	char protocol[24];              /* "x86_64-abi", "x86_32-abi" */
};


/* One request in flight, for `xbdsh ring`. */
struct xbd_ctl_request {
	uint64_t id;          /* the frontend's request id */
	uint8_t op;           /* BLKIF_OP_* (an indirect request's real op) */
	bool indirect;
	uint16_t nr_segments;
	uint64_t sector;      /* 512-byte units */
	uint64_t start_ns;    /* xbd_now_ns() when taken; 0 unknown */
};

/* What a query callback fills.  Before the call, sectors, sector_size
 * and features hold the descriptor's values; the callback overwrites what
 * it knows better (a frontend learns the size at connection). */
struct xbd_ctl_state {
	unsigned xenbus_state;  /* XenbusState (1..6); 0 unknown */
	uint64_t sectors;
	unsigned sector_size;
	struct xbd_ctl_features features;
	/* Ring indices as the device sees them, filled by the ring's own
	 * state function; nr_ents == 0: no ring mapped. */
	struct xbd_blkif_ring_state ring;
	/* In-flight list, only for the "ring" request (else inflight is
	 * NULL): write at most inflight_cap entries, set inflight_len to
	 * the number written and inflight_total to the number in flight.
	 * A callback that leaves inflight_total alone (it comes in as
	 * XBD_CTL_INFLIGHT_UNKNOWN) says it cannot list them. */
	struct xbd_ctl_request *inflight;
	unsigned inflight_cap;
	unsigned inflight_len;
	unsigned inflight_total;
};

/*
 * Called from the control thread, concurrently with the data path, with
 * the server's device lock held: it must be quick, must not block on the
 * data path for long, and must not call xbd_ctl_* functions.  Read the
 * ring's indices with the ring's own state function; walk the in-flight
 * table under whatever lock already protects it.  Never called after
 * xbd_ctl_remove_device returns.
 */
typedef void (*xbd_ctl_query_fn)(void *opaque, struct xbd_ctl_state *st);

/* A device's identity.  Strings are copied at registration; NULL means
 * unknown / not applicable. */
struct xbd_ctl_device {
	const char *vm;            /* the guest's name */
	uint16_t domid;            /* the guest's domain id */
	const char *vdev;          /* "xvdb" */
	uint32_t devid;            /* xenstore device id (51728) */
	enum xbd_ctl_role role;
	const char *backend;       /* kind of backend: "xbd" when serving;
				    * for attach, the peer's ("blkback", ...) */
	const char *image;         /* serve: image path */
	const char *image_format;  /* serve: "raw", "cow", "null" */
	const char *frontend_path; /* xenstore frontend directory */
	const char *backend_path;  /* xenstore backend directory */
	const char *mount;         /* FUSE path of the disk, if exported */
	bool read_only;
	uint64_t sectors;          /* disk size, 512-byte units */
	unsigned sector_size;      /* logical sector size, 512 or 4096 */
	struct xbd_ctl_features features;
	struct xbd_stats *stats;   /* required; must outlive the registration */
	xbd_ctl_query_fn query;    /* may be NULL: no ring / state info */
	void *opaque;              /* passed to query */
};

struct xbd_ctl;      /* opaque: one server */
struct xbd_ctl_dev;  /* opaque: one registration */

/* $XBD_RUN_DIR, else /run/xbd. */
const char *xbd_ctl_run_dir(void);

/* Creates the run directory if needed (0700; an existing one must be a
 * real directory owned by us and not writable by others), removes stale
 * sockets of dead xbd processes, listens on xbd-<pid>.sock (0600; its
 * start time, struct xbd_proc's, in xbd-<pid>.start beside it) and
 * serves it from a thread.  Only root or our own uid may connect. */
int xbd_ctl_start(struct xbd_ctl **out);
/* Stops the thread, removes the socket.  Devices still registered are
 * dropped (their callbacks are not called again).  NULL is a no-op. */
void xbd_ctl_stop(struct xbd_ctl *ctl);
const char *xbd_ctl_socket_path(const struct xbd_ctl *ctl);

/* Registers a device; -EINVAL without stats.  Thread-safe. */
int xbd_ctl_add_device(struct xbd_ctl *ctl, const struct xbd_ctl_device *desc,
		       struct xbd_ctl_dev **out);
/* Unregisters (waits for a query in progress).  NULL dev is a no-op. */
void xbd_ctl_remove_device(struct xbd_ctl *ctl, struct xbd_ctl_dev *dev);

/* The JSON document the server answers "stats" with (with_inflight:
 * "ring"), for a process that wants to print or log it itself.  The
 * caller frees it with json_object_put(). */
struct json_object *xbd_ctl_build_doc(struct xbd_ctl *ctl, bool with_inflight);

/* --- client --- */
struct xbd_ctl_reply {
	char *socket;             /* path of the socket asked */
	pid_t pid;                /* from the socket's name; 0 unknown */
	unsigned long long start; /* its start time (struct xbd_proc); 0 unknown */
	/* 0: doc is the answer.  -ECONNREFUSED / -ENOENT: the process is
	 * gone (stale socket); -ETIMEDOUT: it did not answer in time;
	 * -EACCES: not allowed; -EPROTO: not a document we understand. */
	int err;
	struct json_object *doc;  /* owned; NULL unless err == 0 */
};

/* Sends `request` (e.g. "stats") to every xbd-*.sock in run_dir (NULL:
 * xbd_ctl_run_dir()) in parallel, waiting at most timeout_ms in all.
 * A missing run directory is not an error: no xbd process runs. */
int xbd_ctl_query_all(const char *run_dir, const char *request,
		      int timeout_ms, struct xbd_ctl_reply **replies,
		      unsigned *count);
/* One socket; *doc on success.  Same error codes as a reply's err. */
int xbd_ctl_query(const char *socket_path, const char *request,
		  int timeout_ms, struct json_object **doc);
void xbd_ctl_replies_free(struct xbd_ctl_reply *replies, unsigned count);

/* --- reading a reply ---
 * A reply is another process's word: any field may be missing, null or
 * of another type than documented, and each of these is "unknown" to
 * the accessors below, which never crash on any document.  dotted names
 * a field through nested objects ("latency.read.count"); NULL is o
 * itself.  Every consumer of a reply reads it through these. */
/* The field (any type), or NULL when missing or null. */
struct json_object *xbd_ctl_get(struct json_object *o, const char *dotted);
/* The field when it is an object / an array, else NULL. */
struct json_object *xbd_ctl_get_object(struct json_object *o,
				       const char *dotted);
struct json_object *xbd_ctl_get_array(struct json_object *o,
				      const char *dotted);
/* The field when it is a string, else NULL. */
const char *xbd_ctl_get_str(struct json_object *o, const char *dotted);
/* The field when it is an integer >= 0 (*known true); else 0 (*known
 * false).  known may be NULL. */
uint64_t xbd_ctl_get_u64(struct json_object *o, const char *dotted,
			 bool *known);
/* The field when it is a boolean (*known true); else false. */
bool xbd_ctl_get_bool(struct json_object *o, const char *dotted, bool *known);

/* Name of a BLKIF_OP_* operation byte ("read", "write", "barrier",
 * "flush", "discard", "indirect"); "unknown" otherwise. */
const char *xbd_ctl_blkif_op_name(unsigned op);

#endif

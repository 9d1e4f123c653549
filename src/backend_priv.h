/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Insides of the backend shared by its two halves: src/backend.c (the
 * xenbus side: nodes, states, the event loop) and src/backend_io.c (the
 * data path: rings, grants, image I/O threads).
 */
#ifndef XBD_BACKEND_PRIV_H
#define XBD_BACKEND_PRIV_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/uio.h>
#include <xen/io/xenbus.h>

#include "xbd/backend.h"
#include "xbd/image.h"
#include "xbd/ring.h"
#include "xbd/stats.h"
#include "xbd/util.h"

#define BE_PATH_MAX 160
/* Requests one queue has taken off its ring and not yet answered. */
#define BE_MAX_INFLIGHT 128
/* Bounce buffers (for grant copy) one queue may hold at once. */
#define BE_BOUNCE_BUDGET (32u << 20)
/* Reads up to this size are tried on the queue thread first when the
 * image can read without waiting (from the page cache): no hand-off to a
 * worker and back.  Larger ones go to the workers, which copy in
 * parallel and never hold up the ring for long. */
#define BE_INLINE_READ_MAX (64u << 10)
/* Answers one queue counts in its device's stats at once (at the push,
 * with one clock read); more answers than this before a push push early. */
#define BE_STATS_BATCH 64

struct be_queue;
struct be_dev;
struct xbd_ctl_state;

#define PUB_BUSY (1u << 31)
#define PUB_INDIRECT (1u << 30)

/* One request between being taken off the ring and being answered. */
struct be_req {
	struct be_queue *q;
	struct be_req *next;          /* free, job or completion list */
	struct xbd_blkif_request req; /* the validated copy */
	const struct xbd_blkif_seg *segs; /* req.seg or ind_segs */
	struct xbd_blkif_seg *ind_segs;   /* room for max_indirect_segs */
	struct iovec *iov;            /* the data, in disk order */
	int iovcnt;
	struct xbd_grant_copy *copies; /* segments not persistently mapped */
	unsigned ncopies;
	uint8_t *bounce;              /* local side of the copies */
	size_t bounce_cap;
	enum xbd_stat_op stat_op;
	int16_t status;
	/* the request as the control socket shows it while in flight;
	 * pub_meta 0: not in flight, else PUB_BUSY | op << 16 | segments */
	_Atomic uint32_t pub_meta;
	_Atomic uint64_t pub_id, pub_sector, pub_start;
	bool counted;                 /* in the device's in-flight count */
	int err_kind;                 /* enum xbd_stat_error, or -1 */
	uint64_t t0;
};

/* A persistently mapped grant (feature-persistent). */
struct be_pgrant {
	uint32_t gref;
	bool used;
	bool writable;
	void *addr;
};

struct be_queue {
	struct be_dev *dev;
	unsigned index;
	/* what the frontend published for this queue */
	unsigned nr_ring_pages;
	uint32_t ring_refs[XBD_RING_MAX_PAGES];
	uint32_t remote_port;
	/* mapped / bound */
	void *ring_mem;
	struct xbd_blkif_back ring;
	struct xbd_evtchn *evtchn;
	uint32_t local_port;
	bool port_bound;
	int wake_fd;                  /* eventfd: completions and stop */
	bool try_nowait;              /* xbd_image_try_preadv_nowait works */
	pthread_t thread;
	bool thread_started;
	atomic_bool stop;
	atomic_bool broken;
	/* requests (queue thread only, except the completion list) */
	struct be_req *slots;
	unsigned nslots;
	struct be_req *free;
	unsigned inflight;            /* taken, not yet answered */
	unsigned dispatched;          /* handed to I/O, not completed */
	struct be_req *held;          /* taken, waiting (barrier, memory) */
	bool barrier_running;
	size_t bounce_bytes;
	pthread_mutex_t done_lock;
	struct be_req *done;          /* completed by workers */
	/* persistent grants: open-addressing table keyed by gref */
	struct be_pgrant *pg;
	unsigned pg_size;             /* power of two, > 2 * pg_max */
	unsigned pg_count, pg_max;
	unsigned answered;            /* responses since the last push */
	/* answered OKAY since the last push: completed in the stats just
	 * before the push, all with one end time */
	struct xbd_stats_done unpushed[BE_STATS_BATCH];
	unsigned nunpushed;
	/* taken since the stats last saw them: put in flight once per
	 * batch (flush_taken), always before any of them leaves it */
	unsigned taken_uncounted;
	/* indirect pages copied in (non-persistent frontends) */
	void *ind_pages;
};

struct be_dev {
	struct xbd_backend *be;
	struct be_dev *next;
	unsigned serial;
	bool hotplugged;       /* ours from end to end: we remove the nodes */
	char type[16];
	uint16_t fe_domid;
	uint32_t devid;
	char vdev[16];
	char *vm_name;
	char be_path[BE_PATH_MAX];
	char fe_path[BE_PATH_MAX];
	char token[32];
	bool fe_watched, be_watched;
	struct xbd_image *image;
	char *image_path;
	char *image_format;
	bool read_only;
	char *mount;
	struct xbd_blkif_limits lim;
	struct xbd_stats stats;

	/* xenbus */
	enum xenbus_state state;     /* what we published */
	enum xenbus_state fe_state;  /* the frontend's, last read */
	bool fe_seen;
	bool failed;                 /* a fatal error: wait for the frontend */
	bool closing;                /* detaching / stopping */
	bool ever_connected;
	uint64_t close_deadline_ns;
	bool removed;
	bool vm_gone;                /* its domain died */
	bool made_be_root;           /* we created .../backend */
	bool made_fe_vbd;            /* we created .../device/vbd */

	/* negotiated at connection */
	bool connected;
	unsigned nr_queues;
	unsigned ring_order;
	bool persistent;
	enum xbd_blkif_abi abi;
	struct be_queue *queues;

	/* image I/O workers */
	pthread_t *workers;
	unsigned nworkers;
	pthread_mutex_t job_lock;
	pthread_cond_t job_cond;
	struct be_req *job_head, *job_tail;
	bool workers_stop;

	struct xbd_ctl_dev *ctl_dev;
	pthread_mutex_t lock;        /* connection state vs ctl queries */
};

struct xbd_backend {
	struct xbd_platform *p;
	struct xbd_backend_params params;
	uint16_t self;
	struct xbd_proc proc;        /* this process, as xbd-pid records it */
	struct be_dev *devs;
	unsigned next_serial;
	int wake_fd;                 /* eventfd: stop, broken rings */
	atomic_bool stop_requested;
	bool stopping;
	char type_dir[BE_PATH_MAX];  /* watched type dir (blkback), or "" */
	char watch_type[16];
	bool release_watched;
	struct xbd_ctl *ctl;
	xbd_backend_event_fn event_fn;
	void *event_opaque;
};

/* --- src/backend_io.c --- */
/* Maps every queue's ring, binds its event channel and starts its
 * thread and the device's workers.  The queues' ring_refs /
 * remote_port / nr_ring_pages and the device's negotiated fields are
 * filled.  On failure everything is undone; *why names the step. */
int xbd_be_io_start(struct be_dev *d, const char **why);
/* Stops taking requests, finishes the ones in flight (answering them
 * while the ring is usable), joins the threads, unmaps every grant and
 * closes the event channels.  Idempotent. */
void xbd_be_io_stop(struct be_dev *d);
/* True when a queue saw its frontend break the ring. */
bool xbd_be_io_broken(struct be_dev *d);
/* Ring indices of queue 0 for the control socket (zero if none). */
void xbd_be_io_ring_state(struct be_dev *d, struct xbd_blkif_ring_state *st);
/* The requests in flight, for the control socket's "ring" request. */
void xbd_be_io_inflight(struct be_dev *d, struct xbd_ctl_state *st);

/* The watch token of the backend/<type> directories. */
#define XBD_BE_TOKEN_TYPE "xbd-be-type"
#define XBD_BE_MAX_GUEST_DOMID 0x7fefu /* DOMID_FIRST_RESERVED - 1 */

/* The xenbus half (src/backend.c), for src/backend_devices.c. */
int xbd_be_read_node(struct xbd_backend *be, const char *dir, const char *node,
		     char **value);
int xbd_be_read_uint_node(struct xbd_backend *be, const char *dir,
			  const char *node, unsigned long long *v);
int xbd_be_write_node(struct xbd_backend *be, xbd_xs_txn t, const char *dir,
		      const char *node, const char *fmt, ...)
	__attribute__((format(printf, 5, 6)));
const char *xbd_be_dev_label(const struct be_dev *d);
void xbd_be_ctl_register(struct be_dev *d);
struct be_dev *xbd_be_dev_new(struct xbd_backend *be, const char *type,
			      uint16_t fe, uint32_t devid);
void xbd_be_set_limits(struct xbd_backend *be, struct be_dev *d);
int xbd_be_write_features(struct be_dev *d, xbd_xs_txn t);
/* Features, hotplug-status and InitWait (an xbd_xs_transaction body). */
int xbd_be_publish_features_txn(struct xbd_platform *p, xbd_xs_txn t,
				void *arg);
void xbd_be_dev_fatal(struct be_dev *d, const char *why, int err);
void xbd_be_dev_finish(struct be_dev *d, const char *why);
void xbd_be_dev_evaluate(struct be_dev *d);
struct be_dev *xbd_be_find_dev(struct xbd_backend *be, const char *type,
			       uint16_t fe, uint32_t devid);
int xbd_be_watch_dev(struct be_dev *d);
void xbd_be_read_vm_name(struct be_dev *d);
/* How devices arrive (src/backend_devices.c): a watch event under a
 * watched backend/<type> directory. */
void xbd_be_type_event(struct xbd_backend *be, const char *path);

#endif

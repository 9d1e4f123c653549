/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sim's xenstore daemon: an in-memory store that speaks the real
 * xenstored wire protocol (<xen/io/xs_wire.h>) on Unix stream sockets, so
 * that the unmodified libxenstore and the xenstore-* tools work against it
 * ($XENSTORED_PATH).  DIR/xenstored.sock serves dom0; INTRODUCE opens
 * DIR/xs-dom<N>.sock, whose connections act as guest N, and RELEASE closes
 * it again.
 *
 * It keeps the xenstored semantics the protocol code relies on: node
 * permissions (owner + default access, per-domain entries, dom0
 * privileged), watches (initial firing, events at or below the watched
 * path, rm firing watches set on removed descendants, no events for nodes
 * the watcher may not read), optimistic transactions that fail with EAGAIN
 * at commit and fire their watches then, the special watches
 * @introduceDomain / @releaseDomain, and Xen's error strings.
 *
 * One thread runs a poll loop and owns every piece of state below; the
 * caller's thread only starts it and, after joining it, frees everything.
 *
 * Its parts, as Xen's xenstored is divided: sim_xenstored_core.c (store,
 * node requests, dispatch), _transaction.c, _watch.c, _domain.c and
 * _conn.c (sockets, poll loop, start and stop).  This header is private
 * to them; the sim's public front is sim.h.
 */
#ifndef XBD_SIM_XENSTORED_H
#define XBD_SIM_XENSTORED_H

#include "src/sim/sim.h"
#include "xbd/util.h"

#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <sys/stat.h>
#include <sys/types.h>

#include <xen/xen.h>
#include <xenstore_lib.h> /* struct xs_permissions, XS_PERM_*, xs_wire.h */

/* Room for any canonical path: requests carry at most one payload. */
#define PATH_BUF (XENSTORE_PAYLOAD_MAX + 64)

/* xenstored's default quotas for unprivileged domains. */
#define GUEST_MAX_WATCHES 128
#define GUEST_MAX_TRANSACTIONS 10
#define GUEST_MAX_NODE_SIZE 2048
#define GUEST_MAX_PERMS 5
#define GUEST_MAX_STORE_NODES 100000

#define GUEST_MAX_CONNECTIONS 16 /* per guest domain */
#define MAX_CONNECTIONS 1024	  /* guests' and dom0's together */
/* Deleted paths remembered for open transactions; past this, those are
 * failed with EAGAIN instead (their clients retry). */
#define MAX_TOMBSTONES 65536
/* A client that does not read its replies stops being served above the
 * first mark; watch events for it are dropped above the second. */
#define OUT_PAUSE_BYTES (1u << 20)
#define OUT_DROP_BYTES (4u << 20)
/* Fairness: requests handled per connection, and connections accepted
 * per socket, in one poll round. */
#define MSGS_PER_ROUND 64
#define ACCEPTS_PER_ROUND 16
/* Out of file descriptors: stop accepting for a while, or poll() would
 * report the pending connection forever. */
#define ACCEPT_PAUSE_NS 100000000ull

#define GEN_NONE 0 /* generation of a path that never existed */

#define PERM_ALL (XS_PERM_READ | XS_PERM_WRITE | XS_PERM_OWNER)

struct perm_list {
	struct xs_permissions *p; /* p[0]: owner and everyone's access */
	uint32_t n;
};

/*
 * A node.  The global store and each transaction's overlay are hash
 * tables of these, keyed by canonical path.  Children are kept as
 * xenstored keeps them: NUL-terminated names, in creation order.
 */
struct node {
	struct node *hash_next;
	char *path;
	char *value;
	uint32_t value_len;
	char *children;
	uint32_t children_len;
	struct perm_list perms;
	uint64_t generation;
	/* Only in a transaction's overlay: */
	bool absent;		  /* does not exist in the transaction's view */
	bool modified;		  /* to be applied at commit */
	uint64_t seen_generation; /* global generation at first access */
};

struct node_table {
	struct node **buckets;
	size_t nbuckets;
	size_t count;
};

/* Whose read permission lets a watcher see an event: the node's, its
 * parent's, or (after SET_PERMS) the node's former permissions. */
struct event_perms {
	struct perm_list node, parent, old;
};

/* A watch event held back until its transaction commits. */
struct queued_event {
	struct queued_event *next;
	bool exact;
	struct event_perms perms; /* owned copies */
	char path[];
};

struct txn {
	struct txn *next;
	uint32_t id;
	uint64_t start_generation;
	bool doomed; /* a conflict could not be recorded: fail at commit */
	struct node_table nodes;
	struct queued_event *events, **events_tail;
};

struct watch {
	struct watch *next;
	bool relative; /* registered relative to the domain's home */
	char *path;    /* canonical, or "@..." */
	char *token;
};

struct outmsg {
	struct outmsg *next;
	size_t len, done;
	unsigned char data[];
};

struct conn {
	struct conn *next;
	int fd;
	unsigned int domid;
	bool dead;
	struct xsd_sockmsg hdr;
	size_t hdr_got, body_got;
	struct outmsg *out, **out_tail;
	size_t out_bytes;
	struct watch *watches;
	unsigned int nwatches;
	struct txn *txns;
	unsigned int ntxns;
	uint32_t next_txid;
	char body[XENSTORE_PAYLOAD_MAX + 1]; /* +1: always NUL-terminated */
};

/* An introduced guest and the socket its connections come in on. */
struct domain {
	struct domain *next;
	unsigned int domid;
	int listen_fd;
	bool released;
	char *sock_path;
};

enum special_node { SPECIAL_INTRODUCE, SPECIAL_RELEASE, SPECIAL_COUNT };
extern const char *const xsd_special_names[SPECIAL_COUNT];

enum pfd_kind { PFD_WAKE, PFD_LISTEN_DOM0, PFD_LISTEN_GUEST, PFD_CONN };
struct pfd_owner {
	enum pfd_kind kind;
	void *ptr;
};

struct sim_xenstored {
	char *dir;
	char *sock_path;
	int listen_fd;
	dev_t sock_dev;
	ino_t sock_ino;
	int wake[2];
	pthread_t thread;
	bool thread_started;

	struct node_table store;
	uint64_t generation;
	/* Paths deleted while transactions are open (only path and
	 * generation are used), so that one of them that looks at such a
	 * path later still sees it changed. */
	struct node_table tombstones;
	unsigned int open_txns;
	struct perm_list special[SPECIAL_COUNT];

	struct conn *conns;
	unsigned int nconns;
	struct domain *domains;
	unsigned long long accept_paused_until;

	struct pollfd *pfds;
	struct pfd_owner *owners;
	size_t pfd_cap;
};

/* One request being served. */
struct request {
	struct sim_xenstored *xs;
	struct conn *c;
	struct txn *tx; /* NULL outside a transaction */
	const struct xsd_sockmsg *hdr;
	const char *body; /* hdr->len bytes, NUL-terminated beyond them */
	uint32_t len;
};

/* --- sim_xenstored_core.c --- */
struct node *xsd_table_find(const struct node_table *t, const char *path);
void xsd_table_grow(struct node_table *t);
int xsd_table_insert(struct node_table *t, struct node *n);
void xsd_table_unlink(struct node_table *t, struct node *n);
void xsd_node_clear_content(struct node *n);
void xsd_node_free(struct node *n);
void xsd_table_clear(struct node_table *t);
struct node *xsd_node_alloc(const char *path);
int xsd_perms_copy(struct perm_list *dst, const struct perm_list *src);
struct node *xsd_node_clone(const struct node *src);
bool xsd_is_valid_path(const char *path);
void xsd_parent_path(const char *path, char *out);
bool xsd_is_at_or_below(const char *path, const char *top);
int xsd_canonicalize(const struct conn *c, const char *in, char *out,
		     bool *relative);
unsigned int xsd_perm_for(unsigned int domid, const struct perm_list *pl);
const char *xsd_one_arg(const struct request *rq);
unsigned int xsd_get_args(const struct request *rq, const char **vec,
			  unsigned int max);
int xsd_domid_arg(struct request *rq, unsigned int *domid);
bool xsd_is_guest(const struct request *rq);
void xsd_process_message(struct sim_xenstored *xs, struct conn *c);
int xsd_seed_store(struct sim_xenstored *xs);

/* --- sim_xenstored_transaction.c --- */
void xsd_forget_deletions(struct sim_xenstored *xs);
int xsd_view_lookup(struct request *rq, const char *path, struct node **out);
void xsd_view_changed(struct request *rq, struct node *n);
int xsd_view_create(struct request *rq, const char *path, struct node **out);
void xsd_view_delete(struct request *rq, struct node *n);
int xsd_get_node(struct request *rq, const char *path, unsigned int want,
		 struct node **out);
void xsd_conn_drop_txns(struct sim_xenstored *xs, struct conn *c);
struct txn *xsd_conn_find_txn(const struct conn *c, uint32_t id);
int xsd_op_transaction_start(struct request *rq);
int xsd_op_transaction_end(struct request *rq);

/* --- sim_xenstored_watch.c --- */
void xsd_deliver_event(struct sim_xenstored *xs, const char *path,
		       bool exact, const struct event_perms *ep);
void xsd_deliver_special(struct sim_xenstored *xs, enum special_node which);
void xsd_queued_event_free(struct queued_event *ev);
void xsd_fire_watches(struct request *rq, const char *path, bool exact,
		      const struct node *n, const struct perm_list *old);
void xsd_conn_drop_watches(struct conn *c);
int xsd_op_watch(struct request *rq);
int xsd_op_unwatch(struct request *rq);
int xsd_op_reset_watches(struct request *rq);

/* --- sim_xenstored_domain.c --- */
int xsd_op_introduce(struct request *rq);
int xsd_op_release(struct request *rq);
int xsd_op_resume(struct request *rq);
int xsd_op_is_domain_introduced(struct request *rq);
int xsd_op_get_domain_path(struct request *rq);

/* --- sim_xenstored_conn.c --- */
int xsd_reply(struct request *rq, const void *data, uint32_t len);
int xsd_reply_ok(struct request *rq);
void xsd_reply_error(struct request *rq, int err);
void xsd_send_event(struct conn *c, const char *path, const char *token);
int xsd_listen_unix(const char *path, int *out, struct stat *st);
void xsd_conn_kill(struct sim_xenstored *xs, struct conn *c);
/* End of a poll round: frees dead connections and released domains. */
void xsd_reap(struct sim_xenstored *xs);
/* Frees the store, connections and domains (not xs, dir, sock_path).
 * Not static so that tests/fuzz/ serves requests without the thread. */
void xsd_free_state(struct sim_xenstored *xs);

#endif

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
 */
#include "src/sim/sim.h"
#include "xbd/common.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

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
static const char *const special_names[SPECIAL_COUNT] = {
	[SPECIAL_INTRODUCE] = "@introduceDomain",
	[SPECIAL_RELEASE] = "@releaseDomain",
};

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

/* ------------------------------------------------------------------ */
/* Nodes and node tables                                              */

static uint64_t hash_path(const char *s)
{
	uint64_t h = 0xcbf29ce484222325ull; /* FNV-1a */

	while (*s) {
		h ^= (unsigned char)*s++;
		h *= 0x100000001b3ull;
	}
	return h;
}

static struct node *table_find(const struct node_table *t, const char *path)
{
	struct node *n;

	if (!t->nbuckets)
		return NULL;
	for (n = t->buckets[hash_path(path) & (t->nbuckets - 1)]; n;
	     n = n->hash_next)
		if (!strcmp(n->path, path))
			return n;
	return NULL;
}

/* Growing is an optimisation: when memory is short chains just get longer,
 * so inserting never fails once a first bucket array exists. */
static void table_grow(struct node_table *t)
{
	size_t nb = t->nbuckets ? t->nbuckets * 2 : 64, i;
	struct node **b = calloc(nb, sizeof(*b));

	if (!b)
		return;
	for (i = 0; i < t->nbuckets; i++) {
		struct node *n = t->buckets[i], *next;

		for (; n; n = next) {
			size_t h = hash_path(n->path) & (nb - 1);

			next = n->hash_next;
			n->hash_next = b[h];
			b[h] = n;
		}
	}
	free(t->buckets);
	t->buckets = b;
	t->nbuckets = nb;
}

static int table_insert(struct node_table *t, struct node *n)
{
	size_t h;

	if (t->count >= t->nbuckets)
		table_grow(t);
	if (!t->nbuckets)
		return -ENOMEM;
	h = hash_path(n->path) & (t->nbuckets - 1);
	n->hash_next = t->buckets[h];
	t->buckets[h] = n;
	t->count++;
	return 0;
}

static void table_unlink(struct node_table *t, struct node *n)
{
	struct node **pp = &t->buckets[hash_path(n->path) & (t->nbuckets - 1)];

	for (; *pp; pp = &(*pp)->hash_next) {
		if (*pp == n) {
			*pp = n->hash_next;
			t->count--;
			return;
		}
	}
}

static void node_clear_content(struct node *n)
{
	free(n->value);
	free(n->children);
	free(n->perms.p);
	n->value = n->children = NULL;
	n->perms.p = NULL;
	n->value_len = n->children_len = n->perms.n = 0;
}

static void node_free(struct node *n)
{
	if (!n)
		return;
	node_clear_content(n);
	free(n->path);
	free(n);
}

static void table_clear(struct node_table *t)
{
	size_t i;

	for (i = 0; i < t->nbuckets; i++) {
		struct node *n = t->buckets[i], *next;

		for (; n; n = next) {
			next = n->hash_next;
			node_free(n);
		}
	}
	free(t->buckets);
	memset(t, 0, sizeof(*t));
}

static struct node *node_alloc(const char *path)
{
	struct node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	n->path = strdup(path);
	if (!n->path) {
		free(n);
		return NULL;
	}
	return n;
}

static void *memdup_or_null(const void *src, size_t len, bool *failed)
{
	void *p;

	if (!len)
		return NULL;
	p = malloc(len);
	if (!p)
		*failed = true;
	else
		memcpy(p, src, len);
	return p;
}

static int perms_copy(struct perm_list *dst, const struct perm_list *src)
{
	bool failed = false;

	dst->p = memdup_or_null(src->p, src->n * sizeof(*src->p), &failed);
	dst->n = failed ? 0 : src->n;
	return failed ? -ENOMEM : 0;
}

static struct node *node_clone(const struct node *src)
{
	struct node *n = node_alloc(src->path);
	bool failed = false;

	if (!n)
		return NULL;
	n->value = memdup_or_null(src->value, src->value_len, &failed);
	n->value_len = src->value_len;
	n->children = memdup_or_null(src->children, src->children_len, &failed);
	n->children_len = src->children_len;
	n->perms.p = memdup_or_null(src->perms.p,
				    src->perms.n * sizeof(*src->perms.p),
				    &failed);
	n->perms.n = src->perms.n;
	n->generation = src->generation;
	if (failed) {
		node_free(n);
		return NULL;
	}
	return n;
}

static int node_set_value(struct node *n, const void *value, uint32_t len)
{
	bool failed = false;
	char *v = memdup_or_null(value, len, &failed);

	if (failed)
		return -ENOMEM;
	free(n->value);
	n->value = v;
	n->value_len = len;
	return 0;
}

static int node_add_child(struct node *n, const char *name)
{
	size_t len = strlen(name) + 1;
	char *c = realloc(n->children, n->children_len + len);

	if (!c)
		return -ENOMEM;
	memcpy(c + n->children_len, name, len);
	n->children = c;
	n->children_len += len;
	return 0;
}

static void node_remove_child(struct node *n, const char *name)
{
	uint32_t off = 0;

	while (off < n->children_len) {
		uint32_t len = strlen(n->children + off) + 1;

		if (!strcmp(n->children + off, name)) {
			memmove(n->children + off, n->children + off + len,
				n->children_len - off - len);
			n->children_len -= len;
			return;
		}
		off += len;
	}
}

/* ------------------------------------------------------------------ */
/* Paths and permissions                                              */

static bool is_valid_path(const char *path)
{
	size_t len = strlen(path);

	if (path[0] != '/' || len > XENSTORE_ABS_PATH_MAX)
		return false;
	if (len > 1 && path[len - 1] == '/')
		return false;
	if (strstr(path, "//"))
		return false;
	return strspn(path, "ABCDEFGHIJKLMNOPQRSTUVWXYZ"
			    "abcdefghijklmnopqrstuvwxyz"
			    "0123456789-/_@") == len;
}

static void parent_path(const char *path, char *out)
{
	const char *slash = strrchr(path, '/');
	size_t len = slash > path ? (size_t)(slash - path) : 1;

	memcpy(out, path, len);
	out[len] = '\0';
}

static const char *base_name(const char *path)
{
	return strrchr(path, '/') + 1;
}

/* "/a/b" is below "/a" and below "/", and equal paths count as below. */
static bool is_at_or_below(const char *path, const char *top)
{
	size_t len = strlen(top);

	if (!strcmp(top, "/"))
		return path[0] == '/';
	return !strncmp(path, top, len) &&
	       (path[len] == '/' || path[len] == '\0');
}

/* Relative paths are relative to the connection's domain home. */
static int canonicalize(const struct conn *c, const char *in, char *out,
			bool *relative)
{
	bool rel = in[0] != '/' && in[0] != '@';

	if (relative)
		*relative = rel;
	if (!rel) {
		snprintf(out, PATH_BUF, "%s", in);
		return 0;
	}
	if (strlen(in) > XENSTORE_REL_PATH_MAX)
		return -EINVAL;
	snprintf(out, PATH_BUF, "/local/domain/%u/%s", c->domid, in);
	return 0;
}

/* What a domain may do with a node, as xenstored's perm_for_conn(). */
static unsigned int perm_for(unsigned int domid, const struct perm_list *pl)
{
	uint32_t i;

	if (domid == 0)
		return PERM_ALL;
	if (!pl->n)
		return 0;
	if (pl->p[0].id == domid)
		return PERM_ALL;
	for (i = 1; i < pl->n; i++)
		if (pl->p[i].id == domid)
			return pl->p[i].perms & (XS_PERM_READ | XS_PERM_WRITE);
	return pl->p[0].perms & (XS_PERM_READ | XS_PERM_WRITE);
}

/* Strict decimal, no sign, no junk, at most max. */
static int parse_uint(const char *s, unsigned long long max,
		      unsigned long long *out)
{
	unsigned long long v = 0;

	if (!*s)
		return -EINVAL;
	for (; *s; s++) {
		unsigned int d = (unsigned int)(*s - '0');

		if (*s < '0' || *s > '9' || v > (max - d) / 10)
			return -EINVAL;
		v = v * 10 + d;
	}
	*out = v;
	return 0;
}

static int parse_perm(const char *s, struct xs_permissions *p)
{
	unsigned long long id;

	switch (s[0]) {
	case 'n': p->perms = XS_PERM_NONE; break;
	case 'r': p->perms = XS_PERM_READ; break;
	case 'w': p->perms = XS_PERM_WRITE; break;
	case 'b': p->perms = XS_PERM_READ | XS_PERM_WRITE; break;
	default: return -EINVAL;
	}
	if (parse_uint(s + 1, UINT16_MAX, &id))
		return -EINVAL;
	p->id = (unsigned int)id;
	return 0;
}

static char perm_letter(unsigned int perms)
{
	switch (perms & (XS_PERM_READ | XS_PERM_WRITE)) {
	case XS_PERM_READ: return 'r';
	case XS_PERM_WRITE: return 'w';
	case XS_PERM_READ | XS_PERM_WRITE: return 'b';
	default: return 'n';
	}
}

/* ------------------------------------------------------------------ */
/* Views: the global store, or a transaction's overlay on top of it   */

static uint64_t global_generation(const struct sim_xenstored *xs,
				  const char *path)
{
	const struct node *n = table_find(&xs->store, path);

	if (!n)
		n = table_find(&xs->tombstones, path);
	return n ? n->generation : GEN_NONE;
}

static void doom_open_transactions(struct sim_xenstored *xs)
{
	struct conn *c;
	struct txn *tx;

	for (c = xs->conns; c; c = c->next)
		for (tx = c->txns; tx; tx = tx->next)
			tx->doomed = true;
}

static void forget_deletions(struct sim_xenstored *xs)
{
	table_clear(&xs->tombstones);
}

static void remember_deletion(struct sim_xenstored *xs, const char *path,
			      uint64_t generation)
{
	struct node *t;

	if (!xs->open_txns)
		return;
	t = table_find(&xs->tombstones, path);
	if (t) {
		t->generation = generation;
		return;
	}
	t = xs->tombstones.count < MAX_TOMBSTONES ? node_alloc(path) : NULL;
	if (!t || table_insert(&xs->tombstones, t)) {
		/* Cannot prove the open transactions unaffected. */
		node_free(t);
		doom_open_transactions(xs);
		forget_deletions(xs);
		return;
	}
	t->generation = generation;
}

/* The transaction's own copy of a path, made on first access; recording
 * the generation seen then is what conflict detection checks at commit. */
static int tx_entry(struct request *rq, const char *path, struct node **out)
{
	struct txn *tx = rq->tx;
	struct node *e = table_find(&tx->nodes, path), *g;

	if (!e) {
		g = table_find(&rq->xs->store, path);
		e = g ? node_clone(g) : node_alloc(path);
		if (!e)
			return -ENOMEM;
		e->absent = !g;
		e->seen_generation = global_generation(rq->xs, path);
		if (table_insert(&tx->nodes, e)) {
			node_free(e);
			return -ENOMEM;
		}
	}
	*out = e;
	return 0;
}

/* *out is NULL when the node does not exist in this view. */
static int view_lookup(struct request *rq, const char *path, struct node **out)
{
	struct node *e;
	int rc;

	if (!rq->tx) {
		*out = table_find(&rq->xs->store, path);
		return 0;
	}
	rc = tx_entry(rq, path, &e);
	if (rc)
		return rc;
	*out = e->absent ? NULL : e;
	return 0;
}

/* Call after changing a node found or created in this view. */
static void view_changed(struct request *rq, struct node *n)
{
	n->generation = ++rq->xs->generation;
	if (rq->tx)
		n->modified = true;
}

static int view_create(struct request *rq, const char *path, struct node **out)
{
	struct node *n;
	int rc;

	if (rq->tx) {
		rc = tx_entry(rq, path, &n);
		if (rc)
			return rc;
		node_clear_content(n);
		n->absent = false;
	} else {
		n = node_alloc(path);
		if (!n)
			return -ENOMEM;
		if (table_insert(&rq->xs->store, n)) {
			node_free(n);
			return -ENOMEM;
		}
	}
	view_changed(rq, n);
	*out = n;
	return 0;
}

static void view_delete(struct request *rq, struct node *n)
{
	struct sim_xenstored *xs = rq->xs;

	if (rq->tx) {
		node_clear_content(n);
		n->absent = true;
		view_changed(rq, n);
		return;
	}
	table_unlink(&xs->store, n);
	remember_deletion(xs, n->path, ++xs->generation);
	node_free(n);
}

/*
 * The node at a canonical path, if this connection may access it as asked.
 * Like xenstored, a missing node reads as EACCES rather than ENOENT when
 * the nearest existing ancestor would not grant the access either, so that
 * a guest learns nothing about places it may not look.
 */
static int get_node(struct request *rq, const char *path, unsigned int want,
		    struct node **out)
{
	char up[PATH_BUF];
	struct node *n;
	int rc;

	*out = NULL;
	if (!is_valid_path(path))
		return -EINVAL;
	rc = view_lookup(rq, path, &n);
	if (rc)
		return rc;
	if (n) {
		if ((perm_for(rq->c->domid, &n->perms) & want) != want)
			return -EACCES;
		*out = n;
		return 0;
	}
	snprintf(up, sizeof(up), "%s", path);
	while (strcmp(up, "/")) {
		char tmp[PATH_BUF];

		parent_path(up, tmp);
		memcpy(up, tmp, strlen(tmp) + 1);
		rc = view_lookup(rq, up, &n);
		if (rc)
			return rc;
		if (n)
			return (perm_for(rq->c->domid, &n->perms) & want) == want
				       ? -ENOENT : -EACCES;
	}
	return -EACCES;
}

/* ------------------------------------------------------------------ */
/* Output                                                             */

static void conn_kill(struct sim_xenstored *xs, struct conn *c);

static int queue_msg(struct conn *c, uint32_t type, uint32_t req_id,
		     uint32_t tx_id, const void *payload, uint32_t len)
{
	struct xsd_sockmsg hdr = {
		.type = type, .req_id = req_id, .tx_id = tx_id, .len = len,
	};
	struct outmsg *m = malloc(sizeof(*m) + sizeof(hdr) + len);

	if (!m)
		return -ENOMEM;
	m->next = NULL;
	m->len = sizeof(hdr) + len;
	m->done = 0;
	memcpy(m->data, &hdr, sizeof(hdr));
	if (len)
		memcpy(m->data + sizeof(hdr), payload, len);
	*c->out_tail = m;
	c->out_tail = &m->next;
	c->out_bytes += m->len;
	return 0;
}

/* Replies echo the request's type, req_id and tx_id, as xenstored does. */
static int reply_typed(struct request *rq, uint32_t type, const void *data,
		       uint32_t len)
{
	if (len > XENSTORE_PAYLOAD_MAX)
		return -E2BIG;
	/* A client whose reply is lost would wait forever: drop it. */
	if (queue_msg(rq->c, type, rq->hdr->req_id, rq->hdr->tx_id, data, len))
		conn_kill(rq->xs, rq->c);
	return 0;
}

static int reply(struct request *rq, const void *data, uint32_t len)
{
	return reply_typed(rq, rq->hdr->type, data, len);
}

static int reply_ok(struct request *rq)
{
	return reply(rq, "OK", sizeof("OK"));
}

static void reply_error(struct request *rq, int err)
{
	size_t i, found = 0; /* xsd_errors[0] is EINVAL: the fallback */

	for (i = 0; i < XBD_ARRAY_SIZE(xsd_errors); i++) {
		if (xsd_errors[i].errnum == err) {
			found = i;
			break;
		}
	}
	reply_typed(rq, XS_ERROR, xsd_errors[found].errstring,
		    strlen(xsd_errors[found].errstring) + 1);
}

static void send_event(struct conn *c, const char *path, const char *token)
{
	char buf[XENSTORE_PAYLOAD_MAX];
	size_t plen = strlen(path) + 1, tlen = strlen(token) + 1;

	/* xenstored does not send over-long events either. */
	if (plen + tlen > sizeof(buf))
		return;
	if (c->out_bytes > OUT_DROP_BYTES) {
		xbd_debug("sim xenstored: dom%u is not reading, event %s dropped",
			  c->domid, path);
		return;
	}
	memcpy(buf, path, plen);
	memcpy(buf + plen, token, tlen);
	if (queue_msg(c, XS_WATCH_EVENT, 0, 0, buf, plen + tlen))
		xbd_debug("sim xenstored: out of memory, event %s dropped",
			  path);
}

static void conn_flush(struct sim_xenstored *xs, struct conn *c)
{
	while (c->out && !c->dead) {
		struct outmsg *m = c->out;
		ssize_t r = send(c->fd, m->data + m->done, m->len - m->done,
				 MSG_NOSIGNAL | MSG_DONTWAIT);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			if (errno != EAGAIN && errno != EWOULDBLOCK)
				conn_kill(xs, c);
			return;
		}
		m->done += (size_t)r;
		if (m->done < m->len)
			continue;
		c->out = m->next;
		if (!c->out)
			c->out_tail = &c->out;
		c->out_bytes -= m->len;
		free(m);
	}
}

/* ------------------------------------------------------------------ */
/* Watches and events                                                 */

/* The path as the watcher registered it: relative watches get events
 * relative to their domain home, like xenstored's get_watch_path(). */
static const char *event_path(const struct conn *c, const struct watch *w,
			      const char *path)
{
	char home[32];
	size_t len;

	if (!w->relative)
		return path;
	len = (size_t)snprintf(home, sizeof(home), "/local/domain/%u",
			       c->domid);
	if (strncmp(path, home, len))
		return path;
	path += len;
	return *path == '/' ? path + 1 : path;
}

static bool may_see_event(unsigned int domid, const struct event_perms *ep)
{
	return (perm_for(domid, &ep->node) & XS_PERM_READ) ||
	       (ep->parent.n && (perm_for(domid, &ep->parent) & XS_PERM_READ)) ||
	       (ep->old.n && (perm_for(domid, &ep->old) & XS_PERM_READ));
}

/*
 * Sends the event for a changed path to every watch it concerns.  exact
 * limits it to watches on that very path (descendants removed by an rm);
 * otherwise it goes to watches at or above the path.
 */
static void deliver_event(struct sim_xenstored *xs, const char *path,
			  bool exact, const struct event_perms *ep)
{
	struct conn *c;
	struct watch *w;

	for (c = xs->conns; c; c = c->next) {
		if (c->dead || !may_see_event(c->domid, ep))
			continue;
		for (w = c->watches; w; w = w->next) {
			if (exact ? !strcmp(w->path, path)
				  : is_at_or_below(path, w->path))
				send_event(c, event_path(c, w, path), w->token);
		}
	}
}

static void deliver_special(struct sim_xenstored *xs, enum special_node which)
{
	const char *name = special_names[which];
	struct conn *c;
	struct watch *w;

	for (c = xs->conns; c; c = c->next) {
		if (c->dead || !(perm_for(c->domid, &xs->special[which]) &
				 XS_PERM_READ))
			continue;
		for (w = c->watches; w; w = w->next)
			if (!strcmp(w->path, name))
				send_event(c, name, w->token);
	}
}

static void queued_event_free(struct queued_event *ev)
{
	free(ev->perms.node.p);
	free(ev->perms.parent.p);
	free(ev->perms.old.p);
	free(ev);
}

static int queue_event(struct txn *tx, const char *path, bool exact,
		       const struct event_perms *ep)
{
	struct queued_event *ev = calloc(1, sizeof(*ev) + strlen(path) + 1);

	if (!ev)
		return -ENOMEM;
	strcpy(ev->path, path);
	ev->exact = exact;
	if (perms_copy(&ev->perms.node, &ep->node) ||
	    perms_copy(&ev->perms.parent, &ep->parent) ||
	    perms_copy(&ev->perms.old, &ep->old)) {
		queued_event_free(ev);
		return -ENOMEM;
	}
	*tx->events_tail = ev;
	tx->events_tail = &ev->next;
	return 0;
}

/* Fires (or, in a transaction, queues until commit) the watches for a
 * change to node n at path; old: its permissions before a SET_PERMS. */
static void fire_watches(struct request *rq, const char *path, bool exact,
			 const struct node *n, const struct perm_list *old)
{
	struct event_perms ep = { .node = n->perms };
	char up[PATH_BUF];
	struct node *parent = NULL;

	if (old)
		ep.old = *old;
	if (strcmp(path, "/")) {
		parent_path(path, up);
		if (view_lookup(rq, up, &parent) == 0 && parent)
			ep.parent = parent->perms;
	}
	if (!rq->tx)
		deliver_event(rq->xs, path, exact, &ep);
	else if (queue_event(rq->tx, path, exact, &ep))
		rq->tx->doomed = true; /* it could not fire its watches */
}

static void watch_free(struct watch *w)
{
	free(w->path);
	free(w->token);
	free(w);
}

static void conn_drop_watches(struct conn *c)
{
	while (c->watches) {
		struct watch *w = c->watches;

		c->watches = w->next;
		watch_free(w);
	}
	c->nwatches = 0;
}

/* ------------------------------------------------------------------ */
/* Transactions                                                       */

static void txn_free(struct sim_xenstored *xs, struct txn *tx)
{
	table_clear(&tx->nodes);
	while (tx->events) {
		struct queued_event *ev = tx->events;

		tx->events = ev->next;
		queued_event_free(ev);
	}
	free(tx);
	if (--xs->open_txns == 0)
		forget_deletions(xs);
}

static void conn_drop_txns(struct sim_xenstored *xs, struct conn *c)
{
	while (c->txns) {
		struct txn *tx = c->txns;

		c->txns = tx->next;
		txn_free(xs, tx);
	}
	c->ntxns = 0;
}

static struct txn *conn_find_txn(const struct conn *c, uint32_t id)
{
	struct txn *tx;

	for (tx = c->txns; tx; tx = tx->next)
		if (tx->id == id)
			return tx;
	return NULL;
}

/*
 * Commits tx: EAGAIN if any node it read or wrote changed behind its back
 * since it started; otherwise applies its changes and fires its watches.
 */
static int txn_commit(struct sim_xenstored *xs, struct txn *tx)
{
	struct node *e, *g, **fresh = NULL;
	size_t i, nfresh = 0;
	struct queued_event *ev;

	if (tx->doomed)
		return -EAGAIN;
	for (i = 0; i < tx->nodes.nbuckets; i++) {
		for (e = tx->nodes.buckets[i]; e; e = e->hash_next) {
			if (e->seen_generation > tx->start_generation ||
			    global_generation(xs, e->path) != e->seen_generation)
				return -EAGAIN;
			if (e->modified && !e->absent &&
			    !table_find(&xs->store, e->path))
				nfresh++;
		}
	}

	/* Allocate first, so that applying cannot fail half way. */
	if (nfresh) {
		fresh = calloc(nfresh, sizeof(*fresh));
		if (!fresh)
			return -ENOMEM;
		for (i = 0; i < nfresh; i++) {
			fresh[i] = calloc(1, sizeof(**fresh));
			if (!fresh[i])
				goto nomem;
		}
		if (xs->store.count + nfresh > xs->store.nbuckets)
			table_grow(&xs->store);
		if (!xs->store.nbuckets)
			goto nomem;
	}

	nfresh = 0;
	for (i = 0; i < tx->nodes.nbuckets; i++) {
		for (e = tx->nodes.buckets[i]; e; e = e->hash_next) {
			if (!e->modified)
				continue;
			g = table_find(&xs->store, e->path);
			if (e->absent) {
				if (g) {
					table_unlink(&xs->store, g);
					remember_deletion(xs, g->path,
							  ++xs->generation);
					node_free(g);
				}
				continue;
			}
			if (!g) {
				g = fresh[nfresh++];
				/* The entry keeps hashing by its path no more:
				 * it is only freed after this. */
				g->path = e->path;
				e->path = NULL;
				table_insert(&xs->store, g);
			}
			node_clear_content(g);
			g->value = e->value;
			g->value_len = e->value_len;
			g->children = e->children;
			g->children_len = e->children_len;
			g->perms = e->perms;
			g->generation = ++xs->generation;
			e->value = e->children = NULL;
			e->perms.p = NULL;
			e->value_len = e->children_len = e->perms.n = 0;
		}
	}
	free(fresh);

	for (ev = tx->events; ev; ev = ev->next)
		deliver_event(xs, ev->path, ev->exact, &ev->perms);
	return 0;

nomem:
	for (i = 0; i < nfresh; i++)
		free(fresh[i]);
	free(fresh);
	return -ENOMEM;
}

/* ------------------------------------------------------------------ */
/* Request arguments                                                  */

/* The payload is exactly one NUL-terminated string. */
static const char *one_arg(const struct request *rq)
{
	if (!rq->len || memchr(rq->body, '\0', rq->len) != rq->body + rq->len - 1)
		return NULL;
	return rq->body;
}

/* Counts the NUL-terminated strings, filling vec with up to max of them;
 * bytes after the last NUL are not a string (WRITE's value may be). */
static unsigned int get_args(const struct request *rq, const char **vec,
			     unsigned int max)
{
	unsigned int n = 0;
	uint32_t off = 0;

	while (off < rq->len) {
		const char *nul = memchr(rq->body + off, '\0', rq->len - off);

		if (!nul)
			break;
		if (n < max)
			vec[n] = rq->body + off;
		n++;
		off = (uint32_t)(nul - rq->body) + 1;
	}
	return n;
}

static int path_arg(struct request *rq, const char *arg, char *path)
{
	if (!arg)
		return -EINVAL;
	return canonicalize(rq->c, arg, path, NULL);
}

static int domid_arg(struct request *rq, unsigned int *domid)
{
	const char *arg = one_arg(rq);
	unsigned long long v;

	if (!arg || parse_uint(arg, UINT16_MAX, &v))
		return -EINVAL;
	*domid = (unsigned int)v;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Node operations                                                    */

static bool is_guest(const struct request *rq)
{
	return rq->c->domid != 0;
}

static int new_child(struct request *rq, struct node *parent,
		     const char *path, struct node **out)
{
	struct perm_list perms;
	struct node *n;
	int rc;

	/* New nodes inherit the parent's permissions; a guest owns what
	 * it creates. */
	rc = perms_copy(&perms, &parent->perms);
	if (rc)
		return rc;
	if (is_guest(rq) && perms.n)
		perms.p[0].id = rq->c->domid;
	rc = node_add_child(parent, base_name(path));
	if (rc) {
		free(perms.p);
		return rc;
	}
	rc = view_create(rq, path, &n);
	if (rc) {
		node_remove_child(parent, base_name(path));
		free(perms.p);
		return rc;
	}
	view_changed(rq, parent);
	n->perms = perms;
	*out = n;
	return 0;
}

/* Creates path and any missing ancestors (the caller checked, through
 * get_node(), that the nearest existing ancestor grants write). */
static int create_node(struct request *rq, const char *path, struct node **out)
{
	char prefix[PATH_BUF];
	struct node *parent, *n;
	size_t i;
	int rc;

	if (is_guest(rq) && rq->xs->store.count >= GUEST_MAX_STORE_NODES)
		return -ENOSPC;
	rc = view_lookup(rq, "/", &parent);
	if (rc)
		return rc;
	for (i = 1;; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		memcpy(prefix, path, i);
		prefix[i] = '\0';
		rc = view_lookup(rq, prefix, &n);
		if (!rc && !n)
			rc = new_child(rq, parent, prefix, &n);
		if (rc)
			return rc;
		parent = n;
		if (path[i] == '\0')
			break;
	}
	*out = parent;
	return 0;
}

static int op_read(struct request *rq)
{
	char path[PATH_BUF];
	struct node *n;
	int rc;

	rc = path_arg(rq, one_arg(rq), path);
	if (!rc)
		rc = get_node(rq, path, XS_PERM_READ, &n);
	if (rc)
		return rc;
	return reply(rq, n->value, n->value_len);
}

static int op_write(struct request *rq)
{
	const char *vec[1];
	char path[PATH_BUF];
	const char *value;
	uint32_t off, vlen;
	struct node *n;
	int rc;

	if (get_args(rq, vec, 1) < 1)
		return -EINVAL;
	off = (uint32_t)strlen(vec[0]) + 1;
	value = rq->body + off;
	vlen = rq->len - off;
	rc = path_arg(rq, vec[0], path);
	if (rc)
		return rc;
	rc = get_node(rq, path, XS_PERM_WRITE, &n);
	if (rc && rc != -ENOENT)
		return rc;
	if (is_guest(rq) &&
	    sizeof(struct xsd_sockmsg) + sizeof(struct xs_permissions) *
	    (n ? n->perms.n : 1) + vlen + (n ? n->children_len : 0) >=
	    GUEST_MAX_NODE_SIZE)
		return -ENOSPC;
	if (!n) {
		rc = create_node(rq, path, &n);
		if (rc)
			return rc;
	}
	rc = node_set_value(n, value, vlen);
	if (rc)
		return rc;
	view_changed(rq, n);
	fire_watches(rq, path, false, n, NULL);
	return reply_ok(rq);
}

static int op_mkdir(struct request *rq)
{
	char path[PATH_BUF];
	struct node *n;
	int rc;

	rc = path_arg(rq, one_arg(rq), path);
	if (!rc)
		rc = get_node(rq, path, XS_PERM_WRITE, &n);
	if (rc == -ENOENT) {
		rc = create_node(rq, path, &n);
		if (rc)
			return rc;
		fire_watches(rq, path, false, n, NULL);
	}
	if (rc)
		return rc;
	return reply_ok(rq);
}

/* Removes everything below n, deepest first, each firing the watches set
 * exactly on it. */
static int delete_below(struct request *rq, struct node *n)
{
	uint32_t off;
	int rc;

	for (off = 0; off < n->children_len;
	     off += (uint32_t)strlen(n->children + off) + 1) {
		size_t plen = strlen(n->path), clen = strlen(n->children + off);
		char *cpath = malloc(plen + clen + 2);
		struct node *child;

		if (!cpath)
			return -ENOMEM;
		sprintf(cpath, "%s/%s", strcmp(n->path, "/") ? n->path : "",
			n->children + off);
		rc = view_lookup(rq, cpath, &child);
		if (!rc && child) {
			rc = delete_below(rq, child);
			if (!rc) {
				fire_watches(rq, cpath, true, child, NULL);
				view_delete(rq, child);
			}
		}
		free(cpath);
		if (rc)
			return rc;
	}
	return 0;
}

static int op_rm(struct request *rq)
{
	char path[PATH_BUF], up[PATH_BUF];
	struct node *n, *parent;
	int rc;

	rc = path_arg(rq, one_arg(rq), path);
	if (!rc)
		rc = get_node(rq, path, XS_PERM_WRITE, &n);
	if (rc == -ENOENT) {
		/* Removing a missing node is fine if its parent exists. */
		parent_path(path, up);
		rc = view_lookup(rq, up, &parent);
		if (rc)
			return rc;
		return parent ? reply_ok(rq) : -ENOENT;
	}
	if (rc)
		return rc;
	if (!strcmp(path, "/"))
		return -EINVAL;
	parent_path(path, up);
	rc = view_lookup(rq, up, &parent);
	if (rc)
		return rc;
	if (!parent)
		return -EINVAL;
	/* Fire while the node's permissions can still be seen. */
	fire_watches(rq, path, false, n, NULL);
	rc = delete_below(rq, n);
	if (rc)
		return rc;
	node_remove_child(parent, base_name(path));
	view_changed(rq, parent);
	view_delete(rq, n);
	return reply_ok(rq);
}

static int op_directory(struct request *rq)
{
	char path[PATH_BUF];
	struct node *n;
	int rc;

	rc = path_arg(rq, one_arg(rq), path);
	if (!rc)
		rc = get_node(rq, path, XS_PERM_READ, &n);
	if (rc)
		return rc;
	return reply(rq, n->children, n->children_len);
}

/* "path\0offset\0" -> "generation\0" and the child names from offset that
 * fit; an extra NUL marks the end of the list (libxenstore's
 * xs_directory_part() falls back to this when DIRECTORY is E2BIG). */
static int op_directory_part(struct request *rq)
{
	const char *vec[2];
	char path[PATH_BUF], buf[XENSTORE_PAYLOAD_MAX];
	unsigned long long off;
	uint32_t len = 0, maxlen, genlen;
	struct node *n;
	int rc;

	if (get_args(rq, vec, 2) != 2 || parse_uint(vec[1], UINT32_MAX, &off))
		return -EINVAL;
	rc = path_arg(rq, vec[0], path);
	if (!rc)
		rc = get_node(rq, path, XS_PERM_READ, &n);
	if (rc)
		return rc;
	genlen = (uint32_t)snprintf(buf, sizeof(buf), "%" PRIu64,
				    n->generation) + 1;
	if (off >= n->children_len) {
		buf[genlen] = '\0';
		return reply(rq, buf, genlen + 1);
	}
	maxlen = sizeof(buf) - genlen - 1;
	for (;;) {
		uint32_t clen = (uint32_t)strlen(n->children + off + len) + 1;

		if (len + clen > maxlen)
			break;
		len += clen;
		if (off + len == n->children_len)
			break;
	}
	memcpy(buf + genlen, n->children + off, len);
	if (off + len == n->children_len)
		buf[genlen + len++] = '\0';
	return reply(rq, buf, genlen + len);
}

static struct perm_list *special_perms(struct sim_xenstored *xs,
				       const char *name)
{
	size_t i;

	for (i = 0; i < SPECIAL_COUNT; i++)
		if (!strcmp(name, special_names[i]))
			return &xs->special[i];
	return NULL;
}

static int op_get_perms(struct request *rq)
{
	const char *arg = one_arg(rq);
	char path[PATH_BUF], buf[XENSTORE_PAYLOAD_MAX];
	const struct perm_list *pl;
	uint32_t i, len = 0;
	struct node *n;
	int rc;

	if (arg && arg[0] == '@') {
		pl = special_perms(rq->xs, arg);
		if (!pl)
			return -ENOENT;
		if (!(perm_for(rq->c->domid, pl) & XS_PERM_READ))
			return -EACCES;
	} else {
		rc = path_arg(rq, arg, path);
		if (!rc)
			rc = get_node(rq, path, XS_PERM_READ, &n);
		if (rc)
			return rc;
		pl = &n->perms;
	}
	for (i = 0; i < pl->n; i++) {
		int w = snprintf(buf + len, sizeof(buf) - len, "%c%u",
				 perm_letter(pl->p[i].perms), pl->p[i].id);

		if (w < 0 || (size_t)w + 1 > sizeof(buf) - len)
			return -E2BIG;
		len += (uint32_t)w + 1;
	}
	return reply(rq, buf, len);
}

static int set_special_perms(struct request *rq, const char *name,
			     struct perm_list *perms)
{
	struct perm_list *sp = special_perms(rq->xs, name);

	if (!sp)
		return -ENOENT;
	if ((perm_for(rq->c->domid, sp) & (XS_PERM_WRITE | XS_PERM_OWNER)) !=
	    (XS_PERM_WRITE | XS_PERM_OWNER))
		return -EACCES;
	free(sp->p);
	*sp = *perms;
	perms->p = NULL;
	return 0;
}

static int op_set_perms(struct request *rq)
{
	const char *vec[1];
	char path[PATH_BUF];
	struct perm_list perms = { 0 }, old;
	const char *s;
	unsigned int nstr = get_args(rq, vec, 1);
	struct node *n;
	uint32_t i;
	int rc;

	if (nstr < 2)
		return -EINVAL;
	perms.n = nstr - 1;
	if (is_guest(rq) && perms.n > GUEST_MAX_PERMS)
		return -ENOSPC;
	perms.p = calloc(perms.n, sizeof(*perms.p));
	if (!perms.p)
		return -ENOMEM;
	s = vec[0] + strlen(vec[0]) + 1;
	for (i = 0; i < perms.n; i++, s += strlen(s) + 1) {
		rc = parse_perm(s, &perms.p[i]);
		if (rc)
			goto out;
	}

	if (vec[0][0] == '@') {
		rc = set_special_perms(rq, vec[0], &perms);
		if (!rc)
			rc = reply_ok(rq);
		goto out;
	}
	rc = path_arg(rq, vec[0], path);
	if (!rc)
		rc = get_node(rq, path, XS_PERM_WRITE | XS_PERM_OWNER, &n);
	if (rc)
		goto out;
	/* Only the privileged may give a node away. */
	rc = -EPERM;
	if (is_guest(rq) && perms.p[0].id != n->perms.p[0].id)
		goto out;
	old = n->perms;
	n->perms = perms;
	perms = old; /* freed below, after the watches saw it */
	view_changed(rq, n);
	fire_watches(rq, path, false, n, &old);
	rc = reply_ok(rq);
out:
	free(perms.p);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Watch operations                                                   */

static int watch_args(struct request *rq, char *path, const char **token,
		      bool *relative)
{
	const char *vec[2];
	int rc;

	if (get_args(rq, vec, 2) != 2)
		return -EINVAL;
	*token = vec[1];
	if (vec[0][0] == '@') {
		*relative = false;
		if (strlen(vec[0]) > XENSTORE_REL_PATH_MAX)
			return -EINVAL;
		snprintf(path, PATH_BUF, "%s", vec[0]);
		return 0;
	}
	rc = canonicalize(rq->c, vec[0], path, relative);
	if (rc)
		return rc;
	return is_valid_path(path) ? 0 : -EINVAL;
}

static int op_watch(struct request *rq)
{
	char path[PATH_BUF];
	const char *token;
	struct conn *c = rq->c;
	struct watch *w;
	bool relative;
	int rc;

	rc = watch_args(rq, path, &token, &relative);
	if (rc)
		return rc;
	for (w = c->watches; w; w = w->next)
		if (!strcmp(w->path, path) && !strcmp(w->token, token))
			return -EEXIST;
	if (is_guest(rq) && c->nwatches >= GUEST_MAX_WATCHES)
		return -E2BIG;
	w = calloc(1, sizeof(*w));
	if (!w)
		return -ENOMEM;
	w->path = strdup(path);
	w->token = strdup(token);
	if (!w->path || !w->token) {
		watch_free(w);
		return -ENOMEM;
	}
	w->relative = relative;
	w->next = c->watches;
	c->watches = w;
	c->nwatches++;
	rc = reply_ok(rq);
	/* Every watch fires once when set, whatever the permissions. */
	send_event(c, event_path(c, w, w->path), w->token);
	return rc;
}

static int op_unwatch(struct request *rq)
{
	char path[PATH_BUF];
	const char *token;
	struct watch **pw;
	bool relative;
	int rc;

	rc = watch_args(rq, path, &token, &relative);
	if (rc)
		return rc;
	for (pw = &rq->c->watches; *pw; pw = &(*pw)->next) {
		struct watch *w = *pw;

		if (!strcmp(w->path, path) && !strcmp(w->token, token)) {
			*pw = w->next;
			watch_free(w);
			rq->c->nwatches--;
			return reply_ok(rq);
		}
	}
	return -ENOENT;
}

static int op_reset_watches(struct request *rq)
{
	conn_drop_watches(rq->c);
	conn_drop_txns(rq->xs, rq->c);
	rq->tx = NULL;
	return reply_ok(rq);
}

/* ------------------------------------------------------------------ */
/* Transaction operations                                             */

static int op_transaction_start(struct request *rq)
{
	struct conn *c = rq->c;
	char id[16];
	struct txn *tx;

	if (rq->tx)
		return -EBUSY; /* no nesting */
	if (is_guest(rq) && c->ntxns >= GUEST_MAX_TRANSACTIONS)
		return -ENOSPC;
	tx = calloc(1, sizeof(*tx));
	if (!tx)
		return -ENOMEM;
	do {
		tx->id = ++c->next_txid;
	} while (!tx->id || conn_find_txn(c, tx->id));
	tx->start_generation = rq->xs->generation;
	tx->events_tail = &tx->events;
	tx->next = c->txns;
	c->txns = tx;
	c->ntxns++;
	rq->xs->open_txns++;
	snprintf(id, sizeof(id), "%u", tx->id);
	return reply(rq, id, (uint32_t)strlen(id) + 1);
}

static int op_transaction_end(struct request *rq)
{
	const char *arg = one_arg(rq);
	struct txn *tx = rq->tx, **pt;
	int rc = 0;

	if (!arg || (strcmp(arg, "T") && strcmp(arg, "F")))
		return -EINVAL;
	if (!tx)
		return -ENOENT;
	for (pt = &rq->c->txns; *pt != tx; pt = &(*pt)->next)
		;
	*pt = tx->next;
	rq->c->ntxns--;
	rq->tx = NULL;
	if (!strcmp(arg, "T"))
		rc = txn_commit(rq->xs, tx);
	txn_free(rq->xs, tx);
	if (rc)
		return rc;
	return reply_ok(rq);
}

/* ------------------------------------------------------------------ */
/* Domains                                                            */

static struct domain *find_domain(struct sim_xenstored *xs,
				  unsigned int domid)
{
	struct domain *d;

	for (d = xs->domains; d; d = d->next)
		if (d->domid == domid && !d->released)
			return d;
	return NULL;
}

/* Connects to path: a live server there answers. */
static bool socket_is_live(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	bool live;

	if (fd < 0)
		return false;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	live = connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0;
	close(fd);
	return live;
}

static int listen_unix(const char *path, int *out, struct stat *st)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, rc;

	if (strlen(path) >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	strcpy(sa.sun_path, path);
	if (socket_is_live(path))
		return -EADDRINUSE;
	if (unlink(path) && errno != ENOENT)
		return -errno;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    chmod(path, 0600) || listen(fd, SOMAXCONN) ||
	    (st && stat(path, st)))
		goto fail;
	*out = fd;
	return 0;
fail:
	rc = -errno;
	close(fd);
	unlink(path);
	return rc;
}

static int domain_introduce(struct sim_xenstored *xs, unsigned int domid)
{
	struct domain *d = calloc(1, sizeof(*d));
	int rc;

	if (!d)
		return -ENOMEM;
	d->domid = domid;
	if (asprintf(&d->sock_path, "%s/xs-dom%u.sock", xs->dir, domid) < 0) {
		d->sock_path = NULL;
		rc = -ENOMEM;
		goto fail;
	}
	rc = listen_unix(d->sock_path, &d->listen_fd, NULL);
	if (rc) {
		xbd_err("sim xenstored: %s: %s", d->sock_path,
			xbd_strerror(rc));
		goto fail;
	}
	d->next = xs->domains;
	xs->domains = d;
	return 0;
fail:
	free(d->sock_path);
	free(d);
	return rc;
}

/* Closes the domain's socket and connections now; the structures go at
 * the end of the poll round, when nothing refers to them any more. */
static void domain_release(struct sim_xenstored *xs, struct domain *d)
{
	struct conn *c;

	d->released = true;
	close(d->listen_fd);
	d->listen_fd = -1;
	unlink(d->sock_path);
	for (c = xs->conns; c; c = c->next)
		if (c->domid == d->domid)
			conn_kill(xs, c);
}

static int op_introduce(struct request *rq)
{
	const char *vec[3];
	unsigned long long domid, mfn, port;
	int rc;

	if (get_args(rq, vec, 3) < 3 ||
	    parse_uint(vec[0], DOMID_FIRST_RESERVED - 1, &domid) || !domid ||
	    parse_uint(vec[1], UINT64_MAX, &mfn) ||
	    parse_uint(vec[2], UINT32_MAX, &port) || !port)
		return -EINVAL;
	/* Introducing again only rebinds the event channel in xenstored:
	 * nothing to do here, and no event. */
	if (!find_domain(rq->xs, (unsigned int)domid)) {
		rc = domain_introduce(rq->xs, (unsigned int)domid);
		if (rc)
			return rc;
		deliver_special(rq->xs, SPECIAL_INTRODUCE);
	}
	return reply_ok(rq);
}

static int op_release(struct request *rq)
{
	struct domain *d;
	unsigned int domid;
	int rc;

	rc = domid_arg(rq, &domid);
	if (rc || !domid)
		return -EINVAL;
	d = find_domain(rq->xs, domid);
	if (!d)
		return -ENOENT;
	/* The toolstack, not xenstored, removes /local/domain/<domid>. */
	domain_release(rq->xs, d);
	deliver_special(rq->xs, SPECIAL_RELEASE);
	return reply_ok(rq);
}

static int op_resume(struct request *rq)
{
	unsigned int domid;
	int rc;

	rc = domid_arg(rq, &domid);
	if (rc || !domid)
		return -EINVAL;
	if (!find_domain(rq->xs, domid))
		return -ENOENT;
	return reply_ok(rq);
}

static int op_is_domain_introduced(struct request *rq)
{
	unsigned int domid;
	bool yes;
	int rc;

	rc = domid_arg(rq, &domid);
	if (rc)
		return rc;
	yes = domid == 0 || domid == DOMID_SELF || find_domain(rq->xs, domid);
	return reply(rq, yes ? "T" : "F", 2);
}

static int op_get_domain_path(struct request *rq)
{
	char path[32];
	unsigned int domid;
	int rc;

	rc = domid_arg(rq, &domid);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "/local/domain/%u", domid);
	return reply(rq, path, (uint32_t)strlen(path) + 1);
}

/* ------------------------------------------------------------------ */
/* Dispatch                                                           */

#define OP_PRIV 1u  /* dom0 only (EACCES for guests) */
#define OP_NOTID 2u /* the header's tx_id is ignored */

static const struct {
	int (*fn)(struct request *rq);
	unsigned int flags;
} ops[XS_TYPE_COUNT] = {
	[XS_DIRECTORY] = { op_directory, 0 },
	[XS_READ] = { op_read, 0 },
	[XS_GET_PERMS] = { op_get_perms, 0 },
	[XS_WATCH] = { op_watch, OP_NOTID },
	[XS_UNWATCH] = { op_unwatch, OP_NOTID },
	[XS_TRANSACTION_START] = { op_transaction_start, 0 },
	[XS_TRANSACTION_END] = { op_transaction_end, 0 },
	[XS_INTRODUCE] = { op_introduce, OP_PRIV },
	[XS_RELEASE] = { op_release, OP_PRIV },
	[XS_GET_DOMAIN_PATH] = { op_get_domain_path, 0 },
	[XS_WRITE] = { op_write, 0 },
	[XS_MKDIR] = { op_mkdir, 0 },
	[XS_RM] = { op_rm, 0 },
	[XS_SET_PERMS] = { op_set_perms, 0 },
	[XS_IS_DOMAIN_INTRODUCED] = { op_is_domain_introduced, OP_PRIV },
	[XS_RESUME] = { op_resume, OP_PRIV },
	[XS_RESET_WATCHES] = { op_reset_watches, 0 },
	[XS_DIRECTORY_PART] = { op_directory_part, 0 },
};

static void process_message(struct sim_xenstored *xs, struct conn *c)
{
	struct request rq = {
		.xs = xs, .c = c, .hdr = &c->hdr, .body = c->body,
		.len = c->hdr.len,
	};
	uint32_t type = c->hdr.type;
	int rc;

	c->body[c->hdr.len] = '\0';
	if (type >= XS_TYPE_COUNT || !ops[type].fn) {
		rc = -ENOSYS;
	} else if ((ops[type].flags & OP_PRIV) && c->domid != 0) {
		rc = -EACCES;
	} else {
		rc = 0;
		if (!(ops[type].flags & OP_NOTID) && c->hdr.tx_id) {
			rq.tx = conn_find_txn(c, c->hdr.tx_id);
			if (!rq.tx)
				rc = -ENOENT;
		}
		if (!rc)
			rc = ops[type].fn(&rq);
	}
	if (rc && !c->dead)
		reply_error(&rq, -rc);
}

/* ------------------------------------------------------------------ */
/* Connections and the poll loop                                      */

static void conn_kill(struct sim_xenstored *xs, struct conn *c)
{
	if (c->dead)
		return;
	c->dead = true; /* closed and freed at the end of the poll round */
	conn_drop_watches(c);
	conn_drop_txns(xs, c);
}

static void conn_free(struct conn *c)
{
	while (c->out) {
		struct outmsg *m = c->out;

		c->out = m->next;
		free(m);
	}
	close(c->fd);
	free(c);
}

static void conn_read(struct sim_xenstored *xs, struct conn *c)
{
	unsigned int msgs = 0;

	while (!c->dead && msgs < MSGS_PER_ROUND &&
	       c->out_bytes < OUT_PAUSE_BYTES) {
		char *dst;
		size_t want;
		ssize_t r;

		if (c->hdr_got < sizeof(c->hdr)) {
			dst = (char *)&c->hdr + c->hdr_got;
			want = sizeof(c->hdr) - c->hdr_got;
		} else if (c->body_got < c->hdr.len) {
			dst = c->body + c->body_got;
			want = c->hdr.len - c->body_got;
		} else {
			process_message(xs, c);
			c->hdr_got = c->body_got = 0;
			msgs++;
			continue;
		}
		r = recv(c->fd, dst, want, MSG_DONTWAIT);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return;
		if (r <= 0) {
			conn_kill(xs, c); /* gone, or broken */
			return;
		}
		if (c->hdr_got < sizeof(c->hdr)) {
			c->hdr_got += (size_t)r;
			if (c->hdr_got == sizeof(c->hdr) &&
			    c->hdr.len > XENSTORE_PAYLOAD_MAX) {
				/* Out of step for good, as in xenstored. */
				xbd_debug("sim xenstored: dom%u sent a %u-byte "
					  "payload, dropped", c->domid,
					  c->hdr.len);
				conn_kill(xs, c);
				return;
			}
		} else {
			c->body_got += (size_t)r;
		}
	}
}

/* Whether one more connection fits: a guest cannot crowd out dom0. */
static bool conn_allowed(const struct sim_xenstored *xs, unsigned int domid)
{
	const struct conn *c;
	unsigned int mine = 0;

	if (domid == 0)
		return true;
	if (xs->nconns >= MAX_CONNECTIONS)
		return false;
	for (c = xs->conns; c; c = c->next)
		mine += c->domid == domid && !c->dead;
	return mine < GUEST_MAX_CONNECTIONS;
}

static void accept_conns(struct sim_xenstored *xs, int lfd,
			 unsigned int domid)
{
	unsigned int i;

	for (i = 0; i < ACCEPTS_PER_ROUND; i++) {
		int fd = accept4(lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		struct conn *c;

		if (fd < 0) {
			if (errno == EMFILE || errno == ENFILE ||
			    errno == ENOBUFS || errno == ENOMEM) {
				xbd_debug("sim xenstored: accept: %s",
					  strerror(errno));
				xs->accept_paused_until =
					xbd_now_ns() + ACCEPT_PAUSE_NS;
			}
			return;
		}
		c = conn_allowed(xs, domid) ? calloc(1, sizeof(*c)) : NULL;
		if (!c) {
			xbd_debug("sim xenstored: dom%u: connection refused",
				  domid);
			close(fd);
			continue;
		}
		c->fd = fd;
		c->domid = domid;
		c->out_tail = &c->out;
		c->next = xs->conns;
		xs->conns = c;
		xs->nconns++;
	}
}

static int pfd_add(struct sim_xenstored *xs, size_t *n, int fd, short events,
		   enum pfd_kind kind, void *ptr)
{
	if (*n == xs->pfd_cap) {
		size_t cap = xs->pfd_cap ? xs->pfd_cap * 2 : 16;
		struct pollfd *p = realloc(xs->pfds, cap * sizeof(*p));
		struct pfd_owner *o;

		if (!p)
			return -ENOMEM;
		xs->pfds = p;
		o = realloc(xs->owners, cap * sizeof(*o));
		if (!o)
			return -ENOMEM;
		xs->owners = o;
		xs->pfd_cap = cap;
	}
	xs->pfds[*n] = (struct pollfd){ .fd = fd, .events = events };
	xs->owners[*n] = (struct pfd_owner){ .kind = kind, .ptr = ptr };
	(*n)++;
	return 0;
}

/* Without memory for the whole set, serve what fits this round.  Returns
 * the poll timeout: -1, or until accepting resumes. */
static int build_pollfds(struct sim_xenstored *xs, size_t *count)
{
	unsigned long long now = xbd_now_ns();
	bool accepting = now >= xs->accept_paused_until;
	int timeout = accepting ? -1 :
		(int)((xs->accept_paused_until - now) / 1000000 + 1);
	struct domain *d;
	struct conn *c;
	size_t n = 0;

	*count = 0;
	if (pfd_add(xs, &n, xs->wake[0], POLLIN, PFD_WAKE, NULL))
		return 100;
	*count = n;
	if (accepting) {
		if (pfd_add(xs, &n, xs->listen_fd, POLLIN, PFD_LISTEN_DOM0,
			    NULL))
			goto out;
		for (d = xs->domains; d; d = d->next)
			if (pfd_add(xs, &n, d->listen_fd, POLLIN,
				    PFD_LISTEN_GUEST, d))
				goto out;
	}
	for (c = xs->conns; c; c = c->next) {
		short ev = c->out_bytes < OUT_PAUSE_BYTES ? POLLIN : 0;

		if (c->out)
			ev |= POLLOUT;
		if (pfd_add(xs, &n, c->fd, ev, PFD_CONN, c))
			goto out;
	}
out:
	*count = n;
	return timeout;
}

static void reap(struct sim_xenstored *xs)
{
	struct conn **pc = &xs->conns;
	struct domain **pd = &xs->domains;

	while (*pc) {
		struct conn *c = *pc;

		if (c->dead) {
			*pc = c->next;
			xs->nconns--;
			conn_free(c);
		} else {
			pc = &c->next;
		}
	}
	while (*pd) {
		struct domain *d = *pd;

		if (d->released) {
			*pd = d->next;
			free(d->sock_path);
			free(d);
		} else {
			pd = &d->next;
		}
	}
}

static void *server_main(void *arg)
{
	struct sim_xenstored *xs = arg;

	for (;;) {
		size_t n, i;
		int timeout = build_pollfds(xs, &n);
		struct conn *c;

		if (poll(xs->pfds, n, timeout) < 0) {
			if (errno == EINTR)
				continue;
			xbd_err("sim xenstored: poll: %s", strerror(errno));
			break;
		}
		if (n && xs->pfds[0].revents)
			break; /* sim_xenstored_stop() */
		for (i = 1; i < n; i++) {
			short re = xs->pfds[i].revents;
			struct domain *d;

			if (!re)
				continue;
			switch (xs->owners[i].kind) {
			case PFD_WAKE:
				break;
			case PFD_LISTEN_DOM0:
				accept_conns(xs, xs->listen_fd, 0);
				break;
			case PFD_LISTEN_GUEST:
				d = xs->owners[i].ptr;
				if (!d->released)
					accept_conns(xs, d->listen_fd,
						     d->domid);
				break;
			case PFD_CONN:
				c = xs->owners[i].ptr;
				if (re & POLLOUT)
					conn_flush(xs, c);
				if (!c->dead && (re & (POLLIN | POLLHUP | POLLERR)))
					conn_read(xs, c);
				break;
			}
		}
		/* Most replies fit the socket buffer: send them now. */
		for (c = xs->conns; c; c = c->next)
			if (c->out && !c->dead)
				conn_flush(xs, c);
		reap(xs);
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Start and stop                                                     */

/* What xenstored and xen-init-dom0 leave behind; every node is dom0's
 * with no access for others. */
static int seed_store(struct sim_xenstored *xs)
{
	static const char *const paths[] = {
		"/", "/tool", "/tool/xenstored", "/local", "/local/domain",
		"/local/domain/0",
	};
	static const struct xs_permissions none = { .id = 0,
						    .perms = XS_PERM_NONE };
	const struct perm_list pl = { .p = (struct xs_permissions *)&none,
				      .n = 1 };
	size_t i;
	int rc;

	for (i = 0; i < XBD_ARRAY_SIZE(paths); i++) {
		struct node *n = node_alloc(paths[i]);

		if (!n)
			return -ENOMEM;
		rc = perms_copy(&n->perms, &pl);
		if (!rc)
			rc = table_insert(&xs->store, n);
		if (rc) {
			node_free(n);
			return rc;
		}
		n->generation = ++xs->generation;
		if (i > 0) {
			char up[PATH_BUF];
			struct node *parent;

			parent_path(paths[i], up);
			parent = table_find(&xs->store, up);
			rc = node_add_child(parent, base_name(paths[i]));
			if (rc)
				return rc;
		}
	}
	for (i = 0; i < SPECIAL_COUNT; i++) {
		rc = perms_copy(&xs->special[i], &pl);
		if (rc)
			return rc;
	}
	return 0;
}

static void free_state(struct sim_xenstored *xs)
{
	size_t i;

	while (xs->conns) {
		struct conn *c = xs->conns;

		xs->conns = c->next;
		conn_kill(xs, c);
		conn_free(c);
	}
	while (xs->domains) {
		struct domain *d = xs->domains;

		xs->domains = d->next;
		if (!d->released) {
			close(d->listen_fd);
			unlink(d->sock_path);
		}
		free(d->sock_path);
		free(d);
	}
	table_clear(&xs->store);
	forget_deletions(xs);
	for (i = 0; i < SPECIAL_COUNT; i++)
		free(xs->special[i].p);
	free(xs->pfds);
	free(xs->owners);
}

/* Removes our socket, unless someone else's has replaced it since. */
static void remove_socket(struct sim_xenstored *xs)
{
	struct stat st;

	if (!stat(xs->sock_path, &st) && st.st_dev == xs->sock_dev &&
	    st.st_ino == xs->sock_ino)
		unlink(xs->sock_path);
}

int sim_xenstored_start(const char *dir, struct sim_xenstored **out)
{
	struct sim_xenstored *xs;
	sigset_t all, old;
	struct stat st;
	int rc;

	xs = calloc(1, sizeof(*xs));
	if (!xs)
		return -ENOMEM;
	xs->listen_fd = xs->wake[0] = xs->wake[1] = -1;
	xs->dir = strdup(dir);
	if (!xs->dir || asprintf(&xs->sock_path, "%s/%s", dir,
				 XBD_SIM_XS_SOCKET) < 0) {
		xs->sock_path = NULL;
		rc = -ENOMEM;
		goto fail_state;
	}
	rc = seed_store(xs);
	if (rc)
		goto fail_state;
	if (pipe2(xs->wake, O_CLOEXEC | O_NONBLOCK)) {
		rc = -errno;
		goto fail_state;
	}
	rc = listen_unix(xs->sock_path, &xs->listen_fd, &st);
	if (rc) {
		xbd_err("sim xenstored: %s: %s", xs->sock_path,
			xbd_strerror(rc));
		goto fail_pipe;
	}
	xs->sock_dev = st.st_dev;
	xs->sock_ino = st.st_ino;

	/* Signals are the embedding program's business, not this thread's. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	rc = -pthread_create(&xs->thread, NULL, server_main, xs);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (rc) {
		xbd_err("sim xenstored: cannot start its thread: %s",
			xbd_strerror(rc));
		goto fail_socket;
	}
	xs->thread_started = true;
	*out = xs;
	return 0;

fail_socket:
	close(xs->listen_fd);
	remove_socket(xs);
fail_pipe:
	close(xs->wake[0]);
	close(xs->wake[1]);
fail_state:
	free_state(xs);
	free(xs->sock_path);
	free(xs->dir);
	free(xs);
	return rc;
}

void sim_xenstored_stop(struct sim_xenstored *xs)
{
	if (!xs)
		return;
	if (xs->thread_started) {
		while (write(xs->wake[1], "x", 1) < 0 && errno == EINTR)
			;
		pthread_join(xs->thread, NULL);
	}
	free_state(xs);
	close(xs->listen_fd);
	remove_socket(xs);
	close(xs->wake[0]);
	close(xs->wake[1]);
	free(xs->sock_path);
	free(xs->dir);
	free(xs);
}

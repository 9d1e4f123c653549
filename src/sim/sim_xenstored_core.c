/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sim xenstored's core: the store (node tables, canonical paths,
 * permissions), the requests on nodes, and the dispatch of each request
 * to its handler.  The store starts as xenstored and xen-init-dom0 leave
 * it.  Private parts: sim_xenstored.h.
 */
#include "sim_xenstored.h"
#include "xbd/common.h"
#include "xbd/util.h"

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

const char *const xsd_special_names[SPECIAL_COUNT] = {
	[SPECIAL_INTRODUCE] = "@introduceDomain",
	[SPECIAL_RELEASE] = "@releaseDomain",
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

struct node *xsd_table_find(const struct node_table *t, const char *path)
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
void xsd_table_grow(struct node_table *t)
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

int xsd_table_insert(struct node_table *t, struct node *n)
{
	size_t h;

	if (t->count >= t->nbuckets)
		xsd_table_grow(t);
	if (!t->nbuckets)
		return -ENOMEM;
	h = hash_path(n->path) & (t->nbuckets - 1);
	n->hash_next = t->buckets[h];
	t->buckets[h] = n;
	t->count++;
	return 0;
}

void xsd_table_unlink(struct node_table *t, struct node *n)
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

void xsd_node_clear_content(struct node *n)
{
	free(n->value);
	free(n->children);
	free(n->perms.p);
	n->value = n->children = NULL;
	n->perms.p = NULL;
	n->value_len = n->children_len = n->perms.n = 0;
}

void xsd_node_free(struct node *n)
{
	if (!n)
		return;
	xsd_node_clear_content(n);
	free(n->path);
	free(n);
}

void xsd_table_clear(struct node_table *t)
{
	size_t i;

	for (i = 0; i < t->nbuckets; i++) {
		struct node *n = t->buckets[i], *next;

		for (; n; n = next) {
			next = n->hash_next;
			xsd_node_free(n);
		}
	}
	free(t->buckets);
	memset(t, 0, sizeof(*t));
}

struct node *xsd_node_alloc(const char *path)
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

int xsd_perms_copy(struct perm_list *dst, const struct perm_list *src)
{
	bool failed = false;

	dst->p = memdup_or_null(src->p, src->n * sizeof(*src->p), &failed);
	dst->n = failed ? 0 : src->n;
	return failed ? -ENOMEM : 0;
}

struct node *xsd_node_clone(const struct node *src)
{
	struct node *n = xsd_node_alloc(src->path);
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
		xsd_node_free(n);
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

bool xsd_is_valid_path(const char *path)
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

void xsd_parent_path(const char *path, char *out)
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
bool xsd_is_at_or_below(const char *path, const char *top)
{
	size_t len = strlen(top);

	if (!strcmp(top, "/"))
		return path[0] == '/';
	return !strncmp(path, top, len) &&
	       (path[len] == '/' || path[len] == '\0');
}

/* Relative paths are relative to the connection's domain home. */
int xsd_canonicalize(const struct conn *c, const char *in, char *out,
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
unsigned int xsd_perm_for(unsigned int domid, const struct perm_list *pl)
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
	if (xbd_parse_uint(s + 1, UINT16_MAX, &id))
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
/* Request arguments                                                  */

/* The payload is exactly one NUL-terminated string. */
const char *xsd_one_arg(const struct request *rq)
{
	if (!rq->len || memchr(rq->body, '\0', rq->len) != rq->body + rq->len - 1)
		return NULL;
	return rq->body;
}

/* Counts the NUL-terminated strings, filling vec with up to max of them;
 * bytes after the last NUL are not a string (WRITE's value may be). */
unsigned int xsd_get_args(const struct request *rq, const char **vec,
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
	return xsd_canonicalize(rq->c, arg, path, NULL);
}

int xsd_domid_arg(struct request *rq, unsigned int *domid)
{
	const char *arg = xsd_one_arg(rq);
	unsigned long long v;

	if (!arg || xbd_parse_uint(arg, UINT16_MAX, &v))
		return -EINVAL;
	*domid = (unsigned int)v;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Node operations                                                    */

bool xsd_is_guest(const struct request *rq)
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
	rc = xsd_perms_copy(&perms, &parent->perms);
	if (rc)
		return rc;
	if (xsd_is_guest(rq) && perms.n)
		perms.p[0].id = rq->c->domid;
	rc = node_add_child(parent, base_name(path));
	if (rc) {
		free(perms.p);
		return rc;
	}
	rc = xsd_view_create(rq, path, &n);
	if (rc) {
		node_remove_child(parent, base_name(path));
		free(perms.p);
		return rc;
	}
	xsd_view_changed(rq, parent);
	n->perms = perms;
	*out = n;
	return 0;
}

/* Creates path and any missing ancestors (the caller checked, through
 * xsd_get_node(), that the nearest existing ancestor grants write). */
static int create_node(struct request *rq, const char *path, struct node **out)
{
	char prefix[PATH_BUF];
	struct node *parent, *n;
	size_t i;
	int rc;

	if (xsd_is_guest(rq) && rq->xs->store.count >= GUEST_MAX_STORE_NODES)
		return -ENOSPC;
	rc = xsd_view_lookup(rq, "/", &parent);
	if (rc)
		return rc;
	for (i = 1;; i++) {
		if (path[i] != '/' && path[i] != '\0')
			continue;
		memcpy(prefix, path, i);
		prefix[i] = '\0';
		rc = xsd_view_lookup(rq, prefix, &n);
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

/* The node that path argument arg names, if the caller may read it. */
static int readable_node(struct request *rq, const char *arg,
			 struct node **n)
{
	char path[PATH_BUF];
	int rc = path_arg(rq, arg, path);

	return rc ? rc : xsd_get_node(rq, path, XS_PERM_READ, n);
}

static int op_read(struct request *rq)
{
	struct node *n;
	int rc = readable_node(rq, xsd_one_arg(rq), &n);

	if (rc)
		return rc;
	return xsd_reply(rq, n->value, n->value_len);
}

static int op_write(struct request *rq)
{
	const char *vec[1];
	char path[PATH_BUF];
	const char *value;
	uint32_t off, vlen;
	struct node *n;
	int rc;

	if (xsd_get_args(rq, vec, 1) < 1)
		return -EINVAL;
	off = (uint32_t)strlen(vec[0]) + 1;
	value = rq->body + off;
	vlen = rq->len - off;
	rc = path_arg(rq, vec[0], path);
	if (rc)
		return rc;
	rc = xsd_get_node(rq, path, XS_PERM_WRITE, &n);
	if (rc && rc != -ENOENT)
		return rc;
	if (xsd_is_guest(rq) &&
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
	xsd_view_changed(rq, n);
	xsd_fire_watches(rq, path, false, n, NULL);
	return xsd_reply_ok(rq);
}

static int op_mkdir(struct request *rq)
{
	char path[PATH_BUF];
	struct node *n;
	int rc;

	rc = path_arg(rq, xsd_one_arg(rq), path);
	if (!rc)
		rc = xsd_get_node(rq, path, XS_PERM_WRITE, &n);
	if (rc == -ENOENT) {
		rc = create_node(rq, path, &n);
		if (rc)
			return rc;
		xsd_fire_watches(rq, path, false, n, NULL);
	}
	if (rc)
		return rc;
	return xsd_reply_ok(rq);
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
		rc = xsd_view_lookup(rq, cpath, &child);
		if (!rc && child) {
			rc = delete_below(rq, child);
			if (!rc) {
				xsd_fire_watches(rq, cpath, true, child, NULL);
				xsd_view_delete(rq, child);
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

	rc = path_arg(rq, xsd_one_arg(rq), path);
	if (!rc)
		rc = xsd_get_node(rq, path, XS_PERM_WRITE, &n);
	if (rc == -ENOENT) {
		/* Removing a missing node is fine if its parent exists. */
		xsd_parent_path(path, up);
		rc = xsd_view_lookup(rq, up, &parent);
		if (rc)
			return rc;
		return parent ? xsd_reply_ok(rq) : -ENOENT;
	}
	if (rc)
		return rc;
	if (!strcmp(path, "/"))
		return -EINVAL;
	xsd_parent_path(path, up);
	rc = xsd_view_lookup(rq, up, &parent);
	if (rc)
		return rc;
	if (!parent)
		return -EINVAL;
	/* Fire while the node's permissions can still be seen. */
	xsd_fire_watches(rq, path, false, n, NULL);
	rc = delete_below(rq, n);
	if (rc)
		return rc;
	node_remove_child(parent, base_name(path));
	xsd_view_changed(rq, parent);
	xsd_view_delete(rq, n);
	return xsd_reply_ok(rq);
}

static int op_directory(struct request *rq)
{
	struct node *n;
	int rc = readable_node(rq, xsd_one_arg(rq), &n);

	if (rc)
		return rc;
	return xsd_reply(rq, n->children, n->children_len);
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

	if (xsd_get_args(rq, vec, 2) != 2 || xbd_parse_uint(vec[1], UINT32_MAX, &off))
		return -EINVAL;
	rc = path_arg(rq, vec[0], path);
	if (!rc)
		rc = xsd_get_node(rq, path, XS_PERM_READ, &n);
	if (rc)
		return rc;
	genlen = (uint32_t)snprintf(buf, sizeof(buf), "%" PRIu64,
				    n->generation) + 1;
	if (off >= n->children_len) {
		buf[genlen] = '\0';
		return xsd_reply(rq, buf, genlen + 1);
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
	return xsd_reply(rq, buf, genlen + len);
}

static struct perm_list *special_perms(struct sim_xenstored *xs,
				       const char *name)
{
	size_t i;

	for (i = 0; i < SPECIAL_COUNT; i++)
		if (!strcmp(name, xsd_special_names[i]))
			return &xs->special[i];
	return NULL;
}

static int op_get_perms(struct request *rq)
{
	const char *arg = xsd_one_arg(rq);
	char buf[XENSTORE_PAYLOAD_MAX];
	const struct perm_list *pl;
	uint32_t i, len = 0;
	struct node *n;
	int rc;

	if (arg && arg[0] == '@') {
		pl = special_perms(rq->xs, arg);
		if (!pl)
			return -ENOENT;
		if (!(xsd_perm_for(rq->c->domid, pl) & XS_PERM_READ))
			return -EACCES;
	} else {
		rc = readable_node(rq, arg, &n);
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
	return xsd_reply(rq, buf, len);
}

static int set_special_perms(struct request *rq, const char *name,
			     struct perm_list *perms)
{
	struct perm_list *sp = special_perms(rq->xs, name);

	if (!sp)
		return -ENOENT;
	if ((xsd_perm_for(rq->c->domid, sp) & (XS_PERM_WRITE | XS_PERM_OWNER)) !=
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
	unsigned int nstr = xsd_get_args(rq, vec, 1);
	struct node *n;
	uint32_t i;
	int rc;

	if (nstr < 2)
		return -EINVAL;
	perms.n = nstr - 1;
	if (xsd_is_guest(rq) && perms.n > GUEST_MAX_PERMS)
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
			rc = xsd_reply_ok(rq);
		goto out;
	}
	rc = path_arg(rq, vec[0], path);
	if (!rc)
		rc = xsd_get_node(rq, path, XS_PERM_WRITE | XS_PERM_OWNER, &n);
	if (rc)
		goto out;
	/* Only the privileged may give a node away. */
	rc = -EPERM;
	if (xsd_is_guest(rq) && perms.p[0].id != n->perms.p[0].id)
		goto out;
	old = n->perms;
	n->perms = perms;
	perms = old; /* freed below, after the watches saw it */
	xsd_view_changed(rq, n);
	xsd_fire_watches(rq, path, false, n, &old);
	rc = xsd_reply_ok(rq);
out:
	free(perms.p);
	return rc;
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
	[XS_WATCH] = { xsd_op_watch, OP_NOTID },
	[XS_UNWATCH] = { xsd_op_unwatch, OP_NOTID },
	[XS_TRANSACTION_START] = { xsd_op_transaction_start, 0 },
	[XS_TRANSACTION_END] = { xsd_op_transaction_end, 0 },
	[XS_INTRODUCE] = { xsd_op_introduce, OP_PRIV },
	[XS_RELEASE] = { xsd_op_release, OP_PRIV },
	[XS_GET_DOMAIN_PATH] = { xsd_op_get_domain_path, 0 },
	[XS_WRITE] = { op_write, 0 },
	[XS_MKDIR] = { op_mkdir, 0 },
	[XS_RM] = { op_rm, 0 },
	[XS_SET_PERMS] = { op_set_perms, 0 },
	[XS_IS_DOMAIN_INTRODUCED] = { xsd_op_is_domain_introduced, OP_PRIV },
	[XS_RESUME] = { xsd_op_resume, OP_PRIV },
	[XS_RESET_WATCHES] = { xsd_op_reset_watches, 0 },
	[XS_DIRECTORY_PART] = { op_directory_part, 0 },
};

void xsd_process_message(struct sim_xenstored *xs, struct conn *c)
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
			rq.tx = xsd_conn_find_txn(c, c->hdr.tx_id);
			if (!rq.tx)
				rc = -ENOENT;
		}
		if (!rc)
			rc = ops[type].fn(&rq);
	}
	if (rc && !c->dead)
		xsd_reply_error(&rq, -rc);
}

/* ------------------------------------------------------------------ */
/* The initial store                                                  */

/* What xenstored and xen-init-dom0 leave behind; every node is dom0's
 * with no access for others. */
int xsd_seed_store(struct sim_xenstored *xs)
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
		struct node *n = xsd_node_alloc(paths[i]);

		if (!n)
			return -ENOMEM;
		rc = xsd_perms_copy(&n->perms, &pl);
		if (!rc)
			rc = xsd_table_insert(&xs->store, n);
		if (rc) {
			xsd_node_free(n);
			return rc;
		}
		n->generation = ++xs->generation;
		if (i > 0) {
			char up[PATH_BUF];
			struct node *parent;

			xsd_parent_path(paths[i], up);
			parent = xsd_table_find(&xs->store, up);
			rc = node_add_child(parent, base_name(paths[i]));
			if (rc)
				return rc;
		}
	}
	for (i = 0; i < SPECIAL_COUNT; i++) {
		rc = xsd_perms_copy(&xs->special[i], &pl);
		if (rc)
			return rc;
	}
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sim xenstored's transactions: the view a request works on (the
 * store, or a transaction's overlay of it), generations and tombstones
 * that detect conflicts, and commit, which fails with EAGAIN on one as
 * xenstored's does.
 */
#include "sim_xenstored.h"
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

/* ------------------------------------------------------------------ */
/* Views: the global store, or a transaction's overlay on top of it   */

static uint64_t global_generation(const struct sim_xenstored *xs,
				  const char *path)
{
	const struct node *n = xsd_table_find(&xs->store, path);

	if (!n)
		n = xsd_table_find(&xs->tombstones, path);
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

void xsd_forget_deletions(struct sim_xenstored *xs)
{
	xsd_table_clear(&xs->tombstones);
}

static void remember_deletion(struct sim_xenstored *xs, const char *path,
			      uint64_t generation)
{
	struct node *t;

	if (!xs->open_txns)
		return;
	t = xsd_table_find(&xs->tombstones, path);
	if (t) {
		t->generation = generation;
		return;
	}
	t = xs->tombstones.count < MAX_TOMBSTONES ? xsd_node_alloc(path) : NULL;
	if (!t || xsd_table_insert(&xs->tombstones, t)) {
		/* Cannot prove the open transactions unaffected. */
		xsd_node_free(t);
		doom_open_transactions(xs);
		xsd_forget_deletions(xs);
		return;
	}
	t->generation = generation;
}

/* The transaction's own copy of a path, made on first access; recording
 * the generation seen then is what conflict detection checks at commit. */
static int tx_entry(struct request *rq, const char *path, struct node **out)
{
	struct txn *tx = rq->tx;
	struct node *e = xsd_table_find(&tx->nodes, path), *g;

	if (!e) {
		g = xsd_table_find(&rq->xs->store, path);
		e = g ? xsd_node_clone(g) : xsd_node_alloc(path);
		if (!e)
			return -ENOMEM;
		e->absent = !g;
		e->seen_generation = global_generation(rq->xs, path);
		if (xsd_table_insert(&tx->nodes, e)) {
			xsd_node_free(e);
			return -ENOMEM;
		}
	}
	*out = e;
	return 0;
}

/* *out is NULL when the node does not exist in this view. */
int xsd_view_lookup(struct request *rq, const char *path, struct node **out)
{
	struct node *e;
	int rc;

	if (!rq->tx) {
		*out = xsd_table_find(&rq->xs->store, path);
		return 0;
	}
	rc = tx_entry(rq, path, &e);
	if (rc)
		return rc;
	*out = e->absent ? NULL : e;
	return 0;
}

/* Call after changing a node found or created in this view. */
void xsd_view_changed(struct request *rq, struct node *n)
{
	n->generation = ++rq->xs->generation;
	if (rq->tx)
		n->modified = true;
}

int xsd_view_create(struct request *rq, const char *path, struct node **out)
{
	struct node *n;
	int rc;

	if (rq->tx) {
		rc = tx_entry(rq, path, &n);
		if (rc)
			return rc;
		xsd_node_clear_content(n);
		n->absent = false;
	} else {
		n = xsd_node_alloc(path);
		if (!n)
			return -ENOMEM;
		if (xsd_table_insert(&rq->xs->store, n)) {
			xsd_node_free(n);
			return -ENOMEM;
		}
	}
	xsd_view_changed(rq, n);
	*out = n;
	return 0;
}

void xsd_view_delete(struct request *rq, struct node *n)
{
	struct sim_xenstored *xs = rq->xs;

	if (rq->tx) {
		xsd_node_clear_content(n);
		n->absent = true;
		xsd_view_changed(rq, n);
		return;
	}
	xsd_table_unlink(&xs->store, n);
	remember_deletion(xs, n->path, ++xs->generation);
	xsd_node_free(n);
}

/*
 * The node at a canonical path, if this connection may access it as asked.
 * Like xenstored, a missing node reads as EACCES rather than ENOENT when
 * the nearest existing ancestor would not grant the access either, so that
 * a guest learns nothing about places it may not look.
 */
int xsd_get_node(struct request *rq, const char *path, unsigned int want,
		 struct node **out)
{
	char up[PATH_BUF];
	struct node *n;
	int rc;

	*out = NULL;
	if (!xsd_is_valid_path(path))
		return -EINVAL;
	rc = xsd_view_lookup(rq, path, &n);
	if (rc)
		return rc;
	if (n) {
		if ((xsd_perm_for(rq->c->domid, &n->perms) & want) != want)
			return -EACCES;
		*out = n;
		return 0;
	}
	snprintf(up, sizeof(up), "%s", path);
	while (strcmp(up, "/")) {
		char tmp[PATH_BUF];

		xsd_parent_path(up, tmp);
		memcpy(up, tmp, strlen(tmp) + 1);
		rc = xsd_view_lookup(rq, up, &n);
		if (rc)
			return rc;
		if (n)
			return (xsd_perm_for(rq->c->domid, &n->perms) & want) == want
				       ? -ENOENT : -EACCES;
	}
	return -EACCES;
}

/* ------------------------------------------------------------------ */
/* Transactions                                                       */

static void txn_free(struct sim_xenstored *xs, struct txn *tx)
{
	xsd_table_clear(&tx->nodes);
	while (tx->events) {
		struct queued_event *ev = tx->events;

		tx->events = ev->next;
		xsd_queued_event_free(ev);
	}
	free(tx);
	if (--xs->open_txns == 0)
		xsd_forget_deletions(xs);
}

void xsd_conn_drop_txns(struct sim_xenstored *xs, struct conn *c)
{
	while (c->txns) {
		struct txn *tx = c->txns;

		c->txns = tx->next;
		txn_free(xs, tx);
	}
	c->ntxns = 0;
}

struct txn *xsd_conn_find_txn(const struct conn *c, uint32_t id)
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
			    !xsd_table_find(&xs->store, e->path))
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
			xsd_table_grow(&xs->store);
		if (!xs->store.nbuckets)
			goto nomem;
	}

	nfresh = 0;
	for (i = 0; i < tx->nodes.nbuckets; i++) {
		for (e = tx->nodes.buckets[i]; e; e = e->hash_next) {
			if (!e->modified)
				continue;
			g = xsd_table_find(&xs->store, e->path);
			if (e->absent) {
				if (g) {
					xsd_table_unlink(&xs->store, g);
					remember_deletion(xs, g->path,
							  ++xs->generation);
					xsd_node_free(g);
				}
				continue;
			}
			if (!g) {
				g = fresh[nfresh++];
				/* The entry keeps hashing by its path no more:
				 * it is only freed after this. */
				g->path = e->path;
				e->path = NULL;
				xsd_table_insert(&xs->store, g);
			}
			xsd_node_clear_content(g);
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
		xsd_deliver_event(xs, ev->path, ev->exact, &ev->perms);
	return 0;

nomem:
	for (i = 0; i < nfresh; i++)
		free(fresh[i]);
	free(fresh);
	return -ENOMEM;
}

/* ------------------------------------------------------------------ */
/* Transaction operations                                             */

int xsd_op_transaction_start(struct request *rq)
{
	struct conn *c = rq->c;
	char id[16];
	struct txn *tx;

	if (rq->tx)
		return -EBUSY; /* no nesting */
	if (xsd_is_guest(rq) && c->ntxns >= GUEST_MAX_TRANSACTIONS)
		return -ENOSPC;
	tx = calloc(1, sizeof(*tx));
	if (!tx)
		return -ENOMEM;
	do {
		tx->id = ++c->next_txid;
	} while (!tx->id || xsd_conn_find_txn(c, tx->id));
	tx->start_generation = rq->xs->generation;
	tx->events_tail = &tx->events;
	tx->next = c->txns;
	c->txns = tx;
	c->ntxns++;
	rq->xs->open_txns++;
	snprintf(id, sizeof(id), "%u", tx->id);
	return xsd_reply(rq, id, (uint32_t)strlen(id) + 1);
}

int xsd_op_transaction_end(struct request *rq)
{
	const char *arg = xsd_one_arg(rq);
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
	return xsd_reply_ok(rq);
}

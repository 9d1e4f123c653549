/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sim xenstored's watches: registration with xenstored's quotas, the
 * initial firing, events at or below a watched path, the special
 * @introduceDomain and @releaseDomain, and no event for a node the
 * watcher may not read.  A transaction's events wait for its commit.
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
	return (xsd_perm_for(domid, &ep->node) & XS_PERM_READ) ||
	       (ep->parent.n && (xsd_perm_for(domid, &ep->parent) & XS_PERM_READ)) ||
	       (ep->old.n && (xsd_perm_for(domid, &ep->old) & XS_PERM_READ));
}

/*
 * Sends the event for a changed path to every watch it concerns.  exact
 * limits it to watches on that very path (descendants removed by an rm);
 * otherwise it goes to watches at or above the path.
 */
void xsd_deliver_event(struct sim_xenstored *xs, const char *path,
		       bool exact, const struct event_perms *ep)
{
	struct conn *c;
	struct watch *w;

	for (c = xs->conns; c; c = c->next) {
		if (c->dead || !may_see_event(c->domid, ep))
			continue;
		for (w = c->watches; w; w = w->next) {
			if (exact ? !strcmp(w->path, path)
				  : xsd_is_at_or_below(path, w->path))
				xsd_send_event(c, event_path(c, w, path), w->token);
		}
	}
}

void xsd_deliver_special(struct sim_xenstored *xs, enum special_node which)
{
	const char *name = xsd_special_names[which];
	struct conn *c;
	struct watch *w;

	for (c = xs->conns; c; c = c->next) {
		if (c->dead || !(xsd_perm_for(c->domid, &xs->special[which]) &
				 XS_PERM_READ))
			continue;
		for (w = c->watches; w; w = w->next)
			if (!strcmp(w->path, name))
				xsd_send_event(c, name, w->token);
	}
}

void xsd_queued_event_free(struct queued_event *ev)
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
	if (xsd_perms_copy(&ev->perms.node, &ep->node) ||
	    xsd_perms_copy(&ev->perms.parent, &ep->parent) ||
	    xsd_perms_copy(&ev->perms.old, &ep->old)) {
		xsd_queued_event_free(ev);
		return -ENOMEM;
	}
	*tx->events_tail = ev;
	tx->events_tail = &ev->next;
	return 0;
}

/* Fires (or, in a transaction, queues until commit) the watches for a
 * change to node n at path; old: its permissions before a SET_PERMS. */
void xsd_fire_watches(struct request *rq, const char *path, bool exact,
		      const struct node *n, const struct perm_list *old)
{
	struct event_perms ep = { .node = n->perms };
	char up[PATH_BUF];
	struct node *parent = NULL;

	if (old)
		ep.old = *old;
	if (strcmp(path, "/")) {
		xsd_parent_path(path, up);
		if (xsd_view_lookup(rq, up, &parent) == 0 && parent)
			ep.parent = parent->perms;
	}
	if (!rq->tx)
		xsd_deliver_event(rq->xs, path, exact, &ep);
	else if (queue_event(rq->tx, path, exact, &ep))
		rq->tx->doomed = true; /* it could not fire its watches */
}

static void watch_free(struct watch *w)
{
	free(w->path);
	free(w->token);
	free(w);
}

void xsd_conn_drop_watches(struct conn *c)
{
	while (c->watches) {
		struct watch *w = c->watches;

		c->watches = w->next;
		watch_free(w);
	}
	c->nwatches = 0;
}

/* ------------------------------------------------------------------ */
/* Watch operations                                                   */

static int watch_args(struct request *rq, char *path, const char **token,
		      bool *relative)
{
	const char *vec[2];
	int rc;

	if (xsd_get_args(rq, vec, 2) != 2)
		return -EINVAL;
	*token = vec[1];
	if (vec[0][0] == '@') {
		*relative = false;
		if (strlen(vec[0]) > XENSTORE_REL_PATH_MAX)
			return -EINVAL;
		snprintf(path, PATH_BUF, "%s", vec[0]);
		return 0;
	}
	rc = xsd_canonicalize(rq->c, vec[0], path, relative);
	if (rc)
		return rc;
	return xsd_is_valid_path(path) ? 0 : -EINVAL;
}

int xsd_op_watch(struct request *rq)
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
	if (xsd_is_guest(rq) && c->nwatches >= GUEST_MAX_WATCHES)
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
	rc = xsd_reply_ok(rq);
	/* Every watch fires once when set, whatever the permissions. */
	xsd_send_event(c, event_path(c, w, w->path), w->token);
	return rc;
}

int xsd_op_unwatch(struct request *rq)
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
			return xsd_reply_ok(rq);
		}
	}
	return -ENOENT;
}

int xsd_op_reset_watches(struct request *rq)
{
	xsd_conn_drop_watches(rq->c);
	xsd_conn_drop_txns(rq->xs, rq->c);
	rq->tx = NULL;
	return xsd_reply_ok(rq);
}

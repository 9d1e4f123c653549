/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sim xenstored's domains: INTRODUCE opens DIR/xs-dom<N>.sock, whose
 * connections act as guest N; RELEASE closes it and fires
 * @releaseDomain; the domain path queries.
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
	rc = xsd_listen_unix(d->sock_path, &d->listen_fd, NULL);
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
			xsd_conn_kill(xs, c);
}

int xsd_op_introduce(struct request *rq)
{
	const char *vec[3];
	unsigned long long domid, mfn, port;
	int rc;

	if (xsd_get_args(rq, vec, 3) < 3 ||
	    xbd_parse_uint(vec[0], DOMID_FIRST_RESERVED - 1, &domid) || !domid ||
	    xbd_parse_uint(vec[1], UINT64_MAX, &mfn) ||
	    xbd_parse_uint(vec[2], UINT32_MAX, &port) || !port)
		return -EINVAL;
	/* Introducing again only rebinds the event channel in xenstored:
	 * nothing to do here, and no event. */
	if (!find_domain(rq->xs, (unsigned int)domid)) {
		rc = domain_introduce(rq->xs, (unsigned int)domid);
		if (rc)
			return rc;
		xsd_deliver_special(rq->xs, SPECIAL_INTRODUCE);
	}
	return xsd_reply_ok(rq);
}

int xsd_op_release(struct request *rq)
{
	struct domain *d;
	unsigned int domid;
	int rc;

	rc = xsd_domid_arg(rq, &domid);
	if (rc || !domid)
		return -EINVAL;
	d = find_domain(rq->xs, domid);
	if (!d)
		return -ENOENT;
	/* The toolstack, not xenstored, removes /local/domain/<domid>. */
	domain_release(rq->xs, d);
	xsd_deliver_special(rq->xs, SPECIAL_RELEASE);
	return xsd_reply_ok(rq);
}

int xsd_op_resume(struct request *rq)
{
	unsigned int domid;
	int rc;

	rc = xsd_domid_arg(rq, &domid);
	if (rc || !domid)
		return -EINVAL;
	if (!find_domain(rq->xs, domid))
		return -ENOENT;
	return xsd_reply_ok(rq);
}

int xsd_op_is_domain_introduced(struct request *rq)
{
	unsigned int domid;
	bool yes;
	int rc;

	rc = xsd_domid_arg(rq, &domid);
	if (rc)
		return rc;
	yes = domid == 0 || domid == DOMID_SELF || find_domain(rq->xs, domid);
	return xsd_reply(rq, yes ? "T" : "F", 2);
}

int xsd_op_get_domain_path(struct request *rq)
{
	char path[32];
	unsigned int domid;
	int rc;

	rc = xsd_domid_arg(rq, &domid);
	if (rc)
		return rc;
	snprintf(path, sizeof(path), "/local/domain/%u", domid);
	return xsd_reply(rq, path, (uint32_t)strlen(path) + 1);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xbdsh's model: every disk of a VM, whichever backend serves it.
 * xenstore says which disks a VM has and who serves each; the numbers
 * come from the serving xbd process's control socket, from blkback's
 * sysfs counters, or from a read-only look at the ring.
 */
#include "cli/sh.h"
#include "xbd/cli.h"
#include "xbd/common.h"
#include "xbd/qmp.h"
#include "xbd/xenbus.h"
#include "xbd/util.h"

#include <errno.h>
#include <json.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define note_add(d, ...) note_addf(d, false, __VA_ARGS__)
#define note_fail(d, ...) note_addf(d, true, __VA_ARGS__)

static void note_addf(struct sh_disk *d, bool failed, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void note_addf(struct sh_disk *d, bool failed, const char *fmt, ...)
{
	size_t len = strlen(d->note);
	va_list ap;

	if (len && len + 2 < sizeof(d->note)) {
		strcpy(d->note + len, "; ");
		len += 2;
	}
	va_start(ap, fmt);
	vsnprintf(d->note + len, sizeof(d->note) - len, fmt, ap);
	va_end(ap);
	d->failed |= failed;
}

/* ------------------------------------------------------------------ */
/* Platform                                                           */

int sh_platform(struct sh_ctx *ctx, struct xbd_platform **p)
{
	if (ctx->platform) {
		*p = ctx->platform;
		return 0;
	}
	if (ctx->platform_err && !ctx->interactive)
		return ctx->platform_err;
	ctx->platform_err = xbd_cli_open_platform_kind(ctx->platform_kind,
						       &ctx->platform);
	if (ctx->platform_err)
		return ctx->platform_err;
	*p = ctx->platform;
	return 0;
}

void sh_ctx_close(struct sh_ctx *ctx)
{
	xbd_platform_close(ctx->platform);
	ctx->platform = NULL;
}

/* ------------------------------------------------------------------ */
/* xbd processes                                                      */

static const char *run_dir(const struct sh_ctx *ctx)
{
	return ctx->run_dir ? ctx->run_dir : xbd_ctl_run_dir();
}

static void add_problem(struct sh_xbd *x, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void add_problem(struct sh_xbd *x, const char *fmt, ...)
{
	va_list ap;

	if (x->unreachable < XBD_ARRAY_SIZE(x->problems)) {
		va_start(ap, fmt);
		vsnprintf(x->problems[x->unreachable],
			  sizeof(x->problems[0]), fmt, ap);
		va_end(ap);
	}
	x->unreachable++;
}

int sh_xbd_fetch(struct sh_ctx *ctx, const char *request, struct sh_xbd *x)
{
	unsigned i;
	int err;

	memset(x, 0, sizeof(*x));
	err = xbd_ctl_query_all(ctx->run_dir, request, XBD_CTL_TIMEOUT_MS,
				&x->replies, &x->n);
	if (err == -EACCES && geteuid() != 0) {
		xbd_err("needs root (to read the xbd processes' sockets in %s: "
			"%s)", run_dir(ctx), xbd_strerror(err));
		return err;
	}
	if (err) {
		xbd_err("%s: %s", run_dir(ctx), xbd_strerror(err));
		return err;
	}
	for (i = 0; i < x->n; i++) {
		struct xbd_ctl_reply *r = &x->replies[i];
		long pid = (long)r->pid;

		switch (r->err) {
		case 0:
			break;
		case -ECONNREFUSED:
		case -ENOENT:
		case -ECONNRESET:
			/* Nobody listens: if the process is gone too, its
			 * socket is litter that would be reported forever. */
			if (!xbd_proc_alive(&(struct xbd_proc){
				    .pid = r->pid, .start = r->start }) &&
			    unlink(r->socket) == 0)
				add_problem(x, "xbd process %ld is gone (removed "
					    "its stale socket %s)", pid, r->socket);
			else
				add_problem(x, "xbd process %ld does not answer "
					    "on %s: %s", pid, r->socket,
					    xbd_strerror(r->err));
			break;
		case -ETIMEDOUT:
			add_problem(x, "xbd process %ld does not answer (no "
				    "reply within %d ms; stopped or stuck?)",
				    pid, XBD_CTL_TIMEOUT_MS);
			break;
		case -EACCES:
			add_problem(x, "xbd process %ld: permission denied "
				    "(xbdsh needs root)", pid);
			break;
		case -EPROTO:
			add_problem(x, "xbd process %ld: unexpected answer "
				    "(another version of xbd?)", pid);
			break;
		default:
			add_problem(x, "xbd process %ld: %s", pid,
				    xbd_strerror(r->err));
		}
	}
	return 0;
}

void sh_xbd_merge_problems(struct sh_xbd *to, const struct sh_xbd *from)
{
	unsigned i, k;

	for (i = 0; i < from->unreachable &&
		    i < XBD_ARRAY_SIZE(from->problems); i++) {
		for (k = 0; k < to->unreachable &&
			    k < XBD_ARRAY_SIZE(to->problems); k++)
			if (!strcmp(to->problems[k], from->problems[i]))
				break;
		if (k == to->unreachable)
			add_problem(to, "%s", from->problems[i]);
	}
}

void sh_xbd_report(const struct sh_xbd *x)
{
	unsigned i;

	for (i = 0; i < x->unreachable && i < XBD_ARRAY_SIZE(x->problems); i++)
		xbd_err("%s", x->problems[i]);
	if (x->unreachable > XBD_ARRAY_SIZE(x->problems))
		xbd_err("... and %u more xbd processes that do not answer",
			x->unreachable - (unsigned)XBD_ARRAY_SIZE(x->problems));
}

void sh_xbd_free(struct sh_xbd *x)
{
	xbd_ctl_replies_free(x->replies, x->n);
	x->replies = NULL;
	x->n = 0;
}

/* Calls fn for each device of each answering process. */
static void for_each_dev(const struct sh_xbd *x,
			 void (*fn)(struct json_object *dev, pid_t pid, void *arg),
			 void *arg)
{
	unsigned i;
	size_t k;

	for (i = 0; i < x->n; i++) {
		struct json_object *devs = xbd_ctl_get_array(x->replies[i].doc,
							     "devices");

		if (x->replies[i].err || !devs)
			continue;
		for (k = 0; k < json_object_array_length(devs); k++) {
			struct json_object *dev = xbd_ctl_get_object(
				json_object_array_get_idx(devs, k), NULL);

			if (dev)
				fn(dev, x->replies[i].pid, arg);
		}
	}
}

/* A device's domain id; false when the document does not say (or says
 * nonsense), and then the device belongs to no VM known by its id. */
static bool dev_domid(struct json_object *dev, uint16_t *domid)
{
	bool known;
	uint64_t v = xbd_ctl_get_u64(dev, "domid", &known);

	*domid = (uint16_t)v;
	return known && v < XBD_DOMID_SELF;
}

/* ------------------------------------------------------------------ */
/* VMs                                                                */

static bool parse_domid(const char *s, uint16_t *domid)
{
	unsigned long long v;

	if (xbd_parse_uint(s, XBD_DOMID_SELF - 1, &v))
		return false;
	*domid = (uint16_t)v;
	return true;
}

struct vm_search {
	const char *name;
	bool by_id;
	uint16_t domid;
	bool found;
	struct sh_vm vm;
};

static void match_vm(struct json_object *dev, pid_t pid, void *arg)
{
	struct vm_search *s = arg;
	const char *name = xbd_ctl_get_str(dev, "vm");
	uint16_t domid;

	(void)pid;
	if (s->found || !dev_domid(dev, &domid))
		return;
	if ((name && !strcmp(name, s->name)) || (s->by_id && domid == s->domid)) {
		s->found = true;
		snprintf(s->vm.name, sizeof(s->vm.name), "%s",
			 name ? name : s->name);
		s->vm.domid = domid;
	}
}

int sh_vm_resolve(struct sh_ctx *ctx, const struct sh_xbd *x, const char *vm,
		  struct sh_vm *out)
{
	struct xbd_platform *p;
	struct xbd_domain_info *list;
	unsigned n, i;
	uint16_t domid;
	int err;

	memset(out, 0, sizeof(*out));
	if (ctx->xbd_only) {
		struct vm_search s = { .name = vm };

		s.by_id = parse_domid(vm, &s.domid);
		for_each_dev(x, match_vm, &s);
		if (!s.found) {
			xbd_err("%s: no xbd process has a disk of this VM", vm);
			return -ENOENT;
		}
		*out = s.vm;
		return 0;
	}
	err = sh_platform(ctx, &p);
	if (err)
		return err;
	err = xbd_domain_lookup(p, vm, &domid);
	if (err == -ENOENT) {
		xbd_err("%s: no such domain", vm);
		return err;
	}
	if (err) {
		xbd_err("%s: cannot look the domain up: %s", vm,
			xbd_strerror(err));
		return err;
	}
	out->domid = domid;
	snprintf(out->name, sizeof(out->name), "%s", vm);
	/* named by id: show its name */
	if (!xbd_domain_list(p, &list, &n)) {
		for (i = 0; i < n; i++)
			if (list[i].domid == domid)
				snprintf(out->name, sizeof(out->name), "%s",
					 list[i].name);
		free(list);
	}
	return 0;
}

struct vm_collect {
	struct sh_vm *vms;
	unsigned n, cap;
	bool oom;
};

static void collect_vm(struct json_object *dev, pid_t pid, void *arg)
{
	struct vm_collect *c = arg;
	const char *name = xbd_ctl_get_str(dev, "vm");
	uint16_t domid;
	unsigned i;

	(void)pid;
	if (!dev_domid(dev, &domid))
		return;
	for (i = 0; i < c->n; i++)
		if (c->vms[i].domid == domid)
			return;
	if (c->n == c->cap) {
		unsigned cap = c->cap ? c->cap * 2 : 8;
		struct sh_vm *nv = realloc(c->vms, cap * sizeof(*nv));

		if (!nv) {
			c->oom = true;
			return;
		}
		c->vms = nv;
		c->cap = cap;
	}
	snprintf(c->vms[c->n].name, sizeof(c->vms[0].name), "%s",
		 name ? name : "?");
	c->vms[c->n++].domid = domid;
}

static int cmp_vm(const void *a, const void *b)
{
	const struct sh_vm *x = a, *y = b;

	return x->domid < y->domid ? -1 : x->domid > y->domid;
}

int sh_vm_list(struct sh_ctx *ctx, const struct sh_xbd *x, struct sh_vm **vms,
	       unsigned *count)
{
	struct vm_collect c = { 0 };
	struct xbd_domain_info *list;
	struct xbd_platform *p;
	unsigned n, i;
	int err;

	*vms = NULL;
	*count = 0;
	if (ctx->xbd_only) {
		for_each_dev(x, collect_vm, &c);
		if (c.oom) {
			free(c.vms);
			return -ENOMEM;
		}
	} else {
		err = sh_platform(ctx, &p);
		if (err)
			return err;
		err = xbd_domain_list(p, &list, &n);
		if (err) {
			xbd_err("cannot list domains: %s", xbd_strerror(err));
			return err;
		}
		c.vms = calloc(n ? n : 1, sizeof(*c.vms));
		if (!c.vms) {
			free(list);
			return -ENOMEM;
		}
		for (i = 0; i < n; i++) {
			snprintf(c.vms[i].name, sizeof(c.vms[0].name), "%s",
				 list[i].name);
			c.vms[i].domid = list[i].domid;
		}
		c.n = n;
		free(list);
	}
	if (c.n)
		qsort(c.vms, c.n, sizeof(*c.vms), cmp_vm);
	*vms = c.vms;
	*count = c.n;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Disks                                                              */

static int add_disk(struct sh_sample *s, struct sh_disk **out)
{
	struct sh_disk *nd = realloc(s->disks, (s->n + 1) * sizeof(*nd));

	if (!nd)
		return -ENOMEM;
	s->disks = nd;
	*out = &nd[s->n++];
	memset(*out, 0, sizeof(**out));
	(*out)->backend_domid = -1;
	snprintf((*out)->vm, sizeof((*out)->vm), "%s", s->vm);
	(*out)->domid = s->domid;
	return 0;
}

static void fill_requests_from_xbd(struct sh_disk *d, struct json_object *dev)
{
	struct json_object *reqs = xbd_ctl_get_array(dev, "in_flight_requests");
	size_t i, n;

	if (!reqs)
		return; /* the device cannot list them: "not known" */
	n = json_object_array_length(reqs);
	d->total_requests = (unsigned)xbd_ctl_get_u64(dev, "in_flight_total",
						      NULL);
	d->requests = calloc(n ? n : 1, sizeof(*d->requests));
	if (!d->requests)
		return;
	for (i = 0; i < n; i++) {
		struct json_object *q = json_object_array_get_idx(reqs, i);
		const char *op = xbd_ctl_get_str(q, "op");
		struct sh_request *r = &d->requests[i];
		bool known;
		unsigned k;

		r->id = xbd_ctl_get_u64(q, "id", NULL);
		r->op = "unknown";
		for (k = 0; op && k < 8; k++)
			if (!strcmp(op, xbd_ctl_blkif_op_name(k)))
				r->op = xbd_ctl_blkif_op_name(k);
		r->indirect = xbd_ctl_get_bool(q, "indirect", NULL);
		r->nr_segments = (unsigned)xbd_ctl_get_u64(q, "nr_segments", NULL);
		r->sector = xbd_ctl_get_u64(q, "sector", NULL);
		r->age_ns = (int64_t)xbd_ctl_get_u64(q, "age_ns", &known);
		if (!known || r->age_ns < 0)
			r->age_ns = -1;
	}
	d->nr_requests = (unsigned)n;
}

/* The numbers of a disk served (or attached) by an xbd process. */
static void fill_from_xbd(struct sh_disk *d, struct json_object *dev, pid_t pid,
			  bool with_ring)
{
	struct json_object *ring = xbd_ctl_get_object(dev, "ring");
	uint64_t nr_ents = xbd_ctl_get_u64(ring, "nr_ents", NULL);
	uint64_t used = xbd_ctl_get_u64(ring, "used", NULL);
	struct json_object *latency = xbd_ctl_get_object(dev, "latency");
	unsigned op;

	d->xbd = json_object_get(dev);
	d->xbd_pid = pid;
	if (!d->sectors)
		d->sectors = xbd_ctl_get_u64(dev, "sectors", NULL);
	if (!d->params[0] && xbd_ctl_get_str(dev, "image"))
		snprintf(d->params, sizeof(d->params), "%s",
			 xbd_ctl_get_str(dev, "image"));
	/* counters only from a document that has them: zeros made up for
	 * a missing object would read as "idle", not "unknown" */
	d->have_counters = xbd_ctl_get_object(dev, "requests") &&
			   xbd_ctl_get_object(dev, "op_sectors");
	d->counter_source = d->have_counters ? "xbd" : NULL;
	d->c.oo_req = xbd_ctl_get_u64(dev, "ring_full", NULL);
	d->c.rd_req = xbd_ctl_get_u64(dev, "requests.read", NULL);
	d->c.wr_req = xbd_ctl_get_u64(dev, "requests.write", NULL);
	d->c.f_req = xbd_ctl_get_u64(dev, "requests.flush", NULL) +
		     xbd_ctl_get_u64(dev, "requests.barrier", NULL);
	d->c.ds_req = xbd_ctl_get_u64(dev, "requests.discard", NULL);
	d->c.rd_sect = xbd_ctl_get_u64(dev, "op_sectors.read", NULL);
	/* as blkback counts: a barrier's data is written too */
	d->c.wr_sect = xbd_ctl_get_u64(dev, "op_sectors.write", NULL) +
		       xbd_ctl_get_u64(dev, "op_sectors.barrier", NULL);
	d->in_flight = xbd_ctl_get_u64(dev, "in_flight", &d->have_in_flight);
	if (nr_ents && nr_ents <= 0xffff && used <= nr_ents) {
		d->have_ring = true;
		d->ring_source = "xbd";
		d->nr_ents = (unsigned)nr_ents;
		d->req_prod = (uint32_t)xbd_ctl_get_u64(ring, "req_prod", NULL);
		d->req_event = (uint32_t)xbd_ctl_get_u64(ring, "req_event", NULL);
		d->rsp_prod = (uint32_t)xbd_ctl_get_u64(ring, "rsp_prod", NULL);
		d->rsp_event = (uint32_t)xbd_ctl_get_u64(ring, "rsp_event", NULL);
		d->used = (uint32_t)used;
	}
	d->have_latency = latency &&
			  xbd_ctl_get_bool(dev, "stats_enabled", NULL);
	for (op = 0; d->have_latency && op < XBD_OP_COUNT; op++) {
		struct json_object *h = xbd_ctl_get_object(latency,
							   xbd_stat_op_name(op));
		struct json_object *b = xbd_ctl_get_array(h, "buckets");
		struct sh_latency *l = &d->lat[op];
		size_t i;

		l->count = xbd_ctl_get_u64(h, "count", NULL);
		l->total_ns = xbd_ctl_get_u64(h, "total_ns", NULL);
		l->max_ns = xbd_ctl_get_u64(h, "max_ns", NULL);
		l->p50_ns = xbd_ctl_get_u64(h, "p50_ns", NULL);
		l->p90_ns = xbd_ctl_get_u64(h, "p90_ns", NULL);
		l->p99_ns = xbd_ctl_get_u64(h, "p99_ns", NULL);
		l->p999_ns = xbd_ctl_get_u64(h, "p999_ns", NULL);
		/* each bucket placed by its lower bound: a bound that is
		 * not one of ours (another version) lands in the bucket
		 * holding it */
		for (i = 0; b && i < json_object_array_length(b); i++) {
			struct json_object *e = json_object_array_get_idx(b, i);
			bool known;
			uint64_t lo = xbd_ctl_get_u64(e, "lower_ns", &known);

			if (known)
				l->buckets[xbd_latency_bucket(lo)] +=
					xbd_ctl_get_u64(e, "count", NULL);
		}
	}
	if (with_ring)
		fill_requests_from_xbd(d, dev);
}

/* Identity of a disk known only from an xbd process's document. */
static void fill_identity_from_xbd(struct sh_disk *d, struct json_object *dev)
{
	const char *s;

	snprintf(d->vdev, sizeof(d->vdev), "%s",
		 (s = xbd_ctl_get_str(dev, "vdev")) ? s : "?");
	d->devid = (uint32_t)xbd_ctl_get_u64(dev, "devid", NULL);
	snprintf(d->backend, sizeof(d->backend), "%s",
		 (s = xbd_ctl_get_str(dev, "backend")) ? s : "unknown");
	snprintf(d->role, sizeof(d->role), "%s",
		 (s = xbd_ctl_get_str(dev, "role")) && !strcmp(s, "attach") ? "attach"
								  : "guest");
	/* dom0's attach of the VM's disk: its own name, beside the
	 * guest's own disk of the same vdev */
	snprintf(d->name, sizeof(d->name), "%s%s", d->vdev,
		 !strcmp(d->role, "attach") ? "@attach" : "");
	snprintf(d->state, sizeof(d->state), "%s",
		 (s = xbd_ctl_get_str(dev, "state")) ? s : "Unknown");
	snprintf(d->frontend_path, sizeof(d->frontend_path), "%s",
		 (s = xbd_ctl_get_str(dev, "frontend_path")) ? s : "");
	snprintf(d->backend_path, sizeof(d->backend_path), "%s",
		 (s = xbd_ctl_get_str(dev, "backend_path")) ? s : "");
	s = xbd_ctl_get_str(dev, "image");
	if (!s)
		s = xbd_ctl_get_str(dev, "mount");
	snprintf(d->params, sizeof(d->params), "%s", s ? s : "");
	d->read_only = xbd_ctl_get_bool(dev, "read_only", NULL);
	d->sectors = xbd_ctl_get_u64(dev, "sectors", NULL);
	if (!strcmp(d->role, "guest"))
		d->backend_domid = -1;
}

static void fill_requests_from_peek(struct sh_disk *d,
				    const struct xbd_ring_peek *pk)
{
	unsigned i;

	d->total_requests = pk->used;
	d->requests = calloc(pk->nr_requests ? pk->nr_requests : 1,
			     sizeof(*d->requests));
	if (!d->requests)
		return;
	for (i = 0; i < pk->nr_requests; i++) {
		d->requests[i] = (struct sh_request){
			.id = pk->requests[i].id,
			.op = xbd_ctl_blkif_op_name(pk->requests[i].op),
			.indirect = pk->requests[i].indirect,
			.nr_segments = pk->requests[i].nr_segments,
			.sector = pk->requests[i].sector,
			.age_ns = -1,
		};
	}
	d->nr_requests = pk->nr_requests;
}

static void peek_ring(struct xbd_platform *p, const struct xbd_vbd *v,
		      struct sh_disk *d, bool with_ring)
{
	struct xbd_ring_peek *pk;
	int err;

	if (!v->nr_ring_refs)
		return; /* not connected yet: nothing to look at */
	pk = malloc(sizeof(*pk));
	if (!pk)
		return;
	err = xbd_vbd_ring_peek(p, v, pk);
	if (err == -EPERM || err == -EACCES) {
		note_add(d, "ring not visible: its grants are not ours to map");
	} else if (err) {
		note_add(d, "ring not visible: %s", xbd_strerror(err));
	} else if (pk->inconsistent) {
		note_add(d, "ring indices make no sense (req_prod %u, rsp_prod "
			 "%u): broken or being reset", pk->req_prod, pk->rsp_prod);
	} else {
		d->have_ring = true;
		d->ring_source = "mapped";
		d->nr_ents = pk->nr_ents;
		d->req_prod = pk->req_prod;
		d->req_event = pk->req_event;
		d->rsp_prod = pk->rsp_prod;
		d->rsp_event = pk->rsp_event;
		d->used = pk->used;
		if (!d->have_in_flight) {
			d->have_in_flight = true;
			d->in_flight = pk->used;
		}
		if (with_ring)
			fill_requests_from_peek(d, pk);
	}
	free(pk);
}

struct xbd_match {
	const char *backend_path;
	bool by_id;          /* also match on domid + devid */
	uint16_t domid;
	uint32_t devid;
	struct json_object *dev;
	pid_t pid;
};

static void match_xbd_dev(struct json_object *dev, pid_t pid, void *arg)
{
	struct xbd_match *m = arg;
	const char *bp = xbd_ctl_get_str(dev, "backend_path");
	const char *role = xbd_ctl_get_str(dev, "role");
	uint16_t domid;

	if (m->dev || !role || strcmp(role, "serve"))
		return;
	if ((bp && m->backend_path && !strcmp(bp, m->backend_path)) ||
	    (m->by_id && dev_domid(dev, &domid) && domid == m->domid &&
	     (uint32_t)xbd_ctl_get_u64(dev, "devid", NULL) == m->devid)) {
		m->dev = dev;
		m->pid = pid;
	}
}

/* Figures for a disk whose backend neither is an xbd process nor
 * publishes sysfs counters: a qdisk's QEMU in this domain, asked over
 * the QMP socket libxl gave it.  Fills d->c (and have_counters,
 * counter_source) and returns true when it had figures; a qdisk that
 * did not answer gets a note naming why. */
static bool sh_disk_other_source(struct sh_ctx *ctx, const struct xbd_vbd *v,
				 struct sh_disk *d, uint16_t self)
{
	struct xbd_blkback_counters c;
	int err;

	(void)ctx;
	if (v->backend != XBD_VBD_QDISK || v->backend_domid != self)
		return false;
	err = xbd_qmp_disk_counters(NULL, v->domid, v->vdev, 500, &c, NULL);
	if (err) {
		note_add(d, "no counters from QEMU's QMP socket: %s",
			 xbd_strerror(err));
		return true;
	}
	d->have_counters = true;
	d->counter_source = "qmp";
	d->c = c;
	return true;
}

static void disk_from_vbd(struct sh_ctx *ctx, struct xbd_platform *p,
			  const struct sh_xbd *x, const struct xbd_vbd *v,
			  struct sh_disk *d, bool with_ring)
{
	uint16_t self = xbd_platform_self_domid(p);
	struct xbd_match m = { 0 };
	struct xbd_blkback_counters c;
	int err;

	snprintf(d->vdev, sizeof(d->vdev), "%s", v->vdev);
	snprintf(d->name, sizeof(d->name), "%s", v->vdev);
	d->devid = v->devid;
	snprintf(d->backend, sizeof(d->backend), "%s",
		 xbd_vbd_backend_name(v->backend));
	d->backend_domid = v->backend_domid == XBD_DOMID_INVALID ?
			   -1 : v->backend_domid;
	snprintf(d->role, sizeof(d->role), "guest");
	snprintf(d->state, sizeof(d->state), "%s",
		 xbd_xenbus_state_name(v->frontend_state));
	snprintf(d->frontend_path, sizeof(d->frontend_path), "%s",
		 v->frontend_path);
	snprintf(d->backend_path, sizeof(d->backend_path), "%s",
		 v->backend_path);
	snprintf(d->params, sizeof(d->params), "%s", v->params);
	d->read_only = v->read_only;
	d->sectors = v->sectors;

	if (!v->backend_path[0]) {
		note_add(d, "no backend yet");
		return;
	}
	if (v->backend_inconsistent) {
		/* The guest wrote its backend node: nothing comes from what
		 * it names.  An xbd process that serves this very frontend
		 * (by its own account, which the guest cannot write) still
		 * gives this disk's own numbers. */
		snprintf(d->state, sizeof(d->state), "inconsistent");
		note_add(d, "its backend node names %s, which is not this "
			 "disk's backend", v->backend_path);
		m.domid = v->domid;
		m.devid = v->devid;
		m.by_id = true;
		for_each_dev(x, match_xbd_dev, &m);
		if (m.dev)
			fill_from_xbd(d, m.dev, m.pid, with_ring);
		return;
	}
	/* An xbd process may serve any backend type (`xbd sim blkback`,
	 * attach's second instance): its own numbers beat everything. */
	m.backend_path = v->backend_path;
	if (v->backend == XBD_VBD_XBD) {
		m.domid = v->domid;
		m.devid = v->devid;
		m.by_id = true;
	}
	for_each_dev(x, match_xbd_dev, &m);
	if (m.dev) {
		fill_from_xbd(d, m.dev, m.pid, with_ring);
		return;
	}
	if (v->backend == XBD_VBD_XBD) {
		note_fail(d, "served by xbd, but no xbd process answers for it%s",
			  x->unreachable ? " (see above)" : "");
	} else if (v->backend == XBD_VBD_BLKBACK) {
		if (v->backend_domid != self) {
			note_add(d, "counters are in domain %u's sysfs",
				 v->backend_domid);
		} else {
			err = xbd_blkback_read_counters(ctx->sysfs_root, v->domid,
							v->devid, &c);
			if (!err) {
				d->have_counters = true;
				d->counter_source = "sysfs";
				d->c = c;
			} else if (err == -ENOENT) {
				note_add(d, "no blkback counters in %s for "
					 "vbd-%u-%u", ctx->sysfs_root ?
					 ctx->sysfs_root : XBD_SYSFS_DEFAULT_ROOT,
					 v->domid, v->devid);
			} else {
				note_fail(d, "blkback counters of vbd-%u-%u: %s",
					  v->domid, v->devid, xbd_strerror(err));
			}
		}
	} else if (!sh_disk_other_source(ctx, v, d, self)) {
		note_add(d, "%s publishes no counters", d->backend);
	}
	if (d->have_ring)
		return;
	if (v->backend_domid == self)
		peek_ring(p, v, d, with_ring);
	else
		note_add(d, "ring not visible: backend in domain %u",
			 v->backend_domid);
}

struct attach_match {
	const char *frontend_path;
	uint16_t domid;    /* the domain of that frontend */
	bool found;
};

/* An attach whose frontend is that one, in another domain than the VM
 * whose disk it reads (dom0, reading vm1's). */
static void match_attach(struct json_object *dev, pid_t pid, void *arg)
{
	struct attach_match *m = arg;
	const char *role = xbd_ctl_get_str(dev, "role");
	const char *fe = xbd_ctl_get_str(dev, "frontend_path");
	uint16_t domid;

	(void)pid;
	if (role && !strcmp(role, "attach") && fe && !strcmp(fe, m->frontend_path) &&
	    dev_domid(dev, &domid) && domid != m->domid)
		m->found = true;
}

/* Whether a disk xenstore shows (in dom0, usually) is the frontend of
 * an xbd attach: that attach is shown once, under the VM whose disk it
 * reads, not a second time as a disk of its own. */
static bool is_attach_frontend(const struct sh_xbd *x, const struct xbd_vbd *v)
{
	struct attach_match m = {
		.frontend_path = v->frontend_path, .domid = v->domid,
	};

	if (!v->frontend_path[0])
		return false;
	for_each_dev(x, match_attach, &m);
	return m.found;
}

struct extra_devs {
	const struct sh_xbd *x;
	struct sh_sample *s;
	const struct sh_vm *vm;
	bool xbd_only;
	bool with_ring;
	int err;
};

/* xbd devices not found through xenstore: every device in --xbd-only
 * mode; otherwise attach devices, and served devices xenstore does not
 * (yet) show. */
static void add_xbd_dev(struct json_object *dev, pid_t pid, void *arg)
{
	struct extra_devs *e = arg;
	const char *role = xbd_ctl_get_str(dev, "role");
	struct sh_disk *d;
	uint16_t domid;
	unsigned i;

	if (!dev_domid(dev, &domid) || domid != e->vm->domid || e->err)
		return;
	if (role && !strcmp(role, "serve")) {
		struct attach_match m = {
			.frontend_path = xbd_ctl_get_str(dev, "frontend_path"),
			.domid = domid,
		};

		/* the backend of an attach's frontend: the attach is the disk */
		if (m.frontend_path) {
			for_each_dev(e->x, match_attach, &m);
			if (m.found)
				return;
		}
	}
	if (!e->xbd_only && role && !strcmp(role, "serve")) {
		for (i = 0; i < e->s->n; i++)
			if (e->s->disks[i].xbd_pid == pid &&
			    e->s->disks[i].devid ==
			    (uint32_t)xbd_ctl_get_u64(dev, "devid", NULL))
				return;
	}
	e->err = add_disk(e->s, &d);
	if (e->err)
		return;
	fill_identity_from_xbd(d, dev);
	fill_from_xbd(d, dev, pid, e->with_ring);
}

int sh_sample_take(struct sh_ctx *ctx, const struct sh_xbd *x,
		   const struct sh_vm *vm, bool with_ring, struct sh_sample *s)
{
	struct extra_devs e = {
		.x = x, .s = s, .vm = vm, .xbd_only = ctx->xbd_only,
		.with_ring = with_ring,
	};
	struct xbd_platform *p = NULL;
	struct xbd_vbd *vbds = NULL;
	unsigned n = 0, i;
	int err, failed = 0;

	memset(s, 0, sizeof(*s));
	snprintf(s->vm, sizeof(s->vm), "%s", vm->name);
	s->domid = vm->domid;
	s->time_ns = xbd_now_ns();
	if (!ctx->xbd_only) {
		err = sh_platform(ctx, &p);
		if (err)
			return err;
		err = xbd_vbd_list(p, vm->domid, &vbds, &n);
		if (err) {
			xbd_err("%s: cannot read its disks from xenstore: %s",
				vm->name, xbd_strerror(err));
			return err;
		}
		for (i = 0; i < n; i++) {
			struct sh_disk *d;

			if (is_attach_frontend(x, &vbds[i]))
				continue;
			err = add_disk(s, &d);
			if (err) {
				free(vbds);
				sh_sample_free(s);
				return err;
			}
			disk_from_vbd(ctx, p, x, &vbds[i], d, with_ring);
		}
		free(vbds);
	}
	for_each_dev(x, add_xbd_dev, &e);
	if (e.err) {
		sh_sample_free(s);
		return e.err;
	}
	for (i = 0; i < s->n; i++)
		failed |= s->disks[i].failed;
	return failed;
}

void sh_sample_report(const struct sh_sample *s)
{
	unsigned i;

	for (i = 0; i < s->n; i++)
		if (s->disks[i].failed)
			xbd_err("%s: %s: %s", s->vm, s->disks[i].vdev,
				s->disks[i].note);
}

void sh_sample_free(struct sh_sample *s)
{
	unsigned i;

	for (i = 0; i < s->n; i++) {
		json_object_put(s->disks[i].xbd);
		free(s->disks[i].requests);
	}
	free(s->disks);
	s->disks = NULL;
	s->n = 0;
}

struct sh_disk *sh_sample_find(struct sh_sample *s, const char *disk)
{
	unsigned i;
	uint32_t devid;

	for (i = 0; i < s->n; i++)
		if (!strcmp(s->disks[i].name, disk))
			return &s->disks[i];
	for (i = 0; i < s->n; i++)
		if (!strcmp(s->disks[i].vdev, disk))
			return &s->disks[i];
	if (xbd_vdev_to_devid(disk, &devid) == 0)
		for (i = 0; i < s->n; i++)
			if (s->disks[i].devid == devid)
				return &s->disks[i];
	return NULL;
}

const char *sh_disk_server(const struct sh_disk *d)
{
	if (!strcmp(d->role, "attach"))
		return "xbd-attach";
	if (!strcmp(d->backend, "xbd"))
		return "xbd-serve";
	return d->backend[0] ? d->backend : "unknown";
}

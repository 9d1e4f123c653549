/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xbdsh's renderings of its model: text blocks for people, the JSON
 * document for scripts (packaging/xbd-stats-json.md), and the Prometheus
 * text exposition format for monitoring (README, "Watching a fleet with Prometheus").
 */
#include "cli/sh.h"
#include "xbd/common.h"

#include <json.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

/* ------------------------------------------------------------------ */
/* Units                                                              */

void sh_fmt_ns(char *buf, size_t len, uint64_t ns)
{
	if (ns < 1000)
		snprintf(buf, len, "%lluns", (unsigned long long)ns);
	else if (ns < 1000000)
		snprintf(buf, len, "%.1fus", (double)ns / 1e3);
	else if (ns < 1000000000)
		snprintf(buf, len, "%.2fms", (double)ns / 1e6);
	else
		snprintf(buf, len, "%.2fs", (double)ns / 1e9);
}

void sh_fmt_size(char *buf, size_t len, uint64_t bytes)
{
	static const char units[] = "BKMGTPE";
	double v = (double)bytes;
	unsigned u = 0;

	while (v >= 1024 && u + 1 < sizeof(units) - 1) {
		v /= 1024;
		u++;
	}
	if (u == 0)
		snprintf(buf, len, "%lluB", (unsigned long long)bytes);
	else
		snprintf(buf, len, "%.1f%c", v, units[u]);
}

/* The same disk in the previous sample, for rates. */
static const struct sh_disk *prev_disk(const struct sh_sample *prev,
				       const struct sh_disk *d)
{
	unsigned i;

	for (i = 0; prev && i < prev->n; i++)
		if (prev->disks[i].devid == d->devid &&
		    !strcmp(prev->disks[i].role, d->role) &&
		    !strcmp(prev->disks[i].vdev, d->vdev))
			return prev->disks[i].have_counters ? &prev->disks[i]
							    : NULL;
	return NULL;
}

/* Per-second rate of a counter; a counter that went back (device
 * restarted) gives 0 rather than nonsense. */
static double rate(uint64_t now, uint64_t before, uint64_t dt_ns)
{
	if (!dt_ns || now < before)
		return 0;
	return (double)(now - before) * 1e9 / (double)dt_ns;
}

/* ------------------------------------------------------------------ */
/* Text                                                               */

static void print_disk_header(FILE *f, const struct sh_disk *d)
{
	char size[16] = "?";

	if (d->sectors)
		sh_fmt_size(size, sizeof(size), d->sectors * 512);
	fprintf(f, "%s  %s", d->name[0] ? d->name : d->vdev, d->backend);
	if (d->backend_domid >= 0)
		fprintf(f, " in domain %d", d->backend_domid);
	if (!strcmp(d->role, "attach"))
		fprintf(f, ", dom0's xbd attach of %s's %s", d->vm, d->vdev);
	if (d->xbd_pid)
		fprintf(f, " (pid %ld)", (long)d->xbd_pid);
	fprintf(f, ", %s, %s, %s", d->state,
		d->read_only ? "read-only" : "read-write", size);
	if (d->params[0])
		fprintf(f, ", %s", d->params);
	fputc('\n', f);
}

static void print_disk_stats(FILE *f, const struct sh_disk *d,
			     const struct sh_disk *p, uint64_t dt_ns)
{
	char a[16], b[16], c[16], p9[16], e[16];
	unsigned op;
	bool any_latency = false;

	print_disk_header(f, d);
	if (d->have_counters) {
		fprintf(f, "  %-8s %10s %10s %10s %10s %10s\n", "", "OO", "RD",
			"WR", "RSECT", "WSECT");
		fprintf(f, "  %-8s %10llu %10llu %10llu %10llu %10llu\n", "total",
			(unsigned long long)d->c.oo_req,
			(unsigned long long)d->c.rd_req,
			(unsigned long long)d->c.wr_req,
			(unsigned long long)d->c.rd_sect,
			(unsigned long long)d->c.wr_sect);
		if (p)
			fprintf(f, "  %-8s %10.1f %10.1f %10.1f %10.1f %10.1f\n",
				"per sec", rate(d->c.oo_req, p->c.oo_req, dt_ns),
				rate(d->c.rd_req, p->c.rd_req, dt_ns),
				rate(d->c.wr_req, p->c.wr_req, dt_ns),
				rate(d->c.rd_sect, p->c.rd_sect, dt_ns),
				rate(d->c.wr_sect, p->c.wr_sect, dt_ns));
		fprintf(f, "  %-8s flush %llu, discard %llu\n", "other",
			(unsigned long long)d->c.f_req,
			(unsigned long long)d->c.ds_req);
	}
	if (d->have_in_flight || d->have_ring) {
		fprintf(f, "  ");
		if (d->have_in_flight)
			fprintf(f, "in flight %llu", (unsigned long long)d->in_flight);
		if (d->have_in_flight && d->have_ring)
			fprintf(f, ", ");
		if (d->have_ring)
			fprintf(f, "ring %u/%u used, %u free%s", d->used,
				d->nr_ents, d->nr_ents - d->used,
				!strcmp(d->ring_source, "mapped") ?
				" (mapped read-only)" : "");
		fputc('\n', f);
	}
	for (op = 0; d->have_latency && op < XBD_OP_COUNT; op++) {
		const struct sh_latency *l = &d->lat[op];

		if (!l->count)
			continue;
		if (!any_latency)
			fprintf(f, "  %-8s %10s %10s %10s %10s %10s\n", "latency",
				"p50", "p90", "p99", "p99.9", "max");
		any_latency = true;
		sh_fmt_ns(a, sizeof(a), l->p50_ns);
		sh_fmt_ns(b, sizeof(b), l->p90_ns);
		sh_fmt_ns(c, sizeof(c), l->p99_ns);
		sh_fmt_ns(p9, sizeof(p9), l->p999_ns);
		sh_fmt_ns(e, sizeof(e), l->max_ns);
		fprintf(f, "    %-6s %10s %10s %10s %10s %10s\n",
			xbd_stat_op_name(op), a, b, c, p9, e);
	}
	if (d->note[0])
		fprintf(f, "  note: %s\n", d->note);
}

void sh_print_stats(FILE *f, const struct sh_sample *s,
		    const struct sh_sample *prev)
{
	uint64_t dt = prev && s->time_ns > prev->time_ns ?
		      s->time_ns - prev->time_ns : 0;
	unsigned i;

	fprintf(f, "%s (domain %u): %u disk%s\n", s->vm, s->domid, s->n,
		s->n == 1 ? "" : "s");
	for (i = 0; i < s->n; i++) {
		fputc('\n', f);
		print_disk_stats(f, &s->disks[i], prev_disk(prev, &s->disks[i]),
				 dt);
	}
}

void sh_print_ring(FILE *f, const struct sh_sample *s, const struct sh_disk *d)
{
	char age[16];
	unsigned i;

	fprintf(f, "%s ", s->vm);
	print_disk_header(f, d);
	if (!d->have_ring) {
		fprintf(f, "  no ring to show%s%s\n", d->note[0] ? ": " : "",
			d->note);
		return;
	}
	fprintf(f, "  ring: %u entries, %s\n", d->nr_ents,
		!strcmp(d->ring_source, "mapped") ?
		"mapped read-only by xbdsh" : "as the xbd process sees it");
	fprintf(f, "  req_prod %u  req_event %u  rsp_prod %u  rsp_event %u\n",
		d->req_prod, d->req_event, d->rsp_prod, d->rsp_event);
	if (xbd_ctl_get_object(d->xbd, "ring")) {
		static const char *const priv[] = {
			"ring.req_cons", "ring.rsp_prod_pvt",
			"ring.req_prod_pvt", "ring.rsp_cons",
		};

		fprintf(f, " ");
		for (i = 0; i < XBD_ARRAY_SIZE(priv); i++) {
			bool known;
			uint64_t v = xbd_ctl_get_u64(d->xbd, priv[i], &known);

			if (known)
				fprintf(f, " %s %llu", priv[i] + strlen("ring."),
					(unsigned long long)v);
		}
		fprintf(f, "  (private)\n");
	}
	fprintf(f, "  used %u, free %u\n", d->used, d->nr_ents - d->used);
	if (!d->requests) {
		fprintf(f, "  requests in flight: not known\n");
		return;
	}
	fprintf(f, "  requests in flight: %u%s\n", d->total_requests,
		!strcmp(d->ring_source, "mapped") && d->nr_requests ?
		" (read from the ring; best effort)" : "");
	if (!d->nr_requests)
		return;
	fprintf(f, "    %-18s %-8s %14s %5s %10s\n", "ID", "OP", "SECTOR",
		"SEGS", "AGE");
	for (i = 0; i < d->nr_requests; i++) {
		const struct sh_request *r = &d->requests[i];
		char op[16];

		snprintf(op, sizeof(op), "%s%s", r->op, r->indirect ? "*" : "");
		if (r->age_ns >= 0)
			sh_fmt_ns(age, sizeof(age), (uint64_t)r->age_ns);
		else
			snprintf(age, sizeof(age), "-");
		fprintf(f, "    %#-18llx %-8s %14llu %5u %10s\n",
			(unsigned long long)r->id, op,
			(unsigned long long)r->sector, r->nr_segments, age);
	}
	if (d->nr_requests < d->total_requests)
		fprintf(f, "    ... %u more\n", d->total_requests - d->nr_requests);
	fprintf(f, "    (* indirect)\n");
}

void sh_print_list(FILE *f, struct sh_sample *s, unsigned n)
{
	unsigned i, k;

	fprintf(f, "%-16s %5s  %-11s %-10s %-12s %8s  %s\n", "VM", "DOMID",
		"DISK", "SERVER", "STATE", "SIZE", "SOURCE");
	for (i = 0; i < n; i++) {
		if (!s[i].n)
			fprintf(f, "%-16s %5u  %-11s\n", s[i].vm, s[i].domid, "-");
		for (k = 0; k < s[i].n; k++) {
			const struct sh_disk *d = &s[i].disks[k];
			char size[16] = "?";

			if (d->sectors)
				sh_fmt_size(size, sizeof(size), d->sectors * 512);
			fprintf(f, "%-16s %5u  %-11s %-10s %-12s %8s  %s%s",
				s[i].vm, s[i].domid, d->name, sh_disk_server(d),
				d->state, size,
				d->params[0] ? d->params : "-",
				d->read_only ? " (ro)" : "");
			if (d->xbd_pid)
				fprintf(f, " [xbd pid %ld]", (long)d->xbd_pid);
			fputc('\n', f);
		}
	}
}

/* ------------------------------------------------------------------ */
/* JSON                                                               */

static void jadd_u64(struct json_object *o, const char *k, uint64_t v)
{
	json_object_object_add(o, k, json_object_new_uint64(v));
}

static void jadd_str(struct json_object *o, const char *k, const char *v)
{
	json_object_object_add(o, k, v && *v ? json_object_new_string(v) : NULL);
}

/* "time": the wall clock now, ISO 8601 with the zone, for logs. */
static void jadd_wall_time(struct json_object *o)
{
	char when[40];
	time_t now = time(NULL);
	struct tm tm;

	localtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S%z", &tm);
	jadd_str(o, "time", when);
}

static struct json_object *disk_json(const struct sh_disk *d,
				     const struct sh_disk *p, uint64_t dt)
{
	struct json_object *o = json_object_new_object();
	unsigned op;

	jadd_str(o, "vdev", d->vdev);
	jadd_str(o, "name", d->name);
	jadd_u64(o, "devid", d->devid);
	jadd_str(o, "backend", d->backend);
	jadd_str(o, "server", sh_disk_server(d));
	json_object_object_add(o, "backend_domid", d->backend_domid >= 0 ?
			       json_object_new_int(d->backend_domid) : NULL);
	jadd_str(o, "role", d->role);
	jadd_str(o, "state", d->state);
	jadd_str(o, "frontend_path", d->frontend_path);
	jadd_str(o, "backend_path", d->backend_path);
	jadd_str(o, "params", d->params);
	json_object_object_add(o, "read_only",
			       json_object_new_boolean(d->read_only));
	json_object_object_add(o, "sectors", d->sectors ?
			       json_object_new_uint64(d->sectors) : NULL);
	if (d->have_counters) {
		struct json_object *c = json_object_new_object();

		jadd_u64(c, "oo_req", d->c.oo_req);
		jadd_u64(c, "rd_req", d->c.rd_req);
		jadd_u64(c, "wr_req", d->c.wr_req);
		jadd_u64(c, "f_req", d->c.f_req);
		jadd_u64(c, "ds_req", d->c.ds_req);
		jadd_u64(c, "rd_sect", d->c.rd_sect);
		jadd_u64(c, "wr_sect", d->c.wr_sect);
		json_object_object_add(o, "counters", c);
	} else {
		json_object_object_add(o, "counters", NULL);
	}
	jadd_str(o, "counters_source", d->have_counters ? d->counter_source : NULL);
	if (d->have_counters && p) {
		struct json_object *r = json_object_new_object();

		json_object_object_add(r, "rd_req", json_object_new_double(
			rate(d->c.rd_req, p->c.rd_req, dt)));
		json_object_object_add(r, "wr_req", json_object_new_double(
			rate(d->c.wr_req, p->c.wr_req, dt)));
		json_object_object_add(r, "rd_bytes", json_object_new_double(
			512 * rate(d->c.rd_sect, p->c.rd_sect, dt)));
		json_object_object_add(r, "wr_bytes", json_object_new_double(
			512 * rate(d->c.wr_sect, p->c.wr_sect, dt)));
		json_object_object_add(o, "rates", r);
	} else {
		json_object_object_add(o, "rates", NULL);
	}
	json_object_object_add(o, "in_flight", d->have_in_flight ?
			       json_object_new_uint64(d->in_flight) : NULL);
	if (d->have_ring) {
		struct json_object *r = json_object_new_object();

		jadd_str(r, "source", d->ring_source);
		jadd_u64(r, "nr_ents", d->nr_ents);
		jadd_u64(r, "req_prod", d->req_prod);
		jadd_u64(r, "req_event", d->req_event);
		jadd_u64(r, "rsp_prod", d->rsp_prod);
		jadd_u64(r, "rsp_event", d->rsp_event);
		jadd_u64(r, "used", d->used);
		jadd_u64(r, "free", d->nr_ents - d->used);
		json_object_object_add(o, "ring", r);
	} else {
		json_object_object_add(o, "ring", NULL);
	}
	if (d->have_latency) {
		struct json_object *lat = json_object_new_object();

		for (op = 0; op < XBD_OP_COUNT; op++) {
			struct json_object *l = json_object_new_object();

			jadd_u64(l, "count", d->lat[op].count);
			jadd_u64(l, "p50_ns", d->lat[op].p50_ns);
			jadd_u64(l, "p90_ns", d->lat[op].p90_ns);
			jadd_u64(l, "p99_ns", d->lat[op].p99_ns);
			jadd_u64(l, "p999_ns", d->lat[op].p999_ns);
			jadd_u64(l, "max_ns", d->lat[op].max_ns);
			json_object_object_add(lat, xbd_stat_op_name(op), l);
		}
		json_object_object_add(o, "latency", lat);
	} else {
		json_object_object_add(o, "latency", NULL);
	}
	jadd_str(o, "note", d->note);
	json_object_object_add(o, "xbd_pid", d->xbd_pid ?
			       json_object_new_int64(d->xbd_pid) : NULL);
	json_object_object_add(o, "xbd", json_object_get(d->xbd));
	return o;
}

void sh_print_json(FILE *f, const struct sh_sample *s,
		   const struct sh_sample *prev)
{
	struct json_object *doc = json_object_new_object();
	struct json_object *disks = json_object_new_array();
	uint64_t dt = prev && s->time_ns > prev->time_ns ?
		      s->time_ns - prev->time_ns : 0;
	unsigned i;

	json_object_object_add(doc, "version",
			       json_object_new_int(XBD_CTL_VERSION));
	jadd_str(doc, "vm", s->vm);
	jadd_u64(doc, "domid", s->domid);
	jadd_u64(doc, "time_ns", s->time_ns);
	jadd_wall_time(doc);
	for (i = 0; i < s->n; i++)
		json_object_array_add(disks, disk_json(&s->disks[i],
			prev_disk(prev, &s->disks[i]), dt));
	json_object_object_add(doc, "disks", disks);
	fprintf(f, "%s\n", json_object_to_json_string_ext(doc,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(doc);
}

void sh_print_list_json(FILE *f, struct sh_sample *s, unsigned n)
{
	struct json_object *doc = json_object_new_object();
	struct json_object *vms = json_object_new_array();
	unsigned i, k;

	json_object_object_add(doc, "version",
			       json_object_new_int(XBD_CTL_VERSION));
	jadd_wall_time(doc);
	for (i = 0; i < n; i++) {
		struct json_object *vm = json_object_new_object();
		struct json_object *disks = json_object_new_array();

		jadd_str(vm, "vm", s[i].vm);
		jadd_u64(vm, "domid", s[i].domid);
		for (k = 0; k < s[i].n; k++) {
			const struct sh_disk *d = &s[i].disks[k];
			struct json_object *o = json_object_new_object();

			jadd_str(o, "name", d->name);
			jadd_str(o, "vdev", d->vdev);
			jadd_u64(o, "devid", d->devid);
			jadd_str(o, "server", sh_disk_server(d));
			jadd_str(o, "backend", d->backend);
			jadd_str(o, "role", d->role);
			jadd_str(o, "state", d->state);
			json_object_object_add(o, "sectors", d->sectors ?
					       json_object_new_uint64(d->sectors) : NULL);
			jadd_str(o, "params", d->params);
			json_object_object_add(o, "read_only",
					       json_object_new_boolean(d->read_only));
			json_object_object_add(o, "xbd_pid", d->xbd_pid ?
					       json_object_new_int64(d->xbd_pid) : NULL);
			json_object_array_add(disks, o);
		}
		json_object_object_add(vm, "disks", disks);
		json_object_array_add(vms, vm);
	}
	json_object_object_add(doc, "vms", vms);
	fprintf(f, "%s\n", json_object_to_json_string_ext(doc,
		JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(doc);
}

/* ------------------------------------------------------------------ */
/* Prometheus                                                         */

/* A label value: backslash, double quote and newline escaped. */
static void prom_value(FILE *f, const char *v)
{
	for (; *v; v++) {
		if (*v == '\\' || *v == '"')
			fprintf(f, "\\%c", *v);
		else if (*v == '\n')
			fputs("\\n", f);
		else
			fputc(*v, f);
	}
}

static void prom_labels(FILE *f, const struct sh_disk *d, const char *extra_k,
			const char *extra_v, const char *le)
{
	fputs("{vm=\"", f);
	prom_value(f, d->vm);
	fprintf(f, "\",domid=\"%u\",vdev=\"", d->domid);
	prom_value(f, d->vdev);
	fputs("\",server=\"", f);
	prom_value(f, sh_disk_server(d));
	fputs("\",role=\"", f);
	prom_value(f, d->role);
	fputc('"', f);
	if (extra_k) {
		fprintf(f, ",%s=\"", extra_k);
		prom_value(f, extra_v);
		fputc('"', f);
	}
	if (le)
		fprintf(f, ",le=\"%s\"", le);
	fputc('}', f);
}

/* A per-disk metric: its value, or false when the disk has none. */
typedef bool (*prom_get)(const struct sh_disk *d, uint64_t *v);

#define PROM_COUNTER(field)                                              \
	static bool get_##field(const struct sh_disk *d, uint64_t *v)    \
	{                                                                \
		*v = d->c.field;                                         \
		return d->have_counters;                                 \
	}
PROM_COUNTER(oo_req)
PROM_COUNTER(rd_req)
PROM_COUNTER(wr_req)
PROM_COUNTER(f_req)
PROM_COUNTER(ds_req)
PROM_COUNTER(rd_sect)
PROM_COUNTER(wr_sect)

static bool get_in_flight(const struct sh_disk *d, uint64_t *v)
{
	*v = d->in_flight;
	return d->have_in_flight;
}

static bool get_ring_entries(const struct sh_disk *d, uint64_t *v)
{
	*v = d->nr_ents;
	return d->have_ring;
}

static bool get_ring_used(const struct sh_disk *d, uint64_t *v)
{
	*v = d->used;
	return d->have_ring;
}

static bool get_size(const struct sh_disk *d, uint64_t *v)
{
	*v = d->sectors * 512;
	return d->sectors != 0;
}

static bool get_one(const struct sh_disk *d, uint64_t *v)
{
	(void)d;
	*v = 1;
	return true;
}

static const struct prom_metric {
	const char *name, *type, *help;
	prom_get get;
} prom_metrics[] = {
	{ "xbd_vbd_info", "gauge", "A virtual disk (always 1); labels say who serves it", get_one },
	{ "xbd_vbd_size_bytes", "gauge", "Size of the disk", get_size },
	{ "xbd_vbd_oo_requests_total", "counter", "Requests that found no free request or ring slot (xentop OO)", get_oo_req },
	{ "xbd_vbd_read_requests_total", "counter", "Read requests (xentop RD)", get_rd_req },
	{ "xbd_vbd_write_requests_total", "counter", "Write requests (xentop WR)", get_wr_req },
	{ "xbd_vbd_flush_requests_total", "counter", "Flush and barrier requests", get_f_req },
	{ "xbd_vbd_discard_requests_total", "counter", "Discard requests", get_ds_req },
	{ "xbd_vbd_read_sectors_total", "counter", "512-byte sectors read (xentop RSECT)", get_rd_sect },
	{ "xbd_vbd_write_sectors_total", "counter", "512-byte sectors written (xentop WSECT)", get_wr_sect },
	{ "xbd_vbd_in_flight_requests", "gauge", "Requests in flight now", get_in_flight },
	{ "xbd_vbd_ring_entries", "gauge", "Size of the shared ring in requests", get_ring_entries },
	{ "xbd_vbd_ring_used_entries", "gauge", "Ring slots holding requests not yet answered", get_ring_used },
};

/* The xbd-only counters: straight from the control-socket document. */
static void prom_xbd_groups(FILE *f, const struct sh_sample *s, unsigned n)
{
	static const struct {
		const char *name, *help, *object, *label;
	} groups[] = {
		{ "xbd_vbd_errors_total", "Errors by kind (xbd)", "errors", "kind" },
		{ "xbd_vbd_notifications_total", "Event-channel notifications: sent, received, suppressed by the event index (xbd)", "notify", "kind" },
	};
	unsigned g, i, k;

	for (g = 0; g < XBD_ARRAY_SIZE(groups); g++) {
		fprintf(f, "# HELP %s %s\n# TYPE %s counter\n", groups[g].name,
			groups[g].help, groups[g].name);
		for (i = 0; i < n; i++) {
			for (k = 0; k < s[i].n; k++) {
				const struct sh_disk *d = &s[i].disks[k];
				struct json_object *o = xbd_ctl_get_object(
					d->xbd, groups[g].object);

				if (!o)
					continue;
				json_object_object_foreach(o, key, val) {
					bool known;
					uint64_t v = xbd_ctl_get_u64(val, NULL,
								     &known);

					if (!known)
						continue;
					fputs(groups[g].name, f);
					prom_labels(f, d, groups[g].label, key, NULL);
					fprintf(f, " %llu\n", (unsigned long long)v);
				}
			}
		}
	}
}

/*
 * The histogram's fixed bounds: two per power of two, 2^e ns and
 * 1.5 * 2^e ns, from ~1 us to ~34 s.  Both are bucket boundaries of
 * the log-linear scheme (include/xbd/stats.h), so each cumulative count
 * is exact, and every disk of every host has the same bounds: a fleet's
 * percentiles are histogram_quantile() over sum by (le).
 */
#define PROM_FIRST_LOG2 10
#define PROM_LAST_LOG2 34

/* The Prometheus operations: a barrier is a flush with ordering, as
 * the flush counter counts it. */
static const struct {
	const char *name;
	enum xbd_stat_op op, also;
} prom_ops[] = {
	{ "read", XBD_OP_READ, XBD_OP_READ },
	{ "write", XBD_OP_WRITE, XBD_OP_WRITE },
	{ "flush", XBD_OP_FLUSH, XBD_OP_BARRIER },
	{ "discard", XBD_OP_DISCARD, XBD_OP_DISCARD },
};

/* Requests of l (and of also, unless it is l) under bound ns. */
static uint64_t prom_cum(const struct sh_latency *l, const struct sh_latency *also,
			 uint64_t bound)
{
	unsigned b, end = xbd_latency_bucket(bound);
	uint64_t cum = 0;

	for (b = 0; b < end; b++)
		cum += l->buckets[b] + (also != l ? also->buckets[b] : 0);
	return cum;
}

static void prom_latency(FILE *f, const struct sh_sample *s, unsigned n)
{
	const char *name = "xbd_vbd_request_latency_seconds";
	unsigned i, k, op, e, half;

	fprintf(f, "# HELP %s Latency of completed requests (xbd)\n"
		   "# TYPE %s histogram\n", name, name);
	for (i = 0; i < n; i++) {
		for (k = 0; k < s[i].n; k++) {
			const struct sh_disk *d = &s[i].disks[k];

			if (!d->have_latency)
				continue;
			for (op = 0; op < XBD_ARRAY_SIZE(prom_ops); op++) {
				const struct sh_latency *l = &d->lat[prom_ops[op].op];
				const struct sh_latency *a = &d->lat[prom_ops[op].also];
				const char *opn = prom_ops[op].name;
				uint64_t count = l->count + (a != l ? a->count : 0);
				uint64_t total = l->total_ns + (a != l ? a->total_ns : 0);
				char le[32];

				for (e = PROM_FIRST_LOG2; e <= PROM_LAST_LOG2; e++) {
					for (half = 0; half < 2; half++) {
						uint64_t bound = ((uint64_t)2 + half) << e >> 1;

						snprintf(le, sizeof(le), "%.9g",
							 (double)bound / 1e9);
						fprintf(f, "%s_bucket", name);
						prom_labels(f, d, "op", opn, le);
						fprintf(f, " %llu\n", (unsigned long long)
							prom_cum(l, a, bound));
					}
				}
				fprintf(f, "%s_bucket", name);
				prom_labels(f, d, "op", opn, "+Inf");
				fprintf(f, " %llu\n", (unsigned long long)count);
				fprintf(f, "%s_sum", name);
				prom_labels(f, d, "op", opn, NULL);
				fprintf(f, " %.9f\n", (double)total / 1e9);
				fprintf(f, "%s_count", name);
				prom_labels(f, d, "op", opn, NULL);
				fprintf(f, " %llu\n", (unsigned long long)count);
			}
		}
	}
}

void sh_print_prometheus(FILE *f, const struct sh_sample *s, unsigned n,
			 unsigned unreachable_processes)
{
	unsigned m, i, k;

	for (m = 0; m < XBD_ARRAY_SIZE(prom_metrics); m++) {
		const struct prom_metric *pm = &prom_metrics[m];

		fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", pm->name, pm->help,
			pm->name, pm->type);
		for (i = 0; i < n; i++) {
			for (k = 0; k < s[i].n; k++) {
				const struct sh_disk *d = &s[i].disks[k];
				uint64_t v;

				if (!pm->get(d, &v))
					continue;
				fputs(pm->name, f);
				if (pm->get == get_one)
					prom_labels(f, d, "state", d->state, NULL);
				else
					prom_labels(f, d, NULL, NULL, NULL);
				fprintf(f, " %llu\n", (unsigned long long)v);
			}
		}
	}
	prom_xbd_groups(f, s, n);
	prom_latency(f, s, n);
	fprintf(f, "# HELP xbdsh_unreachable_xbd_processes xbd processes that "
		   "did not answer on their control socket\n"
		   "# TYPE xbdsh_unreachable_xbd_processes gauge\n"
		   "xbdsh_unreachable_xbd_processes %u\n", unreachable_processes);
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit test of the control socket (src/ctl.c): the JSON document a server
 * answers, parsed back with json-c and checked field by field against the
 * tables of packaging/xbd-stats-json.md; the "ring" request; errors;
 * registration racing with queries; slow, silent, non-reading and too
 * many clients that must not delay the others; and a killed or stopped
 * process seen by the client within its deadline.
 *
 * The same binary is the fake xbd process the xbdsh shell tests use:
 *   test_ctl --serve [--busy] VM:DOMID:VDEV[:ROLE[:BACKEND]] ...
 * registers one device per argument with known counters, prints
 * "ready SOCKET" and serves until SIGTERM/SIGINT;
 *   test_ctl --serve-doc FILE
 * answers every request with FILE as it is (a hostile or broken peer).
 * And it checks other documents against the tables:
 *   test_ctl --check-doc SECTION [--opaque PATH]... < doc.json
 */
#include "tests/lib/check.h"
#include "xbd/common.h"
#include "xbd/ctl.h"
#include "xbd/stats.h"

#include <errno.h>
#include <json.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;


/* ------------------------------------------------------------------ */
/* Documented fields: the tables of packaging/xbd-stats-json.md        */

struct field {
	char path[160];
	char type[40];
	bool seen;
};

struct field_table {
	struct field *f;
	unsigned n;
};

static char *slurp(FILE *f)
{
	size_t cap = 65536, len = 0;
	char *buf = malloc(cap);

	while (buf) {
		size_t n = fread(buf + len, 1, cap - len - 1, f);

		len += n;
		if (n == 0)
			break;
		if (cap - len < 4096) {
			char *nb = realloc(buf, cap * 2);

			if (!nb) {
				free(buf);
				return NULL;
			}
			buf = nb;
			cap *= 2;
		}
	}
	if (buf)
		buf[len] = '\0';
	return buf;
}

static const char *doc_path(void)
{
	static char path[4096];
	const char *top = getenv("XBD_TOP");

	snprintf(path, sizeof(path), "%s/packaging/xbd-stats-json.md",
		 top && *top ? top : ".");
	return path;
}

/* Reads the rows "| `path` | type | meaning |" between the markers
 * <!-- fields: SECTION --> and <!-- end -->. */
static int load_fields(const char *section, struct field_table *t)
{
	char marker[64], *text, *line, *save = NULL;
	bool inside = false;
	FILE *f = fopen(doc_path(), "r");

	t->f = NULL;
	t->n = 0;
	if (!f) {
		fprintf(stderr, "%s: %s\n", doc_path(), strerror(errno));
		return -1;
	}
	text = slurp(f);
	fclose(f);
	if (!text)
		return -1;
	snprintf(marker, sizeof(marker), "<!-- fields: %s -->", section);
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		char *p, *e, *ty;
		struct field *fld;

		if (!strcmp(line, marker)) {
			inside = true;
			continue;
		}
		if (!inside)
			continue;
		if (!strcmp(line, "<!-- end -->"))
			break;
		if (strncmp(line, "| `", 3))
			continue;
		p = line + 3;
		e = strchr(p, '`');
		if (!e)
			continue;
		*e = '\0';
		ty = e + 1;
		ty += strspn(ty, " |");
		e = strstr(ty, " |");
		if (!e)
			continue;
		*e = '\0';
		fld = realloc(t->f, (t->n + 1) * sizeof(*t->f));
		if (!fld)
			break;
		t->f = fld;
		fld = &t->f[t->n++];
		memset(fld, 0, sizeof(*fld));
		snprintf(fld->path, sizeof(fld->path), "%s", p);
		/* "string\|null" -> "string|null" */
		for (e = ty; *e; e++) {
			size_t l = strlen(fld->type);

			if (e[0] == '\\' && e[1] == '|')
				continue;
			if (l + 1 < sizeof(fld->type)) {
				fld->type[l] = *e;
				fld->type[l + 1] = '\0';
			}
		}
	}
	free(text);
	if (!inside || t->n == 0) {
		fprintf(stderr, "%s: no field table '%s'\n", doc_path(), section);
		return -1;
	}
	return 0;
}

static const char *type_name(struct json_object *o)
{
	switch (json_object_get_type(o)) {
	case json_type_null: return "null";
	case json_type_boolean: return "boolean";
	case json_type_int: return "integer";
	case json_type_double: return "number";
	case json_type_string: return "string";
	case json_type_object: return "object";
	case json_type_array: return "array";
	}
	return "?";
}

static bool type_matches(const char *documented, const char *actual)
{
	char buf[40], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", documented);
	for (tok = strtok_r(buf, "|", &save); tok; tok = strtok_r(NULL, "|", &save))
		if (!strcmp(tok, actual) ||
		    (!strcmp(tok, "number") && !strcmp(actual, "integer")))
			return true;
	return false;
}

static bool is_op_name(const char *k)
{
	unsigned i;

	for (i = 0; i < XBD_OP_COUNT; i++)
		if (!strcmp(k, xbd_stat_op_name(i)))
			return true;
	return false;
}

struct walk {
	struct field_table *t;
	const char *const *opaque;
	unsigned n_opaque;
	int errors;
};

static void walk_json(struct walk *w, struct json_object *o, const char *path,
		      const char *parent_key)
{
	const char *ty = type_name(o);
	unsigned i;

	/* an array's elements that are objects are described field by field */
	if (*path && !(json_object_is_type(o, json_type_object) &&
		       strlen(path) > 2 && !strcmp(path + strlen(path) - 2, "[]"))) {
		struct field *fld = NULL;

		for (i = 0; i < w->t->n; i++)
			if (!strcmp(w->t->f[i].path, path))
				fld = &w->t->f[i];
		if (!fld) {
			fprintf(stderr, "undocumented field %s (%s)\n", path, ty);
			w->errors++;
			return;
		}
		fld->seen = true;
		if (!type_matches(fld->type, ty)) {
			fprintf(stderr, "field %s is %s, documented as %s\n",
				path, ty, fld->type);
			w->errors++;
		}
		for (i = 0; i < w->n_opaque; i++)
			if (!strcmp(w->opaque[i], path))
				return;
	}
	if (json_object_is_type(o, json_type_object)) {
		json_object_object_foreach(o, key, val) {
			char sub[160];
			const char *k = key;

			if (parent_key && !strcmp(parent_key, "latency") &&
			    is_op_name(key))
				k = "<op>";
			snprintf(sub, sizeof(sub), "%s%s%s", path,
				 *path ? "." : "", k);
			walk_json(w, val, sub, key);
		}
	} else if (json_object_is_type(o, json_type_array)) {
		char sub[160];
		size_t n = json_object_array_length(o);

		snprintf(sub, sizeof(sub), "%s[]", path);
		for (i = 0; i < n; i++)
			walk_json(w, json_object_array_get_idx(o, i), sub, NULL);
	}
}

/* Every field of doc documented with its type; with `complete`, every
 * documented field present too.  Returns the number of mismatches. */
static int check_doc(struct json_object *doc, const char *section,
		     bool complete, const char *const *opaque,
		     unsigned n_opaque)
{
	struct field_table t;
	struct walk w = { .t = &t, .opaque = opaque, .n_opaque = n_opaque };
	unsigned i;

	if (load_fields(section, &t))
		return 1;
	walk_json(&w, doc, "", NULL);
	for (i = 0; complete && i < t.n; i++) {
		if (!t.f[i].seen) {
			fprintf(stderr, "documented field %s never appeared\n",
				t.f[i].path);
			w.errors++;
		}
	}
	free(t.f);
	return w.errors;
}

/* ------------------------------------------------------------------ */
/* Fake devices with known counters                                    */

struct fake_dev {
	struct xbd_stats stats;
	enum xbd_ctl_role role;
	uint64_t inflight_start;
	unsigned queries;
	bool alive;
	struct xbd_ctl_dev *reg;
};

static void fake_query(void *opaque, struct xbd_ctl_state *st)
{
	struct fake_dev *d = opaque;
	unsigned i;

	if (!d->alive) {
		fprintf(stderr, "query callback after removal\n");
		abort();
	}
	d->queries++;
	st->xenbus_state = 4;
	st->features.ring_pages = 1;
	st->features.persistent = true;
	st->features.max_indirect_segments = 256;
	st->features.flush = true;
	st->features.discard = true;
	snprintf(st->features.protocol, sizeof(st->features.protocol),
		 "x86_64-abi");
	st->ring.nr_ents = 32;
	st->ring.req_prod = 1013;
	st->ring.rsp_prod = 1010;
	st->ring.req_event = 1014;
	st->ring.rsp_event = 1011;
	if (d->role == XBD_CTL_SERVE) {
		st->ring.req_cons = 1013;
		st->ring.rsp_prod_pvt = 1010;
	} else {
		st->ring.req_prod_pvt = 1013;
		st->ring.rsp_cons = 1010;
	}
	st->inflight_total = 3;
	for (i = 0; st->inflight && i < 3 && i < st->inflight_cap; i++) {
		st->inflight[i] = (struct xbd_ctl_request){
			.id = 100 + i,
			.op = i == 2 ? 6 /* BLKIF_OP_INDIRECT */ : 0,
			.indirect = i == 2,
			.nr_segments = i == 2 ? 64 : 2,
			.sector = 2048 * i,
			.start_ns = i == 1 ? 0 : d->inflight_start,
		};
		if (i == 2)
			st->inflight[i].op = 1;
		st->inflight_len = i + 1;
	}
}

/* The workload whose counts the tests and the shell tests check:
 * 1000 reads of 8 sectors, 10 writes of 16, 2 flushes, 1 discard. */
static void fake_workload(struct fake_dev *d, enum xbd_ctl_role role)
{
	unsigned i;

	xbd_stats_init(&d->stats);
	d->role = role;
	d->alive = true;
	d->inflight_start = xbd_now_ns() - 2000000; /* 2 ms ago */
	for (i = 0; i < 1000; i++)
		xbd_stats_complete(&d->stats, XBD_OP_READ, 8,
				   i < 900 ? 20000 : 400000);
	for (i = 0; i < 10; i++)
		xbd_stats_complete(&d->stats, XBD_OP_WRITE, 16, 50000);
	xbd_stats_complete(&d->stats, XBD_OP_FLUSH, 0, 1000000);
	xbd_stats_complete(&d->stats, XBD_OP_FLUSH, 0, 1000000);
	xbd_stats_complete(&d->stats, XBD_OP_DISCARD, 2048, 3000);
	xbd_stat_add(&d->stats.indirect_reqs, 4);
	xbd_stat_add(&d->stats.ring_full, 3);
	xbd_stat_add(&d->stats.notify_sent, 700);
	xbd_stat_add(&d->stats.notify_received, 800);
	xbd_stat_add(&d->stats.notify_suppressed, 300);
	xbd_stat_add(&d->stats.errors[XBD_ERR_IO], 1);
	xbd_stat_add(&d->stats.pgrants_in_use, 5);
	xbd_stat_add(&d->stats.pgrants_max, 32);
	for (i = 0; i < 3; i++)
		xbd_stats_inflight_inc(&d->stats);
}

static uint32_t vdev_devid(const char *vdev)
{
	if (!strncmp(vdev, "xvd", 3) && vdev[3] >= 'a' && vdev[3] <= 'p' &&
	    !vdev[4])
		return 202u << 8 | (uint32_t)(vdev[3] - 'a') << 4;
	return 0;
}

static int register_fake(struct xbd_ctl *ctl, struct fake_dev *d,
			 const char *vm, uint16_t domid, const char *vdev,
			 enum xbd_ctl_role role, const char *backend)
{
	char fe[96], be[96];
	struct xbd_ctl_device desc = {
		.vm = vm, .domid = domid, .vdev = vdev,
		.devid = vdev_devid(vdev), .role = role, .backend = backend,
		.image = role == XBD_CTL_SERVE ? "/srv/images/disk.raw" : NULL,
		.image_format = role == XBD_CTL_SERVE ? "raw" : NULL,
		.frontend_path = fe, .backend_path = be,
		.mount = role == XBD_CTL_ATTACH ? "/mnt/x/xvda" : NULL,
		.read_only = role == XBD_CTL_ATTACH,
		.sectors = 2097152, .sector_size = 512,
		.stats = &d->stats, .query = fake_query, .opaque = d,
	};

	snprintf(fe, sizeof(fe), "/local/domain/%u/device/vbd/%u", domid,
		 desc.devid);
	snprintf(be, sizeof(be), "/local/domain/0/backend/%s/%u/%u",
		 role == XBD_CTL_SERVE ? "xbd" : "vbd", domid, desc.devid);
	fake_workload(d, role);
	return xbd_ctl_add_device(ctl, &desc, &d->reg);
}

/* ------------------------------------------------------------------ */
/* Helpers over parsed documents                                       */

static struct json_object *get(struct json_object *o, const char *dotted)
{
	char buf[160], *tok, *save = NULL;

	snprintf(buf, sizeof(buf), "%s", dotted);
	for (tok = strtok_r(buf, ".", &save); o && tok;
	     tok = strtok_r(NULL, ".", &save)) {
		struct json_object *next = NULL;

		if (json_object_is_type(o, json_type_array))
			next = json_object_array_get_idx(o, (size_t)atoi(tok));
		else if (!json_object_object_get_ex(o, tok, &next))
			next = NULL;
		o = next;
	}
	return o;
}

static uint64_t get_u64(struct json_object *o, const char *dotted)
{
	struct json_object *v = get(o, dotted);

	if (!v || !json_object_is_type(v, json_type_int)) {
		fprintf(stderr, "%s: missing or not an integer\n", dotted);
		check_failures++;
		return UINT64_MAX;
	}
	return json_object_get_uint64(v);
}

static const char *get_str(struct json_object *o, const char *dotted)
{
	struct json_object *v = get(o, dotted);

	return v && json_object_is_type(v, json_type_string) ?
	       json_object_get_string(v) : "(none)";
}

/* key present with the value null (get() cannot tell null from absent) */
static bool is_null(struct json_object *o, const char *key)
{
	struct json_object *v = NULL;

	return o && json_object_object_get_ex(o, key, &v) && v == NULL;
}

/* The device of a document with the given role ("serve"/"attach"). */
static struct json_object *device_by_role(struct json_object *doc,
					  const char *role)
{
	struct json_object *devs = get(doc, "devices");
	size_t i;

	for (i = 0; devs && i < json_object_array_length(devs); i++) {
		struct json_object *d = json_object_array_get_idx(devs, i);

		if (!strcmp(get_str(d, "role"), role))
			return d;
	}
	return NULL;
}

/* ------------------------------------------------------------------ */
/* Tests                                                               */

static void test_document(struct xbd_ctl *ctl)
{
	struct json_object *doc = NULL, *d;
	int err;

	err = xbd_ctl_query(xbd_ctl_socket_path(ctl), "stats", 1000, &doc);
	CHECK_EQ(err, 0);
	if (err)
		return;
	CHECK_EQ(get_u64(doc, "version"), 1);
	CHECK_EQ(get_u64(doc, "pid"), (uint64_t)getpid());
	CHECK_EQ(json_object_array_length(get(doc, "devices")), 2);
	CHECK(get(doc, "devices.0.in_flight_requests") == NULL);

	d = device_by_role(doc, "serve");
	CHECK(d != NULL);
	if (d) {
		CHECK(!strcmp(get_str(d, "vm"), "vm1"));
		CHECK_EQ(get_u64(d, "domid"), 5);
		CHECK(!strcmp(get_str(d, "vdev"), "xvdb"));
		CHECK_EQ(get_u64(d, "devid"), 51728);
		CHECK(!strcmp(get_str(d, "backend"), "xbd"));
		CHECK(!strcmp(get_str(d, "image"), "/srv/images/disk.raw"));
		CHECK(!strcmp(get_str(d, "state"), "Connected"));
		CHECK_EQ(get_u64(d, "requests.read"), 1000);
		CHECK_EQ(get_u64(d, "op_sectors.read"), 8000);
		CHECK_EQ(get_u64(d, "requests.write"), 10);
		CHECK_EQ(get_u64(d, "op_sectors.write"), 160);
		CHECK_EQ(get_u64(d, "requests.flush"), 2);
		CHECK_EQ(get_u64(d, "requests.discard"), 1);
		CHECK_EQ(get_u64(d, "op_sectors.discard"), 2048);
		CHECK_EQ(get_u64(d, "requests.indirect"), 4);
		CHECK_EQ(get_u64(d, "latency.read.count"), 1000);
		CHECK_EQ(get_u64(d, "latency.write.count"), 10);
		/* 900 reads at 20 us: [19456, 20480); 100 at 400 us:
		 * [393216, 409600), whose middle is above max */
		CHECK_EQ(get_u64(d, "latency.read.p50_ns"), 19968);
		CHECK_EQ(get_u64(d, "latency.read.p90_ns"), 19968);
		CHECK_EQ(get_u64(d, "latency.read.p99_ns"), 400000);
		CHECK_EQ(get_u64(d, "latency.read.p999_ns"), 400000);
		CHECK_EQ(get_u64(d, "latency.read.max_ns"), 400000);
		CHECK_EQ(get_u64(d, "latency.read.buckets.0.lower_ns"), 19456);
		CHECK_EQ(get_u64(d, "latency.read.buckets.0.count"), 900);
		CHECK_EQ(get_u64(d, "latency.read.buckets.1.lower_ns"), 393216);
		CHECK_EQ(get_u64(d, "latency.read.buckets.1.count"), 100);
		CHECK_EQ(json_object_array_length(get(d, "latency.read.buckets")), 2);
		CHECK_EQ(get_u64(d, "in_flight"), 3);
		CHECK_EQ(get_u64(d, "ring_full"), 3);
		CHECK_EQ(get_u64(d, "notify.suppressed"), 300);
		CHECK_EQ(get_u64(d, "errors.io"), 1);
		CHECK_EQ(get_u64(d, "persistent_grants.max"), 32);
		CHECK_EQ(get_u64(d, "ring.nr_ents"), 32);
		CHECK_EQ(get_u64(d, "ring.req_cons"), 1013);
		CHECK(get(d, "ring.rsp_cons") == NULL);
		CHECK_EQ(get_u64(d, "ring.used"), 3);
		CHECK_EQ(get_u64(d, "ring.free"), 29);
		CHECK_EQ(get_u64(d, "features.max_indirect_segments"), 256);
		CHECK(!strcmp(get_str(d, "features.protocol"), "x86_64-abi"));
	}
	d = device_by_role(doc, "attach");
	CHECK(d != NULL);
	if (d) {
		CHECK(json_object_get_boolean(get(d, "read_only")));
		CHECK(is_null(d, "image"));
		CHECK_EQ(get_u64(d, "ring.rsp_cons"), 1010);
		CHECK(get(d, "ring.req_cons") == NULL);
		CHECK_EQ(get_u64(d, "ring.used"), 3);
	}
	json_object_put(doc);
}

static void test_ring_request_and_fields(struct xbd_ctl *ctl)
{
	struct json_object *doc = NULL, *d, *reqs;
	int err;

	err = xbd_ctl_query(xbd_ctl_socket_path(ctl), "ring", 1000, &doc);
	CHECK_EQ(err, 0);
	if (err)
		return;
	d = device_by_role(doc, "serve");
	reqs = get(d, "in_flight_requests");
	CHECK(reqs && json_object_array_length(reqs) == 3);
	CHECK_EQ(get_u64(d, "in_flight_total"), 3);
	if (reqs && json_object_array_length(reqs) == 3) {
		CHECK_EQ(get_u64(reqs, "0.id"), 100);
		CHECK(!strcmp(get_str(reqs, "0.op"), "read"));
		CHECK(get_u64(reqs, "0.age_ns") >= 2000000);
		CHECK(is_null(json_object_array_get_idx(reqs, 1), "age_ns"));
		CHECK(!strcmp(get_str(reqs, "2.op"), "write"));
		CHECK(json_object_get_boolean(get(reqs, "2.indirect")));
		CHECK_EQ(get_u64(reqs, "2.nr_segments"), 64);
		CHECK_EQ(get_u64(reqs, "2.sector"), 4096);
	}
	/* Both roles and the ring request together show every field. */
	CHECK_EQ(check_doc(doc, "ctl", true, NULL, 0), 0);
	json_object_put(doc);
}

static void test_bad_requests(struct xbd_ctl *ctl)
{
	struct json_object *doc = NULL;

	CHECK_EQ(xbd_ctl_query(xbd_ctl_socket_path(ctl), "frobnicate", 1000,
			       &doc), (unsigned long long)-EINVAL);
	CHECK(doc == NULL);
	CHECK_EQ(xbd_ctl_query("/nonexistent/xbd-1.sock", "stats", 1000, &doc),
		 (unsigned long long)-ENOENT);
	/* a request line longer than allowed is refused, not overflowed */
	{
		char longreq[200];

		memset(longreq, 'x', sizeof(longreq) - 1);
		longreq[sizeof(longreq) - 1] = '\0';
		CHECK(xbd_ctl_query(xbd_ctl_socket_path(ctl), longreq, 1000,
				    &doc) < 0);
	}
	CHECK(xbd_ctl_add_device(ctl, &(struct xbd_ctl_device){ .vm = "x" },
				 NULL) == -EINVAL);
}

/* A device whose callback knows its ring but cannot list requests. */
static void ring_only_query(void *opaque, struct xbd_ctl_state *st)
{
	(void)opaque;
	st->ring.nr_ents = 64;
	st->ring.req_prod = st->ring.rsp_prod = 5;
	st->ring.req_cons = st->ring.rsp_prod_pvt = 5;
}

static void test_unlisted_inflight(struct xbd_ctl *ctl)
{
	struct xbd_stats stats;
	struct xbd_ctl_dev *reg = NULL;
	struct xbd_ctl_device desc = {
		.vm = "vm3", .domid = 9, .vdev = "xvde", .stats = &stats,
		.query = ring_only_query,
	};
	struct json_object *doc = NULL, *devs, *d = NULL;
	size_t i;

	xbd_stats_init(&stats);
	CHECK_EQ(xbd_ctl_add_device(ctl, &desc, &reg), 0);
	CHECK_EQ(xbd_ctl_query(xbd_ctl_socket_path(ctl), "ring", 1000, &doc), 0);
	devs = get(doc, "devices");
	for (i = 0; devs && i < json_object_array_length(devs); i++)
		if (!strcmp(get_str(json_object_array_get_idx(devs, i), "vm"), "vm3"))
			d = json_object_array_get_idx(devs, i);
	CHECK(d != NULL);
	CHECK(is_null(d, "in_flight_requests"));
	CHECK(is_null(d, "in_flight_total"));
	CHECK_EQ(get_u64(d, "ring.nr_ents"), 64);
	CHECK_EQ(get_u64(d, "ring.free"), 64);
	CHECK_EQ(check_doc(doc, "ctl", false, NULL, 0), 0);
	json_object_put(doc);
	xbd_ctl_remove_device(ctl, reg);
}

struct racer {
	const char *path;
	volatile bool stop;
	unsigned ok;
};

static void *query_loop(void *arg)
{
	struct racer *r = arg;

	while (!r->stop) {
		struct json_object *doc = NULL;

		if (!xbd_ctl_query(r->path, "ring", 1000, &doc)) {
			r->ok++;
			json_object_put(doc);
		}
	}
	return NULL;
}

/* Devices come and go while a client queries: a callback never runs on
 * a removed device (fake_query aborts; ASan sees a use after free). */
static void test_add_remove_race(struct xbd_ctl *ctl)
{
	struct racer r = { .path = xbd_ctl_socket_path(ctl) };
	pthread_t th;
	uint64_t end = xbd_now_ns() + 300000000ull;
	unsigned rounds = 0;

	CHECK(pthread_create(&th, NULL, query_loop, &r) == 0);
	while (xbd_now_ns() < end) {
		struct fake_dev *d = calloc(1, sizeof(*d));

		if (!d)
			break;
		CHECK_EQ(register_fake(ctl, d, "race", 7, "xvdc", XBD_CTL_SERVE,
				       "xbd"), 0);
		usleep(200);
		xbd_ctl_remove_device(ctl, d->reg);
		d->alive = false;
		free(d);
		rounds++;
	}
	r.stop = true;
	pthread_join(th, NULL);
	printf("race: %u registrations, %u queries answered\n", rounds, r.ok);
	CHECK(rounds > 10);
	CHECK(r.ok > 0);
}

/* A connection that says what the test makes it say, byte by byte. */
static int connect_raw(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

/* Milliseconds until the server hangs up on fd (whatever it sent
 * first), waiting at most max_ms; -1 if it never does. */
static long ms_until_hangup(int fd, uint64_t since, long max_ms)
{
	char buf[4096];

	for (;;) {
		long left = max_ms - (long)((xbd_now_ns() - since) / 1000000);
		struct pollfd pfd = { .fd = fd, .events = POLLIN };

		if (left <= 0 || poll(&pfd, 1, (int)left) <= 0)
			return -1;
		if (recv(fd, buf, sizeof(buf), MSG_DONTWAIT) <= 0)
			return (long)((xbd_now_ns() - since) / 1000000);
	}
}

/* One query answered within max_ms, under the client's own deadline. */
static void check_quick_answer(struct xbd_ctl *ctl, const char *what,
			       unsigned long long max_ms)
{
	struct json_object *doc = NULL;
	uint64_t t0 = xbd_now_ns();
	int err = xbd_ctl_query(xbd_ctl_socket_path(ctl), "stats", 1000, &doc);
	unsigned long long ms = (xbd_now_ns() - t0) / 1000000;

	printf("%s: a query answered in %llu ms (err %d)\n", what, ms, err);
	CHECK_EQ(err, 0);
	CHECK(ms < max_ms);
	json_object_put(doc);
}

struct trickler {
	int fd;
	uint64_t start;
	long closed_ms; /* when the server hung up; -1 never */
};

/* Sends "stats" one byte every 0.9 s, never the newline, until the
 * server hangs up (or 6 s: a server without a whole-request deadline). */
static void *trickle(void *arg)
{
	struct trickler *t = arg;
	const char *msg = "statsstatsstats";
	unsigned i;

	t->closed_ms = -1;
	for (i = 0; msg[i] && t->closed_ms < 0; i++) {
		long ms;

		if (send(t->fd, msg + i, 1, MSG_NOSIGNAL) != 1) {
			t->closed_ms = (long)((xbd_now_ns() - t->start) / 1000000);
			break;
		}
		ms = ms_until_hangup(t->fd, xbd_now_ns(), 900);
		if (ms >= 0)
			t->closed_ms = (long)((xbd_now_ns() - t->start) / 1000000);
		if (xbd_now_ns() - t->start > 6000000000ull)
			break;
	}
	return NULL;
}

/* A client trickling its request a byte every 0.9 s neither delays the
 * others nor keeps its connection past the request deadline (2 s). */
static void test_slow_client(struct xbd_ctl *ctl)
{
	struct trickler t = { .start = xbd_now_ns() };
	pthread_t th;
	int i;

	t.fd = connect_raw(xbd_ctl_socket_path(ctl));
	CHECK(t.fd >= 0);
	if (t.fd < 0)
		return;
	CHECK(pthread_create(&th, NULL, trickle, &t) == 0);
	for (i = 0; i < 3; i++) {
		usleep(300000);
		check_quick_answer(ctl, "slow client connected", 500);
	}
	pthread_join(th, NULL);
	close(t.fd);
	printf("slow client dropped after %ld ms\n", t.closed_ms);
	CHECK(t.closed_ms >= 1500 && t.closed_ms <= 3000);
}

/* More silent clients than the server serves at once: the newest are
 * served, a query still gets its answer at once, and every silent one
 * is dropped by the deadline. */
static void test_silent_clients(struct xbd_ctl *ctl)
{
	enum { N = XBD_CTL_MAX_CLIENTS + 4 };
	int fds[N];
	uint64_t t0 = xbd_now_ns();
	unsigned i, dropped = 0, early = 0;

	for (i = 0; i < N; i++) {
		fds[i] = connect_raw(xbd_ctl_socket_path(ctl));
		CHECK(fds[i] >= 0);
		usleep(2000);
	}
	check_quick_answer(ctl, "silent clients connected", 500);
	for (i = 0; i < N; i++) {
		long ms = fds[i] >= 0 ? ms_until_hangup(fds[i], t0, 4000) : -1;

		dropped += ms >= 0;
		early += ms >= 0 && ms < 1000;
		if (fds[i] >= 0)
			close(fds[i]);
	}
	printf("%u silent clients: %u dropped, %u of them at once\n", N,
	       dropped, early);
	CHECK_EQ(dropped, N);
	/* those beyond the bound made room for the newer ones and the query */
	CHECK(early >= 4);
	CHECK((xbd_now_ns() - t0) / 1000000 < 3500);
}

/* A client that asks for a document larger than the socket buffers
 * and never reads it: the server's writes do not wait on it past the
 * request deadline, and others are answered meanwhile. */
static void test_client_never_reads(struct xbd_ctl *ctl)
{
	enum { NDEV = 300 };
	struct fake_dev *devs = calloc(NDEV, sizeof(*devs));
	uint64_t t0;
	size_t got = 0, doc_len = 0;
	struct json_object *doc = NULL;
	bool eof = false;
	unsigned i;
	int fd;

	if (!devs)
		return;
	for (i = 0; i < NDEV; i++)
		CHECK_EQ(register_fake(ctl, &devs[i], "big", 11, "xvdz",
				       XBD_CTL_SERVE, "xbd"), 0);
	if (!xbd_ctl_query(xbd_ctl_socket_path(ctl), "ring", 2000, &doc))
		doc_len = strlen(json_object_to_json_string_ext(
			doc, JSON_C_TO_STRING_PLAIN));
	json_object_put(doc);
	fd = connect_raw(xbd_ctl_socket_path(ctl));
	CHECK(fd >= 0);
	t0 = xbd_now_ns();
	if (fd >= 0 && send(fd, "ring\n", 5, MSG_NOSIGNAL) == 5) {
		usleep(300000);
		/* 300 devices: building the answer itself takes a while */
		check_quick_answer(ctl, "a client not reading its answer", 900);
		usleep(2500000);
		/* what the server had queued before giving up, then EOF */
		for (;;) {
			char buf[65536];
			struct pollfd pfd = { .fd = fd, .events = POLLIN };
			ssize_t n;

			if (poll(&pfd, 1, 200) <= 0)
				break;
			n = recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
			if (n <= 0) {
				eof = n == 0;
				break;
			}
			got += (size_t)n;
		}
	}
	printf("never-reading client: %zu of %zu bytes queued, %s after "
	       "%llu ms\n", got, doc_len, eof ? "dropped" : "not dropped",
	       (unsigned long long)((xbd_now_ns() - t0) / 1000000));
	CHECK(doc_len > 0);
	CHECK(eof);
	CHECK(got < doc_len);
	if (fd >= 0)
		close(fd);
	for (i = 0; i < NDEV; i++) {
		xbd_ctl_remove_device(ctl, devs[i].reg);
		devs[i].alive = false;
	}
	free(devs);
}

/* Starts this binary as a fake xbd process; returns its pid. */
static pid_t spawn_fake(const char *self, const char *spec)
{
	char *argv[] = { (char *)self, "--serve", (char *)spec, NULL };
	posix_spawn_file_actions_t fa;
	int pfd[2];
	pid_t pid;
	char line[256];
	FILE *f;

	if (pipe(pfd) < 0)
		return -1;
	posix_spawn_file_actions_init(&fa);
	posix_spawn_file_actions_adddup2(&fa, pfd[1], 1);
	posix_spawn_file_actions_addclose(&fa, pfd[0]);
	if (posix_spawn(&pid, self, &fa, NULL, argv, environ) != 0)
		pid = -1;
	posix_spawn_file_actions_destroy(&fa);
	close(pfd[1]);
	f = fdopen(pfd[0], "r");
	if (!f || !fgets(line, sizeof(line), f) || strncmp(line, "ready ", 6)) {
		fprintf(stderr, "fake xbd process did not start\n");
		if (pid > 0) {
			kill(pid, SIGKILL);
			waitpid(pid, NULL, 0);
		}
		pid = -1;
	}
	if (f)
		fclose(f);
	else
		close(pfd[0]);
	return pid;
}

static struct xbd_ctl_reply *reply_of(struct xbd_ctl_reply *r, unsigned n,
				      pid_t pid)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (r[i].pid == pid)
			return &r[i];
	return NULL;
}

/* Queries every process of run_dir: pid's reply carries err (a negative
 * errno), ours none, and the whole query takes less than max_ms. */
static void check_query_all(const char *run_dir, pid_t pid, int err,
			    const char *what, unsigned max_ms)
{
	struct xbd_ctl_reply *r, *mine;
	uint64_t t0 = xbd_now_ns(), ms;
	unsigned n;

	CHECK_EQ(xbd_ctl_query_all(run_dir, "stats", 1000, &r, &n), 0);
	ms = (xbd_now_ns() - t0) / 1000000;
	printf("%s process reported in %llu ms\n", what, (unsigned long long)ms);
	CHECK(ms < max_ms);
	mine = reply_of(r, n, pid);
	CHECK(mine != NULL);
	if (mine)
		CHECK_EQ(mine->err, err);
	CHECK(reply_of(r, n, getpid()) && reply_of(r, n, getpid())->err == 0);
	xbd_ctl_replies_free(r, n);
}

static void test_dead_process(const char *self, const char *run_dir)
{
	struct xbd_ctl_reply *r, *mine;
	unsigned n;
	pid_t a, b;
	char stale[4200];

	a = spawn_fake(self, "vmk:9:xvdc");
	CHECK(a > 0);
	if (a <= 0)
		return;
	CHECK_EQ(xbd_ctl_query_all(run_dir, "stats", 1000, &r, &n), 0);
	mine = reply_of(r, n, a);
	CHECK(mine && mine->err == 0);
	if (mine && !mine->err)
		CHECK(!strcmp(get_str(mine->doc, "devices.0.vm"), "vmk"));
	CHECK(reply_of(r, n, getpid()) && reply_of(r, n, getpid())->err == 0);
	xbd_ctl_replies_free(r, n);

	/* killed: its socket stays behind, nobody listens */
	kill(a, SIGKILL);
	waitpid(a, NULL, 0);
	snprintf(stale, sizeof(stale), "%s/xbd-%ld.sock", run_dir, (long)a);
	CHECK(access(stale, F_OK) == 0);
	check_query_all(run_dir, a, -ECONNREFUSED, "killed", 1000);

	/* the next server to start removes the stale socket */
	b = spawn_fake(self, "vms:10:xvdd");
	CHECK(b > 0);
	if (b <= 0)
		return;
	CHECK(access(stale, F_OK) < 0);

	/* stopped: alive but not answering; the deadline holds */
	kill(b, SIGSTOP);
	{
		int st;

		CHECK(waitpid(b, &st, WUNTRACED) == b && WIFSTOPPED(st));
	}
	check_query_all(run_dir, b, -ETIMEDOUT, "stopped", 1500);
	kill(b, SIGKILL);
	waitpid(b, NULL, 0);
}

static void test_run_dir_checks(const char *run_dir)
{
	char unsafe[4200];
	struct xbd_ctl *ctl = NULL;
	struct xbd_ctl_reply *r;
	unsigned n;

	/* a directory others may write to is refused */
	snprintf(unsafe, sizeof(unsafe), "%s/unsafe", run_dir);
	CHECK(mkdir(unsafe, 0777) == 0);
	chmod(unsafe, 0777);
	setenv("XBD_RUN_DIR", unsafe, 1);
	CHECK(xbd_ctl_start(&ctl) == -EPERM);
	/* a missing run directory means no xbd process: no error */
	snprintf(unsafe, sizeof(unsafe), "%s/none", run_dir);
	CHECK_EQ(xbd_ctl_query_all(unsafe, "stats", 1000, &r, &n), 0);
	CHECK_EQ(n, 0);
	xbd_ctl_replies_free(r, n);
	setenv("XBD_RUN_DIR", run_dir, 1);
}

/* ------------------------------------------------------------------ */
/* Modes                                                               */

static volatile sig_atomic_t stop_busy;

struct busy {
	struct fake_dev *devs;
	unsigned n;
};

static void *busy_loop(void *arg)
{
	struct busy *b = arg;

	while (!stop_busy) {
		unsigned i, k;

		for (i = 0; i < b->n; i++)
			for (k = 0; k < 10; k++)
				xbd_stats_complete(&b->devs[i].stats,
						   XBD_OP_READ, 8, 30000);
		usleep(10000);
	}
	return NULL;
}

static int serve_mode(int argc, char **argv)
{
	struct xbd_ctl *ctl;
	struct fake_dev *devs;
	struct busy busy = { 0 };
	pthread_t th;
	bool is_busy = false;
	sigset_t set;
	int i, sig, err, n = 0;

	devs = calloc((size_t)argc + 1, sizeof(*devs));
	if (!devs)
		return 1;
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	err = xbd_ctl_start(&ctl);
	if (err) {
		free(devs);
		return 1;
	}
	for (i = 0; i < argc; i++) {
		char spec[256], *vm, *dom, *vdev, *role, *be, *save = NULL;

		if (!strcmp(argv[i], "--busy")) {
			is_busy = true;
			continue;
		}
		snprintf(spec, sizeof(spec), "%s", argv[i]);
		vm = strtok_r(spec, ":", &save);
		dom = strtok_r(NULL, ":", &save);
		vdev = strtok_r(NULL, ":", &save);
		role = strtok_r(NULL, ":", &save);
		be = strtok_r(NULL, ":", &save);
		if (!vm || !dom || !vdev) {
			fprintf(stderr, "bad device spec '%s'\n", argv[i]);
			continue;
		}
		err = register_fake(ctl, &devs[n], vm, (uint16_t)atoi(dom), vdev,
				    role && !strcmp(role, "attach") ?
				    XBD_CTL_ATTACH : XBD_CTL_SERVE,
				    be ? be : "xbd");
		if (!err)
			n++;
	}
	busy.devs = devs;
	busy.n = (unsigned)n;
	if (is_busy && pthread_create(&th, NULL, busy_loop, &busy) != 0)
		is_busy = false;
	printf("ready %s\n", xbd_ctl_socket_path(ctl));
	fflush(stdout);
	sigwait(&set, &sig);
	stop_busy = 1;
	if (is_busy)
		pthread_join(th, NULL);
	xbd_ctl_stop(ctl);
	free(devs);
	return 0;
}

/* A fake xbd process that answers every request with the document in
 * FILE, whatever it holds: the hostile peer of the reply parsers. */
static int serve_doc_mode(int argc, char **argv)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char *doc;
	FILE *f;
	int lfd;

	if (argc != 1 || !(f = fopen(argv[0], "r")))
		return 2;
	doc = slurp(f);
	fclose(f);
	if (!doc)
		return 1;
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/xbd-%ld.sock",
		 xbd_ctl_run_dir(), (long)getpid());
	mkdir(xbd_ctl_run_dir(), 0700);
	lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0 || bind(lfd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(lfd, 16) < 0) {
		perror(sa.sun_path);
		free(doc);
		return 1;
	}
	printf("ready %s\n", sa.sun_path);
	fflush(stdout);
	signal(SIGPIPE, SIG_IGN);
	for (;;) {
		int fd = accept(lfd, NULL, NULL);
		char line[64];

		if (fd < 0)
			continue;
		if (recv(fd, line, sizeof(line), 0) >= 0 &&
		    send(fd, doc, strlen(doc), MSG_NOSIGNAL) >= 0)
			shutdown(fd, SHUT_WR);
		close(fd);
	}
}

static int check_doc_mode(int argc, char **argv)
{
	const char *opaque[16];
	unsigned n_opaque = 0;
	struct json_tokener *tok;
	struct json_object *doc;
	char *text, *line, *save = NULL;
	int i, errors = 0, docs = 0;

	if (argc < 1)
		return 2;
	for (i = 1; i + 1 < argc && n_opaque < 16; i += 2)
		if (!strcmp(argv[i], "--opaque"))
			opaque[n_opaque++] = argv[i + 1];
	text = slurp(stdin);
	if (!text)
		return 1;
	/* one document per line (xbdsh -w prints several) */
	for (line = strtok_r(text, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save)) {
		tok = json_tokener_new();
		doc = json_tokener_parse_ex(tok, line, (int)strlen(line));
		if (!doc || json_tokener_get_error(tok) != json_tokener_success) {
			fprintf(stderr, "not a JSON document: %.60s\n", line);
			errors++;
		} else {
			errors += check_doc(doc, argv[0], false, opaque, n_opaque);
			docs++;
		}
		json_object_put(doc);
		json_tokener_free(tok);
	}
	free(text);
	printf("%d document(s), %d mismatch(es)\n", docs, errors);
	return errors || !docs ? 1 : 0;
}

int main(int argc, char **argv)
{
	char run_dir[] = "/tmp/xbd-test-ctl.XXXXXX";
	struct fake_dev *serve_dev, *attach_dev;
	struct xbd_ctl *ctl = NULL;
	char cmd[128], sock[4200] = "";
	int err;

	if (argc > 1 && !strcmp(argv[1], "--serve"))
		return serve_mode(argc - 2, argv + 2);
	if (argc > 1 && !strcmp(argv[1], "--serve-doc"))
		return serve_doc_mode(argc - 2, argv + 2);
	if (argc > 1 && !strcmp(argv[1], "--check-doc"))
		return check_doc_mode(argc - 2, argv + 2);

	signal(SIGPIPE, SIG_IGN);
	if (!mkdtemp(run_dir)) {
		perror("mkdtemp");
		return 1;
	}
	setenv("XBD_RUN_DIR", run_dir, 1);
	CHECK(!strcmp(xbd_ctl_run_dir(), run_dir));

	err = xbd_ctl_start(&ctl);
	CHECK_EQ(err, 0);
	serve_dev = calloc(1, sizeof(*serve_dev));
	attach_dev = calloc(1, sizeof(*attach_dev));
	if (!err && serve_dev && attach_dev) {
		struct stat st;

		CHECK(stat(xbd_ctl_socket_path(ctl), &st) == 0 &&
		      (st.st_mode & 0777) == 0600);
		CHECK_EQ(register_fake(ctl, serve_dev, "vm1", 5, "xvdb",
				       XBD_CTL_SERVE, "xbd"), 0);
		CHECK_EQ(register_fake(ctl, attach_dev, "vm2", 6, "xvda",
				       XBD_CTL_ATTACH, "blkback"), 0);
		test_document(ctl);
		test_ring_request_and_fields(ctl);
		test_bad_requests(ctl);
		test_unlisted_inflight(ctl);
		test_add_remove_race(ctl);
		test_slow_client(ctl);
		test_silent_clients(ctl);
		test_client_never_reads(ctl);
		test_dead_process(argv[0], run_dir);
		xbd_ctl_remove_device(ctl, serve_dev->reg);
		serve_dev->alive = false;
		/* attach_dev stays registered: stop drops it */
		test_run_dir_checks(run_dir);
	}
	if (ctl)
		snprintf(sock, sizeof(sock), "%s", xbd_ctl_socket_path(ctl));
	xbd_ctl_stop(ctl);
	CHECK(access(sock, F_OK) < 0); /* stop removes the socket */
	if (attach_dev)
		attach_dev->alive = false;
	free(serve_dev);
	free(attach_dev);
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", run_dir);
	if (system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", run_dir);
	return check_report("test_ctl");
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `xbd serve` end to end on the sim: a test process acts as the VM and
 * connects the hot-plugged disk with xbd's own blkfront (src/frontend.c),
 * then writes and reads through the ring and checks the image file byte
 * for byte.  One scenario per back-end and option: raw with and without
 * persistent grants, 4096-byte sectors on a one-page ring without
 * indirect requests, read-only, cow (the gold image never changes), null,
 * error injection, discard, two VMs at once, the FUSE view, and the exit
 * paths (detach, SIGTERM, the VM destroyed) that must leave no node.
 */
#include "tests/lib/check.h"
#include "tests/lib/backend_util.h"

#include "xbd/ctl.h"
#include "xbd/frontend.h"
#include "xbd/image.h"
#include "src/sim/sim.h"
#include "xbd/xenbus.h"

#include <dirent.h>
#include <json.h>
#include <pthread.h>
#include <sys/stat.h>

#define MiB (1024u * 1024u)
#define DISK_SIZE (16u * MiB)

static const char *sim_dir;

struct guest {
	const char *vm;
	uint16_t domid;
	struct xbd_platform *p;
	const char *vdev;
	uint32_t devid;
	char fe_path[96], be_path[160];
	pid_t daemon;
	struct xbd_frontend *fe;
	struct xbd_image *img;
	struct xbd_frontend_info info;
};

static void guest_init(struct guest *g, const char *vm, uint16_t domid,
		       struct xbd_platform *p, const char *vdev)
{
	memset(g, 0, sizeof(*g));
	g->vm = vm;
	g->domid = domid;
	g->p = p;
	g->vdev = vdev;
	if (xbd_vdev_to_devid(vdev, &g->devid))
		exit(1);
	xbd_frontend_path(g->fe_path, sizeof(g->fe_path), domid, g->devid);
	xbd_backend_path(g->be_path, sizeof(g->be_path), 0, "xbd", domid,
			 g->devid);
}

/* `xbd serve VM --vdev V ARGS...` and our blkfront connects it; true
 * when serve returned 0 and the disk is ours to use. */
static bool serve_connect(struct guest *g, const char *const *extra)
{
	char log[200];
	const char *args[40] = { "serve", g->vm, "--vdev", g->vdev, "--log", log };
	struct xbd_frontend_config cfg = {
		.frontend_path = g->fe_path,
		.backend_path = g->be_path,
		.backend_domid = 0,
		.name = g->vm,
	};
	unsigned n = 6;
	char path[200];
	pid_t pid;
	int rc, err;

	/* the daemon's stderr, sanitizer reports included, for the end */
	snprintf(log, sizeof(log), "%s/serve-%s-%s.log", sim_dir, g->vm, g->vdev);
	while (*extra && n < 39)
		args[n++] = *extra++;
	args[n] = NULL;
	pid = bt_spawnv(args);
	snprintf(path, sizeof(path), "%s/backend", g->fe_path);
	if (!bt_wait_value(g->p, path, NULL, 10000)) {
		fprintf(stderr, "%s: no frontend nodes appeared\n", g->vm);
		bt_wait(pid, 1000);
		return false;
	}
	err = xbd_frontend_connect(g->p, &cfg, &g->fe);
	CHECK_EQ(err, 0);
	rc = bt_wait(pid, 15000);
	CHECK_EQ(rc, 0);
	if (err || rc)
		return false;
	snprintf(path, sizeof(path), "%s/xbd-pid", g->be_path);
	g->daemon = (pid_t)bt_read_ll(g->p, path);
	CHECK(g->daemon > 0);
	if (g->daemon > 0)
		bt_track(g->daemon);
	xbd_frontend_get_info(g->fe, &g->info);
	err = xbd_frontend_open_image(g->fe, false, &g->img);
	CHECK_EQ(err, 0);
	return err == 0;
}

static void guest_close(struct guest *g)
{
	if (g->img)
		xbd_image_close(g->img);
	g->img = NULL;
	xbd_frontend_close(g->fe);
	g->fe = NULL;
}

/* After the frontend closed: detach, and nothing of the device stays. */
static void detach_and_check(struct guest *g)
{
	CHECK_EQ(bt_run(20000, "detach", g->vm, g->vdev, NULL), 0);
	CHECK(!bt_exists(g->p, g->be_path));
	CHECK(!bt_exists(g->p, g->fe_path));
	CHECK(bt_wait_pid_gone(g->daemon, 5000));
}

/* ------------------------------------------------------------------ */
/* Data                                                               */
/* ------------------------------------------------------------------ */

struct region {
	uint64_t off;
	size_t len;
};

/* Writes each region through the ring (and into model), flushes, reads
 * them back through the ring, then compares the image file (or, with
 * path NULL, nothing on disk) with the model. */
static void check_regions(struct guest *g, char *model, const char *path,
			  const struct region *r, unsigned n, uint64_t seed)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		char *buf = malloc(r[i].len);

		bt_pattern(buf, r[i].len, seed + i, r[i].off);
		CHECK_EQ(xbd_image_pwrite(g->img, buf, r[i].len, r[i].off), 0);
		memcpy(model + r[i].off, buf, r[i].len);
		free(buf);
	}
	CHECK_EQ(xbd_image_flush(g->img), 0);
	for (i = 0; i < n; i++) {
		char *buf = malloc(r[i].len);

		memset(buf, 0xee, r[i].len);
		CHECK_EQ(xbd_image_pread(g->img, buf, r[i].len, r[i].off), 0);
		CHECK(!memcmp(buf, model + r[i].off, r[i].len));
		free(buf);
	}
	if (path) {
		size_t len = 0;
		char *file = bt_read_file(path, &len);

		CHECK(file != NULL);
		CHECK_EQ(len, DISK_SIZE);
		CHECK(file && len == DISK_SIZE && !memcmp(file, model, DISK_SIZE));
		free(file);
	}
}

/* A mix of sizes and alignments, indirect requests included. */
static void check_io(struct guest *g, char *model, const char *path,
		     uint64_t seed)
{
	const struct region small[] = {
		{ 0, 512 },
		{ 3 * 512, 512 },
		{ 7 * 512, 3 * 512 },
	};
	const struct region big[] = {
		{ 0, 4096 },
		{ 1 * MiB, 1 * MiB },
		{ 3 * MiB + 4096, 128 * 1024 },
		{ 5 * MiB, 44 * 1024 },
		{ 6 * MiB + 8192, 4 * MiB + 4096 },
		{ DISK_SIZE - 64 * 1024, 64 * 1024 },
	};

	if (g->info.sector_size == 512)
		check_regions(g, model, NULL, small, XBD_ARRAY_SIZE(small), seed);
	check_regions(g, model, path, big, XBD_ARRAY_SIZE(big), seed + 100);
}

struct writer {
	struct guest *g;
	char *model;
	unsigned index;
	int failures;
};

/* Several requests in flight at once: each thread owns a stripe. */
static void *writer_main(void *arg)
{
	struct writer *w = arg;
	uint64_t stripe = DISK_SIZE / 4, base = stripe * w->index;
	char *buf = malloc(64 * 1024), *back = malloc(64 * 1024);
	unsigned i;

	for (i = 0; i < 48; i++) {
		uint64_t len = 4096u * (1 + (i * 7 + w->index) % 16);
		uint64_t off = base + ((i * 104729u + w->index * 7919u) %
				       (stripe / 4096 - 16)) * 4096u;

		bt_pattern(buf, len, 1000 + w->index * 100 + i, off);
		if (xbd_image_pwrite(w->g->img, buf, len, off)) {
			w->failures++;
			continue;
		}
		memcpy(w->model + off, buf, len);
		if (xbd_image_pread(w->g->img, back, len, off) ||
		    memcmp(back, buf, len))
			w->failures++;
	}
	free(buf);
	free(back);
	return NULL;
}

static void check_concurrent(struct guest *g, char *model, const char *path)
{
	struct writer w[4];
	pthread_t t[4];
	unsigned i;
	size_t len = 0;
	char *file;

	for (i = 0; i < 4; i++) {
		w[i] = (struct writer){ .g = g, .model = model, .index = i };
		pthread_create(&t[i], NULL, writer_main, &w[i]);
	}
	for (i = 0; i < 4; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(w[i].failures, 0);
	}
	CHECK_EQ(xbd_image_flush(g->img), 0);
	file = bt_read_file(path, &len);
	CHECK(file && len == DISK_SIZE && !memcmp(file, model, DISK_SIZE));
	free(file);
}

/* The device's counters, as the control socket shows them. */
static struct json_object *ctl_device(struct guest *g,
				      struct xbd_ctl_reply **replies,
				      unsigned *n)
{
	unsigned i;

	if (xbd_ctl_query_all(NULL, "stats", 2000, replies, n))
		return NULL;
	for (i = 0; i < *n; i++) {
		struct json_object *devs, *v;
		size_t j;

		if ((*replies)[i].err ||
		    !json_object_object_get_ex((*replies)[i].doc, "devices", &devs))
			continue;
		for (j = 0; j < json_object_array_length(devs); j++) {
			struct json_object *d = json_object_array_get_idx(devs, j);

			if (json_object_object_get_ex(d, "backend_path", &v) &&
			    !strcmp(json_object_get_string(v), g->be_path))
				return d;
		}
	}
	return NULL;
}

static long long json_u64(struct json_object *o, const char *a, const char *b)
{
	struct json_object *v;

	if (!o || !json_object_object_get_ex(o, a, &v))
		return -1;
	if (b && !json_object_object_get_ex(v, b, &v))
		return -1;
	return json_object_get_int64(v);
}

/* Requests of one op counted in its latency histogram (-1: none there). */
static long long latency_count(struct json_object *dev, const char *op)
{
	struct json_object *lat, *o, *buckets;
	long long n = 0;
	size_t i;

	if (!dev || !json_object_object_get_ex(dev, "latency", &lat) ||
	    !json_object_object_get_ex(lat, op, &o) ||
	    !json_object_object_get_ex(o, "buckets", &buckets))
		return -1;
	/* the non-empty buckets, {lower_ns, count} each */
	for (i = 0; i < json_object_array_length(buckets); i++) {
		struct json_object *c;

		if (json_object_object_get_ex(json_object_array_get_idx(buckets, i),
					      "count", &c))
			n += json_object_get_int64(c);
	}
	return n;
}

/* ------------------------------------------------------------------ */
/* Scenarios                                                          */
/* ------------------------------------------------------------------ */

static void scenario_raw(struct xbd_platform *gp, uint16_t domid,
			 const char *const *extra, uint64_t seed,
			 bool want_persistent)
{
	const char *img = extra[1];
	struct xbd_ctl_reply *replies = NULL;
	struct json_object *dev;
	struct guest g;
	unsigned nrep = 0;
	size_t len;
	char *model;

	guest_init(&g, "vm1", domid, gp, "xvdb");
	model = bt_read_file(img, &len);
	if (!serve_connect(&g, extra)) {
		free(model);
		return;
	}
	CHECK_EQ(g.info.sectors, DISK_SIZE / 512);
	CHECK_EQ(g.info.persistent, want_persistent);
	CHECK(!g.info.read_only);
	check_io(&g, model, img, seed);
	check_concurrent(&g, model, img);

	dev = ctl_device(&g, &replies, &nrep);
	CHECK(dev != NULL);
	CHECK(json_u64(dev, "requests", "write") > 50);
	CHECK(json_u64(dev, "requests", "read") > 50);
	CHECK(json_u64(dev, "requests", "flush") >= 1);
	CHECK_EQ(json_u64(dev, "errors", "bad_request"), 0);
	CHECK_EQ(json_u64(dev, "errors", "bad_grant"), 0);
	CHECK_EQ(json_u64(dev, "errors", "io"), 0);
	CHECK_EQ(json_u64(dev, "in_flight", NULL), 0);
	/* every answered request is timed exactly once */
	CHECK_EQ(latency_count(dev, "read"), json_u64(dev, "requests", "read"));
	CHECK_EQ(latency_count(dev, "write"), json_u64(dev, "requests", "write"));
	CHECK_EQ(latency_count(dev, "flush"), json_u64(dev, "requests", "flush"));
	if (want_persistent)
		CHECK(json_u64(dev, "persistent_grants", "in_use") > 0);
	else
		CHECK_EQ(json_u64(dev, "persistent_grants", "in_use"), 0);
	if (g.info.max_segments > 11)
		CHECK(json_u64(dev, "requests", "indirect") > 0);
	xbd_ctl_replies_free(replies, nrep);

	guest_close(&g);
	detach_and_check(&g);
	free(model);
}

static void scenario_sector4k(struct xbd_platform *gp, uint16_t domid,
			      const char *img)
{
	const char *extra[] = { "--image", img, "--sector-size", "4096",
				"--max-ring-order", "0", "--indirect-segments",
				"0", NULL };
	struct guest g;
	size_t len;
	char *model = bt_read_file(img, &len);

	guest_init(&g, "vm1", domid, gp, "xvdc");
	if (serve_connect(&g, extra)) {
		CHECK_EQ(g.info.sector_size, 4096);
		CHECK_EQ(g.info.sectors, DISK_SIZE / 512);
		CHECK_EQ(g.info.ring_pages, 1);
		CHECK_EQ(g.info.max_indirect_segments, 0);
		check_io(&g, model, img, 77);
		guest_close(&g);
		detach_and_check(&g);
	}
	free(model);
}

static void scenario_read_only(struct xbd_platform *gp, uint16_t domid,
			       const char *img)
{
	const char *extra[] = { "--image", img, "--read-only", NULL };
	struct xbd_frontend_config cfg;
	struct guest g;
	size_t len, len2;
	char *before = bt_read_file(img, &len), *after, buf[8192];
	pid_t pid;

	guest_init(&g, "vm1", domid, gp, "xvdd");
	/* the frontend refuses a read-only disk when it needs writing, so
	 * connect as a reader */
	(void)cfg;
	{
		const char *args[] = { "serve", g.vm, "--vdev", g.vdev, "--image",
				       img, "--read-only", NULL };
		struct xbd_frontend_config c = {
			.frontend_path = g.fe_path,
			.backend_path = g.be_path,
			.name = g.vm,
		};
		char path[200];

		(void)extra;
		pid = bt_spawnv(args);
		snprintf(path, sizeof(path), "%s/backend", g.fe_path);
		CHECK(bt_wait_value(gp, path, NULL, 10000));
		CHECK_EQ(xbd_frontend_connect(gp, &c, &g.fe), 0);
		CHECK_EQ(bt_wait(pid, 15000), 0);
		snprintf(path, sizeof(path), "%s/mode", g.be_path);
		CHECK(bt_wait_value(gp, path, "r", 100));
		snprintf(path, sizeof(path), "%s/info", g.be_path);
		CHECK(bt_wait_value(gp, path, "4", 100)); /* VDISK_READONLY */
		snprintf(path, sizeof(path), "%s/xbd-pid", g.be_path);
		g.daemon = (pid_t)bt_read_ll(gp, path);
		bt_track(g.daemon);
	}
	if (g.fe) {
		xbd_frontend_get_info(g.fe, &g.info);
		CHECK(g.info.read_only);
		CHECK_EQ(xbd_frontend_open_image(g.fe, true, &g.img), 0);
	}
	if (g.img) {
		struct iovec iov = { buf, sizeof(buf) };

		CHECK_EQ(xbd_image_pread(g.img, buf, sizeof(buf), 4096), 0);
		CHECK(!memcmp(buf, before + 4096, sizeof(buf)));
		/* a read-only image refuses the write before the ring
		 * (the backend's own refusal is test_ring_validate's) */
		memset(buf, 0x5a, sizeof(buf));
		CHECK_EQ(xbd_image_pwritev(g.img, &iov, 1, 0), -EROFS);
	}
	if (g.fe)
		guest_close(&g);
	after = bt_read_file(img, &len2);
	CHECK(after && len2 == len && !memcmp(before, after, len));
	detach_and_check(&g);
	free(before);
	free(after);
}

static void scenario_cow(struct xbd_platform *gp, uint16_t domid,
			 const char *gold, const char *overlay)
{
	const char *extra[] = { "--image", gold, "--backend", "cow",
				"--overlay", overlay, NULL };
	struct xbd_image *reopened = NULL;
	struct guest g;
	size_t len, len2;
	char *before = bt_read_file(gold, &len), *model = bt_read_file(gold, &len);
	char *after, *all;

	guest_init(&g, "vm1", domid, gp, "xvde");
	if (!serve_connect(&g, extra))
		goto out;
	check_io(&g, model, NULL, 300);
	guest_close(&g);
	detach_and_check(&g);
	after = bt_read_file(gold, &len2);
	CHECK(after && len2 == len && !memcmp(before, after, len));
	free(after);
	/* the guest's writes are in the overlay: gold + overlay = model */
	CHECK_EQ(xbd_image_open_by_name("cow", gold, overlay, true,
					XBD_IMAGE_LOCK_EXCL, &reopened), 0);
	all = malloc(DISK_SIZE);
	if (reopened) {
		CHECK_EQ(xbd_image_pread(reopened, all, DISK_SIZE, 0), 0);
		CHECK(!memcmp(all, model, DISK_SIZE));
		xbd_image_close(reopened);
	}
	free(all);
out:
	free(before);
	free(model);
}

/* null, and --no-stats: counted but not timed */
static void scenario_null(struct xbd_platform *gp, uint16_t domid)
{
	const char *extra[] = { "--image", "64M", "--backend", "null",
				"--no-stats", NULL };
	struct xbd_ctl_reply *replies = NULL;
	struct json_object *dev, *v;
	struct guest g;
	unsigned nrep = 0;
	char *buf = malloc(MiB), *zero = calloc(1, MiB);

	guest_init(&g, "vm1", domid, gp, "xvdf");
	if (serve_connect(&g, extra)) {
		CHECK_EQ(g.info.sectors, 64u * MiB / 512);
		memset(buf, 0x33, MiB);
		CHECK_EQ(xbd_image_pwrite(g.img, buf, MiB, 8 * MiB), 0);
		CHECK_EQ(xbd_image_pread(g.img, buf, MiB, 8 * MiB), 0);
		CHECK(!memcmp(buf, zero, MiB));
		CHECK_EQ(xbd_image_flush(g.img), 0);
		dev = ctl_device(&g, &replies, &nrep);
		CHECK(dev && json_object_object_get_ex(dev, "stats_enabled", &v) &&
		      !json_object_get_boolean(v));
		CHECK(json_u64(dev, "requests", "read") >= 1);
		CHECK(json_u64(dev, "requests", "write") >= 1);
		CHECK_EQ(latency_count(dev, "read"), 0);
		CHECK_EQ(latency_count(dev, "write"), 0);
		CHECK_EQ(json_u64(dev, "in_flight", NULL), 0);
		xbd_ctl_replies_free(replies, nrep);
		guest_close(&g);
		detach_and_check(&g);
	}
	free(buf);
	free(zero);
}

static void scenario_errinject(struct xbd_platform *gp, uint16_t domid,
			       const char *img)
{
	const char *extra[] = { "--image", img, "--inject-errors", "2048-2055",
				NULL };
	struct xbd_ctl_reply *replies = NULL;
	struct json_object *dev;
	struct guest g;
	unsigned nrep = 0;
	char buf[4096];

	guest_init(&g, "vm1", domid, gp, "xvdg");
	if (!serve_connect(&g, extra))
		return;
	CHECK_EQ(xbd_image_pread(g.img, buf, sizeof(buf), 2048 * 512), -EIO);
	CHECK_EQ(xbd_image_pread(g.img, buf, sizeof(buf), 2056 * 512), 0);
	/* the device carries on after a failed request */
	CHECK_EQ(xbd_frontend_status(g.fe), 0);
	dev = ctl_device(&g, &replies, &nrep);
	CHECK(json_u64(dev, "errors", "io") >= 1);
	xbd_ctl_replies_free(replies, nrep);
	guest_close(&g);
	detach_and_check(&g);
}

struct discard_done {
	int err;
	bool done;
	pthread_mutex_t lock;
	pthread_cond_t cond;
};

static void on_discard(void *opaque, int err)
{
	struct discard_done *d = opaque;

	pthread_mutex_lock(&d->lock);
	d->err = err;
	d->done = true;
	pthread_cond_signal(&d->cond);
	pthread_mutex_unlock(&d->lock);
}

static void scenario_discard(struct xbd_platform *gp, uint16_t domid,
			     const char *img)
{
	const char *extra[] = { "--image", img, NULL };
	struct discard_done dd = { .lock = PTHREAD_MUTEX_INITIALIZER,
				   .cond = PTHREAD_COND_INITIALIZER };
	struct guest g;
	struct stat before, after;
	char *buf = malloc(MiB), *zero = calloc(1, MiB);
	int fd;

	guest_init(&g, "vm1", domid, gp, "xvdh");
	if (!serve_connect(&g, extra))
		goto out;
	CHECK(g.info.discard);
	CHECK_EQ(stat(img, &before), 0);
	CHECK_EQ(xbd_frontend_submit(g.fe, XBD_FRONTEND_DISCARD, NULL, 0,
				     4 * MiB, 2 * MiB, on_discard, &dd), 0);
	pthread_mutex_lock(&dd.lock);
	while (!dd.done)
		pthread_cond_wait(&dd.cond, &dd.lock);
	pthread_mutex_unlock(&dd.lock);
	CHECK_EQ(dd.err, 0);
	CHECK_EQ(xbd_image_pread(g.img, buf, MiB, 5 * MiB), 0);
	CHECK(!memcmp(buf, zero, MiB));
	/* a hole was punched in the raw file */
	CHECK_EQ(stat(img, &after), 0);
	CHECK(after.st_blocks < before.st_blocks);
	fd = open(img, O_RDONLY);
	CHECK(fd >= 0);
	CHECK_EQ(lseek(fd, 4 * MiB, SEEK_HOLE), 4 * MiB);
	close(fd);
	guest_close(&g);
	detach_and_check(&g);
out:
	free(buf);
	free(zero);
}

/* Two VMs served at once, written concurrently. */
static void scenario_two_vms(struct xbd_platform *gp1, uint16_t dom1,
			     struct xbd_platform *gp2, uint16_t dom2,
			     const char *img1, const char *img2)
{
	const char *extra1[] = { "--image", img1, NULL };
	const char *extra2[] = { "--image", img2, NULL };
	struct guest g1, g2;
	size_t len;
	char *m1 = bt_read_file(img1, &len), *m2 = bt_read_file(img2, &len);
	struct writer w[8];
	pthread_t t[8];
	unsigned i;
	char *f1, *f2;

	guest_init(&g1, "vm1", dom1, gp1, "xvdb");
	guest_init(&g2, "vm2", dom2, gp2, "xvdb");
	if (!serve_connect(&g1, extra1) || !serve_connect(&g2, extra2))
		goto out;
	for (i = 0; i < 8; i++) {
		w[i] = (struct writer){ .g = i < 4 ? &g1 : &g2,
					.model = i < 4 ? m1 : m2, .index = i % 4 };
		pthread_create(&t[i], NULL, writer_main, &w[i]);
	}
	for (i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(w[i].failures, 0);
	}
	CHECK_EQ(xbd_image_flush(g1.img), 0);
	CHECK_EQ(xbd_image_flush(g2.img), 0);
	f1 = bt_read_file(img1, &len);
	CHECK(f1 && !memcmp(f1, m1, DISK_SIZE));
	f2 = bt_read_file(img2, &len);
	CHECK(f2 && !memcmp(f2, m2, DISK_SIZE));
	free(f1);
	free(f2);
out:
	if (g1.fe) {
		guest_close(&g1);
		detach_and_check(&g1);
	}
	if (g2.fe) {
		guest_close(&g2);
		detach_and_check(&g2);
	}
	free(m1);
	free(m2);
}

/* SIGTERM: the daemon walks Closing, and once the frontend closes it
 * removes every node and exits. */
static void scenario_sigterm(struct xbd_platform *gp, uint16_t domid,
			     const char *img)
{
	const char *extra[] = { "--image", img, NULL };
	char path[200];
	struct guest g;

	guest_init(&g, "vm1", domid, gp, "xvdi");
	if (!serve_connect(&g, extra))
		return;
	CHECK_EQ(kill(g.daemon, SIGTERM), 0);
	snprintf(path, sizeof(path), "%s/state", g.be_path);
	CHECK(bt_wait_value(gp, path, "5", 5000));
	guest_close(&g);
	CHECK(bt_wait_gone(gp, g.be_path, 5000));
	CHECK(!bt_exists(gp, g.fe_path));
	CHECK(bt_wait_pid_gone(g.daemon, 5000));
}

/* The VM is destroyed while served: the daemon cleans up and exits. */
static void scenario_vm_destroyed(const char *img)
{
	const char *extra[] = { "--image", img, NULL };
	struct xbd_platform *dom0 = xbd_test_sim_open(0), *gp;
	uint16_t domid = xbd_test_sim_vm_create("doomed");
	struct guest g;
	char buf[4096];

	gp = xbd_test_sim_open(domid);
	guest_init(&g, "doomed", domid, gp, "xvdb");
	if (serve_connect(&g, extra)) {
		CHECK_EQ(xbd_image_pread(g.img, buf, sizeof(buf), 0), 0);
		CHECK_EQ(xbd_sim_vm_destroy(sim_dir, "doomed"), 0);
		CHECK(bt_wait_pid_gone(g.daemon, 5000));
		CHECK(!bt_exists(dom0, g.be_path));
		CHECK(!bt_exists(dom0, g.fe_path));
		xbd_image_close(g.img);
		g.img = NULL;
		xbd_frontend_fail(g.fe, "test: domain destroyed");
		xbd_frontend_close(g.fe);
	}
	xbd_platform_close(gp);
	xbd_platform_close(dom0);
}

/* Connecting never happens: serve gives up with an error and leaves
 * nothing behind. */
static void scenario_no_frontend(struct xbd_platform *gp, uint16_t domid,
				 const char *img)
{
	struct guest g;
	uint64_t t0 = xbd_now_ns();

	guest_init(&g, "vm1", domid, gp, "xvdj");
	CHECK_EQ(bt_run(20000, "serve", "vm1", "--vdev", "xvdj", "--image", img,
			"--timeout", "1", NULL), 1);
	CHECK(xbd_now_ns() - t0 < 10000000000ull);
	CHECK(!bt_exists(gp, g.be_path));
	CHECK(!bt_exists(gp, g.fe_path));
}

/* The daemons' logs go to our stderr, where the test runner looks for
 * sanitizer reports. */
static void show_serve_logs(void)
{
	DIR *d = opendir(sim_dir);
	struct dirent *de;

	while (d && (de = readdir(d))) {
		char path[400];
		size_t len = 0;
		char *text;

		if (strncmp(de->d_name, "serve-", 6))
			continue;
		snprintf(path, sizeof(path), "%s/%s", sim_dir, de->d_name);
		text = bt_read_file(path, &len);
		if (text && len) {
			fprintf(stderr, "---- %s ----\n", de->d_name);
			fwrite(text, 1, len, stderr);
		}
		free(text);
	}
	if (d)
		closedir(d);
}

/* The raw image's read that never waits, which the backend tries on its
 * ring thread before handing a read to a worker: the image's bytes from
 * the page cache, or "cannot" from a file system without RWF_NOWAIT. */
static void test_raw_nowait(const char *img_path)
{
	struct xbd_image *img;
	char *want = malloc(65536), *got = malloc(65536);
	struct iovec iov[2] = { { got, 4096 }, { got + 4096, 61440 } };
	int err;

	CHECK_EQ(xbd_image_open_raw(img_path, true, &img), 0);
	CHECK(xbd_image_can_read_nowait(img));
	CHECK_EQ(xbd_image_pread(img, want, 65536, 3 * MiB), 0); /* cached now */
	memset(got, 0, 65536);
	err = xbd_image_try_preadv_nowait(img, iov, 2, 3 * MiB);
	if (err == -EOPNOTSUPP) {
		printf("(no RWF_NOWAIT on this file system: reads go to workers)\n");
	} else {
		CHECK_EQ(err, 0);
		CHECK(!memcmp(got, want, 65536));
	}
	CHECK_EQ(xbd_image_try_preadv_nowait(img, iov, 2, DISK_SIZE - 4096),
		 -EINVAL);
	xbd_image_close(img);
	free(want);
	free(got);
}

int main(void)
{
	char run_dir[128], img[160], img2[160], gold[160], overlay[160];
	char disk_dir[] = "/var/tmp/xbd-test-serve.XXXXXX", disk_img[64];
	struct xbd_platform *gp1, *gp2;
	uint16_t dom1, dom2;

	setvbuf(stdout, NULL, _IOLBF, 0);
	sim_dir = xbd_test_sim_start();
	bt_track(0); /* registers the killer before anything is spawned */
	snprintf(run_dir, sizeof(run_dir), "%s/run", sim_dir);
	setenv("XBD_RUN_DIR", run_dir, 1);
	snprintf(img, sizeof(img), "%s/disk.raw", sim_dir);
	snprintf(img2, sizeof(img2), "%s/disk2.raw", sim_dir);
	snprintf(gold, sizeof(gold), "%s/gold.raw", sim_dir);
	snprintf(overlay, sizeof(overlay), "%s/gold.overlay", sim_dir);
	bt_make_file(img, DISK_SIZE, 1);
	bt_make_file(img2, DISK_SIZE, 2);
	bt_make_file(gold, DISK_SIZE, 3);

	dom1 = xbd_test_sim_vm_create("vm1");
	dom2 = xbd_test_sim_vm_create("vm2");
	gp1 = xbd_test_sim_open(dom1);
	gp2 = xbd_test_sim_open(dom2);

	/* the sim's directory is tmpfs, which has no RWF_NOWAIT (the raw
	 * image reads it plainly, as memory): one image on a disk file
	 * system too, where the backend reads from the page cache on its
	 * ring thread with RWF_NOWAIT */
	if (mkdtemp(disk_dir)) {
		snprintf(disk_img, sizeof(disk_img), "%s/disk.raw", disk_dir);
		bt_make_file(disk_img, DISK_SIZE, 4);
		printf("raw on %s: reads without waiting\n", disk_dir);
		test_raw_nowait(disk_img);
		printf("raw on %s, reads inline\n", disk_dir);
		scenario_raw(gp1, dom1, (const char *const[]){ "--image",
							       disk_img, NULL },
			     30, true);
		unlink(disk_img);
		rmdir(disk_dir);
	} else {
		printf("(no /var/tmp: reads inline not tested)\n");
	}
	printf("raw on tmpfs: reads without waiting (tmpfs is memory)\n");
	test_raw_nowait(img);
	printf("raw, persistent grants\n");
	scenario_raw(gp1, dom1, (const char *const[]){ "--image", img, NULL }, 10,
		     true);
	printf("raw, grant copy\n");
	scenario_raw(gp1, dom1, (const char *const[]){ "--image", img,
						       "--no-persistent", NULL },
		     20, false);
	printf("4096-byte sectors, one ring page, no indirect\n");
	scenario_sector4k(gp1, dom1, img);
	printf("read-only\n");
	scenario_read_only(gp1, dom1, img);
	printf("cow\n");
	scenario_cow(gp1, dom1, gold, overlay);
	printf("null, --no-stats\n");
	scenario_null(gp1, dom1);
	printf("error injection\n");
	scenario_errinject(gp1, dom1, img);
	printf("discard\n");
	scenario_discard(gp1, dom1, img);
	printf("two VMs\n");
	scenario_two_vms(gp1, dom1, gp2, dom2, img, img2);
	printf("SIGTERM\n");
	scenario_sigterm(gp1, dom1, img);
	printf("VM destroyed\n");
	scenario_vm_destroyed(img);
	printf("no frontend\n");
	scenario_no_frontend(gp1, dom1, img);

	xbd_platform_close(gp1);
	xbd_platform_close(gp2);
	show_serve_logs();
	return check_report("test_backend_serve");
}

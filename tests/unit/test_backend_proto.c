/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The protocol as `xbd serve` offers and honours it, each feature driven
 * by a bare test frontend (tests/lib/rawfe.c) on the sim:
 * multi-page rings of order 0 to 4 filled to the brim, multi-queue,
 * the x86_32 ABI, indirect requests with and without persistent grants,
 * a persistent grant pool smaller than the frontend's pages, flush and
 * barrier ordering, discard, durability (kill -9 right after a flushed
 * write: the data is in the image, raw and cow), detach with requests
 * in flight, the FUSE view of the served disk, and a slow request that
 * must not stall the ring (the image lives on a FUSE file of the test's
 * own whose reads of one range take a second and a half).
 */
#define FUSE_USE_VERSION 31
#include "tests/lib/check.h"
#include "tests/lib/rawfe.h"
#include "tests/lib/backend_util.h"

#include "xbd/ctl.h"
#include "xbd/image.h"
#include "xbd/xenbus.h"

#include <fuse.h>
#include <json.h>
#include <pthread.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/stat.h>

#define MiB (1024u * 1024u)
#define DISK_SIZE (8u * MiB)
#define NR_SECTORS (DISK_SIZE / 512u)
#define DATA_PAGES 600

static const char *sim_dir;
static struct xbd_platform *gp;
static uint16_t domid;
static uint64_t next_id = 1;

struct served {
	const char *vdev;
	uint32_t devid;
	char fe[128], be[192];
	pid_t daemon;
};

/* xbd serve vm1 --vdev V ARGS...; rf connects with o. */
static bool serve(struct served *s, const char *vdev, struct rawfe *rf,
		  const struct rawfe_opts *o, const char *const *extra)
{
	char log[200], path[256];
	const char *args[40] = { "serve", "vm1", "--vdev", vdev, "--log", log };
	unsigned n = 6;
	pid_t pid;
	int rc;

	memset(s, 0, sizeof(*s));
	s->vdev = vdev;
	xbd_vdev_to_devid(vdev, &s->devid);
	xbd_frontend_path(s->fe, sizeof(s->fe), domid, s->devid);
	xbd_backend_path(s->be, sizeof(s->be), 0, "xbd", domid, s->devid);
	snprintf(log, sizeof(log), "%s/serve-%s.log", sim_dir, vdev);
	while (*extra && n < 39)
		args[n++] = *extra++;
	args[n] = NULL;
	pid = bt_spawnv(args);
	snprintf(path, sizeof(path), "%s/backend", s->fe);
	if (!bt_wait_value(gp, path, NULL, 10000)) {
		CHECK(!"frontend nodes appeared");
		bt_wait(pid, 1000);
		return false;
	}
	rawfe_init(rf, gp, s->fe, s->be);
	rc = rawfe_connect(rf, o);
	CHECK_EQ(rc, 0);
	CHECK_EQ(bt_wait(pid, 15000), 0);
	snprintf(path, sizeof(path), "%s/xbd-pid", s->be);
	s->daemon = (pid_t)bt_read_ll(gp, path);
	if (s->daemon > 0)
		bt_track(s->daemon);
	return rc == 0 && s->daemon > 0;
}

static void unserve(struct served *s, struct rawfe *rf)
{
	rawfe_close(rf);
	CHECK_EQ(bt_run(20000, "detach", "vm1", s->vdev, NULL), 0);
	CHECK(!bt_exists(gp, s->be));
	CHECK(!bt_exists(gp, s->fe));
	CHECK(bt_wait_pid_gone(s->daemon, 5000));
	rawfe_destroy(rf);
}

/* Writes pages [page, page+n) (filled with a pattern) at sector on
 * queue q, reads them back into other pages, compares. */
static void write_read(struct rawfe *rf, unsigned q, uint64_t sector,
		       unsigned page, unsigned n, uint64_t seed, char *model)
{
	struct xbd_blkif_request r;
	unsigned i;

	for (i = 0; i < n; i++)
		bt_pattern(rawfe_page(rf, page + i), 4096, seed + i, sector * 512);
	r = rawfe_rw(rf, BLKIF_OP_WRITE, next_id++, sector, page, n);
	CHECK_EQ(rawfe_do(rf, q, &r, 5000), BLKIF_RSP_OKAY);
	if (model)
		for (i = 0; i < n; i++)
			memcpy(model + sector * 512 + i * 4096, rawfe_page(rf, page + i),
			       4096);
	r = rawfe_rw(rf, BLKIF_OP_READ, next_id++, sector, page + n, n);
	memset(rawfe_page(rf, page + n), 0, (size_t)n * 4096);
	CHECK_EQ(rawfe_do(rf, q, &r, 5000), BLKIF_RSP_OKAY);
	CHECK(!memcmp(rawfe_page(rf, page), rawfe_page(rf, page + n),
		      (size_t)n * 4096));
}

static void check_image(const char *img, const char *model)
{
	size_t len = 0;
	char *file = bt_read_file(img, &len);

	CHECK(file && len == DISK_SIZE && !memcmp(file, model, DISK_SIZE));
	free(file);
}

/* ------------------------------------------------------------------ */

/* Every ring size, each filled with as many requests as it holds. */
static void test_ring_orders(const char *img, char *model)
{
	unsigned order;

	for (order = 0; order <= 4; order++) {
		struct rawfe_opts o = { .abi = XBD_BLKIF_ABI_X86_64, .order = order,
					.order_node = true, .persistent = order & 1,
					.data_pages = DATA_PAGES };
		const char *extra[] = { "--image", img, NULL };
		struct served s;
		struct rawfe rf;
		unsigned i, n, got = 0, bad = 0;
		bool seen[600] = { false };

		printf("ring order %u\n", order);
		if (!serve(&s, "xvdb", &rf, &o, extra))
			return;
		n = rf.q[0].f.r.native.nr_ents;
		CHECK_EQ(n, 32u << order);
		write_read(&rf, 0, 8 * order, 0, 4, 10 * order, model);
		/* the whole ring at once: reads of one page each, ids 0..n-1 */
		for (i = 0; i < n; i++) {
			struct xbd_blkif_request r = rawfe_rw(&rf, BLKIF_OP_READ, i,
							      (i % 1000) * 8,
							      8 + i % 500, 1);

			CHECK_EQ(xbd_blkif_front_put_request(&rf.q[0].f, &r), 0);
		}
		CHECK_EQ(xbd_blkif_front_free_slots(&rf.q[0].f), 0);
		xbd_blkif_front_push_requests(&rf.q[0].f);
		rawfe_kick(&rf, 0);
		while (got < n) {
			struct xbd_blkif_response rsp;

			if (rawfe_recv(&rf, 0, &rsp, 5000) != 1)
				break;
			if (rsp.id >= n || seen[rsp.id] || rsp.status)
				bad++;
			else
				seen[rsp.id] = true;
			got++;
		}
		CHECK_EQ(got, n);
		CHECK_EQ(bad, 0);
		unserve(&s, &rf);
	}
	check_image(img, model);
}

static void test_multi_queue(const char *img, char *model)
{
	struct rawfe_opts o = { .abi = XBD_BLKIF_ABI_X86_64, .order = 2, .nq = 4,
				.persistent = true, .data_pages = DATA_PAGES };
	const char *extra[] = { "--image", img, "--max-queues", "4", NULL };
	char path[256];
	struct served s;
	struct rawfe rf;
	unsigned q;

	printf("4 queues of 4 pages\n");
	if (!serve(&s, "xvdc", &rf, &o, extra))
		return;
	snprintf(path, sizeof(path), "%s/multi-queue-max-queues", s.be);
	CHECK_EQ(bt_read_ll(gp, path), 4);
	for (q = 0; q < 4; q++)
		write_read(&rf, q, 2048 + q * 64, q * 20, 8, 100 + q, model);
	unserve(&s, &rf);
	check_image(img, model);
}

/* x86_32, indirect requests, grant copy; then persistent grants with a
 * pool of 8 for 256 distinct pages. */
static void test_abi32_indirect(const char *img, char *model)
{
	struct rawfe_opts o = { .abi = XBD_BLKIF_ABI_X86_32, .no_protocol = true,
				.order = 1, .data_pages = DATA_PAGES };
	const char *extra[] = { "--image", img, NULL };
	const char *extra_small[] = { "--image", img, "--persistent-grants", "8",
				      NULL };
	struct served s;
	struct rawfe rf;
	unsigned round;

	for (round = 0; round < 2; round++) {
		struct xbd_blkif_seg segs[256];
		struct xbd_blkif_request r;
		unsigned i;
		char path[256];

		printf(round ? "persistent pool of 8, 256-segment requests\n"
			     : "x86_32, indirect, grant copy\n");
		if (round) {
			o.abi = XBD_BLKIF_ABI_X86_64;
			o.no_protocol = false;
			o.persistent = true;
		}
		if (!serve(&s, "xvdd", &rf, &o, round ? extra_small : extra))
			return;
		snprintf(path, sizeof(path), "%s/feature-max-indirect-segments", s.be);
		CHECK(bt_read_ll(gp, path) >= 256);
		/* write 256 pages (1 MiB) with one request, read back */
		for (i = 0; i < 256; i++) {
			bt_pattern(rawfe_page(&rf, i), 4096, 7000 + round * 300 + i, 0);
			segs[i] = (struct xbd_blkif_seg){ rf.data_refs[i], 0, 7 };
		}
		xbd_blkif_write_indirect_segments(rawfe_page(&rf, 590), segs, 256);
		memset(&r, 0, sizeof(r));
		r.id = next_id++;
		r.ring_op = BLKIF_OP_INDIRECT;
		r.op = BLKIF_OP_WRITE;
		r.indirect = true;
		r.sector = 4096;
		r.nr_segments = 256;
		r.indirect_grefs[0] = rf.data_refs[590];
		CHECK_EQ(rawfe_do(&rf, 0, &r, 5000), BLKIF_RSP_OKAY);
		memcpy(model + 4096 * 512, rf.data, MiB);
		for (i = 0; i < 256; i++)
			segs[i] = (struct xbd_blkif_seg){ rf.data_refs[300 + i], 0, 7 };
		xbd_blkif_write_indirect_segments(rawfe_page(&rf, 591), segs, 256);
		r.id = next_id++;
		r.op = BLKIF_OP_READ;
		r.indirect_grefs[0] = rf.data_refs[591];
		memset(rawfe_page(&rf, 300), 0, MiB);
		CHECK_EQ(rawfe_do(&rf, 0, &r, 5000), BLKIF_RSP_OKAY);
		CHECK(!memcmp(rawfe_page(&rf, 300), rf.data, MiB));
		/* direct requests too */
		write_read(&rf, 0, 100 + round * 50, 0, 11, 900 + round, model);
		unserve(&s, &rf);
	}
	check_image(img, model);
}

/* Flush: write with data, empty flush.  Barrier: everything before it
 * has been answered when it is. */
static void test_flush_barrier_discard(const char *img, char *model)
{
	struct rawfe_opts o = { .abi = XBD_BLKIF_ABI_X86_64, .order = 2,
				.persistent = true, .data_pages = DATA_PAGES };
	const char *extra[] = { "--image", img, NULL };
	struct xbd_blkif_request r;
	struct served s;
	struct rawfe rf;
	unsigned i, before_barrier = 0, got = 0;
	bool barrier_seen = false, order_ok = true;

	printf("flush, barrier, discard\n");
	if (!serve(&s, "xvde", &rf, &o, extra))
		return;
	bt_pattern(rawfe_page(&rf, 0), 4096, 4242, 0);
	r = rawfe_rw(&rf, BLKIF_OP_FLUSH_DISKCACHE, next_id++, 512, 0, 1);
	CHECK_EQ(rawfe_do(&rf, 0, &r, 5000), BLKIF_RSP_OKAY);
	memcpy(model + 512 * 512, rawfe_page(&rf, 0), 4096);
	r = rawfe_rw(&rf, BLKIF_OP_FLUSH_DISKCACHE, next_id++, 0, 0, 0);
	CHECK_EQ(rawfe_do(&rf, 0, &r, 5000), BLKIF_RSP_OKAY);

	/* 40 writes, a barrier, 40 more; the barrier's answer comes after
	 * the first 40 and before any of the last 40 */
	for (i = 0; i < 81; i++) {
		uint8_t op = i == 40 ? BLKIF_OP_WRITE_BARRIER : BLKIF_OP_WRITE;

		bt_pattern(rawfe_page(&rf, i), 4096, 5000 + i, 0);
		r = rawfe_rw(&rf, op, 10000 + i, 1024 + i * 8, i, 1);
		memcpy(model + (1024 + i * 8) * 512, rawfe_page(&rf, i), 4096);
		CHECK_EQ(xbd_blkif_front_put_request(&rf.q[0].f, &r), 0);
	}
	xbd_blkif_front_push_requests(&rf.q[0].f);
	rawfe_kick(&rf, 0);
	while (got < 81) {
		struct xbd_blkif_response rsp;

		if (rawfe_recv(&rf, 0, &rsp, 5000) != 1)
			break;
		got++;
		CHECK_EQ(rsp.status, BLKIF_RSP_OKAY);
		if (rsp.id == 10040) {
			barrier_seen = true;
			if (before_barrier != 40)
				order_ok = false;
		} else if (rsp.id < 10040) {
			before_barrier++;
			if (barrier_seen)
				order_ok = false;
		} else if (!barrier_seen) {
			order_ok = false;
		}
	}
	CHECK_EQ(got, 81);
	CHECK(order_ok);

	/* discard: zeroes come back, the model follows */
	memset(&r, 0, sizeof(r));
	r.ring_op = r.op = BLKIF_OP_DISCARD;
	r.id = next_id++;
	r.sector = 3 * MiB / 512;
	r.nr_sectors = MiB / 512;
	CHECK_EQ(rawfe_do(&rf, 0, &r, 5000), BLKIF_RSP_OKAY);
	memset(model + 3 * MiB, 0, MiB);
	r = rawfe_rw(&rf, BLKIF_OP_READ, next_id++, 3 * MiB / 512 + 8, 0, 1);
	memset(rawfe_page(&rf, 0), 0xff, 4096);
	CHECK_EQ(rawfe_do(&rf, 0, &r, 5000), BLKIF_RSP_OKAY);
	CHECK(!memcmp(rawfe_page(&rf, 0), model + 3 * MiB + 4096, 4096));
	unserve(&s, &rf);
	check_image(img, model);
}

/* kill -9 right after a flushed write: the data is in the image. */
static void test_durability(const char *img, char *model, const char *gold,
			    const char *overlay)
{
	unsigned round;

	for (round = 0; round < 2; round++) {
		struct rawfe_opts o = { .abi = XBD_BLKIF_ABI_X86_64, .persistent = true,
					.data_pages = 16 };
		const char *raw[] = { "--image", img, NULL };
		const char *cow[] = { "--image", gold, "--backend", "cow",
				      "--overlay", overlay, NULL };
		struct xbd_blkif_request r;
		struct served s;
		struct rawfe rf;
		size_t len;
		char *gold_before = bt_read_file(gold, &len), *after;
		struct xbd_image *reopened = NULL;
		char buf[8192];

		printf("kill -9 after a flushed write (%s)\n", round ? "cow" : "raw");
		if (!serve(&s, "xvdf", &rf, &o, round ? cow : raw)) {
			free(gold_before);
			return;
		}
		/* a plain write, then an empty flush; and a write that flushes */
		bt_pattern(rawfe_page(&rf, 0), 8192, 31337 + round, 0);
		r = rawfe_rw(&rf, BLKIF_OP_WRITE, next_id++, 777 * 8, 0, 1);
		CHECK_EQ(rawfe_do(&rf, 0, &r, 5000), BLKIF_RSP_OKAY);
		r = rawfe_rw(&rf, BLKIF_OP_FLUSH_DISKCACHE, next_id++, 0, 0, 0);
		CHECK_EQ(rawfe_do(&rf, 0, &r, 5000), BLKIF_RSP_OKAY);
		r = rawfe_rw(&rf, BLKIF_OP_FLUSH_DISKCACHE, next_id++, 999 * 8, 1, 1);
		CHECK_EQ(rawfe_do(&rf, 0, &r, 5000), BLKIF_RSP_OKAY);
		kill(s.daemon, SIGKILL);
		CHECK(bt_wait_pid_gone(s.daemon, 5000));
		if (!round) {
			memcpy(model + 777 * 4096, rawfe_page(&rf, 0), 4096);
			memcpy(model + 999 * 4096, rawfe_page(&rf, 1), 4096);
			check_image(img, model);
		} else {
			after = bt_read_file(gold, &len);
			CHECK(after && !memcmp(after, gold_before, len));
			free(after);
			CHECK_EQ(xbd_image_open_by_name("cow", gold, overlay, true,
							XBD_IMAGE_LOCK_EXCL,
							&reopened), 0);
			if (reopened) {
				CHECK_EQ(xbd_image_pread(reopened, buf, 4096, 777 * 4096), 0);
				CHECK(!memcmp(buf, rawfe_page(&rf, 0), 4096));
				CHECK_EQ(xbd_image_pread(reopened, buf, 4096, 999 * 4096), 0);
				CHECK(!memcmp(buf, rawfe_page(&rf, 1), 4096));
				xbd_image_close(reopened);
			}
		}
		/* the killed server's nodes: detach clears them up */
		rawfe_close(&rf);
		CHECK_EQ(bt_run(10000, "detach", "vm1", "xvdf", NULL), 0);
		CHECK(!bt_exists(gp, s.be));
		CHECK(!bt_exists(gp, s.fe));
		rawfe_destroy(&rf);
		free(gold_before);
	}
}

/* Detach while requests are in flight: they are answered, the
 * handshake walks Closing/Closed, nothing stays. */
static void test_detach_in_flight(const char *img)
{
	struct rawfe_opts o = { .abi = XBD_BLKIF_ABI_X86_64, .order = 1,
				.persistent = true, .data_pages = 64 };
	const char *extra[] = { "--image", img, NULL };
	struct served s;
	struct rawfe rf;
	unsigned i, got = 0;
	pid_t det;
	uint64_t t0;

	printf("detach with requests in flight\n");
	if (!serve(&s, "xvdg", &rf, &o, extra))
		return;
	for (i = 0; i < 48; i++) {
		struct xbd_blkif_request r = rawfe_rw(&rf, BLKIF_OP_READ, 500 + i,
						      i * 64, i, 1);

		xbd_blkif_front_put_request(&rf.q[0].f, &r);
	}
	xbd_blkif_front_push_requests(&rf.q[0].f);
	rawfe_kick(&rf, 0);
	t0 = xbd_now_ns();
	det = bt_spawn("detach", "vm1", "xvdg", NULL);
	CHECK_EQ(rawfe_be_state(&rf, XenbusStateClosing, 5000), XenbusStateClosing);
	while (got < 48) {
		struct xbd_blkif_response rsp;

		if (rawfe_recv(&rf, 0, &rsp, 3000) != 1)
			break;
		got++;
	}
	CHECK_EQ(got, 48);
	rawfe_close(&rf);
	CHECK_EQ(bt_wait(det, 15000), 0);
	CHECK(xbd_now_ns() - t0 < 5000000000ull); /* no timeout was needed */
	CHECK(!bt_exists(gp, s.be));
	CHECK(!bt_exists(gp, s.fe));
	CHECK(bt_wait_pid_gone(s.daemon, 5000));
	rawfe_destroy(&rf);
}

/* --mount: the disk in dom0, read-only, with the guest's writes. */
static void test_mount(const char *img, char *model)
{
	struct rawfe_opts o = { .abi = XBD_BLKIF_ABI_X86_64, .data_pages = 32 };
	char dir[200], file[260];
	const char *extra[] = { "--image", img, "--mount", dir, NULL };
	struct served s;
	struct rawfe rf;
	size_t len = 0;
	char *seen;
	int fd;

	if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK)) {
		printf("(no FUSE here: --mount not tested)\n");
		return;
	}
	printf("--mount\n");
	snprintf(dir, sizeof(dir), "%s/mnt", sim_dir);
	snprintf(file, sizeof(file), "%s/xvdh", dir);
	mkdir(dir, 0700);
	if (!serve(&s, "xvdh", &rf, &o, extra))
		return;
	write_read(&rf, 0, 4000, 0, 8, 4444, model);
	seen = bt_read_file(file, &len);
	CHECK(seen && len == DISK_SIZE && !memcmp(seen, model, DISK_SIZE));
	free(seen);
	fd = open(file, O_WRONLY);
	CHECK(fd < 0); /* read-only */
	if (fd >= 0)
		close(fd);
	unserve(&s, &rf);
	/* unmounted with the daemon */
	fd = open(file, O_RDONLY);
	CHECK(fd < 0);
	if (fd >= 0)
		close(fd);
	rmdir(dir);
}

/* ------------------------------------------------------------------ */
/* A slow image                                                       */
/* ------------------------------------------------------------------ */

#define SLOW_OFF (1u * MiB)
#define SLOW_MS 1500

static char *slow_data;

static int slow_getattr(const char *path, struct stat *st,
			struct fuse_file_info *fi)
{
	(void)fi;
	memset(st, 0, sizeof(*st));
	if (!strcmp(path, "/")) {
		st->st_mode = S_IFDIR | 0755;
		st->st_nlink = 2;
		return 0;
	}
	if (strcmp(path, "/disk"))
		return -ENOENT;
	st->st_mode = S_IFREG | 0600;
	st->st_nlink = 1;
	st->st_size = DISK_SIZE;
	return 0;
}

static int slow_open(const char *path, struct fuse_file_info *fi)
{
	if (strcmp(path, "/disk"))
		return -ENOENT;
	fi->direct_io = 1;
	return 0;
}

static int slow_read(const char *path, char *buf, size_t size, off_t off,
		     struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	if ((uint64_t)off >= DISK_SIZE)
		return 0;
	if (size > DISK_SIZE - (uint64_t)off)
		size = DISK_SIZE - (size_t)off;
	if ((uint64_t)off < SLOW_OFF + 4096 && (uint64_t)off + size > SLOW_OFF)
		usleep(SLOW_MS * 1000);
	memcpy(buf, slow_data + off, size);
	return (int)size;
}

static int slow_write(const char *path, const char *buf, size_t size,
		      off_t off, struct fuse_file_info *fi)
{
	(void)path;
	(void)fi;
	if ((uint64_t)off >= DISK_SIZE)
		return -ENOSPC;
	if (size > DISK_SIZE - (uint64_t)off)
		size = DISK_SIZE - (size_t)off;
	memcpy(slow_data + off, buf, size);
	return (int)size;
}

/* The control socket's "ring" answer lists request id in flight on the
 * device at backend path be. */
static bool ctl_shows_in_flight(const char *be, uint64_t id)
{
	struct xbd_ctl_reply *replies = NULL;
	unsigned n = 0, i;
	bool found = false;

	if (xbd_ctl_query_all(NULL, "ring", 2000, &replies, &n))
		return false;
	for (i = 0; i < n && !found; i++) {
		struct json_object *devs, *v, *reqs;
		size_t j, k;

		if (replies[i].err ||
		    !json_object_object_get_ex(replies[i].doc, "devices", &devs))
			continue;
		for (j = 0; j < json_object_array_length(devs); j++) {
			struct json_object *d = json_object_array_get_idx(devs, j);

			if (!json_object_object_get_ex(d, "backend_path", &v) ||
			    strcmp(json_object_get_string(v), be) ||
			    !json_object_object_get_ex(d, "in_flight_requests", &reqs) ||
			    !json_object_object_get_ex(d, "in_flight_total", &v) ||
			    json_object_get_int64(v) < 1 ||
			    (size_t)json_object_get_int64(v) != json_object_array_length(reqs))
				continue;
			for (k = 0; k < json_object_array_length(reqs); k++) {
				struct json_object *r = json_object_array_get_idx(reqs, k);

				if (json_object_object_get_ex(r, "id", &v) &&
				    (uint64_t)json_object_get_int64(v) == id &&
				    json_object_object_get_ex(r, "op", &v) &&
				    !strcmp(json_object_get_string(v), "read"))
					found = true;
			}
		}
	}
	xbd_ctl_replies_free(replies, n);
	return found;
}

static void *slow_loop(void *arg)
{
	fuse_loop_mt((struct fuse *)arg, 0);
	return NULL;
}

static void test_slow_request(void)
{
	static const struct fuse_operations ops = {
		.getattr = slow_getattr,
		.open = slow_open,
		.read = slow_read,
		.write = slow_write,
	};
	char *argv[] = { (char *)"slowfs", NULL };
	struct fuse_args args = FUSE_ARGS_INIT(1, argv);
	struct rawfe_opts o = { .abi = XBD_BLKIF_ABI_X86_64, .order = 1,
				.persistent = true, .data_pages = 80 };
	char dir[200], file[260];
	const char *extra[] = { "--image", file, NULL };
	struct xbd_blkif_request r;
	struct served s;
	struct rawfe rf;
	struct fuse *f;
	pthread_t t;
	unsigned i, fast_before_slow = 0, got = 0;
	bool slow_done = false;
	uint64_t t0;

	if (geteuid() != 0 || access("/dev/fuse", R_OK | W_OK)) {
		printf("(no FUSE here: the slow request is not tested)\n");
		return;
	}
	printf("a slow request does not stall the ring\n");
	slow_data = calloc(1, DISK_SIZE);
	snprintf(dir, sizeof(dir), "%s/slowfs", sim_dir);
	snprintf(file, sizeof(file), "%s/disk", dir);
	mkdir(dir, 0700);
	f = fuse_new(&args, &ops, sizeof(ops), NULL);
	CHECK(f != NULL);
	if (!f || fuse_mount(f, dir)) {
		CHECK(!"slow FUSE file system mounted");
		if (f)
			fuse_destroy(f);
		fuse_opt_free_args(&args);
		free(slow_data);
		return;
	}
	pthread_create(&t, NULL, slow_loop, f);
	if (serve(&s, "xvdi", &rf, &o, extra)) {
		t0 = xbd_now_ns();
		r = rawfe_rw(&rf, BLKIF_OP_READ, 1, SLOW_OFF / 512, 0, 1);
		xbd_blkif_front_put_request(&rf.q[0].f, &r);
		for (i = 0; i < 40; i++) {
			r = rawfe_rw(&rf, BLKIF_OP_READ, 100 + i, (4 * MiB) / 512 + i * 8,
				     1 + i, 1);
			xbd_blkif_front_put_request(&rf.q[0].f, &r);
		}
		xbd_blkif_front_push_requests(&rf.q[0].f);
		rawfe_kick(&rf, 0);
		usleep(300 * 1000);
		CHECK(ctl_shows_in_flight(s.be, 1));
		while (got < 41) {
			struct xbd_blkif_response rsp;

			if (rawfe_recv(&rf, 0, &rsp, 5000) != 1)
				break;
			got++;
			CHECK_EQ(rsp.status, BLKIF_RSP_OKAY);
			if (rsp.id == 1)
				slow_done = true;
			else if (!slow_done)
				fast_before_slow++;
		}
		CHECK_EQ(got, 41);
		CHECK_EQ(fast_before_slow, 40);
		CHECK(xbd_now_ns() - t0 >= (uint64_t)SLOW_MS * 1000000u);
		unserve(&s, &rf);
	}
	fuse_exit(f);
	fuse_unmount(f);
	pthread_join(t, NULL);
	fuse_destroy(f);
	fuse_opt_free_args(&args);
	rmdir(dir);
	free(slow_data);
}

static void show_serve_logs(void)
{
	const char *names[] = { "xvdb", "xvdc", "xvdd", "xvde", "xvdf", "xvdg",
				"xvdh", "xvdi" };
	unsigned i;

	for (i = 0; i < XBD_ARRAY_SIZE(names); i++) {
		char path[256];
		size_t len = 0;
		char *text;

		snprintf(path, sizeof(path), "%s/serve-%s.log", sim_dir, names[i]);
		text = bt_read_file(path, &len);
		if (text && len) {
			fprintf(stderr, "---- serve %s ----\n", names[i]);
			fwrite(text, 1, len, stderr);
		}
		free(text);
	}
}

int main(void)
{
	char img[160], gold[160], overlay[160], run_dir[160];
	size_t len;
	char *model;

	setvbuf(stdout, NULL, _IOLBF, 0);
	sim_dir = xbd_test_sim_start();
	bt_track(0);
	snprintf(run_dir, sizeof(run_dir), "%s/run", sim_dir);
	setenv("XBD_RUN_DIR", run_dir, 1);
	snprintf(img, sizeof(img), "%s/disk.raw", sim_dir);
	snprintf(gold, sizeof(gold), "%s/gold.raw", sim_dir);
	snprintf(overlay, sizeof(overlay), "%s/gold.overlay", sim_dir);
	bt_make_file(img, DISK_SIZE, 1);
	bt_make_file(gold, DISK_SIZE, 2);
	model = bt_read_file(img, &len);
	domid = xbd_test_sim_vm_create("vm1");
	gp = xbd_test_sim_open(domid);

	test_ring_orders(img, model);
	test_multi_queue(img, model);
	test_abi32_indirect(img, model);
	test_flush_barrier_discard(img, model);
	test_durability(img, model, gold, overlay);
	test_detach_in_flight(img);
	test_mount(img, model);
	test_slow_request();

	xbd_platform_close(gp);
	free(model);
	show_serve_logs();
	return check_report("test_backend_proto");
}

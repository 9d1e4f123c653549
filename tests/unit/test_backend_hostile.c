/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A hostile guest against the backend, on the sim.  One backend process
 * (the blkback role, as `xbd sim blkback` runs it) serves three disks:
 * vm1's xvdb (raw, writable) and xvdc (read-only), driven by this test
 * as a guest that writes raw ring slots, and vm2's xvdb, driven by xbd's
 * own blkfront in a thread that reads, writes and verifies all along.
 *
 * vm1 sends every kind of malformed request, in both ABIs: bad ops, 0 or
 * more than 11 segments, first_sect > last_sect, last_sect > 7, sectors
 * past the end, grant refs not granted or granted to another domain or
 * read-only, writes on the read-only disk, indirect requests with too
 * many segments or bad indirect pages, a slot rewritten while the
 * backend reads it, bad ring handshakes, a flood of events and finally
 * req_prod far past the ring.  Each gets BLKIF_RSP_ERROR (or
 * EOPNOTSUPP for what is not offered) or closes that device; the
 * backend never crashes or hangs, never touches a byte outside the image
 * (the image and a canary file beside it are compared at the end), leaks
 * no grant mapping or event channel, and vm2 never sees an error.
 */
#include "tests/lib/check.h"
#include "tests/lib/rawfe.h"
#include "tests/lib/backend_util.h"

#include "xbd/backend.h"
#include "xbd/frontend.h"
#include "xbd/toolstack.h"
#include "xbd/image.h"

#include <dirent.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/stat.h>

#define TYPE "xbdtest"
#define DISK_SIZE (4u << 20)
#define NR_SECTORS (DISK_SIZE / 512u)
#define DATA_PAGES 96
#define IND_PAGE 80   /* first of the pages used as indirect pages */
#define SCRATCH 90    /* a page the tests fill as they like */
#define NOT_GRANTED 60000u

static const char *sim_dir;
static char *image_bytes; /* the image as it must stay */

/* ------------------------------------------------------------------ */
/* The backend process                                                */
/* ------------------------------------------------------------------ */

static struct xbd_backend *child_be;

static void child_stop(int sig)
{
	(void)sig;
	xbd_backend_stop(child_be);
}

/* The blkback role in a process of its own, serving backend/TYPE. */
static pid_t start_blkback(void)
{
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		exit(1);
	if (pid == 0) {
		struct xbd_platform *p = xbd_test_sim_open(0);
		struct sigaction sa = { .sa_handler = child_stop };
		int err;

		xbd_progname = "blkback";
		if (getenv("XBD_DEBUG"))
			xbd_verbosity = atoi(getenv("XBD_DEBUG"));
		if (xbd_backend_create(p, NULL, &child_be))
			exit(3);
		sigaction(SIGTERM, &sa, NULL);
		err = xbd_backend_watch_type(child_be, TYPE);
		if (!err)
			err = xbd_backend_run(child_be, 0);
		xbd_backend_destroy(child_be);
		xbd_platform_close(p);
		exit(err ? 4 : 0);
	}
	bt_track(pid);
	return pid;
}

/* Grant mappings of domain memory and event channel FIFOs held by pid
 * (the sim maps a granted page from the domain's mem-<id> file, and
 * each event channel handle is a FIFO ev-<pid>-<n>). */
static void count_resources(pid_t pid, unsigned *maps, unsigned *chans)
{
	char path[64], line[512], target[512];
	FILE *f;
	DIR *d;
	struct dirent *de;

	*maps = *chans = 0;
	snprintf(path, sizeof(path), "/proc/%d/maps", (int)pid);
	f = fopen(path, "r");
	while (f && fgets(line, sizeof(line), f)) {
		unsigned long lo, hi;

		/* whole-memory views (256 MiB) are the sim's, for grant copy */
		if (strstr(line, "/mem-") && sscanf(line, "%lx-%lx", &lo, &hi) == 2 &&
		    hi - lo < (256ul << 20))
			(*maps)++;
	}
	if (f)
		fclose(f);
	snprintf(path, sizeof(path), "/proc/%d/fd", (int)pid);
	d = opendir(path);
	while (d && (de = readdir(d))) {
		char fd_path[400];
		ssize_t n;

		snprintf(fd_path, sizeof(fd_path), "%s/%s", path, de->d_name);
		n = readlink(fd_path, target, sizeof(target) - 1);
		if (n <= 0)
			continue;
		target[n] = '\0';
		if (strstr(target, "/ev-"))
			(*chans)++;
	}
	if (d)
		closedir(d);
}

/* ------------------------------------------------------------------ */
/* The well-behaved guest (vm2)                                       */
/* ------------------------------------------------------------------ */

struct good_guest {
	struct xbd_frontend *fe;
	struct xbd_image *img;
	atomic_bool stop;
	atomic_uint ops;
	atomic_uint errors;
	pthread_t thread;
};

static void *good_main(void *arg)
{
	struct good_guest *g = arg;
	char *buf = malloc(65536), *back = malloc(65536);
	unsigned i = 0;

	while (!atomic_load(&g->stop)) {
		uint64_t len = 4096u * (1 + i % 16);
		uint64_t off = (uint64_t)((i * 2654435761u) % (NR_SECTORS / 8 - 16)) * 4096u;

		bt_pattern(buf, len, 500 + i, off);
		if (xbd_image_pwrite(g->img, buf, len, off) ||
		    xbd_image_pread(g->img, back, len, off) ||
		    memcmp(buf, back, len))
			atomic_fetch_add(&g->errors, 1);
		atomic_fetch_add(&g->ops, 1);
		i++;
	}
	free(buf);
	free(back);
	return NULL;
}

/* vm2 must keep going: n more operations within ms. */
static bool good_progress(struct good_guest *g, unsigned n, int ms)
{
	unsigned start = atomic_load(&g->ops);
	uint64_t deadline = xbd_now_ns() + (uint64_t)ms * 1000000u;

	while (atomic_load(&g->ops) - start < n) {
		if (xbd_now_ns() > deadline)
			return false;
		usleep(1000);
	}
	return true;
}

/* ------------------------------------------------------------------ */
/* Requests                                                           */
/* ------------------------------------------------------------------ */

static uint64_t next_id = 1000;

static struct xbd_blkif_request bad_rw(struct rawfe *rf, uint8_t op,
				       uint64_t sector, unsigned nsegs)
{
	return rawfe_rw(rf, op, next_id++, sector, 0, nsegs > 11 ? 11 : nsegs);
}

static int16_t expect(struct rawfe *rf, struct xbd_blkif_request r)
{
	return (int16_t)rawfe_do(rf, 0, &r, 5000);
}

/* An indirect request of n segments over data pages 0.., descriptors
 * in indirect pages IND_PAGE.. (bad_seg >= 0: that one is broken). */
static struct xbd_blkif_request indirect(struct rawfe *rf, uint8_t op,
					 uint64_t sector, unsigned n,
					 int bad_seg, uint32_t bad_gref)
{
	struct xbd_blkif_seg segs[512];
	struct xbd_blkif_request r;
	unsigned i, pages = (n + 511) / 512;

	memset(&r, 0, sizeof(r));
	r.id = next_id++;
	r.ring_op = BLKIF_OP_INDIRECT;
	r.op = op;
	r.indirect = true;
	r.sector = sector;
	r.nr_segments = n;
	for (i = 0; i < pages && i < XBD_BLKIF_MAX_INDIRECT_PAGES; i++) {
		unsigned j, m = n - i * 512 > 512 ? 512 : n - i * 512;

		for (j = 0; j < m; j++) {
			segs[j].gref = rf->data_refs[(i * 512 + j) % 64];
			segs[j].first_sect = 0;
			segs[j].last_sect = 7;
			if ((int)(i * 512 + j) == bad_seg) {
				if (bad_gref)
					segs[j].gref = bad_gref;
				else
					segs[j].first_sect = 5, segs[j].last_sect = 2;
			}
		}
		xbd_blkif_write_indirect_segments(rawfe_page(rf, IND_PAGE + i), segs, m);
		r.indirect_grefs[i] = rf->data_refs[IND_PAGE + i];
	}
	return r;
}

/* Every malformed request on the writable disk. */
static void malformed_suite(struct rawfe *rf, uint32_t foreign_ref,
			    uint32_t ro_ref, unsigned char *ro_page)
{
	struct xbd_blkif_request r;
	unsigned i;

	/* a valid write (of the bytes already there) and read first */
	memcpy(rawfe_page(rf, 0), image_bytes, 4096);
	CHECK_EQ(expect(rf, rawfe_rw(rf, BLKIF_OP_WRITE, next_id++, 0, 0, 1)),
		 BLKIF_RSP_OKAY);
	CHECK_EQ(expect(rf, rawfe_rw(rf, BLKIF_OP_READ, next_id++, 8, 1, 1)),
		 BLKIF_RSP_OKAY);
	CHECK(!memcmp(rawfe_page(rf, 1), image_bytes + 4096, 4096));

	/* bad operations */
	for (i = 0; i < 4; i++) {
		static const uint8_t ops[] = { 4, 7, 9, 255 };

		r = bad_rw(rf, ops[i], 0, 1);
		CHECK_EQ(expect(rf, r), BLKIF_RSP_ERROR);
	}
	/* segment counts */
	r = bad_rw(rf, BLKIF_OP_READ, 0, 0);
	CHECK_EQ(expect(rf, r), BLKIF_RSP_ERROR);
	r = bad_rw(rf, BLKIF_OP_WRITE, 0, 0);
	CHECK_EQ(expect(rf, r), BLKIF_RSP_ERROR);
	r = bad_rw(rf, BLKIF_OP_READ, 0, 11);
	r.nr_segments = 12;
	CHECK_EQ(expect(rf, r), BLKIF_RSP_ERROR);
	r = bad_rw(rf, BLKIF_OP_WRITE, 0, 11);
	r.nr_segments = 255;
	CHECK_EQ(expect(rf, r), BLKIF_RSP_ERROR);
	/* sectors inside a segment */
	r = bad_rw(rf, BLKIF_OP_READ, 0, 1);
	r.seg[0].first_sect = 5;
	r.seg[0].last_sect = 2;
	CHECK_EQ(expect(rf, r), BLKIF_RSP_ERROR);
	r = bad_rw(rf, BLKIF_OP_WRITE, 0, 2);
	r.seg[1].last_sect = 8;
	CHECK_EQ(expect(rf, r), BLKIF_RSP_ERROR);
	r = bad_rw(rf, BLKIF_OP_READ, 0, 1);
	r.seg[0].first_sect = 200;
	r.seg[0].last_sect = 255;
	CHECK_EQ(expect(rf, r), BLKIF_RSP_ERROR);
	/* past the end of the disk */
	CHECK_EQ(expect(rf, bad_rw(rf, BLKIF_OP_READ, NR_SECTORS - 4, 1)),
		 BLKIF_RSP_ERROR);
	CHECK_EQ(expect(rf, bad_rw(rf, BLKIF_OP_READ, NR_SECTORS, 1)),
		 BLKIF_RSP_ERROR);
	CHECK_EQ(expect(rf, bad_rw(rf, BLKIF_OP_WRITE, NR_SECTORS - 1, 1)),
		 BLKIF_RSP_ERROR);
	CHECK_EQ(expect(rf, bad_rw(rf, BLKIF_OP_WRITE, ~0ull - 3, 1)),
		 BLKIF_RSP_ERROR);
	CHECK_EQ(expect(rf, bad_rw(rf, BLKIF_OP_WRITE, 1ull << 62, 2)),
		 BLKIF_RSP_ERROR);
	memset(&r, 0, sizeof(r));
	r.ring_op = r.op = BLKIF_OP_DISCARD;
	r.id = next_id++;
	r.sector = NR_SECTORS - 1;
	r.nr_sectors = 8;
	CHECK_EQ(expect(rf, r), BLKIF_RSP_ERROR);
	r.id = next_id++;
	r.sector = 8;
	r.nr_sectors = ~0ull - 4;
	CHECK_EQ(expect(rf, r), BLKIF_RSP_ERROR);
	/* grants: never granted, granted to another domain, reserved,
	 * read-only where the backend must write */
	for (i = 0; i < 2; i++) {
		uint8_t op = i ? BLKIF_OP_WRITE : BLKIF_OP_READ;

		r = bad_rw(rf, op, 16, 2);
		r.seg[1].gref = NOT_GRANTED;
		CHECK_EQ(expect(rf, r), BLKIF_RSP_ERROR);
		r = bad_rw(rf, op, 16, 1);
		r.seg[0].gref = foreign_ref;
		CHECK_EQ(expect(rf, r), BLKIF_RSP_ERROR);
		r = bad_rw(rf, op, 16, 1);
		r.seg[0].gref = 3;
		CHECK_EQ(expect(rf, r), BLKIF_RSP_ERROR);
		r = bad_rw(rf, op, 16, 1);
		r.seg[0].gref = 0xffffffffu;
		CHECK_EQ(expect(rf, r), BLKIF_RSP_ERROR);
	}
	r = bad_rw(rf, BLKIF_OP_READ, 16, 1);
	r.seg[0].gref = ro_ref;
	CHECK_EQ(expect(rf, r), BLKIF_RSP_ERROR);
	/* a read-only grant is fine for the backend to read from */
	memcpy(ro_page, image_bytes + 16 * 512, 4096);
	r = bad_rw(rf, BLKIF_OP_WRITE, 16, 1);
	r.seg[0].gref = ro_ref;
	CHECK_EQ(expect(rf, r), BLKIF_RSP_OKAY);

	/* indirect */
	CHECK_EQ(expect(rf, indirect(rf, BLKIF_OP_READ, 0, 300, -1, 0)),
		 BLKIF_RSP_ERROR);
	CHECK_EQ(expect(rf, indirect(rf, BLKIF_OP_READ, 0, 4096, -1, 0)),
		 BLKIF_RSP_ERROR);
	r = indirect(rf, BLKIF_OP_READ, 0, 16, -1, 0);
	r.nr_segments = 0;
	CHECK_EQ(expect(rf, r), BLKIF_RSP_ERROR);
	CHECK_EQ(expect(rf, indirect(rf, BLKIF_OP_WRITE_BARRIER, 0, 16, -1, 0)),
		 BLKIF_RSP_ERROR);
	CHECK_EQ(expect(rf, indirect(rf, 9, 0, 16, -1, 0)), BLKIF_RSP_ERROR);
	CHECK_EQ(expect(rf, indirect(rf, BLKIF_OP_INDIRECT, 0, 16, -1, 0)),
		 BLKIF_RSP_ERROR);
	r = indirect(rf, BLKIF_OP_READ, 0, 16, -1, 0);
	r.indirect_grefs[0] = NOT_GRANTED;
	CHECK_EQ(expect(rf, r), BLKIF_RSP_ERROR);
	r = indirect(rf, BLKIF_OP_READ, 0, 16, -1, 0);
	r.indirect_grefs[0] = foreign_ref;
	CHECK_EQ(expect(rf, r), BLKIF_RSP_ERROR);
	CHECK_EQ(expect(rf, indirect(rf, BLKIF_OP_READ, 0, 64, 40, 0)),
		 BLKIF_RSP_ERROR);
	CHECK_EQ(expect(rf, indirect(rf, BLKIF_OP_WRITE, 0, 64, 63, NOT_GRANTED)),
		 BLKIF_RSP_ERROR);
	CHECK_EQ(expect(rf, indirect(rf, BLKIF_OP_READ, NR_SECTORS - 8, 64, -1, 0)),
		 BLKIF_RSP_ERROR);
	/* and a good one: 64 pages at sector 64 */
	CHECK_EQ(expect(rf, indirect(rf, BLKIF_OP_READ, 64, 64, -1, 0)),
		 BLKIF_RSP_OKAY);
	CHECK(!memcmp(rawfe_page(rf, 0), image_bytes + 64 * 512, 64 * 4096));

	/* partial pages in a direct request: sectors 2..5 of three pages */
	r = rawfe_rw(rf, BLKIF_OP_READ, next_id++, 100, 0, 3);
	for (i = 0; i < 3; i++) {
		r.seg[i].first_sect = 2;
		r.seg[i].last_sect = 5;
	}
	memset(rawfe_page(rf, 0), 0, 3 * 4096);
	CHECK_EQ(expect(rf, r), BLKIF_RSP_OKAY);
	for (i = 0; i < 3; i++)
		CHECK(!memcmp(rawfe_page(rf, i) + 1024,
			      image_bytes + (100 + i * 4) * 512, 2048));

	/* the device still answers */
	CHECK_EQ(expect(rf, rawfe_rw(rf, BLKIF_OP_READ, next_id++, 8, 1, 1)),
		 BLKIF_RSP_OKAY);
}

/* Writes on a read-only disk, and the features it does not offer. */
static void read_only_suite(struct rawfe *rf)
{
	struct xbd_blkif_request r;
	int16_t st;

	memcpy(rawfe_page(rf, 0), image_bytes, 4096);
	CHECK_EQ(expect(rf, rawfe_rw(rf, BLKIF_OP_WRITE, next_id++, 0, 0, 1)),
		 BLKIF_RSP_ERROR);
	CHECK_EQ(expect(rf, indirect(rf, BLKIF_OP_WRITE, 0, 16, -1, 0)),
		 BLKIF_RSP_ERROR);
	r = rawfe_rw(rf, BLKIF_OP_FLUSH_DISKCACHE, next_id++, 0, 0, 1);
	st = expect(rf, r);
	CHECK(st == BLKIF_RSP_ERROR || st == BLKIF_RSP_EOPNOTSUPP);
	r = rawfe_rw(rf, BLKIF_OP_WRITE_BARRIER, next_id++, 0, 0, 0);
	st = expect(rf, r);
	CHECK(st == BLKIF_RSP_ERROR || st == BLKIF_RSP_EOPNOTSUPP);
	memset(&r, 0, sizeof(r));
	r.ring_op = r.op = BLKIF_OP_DISCARD;
	r.id = next_id++;
	r.nr_sectors = 8;
	st = expect(rf, r);
	CHECK(st == BLKIF_RSP_ERROR || st == BLKIF_RSP_EOPNOTSUPP);
	CHECK_EQ(expect(rf, rawfe_rw(rf, BLKIF_OP_READ, next_id++, 8, 1, 1)),
		 BLKIF_RSP_OKAY);
	CHECK(!memcmp(rawfe_page(rf, 1), image_bytes + 4096, 4096));
}

/* ------------------------------------------------------------------ */
/* A slot rewritten while the backend reads it                        */
/* ------------------------------------------------------------------ */

struct flipper {
	struct rawfe *rf;
	_Atomic(void *) slot;
	atomic_bool stop;
	pthread_t thread;
};

/* Every mix of the two versions of each field is either the valid
 * write (of bytes already in the image) or an invalid request.  Only
 * fields past the first 12 bytes flip: the response is written over the
 * same slot, and a guest that scribbles on its own responses only hurts
 * itself. */
static void *flipper_main(void *arg)
{
	struct flipper *fl = arg;
	unsigned i = 0;

	while (!atomic_load_explicit(&fl->stop, memory_order_relaxed)) {
		void *slot = atomic_load_explicit(&fl->slot, memory_order_acquire);

		if (!slot)
			continue;
		if (fl->rf->abi == XBD_BLKIF_ABI_X86_64) {
			volatile blkif_request_t *s = slot;

			s->sector_number = i & 1 ? NR_SECTORS - 1 : 0;
			s->seg[0].last_sect = i & 2 ? 7 : 3;
			s->seg[0].gref = i & 4 ? NOT_GRANTED : fl->rf->data_refs[0];
		} else {
			volatile struct blkif_x86_32_request *s = slot;

			s->sector_number = i & 1 ? NR_SECTORS - 1 : 0;
			s->seg[0].last_sect = i & 2 ? 7 : 3;
			s->seg[0].gref = i & 4 ? NOT_GRANTED : fl->rf->data_refs[0];
		}
		i++;
	}
	return NULL;
}

static void *slot_of(struct rawfe *rf, RING_IDX idx)
{
	struct rawq *q = &rf->q[0];

	if (rf->abi == XBD_BLKIF_ABI_X86_32)
		return RING_GET_REQUEST(&q->f.r.x86_32, idx);
	return RING_GET_REQUEST(&q->f.r.native, idx);
}

static void rewrite_suite(struct rawfe *rf)
{
	struct flipper fl = { .rf = rf };
	unsigned i, ok = 0, bad = 0, other = 0;

	memcpy(rawfe_page(rf, 0), image_bytes, 4096);
	pthread_create(&fl.thread, NULL, flipper_main, &fl);
	for (i = 0; i < 400; i++) {
		struct xbd_blkif_request r =
			rawfe_rw(rf, BLKIF_OP_WRITE, next_id++, 0, 0, 1);
		struct xbd_blkif_response rsp;
		RING_IDX idx = rf->q[0].f.r.native.req_prod_pvt;

		xbd_blkif_front_put_request(&rf->q[0].f, &r);
		atomic_store_explicit(&fl.slot, slot_of(rf, idx), memory_order_release);
		xbd_blkif_front_push_requests(&rf->q[0].f);
		rawfe_kick(rf, 0);
		if (rawfe_recv(rf, 0, &rsp, 5000) != 1 || rsp.id != r.id) {
			fprintf(stderr, "iteration %u: rsp id %llu (want %llu) status %d\n",
				i, (unsigned long long)rsp.id, (unsigned long long)r.id,
				rsp.status);
			other++;
			break;
		}
		atomic_store_explicit(&fl.slot, NULL, memory_order_release);
		if (rsp.status == BLKIF_RSP_OKAY)
			ok++;
		else if (rsp.status == BLKIF_RSP_ERROR)
			bad++;
		else
			other++;
	}
	atomic_store(&fl.stop, true);
	pthread_join(fl.thread, NULL);
	printf("  rewritten slots: %u answered OK, %u ERROR\n", ok, bad);
	CHECK_EQ(other, 0);
	CHECK_EQ(ok + bad, 400);
}

/* ------------------------------------------------------------------ */
/* Events                                                             */
/* ------------------------------------------------------------------ */

struct flood {
	struct rawfe *rf;
	unsigned count;
	pthread_t thread;
};

static void *flood_main(void *arg)
{
	struct flood *fl = arg;
	unsigned i;

	for (i = 0; i < fl->count; i++)
		rawfe_kick(fl->rf, 0);
	return NULL;
}

/* ------------------------------------------------------------------ */

struct dev {
	const char *vdev;
	uint32_t devid;
	char fe[128], be[192];
};

static void make_dev(struct xbd_platform *dom0, struct dev *d, uint16_t domid,
		     const char *vdev, const char *params, const char *mode)
{
	struct xbd_vbd_spec spec = {
		.fe_domid = domid,
		.be_domid = 0,
		.be_type = TYPE,
		.params = params,
		.type = "file",
		.mode = mode,
	};

	d->vdev = vdev;
	xbd_vdev_to_devid(vdev, &d->devid);
	spec.devid = d->devid;
	xbd_frontend_path(d->fe, sizeof(d->fe), domid, d->devid);
	CHECK_EQ(xbd_vbd_create(dom0, &spec, d->be, sizeof(d->be)), 0);
}

static void check_files(const char *img, const char *canary,
			const char *canary_bytes, size_t canary_len)
{
	size_t len = 0;
	char *now = bt_read_file(img, &len);

	CHECK_EQ(len, DISK_SIZE);
	CHECK(now && len == DISK_SIZE && !memcmp(now, image_bytes, DISK_SIZE));
	free(now);
	now = bt_read_file(canary, &len);
	CHECK(now && len == canary_len && !memcmp(now, canary_bytes, len));
	free(now);
}

int main(void)
{
	char img[160], img_ro[160], img2[160], canary[160];
	struct xbd_platform *dom0, *p1, *p2;
	struct xbd_frontend_config cfg2;
	struct good_guest good = { 0 };
	struct dev a, ro, b, c;
	struct rawfe rf, rfro, rfc;
	struct rawfe_opts o64 = { .abi = XBD_BLKIF_ABI_X86_64, .data_pages = DATA_PAGES,
				  .persistent = true };
	struct rawfe_opts o32 = { .abi = XBD_BLKIF_ABI_X86_32, .no_protocol = true,
				  .data_pages = DATA_PAGES, .order = 1 };
	uint16_t vm1, vm2;
	uint32_t foreign_ref, ro_ref;
	void *foreign_page, *ro_page;
	unsigned maps0, chans0, maps, chans;
	size_t canary_len, len;
	char *canary_bytes;
	struct flood fl;
	pid_t be_pid;
	int st;

	setvbuf(stdout, NULL, _IOLBF, 0);
	sim_dir = xbd_test_sim_start();
	bt_track(0);
	snprintf(img, sizeof(img), "%s/disk.raw", sim_dir);
	snprintf(img_ro, sizeof(img_ro), "%s/disk-ro.raw", sim_dir);
	snprintf(img2, sizeof(img2), "%s/disk2.raw", sim_dir);
	snprintf(canary, sizeof(canary), "%s/disk.raw.canary", sim_dir);
	bt_make_file(img, DISK_SIZE, 11);
	bt_make_file(img_ro, DISK_SIZE, 11);
	bt_make_file(img2, DISK_SIZE, 12);
	bt_make_file(canary, 1 << 20, 13);
	image_bytes = bt_read_file(img, &len);
	canary_bytes = bt_read_file(canary, &canary_len);

	vm1 = xbd_test_sim_vm_create("vm1");
	vm2 = xbd_test_sim_vm_create("vm2");
	dom0 = xbd_test_sim_open(0);
	p1 = xbd_test_sim_open(vm1);
	p2 = xbd_test_sim_open(vm2);
	be_pid = start_blkback();
	usleep(200 * 1000);
	count_resources(be_pid, &maps0, &chans0);

	make_dev(dom0, &a, vm1, "xvdb", img, "w");
	make_dev(dom0, &ro, vm1, "xvdc", img_ro, "r");
	make_dev(dom0, &b, vm2, "xvdb", img2, "w");

	/* vm2: well behaved, busy all along */
	cfg2 = (struct xbd_frontend_config){ .frontend_path = b.fe,
					     .backend_path = b.be,
					     .name = "vm2/xvdb" };
	CHECK_EQ(xbd_frontend_connect(p2, &cfg2, &good.fe), 0);
	if (good.fe)
		CHECK_EQ(xbd_frontend_open_image(good.fe, false, &good.img), 0);
	if (!good.img)
		return check_report("test_backend_hostile");
	pthread_create(&good.thread, NULL, good_main, &good);
	CHECK(good_progress(&good, 20, 5000));
	/* the counting sees what a connected device holds */
	count_resources(be_pid, &maps, &chans);
	printf("  backend with vm2 connected: %u grant maps, %u event channels\n",
	       maps, chans);
	CHECK(maps > maps0);
	CHECK(chans > chans0);

	/* vm1's pages that the backend must not be able to use */
	CHECK_EQ(xbd_share_pages(p1, vm2, 1, true, &foreign_ref,
				 &foreign_page), 0);
	CHECK_EQ(xbd_share_pages(p1, 0, 1, false, &ro_ref, &ro_page), 0);

	printf("x86_64, persistent grants: malformed requests\n");
	rawfe_init(&rf, p1, a.fe, a.be);
	CHECK_EQ(rawfe_connect(&rf, &o64), 0);
	malformed_suite(&rf, foreign_ref, ro_ref, ro_page);
	rewrite_suite(&rf);
	CHECK(good_progress(&good, 20, 5000));
	rawfe_close(&rf);
	CHECK_EQ(rawfe_be_state(&rf, 0, 0), XenbusStateClosed);

	printf("x86_32 (no protocol node), grant copy, 2 ring pages: again\n");
	CHECK_EQ(rawfe_connect(&rf, &o32), 0);
	malformed_suite(&rf, foreign_ref, ro_ref, ro_page);
	rewrite_suite(&rf);
	CHECK(good_progress(&good, 20, 5000));

	printf("read-only disk\n");
	rawfe_init(&rfro, p1, ro.fe, ro.be);
	CHECK_EQ(rawfe_connect(&rfro, &o64), 0);
	read_only_suite(&rfro);

	printf("a flood of events\n");
	fl = (struct flood){ .rf = &rfro, .count = 200000 };
	pthread_create(&fl.thread, NULL, flood_main, &fl);
	CHECK(good_progress(&good, 50, 10000));
	pthread_join(fl.thread, NULL);
	CHECK_EQ(expect(&rfro, rawfe_rw(&rfro, BLKIF_OP_READ, next_id++, 8, 1, 1)),
		 BLKIF_RSP_OKAY);

	printf("bad handshakes\n");
	make_dev(dom0, &c, vm1, "xvdd", img, "w");
	rawfe_init(&rfc, p1, c.fe, c.be);
	{
		struct rawfe_opts bad = o64;
		char path[256];

		bad.bad_ring_ref = "60000";
		CHECK_EQ(rawfe_connect(&rfc, &bad), XenbusStateClosing);
		snprintf(path, sizeof(path), "%s/error", c.be);
		CHECK(bt_exists(dom0, path));
		rawfe_close(&rfc);
		bad = o64;
		bad.bad_order = "7";
		bad.order = 0;
		CHECK_EQ(rawfe_connect(&rfc, &bad), XenbusStateClosing);
		rawfe_close(&rfc);
		bad = o64;
		bad.nq = 3; /* more queues than... fine, but: */
		bad.bad_order = "-1";
		CHECK_EQ(rawfe_connect(&rfc, &bad), XenbusStateClosing);
		rawfe_close(&rfc);
		/* after all that, a proper connection works */
		bad = o64;
		bad.order = 4;
		bad.nq = 2;
		CHECK_EQ(rawfe_connect(&rfc, &bad), 0);
		CHECK_EQ(expect(&rfc, rawfe_rw(&rfc, BLKIF_OP_READ, next_id++, 8, 1, 1)),
			 BLKIF_RSP_OKAY);
		rawfe_close(&rfc);
	}
	CHECK(good_progress(&good, 20, 5000));

	printf("req_prod far past the ring\n");
	{
		volatile blkif_sring_t *s = (volatile blkif_sring_t *)rf.q[0].ring;

		s->req_prod = s->rsp_prod + 10000;
		rawfe_kick(&rf, 0);
		CHECK_EQ(rawfe_be_state(&rf, XenbusStateClosing, 5000),
			 XenbusStateClosing);
		rawfe_close(&rf);
		CHECK_EQ(rawfe_be_state(&rf, 0, 0), XenbusStateClosed);
	}
	CHECK(good_progress(&good, 50, 5000));
	CHECK(bt_pid_alive(be_pid));
	CHECK_EQ(waitpid(be_pid, &st, WNOHANG), 0);

	/* the guest disconnects everything; the toolstack removes the
	 * devices; nothing stays mapped or bound in the backend */
	rawfe_close(&rfro);
	atomic_store(&good.stop, true);
	pthread_join(good.thread, NULL);
	printf("  vm2: %u operations, %u errors\n", atomic_load(&good.ops),
	       atomic_load(&good.errors));
	CHECK_EQ(atomic_load(&good.errors), 0);
	xbd_image_close(good.img);
	xbd_frontend_close(good.fe);
	xbd_vbd_destroy(dom0, a.fe, a.be);
	xbd_vbd_destroy(dom0, ro.fe, ro.be);
	xbd_vbd_destroy(dom0, b.fe, b.be);
	xbd_vbd_destroy(dom0, c.fe, c.be);
	usleep(300 * 1000);
	count_resources(be_pid, &maps, &chans);
	printf("  backend: %u grant maps, %u event channels (before: %u, %u)\n",
	       maps, chans, maps0, chans0);
	CHECK_EQ(maps, maps0);
	CHECK_EQ(chans, chans0);

	check_files(img, canary, canary_bytes, canary_len);
	{
		char *ro_now = bt_read_file(img_ro, &len);

		CHECK(ro_now && !memcmp(ro_now, image_bytes, DISK_SIZE));
		free(ro_now);
	}

	/* it still takes new devices, and stops cleanly */
	kill(be_pid, SIGTERM);
	CHECK_EQ(bt_wait(be_pid, 10000), 0);

	rawfe_destroy(&rf);
	rawfe_destroy(&rfro);
	rawfe_destroy(&rfc);
	xbd_unshare_pages(p1, foreign_page, 1);
	xbd_unshare_pages(p1, ro_page, 1);
	xbd_platform_close(p1);
	xbd_platform_close(p2);
	xbd_platform_close(dom0);
	free(image_bytes);
	free(canary_bytes);
	return check_report("test_backend_hostile");
}

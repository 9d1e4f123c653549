/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit test of src/blkback_sysfs.c: blkback counters from a fake sysfs
 * tree; a domain's disks and their backends from a fake xenstore; and the
 * read-only ring look through a fake platform whose "grants" are local
 * pages (checking that the mapping is asked read-only and that nothing
 * is written).
 *
 * With --sim-guest FILE it is instead a guest of the simulated Xen (run by
 * `xbd sim vm create VM -- test_stats_blkback --sim-guest FILE`): it
 * grants dom0 one ring page holding the same x86_64 ring as below,
 * writes the grant ref to FILE and waits to be destroyed, so that the
 * xbdsh shell tests can map a live ring.
 */
#include "tests/lib/check.h"
#include "xbd/blkback_sysfs.h"
#include "src/platform_priv.h" /* its fake platform is an implementation */
#include "xbd/common.h"
#include "xbd/ring.h"
#include "src/sim/sim.h"

#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* sysfs                                                              */

static void write_file(const char *dir, const char *name, const char *text)
{
	char path[4200];
	FILE *f;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "w");
	CHECK(f != NULL);
	if (f) {
		fputs(text, f);
		fclose(f);
	}
}

static void test_sysfs(void)
{
	char root[] = "/tmp/xbd-test-sysfs.XXXXXX", dir[4096], cmd[4200];
	struct xbd_blkback_counters c;

	CHECK(mkdtemp(root) != NULL);
	snprintf(dir, sizeof(dir),
		 "%s/bus/xen-backend/devices/vbd-7-51712/statistics", root);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s'", dir);
	CHECK(system(cmd) == 0);
	write_file(dir, "oo_req", "3\n");
	write_file(dir, "rd_req", "1000\n");
	write_file(dir, "wr_req", "20\n");
	write_file(dir, "f_req", "2\n");
	write_file(dir, "ds_req", "1\n");
	write_file(dir, "rd_sect", "8000\n");
	write_file(dir, "wr_sect", "18446744073709551615\n");

	CHECK_EQ(xbd_blkback_read_counters(root, 7, 51712, &c), 0);
	CHECK_EQ(c.oo_req, 3);
	CHECK_EQ(c.rd_req, 1000);
	CHECK_EQ(c.wr_req, 20);
	CHECK_EQ(c.f_req, 2);
	CHECK_EQ(c.ds_req, 1);
	CHECK_EQ(c.rd_sect, 8000);
	CHECK(c.wr_sect == UINT64_MAX);
	/* no such device */
	CHECK_EQ(xbd_blkback_read_counters(root, 7, 51728, &c), -ENOENT);
	CHECK_EQ(xbd_blkback_read_counters(root, 8, 51712, &c), -ENOENT);
	/* a file that is not a counter */
	write_file(dir, "wr_req", "lots\n");
	CHECK_EQ(xbd_blkback_read_counters(root, 7, 51712, &c), -EINVAL);
	write_file(dir, "wr_req", "12x\n");
	CHECK_EQ(xbd_blkback_read_counters(root, 7, 51712, &c), -EINVAL);
	/* a missing file */
	write_file(dir, "wr_req", "5\n");
	snprintf(cmd, sizeof(cmd), "%s/ds_req", dir);
	CHECK(unlink(cmd) == 0);
	CHECK_EQ(xbd_blkback_read_counters(root, 7, 51712, &c), -ENOENT);

	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", root);
	CHECK(system(cmd) == 0);
}

/* ------------------------------------------------------------------ */
/* A fake platform: xenstore from a table, grants are local pages      */

#define FAKE_DOMID 7
#define FAKE_FIRST_REF 100
#define FAKE_PAGES 8

struct fake_platform {
	struct xbd_platform_base base;
	const char *const (*kv)[2];
	unsigned nkv;
	unsigned char *pages;   /* ref FAKE_FIRST_REF + i is page i */
	unsigned maps, unmaps, writable_maps;
};

static struct fake_platform *fake_of(struct xbd_platform *p)
{
	return (struct fake_platform *)p;
}

static int fake_xs_read(struct xbd_platform *p, xbd_xs_txn t, const char *path,
			char **value, size_t *len)
{
	struct fake_platform *f = fake_of(p);
	unsigned i;

	(void)t;
	for (i = 0; i < f->nkv; i++) {
		if (!strcmp(f->kv[i][0], path)) {
			*value = strdup(f->kv[i][1]);
			if (len)
				*len = strlen(f->kv[i][1]);
			return *value ? 0 : -ENOMEM;
		}
	}
	return -ENOENT;
}

/* Immediate children of path, in the platform's one-block format. */
static int fake_xs_directory(struct xbd_platform *p, xbd_xs_txn t,
			     const char *path, char ***names, unsigned *count)
{
	struct fake_platform *f = fake_of(p);
	const char *kids[64];
	size_t kidlen[64], plen = strlen(path), bytes = 0;
	unsigned i, k, n = 0;
	char **out, *s;

	(void)t;
	for (i = 0; i < f->nkv; i++) {
		const char *key = f->kv[i][0], *rest;
		size_t l;

		if (strncmp(key, path, plen) || key[plen] != '/')
			continue;
		rest = key + plen + 1;
		l = strcspn(rest, "/");
		for (k = 0; k < n; k++)
			if (kidlen[k] == l && !strncmp(kids[k], rest, l))
				break;
		if (k == n && n < 64) {
			kids[n] = rest;
			kidlen[n++] = l;
			bytes += l + 1;
		}
	}
	if (!n)
		return -ENOENT;
	out = malloc(n * sizeof(char *) + bytes);
	if (!out)
		return -ENOMEM;
	s = (char *)(out + n);
	for (k = 0; k < n; k++) {
		memcpy(s, kids[k], kidlen[k]);
		s[kidlen[k]] = '\0';
		out[k] = s;
		s += kidlen[k] + 1;
	}
	*names = out;
	*count = n;
	return 0;
}

static int fake_map_grants(struct xbd_platform *p, uint16_t domid,
			   unsigned count, const uint32_t *refs, bool writable,
			   void **addr)
{
	struct fake_platform *f = fake_of(p);
	unsigned i;

	if (writable) {
		f->writable_maps++;
		return -EPERM;
	}
	if (domid != FAKE_DOMID)
		return -EPERM;
	/* contiguous refs map to contiguous pages */
	for (i = 0; i < count; i++)
		if (refs[i] != refs[0] + i || refs[i] < FAKE_FIRST_REF ||
		    refs[i] >= FAKE_FIRST_REF + FAKE_PAGES)
			return -EINVAL;
	*addr = f->pages + (size_t)(refs[0] - FAKE_FIRST_REF) * XBD_PAGE_SIZE;
	f->maps++;
	return 0;
}

static int fake_unmap_grants(struct xbd_platform *p, void *addr,
			     unsigned count)
{
	(void)addr;
	(void)count;
	fake_of(p)->unmaps++;
	return 0;
}

static const struct xbd_platform_ops fake_ops = {
	.name = "fake",
	.xs_read = fake_xs_read,
	.xs_directory = fake_xs_directory,
	.map_grants = fake_map_grants,
	.unmap_grants = fake_unmap_grants,
};

#define FE "/local/domain/7/device/vbd/"
static const char *const fake_xenstore[][2] = {
	/* xvda: kernel blkback, one x86_64 ring page at ref 100 */
	{ FE "51712/backend", "/local/domain/0/backend/vbd/7/51712" },
	{ FE "51712/state", "4" },
	{ FE "51712/ring-ref", "100" },
	{ FE "51712/event-channel", "9" },
	{ FE "51712/protocol", "x86_64-abi" },
	{ "/local/domain/0/backend/vbd/7/51712/frontend", FE "51712" },
	{ "/local/domain/0/backend/vbd/7/51712/frontend-id", "7" },
	{ "/local/domain/0/backend/vbd/7/51712/dev", "xvda" },
	{ "/local/domain/0/backend/vbd/7/51712/params", "/dev/vg/vm7" },
	{ "/local/domain/0/backend/vbd/7/51712/mode", "w" },
	{ "/local/domain/0/backend/vbd/7/51712/state", "4" },
	{ "/local/domain/0/backend/vbd/7/51712/sectors", "2097152" },
	{ "/local/domain/0/backend/vbd/7/51712/sector-size", "512" },
	/* xvdb: qdisk, two pages (refs 101, 102), no protocol: x86_32 */
	{ FE "51728/backend", "/local/domain/0/backend/qdisk/7/51728" },
	{ FE "51728/state", "4" },
	{ FE "51728/ring-page-order", "1" },
	{ FE "51728/ring-ref0", "101" },
	{ FE "51728/ring-ref1", "102" },
	{ FE "51728/event-channel", "10" },
	{ "/local/domain/0/backend/qdisk/7/51728/frontend", FE "51728" },
	{ "/local/domain/0/backend/qdisk/7/51728/frontend-id", "7" },
	{ "/local/domain/0/backend/qdisk/7/51728/mode", "r" },
	/* xvdc: tapdisk in a driver domain, multi-queue */
	{ FE "51744/backend", "/local/domain/2/backend/vbd3/7/51744" },
	{ FE "51744/state", "3" },
	{ FE "51744/multi-queue-num-queues", "2" },
	{ FE "51744/queue-0/ring-ref", "103" },
	{ FE "51744/queue-0/event-channel", "11" },
	{ FE "51744/queue-1/ring-ref", "104" },
	{ FE "51744/protocol", "x86_64-abi" },
	{ "/local/domain/2/backend/vbd3/7/51744/frontend", FE "51744" },
	{ "/local/domain/2/backend/vbd3/7/51744/frontend-id", "7" },
	/* xvdq: served by xbd; an inconsistent ring at ref 105 */
	{ FE "268439552/backend", "/local/domain/0/backend/xbd/7/268439552" },
	{ FE "268439552/ring-ref", "105" },
	{ FE "268439552/protocol", "x86_64-abi" },
	{ "/local/domain/0/backend/xbd/7/268439552/frontend", FE "268439552" },
	{ "/local/domain/0/backend/xbd/7/268439552/frontend-id", "7" },
	{ "/local/domain/0/backend/xbd/7/268439552/dev", "xvdq" },
	/* xvdd: no backend named (being set up) */
	{ FE "51760/state", "1" },
	/* not a device id: ignored */
	{ FE "junk/state", "4" },
	/* xvde, xvdf, xvdg: the guest's backend nodes name domain 8's
	 * backend, a path of the wrong spelling, and a backend whose own
	 * nodes name another frontend */
	{ FE "51776/backend", "/local/domain/0/backend/vbd/8/51712" },
	{ FE "51776/state", "4" },
	{ FE "51792/backend", "/local/domain/0/backend/vbd/07/51792" },
	{ "/local/domain/0/backend/vbd/07/51792/frontend", FE "51792" },
	{ "/local/domain/0/backend/vbd/07/51792/frontend-id", "7" },
	{ "/local/domain/0/backend/vbd/07/51792/params", "/dev/vg/odd" },
	{ FE "51808/backend", "/local/domain/0/backend/vbd/7/51808" },
	{ "/local/domain/0/backend/vbd/7/51808/frontend",
	  "/local/domain/8/device/vbd/51712" },
	{ "/local/domain/0/backend/vbd/7/51808/frontend-id", "7" },
	{ "/local/domain/0/backend/vbd/7/51808/params", "/dev/vg/vm8" },
	/* another domain's disk: not listed for domain 7 */
	{ "/local/domain/8/device/vbd/51712/backend",
	  "/local/domain/0/backend/vbd/8/51712" },
	{ "/local/domain/0/backend/vbd/8/51712/frontend",
	  "/local/domain/8/device/vbd/51712" },
	{ "/local/domain/0/backend/vbd/8/51712/frontend-id", "8" },
	{ "/local/domain/0/backend/vbd/8/51712/params", "/dev/vg/vm8" },
	{ "/local/domain/0/backend/vbd/8/51712/sectors", "4096" },
};

/* Ring page contents: xvda (x86_64) has requests 7..9 outstanding. */
static void fill_native_ring(unsigned char *page)
{
	struct blkif_sring *s = (struct blkif_sring *)page;
	struct blkif_request *r;
	struct blkif_request_indirect *ind;
	struct blkif_request_discard *dis;

	s->req_prod = 10;
	s->rsp_prod = 7;
	s->req_event = 11;
	s->rsp_event = 8;
	r = &s->ring[7].req;
	r->operation = BLKIF_OP_READ;
	r->nr_segments = 2;
	r->id = 0x1007;
	r->sector_number = 100;
	ind = (struct blkif_request_indirect *)&s->ring[8].req;
	ind->operation = BLKIF_OP_INDIRECT;
	ind->indirect_op = BLKIF_OP_WRITE;
	ind->nr_segments = 200;
	ind->id = 0x1008;
	ind->sector_number = 4096;
	dis = (struct blkif_request_discard *)&s->ring[9].req;
	dis->operation = BLKIF_OP_DISCARD;
	dis->id = 0x1009;
	dis->sector_number = 65536;
	dis->nr_sectors = 2048;
}

/* xvdb (x86_32, 2 pages, 64 entries): indices wrapped past 2^32. */
static void fill_x86_32_ring(unsigned char *page)
{
	struct blkif_x86_32_sring *s = (struct blkif_x86_32_sring *)page;
	struct blkif_x86_32_request *r;

	s->rsp_prod = 0xffffffffu;
	s->req_prod = 1; /* two requests: slots 63 and 0 */
	s->req_event = 2;
	s->rsp_event = 0;
	r = &s->ring[63].req;
	r->operation = BLKIF_OP_WRITE;
	r->nr_segments = 11;
	r->id = 0x3263;
	r->sector_number = 777;
	r = &s->ring[0].req;
	r->operation = BLKIF_OP_FLUSH_DISKCACHE;
	r->id = 0x3200;
}

static struct xbd_vbd *find_vbd(struct xbd_vbd *v, unsigned n, uint32_t devid)
{
	unsigned i;

	for (i = 0; i < n; i++)
		if (v[i].devid == devid)
			return &v[i];
	return NULL;
}

static void test_backend_parse(void)
{
	enum xbd_vbd_backend k;
	uint16_t be;

	CHECK_EQ(xbd_vbd_backend_parse("/local/domain/0/backend/vbd/7/51712",
				       &k, &be), 0);
	CHECK_EQ(k, XBD_VBD_BLKBACK);
	CHECK_EQ(be, 0);
	CHECK_EQ(xbd_vbd_backend_parse("/local/domain/3/backend/qdisk/7/1", &k,
				       &be), 0);
	CHECK_EQ(k, XBD_VBD_QDISK);
	CHECK_EQ(be, 3);
	CHECK_EQ(xbd_vbd_backend_parse("/local/domain/0/backend/vbd3/7/1", &k,
				       &be), 0);
	CHECK_EQ(k, XBD_VBD_TAPDISK);
	CHECK_EQ(xbd_vbd_backend_parse("/local/domain/0/backend/xbd/7/1", &k,
				       &be), 0);
	CHECK_EQ(k, XBD_VBD_XBD);
	CHECK_EQ(xbd_vbd_backend_parse("/local/domain/0/backend/9pfs/7/1", &k,
				       &be), 0);
	CHECK_EQ(k, XBD_VBD_UNKNOWN);
	CHECK_EQ(xbd_vbd_backend_parse("/local/domain/0/backend/vbd/7", &k,
				       &be), -EINVAL);
	CHECK_EQ(xbd_vbd_backend_parse("/local/domain/0/backend/vbd/7/1/x", &k,
				       &be), -EINVAL);
	CHECK_EQ(xbd_vbd_backend_parse("", &k, &be), -EINVAL);
	/* only the spelling a toolstack writes */
	CHECK_EQ(xbd_vbd_backend_parse("/local/domain/0/backend/vbd/+7/1", &k,
				       &be), -EINVAL);
	CHECK_EQ(xbd_vbd_backend_parse("/local/domain/0/backend/vbd/7/-1", &k,
				       &be), -EINVAL);
	CHECK_EQ(xbd_vbd_backend_parse("/local/domain/00/backend/vbd/7/1", &k,
				       &be), -EINVAL);
	CHECK(!strcmp(xbd_vbd_backend_name(XBD_VBD_TAPDISK), "tapdisk"));
	CHECK(!strcmp(xbd_vbd_backend_name(XBD_VBD_UNKNOWN), "unknown"));
}

static void test_vbds_and_rings(void)
{
	static struct xbd_ring_peek peek;
	struct fake_platform f = {
		.base = { .ops = &fake_ops },
		.kv = fake_xenstore,
		.nkv = XBD_ARRAY_SIZE(fake_xenstore),
	};
	struct xbd_platform *p = (struct xbd_platform *)&f;
	struct xbd_vbd *v = NULL, *d;
	unsigned char *snapshot;
	unsigned n = 0;

	f.pages = aligned_alloc(XBD_PAGE_SIZE, FAKE_PAGES * XBD_PAGE_SIZE);
	snapshot = malloc(FAKE_PAGES * XBD_PAGE_SIZE);
	if (!f.pages || !snapshot) {
		CHECK(!"out of memory");
		free(f.pages);
		free(snapshot);
		return;
	}
	memset(f.pages, 0, FAKE_PAGES * XBD_PAGE_SIZE);
	fill_native_ring(f.pages);
	fill_x86_32_ring(f.pages + 1 * XBD_PAGE_SIZE);
	/* ref 105: more outstanding than a ring can hold */
	((struct blkif_sring *)(f.pages + 5 * XBD_PAGE_SIZE))->req_prod = 1000;
	memcpy(snapshot, f.pages, FAKE_PAGES * XBD_PAGE_SIZE);

	CHECK_EQ(xbd_vbd_list(p, FAKE_DOMID, &v, &n), 0);
	CHECK_EQ(n, 8);
	CHECK(n < 2 || v[0].devid < v[1].devid);

	d = find_vbd(v, n, 51712);
	CHECK(d != NULL);
	if (d) {
		CHECK(!strcmp(d->vdev, "xvda"));
		CHECK_EQ(d->backend, XBD_VBD_BLKBACK);
		CHECK_EQ(d->backend_domid, 0);
		CHECK(!strcmp(d->params, "/dev/vg/vm7"));
		CHECK(!d->read_only);
		CHECK_EQ(d->sectors, 2097152);
		CHECK_EQ(d->sector_size, 512);
		CHECK_EQ(d->frontend_state, 4);
		CHECK_EQ(d->backend_state, 4);
		CHECK_EQ(d->nr_ring_refs, 1);
		CHECK_EQ(d->ring_refs[0], 100);
		CHECK_EQ(d->event_channel, 9);
		CHECK(!strcmp(d->protocol, "x86_64-abi"));
		CHECK(!strcmp(d->frontend_path, FE "51712"));

		CHECK_EQ(xbd_vbd_ring_peek(p, d, &peek), 0);
		CHECK_EQ(peek.nr_ents, 32);
		CHECK_EQ(peek.req_prod, 10);
		CHECK_EQ(peek.rsp_prod, 7);
		CHECK_EQ(peek.req_event, 11);
		CHECK_EQ(peek.rsp_event, 8);
		CHECK_EQ(peek.used, 3);
		CHECK(!peek.inconsistent);
		CHECK_EQ(peek.nr_requests, 3);
		CHECK_EQ(peek.requests[0].id, 0x1007);
		CHECK_EQ(peek.requests[0].op, BLKIF_OP_READ);
		CHECK_EQ(peek.requests[0].nr_segments, 2);
		CHECK_EQ(peek.requests[0].sector, 100);
		CHECK_EQ(peek.requests[1].id, 0x1008);
		CHECK_EQ(peek.requests[1].op, BLKIF_OP_WRITE);
		CHECK(peek.requests[1].indirect);
		CHECK_EQ(peek.requests[1].nr_segments, 200);
		CHECK_EQ(peek.requests[1].sector, 4096);
		CHECK_EQ(peek.requests[2].op, BLKIF_OP_DISCARD);
		CHECK_EQ(peek.requests[2].sector, 65536);
		CHECK_EQ(peek.requests[2].nr_segments, 0);
	}

	d = find_vbd(v, n, 51728);
	CHECK(d != NULL);
	if (d) {
		CHECK(!strcmp(d->vdev, "xvdb")); /* from the devid */
		CHECK_EQ(d->backend, XBD_VBD_QDISK);
		CHECK(d->read_only);
		CHECK_EQ(d->nr_ring_refs, 2);
		CHECK_EQ(d->ring_refs[1], 102);
		CHECK(d->protocol[0] == '\0');
		CHECK_EQ(xbd_vbd_ring_peek(p, d, &peek), 0);
		CHECK_EQ(peek.nr_ents, 64);
		CHECK_EQ(peek.used, 2);
		CHECK_EQ(peek.nr_requests, 2);
		CHECK_EQ(peek.requests[0].id, 0x3263);
		CHECK_EQ(peek.requests[0].op, BLKIF_OP_WRITE);
		CHECK_EQ(peek.requests[0].nr_segments, 11);
		CHECK_EQ(peek.requests[0].sector, 777);
		CHECK_EQ(peek.requests[1].id, 0x3200);
		CHECK_EQ(peek.requests[1].op, BLKIF_OP_FLUSH_DISKCACHE);
	}

	d = find_vbd(v, n, 51744);
	CHECK(d != NULL);
	if (d) {
		CHECK_EQ(d->backend, XBD_VBD_TAPDISK);
		CHECK_EQ(d->backend_domid, 2);
		CHECK_EQ(d->nr_queues, 2);
		CHECK_EQ(d->nr_ring_refs, 1);
		CHECK_EQ(d->ring_refs[0], 103);
		CHECK_EQ(d->event_channel, 11);
		CHECK_EQ(d->sectors, 0);
	}

	d = find_vbd(v, n, 268439552);
	CHECK(d != NULL);
	if (d) {
		CHECK(!strcmp(d->vdev, "xvdq"));
		CHECK_EQ(d->backend, XBD_VBD_XBD);
		CHECK_EQ(xbd_vbd_ring_peek(p, d, &peek), 0);
		CHECK(peek.inconsistent);
		CHECK_EQ(peek.nr_requests, 0);
	}

	d = find_vbd(v, n, 51760);
	CHECK(d != NULL);
	if (d) {
		CHECK(!strcmp(d->vdev, "xvdd"));
		CHECK_EQ(d->backend, XBD_VBD_UNKNOWN);
		CHECK_EQ(d->backend_domid, XBD_DOMID_INVALID);
		CHECK_EQ(d->nr_ring_refs, 0);
		CHECK_EQ(xbd_vbd_ring_peek(p, d, &peek), -ENODATA);
	}

	/* nothing read from a backend that is not the device's own */
	static const uint32_t hostile[] = { 51776, 51792, 51808 };
	for (size_t i = 0; i < XBD_ARRAY_SIZE(hostile); i++) {
		d = find_vbd(v, n, hostile[i]);
		CHECK(d != NULL);
		if (!d)
			continue;
		CHECK(d->backend_inconsistent);
		CHECK_EQ(d->backend, XBD_VBD_UNKNOWN);
		CHECK_EQ(d->backend_domid, XBD_DOMID_INVALID);
		CHECK(d->params[0] == '\0');
		CHECK_EQ(d->sectors, 0);
	}
	d = find_vbd(v, n, 51712);
	CHECK(d && !d->backend_inconsistent);

	/* a look maps read-only, unmaps what it mapped, writes nothing */
	CHECK_EQ(f.writable_maps, 0);
	CHECK(f.maps == 3 && f.unmaps == 3);
	CHECK(memcmp(snapshot, f.pages, FAKE_PAGES * XBD_PAGE_SIZE) == 0);
	free(v);

	/* a domain without disks */
	CHECK_EQ(xbd_vbd_list(p, 9, &v, &n), 0);
	CHECK_EQ(n, 0);
	free(v);
	free(f.pages);
	free(snapshot);
}

static int sim_guest(const char *out)
{
	struct xbd_platform_config cfg = { .kind = XBD_PLATFORM_SIM };
	struct xbd_platform *p;
	char tmp[4200];
	uint32_t ref;
	void *page;
	FILE *f;
	int err;

	err = xbd_platform_open(&cfg, &p);
	if (err) {
		fprintf(stderr, "sim guest: platform: %s\n", xbd_strerror(err));
		return 1;
	}
	/* the frontend grants its ring writable, as blkfront does */
	err = xbd_share_pages(p, 0, 1, true, &ref, &page);
	if (err) {
		fprintf(stderr, "sim guest: share: %s\n", xbd_strerror(err));
		xbd_platform_close(p);
		return 1;
	}
	fill_native_ring(page);
	snprintf(tmp, sizeof(tmp), "%s.tmp", out);
	f = fopen(tmp, "w");
	if (!f || fprintf(f, "%u\n", ref) < 0 || fclose(f) || rename(tmp, out)) {
		fprintf(stderr, "sim guest: %s: %s\n", out, strerror(errno));
		return 1;
	}
	for (;;)
		pause(); /* until the domain is destroyed */
}

int main(int argc, char **argv)
{
	/* The --sim-guest side opens the sim platform without tests/lib. */
	xbd_platform_set_sim(xbd_platform_sim_open);
	if (argc == 3 && !strcmp(argv[1], "--sim-guest"))
		return sim_guest(argv[2]);
	test_sysfs();
	test_backend_parse();
	test_vbds_and_rings();
	return check_report("test_stats_blkback");
}

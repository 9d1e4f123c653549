/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Disks that xbd does not serve (include/xbd/blkback_sysfs.h): xenstore
 * says which disks a domain has and which backend serves each, Linux
 * blkback publishes its counters in sysfs, and the ring itself can be
 * looked at through a read-only mapping of the frontend's grants.
 * Everything here only reads.
 */
#include "xbd/blkback_sysfs.h"
#include "xbd/common.h"
#include "xbd/ring.h"
#include "xbd/xenbus.h"
#include "xbd/util.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* ------------------------------------------------------------------ */
/* sysfs                                                              */

/* One decimal counter file (blkback prints "%llu\n"). */
static int read_counter_file(int dirfd, const char *name, uint64_t *v)
{
	unsigned long long u;
	char buf[32];
	ssize_t n;
	int fd, err = 0;

	fd = openat(dirfd, name, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	n = read(fd, buf, sizeof(buf) - 1);
	if (n < 0)
		err = -errno;
	close(fd);
	if (err)
		return err;
	if (n > 0 && buf[n - 1] == '\n')
		n--; /* sysfs ends its numbers with one */
	buf[n] = '\0';
	if (xbd_parse_uint(buf, UINT64_MAX, &u))
		return -EINVAL;
	*v = u;
	return 0;
}

int xbd_blkback_read_counters(const char *sysfs_root, uint16_t domid,
			      uint32_t devid, struct xbd_blkback_counters *out)
{
	static const struct {
		const char *name;
		size_t offset;
	} files[] = {
		{ "oo_req", offsetof(struct xbd_blkback_counters, oo_req) },
		{ "rd_req", offsetof(struct xbd_blkback_counters, rd_req) },
		{ "wr_req", offsetof(struct xbd_blkback_counters, wr_req) },
		{ "f_req", offsetof(struct xbd_blkback_counters, f_req) },
		{ "ds_req", offsetof(struct xbd_blkback_counters, ds_req) },
		{ "rd_sect", offsetof(struct xbd_blkback_counters, rd_sect) },
		{ "wr_sect", offsetof(struct xbd_blkback_counters, wr_sect) },
	};
	struct xbd_blkback_counters c;
	char path[4096];
	size_t i;
	int dirfd, err = 0;

	snprintf(path, sizeof(path),
		 "%s/bus/xen-backend/devices/vbd-%u-%u/statistics",
		 sysfs_root ? sysfs_root : XBD_SYSFS_DEFAULT_ROOT, domid, devid);
	dirfd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	if (dirfd < 0)
		return -errno;
	memset(&c, 0, sizeof(c));
	for (i = 0; i < XBD_ARRAY_SIZE(files) && !err; i++)
		err = read_counter_file(dirfd, files[i].name,
					(uint64_t *)((char *)&c + files[i].offset));
	close(dirfd);
	if (err)
		return err;
	*out = c;
	return 0;
}

/* ------------------------------------------------------------------ */
/* xenstore                                                           */

const char *xbd_vbd_backend_name(enum xbd_vbd_backend kind)
{
	switch (kind) {
	case XBD_VBD_BLKBACK: return "blkback";
	case XBD_VBD_QDISK: return "qdisk";
	case XBD_VBD_TAPDISK: return "tapdisk";
	case XBD_VBD_XBD: return "xbd";
	default: return "unknown";
	}
}

int xbd_vbd_backend_parse(const char *backend_path, enum xbd_vbd_backend *kind,
			  uint16_t *be_domid)
{
	static const struct {
		const char *type;
		enum xbd_vbd_backend kind;
	} types[] = {
		{ "vbd", XBD_VBD_BLKBACK },
		{ "qdisk", XBD_VBD_QDISK },
		{ "vbd3", XBD_VBD_TAPDISK },
		{ "xbd", XBD_VBD_XBD },
	};
	char type[32];
	uint16_t be, fe;
	uint32_t devid;
	size_t i;

	if (xbd_backend_path_parse(backend_path, &be, type, sizeof(type), &fe,
				   &devid))
		return -EINVAL;
	*be_domid = be;
	*kind = XBD_VBD_UNKNOWN;
	for (i = 0; i < XBD_ARRAY_SIZE(types); i++)
		if (!strcmp(type, types[i].type))
			*kind = types[i].kind;
	return 0;
}

/* DIR/NAME into buf; "" when absent. */
static void xs_read_into(struct xbd_platform *p, const char *dir,
			 const char *name, char *buf, size_t len)
{
	char path[256], *v = NULL;

	buf[0] = '\0';
	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (xbd_xs_read_str(p, path, &v) == 0) {
		snprintf(buf, len, "%s", v);
		free(v);
	}
}

/* DIR/NAME as an unsigned number; false when absent or malformed. */
static bool xs_read_u64(struct xbd_platform *p, const char *dir,
			const char *name, uint64_t *v)
{
	char path[256];
	unsigned long long n;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	if (xbd_xs_read_uint(p, path, &n))
		return false;
	*v = n;
	return true;
}

/* ring-ref, or ring-page-order with ring-ref0..N-1, in dir (the frontend
 * directory, or its queue-0 for a multi-queue frontend).  ring-page-order
 * itself sits in the frontend directory even for multi-queue (blkif.h,
 * Linux blkfront); beside the refs is accepted too. */
static void read_ring_refs(struct xbd_platform *p, const char *dir,
			   struct xbd_vbd *v)
{
	uint64_t order = 0, ref, evtchn;
	unsigned i, n;

	v->nr_ring_refs = 0;
	if (xs_read_u64(p, v->frontend_path, "ring-page-order", &order) ||
	    xs_read_u64(p, dir, "ring-page-order", &order)) {
		if (order > XBD_RING_MAX_ORDER)
			return;
		n = 1u << order;
		for (i = 0; i < n; i++) {
			char name[16];

			snprintf(name, sizeof(name), "ring-ref%u", i);
			if (!xs_read_u64(p, dir, name, &ref) || ref > UINT32_MAX)
				return;
			v->ring_refs[i] = (uint32_t)ref;
		}
		v->nr_ring_refs = n;
	} else if (xs_read_u64(p, dir, "ring-ref", &ref) && ref <= UINT32_MAX) {
		v->ring_refs[0] = (uint32_t)ref;
		v->nr_ring_refs = 1;
	}
	if (xs_read_u64(p, dir, "event-channel", &evtchn) &&
	    evtchn <= UINT32_MAX)
		v->event_channel = (uint32_t)evtchn;
}

static void read_vbd(struct xbd_platform *p, uint16_t domid, uint32_t devid,
		     struct xbd_vbd *v)
{
	char mode[8], qdir[96];
	uint64_t n;

	memset(v, 0, sizeof(*v));
	v->domid = domid;
	v->devid = devid;
	v->backend_domid = XBD_DOMID_INVALID;
	v->nr_queues = 1;
	xbd_frontend_path(v->frontend_path, sizeof(v->frontend_path), domid,
			  devid);
	if (xs_read_u64(p, v->frontend_path, "state", &n) && n <= 8)
		v->frontend_state = (unsigned)n;
	xs_read_into(p, v->frontend_path, "protocol", v->protocol,
		     sizeof(v->protocol));
	if (xs_read_u64(p, v->frontend_path, "multi-queue-num-queues", &n) &&
	    n >= 1) {
		v->nr_queues = n > 256 ? 256 : (unsigned)n;
		snprintf(qdir, sizeof(qdir), "%s/queue-0", v->frontend_path);
		read_ring_refs(p, qdir, v);
	} else {
		read_ring_refs(p, v->frontend_path, v);
	}

	xs_read_into(p, v->frontend_path, "backend", v->backend_path,
		     sizeof(v->backend_path));
	/* nothing is read from a backend that is not this device's: its
	 * numbers would be another VM's under this one's name */
	v->backend_inconsistent = v->backend_path[0] &&
		xbd_vbd_backend_check(p, domid, devid, v->backend_path);
	if (v->backend_path[0] && !v->backend_inconsistent &&
	    xbd_vbd_backend_parse(v->backend_path, &v->backend,
				  &v->backend_domid) == 0) {
		xs_read_into(p, v->backend_path, "dev", v->vdev,
			     sizeof(v->vdev));
		xs_read_into(p, v->backend_path, "params", v->params,
			     sizeof(v->params));
		xs_read_into(p, v->backend_path, "mode", mode, sizeof(mode));
		v->read_only = mode[0] == 'r' && mode[1] != 'w';
		if (xs_read_u64(p, v->backend_path, "state", &n) && n <= 8)
			v->backend_state = (unsigned)n;
		if (xs_read_u64(p, v->backend_path, "sectors", &n))
			v->sectors = n;
		if (xs_read_u64(p, v->backend_path, "sector-size", &n) &&
		    n <= 65536)
			v->sector_size = (unsigned)n;
	}
	/* "dev" may be missing (or be hda, sdb...): fall back on the id */
	if (!v->vdev[0] &&
	    xbd_devid_to_vdev(devid, v->vdev, sizeof(v->vdev)) < 0)
		snprintf(v->vdev, sizeof(v->vdev), "%u", devid);
}

int xbd_vbd_select_queue(struct xbd_platform *p, struct xbd_vbd *v,
			 unsigned q)
{
	char qdir[96];

	if (q >= v->nr_queues)
		return -EINVAL;
	if (v->nr_queues == 1 && q == 0)
		return 0; /* read_vbd read it */
	snprintf(qdir, sizeof(qdir), "%s/queue-%u", v->frontend_path, q);
	read_ring_refs(p, qdir, v);
	return v->nr_ring_refs ? 0 : -ENODATA;
}

static int cmp_devid(const void *a, const void *b)
{
	const struct xbd_vbd *x = a, *y = b;

	return x->devid < y->devid ? -1 : x->devid > y->devid;
}

int xbd_vbd_list(struct xbd_platform *p, uint16_t domid, struct xbd_vbd **out,
		 unsigned *count)
{
	struct xbd_vbd *v;
	char dir[64];
	uint32_t *ids = NULL;
	unsigned n = 0, i;
	int err;

	*out = NULL;
	*count = 0;
	snprintf(dir, sizeof(dir), "/local/domain/%u/device/vbd", domid);
	err = xbd_xs_directory_ids(p, dir, UINT32_MAX, &ids, &n);
	if (err == -ENOENT)
		return 0; /* a domain without disks */
	if (err)
		return err;
	v = calloc(n ? n : 1, sizeof(*v));
	for (i = 0; v && i < n; i++)
		read_vbd(p, domid, ids[i], &v[i]);
	free(ids);
	if (!v)
		return -ENOMEM;
	qsort(v, n, sizeof(*v), cmp_devid);
	*out = v;
	*count = n;
	return 0;
}

/* ------------------------------------------------------------------ */
/* The ring, read-only                                                */

/* One request slot, copied once and decoded by the ring code. */
static void peek_request(enum xbd_blkif_abi abi, const void *sring,
			 unsigned nr_ents, uint32_t idx,
			 struct xbd_ring_peek_request *q)
{
	struct xbd_blkif_request r;

	xbd_blkif_peek_request(abi, sring, nr_ents, idx, &r);
	memset(q, 0, sizeof(*q));
	q->id = r.id;
	q->op = r.op;
	q->indirect = r.indirect;
	q->nr_segments = r.ring_op == BLKIF_OP_DISCARD ? 0 : r.nr_segments;
	q->sector = r.sector;
}

int xbd_vbd_ring_peek(struct xbd_platform *p, const struct xbd_vbd *v,
		      struct xbd_ring_peek *out)
{
	enum xbd_blkif_abi abi;
	const struct blkif_sring *sring;
	void *addr = NULL;
	unsigned i;
	int err;

	memset(out, 0, sizeof(*out));
	if (!v->nr_ring_refs || v->nr_ring_refs > XBD_VBD_MAX_RING_PAGES)
		return -ENODATA;
	if (xbd_blkif_abi_from_protocol(v->protocol[0] ? v->protocol : NULL,
					&abi))
		return -EPROTONOSUPPORT;
	/* writable = false: a look never changes the guest's ring */
	err = xbd_map_grants(p, v->domid, v->nr_ring_refs, v->ring_refs,
			     false, &addr);
	if (err)
		return err;
	sring = addr;
	out->nr_ents = xbd_blkif_ring_entries(abi, v->nr_ring_refs);
	/* Each index is read once; the peers keep moving them. */
	out->req_prod = __atomic_load_n(&sring->req_prod, __ATOMIC_RELAXED);
	out->req_event = __atomic_load_n(&sring->req_event, __ATOMIC_RELAXED);
	out->rsp_prod = __atomic_load_n(&sring->rsp_prod, __ATOMIC_RELAXED);
	out->rsp_event = __atomic_load_n(&sring->rsp_event, __ATOMIC_RELAXED);
	out->used = out->req_prod - out->rsp_prod;
	out->inconsistent = out->used > out->nr_ents;
	if (!out->inconsistent) {
		/* see the requests the frontend wrote before it moved req_prod */
		atomic_thread_fence(memory_order_acquire);
		for (i = 0; i < out->used && i < XBD_ARRAY_SIZE(out->requests);
		     i++)
			peek_request(abi, sring, out->nr_ents, out->rsp_prod + i,
				     &out->requests[i]);
		out->nr_requests = i;
	}
	xbd_unmap_grants(p, addr, v->nr_ring_refs);
	return 0;
}

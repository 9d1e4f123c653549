/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * A guest's LVM2 logical volumes as read-only files of the export,
 * beside its disks and partitions.  Nothing is activated and dom0's LVM
 * never sees them: the labels' fixed magic is checked here, the rest
 * (the guest's text metadata) is read by lvm_meta.c in a confined child
 * (src/sandbox.c), whose answer, a segment map, is checked again here
 * against the sizes of the physical volumes.  Reads then go from the
 * map straight to the disk: a volume of one linear segment is an
 * ordinary file at an offset of its physical volume (the export's fast
 * path); others are read here, a segment (or stripe chunk) at a time.
 *
 * Names: the volume `LV` of group `VG` is the file `VG-LV`, with each
 * '-' inside VG and LV doubled: the name device-mapper gives it in
 * /dev/mapper.  It always holds a single '-' between two other
 * characters, which no disk name (xvda, hda, sda, d0p1) nor partition
 * name ever does.  Only physical volumes of one disk (the disk or its
 * partitions) are combined.
 */
#include "fuse/private.h"
#include "fuse/lvm.h"
#include "xbd/common.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fx_lvm_stripe {
	uint64_t abs;             /* byte offset on the disk */
	uint64_t end;             /* end of its physical volume on the disk */
};

struct fx_lvm_seg {
	uint64_t lv_off, len, stripe_size;
	uint32_t nstripes;
	struct fx_lvm_stripe stripe[LVM_MAX_STRIPES];
};

struct fx_lvmap {
	bool linear;              /* one segment, one stripe: node->start says it */
	uint32_t nseg;
	struct fx_lvm_seg seg[];
};

void lvm_map_free(struct fx_lvmap *m)
{
	free(m);
}

bool lvm_map_linear(const struct fx_lvmap *m)
{
	return m->linear;
}

/* Reads len bytes at abs of the disk, whatever their alignment. */
int fx_disk_read(struct fx_disk *d, void *buf, size_t len, uint64_t abs)
{
	uint64_t a0 = abs / d->align * d->align;
	uint64_t a1 = (abs + len + d->align - 1) / d->align * d->align;
	char *win;
	int err;

	if (a0 == abs && a1 == abs + len)
		return xbd_image_pread(d->img, buf, len, abs);
	win = malloc(a1 - a0);
	if (!win)
		return -ENOMEM;
	err = xbd_image_pread(d->img, win, a1 - a0, a0);
	if (!err)
		memcpy(buf, win + (abs - a0), len);
	free(win);
	return err;
}

/* ---- reads of a mapped volume ---- */

/* Where LV byte `off` lies on the disk, and how many bytes from there
 * are contiguous there (at most want). */
static int map_one(const struct fx_lvmap *m, uint64_t off, uint64_t want,
		   uint64_t *abs, uint64_t *len)
{
	for (uint32_t i = 0; i < m->nseg; i++) {
		const struct fx_lvm_seg *g = &m->seg[i];
		const struct fx_lvm_stripe *s;
		uint64_t in, pos, run;

		if (off < g->lv_off || off - g->lv_off >= g->len)
			continue;
		in = off - g->lv_off;
		if (g->nstripes == 1) {
			s = &g->stripe[0];
			pos = s->abs + in;
			run = g->len - in;
		} else {
			uint64_t chunk = in / g->stripe_size;

			s = &g->stripe[chunk % g->nstripes];
			pos = s->abs + chunk / g->nstripes * g->stripe_size +
			      in % g->stripe_size;
			run = g->stripe_size - in % g->stripe_size;
		}
		if (run > want)
			run = want;
		/* a stripe size that does not divide its area could point
		 * past the physical volume: the map is checked per read */
		if (pos < s->abs || pos >= s->end || run > s->end - pos)
			return -EIO;
		*abs = pos;
		*len = run;
		return 0;
	}
	return -EIO;
}

int node_pread(struct fx_node *n, void *buf, size_t len, uint64_t off)
{
	size_t done = 0;
	int err = 0;

	if (off > n->size || len > n->size - off)
		return -EINVAL;
	if (!n->map || lvm_map_linear(n->map))
		return fx_disk_read(n->disk, buf, len, n->start + off);
	while (!err && done < len) {
		uint64_t abs, run;

		err = map_one(n->map, off + done, len - done, &abs, &run);
		if (!err)
			err = fx_disk_read(n->disk, (char *)buf + done, run, abs);
		done += run;
	}
	return err;
}

void lvm_read(struct xbd_fuse *fx, fuse_req_t req, struct fx_node *n,
	      size_t size, off_t off)
{
	uint64_t len, done = 0;
	char *buf;
	int err = 0;

	(void)fx;
	if (off < 0) {
		fuse_reply_err(req, EINVAL);
		return;
	}
	if ((uint64_t)off >= n->size || !size) {
		fuse_reply_buf(req, NULL, 0);
		return;
	}
	len = n->size - (uint64_t)off < size ? n->size - (uint64_t)off : size;
	buf = malloc(len);
	if (!buf) {
		fuse_reply_err(req, ENOMEM);
		return;
	}
	if (!disk_enter(n->disk)) {
		free(buf);
		fuse_reply_err(req, EIO);
		return;
	}
	while (!err && done < len) {
		uint64_t abs, run;

		err = map_one(n->map, (uint64_t)off + done, len - done, &abs, &run);
		if (!err)
			err = fx_disk_read(n->disk, buf + done, run, abs);
		done += run;
	}
	disk_leave(n->disk);
	if (err)
		fuse_reply_err(req, -err);
	else
		fuse_reply_buf(req, buf, len);
	free(buf);
}

/* ---- finding the volumes ---- */

struct lvm_src {
	struct fx_disk *d;
	uint64_t start[LVM_MAX_SRC], size[LVM_MAX_SRC];
	uint32_t n;
};

/* The child's reads, of the physical volumes only. */
static int src_read(void *ctx, uint32_t src, void *buf, size_t len, uint64_t off)
{
	struct lvm_src *s = ctx;
	int err;

	if (src >= s->n || off > s->size[src] || len > s->size[src] - off)
		return -EINVAL;
	if (!disk_enter(s->d))
		return -EIO;
	err = fx_disk_read(s->d, buf, len, s->start[src] + off);
	disk_leave(s->d);
	return err;
}

static int child_read(void *ctx, uint32_t src, void *buf, size_t len, uint64_t off)
{
	return xbd_sb_child_read(*(int *)ctx, src, buf, len, off);
}

static int lvm_child(int fd, void *arg)
{
	struct lvm_src *s = arg;
	void *reply;
	size_t len;

	if (lvm_parse(child_read, &fd, s->n, s->size, &reply, &len))
		return 1;
	return xbd_sb_send(fd, XBD_SB_REPLY, reply, len) ? 1 : 0;
}

/* "VG-LV", with each '-' of the two names doubled. */
static int lv_file_name(char *out, size_t cap, const char *vg, const char *lv)
{
	size_t o = 0;
	const char *parts[2] = { vg, lv };

	for (int p = 0; p < 2; p++) {
		if (p && o < cap)
			out[o++] = '-';
		for (const char *c = parts[p]; *c; c++) {
			if (o + 2 >= cap)
				return -ENAMETOOLONG;
			out[o++] = *c;
			if (*c == '-')
				out[o++] = '-';
		}
	}
	if (o >= cap || o > XBD_FUSE_NAME_MAX)
		return -ENAMETOOLONG;
	out[o] = 0;
	return 0;
}

static struct fx_node *lv_node(struct xbd_fuse *fx, const struct lvm_src *s,
			       const struct lvm_lv *lv, const struct lvm_seg *seg,
			       uint32_t nseg)
{
	struct fx_lvmap *m = calloc(1, sizeof(*m) + nseg * sizeof(m->seg[0]));
	char name[XBD_FUSE_NAME_MAX + 1];
	struct fx_node *n;

	if (!m)
		return NULL;
	if (lv_file_name(name, sizeof(name), lv->vg, lv->name)) {
		xbd_info("LVM volume %s/%s: name too long for a file", lv->vg, lv->name);
		free(m);
		return NULL;
	}
	m->nseg = nseg;
	for (uint32_t i = 0; i < nseg; i++) {
		m->seg[i].lv_off = seg[i].lv_off;
		m->seg[i].len = seg[i].len;
		m->seg[i].stripe_size = seg[i].stripe_size;
		m->seg[i].nstripes = seg[i].nstripes;
		for (uint32_t k = 0; k < seg[i].nstripes; k++) {
			uint32_t src = seg[i].stripe[k].src;

			m->seg[i].stripe[k].abs = s->start[src] + seg[i].stripe[k].off;
			m->seg[i].stripe[k].end = s->start[src] + s->size[src];
		}
	}
	m->linear = nseg == 1 && seg[0].nstripes == 1;
	n = node_new(fx, s->d, name, m->linear ? m->seg[0].stripe[0].abs : 0,
		     lv->size, true);
	if (!n) {
		free(m);
		return NULL;
	}
	n->map = m;
	return n;
}

/* Puts the volumes of a checked reply into the table, skipping names
 * taken (by a volume of the same name on another disk, say). */
static void show_volumes(struct xbd_fuse *fx, const struct lvm_src *s,
			 const void *reply)
{
	struct lvm_reply_hdr h;
	const struct lvm_lv *lv;
	const struct lvm_seg *seg;
	struct fx_node *list = NULL, **tail = &list, *skipped = NULL;
	uint32_t first = 0;

	memcpy(&h, reply, sizeof(h));
	lv = (const void *)((const char *)reply + sizeof(h));
	seg = (const void *)(lv + h.nlv);
	for (uint32_t i = 0; i < h.nlv; i++) {
		uint32_t end = first;
		struct fx_node *n;

		while (end < h.nseg && seg[end].lv == i)
			end++;
		n = lv_node(fx, s, &lv[i], seg + first, end - first);
		first = end;
		if (!n)
			continue;
		*tail = n;
		tail = &n->next;
	}
	pthread_rwlock_wrlock(&fx->lock);
	if (disk_gone(s->d)) {
		skipped = list;
		list = NULL;
	}
	for (struct fx_node **p = &list; *p; ) {
		struct fx_node *n = *p;

		if (find_name(fx, n->name)) {
			*p = n->next;
			n->next = skipped;
			skipped = n;
		} else {
			p = &n->next;
		}
	}
	if (list)
		append_nodes(fx, list);
	pthread_rwlock_unlock(&fx->lock);
	for (struct fx_node *n = list; n; n = n->next) {
		xbd_info("LVM volume %s (%llu bytes)", n->name,
			 (unsigned long long)n->size);
		fuse_lowlevel_notify_inval_entry(fx->se, FUSE_ROOT_ID, n->name,
						 strlen(n->name));
	}
	while (skipped) {
		struct fx_node *n = skipped;

		skipped = n->next;
		if (!disk_gone(s->d))
			xbd_info("LVM volume %s: the name is taken", n->name);
		node_free(n);
	}
}

int probe_lvm(struct xbd_fuse *fx, struct fx_node *dn)
{
	struct lvm_src *s = calloc(1, sizeof(*s));
	struct xbd_sandbox *sb;
	unsigned char label[2048];
	char what[XBD_FUSE_NAME_MAX + 16];
	void *reply;
	size_t len;
	int err;

	if (!s)
		return -ENOMEM;
	s->d = dn->disk;
	/* the disk and its partitions: which hold a label */
	pthread_rwlock_rdlock(&fx->lock);
	for (struct fx_node *n = fx->nodes; n && s->n < LVM_MAX_SRC; n = n->next) {
		if (n->disk != dn->disk || n->map || n->size < sizeof(label))
			continue;
		s->start[s->n] = n->start;
		s->size[s->n++] = n->size;
	}
	pthread_rwlock_unlock(&fx->lock);
	for (uint32_t i = 0; i < s->n; ) {
		if (src_read(s, i, label, sizeof(label), 0) == 0 &&
		    lvm_has_label(label, sizeof(label))) {
			i++;
			continue;
		}
		s->start[i] = s->start[s->n - 1];
		s->size[i] = s->size[--s->n];
	}
	if (!s->n) {
		free(s);
		return 0;
	}
	snprintf(what, sizeof(what), "%s: LVM", dn->name);
	err = xbd_sandbox_start(what, lvm_child, s, src_read, s, &sb);
	if (err) {
		xbd_err("%s: cannot start the parser: %s", what, xbd_strerror(err));
		free(s);
		return err;
	}
	err = xbd_sandbox_call(sb, 0, NULL, 0, &reply, &len);
	xbd_sandbox_stop(sb);
	if (!err && lvm_reply_check(reply, len, s->n, s->size)) {
		xbd_err("%s: the parser's answer does not hold together; no volumes shown",
			what);
		err = -EIO;
	}
	if (!err)
		show_volumes(fx, s, reply);
	free(reply);
	free(s);
	return err;
}

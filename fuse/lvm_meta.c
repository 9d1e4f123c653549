/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * LVM2's on-disk format, read in the confined child: the label in one
 * of the first four sectors, the physical volume header (its uuid, its
 * data area = pe_start, its metadata areas), the metadata area header,
 * and the newest copy of the volume group's text metadata (lvm2's
 * config syntax: sections, `key = value`, arrays).  Everything here is
 * the guest's: every loop is bounded, every offset checked.
 *
 * Why not libvslvm: Debian's libvslvm (20181227) fails on a logical
 * volume of more than one segment ("physical volume value already
 * set", what any lvextend makes), gives no stripe size (a striped
 * volume cannot be mapped) and no pe_start; the reply this file builds
 * is only the segment map, which the parent checks again anyway.
 * The format: lvm2's lib/format_text/layout.h and doc/lvm2-raid.txt.
 */
#include "fuse/lvm.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define SECTOR 512u
#define LABEL_SCAN_SECTORS 4u
#define MDA_HEADER_SIZE 512u
#define MAX_NODES 65536
#define MAX_DEPTH 12
#define MAX_AREAS 8

static const char mda_magic[16] = " LVM2 x[5A%r0N*>";

static uint64_t le64(const unsigned char *p)
{
	uint64_t v = 0;

	for (int i = 7; i >= 0; i--)
		v = v << 8 | p[i];
	return v;
}

static uint32_t le32(const unsigned char *p)
{
	return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 |
	       (uint32_t)p[3] << 24;
}

bool lvm_has_label(const void *first_2k, size_t len)
{
	const unsigned char *p = first_2k;

	for (unsigned s = 0; s < LABEL_SCAN_SECTORS && (s + 1) * SECTOR <= len; s++)
		if (!memcmp(p + s * SECTOR, "LABELONE", 8) &&
		    !memcmp(p + s * SECTOR + 24, "LVM2 001", 8))
			return true;
	return false;
}

/* ---- lvm2's config syntax, as a tree ---- */

enum { C_SECTION, C_NUM, C_STR, C_ARRAY };

struct cnode {
	const char *key;          /* NUL-terminated inside the text copy */
	int kind;
	long long num;
	const char *str;
	struct cnode *child, *next;
};

struct cparse {
	char *p, *end;
	struct cnode *pool;
	unsigned used;
	int err;
};

static struct cnode *cnew(struct cparse *c)
{
	if (c->used >= MAX_NODES) {
		c->err = -E2BIG;
		return NULL;
	}
	return memset(&c->pool[c->used++], 0, sizeof(struct cnode));
}

static void skip_space(struct cparse *c)
{
	while (c->p < c->end) {
		if (*c->p == '#') {
			while (c->p < c->end && *c->p != '\n')
				c->p++;
		} else if (isspace((unsigned char)*c->p) || !*c->p) {
			c->p++;
		} else {
			break;
		}
	}
}

static bool ident_char(char ch)
{
	return isalnum((unsigned char)ch) || strchr("_+.-", ch);
}

/* An identifier, NUL-terminated in place (the byte after it is a blank,
 * '=' or '{', which the caller has seen before we overwrite it). */
static char *ident(struct cparse *c, char *after)
{
	char *s = c->p;

	while (c->p < c->end && ident_char(*c->p))
		c->p++;
	if (c->p == s || c->p >= c->end) {
		c->err = -EINVAL;
		return NULL;
	}
	skip_space(c);
	if (c->p >= c->end) {
		c->err = -EINVAL;
		return NULL;
	}
	*after = *c->p;
	s[strspn(s, "_+.-abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789")] = 0;
	return s;
}

static struct cnode *value(struct cparse *c, int depth);

static struct cnode *items(struct cparse *c, int depth, bool top);

static struct cnode *value(struct cparse *c, int depth)
{
	struct cnode *n;

	skip_space(c);
	if (c->p >= c->end || depth > MAX_DEPTH) {
		c->err = -EINVAL;
		return NULL;
	}
	n = cnew(c);
	if (!n)
		return NULL;
	if (*c->p == '"') {
		char *w = ++c->p;

		n->kind = C_STR;
		n->str = w;
		while (c->p < c->end && *c->p != '"') {
			if (*c->p == '\\' && c->p + 1 < c->end)
				c->p++;
			*w++ = *c->p++;
		}
		if (c->p >= c->end) {
			c->err = -EINVAL;
			return NULL;
		}
		c->p++;
		*w = 0; /* w <= the closing quote's place */
	} else if (*c->p == '[') {
		struct cnode **tail = &n->child;

		n->kind = C_ARRAY;
		c->p++;
		for (;;) {
			skip_space(c);
			if (c->p >= c->end) {
				c->err = -EINVAL;
				return NULL;
			}
			if (*c->p == ']') {
				c->p++;
				break;
			}
			if (n->child) {
				if (*c->p != ',') {
					c->err = -EINVAL;
					return NULL;
				}
				c->p++;
			}
			*tail = value(c, depth + 1);
			if (!*tail)
				return NULL;
			tail = &(*tail)->next;
		}
	} else if (*c->p == '-' || isdigit((unsigned char)*c->p)) {
		bool neg = *c->p == '-';
		unsigned long long v = 0;

		n->kind = C_NUM;
		if (neg)
			c->p++;
		while (c->p < c->end && (isdigit((unsigned char)*c->p) || *c->p == '.')) {
			if (*c->p != '.' && v < (1ull << 62))
				v = v * 10 + (unsigned)(*c->p - '0');
			c->p++;
		}
		n->num = neg ? -(long long)v : (long long)v;
	} else {
		c->err = -EINVAL;
		return NULL;
	}
	return n;
}

static struct cnode *items(struct cparse *c, int depth, bool top)
{
	struct cnode *list = NULL, **tail = &list;

	if (depth > MAX_DEPTH) {
		c->err = -EINVAL;
		return NULL;
	}
	for (;;) {
		struct cnode *n;
		char *key, after;

		skip_space(c);
		if (c->p >= c->end) {
			if (!top)
				c->err = -EINVAL;
			return list;
		}
		if (*c->p == '}') {
			if (top)
				c->err = -EINVAL;
			else
				c->p++;
			return list;
		}
		key = ident(c, &after);
		if (!key)
			return NULL;
		c->p++; /* past '=' or '{' */
		if (after == '{') {
			n = cnew(c);
			if (!n)
				return NULL;
			n->kind = C_SECTION;
			n->child = items(c, depth + 1, false);
			if (c->err)
				return NULL;
		} else if (after == '=') {
			n = value(c, depth + 1);
			if (!n)
				return NULL;
		} else {
			c->err = -EINVAL;
			return NULL;
		}
		n->key = key;
		*tail = n;
		tail = &n->next;
	}
}

static const struct cnode *cfind(const struct cnode *list, const char *key, int kind)
{
	for (; list; list = list->next)
		if (list->key && !strcmp(list->key, key) && list->kind == kind)
			return list;
	return NULL;
}

static bool cnum(const struct cnode *list, const char *key, uint64_t *v)
{
	const struct cnode *n = cfind(list, key, C_NUM);

	if (!n || n->num < 0)
		return false;
	*v = (uint64_t)n->num;
	return true;
}

/* ---- the on-disk layout ---- */

struct pv {
	char uuid[33];            /* without dashes */
	uint64_t pe_start;        /* bytes */
	uint64_t mda[MAX_AREAS][2];
	unsigned nmda;
	bool ok;
};

static int read_label(xbd_sandbox_read_fn *rd, void *ctx, uint32_t src,
		      uint64_t size, struct pv *pv)
{
	unsigned char buf[LABEL_SCAN_SECTORS * SECTOR];
	int err = rd(ctx, src, buf, sizeof(buf), 0);

	if (err)
		return err;
	for (unsigned s = 0; s < LABEL_SCAN_SECTORS; s++) {
		unsigned char *l = buf + s * SECTOR;
		uint32_t off = le32(l + 20);
		unsigned char *h, *end = l + SECTOR;
		unsigned area = 0;

		if (memcmp(l, "LABELONE", 8) || memcmp(l + 24, "LVM2 001", 8))
			continue;
		if (off < 32 || off > SECTOR - 48)
			return -EINVAL;
		h = l + off;
		memcpy(pv->uuid, h, 32);
		pv->uuid[32] = 0;
		h += 40; /* uuid, device size */
		/* data areas, a zero entry, metadata areas, a zero entry */
		for (; h + 16 <= end; h += 16) {
			uint64_t o = le64(h), z = le64(h + 8);

			if (!o && !z) {
				if (++area == 2)
					break;
				continue;
			}
			if (area == 0 && !pv->pe_start)
				pv->pe_start = o;
			else if (area == 1 && pv->nmda < MAX_AREAS) {
				pv->mda[pv->nmda][0] = o;
				pv->mda[pv->nmda++][1] = z;
			}
		}
		if (!pv->pe_start || pv->pe_start >= size)
			return -EINVAL;
		for (unsigned i = 0; i < 32; i++)
			if (!isalnum((unsigned char)pv->uuid[i]))
				return -EINVAL;
		pv->ok = true;
		return 0;
	}
	return -ENOENT;
}

/* The newest metadata text of the area [o, o+z): malloc'd, NUL-ended. */
static int read_text(xbd_sandbox_read_fn *rd, void *ctx, uint32_t src,
		     uint64_t size, uint64_t o, uint64_t z, char **out, size_t *out_len)
{
	unsigned char h[MDA_HEADER_SIZE];
	uint64_t start, msize, toff, tsize, first;
	char *text;
	int err;

	if (o >= size || z < 2 * MDA_HEADER_SIZE || z > size - o)
		return -EINVAL;
	err = rd(ctx, src, h, sizeof(h), o);
	if (err)
		return err;
	if (memcmp(h + 4, mda_magic, 16) || le32(h + 20) != 1)
		return -EINVAL;
	start = le64(h + 24);
	msize = le64(h + 32);
	toff = le64(h + 40);
	tsize = le64(h + 48);
	if (start != o || msize != z || !tsize || tsize > LVM_TEXT_MAX ||
	    toff < MDA_HEADER_SIZE || toff >= msize)
		return -EINVAL;
	text = malloc(tsize + 1);
	if (!text)
		return -ENOMEM;
	/* a circular buffer after the header: the text may wrap */
	first = msize - toff < tsize ? msize - toff : tsize;
	err = rd(ctx, src, text, first, start + toff);
	if (!err && first < tsize) {
		if (tsize - first > msize - MDA_HEADER_SIZE)
			err = -EINVAL;
		else
			err = rd(ctx, src, text + first, tsize - first,
				 start + MDA_HEADER_SIZE);
	}
	if (err) {
		free(text);
		return err;
	}
	text[tsize] = 0;
	*out = text;
	*out_len = tsize;
	return 0;
}

static void undash(char *dst, const char *s)
{
	size_t n = 0;

	for (; *s && n < 32; s++)
		if (*s != '-')
			dst[n++] = *s;
	dst[n] = 0;
}

static bool good_name(const char *s)
{
	size_t len = strlen(s);

	if (!len || len > LVM_NAME_MAX || s[0] == '-' || !strcmp(s, ".") ||
	    !strcmp(s, ".."))
		return false;
	for (; *s; s++)
		if (!ident_char(*s))
			return false;
	return true;
}

static bool visible(const struct cnode *lv)
{
	const struct cnode *st = cfind(lv->child, "status", C_ARRAY);

	if (!st)
		return false;
	for (const struct cnode *v = st->child; v; v = v->next)
		if (v->kind == C_STR && !strcmp(v->str, "VISIBLE"))
			return true;
	return false;
}

struct out {
	struct lvm_lv lv[LVM_MAX_LV];
	struct lvm_seg seg[LVM_MAX_SEG];
	uint32_t nlv, nseg;
};

/* The source holding physical volume `name` of the VG, or -1. */
static int pv_src(const struct cnode *pvs, const char *name,
		  const struct pv *pv, uint32_t nsrc)
{
	const struct cnode *p = pvs ? cfind(pvs->child, name, C_SECTION) : NULL;
	const struct cnode *id = p ? cfind(p->child, "id", C_STR) : NULL;
	char u[33];

	if (!id)
		return -1;
	undash(u, id->str);
	for (uint32_t i = 0; i < nsrc; i++)
		if (pv[i].ok && !strcmp(pv[i].uuid, u))
			return (int)i;
	return -1;
}

/* One LV's segments into o; false (and nothing added) when the volume
 * is of a kind we do not map or names a PV we were not given. */
static bool add_lv(struct out *o, const char *vg, const struct cnode *lv,
		   const struct cnode *pvs, const struct pv *pv, uint32_t nsrc,
		   const uint64_t *src_size, uint64_t extent)
{
	uint32_t seg0 = o->nseg;
	uint64_t count, at = 0;

	if (!good_name(lv->key) || !visible(lv) || o->nlv >= LVM_MAX_LV ||
	    !cnum(lv->child, "segment_count", &count) || !count ||
	    count > LVM_MAX_SEG)
		return false;
	for (uint64_t i = 1; i <= count; i++) {
		char key[32];
		const struct cnode *s, *type, *stripes, *v;
		uint64_t se, ec, sc, ss = 0;
		struct lvm_seg *g;
		uint32_t k = 0;

		snprintf(key, sizeof(key), "segment%llu", (unsigned long long)i);
		s = cfind(lv->child, key, C_SECTION);
		if (!s || o->nseg >= LVM_MAX_SEG)
			goto undo;
		type = cfind(s->child, "type", C_STR);
		stripes = cfind(s->child, "stripes", C_ARRAY);
		if (!type || strcmp(type->str, "striped") || !stripes ||
		    !cnum(s->child, "start_extent", &se) ||
		    !cnum(s->child, "extent_count", &ec) ||
		    !cnum(s->child, "stripe_count", &sc) ||
		    !sc || sc > LVM_MAX_STRIPES || !ec || ec % sc ||
		    se != at / extent || ec > UINT64_MAX / extent)
			goto undo;
		if (sc > 1 && (!cnum(s->child, "stripe_size", &ss) || !ss ||
			       ss > (1ull << 40) / SECTOR))
			goto undo;
		g = &o->seg[o->nseg];
		memset(g, 0, sizeof(*g));
		g->lv = o->nlv;
		g->nstripes = (uint32_t)sc;
		g->lv_off = at;
		g->len = ec * extent;
		g->stripe_size = ss * SECTOR;
		for (v = stripes->child; v; v = v->next, k++) {
			const struct cnode *pe = v->next;
			int src;

			if (k >= sc || v->kind != C_STR || !pe || pe->kind != C_NUM ||
			    pe->num < 0 || (uint64_t)pe->num > UINT64_MAX / extent)
				goto undo;
			src = pv_src(pvs, v->str, pv, nsrc);
			if (src < 0)
				goto undo;
			g->stripe[k].src = (uint32_t)src;
			g->stripe[k].off = pv[src].pe_start + (uint64_t)pe->num * extent;
			if (g->stripe[k].off < pv[src].pe_start ||
			    g->stripe[k].off > src_size[src] ||
			    g->len / sc > src_size[src] - g->stripe[k].off)
				goto undo;
			v = pe;
		}
		if (k != sc)
			goto undo;
		at += g->len;
		o->nseg++;
	}
	snprintf(o->lv[o->nlv].vg, sizeof(o->lv[0].vg), "%s", vg);
	snprintf(o->lv[o->nlv].name, sizeof(o->lv[0].name), "%s", lv->key);
	o->lv[o->nlv++].size = at;
	return true;
undo:
	o->nseg = seg0;
	return false;
}

static int parse_vg(struct out *o, char *text, size_t len, const struct pv *pv,
		    uint32_t nsrc, const uint64_t *src_size, char done[][LVM_NAME_MAX + 1],
		    unsigned *ndone)
{
	struct cparse c = { .p = text, .end = text + len };
	const struct cnode *top, *vg = NULL, *pvs, *lvs;
	uint64_t extent;

	c.pool = calloc(MAX_NODES, sizeof(*c.pool));
	if (!c.pool)
		return -ENOMEM;
	top = items(&c, 0, true);
	if (c.err)
		goto out;
	for (const struct cnode *n = top; n; n = n->next)
		if (n->kind == C_SECTION && !vg)
			vg = n;
	c.err = -EINVAL;
	if (!vg || !good_name(vg->key) || !cnum(vg->child, "extent_size", &extent) ||
	    !extent || extent > (1ull << 40) / SECTOR)
		goto out;
	for (unsigned i = 0; i < *ndone; i++)
		if (!strcmp(done[i], vg->key)) {
			c.err = 0; /* seen on another PV of this disk */
			goto out;
		}
	if (*ndone < LVM_MAX_SRC)
		snprintf(done[(*ndone)++], LVM_NAME_MAX + 1, "%s", vg->key);
	extent *= SECTOR;
	pvs = cfind(vg->child, "physical_volumes", C_SECTION);
	lvs = cfind(vg->child, "logical_volumes", C_SECTION);
	c.err = 0;
	for (const struct cnode *lv = lvs ? lvs->child : NULL; lv; lv = lv->next)
		if (lv->kind == C_SECTION)
			add_lv(o, vg->key, lv, pvs, pv, nsrc, src_size, extent);
out:
	free(c.pool);
	return c.err;
}

int lvm_parse(xbd_sandbox_read_fn *rd, void *ctx, uint32_t nsrc,
	      const uint64_t *src_size, void **reply, size_t *reply_len)
{
	struct pv pv[LVM_MAX_SRC];
	char done[LVM_MAX_SRC][LVM_NAME_MAX + 1];
	unsigned ndone = 0;
	struct out *o;
	struct lvm_reply_hdr h;
	size_t len;
	char *r;

	if (nsrc > LVM_MAX_SRC)
		return -EINVAL;
	memset(pv, 0, sizeof(pv));
	o = calloc(1, sizeof(*o));
	if (!o)
		return -ENOMEM;
	for (uint32_t i = 0; i < nsrc; i++)
		read_label(rd, ctx, i, src_size[i], &pv[i]);
	for (uint32_t i = 0; i < nsrc; i++) {
		for (unsigned m = 0; pv[i].ok && m < pv[i].nmda; m++) {
			char *text;
			size_t tlen;

			if (read_text(rd, ctx, i, src_size[i], pv[i].mda[m][0],
				      pv[i].mda[m][1], &text, &tlen))
				continue;
			int err = parse_vg(o, text, tlen, pv, nsrc, src_size, done, &ndone);

			free(text);
			if (!err)
				break;
		}
	}
	h.nlv = o->nlv;
	h.nseg = o->nseg;
	len = sizeof(h) + o->nlv * sizeof(struct lvm_lv) + o->nseg * sizeof(struct lvm_seg);
	r = malloc(len);
	if (!r) {
		free(o);
		return -ENOMEM;
	}
	memcpy(r, &h, sizeof(h));
	memcpy(r + sizeof(h), o->lv, o->nlv * sizeof(struct lvm_lv));
	memcpy(r + sizeof(h) + o->nlv * sizeof(struct lvm_lv), o->seg,
	       o->nseg * sizeof(struct lvm_seg));
	free(o);
	*reply = r;
	*reply_len = len;
	return 0;
}

int lvm_reply_check(const void *reply, size_t len, uint32_t nsrc,
		    const uint64_t *src_size)
{
	struct lvm_reply_hdr h;
	const struct lvm_lv *lv;
	const struct lvm_seg *seg;
	uint64_t at = 0;
	uint32_t cur = 0;

	if (len < sizeof(h))
		return -EPROTO;
	memcpy(&h, reply, sizeof(h));
	if (h.nlv > LVM_MAX_LV || h.nseg > LVM_MAX_SEG ||
	    len != sizeof(h) + h.nlv * sizeof(*lv) + h.nseg * sizeof(*seg))
		return -EPROTO;
	lv = (const void *)((const char *)reply + sizeof(h));
	seg = (const void *)(lv + h.nlv);
	for (uint32_t i = 0; i < h.nlv; i++)
		if (memchr(lv[i].vg, 0, sizeof(lv[i].vg)) == NULL ||
		    memchr(lv[i].name, 0, sizeof(lv[i].name)) == NULL ||
		    !good_name(lv[i].vg) || !good_name(lv[i].name) || !lv[i].size)
			return -EPROTO;
	/* segments in volume order, each volume tiled from 0 to its size */
	for (uint32_t i = 0; i < h.nseg; i++) {
		const struct lvm_seg *g = &seg[i];

		if (g->lv != cur) {
			if (g->lv != cur + 1 || at != lv[cur].size)
				return -EPROTO;
			cur = g->lv;
			at = 0;
		}
		if (g->lv >= h.nlv || g->lv_off != at || !g->len ||
		    g->len > lv[cur].size - at || !g->nstripes ||
		    g->nstripes > LVM_MAX_STRIPES || g->len % g->nstripes ||
		    (g->nstripes > 1 && !g->stripe_size))
			return -EPROTO;
		for (uint32_t k = 0; k < g->nstripes; k++) {
			const struct lvm_stripe *s = &g->stripe[k];

			if (s->src >= nsrc || s->off > src_size[s->src] ||
			    g->len / g->nstripes > src_size[s->src] - s->off)
				return -EPROTO;
		}
		at += g->len;
	}
	if (h.nlv && (h.nseg == 0 || cur != h.nlv - 1 || at != lv[cur].size))
		return -EPROTO;
	return 0;
}

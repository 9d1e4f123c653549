/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `xbdsh top`: every virtual disk on the host at a glance, as xentop
 * shows domains.  One line per VM (its totals) with its disks under it;
 * rates and the p99 latency over the last interval; a header with the
 * host, the time and the totals.  On a terminal it redraws in place,
 * each line cut to the terminal's width (never wrapped), and follows
 * resizes (SIGWINCH); keys as in xentop/top.  In batch mode (-b, or
 * stdout not a terminal) it prints plain samples, each under a line
 * with its timestamp, for logs.
 */
#include "cli/sh.h"
#include "xbd/cli.h"
#include "xbd/common.h"
#include "xbd/util.h"

#include <errno.h>
#include <getopt.h>
#include <json.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#define TOP_FIRST_MS 500    /* rates of the first screen: over this */
#define TOP_MIN_DELAY 0.1
#define TOP_MAX_DELAY 86400.0
#define TOP_LINE_MAX 512

/* ------------------------------------------------------------------ */
/* One screen's worth of numbers                                      */

struct top_row {
	const struct sh_disk *d; /* NULL: the line of a VM (its totals) */
	const struct sh_sample *s;
	bool have_rates;
	double rd_iops, wr_iops, rd_bps, wr_bps;
	bool have_in_flight;
	uint64_t in_flight;
	bool have_p99;
	uint64_t p99_ns;
	bool have_errors;
	uint64_t errors;
	unsigned ndisks;         /* VM lines: its disks, which follow */
};

struct top_frame {
	struct sh_sample *samples;
	unsigned n;
	struct sh_xbd x;
	uint64_t time_ns;
	time_t wall;
};

enum top_col {
	COL_NAME, COL_SERVER, COL_STATE, COL_RD, COL_WR, COL_RMB, COL_WMB,
	COL_INFL, COL_RING, COL_P99, COL_ERR, COL_COUNT
};

static const struct {
	const char *title;
	int width;     /* 0: the name column, which takes what is left */
	bool left;
	const char *key; /* sort name */
} cols[COL_COUNT] = {
	[COL_NAME] = { "VM / DISK", 0, true, "vm" },
	[COL_SERVER] = { "SERVER", 10, true, "server" },
	[COL_STATE] = { "STATE", 5, true, "state" },
	[COL_RD] = { "RD/s", 6, false, "rd/s" },
	[COL_WR] = { "WR/s", 6, false, "wr/s" },
	[COL_RMB] = { "RMB/s", 6, false, "rmb/s" },
	[COL_WMB] = { "WMB/s", 6, false, "wmb/s" },
	[COL_INFL] = { "INFL", 4, false, "in flight" },
	[COL_RING] = { "RING", 4, false, "ring" },
	[COL_P99] = { "P99", 6, false, "p99" },
	[COL_ERR] = { "ERR", 4, false, "errors" },
};

struct top_opts {
	double delay_s;
	unsigned long iterations; /* 0: until q */
	bool batch;
	enum top_col sort;
};

static void frame_free(struct top_frame *f)
{
	unsigned i;

	for (i = 0; f->samples && i < f->n; i++)
		sh_sample_free(&f->samples[i]);
	free(f->samples);
	sh_xbd_free(&f->x);
	memset(f, 0, sizeof(*f));
}

/* Every VM and every disk, now.  0, or 1 when nothing could be taken
 * (line printed).  Problems of single disks or processes stay in the
 * frame, for the screen. */
static int frame_take(struct sh_ctx *ctx, struct top_frame *f)
{
	struct sh_vm *vms = NULL;
	unsigned n = 0, i, k;

	memset(f, 0, sizeof(*f));
	if (sh_xbd_fetch(ctx, "stats", &f->x))
		return 1;
	if (sh_vm_list(ctx, &f->x, &vms, &n)) {
		sh_xbd_free(&f->x);
		return 1;
	}
	f->samples = calloc(n ? n : 1, sizeof(*f->samples));
	if (!f->samples) {
		free(vms);
		sh_xbd_free(&f->x);
		return 1;
	}
	for (i = 0, k = 0; i < n; i++) {
		/* a VM gone meanwhile is simply not on this screen, nor is
		 * one without disks (dom0, usually) */
		if (sh_sample_take(ctx, &f->x, &vms[i], false, &f->samples[k]) < 0)
			continue;
		if (f->samples[k].n)
			k++;
		else
			sh_sample_free(&f->samples[k]);
	}
	f->n = k;
	free(vms);
	f->time_ns = xbd_now_ns();
	f->wall = time(NULL);
	return 0;
}

/* The same disk in the previous frame. */
static const struct sh_disk *prev_of(const struct top_frame *prev,
				     const struct sh_sample *s,
				     const struct sh_disk *d)
{
	unsigned i, k;

	for (i = 0; prev && i < prev->n; i++) {
		if (prev->samples[i].domid != s->domid)
			continue;
		for (k = 0; k < prev->samples[i].n; k++) {
			const struct sh_disk *p = &prev->samples[i].disks[k];

			if (p->devid == d->devid && !strcmp(p->name, d->name) &&
			    !strcmp(p->role, d->role))
				return p;
		}
	}
	return NULL;
}

static double per_s(uint64_t now, uint64_t before, uint64_t dt_ns)
{
	return dt_ns && now >= before ? (double)(now - before) * 1e9 / (double)dt_ns
				      : 0;
}

/* Errors an xbd process counted for the disk; false when it has none
 * to tell (other backends). */
static bool disk_errors(const struct sh_disk *d, uint64_t *n)
{
	struct json_object *o = xbd_ctl_get_object(d->xbd, "errors");

	*n = 0;
	if (!o)
		return false;
	json_object_object_foreach(o, key, val) {
		(void)key;
		*n += xbd_ctl_get_u64(val, NULL, NULL);
	}
	return true;
}

/* p99 of reads and writes together over the interval: the difference
 * of the two histograms. */
static bool interval_p99(const struct sh_disk *d, const struct sh_disk *p,
			 uint64_t *p99)
{
	static const enum xbd_stat_op ops[] = { XBD_OP_READ, XBD_OP_WRITE };
	uint64_t diff[XBD_LAT_BUCKETS], total = 0, max = 0;
	unsigned b, i;

	if (!d->have_latency || !p || !p->have_latency)
		return false;
	for (i = 0; i < XBD_ARRAY_SIZE(ops); i++)
		if (d->lat[ops[i]].max_ns > max)
			max = d->lat[ops[i]].max_ns; /* since the start: a bound */
	for (b = 0; b < XBD_LAT_BUCKETS; b++) {
		diff[b] = 0;
		for (i = 0; i < XBD_ARRAY_SIZE(ops); i++) {
			uint64_t now = d->lat[ops[i]].buckets[b];
			uint64_t before = p->lat[ops[i]].buckets[b];

			if (now > before)
				diff[b] += now - before;
		}
		total += diff[b];
	}
	if (!total)
		return false;
	*p99 = xbd_latency_percentile_of(diff, max, 99);
	return true;
}

static void fill_disk_row(struct top_row *r, const struct top_frame *cur,
			  const struct top_frame *prev,
			  const struct sh_sample *s, const struct sh_disk *d)
{
	const struct sh_disk *p = prev_of(prev, s, d);
	uint64_t dt = prev && cur->time_ns > prev->time_ns ?
		      cur->time_ns - prev->time_ns : 0;

	memset(r, 0, sizeof(*r));
	r->d = d;
	r->s = s;
	if (d->have_counters && p && p->have_counters && dt) {
		r->have_rates = true;
		r->rd_iops = per_s(d->c.rd_req, p->c.rd_req, dt);
		r->wr_iops = per_s(d->c.wr_req, p->c.wr_req, dt);
		r->rd_bps = 512 * per_s(d->c.rd_sect, p->c.rd_sect, dt);
		r->wr_bps = 512 * per_s(d->c.wr_sect, p->c.wr_sect, dt);
	}
	r->have_in_flight = d->have_in_flight;
	r->in_flight = d->in_flight;
	r->have_p99 = interval_p99(d, p, &r->p99_ns);
	r->have_errors = disk_errors(d, &r->errors);
}

/* A VM's line: the sums of its disks' (what is known of them). */
static void fill_vm_row(struct top_row *vm, const struct top_row *disks,
			unsigned n, const struct sh_sample *s)
{
	unsigned i;

	memset(vm, 0, sizeof(*vm));
	vm->s = s;
	vm->ndisks = n;
	for (i = 0; i < n; i++) {
		const struct top_row *r = &disks[i];

		if (r->have_rates) {
			vm->have_rates = true;
			vm->rd_iops += r->rd_iops;
			vm->wr_iops += r->wr_iops;
			vm->rd_bps += r->rd_bps;
			vm->wr_bps += r->wr_bps;
		}
		if (r->have_in_flight) {
			vm->have_in_flight = true;
			vm->in_flight += r->in_flight;
		}
		if (r->have_p99 && (!vm->have_p99 || r->p99_ns > vm->p99_ns)) {
			vm->have_p99 = true; /* the worst of its disks */
			vm->p99_ns = r->p99_ns;
		}
		if (r->have_errors) {
			vm->have_errors = true;
			vm->errors += r->errors;
		}
	}
}

/* The value a row is sorted by (larger first, but names A to Z). */
static double sort_value(const struct top_row *r, enum top_col c)
{
	switch (c) {
	case COL_RD: return r->have_rates ? r->rd_iops : -1;
	case COL_WR: return r->have_rates ? r->wr_iops : -1;
	case COL_RMB: return r->have_rates ? r->rd_bps : -1;
	case COL_WMB: return r->have_rates ? r->wr_bps : -1;
	case COL_INFL: return r->have_in_flight ? (double)r->in_flight : -1;
	case COL_RING:
		return r->d && r->d->have_ring && r->d->nr_ents ?
		       (double)r->d->used / r->d->nr_ents : -1;
	case COL_P99: return r->have_p99 ? (double)r->p99_ns : -1;
	case COL_ERR: return r->have_errors ? (double)r->errors : -1;
	default: return 0;
	}
}

static const char *sort_text(const struct top_row *r, enum top_col c)
{
	if (!r->d)
		return r->s->vm;
	switch (c) {
	case COL_SERVER: return sh_disk_server(r->d);
	case COL_STATE: return r->d->state;
	default: return r->d->name;
	}
}

static enum top_col sort_col; /* qsort has no argument */

static int cmp_rows(const void *a, const void *b)
{
	const struct top_row *x = a, *y = b;
	double vx, vy;
	int c;

	if (sort_col <= COL_STATE) {
		c = strcmp(sort_text(x, sort_col), sort_text(y, sort_col));
		if (c)
			return c;
	} else {
		vx = sort_value(x, sort_col);
		vy = sort_value(y, sort_col);
		if (vx != vy)
			return vx > vy ? -1 : 1;
	}
	/* ties: VMs by domain id, disks by name */
	if (!x->d)
		return x->s->domid < y->s->domid ? -1 : x->s->domid > y->s->domid;
	return strcmp(x->d->name, y->d->name);
}

/* The rows in display order: each VM line followed by its disks; VMs
 * and the disks of each sorted by the sort column.  *n rows. */
static struct top_row *build_rows(const struct top_frame *cur,
				  const struct top_frame *prev,
				  enum top_col sort, unsigned *n)
{
	struct top_row *rows, *vms;
	unsigned total = 0, i, k, at = 0;

	for (i = 0; i < cur->n; i++)
		total += 1 + cur->samples[i].n;
	rows = calloc(total ? total : 1, sizeof(*rows));
	vms = calloc(cur->n ? cur->n : 1, sizeof(*vms));
	if (!rows || !vms) {
		free(rows);
		free(vms);
		*n = 0;
		return NULL;
	}
	sort_col = sort;
	/* each VM's line first from its disks, then the VMs sorted */
	for (i = 0; i < cur->n; i++) {
		const struct sh_sample *s = &cur->samples[i];
		struct top_row *disks = calloc(s->n ? s->n : 1, sizeof(*disks));

		if (!disks)
			continue;
		for (k = 0; k < s->n; k++)
			fill_disk_row(&disks[k], cur, prev, s, &s->disks[k]);
		fill_vm_row(&vms[i], disks, s->n, s);
		free(disks);
	}
	qsort(vms, cur->n, sizeof(*vms), cmp_rows);
	for (i = 0; i < cur->n; i++) {
		const struct sh_sample *s = vms[i].s;
		unsigned first;

		rows[at++] = vms[i];
		first = at;
		for (k = 0; k < s->n; k++)
			fill_disk_row(&rows[at++], cur, prev, s, &s->disks[k]);
		qsort(rows + first, s->n, sizeof(*rows), cmp_rows);
	}
	free(vms);
	*n = at;
	return rows;
}

/* ------------------------------------------------------------------ */
/* Text                                                               */

/* A line being built, never longer than its width. */
struct line {
	char buf[TOP_LINE_MAX];
	size_t len, width;
};

static void line_add(struct line *l, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void line_add(struct line *l, const char *fmt, ...)
{
	size_t room = l->width < sizeof(l->buf) ? l->width : sizeof(l->buf) - 1;
	va_list ap;
	int n;

	if (l->len >= room)
		return;
	va_start(ap, fmt);
	n = vsnprintf(l->buf + l->len, room - l->len + 1, fmt, ap);
	va_end(ap);
	if (n > 0)
		l->len += (size_t)n < room - l->len ? (size_t)n : room - l->len;
	l->buf[l->len] = '\0';
}

static void fmt_rate(char *buf, size_t len, bool have, double v)
{
	if (!have)
		snprintf(buf, len, "-");
	else if (v < 9999.5)
		snprintf(buf, len, "%.1f", v);
	else if (v < 999999.5)
		snprintf(buf, len, "%.0f", v);
	else
		snprintf(buf, len, "%.1fM", v / 1e6);
}

static void fmt_mb(char *buf, size_t len, bool have, double bps)
{
	double mb = bps / 1e6;

	if (!have)
		snprintf(buf, len, "-");
	else if (mb < 99.995)
		snprintf(buf, len, "%.2f", mb);
	else
		snprintf(buf, len, "%.0f", mb);
}

/* A latency in at most 6 characters: "850ns", "52.2us", "184us",
 * "2.82ms", "282ms", "1.50s". */
static void fmt_lat(char *buf, size_t len, uint64_t ns)
{
	double v = (double)ns;

	if (ns < 1000)
		snprintf(buf, len, "%lluns", (unsigned long long)ns);
	else if (v < 99950)
		snprintf(buf, len, "%.1fus", v / 1e3);
	else if (v < 999500)
		snprintf(buf, len, "%.0fus", v / 1e3);
	else if (v < 9995000)
		snprintf(buf, len, "%.2fms", v / 1e6);
	else if (v < 99950000)
		snprintf(buf, len, "%.1fms", v / 1e6);
	else if (v < 999500000)
		snprintf(buf, len, "%.0fms", v / 1e6);
	else
		snprintf(buf, len, "%.2fs", v / 1e9);
}

/* The XenbusState, short enough for its column. */
static const char *short_state(const char *state)
{
	static const struct { const char *name, *abbr; } map[] = {
		{ "Initialising", "Init" }, { "InitWait", "Wait" },
		{ "Initialised", "Initd" }, { "Connected", "Conn" },
		{ "Closing", "Clsng" }, { "Closed", "Closd" },
		{ "Reconfiguring", "Recfg" }, { "Reconfigured", "Recfd" },
		{ "inconsistent", "BAD" },
	};
	size_t i;

	for (i = 0; i < XBD_ARRAY_SIZE(map); i++)
		if (!strcmp(state, map[i].name))
			return map[i].abbr;
	return "?";
}

/* The name column's width for a screen this wide. */
static int name_width(size_t width, bool batch)
{
	int fixed = 0, w;
	unsigned c;

	for (c = 1; c < COL_COUNT; c++)
		fixed += cols[c].width + 1;
	if (batch)
		return 24;
	w = (int)width - fixed;
	return w < 13 ? 13 : w > 32 ? 32 : w;
}

static void format_header_cols(struct line *l, int namew, enum top_col sort,
			       bool mark)
{
	unsigned c;

	for (c = 0; c < COL_COUNT; c++) {
		char t[24];

		snprintf(t, sizeof(t), "%s%s", cols[c].title,
			 mark && c == sort ? "*" : "");
		if (c == COL_NAME)
			line_add(l, "%-*s", namew, t);
		else if (cols[c].left)
			line_add(l, " %-*s", cols[c].width, t);
		else
			line_add(l, " %*s", cols[c].width, t);
	}
}

static void format_row(struct line *l, const struct top_row *r, int namew)
{
	char rd[16], wr[16], rmb[16], wmb[16], infl[16], ring[16], p99[16],
	     err[24], name[80];
	const struct sh_disk *d = r->d;

	fmt_rate(rd, sizeof(rd), r->have_rates, r->rd_iops);
	fmt_rate(wr, sizeof(wr), r->have_rates, r->wr_iops);
	fmt_mb(rmb, sizeof(rmb), r->have_rates, r->rd_bps);
	fmt_mb(wmb, sizeof(wmb), r->have_rates, r->wr_bps);
	if (r->have_in_flight)
		snprintf(infl, sizeof(infl), "%llu", (unsigned long long)r->in_flight);
	else
		snprintf(infl, sizeof(infl), "-");
	if (d && d->have_ring && d->nr_ents && d->used && d->used * 100 < d->nr_ents)
		snprintf(ring, sizeof(ring), "<1%%"); /* in use, if little */
	else if (d && d->have_ring && d->nr_ents)
		snprintf(ring, sizeof(ring), "%u%%", d->used * 100 / d->nr_ents);
	else
		snprintf(ring, sizeof(ring), "-");
	if (r->have_p99)
		fmt_lat(p99, sizeof(p99), r->p99_ns);
	else
		snprintf(p99, sizeof(p99), "-");
	if (r->have_errors)
		snprintf(err, sizeof(err), "%llu", (unsigned long long)r->errors);
	else
		snprintf(err, sizeof(err), "-");
	if (d)
		snprintf(name, sizeof(name), "  %s", d->name);
	else
		snprintf(name, sizeof(name), "%s (%u)", r->s->vm, r->s->domid);
	line_add(l, "%-*.*s %-*.*s %-*.*s %*s %*s %*s %*s %*s %*s %*s %*s",
		 namew, namew, name,
		 cols[COL_SERVER].width, cols[COL_SERVER].width,
		 d ? sh_disk_server(d) : "",
		 cols[COL_STATE].width, cols[COL_STATE].width,
		 d ? short_state(d->state) : "",
		 cols[COL_RD].width, rd, cols[COL_WR].width, wr,
		 cols[COL_RMB].width, rmb, cols[COL_WMB].width, wmb,
		 cols[COL_INFL].width, infl, cols[COL_RING].width, ring,
		 cols[COL_P99].width, p99, cols[COL_ERR].width, err);
}

/* The host's totals: the sum of the VM lines. */
static void totals(const struct top_row *rows, unsigned n, struct top_row *t,
		   unsigned *nvms, unsigned *ndisks)
{
	unsigned i;

	memset(t, 0, sizeof(*t));
	*nvms = 0;
	*ndisks = 0;
	for (i = 0; i < n; i++) {
		if (rows[i].d) {
			(*ndisks)++;
			continue;
		}
		(*nvms)++;
		t->have_rates |= rows[i].have_rates;
		t->rd_iops += rows[i].rd_iops;
		t->wr_iops += rows[i].wr_iops;
		t->rd_bps += rows[i].rd_bps;
		t->wr_bps += rows[i].wr_bps;
		t->in_flight += rows[i].in_flight;
		t->errors += rows[i].errors;
	}
}

static void format_time(char *buf, size_t len, time_t t, bool full)
{
	struct tm tm;

	localtime_r(&t, &tm);
	strftime(buf, len, full ? "%Y-%m-%dT%H:%M:%S%z" : "%H:%M:%S", &tm);
}

static void format_summary(struct line *l, const struct top_row *rows,
			   unsigned n)
{
	struct top_row t;
	unsigned nvms, ndisks;
	char rd[16], wr[16], rmb[16], wmb[16];

	totals(rows, n, &t, &nvms, &ndisks);
	fmt_rate(rd, sizeof(rd), t.have_rates, t.rd_iops);
	fmt_rate(wr, sizeof(wr), t.have_rates, t.wr_iops);
	fmt_mb(rmb, sizeof(rmb), t.have_rates, t.rd_bps);
	fmt_mb(wmb, sizeof(wmb), t.have_rates, t.wr_bps);
	line_add(l, "%u VM%s, %u disk%s: rd %s/s %sMB/s, wr %s/s %sMB/s, "
		 "in flight %llu, errors %llu", nvms, nvms == 1 ? "" : "s",
		 ndisks, ndisks == 1 ? "" : "s", rd, rmb, wr, wmb,
		 (unsigned long long)t.in_flight, (unsigned long long)t.errors);
}

static void host_name(char *buf, size_t len)
{
	if (gethostname(buf, len) < 0)
		snprintf(buf, len, "?");
	buf[len - 1] = '\0';
}

/* ------------------------------------------------------------------ */
/* Batch                                                              */

static void print_batch(const struct top_frame *cur, const struct top_row *rows,
			unsigned n, const struct top_opts *o)
{
	struct line l = { .width = TOP_LINE_MAX - 1 };
	char host[64], when[40];
	unsigned i, p;

	host_name(host, sizeof(host));
	format_time(when, sizeof(when), cur->wall, true);
	printf("xbdsh top %s %s delay %.1fs\n", when, host, o->delay_s);
	format_summary(&l, rows, n);
	printf("%s\n", l.buf);
	l.len = 0;
	l.buf[0] = '\0';
	format_header_cols(&l, name_width(0, true), o->sort, false);
	printf("%s\n", l.buf);
	for (i = 0; i < n; i++) {
		l.len = 0;
		l.buf[0] = '\0';
		format_row(&l, &rows[i], name_width(0, true));
		printf("%s\n", l.buf);
	}
	for (p = 0; p < cur->x.unreachable && p < XBD_ARRAY_SIZE(cur->x.problems); p++)
		printf("! %s\n", cur->x.problems[p]);
	putchar('\n');
	fflush(stdout);
}

/* ------------------------------------------------------------------ */
/* Terminal                                                           */

static volatile sig_atomic_t resized;

static void on_winch(int sig)
{
	(void)sig;
	resized = 1;
}

struct term {
	struct termios saved;
	bool raw;
	unsigned rows, cols;
};

static void term_size(struct term *t)
{
	struct winsize ws;

	t->rows = 24;
	t->cols = 80;
	if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_row && ws.ws_col) {
		t->rows = ws.ws_row;
		t->cols = ws.ws_col;
	}
	if (t->cols >= TOP_LINE_MAX)
		t->cols = TOP_LINE_MAX - 1;
}

static void term_enter(struct term *t)
{
	struct termios raw;
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_winch;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGWINCH, &sa, NULL); /* no SA_RESTART: poll returns */
	t->raw = isatty(STDIN_FILENO) && tcgetattr(STDIN_FILENO, &t->saved) == 0;
	if (t->raw) {
		raw = t->saved;
		raw.c_lflag &= ~(tcflag_t)(ICANON | ECHO);
		raw.c_cc[VMIN] = 0;
		raw.c_cc[VTIME] = 0;
		tcsetattr(STDIN_FILENO, TCSANOW, &raw);
	}
	/* the alternate screen, cursor hidden, no autowrap */
	fputs("\033[?1049h\033[?25l\033[?7l", stdout);
	fflush(stdout);
	term_size(t);
}

static void term_leave(struct term *t)
{
	fputs("\033[?7h\033[?25h\033[?1049l", stdout);
	fflush(stdout);
	if (t->raw)
		tcsetattr(STDIN_FILENO, TCSANOW, &t->saved);
	signal(SIGWINCH, SIG_DFL);
}

/* Puts one screen line: cut to the width, the rest of it cleared; no
 * newline after the screen's last line, so nothing ever scrolls. */
static void put_line(const struct term *t, unsigned *y, const char *s,
		     bool inverse)
{
	size_t len = strnlen(s, t->cols);

	if (*y >= t->rows)
		return;
	/* erase-to-end only when the line is shorter: at the last column
	 * it would also erase the character under the cursor */
	printf("\033[%u;1H%s%.*s%s%s", *y + 1, inverse ? "\033[7m" : "",
	       (int)len, s, len < t->cols ? "\033[K" : "",
	       inverse ? "\033[0m" : "");
	(*y)++;
}

static void draw(const struct term *t, const struct top_frame *cur,
		 const struct top_row *rows, unsigned n,
		 const struct top_opts *o, const char *status)
{
	struct line l = { .width = t->cols };
	char host[64], when[16];
	unsigned y = 0, i, p, room, shown;
	int namew = name_width(t->cols, false);

	host_name(host, sizeof(host));
	format_time(when, sizeof(when), cur->wall, false);
	line_add(&l, "xbdsh top - %s - %s - every %.1fs, sort %s", host, when,
		 o->delay_s, cols[o->sort].key);
	put_line(t, &y, l.buf, false);
	l.len = 0;
	l.buf[0] = '\0';
	format_summary(&l, rows, n);
	put_line(t, &y, l.buf, false);
	l.len = 0;
	l.buf[0] = '\0';
	line_add(&l, "%s", status && *status ? status :
		 "q quit  d delay  s, < > sort  h help");
	put_line(t, &y, l.buf, false);
	l.len = 0;
	l.buf[0] = '\0';
	format_header_cols(&l, namew, o->sort, true);
	/* the header in inverse video, padded to the full width */
	while (l.len < t->cols)
		line_add(&l, " ");
	put_line(t, &y, l.buf, true);
	room = t->rows > y ? t->rows - y : 0;
	/* problems take the last lines */
	for (p = 0; p < cur->x.unreachable && p < XBD_ARRAY_SIZE(cur->x.problems); p++)
		if (room > 1)
			room--;
	shown = n <= room ? n : room ? room - 1 : 0;
	for (i = 0; i < shown; i++) {
		l.len = 0;
		l.buf[0] = '\0';
		format_row(&l, &rows[i], namew);
		put_line(t, &y, l.buf, false);
	}
	if (shown < n && y < t->rows) {
		l.len = 0;
		l.buf[0] = '\0';
		line_add(&l, "... %u more lines (a larger terminal shows them)",
			 n - shown);
		put_line(t, &y, l.buf, false);
	}
	for (p = 0; p < cur->x.unreachable && p < XBD_ARRAY_SIZE(cur->x.problems); p++) {
		l.len = 0;
		l.buf[0] = '\0';
		line_add(&l, "! %s", cur->x.problems[p]);
		put_line(t, &y, l.buf, false);
	}
	/* clear what an earlier, longer screen left below */
	if (y < t->rows)
		printf("\033[%u;1H\033[J", y + 1);
	fflush(stdout);
}

static void draw_help(const struct term *t)
{
	static const char *const lines[] = {
		"xbdsh top: every virtual disk on the host",
		"",
		"  q        quit",
		"  d        change the delay between refreshes (seconds)",
		"  s  >     sort by the next column; <  the previous one",
		"  h        this help",
		"",
		"Columns: a line per VM (its totals; P99 is its worst disk's),",
		"its disks under it.  SERVER: serve (xbd serve), attach (dom0's",
		"xbd attach of the VM's disk), blkback, qdisk, tapdisk.  RD/s WR/s:",
		"requests per second; RMB/s WMB/s: megabytes (10^6) per second;",
		"INFL: requests in flight; RING: ring slots in use; P99: 99th",
		"percentile latency of reads and writes over the last interval;",
		"ERR: errors counted by xbd.  '-': not known for this disk.",
		"",
		"Any key returns.",
	};
	unsigned y = 0;
	size_t i;

	for (i = 0; i < XBD_ARRAY_SIZE(lines); i++)
		put_line(t, &y, lines[i], false);
	if (y < t->rows)
		printf("\033[%u;1H\033[J", y + 1);
	fflush(stdout);
}

/* Reads the new delay, echoing it in the status line; false when
 * cancelled (Esc, q) or nonsense. */
static bool read_delay(const struct term *t, const struct top_frame *cur,
		       const struct top_row *rows, unsigned n,
		       struct top_opts *o)
{
	char buf[16] = "", status[64];
	size_t len = 0;
	double v;
	char *end;

	for (;;) {
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
		char c;

		snprintf(status, sizeof(status), "delay in seconds (now %.1f): %s",
			 o->delay_s, buf);
		draw(t, cur, rows, n, o, status);
		if (poll(&pfd, 1, 30000) <= 0 || sh_interrupted)
			return false;
		if (read(STDIN_FILENO, &c, 1) != 1)
			return false;
		if (c == '\r' || c == '\n')
			break;
		if (c == 27 || c == 'q')
			return false;
		if ((c == 127 || c == 8) && len)
			buf[--len] = '\0';
		else if (((c >= '0' && c <= '9') || c == '.') && len + 1 < sizeof(buf)) {
			buf[len++] = c;
			buf[len] = '\0';
		}
	}
	errno = 0;
	v = strtod(buf, &end);
	if (errno || end == buf || *end || v < TOP_MIN_DELAY || v > TOP_MAX_DELAY)
		return false;
	o->delay_s = v;
	return true;
}

/* What a key does.  1: quit; 2: refresh now; 0: redraw. */
static int on_key(char c, const struct term *t, const struct top_frame *cur,
		  const struct top_row *rows, unsigned n, struct top_opts *o)
{
	switch (c) {
	case 'q':
	case 'Q':
		return 1;
	case 's':
	case '>':
	case '.':
		o->sort = (o->sort + 1) % COL_COUNT;
		return 0;
	case '<':
	case ',':
		o->sort = (o->sort + COL_COUNT - 1) % COL_COUNT;
		return 0;
	case 'd':
	case 'D':
		read_delay(t, cur, rows, n, o);
		return 0;
	case 'h':
	case 'H':
	case '?': {
		struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
		char junk[16];

		draw_help(t);
		while (!sh_interrupted && poll(&pfd, 1, 1000) == 0)
			if (resized) {
				resized = 0;
				term_size((struct term *)t);
				draw_help(t);
			}
		if (read(STDIN_FILENO, junk, sizeof(junk)) < 0)
			return 0;
		return 0;
	}
	default:
		return 0;
	}
}

/* ------------------------------------------------------------------ */
/* The loop                                                           */

static int parse_top(int argc, char **argv, struct top_opts *o)
{
	static const struct option opts[] = {
		{ "delay", required_argument, NULL, 'd' },
		{ "iterations", required_argument, NULL, 'i' },
		{ "batch", no_argument, NULL, 'b' },
		{ "sort", required_argument, NULL, 's' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	unsigned long long n;
	unsigned c2;
	char *end;
	int c;

	o->delay_s = 1;
	optind = 0; /* glibc: 0 re-initialises getopt for each command */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":d:i:bs:h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			errno = 0;
			o->delay_s = strtod(optarg, &end);
			if (errno || *end || end == optarg ||
			    o->delay_s < TOP_MIN_DELAY || o->delay_s > TOP_MAX_DELAY) {
				xbd_usage_err("top", "-d: expected seconds from 0.1 "
					      "to 86400, got '%s'", optarg);
				return XBD_EXIT_USAGE;
			}
			break;
		case 'i':
			if (xbd_parse_uint(optarg, ULONG_MAX, &n) || !n) {
				xbd_usage_err("top", "-i: expected a positive count, "
					      "got '%s'", optarg);
				return XBD_EXIT_USAGE;
			}
			o->iterations = (unsigned long)n;
			break;
		case 'b':
			o->batch = true;
			break;
		case 's':
			for (c2 = 0; c2 < COL_COUNT; c2++)
				if (!strcasecmp(optarg, cols[c2].key) ||
				    !strcasecmp(optarg, cols[c2].title))
					break;
			if (c2 == COL_COUNT) {
				xbd_usage_err("top", "-s: no column '%s' (vm, server, "
					      "state, rd/s, wr/s, rmb/s, wmb/s, "
					      "infl, ring, p99, errors)", optarg);
				return XBD_EXIT_USAGE;
			}
			o->sort = c2;
			break;
		case 'h':
			return -1;
		default:
			xbd_opt_err("top", c, argv, opts);
			return XBD_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		xbd_usage_err("top", "unexpected argument '%s'", argv[optind]);
		return XBD_EXIT_USAGE;
	}
	return 0;
}

int sh_cmd_top(struct sh_ctx *ctx, int argc, char **argv)
{
	struct top_opts o = { 0 };
	struct top_frame cur, prev;
	struct top_row *rows = NULL;
	struct term t = { 0 };
	unsigned n = 0;
	unsigned long frames = 0;
	bool screen;
	int st = parse_top(argc, argv, &o), quit = 0;

	if (st < 0) {
		printf("usage: %stop [-d SECS] [-i N] [-b] [-s COLUMN]\n"
		       "Every virtual disk on the host, refreshed, as xentop shows domains.\n"
		       "  -d, --delay SECS     seconds between refreshes (default 1)\n"
		       "  -i, --iterations N   stop after N refreshes\n"
		       "  -b, --batch          plain samples, each under a timestamped\n"
		       "                       line (also when stdout is not a terminal)\n"
		       "  -s, --sort COLUMN    sort by vm, server, state, rd/s, wr/s,\n"
		       "                       rmb/s, wmb/s, infl, ring, p99 or errors\n"
		       "Keys: q quit, d delay, s or < > sort column, h help.\n",
		       xbd_help_prefix && !*xbd_help_prefix ? "" : "xbdsh ");
		return 0;
	}
	if (st)
		return st;
	screen = !o.batch && isatty(STDOUT_FILENO);
	/* a first look, to measure the first rates against */
	if (frame_take(ctx, &prev))
		return 1;
	sh_watchdog(false);
	if (!sh_interrupted)
		usleep(TOP_FIRST_MS * 1000);
	sh_watchdog(true);
	if (screen)
		term_enter(&t);
	for (;;) {
		uint64_t due;

		if (frame_take(ctx, &cur)) {
			st = 1;
			break;
		}
		free(rows);
		rows = build_rows(&cur, &prev, o.sort, &n);
		if (screen)
			draw(&t, &cur, rows, n, &o, NULL);
		else
			print_batch(&cur, rows, n, &o);
		frames++;
		if ((o.iterations && frames >= o.iterations) || sh_interrupted) {
			frame_free(&prev);
			prev = cur;
			break;
		}
		sh_watchdog(false); /* waiting for the user is not stuck */
		due = xbd_now_ns() + (uint64_t)(o.delay_s * 1e9);
		for (;;) {
			struct pollfd pfd = { .fd = STDIN_FILENO, .events = POLLIN };
			uint64_t now = xbd_now_ns();
			int r, ms = now >= due ? 0 : (int)((due - now) / 1000000) + 1;
			char keys[16];
			ssize_t k, got;

			if (!screen || !t.raw) {
				if (poll(NULL, 0, ms) < 0 && errno == EINTR &&
				    !sh_interrupted)
					continue;
				break;
			}
			r = poll(&pfd, 1, ms);
			if (sh_interrupted) {
				quit = 1;
				break;
			}
			if (r < 0 && errno == EINTR) {
				if (resized) {
					resized = 0;
					term_size(&t);
					draw(&t, &cur, rows, n, &o, NULL);
				}
				continue;
			}
			if (r <= 0)
				break; /* time for the next refresh */
			/* one key at a time: `d` reads the keys after it */
			got = read(STDIN_FILENO, keys, 1);
			for (k = 0; k < got && !quit; k++) {
				enum top_col before = o.sort;

				quit = on_key(keys[k], &t, &cur, rows, n, &o);
				if (o.sort != before) {
					free(rows);
					rows = build_rows(&cur, &prev, o.sort, &n);
				}
			}
			if (quit)
				break;
			if (resized) {
				resized = 0;
				term_size(&t);
			}
			draw(&t, &cur, rows, n, &o, NULL);
		}
		sh_watchdog(true);
		frame_free(&prev);
		prev = cur;
		if (quit || sh_interrupted)
			break;
	}
	if (screen)
		term_leave(&t);
	free(rows);
	frame_free(&prev);
	return st;
}

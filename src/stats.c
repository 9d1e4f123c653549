/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Per-device counters (include/xbd/stats.h).  These run on the data path
 * once or twice per request, so they use relaxed atomics only: no lock,
 * no system call, no ordering between counters (a reader wants a recent
 * value of each, not a consistent snapshot of all).
 */
#include "xbd/stats.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>

static const char *const op_names[XBD_OP_COUNT] = {
	[XBD_OP_READ] = "read",
	[XBD_OP_WRITE] = "write",
	[XBD_OP_FLUSH] = "flush",
	[XBD_OP_BARRIER] = "barrier",
	[XBD_OP_DISCARD] = "discard",
};

static const char *const error_names[XBD_ERR_COUNT] = {
	[XBD_ERR_BAD_REQUEST] = "bad_request",
	[XBD_ERR_BAD_GRANT] = "bad_grant",
	[XBD_ERR_IO] = "io",
	[XBD_ERR_PROTOCOL] = "protocol",
	[XBD_ERR_READ_ONLY] = "read_only",
};

/* Set by xbd_stats_default_off(); read when a device is set up. */
static atomic_bool timing_forced_off;

bool xbd_stats_default_enabled(void)
{
	static const char *const off_words[] = { "off", "0", "no", "false" };
	const char *v;
	size_t i;

	if (atomic_load_explicit(&timing_forced_off, memory_order_relaxed))
		return false;
	v = getenv("XBD_STATS");
	for (i = 0; v && i < XBD_ARRAY_SIZE(off_words); i++)
		if (!strcasecmp(v, off_words[i]))
			return false;
	return true;
}

void xbd_stats_default_off(void)
{
	atomic_store_explicit(&timing_forced_off, true, memory_order_relaxed);
}

void xbd_stats_init(struct xbd_stats *s)
{
	/* Nobody else sees the struct yet: plain stores are enough. */
	memset(s, 0, sizeof(*s));
	s->enabled = XBD_COUNTING && xbd_stats_default_enabled();
}

/* Raises *max to at least v; relaxed, like every counter here. */
static void stat_raise_max(_Atomic uint64_t *max, uint64_t v)
{
	uint64_t cur = atomic_load_explicit(max, memory_order_relaxed);

	while (v > cur &&
	       !atomic_compare_exchange_weak_explicit(max, &cur, v,
						      memory_order_relaxed,
						      memory_order_relaxed))
		;
}

void xbd_stats_inflight_add(struct xbd_stats *s, uint64_t n)
{
	if (!XBD_COUNTING)
		return;
	uint64_t now = atomic_fetch_add_explicit(&s->in_flight, n,
						 memory_order_relaxed) + n;

	stat_raise_max(&s->in_flight_max, now);
}

void xbd_stats_inflight_inc(struct xbd_stats *s)
{
	xbd_stats_inflight_add(s, 1);
}

void xbd_stats_inflight_sub(struct xbd_stats *s, uint64_t n)
{
	if (XBD_COUNTING)
		atomic_fetch_sub_explicit(&s->in_flight, n, memory_order_relaxed);
}

void xbd_stats_inflight_dec(struct xbd_stats *s)
{
	xbd_stats_inflight_sub(s, 1);
}

void xbd_stats_complete(struct xbd_stats *s, enum xbd_stat_op op,
			uint64_t sectors, uint64_t latency_ns)
{
	struct xbd_latency_hist *h;

	if (!XBD_COUNTING || (unsigned)op >= XBD_OP_COUNT)
		return;
	xbd_stat_add(&s->reqs[op], 1);
	if (sectors)
		xbd_stat_add(&s->sectors[op], sectors);
	if (!s->enabled)
		return;
	h = &s->latency[op];
	xbd_stat_add(&h->bucket[xbd_latency_bucket(latency_ns)], 1);
	xbd_stat_add(&h->total_ns, latency_ns);
	stat_raise_max(&h->max_ns, latency_ns);
}

/* Latencies of one batch, summed per op, and the histogram buckets they
 * fell in (a batch usually touches few). */
#define BATCH_BUCKETS 16

void xbd_stats_complete_batch(struct xbd_stats *s,
			      const struct xbd_stats_done *done, unsigned n,
			      uint64_t now)
{
	struct {
		uint64_t reqs, sectors, total_ns, max_ns;
	} sum[XBD_OP_COUNT] = { { 0 } };
	struct {
		unsigned op, bucket;
		uint64_t count;
	} tally[BATCH_BUCKETS];
	unsigned ntally = 0, i, j;

	if (!XBD_COUNTING || n == 0)
		return;
	for (i = 0; i < n; i++) {
		unsigned op = done[i].op, b;
		uint64_t lat;

		if (op >= XBD_OP_COUNT)
			continue;
		sum[op].reqs++;
		sum[op].sectors += done[i].sectors;
		if (!s->enabled)
			continue;
		lat = done[i].start_ns && now > done[i].start_ns ?
			      now - done[i].start_ns : 0;
		sum[op].total_ns += lat;
		if (lat > sum[op].max_ns)
			sum[op].max_ns = lat;
		b = xbd_latency_bucket(lat);
		for (j = 0; j < ntally; j++)
			if (tally[j].op == op && tally[j].bucket == b)
				break;
		if (j < ntally)
			tally[j].count++;
		else if (ntally < BATCH_BUCKETS)
			tally[ntally++] = (typeof(tally[0])){ op, b, 1 };
		else
			xbd_stat_add(&s->latency[op].bucket[b], 1);
	}
	for (i = 0; i < XBD_OP_COUNT; i++) {
		if (!sum[i].reqs)
			continue;
		xbd_stat_add(&s->reqs[i], sum[i].reqs);
		if (sum[i].sectors)
			xbd_stat_add(&s->sectors[i], sum[i].sectors);
		if (!s->enabled)
			continue;
		xbd_stat_add(&s->latency[i].total_ns, sum[i].total_ns);
		stat_raise_max(&s->latency[i].max_ns, sum[i].max_ns);
	}
	for (j = 0; j < ntally; j++)
		xbd_stat_add(&s->latency[tally[j].op].bucket[tally[j].bucket],
			     tally[j].count);
}

uint64_t xbd_latency_count(const struct xbd_latency_hist *h)
{
	uint64_t n = 0;
	unsigned i;

	for (i = 0; i < XBD_LAT_BUCKETS; i++)
		n += atomic_load_explicit(&h->bucket[i], memory_order_relaxed);
	return n;
}

uint64_t xbd_latency_percentile_of(const uint64_t *buckets, uint64_t max_ns,
				   double pct)
{
	uint64_t total = 0, seen = 0, rank, mid;
	double exact;
	unsigned i;

	for (i = 0; i < XBD_LAT_BUCKETS; i++)
		total += buckets[i];
	if (total == 0)
		return 0;
	if (pct < 0)
		pct = 0;
	if (pct > 100)
		pct = 100;
	/* The rank-th smallest latency, 1-based: the nearest-rank method. */
	exact = pct / 100.0 * (double)total;
	rank = (uint64_t)exact;
	if ((double)rank < exact)
		rank++;
	if (rank < 1)
		rank = 1;
	if (rank > total)
		rank = total;
	for (i = 0; i < XBD_LAT_BUCKETS - 1; i++) {
		seen += buckets[i];
		if (seen >= rank)
			break;
	}
	/* the middle halves the worst error; a one-ns bucket is exact */
	mid = xbd_latency_bucket_lower(i) +
	      (xbd_latency_bucket_limit(i) - xbd_latency_bucket_lower(i)) / 2;
	if (i == XBD_LAT_BUCKETS - 1 || mid > max_ns)
		return max_ns;
	return mid;
}

uint64_t xbd_latency_percentile(const struct xbd_latency_hist *h, double pct)
{
	uint64_t snap[XBD_LAT_BUCKETS];
	unsigned i;

	/* Work on one copy: the data path keeps counting meanwhile. */
	for (i = 0; i < XBD_LAT_BUCKETS; i++)
		snap[i] = atomic_load_explicit(&h->bucket[i],
					       memory_order_relaxed);
	return xbd_latency_percentile_of(
		snap, atomic_load_explicit(&h->max_ns, memory_order_relaxed), pct);
}

const char *xbd_stat_op_name(enum xbd_stat_op op)
{
	return (unsigned)op < XBD_OP_COUNT ? op_names[op] : NULL;
}

const char *xbd_stat_error_name(enum xbd_stat_error e)
{
	return (unsigned)e < XBD_ERR_COUNT ? error_names[e] : NULL;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Per-device counters kept by every xbd device, served or attached.
 * Updated on the data path with relaxed atomics (no ordering is needed:
 * readers only want a recent value of each counter), read by the control
 * socket (src/ctl.c) and turned into JSON for xbdsh.
 */
#ifndef XBD_STATS_H
#define XBD_STATS_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

#include "xbd/common.h"

enum xbd_stat_op {
	XBD_OP_READ,
	XBD_OP_WRITE,
	XBD_OP_FLUSH,
	XBD_OP_BARRIER,
	XBD_OP_DISCARD,
	XBD_OP_COUNT
};

enum xbd_stat_error {
	XBD_ERR_BAD_REQUEST,  /* malformed request (op, segments, sectors) */
	XBD_ERR_BAD_GRANT,    /* grant map/copy refused */
	XBD_ERR_IO,           /* the image failed the I/O */
	XBD_ERR_PROTOCOL,     /* broken ring: producer overflow, bad response */
	XBD_ERR_READ_ONLY,    /* write/discard on a read-only device */
	XBD_ERR_COUNT
};

/*
 * Log-linear latency buckets (as HdrHistogram): 16 buckets per power of
 * two, so a bucket is at most 1/16 of its lower bound wide and a
 * percentile read from its middle is within about 3% of the truth.
 * Latencies below 32 ns have a bucket each.  From 2^e ns (e >= 4) the
 * bucket index is (e - 3) * 16 + the four bits after the leading one.
 * The last bucket (from 2^XBD_LAT_MAX_LOG2 ns, ~69 s) also takes
 * everything longer.
 */
#define XBD_LAT_SUB_BITS 4
#define XBD_LAT_SUB (1u << XBD_LAT_SUB_BITS)
#define XBD_LAT_MAX_LOG2 36
#define XBD_LAT_BUCKETS ((XBD_LAT_MAX_LOG2 - XBD_LAT_SUB_BITS + 2) * XBD_LAT_SUB)

struct xbd_latency_hist {
	_Atomic uint64_t bucket[XBD_LAT_BUCKETS];
	_Atomic uint64_t max_ns;
	_Atomic uint64_t total_ns;
};

/*
 * The counters are grouped by who writes them, each group on cache lines
 * of its own (the pads), so that a frontend's submitting threads and its
 * completion thread do not pull one line back and forth between CPUs on
 * every request: "start" is written where requests are put on or taken
 * off the ring, "end" where they are answered.  in_flight is written by
 * both in a backend (+n per batch taken, -n per batch answered, both on
 * the queue's ring thread); a frontend counts requests in flight under
 * its own lock and stores them here when asked.
 */
struct xbd_stats {
	/* start */
	_Atomic uint64_t in_flight;
	_Atomic uint64_t in_flight_max;
	_Atomic uint64_t indirect_reqs;         /* requests that were indirect */
	_Atomic uint64_t ring_full;      /* "OO": no free ring slot / request */
	_Atomic uint64_t notify_sent;
	_Atomic uint64_t notify_suppressed; /* event index said no need */
	char pad_start[64];
	/* end */
	_Atomic uint64_t reqs[XBD_OP_COUNT];    /* completed requests by op */
	_Atomic uint64_t sectors[XBD_OP_COUNT]; /* 512-byte sectors by op */
	_Atomic uint64_t notify_received;
	_Atomic uint64_t errors[XBD_ERR_COUNT];
	struct xbd_latency_hist latency[XBD_OP_COUNT];
	char pad_end[64];
	/* rarely written */
	_Atomic uint64_t pgrants_in_use;    /* persistent grants mapped/held */
	_Atomic uint64_t pgrants_max;       /* pool size (0: none) */
	bool enabled; /* false: the data path skips latency timing (and
		       * the histograms stay empty); set before I/O starts */
};

/*
 * XBD_NO_COUNTERS: a build with every counter update and every latency
 * clock read compiled out, made only by tests/bench/counters.sh to
 * measure what keeping the counters costs against nothing at all
 * (make B=DIR CPPFLAGS=-DXBD_NO_COUNTERS).  Never shipped: its devices
 * report stats_enabled false and counters that stay 0.
 */
#ifdef XBD_NO_COUNTERS
#define XBD_COUNTING 0
#else
#define XBD_COUNTING 1
#endif

static inline void xbd_stat_add(_Atomic uint64_t *c, uint64_t n)
{
	if (XBD_COUNTING)
		atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

/* For a counter whose writers all hold one lock (a frontend's "start"
 * counters, under its lock): a plain read and write, no atomic
 * addition; readers elsewhere still see whole values. */
static inline void xbd_stat_add_serialised(_Atomic uint64_t *c, uint64_t n)
{
	if (XBD_COUNTING)
		atomic_store_explicit(c, atomic_load_explicit(c, memory_order_relaxed) + n,
				      memory_order_relaxed);
}

static inline uint64_t xbd_stat_get(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* src/stats.c */
/* Zeroes every counter; enabled = xbd_stats_default_enabled(). */
void xbd_stats_init(struct xbd_stats *s);
/* Whether the devices this process sets up time their requests: false
 * when $XBD_STATS is "off" (also "0", "no", "false") or after
 * xbd_stats_default_off(), else true.  The environment variable reaches
 * every xbd process (serve, attach, the sim's guest and blkback); the
 * plain counters are kept either way. */
bool xbd_stats_default_enabled(void);
/* Latency timing off for every device set up from now on, whatever the
 * environment says (`xbd serve --no-stats`).  Call before I/O starts. */
void xbd_stats_default_off(void);
/* In flight: inc also raises in_flight_max when the new value is higher. */
void xbd_stats_inflight_inc(struct xbd_stats *s);
void xbd_stats_inflight_dec(struct xbd_stats *s);
/* n requests enter or leave flight at once (one addition or
 * subtraction; add raises the maximum to the new value). */
void xbd_stats_inflight_add(struct xbd_stats *s, uint64_t n);
void xbd_stats_inflight_sub(struct xbd_stats *s, uint64_t n);
/* One completed request: counts it and its sectors; when s->enabled, also
 * its latency (histogram bucket, total, max).  Does not touch in_flight. */
void xbd_stats_complete(struct xbd_stats *s, enum xbd_stat_op op,
			uint64_t sectors, uint64_t latency_ns);
/* One answered request, for xbd_stats_complete_batch(). */
struct xbd_stats_done {
	uint64_t start_ns;        /* its begin time (0: not timed) */
	uint64_t sectors;         /* 512-byte sectors transferred */
	enum xbd_stat_op op;
};
/* Counts n answered requests as xbd_stats_complete() would, all ended
 * at `now`, but sums them first and adds the sums to the shared
 * counters: a few atomic additions per batch instead of five or six per
 * request.  Does not touch in_flight. */
void xbd_stats_complete_batch(struct xbd_stats *s,
			      const struct xbd_stats_done *done, unsigned n,
			      uint64_t now);
/* Percentile (0..100) of a histogram, in ns: the middle of the bucket
 * holding it (nearest rank), never above max_ns. 0 when empty. */
uint64_t xbd_latency_percentile(const struct xbd_latency_hist *h, double pct);
/* The same over a copy of the bucket counts (XBD_LAT_BUCKETS of them),
 * as xbdsh holds them: several percentiles from one snapshot. */
uint64_t xbd_latency_percentile_of(const uint64_t *buckets, uint64_t max_ns,
				   double pct);
/* Requests counted in the histogram (sum of its buckets). */
uint64_t xbd_latency_count(const struct xbd_latency_hist *h);

/* Bucket of a latency (see XBD_LAT_BUCKETS), capped at the last. */
static inline unsigned xbd_latency_bucket(uint64_t ns)
{
	unsigned e;

	if (ns < 2 * XBD_LAT_SUB)
		return (unsigned)ns;
	e = 63u - (unsigned)__builtin_clzll(ns);
	if (e > XBD_LAT_MAX_LOG2)
		return XBD_LAT_BUCKETS - 1;
	return (e - XBD_LAT_SUB_BITS + 1) * XBD_LAT_SUB +
	       (unsigned)((ns >> (e - XBD_LAT_SUB_BITS)) & (XBD_LAT_SUB - 1));
}

/* Lowest latency of bucket i, in ns. */
static inline uint64_t xbd_latency_bucket_lower(unsigned i)
{
	unsigned e;

	if (i < 2 * XBD_LAT_SUB)
		return i;
	e = i / XBD_LAT_SUB + XBD_LAT_SUB_BITS - 1;
	return (uint64_t)(XBD_LAT_SUB + i % XBD_LAT_SUB) << (e - XBD_LAT_SUB_BITS);
}

/* Exclusive upper bound of bucket i in ns (the next one's lower bound;
 * for the last, the bound it would have). */
static inline uint64_t xbd_latency_bucket_limit(unsigned i)
{
	unsigned e;

	if (i < 2 * XBD_LAT_SUB)
		return (uint64_t)i + 1;
	e = i / XBD_LAT_SUB + XBD_LAT_SUB_BITS - 1;
	return xbd_latency_bucket_lower(i) + ((uint64_t)1 << (e - XBD_LAT_SUB_BITS));
}

/* "read", "write", ...; "bad_request", "io", ...: the names used in the
 * JSON document and the Prometheus labels.  NULL when out of range. */
const char *xbd_stat_op_name(enum xbd_stat_op op);
const char *xbd_stat_error_name(enum xbd_stat_error e);

/*
 * The data path's two calls per request.  begin() counts the request in
 * flight and returns its start time (0 when timing is off); end() takes
 * it out of flight and completes it.  Typical use:
 *	req->t0 = xbd_stats_begin(&dev->stats);
 *	... I/O ...
 *	xbd_stats_end(&dev->stats, XBD_OP_READ, nr_sectors, req->t0);
 * Reading the clock is most of the cost (~20 ns each time): a loop that
 * takes or answers a batch of requests reads it once with xbd_stats_now()
 * and passes it to the _at variants.
 */
static inline uint64_t xbd_stats_now(const struct xbd_stats *s)
{
	return XBD_COUNTING && s->enabled ? (uint64_t)xbd_now_ns() : 0;
}

static inline uint64_t xbd_stats_begin_at(struct xbd_stats *s, uint64_t now)
{
	xbd_stats_inflight_inc(s);
	return now;
}

static inline uint64_t xbd_stats_begin(struct xbd_stats *s)
{
	return xbd_stats_begin_at(s, xbd_stats_now(s));
}

static inline void xbd_stats_end_at(struct xbd_stats *s, enum xbd_stat_op op,
				    uint64_t sectors, uint64_t start_ns,
				    uint64_t now)
{
	xbd_stats_inflight_dec(s);
	xbd_stats_complete(s, op, sectors,
			   start_ns && now > start_ns ? now - start_ns : 0);
}

/* The batch form of xbd_stats_end_at(): n requests out of flight and
 * counted. */
static inline void xbd_stats_end_batch(struct xbd_stats *s,
				       const struct xbd_stats_done *done,
				       unsigned n, uint64_t now)
{
	xbd_stats_inflight_sub(s, n);
	xbd_stats_complete_batch(s, done, n, now);
}

static inline void xbd_stats_end(struct xbd_stats *s, enum xbd_stat_op op,
				 uint64_t sectors, uint64_t start_ns)
{
	xbd_stats_end_at(s, op, sectors, start_ns, xbd_stats_now(s));
}

#endif

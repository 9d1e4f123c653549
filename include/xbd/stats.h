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

/* log2 latency buckets: bucket i counts latencies in [2^i, 2^(i+1)) ns;
 * bucket 0 also takes 0 ns. 40 buckets reach ~18 minutes. */
#define XBD_LAT_BUCKETS 40

struct xbd_latency_hist {
	_Atomic uint64_t bucket[XBD_LAT_BUCKETS];
	_Atomic uint64_t max_ns;
	_Atomic uint64_t total_ns;
};

struct xbd_stats {
	_Atomic uint64_t reqs[XBD_OP_COUNT];    /* completed requests by op */
	_Atomic uint64_t sectors[XBD_OP_COUNT]; /* 512-byte sectors by op */
	_Atomic uint64_t indirect_reqs;         /* requests that were indirect */
	_Atomic uint64_t in_flight;
	_Atomic uint64_t in_flight_max;
	_Atomic uint64_t ring_full;      /* "OO": no free ring slot / request */
	_Atomic uint64_t notify_sent;
	_Atomic uint64_t notify_received;
	_Atomic uint64_t notify_suppressed; /* event index said no need */
	_Atomic uint64_t errors[XBD_ERR_COUNT];
	_Atomic uint64_t pgrants_in_use;    /* persistent grants mapped/held */
	_Atomic uint64_t pgrants_max;       /* pool size (0: none) */
	struct xbd_latency_hist latency[XBD_OP_COUNT];
	bool enabled; /* false: the data path skips latency timing */
};

static inline void xbd_stat_add(_Atomic uint64_t *c, uint64_t n)
{
	atomic_fetch_add_explicit(c, n, memory_order_relaxed);
}

static inline uint64_t xbd_stat_get(_Atomic uint64_t *c)
{
	return atomic_load_explicit(c, memory_order_relaxed);
}

/* src/stats.c */
void xbd_stats_init(struct xbd_stats *s);
void xbd_stats_inflight_inc(struct xbd_stats *s);
void xbd_stats_inflight_dec(struct xbd_stats *s);
/* One completed request: counts it, its sectors and its latency. */
void xbd_stats_complete(struct xbd_stats *s, enum xbd_stat_op op,
			uint64_t sectors, uint64_t latency_ns);
/* Percentile (0..100) of a histogram, in ns: the upper bound of the
 * bucket holding it. 0 when empty. */
uint64_t xbd_latency_percentile(const struct xbd_latency_hist *h, double pct);
const char *xbd_stat_op_name(enum xbd_stat_op op);
const char *xbd_stat_error_name(enum xbd_stat_error e);

#endif

/*
 * Bench-only stand-in for a counters switch, for as long as xbd has none
 * of its own.  tests/bench/counters.sh links it into a copy of xbd with
 * -Wl,--wrap=... (see there); the xbd that `make` builds never has it.
 *
 * With XBD_STATS=off in the environment, every device's stats start
 * with enabled = false (no latency timing: no clock reads, no
 * histogram), and the out-of-line counting calls (in flight, per-op
 * requests and sectors) return at once.  What stays is what is inlined
 * into the data path: the relaxed adds for notifications, errors,
 * ring-full and indirect requests.  So "off" here is an upper bound of
 * what a real switch could save.
 */
#include "xbd/stats.h"

#include <stdlib.h>
#include <string.h>

void __real_xbd_stats_init(struct xbd_stats *s);
void __real_xbd_stats_inflight_inc(struct xbd_stats *s);
void __real_xbd_stats_inflight_dec(struct xbd_stats *s);
void __real_xbd_stats_complete(struct xbd_stats *s, enum xbd_stat_op op,
			       uint64_t sectors, uint64_t latency_ns);
void __wrap_xbd_stats_init(struct xbd_stats *s);
void __wrap_xbd_stats_inflight_inc(struct xbd_stats *s);
void __wrap_xbd_stats_inflight_dec(struct xbd_stats *s);
void __wrap_xbd_stats_complete(struct xbd_stats *s, enum xbd_stat_op op,
			       uint64_t sectors, uint64_t latency_ns);

void __wrap_xbd_stats_init(struct xbd_stats *s)
{
	const char *v = getenv("XBD_STATS");

	__real_xbd_stats_init(s);
	if (v && !strcmp(v, "off"))
		s->enabled = false;
}

void __wrap_xbd_stats_inflight_inc(struct xbd_stats *s)
{
	if (s->enabled)
		__real_xbd_stats_inflight_inc(s);
}

void __wrap_xbd_stats_inflight_dec(struct xbd_stats *s)
{
	if (s->enabled)
		__real_xbd_stats_inflight_dec(s);
}

void __wrap_xbd_stats_complete(struct xbd_stats *s, enum xbd_stat_op op,
			       uint64_t sectors, uint64_t latency_ns)
{
	if (s->enabled)
		__real_xbd_stats_complete(s, op, sectors, latency_ns);
}

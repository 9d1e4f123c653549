/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Bench-only: what counting one request costs, in ns, measured on the
 * real functions of include/xbd/stats.h and src/stats.c (linked from
 * libxbd.a).  tests/bench/counters.sh builds and runs it, and relates
 * the figures to the CPU time per I/O that it measures on the sim; that
 * estimate does not depend on a switch, nor much on other load.
 *
 * Per request, as the data path does it now on each side, from one
 * thread, with answers counted in batches of BATCH:
 *   count_frontend:  a start time read per request, a notification
 *                 counter, and its share of the batch's clock read and
 *                 xbd_stats_complete_batch (src/frontend_io.c);
 *   count_backend:   its share of the batch's two clock reads, in-flight
 *                 addition, xbd_stats_end_batch and notification counter
 *                 (src/backend_io.c);
 *   the same two with enabled = false (no latency timing);
 *   clock_read:   one xbd_now_ns() alone.
 * Each is timed in the thread's own CPU time and is the best of several
 * rounds (the least disturbed by other load).  Not measured: cache lines moving between the CPUs when two
 * threads count on one struct (a frontend's submitter and completion
 * thread); spinning threads measure the scheduler, not that, on a busy
 * 2-CPU machine.  Prints "name ns" lines.
 */
#include "xbd/common.h"
#include "xbd/stats.h"

#include <stdio.h>
#include <time.h>

#define N 1000000u
#define ROUNDS 7

static struct xbd_stats st;

/* This thread's CPU time: time spent preempted by other load is not
 * counted. */
static unsigned long long cpu_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

#define BATCH 8 /* answers counted together (QD32 sees 4 to 16) */

/* The frontend, per request as src/frontend_io.c counts it: its start
 * time read at submit, a notification counter, and its share of the
 * completion thread's batch (one clock read, xbd_stats_complete_batch). */
static void count_frontend_batch(struct xbd_stats *s)
{
	struct xbd_stats_done done[BATCH];
	uint64_t now;
	unsigned i;

	for (i = 0; i < BATCH; i++) {
		done[i] = (struct xbd_stats_done){ .start_ns = xbd_stats_now(s),
						   .sectors = 8, .op = XBD_OP_READ };
		xbd_stat_add_serialised(&s->notify_suppressed, 1); /* under its lock */
	}
	now = xbd_stats_now(s);
	xbd_stats_complete_batch(s, done, BATCH, now);
}

/* The backend, per batch as src/backend_io.c counts it: one clock read
 * when the batch is taken, one in-flight addition, one clock read and
 * xbd_stats_end_batch at the push, a notification counter. */
static void count_backend_batch(struct xbd_stats *s)
{
	struct xbd_stats_done done[BATCH];
	uint64_t taken = xbd_stats_now(s), now;
	unsigned i;

	xbd_stats_inflight_add(s, BATCH);
	for (i = 0; i < BATCH; i++)
		done[i] = (struct xbd_stats_done){ .start_ns = taken, .sectors = 8,
						   .op = XBD_OP_READ };
	now = xbd_stats_now(s);
	xbd_stats_end_batch(s, done, BATCH, now);
	xbd_stat_add(&s->notify_suppressed, 1);
}

static double count_side(void (*batch)(struct xbd_stats *), bool enabled)
{
	unsigned long long t0, t1;
	unsigned i;

	xbd_stats_init(&st);
	st.enabled = enabled;
	t0 = cpu_now();
	for (i = 0; i < N / BATCH; i++)
		batch(&st);
	t1 = cpu_now();
	return (double)(t1 - t0) / (N / BATCH * BATCH);
}

static double count_fe(bool enabled)
{
	return count_side(count_frontend_batch, enabled);
}

static double count_be(bool enabled)
{
	return count_side(count_backend_batch, enabled);
}

static double clock_read(bool unused)
{
	unsigned long long t0, t1, sink = 0;
	unsigned i;

	(void)unused;
	t0 = cpu_now();
	for (i = 0; i < N; i++)
		sink += xbd_now_ns();
	t1 = cpu_now();
	if (sink == 1)
		puts("");
	return (double)(t1 - t0) / N;
}

static double best(double (*f)(bool), bool arg)
{
	double b = f(arg), v;
	unsigned i;

	for (i = 1; i < ROUNDS; i++) {
		v = f(arg);
		if (v < b)
			b = v;
	}
	return b;
}

int main(void)
{
	printf("clock_read %.1f\n", best(clock_read, false));
	printf("count_frontend %.1f\n", best(count_fe, true));
	printf("count_backend %.1f\n", best(count_be, true));
	printf("count_frontend_timing_off %.1f\n", best(count_fe, false));
	printf("count_backend_timing_off %.1f\n", best(count_be, false));
	return 0;
}

/*
 * Bench-only: what counting one request costs, in ns, measured on the
 * real functions of include/xbd/stats.h and src/stats.c (linked from
 * libxbd.a).  tests/bench/counters.sh builds and runs it, and relates
 * the figures to the CPU time per I/O that it measures on the sim; that
 * estimate does not depend on a switch, nor much on other load.
 *
 * Per request, as the data path does it on each side (backend and
 * frontend): begin (clock read, in flight +1, raise the max), end (clock
 * read, in flight -1, requests and sectors by op, histogram bucket,
 * total, max) and one notification counter, from one thread:
 *   count:        all of it;
 *   count_timing_off:  the same with enabled = false (what is left
 *                 without latency timing);
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

static inline void count_one(struct xbd_stats *s)
{
	uint64_t t0 = xbd_stats_begin(s);

	xbd_stats_end(s, XBD_OP_READ, 8, t0);
	xbd_stat_add(&s->notify_suppressed, 1);
}

static double count(bool enabled)
{
	unsigned long long t0, t1;
	unsigned i;

	xbd_stats_init(&st);
	st.enabled = enabled;
	t0 = cpu_now();
	for (i = 0; i < N; i++)
		count_one(&st);
	t1 = cpu_now();
	return (double)(t1 - t0) / N;
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
	printf("count %.1f\n", best(count, true));
	printf("count_timing_off %.1f\n", best(count, false));
	return 0;
}

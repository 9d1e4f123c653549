/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit test of the per-device counters (src/stats.c): exact counts after a
 * known workload, histogram totals, a batch of answers counted as the same
 * answers one by one, percentiles, in-flight maximum under
 * concurrent updates, timing switched off (by hand, by $XBD_STATS and by
 * xbd_stats_default_off), names.
 */
#include "tests/lib/check.h"
#include "xbd/stats.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>


static uint64_t hist_sum(const struct xbd_stats *s)
{
	uint64_t n = 0;
	unsigned op;

	for (op = 0; op < XBD_OP_COUNT; op++)
		n += xbd_latency_count(&s->latency[op]);
	return n;
}

static uint64_t req_sum(struct xbd_stats *s)
{
	uint64_t n = 0;
	unsigned op;

	for (op = 0; op < XBD_OP_COUNT; op++)
		n += xbd_stat_get(&s->reqs[op]);
	return n;
}

static void test_known_workload(void)
{
	static struct xbd_stats s;
	unsigned i;

	xbd_stats_init(&s);
	CHECK(s.enabled);
	for (i = 0; i < 1000; i++) {
		uint64_t t0 = xbd_stats_begin(&s);

		CHECK(t0 != 0);
		xbd_stats_end(&s, XBD_OP_READ, 8, t0);
	}
	for (i = 0; i < 10; i++)
		xbd_stats_complete(&s, XBD_OP_FLUSH, 0, 5000);
	xbd_stats_complete(&s, XBD_OP_WRITE, 16, 1);

	CHECK_EQ(xbd_stat_get(&s.reqs[XBD_OP_READ]), 1000);
	CHECK_EQ(xbd_stat_get(&s.sectors[XBD_OP_READ]), 8000);
	CHECK_EQ(xbd_stat_get(&s.reqs[XBD_OP_WRITE]), 1);
	CHECK_EQ(xbd_stat_get(&s.sectors[XBD_OP_WRITE]), 16);
	CHECK_EQ(xbd_stat_get(&s.reqs[XBD_OP_FLUSH]), 10);
	CHECK_EQ(xbd_stat_get(&s.sectors[XBD_OP_FLUSH]), 0);
	CHECK_EQ(xbd_stat_get(&s.reqs[XBD_OP_DISCARD]), 0);
	CHECK_EQ(xbd_latency_count(&s.latency[XBD_OP_READ]), 1000);
	CHECK_EQ(xbd_latency_count(&s.latency[XBD_OP_FLUSH]), 10);
	CHECK_EQ(hist_sum(&s), req_sum(&s));
	CHECK_EQ(xbd_stat_get(&s.in_flight), 0);
	CHECK_EQ(xbd_stat_get(&s.in_flight_max), 1);
	CHECK_EQ(xbd_stat_get(&s.latency[XBD_OP_FLUSH].total_ns), 50000);
	CHECK_EQ(xbd_stat_get(&s.latency[XBD_OP_FLUSH].max_ns), 5000);
	/* every flush took 5000 ns: bucket [4864, 5120), its middle */
	CHECK_EQ(xbd_latency_percentile(&s.latency[XBD_OP_FLUSH], 50), 4992);
	CHECK_EQ(s.latency[XBD_OP_FLUSH].bucket[xbd_latency_bucket(5000)], 10);
}

static void test_percentiles(void)
{
	static struct xbd_stats s;
	struct xbd_latency_hist *h = &s.latency[XBD_OP_WRITE];
	unsigned i;

	xbd_stats_init(&s);
	CHECK_EQ(xbd_latency_percentile(h, 50), 0); /* empty */
	for (i = 0; i < 900; i++)
		xbd_stats_complete(&s, XBD_OP_WRITE, 8, 1000);     /* [512,1024) */
	for (i = 0; i < 90; i++)
		xbd_stats_complete(&s, XBD_OP_WRITE, 8, 100000);   /* [65536,131072) */
	for (i = 0; i < 10; i++)
		xbd_stats_complete(&s, XBD_OP_WRITE, 8, 10000000); /* [2^23,2^24) */
	CHECK_EQ(xbd_latency_count(h), 1000);
	/* the middles of [992, 1024) and [98304, 102400) */
	CHECK_EQ(xbd_latency_percentile(h, 0), 1008);
	CHECK_EQ(xbd_latency_percentile(h, 50), 1008);
	CHECK_EQ(xbd_latency_percentile(h, 90), 1008);   /* rank 900 */
	CHECK_EQ(xbd_latency_percentile(h, 90.1), 100352);
	CHECK_EQ(xbd_latency_percentile(h, 99), 100352); /* rank 990 */
	CHECK_EQ(xbd_latency_percentile(h, 99.9), 10000000); /* capped: max */
	CHECK_EQ(xbd_latency_percentile(h, 100), 10000000);
	CHECK_EQ(xbd_latency_percentile(h, 150), 10000000);
	CHECK_EQ(xbd_stat_get(&h->max_ns), 10000000);
	CHECK(xbd_latency_percentile(h, 50) <= xbd_latency_percentile(h, 90));
	CHECK(xbd_latency_percentile(h, 90) <= xbd_latency_percentile(h, 99));
	CHECK(xbd_latency_percentile(h, 99) <= xbd_stat_get(&h->max_ns));
}

static void test_buckets(void)
{
	uint64_t ns;
	unsigned i;

	CHECK_EQ(xbd_latency_bucket(0), 0);
	CHECK_EQ(xbd_latency_bucket(1), 1);
	CHECK_EQ(xbd_latency_bucket(31), 31);
	CHECK_EQ(xbd_latency_bucket(32), 32);
	CHECK_EQ(xbd_latency_bucket(33), 32);  /* [32, 34) */
	CHECK_EQ(xbd_latency_bucket(34), 33);
	CHECK_EQ(xbd_latency_bucket(1023), 6 * 16 + 15);
	CHECK_EQ(xbd_latency_bucket(1024), 7 * 16);
	CHECK_EQ(xbd_latency_bucket(UINT64_MAX), XBD_LAT_BUCKETS - 1);
	CHECK_EQ(xbd_latency_bucket((uint64_t)1 << XBD_LAT_MAX_LOG2 << 1),
		 XBD_LAT_BUCKETS - 1);
	CHECK_EQ(xbd_latency_bucket_limit(0), 1);
	CHECK_EQ(xbd_latency_bucket_lower(7 * 16), 1024);
	CHECK_EQ(xbd_latency_bucket_limit(6 * 16 + 15), 1024);
	/* contiguous, each one at most 1/16 of its lower bound wide, and
	 * every latency in its bucket */
	for (i = 0; i + 1 < XBD_LAT_BUCKETS; i++) {
		CHECK_EQ(xbd_latency_bucket_limit(i), xbd_latency_bucket_lower(i + 1));
		CHECK(xbd_latency_bucket_limit(i) - xbd_latency_bucket_lower(i) <=
		      (xbd_latency_bucket_lower(i) < 32 ? 1 :
		       xbd_latency_bucket_lower(i) / 16));
		CHECK_EQ(xbd_latency_bucket(xbd_latency_bucket_lower(i)), i);
		CHECK_EQ(xbd_latency_bucket(xbd_latency_bucket_limit(i) - 1), i);
	}
	/* a percentile from a single latency is within 3.2% of it */
	for (ns = 1; ns < ((uint64_t)1 << 36); ns = ns * 13 / 10 + 7) {
		static struct xbd_stats one;
		uint64_t p;

		xbd_stats_init(&one);
		xbd_stats_complete(&one, XBD_OP_READ, 8, ns);
		xbd_stats_complete(&one, XBD_OP_READ, 8, 2 * ns);
		p = xbd_latency_percentile(&one.latency[XBD_OP_READ], 50);
		CHECK((double)p >= (double)ns * 0.968 &&
		      (double)p <= (double)ns * 1.032);
	}
}

static void test_disabled(void)
{
	static struct xbd_stats s;
	uint64_t t0;

	xbd_stats_init(&s);
	s.enabled = false;
	t0 = xbd_stats_begin(&s);
	CHECK_EQ(t0, 0);
	CHECK_EQ(xbd_stat_get(&s.in_flight), 1);
	xbd_stats_end(&s, XBD_OP_DISCARD, 2048, t0);
	CHECK_EQ(xbd_stat_get(&s.in_flight), 0);
	CHECK_EQ(xbd_stat_get(&s.reqs[XBD_OP_DISCARD]), 1);
	CHECK_EQ(xbd_stat_get(&s.sectors[XBD_OP_DISCARD]), 2048);
	CHECK_EQ(hist_sum(&s), 0);
	/* an out-of-range op is ignored, not written past the arrays */
	xbd_stats_complete(&s, XBD_OP_COUNT, 8, 1);
	CHECK_EQ(req_sum(&s), 1);
}

#define THREADS 4
#define PER_THREAD 100000

static void *hammer(void *arg)
{
	struct xbd_stats *s = arg;
	unsigned i;

	for (i = 0; i < PER_THREAD; i++) {
		uint64_t t0 = xbd_stats_begin(s);

		xbd_stats_end(s, i & 1 ? XBD_OP_WRITE : XBD_OP_READ, 8, t0);
	}
	return NULL;
}

static void test_concurrent(void)
{
	static struct xbd_stats s;
	pthread_t th[THREADS];
	unsigned i;

	xbd_stats_init(&s);
	for (i = 0; i < THREADS; i++)
		CHECK(pthread_create(&th[i], NULL, hammer, &s) == 0);
	for (i = 0; i < THREADS; i++)
		pthread_join(th[i], NULL);
	CHECK_EQ(req_sum(&s), THREADS * PER_THREAD);
	CHECK_EQ(xbd_stat_get(&s.sectors[XBD_OP_READ]) +
		 xbd_stat_get(&s.sectors[XBD_OP_WRITE]), 8ull * THREADS * PER_THREAD);
	CHECK_EQ(hist_sum(&s), THREADS * PER_THREAD);
	CHECK_EQ(xbd_stat_get(&s.in_flight), 0);
	CHECK(xbd_stat_get(&s.in_flight_max) >= 1);
	CHECK(xbd_stat_get(&s.in_flight_max) <= THREADS);
}

/* Not a timed test: prints the cost of one request's counting, for the
 * record, so a regression is visible in the log. */
static void report_cost(void)
{
	static struct xbd_stats s;
	unsigned long long t0, t1, t2, t3;
	unsigned i, n = 1000000;

	xbd_stats_init(&s);
	t0 = xbd_now_ns();
	for (i = 0; i < n; i++)
		xbd_stats_end(&s, XBD_OP_READ, 8, xbd_stats_begin(&s));
	t1 = xbd_now_ns();
	s.enabled = false;
	for (i = 0; i < n; i++)
		xbd_stats_end(&s, XBD_OP_READ, 8, xbd_stats_begin(&s));
	t2 = xbd_now_ns();
	s.enabled = true;
	/* batches of 32 sharing one clock read, as a ring loop does */
	for (i = 0; i < n; i += 32) {
		uint64_t start = xbd_stats_now(&s), now;
		unsigned j;

		for (j = 0; j < 32; j++)
			xbd_stats_begin_at(&s, start);
		now = xbd_stats_now(&s);
		for (j = 0; j < 32; j++)
			xbd_stats_end_at(&s, XBD_OP_READ, 8, start, now);
	}
	t3 = xbd_now_ns();
	printf("cost per request: %.1f ns timed, %.1f ns untimed, "
	       "%.1f ns timed in batches of 32\n", (double)(t1 - t0) / n,
	       (double)(t2 - t1) / n, (double)(t3 - t2) / n);
	CHECK_EQ(xbd_stat_get(&s.reqs[XBD_OP_READ]), 3ull * n);
	CHECK_EQ(xbd_stat_get(&s.in_flight_max), 32);
}

static void test_names(void)
{
	CHECK(!strcmp(xbd_stat_op_name(XBD_OP_READ), "read"));
	CHECK(!strcmp(xbd_stat_op_name(XBD_OP_DISCARD), "discard"));
	CHECK(xbd_stat_op_name(XBD_OP_COUNT) == NULL);
	CHECK(!strcmp(xbd_stat_error_name(XBD_ERR_BAD_REQUEST), "bad_request"));
	CHECK(!strcmp(xbd_stat_error_name(XBD_ERR_READ_ONLY), "read_only"));
	CHECK(xbd_stat_error_name(XBD_ERR_COUNT) == NULL);
	for (unsigned i = 0; i < XBD_OP_COUNT; i++)
		CHECK(xbd_stat_op_name(i) != NULL);
	for (unsigned i = 0; i < XBD_ERR_COUNT; i++)
		CHECK(xbd_stat_error_name(i) != NULL);
}

/* The switch: $XBD_STATS, then xbd_stats_default_off(), which no
 * environment undoes (it is process-wide: this test runs last). */
static void test_switch(void)
{
	static const char *const off[] = { "off", "OFF", "0", "no", "false" };
	static const char *const on[] = { "on", "1", "", "yes" };
	static struct xbd_stats s;
	size_t i;

	unsetenv("XBD_STATS");
	CHECK(xbd_stats_default_enabled());
	for (i = 0; i < sizeof(off) / sizeof(off[0]); i++) {
		setenv("XBD_STATS", off[i], 1);
		CHECK(!xbd_stats_default_enabled());
		xbd_stats_init(&s);
		CHECK(!s.enabled);
	}
	for (i = 0; i < sizeof(on) / sizeof(on[0]); i++) {
		setenv("XBD_STATS", on[i], 1);
		CHECK(xbd_stats_default_enabled());
		xbd_stats_init(&s);
		CHECK(s.enabled);
	}
	/* off: counted but not timed */
	setenv("XBD_STATS", "off", 1);
	xbd_stats_init(&s);
	xbd_stats_end(&s, XBD_OP_READ, 8, xbd_stats_begin(&s));
	CHECK_EQ(xbd_stat_get(&s.reqs[XBD_OP_READ]), 1);
	CHECK_EQ(hist_sum(&s), 0);

	unsetenv("XBD_STATS");
	xbd_stats_default_off();
	CHECK(!xbd_stats_default_enabled());
	setenv("XBD_STATS", "on", 1);
	xbd_stats_init(&s);
	CHECK(!s.enabled);
	unsetenv("XBD_STATS");
}

/* A batch counts exactly what the same requests ended one by one count:
 * requests, sectors, every histogram bucket, totals, maxima, in flight;
 * with more distinct buckets than the batch tallies locally. */
static void test_batch_matches_single(void)
{
	static struct xbd_stats one, batch;
	struct xbd_stats_done done[300];
	const uint64_t now = 1ull << 40;
	unsigned i, op, b;

	xbd_stats_init(&one);
	xbd_stats_init(&batch);
	for (i = 0; i < 300; i++) {
		/* latencies from 0 to ~2^29 ns: some 30 buckets, all ops,
		 * an untimed request (start 0) and an invalid op among them */
		uint64_t lat = i % 7 == 0 ? 0 : (1ull << (i % 30)) + i;

		done[i] = (struct xbd_stats_done){
			.start_ns = i == 5 ? 0 : now - lat,
			.sectors = i % 3 ? 8 * (i % 5) : 0,
			.op = i == 17 ? XBD_OP_COUNT : (enum xbd_stat_op)(i % XBD_OP_COUNT),
		};
		xbd_stats_begin_at(&one, 1);
		xbd_stats_begin_at(&batch, 1);
		xbd_stats_end_at(&one, done[i].op, done[i].sectors, done[i].start_ns, now);
	}
	xbd_stats_end_batch(&batch, done, 100, now);
	xbd_stats_end_batch(&batch, done + 100, 200, now);
	CHECK_EQ(xbd_stat_get(&batch.in_flight), 0);
	CHECK_EQ(xbd_stat_get(&one.in_flight), 0);
	CHECK_EQ(req_sum(&batch), 299);
	for (op = 0; op < XBD_OP_COUNT; op++) {
		CHECK_EQ(xbd_stat_get(&batch.reqs[op]), xbd_stat_get(&one.reqs[op]));
		CHECK_EQ(xbd_stat_get(&batch.sectors[op]), xbd_stat_get(&one.sectors[op]));
		CHECK_EQ(xbd_stat_get(&batch.latency[op].total_ns),
			 xbd_stat_get(&one.latency[op].total_ns));
		CHECK_EQ(xbd_stat_get(&batch.latency[op].max_ns),
			 xbd_stat_get(&one.latency[op].max_ns));
		for (b = 0; b < XBD_LAT_BUCKETS; b++)
			CHECK_EQ(xbd_stat_get(&batch.latency[op].bucket[b]),
				 xbd_stat_get(&one.latency[op].bucket[b]));
	}
	CHECK_EQ(hist_sum(&batch), 299);

	/* timing off: counts, no histograms */
	batch.enabled = false;
	xbd_stats_begin_at(&batch, 0);
	xbd_stats_end_batch(&batch, done + 1, 1, now);
	CHECK_EQ(req_sum(&batch), 300);
	CHECK_EQ(hist_sum(&batch), 299);
	CHECK_EQ(xbd_stat_get(&batch.in_flight), 0);
}

int main(void)
{
	unsetenv("XBD_STATS"); /* the tests before test_switch time */
	test_known_workload();
	test_batch_matches_single();
	test_percentiles();
	test_buckets();
	test_disabled();
	test_concurrent();
	test_names();
	report_cost();
	test_switch();
	return check_report("test_stats");
}

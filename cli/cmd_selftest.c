/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xbd selftest: exercises the platform layer against our own domain, so
 * that it runs the same on real Xen (dom0 to dom0) and on the sim.
 * Grants are shared and mapped back, copied into; an event channel is
 * looped back through a second handle; xenstore nodes are written,
 * watched and removed.  One line per check; non-zero exit on a failure.
 */
#include "xbd/cli.h"
#include "xbd/common.h"

#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define SHARED_PAGES 2u
#define EVENT_WAIT_MS 2000
#define QUIET_WAIT_MS 300
/* Far beyond any grant table Xen sizes by default (32768 entries). */
#define INVALID_GRANT_REF (1u << 30)
/* A valid domain id (below DOMID_FIRST_RESERVED) nobody uses. */
#define UNUSED_DOMID 0x7fefu

struct selftest {
	struct xbd_platform *p;
	uint16_t self;
	unsigned checks, failed;
};

static void check_ok(struct selftest *st, const char *what)
{
	st->checks++;
	printf("%-58s ok\n", what);
	fflush(stdout);
}

static void check_failed(struct selftest *st, const char *what,
			 const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void check_failed(struct selftest *st, const char *what,
			 const char *fmt, ...)
{
	va_list ap;

	st->checks++;
	st->failed++;
	printf("%-58s FAILED: ", what);
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
	printf("\n");
	fflush(stdout);
}

static unsigned char pattern_byte(unsigned seed, size_t i)
{
	return (unsigned char)((i * 131u + seed * 7u + (i >> 8)) ^ 0x5au);
}

static void fill_pattern(unsigned char *buf, size_t len, unsigned seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		buf[i] = pattern_byte(seed, i);
}

/* Index of the first byte that differs from the pattern, or -1. */
static long pattern_mismatch(const unsigned char *buf, size_t len,
			     unsigned seed)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (buf[i] != pattern_byte(seed, i))
			return (long)i;
	return -1;
}

static bool all_zero(const unsigned char *buf, size_t len)
{
	size_t i;

	for (i = 0; i < len; i++)
		if (buf[i])
			return false;
	return true;
}

static void grant_copy_checks(struct selftest *st, const uint32_t *refs,
			      unsigned char *shared)
{
	const char *what = "grant: copy into and out of a granted page";
	unsigned char *in = malloc(XBD_PAGE_SIZE), *out = malloc(XBD_PAGE_SIZE);
	struct xbd_grant_copy segs[2];
	long bad;
	int err;

	if (!in || !out) {
		check_failed(st, what, "out of memory");
		goto out;
	}
	fill_pattern(in, XBD_PAGE_SIZE, 3);
	fill_pattern(shared, XBD_PAGE_SIZE, 4);
	memset(out, 0, XBD_PAGE_SIZE);
	/* Into page 1 at an odd offset; all of page 0 out. */
	segs[0] = (struct xbd_grant_copy){ .domid = st->self, .ref = refs[1],
		.offset = 100, .len = 1000, .to_grant = true, .local = in };
	segs[1] = (struct xbd_grant_copy){ .domid = st->self, .ref = refs[0],
		.offset = 0, .len = XBD_PAGE_SIZE, .to_grant = false,
		.local = out };
	err = xbd_copy_grants(st->p, segs, 2);
	if (err)
		check_failed(st, what, "grant_copy: %s", xbd_strerror(err));
	else if (segs[0].status || segs[1].status)
		check_failed(st, what, "segment status %d / %d", segs[0].status,
			     segs[1].status);
	else if ((bad = pattern_mismatch(shared + XBD_PAGE_SIZE + 100, 1000, 3)) >= 0)
		check_failed(st, what, "copied-in data differs at byte %ld", bad);
	else if ((bad = pattern_mismatch(out, XBD_PAGE_SIZE, 4)) >= 0)
		check_failed(st, what, "copied-out data differs at byte %ld", bad);
	else
		check_ok(st, what);

	what = "grant: copying an invalid ref fails that segment";
	segs[0] = (struct xbd_grant_copy){ .domid = st->self,
		.ref = INVALID_GRANT_REF, .offset = 0, .len = 16,
		.to_grant = false, .local = out };
	err = xbd_copy_grants(st->p, segs, 1);
	if (err == 0 && segs[0].status < 0)
		check_ok(st, what);
	else if (err)
		check_failed(st, what, "the whole batch failed: %s",
			     xbd_strerror(err));
	else
		check_failed(st, what, "segment status %d", segs[0].status);
out:
	free(in);
	free(out);
}

static void read_only_checks(struct selftest *st)
{
	const char *what = "grant: a read-only grant maps read-only only";
	uint32_t ref;
	void *shared, *mapped;
	int err;

	err = xbd_share_pages(st->p, st->self, 1, false, &ref, &shared);
	if (err) {
		check_failed(st, what, "share_pages (read-only): %s",
			     xbd_strerror(err));
		return;
	}
	fill_pattern(shared, XBD_PAGE_SIZE, 5);
	err = xbd_map_grants(st->p, st->self, 1, &ref, true, &mapped);
	if (err == 0) {
		xbd_unmap_grants(st->p, mapped, 1);
		check_failed(st, what, "a writable mapping was allowed");
	} else if ((err = xbd_map_grants(st->p, st->self, 1, &ref, false,
					 &mapped))) {
		check_failed(st, what, "read-only map_grants: %s",
			     xbd_strerror(err));
	} else {
		long bad = pattern_mismatch(mapped, XBD_PAGE_SIZE, 5);

		if (bad >= 0)
			check_failed(st, what, "data differs at byte %ld", bad);
		else
			check_ok(st, what);
		err = xbd_unmap_grants(st->p, mapped, 1);
		if (err)
			check_failed(st, "grant: unmap the read-only mapping",
				     "%s", xbd_strerror(err));
	}
	err = xbd_unshare_pages(st->p, shared, 1);
	if (err)
		check_failed(st, "grant: unshare the read-only page", "%s",
			     xbd_strerror(err));
}

static void grant_checks(struct selftest *st)
{
	const char *what = "grant: share 2 zeroed pages with ourselves";
	uint32_t refs[SHARED_PAGES], bad_ref = INVALID_GRANT_REF;
	unsigned char *shared = NULL, *mapped = NULL;
	void *addr;
	long bad;
	int err;

	err = xbd_share_pages(st->p, st->self, SHARED_PAGES, true, refs,
			      &addr);
	if (err) {
		check_failed(st, what, "share_pages: %s", xbd_strerror(err));
		return;
	}
	shared = addr;
	if (!all_zero(shared, SHARED_PAGES * XBD_PAGE_SIZE))
		check_failed(st, what, "fresh pages are not zeroed");
	else
		check_ok(st, what);

	what = "grant: map both grants writable";
	err = xbd_map_grants(st->p, st->self, SHARED_PAGES, refs, true,
			     &addr);
	if (err) {
		check_failed(st, what, "map_grants(refs %u,%u): %s", refs[0],
			     refs[1], xbd_strerror(err));
		goto unshare;
	}
	mapped = addr;
	check_ok(st, what);

	what = "grant: data written on one side is seen on the other";
	fill_pattern(shared, SHARED_PAGES * XBD_PAGE_SIZE, 1);
	if ((bad = pattern_mismatch(mapped, SHARED_PAGES * XBD_PAGE_SIZE, 1)) >= 0) {
		check_failed(st, what, "mapping differs from share at byte %ld", bad);
	} else {
		fill_pattern(mapped, SHARED_PAGES * XBD_PAGE_SIZE, 2);
		bad = pattern_mismatch(shared, SHARED_PAGES * XBD_PAGE_SIZE, 2);
		if (bad >= 0)
			check_failed(st, what, "share differs from mapping at byte %ld", bad);
		else
			check_ok(st, what);
	}

	grant_copy_checks(st, refs, shared);

	what = "grant: mapping an invalid ref is refused";
	err = xbd_map_grants(st->p, st->self, 1, &bad_ref, false, &addr);
	if (err == 0) {
		xbd_unmap_grants(st->p, addr, 1);
		check_failed(st, what, "ref %u was mapped", bad_ref);
	} else {
		check_ok(st, what);
	}

	what = "grant: unmap and unshare";
	err = xbd_unmap_grants(st->p, mapped, SHARED_PAGES);
	if (err) {
		check_failed(st, what, "unmap_grants: %s", xbd_strerror(err));
		goto unshare;
	}
	err = xbd_unshare_pages(st->p, shared, SHARED_PAGES);
	shared = NULL;
	if (err)
		check_failed(st, what, "unshare_pages: %s", xbd_strerror(err));
	else
		check_ok(st, what);
unshare:
	if (shared)
		xbd_unshare_pages(st->p, shared, SHARED_PAGES);
	read_only_checks(st);
}

/* Waits for `port` to come out of `e`.  0, or a reason in why. */
static int expect_event(struct xbd_evtchn *e, uint32_t port, char *why,
			size_t whylen)
{
	uint32_t got;
	int r = xbd_wait_readable(xbd_evtchn_fd(e), EVENT_WAIT_MS);

	if (r < 0) {
		snprintf(why, whylen, "poll: %s", xbd_strerror(r));
		return -1;
	}
	if (r == 0) {
		snprintf(why, whylen, "no event within %d ms", EVENT_WAIT_MS);
		return -1;
	}
	r = xbd_evtchn_pending(e, &got);
	if (r) {
		snprintf(why, whylen, "fd readable but pending(): %s",
			 xbd_strerror(r));
		return -1;
	}
	if (got != port) {
		snprintf(why, whylen, "pending port %u, expected %u", got, port);
		return -1;
	}
	return 0;
}

/* 0 when `e` stays quiet for a while, or a reason in why. */
static int expect_quiet(struct xbd_evtchn *e, char *why, size_t whylen)
{
	uint32_t got;
	int r = xbd_wait_readable(xbd_evtchn_fd(e), QUIET_WAIT_MS);

	if (r < 0) {
		snprintf(why, whylen, "poll: %s", xbd_strerror(r));
		return -1;
	}
	r = xbd_evtchn_pending(e, &got);
	if (r == 0) {
		snprintf(why, whylen, "port %u delivered while masked", got);
		return -1;
	}
	if (r != -EAGAIN) {
		snprintf(why, whylen, "pending(): %s, expected EAGAIN",
			 xbd_strerror(r));
		return -1;
	}
	return 0;
}

static void evtchn_checks(struct selftest *st)
{
	const char *what = "evtchn: alloc unbound, bind from a second handle";
	struct xbd_evtchn *a = NULL, *b = NULL;
	uint32_t pa, pb;
	char why[160];
	int err;

	if ((err = xbd_evtchn_open(st->p, &a)) ||
	    (err = xbd_evtchn_open(st->p, &b))) {
		check_failed(st, what, "evtchn_open: %s", xbd_strerror(err));
		goto out;
	}
	if ((err = xbd_evtchn_alloc_unbound(a, st->self, &pa))) {
		check_failed(st, what, "alloc_unbound: %s", xbd_strerror(err));
		goto out;
	}
	if ((err = xbd_evtchn_bind_interdomain(b, st->self, pa, &pb))) {
		check_failed(st, what, "bind_interdomain(port %u): %s", pa,
			     xbd_strerror(err));
		goto out;
	}
	if (xbd_evtchn_fd(a) == xbd_evtchn_fd(b))
		check_failed(st, what, "both handles share fd %d",
			     xbd_evtchn_fd(a));
	else
		check_ok(st, what);

	/* Xen marks a freshly bound port pending, in case the unbound end
	 * was notified before the bind: take that event if it comes, so
	 * that only our notify can make the port pending below. */
	what = "evtchn: quiet until notified";
	if (xbd_wait_readable(xbd_evtchn_fd(b), QUIET_WAIT_MS) > 0 &&
	    expect_event(b, pb, why, sizeof(why)) == 0)
		xbd_evtchn_unmask(b, pb);
	if (expect_quiet(b, why, sizeof(why)))
		check_failed(st, what, "%s", why);
	else
		check_ok(st, what);

	what = "evtchn: a notify is pending on the other handle";
	if ((err = xbd_evtchn_notify(a, pa)))
		check_failed(st, what, "notify: %s", xbd_strerror(err));
	else if (expect_event(b, pb, why, sizeof(why)))
		check_failed(st, what, "%s", why);
	else
		check_ok(st, what);

	what = "evtchn: masked until unmask, then delivered again";
	if ((err = xbd_evtchn_notify(a, pa)))
		check_failed(st, what, "notify: %s", xbd_strerror(err));
	else if (expect_quiet(b, why, sizeof(why)))
		check_failed(st, what, "%s", why);
	else if ((err = xbd_evtchn_unmask(b, pb)))
		check_failed(st, what, "unmask: %s", xbd_strerror(err));
	else if (expect_event(b, pb, why, sizeof(why)))
		check_failed(st, what, "after unmask: %s", why);
	else if ((err = xbd_evtchn_unmask(b, pb)))
		check_failed(st, what, "unmask: %s", xbd_strerror(err));
	else
		check_ok(st, what);

	what = "evtchn: notify in the other direction";
	if ((err = xbd_evtchn_notify(b, pb)))
		check_failed(st, what, "notify: %s", xbd_strerror(err));
	else if (expect_event(a, pa, why, sizeof(why)))
		check_failed(st, what, "%s", why);
	else if ((err = xbd_evtchn_unmask(a, pa)))
		check_failed(st, what, "unmask: %s", xbd_strerror(err));
	else if (expect_quiet(b, why, sizeof(why)))
		check_failed(st, what, "the sender's end also fired: %s", why);
	else
		check_ok(st, what);

	what = "evtchn: unbind both ends";
	if ((err = xbd_evtchn_unbind(b, pb)) ||
	    (err = xbd_evtchn_unbind(a, pa)))
		check_failed(st, what, "%s", xbd_strerror(err));
	else
		check_ok(st, what);
out:
	if (b)
		xbd_evtchn_close(b);
	if (a)
		xbd_evtchn_close(a);
}

/* Waits for a watch event on `path` with `token`, skipping others. */
static int expect_watch(struct selftest *st, const char *path,
			const char *token, char *why, size_t whylen)
{
	unsigned long long deadline = xbd_now_ns() + EVENT_WAIT_MS * 1000000ull;
	char *p, *t;
	int r;

	for (;;) {
		long long left = (long long)(deadline - xbd_now_ns()) / 1000000;

		r = xbd_xs_read_watch(st->p, &p, &t);
		if (r == 0) {
			bool match = !strcmp(p, path) && !strcmp(t, token);

			free(p);
			free(t);
			if (match)
				return 0;
			continue;
		}
		if (r != -EAGAIN) {
			snprintf(why, whylen, "read_watch: %s", xbd_strerror(r));
			return -1;
		}
		if (left <= 0) {
			snprintf(why, whylen, "no event for %s within %d ms",
				 path, EVENT_WAIT_MS);
			return -1;
		}
		r = xbd_wait_readable(xbd_xs_watch_fd(st->p), (int)left);
		if (r < 0) {
			snprintf(why, whylen, "poll: %s", xbd_strerror(r));
			return -1;
		}
	}
}

static void xenstore_checks(struct selftest *st)
{
	const char *what = "xenstore: write, read back, list, remove";
	char base[96], key[128], token[64], value[64], why[200];
	char *got = NULL, *gone = NULL, **names = NULL;
	unsigned n, i, tries;
	size_t len = 0;
	xbd_xs_txn t;
	bool listed = false, watching = false;
	int err;

	snprintf(base, sizeof(base), "/local/domain/%u/data/xbd-selftest-%d",
		 st->self, (int)getpid());
	snprintf(key, sizeof(key), "%s/key", base);
	snprintf(value, sizeof(value), "hello from %d", (int)getpid());
	snprintf(token, sizeof(token), "xbd-selftest-%d", (int)getpid());

	if ((err = xbd_xs_write(st->p, XBD_XS_NO_TXN, key, value,
				strlen(value)))) {
		check_failed(st, what, "write %s: %s", key, xbd_strerror(err));
		return;
	}
	if ((err = xbd_xs_read(st->p, XBD_XS_NO_TXN, key, &got, &len))) {
		check_failed(st, what, "read %s: %s", key, xbd_strerror(err));
	} else if (len != strlen(value) || strcmp(got, value)) {
		check_failed(st, what, "read '%s', wrote '%s'", got, value);
	} else if ((err = xbd_xs_directory(st->p, XBD_XS_NO_TXN, base,
					   &names, &n))) {
		check_failed(st, what, "directory %s: %s", base,
			     xbd_strerror(err));
	} else {
		for (i = 0; i < n; i++)
			listed |= !strcmp(names[i], "key");
		free(names);
		if (!listed)
			check_failed(st, what, "%s lacks 'key'", base);
		else if ((err = xbd_xs_rm(st->p, XBD_XS_NO_TXN, key)))
			check_failed(st, what, "rm %s: %s", key,
				     xbd_strerror(err));
		else if ((err = xbd_xs_read(st->p, XBD_XS_NO_TXN, key,
					    &gone, NULL)) != -ENOENT)
			check_failed(st, what, "read after rm: %s",
				     err ? xbd_strerror(err) : "still there");
		else
			check_ok(st, what);
		if (!err)
			free(gone);
	}
	free(got);
	got = NULL;

	what = "xenstore: a watch fires when set and on a write";
	if ((err = xbd_xs_write(st->p, XBD_XS_NO_TXN, base, "", 0)) ||
	    (err = xbd_xs_watch(st->p, base, token))) {
		check_failed(st, what, "watch %s: %s", base, xbd_strerror(err));
	} else {
		watching = true;
		snprintf(key, sizeof(key), "%s/watched", base);
		if (expect_watch(st, base, token, why, sizeof(why)))
			check_failed(st, what, "initial event: %s", why);
		else if ((err = xbd_xs_write(st->p, XBD_XS_NO_TXN, key,
					     "1", 1)))
			check_failed(st, what, "write %s: %s", key,
				     xbd_strerror(err));
		else if (expect_watch(st, key, token, why, sizeof(why)))
			check_failed(st, what, "%s", why);
		else
			check_ok(st, what);
	}
	if (watching && (err = xbd_xs_unwatch(st->p, base, token)))
		check_failed(st, "xenstore: unwatch", "%s", xbd_strerror(err));

	what = "xenstore: a transaction commits";
	snprintf(key, sizeof(key), "%s/txn", base);
	for (tries = 0; tries < 5; tries++) {
		if ((err = xbd_xs_transaction_start(st->p, &t)))
			break;
		err = xbd_xs_write(st->p, t, key, value, strlen(value));
		if (err) {
			xbd_xs_transaction_end(st->p, t, true);
			break;
		}
		err = xbd_xs_transaction_end(st->p, t, false);
		if (err != -EAGAIN)
			break;
	}
	if (err)
		check_failed(st, what, "%s", xbd_strerror(err));
	else if ((err = xbd_xs_read(st->p, XBD_XS_NO_TXN, key, &got, NULL)))
		check_failed(st, what, "read after commit: %s", xbd_strerror(err));
	else if (strcmp(got, value))
		check_failed(st, what, "read '%s' after commit", got);
	else
		check_ok(st, what);
	free(got);

	err = xbd_xs_rm(st->p, XBD_XS_NO_TXN, base);
	if (err)
		check_failed(st, "xenstore: remove the test nodes", "rm %s: %s",
			     base, xbd_strerror(err));
}

static void domain_checks(struct selftest *st)
{
	int r = xbd_domain_alive(st->p, st->self);

	if (r == 1)
		check_ok(st, "domain: we are alive");
	else
		check_failed(st, "domain: we are alive", "domain_alive(%u): %s",
			     st->self, r < 0 ? xbd_strerror(r) : "not alive");
	r = xbd_domain_alive(st->p, UNUSED_DOMID);
	if (r == 0)
		check_ok(st, "domain: an unused id is not alive");
	else
		check_failed(st, "domain: an unused id is not alive",
			     "domain_alive(%u): %s", UNUSED_DOMID,
			     r < 0 ? xbd_strerror(r) : "alive");
}

static int cmd_selftest_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct selftest st = { 0 };
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'h') {
			printf("usage: xbd selftest\n"
			       "Checks that this platform works for xbd, against our own domain:\n"
			       "grants shared, mapped and copied, event channels, xenstore nodes\n"
			       "and watches, domain look-ups.  One line per check; exits 1 if\n"
			       "any failed.\n");
			return 0;
		}
		xbd_opt_err("selftest", c, argv, opts);
		return XBD_EXIT_USAGE;
	}
	if (optind < argc) {
		xbd_usage_err("selftest", "takes no arguments");
		return XBD_EXIT_USAGE;
	}
	if (xbd_cli_open_platform(&st.p))
		return 1;
	st.self = xbd_platform_self_domid(st.p);
	printf("xbd selftest: %s platform, we are domain %u\n",
	       xbd_platform_name(st.p), st.self);
	fflush(stdout);

	grant_checks(&st);
	evtchn_checks(&st);
	xenstore_checks(&st);
	domain_checks(&st);

	xbd_platform_close(st.p);
	printf("selftest: %u checks, %u failed\n", st.checks, st.failed);
	return st.failed ? 1 : 0;
}

const struct xbd_cmd xbd_cmd_selftest = {
	.name = "selftest",
	.usage = "selftest",
	.summary = "check grants, event channels and xenstore on this platform",
	.run = cmd_selftest_run,
};

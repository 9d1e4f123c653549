/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Sim grant tables across processes: a forked child acts as guest domain
 * N, the parent as dom0.  Sharing and mapping in both directions, Xen's
 * refusals (read-only, bad ref, grant for another domain), unshare while
 * mapped, grant copy, mapping racing with unsharing, and a destroyed
 * granter.
 */
#include "tests/lib/check.h"
#include "xbd/common.h"
#include "xbd/util.h"
#include "src/sim/sim.h"
#include "tests/lib/testlib.h"

#include <errno.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PS XBD_PAGE_SIZE

struct msg {
	uint32_t refs[4];
};

static const char *sim_dir;
static struct xbd_platform *P;

static unsigned char pattern_byte(unsigned seed, size_t i)
{
	return (unsigned char)((i * 131u + seed * 7u + (i >> 8)) ^ 0x5au);
}

static void fill(void *buf, size_t len, unsigned seed)
{
	unsigned char *b = buf;
	size_t i;

	for (i = 0; i < len; i++)
		b[i] = pattern_byte(seed, i);
}

/* Whether buf holds bytes [from, from + len) of pattern seed. */
static bool matches_at(const void *buf, size_t len, unsigned seed, size_t from)
{
	const unsigned char *b = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i] != pattern_byte(seed, from + i))
			return false;
	return true;
}

static bool matches(const void *buf, size_t len, unsigned seed)
{
	return matches_at(buf, len, seed, 0);
}

static bool zeroed(const void *buf, size_t len)
{
	const unsigned char *b = buf;
	size_t i;

	for (i = 0; i < len; i++)
		if (b[i])
			return false;
	return true;
}

static void send_refs(int fd, const uint32_t *refs, unsigned n)
{
	struct msg m = { { 0 } };

	if (n)
		memcpy(m.refs, refs, n * sizeof(*refs));
	xbd_test_send(fd, &m, sizeof(m));
}

static void recv_refs(int fd, uint32_t *refs, unsigned n)
{
	struct msg m;

	xbd_test_recv(fd, &m, sizeof(m));
	if (refs)
		memcpy(refs, m.refs, n * sizeof(*refs));
}

/*
 * Churn: the guest keeps sharing and unsharing batches of pages, each
 * page stamped with the batch number, and publishes the current refs in
 * a read-only directory page; two dom0 threads map whatever refs they
 * find.  A mapping that succeeds must keep its stamp until unmapped
 * (frames are not reused while mapped), and fresh pages are zeroed.
 */
#define CHURN_MS 500
#define CHURN_PAGES 8u
#define CHURN_THREADS 2
#define CHURN_MAX_BATCHES 4000u /* * CHURN_PAGES refs, well below 65536 */

struct churn_dir {
	_Atomic uint32_t batch;
	_Atomic uint32_t refs[CHURN_PAGES];
};

static void guest_churn(int fd)
{
	struct churn_dir *dir;
	uint32_t dir_ref, refs[CHURN_PAGES], batch, i;
	unsigned long long end;
	void *pages;
	bool fresh = true;

	CHECK_EQ(xbd_share_pages(P, 0, 1, false, &dir_ref, (void **)&dir), 0);
	send_refs(fd, &dir_ref, 1);
	recv_refs(fd, NULL, 0);
	end = xbd_now_ns() + CHURN_MS * 1000000ull;
	/* Bounded so that refs never wrap around to a published one. */
	for (batch = 1; xbd_now_ns() < end && batch < CHURN_MAX_BATCHES; batch++) {
		if (xbd_share_pages(P, 0, CHURN_PAGES, false, refs, &pages)) {
			CHECK(!"share_pages failed while churning");
			break;
		}
		fresh &= zeroed(pages, CHURN_PAGES * PS);
		for (i = 0; i < CHURN_PAGES; i++) {
			memset((char *)pages + i * PS, (int)(batch & 0xff), PS);
			memcpy((char *)pages + i * PS, &batch, sizeof(batch));
		}
		for (i = 0; i < CHURN_PAGES; i++)
			atomic_store(&dir->refs[i], refs[i]);
		atomic_store(&dir->batch, batch);
		usleep(200);
		CHECK_EQ(xbd_unshare_pages(P, pages, CHURN_PAGES), 0);
	}
	CHECK(fresh);
	send_refs(fd, &batch, 1);
	recv_refs(fd, NULL, 0);
	CHECK_EQ(xbd_unshare_pages(P, dir, 1), 0);
}

struct churner {
	uint16_t guest;
	const struct churn_dir *dir;
	_Atomic bool *stop;
	unsigned maps, refused, broken;
};

/* A stamped page is its batch number, then that number's low byte. */
static bool stamp_intact(const unsigned char *page, uint32_t *batch)
{
	uint32_t b;
	size_t i;

	memcpy(&b, page, sizeof(b));
	for (i = sizeof(b); i < PS; i++)
		if (page[i] != (unsigned char)b)
			return false;
	*batch = b;
	return true;
}

static void *churn_thread(void *arg)
{
	struct churner *c = arg;
	unsigned n = 0;

	while (!atomic_load(c->stop)) {
		uint32_t ref = atomic_load(&c->dir->refs[n++ % CHURN_PAGES]);
		uint32_t before = 0, after = 0;
		void *m;
		int err, k;

		err = xbd_map_grants(P, c->guest, 1, &ref, false, &m);
		if (err) {
			/* ended or not yet published: Xen's answers only */
			c->broken += err != -EINVAL && err != -EPERM;
			c->refused++;
			continue;
		}
		c->maps++;
		if (!stamp_intact(m, &before)) {
			c->broken++;
			xbd_unmap_grants(P, m, 1);
			continue;
		}
		for (k = 0; k < 50; k++) {
			if (!stamp_intact(m, &after) || after != before) {
				c->broken++;
				break;
			}
		}
		if (xbd_unmap_grants(P, m, 1))
			c->broken++;
	}
	return NULL;
}

static void host_churn(int fd, uint16_t guest_id)
{
	struct churner c[CHURN_THREADS];
	pthread_t t[CHURN_THREADS];
	_Atomic bool stop = false;
	uint32_t dir_ref, batches;
	void *dir;
	int i;

	recv_refs(fd, &dir_ref, 1);
	CHECK_EQ(xbd_map_grants(P, guest_id, 1, &dir_ref, false, &dir), 0);
	for (i = 0; i < CHURN_THREADS; i++) {
		c[i] = (struct churner){ .guest = guest_id, .dir = dir, .stop = &stop };
		CHECK_EQ(pthread_create(&t[i], NULL, churn_thread, &c[i]), 0);
	}
	send_refs(fd, NULL, 0);
	recv_refs(fd, &batches, 1);
	atomic_store(&stop, true);
	for (i = 0; i < CHURN_THREADS; i++) {
		pthread_join(t[i], NULL);
		CHECK_EQ(c[i].broken, 0);
		CHECK(c[i].maps > 0);
		printf("churn thread %d: %u maps, %u refused, over %u batches\n",
		       i, c[i].maps, c[i].refused, batches);
	}
	CHECK_EQ(xbd_unmap_grants(P, dir, 1), 0);
	send_refs(fd, NULL, 0);
}

/* The guest, domain `self`; `other` is a third domain. */
static int guest(int fd, uint16_t self, uint16_t other)
{
	uint32_t refs[4], ro_ref, gone_ref, other_ref, dom0_ref;
	void *shared, *ro, *gone, *foreign, *fresh, *copy, *last;

	P = xbd_test_sim_open(self);
	CHECK_EQ(xbd_platform_self_domid(P), self);

	/* 1: three writable pages, seen and written by dom0 */
	CHECK_EQ(xbd_share_pages(P, 0, 3, true, refs, &shared), 0);
	CHECK(zeroed(shared, 3 * PS));
	fill(shared, 3 * PS, 1);
	send_refs(fd, refs, 3);
	recv_refs(fd, NULL, 0);
	CHECK(matches(shared, 3 * PS, 2));

	/* 2: a read-only page */
	CHECK_EQ(xbd_share_pages(P, 0, 1, false, &ro_ref, &ro), 0);
	fill(ro, PS, 3);
	send_refs(fd, &ro_ref, 1);
	recv_refs(fd, NULL, 0);
	CHECK(matches(ro, PS, 3));
	CHECK_EQ(xbd_unshare_pages(P, ro, 1), 0);

	/* 3: a ref that is no longer granted */
	CHECK_EQ(xbd_share_pages(P, 0, 1, true, &gone_ref, &gone), 0);
	CHECK_EQ(xbd_unshare_pages(P, gone, 1), 0);
	send_refs(fd, &gone_ref, 1);

	/* 4: a page granted to another domain */
	CHECK_EQ(xbd_share_pages(P, other, 1, true, &other_ref, &foreign), 0);
	send_refs(fd, &other_ref, 1);
	recv_refs(fd, NULL, 0);
	CHECK_EQ(xbd_unshare_pages(P, foreign, 1), 0);

	/* 5: unshare while dom0 still maps the pages of step 1 */
	recv_refs(fd, NULL, 0);
	fill(shared, PS, 4);
	CHECK_EQ(xbd_unshare_pages(P, shared, 3), 0);
	CHECK_EQ(xbd_unshare_pages(P, shared, 3), -EINVAL); /* not twice */
	CHECK_EQ(xbd_share_pages(P, 0, 3, true, refs, &fresh), 0);
	CHECK(zeroed(fresh, 3 * PS));
	fill(fresh, 3 * PS, 5);
	send_refs(fd, refs, 3);
	recv_refs(fd, NULL, 0);
	CHECK_EQ(xbd_unshare_pages(P, fresh, 3), 0);

	/* 6: grant copy in and out */
	CHECK_EQ(xbd_share_pages(P, 0, 2, true, refs, &copy), 0);
	fill(copy, PS, 6);
	send_refs(fd, refs, 2);
	recv_refs(fd, NULL, 0);
	CHECK(matches((char *)copy + PS, PS, 7));
	CHECK_EQ(xbd_unshare_pages(P, copy, 2), 0);

	/* 7: dom0 shares with us */
	recv_refs(fd, &dom0_ref, 1);
	CHECK_EQ(xbd_map_grants(P, 0, 1, &dom0_ref, true, &shared), 0);
	CHECK(matches(shared, PS, 8));
	fill(shared, PS, 9);
	CHECK_EQ(xbd_unmap_grants(P, shared, 1), 0);
	CHECK_EQ(xbd_unmap_grants(P, shared, 1), -EINVAL); /* not twice */
	send_refs(fd, NULL, 0);

	guest_churn(fd);

	/* 8: we die with pages granted and mapped */
	CHECK_EQ(xbd_share_pages(P, 0, 2, true, refs, &last), 0);
	fill(last, 2 * PS, 10);
	send_refs(fd, refs, 2);
	recv_refs(fd, NULL, 0); /* dom0 destroyed us */
	/* our memory is still ours; dom0 wrote page 0 through its mapping */
	CHECK(matches(last, PS, 12));
	CHECK(matches_at((char *)last + PS, PS, 10, PS));
	CHECK_EQ(xbd_share_pages(P, 0, 1, true, refs, &shared), -ESRCH);
	CHECK_EQ(xbd_unshare_pages(P, last, 2), 0);

	xbd_platform_close(P);
	return check_report("test_sim_grant (guest)");
}

/* Whether our @releaseDomain watch fires within ms. */
static bool watch_fired(int ms)
{
	unsigned long long deadline = xbd_now_ns() + (unsigned long long)ms * 1000000ull;
	char *path, *token;
	bool fired;

	for (;;) {
		long long left = (long long)(deadline - xbd_now_ns()) / 1000000;

		if (xbd_xs_read_watch(P, &path, &token) == 0) {
			fired = !strcmp(path, "@releaseDomain") &&
				!strcmp(token, "released");
			free(path);
			free(token);
			if (fired)
				return true;
			continue;
		}
		if (left <= 0 ||
		    xbd_wait_readable(xbd_xs_watch_fd(P), (int)left) <= 0)
			return false;
	}
}

static void host(int fd, uint16_t guest_id, uint16_t other)
{
	uint32_t refs[4], old[3], ref, bad;
	void *first, *m, *mine;
	unsigned char buf[PS], out[PS];
	struct xbd_grant_copy seg[4];
	uint16_t id;

	(void)other;
	/* 1: same bytes both ways */
	recv_refs(fd, old, 3);
	CHECK_EQ(xbd_map_grants(P, guest_id, 3, old, true, &first), 0);
	CHECK(matches(first, 3 * PS, 1));
	fill(first, 3 * PS, 2);
	send_refs(fd, NULL, 0);

	/* 2: read-only grant */
	recv_refs(fd, &ref, 1);
	CHECK_EQ(xbd_map_grants(P, guest_id, 1, &ref, true, &m), -EPERM);
	CHECK_EQ(xbd_map_grants(P, guest_id, 1, &ref, false, &m), 0);
	CHECK(matches(m, PS, 3));
	CHECK_EQ(xbd_unmap_grants(P, m, 1), 0);
	memset(buf, 0xee, sizeof(buf));
	seg[0] = (struct xbd_grant_copy){ .domid = guest_id, .ref = ref,
		.offset = 0, .len = PS, .to_grant = true, .local = buf };
	seg[1] = (struct xbd_grant_copy){ .domid = guest_id, .ref = ref,
		.offset = 0, .len = PS, .to_grant = false, .local = out };
	CHECK_EQ(xbd_copy_grants(P, seg, 2), 0);
	CHECK_EQ(seg[0].status, -EPERM);
	CHECK_EQ(seg[1].status, 0);
	CHECK(matches(out, PS, 3));
	send_refs(fd, NULL, 0);

	/* 3: bad refs */
	recv_refs(fd, &ref, 1);
	CHECK_EQ(xbd_map_grants(P, guest_id, 1, &ref, false, &m), -EINVAL);
	bad = 0;
	CHECK_EQ(xbd_map_grants(P, guest_id, 1, &bad, false, &m), -EINVAL);
	bad = 1u << 30;
	CHECK_EQ(xbd_map_grants(P, guest_id, 1, &bad, false, &m), -EINVAL);
	bad = XBD_SIM_MAX_DOMID; /* a domain that does not exist */
	CHECK_EQ(xbd_map_grants(P, (uint16_t)bad, 1, &ref, false, &m), -ESRCH);

	/* 4: a grant for another domain is not ours to map */
	recv_refs(fd, &ref, 1);
	CHECK_EQ(xbd_map_grants(P, guest_id, 1, &ref, false, &m), -EPERM);
	seg[0] = (struct xbd_grant_copy){ .domid = guest_id, .ref = ref,
		.offset = 0, .len = 16, .to_grant = false, .local = out };
	CHECK_EQ(xbd_copy_grants(P, seg, 1), 0);
	CHECK_EQ(seg[0].status, -EPERM);
	send_refs(fd, NULL, 0);

	/* 5: the guest unshares what we map; it stays valid until unmapped
	 * and its frames are not handed out again meanwhile */
	send_refs(fd, NULL, 0);
	recv_refs(fd, refs, 3);
	CHECK(matches(first, PS, 4));
	/* the guest filled its new pages: none of them may be these */
	CHECK(matches_at((char *)first + PS, 2 * PS, 2, PS));
	fill(first, 3 * PS, 11); /* still writable, and nobody else's page */
	/* an ended grant cannot be mapped again, even while mapped */
	CHECK_EQ(xbd_map_grants(P, guest_id, 1, &old[1], false, &m), -EINVAL);
	CHECK_EQ(xbd_map_grants(P, guest_id, 3, refs, false, &m), 0);
	CHECK(matches(m, 3 * PS, 5));
	CHECK_EQ(xbd_unmap_grants(P, m, 3), 0);
	CHECK_EQ(xbd_unmap_grants(P, first, 3), 0);
	send_refs(fd, NULL, 0);

	/* 6: grant copy, each segment on its own */
	recv_refs(fd, refs, 2);
	fill(buf, PS, 7);
	memset(out, 0, sizeof(out));
	seg[0] = (struct xbd_grant_copy){ .domid = guest_id, .ref = refs[0],
		.offset = 100, .len = 1000, .to_grant = false, .local = out };
	seg[1] = (struct xbd_grant_copy){ .domid = guest_id, .ref = refs[1],
		.offset = 0, .len = PS, .to_grant = true, .local = buf };
	seg[2] = (struct xbd_grant_copy){ .domid = guest_id, .ref = 1u << 20,
		.offset = 0, .len = 8, .to_grant = false, .local = out + 2000 };
	seg[3] = (struct xbd_grant_copy){ .domid = guest_id, .ref = refs[0],
		.offset = PS - 8, .len = 16, .to_grant = false, .local = out + 3000 };
	CHECK_EQ(xbd_copy_grants(P, seg, 4), 0);
	CHECK_EQ(seg[0].status, 0);
	CHECK_EQ(seg[1].status, 0);
	CHECK_EQ(seg[2].status, -EINVAL);
	CHECK_EQ(seg[3].status, -EINVAL);
	{
		unsigned char want[PS];

		fill(want, PS, 6);
		CHECK(!memcmp(out, want + 100, 1000));
	}
	send_refs(fd, NULL, 0);

	/* 7: dom0 shares with the guest */
	CHECK_EQ(xbd_share_pages(P, guest_id, 1, true, &ref, &mine), 0);
	fill(mine, PS, 8);
	send_refs(fd, &ref, 1);
	recv_refs(fd, NULL, 0);
	CHECK(matches(mine, PS, 9));
	CHECK_EQ(xbd_unshare_pages(P, mine, 1), 0);

	host_churn(fd, guest_id);

	/* 8: the guest is destroyed: mapped pages stay, new maps fail */
	recv_refs(fd, refs, 2);
	CHECK_EQ(xbd_map_grants(P, guest_id, 1, &refs[0], true, &m), 0);
	CHECK_EQ(xbd_domain_alive(P, guest_id), 1);
	CHECK_EQ(xbd_xs_watch(P, "@releaseDomain", "released"), 0);
	CHECK(watch_fired(1000)); /* a new watch fires once at once */
	CHECK(!watch_fired(100));
	CHECK_EQ(xbd_sim_vm_destroy(sim_dir, "guest"), 0);
	CHECK(watch_fired(5000));
	CHECK_EQ(xbd_xs_unwatch(P, "@releaseDomain", "released"), 0);
	CHECK_EQ(xbd_domain_alive(P, guest_id), 0);
	CHECK_EQ(xbd_domain_lookup(P, "guest", &id), -ENOENT);
	CHECK(matches(m, PS, 10));
	fill(m, PS, 12);
	CHECK_EQ(xbd_map_grants(P, guest_id, 1, &refs[1], false, &first), -ESRCH);
	seg[0] = (struct xbd_grant_copy){ .domid = guest_id, .ref = refs[1],
		.offset = 0, .len = 16, .to_grant = false, .local = out };
	CHECK_EQ(xbd_copy_grants(P, seg, 1), 0);
	CHECK_EQ(seg[0].status, -ESRCH);
	CHECK_EQ(xbd_unmap_grants(P, m, 1), 0);
	send_refs(fd, NULL, 0);
}

int main(void)
{
	sim_dir = xbd_test_sim_start();
	CHECK_EQ(xbd_test_guest_and_host(guest, host, &P), 0);
	CHECK_EQ(xbd_test_sim_stop(), 0);
	return check_report("test_sim_grant");
}

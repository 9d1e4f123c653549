/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Two processes push 10 million requests through a blkif ring on the sim
 * platform and back: a guest-side frontend (domain N) and a dom0-side
 * backend, with real grants and event channels between them.  None may
 * be lost or duplicated, and every response must match its request.
 * Prints requests per second.  XBD_PINGPONG_REQUESTS overrides the count.
 */
#include "xbd/platform.h"
#include "xbd/ring.h"
#include "xbd/common.h"
#include "tests/lib/check.h"
#include "src/sim/sim.h"

#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#define RING_PAGES 16

static char sim_dir[] = "/tmp/xbd-pingpong-XXXXXX";
static char xbd_bin[512];
static uint64_t total_requests = 10000000;

struct handoff {
	uint32_t refs[RING_PAGES];
	uint32_t port;
	int err;
};

static int run(const char *cmd, char *out, size_t outlen)
{
	FILE *f = popen(cmd, "r");
	size_t n = 0;

	if (!f)
		return -1;
	if (out) {
		n = fread(out, 1, outlen - 1, f);
		out[n] = 0;
	}
	return pclose(f);
}

/* The backend's view of request number `seq`: what it must look like. */
static uint64_t expected_sector(uint64_t seq)
{
	return (seq * 8) % 2000000;
}

static int wait_event(struct xbd_evtchn *e)
{
	struct pollfd pfd = { .fd = xbd_evtchn_fd(e), .events = POLLIN };
	uint32_t port;
	int n = poll(&pfd, 1, 10000);

	if (n <= 0)
		return -ETIMEDOUT;
	while (xbd_evtchn_pending(e, &port) == 0)
		xbd_evtchn_unmask(e, port);
	return 0;
}

/* Guest side: issue requests as fast as the ring takes them. */
static int frontend(uint16_t domid, int pipe_wr)
{
	struct xbd_platform_config cfg = { .kind = XBD_PLATFORM_SIM,
					   .sim_dir = sim_dir, .sim_domid = domid };
	struct xbd_platform *p;
	struct xbd_evtchn *e;
	struct xbd_blkif_front f;
	struct handoff h = { 0 };
	uint8_t *seen;
	void *ring;
	uint64_t issued = 0, completed = 0, bad = 0;
	int err;

	err = xbd_platform_open(&cfg, &p);
	if (err) {
		fprintf(stderr, "front: open: %s\n", strerror(-err));
		h.err = err;
		if (write(pipe_wr, &h, sizeof(h)) < 0)
			return 1;
		return 1;
	}
	err = xbd_share_pages(p, 0, RING_PAGES, true, h.refs, &ring);
	if (!err)
		err = xbd_evtchn_open(p, &e);
	if (!err)
		err = xbd_evtchn_alloc_unbound(e, 0, &h.port);
	if (!err)
		err = xbd_blkif_front_init(&f, ring, RING_PAGES, XBD_BLKIF_ABI_X86_64);
	h.err = err;
	if (write(pipe_wr, &h, sizeof(h)) != sizeof(h) || err)
		return 1;
	seen = calloc(total_requests / 8 + 1, 1);

	while (completed < total_requests) {
		struct xbd_blkif_response rsp;
		bool progress = false;
		int rc;

		while (issued < total_requests && xbd_blkif_front_free_slots(&f)) {
			struct xbd_blkif_request r;

			memset(&r, 0, sizeof(r));
			r.id = issued;
			r.op = r.ring_op = BLKIF_OP_READ;
			r.sector = expected_sector(issued);
			r.nr_segments = 1;
			r.seg[0].gref = h.refs[issued % RING_PAGES];
			r.seg[0].last_sect = 7;
			xbd_blkif_front_put_request(&f, &r);
			issued++;
			progress = true;
		}
		if (xbd_blkif_front_push_requests(&f))
			xbd_evtchn_notify(e, h.port);
		while ((rc = xbd_blkif_front_next_response(&f, &rsp)) == 1) {
			progress = true;
			if (rsp.id >= issued || (seen[rsp.id / 8] & (1u << (rsp.id % 8))) ||
			    rsp.op != BLKIF_OP_READ || rsp.status != BLKIF_RSP_OKAY) {
				if (bad++ < 10)
					fprintf(stderr, "front: bad response id %llu op %u status %d\n",
						(unsigned long long)rsp.id, rsp.op, rsp.status);
				continue;
			}
			seen[rsp.id / 8] |= 1u << (rsp.id % 8);
			completed++;
		}
		if (rc < 0) {
			fprintf(stderr, "front: broken ring\n");
			bad++;
			break;
		}
		if (progress || xbd_blkif_front_final_check(&f))
			continue;
		if (wait_event(e)) {
			fprintf(stderr, "front: no response for 10 s (%llu/%llu done)\n",
				(unsigned long long)completed,
				(unsigned long long)total_requests);
			bad++;
			break;
		}
	}
	free(seen);
	xbd_evtchn_close(e);
	xbd_unshare_pages(p, ring, RING_PAGES);
	xbd_platform_close(p);
	return bad || completed != total_requests ? 1 : 0;
}

/* dom0 side: answer every request, checking it is the next in sequence. */
static int backend(uint16_t domid, int pipe_rd)
{
	struct xbd_platform_config cfg = { .kind = XBD_PLATFORM_SIM, .sim_dir = sim_dir };
	struct xbd_blkif_limits lim = { .nr_sectors = 4000000, .sector_size = 512 };
	struct xbd_platform *p;
	struct xbd_evtchn *e;
	struct xbd_blkif_back b;
	struct handoff h;
	uint32_t port;
	uint64_t next = 0, answered = 0, mismatches = 0;
	uint64_t notified = 0, suppressed = 0;
	void *ring;
	int err;

	if (read(pipe_rd, &h, sizeof(h)) != sizeof(h) || h.err) {
		fprintf(stderr, "back: frontend failed to set up\n");
		return 1;
	}
	err = xbd_platform_open(&cfg, &p);
	if (err) {
		fprintf(stderr, "back: open: %s\n", strerror(-err));
		return 1;
	}
	err = xbd_map_grants(p, domid, RING_PAGES, h.refs, true, &ring);
	CHECK_EQ(err, 0);
	if (err)
		return 1;
	CHECK_EQ(xbd_evtchn_open(p, &e), 0);
	CHECK_EQ(xbd_evtchn_bind_interdomain(e, domid, h.port, &port), 0);
	CHECK_EQ(xbd_blkif_back_init(&b, ring, RING_PAGES, XBD_BLKIF_ABI_X86_64), 0);

	while (answered < total_requests) {
		struct xbd_blkif_request r;
		bool progress = false;
		int rc;

		while ((rc = xbd_blkif_back_next_request(&b, &lim, &r)) == 1) {
			int16_t st = r.status;

			if (r.id != next || r.sector != expected_sector(next) ||
			    r.nr_sectors != 8 || r.seg[0].gref != h.refs[next % RING_PAGES]) {
				if (mismatches++ < 10)
					fprintf(stderr, "back: request %llu unexpected (id %llu)\n",
						(unsigned long long)next,
						(unsigned long long)r.id);
				st = BLKIF_RSP_ERROR;
			}
			next++;
			xbd_blkif_back_put_response(&b, r.id, r.op, st);
			answered++;
			progress = true;
		}
		if (rc < 0) {
			fprintf(stderr, "back: broken ring\n");
			mismatches++;
			break;
		}
		if (xbd_blkif_back_push_responses(&b)) {
			xbd_evtchn_notify(e, port);
			notified++;
		} else if (progress) {
			suppressed++;
		}
		if (progress || xbd_blkif_back_final_check(&b))
			continue;
		if (wait_event(e)) {
			fprintf(stderr, "back: no request for 10 s\n");
			mismatches++;
			break;
		}
	}
	printf("backend: %llu requests answered, %llu notifications sent, %llu suppressed\n",
	       (unsigned long long)answered,
	       (unsigned long long)notified, (unsigned long long)suppressed);
	xbd_evtchn_close(e);
	xbd_unmap_grants(p, ring, RING_PAGES);
	xbd_platform_close(p);
	return mismatches ? 1 : 0;
}

int main(void)
{
	const char *b = getenv("XBD_BUILD"), *n = getenv("XBD_PINGPONG_REQUESTS");
	char cmd[1200], out[64];
	int pfd[2], status = 0, rc;
	unsigned long long t0, t1;
	uint16_t domid;
	pid_t child;

	/* Both sides open the sim platform themselves, without tests/lib. */
	xbd_platform_set_sim(xbd_platform_sim_open);

	if (n)
		total_requests = strtoull(n, NULL, 10);
	snprintf(xbd_bin, sizeof(xbd_bin), "%s/xbd", b ? b : "build");
	if (!mkdtemp(sim_dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(cmd, sizeof(cmd), "%s sim start --dir %s", xbd_bin, sim_dir);
	if (run(cmd, NULL, 0)) {
		fprintf(stderr, "cannot start the sim\n");
		return 1;
	}
	snprintf(cmd, sizeof(cmd), "XBD_SIM_DIR=%s %s sim vm create ringguest", sim_dir, xbd_bin);
	rc = run(cmd, out, sizeof(out));
	domid = (uint16_t)atoi(out);
	CHECK_EQ(rc, 0);
	CHECK(domid > 0);

	if (pipe(pfd))
		return 1;
	t0 = xbd_now_ns();
	child = fork();
	if (child == 0) {
		close(pfd[0]);
		_exit(frontend(domid, pfd[1]));
	}
	close(pfd[1]);
	rc = backend(domid, pfd[0]);
	waitpid(child, &status, 0);
	t1 = xbd_now_ns();
	CHECK_EQ(rc, 0);
	CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	printf("%llu requests in %.2f s: %.0f requests/s\n",
	       (unsigned long long)total_requests, (t1 - t0) / 1e9,
	       total_requests / ((t1 - t0) / 1e9));

	snprintf(cmd, sizeof(cmd), "%s sim stop --dir %s", xbd_bin, sim_dir);
	CHECK_EQ(run(cmd, NULL, 0), 0);
	rmdir(sim_dir);
	return check_report("test_ring_pingpong");
}

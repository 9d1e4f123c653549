/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Sim event channels across processes: a forked child acts as guest
 * domain N, the parent as dom0.  Binding, notification through a pollable
 * fd, libxenevtchn's masking contract, Xen's refusals, unbind, a
 * destroyed peer, and a ping-pong that measures the round-trip latency.
 */
#include "tests/lib/check.h"
#include "xbd/common.h"
#include "xbd/util.h"
#include "src/sim/sim.h"
#include "tests/lib/testlib.h"

#include <errno.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define EVENT_MS 5000
#define QUIET_MS 200
#define PINGPONGS 100000u
/* A sanity bound only (sanitizers, loaded machines): the number that
 * matters is the one printed. */
#define MAX_ROUND_TRIP_US 1000.0

struct msg {
	uint32_t port;
};

static const char *sim_dir;
static struct xbd_platform *P;

static void send_port(int fd, uint32_t port)
{
	struct msg m = { port };

	xbd_test_send(fd, &m, sizeof(m));
}

static uint32_t recv_port(int fd)
{
	struct msg m;

	xbd_test_recv(fd, &m, sizeof(m));
	return m.port;
}

/* The next event on e: the port, or 0 if none came within EVENT_MS. */
static uint32_t next_event(struct xbd_evtchn *e)
{
	uint32_t port = 0;

	if (xbd_wait_readable(xbd_evtchn_fd(e), EVENT_MS) != 1)
		return 0;
	if (xbd_evtchn_pending(e, &port))
		return 0;
	return port;
}

/* True if nothing arrives on e for a while. */
static bool quiet(struct xbd_evtchn *e)
{
	uint32_t port;

	return xbd_wait_readable(xbd_evtchn_fd(e), QUIET_MS) == 0 &&
	       xbd_evtchn_pending(e, &port) == -EAGAIN;
}

static int guest(int fd, uint16_t self, uint16_t other)
{
	struct xbd_evtchn *e;
	uint32_t gp, gm, p2, p3, port, i;

	P = xbd_test_sim_open(self);
	CHECK_EQ(xbd_evtchn_open(P, &e), 0);

	/* 1: an unbound port for dom0 */
	CHECK_EQ(xbd_evtchn_alloc_unbound(e, 0, &gp), 0);
	send_port(fd, gp);

	/* 2: dom0 notifies; masked until unmask, then delivered again */
	recv_port(fd);
	CHECK_EQ(next_event(e), gp);
	send_port(fd, 0);
	recv_port(fd); /* dom0 notified three times more */
	CHECK(quiet(e));
	CHECK_EQ(xbd_evtchn_unmask(e, gp), 0);
	CHECK_EQ(next_event(e), gp);
	CHECK_EQ(xbd_evtchn_unmask(e, gp), 0);
	CHECK(quiet(e));
	send_port(fd, 0);

	/* 3: the other direction */
	CHECK_EQ(xbd_evtchn_notify(e, gp), 0);
	send_port(fd, 0);

	/* 4: a port for another domain, which dom0 cannot bind */
	CHECK_EQ(xbd_evtchn_alloc_unbound(e, other, &gm), 0);
	send_port(fd, gm);
	recv_port(fd);
	CHECK_EQ(xbd_evtchn_unbind(e, gm), 0);

	/* 5: ping-pong */
	CHECK_EQ(xbd_evtchn_alloc_unbound(e, 0, &p2), 0);
	send_port(fd, p2);
	for (i = 0; i < PINGPONGS; i++) {
		port = next_event(e);
		if (port != p2) {
			CHECK_EQ(port, p2);
			break;
		}
		if (xbd_evtchn_unmask(e, p2) || xbd_evtchn_notify(e, p2)) {
			CHECK(!"unmask or notify failed");
			break;
		}
	}
	recv_port(fd);

	/* 6: we unbind; dom0's end becomes unbound and its notify is lost */
	CHECK_EQ(xbd_evtchn_unbind(e, gp), 0);
	CHECK_EQ(xbd_evtchn_unbind(e, gp), -EINVAL);
	send_port(fd, 0);
	recv_port(fd);
	CHECK(quiet(e));

	/* 7: we are destroyed with a bound port */
	CHECK_EQ(xbd_evtchn_alloc_unbound(e, 0, &p3), 0);
	send_port(fd, p3);
	recv_port(fd);
	CHECK(xbd_evtchn_notify(e, p3) < 0);
	CHECK_EQ(xbd_evtchn_alloc_unbound(e, 0, &port), -ESRCH);
	CHECK_EQ(xbd_evtchn_bind_interdomain(e, 0, 1, &port), -ESRCH);
	CHECK(quiet(e));
	xbd_evtchn_close(e);
	xbd_platform_close(P);
	return check_report("test_sim_evtchn (guest)");
}

/* What a notify costs the caller, with no sleeping receiver to wake:
 * delivered (a write to the receiver's fd) and into a masked port (an
 * atomic only).  A loopback channel from e to e2 within dom0. */
static void notify_costs(struct xbd_evtchn *e, struct xbd_evtchn *e2)
{
	uint32_t a, b, port, i, bad = 0;
	unsigned long long t0, delivered_ns, masked_ns;

	CHECK_EQ(xbd_evtchn_alloc_unbound(e2, 0, &a), 0);
	CHECK_EQ(xbd_evtchn_bind_interdomain(e, 0, a, &b), 0);
	CHECK_EQ(next_event(e), b);
	CHECK_EQ(xbd_evtchn_unmask(e, b), 0);
	t0 = xbd_now_ns();
	for (i = 0; i < PINGPONGS; i++) {
		bad += xbd_evtchn_notify(e, b) != 0;
		bad += xbd_evtchn_pending(e2, &port) != 0 || port != a;
		bad += xbd_evtchn_unmask(e2, a) != 0;
	}
	delivered_ns = xbd_now_ns() - t0;
	CHECK_EQ(bad, 0);
	CHECK_EQ(xbd_evtchn_notify(e, b), 0); /* delivered, now masked */
	t0 = xbd_now_ns();
	for (i = 0; i < PINGPONGS; i++)
		bad += xbd_evtchn_notify(e, b) != 0;
	masked_ns = xbd_now_ns() - t0;
	CHECK_EQ(bad, 0);
	CHECK_EQ(xbd_evtchn_pending(e2, &port), 0);
	CHECK_EQ(xbd_evtchn_pending(e2, &port), -EAGAIN);
	printf("notify + pending + unmask, nobody asleep: %.2f us\n",
	       (double)delivered_ns / 1000.0 / PINGPONGS);
	printf("notify into a masked port: %.0f ns\n",
	       (double)masked_ns / PINGPONGS);
	CHECK_EQ(xbd_evtchn_unbind(e, b), 0);
	CHECK_EQ(xbd_evtchn_unbind(e2, a), 0);
}

static void host(int fd, uint16_t guest_id, uint16_t other)
{
	struct xbd_evtchn *e, *e2;
	uint32_t gp, gm, lp, l2, l3, p2, p3, port, i;
	unsigned long long t0, total, notify_ns = 0;
	double rt_us;

	(void)other; /* only the guest uses it */
	CHECK_EQ(xbd_evtchn_open(P, &e), 0);
	CHECK_EQ(xbd_evtchn_open(P, &e2), 0);
	CHECK(xbd_evtchn_fd(e) != xbd_evtchn_fd(e2));

	/* 1: bind; Xen marks the new port pending, so one event comes */
	gp = recv_port(fd);
	CHECK_EQ(xbd_evtchn_bind_interdomain(e, guest_id, gp, &lp), 0);
	CHECK_EQ(next_event(e), lp);
	CHECK_EQ(xbd_evtchn_unmask(e, lp), 0);
	CHECK(quiet(e));

	/* 2: masking contract, seen from the guest */
	CHECK_EQ(xbd_evtchn_notify(e, lp), 0);
	send_port(fd, 0);
	recv_port(fd);
	for (i = 0; i < 3; i++)
		CHECK_EQ(xbd_evtchn_notify(e, lp), 0);
	send_port(fd, 0);
	recv_port(fd);

	/* 3: the guest notifies us */
	recv_port(fd);
	CHECK_EQ(next_event(e), lp);
	CHECK_EQ(xbd_evtchn_unmask(e, lp), 0);
	CHECK(quiet(e2)); /* the other handle hears nothing */

	/* 4: Xen's refusals */
	CHECK_EQ(xbd_evtchn_bind_interdomain(e, guest_id, gp, &port), -EINVAL);
	CHECK_EQ(xbd_evtchn_bind_interdomain(e, guest_id, 0, &port), -EINVAL);
	CHECK_EQ(xbd_evtchn_bind_interdomain(e, guest_id, 1u << 20, &port), -EINVAL);
	CHECK_EQ(xbd_evtchn_bind_interdomain(e, XBD_SIM_MAX_DOMID, 1, &port), -ESRCH);
	gm = recv_port(fd);
	CHECK_EQ(xbd_evtchn_bind_interdomain(e, guest_id, gm, &port), -EINVAL);
	CHECK_EQ(xbd_evtchn_notify(e2, lp), -ENOTCONN); /* not e2's port */
	CHECK_EQ(xbd_evtchn_notify(e, 4000), -ENOTCONN);
	CHECK_EQ(xbd_evtchn_unmask(e, 4000), -EINVAL);
	CHECK_EQ(xbd_evtchn_unbind(e2, lp), -EINVAL);
	send_port(fd, 0);

	/* 5: ping-pong, timed */
	p2 = recv_port(fd);
	CHECK_EQ(xbd_evtchn_bind_interdomain(e, guest_id, p2, &l2), 0);
	CHECK_EQ(next_event(e), l2);
	CHECK_EQ(xbd_evtchn_unmask(e, l2), 0);
	t0 = xbd_now_ns();
	for (i = 0; i < PINGPONGS; i++) {
		unsigned long long n0 = xbd_now_ns();
		int err = xbd_evtchn_notify(e, l2);

		notify_ns += xbd_now_ns() - n0;
		if (err || (port = next_event(e)) != l2 ||
		    xbd_evtchn_unmask(e, l2)) {
			CHECK(!"ping-pong broke");
			fprintf(stderr, "round %u: notify %d, port %u\n", i, err, port);
			break;
		}
	}
	total = xbd_now_ns() - t0;
	send_port(fd, 0);
	rt_us = (double)total / 1000.0 / PINGPONGS;
	printf("event channel round trip: %.2f us (%u ping-pongs between two processes)\n",
	       rt_us, PINGPONGS);
	printf("notify call (delivering to an unmasked port): %.2f us\n",
	       (double)notify_ns / 1000.0 / PINGPONGS);
	CHECK(rt_us < MAX_ROUND_TRIP_US);
	notify_costs(e, e2);

	/* 6: the guest unbinds: our end is unbound, notify is dropped */
	recv_port(fd);
	CHECK_EQ(xbd_evtchn_notify(e, lp), 0);
	send_port(fd, 0);
	CHECK_EQ(xbd_evtchn_unbind(e, lp), 0);
	CHECK_EQ(xbd_evtchn_notify(e, lp), -ENOTCONN);

	/* 7: the guest is destroyed */
	p3 = recv_port(fd);
	CHECK_EQ(xbd_evtchn_bind_interdomain(e, guest_id, p3, &l3), 0);
	CHECK_EQ(next_event(e), l3);
	CHECK_EQ(xbd_evtchn_unmask(e, l3), 0);
	CHECK_EQ(xbd_sim_vm_destroy(sim_dir, "guest"), 0);
	CHECK_EQ(xbd_evtchn_notify(e, l3), 0); /* silently dropped */
	CHECK_EQ(xbd_evtchn_bind_interdomain(e, guest_id, p3, &port), -ESRCH);
	/* Xen does not check the remote domain of an unbound port */
	CHECK_EQ(xbd_evtchn_alloc_unbound(e, guest_id, &port), 0);
	CHECK_EQ(xbd_evtchn_unbind(e, port), 0);
	CHECK_EQ(xbd_evtchn_unbind(e, l3), 0);
	send_port(fd, 0);
	CHECK(quiet(e));
	xbd_evtchn_close(e2);
	xbd_evtchn_close(e);
}

int main(void)
{
	sim_dir = xbd_test_sim_start();
	CHECK_EQ(xbd_test_guest_and_host(guest, host, &P), 0);
	CHECK_EQ(xbd_test_sim_stop(), 0);
	return check_report("test_sim_evtchn");
}

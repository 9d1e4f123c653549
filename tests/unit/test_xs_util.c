/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The xenstore helpers on a sim: xbd_xs_exists, the numbered entries
 * of a directory, the process records (xbd-pid and xbd-pid-start), and
 * that a transaction that always
 * conflicts is given up on. */
#include "xbd/common.h"
#include "xbd/platform.h"
#include "tests/lib/testlib.h"
#include "xbd/util.h"
#include "tests/lib/check.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DIR_ "/local/domain/0/xbd-test-util"

static struct xbd_platform *other; /* a second connection that interferes */
static unsigned calls;

/* Writes a node, then has the other connection write it too: the
 * commit conflicts every time. */
static int conflicting_txn(struct xbd_platform *p, xbd_xs_txn t, void *arg)
{
	int err;

	(void)arg;
	calls++;
	err = xbd_xs_printf(p, t, DIR_ "/busy", "%u", calls);
	if (!err)
		err = xbd_xs_printf(other, XBD_XS_NO_TXN, DIR_ "/busy", "x%u", calls);
	return err;
}

static int stop_txn(struct xbd_platform *p, xbd_xs_txn t, void *arg)
{
	(void)p;
	(void)t;
	(void)arg;
	calls++;
	return 1;
}

int main(void)
{
	struct xbd_platform *p;
	struct xbd_proc self, got;
	unsigned long long t0, ms;
	uint32_t *ids = NULL;
	unsigned n = 0, i, seen = 0;

	xbd_test_sim_start();
	p = xbd_test_sim_open(0);
	other = xbd_test_sim_open(0);

	CHECK(!xbd_xs_exists(p, XBD_XS_NO_TXN, DIR_));
	CHECK_EQ(xbd_xs_printf(p, XBD_XS_NO_TXN, DIR_ "/a", "1"), 0);
	CHECK(xbd_xs_exists(p, XBD_XS_NO_TXN, DIR_));
	CHECK(xbd_xs_exists(p, XBD_XS_NO_TXN, DIR_ "/a"));
	CHECK(!xbd_xs_exists(p, XBD_XS_NO_TXN, DIR_ "/b"));

	/* numbered entries only, and none above max: a guest names its
	 * nodes as it likes */
	CHECK_EQ(xbd_xs_printf(p, XBD_XS_NO_TXN, DIR_ "/ids/51712", "x"), 0);
	CHECK_EQ(xbd_xs_printf(p, XBD_XS_NO_TXN, DIR_ "/ids/768", "x"), 0);
	CHECK_EQ(xbd_xs_printf(p, XBD_XS_NO_TXN, DIR_ "/ids/xvda", "x"), 0);
	CHECK_EQ(xbd_xs_printf(p, XBD_XS_NO_TXN, DIR_ "/ids/-1", "x"), 0);
	CHECK_EQ(xbd_xs_printf(p, XBD_XS_NO_TXN, DIR_ "/ids/70000", "x"), 0);
	CHECK_EQ(xbd_xs_directory_ids(p, DIR_ "/ids", 65535, &ids, &n), 0);
	CHECK_EQ(n, 2);
	for (i = 0; i < n; i++)
		seen |= ids[i] == 768 ? 1 : ids[i] == 51712 ? 2 : 4;
	CHECK_EQ(seen, 3);
	free(ids);
	CHECK_EQ(xbd_xs_directory_ids(p, DIR_ "/none", 65535, &ids, &n), -ENOENT);

	/* the record a process leaves, read back whole */
	CHECK_EQ(xbd_proc_self(&self), 0);
	CHECK_EQ(xbd_xs_write_proc(p, XBD_XS_NO_TXN, DIR_, &self), 0);
	memset(&got, 0, sizeof(got));
	CHECK_EQ(xbd_xs_read_proc(p, DIR_, &got), 0);
	CHECK(got.pid == self.pid && got.start == self.start);
	CHECK(xbd_proc_alive(&got));
	/* a PID reused by another process: the start time gives it away */
	CHECK_EQ(xbd_xs_printf(p, XBD_XS_NO_TXN, DIR_ "/" XBD_XS_PID_START_NODE,
			       "%llu", self.start + 1), 0);
	CHECK_EQ(xbd_xs_read_proc(p, DIR_, &got), 0);
	CHECK(!xbd_proc_alive(&got));
	/* an older xbd's record, a bare PID: start unknown */
	CHECK_EQ(xbd_xs_rm(p, XBD_XS_NO_TXN,
					       DIR_ "/" XBD_XS_PID_START_NODE), 0);
	CHECK_EQ(xbd_xs_read_proc(p, DIR_, &got), 0);
	CHECK(got.pid == self.pid && got.start == 0);
	CHECK(xbd_proc_alive(&got));
	CHECK_EQ(xbd_xs_printf(p, XBD_XS_NO_TXN, DIR_ "/" XBD_XS_PID_NODE, "-1"), 0);
	CHECK_EQ(xbd_xs_read_proc(p, DIR_, &got), -EINVAL);
	CHECK_EQ(xbd_xs_read_proc(p, DIR_ "/none", &got), -ENOENT);

	/* a transaction that always conflicts ends, bounded */
	calls = 0;
	t0 = xbd_now_ns();
	CHECK_EQ(xbd_xs_transaction(p, conflicting_txn, NULL), -EAGAIN);
	ms = (xbd_now_ns() - t0) / 1000000;
	printf("gave up after %u tries, %llu ms\n", calls, ms);
	CHECK(calls >= 2 && calls <= XBD_XS_TXN_TRIES);
	CHECK(ms < XBD_XS_TXN_MS + 2000);
	/* a positive answer stops it without an error of its own */
	calls = 0;
	CHECK_EQ(xbd_xs_transaction(p, stop_txn, NULL), 1);
	CHECK_EQ(calls, 1);

	xbd_xs_rm(p, XBD_XS_NO_TXN, DIR_);
	xbd_platform_close(other);
	xbd_platform_close(p);
	return check_report("test_xs_util");
}

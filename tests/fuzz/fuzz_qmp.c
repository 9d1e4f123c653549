/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The QMP client (src/qmp.c) against whatever a QEMU could send: the
 * input is the whole stream from the monitor (greeting, replies,
 * events), fed through a socket pair that ends after it.  Checks,
 * besides ASan and UBSan, that a session ends (EOF is an error, never a
 * wait), that an answer holds at most XBD_QMP_MAX_DEVICES entries with
 * terminated names, and that a disk found is one of them.
 */
#include "tests/fuzz/fuzz.h"
#include "xbd/qmp.h"

#include <errno.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_INPUT 65536 /* fits a socket pair's buffer: written at once */

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const struct xbd_qmp_blockstats *e;
	struct xbd_qmp_blockstats *s = NULL;
	unsigned n = 0, i;
	int sv[2], err;

	if (size > MAX_INPUT)
		return 0;
	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		abort();
	if (size && write(sv[1], data, size) != (ssize_t)size)
		abort();
	shutdown(sv[1], SHUT_WR);
	err = xbd_qmp_blockstats_fd(sv[0], 1000, &s, &n);
	FUZZ_CHECK(err != -ETIMEDOUT);
	if (!err) {
		FUZZ_CHECK(n <= XBD_QMP_MAX_DEVICES);
		for (i = 0; i < n; i++) {
			FUZZ_CHECK(memchr(s[i].node_name, 0, sizeof(s[i].node_name)));
			FUZZ_CHECK(memchr(s[i].qdev, 0, sizeof(s[i].qdev)));
		}
		e = xbd_qmp_find_vdev(s, n, "xvda");
		FUZZ_CHECK(!e || (e >= s && e < s + n));
		free(s);
	}
	close(sv[0]);
	close(sv[1]);
	return 0;
}

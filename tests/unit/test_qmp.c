/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit test of the QMP client (src/qmp.c) against a fake QEMU on a Unix
 * socket: the greeting, qmp_capabilities and query-blockstats as QEMU
 * 7.2 answers them for qdisk disks (node names "VDEV-DRIVER"), replies
 * cut into small pieces with an event in between; and the peers it must
 * survive: a QEMU that never greets (another client holds the monitor),
 * one that answers with an error, with garbage, with an endless reply,
 * with fields of the wrong type; a missing socket; the fall-back from
 * xentop's socket to libxl's.
 *
 * The same binary is the fake QEMU of the xbdsh sim test (xbdsh_qdisk):
 *   test_qmp --serve SOCKET
 * answers every client as QEMU does (blockstats of xvda-raw and
 * xvdb-qcow2, as below), prints "ready" and serves until killed.
 */
#include "tests/lib/check.h"
#include "xbd/qmp.h"

#include <errno.h>
#include <json.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum fake_mode {
	FAKE_OK,      /* greeting, event, reply in pieces */
	FAKE_SILENT,  /* accepts, says nothing */
	FAKE_ERROR,   /* query-blockstats answers an error */
	FAKE_GARBAGE, /* not JSON */
	FAKE_ENDLESS, /* a reply that never ends */
	FAKE_ODD,     /* fields of the wrong type, too many devices */
};

struct fake {
	int lfd;
	enum fake_mode mode;
	pthread_t thread;
	char path[108];
};

static const char GREETING[] =
	"{\"QMP\": {\"version\": {\"qemu\": {\"micro\": 0, \"minor\": 2, \"major\": 7}, "
	"\"package\": \"Debian 1:7.2+dfsg-7\"}, \"capabilities\": [\"oob\"]}}\r\n";

static const char BLOCKSTATS[] =
	"{\"return\": [{\"device\": \"\", \"parent\": {\"stats\": {\"rd_bytes\": 1}, "
	"\"node-name\": \"#block123\"}, \"stats\": {\"flush_total_time_ns\": 4000, "
	"\"wr_highest_offset\": 9437184, \"wr_total_time_ns\": 3000, \"failed_wr_operations\": 0, "
	"\"failed_rd_operations\": 0, \"wr_merged\": 0, \"wr_bytes\": 1048576, "
	"\"timed_stats\": [], \"failed_unmap_operations\": 0, \"failed_flush_operations\": 0, "
	"\"account_invalid\": true, \"rd_total_time_ns\": 2000, \"invalid_unmap_operations\": 0, "
	"\"flush_operations\": 7, \"wr_operations\": 256, \"unmap_merged\": 0, "
	"\"rd_bytes\": 17301504, \"unmap_total_time_ns\": 0, \"invalid_flush_operations\": 0, "
	"\"account_failed\": true, \"idle_time_ns\": 12345, \"rd_merged\": 0, "
	"\"invalid_rd_operations\": 0, \"invalid_wr_operations\": 0, \"rd_operations\": 600, "
	"\"unmap_operations\": 3, \"unmap_bytes\": 0}, \"node-name\": \"xvda-raw\", "
	"\"qdev\": \"/machine/peripheral-anon/device[0]\"}, "
	"{\"device\": \"\", \"stats\": {\"rd_operations\": 5, \"rd_bytes\": 20480}, "
	"\"node-name\": \"xvdb-qcow2\", \"qdev\": \"/machine/peripheral-anon/device[1]\"}]}\r\n";

/* Reads up to a newline (a command of the client); false on EOF. */
static bool read_line(int fd, char *buf, size_t len)
{
	size_t n = 0;

	while (n + 1 < len) {
		if (read(fd, buf + n, 1) != 1)
			return false;
		if (buf[n++] == '\n')
			break;
	}
	buf[n] = '\0';
	return true;
}

/* Writes s in pieces of `piece` bytes, with a pause, so that the
 * client sees objects cut anywhere. */
static void send_pieces(int fd, const char *s, size_t piece)
{
	size_t len = strlen(s), off = 0;

	while (off < len) {
		size_t k = len - off < piece ? len - off : piece;

		if (send(fd, s + off, k, MSG_NOSIGNAL) != (ssize_t)k)
			return;
		off += k;
		usleep(200);
	}
}

static void *fake_main(void *arg)
{
	struct fake *f = arg;
	char line[256];
	int fd = accept(f->lfd, NULL, NULL);

	if (fd < 0)
		return NULL;
	switch (f->mode) {
	case FAKE_SILENT:
		/* until the client gives up and closes */
		read_line(fd, line, sizeof(line));
		break;
	case FAKE_GARBAGE:
		send_pieces(fd, "Hello, I am not QEMU }{\r\n", 1000);
		read_line(fd, line, sizeof(line));
		break;
	default:
		send_pieces(fd, GREETING, 17);
		if (!read_line(fd, line, sizeof(line)))
			break;
		CHECK(strstr(line, "\"qmp_capabilities\"") != NULL);
		send_pieces(fd, "{\"return\": {}}\r\n", 1000);
		if (!read_line(fd, line, sizeof(line)))
			break;
		CHECK(strstr(line, "\"query-blockstats\"") != NULL);
		send_pieces(fd, "{\"timestamp\": {\"seconds\": 1, \"microseconds\": 2}, "
			     "\"event\": \"RESUME\"}\r\n", 5);
		if (f->mode == FAKE_OK) {
			send_pieces(fd, BLOCKSTATS, 61);
		} else if (f->mode == FAKE_ERROR) {
			send_pieces(fd, "{\"error\": {\"class\": \"GenericError\", "
				     "\"desc\": \"no\"}}\r\n", 1000);
		} else if (f->mode == FAKE_ENDLESS) {
			char chunk[4096];
			int i;

			memset(chunk, ' ', sizeof(chunk));
			memcpy(chunk, "{\"return\": [\"", 13);
			send_pieces(fd, "", 1);
			/* 8 MiB of one string; the client must stop at its cap */
			for (i = 0; i < 2048; i++) {
				if (send(fd, chunk, sizeof(chunk), MSG_NOSIGNAL) < 0)
					break;
				memset(chunk, 'x', 13);
			}
		} else {
			char *doc = malloc(1 << 16);
			size_t off;
			int i;

			off = (size_t)sprintf(doc, "{\"return\": [{\"node-name\": \"xvda-raw\", "
					     "\"stats\": {\"rd_bytes\": \"12\", \"wr_bytes\": -5, "
					     "\"rd_operations\": 1.5, \"wr_operations\": 9}}, 17");
			for (i = 0; i < 100; i++)
				off += (size_t)sprintf(doc + off, ", {\"node-name\": \"n%d\"}", i);
			sprintf(doc + off, "]}\r\n");
			send_pieces(fd, doc, 4096);
			free(doc);
		}
		read_line(fd, line, sizeof(line)); /* until the client closes */
		break;
	}
	close(fd);
	return NULL;
}

static void fake_start(struct fake *f, const char *dir, const char *name,
		       enum fake_mode mode)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };

	f->mode = mode;
	snprintf(f->path, sizeof(f->path), "%s/%s", dir, name);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", f->path);
	unlink(f->path);
	f->lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f->lfd < 0 || bind(f->lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(f->lfd, 1)) {
		perror("fake QMP socket");
		exit(1);
	}
	if (pthread_create(&f->thread, NULL, fake_main, f)) {
		perror("pthread_create");
		exit(1);
	}
}

static void fake_stop(struct fake *f)
{
	/* a fake that was never connected still waits in accept() */
	shutdown(f->lfd, SHUT_RDWR);
	pthread_join(f->thread, NULL);
	close(f->lfd);
	unlink(f->path);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static int query(struct fake *f, int timeout_ms, struct xbd_qmp_blockstats **s,
		 unsigned *n)
{
	*s = NULL;
	*n = 0;
	return xbd_qmp_query_blockstats(f->path, timeout_ms, s, n);
}

static int serve(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct fake f = { .mode = FAKE_OK };

	snprintf(f.path, sizeof(f.path), "%s", path);
	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	unlink(path);
	f.lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (f.lfd < 0 || bind(f.lfd, (struct sockaddr *)&sa, sizeof(sa)) ||
	    listen(f.lfd, 4)) {
		perror(path);
		return 1;
	}
	printf("ready\n");
	fflush(stdout);
	for (;;)
		fake_main(&f); /* one client after the other, as QEMU */
}

int main(int argc, char **argv)
{
	char dir[] = "/tmp/test_qmp.XXXXXX";
	const struct xbd_qmp_blockstats *e;
	struct xbd_qmp_blockstats *s;
	struct fake f;
	unsigned n;
	double t0;
	int err;

	if (argc == 3 && !strcmp(argv[1], "--serve"))
		return serve(argv[2]);
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}

	/* QEMU 7.2's answer, cut into pieces, an event before it */
	fake_start(&f, dir, "qmp-libxl-3", FAKE_OK);
	err = query(&f, 5000, &s, &n);
	fake_stop(&f);
	CHECK_EQ(err, 0);
	CHECK_EQ(n, 2);
	if (!err && n == 2) {
		e = xbd_qmp_find_vdev(s, n, "xvda");
		CHECK(e == &s[0]);
		if (e) {
			CHECK(!strcmp(e->qdev, "/machine/peripheral-anon/device[0]"));
			CHECK_EQ(e->rd_bytes, 17301504);
			CHECK_EQ(e->wr_bytes, 1048576);
			CHECK_EQ(e->rd_ops, 600);
			CHECK_EQ(e->wr_ops, 256);
			CHECK_EQ(e->flush_ops, 7);
			CHECK_EQ(e->unmap_ops, 3);
			CHECK_EQ(e->rd_total_ns, 2000);
			CHECK_EQ(e->wr_total_ns, 3000);
			CHECK_EQ(e->flush_total_ns, 4000);
		}
		e = xbd_qmp_find_vdev(s, n, "xvdb");
		CHECK(e == &s[1]);
		if (e) {
			CHECK_EQ(e->rd_ops, 5);
			CHECK_EQ(e->wr_ops, 0);
		}
		CHECK(xbd_qmp_find_vdev(s, n, "xvd") == NULL);
		CHECK(xbd_qmp_find_vdev(s, n, "xvdc") == NULL);
		CHECK(xbd_qmp_find_vdev(s, n, "") == NULL);
	}
	free(s);

	/* xentop's socket is missing: libxl's answers */
	fake_start(&f, dir, "qmp-libxl-3", FAKE_OK);
	s = NULL;
	err = xbd_qmp_domain_blockstats(dir, 3, 5000, &s, &n);
	fake_stop(&f);
	CHECK_EQ(err, 0);
	CHECK_EQ(n, 2);
	free(s);
	CHECK_EQ(xbd_qmp_domain_blockstats(dir, 4, 500, &s, &n), -ENOENT);

	/* a QEMU that never greets: the deadline holds */
	fake_start(&f, dir, "qmp-libxl-3", FAKE_SILENT);
	t0 = now_s();
	err = query(&f, 300, &s, &n);
	CHECK_EQ(err, -ETIMEDOUT);
	CHECK(now_s() - t0 < 2.0);
	fake_stop(&f);

	fake_start(&f, dir, "qmp-libxl-3", FAKE_ERROR);
	CHECK_EQ(query(&f, 5000, &s, &n), -EREMOTEIO);
	fake_stop(&f);

	fake_start(&f, dir, "qmp-libxl-3", FAKE_GARBAGE);
	CHECK_EQ(query(&f, 5000, &s, &n), -EPROTO);
	fake_stop(&f);

	/* 8 MiB of one reply: refused at the cap, not read whole */
	fake_start(&f, dir, "qmp-libxl-3", FAKE_ENDLESS);
	CHECK_EQ(query(&f, 20000, &s, &n), -EPROTO);
	fake_stop(&f);

	/* wrong types read as 0; a non-object entry is empty; the list is capped */
	fake_start(&f, dir, "qmp-libxl-3", FAKE_ODD);
	err = query(&f, 5000, &s, &n);
	fake_stop(&f);
	CHECK_EQ(err, 0);
	CHECK_EQ(n, XBD_QMP_MAX_DEVICES);
	if (!err && n) {
		CHECK_EQ(s[0].rd_bytes, 0);
		CHECK_EQ(s[0].wr_bytes, 0);
		CHECK_EQ(s[0].rd_ops, 0);
		CHECK_EQ(s[0].wr_ops, 9);
		CHECK(s[1].node_name[0] == '\0');
		CHECK(!strcmp(s[2].node_name, "n0"));
	}
	free(s);

	CHECK_EQ(xbd_qmp_query_blockstats("/nonexistent/qmp", 500, &s, &n), -ENOENT);
	rmdir(dir);
	return check_report("test_qmp");
}

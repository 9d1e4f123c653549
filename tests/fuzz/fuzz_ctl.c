/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket, both ends (src/ctl.c, src/ctl_client.c): a
 * request line as any local client sends it to a running server (`xbd
 * serve`'s, `xbd attach`'s), and a reply as the client side (`xbd
 * list`, xbdsh) reads and parses it from whatever listens on a socket
 * in the run directory.  Real sockets in a private run directory; the
 * code is used as it is.
 *
 * Checks: the server answers every request with one JSON document of
 * its version, the statistics for "stats" and "ring" and an error for
 * anything else; and the client accepts a reply only as a document of
 * its version without an error, whatever the bytes.
 *
 * Input: [mode] then the request (mode even) or the reply (mode odd).
 */
#include "tests/fuzz/fuzz.h"
#include "xbd/ctl.h"
#include "xbd/stats.h"

#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static char dir[80]; /* room for a socket name in sun_path */
static struct xbd_ctl *ctl;
static struct xbd_stats stats;
static char fake_path[108];
static int fake_fd = -1;
static pthread_mutex_t fake_lock = PTHREAD_MUTEX_INITIALIZER;
static const uint8_t *fake_reply;
static size_t fake_len;

static void query(void *opaque, struct xbd_ctl_state *st)
{
	(void)opaque;
	st->xenbus_state = 4;
	st->sectors = 2048;
	st->sector_size = 512;
}

/* A server that answers anything with the current input. */
static void *fake_server(void *arg)
{
	(void)arg;
	for (;;) {
		int fd = accept4(fake_fd, NULL, NULL, SOCK_CLOEXEC);
		char line[128];

		if (fd < 0)
			continue;
		(void)recv(fd, line, sizeof(line), 0);
		pthread_mutex_lock(&fake_lock);
		if (fake_len)
			(void)send(fd, fake_reply, fake_len, MSG_NOSIGNAL);
		pthread_mutex_unlock(&fake_lock);
		close(fd);
	}
	return NULL;
}

static void cleanup(void)
{
	xbd_ctl_stop(ctl);
	unlink(fake_path);
	rmdir(dir);
}

static void setup(void)
{
	const char *tmp = getenv("TMPDIR");
	struct xbd_ctl_device desc = { .vm = "vm1", .domid = 1, .vdev = "xvda",
				       .devid = 51712, .role = XBD_CTL_SERVE,
				       .backend = "xbd", .sectors = 2048,
				       .sector_size = 512, .stats = &stats,
				       .query = query };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct xbd_ctl_dev *dev;
	pthread_t t;

	fuzz_quiet_logs();
	if (!tmp || !*tmp || strlen(tmp) > 50)
		tmp = "/tmp";
	snprintf(dir, sizeof(dir), "%s/xbd-fuzz-ctl.XXXXXX", tmp);
	FUZZ_CHECK(mkdtemp(dir));
	setenv("XBD_RUN_DIR", dir, 1);
	xbd_stats_init(&stats);
	FUZZ_CHECK(xbd_ctl_start(&ctl) == 0);
	FUZZ_CHECK(xbd_ctl_add_device(ctl, &desc, &dev) == 0);
	/* not named xbd-<pid>.sock: only asked by path */
	snprintf(fake_path, sizeof(fake_path), "%s/fake", dir);
	strcpy(sa.sun_path, fake_path);
	fake_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	FUZZ_CHECK(fake_fd >= 0);
	FUZZ_CHECK(bind(fake_fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	FUZZ_CHECK(listen(fake_fd, 16) == 0);
	FUZZ_CHECK(pthread_create(&t, NULL, fake_server, NULL) == 0);
	pthread_detach(t);
	atexit(cleanup);
}

/* The request line the server sees: the C string of its first 63
 * bytes, cut at CR or LF. */
static bool asks_stats(const uint8_t *p, size_t n)
{
	char line[64];

	n = n < sizeof(line) - 1 ? n : sizeof(line) - 1;
	memcpy(line, p, n);
	line[n] = '\0';
	line[strcspn(line, "\r\n")] = '\0';
	return !strcmp(line, "stats") || !strcmp(line, "ring");
}

static void ask_server(const uint8_t *p, size_t n)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	static char buf[1 << 20];
	struct json_object *doc, *v;
	size_t len = 0;
	int fd;

	strcpy(sa.sun_path, xbd_ctl_socket_path(ctl));
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(connect(fd, (struct sockaddr *)&sa, sizeof(sa)) == 0);
	if (n && send(fd, p, n, MSG_NOSIGNAL) != (ssize_t)n) {
		close(fd);
		return;
	}
	shutdown(fd, SHUT_WR);
	for (;;) {
		ssize_t r = recv(fd, buf + len, sizeof(buf) - 1 - len, 0);

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
		FUZZ_CHECK(len < sizeof(buf) - 1);
	}
	close(fd);
	buf[len] = '\0';
	if (!n) {
		FUZZ_CHECK(len == 0); /* nothing asked, nothing answered */
		return;
	}
	if (!len)
		return; /* dropped: more than a line, not read to the end */
	FUZZ_CHECK(buf[len - 1] == '\n');
	doc = json_tokener_parse(buf);
	FUZZ_CHECK(doc && json_object_is_type(doc, json_type_object));
	FUZZ_CHECK(json_object_object_get_ex(doc, "version", &v) &&
		   json_object_get_int(v) == 1);
	FUZZ_CHECK(json_object_object_get_ex(doc, "error_code", &v) ==
		   !asks_stats(p, n));
	json_object_put(doc);
}

static void ask_fake(const uint8_t *p, size_t n)
{
	struct json_object *doc = NULL, *v;
	int err;

	pthread_mutex_lock(&fake_lock);
	fake_reply = p;
	fake_len = n;
	pthread_mutex_unlock(&fake_lock);
	err = xbd_ctl_query(fake_path, "stats", 2000, &doc);
	pthread_mutex_lock(&fake_lock);
	fake_len = 0;
	pthread_mutex_unlock(&fake_lock);
	if (err) {
		FUZZ_CHECK(err < 0);
		return;
	}
	FUZZ_CHECK(doc && json_object_is_type(doc, json_type_object));
	FUZZ_CHECK(json_object_object_get_ex(doc, "version", &v) &&
		   json_object_is_type(v, json_type_int) &&
		   json_object_get_int(v) == 1);
	FUZZ_CHECK(!json_object_object_get_ex(doc, "error_code", NULL));
	json_object_put(doc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ctl)
		setup();
	if (!size)
		return 0;
	if (data[0] & 1)
		ask_fake(data + 1, size - 1);
	else
		ask_server(data + 1, size - 1);
	return 0;
}

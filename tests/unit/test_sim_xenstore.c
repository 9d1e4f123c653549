/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Unit test of the sim's xenstore daemon (src/sim/sim_xenstored_*.c),
 * driven by the unmodified libxenstore over its Unix socket: nodes,
 * permissions, watches, transactions, domain introduction and release, a guest
 * connection's access rights, long directories, and hostile clients
 * speaking the raw wire protocol.
 */
#include "xbd/common.h"
#include "src/sim/sim.h"
#include "tests/lib/check.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>

static char dir[64];
static char dom0_sock[96];

static struct xs_handle *open_at(const char *path)
{
	setenv("XENSTORED_PATH", path, 1);
	return xs_open(XS_OPEN_SOCKETONLY);
}

static bool read_is(struct xs_handle *h, xs_transaction_t t, const char *path,
		    const char *want)
{
	unsigned int len;
	char *v = xs_read(h, t, path, &len);
	bool ok = v && len == strlen(want) && !memcmp(v, want, len);

	if (!ok)
		fprintf(stderr, "read %s: got %s, expected %s\n", path,
			v ? v : strerror(errno), want);
	free(v);
	return ok;
}

/* errno of a read expected to fail, 0 if it succeeded. */
static int read_errno(struct xs_handle *h, const char *path)
{
	char *v = xs_read(h, XBT_NULL, path, NULL);

	if (v) {
		free(v);
		return 0;
	}
	return errno;
}

static int write_errno(struct xs_handle *h, const char *path, const char *v)
{
	return xs_write(h, XBT_NULL, path, v, strlen(v)) ? 0 : errno;
}

static bool set_perms(struct xs_handle *h, const char *path,
		      struct xs_permissions *p, unsigned int n)
{
	return xs_set_permissions(h, XBT_NULL, path, p, n);
}

/* Waits up to 2 s for the next watch event and compares it. */
static bool next_event_is(struct xs_handle *h, const char *path,
			  const char *token)
{
	struct pollfd pfd = { .fd = xs_fileno(h), .events = POLLIN };
	int waited = 0;
	char **ev;
	bool ok;

	for (;;) {
		ev = xs_check_watch(h);
		if (ev || waited >= 2000)
			break;
		poll(&pfd, 1, 50);
		waited += 50;
	}
	if (!ev) {
		fprintf(stderr, "no event, expected %s %s\n", path, token);
		return false;
	}
	ok = !strcmp(ev[XS_WATCH_PATH], path) &&
	     !strcmp(ev[XS_WATCH_TOKEN], token);
	if (!ok)
		fprintf(stderr, "event %s %s, expected %s %s\n",
			ev[XS_WATCH_PATH], ev[XS_WATCH_TOKEN], path, token);
	free(ev);
	return ok;
}

/* The server sends events before the reply to the request that caused
 * them, so after one more round trip nothing pending means none came. */
static bool no_event(struct xs_handle *h)
{
	char **ev;

	free(xs_read(h, XBT_NULL, "/", NULL));
	ev = xs_check_watch(h);
	if (ev) {
		fprintf(stderr, "unexpected event %s %s\n", ev[XS_WATCH_PATH],
			ev[XS_WATCH_TOKEN]);
		free(ev);
		return false;
	}
	return true;
}

static void test_nodes(struct xs_handle *h)
{
	static char big[4000];
	unsigned int n, len;
	char **list, *v;
	struct xs_permissions *p;

	CHECK(xs_write(h, XBT_NULL, "/t/a", "hello", 5));
	CHECK(read_is(h, XBT_NULL, "/t/a", "hello"));
	CHECK(xs_write(h, XBT_NULL, "/t/a", "", 0));
	CHECK(read_is(h, XBT_NULL, "/t/a", ""));
	CHECK_EQ(read_errno(h, "/t/missing"), ENOENT);

	/* Writing creates the parents, which inherit the permissions. */
	CHECK(xs_write(h, XBT_NULL, "/t/deep/er/node", "1", 1));
	CHECK(read_is(h, XBT_NULL, "/t/deep/er", ""));
	p = xs_get_permissions(h, XBT_NULL, "/t/deep/er", &n);
	CHECK(p && n == 1 && p[0].id == 0 && p[0].perms == XS_PERM_NONE);
	free(p);

	/* Binary values keep their NULs. */
	CHECK(xs_write(h, XBT_NULL, "/t/bin", "a\0b", 3));
	v = xs_read(h, XBT_NULL, "/t/bin", &len);
	CHECK(v && len == 3 && !memcmp(v, "a\0b", 3));
	free(v);

	memset(big, 'x', sizeof(big));
	CHECK(xs_write(h, XBT_NULL, "/t/big", big, sizeof(big)));
	v = xs_read(h, XBT_NULL, "/t/big", &len);
	CHECK(v && len == sizeof(big) && !memcmp(v, big, len));
	free(v);

	CHECK(xs_mkdir(h, XBT_NULL, "/t/dir"));
	CHECK(xs_mkdir(h, XBT_NULL, "/t/dir")); /* existing: fine */
	CHECK(read_is(h, XBT_NULL, "/t/dir", ""));

	list = xs_directory(h, XBT_NULL, "/t", &n);
	CHECK(list && n == 5);
	if (list && n == 5) {
		CHECK(!strcmp(list[0], "a") && !strcmp(list[1], "deep") &&
		      !strcmp(list[2], "bin") && !strcmp(list[3], "big") &&
		      !strcmp(list[4], "dir"));
	}
	free(list);
	list = xs_directory(h, XBT_NULL, "/t/missing", &n);
	CHECK(!list && errno == ENOENT);

	/* Relative paths live under /local/domain/0. */
	CHECK(xs_write(h, XBT_NULL, "rel/x", "r", 1));
	CHECK(read_is(h, XBT_NULL, "/local/domain/0/rel/x", "r"));
	CHECK(read_is(h, XBT_NULL, "rel/x", "r"));

	CHECK_EQ(write_errno(h, "/t//a", "x"), EINVAL);
	CHECK_EQ(write_errno(h, "/t/a/", "x"), EINVAL);
	CHECK_EQ(write_errno(h, "/t/a b", "x"), EINVAL);
	CHECK_EQ(read_errno(h, "@introduceDomain"), EINVAL);

	/* rm takes the subtree; a missing node is fine, a missing parent
	 * is not; / stays. */
	CHECK(xs_rm(h, XBT_NULL, "/t/deep"));
	CHECK_EQ(read_errno(h, "/t/deep/er/node"), ENOENT);
	CHECK_EQ(read_errno(h, "/t/deep"), ENOENT);
	CHECK(xs_rm(h, XBT_NULL, "/t/deep"));
	CHECK(!xs_rm(h, XBT_NULL, "/t/deep/er") && errno == ENOENT);
	CHECK(!xs_rm(h, XBT_NULL, "/") && errno == EINVAL);
	list = xs_directory(h, XBT_NULL, "/t", &n);
	CHECK(list && n == 4);
	free(list);
}

static void test_perms(struct xs_handle *h)
{
	struct xs_permissions set[] = {
		{ .id = 3, .perms = XS_PERM_READ },
		{ .id = 5, .perms = XS_PERM_READ | XS_PERM_WRITE },
		{ .id = 7, .perms = XS_PERM_WRITE },
	};
	struct xs_permissions *p;
	unsigned int n;

	CHECK(xs_write(h, XBT_NULL, "/p/node", "v", 1));
	CHECK(set_perms(h, "/p/node", set, 3));
	p = xs_get_permissions(h, XBT_NULL, "/p/node", &n);
	CHECK(p && n == 3);
	if (p && n == 3) {
		CHECK(p[0].id == 3 && p[0].perms == XS_PERM_READ);
		CHECK(p[1].id == 5 &&
		      p[1].perms == (XS_PERM_READ | XS_PERM_WRITE));
		CHECK(p[2].id == 7 && p[2].perms == XS_PERM_WRITE);
	}
	free(p);
	/* Children created later inherit them. */
	CHECK(xs_write(h, XBT_NULL, "/p/node/child", "c", 1));
	p = xs_get_permissions(h, XBT_NULL, "/p/node/child", &n);
	CHECK(p && n == 3 && p[0].id == 3 && p[1].id == 5);
	free(p);
	CHECK(!set_perms(h, "/p/node", set, 0) && errno == EINVAL);
	CHECK(!set_perms(h, "/p/missing/x", set, 1) && errno == ENOENT);
	p = xs_get_permissions(h, XBT_NULL, "@releaseDomain", &n);
	CHECK(p && n == 1 && p[0].id == 0 && p[0].perms == XS_PERM_NONE);
	free(p);
	CHECK(!xs_get_permissions(h, XBT_NULL, "@other", &n) && errno == ENOENT);
}

static void test_watches(struct xs_handle *h, struct xs_handle *h2)
{
	struct xs_permissions p = { .id = 0, .perms = XS_PERM_READ };

	CHECK(xs_write(h2, XBT_NULL, "/w/x/y", "1", 1));
	CHECK(xs_watch(h, "/w", "tok"));
	CHECK(next_event_is(h, "/w", "tok")); /* fires once when set */
	CHECK(!xs_watch(h, "/w", "tok") && errno == EEXIST);
	CHECK(xs_watch(h, "/w/x/y", "deep"));
	CHECK(next_event_is(h, "/w/x/y", "deep"));

	CHECK(xs_write(h2, XBT_NULL, "/w/a", "1", 1));
	CHECK(next_event_is(h, "/w/a", "tok"));
	CHECK(xs_mkdir(h2, XBT_NULL, "/w/b"));
	CHECK(next_event_is(h, "/w/b", "tok"));
	CHECK(xs_write(h2, XBT_NULL, "/other", "1", 1));
	CHECK(set_perms(h2, "/w/a", &p, 1));
	CHECK(next_event_is(h, "/w/a", "tok"));
	CHECK(no_event(h));

	/* rm fires the watch above and the watches set on removed nodes. */
	CHECK(xs_rm(h2, XBT_NULL, "/w"));
	CHECK(next_event_is(h, "/w", "tok"));
	CHECK(next_event_is(h, "/w/x/y", "deep"));
	CHECK(no_event(h));
	/* Removing what is not there changes nothing. */
	CHECK(xs_rm(h2, XBT_NULL, "/w"));
	CHECK(no_event(h));

	CHECK(xs_unwatch(h, "/w", "tok"));
	CHECK(!xs_unwatch(h, "/w", "tok") && errno == ENOENT);
	CHECK(xs_unwatch(h, "/w/x/y", "deep"));
	CHECK(xs_write(h2, XBT_NULL, "/w/again", "1", 1));
	CHECK(no_event(h));

	/* A relative watch hears relative paths. */
	CHECK(xs_watch(h, "relw", "rt"));
	CHECK(next_event_is(h, "relw", "rt"));
	CHECK(xs_write(h2, XBT_NULL, "/local/domain/0/relw/q", "1", 1));
	CHECK(next_event_is(h, "relw/q", "rt"));
	CHECK(xs_unwatch(h, "relw", "rt"));

	/* A watch on / hears everything. */
	CHECK(xs_watch(h, "/", "root"));
	CHECK(next_event_is(h, "/", "root"));
	CHECK(xs_write(h2, XBT_NULL, "/anything", "1", 1));
	CHECK(next_event_is(h, "/anything", "root"));
	CHECK(xs_unwatch(h, "/", "root"));
	CHECK(no_event(h));
}

static void test_transactions(struct xs_handle *h1, struct xs_handle *h2)
{
	xs_transaction_t t;

	CHECK(xs_write(h1, XBT_NULL, "/tx/a", "1", 1));

	/* Someone else changes what the transaction read: EAGAIN, and none
	 * of its writes land. */
	t = xs_transaction_start(h1);
	CHECK(t != XBT_NULL);
	CHECK(read_is(h1, t, "/tx/a", "1"));
	CHECK(xs_write(h2, XBT_NULL, "/tx/a", "2", 1));
	CHECK(read_is(h1, t, "/tx/a", "1")); /* its own snapshot */
	CHECK(xs_write(h1, t, "/tx/b", "x", 1));
	CHECK(!xs_transaction_end(h1, t, false) && errno == EAGAIN);
	CHECK_EQ(read_errno(h2, "/tx/b"), ENOENT);

	/* ... or what it writes. */
	t = xs_transaction_start(h1);
	CHECK(xs_write(h1, t, "/tx/a", "mine", 4));
	CHECK(xs_write(h2, XBT_NULL, "/tx/a", "theirs", 6));
	CHECK(!xs_transaction_end(h1, t, false) && errno == EAGAIN);
	CHECK(read_is(h2, XBT_NULL, "/tx/a", "theirs"));

	/* ... or deletes it. */
	t = xs_transaction_start(h1);
	CHECK(read_is(h1, t, "/tx/a", "theirs"));
	CHECK(xs_rm(h2, XBT_NULL, "/tx/a"));
	CHECK(xs_write(h1, t, "/tx/c", "x", 1));
	CHECK(!xs_transaction_end(h1, t, false) && errno == EAGAIN);

	/* ... even before the transaction first looked at it. */
	t = xs_transaction_start(h1);
	CHECK(xs_write(h2, XBT_NULL, "/tx/f", "late", 4));
	CHECK(read_is(h1, t, "/tx/f", "late"));
	CHECK(!xs_transaction_end(h1, t, false) && errno == EAGAIN);

	/* A clean one: invisible outside until commit, watches fire then. */
	CHECK(xs_watch(h2, "/tx", "txw"));
	CHECK(next_event_is(h2, "/tx", "txw"));
	t = xs_transaction_start(h1);
	CHECK(xs_write(h1, t, "/tx/d/e", "v", 1));
	CHECK(read_is(h1, t, "/tx/d/e", "v"));
	CHECK_EQ(read_errno(h2, "/tx/d/e"), ENOENT);
	CHECK(no_event(h2));
	CHECK(xs_transaction_end(h1, t, false));
	CHECK(next_event_is(h2, "/tx/d/e", "txw"));
	CHECK(read_is(h2, XBT_NULL, "/tx/d/e", "v"));

	/* rm inside a transaction. */
	t = xs_transaction_start(h1);
	CHECK(xs_rm(h1, t, "/tx/d"));
	CHECK_EQ(read_errno(h2, "/tx/d/e"), 0);
	CHECK(xs_transaction_end(h1, t, false));
	CHECK(next_event_is(h2, "/tx/d", "txw"));
	CHECK_EQ(read_errno(h2, "/tx/d/e"), ENOENT);

	/* Aborted: nothing happens. */
	t = xs_transaction_start(h1);
	CHECK(xs_write(h1, t, "/tx/g", "1", 1));
	CHECK(xs_transaction_end(h1, t, true));
	CHECK_EQ(read_errno(h2, "/tx/g"), ENOENT);
	CHECK(!xs_transaction_end(h1, t, false) && errno == ENOENT);
	CHECK(no_event(h2));
	CHECK(xs_unwatch(h2, "/tx", "txw"));
}

static int raw_connect(const char *path);
static bool raw_closed(int fd);

static bool file_exists(const char *path)
{
	struct stat st;

	return stat(path, &st) == 0;
}

static void test_guest(struct xs_handle *h, struct xs_handle *g)
{
	struct xs_permissions home = { .id = 5, .perms = XS_PERM_NONE };
	struct xs_permissions shared[] = {
		{ .id = 0, .perms = XS_PERM_NONE },
		{ .id = 5, .perms = XS_PERM_READ },
	};
	struct xs_permissions open[] = {
		{ .id = 0, .perms = XS_PERM_NONE },
		{ .id = 5, .perms = XS_PERM_READ | XS_PERM_WRITE },
	};
	struct xs_permissions mine = { .id = 5, .perms = XS_PERM_READ };
	struct xs_permissions give = { .id = 0, .perms = XS_PERM_READ };
	static char big[3000];
	struct xs_permissions *p;
	xs_transaction_t t;
	unsigned int n;
	char *path;

	CHECK(xs_mkdir(h, XBT_NULL, "/local/domain/5"));
	CHECK(set_perms(h, "/local/domain/5", &home, 1));
	CHECK(xs_write(h, XBT_NULL, "/shared", "s", 1));
	CHECK(set_perms(h, "/shared", shared, 2));
	CHECK(xs_write(h, XBT_NULL, "/open", "o", 1));
	CHECK(set_perms(h, "/open", open, 2));

	/* dom0's nodes are closed to the guest. */
	CHECK_EQ(read_errno(g, "/local/domain/0"), EACCES);
	CHECK_EQ(write_errno(g, "/local/domain/0/x", "x"), EACCES);
	CHECK_EQ(write_errno(g, "/newtop", "x"), EACCES);
	CHECK_EQ(read_errno(g, "/nope"), EACCES); /* not even ENOENT */
	CHECK(!xs_directory(g, XBT_NULL, "/", &n) && errno == EACCES);
	CHECK(!xs_get_permissions(g, XBT_NULL, "/", &n) && errno == EACCES);
	CHECK(!xs_mkdir(g, XBT_NULL, "/local/domain/0/d") && errno == EACCES);
	CHECK(!xs_rm(g, XBT_NULL, "/shared") && errno == EACCES);

	/* ... except as their permissions say. */
	CHECK(read_is(g, XBT_NULL, "/shared", "s"));
	CHECK_EQ(write_errno(g, "/shared", "g"), EACCES);
	CHECK_EQ(write_errno(g, "/open", "g"), 0);
	CHECK(read_is(h, XBT_NULL, "/open", "g"));
	/* Not the owner: may write but not change permissions. */
	CHECK(!set_perms(g, "/open", open, 2) && errno == EACCES);

	/* Its home is its own; what it creates, it owns. */
	CHECK_EQ(write_errno(g, "data", "d"), 0);
	CHECK(read_is(h, XBT_NULL, "/local/domain/5/data", "d"));
	CHECK_EQ(read_errno(g, "/local/domain/5/missing"), ENOENT);
	CHECK_EQ(write_errno(g, "/open/sub", "s"), 0);
	p = xs_get_permissions(h, XBT_NULL, "/open/sub", &n);
	CHECK(p && n == 2 && p[0].id == 5);
	free(p);
	CHECK(set_perms(g, "data", &mine, 1));
	CHECK(!set_perms(g, "data", &give, 1) && errno == EPERM);
	CHECK(xs_rm(g, XBT_NULL, "/open/sub"));

	/* Guest quota on node size. */
	memset(big, 'b', sizeof(big));
	CHECK(!xs_write(g, XBT_NULL, "big", big, sizeof(big)) &&
	      errno == ENOSPC);

	/* Watches only report what the guest may read. */
	CHECK(xs_watch(g, "/", "gw"));
	CHECK(next_event_is(g, "/", "gw"));
	CHECK(xs_watch(g, "data", "rel"));
	CHECK(next_event_is(g, "data", "rel"));
	CHECK(xs_write(h, XBT_NULL, "/secret", "x", 1));
	CHECK(xs_write(h, XBT_NULL, "/shared", "t", 1));
	CHECK(next_event_is(g, "/shared", "gw"));
	CHECK(no_event(g));
	CHECK(xs_unwatch(g, "/", "gw"));
	CHECK(xs_write(h, XBT_NULL, "/local/domain/5/data", "e", 1));
	CHECK(next_event_is(g, "data", "rel"));
	CHECK(no_event(g));
	CHECK(xs_unwatch(g, "data", "rel"));

	/* Domain control is dom0's. */
	CHECK(!xs_introduce_domain(g, 9, 1, 1) && errno == EACCES);
	CHECK(!xs_release_domain(g, 5) && errno == EACCES);
	CHECK(!xs_is_domain_introduced(g, 5) && errno == EACCES);
	path = xs_get_domain_path(g, 5);
	CHECK(path && !strcmp(path, "/local/domain/5"));
	free(path);

	/* The special watches fire once when set, then not for a guest. */
	CHECK(xs_watch(g, "@introduceDomain", "gi"));
	CHECK(next_event_is(g, "@introduceDomain", "gi"));
	CHECK(xs_introduce_domain(h, 6, 1, 1));
	CHECK(no_event(g));
	CHECK(xs_release_domain(h, 6));
	CHECK(no_event(g));
	/* dom0, watching both, heard them. */
	CHECK(next_event_is(h, "@introduceDomain", "in"));
	CHECK(next_event_is(h, "@releaseDomain", "out"));
	/* ... unless dom0 lets it hear them. */
	CHECK(!xs_get_permissions(g, XBT_NULL, "@introduceDomain", &n) &&
	      errno == EACCES);
	CHECK(!set_perms(g, "@introduceDomain", shared, 2) && errno == EACCES);
	CHECK(set_perms(h, "@introduceDomain", shared, 2));
	p = xs_get_permissions(g, XBT_NULL, "@introduceDomain", &n);
	CHECK(p && n == 2 && p[1].id == 5 && p[1].perms == XS_PERM_READ);
	free(p);
	CHECK(xs_introduce_domain(h, 6, 1, 1));
	CHECK(next_event_is(g, "@introduceDomain", "gi"));
	CHECK(next_event_is(h, "@introduceDomain", "in"));
	CHECK(xs_release_domain(h, 6));
	CHECK(next_event_is(h, "@releaseDomain", "out"));
	CHECK(no_event(g));
	CHECK(xs_unwatch(g, "@introduceDomain", "gi"));

	/* A guest cannot take every connection (it holds one already). */
	{
		char sock[160];
		int fds[16], i, extra;

		snprintf(sock, sizeof(sock), "%s/xs-dom5.sock", dir);
		for (i = 0; i < 15; i++)
			fds[i] = raw_connect(sock);
		extra = raw_connect(sock);
		CHECK(extra >= 0 && raw_closed(extra));
		if (extra >= 0)
			close(extra);
		for (i = 0; i < 15; i++) {
			CHECK(fds[i] >= 0);
			if (fds[i] >= 0)
				close(fds[i]);
		}
	}

	/* Guest transactions work like anyone's. */
	t = xs_transaction_start(g);
	CHECK(t != XBT_NULL);
	CHECK(xs_write(g, t, "txd", "1", 1));
	CHECK(xs_transaction_end(g, t, false));
	CHECK(read_is(h, XBT_NULL, "/local/domain/5/txd", "1"));
}

static void test_domains(struct xs_handle *h)
{
	char sock[160];
	struct xs_handle *g;
	char *path;

	path = xs_get_domain_path(h, 7);
	CHECK(path && !strcmp(path, "/local/domain/7"));
	free(path);

	CHECK(xs_watch(h, "@introduceDomain", "in"));
	CHECK(next_event_is(h, "@introduceDomain", "in"));
	CHECK(xs_watch(h, "@releaseDomain", "out"));
	CHECK(next_event_is(h, "@releaseDomain", "out"));

	snprintf(sock, sizeof(sock), "%s/xs-dom5.sock", dir);
	CHECK(!xs_is_domain_introduced(h, 5));
	CHECK(xs_is_domain_introduced(h, 0));
	CHECK(!file_exists(sock));
	CHECK(!xs_introduce_domain(h, 5, 1234, 0) && errno == EINVAL);
	CHECK(!xs_introduce_domain(h, 0, 1234, 9) && errno == EINVAL);
	CHECK(xs_introduce_domain(h, 5, 1234, 9));
	CHECK(next_event_is(h, "@introduceDomain", "in"));
	CHECK(xs_is_domain_introduced(h, 5));
	CHECK(file_exists(sock));
	CHECK(xs_introduce_domain(h, 5, 1234, 9)); /* again: no event */
	CHECK(no_event(h));

	g = open_at(sock);
	CHECK(g != NULL);
	if (g)
		test_guest(h, g);

	CHECK(!xs_release_domain(h, 0) && errno == EINVAL);
	CHECK(xs_release_domain(h, 5));
	CHECK(next_event_is(h, "@releaseDomain", "out"));
	CHECK(!xs_is_domain_introduced(h, 5));
	CHECK(!file_exists(sock));
	CHECK(!xs_release_domain(h, 5) && errno == ENOENT);
	/* The guest's connection is gone; its home is the toolstack's to
	 * remove. */
	if (g) {
		CHECK(!xs_read(g, XBT_NULL, "data", NULL));
		xs_close(g);
	}
	CHECK(read_is(h, XBT_NULL, "/local/domain/5/data", "e"));
	CHECK(xs_unwatch(h, "@introduceDomain", "in"));
	CHECK(xs_unwatch(h, "@releaseDomain", "out"));
	CHECK(no_event(h));
}

/* More children than one DIRECTORY reply holds: libxenstore falls back
 * to DIRECTORY_PART. */
static void test_long_directory(struct xs_handle *h)
{
	char path[64];
	unsigned int i, n;
	char **list;
	xs_transaction_t t;

	t = xs_transaction_start(h);
	for (i = 0; i < 300; i++) {
		snprintf(path, sizeof(path), "/big/child-with-a-long-name-%03u",
			 i);
		CHECK(xs_write(h, t, path, "", 0));
	}
	CHECK(xs_transaction_end(h, t, false));
	list = xs_directory(h, XBT_NULL, "/big", &n);
	CHECK(list && n == 300);
	for (i = 0; list && i < n && i < 300; i++) {
		snprintf(path, sizeof(path), "child-with-a-long-name-%03u", i);
		CHECK(!strcmp(list[i], path));
	}
	free(list);
}

static void test_many_clients(void)
{
	struct xs_handle *hs[20];
	char path[32], val[16];
	unsigned int i;

	for (i = 0; i < XBD_ARRAY_SIZE(hs); i++) {
		hs[i] = open_at(dom0_sock);
		CHECK(hs[i] != NULL);
	}
	for (i = 0; i < XBD_ARRAY_SIZE(hs); i++) {
		snprintf(path, sizeof(path), "/many/%u", i);
		snprintf(val, sizeof(val), "%u", i);
		CHECK(hs[i] && xs_write(hs[i], XBT_NULL, path, val,
					strlen(val)));
	}
	for (i = 0; i < XBD_ARRAY_SIZE(hs); i++) {
		snprintf(path, sizeof(path), "/many/%u",
			 (unsigned)XBD_ARRAY_SIZE(hs) - 1 - i);
		snprintf(val, sizeof(val), "%u",
			 (unsigned)XBD_ARRAY_SIZE(hs) - 1 - i);
		CHECK(hs[i] && read_is(hs[i], XBT_NULL, path, val));
		if (hs[i])
			xs_close(hs[i]);
	}
}

/* Increments /counter in a transaction, retrying on EAGAIN. */
static void *incrementer(void *arg)
{
	struct xs_handle *h = arg;
	unsigned int i, retries = 0;

	for (i = 0; i < 50; i++) {
		for (;;) {
			xs_transaction_t t = xs_transaction_start(h);
			char *v, buf[24];

			if (t == XBT_NULL)
				return (void *)1;
			v = xs_read(h, t, "/counter", NULL);
			snprintf(buf, sizeof(buf), "%ld", v ? atol(v) + 1 : 1);
			free(v);
			if (!xs_write(h, t, "/counter", buf, strlen(buf)))
				return (void *)1;
			if (xs_transaction_end(h, t, false))
				break;
			if (errno != EAGAIN || ++retries > 100000)
				return (void *)1;
		}
	}
	return NULL;
}

/* Transactions are atomic: concurrent increments are never lost. */
static void test_concurrent_transactions(void)
{
	struct xs_handle *hs[4];
	pthread_t th[4];
	unsigned int i;
	void *ret;

	for (i = 0; i < 4; i++)
		hs[i] = open_at(dom0_sock);
	for (i = 0; i < 4; i++)
		CHECK(hs[i] && !pthread_create(&th[i], NULL, incrementer, hs[i]));
	for (i = 0; i < 4; i++) {
		if (!hs[i])
			continue;
		pthread_join(th[i], &ret);
		CHECK(ret == NULL);
	}
	CHECK(hs[0] && read_is(hs[0], XBT_NULL, "/counter", "200"));
	for (i = 0; i < 4; i++)
		if (hs[i])
			xs_close(hs[i]);
}

/* --- raw wire protocol, for what libxenstore would never send --- */

static int raw_connect(const char *path)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd = socket(AF_UNIX, SOCK_STREAM, 0);

	snprintf(sa.sun_path, sizeof(sa.sun_path), "%s", path);
	if (fd >= 0 && connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		close(fd);
		return -1;
	}
	return fd;
}

static void raw_send(int fd, uint32_t type, uint32_t req_id, uint32_t tx_id,
		     uint32_t len, const void *body, size_t body_len)
{
	struct xsd_sockmsg m = {
		.type = type, .req_id = req_id, .tx_id = tx_id, .len = len,
	};

	CHECK(send(fd, &m, sizeof(m), MSG_NOSIGNAL) == sizeof(m));
	if (body_len)
		CHECK(send(fd, body, body_len, MSG_NOSIGNAL) ==
		      (ssize_t)body_len);
}

/* Reads exactly len bytes within 2 s; returns what it got, 0 at EOF. */
static size_t raw_read(int fd, void *buf, size_t len)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	size_t got = 0;

	while (got < len && poll(&pfd, 1, 2000) == 1) {
		ssize_t r = recv(fd, (char *)buf + got, len - got, 0);

		if (r <= 0)
			break;
		got += (size_t)r;
	}
	return got;
}

/* Receives one message: its header and NUL-terminated payload. */
static bool raw_recv(int fd, struct xsd_sockmsg *m, char *body)
{
	if (raw_read(fd, m, sizeof(*m)) != sizeof(*m) ||
	    m->len > XENSTORE_PAYLOAD_MAX ||
	    raw_read(fd, body, m->len) != m->len)
		return false;
	body[m->len] = '\0';
	return true;
}

static bool raw_expect(int fd, uint32_t type, uint32_t req_id,
		       const char *body)
{
	static char buf[XENSTORE_PAYLOAD_MAX + 1];
	struct xsd_sockmsg m;

	if (!raw_recv(fd, &m, buf)) {
		fprintf(stderr, "no reply, expected type %u %s\n", type, body);
		return false;
	}
	if (m.type != type || m.req_id != req_id || strcmp(buf, body)) {
		fprintf(stderr, "reply type %u id %u \"%s\", expected %u %u "
			"\"%s\"\n", m.type, m.req_id, buf, type, req_id, body);
		return false;
	}
	return true;
}

static bool raw_closed(int fd)
{
	char c;

	return raw_read(fd, &c, 1) == 0;
}

static void test_hostile(struct xs_handle *h)
{
	static const char two[] = "/t/a\0/t/a";
	struct xsd_sockmsg m = { .type = XS_READ, .req_id = 77, .len = 5 };
	int fd = raw_connect(dom0_sock);

	CHECK(fd >= 0);
	if (fd < 0)
		return;
	raw_send(fd, 999, 1, 0, 0, NULL, 0);
	CHECK(raw_expect(fd, XS_ERROR, 1, "ENOSYS"));
	raw_send(fd, XS_WATCH_EVENT, 2, 0, 5, "/t/a", 5);
	CHECK(raw_expect(fd, XS_ERROR, 2, "ENOSYS"));
	raw_send(fd, XS_READ, 3, 0, 4, "/t/a", 4); /* no NUL */
	CHECK(raw_expect(fd, XS_ERROR, 3, "EINVAL"));
	raw_send(fd, XS_READ, 4, 0, 0, NULL, 0);
	CHECK(raw_expect(fd, XS_ERROR, 4, "EINVAL"));
	raw_send(fd, XS_READ, 5, 42, 5, "/t/a", 5); /* unknown transaction */
	CHECK(raw_expect(fd, XS_ERROR, 5, "ENOENT"));
	raw_send(fd, XS_TRANSACTION_END, 6, 0, 2, "T", 2);
	CHECK(raw_expect(fd, XS_ERROR, 6, "ENOENT"));
	raw_send(fd, XS_SET_TARGET, 7, 0, 4, "1\0002", 4);
	CHECK(raw_expect(fd, XS_ERROR, 7, "ENOSYS"));
	raw_send(fd, XS_WATCH, 8, 0, 5, "/t/a", 5); /* token missing */
	CHECK(raw_expect(fd, XS_ERROR, 8, "EINVAL"));
	raw_send(fd, XS_GET_DOMAIN_PATH, 9, 0, 3, "1x", 3);
	CHECK(raw_expect(fd, XS_ERROR, 9, "EINVAL"));
	raw_send(fd, XS_DIRECTORY_PART, 10, 0, 7, "/t\0" "9999", 7);
	CHECK(raw_expect(fd, XS_ERROR, 10, "EINVAL")); /* offset lacks NUL */
	raw_send(fd, XS_READ, 11, 0, 10, two, 10); /* two args */
	CHECK(raw_expect(fd, XS_ERROR, 11, "EINVAL"));

	/* A header in pieces, then two requests in one send. */
	CHECK(send(fd, &m, 7, MSG_NOSIGNAL) == 7);
	usleep(20000);
	CHECK(send(fd, (char *)&m + 7, sizeof(m) - 7, MSG_NOSIGNAL) ==
	      (ssize_t)(sizeof(m) - 7));
	usleep(20000);
	CHECK(send(fd, "/t/a", 5, MSG_NOSIGNAL) == 5);
	CHECK(raw_expect(fd, XS_READ, 77, ""));
	{
		char both[2 * (sizeof(m) + 5)];

		m.req_id = 78;
		memcpy(both, &m, sizeof(m));
		memcpy(both + sizeof(m), "/t/a", 5);
		m.req_id = 79;
		memcpy(both + sizeof(m) + 5, &m, sizeof(m));
		memcpy(both + 2 * sizeof(m) + 5, "/t/a", 5);
		CHECK(send(fd, both, sizeof(both), MSG_NOSIGNAL) ==
		      (ssize_t)sizeof(both));
		CHECK(raw_expect(fd, XS_READ, 78, ""));
		CHECK(raw_expect(fd, XS_READ, 79, ""));
	}

	/* An oversized payload costs the client its connection. */
	raw_send(fd, XS_READ, 12, 0, XENSTORE_PAYLOAD_MAX + 1, NULL, 0);
	CHECK(raw_closed(fd));
	close(fd);

	/* A client vanishing mid-message, or with replies unread. */
	fd = raw_connect(dom0_sock);
	CHECK(fd >= 0);
	if (fd >= 0) {
		CHECK(send(fd, &m, 9, MSG_NOSIGNAL) == 9);
		close(fd);
	}
	fd = raw_connect(dom0_sock);
	CHECK(fd >= 0);
	if (fd >= 0) {
		raw_send(fd, XS_WATCH, 13, 0, 6, "/\0tok", 6);
		raw_send(fd, XS_READ, 14, 0, 5, "/t/a", 5);
		close(fd);
	}
	/* The server serves on. */
	CHECK(read_is(h, XBT_NULL, "/t/a", ""));
}

int main(void)
{
	struct sim_xenstored *xs = NULL;
	struct xs_handle *h, *h2;
	int rc;

	snprintf(dir, sizeof(dir), "/tmp/xbd-test-xs.XXXXXX");
	if (!mkdtemp(dir)) {
		perror("mkdtemp");
		return 1;
	}
	snprintf(dom0_sock, sizeof(dom0_sock), "%s/%s", dir,
		 XBD_SIM_XS_SOCKET);
	rc = sim_xenstored_start(dir, &xs);
	CHECK_EQ(rc, 0);
	if (rc) {
		rmdir(dir);
		return check_report("test_sim_xenstore");
	}
	/* A second server on the same directory is refused. */
	{
		struct sim_xenstored *other = NULL;

		printf("expect one error line: the socket is in use\n");
		fflush(stdout);

		CHECK_EQ(sim_xenstored_start(dir, &other), -EADDRINUSE);
	}

	h = open_at(dom0_sock);
	h2 = open_at(dom0_sock);
	CHECK(h && h2);
	if (h && h2) {
		test_nodes(h);
		test_perms(h);
		test_watches(h, h2);
		test_transactions(h, h2);
		test_domains(h);
		test_long_directory(h);
		test_many_clients();
		test_concurrent_transactions();
		test_hostile(h);
	}
	if (h)
		xs_close(h);
	if (h2)
		xs_close(h2);

	/* Stopping with a guest socket open and a client still connected. */
	h = open_at(dom0_sock);
	CHECK(h && xs_introduce_domain(h, 9, 1, 1));
	CHECK(h && xs_watch(h, "/", "left open"));
	sim_xenstored_stop(xs);
	if (h)
		xs_close(h);
	CHECK(!file_exists(dom0_sock));
	{
		char sock[160];

		snprintf(sock, sizeof(sock), "%s/xs-dom9.sock", dir);
		CHECK(!file_exists(sock));
	}
	CHECK_EQ(rmdir(dir), 0);
	return check_report("test_sim_xenstore");
}

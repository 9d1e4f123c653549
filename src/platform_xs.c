/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xenstore for both platforms, over the unmodified libxenstore.  The sim
 * xenstored speaks the real wire protocol, so only the socket differs.
 */
#include "src/platform_priv.h"
#include "xbd/common.h"
#include "xbd/util.h"

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <xenstore.h>

static pthread_mutex_t xs_env_lock = PTHREAD_MUTEX_INITIALIZER;

int xbd_xs_connect(const char *socket_path, struct xs_handle **out)
{
	struct xs_handle *h;
	char *saved = NULL;
	const char *old;
	int err = 0;

	if (!socket_path) {
		h = xs_open(0);
		if (!h)
			return errno ? -errno : -ENOENT;
		*out = h;
		return 0;
	}
	/* libxenstore only takes a socket path from $XENSTORED_PATH, read
	 * inside xs_open(); swap it under a lock and put it back. */
	pthread_mutex_lock(&xs_env_lock);
	old = getenv("XENSTORED_PATH");
	if (old && !(saved = strdup(old))) {
		err = -ENOMEM;
		goto out_unlock;
	}
	setenv("XENSTORED_PATH", socket_path, 1);
	h = xs_open(XS_OPEN_SOCKETONLY);
	if (!h)
		err = errno ? -errno : -ECONNREFUSED;
	if (saved)
		setenv("XENSTORED_PATH", saved, 1);
	else
		unsetenv("XENSTORED_PATH");
	free(saved);
	if (!err)
		*out = h;
out_unlock:
	pthread_mutex_unlock(&xs_env_lock);
	return err;
}

struct xs_handle *xbd_platform_xs_handle(struct xbd_platform *p)
{
	return ((struct xbd_platform_base *)p)->xs;
}

static int xs_errno(void)
{
	return errno ? -errno : -EIO;
}

int xbd_xs_op_read(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		   char **value, size_t *len)
{
	unsigned int n = 0;
	char *v = xs_read(xbd_platform_xs_handle(p), t, path, &n);

	if (!v)
		return xs_errno();
	*value = v; /* libxenstore NUL-terminates the value */
	if (len)
		*len = n;
	return 0;
}

int xbd_xs_op_write(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		    const void *value, size_t len)
{
	if (!xs_write(xbd_platform_xs_handle(p), t, path, value, len))
		return xs_errno();
	return 0;
}

int xbd_xs_op_mkdir(struct xbd_platform *p, xbd_xs_txn t, const char *path)
{
	if (!xs_mkdir(xbd_platform_xs_handle(p), t, path))
		return xs_errno();
	return 0;
}

int xbd_xs_op_rm(struct xbd_platform *p, xbd_xs_txn t, const char *path)
{
	if (!xs_rm(xbd_platform_xs_handle(p), t, path))
		return xs_errno();
	return 0;
}

int xbd_xs_op_directory(struct xbd_platform *p, xbd_xs_txn t,
			const char *path, char ***names, unsigned *count)
{
	unsigned int n = 0;
	char **v = xs_directory(xbd_platform_xs_handle(p), t, path, &n);

	if (!v)
		return xs_errno();
	*names = v; /* one block: pointers then strings, as we promise */
	*count = n;
	return 0;
}

int xbd_xs_op_get_perms(struct xbd_platform *p, xbd_xs_txn t,
			const char *path, struct xbd_xs_perm **perms,
			unsigned *count)
{
	unsigned int n = 0, i;
	struct xs_permissions *xp;
	struct xbd_xs_perm *out;

	xp = xs_get_permissions(xbd_platform_xs_handle(p), t, path, &n);
	if (!xp)
		return xs_errno();
	out = calloc(n ? n : 1, sizeof(*out));
	if (!out) {
		free(xp);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		out[i].domid = xp[i].id;
		out[i].perms = xp[i].perms & XBD_XS_PERM_BOTH;
	}
	free(xp);
	*perms = out;
	*count = n;
	return 0;
}

int xbd_xs_op_set_perms(struct xbd_platform *p, xbd_xs_txn t,
			const char *path, const struct xbd_xs_perm *perms,
			unsigned count)
{
	struct xs_permissions xp[16];
	unsigned i;

	if (count == 0 || count > XBD_ARRAY_SIZE(xp))
		return -EINVAL;
	for (i = 0; i < count; i++) {
		xp[i].id = perms[i].domid;
		xp[i].perms = perms[i].perms;
	}
	if (!xs_set_permissions(xbd_platform_xs_handle(p), t, path, xp, count))
		return xs_errno();
	return 0;
}

int xbd_xs_op_watch(struct xbd_platform *p, const char *path,
		    const char *token)
{
	if (!xs_watch(xbd_platform_xs_handle(p), path, token))
		return xs_errno();
	return 0;
}

int xbd_xs_op_unwatch(struct xbd_platform *p, const char *path,
		      const char *token)
{
	if (!xs_unwatch(xbd_platform_xs_handle(p), path, token))
		return xs_errno();
	return 0;
}

int xbd_xs_op_watch_fd(struct xbd_platform *p)
{
	return xs_fileno(xbd_platform_xs_handle(p));
}

int xbd_xs_op_read_watch(struct xbd_platform *p, char **path, char **token)
{
	char **ev = xs_check_watch(xbd_platform_xs_handle(p));

	if (!ev)
		return errno == EAGAIN ? -EAGAIN : xs_errno();
	*path = strdup(ev[XS_WATCH_PATH]);
	*token = strdup(ev[XS_WATCH_TOKEN]);
	free(ev);
	if (!*path || !*token) {
		free(*path);
		free(*token);
		return -ENOMEM;
	}
	return 0;
}

int xbd_xs_op_transaction_start(struct xbd_platform *p, xbd_xs_txn *t)
{
	xs_transaction_t x = xs_transaction_start(xbd_platform_xs_handle(p));

	if (x == XBT_NULL)
		return xs_errno();
	*t = x;
	return 0;
}

int xbd_xs_op_transaction_end(struct xbd_platform *p, xbd_xs_txn t,
			      bool abort)
{
	if (!xs_transaction_end(xbd_platform_xs_handle(p), t, abort))
		return xs_errno();
	return 0;
}

int xbd_xs_op_domain_list(struct xbd_platform *p,
			  struct xbd_domain_info **list, unsigned *count)
{
	struct xbd_domain_info *out = NULL;
	uint32_t *ids = NULL;
	unsigned n = 0, i, m = 0;
	int err;

	err = xbd_xs_directory_ids(p, "/local/domain", XBD_DOMID_SELF - 1, &ids,
				   &n);
	if (err)
		return err;
	out = calloc(n ? n : 1, sizeof(*out));
	for (i = 0; out && i < n; i++) {
		char path[64], *name = NULL;

		snprintf(path, sizeof(path), "/local/domain/%u/name", ids[i]);
		if (xbd_xs_op_read(p, XBD_XS_NO_TXN, path, &name, NULL) < 0)
			continue; /* dying domain, or no name: not listed */
		out[m].domid = (uint16_t)ids[i];
		snprintf(out[m].name, sizeof(out[m].name), "%s", name);
		free(name);
		m++;
	}
	free(ids);
	if (!out)
		return -ENOMEM;
	*list = out;
	*count = m;
	return 0;
}

int xbd_xs_op_domain_lookup(struct xbd_platform *p, const char *name,
			    uint16_t *domid)
{
	struct xbd_domain_info *list;
	unsigned n, i;
	unsigned long long id;
	int err;

	err = xbd_xs_op_domain_list(p, &list, &n);
	if (err)
		return err;
	err = -ENOENT;
	for (i = 0; i < n; i++) {
		if (!strcmp(list[i].name, name)) {
			*domid = list[i].domid;
			err = 0;
			break;
		}
	}
	/* A bare number names a domain by id, as xl accepts. */
	if (err) {
		bool number = !xbd_parse_uint(name, XBD_DOMID_SELF - 1, &id);

		for (i = 0; number && i < n; i++) {
			if (list[i].domid == id) {
				*domid = (uint16_t)id;
				err = 0;
				break;
			}
		}
	}
	free(list);
	return err;
}

/* Chooses and opens a platform; small xenstore helpers over the seam. */
#include "xbd/platform.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

int xbd_platform_parse_kind(const char *s, enum xbd_platform_kind *kind)
{
	if (!strcmp(s, "xen"))
		*kind = XBD_PLATFORM_XEN;
	else if (!strcmp(s, "sim"))
		*kind = XBD_PLATFORM_SIM;
	else if (!strcmp(s, "auto"))
		*kind = XBD_PLATFORM_AUTO;
	else
		return -EINVAL;
	return 0;
}

enum xbd_platform_kind xbd_platform_resolve(enum xbd_platform_kind kind)
{
	const char *env;
	enum xbd_platform_kind k;

	if (kind != XBD_PLATFORM_AUTO)
		return kind;
	env = getenv("XBD_PLATFORM");
	if (env && *env && !xbd_platform_parse_kind(env, &k) &&
	    k != XBD_PLATFORM_AUTO)
		return k;
	/* Naming a sim directory means "use that simulated platform". */
	env = getenv("XBD_SIM_DIR");
	if (env && *env)
		return XBD_PLATFORM_SIM;
	if (access("/proc/xen/capabilities", F_OK) == 0)
		return XBD_PLATFORM_XEN;
	return XBD_PLATFORM_SIM;
}

const char *xbd_sim_default_dir(void)
{
	const char *env = getenv("XBD_SIM_DIR");

	return env && *env ? env : "/run/xbd-sim";
}

int xbd_platform_open(const struct xbd_platform_config *cfg,
		      struct xbd_platform **out)
{
	switch (xbd_platform_resolve(cfg->kind)) {
	case XBD_PLATFORM_XEN:
		return xbd_platform_xen_open(cfg, out);
	case XBD_PLATFORM_SIM:
		return xbd_platform_sim_open(cfg, out);
	default:
		return -EINVAL;
	}
}

void xbd_platform_close(struct xbd_platform *p)
{
	if (p)
		xbd_platform_ops_of(p)->close(p);
}

int xbd_domain_paused(struct xbd_platform *p, uint16_t domid)
{
	const struct xbd_platform_ops *ops = xbd_platform_ops_of(p);

	return ops->domain_paused ? ops->domain_paused(p, domid) : -EOPNOTSUPP;
}

int xbd_xs_read_str(struct xbd_platform *p, const char *path, char **value)
{
	return xbd_platform_ops_of(p)->xs_read(p, XBD_XS_NO_TXN, path, value,
					       NULL);
}

int xbd_xs_read_uint(struct xbd_platform *p, const char *path,
		     unsigned long long *v)
{
	char *s, *end;
	int err = xbd_xs_read_str(p, path, &s);

	if (err)
		return err;
	errno = 0;
	*v = strtoull(s, &end, 10);
	if (end == s || *end || errno || s[0] == '-')
		err = -EINVAL;
	free(s);
	return err;
}

int xbd_xs_printf(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		  const char *fmt, ...)
{
	va_list ap;
	char *s;
	int n, err;

	va_start(ap, fmt);
	n = vasprintf(&s, fmt, ap);
	va_end(ap);
	if (n < 0)
		return -ENOMEM;
	err = xbd_platform_ops_of(p)->xs_write(p, t, path, s, (size_t)n);
	free(s);
	return err;
}

int xbd_xs_transaction(struct xbd_platform *p,
		       int (*fn)(struct xbd_platform *p, xbd_xs_txn t, void *arg),
		       void *arg)
{
	const struct xbd_platform_ops *ops = xbd_platform_ops_of(p);
	xbd_xs_txn t;
	int err;

	do {
		err = ops->xs_transaction_start(p, &t);
		if (err)
			return err;
		err = fn(p, t, arg);
		if (err) {
			ops->xs_transaction_end(p, t, true);
			return err;
		}
		err = ops->xs_transaction_end(p, t, false);
	} while (err == -EAGAIN);
	return err;
}

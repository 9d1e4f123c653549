/*
 * Opening the platform for xbd and xbdsh, with the one line a user
 * needs when it fails: "needs root (...)" when that is why, else what
 * failed and its likely cause.
 */
#include "xbd/cli.h"
#include "xbd/common.h"
#include "src/sim/sim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stddef.h>
#include <unistd.h>

/* The first node Xen's libraries would open that we may not: a user
 * learns now, not from an "Input/output error" halfway through. */
static const char *xen_node_denied(void)
{
	static const char *const nodes[] = {
		"/run/xenstored/socket", "/var/run/xenstored/socket",
		"/dev/xen/xenbus", "/dev/xen/privcmd", "/dev/xen/evtchn",
		"/dev/xen/gntdev", "/dev/xen/gntalloc",
	};
	size_t i;

	for (i = 0; i < XBD_ARRAY_SIZE(nodes); i++)
		if (faccessat(AT_FDCWD, nodes[i], R_OK | W_OK, AT_EACCESS) &&
		    errno == EACCES)
			return nodes[i];
	return NULL;
}

int xbd_cli_open_platform_kind(enum xbd_platform_kind kind,
			       struct xbd_platform **p)
{
	struct xbd_platform_config cfg = { .kind = kind };
	enum xbd_platform_kind k = xbd_platform_resolve(kind);
	bool root = geteuid() == 0;
	const char *denied;
	int err;

	/* Xen's devices are root's: not root, nothing xbd does can work,
	 * whatever else is missing too. */
	if (!root && k == XBD_PLATFORM_XEN && (denied = xen_node_denied())) {
		xbd_err("needs root (to use Xen's %s: %s)", denied,
			xbd_strerror(-EACCES));
		return -EACCES;
	}
	err = xbd_platform_open(&cfg, p);
	if (!err)
		return 0;
	if (!root && k == XBD_PLATFORM_XEN)
		xbd_err("needs root (to use Xen: %s)", xbd_strerror(err));
	else if (!root && (err == -EACCES || err == -EPERM))
		xbd_err("needs root (to use the simulated Xen at %s: %s)",
			xbd_sim_default_dir(), xbd_strerror(err));
	else if (k == XBD_PLATFORM_SIM)
		xbd_err("simulated Xen at %s: %s (is `xbd sim start` running?)",
			xbd_sim_default_dir(), xbd_strerror(err));
	else
		xbd_err("Xen: %s (is this a dom0 with xenstored running?)",
			xbd_strerror(err));
	return err;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What xbd and xbdsh both do before a command runs (include/xbd/cli.h):
 * name the program, hook in the sim, read $XBD_DEBUG, take the global
 * options they share (--platform, -v, -h, -V); and how they open the
 * platform, with the one line a user needs when that fails.
 * One copy, so that the two programs read their environment and their
 * global options alike.
 */
#include "xbd/cli.h"
#include "xbd/common.h"
#include "src/sim/sim.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

void xbd_cli_init(const char *progname)
{
	const char *dbg = getenv("XBD_DEBUG");

	xbd_progname = progname;
	/* libxbd never links the sim itself: the programs hand it over */
	xbd_platform_set_sim(xbd_platform_sim_open);
	/* XBD_DEBUG=1 or 2 (any other non-empty value but 0 means 1) */
	if (dbg && *dbg && strcmp(dbg, "0"))
		xbd_verbosity = atoi(dbg) > 0 ? atoi(dbg) : 1;
}

int xbd_cli_global_opt(int c, char **argv, const struct option *opts,
		       void (*usage)(void), enum xbd_platform_kind *kind)
{
	switch (c) {
	case 'p':
		if (xbd_platform_parse_kind(optarg, kind)) {
			xbd_err("--platform: expected xen or sim, got '%s'", optarg);
			return XBD_EXIT_USAGE;
		}
		return -1;
	case 'v':
		xbd_verbosity++;
		return -1;
	case 'h':
		usage();
		return 0;
	case 'V':
		printf("%s %s\n", xbd_progname, XBD_VERSION);
		return 0;
	default:
		xbd_opt_err(NULL, c, argv, opts);
		return XBD_EXIT_USAGE;
	}
}

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

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What xbd and xbdsh both do before a command runs (include/xbd/cli.h):
 * name the program, hook in the sim, read $XBD_DEBUG, take the global
 * options they share (--platform, -v, -h, -V).
 * One copy, so that the two programs read their environment and their
 * global options alike.
 */
#include "xbd/cli.h"
#include "xbd/common.h"
#include "src/sim/sim.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

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

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
#include "xbd/mounts.h"
#include "src/sim/sim.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
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

int xbd_cli_take_verbose(int argc, char **argv)
{
	int i, out = 1;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			while (i < argc)
				argv[out++] = argv[i++];
			break;
		}
		if (!strcmp(argv[i], "-v") || !strcmp(argv[i], "--verbose")) {
			xbd_verbosity++;
			continue;
		}
		argv[out++] = argv[i];
	}
	if (out < argc)
		argv[out] = NULL;
	return out;
}

void xbd_cli_choose_run_dir(enum xbd_platform_kind kind)
{
	const char *env = getenv("XBD_RUN_DIR");
	char dir[4096];

	if ((env && *env) || xbd_platform_resolve(kind) != XBD_PLATFORM_SIM)
		return;
	if (snprintf(dir, sizeof(dir), "%s/" XBD_SIM_RUN_SUBDIR,
		     xbd_sim_default_dir()) <
	    (int)sizeof(dir))
		setenv("XBD_RUN_DIR", dir, 1);
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

/* A DIR for a FUSE mount: refused when a dead xbd mount is left there
 * (with the command that removes it), when it is a mount point already
 * (stacked mounts hide each other, and a later unmount by path could
 * take the wrong one), or when it holds files, which the mount would
 * hide until it goes, unless nonempty (FUSE's own name for it). */
int xbd_cli_mount_dir_usable(const char *dir, const char *cmd, bool nonempty)
{
	struct xbd_mount m;
	struct dirent *de;
	struct stat stb;
	unsigned entries = 0;
	DIR *d;

	if (xbd_mount_dead(dir)) {
		xbd_err("%s: a dead xbd mount is left there; `xbd detach %s` removes it",
			dir, dir);
		return -ENOTCONN;
	}
	if (stat(dir, &stb)) {
		int err = -errno;

		xbd_err("%s: %s", dir, xbd_strerror(err));
		return err;
	}
	if (!S_ISDIR(stb.st_mode)) {
		xbd_err("%s: not a directory", dir);
		return -ENOTDIR;
	}
	if (!xbd_mount_at(dir, &m)) {
		xbd_err("%s: already a mount point (%s from %s); %s needs a directory of its own",
			dir, m.fstype, m.source, cmd);
		return -EBUSY;
	}
	d = opendir(dir);
	if (!d) {
		int err = -errno;

		xbd_err("%s: %s", dir, xbd_strerror(err));
		return err;
	}
	while ((de = readdir(d)))
		entries += strcmp(de->d_name, ".") && strcmp(de->d_name, "..");
	closedir(d);
	if (entries && !nonempty) {
		xbd_err("%s: not empty (%u entr%s would be hidden until detach); use an empty directory, or --nonempty",
			dir, entries, entries == 1 ? "y" : "ies");
		return -ENOTEMPTY;
	}
	return 0;
}

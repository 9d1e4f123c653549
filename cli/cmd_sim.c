/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xbd sim: start and stop the simulated Xen, create, list and destroy its
 * domains.  The work is done in src/sim/ (sim_client.c, which talks to
 * sim_daemon.c); this file parses the command line and prints.
 */
#include "xbd/cli.h"
#include "xbd/common.h"
#include "xbd/util.h"
#include "xbd/frontend.h"
#include "xbd/toolstack.h"
#include "xbd/xenbus.h"
#include "src/sim/sim.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DISKS 16

static void sim_usage(void)
{
	printf("usage: xbd sim start [--dir DIR] [--owner-pid PID]\n"
	       "       xbd sim stop [--dir DIR]\n"
	       "       xbd sim status [--dir DIR] [--verbose]\n"
	       "       xbd sim vm create NAME [--dir DIR] [--disk FILE[,VDEV]]...\n"
	       "                         [--no-guest | -- GUEST-COMMAND [ARGS...]]\n"
	       "       xbd sim vm list [--dir DIR]\n"
	       "       xbd sim vm destroy NAME|ID [--dir DIR]\n"
	       "       xbd sim vm io VM VDEV --rw MODE [--bs SIZE] [--qd N] ...\n"
	       "       xbd sim vm pause|unpause|paused NAME [--dir DIR]\n"
	       "DIR defaults to $XBD_SIM_DIR or /run/xbd-sim.  A VM's guest behaves as\n"
	       "a Linux guest's blkfront (xbd sim guest) unless a guest command is\n"
	       "given (--no-guest: none, a VM whose blkfront never connects);\n"
	       "it runs as the domain (XBD_SIM_DIR, XBD_SIM_DOMID set) until\n"
	       "the domain is destroyed.  --disk gives the VM a disk served by the\n"
	       "sim's blkback (backend/vbd), as a toolstack does.\n"
	       "With --owner-pid the simulator also stops when process PID exits.\n"
	       "status shows the grants, frames and event channels each domain\n"
	       "holds (--verbose: each one), to see what was left behind.\n"
	       "pause and unpause count as xl's do; paused prints paused or running.\n");
}

/* Every `xbd serve` disk on the sim at dir is unplugged and every `xbd
 * attach` detached first, as `xbd detach` does: stopping the sim under
 * one would leave it orphaned, its mount dead and nothing to detach it
 * with.  1 (the sim keeps running) when one cannot be, because it is in
 * use (its users are named). */
static int stop_attaches(const char *dir)
{
	struct xbd_attach_record *e = NULL;
	struct xbd_platform_config cfg = { .kind = XBD_PLATFORM_SIM };
	struct xbd_platform *p;
	unsigned n = 0, i, j;
	int rc = 0;

	/* the platform, and `xbd detach`, find this sim through the variable */
	if (setenv("XBD_SIM_DIR", dir, 1))
		return 0;
	xbd_cli_platform = XBD_PLATFORM_SIM;
	if (xbd_platform_open(&cfg, &p))
		return 0; /* no sim there: xbd_sim_stop says so */
	if (xbd_attach_records(p, NULL, &e, &n))
		n = 0;
	/* the disks xbd serve hot-plugged go too, as a toolstack unplugs
	 * them, before their xenstore does */
	if (xbd_detach_all_served(p)) {
		xbd_err("sim stop: the simulator keeps running");
		rc = 1;
	}
	xbd_platform_close(p);
	for (i = 0; i < n && !rc; i++) {
		bool seen = false;

		for (j = 0; j < i; j++)
			seen |= !strcmp(e[j].mount, e[i].mount);
		if (seen)
			continue;
		if (xbd_detach_dir(e[i].mount)) {
			xbd_err("sim stop: xbd attach on %s could not be detached; the simulator keeps running",
				e[i].mount);
			rc = 1;
		}
	}
	free(e);
	return rc;
}

static int vm_list(const char *dir)
{
	struct xbd_domain_info *list;
	unsigned n, i;

	if (xbd_sim_vm_list(dir, &list, &n))
		return 1;
	for (i = 0; i < n; i++)
		printf("%u %s\n", list[i].domid, list[i].name);
	free(list);
	return 0;
}

/* `vm pause|unpause|paused NAME`: what `xl pause`, `xl unpause` and
 * `xl list`'s state column are on Xen, for tests that play the admin.
 * paused: prints paused or running; exit status 0 or 1 alike. */
static int vm_pause(const char *dir, int n, char **w)
{
	struct xbd_platform_config cfg = { .kind = XBD_PLATFORM_SIM, .sim_dir = dir };
	struct xbd_platform *p = NULL;
	uint16_t domid;
	int err;

	if (n != 2) {
		xbd_usage_err("sim vm", n < 2 ? "%s: missing NAME" : "%s: unexpected argument",
			      w[0]);
		return XBD_EXIT_USAGE;
	}
	err = xbd_platform_open(&cfg, &p);
	if (err) {
		xbd_err("simulated Xen at %s: %s", dir, xbd_strerror(err));
		return 1;
	}
	err = xbd_domain_lookup(p, w[1], &domid);
	if (err)
		xbd_err("%s: no such domain", w[1]);
	else if (!strcmp(w[0], "paused") && (err = xbd_domain_paused(p, domid)) >= 0)
		printf("%s\n", err ? "paused" : "running");
	else if (!strcmp(w[0], "pause"))
		err = xbd_domain_pause(p, domid);
	else if (!strcmp(w[0], "unpause"))
		err = xbd_domain_unpause(p, domid);
	if (err < 0 && err != -ENOENT)
		xbd_err("%s: %s: %s", w[1], w[0], xbd_strerror(err));
	xbd_platform_close(p);
	return err < 0 ? 1 : 0;
}

/* Creates the domain with its guest (by default the simulated Linux
 * blkfront, `xbd sim guest`), then gives it its disks as a toolstack
 * does; a disk that cannot be added destroys the half-made domain. */
static int vm_create(const char *dir, const char *name, char **guest,
		     bool no_guest, const char *const *disks, unsigned ndisks)
{
	static char exe[4096];
	char *default_guest[] = { exe, (char *)"sim", (char *)"guest", NULL };
	struct xbd_platform_config cfg = { .kind = XBD_PLATFORM_SIM, .sim_dir = dir };
	struct xbd_platform *p = NULL;
	uint16_t domid;
	unsigned i;
	ssize_t n;
	int err = 0;

	if (!guest && !no_guest) {
		n = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
		if (n <= 0) {
			xbd_err("/proc/self/exe: %s", strerror(errno));
			return 1;
		}
		exe[n] = 0;
		guest = default_guest;
	}
	if (xbd_sim_vm_create(dir, name, guest, &domid))
		return 1;
	if (ndisks) {
		err = xbd_platform_open(&cfg, &p);
		if (err)
			xbd_err("simulated Xen at %s: %s", dir, xbd_strerror(err));
		for (i = 0; !err && i < ndisks; i++)
			err = xbd_sim_vm_add_disk(p, domid, disks[i]);
		xbd_platform_close(p);
		if (err) {
			xbd_sim_vm_destroy(dir, name);
			return 1;
		}
	}
	printf("%u\n", domid);
	return 0;
}

/* Whether arg is a long option whose value is the next word. */
static bool takes_value(const char *arg, const struct option *opts)
{
	const struct option *o;

	if (strncmp(arg, "--", 2) || !arg[2] || strchr(arg, '='))
		return false;
	for (o = opts; o->name; o++)
		if (o->has_arg == required_argument &&
		    !strncmp(o->name, arg + 2, strlen(arg + 2)))
			return true;
	return false;
}

/* FILE[,VDEV]: a bad VDEV is a bad argument, refused before anything
 * is created (the file itself is checked when the disk is added). */
static bool disk_spec_ok(const char *spec)
{
	const char *comma = strrchr(spec, ',');
	uint32_t devid;

	if (*spec && *spec != ',' &&
	    (!comma || !xbd_vdev_to_devid(comma + 1, &devid)))
		return true;
	xbd_usage_err("sim", "--disk: expected FILE or FILE,VDEV with VDEV such "
		      "as xvda, got '%s'", spec);
	return false;
}

static int cmd_sim_run(int argc, char **argv)
{
	enum { O_DIR = 256, O_OWNER, O_DISK, O_NO_GUEST };
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, O_DIR },
		{ "owner-pid", required_argument, NULL, O_OWNER },
		{ "disk", required_argument, NULL, O_DISK },
		{ "no-guest", no_argument, NULL, O_NO_GUEST },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *dir = NULL, *disks[MAX_DISKS], *misplaced = NULL, *cmd;
	char **guest = NULL, **words;
	int nwords, i, c, nargs = argc;
	unsigned ndisks = 0;
	bool no_guest = false, vm_create_opt = false;
	unsigned long long owner = 0;

	/* Sub-commands with options of their own. */
	if (argc > 1 && !strcmp(argv[1], "blkback"))
		return xbd_cmd_sim_blkback.run(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "guest"))
		return xbd_cmd_sim_guest.run(argc - 1, argv + 1);
	if (argc > 2 && !strcmp(argv[1], "vm") && !strcmp(argv[2], "io"))
		return xbd_cmd_sim_vm_io.run(argc - 2, argv + 2);

	/* `vm create NAME -- COMMAND ARGS`: the guest's words are not ours */
	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			guest = &argv[i + 1];
			nargs = i;
			break;
		}
		if (takes_value(argv[i], opts))
			i++;
	}
	opterr = 0;
	while ((c = getopt_long(nargs, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case O_DIR:
			dir = optarg;
			break;
		case O_OWNER:
			if (xbd_parse_uint(optarg, INT_MAX, &owner) || !owner) {
				xbd_usage_err("sim", "--owner-pid: expected a process "
					      "id, got '%s'", optarg);
				return XBD_EXIT_USAGE;
			}
			misplaced = "--owner-pid";
			break;
		case O_DISK:
			if (ndisks == MAX_DISKS) {
				xbd_usage_err("sim", "--disk: at most %d disks",
					      MAX_DISKS);
				return XBD_EXIT_USAGE;
			}
			if (!disk_spec_ok(optarg))
				return XBD_EXIT_USAGE;
			disks[ndisks++] = optarg;
			vm_create_opt = true;
			break;
		case O_NO_GUEST:
			no_guest = true;
			vm_create_opt = true;
			break;
		case 'h':
			sim_usage();
			return 0;
		default:
			xbd_opt_err("sim", c, argv, opts);
			return XBD_EXIT_USAGE;
		}
	}
	words = argv + optind;
	nwords = nargs - optind;
	if (!dir || !*dir)
		dir = xbd_sim_default_dir();
	if (nwords == 0) {
		xbd_usage_err("sim", "missing sub-command (start, stop, status or vm)");
		return XBD_EXIT_USAGE;
	}
	if (!strcmp(words[0], "vm")) {
		if (nwords == 1) {
			xbd_usage_err("sim vm", "missing sub-command (create, list, destroy, io, pause, unpause or paused)");
			return XBD_EXIT_USAGE;
		}
		if (!strcmp(words[1], "pause") || !strcmp(words[1], "unpause") ||
		    !strcmp(words[1], "paused"))
			return vm_pause(dir, nwords - 1, words + 1);
		if (strcmp(words[1], "create") && strcmp(words[1], "list") &&
		    strcmp(words[1], "destroy")) {
			xbd_usage_err("sim vm", "unknown sub-command '%s'", words[1]);
			return XBD_EXIT_USAGE;
		}
		cmd = !strcmp(words[1], "create") ? "sim vm create" :
		      !strcmp(words[1], "list") ? "sim vm list" : "sim vm destroy";
		words++;
		nwords--;
	} else if (!strcmp(words[0], "start") || !strcmp(words[0], "stop") ||
		   !strcmp(words[0], "status")) {
		cmd = !strcmp(words[0], "start") ? "sim start" :
		      !strcmp(words[0], "stop") ? "sim stop" : "sim status";
	} else {
		xbd_usage_err("sim", "unknown sub-command '%s'", words[0]);
		return XBD_EXIT_USAGE;
	}
	/* each option belongs to one sub-command (--dir to all) */
	if (strcmp(cmd, "sim start") && misplaced) {
		xbd_err("%s: %s is for sim start", cmd, misplaced);
		return XBD_EXIT_USAGE;
	}
	if (strcmp(cmd, "sim vm create") && (vm_create_opt || guest)) {
		xbd_err("%s: %s is for sim vm create", cmd,
			ndisks ? "--disk" : no_guest ? "--no-guest" : "a guest command");
		return XBD_EXIT_USAGE;
	}
	/* NAME for create and destroy; nothing more */
	if (nwords < 2 && (!strcmp(cmd, "sim vm create") ||
			   !strcmp(cmd, "sim vm destroy"))) {
		xbd_usage_err(cmd, "missing NAME");
		return XBD_EXIT_USAGE;
	}
	i = !strcmp(cmd, "sim vm create") || !strcmp(cmd, "sim vm destroy") ? 2 : 1;
	if (nwords > i) {
		xbd_usage_err(cmd, "unexpected argument '%s'", words[i]);
		return XBD_EXIT_USAGE;
	}
	if (guest && no_guest) {
		xbd_err("sim vm create: --no-guest and a guest command exclude each other");
		return XBD_EXIT_USAGE;
	}
	if (guest && !*guest) {
		xbd_usage_err("sim vm create", "missing the guest command after --");
		return XBD_EXIT_USAGE;
	}

	if (!strcmp(cmd, "sim start"))
		return xbd_sim_start(dir, (int)owner) ? 1 : 0;
	if (!strcmp(cmd, "sim stop")) {
		if (stop_attaches(dir))
			return 1;
		return xbd_sim_stop(dir) ? 1 : 0;
	}
	if (!strcmp(cmd, "sim status"))
		/* -v/--verbose is xbd's own, wherever it is given */
		return xbd_sim_status(dir, xbd_verbosity > 0, stdout) ? 1 : 0;
	if (!strcmp(cmd, "sim vm create"))
		return vm_create(dir, words[1], guest, no_guest, disks, ndisks);
	if (!strcmp(cmd, "sim vm list"))
		return vm_list(dir);
	return xbd_sim_vm_destroy(dir, words[1]) ? 1 : 0;
}

const struct xbd_cmd xbd_cmd_sim = {
	.name = "sim",
	.usage = "sim start|stop|status|vm create|list|destroy ...",
	.summary = "run the simulated Xen (for tests without a hypervisor)",
	.run = cmd_sim_run,
};

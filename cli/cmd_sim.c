/*
 * xbd sim: start and stop the simulated Xen, create, list and destroy its
 * domains.  The work is done by src/sim_daemon.c; this file parses the
 * command line and prints.
 */
#include "xbd/cli.h"
#include "xbd/common.h"
#include "xbd/sim.h"

#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void sim_usage(FILE *f)
{
	fprintf(f,
		"usage: xbd sim start [--dir DIR] [--owner-pid PID]\n"
		"       xbd sim stop [--dir DIR]\n"
		"       xbd sim vm create NAME [--dir DIR] [-- GUEST-COMMAND [ARGS...]]\n"
		"       xbd sim vm list [--dir DIR]\n"
		"       xbd sim vm destroy NAME|ID [--dir DIR]\n"
		"DIR defaults to $XBD_SIM_DIR or /run/xbd-sim.  A guest command runs\n"
		"as the domain (XBD_SIM_DIR, XBD_SIM_DOMID set) until it is destroyed.\n"
		"With --owner-pid the simulator also stops when process PID exits.\n");
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

static int cmd_sim_run(int argc, char **argv)
{
	const char *dir = NULL, *words[4];
	char **guest = NULL;
	unsigned nwords = 0;
	uint16_t domid;
	long owner = 0;
	char *end;
	int i;

	for (i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--")) {
			guest = &argv[i + 1];
			break;
		} else if (!strcmp(argv[i], "--dir")) {
			if (++i == argc) {
				xbd_err("--dir needs a directory");
				return XBD_EXIT_USAGE;
			}
			dir = argv[i];
		} else if (!strncmp(argv[i], "--dir=", 6)) {
			dir = argv[i] + 6;
		} else if (!strcmp(argv[i], "--owner-pid")) {
			if (++i == argc || (owner = strtol(argv[i], &end, 10)) <= 0 ||
			    *end || owner > INT_MAX) {
				xbd_err("--owner-pid needs a process id");
				return XBD_EXIT_USAGE;
			}
		} else if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
			sim_usage(stdout);
			return 0;
		} else if (argv[i][0] == '-') {
			xbd_err("sim: unknown option '%s'", argv[i]);
			sim_usage(stderr);
			return XBD_EXIT_USAGE;
		} else if (nwords < XBD_ARRAY_SIZE(words)) {
			words[nwords++] = argv[i];
		} else {
			xbd_err("sim: too many arguments");
			return XBD_EXIT_USAGE;
		}
	}
	if (!dir || !*dir)
		dir = xbd_sim_default_dir();
	if (guest && !*guest) {
		xbd_err("sim: no guest command after --");
		return XBD_EXIT_USAGE;
	}

	if (nwords == 1 && !strcmp(words[0], "start") && !guest)
		return xbd_sim_start(dir, (int)owner) ? 1 : 0;
	if (nwords == 1 && !strcmp(words[0], "stop") && !guest)
		return xbd_sim_stop(dir) ? 1 : 0;
	if (nwords >= 2 && !strcmp(words[0], "vm")) {
		if (nwords == 3 && !strcmp(words[1], "create")) {
			if (xbd_sim_vm_create(dir, words[2], guest, &domid))
				return 1;
			printf("%u\n", domid);
			return 0;
		}
		if (nwords == 2 && !strcmp(words[1], "list") && !guest)
			return vm_list(dir);
		if (nwords == 3 && !strcmp(words[1], "destroy") && !guest)
			return xbd_sim_vm_destroy(dir, words[2]) ? 1 : 0;
	}
	sim_usage(stderr);
	return XBD_EXIT_USAGE;
}

const struct xbd_cmd xbd_cmd_sim = {
	.name = "sim",
	.usage = "sim start|stop|vm create|list|destroy ...",
	.summary = "run the simulated Xen (for tests without a hypervisor)",
	.run = cmd_sim_run,
};

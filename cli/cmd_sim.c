/*
 * xbd sim: start and stop the simulated Xen, create, list and destroy its
 * domains.  The work is done by src/sim_daemon.c; this file parses the
 * command line and prints.
 */
#include "xbd/cli.h"
#include "xbd/common.h"
#include "xbd/frontend.h"
#include "xbd/sim.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define MAX_DISKS 16

static void sim_usage(FILE *f)
{
	fprintf(f,
		"usage: xbd sim start [--dir DIR] [--owner-pid PID]\n"
		"       xbd sim stop [--dir DIR]\n"
		"       xbd sim vm create NAME [--dir DIR] [--disk FILE[,VDEV]]...\n"
		"                         [--no-guest | -- GUEST-COMMAND [ARGS...]]\n"
		"       xbd sim vm list [--dir DIR]\n"
		"       xbd sim vm destroy NAME|ID [--dir DIR]\n"
		"       xbd sim vm io VM VDEV --rw MODE [--bs SIZE] [--qd N] ...\n"
		"DIR defaults to $XBD_SIM_DIR or /run/xbd-sim.  A VM's guest behaves as\n"
		"a Linux guest's blkfront (xbd sim guest) unless a guest command is\n"
		"given (--no-guest: none, a VM whose blkfront never connects);\n"
		"it runs as the domain (XBD_SIM_DIR, XBD_SIM_DOMID set) until\n"
		"the domain is destroyed.  --disk gives the VM a disk served by the\n"
		"sim's blkback (backend/vbd), as a toolstack does.\n"
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

static int cmd_sim_run(int argc, char **argv)
{
	const char *dir = NULL, *words[4], *disks[MAX_DISKS];
	char **guest = NULL;
	unsigned nwords = 0, ndisks = 0;
	bool no_guest = false;
	long owner = 0;
	char *end;
	int i;

	/* Sub-commands with options of their own. */
	if (argc > 1 && !strcmp(argv[1], "blkback"))
		return xbd_cmd_sim_blkback.run(argc - 1, argv + 1);
	if (argc > 1 && !strcmp(argv[1], "guest"))
		return xbd_cmd_sim_guest.run(argc - 1, argv + 1);
	if (argc > 2 && !strcmp(argv[1], "vm") && !strcmp(argv[2], "io"))
		return xbd_cmd_sim_vm_io.run(argc - 2, argv + 2);

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
		} else if (!strcmp(argv[i], "--no-guest")) {
			no_guest = true;
		} else if (!strcmp(argv[i], "--disk")) {
			if (++i == argc) {
				xbd_err("--disk needs FILE[,VDEV]");
				return XBD_EXIT_USAGE;
			}
			if (ndisks == MAX_DISKS) {
				xbd_err("--disk: at most %d disks", MAX_DISKS);
				return XBD_EXIT_USAGE;
			}
			disks[ndisks++] = argv[i];
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
	if (guest && no_guest) {
		xbd_err("sim: --no-guest and a guest command exclude each other");
		return XBD_EXIT_USAGE;
	}
	if (guest && !*guest) {
		xbd_err("sim: no guest command after --");
		return XBD_EXIT_USAGE;
	}

	if (nwords == 1 && !strcmp(words[0], "start") && !guest)
		return xbd_sim_start(dir, (int)owner) ? 1 : 0;
	if (nwords == 1 && !strcmp(words[0], "stop") && !guest)
		return xbd_sim_stop(dir) ? 1 : 0;
	if (nwords >= 2 && !strcmp(words[0], "vm")) {
		if (nwords == 3 && !strcmp(words[1], "create"))
			return vm_create(dir, words[2], guest, no_guest, disks,
					 ndisks);
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

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The simulated guest's commands, reached through `xbd sim`:
 *   xbd sim guest [--domid N]      the guest process of a sim domain
 *                                  (the sim daemon runs it; hidden)
 *   xbd sim vm io VM VDEV ...      a workload run by VM's guest on VDEV
 * The work is in src/sim/sim_guest.c.
 */
#include "xbd/cli.h"
#include "xbd/common.h"
#include "xbd/frontend.h"
#include "src/sim/sim.h"
#include "xbd/util.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int guest_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "domid", required_argument, NULL, 'd' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	unsigned long long domid;
	uint16_t env_domid = 0;
	int c;

	/* a bad $XBD_SIM_DOMID counts as none: --domid may still come */
	if (xbd_sim_domid_from_env(&env_domid))
		env_domid = 0;
	domid = env_domid;
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'd':
			if (xbd_parse_uint(optarg, XBD_SIM_MAX_DOMID, &domid) ||
			    domid == 0) {
				xbd_usage_err("sim guest", "--domid: expected a guest "
					      "domain id, got '%s'", optarg);
				return XBD_EXIT_USAGE;
			}
			break;
		case 'h':
			printf("usage: xbd sim guest [--domid N]\n"
			       "Acts as sim domain N's blkfront (N defaults to $%s).\n",
			       XBD_SIM_DOMID_ENV);
			return 0;
		default:
			xbd_opt_err("sim guest", c, argv, opts);
			return XBD_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		xbd_usage_err("sim guest", "takes no arguments");
		return XBD_EXIT_USAGE;
	}
	if (domid == 0 || domid > XBD_SIM_MAX_DOMID) {
		xbd_err("sim guest: --domid N or $%s is required", XBD_SIM_DOMID_ENV);
		return XBD_EXIT_USAGE;
	}
	xbd_progname = "xbd sim guest";
	return xbd_sim_guest_run((uint16_t)domid) ? 1 : 0;
}

static void io_usage(void)
{
	printf("usage: xbd sim vm io VM VDEV --rw read|write|randread|randwrite|counter\n"
	       "           [--bs SIZE] [--qd N] [--size BYTES | --time SECONDS]\n"
	       "           [--verify] [--pattern SEED] [--flush-every N]\n"
	       "Runs the workload inside VM's simulated guest on its disk VDEV and\n"
	       "prints the throughput.  Writes lay down a pattern made from SEED\n"
	       "(default 1); with --verify, reads check it and a mismatch fails.\n"
	       "--flush-every N flushes the disk after every N writes (once they\n"
	       "have completed) and at the end, and prints \"flushed-writes W\": the\n"
	       "first W writes are durable, even when the workload failed later.\n"
	       "counter writes round and round, each block stamped with its write's\n"
	       "sequence number (see xbd_counter_fill).\n");
}

static int io_run(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "rw", required_argument, NULL, 'r' },
		{ "bs", required_argument, NULL, 'b' },
		{ "qd", required_argument, NULL, 'q' },
		{ "size", required_argument, NULL, 's' },
		{ "time", required_argument, NULL, 't' },
		{ "verify", no_argument, NULL, 'v' },
		{ "pattern", required_argument, NULL, 'p' },
		{ "flush-every", required_argument, NULL, 'F' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct xbd_workload w = { .rw = XBD_WL_READ, .bs = 4096, .qd = 1, .seed = 1 };
	struct xbd_workload_result res;
	bool have_rw = false;
	unsigned long long n;
	uint64_t v;
	char *end;
	double mbps, iops;
	int c, err;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'r':
			if (xbd_workload_parse_rw(optarg, &w.rw)) {
				xbd_usage_err("sim vm io", "--rw: expected read, write, "
					      "randread, randwrite or counter, got '%s'", optarg);
				return XBD_EXIT_USAGE;
			}
			have_rw = true;
			break;
		case 'b':
			if (xbd_cli_parse_size_opt("sim vm io", "--bs", optarg,
						   512, 16u << 20, &v))
				return XBD_EXIT_USAGE;
			w.bs = (uint32_t)v;
			break;
		case 'q':
			if (xbd_cli_parse_uint_opt("sim vm io", "--qd", optarg, 1,
						   1024, &w.qd))
				return XBD_EXIT_USAGE;
			break;
		case 's':
			if (xbd_cli_parse_size_opt("sim vm io", "--size", optarg,
						   1, UINT64_MAX, &w.size))
				return XBD_EXIT_USAGE;
			break;
		case 't':
			errno = 0;
			w.seconds = strtod(optarg, &end);
			if (*end || end == optarg || errno ||
			    !(w.seconds > 0) || w.seconds > 86400) {
				xbd_usage_err("sim vm io", "--time: expected seconds "
					      "up to 86400, got '%s'", optarg);
				return XBD_EXIT_USAGE;
			}
			break;
		case 'v':
			w.verify = true;
			break;
		case 'p':
			/* by hand: strtoull takes "-1" and wraps it around */
			if (xbd_parse_uint(optarg, UINT64_MAX, &n)) {
				xbd_usage_err("sim vm io", "--pattern: expected a "
					      "number, got '%s'", optarg);
				return XBD_EXIT_USAGE;
			}
			w.seed = n;
			break;
		case 'F':
			if (xbd_cli_parse_uint_opt("sim vm io", "--flush-every", optarg,
						   1, UINT32_MAX, &w.flush_every))
				return XBD_EXIT_USAGE;
			break;
		case 'h':
			io_usage();
			return 0;
		default:
			xbd_opt_err("sim vm io", c, argv, opts);
			return XBD_EXIT_USAGE;
		}
	}
	if (argc - optind < 2) {
		xbd_usage_err("sim vm io", "missing %s", argc == optind ? "VM VDEV" : "VDEV");
		return XBD_EXIT_USAGE;
	}
	if (argc - optind > 2) {
		xbd_usage_err("sim vm io", "unexpected argument '%s'", argv[optind + 2]);
		return XBD_EXIT_USAGE;
	}
	if (!have_rw) {
		xbd_err("sim vm io: --rw MODE is required");
		return XBD_EXIT_USAGE;
	}
	if (w.flush_every && (w.rw == XBD_WL_READ || w.rw == XBD_WL_RANDREAD)) {
		xbd_err("sim vm io: --flush-every is for writes");
		return XBD_EXIT_USAGE;
	}
	err = xbd_sim_vm_io(argv[optind], argv[optind + 1], &w, &res);
	if (w.flush_every)
		printf("flushed-writes %llu\n", (unsigned long long)res.flushed);
	if (err)
		return 1;
	mbps = res.seconds > 0 ? (double)res.bytes / 1e6 / res.seconds : 0;
	iops = res.seconds > 0 ? (double)res.ios / res.seconds : 0;
	printf("%s %s %s: %.1f MB/s, %.0f IOPS (%llu bytes, %llu I/Os of %u bytes, qd %u, %.2f s%s)\n",
	       argv[optind], argv[optind + 1], xbd_workload_rw_name(w.rw), mbps, iops,
	       (unsigned long long)res.bytes, (unsigned long long)res.ios, w.bs, w.qd,
	       res.seconds, w.verify ? ", verified" : "");
	return 0;
}

const struct xbd_cmd xbd_cmd_sim_guest = {
	.name = "guest",
	.usage = "sim guest [--domid N]",
	.summary = "(internal) a sim domain's guest: blkfront for its disks",
	.run = guest_run,
};

const struct xbd_cmd xbd_cmd_sim_vm_io = {
	.name = "io",
	.usage = "sim vm io VM VDEV --rw MODE [--bs SIZE] [--qd N] ...",
	.summary = "run a workload inside a sim VM's guest on one of its disks",
	.run = io_run,
};

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xbdsh: live statistics of every virtual disk on the host, whichever
 * backend serves it.  With a command it runs that command; without one
 * it is an interactive shell (cli/sh_repl.c).
 */
#include "cli/sh.h"
#include "xbd/cli.h"
#include "xbd/common.h"

#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void usage(void)
{
	printf("usage: xbdsh [OPTIONS] [COMMAND [ARGS]]\n"
	       "\n"
	       "  xbdsh list [--json]             VMs, disks, who serves them, states\n"
	       "  xbdsh stats VM [--json] [-d SECS [-i N]]\n"
	       "  xbdsh stats [VM] --prometheus   Prometheus text format\n"
	       "  xbdsh top [-d SECS] [-i N] [-b] every disk of the host, as xentop\n"
	       "  xbdsh watch VM [-d SECS]        refresh until a key is pressed\n"
	       "  xbdsh ring VM DISK              ring indices, requests in flight\n"
	       "  xbdsh                           interactive shell (`top` in it too)\n"
	       "  xbdsh COMMAND --help            more about COMMAND\n"
	       "\n"
	       "options:\n"
	       "  --platform xen|sim   which Xen to talk to (default: xen in a dom0,\n"
	       "                       else sim; $XBD_PLATFORM, $XBD_SIM_DIR)\n"
	       "  --sysfs-root DIR     where sysfs is (default /sys)\n"
	       "  --run-dir DIR        xbd control sockets (default $XBD_RUN_DIR\n"
	       "                       or /run/xbd)\n"
	       "  --xbd-only           only disks of xbd processes; no xenstore\n"
	       "  -v, --verbose        more messages (also after the command)\n"
	       "  -h, --help           this text\n"
	       "  -V, --version        the version\n"
	       "\n"
	       "A text `stats` measures rates over half a second.  Without a\n"
	       "terminal the shell reads commands from stdin, without a prompt.\n");
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "platform", required_argument, NULL, 'p' },
		{ "sysfs-root", required_argument, NULL, 's' },
		{ "run-dir", required_argument, NULL, 'r' },
		{ "xbd-only", no_argument, NULL, 'x' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0, 0, 0, 0 },
	};
	struct sh_ctx ctx = { .platform_kind = XBD_PLATFORM_AUTO };
	int c, r, status;

	xbd_cli_init("xbdsh");
	/* '+': stop at the command; its options are its own */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:vhV", opts, NULL)) != -1) {
		switch (c) {
		case 's':
			ctx.sysfs_root = optarg;
			break;
		case 'r':
			ctx.run_dir = optarg;
			break;
		case 'x':
			ctx.xbd_only = true;
			break;
		default:
			r = xbd_cli_global_opt(c, argv, opts, usage,
					       &ctx.platform_kind);
			if (r >= 0)
				return r;
		}
	}
	xbd_cli_choose_run_dir(ctx.platform_kind);
	sh_install_signals();
	if (optind < argc)
		status = sh_run_command(&ctx, xbd_cli_take_verbose(argc - optind,
								   argv + optind),
					argv + optind);
	else
		status = sh_repl(&ctx);
	sh_ctx_close(&ctx);
	return status;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xbd: the command-line entry point.  Global options, then one command
 * from the table below; each command lives in cli/cmd_*.c.  Also the
 * helper the commands share to open the platform (going to the
 * background and systemd's readiness notification are cli/daemon.c;
 * the opening itself, which xbdsh shares, is cli/common.c).
 */
#include "xbd/cli.h"
#include "xbd/common.h"
#include "src/sim/sim.h"

#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum xbd_platform_kind xbd_cli_platform = XBD_PLATFORM_AUTO;

static const struct xbd_cmd *const commands[] = {
	&xbd_cmd_sim,
	&xbd_cmd_selftest,
	&xbd_cmd_attach,
	&xbd_cmd_image,
	&xbd_cmd_serve,
	&xbd_cmd_list,
	&xbd_cmd_detach,
	&xbd_cmd_ls,
	&xbd_cmd_cat,
	&xbd_cmd_cp,
};

int xbd_cli_open_platform(struct xbd_platform **p)
{
	return xbd_cli_open_platform_kind(xbd_cli_platform, p);
}

int xbd_cli_parse_uint_opt(const char *cmd, const char *opt, const char *s,
			   unsigned min, unsigned max, unsigned *v)
{
	unsigned long long n;

	if (xbd_parse_uint(s, max, &n) || n < min) {
		xbd_usage_err(cmd, "%s: expected a number from %u to %u, got '%s'",
			      opt, min, max, s);
		return -EINVAL;
	}
	*v = (unsigned)n;
	return 0;
}

/* "16M" for 16 << 20: the largest unit that divides v exactly. */
static void fmt_size(char *buf, size_t len, uint64_t v)
{
	static const char units[] = "KMGT";
	unsigned u = 0;

	while (v && v % 1024 == 0 && u < sizeof(units) - 1) {
		v /= 1024;
		u++;
	}
	if (u)
		snprintf(buf, len, "%llu%c", (unsigned long long)v, units[u - 1]);
	else
		snprintf(buf, len, "%llu", (unsigned long long)v);
}

int xbd_cli_parse_size_opt(const char *cmd, const char *opt, const char *s,
			   uint64_t align, uint64_t max, uint64_t *v)
{
	char want[64] = "", amax[24];
	uint64_t n;

	if (!xbd_parse_byte_size(s, &n) && n && n <= max && n % align == 0) {
		*v = n;
		return 0;
	}
	fmt_size(amax, sizeof(amax), max);
	if (align > 1)
		snprintf(want, sizeof(want), ", a multiple of %llu",
			 (unsigned long long)align);
	if (max < UINT64_MAX)
		snprintf(want + strlen(want), sizeof(want) - strlen(want),
			 " up to %s", amax);
	xbd_usage_err(cmd, "%s: expected a size such as 64M%s, got '%s'", opt,
		      want, s);
	return -EINVAL;
}

static void usage(void)
{
	size_t i;

	printf("usage: xbd [--platform xen|sim] [-v] COMMAND [ARGS]\n\ncommands:\n");
	printf("  xbd help [COMMAND]\n      this list, or what COMMAND --help says\n");
	/* usage on one line, what it does indented under it: fits 80 columns */
	for (i = 0; i < XBD_ARRAY_SIZE(commands); i++)
		printf("  xbd %s\n      %s\n", commands[i]->usage,
		       commands[i]->summary);
	printf("\n`xbd COMMAND --help` says more about each; -v (more messages)\n"
	       "may also follow the command.\n");
	printf("\nThe platform is xen when /proc/xen/capabilities exists, else sim;\n"
	       "$XBD_PLATFORM or --platform chooses, $XBD_SIM_DIR picks the sim.\n");
}

static bool sim_dir_given(int argc, char **argv)
{
	int i;

	if (argc < 1 || strcmp(argv[0], "sim"))
		return false;
	for (i = 1; i < argc && strcmp(argv[i], "--"); i++)
		if (!strcmp(argv[i], "--dir") || !strncmp(argv[i], "--dir=", 6))
			return true;
	return false;
}

int main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "platform", required_argument, NULL, 'p' },
		{ "verbose", no_argument, NULL, 'v' },
		{ "help", no_argument, NULL, 'h' },
		{ "version", no_argument, NULL, 'V' },
		{ 0, 0, 0, 0 },
	};
	size_t i;
	int c, r;

	xbd_cli_init("xbd");
	/* '+': stop at the command name; its options are its own */
	opterr = 0;
	while ((c = getopt_long(argc, argv, "+:vhV", opts, NULL)) != -1) {
		r = xbd_cli_global_opt(c, argv, opts, usage, &xbd_cli_platform);
		if (r >= 0)
			return r;
	}
	/* not for an `xbd sim ... --dir DIR`, which names another sim than
	 * $XBD_SIM_DIR: the processes that sim starts choose theirs, with
	 * $XBD_SIM_DIR set to DIR */
	if (!sim_dir_given(argc - optind, argv + optind))
		xbd_cli_choose_run_dir(xbd_cli_platform);
	if (optind >= argc) {
		xbd_usage_err(NULL, "missing command");
		return XBD_EXIT_USAGE;
	}
	/* `xbd help [COMMAND]`, as `xl help` */
	if (!strcmp(argv[optind], "help")) {
		if (optind + 1 >= argc) {
			usage();
			return 0;
		}
		if (optind + 2 < argc) {
			xbd_usage_err("help", "unexpected argument '%s'",
				      argv[optind + 2]);
			return XBD_EXIT_USAGE;
		}
		for (i = 0; i < XBD_ARRAY_SIZE(commands); i++) {
			if (!strcmp(argv[optind + 1], commands[i]->name)) {
				char *words[] = { argv[optind + 1], (char *)"--help", NULL };

				optind = 0;
				return commands[i]->run(2, words);
			}
		}
		xbd_usage_err("help", "unknown command '%s'", argv[optind + 1]);
		return XBD_EXIT_USAGE;
	}
	for (i = 0; i < XBD_ARRAY_SIZE(commands); i++) {
		if (!strcmp(argv[optind], commands[i]->name)) {
			int first = optind;
			int n = xbd_cli_take_verbose(argc - first, argv + first);

			optind = 0; /* glibc: 0 re-initialises getopt */
			return commands[i]->run(n, argv + first);
		}
	}
	xbd_usage_err(NULL, "unknown command '%s'", argv[optind]);
	return XBD_EXIT_USAGE;
}

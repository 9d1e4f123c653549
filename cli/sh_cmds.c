/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xbdsh's commands, shared by the command line and the shell: help, list,
 * stats, watch, ring.  Each returns an exit status: 0 ok, 1 failure,
 * 2 usage.
 */
#include "cli/sh.h"
#include "xbd/cli.h"
#include "xbd/common.h"
#include "xbd/util.h"

#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define ONE_SHOT_RATE_MS 500 /* text `stats`: rates over this interval */

const char *const sh_command_names[] = {
	"help", "list", "stats", "top", "watch", "ring", "quit", NULL,
};

static const struct {
	const char *usage, *summary;
} help_lines[] = {
	{ "list [--json]", "VMs, their disks, who serves each and their state" },
	{ "stats VM [--json] [-d SECS [-i N]]",
	  "counters, rates, ring and latency of each disk of VM" },
	{ "stats [VM] --prometheus",
	  "every disk's metrics (or VM's), Prometheus text format" },
	{ "top [-d SECS] [-i N] [-b]",
	  "every disk of every VM, refreshed (q quits), as xentop" },
	{ "watch VM [-d SECS] [-i N]",
	  "the stats of VM, refreshed in place until a key is pressed" },
	{ "ring VM DISK", "ring indices, free slots and requests in flight" },
	{ "help [COMMAND]", "this list, or what COMMAND --help says" },
	{ "quit", "leave the shell (also: exit, Ctrl-D)" },
};

/* "xbdsh " on the command line, "" in the shell (whose commands are
 * typed without the program's name). */
static const char *prog_prefix(void)
{
	return xbd_help_prefix && !*xbd_help_prefix ? "" : "xbdsh ";
}

/* Whether a help_lines entry is about cmd. */
static bool usage_of(size_t i, const char *cmd)
{
	size_t n = strlen(cmd);

	return !strncmp(help_lines[i].usage, cmd, n) &&
	       (!help_lines[i].usage[n] || help_lines[i].usage[n] == ' ');
}

/* cmd's usage lines and what the first says it does, then more. */
static void print_usage(const char *cmd, const char *more)
{
	const char *summary = NULL;
	size_t i;

	for (i = 0; i < XBD_ARRAY_SIZE(help_lines); i++) {
		if (!usage_of(i, cmd))
			continue;
		printf("%s%s%s\n", summary ? "       " : "usage: ", prog_prefix(),
		       help_lines[i].usage);
		if (!summary)
			summary = help_lines[i].summary;
	}
	if (summary)
		printf("%c%s.\n", toupper((unsigned char)summary[0]), summary + 1);
	fputs(more, stdout);
}

void sh_command_args(const char *cmd, int *vm_arg, int *disk_arg)
{
	*vm_arg = 0;
	*disk_arg = 0;
	if (!strcmp(cmd, "stats") || !strcmp(cmd, "watch") ||
	    !strcmp(cmd, "ring"))
		*vm_arg = 1;
	if (!strcmp(cmd, "ring"))
		*disk_arg = 2;
}

static const struct option help_only[] = {
	{ "help", no_argument, NULL, 'h' },
	{ 0, 0, 0, 0 },
};

/*
 * The arguments of a command whose only option is --help: the names of
 * its nargs_min..nargs_max arguments in args ("VM DISK").  0: go on,
 * with the arguments from argv[optind]; -1: help printed; else 2 with
 * the error printed.
 */
static int parse_plain(int argc, char **argv, const char *cmd,
		       const char *more, int nargs_min, int nargs_max,
		       const char *args)
{
	const char *missing = args;
	int c, i;

	optind = 0; /* glibc: 0 re-initialises getopt for each command */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", help_only, NULL)) != -1) {
		if (c == 'h') {
			print_usage(cmd, more);
			return -1;
		}
		xbd_opt_err(cmd, c, argv, help_only);
		return XBD_EXIT_USAGE;
	}
	if (argc - optind > nargs_max) {
		if (nargs_max)
			xbd_usage_err(cmd, "unexpected argument '%s'",
				      argv[optind + nargs_max]);
		else
			xbd_usage_err(cmd, "takes no arguments");
		return XBD_EXIT_USAGE;
	}
	if (argc - optind < nargs_min) {
		/* the names of the arguments not given */
		for (i = 0; i < argc - optind; i++)
			missing += strcspn(missing, " ") + 1;
		xbd_usage_err(cmd, "missing %s", missing);
		return XBD_EXIT_USAGE;
	}
	return 0;
}

static int run_command(struct sh_ctx *ctx, int argc, char **argv);

static int cmd_help(struct sh_ctx *ctx, int argc, char **argv)
{
	char *words[] = { NULL, (char *)"--help", NULL };
	size_t i;
	int err = parse_plain(argc, argv, "help", "", 0, 1, "COMMAND");

	if (err)
		return err < 0 ? 0 : err;
	if (optind < argc) { /* help CMD: what CMD --help says */
		words[0] = argv[optind];
		return run_command(ctx, 2, words);
	}
	printf("commands:\n");
	/* usage on one line, what it does indented under it: fits 80 columns */
	for (i = 0; i < XBD_ARRAY_SIZE(help_lines); i++)
		printf("  %s\n      %s\n", help_lines[i].usage, help_lines[i].summary);
	printf("VM is a domain name or id; DISK a name (xvda) or device id.\n");
	return 0;
}

/* ------------------------------------------------------------------ */
/* stats and watch                                                    */

struct stats_opts {
	bool json, prometheus, watch;
	double interval_s;  /* 0: one shot */
	unsigned long count; /* 0: until a key */
	const char *vm;
};

static int parse_stats(int argc, char **argv, struct stats_opts *o)
{
	enum { O_JSON = 256, O_PROMETHEUS };
	static const struct option opts[] = {
		{ "json", no_argument, NULL, O_JSON },
		{ "prometheus", no_argument, NULL, O_PROMETHEUS },
		{ "delay", required_argument, NULL, 'd' },
		{ "iterations", required_argument, NULL, 'i' },
		/* the names before xentop's: -w/-n, kept for scripts */
		{ "interval", required_argument, NULL, 'd' },
		{ "count", required_argument, NULL, 'i' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *cmd = o->watch ? "watch" : "stats";
	unsigned long long n;
	char *end;
	int c;

	optind = 0; /* glibc: 0 re-initialises getopt for each command */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":d:i:w:n:h", opts, NULL)) != -1) {
		switch (c) {
		case O_JSON:
			o->json = true;
			break;
		case O_PROMETHEUS:
			o->prometheus = true;
			break;
		case 'd':
		case 'w':
			errno = 0;
			o->interval_s = strtod(optarg, &end);
			if (errno || *end || end == optarg || o->interval_s < 0.1 ||
			    o->interval_s > 86400) {
				xbd_usage_err(cmd, "-%c: expected seconds from 0.1 "
					      "to 86400, got '%s'", c, optarg);
				return XBD_EXIT_USAGE;
			}
			break;
		case 'i':
		case 'n':
			if (xbd_parse_uint(optarg, ULONG_MAX, &n) || !n) {
				xbd_usage_err(cmd, "-%c: expected a positive count, "
					      "got '%s'", c, optarg);
				return XBD_EXIT_USAGE;
			}
			o->count = (unsigned long)n;
			break;
		case 'h':
			return -1;
		default:
			xbd_opt_err(cmd, c, argv, opts);
			return XBD_EXIT_USAGE;
		}
	}
	if (optind < argc)
		o->vm = argv[optind++];
	if (optind < argc) {
		xbd_usage_err(cmd, "unexpected argument '%s'", argv[optind]);
		return XBD_EXIT_USAGE;
	}
	if (o->json && o->prometheus) {
		xbd_err("%s: --json and --prometheus exclude each other", cmd);
		return XBD_EXIT_USAGE;
	}
	if (o->prometheus && (o->interval_s || o->watch || o->count)) {
		xbd_err("%s: --prometheus prints once (a scraper decides when)",
			cmd);
		return XBD_EXIT_USAGE;
	}
	if (!o->vm && !o->prometheus) {
		xbd_usage_err(cmd, "missing VM");
		return XBD_EXIT_USAGE;
	}
	if (o->watch && !o->interval_s)
		o->interval_s = 1;
	if (o->count && !o->interval_s) {
		xbd_err("%s: -i needs -d", cmd);
		return XBD_EXIT_USAGE;
	}
	return 0;
}

/* Problems of a refresh, one line each on stderr. */
static int report(const struct sh_xbd *x, const struct sh_sample *s, int st)
{
	sh_xbd_report(x);
	sh_sample_report(s);
	return st || x->unreachable ? 1 : 0;
}

static int stats_prometheus(struct sh_ctx *ctx, const char *vm_name)
{
	struct sh_sample *samples = NULL;
	struct sh_vm *vms = NULL, one;
	struct sh_xbd x;
	unsigned n = 0, i;
	int err, status = 0;

	err = sh_xbd_fetch(ctx, "stats", &x);
	if (err)
		return 1;
	if (vm_name) {
		err = sh_vm_resolve(ctx, &x, vm_name, &one);
		vms = &one;
		n = 1;
	} else {
		err = sh_vm_list(ctx, &x, &vms, &n);
	}
	if (!err)
		samples = calloc(n ? n : 1, sizeof(*samples));
	for (i = 0; samples && i < n; i++) {
		int st = sh_sample_take(ctx, &x, &vms[i], false, &samples[i]);

		if (st < 0)
			status = 1; /* the VM went away meanwhile: skip it */
		else
			status |= report(&(struct sh_xbd){ 0 }, &samples[i], st);
	}
	if (samples) {
		sh_print_prometheus(stdout, samples, n, x.unreachable);
		fflush(stdout);
	}
	sh_xbd_report(&x);
	status |= x.unreachable ? 1 : 0;
	for (i = 0; samples && i < n; i++)
		sh_sample_free(&samples[i]);
	free(samples);
	if (vms != &one)
		free(vms);
	sh_xbd_free(&x);
	return err || !samples ? 1 : status;
}

static void print_frame(const struct stats_opts *o, const struct sh_sample *s,
			const struct sh_sample *prev, const struct sh_xbd *x,
			bool clear)
{
	unsigned i;

	if (o->json) {
		sh_print_json(stdout, s, prev);
		fflush(stdout);
		return;
	}
	if (clear)
		fputs("\033[H\033[2J", stdout);
	if (o->interval_s) {
		char when[40];
		time_t now = time(NULL);
		struct tm tm;

		localtime_r(&now, &tm);
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S%z", &tm);
		printf("%s  ", when);
	}
	if (o->interval_s)
		printf("every %.1fs, %s\n\n", o->interval_s,
		       isatty(STDIN_FILENO) ? "any key stops" :
		       sh_watch_stops_on_input() ?
		       "stops when input arrives or ends" : "Ctrl-C stops");
	sh_print_stats(stdout, s, prev);
	/* in a refreshing view the problems belong on the screen */
	for (i = 0; clear && i < x->unreachable &&
		    i < XBD_ARRAY_SIZE(x->problems); i++)
		printf("\n! %s\n", x->problems[i]);
	if (o->interval_s && !clear)
		putchar('\n');
	fflush(stdout);
}

static int stats_loop(struct sh_ctx *ctx, const struct stats_opts *o)
{
	struct sh_sample cur, prev = { 0 };
	struct sh_xbd x, first;
	struct sh_vm vm;
	bool clear = !o->json && isatty(STDOUT_FILENO) && o->interval_s;
	bool fresh = true; /* x is the fetch the VM was resolved with */
	unsigned long frames = 0;
	int st;

	if (sh_xbd_fetch(ctx, "stats", &x))
		return 1;
	if (sh_vm_resolve(ctx, &x, o->vm, &vm)) {
		sh_xbd_report(&x);
		sh_xbd_free(&x);
		return 1;
	}
	first = x;
	first.replies = NULL;
	first.n = 0;
	if (!o->interval_s && !o->json) {
		/* a first look to measure rates against */
		st = sh_sample_take(ctx, &x, &vm, false, &prev);
		sh_xbd_free(&x);
		if (st < 0)
			return 1;
		if (!sh_interrupted)
			usleep(ONE_SHOT_RATE_MS * 1000);
		fresh = false;
	}
	for (;;) {
		if (!fresh) {
			if (sh_xbd_fetch(ctx, "stats", &x)) {
				st = 1;
				break;
			}
			/* a process found gone by the first look (its socket
			 * is removed now) is still news for this report */
			if (!frames)
				sh_xbd_merge_problems(&x, &first);
		}
		fresh = false;
		st = sh_sample_take(ctx, &x, &vm, false, &cur);
		if (st < 0) {
			sh_xbd_free(&x);
			break;
		}
		print_frame(o, &cur, prev.disks ? &prev : NULL, &x, clear);
		st = clear ? (st || x.unreachable ? 1 : 0) : report(&x, &cur, st);
		sh_xbd_free(&x);
		sh_sample_free(&prev);
		prev = cur;
		frames++;
		if (!o->interval_s || (o->count && frames >= o->count) ||
		    sh_interrupted)
			break;
		sh_watchdog(false); /* waiting for the user is not stuck */
		if (sh_wait_key((int)(o->interval_s * 1000)) || sh_interrupted)
			break;
		sh_watchdog(true);
	}
	sh_sample_free(&prev);
	return st < 0 ? 1 : st;
}

static int cmd_stats(struct sh_ctx *ctx, int argc, char **argv, bool watch)
{
	struct stats_opts o = { .watch = watch };
	int err = parse_stats(argc, argv, &o);

	if (err < 0) {
		print_usage(watch ? "watch" : "stats", watch ?
			    "  -d, --delay SECS     refresh every SECS seconds (default 1)\n"
			    "  -i, --iterations N   stop after N refreshes\n" :
			    "  --json               one JSON document per sample\n"
			    "  --prometheus         Prometheus text format, once\n"
			    "  -d, --delay SECS     sample again every SECS seconds, each\n"
			    "                       block under its timestamp\n"
			    "  -i, --iterations N   stop after N samples\n");
		return 0;
	}
	if (err)
		return err;
	if (o.prometheus)
		return stats_prometheus(ctx, o.vm);
	return stats_loop(ctx, &o);
}

/* ------------------------------------------------------------------ */
/* ring and list                                                      */

static int cmd_ring(struct sh_ctx *ctx, int argc, char **argv)
{
	struct sh_sample s;
	struct sh_xbd x;
	struct sh_vm vm;
	struct sh_disk *d;
	unsigned i;
	int st;

	st = parse_plain(argc, argv, "ring",
			 "VM is a domain name or id; DISK a name (xvda) or device id.\n",
			 2, 2, "VM DISK");
	if (st)
		return st < 0 ? 0 : st;
	argv += optind - 1; /* argv[1] VM, argv[2] DISK */
	if (sh_xbd_fetch(ctx, "ring", &x))
		return 1;
	if (sh_vm_resolve(ctx, &x, argv[1], &vm)) {
		sh_xbd_free(&x);
		return 1;
	}
	st = sh_sample_take(ctx, &x, &vm, true, &s);
	if (st < 0) {
		sh_xbd_free(&x);
		return 1;
	}
	d = sh_sample_find(&s, argv[2]);
	if (!d) {
		char names[256] = "";

		for (i = 0; i < s.n; i++)
			snprintf(names + strlen(names),
				 sizeof(names) - strlen(names), "%s%s",
				 i ? ", " : "", s.disks[i].name[0] ?
				 s.disks[i].name : s.disks[i].vdev);
		xbd_err("%s: no disk '%s' (%s%s)", vm.name, argv[2],
			s.n ? "disks: " : "it has no disks", names);
		st = 1;
	} else {
		sh_print_ring(stdout, &s, d);
		st = d->failed || !d->have_ring ? 1 : 0;
		if (d->failed)
			xbd_err("%s: %s: %s", vm.name, d->vdev, d->note);
	}
	sh_xbd_report(&x);
	if (x.unreachable)
		st = 1;
	sh_sample_free(&s);
	sh_xbd_free(&x);
	return st;
}

static int cmd_list(struct sh_ctx *ctx, int argc, char **argv)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct sh_sample *samples;
	struct sh_vm *vms;
	struct sh_xbd x;
	unsigned n, i;
	bool json = false;
	int status = 0, c;

	optind = 0; /* glibc: 0 re-initialises getopt for each command */
	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		if (c == 'j') {
			json = true;
			continue;
		}
		if (c == 'h') {
			print_usage("list", "  --json               one JSON document\n");
			return 0;
		}
		xbd_opt_err("list", c, argv, opts);
		return XBD_EXIT_USAGE;
	}
	if (optind < argc) {
		xbd_usage_err("list", "takes no arguments");
		return XBD_EXIT_USAGE;
	}
	if (sh_xbd_fetch(ctx, "stats", &x))
		return 1;
	if (sh_vm_list(ctx, &x, &vms, &n)) {
		sh_xbd_free(&x);
		return 1;
	}
	samples = calloc(n ? n : 1, sizeof(*samples));
	for (i = 0; samples && i < n; i++) {
		int st = sh_sample_take(ctx, &x, &vms[i], false, &samples[i]);

		if (st < 0) { /* went away meanwhile */
			snprintf(samples[i].vm, sizeof(samples[i].vm), "%s",
				 vms[i].name);
			samples[i].domid = vms[i].domid;
		}
		status |= st ? 1 : 0;
	}
	if (samples && json)
		sh_print_list_json(stdout, samples, n);
	else if (samples)
		sh_print_list(stdout, samples, n);
	else
		status = 1;
	for (i = 0; samples && i < n; i++) {
		sh_sample_report(&samples[i]);
		sh_sample_free(&samples[i]);
	}
	sh_xbd_report(&x);
	status |= x.unreachable ? 1 : 0;
	free(samples);
	free(vms);
	sh_xbd_free(&x);
	return status;
}

static int run_command(struct sh_ctx *ctx, int argc, char **argv)
{
	const char *cmd = argv[0];

	if (!strcmp(cmd, "help") || !strcmp(cmd, "?"))
		return cmd_help(ctx, argc, argv);
	if (!strcmp(cmd, "list") || !strcmp(cmd, "ls"))
		return cmd_list(ctx, argc, argv);
	if (!strcmp(cmd, "stats"))
		return cmd_stats(ctx, argc, argv, false);
	if (!strcmp(cmd, "watch"))
		return cmd_stats(ctx, argc, argv, true);
	if (!strcmp(cmd, "ring"))
		return cmd_ring(ctx, argc, argv);
	if (!strcmp(cmd, "top"))
		return sh_cmd_top(ctx, argc, argv);
	if (xbd_help_prefix && !*xbd_help_prefix)
		xbd_err("unknown command '%s' (see help)", cmd);
	else
		xbd_usage_err(NULL, "unknown command '%s'", cmd);
	return XBD_EXIT_USAGE;
}

int sh_run_command(struct sh_ctx *ctx, int argc, char **argv)
{
	int status;

	sh_watchdog(true);
	status = run_command(ctx, argc, argv);
	sh_watchdog(false);
	return status;
}

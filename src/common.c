/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Logging and small utilities shared by every xbd program. */
#include "xbd/common.h"

#include <getopt.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int xbd_verbosity;
const char *xbd_progname = "xbd";
const char *xbd_help_prefix;

static void xbd_vlog(const char *fmt, va_list ap)
{
	char line[1024];

	vsnprintf(line, sizeof(line), fmt, ap);
	/* one write per line so lines of concurrent threads do not mix */
	fprintf(stderr, "%s: %s\n", xbd_progname, line);
}

void xbd_err(const char *fmt, ...)
{
	va_list ap;

	va_start(ap, fmt);
	xbd_vlog(fmt, ap);
	va_end(ap);
}

void xbd_info(const char *fmt, ...)
{
	va_list ap;

	if (xbd_verbosity < 1)
		return;
	va_start(ap, fmt);
	xbd_vlog(fmt, ap);
	va_end(ap);
}

void xbd_debug(const char *fmt, ...)
{
	va_list ap;

	if (xbd_verbosity < 2)
		return;
	va_start(ap, fmt);
	xbd_vlog(fmt, ap);
	va_end(ap);
}

void xbd_usage_err(const char *cmd, const char *fmt, ...)
{
	const char *pre = xbd_help_prefix ? xbd_help_prefix : xbd_progname;
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	if (cmd)
		xbd_err("%s: %s (see %s%s%s --help)", cmd, msg, pre, *pre ? " " : "",
			cmd);
	else
		xbd_err("%s (see %s --help)", msg, pre);
}

/* getopt_long (opterr 0, ':' leading the optstring) leaves the word it
 * stopped at in argv[optind - 1] for a long option, and the letter in
 * optopt for a short one: unknown long options have optopt 0. */
void xbd_opt_err(const char *cmd, int c, char *const *argv,
		 const struct option *opts)
{
	const char *arg = optind > 0 ? argv[optind - 1] : "";
	bool is_long = !strncmp(arg, "--", 2) && arg[2];
	size_t len = is_long ? strcspn(arg + 2, "=") : 0;
	const struct option *o, *match = NULL;
	char others[160] = "";
	unsigned nmatch = 0;

	for (o = opts; is_long && o && o->name; o++) {
		if (strncmp(o->name, arg + 2, len))
			continue;
		if (strlen(o->name) == len) { /* exact: never ambiguous */
			match = o;
			nmatch = 1;
			break;
		}
		if (!match)
			match = o;
		snprintf(others + strlen(others), sizeof(others) - strlen(others),
			 "%s--%s", nmatch++ ? ", " : "", o->name);
	}
	if (match && match->val != optopt)
		match = NULL; /* the failure was a short option after it */
	if (c == ':' && match && nmatch == 1)
		xbd_usage_err(cmd, "--%s needs a value", match->name);
	else if (c == ':')
		xbd_usage_err(cmd, "-%c needs a value", optopt);
	else if (optopt && match && nmatch == 1 && match->has_arg == no_argument)
		xbd_usage_err(cmd, "--%s takes no value", match->name);
	else if (optopt)
		xbd_usage_err(cmd, "unknown option '-%c'", optopt);
	else if (nmatch > 1)
		xbd_usage_err(cmd, "option '--%.*s' is ambiguous: %s", (int)len,
			      arg + 2, others);
	else
		xbd_usage_err(cmd, "unknown option '--%.*s'", (int)len, arg + 2);
}

const char *xbd_strerror(int err)
{
	if (err == -XBD_E_XEN_VERSION || err == XBD_E_XEN_VERSION)
		return "this xbd was built for another Xen version "
		       "(its libxenctrl is not the running hypervisor's)";
	return strerror(err < 0 ? -err : err);
}

unsigned long long xbd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

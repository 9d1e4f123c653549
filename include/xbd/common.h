/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Small helpers every part of xbd uses: logging with the program name,
 * array sizes, and the user-facing error convention.
 */
#ifndef XBD_COMMON_H
#define XBD_COMMON_H

#include <stdarg.h>
#include <stddef.h>

#define XBD_ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))
#define XBD_UNUSED __attribute__((unused))

/* Verbosity: 0 errors only, 1 info, 2 debug.  Set from -v / $XBD_DEBUG. */
extern int xbd_verbosity;
extern const char *xbd_progname; /* "xbd" unless a main sets it */

/* "xbd: <message>" on stderr, one line. */
void xbd_err(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void xbd_info(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void xbd_debug(const char *fmt, ...) __attribute__((format(printf, 1, 2)));

/* A usage error (the caller exits 2), one line:
 *   "xbd: serve: MESSAGE (see xbd serve --help)"
 * cmd: the command's words ("serve", "sim vm io"), NULL for the
 * program's own options.  The hint names xbd_help_prefix before cmd,
 * or xbd_progname when it is NULL (xbdsh's shell sets ""). */
extern const char *xbd_help_prefix;
void xbd_usage_err(const char *cmd, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* Reports what getopt_long refused, as xbd_usage_err: an unknown or
 * ambiguous option, a missing value, a value given to a flag.  c is
 * what getopt_long returned ('?' or ':'); it must have been called with
 * opterr = 0 and an optstring that starts with ':' (after any '+'). */
struct option;
void xbd_opt_err(const char *cmd, int c, char *const *argv,
		 const struct option *opts);

/* Returned (negated) by a Xen control operation that the running
 * hypervisor refused because this xbd's libxenctrl speaks another
 * version of its interface: xbd was built for another Xen. */
#define XBD_E_XEN_VERSION 4096

/* Human text for a negative errno return (strerror of -err, or the
 * text of an XBD_E_ code). */
const char *xbd_strerror(int err);

/* 1.0 s = 1e9 ns; monotonic clock */
unsigned long long xbd_now_ns(void);

#endif

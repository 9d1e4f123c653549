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

/* Human text for a negative errno return (strerror of -err). */
const char *xbd_strerror(int err);

/* 1.0 s = 1e9 ns; monotonic clock */
unsigned long long xbd_now_ns(void);

#endif

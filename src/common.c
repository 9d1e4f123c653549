/* Logging and small utilities shared by every xbd program. */
#include "xbd/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

int xbd_verbosity;
const char *xbd_progname = "xbd";

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

const char *xbd_strerror(int err)
{
	return strerror(err < 0 ? -err : err);
}

unsigned long long xbd_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (unsigned long long)ts.tv_sec * 1000000000ull + ts.tv_nsec;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * errinject image back-end: passes I/O through to a base image but
 * fails with -EIO any request that touches one of the listed sector
 * ranges, so that tests can see how every layer above reports a bad
 * disk; and delays I/O by set times ("delay=USEC" for every request,
 * "delay=USEC@RANGE" for those touching RANGE), so that tests can check
 * the latency figures against known latencies.
 */
#include "image_priv.h"
#include "xbd/common.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define EI_MAX_DELAY_US 60000000ull /* a minute: longer is a typo */

struct errinject_range {
	uint64_t start, end; /* bytes, [start, end) */
	uint64_t delay_us;   /* 0: fail I/O here; else delay it this long */
	bool all;            /* a delay for every request */
};

struct errinject_image {
	struct xbd_image pub;
	struct xbd_image *base;
	size_t nranges;
	struct errinject_range ranges[];
};

static struct errinject_image *to_ei(struct xbd_image *img)
{
	return (struct errinject_image *)img;
}

/* Whether the I/O fails; before that, it waits the longest delay that
 * applies to it (a request for no bytes, a flush, touches no range). */
static bool ei_hits(struct errinject_image *ei, uint64_t offset, uint64_t len)
{
	uint64_t delay_us = 0;
	bool fail = false;

	for (size_t i = 0; i < ei->nranges; i++) {
		const struct errinject_range *r = &ei->ranges[i];
		bool touches = r->all || (offset < r->end && r->start < offset + len);

		if (!touches)
			continue;
		if (!r->delay_us)
			fail = true;
		else if (r->delay_us > delay_us)
			delay_us = r->delay_us;
	}
	if (delay_us) {
		struct timespec ts = {
			.tv_sec = (time_t)(delay_us / 1000000),
			.tv_nsec = (long)(delay_us % 1000000) * 1000,
		};

		while (nanosleep(&ts, &ts) < 0 && errno == EINTR)
			;
	}
	return fail;
}

static int ei_preadv(struct xbd_image *img, const struct iovec *iov,
		     int iovcnt, uint64_t offset)
{
	size_t len = xbd_iov_length(iov, iovcnt);

	assert(xbd_image_valid_range(img, offset, len));
	if (ei_hits(to_ei(img), offset, len))
		return -EIO;
	return xbd_image_preadv(to_ei(img)->base, iov, iovcnt, offset);
}

static int ei_pwritev(struct xbd_image *img, const struct iovec *iov,
		      int iovcnt, uint64_t offset)
{
	size_t len = xbd_iov_length(iov, iovcnt);

	assert(xbd_image_valid_range(img, offset, len));
	assert(!img->read_only);
	if (ei_hits(to_ei(img), offset, len))
		return -EIO;
	return xbd_image_pwritev(to_ei(img)->base, iov, iovcnt, offset);
}

static int ei_flush(struct xbd_image *img)
{
	ei_hits(to_ei(img), 0, 0); /* only the delay for every request */
	return xbd_image_flush(to_ei(img)->base);
}

static int ei_discard(struct xbd_image *img, uint64_t offset, uint64_t len)
{
	assert(xbd_image_valid_range(img, offset, len));
	assert(!img->read_only);
	if (ei_hits(to_ei(img), offset, len))
		return -EIO;
	return xbd_image_discard(to_ei(img)->base, offset, len);
}

static void ei_close(struct xbd_image *img)
{
	xbd_image_close(to_ei(img)->base);
	free(img);
}

static const struct xbd_image_ops errinject_ops = {
	.name = "errinject",
	.preadv = ei_preadv,
	.pwritev = ei_pwritev,
	.flush = ei_flush,
	.discard = ei_discard,
	.close = ei_close,
};

/* "START-END" or "SECTOR", in 512-byte sectors, inclusive; or
 * "delay=USEC" (every request) or "delay=USEC@START-END". */
static int parse_range(const char *s, const char *stop, uint64_t size,
		       struct errinject_range *r)
{
	unsigned long long a, b;
	char *end;

	memset(r, 0, sizeof(*r));
	if (!strncmp(s, "delay=", 6)) {
		s += 6;
		if (s == stop || *s < '0' || *s > '9')
			return -EINVAL;
		errno = 0;
		a = strtoull(s, &end, 10);
		if (errno || !a || a > EI_MAX_DELAY_US)
			return -EINVAL;
		r->delay_us = a;
		if (end == stop) {
			r->all = true;
			return 0;
		}
		if (*end != '@')
			return -EINVAL;
		s = end + 1;
	}
	if (s == stop || *s < '0' || *s > '9')
		return -EINVAL;
	errno = 0;
	a = strtoull(s, &end, 10);
	b = a;
	if (!errno && *end == '-' && end + 1 < stop && end[1] >= '0' && end[1] <= '9')
		b = strtoull(end + 1, &end, 10);
	if (errno || end != stop || b < a || b >= size / 512)
		return -EINVAL;
	r->start = (uint64_t)a * 512;
	r->end = ((uint64_t)b + 1) * 512;
	return 0;
}

int xbd_image_open_errinject(struct xbd_image *base, const char *spec,
			     struct xbd_image **out)
{
	struct errinject_image *ei;
	size_t n = 1;
	const char *p;

	for (p = spec; *p; p++)
		n += *p == ',';
	ei = calloc(1, sizeof(*ei) + n * sizeof(ei->ranges[0]));
	if (!ei) {
		xbd_err("errinject: out of memory");
		xbd_image_close(base);
		return -ENOMEM;
	}
	for (p = spec; ; ) {
		const char *comma = strchr(p, ',');
		const char *stop = comma ? comma : p + strlen(p);

		if (parse_range(p, stop, base->size, &ei->ranges[ei->nranges])) {
			xbd_err("errinject: bad range '%.*s' in '%s' (want START-END "
				"in sectors, inside %llu sectors, or delay=USEC"
				"[@START-END])", (int)(stop - p), p,
				spec, (unsigned long long)(base->size / 512));
			free(ei);
			xbd_image_close(base);
			return -EINVAL;
		}
		ei->nranges++;
		if (!comma)
			break;
		p = comma + 1;
	}
	ei->base = base;
	ei->pub = *base;
	ei->pub.ops = &errinject_ops;
	*out = &ei->pub;
	return 0;
}

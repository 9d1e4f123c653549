/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The imaging pipeline of `xbd image`: the calling thread keeps several
 * large reads in flight on the frontend into a ring of buffers; each
 * buffer, once read, goes in disk order through one thread per digest
 * (OpenSSL EVP) and one writer thread, and is reused when all of them
 * are done with it.  A read that fails is read again one sector at a
 * time to find the unreadable sectors: the copy stops at the first, or
 * (skip_errors) they become zeros and are listed.
 */
#include "xbd/imaging.h"
#include "xbd/common.h"
#include "xbd/frontend.h"
#include "xbd/image.h"

#include <errno.h>
#include <openssl/evp.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#define IMG_CHUNK (1u << 20)     /* bytes per read */
#define IMG_SLOTS 16u            /* buffers: reading, hashing, writing */
#define IMG_IN_FLIGHT 8u         /* reads outstanding at once */
#define IMG_TICK_MS 200
#define IMG_MAX_BAD_RANGES 100000u /* a bound on the list a bad disk makes */

static const char *const hash_names[XBD_HASH_COUNT] = { "md5", "sha1", "sha256" };

const char *xbd_hash_name(enum xbd_hash h)
{
	return hash_names[h];
}

static const EVP_MD *hash_md(enum xbd_hash h)
{
	switch (h) {
	case XBD_HASH_MD5: return EVP_md5();
	case XBD_HASH_SHA1: return EVP_sha1();
	default: return EVP_sha256();
	}
}

/* ------------------------------------------------------------------ */
/* Digests                                                            */
/* ------------------------------------------------------------------ */

struct xbd_hashset {
	EVP_MD_CTX *ctx[XBD_HASH_COUNT];
};

static int ctx_new(enum xbd_hash h, EVP_MD_CTX **out)
{
	EVP_MD_CTX *c = EVP_MD_CTX_new();

	if (!c)
		return -ENOMEM;
	if (EVP_DigestInit_ex(c, hash_md(h), NULL) != 1) {
		EVP_MD_CTX_free(c);
		return -EINVAL;
	}
	*out = c;
	return 0;
}

/* hex and digest (either may be NULL) of a finished context. */
static int ctx_final(EVP_MD_CTX *c, char *hex, uint8_t *digest)
{
	unsigned char md[EVP_MAX_MD_SIZE];
	unsigned n = 0, i;

	if (EVP_DigestFinal_ex(c, md, &n) != 1 || n > XBD_HASH_MAX_BYTES)
		return -EINVAL;
	for (i = 0; hex && i < n; i++)
		snprintf(hex + 2 * i, 3, "%02x", md[i]);
	if (digest)
		memcpy(digest, md, n);
	return 0;
}

int xbd_hashset_new(const bool want[XBD_HASH_COUNT], struct xbd_hashset **out)
{
	struct xbd_hashset *hs = calloc(1, sizeof(*hs));
	int h, err = 0;

	if (!hs)
		return -ENOMEM;
	for (h = 0; h < XBD_HASH_COUNT && !err; h++)
		if (want[h])
			err = ctx_new(h, &hs->ctx[h]);
	if (err) {
		xbd_hashset_free(hs);
		return err;
	}
	*out = hs;
	return 0;
}

int xbd_hashset_update(struct xbd_hashset *hs, const void *buf, size_t len)
{
	int h;

	for (h = 0; h < XBD_HASH_COUNT; h++)
		if (hs->ctx[h] && EVP_DigestUpdate(hs->ctx[h], buf, len) != 1)
			return -EINVAL;
	return 0;
}

int xbd_hashset_final(struct xbd_hashset *hs,
		      char hex[XBD_HASH_COUNT][2 * XBD_HASH_MAX_BYTES + 1])
{
	int h, err = 0;

	for (h = 0; h < XBD_HASH_COUNT; h++) {
		hex[h][0] = '\0';
		if (hs->ctx[h] && !err)
			err = ctx_final(hs->ctx[h], hex[h], NULL);
	}
	return err;
}

void xbd_hashset_free(struct xbd_hashset *hs)
{
	int h;

	if (!hs)
		return;
	for (h = 0; h < XBD_HASH_COUNT; h++)
		EVP_MD_CTX_free(hs->ctx[h]);
	free(hs);
}

/* ------------------------------------------------------------------ */
/* The pipeline                                                       */
/* ------------------------------------------------------------------ */

enum slot_state { SLOT_FREE, SLOT_READING, SLOT_READY, SLOT_FAILED };

struct slot {
	struct pipe *pp;
	enum slot_state state;
	uint64_t seq;
	size_t len;
	unsigned refs;                /* consumers yet to take it */
	uint8_t *buf;
	struct iovec iov;
};

struct consumer {
	struct pipe *pp;
	pthread_cond_t cv;            /* its next slot is ready, or stop */
	pthread_t thread;
	bool started;
	int hash;                     /* an enum xbd_hash, or -1: the writer */
	EVP_MD_CTX *ctx;
	uint64_t pos;                 /* next sequence number */
};

struct pipe {
	const struct xbd_imaging_opts *o;
	struct xbd_imaging_result *r;
	pthread_mutex_t m;
	pthread_cond_t cv;            /* the producer's: a read done, a slot free, stop */
	struct slot slots[IMG_SLOTS];
	struct consumer cons[XBD_HASH_COUNT + 1];
	unsigned ncons;
	uint64_t nseq;
	unsigned in_flight;
	uint64_t written;
	bool stop;
	int err;
};

/* Under the lock: the first error stops everything. */
static void pipe_fail(struct pipe *pp, int err)
{
	unsigned i;

	if (!pp->err)
		pp->err = err;
	pp->stop = true;
	pthread_cond_broadcast(&pp->cv);
	for (i = 0; i < pp->ncons; i++)
		pthread_cond_signal(&pp->cons[i].cv);
}

/* Under the lock: s is ready; only the consumers waiting for it wake
 * (one condition variable for all woke every thread on every event). */
static void slot_ready(struct pipe *pp, struct slot *s)
{
	unsigned i;

	s->state = SLOT_READY;
	for (i = 0; i < pp->ncons; i++)
		if (pp->cons[i].pos == s->seq)
			pthread_cond_signal(&pp->cons[i].cv);
}

static void read_done(void *opaque, int err)
{
	struct slot *s = opaque;
	struct pipe *pp = s->pp;

	pthread_mutex_lock(&pp->m);
	s->refs = pp->ncons;
	if (err)
		s->state = SLOT_FAILED;
	else
		slot_ready(pp, s);
	pp->in_flight--;
	pthread_cond_signal(&pp->cv);
	pthread_mutex_unlock(&pp->m);
}

static int consume(struct consumer *c, const struct slot *s)
{
	if (c->hash >= 0)
		return EVP_DigestUpdate(c->ctx, s->buf, s->len) == 1 ? 0 : -EINVAL;
	return xbd_image_out_write(c->pp->o->out, s->buf, s->len);
}

static void *consumer_main(void *arg)
{
	struct consumer *c = arg;
	struct pipe *pp = c->pp;

	pthread_mutex_lock(&pp->m);
	while (c->pos < pp->nseq) {
		struct slot *s = &pp->slots[c->pos % IMG_SLOTS];
		int err;

		while (!pp->stop && !(s->seq == c->pos && s->state == SLOT_READY))
			pthread_cond_wait(&c->cv, &pp->m);
		if (pp->stop)
			break;
		pthread_mutex_unlock(&pp->m);
		err = consume(c, s);
		pthread_mutex_lock(&pp->m);
		if (err) {
			if (c->hash < 0 && !pp->err)
				pp->r->out_failed = true;
			pipe_fail(pp, err);
			break;
		}
		if (c->hash < 0)
			pp->written += s->len;
		c->pos++;
		if (--s->refs == 0) {
			s->state = SLOT_FREE;
			pthread_cond_signal(&pp->cv);
		} else if (c->pos == pp->nseq) {
			pthread_cond_signal(&pp->cv);
		}
	}
	pthread_mutex_unlock(&pp->m);
	return NULL;
}

/* Appends unreadable sectors [start, end] to the result's list. */
static int add_bad(struct xbd_imaging_result *r, uint64_t start, uint64_t end)
{
	struct xbd_sector_range *n;

	r->bad_sectors += end - start + 1;
	if (r->nbad && r->bad[r->nbad - 1].end + 1 == start) {
		r->bad[r->nbad - 1].end = end;
		return 0;
	}
	if (r->nbad == IMG_MAX_BAD_RANGES)
		return -E2BIG;
	n = realloc(r->bad, (r->nbad + 1) * sizeof(*n));
	if (!n)
		return -ENOMEM;
	r->bad = n;
	r->bad[r->nbad++] = (struct xbd_sector_range){ start, end };
	return 0;
}

/* A failed read again, one sector at a time, from the calling thread. */
static int reread(struct pipe *pp, struct xbd_image *img, struct slot *s)
{
	const struct xbd_imaging_opts *o = pp->o;
	uint64_t base = s->seq * IMG_CHUNK;
	size_t off;

	for (off = 0; off < s->len; off += o->sector_size) {
		size_t n = s->len - off < o->sector_size ? s->len - off : o->sector_size;
		int err = xbd_image_pread(img, s->buf + off, n, base + off);
		uint64_t first = (base + off) / 512, last = (base + off + n - 1) / 512;

		if (!err)
			continue;
		if (o->fe && xbd_frontend_status(o->fe))
			return xbd_frontend_status(o->fe);
		if (!o->skip_errors) {
			pp->r->stop_sector = first;
			return -EIO;
		}
		memset(s->buf + off, 0, n);
		err = add_bad(pp->r, first, last);
		if (err)
			return err;
		xbd_debug("image: sectors %llu-%llu unreadable, zero-filled",
			  (unsigned long long)first, (unsigned long long)last);
	}
	return 0;
}

/* Under the lock: starts the next read if a buffer and a slot allow. */
static bool submit_next(struct pipe *pp, uint64_t *next)
{
	struct slot *s = &pp->slots[*next % IMG_SLOTS];
	uint64_t off = *next * IMG_CHUNK;
	int err;

	if (*next >= pp->nseq || s->state != SLOT_FREE || pp->in_flight >= IMG_IN_FLIGHT)
		return false;
	s->seq = *next;
	s->len = pp->o->size - off < IMG_CHUNK ? pp->o->size - off : IMG_CHUNK;
	s->state = SLOT_READING;
	s->iov = (struct iovec){ s->buf, s->len };
	pp->in_flight++;
	(*next)++;
	pthread_mutex_unlock(&pp->m);
	if (pp->o->src)
		err = xbd_image_preadv_async(pp->o->src, &s->iov, 1, off, read_done, s);
	else
		err = xbd_frontend_submit(pp->o->fe, XBD_FRONTEND_READ, &s->iov, 1, off,
					  s->len, read_done, s);
	pthread_mutex_lock(&pp->m);
	if (err) {
		pp->in_flight--;
		s->state = SLOT_FREE;
		pipe_fail(pp, err);
	}
	return !err;
}

/* The lowest-numbered failed slot, NULL when none. */
static struct slot *first_failed(struct pipe *pp)
{
	struct slot *best = NULL;
	unsigned i;

	for (i = 0; i < IMG_SLOTS; i++)
		if (pp->slots[i].state == SLOT_FAILED &&
		    (!best || pp->slots[i].seq < best->seq))
			best = &pp->slots[i];
	return best;
}

static bool all_consumed(struct pipe *pp)
{
	unsigned i;

	for (i = 0; i < pp->ncons; i++)
		if (pp->cons[i].pos < pp->nseq)
			return false;
	return true;
}

static void deadline_in(struct timespec *ts, int ms)
{
	clock_gettime(CLOCK_MONOTONIC, ts);
	ts->tv_nsec += (long)ms * 1000000L;
	ts->tv_sec += ts->tv_nsec / 1000000000L;
	ts->tv_nsec %= 1000000000L;
}

/* The calling thread: reads, re-reads failures, ticks. */
static void produce(struct pipe *pp, struct xbd_image *img)
{
	uint64_t next = 0, last_tick = 0;

	pthread_mutex_lock(&pp->m);
	while (!pp->stop && !all_consumed(pp)) {
		struct slot *f = first_failed(pp);
		uint64_t now = xbd_now_ns();

		if (f) {
			int err;

			pthread_mutex_unlock(&pp->m);
			err = reread(pp, img, f);
			pthread_mutex_lock(&pp->m);
			if (err) {
				pipe_fail(pp, err);
				break;
			}
			slot_ready(pp, f);
			continue;
		}
		if (submit_next(pp, &next))
			continue;
		if (pp->o->tick && now - last_tick >= IMG_TICK_MS * 1000000ull) {
			uint64_t done = pp->written;
			int stop;

			last_tick = now;
			pthread_mutex_unlock(&pp->m);
			stop = pp->o->tick(pp->o->tick_arg, done);
			pthread_mutex_lock(&pp->m);
			if (stop) {
				pipe_fail(pp, -EINTR);
				break;
			}
			/* what was signalled while unlocked is not lost */
			continue;
		}
		{
			struct timespec ts;

			deadline_in(&ts, IMG_TICK_MS);
			pthread_cond_timedwait(&pp->cv, &pp->m, &ts);
		}
	}
	/* the frontend still writes into the buffers of reads in flight */
	while (pp->in_flight)
		pthread_cond_wait(&pp->cv, &pp->m);
	pthread_mutex_unlock(&pp->m);
}

static int pipe_init(struct pipe *pp, const struct xbd_imaging_opts *o,
		     struct xbd_imaging_result *r)
{
	pthread_condattr_t ca;
	unsigned i;
	int h, err = 0;

	memset(pp, 0, sizeof(*pp));
	pp->o = o;
	pp->r = r;
	pp->nseq = (o->size + IMG_CHUNK - 1) / IMG_CHUNK;
	pthread_mutex_init(&pp->m, NULL);
	pthread_condattr_init(&ca);
	pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
	pthread_cond_init(&pp->cv, &ca);
	pthread_condattr_destroy(&ca);
	for (i = 0; i < XBD_HASH_COUNT + 1; i++)
		pthread_cond_init(&pp->cons[i].cv, NULL);
	for (i = 0; i < IMG_SLOTS; i++) {
		pp->slots[i].pp = pp;
		pp->slots[i].seq = UINT64_MAX;
		/* page-aligned: the frontend copies from its granted pages */
		if (posix_memalign((void **)&pp->slots[i].buf, 4096, IMG_CHUNK))
			return -ENOMEM;
	}
	for (h = 0; h < XBD_HASH_COUNT && !err; h++) {
		if (!o->want[h])
			continue;
		pp->cons[pp->ncons].pp = pp;
		pp->cons[pp->ncons].hash = h;
		err = ctx_new(h, &pp->cons[pp->ncons].ctx);
		pp->ncons++;
	}
	pp->cons[pp->ncons].pp = pp;
	pp->cons[pp->ncons++].hash = -1;
	return err;
}

static void pipe_destroy(struct pipe *pp)
{
	unsigned i;

	for (i = 0; i < pp->ncons; i++)
		EVP_MD_CTX_free(pp->cons[i].ctx);
	for (i = 0; i < XBD_HASH_COUNT + 1; i++)
		pthread_cond_destroy(&pp->cons[i].cv);
	for (i = 0; i < IMG_SLOTS; i++)
		free(pp->slots[i].buf);
	pthread_cond_destroy(&pp->cv);
	pthread_mutex_destroy(&pp->m);
}

int xbd_imaging_run(const struct xbd_imaging_opts *o, struct xbd_imaging_result *r)
{
	struct xbd_image *img = NULL;
	struct pipe *pp;
	unsigned i;
	int err;

	memset(r, 0, sizeof(*r));
	if (!o->sector_size || o->sector_size > IMG_CHUNK || IMG_CHUNK % o->sector_size)
		return -EINVAL;
	pp = calloc(1, sizeof(*pp));
	if (!pp)
		return -ENOMEM;
	err = pipe_init(pp, o, r);
	if (!err && o->src)
		img = o->src;
	else if (!err)
		err = xbd_frontend_open_image(o->fe, true, &img);
	for (i = 0; i < pp->ncons && !err; i++) {
		err = -pthread_create(&pp->cons[i].thread, NULL, consumer_main, &pp->cons[i]);
		pp->cons[i].started = !err;
	}
	if (err) {
		pthread_mutex_lock(&pp->m);
		pipe_fail(pp, err);
		pthread_mutex_unlock(&pp->m);
	} else {
		produce(pp, img);
	}
	for (i = 0; i < pp->ncons; i++)
		if (pp->cons[i].started)
			pthread_join(pp->cons[i].thread, NULL);
	err = pp->err;
	if (!err && o->tick)
		o->tick(o->tick_arg, pp->written);
	r->bytes = pp->written;
	for (i = 0; i < pp->ncons && !err; i++) {
		int h = pp->cons[i].hash;

		if (h >= 0)
			err = ctx_final(pp->cons[i].ctx, r->hex[h], r->digest[h]);
	}
	if (img && img != o->src)
		xbd_image_close(img);
	pipe_destroy(pp);
	free(pp);
	return err;
}

void xbd_imaging_result_free(struct xbd_imaging_result *r)
{
	free(r->bad);
	r->bad = NULL;
	r->nbad = 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * E01 chunks compressed in parallel.  libewf_handle_write_buffer
 * deflates every chunk on the thread that calls it, which makes one
 * core the limit of an E01; here the media data is copied into jobs of
 * a few chunks, worker threads pack each chunk exactly as libewf 20140813
 * packs it (libewf_handle_prepare_write_chunk / libewf_chunk_data_pack:
 * the empty-block rule, zlib's compress2 at the handle's level, the
 * uncompressed chunk with its Adler-32 when deflate does not shrink it),
 * and the writing thread hands them in order to libewf_handle_write_chunk.
 * The jobs form a ring: memory is bounded, and a writer that gets ahead
 * of the workers waits for the oldest job.
 */
#include "imaging_priv.h"
#include "xbd/common.h"
#include "xbd/imaging.h"

#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statvfs.h>
#include <unistd.h>
#include <zlib.h>

#define JOB_CHUNKS 16u            /* chunks per job */

struct job {
	unsigned n;                   /* chunks in it */
	bool done;                    /* packed (under the lock) */
	int err;
	size_t len[JOB_CHUNKS];       /* media bytes of each chunk */
	const uint8_t *wbuf[JOB_CHUNKS]; /* what to write: in, out or the zero block */
	size_t wlen[JOB_CHUNKS];
	int8_t compressed[JOB_CHUNKS];
	uint32_t checksum[JOB_CHUNKS];
	uint8_t *in;                  /* JOB_CHUNKS * in_stride */
	uint8_t *out;                 /* JOB_CHUNKS * out_stride */
};

struct xbd_ewf_chunker {
	libewf_handle_t *h;
	const char *name;
	int8_t level;
	uint8_t flags;
	size_t chunk, in_stride, out_stride;
	uint8_t *zero;                /* a zero chunk deflated, as libewf caches it */
	size_t zero_len;
	pthread_mutex_t m;
	pthread_cond_t work, done;
	struct job *jobs;
	unsigned njobs;
	/* job sequence numbers: written < taken <= submitted; the one being
	 * filled is jobs[submitted % njobs] */
	uint64_t written, taken, submitted;
	size_t fill;                  /* bytes in the chunk being filled */
	bool quit;
	pthread_t *threads;
	unsigned nthreads;
};

static int zlib_level(int8_t level)
{
	switch (level) {
	case LIBEWF_COMPRESSION_FAST: return Z_BEST_SPEED;
	case LIBEWF_COMPRESSION_BEST: return Z_BEST_COMPRESSION;
	case LIBEWF_COMPRESSION_NONE: return Z_NO_COMPRESSION;
	default: return Z_DEFAULT_COMPRESSION;
	}
}

/* libewf_empty_block_test: every byte the same. */
static bool uniform(const uint8_t *b, size_t n)
{
	return n > 0 && (n == 1 || !memcmp(b, b + 1, n - 1));
}

/* Chunk i of job j packed (a worker, without the lock). */
static int pack(struct xbd_ewf_chunker *c, struct job *j, unsigned i)
{
	uint8_t *in = j->in + i * c->in_stride, *out = j->out + i * c->out_stride;
	size_t n = j->len[i];
	int8_t level = c->level;
	bool zero_block = false;

	j->compressed[i] = 0;
	if (level != LIBEWF_COMPRESSION_NONE ||
	    (c->flags & LIBEWF_COMPRESS_FLAG_USE_EMPTY_BLOCK_COMPRESSION)) {
		if (uniform(in, n)) {
			if (in[0] == 0)
				zero_block = true;
			else if (level == LIBEWF_COMPRESSION_NONE)
				level = LIBEWF_COMPRESSION_DEFAULT;
		}
	}
	if (level != LIBEWF_COMPRESSION_NONE || zero_block) {
		uLongf olen = c->out_stride;

		if (zero_block && n == c->chunk) {
			j->wbuf[i] = c->zero;
			olen = c->zero_len;
		} else {
			if (compress2(out, &olen, in, n, zlib_level(level)) != Z_OK)
				return -ENOMEM;
			j->wbuf[i] = out;
		}
		if (olen < n) {
			j->compressed[i] = 1;
			j->wlen[i] = olen;
			/* zlib's own Adler-32 ends the stream: libewf copies it */
			memcpy(&j->checksum[i], j->wbuf[i] + olen - 4, 4);
			return 0;
		}
	}
	/* the chunk as it is; libewf stores its checksum in the 4 bytes
	 * after it (in_stride leaves room) and writes both at once */
	j->checksum[i] = (uint32_t)adler32(1, in, (uInt)n);
	j->wbuf[i] = in;
	j->wlen[i] = n;
	return 0;
}

static void *worker_main(void *arg)
{
	struct xbd_ewf_chunker *c = arg;

	pthread_mutex_lock(&c->m);
	for (;;) {
		struct job *j;
		unsigned i;
		int err = 0;

		while (!c->quit && c->taken == c->submitted)
			pthread_cond_wait(&c->work, &c->m);
		if (c->quit)
			break;
		j = &c->jobs[c->taken++ % c->njobs];
		pthread_mutex_unlock(&c->m);
		for (i = 0; i < j->n && !err; i++)
			err = pack(c, j, i);
		pthread_mutex_lock(&c->m);
		/* the lock publishes the packed chunks to the writer */
		j->err = err;
		j->done = true;
		pthread_cond_broadcast(&c->done);
	}
	pthread_mutex_unlock(&c->m);
	return NULL;
}

/* Why libewf could not write: its message does not say (a short
 * write(2) sets no errno), so ENOSPC when the file system is full, the
 * write's errno when there is one, else 0. */
static int write_errno(const struct xbd_ewf_chunker *c)
{
	int err = errno;
	char dir[PATH_MAX];
	struct statvfs sv;

	snprintf(dir, sizeof(dir), "%s", c->name);
	if (!statvfs(dirname(dir), &sv) &&
	    (uint64_t)sv.f_bavail * sv.f_frsize < 2 * c->out_stride)
		return ENOSPC;
	return err == ENOSPC || err == EDQUOT || err == EFBIG || err == EIO ? err : 0;
}

/* The oldest job written, after waiting for it (block) or not. */
static int write_oldest(struct xbd_ewf_chunker *c, bool block, bool *wrote)
{
	struct job *j;
	libewf_error_t *e = NULL;
	unsigned i;
	bool done;

	*wrote = false;
	pthread_mutex_lock(&c->m);
	if (c->written == c->submitted) {
		pthread_mutex_unlock(&c->m);
		return 0;
	}
	j = &c->jobs[c->written % c->njobs];
	while (block && !j->done)
		pthread_cond_wait(&c->done, &c->m);
	done = j->done;
	pthread_mutex_unlock(&c->m);
	if (!done)
		return 0;
	if (j->err) {
		xbd_err("%s: cannot compress: %s", c->name, xbd_strerror(j->err));
		return j->err;
	}
	for (i = 0; i < j->n; i++) {
		uint8_t *in = j->in + i * c->in_stride;
		ssize_t w;

		errno = 0;
		w = libewf_handle_write_chunk(c->h, j->wbuf[i], j->wlen[i], j->len[i],
					      j->compressed[i], in + j->len[i],
					      j->checksum[i], !j->compressed[i], &e);

		if (w != (ssize_t)j->wlen[i]) {
			int err = write_errno(c);

			if (!err)
				return xbd_ewf_fail("cannot write", c->name, &e);
			libewf_error_free(&e);
			xbd_err("%s: cannot write: %s", c->name, strerror(err));
			return -err;
		}
	}
	pthread_mutex_lock(&c->m);
	j->n = 0;
	j->done = false;
	c->written++;
	pthread_mutex_unlock(&c->m);
	*wrote = true;
	return 0;
}

static void submit(struct xbd_ewf_chunker *c)
{
	pthread_mutex_lock(&c->m);
	c->submitted++;
	pthread_cond_signal(&c->work);
	pthread_mutex_unlock(&c->m);
}

int xbd_ewf_chunker_write(struct xbd_ewf_chunker *c, const void *buf, size_t len)
{
	const uint8_t *p = buf;
	bool wrote;
	int err;

	while (len) {
		struct job *j = &c->jobs[c->submitted % c->njobs];
		size_t n;

		/* all jobs submitted: the next one to fill is the oldest,
		 * whose memory is free once it is written */
		while (c->submitted - c->written == c->njobs) {
			err = write_oldest(c, true, &wrote);
			if (err)
				return err;
		}
		n = c->chunk - c->fill < len ? c->chunk - c->fill : len;
		memcpy(j->in + j->n * c->in_stride + c->fill, p, n);
		p += n;
		len -= n;
		c->fill += n;
		if (c->fill < c->chunk)
			continue;
		j->len[j->n++] = c->chunk;
		c->fill = 0;
		if (j->n == JOB_CHUNKS)
			submit(c);
	}
	do {
		err = write_oldest(c, false, &wrote);
	} while (!err && wrote);
	return err;
}

int xbd_ewf_chunker_flush(struct xbd_ewf_chunker *c)
{
	struct job *j = &c->jobs[c->submitted % c->njobs];
	bool wrote;
	int err = 0;

	/* with every job submitted, none is being filled */
	if (c->submitted - c->written < c->njobs) {
		if (c->fill) {
			j->len[j->n++] = c->fill;
			c->fill = 0;
		}
		if (j->n)
			submit(c);
	}
	while (!err && c->written < c->submitted)
		err = write_oldest(c, true, &wrote);
	return err;
}

unsigned xbd_ewf_chunker_workers(const struct xbd_ewf_chunker *c)
{
	return c->nthreads;
}

void xbd_ewf_chunker_free(struct xbd_ewf_chunker *c)
{
	unsigned i;

	if (!c)
		return;
	pthread_mutex_lock(&c->m);
	c->quit = true;
	pthread_cond_broadcast(&c->work);
	pthread_mutex_unlock(&c->m);
	for (i = 0; i < c->nthreads; i++)
		pthread_join(c->threads[i], NULL);
	for (i = 0; c->jobs && i < c->njobs; i++) {
		free(c->jobs[i].in);
		free(c->jobs[i].out);
	}
	free(c->jobs);
	free(c->threads);
	free(c->zero);
	pthread_cond_destroy(&c->done);
	pthread_cond_destroy(&c->work);
	pthread_mutex_destroy(&c->m);
	free(c);
}

/* The zero chunk deflated once, at the level libewf caches it with
 * (libewf_write_io_handle_set_compressed_zero_byte_empty_block). */
static int zero_chunk(struct xbd_ewf_chunker *c)
{
	uint8_t *z = calloc(1, c->chunk);
	uLongf olen = c->out_stride;
	int8_t level = c->level == LIBEWF_COMPRESSION_NONE ? LIBEWF_COMPRESSION_DEFAULT : c->level;
	int err = 0;

	c->zero = malloc(c->out_stride);
	if (!z || !c->zero)
		err = -ENOMEM;
	else if (compress2(c->zero, &olen, z, c->chunk, zlib_level(level)) != Z_OK)
		err = -ENOMEM;
	c->zero_len = olen;
	free(z);
	return err;
}

int xbd_ewf_chunker_new(libewf_handle_t *h, const char *name, int8_t level,
			uint8_t flags, unsigned workers, struct xbd_ewf_chunker **out)
{
	struct xbd_ewf_chunker *c = calloc(1, sizeof(*c));
	libewf_error_t *e = NULL;
	size32_t chunk = 0;
	unsigned i;
	int err = 0;

	if (!c)
		return -ENOMEM;
	pthread_mutex_init(&c->m, NULL);
	pthread_cond_init(&c->work, NULL);
	pthread_cond_init(&c->done, NULL);
	c->h = h;
	c->name = name;
	c->level = level;
	c->flags = flags;
	if (libewf_handle_get_chunk_size(h, &chunk, &e) != 1 || !chunk) {
		xbd_ewf_fail("no chunk size", name, &e);
		xbd_ewf_chunker_free(c);
		return -EIO;
	}
	c->chunk = chunk;
	c->in_stride = c->chunk + 4;
	c->out_stride = compressBound(c->chunk);
	if (!workers) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		workers = n > 0 ? (unsigned)n : 1;
	}
	if (workers > XBD_EWF_MAX_THREADS)
		workers = XBD_EWF_MAX_THREADS;
	/* two jobs per worker keep each busy while the writer writes */
	c->njobs = 2 * workers + 2;
	c->jobs = calloc(c->njobs, sizeof(*c->jobs));
	c->threads = calloc(workers, sizeof(*c->threads));
	err = c->jobs && c->threads ? zero_chunk(c) : -ENOMEM;
	for (i = 0; i < c->njobs && !err; i++) {
		c->jobs[i].in = malloc(JOB_CHUNKS * c->in_stride);
		c->jobs[i].out = malloc(JOB_CHUNKS * c->out_stride);
		if (!c->jobs[i].in || !c->jobs[i].out)
			err = -ENOMEM;
	}
	for (i = 0; i < workers && !err; i++) {
		err = -pthread_create(&c->threads[i], NULL, worker_main, c);
		if (!err)
			c->nthreads++;
	}
	if (err) {
		xbd_err("%s: cannot start the compressing threads: %s", name, xbd_strerror(err));
		xbd_ewf_chunker_free(c);
		return err;
	}
	*out = c;
	return 0;
}

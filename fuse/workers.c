/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The FUSE export's threads: one reader of /dev/fuse, which answers
 * what never waits, and a pool of workers for what may (see the top of
 * fuse_export.c for why).
 */
#include "fuse/private.h"
#include "xbd/common.h"
#include "xbd/frontend.h"

#include <errno.h>
#include <linux/fuse.h>
#include <poll.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>

/* ---- the reader and the workers ---- */

/* Work for the pool: a read to finish, or a whole request to process. */
struct fx_job {
	struct fx_job *next;
	struct fx_read *read;     /* NULL: buf holds a request */
	struct fuse_buf buf;      /* its buffer is the job's (a spare when idle) */
};

#define FX_JOB_CACHE 32           /* jobs (and request buffers) kept */
#define FX_DRAIN_MAX 64           /* requests read before looking at stop */

static __thread bool in_worker;

static struct fx_job *job_get(struct xbd_fuse *fx)
{
	struct fx_job *job;

	pthread_mutex_lock(&fx->pool_lock);
	job = fx->job_free;
	if (job) {
		fx->job_free = job->next;
		fx->job_nfree--;
	}
	pthread_mutex_unlock(&fx->pool_lock);
	return job ? job : calloc(1, sizeof(*job));
}

static void job_put(struct xbd_fuse *fx, struct fx_job *job)
{
	job->read = NULL;
	pthread_mutex_lock(&fx->pool_lock);
	if (fx->job_nfree < FX_JOB_CACHE) {
		job->next = fx->job_free;
		fx->job_free = job;
		fx->job_nfree++;
		job = NULL;
	}
	pthread_mutex_unlock(&fx->pool_lock);
	if (job) {
		free(job->buf.mem);
		free(job);
	}
}

static void queue_job(struct xbd_fuse *fx, struct fx_job *job)
{
	job->next = NULL;
	pthread_mutex_lock(&fx->pool_lock);
	if (fx->queue_tail)
		fx->queue_tail->next = job;
	else
		fx->queue_head = job;
	fx->queue_tail = job;
	pthread_cond_signal(&fx->pool_work);
	pthread_mutex_unlock(&fx->pool_lock);
}

/* Hands r to a worker; false (nothing queued) without memory for it,
 * or when called on a worker already (it may as well wait itself). */
bool queue_read(struct xbd_fuse *fx, struct fx_read *r)
{
	struct fx_job *job;

	if (in_worker || !(job = job_get(fx)))
		return false;
	job->read = r;
	queue_job(fx, job);
	return true;
}

static void *fx_worker(void *arg)
{
	struct xbd_fuse *fx = arg;

	in_worker = true;
	pthread_mutex_lock(&fx->pool_lock);
	for (;;) {
		struct fx_job *job = fx->queue_head;

		if (!job) {
			if (fx->pool_stop)
				break;
			pthread_cond_wait(&fx->pool_work, &fx->pool_lock);
			continue;
		}
		fx->queue_head = job->next;
		if (!fx->queue_head)
			fx->queue_tail = NULL;
		pthread_mutex_unlock(&fx->pool_lock);
		if (job->read)
			read_blocking(job->read);
		else
			fuse_session_process_buf(fx->se, &job->buf);
		job_put(fx, job);
		pthread_mutex_lock(&fx->pool_lock);
	}
	pthread_mutex_unlock(&fx->pool_lock);
	free(worker_buf);
	worker_buf = NULL;
	worker_buf_len = 0;
	return NULL;
}

/* Requests the reader answers itself: they never wait for a disk (a
 * read starts on the reader and moves to a worker only if it would). */
static bool runs_on_reader(const struct fuse_buf *fbuf)
{
	const struct fuse_in_header *in = fbuf->mem;

	if (fbuf->size < sizeof(*in))
		return true; /* libfuse answers the malformed itself */
	switch (in->opcode) {
	case FUSE_READ:
	case FUSE_LOOKUP:
	case FUSE_FORGET:
	case FUSE_BATCH_FORGET:
	case FUSE_GETATTR:
	case FUSE_SETATTR:
	case FUSE_OPEN:
	case FUSE_RELEASE:
	case FUSE_FLUSH:
	case FUSE_OPENDIR:
	case FUSE_READDIR:
	case FUSE_RELEASEDIR:
	case FUSE_INIT:
	case FUSE_DESTROY:
	case FUSE_INTERRUPT:
		return true;
	default:
		return false;
	}
}

/* One request read by the reader: answered here, or given to a worker
 * with its buffer (the reader takes the job's spare one instead, so no
 * request data is copied). */
static void dispatch(struct xbd_fuse *fx, struct fuse_buf *fbuf)
{
	struct fx_job *job;
	void *spare;

	if (runs_on_reader(fbuf) || !(job = job_get(fx))) {
		fuse_session_process_buf(fx->se, fbuf);
		return;
	}
	spare = job->buf.mem;
	job->buf = *fbuf;
	*fbuf = (struct fuse_buf){ .mem = spare };
	queue_job(fx, job);
}

static void *fx_reader(void *arg)
{
	struct xbd_fuse *fx = arg;
	struct fuse_buf fbuf = { .mem = NULL };
	struct pollfd pfd[2] = {
		{ .fd = fuse_session_fd(fx->se), .events = POLLIN },
		{ .fd = fx->stop_fd, .events = POLLIN },
	};

	/* a read it submits alone may wait for its own answer, until
	 * another request comes (xbd_frontend_spin_watch) */
	xbd_frontend_spin_watch(pfd[0].fd);
	for (;;) {
		int nev = poll(pfd, 2, -1), res = 0, taken;

		if (nev < 0 && errno != EINTR) {
			xbd_err("fuse: poll: %s", strerror(errno));
			break;
		}
		if (nev <= 0)
			continue;
		if (pfd[1].revents)
			break;
		/* Take what is queued before sleeping again: a poll per
		 * request was a good part of a small read's cost.  Bounded,
		 * so that a stop is seen soon under a steady stream. */
		for (taken = 0; taken < FX_DRAIN_MAX; taken++) {
			res = fuse_session_receive_buf(fx->se, &fbuf);
			if (res == -EAGAIN || res == -EINTR)
				break;
			if (res <= 0 || fuse_session_exited(fx->se))
				break;
			dispatch(fx, &fbuf);
		}
		if (res == -EAGAIN || res == -EINTR || taken == FX_DRAIN_MAX)
			continue;
		/* unmounted from outside, or a broken device */
		atomic_store(&fx->unmounted, true);
		break;
	}
	free(fbuf.mem);
	free(worker_buf); /* a write it answered itself, short of memory */
	worker_buf = NULL;
	worker_buf_len = 0;
	return NULL;
}

int start_threads(struct xbd_fuse *fx, unsigned nworkers)
{
	sigset_t all, old;
	int err = 0;

	fx->workers = calloc(nworkers, sizeof(*fx->workers));
	if (!fx->workers)
		return -ENOMEM;
	/* no signals on these threads: the owner's thread handles them */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	for (; fx->nworkers < nworkers; fx->nworkers++) {
		err = -pthread_create(&fx->workers[fx->nworkers], NULL, fx_worker, fx);
		if (err)
			break;
	}
	if (fx->nworkers) {
		err = -pthread_create(&fx->reader, NULL, fx_reader, fx);
		fx->reader_started = !err;
	}
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	return err;
}

/* The reader first (no new work), then the workers once they have done
 * what was queued. */
void stop_threads(struct xbd_fuse *fx)
{
	if (fx->reader_started) {
		if (eventfd_write(fx->stop_fd, 1))
			xbd_err("fuse: cannot stop the reader: %s", strerror(errno));
		pthread_join(fx->reader, NULL);
		fx->reader_started = false;
	}
	pthread_mutex_lock(&fx->pool_lock);
	fx->pool_stop = true;
	pthread_cond_broadcast(&fx->pool_work);
	pthread_mutex_unlock(&fx->pool_lock);
	for (unsigned i = 0; i < fx->nworkers; i++)
		pthread_join(fx->workers[i], NULL);
	fx->nworkers = 0;
	free(fx->workers);
	fx->workers = NULL;
	while (fx->job_free) {
		struct fx_job *job = fx->job_free;

		fx->job_free = job->next;
		free(job->buf.mem);
		free(job);
	}
	fx->job_nfree = 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The simulated guest: what a Linux guest's blkfront does, for a sim
 * domain.  It watches the domain's device/vbd directory, connects every
 * disk that appears (one thread per disk, each driving a struct
 * xbd_frontend through connect / serve / close, and again when the
 * backend comes back), and runs workloads on request from a control
 * socket: the guest-side benchmark and the end-to-end data check for
 * the backends.  Also the client side of that socket (`xbd sim vm io`)
 * and the workload engine itself.
 */
#include "xbd/frontend.h"
#include "xbd/common.h"
#include "xbd/util.h"
#include "xbd/xenbus.h"
#include "src/sim/sim.h"

#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#define GUEST_POLL_MS 100       /* device threads look at their backend */
#define GUEST_RESCAN_MS 1000    /* device/vbd rescanned even without a watch */
#define IO_CONNECT_WAIT_MS 10000
#define MAX_BS (16u << 20)
#define MAX_QD 1024u

/* ------------------------------------------------------------------ */
/* Small parsers                                                      */
/* ------------------------------------------------------------------ */

static const char *const rw_names[] = {
	[XBD_WL_READ] = "read", [XBD_WL_WRITE] = "write",
	[XBD_WL_RANDREAD] = "randread", [XBD_WL_RANDWRITE] = "randwrite",
	[XBD_WL_COUNTER] = "counter",
};

int xbd_workload_parse_rw(const char *s, enum xbd_workload_rw *rw)
{
	unsigned i;

	for (i = 0; i < XBD_ARRAY_SIZE(rw_names); i++) {
		if (!strcmp(s, rw_names[i])) {
			*rw = (enum xbd_workload_rw)i;
			return 0;
		}
	}
	return -EINVAL;
}

const char *xbd_workload_rw_name(enum xbd_workload_rw rw)
{
	return (unsigned)rw < XBD_ARRAY_SIZE(rw_names) ? rw_names[rw] : "?";
}

/* ------------------------------------------------------------------ */
/* The pattern                                                        */
/* ------------------------------------------------------------------ */

static void put_le64(uint8_t *p, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		p[i] = (uint8_t)(v >> (8 * i));
}

static void pattern_sector(uint8_t *s, uint64_t sector, uint64_t seed)
{
	memcpy(s, "xbdpat01", 8);
	put_le64(s + 8, seed);
	put_le64(s + 16, sector);
	memset(s + 24, (int)((seed + 7 * sector + 1) & 0xff), 512 - 24);
}

void xbd_pattern_fill(void *buf, size_t len, uint64_t offset, uint64_t seed)
{
	uint8_t *p = buf;
	size_t i;

	for (i = 0; i + 512 <= len; i += 512)
		pattern_sector(p + i, (offset + i) / 512, seed);
}

long long xbd_pattern_check(const void *buf, size_t len, uint64_t offset,
			    uint64_t seed)
{
	const uint8_t *p = buf;
	uint8_t want[512];
	size_t i;

	for (i = 0; i + 512 <= len; i += 512) {
		pattern_sector(want, (offset + i) / 512, seed);
		if (memcmp(p + i, want, 512))
			return (long long)i;
	}
	return -1;
}

void xbd_counter_fill(void *buf, size_t len, uint64_t offset, uint64_t seq,
		      uint64_t block)
{
	uint8_t *p = buf;
	size_t i;

	for (i = 0; i + 512 <= len; i += 512) {
		memcpy(p + i, "xbdcnt01", 8);
		put_le64(p + i + 8, seq);
		put_le64(p + i + 16, block);
		put_le64(p + i + 24, (offset + i) / 512);
		memset(p + i + 32, (int)(seq & 0xff), 512 - 32);
	}
}

/* ------------------------------------------------------------------ */
/* The workload engine                                                */
/* ------------------------------------------------------------------ */

struct wl_slot {
	struct wl_run *run;
	struct iovec iov;
	uint64_t offset;
	int err;
	unsigned next_free;
};

struct wl_run {
	struct xbd_frontend *fe;
	const struct xbd_workload *w;
	pthread_mutex_t m;
	pthread_cond_t cv;
	struct wl_slot *slots;
	unsigned free_head;     /* qd = none free */
	unsigned qd, inflight;
	uint64_t bytes, ios, flushed;
	bool flush_done;
	int flush_err;
	int err;
	char error[160];
};

static uint64_t splitmix64(uint64_t *s)
{
	uint64_t z = (*s += 0x9e3779b97f4a7c15ull);

	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
	z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
	return z ^ (z >> 31);
}

static bool wl_reads(const struct xbd_workload *w)
{
	return w->rw == XBD_WL_READ || w->rw == XBD_WL_RANDREAD;
}

static void wl_done(void *opaque, int err)
{
	struct wl_slot *s = opaque;
	struct wl_run *r = s->run;
	long long bad = -1;

	/* checked here, in parallel with the submitting thread */
	if (!err && r->w->verify && wl_reads(r->w))
		bad = xbd_pattern_check(s->iov.iov_base, s->iov.iov_len, s->offset,
					r->w->seed);
	pthread_mutex_lock(&r->m);
	if (err && !r->err) {
		r->err = err;
		snprintf(r->error, sizeof(r->error), "I/O error at offset %llu: %s",
			 (unsigned long long)s->offset, xbd_strerror(err));
	} else if (bad >= 0 && !r->err) {
		r->err = -EILSEQ;
		snprintf(r->error, sizeof(r->error),
			 "verification failed at offset %llu (sector %llu)",
			 (unsigned long long)(s->offset + (uint64_t)bad),
			 (unsigned long long)((s->offset + (uint64_t)bad) / 512));
	}
	if (!err) {
		r->bytes += s->iov.iov_len;
		r->ios++;
	}
	r->inflight--;
	s->next_free = r->free_head;
	r->free_head = (unsigned)(s - r->slots);
	pthread_cond_signal(&r->cv);
	pthread_mutex_unlock(&r->m);
}

static void wl_flush_done(void *opaque, int err)
{
	struct wl_run *r = opaque;

	pthread_mutex_lock(&r->m);
	r->flush_err = err;
	r->flush_done = true;
	pthread_cond_broadcast(&r->cv);
	pthread_mutex_unlock(&r->m);
}

/* With r->m held: once every write issued so far has completed, flushes
 * the disk; the first `issued` writes are then durable. */
static int wl_flush(struct wl_run *r, uint64_t issued)
{
	int err;

	while (r->inflight)
		pthread_cond_wait(&r->cv, &r->m);
	if (r->err)
		return r->err;
	r->flush_done = false;
	pthread_mutex_unlock(&r->m);
	/* a paused domain's vCPU issues no flush either */
	err = r->w->vcpu ? xbd_sim_vcpu_enter(r->w->vcpu) : 0;
	if (!err) {
		err = xbd_frontend_submit(r->fe, XBD_FRONTEND_FLUSH, NULL, 0, 0,
					  0, wl_flush_done, r);
		if (r->w->vcpu)
			xbd_sim_vcpu_exit(r->w->vcpu);
	}
	pthread_mutex_lock(&r->m);
	while (!err && !r->flush_done)
		pthread_cond_wait(&r->cv, &r->m);
	if (!err)
		err = r->flush_err;
	if (err) {
		if (!r->err) {
			r->err = err;
			snprintf(r->error, sizeof(r->error), "flush after %llu writes: %s",
				 (unsigned long long)issued, xbd_strerror(err));
		}
		return err;
	}
	r->flushed = issued;
	return 0;
}

int xbd_workload_run(struct xbd_frontend *fe, const struct xbd_workload *w,
		     struct xbd_workload_result *res)
{
	struct xbd_frontend_info info;
	struct wl_run r = { .fe = fe, .w = w };
	uint64_t region, nblocks, issued = 0, total, rng = w->seed ^ 0x5eed;
	unsigned long long t0, deadline = 0;
	bool writes = !wl_reads(w);
	unsigned i;
	int err = 0;

	memset(res, 0, sizeof(*res));
	xbd_frontend_get_info(fe, &info);
	region = w->size ? w->size : info.sectors * 512;
	if (!w->bs || w->bs % info.sector_size || w->bs > MAX_BS) {
		snprintf(res->error, sizeof(res->error),
			 "block size %u is not a multiple of the sector size %u (up to 16M)",
			 w->bs, info.sector_size);
		return -EINVAL;
	}
	if (region > info.sectors * 512 || region < w->bs) {
		snprintf(res->error, sizeof(res->error),
			 "size %llu does not fit the disk (%llu bytes) or is below the block size",
			 (unsigned long long)region,
			 (unsigned long long)info.sectors * 512);
		return -EINVAL;
	}
	if (writes && info.read_only) {
		snprintf(res->error, sizeof(res->error), "the disk is read-only");
		return -EROFS;
	}
	nblocks = region / w->bs;
	total = w->seconds > 0 ? UINT64_MAX : nblocks;
	r.qd = w->qd ? (w->qd < MAX_QD ? w->qd : MAX_QD) : 1;
	r.slots = calloc(r.qd, sizeof(*r.slots));
	if (!r.slots)
		return -ENOMEM;
	for (i = 0; i < r.qd; i++) {
		r.slots[i].run = &r;
		r.slots[i].iov.iov_len = w->bs;
		r.slots[i].iov.iov_base = aligned_alloc(4096, (w->bs + 4095) & ~4095u);
		r.slots[i].next_free = i + 1;
		if (!r.slots[i].iov.iov_base)
			err = -ENOMEM;
	}
	if (err)
		goto out;
	pthread_mutex_init(&r.m, NULL);
	pthread_cond_init(&r.cv, NULL);

	t0 = xbd_now_ns();
	if (w->seconds > 0)
		deadline = t0 + (unsigned long long)(w->seconds * 1e9);
	pthread_mutex_lock(&r.m);
	for (;;) {
		struct wl_slot *s;
		uint64_t block;

		if (writes && w->flush_every && issued && r.flushed != issued &&
		    issued % w->flush_every == 0 && wl_flush(&r, issued))
			break;
		while (!r.err && r.free_head == r.qd)
			pthread_cond_wait(&r.cv, &r.m);
		if (r.err || issued >= total || (deadline && xbd_now_ns() >= deadline))
			break;
		s = &r.slots[r.free_head];
		r.free_head = s->next_free;
		r.inflight++;
		pthread_mutex_unlock(&r.m);

		/* the vCPU issues I/O only while the domain runs */
		err = w->vcpu ? xbd_sim_vcpu_enter(w->vcpu) : 0;
		if (!err) {
			if (w->rw == XBD_WL_READ || w->rw == XBD_WL_WRITE ||
			    w->rw == XBD_WL_COUNTER)
				block = issued % nblocks;
			else
				block = splitmix64(&rng) % nblocks;
			s->offset = block * w->bs;
			if (w->rw == XBD_WL_COUNTER)
				xbd_counter_fill(s->iov.iov_base, w->bs, s->offset,
						 issued, block);
			else if (writes)
				xbd_pattern_fill(s->iov.iov_base, w->bs, s->offset,
						 w->seed);
			issued++;
			err = xbd_frontend_submit(fe, writes ? XBD_FRONTEND_WRITE
							     : XBD_FRONTEND_READ,
						  &s->iov, 1, s->offset, w->bs,
						  wl_done, s);
			if (w->vcpu)
				xbd_sim_vcpu_exit(w->vcpu);
		}
		pthread_mutex_lock(&r.m);
		if (err) {
			r.inflight--;
			if (!r.err) {
				r.err = err;
				snprintf(r.error, sizeof(r.error), "cannot submit: %s",
					 xbd_strerror(err));
			}
			s->next_free = r.free_head;
			r.free_head = (unsigned)(s - r.slots);
		}
	}
	while (r.inflight)
		pthread_cond_wait(&r.cv, &r.m);
	if (writes && w->flush_every && !r.err && issued > r.flushed)
		wl_flush(&r, issued);
	pthread_mutex_unlock(&r.m);
	res->seconds = (double)(xbd_now_ns() - t0) / 1e9;
	res->bytes = r.bytes;
	res->ios = r.ios;
	res->flushed = r.flushed;
	err = r.err;
	if (err)
		snprintf(res->error, sizeof(res->error), "%s", r.error);
	pthread_cond_destroy(&r.cv);
	pthread_mutex_destroy(&r.m);
out:
	for (i = 0; i < r.qd; i++)
		free(r.slots[i].iov.iov_base);
	free(r.slots);
	return err;
}

/* ------------------------------------------------------------------ */
/* The guest                                                          */
/* ------------------------------------------------------------------ */

struct guest;

struct guest_dev {
	struct guest *g;
	uint32_t devid;
	char vdev[16];
	char fe_path[96];
	pthread_t thread;
	_Atomic bool stop;
	bool seen;              /* still listed at the last scan */
	pthread_mutex_t lock;
	pthread_cond_t cv;
	struct xbd_frontend *fe; /* non-NULL while connected and usable */
	unsigned users;          /* workloads running on fe */
	struct guest_dev *next;
};

struct guest {
	struct xbd_platform *p;
	uint16_t domid;
	char vbd_dir[64];
	pthread_mutex_t lock;    /* the device list */
	struct guest_dev *devs;
	int listen_fd;
	char sock_path[108];
	_Atomic unsigned clients;
};

static volatile sig_atomic_t guest_signalled;
static int guest_sig_pipe[2] = { -1, -1 };

static void guest_on_signal(int sig)
{
	int saved = errno;

	(void)sig;
	guest_signalled = 1;
	if (guest_sig_pipe[1] >= 0 && write(guest_sig_pipe[1], "x", 1) < 0) {
		/* the flag is enough */
	}
	errno = saved;
}

static bool dev_sleep(struct guest_dev *d, unsigned ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	if (!atomic_load(&d->stop))
		nanosleep(&ts, NULL);
	return !atomic_load(&d->stop);
}

static int read_backend_of(struct guest_dev *d, char **be_path, uint16_t *be_id)
{
	char path[160];
	unsigned long long id;
	int err;

	snprintf(path, sizeof(path), "%s/backend", d->fe_path);
	err = xbd_xs_read_str(d->g->p, path, be_path);
	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/backend-id", d->fe_path);
	err = xbd_xs_read_uint(d->g->p, path, &id);
	if (!err && id >= XBD_DOMID_SELF)
		err = -EINVAL;
	if (err) {
		free(*be_path);
		*be_path = NULL;
		return err;
	}
	*be_id = (uint16_t)id;
	return 0;
}

/* Takes the device out of use: running workloads fail, then close. */
static void dev_disconnect(struct guest_dev *d, struct xbd_frontend *fe,
			   const char *why)
{
	pthread_mutex_lock(&d->lock);
	d->fe = NULL;
	if (d->users)
		xbd_frontend_fail(fe, why);
	while (d->users)
		pthread_cond_wait(&d->cv, &d->lock);
	pthread_mutex_unlock(&d->lock);
	xbd_frontend_close(fe);
	xbd_info("dom%u: %s: disconnected (%s)", d->g->domid, d->vdev, why);
}

/* One disk's life: wait for the backend's InitWait, connect, serve until
 * the backend closes (or we are told to stop), close; and again. */
static void *dev_main(void *arg)
{
	struct guest_dev *d = arg;
	struct guest *g = d->g;

	while (!atomic_load(&d->stop)) {
		struct xbd_frontend_config cfg = { .max_ring_order = -1 };
		struct xbd_frontend *fe;
		enum xenbus_state bs;
		const char *why = "stopping";
		char *be_path = NULL, name[48];
		uint16_t be_id;

		if (read_backend_of(d, &be_path, &be_id) ||
		    xbd_xenbus_read_state(g->p, be_path, &bs) ||
		    bs != XenbusStateInitWait) {
			free(be_path);
			dev_sleep(d, GUEST_POLL_MS);
			continue;
		}
		snprintf(name, sizeof(name), "dom%u/%s", g->domid, d->vdev);
		cfg.frontend_path = d->fe_path;
		cfg.backend_path = be_path;
		cfg.backend_domid = be_id;
		cfg.name = name;
		if (xbd_frontend_connect(g->p, &cfg, &fe)) {
			free(be_path);
			dev_sleep(d, 500);
			continue;
		}
		xbd_info("dom%u: %s: connected to %s", g->domid, d->vdev, be_path);
		pthread_mutex_lock(&d->lock);
		d->fe = fe;
		pthread_cond_broadcast(&d->cv);
		pthread_mutex_unlock(&d->lock);

		while (dev_sleep(d, GUEST_POLL_MS)) {
			if (xbd_xenbus_read_state(g->p, be_path, &bs) ||
			    bs != XenbusStateConnected) {
				why = "backend closed";
				break;
			}
			if (xbd_frontend_status(fe)) {
				why = "device failed";
				break;
			}
		}
		free(be_path);
		dev_disconnect(d, fe, why);
	}
	return NULL;
}

static void dev_stop(struct guest_dev *d)
{
	atomic_store(&d->stop, true);
	pthread_join(d->thread, NULL);
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->cv);
	free(d);
}

/* Starts a thread for every new device/vbd entry, stops the threads of
 * entries that went away. */
static void guest_scan(struct guest *g)
{
	struct guest_dev *d, **pp, *gone = NULL;
	char **ids = NULL;
	unsigned n = 0, i;

	if (xbd_xs_directory(g->p, XBD_XS_NO_TXN, g->vbd_dir,
						    &ids, &n))
		n = 0;
	pthread_mutex_lock(&g->lock);
	for (d = g->devs; d; d = d->next)
		d->seen = false;
	for (i = 0; i < n; i++) {
		unsigned long long devid;

		if (xbd_parse_uint(ids[i], UINT32_MAX, &devid) || devid == 0)
			continue;
		for (d = g->devs; d && d->devid != devid; d = d->next)
			;
		if (d) {
			d->seen = true;
			continue;
		}
		d = calloc(1, sizeof(*d));
		if (!d)
			break;
		d->g = g;
		d->devid = (uint32_t)devid;
		if (xbd_devid_to_vdev(d->devid, d->vdev, sizeof(d->vdev)))
			snprintf(d->vdev, sizeof(d->vdev), "%u", d->devid);
		snprintf(d->fe_path, sizeof(d->fe_path), "%s/%s", g->vbd_dir, ids[i]);
		d->seen = true;
		pthread_mutex_init(&d->lock, NULL);
		pthread_cond_init(&d->cv, NULL);
		if (pthread_create(&d->thread, NULL, dev_main, d)) {
			pthread_mutex_destroy(&d->lock);
			pthread_cond_destroy(&d->cv);
			free(d);
			continue;
		}
		d->next = g->devs;
		g->devs = d;
	}
	for (pp = &g->devs; *pp;) {
		d = *pp;
		if (d->seen) {
			pp = &d->next;
			continue;
		}
		*pp = d->next;
		d->next = gone;
		gone = d;
	}
	pthread_mutex_unlock(&g->lock);
	free(ids);
	/* joined without the list lock: a closing disk may take seconds */
	while (gone) {
		d = gone;
		gone = d->next;
		dev_stop(d);
	}
}

/* The connected frontend of vdev, held (users++) until dev_put; waits
 * up to IO_CONNECT_WAIT_MS for it to connect. */
static struct guest_dev *dev_get(struct guest *g, const char *vdev,
				 struct xbd_frontend **fe)
{
	unsigned long long deadline = xbd_now_ns() + IO_CONNECT_WAIT_MS * 1000000ull;
	char path[128], *v = NULL;
	uint32_t devid;

	/* a disk that is not even in xenstore will not connect */
	if (xbd_vdev_to_devid(vdev, &devid))
		return NULL;
	snprintf(path, sizeof(path), "%s/%u", g->vbd_dir, devid);
	if (xbd_xs_read(g->p, XBD_XS_NO_TXN, path, &v, NULL))
		return NULL;
	free(v);
	while (xbd_now_ns() < deadline) {
		struct guest_dev *d;

		pthread_mutex_lock(&g->lock);
		for (d = g->devs; d && strcmp(d->vdev, vdev); d = d->next)
			;
		if (d) {
			pthread_mutex_lock(&d->lock);
			if (d->fe) {
				*fe = d->fe;
				d->users++;
				pthread_mutex_unlock(&d->lock);
				pthread_mutex_unlock(&g->lock);
				return d;
			}
			pthread_mutex_unlock(&d->lock);
		}
		pthread_mutex_unlock(&g->lock);
		usleep(20000);
	}
	return NULL;
}

static void dev_put(struct guest_dev *d)
{
	pthread_mutex_lock(&d->lock);
	d->users--;
	pthread_cond_broadcast(&d->cv);
	pthread_mutex_unlock(&d->lock);
}

/*
 * The control protocol: one request line, one answer line.
 *   io VDEV RW BS QD SIZE SECONDS VERIFY SEED FLUSH_EVERY
 *     -> ok BYTES IOS SECONDS FLUSHED | err FLUSHED MESSAGE
 * (FLUSHED: the writes a completed flush covers, see xbd_workload_run)
 */
static void handle_io(struct guest *g, int fd, char *line)
{
	char vdev[32], rw[16], answer[256];
	unsigned long long bs, size, seed;
	struct xbd_workload_result res;
	struct xbd_workload w;
	struct xbd_frontend *fe = NULL;
	struct guest_dev *d;
	unsigned qd, verify, flush_every;
	double secs;
	int err;

	memset(&res, 0, sizeof(res));
	if (sscanf(line, "io %31s %15s %llu %u %llu %lf %u %llu %u", vdev, rw, &bs,
		   &qd, &size, &secs, &verify, &seed, &flush_every) != 9 ||
	    xbd_workload_parse_rw(rw, &w.rw) || bs > MAX_BS || !isfinite(secs) ||
	    secs < 0 || secs > 86400) {
		snprintf(answer, sizeof(answer), "err 0 bad request\n");
		goto reply;
	}
	w.bs = (uint32_t)bs;
	w.qd = qd;
	w.size = size;
	w.seconds = secs;
	w.verify = verify;
	w.seed = seed;
	w.flush_every = flush_every;
	w.vcpu = g->p;
	d = dev_get(g, vdev, &fe);
	if (!d) {
		snprintf(answer, sizeof(answer),
			 "err 0 dom%u has no connected disk %s\n", g->domid, vdev);
		goto reply;
	}
	err = xbd_workload_run(fe, &w, &res);
	dev_put(d);
	if (err)
		snprintf(answer, sizeof(answer), "err %llu %s: %s\n",
			 (unsigned long long)res.flushed, vdev,
			 res.error[0] ? res.error : xbd_strerror(err));
	else
		snprintf(answer, sizeof(answer), "ok %llu %llu %.6f %llu\n",
			 (unsigned long long)res.bytes, (unsigned long long)res.ios,
			 res.seconds, (unsigned long long)res.flushed);
reply:
	if (write(fd, answer, strlen(answer)) < 0) {
		/* the client went away */
	}
}

struct client {
	struct guest *g;
	int fd;
};

static void *client_main(void *arg)
{
	struct client *c = arg;
	char line[512];
	size_t len = 0;
	ssize_t n;

	while (len < sizeof(line) - 1) {
		n = read(c->fd, line + len, sizeof(line) - 1 - len);
		if (n <= 0)
			break;
		len += (size_t)n;
		if (memchr(line, '\n', len))
			break;
	}
	line[len] = 0;
	if (!strncmp(line, "io ", 3))
		handle_io(c->g, c->fd, line);
	else if (write(c->fd, "err unknown request\n", 20) < 0) {
		/* gone */
	}
	close(c->fd);
	atomic_fetch_sub(&c->g->clients, 1);
	free(c);
	return NULL;
}

static void accept_client(struct guest *g)
{
	struct client *c;
	pthread_t th;
	int fd = accept4(g->listen_fd, NULL, NULL, SOCK_CLOEXEC);

	if (fd < 0)
		return;
	c = calloc(1, sizeof(*c));
	if (!c) {
		close(fd);
		return;
	}
	c->g = g;
	c->fd = fd;
	atomic_fetch_add(&g->clients, 1);
	if (pthread_create(&th, NULL, client_main, c)) {
		atomic_fetch_sub(&g->clients, 1);
		close(fd);
		free(c);
		return;
	}
	pthread_detach(th);
}

static int guest_listen(struct guest *g)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int fd, n;

	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/" XBD_SIM_GUEST_SOCKET,
		     xbd_sim_default_dir(), g->domid);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	snprintf(g->sock_path, sizeof(g->sock_path), "%s", sa.sun_path);
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
	if (fd < 0)
		return -errno;
	unlink(sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) || listen(fd, 16)) {
		int err = -errno;

		close(fd);
		return err;
	}
	chmod(sa.sun_path, 0600);
	g->listen_fd = fd;
	return 0;
}

int xbd_sim_guest_run(uint16_t domid)
{
	struct xbd_platform_config cfg = { .kind = XBD_PLATFORM_SIM,
					   .sim_domid = domid };
	struct sigaction sa = { .sa_handler = guest_on_signal };
	struct guest g = { .domid = domid, .listen_fd = -1 };
	struct guest_dev *d;
	int err, watch_fd;

	if (pipe2(guest_sig_pipe, O_CLOEXEC | O_NONBLOCK))
		return -errno;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	pthread_mutex_init(&g.lock, NULL);

	err = xbd_platform_open(&cfg, &g.p);
	if (err) {
		xbd_err("sim guest: cannot join the simulated Xen at %s as domain %u: %s",
			xbd_sim_default_dir(), domid, xbd_strerror(err));
		goto out;
	}
	g.domid = xbd_platform_self_domid(g.p);
	snprintf(g.vbd_dir, sizeof(g.vbd_dir), "/local/domain/%u/device/vbd", g.domid);
	err = guest_listen(&g);
	if (err) {
		xbd_err("sim guest: cannot listen on %s: %s", g.sock_path,
			xbd_strerror(err));
		goto out;
	}
	err = xbd_xs_watch(g.p, g.vbd_dir, "vbd");
	if (err) {
		xbd_err("sim guest: cannot watch %s: %s", g.vbd_dir, xbd_strerror(err));
		goto out;
	}
	watch_fd = xbd_xs_watch_fd(g.p);
	xbd_info("sim guest: domain %u, control socket %s", g.domid, g.sock_path);

	while (!guest_signalled) {
		struct pollfd pfd[3] = {
			{ .fd = watch_fd, .events = POLLIN },
			{ .fd = g.listen_fd, .events = POLLIN },
			{ .fd = guest_sig_pipe[0], .events = POLLIN },
		};
		bool fired = false;
		char *path, *token;

		if (poll(pfd, 3, GUEST_RESCAN_MS) < 0 && errno != EINTR)
			break;
		while (xbd_xs_read_watch(g.p, &path, &token) == 0) {
			fired = true;
			free(path);
			free(token);
		}
		if (pfd[1].revents & POLLIN)
			accept_client(&g);
		(void)fired;
		guest_scan(&g); /* on every wake-up: cheap, and no event is lost */
	}
	xbd_xs_unwatch(g.p, g.vbd_dir, "vbd");
	err = 0;
out:
	/* close every disk properly: Closing / Closed with its backend */
	pthread_mutex_lock(&g.lock);
	while ((d = g.devs)) {
		g.devs = d->next;
		pthread_mutex_unlock(&g.lock);
		dev_stop(d);
		pthread_mutex_lock(&g.lock);
	}
	pthread_mutex_unlock(&g.lock);
	if (g.listen_fd >= 0) {
		close(g.listen_fd);
		unlink(g.sock_path);
	}
	/* detached client threads hold no disk any more; let them finish
	 * writing their answers */
	for (int i = 0; i < 100 && atomic_load(&g.clients); i++)
		usleep(10000);
	xbd_platform_close(g.p);
	pthread_mutex_destroy(&g.lock);
	close(guest_sig_pipe[0]);
	close(guest_sig_pipe[1]);
	guest_sig_pipe[0] = guest_sig_pipe[1] = -1;
	return err;
}

/* ------------------------------------------------------------------ */
/* The client: xbd sim vm io                                          */
/* ------------------------------------------------------------------ */

int xbd_sim_vm_io(const char *vm, const char *vdev,
		  const struct xbd_workload *w, struct xbd_workload_result *res)
{
	struct xbd_platform_config cfg = { .kind = XBD_PLATFORM_SIM };
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	struct xbd_platform *p;
	char req[256], ans[512];
	size_t len = 0;
	uint16_t domid;
	int fd, err, n;
	struct timeval tv;

	memset(res, 0, sizeof(*res));
	err = xbd_platform_open(&cfg, &p);
	if (err) {
		xbd_err("simulated Xen at %s: %s (is `xbd sim start` running?)",
			xbd_sim_default_dir(), xbd_strerror(err));
		return err;
	}
	err = xbd_domain_lookup(p, vm, &domid);
	xbd_platform_close(p);
	if (err) {
		xbd_err("%s: no such domain", vm);
		return err;
	}
	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/" XBD_SIM_GUEST_SOCKET,
		     xbd_sim_default_dir(), domid);
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path))
		return -ENAMETOOLONG;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&sa, sizeof(sa))) {
		err = -errno;
		xbd_err("%s: no simulated guest answers on %s: %s", vm, sa.sun_path,
			xbd_strerror(err));
		close(fd);
		return err;
	}
	/* the guest answers when the workload is over */
	tv.tv_sec = (time_t)(w->seconds + IO_CONNECT_WAIT_MS / 1000 + 600);
	tv.tv_usec = 0;
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	n = snprintf(req, sizeof(req), "io %s %s %u %u %llu %.3f %u %llu %u\n", vdev,
		     xbd_workload_rw_name(w->rw), w->bs, w->qd,
		     (unsigned long long)w->size, w->seconds, w->verify ? 1u : 0u,
		     (unsigned long long)w->seed, w->flush_every);
	if (write(fd, req, (size_t)n) != n) {
		err = -errno;
		close(fd);
		xbd_err("%s: cannot talk to its guest: %s", vm, xbd_strerror(err));
		return err;
	}
	while (len < sizeof(ans) - 1) {
		ssize_t r = read(fd, ans + len, sizeof(ans) - 1 - len);

		if (r <= 0)
			break;
		len += (size_t)r;
		if (memchr(ans, '\n', len))
			break;
	}
	close(fd);
	ans[len] = 0;
	ans[strcspn(ans, "\n")] = 0;
	if (!strncmp(ans, "ok ", 3)) {
		unsigned long long bytes, ios, flushed;

		if (sscanf(ans + 3, "%llu %llu %lf %llu", &bytes, &ios, &res->seconds,
			   &flushed) == 4) {
			res->bytes = bytes;
			res->ios = ios;
			res->flushed = flushed;
			return 0;
		}
	}
	if (!strncmp(ans, "err ", 4)) {
		unsigned long long flushed;
		int at = 0;

		if (sscanf(ans + 4, "%llu %n", &flushed, &at) == 1 && at > 0) {
			res->flushed = flushed;
			snprintf(res->error, sizeof(res->error), "%.*s",
				 (int)sizeof(res->error) - 1, ans + 4 + at);
			xbd_err("%s: %s", vm, ans + 4 + at);
			return strstr(ans, "verification failed") ? -EILSEQ : -EIO;
		}
	}
	xbd_err("%s: the guest gave no answer%s", vm,
		len ? " it could understand" : " (did it exit?)");
	return -EPROTO;
}

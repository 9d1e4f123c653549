/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The control socket's server (include/xbd/ctl.h): a small thread per
 * xbd process that answers one request line per connection with a JSON
 * document (built with json-c), several connections at once, each under
 * one deadline.  The client side is src/ctl_client.c.
 */
#include "ctl_priv.h"
#include "xbd/ctl.h"
#include "xbd/common.h"
#include "xbd/stats.h"
#include "xbd/util.h"
#include "xbd/xenbus.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <json.h>
#include <limits.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#define CTL_SOCK_PREFIX "xbd-"
#define CTL_SOCK_SUFFIX ".sock"
/* "xbd-<pid>.start" beside the socket holds the process's start time:
 * the socket's name is documented and stays, and a PID alone could be
 * another process's by now */
#define CTL_START_SUFFIX ".start"
/* From accept to the answer's last byte: a client that trickles, says
 * nothing or does not read is dropped after this, whatever it does. */
#define CTL_REQUEST_DEADLINE_NS (2000ull * 1000000u)
#define CTL_ACCEPT_BACKOFF_NS (100ull * 1000000u) /* after EMFILE */
#define CTL_INFLIGHT_CAP 1024         /* ring entries are at most 512 */

struct xbd_ctl_dev {
	struct xbd_ctl_dev *next;
	struct xbd_ctl_device desc; /* strings below are our own copies */
	uint64_t added_ns;
};

/* One connection being served. */
struct ctl_client {
	int fd;                   /* -1: free slot */
	uint64_t deadline_ns;     /* whole request, from accept */
	char line[CTL_MAX_REQUEST];
	size_t len;
	bool writing;             /* the request is in, the answer going out */
	struct json_object *doc;  /* the answer; out points into it */
	const char *out;
	size_t out_len, out_off;  /* out_len counts the final '\n' */
};

struct xbd_ctl {
	int listen_fd;
	int wake_fd;    /* eventfd: xbd_ctl_stop wakes the thread */
	pthread_t thread;
	bool thread_started;
	struct ctl_client clients[XBD_CTL_MAX_CLIENTS]; /* the thread's own */
	uint64_t accept_again_ns; /* not before: out of descriptors */
	pthread_mutex_t lock; /* guards devs and every query callback */
	struct xbd_ctl_dev *devs;
	uint64_t started_ns;
	char path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char start_path[sizeof(((struct sockaddr_un *)0)->sun_path) + 8];
};

const char *xbd_ctl_run_dir(void)
{
	const char *env = getenv("XBD_RUN_DIR");

	return env && *env ? env : XBD_CTL_DEFAULT_RUN_DIR;
}

/* ------------------------------------------------------------------ */
/* Names                                                              */

const char *xbd_ctl_blkif_op_name(unsigned op)
{
	/* BLKIF_OP_* values, as in <xen/io/blkif.h> */
	static const char *const names[] = {
		[0] = "read", [1] = "write", [2] = "barrier",
		[3] = "flush", [5] = "discard", [6] = "indirect",
	};

	return op < XBD_ARRAY_SIZE(names) && names[op] ? names[op] : "unknown";
}

static const char *role_name(enum xbd_ctl_role role)
{
	return role == XBD_CTL_ATTACH ? "attach" : "serve";
}

/* ------------------------------------------------------------------ */
/* The document                                                       */

static void add_u64(struct json_object *o, const char *key, uint64_t v)
{
	json_object_object_add(o, key, json_object_new_uint64(v));
}

static void add_str(struct json_object *o, const char *key, const char *v)
{
	json_object_object_add(o, key, v ? json_object_new_string(v) : NULL);
}

static void add_bool(struct json_object *o, const char *key, bool v)
{
	json_object_object_add(o, key, json_object_new_boolean(v));
}

static struct json_object *features_json(const struct xbd_ctl_features *f)
{
	struct json_object *o = json_object_new_object();

	add_u64(o, "ring_pages", f->ring_pages);
	add_bool(o, "persistent", f->persistent);
	add_u64(o, "max_indirect_segments", f->max_indirect_segments);
	add_bool(o, "flush", f->flush);
	add_bool(o, "barrier", f->barrier);
	add_bool(o, "discard", f->discard);
	add_str(o, "protocol", f->protocol[0] ? f->protocol : NULL);
	return o;
}

/* The histogram: the percentiles from one snapshot, and the buckets
 * that counted something (of the 544, a disk uses a few dozen), each
 * by its lower bound so that a reader needs no knowledge of the
 * scheme to place it. */
static struct json_object *latency_json(struct xbd_latency_hist *h)
{
	struct json_object *o = json_object_new_object();
	struct json_object *b = json_object_new_array();
	uint64_t snap[XBD_LAT_BUCKETS], count = 0, max;
	unsigned i;

	for (i = 0; i < XBD_LAT_BUCKETS; i++) {
		snap[i] = xbd_stat_get(&h->bucket[i]);
		count += snap[i];
	}
	max = xbd_stat_get(&h->max_ns);
	add_u64(o, "count", count);
	add_u64(o, "total_ns", xbd_stat_get(&h->total_ns));
	add_u64(o, "max_ns", max);
	add_u64(o, "p50_ns", xbd_latency_percentile_of(snap, max, 50));
	add_u64(o, "p90_ns", xbd_latency_percentile_of(snap, max, 90));
	add_u64(o, "p99_ns", xbd_latency_percentile_of(snap, max, 99));
	add_u64(o, "p999_ns", xbd_latency_percentile_of(snap, max, 99.9));
	for (i = 0; i < XBD_LAT_BUCKETS; i++) {
		struct json_object *e;

		if (!snap[i])
			continue;
		e = json_object_new_object();
		add_u64(e, "lower_ns", xbd_latency_bucket_lower(i));
		add_u64(e, "count", snap[i]);
		json_object_array_add(b, e);
	}
	json_object_object_add(o, "buckets", b);
	return o;
}

static struct json_object *counters_json(struct xbd_stats *s,
					 struct json_object *dev)
{
	struct json_object *reqs = json_object_new_object();
	struct json_object *secs = json_object_new_object();
	struct json_object *lat = json_object_new_object();
	struct json_object *errs = json_object_new_object();
	struct json_object *notify = json_object_new_object();
	struct json_object *pg = json_object_new_object();
	unsigned i;

	for (i = 0; i < XBD_OP_COUNT; i++) {
		add_u64(reqs, xbd_stat_op_name(i), xbd_stat_get(&s->reqs[i]));
		add_u64(secs, xbd_stat_op_name(i), xbd_stat_get(&s->sectors[i]));
		json_object_object_add(lat, xbd_stat_op_name(i),
				       latency_json(&s->latency[i]));
	}
	add_u64(reqs, "indirect", xbd_stat_get(&s->indirect_reqs));
	for (i = 0; i < XBD_ERR_COUNT; i++)
		add_u64(errs, xbd_stat_error_name(i), xbd_stat_get(&s->errors[i]));
	add_u64(notify, "sent", xbd_stat_get(&s->notify_sent));
	add_u64(notify, "received", xbd_stat_get(&s->notify_received));
	add_u64(notify, "suppressed", xbd_stat_get(&s->notify_suppressed));
	add_u64(pg, "in_use", xbd_stat_get(&s->pgrants_in_use));
	add_u64(pg, "max", xbd_stat_get(&s->pgrants_max));

	add_bool(dev, "stats_enabled", s->enabled);
	json_object_object_add(dev, "requests", reqs);
	json_object_object_add(dev, "op_sectors", secs);
	add_u64(dev, "in_flight", xbd_stat_get(&s->in_flight));
	add_u64(dev, "in_flight_max", xbd_stat_get(&s->in_flight_max));
	add_u64(dev, "ring_full", xbd_stat_get(&s->ring_full));
	json_object_object_add(dev, "notify", notify);
	json_object_object_add(dev, "errors", errs);
	json_object_object_add(dev, "persistent_grants", pg);
	json_object_object_add(dev, "latency", lat);
	return dev;
}

/* Slots holding requests not yet answered, from this side's own view:
 * a frontend knows exactly what it has not consumed; a backend counts the
 * requests published that it has not answered yet. */
static uint32_t ring_used(enum xbd_ctl_role role, const struct xbd_blkif_ring_state *r)
{
	uint32_t used = role == XBD_CTL_ATTACH ? r->req_prod_pvt - r->rsp_cons
					       : r->req_prod - r->rsp_prod_pvt;

	return used > r->nr_ents ? r->nr_ents : used;
}

static struct json_object *ring_json(enum xbd_ctl_role role,
				     const struct xbd_blkif_ring_state *r)
{
	struct json_object *o;
	uint32_t used;

	if (!r->nr_ents)
		return NULL;
	o = json_object_new_object();
	used = ring_used(role, r);
	add_u64(o, "nr_ents", r->nr_ents);
	add_u64(o, "req_prod", r->req_prod);
	add_u64(o, "req_event", r->req_event);
	add_u64(o, "rsp_prod", r->rsp_prod);
	add_u64(o, "rsp_event", r->rsp_event);
	if (role == XBD_CTL_ATTACH) {
		add_u64(o, "req_prod_pvt", r->req_prod_pvt);
		add_u64(o, "rsp_cons", r->rsp_cons);
	} else {
		add_u64(o, "req_cons", r->req_cons);
		add_u64(o, "rsp_prod_pvt", r->rsp_prod_pvt);
	}
	add_u64(o, "used", used);
	add_u64(o, "free", r->nr_ents - used);
	return o;
}

static struct json_object *inflight_json(const struct xbd_ctl_state *st,
					 uint64_t now)
{
	struct json_object *a = json_object_new_array_ext(st->inflight_len);
	unsigned i;

	for (i = 0; i < st->inflight_len && i < st->inflight_cap; i++) {
		const struct xbd_ctl_request *q = &st->inflight[i];
		struct json_object *o = json_object_new_object();

		add_u64(o, "id", q->id);
		add_str(o, "op", xbd_ctl_blkif_op_name(q->op));
		add_bool(o, "indirect", q->indirect);
		add_u64(o, "sector", q->sector);
		add_u64(o, "nr_segments", q->nr_segments);
		if (q->start_ns && now >= q->start_ns)
			add_u64(o, "age_ns", now - q->start_ns);
		else
			json_object_object_add(o, "age_ns", NULL);
		json_object_array_add(a, o);
	}
	return a;
}

/* Called with ctl->lock held. */
static struct json_object *device_json(struct xbd_ctl_dev *d,
				       struct xbd_ctl_request *inflight,
				       uint64_t now)
{
	const struct xbd_ctl_device *desc = &d->desc;
	struct json_object *o = json_object_new_object();
	struct xbd_ctl_state st;

	memset(&st, 0, sizeof(st));
	st.sectors = desc->sectors;
	st.sector_size = desc->sector_size;
	st.features = desc->features;
	if (inflight) {
		st.inflight = inflight;
		st.inflight_cap = CTL_INFLIGHT_CAP;
		/* left as is by a callback that does not list requests */
		st.inflight_total = XBD_CTL_INFLIGHT_UNKNOWN;
	}
	if (desc->query)
		desc->query(desc->opaque, &st);
	st.features.protocol[sizeof(st.features.protocol) - 1] = '\0';
	if (st.inflight_len > st.inflight_cap)
		st.inflight_len = st.inflight_cap;
	if (st.ring.nr_ents > 0xffff) /* no ring is this large: nonsense */
		st.ring.nr_ents = 0;

	add_str(o, "vm", desc->vm);
	add_u64(o, "domid", desc->domid);
	add_str(o, "vdev", desc->vdev);
	add_u64(o, "devid", desc->devid);
	add_str(o, "role", role_name(desc->role));
	add_str(o, "backend", desc->backend);
	add_str(o, "image", desc->image);
	add_str(o, "image_format", desc->image_format);
	add_str(o, "frontend_path", desc->frontend_path);
	add_str(o, "backend_path", desc->backend_path);
	add_str(o, "mount", desc->mount);
	add_bool(o, "read_only", desc->read_only);
	add_u64(o, "sectors", st.sectors);
	add_u64(o, "sector_size", st.sector_size);
	add_u64(o, "xenbus_state", st.xenbus_state);
	add_str(o, "state", xbd_xenbus_state_name(st.xenbus_state));
	add_u64(o, "uptime_ns", now - d->added_ns);
	json_object_object_add(o, "features", features_json(&st.features));
	counters_json(desc->stats, o);
	json_object_object_add(o, "ring", ring_json(desc->role, &st.ring));
	if (inflight && st.inflight_total != XBD_CTL_INFLIGHT_UNKNOWN) {
		add_u64(o, "in_flight_total", st.inflight_total);
		json_object_object_add(o, "in_flight_requests",
				       inflight_json(&st, now));
	} else if (inflight) {
		json_object_object_add(o, "in_flight_total", NULL);
		json_object_object_add(o, "in_flight_requests", NULL);
	}
	return o;
}

struct json_object *xbd_ctl_build_doc(struct xbd_ctl *ctl, bool with_inflight)
{
	struct json_object *doc = json_object_new_object();
	struct json_object *devs = json_object_new_array();
	struct xbd_ctl_request *inflight = NULL;
	struct xbd_ctl_dev *d;
	uint64_t now = xbd_now_ns();

	if (with_inflight)
		inflight = calloc(CTL_INFLIGHT_CAP, sizeof(*inflight));
	json_object_object_add(doc, "version",
			       json_object_new_int(XBD_CTL_VERSION));
	json_object_object_add(doc, "pid", json_object_new_int64(getpid()));
	add_str(doc, "program", xbd_progname);
	add_u64(doc, "time_ns", now);
	add_u64(doc, "uptime_ns", now - ctl->started_ns);
	pthread_mutex_lock(&ctl->lock);
	for (d = ctl->devs; d; d = d->next)
		json_object_array_add(devs, device_json(d, inflight, now));
	pthread_mutex_unlock(&ctl->lock);
	json_object_object_add(doc, "devices", devs);
	free(inflight);
	return doc;
}

/* ------------------------------------------------------------------ */
/* Server                                                             */

/* An existing run directory must be ours alone: it holds the sockets
 * that show every guest's disk activity. */
static int ensure_run_dir(const char *dir)
{
	struct stat st;

	if (mkdir(dir, 0700) == 0)
		return 0;
	if (errno != EEXIST) {
		int err = -errno;

		xbd_err("%s: cannot create: %s", dir, xbd_strerror(err));
		return err;
	}
	if (lstat(dir, &st) < 0) {
		int err = -errno;

		xbd_err("%s: %s", dir, xbd_strerror(err));
		return err;
	}
	if (!S_ISDIR(st.st_mode) || st.st_uid != geteuid() ||
	    (st.st_mode & 022)) {
		xbd_err("%s: not a private directory of ours (owner, mode or "
			"symlink): refusing to put a control socket there", dir);
		return -EPERM;
	}
	return 0;
}

/* pid from "xbd-<pid>" + suffix; 0 when the name does not have that
 * form. */
static pid_t name_pid(const char *name, const char *suffix)
{
	size_t plen = strlen(CTL_SOCK_PREFIX), slen = strlen(suffix);
	size_t n = strlen(name);
	unsigned long long v;
	char digits[16];

	if (n <= plen + slen || n - plen - slen >= sizeof(digits) ||
	    strncmp(name, CTL_SOCK_PREFIX, plen) || strcmp(name + n - slen, suffix))
		return 0;
	memcpy(digits, name + plen, n - plen - slen);
	digits[n - plen - slen] = '\0';
	if (xbd_parse_uint(digits, INT_MAX, &v))
		return 0;
	return (pid_t)v;
}

pid_t xbd_ctl_socket_name_pid(const char *name)
{
	return name_pid(name, CTL_SOCK_SUFFIX);
}

/* The process that made xbd-<pid>.sock in dir (start 0: unknown, its
 * .start file missing, as an older xbd left it). */
void xbd_ctl_socket_proc(int dir_fd, pid_t pid, struct xbd_proc *proc)
{
	unsigned long long v;
	char name[48], buf[32];
	ssize_t n = -1;
	int fd;

	proc->pid = pid;
	proc->start = 0;
	snprintf(name, sizeof(name), CTL_SOCK_PREFIX "%ld" CTL_START_SUFFIX,
		 (long)pid);
	fd = openat(dir_fd, name, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	if (n <= 0)
		return;
	buf[n] = '\0';
	buf[strcspn(buf, "\n")] = '\0';
	if (!xbd_parse_uint(buf, UINT64_MAX, &v))
		proc->start = v;
}

/* A crashed xbd process leaves its socket (and its .start file)
 * behind: remove those whose process is gone, so clients need not wait
 * on them. */
static void remove_stale_sockets(const char *dir)
{
	DIR *dh = opendir(dir);
	struct dirent *de;

	if (!dh)
		return;
	while ((de = readdir(dh))) {
		pid_t pid = xbd_ctl_socket_name_pid(de->d_name);
		struct xbd_proc proc;

		if (pid <= 0)
			pid = name_pid(de->d_name, CTL_START_SUFFIX);
		if (pid <= 0 || pid == getpid())
			continue;
		xbd_ctl_socket_proc(dirfd(dh), pid, &proc);
		if (!xbd_proc_alive(&proc)) {
			xbd_debug("removing stale control file %s/%s",
				  dir, de->d_name);
			unlinkat(dirfd(dh), de->d_name, 0);
		}
	}
	closedir(dh);
}

static void remove_start_file(struct xbd_ctl *ctl)
{
	if (ctl->start_path[0])
		unlink(ctl->start_path);
	ctl->start_path[0] = '\0';
}

/* Written before the socket is bound, so that a socket with no .start
 * beside it is an older xbd's. */
static int write_start_file(struct xbd_ctl *ctl, const char *dir)
{
	struct xbd_proc self;
	char buf[32];
	int fd, n, err = 0;

	if (xbd_proc_self(&self))
		return 0; /* no /proc: the PID alone, as before */
	snprintf(ctl->start_path, sizeof(ctl->start_path), "%s/" CTL_SOCK_PREFIX
		 "%ld" CTL_START_SUFFIX, dir, (long)self.pid);
	fd = open(ctl->start_path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC |
		  O_NOFOLLOW, 0600);
	if (fd < 0)
		err = -errno;
	n = snprintf(buf, sizeof(buf), "%llu\n", self.start);
	if (fd >= 0 && write(fd, buf, (size_t)n) != n)
		err = -EIO;
	if (fd >= 0)
		close(fd);
	if (err)
		remove_start_file(ctl);
	return err;
}

static bool peer_allowed(int fd)
{
	struct ucred cred;
	socklen_t len = sizeof(cred);

	if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0)
		return false;
	return cred.uid == 0 || cred.uid == geteuid();
}

/* {"version":1,"error":msg,"error_code":code}: a refused request. */
static struct json_object *error_doc(const char *code, const char *msg)
{
	struct json_object *doc = json_object_new_object();

	json_object_object_add(doc, "version",
			       json_object_new_int(XBD_CTL_VERSION));
	add_str(doc, "error", msg);
	add_str(doc, "error_code", code);
	return doc;
}

static void client_close(struct ctl_client *c)
{
	if (c->fd >= 0)
		close(c->fd);
	json_object_put(c->doc);
	memset(c, 0, sizeof(*c));
	c->fd = -1;
}

/* The request is whole: the answer is built now, under the device lock,
 * and then written out as the client takes it. */
static void client_answer(struct xbd_ctl *ctl, struct ctl_client *c)
{
	char *line = c->line;

	line[strcspn(line, "\r\n")] = '\0';
	if (!peer_allowed(c->fd)) {
		c->doc = error_doc("EACCES", "permission denied: root only");
	} else if (!strcmp(line, "stats") || !strcmp(line, "ring")) {
		c->doc = xbd_ctl_build_doc(ctl, !strcmp(line, "ring"));
	} else {
		char msg[CTL_MAX_REQUEST + 32];

		snprintf(msg, sizeof(msg), "unknown request '%.*s'",
			 CTL_MAX_REQUEST - 1, line);
		c->doc = error_doc("EINVAL", msg);
	}
	c->out = json_object_to_json_string_ext(c->doc, JSON_C_TO_STRING_PLAIN);
	c->out_len = strlen(c->out) + 1; /* and the '\n' client_write adds */
	c->writing = true;
}

/* Takes what the client sent so far; false once it is done with (an
 * error, or nothing at all before it hung up). */
static bool client_read(struct xbd_ctl *ctl, struct ctl_client *c)
{
	ssize_t n = recv(c->fd, c->line + c->len,
			 sizeof(c->line) - 1 - c->len, MSG_DONTWAIT);

	if (n < 0)
		return errno == EAGAIN || errno == EINTR;
	c->len += (size_t)n;
	c->line[c->len] = '\0';
	if (n == 0 && !c->len)
		return false;
	/* a line, a full buffer (refused as too long) or a hang-up after
	 * a line without its newline */
	if (n == 0 || strchr(c->line, '\n') || c->len + 1 == sizeof(c->line))
		client_answer(ctl, c);
	return true;
}

/* Sends what the socket takes now; false once all is sent or the
 * client is gone. */
static bool client_write(struct ctl_client *c)
{
	while (c->out_off < c->out_len) {
		size_t body = c->out_len - 1;
		const char *p = c->out_off < body ? c->out + c->out_off : "\n";
		size_t len = c->out_off < body ? body - c->out_off : 1;
		ssize_t n = send(c->fd, p, len, MSG_NOSIGNAL | MSG_DONTWAIT);

		if (n < 0)
			return errno == EAGAIN || errno == EINTR;
		c->out_off += (size_t)n;
	}
	return false;
}

/* A slot for a new connection.  When all are taken, the oldest client
 * goes: it has had the longest to speak, and refusing the newcomer
 * instead would let a few silent clients lock everyone out. */
static struct ctl_client *client_slot(struct xbd_ctl *ctl)
{
	struct ctl_client *oldest = &ctl->clients[0];
	unsigned i;

	for (i = 0; i < XBD_CTL_MAX_CLIENTS; i++) {
		if (ctl->clients[i].fd < 0)
			return &ctl->clients[i];
		if (ctl->clients[i].deadline_ns < oldest->deadline_ns)
			oldest = &ctl->clients[i];
	}
	xbd_debug("control socket: %u clients at once: dropping the oldest",
		  XBD_CTL_MAX_CLIENTS);
	client_close(oldest);
	return oldest;
}

static void client_accept(struct xbd_ctl *ctl, uint64_t now)
{
	struct ctl_client *c;
	int fd = accept4(ctl->listen_fd, NULL, NULL,
			 SOCK_CLOEXEC | SOCK_NONBLOCK);

	if (fd < 0) {
		/* Out of descriptors: the connection stays queued and the
		 * listening socket readable; look again a little later
		 * rather than spin on it. */
		if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
		    errno == ENOMEM)
			ctl->accept_again_ns = now + CTL_ACCEPT_BACKOFF_NS;
		return;
	}
	c = client_slot(ctl);
	c->fd = fd;
	c->deadline_ns = now + CTL_REQUEST_DEADLINE_NS;
}

static int poll_timeout_ms(const struct xbd_ctl *ctl, uint64_t now)
{
	uint64_t next = UINT64_MAX;
	unsigned i;

	for (i = 0; i < XBD_CTL_MAX_CLIENTS; i++)
		if (ctl->clients[i].fd >= 0 && ctl->clients[i].deadline_ns < next)
			next = ctl->clients[i].deadline_ns;
	if (ctl->accept_again_ns && ctl->accept_again_ns < next)
		next = ctl->accept_again_ns;
	if (next == UINT64_MAX)
		return -1;
	return next <= now ? 0 : (int)((next - now) / 1000000u) + 1;
}

/* One thread serves every client: each connection is non-blocking, has
 * its own buffer and one deadline for the whole request (accept to last
 * byte of the answer), so a client that trickles, says nothing or never
 * reads holds a slot at most that long and never delays the others. */
static void *ctl_thread(void *arg)
{
	struct xbd_ctl *ctl = arg;
	struct pollfd pfd[2 + XBD_CTL_MAX_CLIENTS];
	struct ctl_client *polled[XBD_CTL_MAX_CLIENTS];
	unsigned i;

	for (;;) {
		uint64_t now = xbd_now_ns();
		unsigned n = 2, k;
		bool can_accept;
		int r;

		if (ctl->accept_again_ns && now >= ctl->accept_again_ns)
			ctl->accept_again_ns = 0;
		can_accept = !ctl->accept_again_ns;
		pfd[0] = (struct pollfd){ .fd = ctl->wake_fd, .events = POLLIN };
		pfd[1] = (struct pollfd){ .fd = can_accept ? ctl->listen_fd : -1,
					  .events = POLLIN };
		for (i = 0; i < XBD_CTL_MAX_CLIENTS; i++) {
			struct ctl_client *c = &ctl->clients[i];

			if (c->fd < 0)
				continue;
			if (now >= c->deadline_ns) {
				xbd_debug("control socket: a client missed its "
					  "deadline: dropped");
				client_close(c);
				continue;
			}
			polled[n - 2] = c;
			pfd[n++] = (struct pollfd){
				.fd = c->fd,
				.events = c->writing ? POLLOUT : POLLIN,
			};
		}
		r = poll(pfd, n, poll_timeout_ms(ctl, now));
		if (r < 0) {
			if (errno == EINTR)
				continue;
			xbd_err("control socket: poll: %s", xbd_strerror(-errno));
			break;
		}
		if (pfd[0].revents)
			break;
		now = xbd_now_ns();
		for (k = 2; k < n; k++) {
			struct ctl_client *c = polled[k - 2];
			bool keep;

			if (!pfd[k].revents)
				continue;
			keep = c->writing ? client_write(c) : client_read(ctl, c);
			/* an answer built just now goes out at once */
			if (keep && c->writing && c->out_off == 0)
				keep = client_write(c);
			if (!keep)
				client_close(c);
		}
		if (pfd[1].revents & POLLIN)
			client_accept(ctl, now);
	}
	for (i = 0; i < XBD_CTL_MAX_CLIENTS; i++)
		client_close(&ctl->clients[i]);
	return NULL;
}

static int listen_on(struct xbd_ctl *ctl, const char *dir)
{
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	int n, err;

	n = snprintf(sa.sun_path, sizeof(sa.sun_path), "%s/" CTL_SOCK_PREFIX
		     "%ld" CTL_SOCK_SUFFIX, dir, (long)getpid());
	if (n < 0 || (size_t)n >= sizeof(sa.sun_path)) {
		xbd_err("%s: run directory path too long for a socket", dir);
		return -ENAMETOOLONG;
	}
	snprintf(ctl->path, sizeof(ctl->path), "%s", sa.sun_path);
	err = write_start_file(ctl, dir);
	if (err)
		return err;
	ctl->listen_fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (ctl->listen_fd < 0) {
		err = -errno;
		goto fail_start;
	}
	unlink(ctl->path); /* ours by name: a previous process with our pid */
	if (bind(ctl->listen_fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
		err = -errno;
		goto fail_close;
	}
	/* The 0700 directory already keeps others out while this is 0755. */
	if (chmod(ctl->path, 0600) < 0 || listen(ctl->listen_fd, 16) < 0) {
		err = -errno;
		goto fail_unlink;
	}
	return 0;

fail_unlink:
	unlink(ctl->path);
fail_close:
	xbd_err("control socket %s: %s", ctl->path, xbd_strerror(err));
	close(ctl->listen_fd);
	ctl->listen_fd = -1;
fail_start:
	remove_start_file(ctl);
	return err;
}

int xbd_ctl_start(struct xbd_ctl **out)
{
	const char *dir = xbd_ctl_run_dir();
	struct xbd_ctl *ctl;
	sigset_t all, old;
	unsigned i;
	int err;

	ctl = calloc(1, sizeof(*ctl));
	if (!ctl)
		return -ENOMEM;
	ctl->listen_fd = -1;
	ctl->wake_fd = -1;
	for (i = 0; i < XBD_CTL_MAX_CLIENTS; i++)
		ctl->clients[i].fd = -1;
	ctl->started_ns = xbd_now_ns();
	pthread_mutex_init(&ctl->lock, NULL);

	err = ensure_run_dir(dir);
	if (err)
		goto fail;
	remove_stale_sockets(dir);
	err = listen_on(ctl, dir);
	if (err)
		goto fail;
	ctl->wake_fd = eventfd(0, EFD_CLOEXEC);
	if (ctl->wake_fd < 0) {
		err = -errno;
		goto fail_socket;
	}
	/* Signals belong to the main thread, which owns the cleanup. */
	sigfillset(&all);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	err = -pthread_create(&ctl->thread, NULL, ctl_thread, ctl);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (err)
		goto fail_socket;
	ctl->thread_started = true;
	*out = ctl;
	return 0;

fail_socket:
	unlink(ctl->path);
	remove_start_file(ctl);
fail:
	xbd_ctl_stop(ctl);
	return err;
}

void xbd_ctl_stop(struct xbd_ctl *ctl)
{
	struct xbd_ctl_dev *d, *next;

	if (!ctl)
		return;
	if (ctl->thread_started) {
		uint64_t one = 1;

		if (write(ctl->wake_fd, &one, sizeof(one)) != sizeof(one))
			xbd_err("control socket: cannot wake its thread");
		pthread_join(ctl->thread, NULL);
		unlink(ctl->path);
		remove_start_file(ctl);
	}
	if (ctl->listen_fd >= 0)
		close(ctl->listen_fd);
	if (ctl->wake_fd >= 0)
		close(ctl->wake_fd);
	for (d = ctl->devs; d; d = next) {
		next = d->next;
		xbd_ctl_remove_device(ctl, d);
	}
	pthread_mutex_destroy(&ctl->lock);
	free(ctl);
}

const char *xbd_ctl_socket_path(const struct xbd_ctl *ctl)
{
	return ctl->path;
}

static void free_dev(struct xbd_ctl_dev *d)
{
	free((char *)d->desc.vm);
	free((char *)d->desc.vdev);
	free((char *)d->desc.backend);
	free((char *)d->desc.image);
	free((char *)d->desc.image_format);
	free((char *)d->desc.frontend_path);
	free((char *)d->desc.backend_path);
	free((char *)d->desc.mount);
	free(d);
}

/* strdup that keeps NULL; false when out of memory. */
static bool dup_opt(const char **dst, const char *src)
{
	*dst = NULL;
	if (!src)
		return true;
	*dst = strdup(src);
	return *dst != NULL;
}

int xbd_ctl_add_device(struct xbd_ctl *ctl, const struct xbd_ctl_device *desc,
		       struct xbd_ctl_dev **out)
{
	struct xbd_ctl_dev *d;
	bool ok;

	if (!ctl || !desc || !desc->stats)
		return -EINVAL;
	d = calloc(1, sizeof(*d));
	if (!d)
		return -ENOMEM;
	d->desc = *desc;
	ok = dup_opt(&d->desc.vm, desc->vm);
	ok &= dup_opt(&d->desc.vdev, desc->vdev);
	ok &= dup_opt(&d->desc.backend, desc->backend);
	ok &= dup_opt(&d->desc.image, desc->image);
	ok &= dup_opt(&d->desc.image_format, desc->image_format);
	ok &= dup_opt(&d->desc.frontend_path, desc->frontend_path);
	ok &= dup_opt(&d->desc.backend_path, desc->backend_path);
	ok &= dup_opt(&d->desc.mount, desc->mount);
	if (!ok) {
		free_dev(d);
		return -ENOMEM;
	}
	d->added_ns = xbd_now_ns();
	pthread_mutex_lock(&ctl->lock);
	d->next = ctl->devs;
	ctl->devs = d;
	pthread_mutex_unlock(&ctl->lock);
	if (out)
		*out = d;
	return 0;
}

void xbd_ctl_remove_device(struct xbd_ctl *ctl, struct xbd_ctl_dev *dev)
{
	struct xbd_ctl_dev **pp;

	if (!ctl || !dev)
		return;
	pthread_mutex_lock(&ctl->lock);
	for (pp = &ctl->devs; *pp; pp = &(*pp)->next) {
		if (*pp == dev) {
			*pp = dev->next;
			break;
		}
	}
	pthread_mutex_unlock(&ctl->lock);
	free_dev(dev);
}

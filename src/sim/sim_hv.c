/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sim's hypervisor state in shared memory: the files under the sim
 * directory, each process's views of the domains in them, the table of
 * domains, and the daemon's side (sim_hv_*), which creates and kills
 * domains.
 */
#include "sim_hv.h"
#include "xbd/common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <xenstore.h>

int sim_path(char *buf, size_t len, const char *dir, const char *fmt,
	     ...)
{
	va_list ap;
	int off = snprintf(buf, len, "%s/", dir), n;

	if (off < 0 || (size_t)off >= len)
		return -ENAMETOOLONG;
	va_start(ap, fmt);
	n = vsnprintf(buf + off, len - (size_t)off, fmt, ap);
	va_end(ap);
	if (n < 0 || (size_t)n >= len - (size_t)off)
		return -ENAMETOOLONG;
	return 0;
}

/* ------------------------------------------------------------------ */
/* Views of domains' shared state                                      */

static void view_free(struct sim_view *v)
{
	unsigned char *mem = atomic_load_explicit(&v->mem, memory_order_relaxed);

	if (mem)
		munmap(mem, (size_t)SIM_NR_FRAMES * SIM_PS);
	if (v->shm)
		munmap(v->shm, sizeof(*v->shm));
	if (v->mem_fd >= 0)
		close(v->mem_fd);
	free(v);
}

/* Maps a whole file; with `create`, makes it (size bytes of zeroes) under
 * a temporary name first, so nobody ever maps a half-made file. */
int sim_map_file(const char *path, size_t size, bool create, bool writable,
		 void **out)
{
	struct stat st;
	int fd, err = 0;
	void *m;

	fd = open(path, (writable ? O_RDWR : O_RDONLY) | O_CLOEXEC |
			(create ? O_CREAT | O_TRUNC : 0), 0600);
	if (fd < 0)
		return errno == ENOENT ? -ESRCH : -errno;
	if (create && ftruncate(fd, (off_t)size) < 0) {
		err = -errno;
		goto out;
	}
	if (fstat(fd, &st) < 0 || (size_t)st.st_size != size) {
		err = -EPROTO; /* another sim version, or not ours */
		goto out;
	}
	m = mmap(NULL, size, PROT_READ | (writable ? PROT_WRITE : 0),
		 MAP_SHARED, fd, 0);
	if (m == MAP_FAILED) {
		err = -errno;
		goto out;
	}
	*out = m;
out:
	close(fd);
	return err;
}

/* Opens (or with create, makes) domain domid's state files. */
static int view_open(const char *dir, uint16_t domid, bool create,
		     struct sim_view **out)
{
	char path[4096], tmp[4096];
	struct sim_view *v;
	void *m;
	int err;

	v = calloc(1, sizeof(*v));
	if (!v)
		return -ENOMEM;
	v->domid = domid;
	v->mem_fd = -1;

	if ((err = sim_path(path, sizeof(path), dir, "mem-%u", domid)))
		goto fail;
	if (create) {
		if ((err = sim_path(tmp, sizeof(tmp), dir, "mem-%u.new", domid)))
			goto fail;
		v->mem_fd = open(tmp, O_RDWR | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
		if (v->mem_fd < 0 ||
		    ftruncate(v->mem_fd, (off_t)SIM_NR_FRAMES * (off_t)SIM_PS) < 0 ||
		    rename(tmp, path) < 0) {
			err = -errno;
			unlink(tmp);
			goto fail;
		}
	} else {
		v->mem_fd = open(path, O_RDWR | O_CLOEXEC);
		if (v->mem_fd < 0) {
			err = errno == ENOENT ? -ESRCH : -errno;
			goto fail;
		}
	}

	if ((err = sim_path(path, sizeof(path), dir, "dom-%u", domid)))
		goto fail;
	if (create) {
		if ((err = sim_path(tmp, sizeof(tmp), dir, "dom-%u.new", domid)) ||
		    (err = sim_map_file(tmp, sizeof(*v->shm), true, true, &m)))
			goto fail;
		v->shm = m;
		v->shm->magic = SIM_MAGIC;
		v->shm->version = SIM_VERSION;
		v->shm->domid = domid;
		if (rename(tmp, path) < 0) {
			err = -errno;
			unlink(tmp);
			goto fail;
		}
	} else {
		if ((err = sim_map_file(path, sizeof(*v->shm), false, true, &m)))
			goto fail;
		v->shm = m;
		if (v->shm->magic != SIM_MAGIC || v->shm->version != SIM_VERSION ||
		    v->shm->domid != domid) {
			err = -EPROTO;
			goto fail;
		}
	}
	*out = v;
	return 0;
fail:
	view_free(v);
	return err;
}

static struct sim_view *views_find(struct sim_views *vs, uint16_t domid)
{
	struct sim_view *v;

	/* acquire: a view's fields are written before it is published */
	for (v = atomic_load_explicit(&vs->head, memory_order_acquire); v;
	     v = v->next)
		if (v->domid == domid)
			return v;
	return NULL;
}

static void views_publish(struct sim_views *vs, struct sim_view *v)
{
	v->next = atomic_load_explicit(&vs->head, memory_order_relaxed);
	/* release: the view is complete before readers can find it */
	atomic_store_explicit(&vs->head, v, memory_order_release);
}

/* The view of domid, opened on first use.  -ESRCH: no such domain. */
int sim_views_get(struct sim_views *vs, uint16_t domid,
		  struct sim_view **out)
{
	struct sim_view *v = views_find(vs, domid);
	int err = 0;

	if (v) {
		*out = v;
		return 0;
	}
	pthread_mutex_lock(&vs->lock);
	v = views_find(vs, domid);
	if (!v && !(err = view_open(vs->dir, domid, false, &v)))
		views_publish(vs, v);
	pthread_mutex_unlock(&vs->lock);
	if (!err)
		*out = v;
	return err;
}

void sim_views_free(struct sim_views *vs)
{
	struct sim_view *v = atomic_load_explicit(&vs->head, memory_order_relaxed);

	while (v) {
		struct sim_view *next = v->next;

		view_free(v);
		v = next;
	}
	atomic_store_explicit(&vs->head, NULL, memory_order_relaxed);
}

/* All of the domain's memory mapped here, for grant copies. */
unsigned char *sim_view_mem(struct sim_view *v)
{
	unsigned char *m = atomic_load_explicit(&v->mem, memory_order_acquire);
	unsigned char *expected = NULL;
	void *n;

	if (m)
		return m;
	n = mmap(NULL, (size_t)SIM_NR_FRAMES * SIM_PS, PROT_READ | PROT_WRITE,
		 MAP_SHARED, v->mem_fd, 0);
	if (n == MAP_FAILED)
		return NULL;
	/* acq_rel: publish our mapping, or see the one another thread won with */
	if (atomic_compare_exchange_strong_explicit(&v->mem, &expected, n,
						    memory_order_acq_rel,
						    memory_order_acquire))
		return n;
	munmap(n, (size_t)SIM_NR_FRAMES * SIM_PS);
	return expected;
}

bool sim_view_dead(struct sim_view *v)
{
	/* acquire: once we see the domain dead we also see what the daemon
	 * tore down before marking it */
	return atomic_load_explicit(&v->shm->dead, memory_order_acquire) != 0;
}
/* ------------------------------------------------------------------ */
/* The table of domains                                                */

/* The slot word (state << 16 | domid) of domid, or 0 if it has none. */
static uint32_t domains_word(struct sim_domains *d, uint16_t domid)
{
	unsigned i;

	for (i = 0; i < XBD_SIM_MAX_DOMAINS; i++) {
		/* acquire: a slot's name is written before it is published */
		uint32_t w = atomic_load_explicit(&d->slot[i].word,
						  memory_order_acquire);

		if ((w >> 16) != DS_FREE && (w & 0xffff) == domid)
			return w;
	}
	return 0;
}

/* The slot index of domid (daemon side: the only writer), or -1. */
static int domains_find(struct sim_domains *d, uint16_t domid)
{
	unsigned i;

	for (i = 0; i < XBD_SIM_MAX_DOMAINS; i++) {
		uint32_t w = atomic_load_explicit(&d->slot[i].word,
						  memory_order_relaxed);

		if ((w >> 16) != DS_FREE && (w & 0xffff) == domid)
			return (int)i;
	}
	return -1;
}

int sim_domains_alive(struct sim_domains *d, uint16_t domid)
{
	return (domains_word(d, domid) >> 16) == DS_ALIVE;
}
/* ------------------------------------------------------------------ */
/* The daemon's side                                                   */

struct sim_hv {
	char *dir;
	struct sim_domains *domains;
	struct sim_views views;
};

/* Removes the state files a sim keeps in dir (not sockets: their owners
 * remove those). */
static void remove_state_files(const char *dir)
{
	static const char *const prefixes[] = { "dom-", "mem-", "ev-", "domains" };
	char path[4096];
	struct dirent *de;
	DIR *d = opendir(dir);
	size_t i;

	if (!d)
		return;
	while ((de = readdir(d))) {
		for (i = 0; i < XBD_ARRAY_SIZE(prefixes); i++) {
			if (!strncmp(de->d_name, prefixes[i], strlen(prefixes[i])) &&
			    !sim_path(path, sizeof(path), dir, "%s", de->d_name)) {
				unlink(path);
				break;
			}
		}
	}
	closedir(d);
}

int sim_hv_create(const char *dir, struct sim_hv **out)
{
	char path[4096], tmp[4096];
	struct sim_hv *hv;
	void *m;
	int err;

	hv = calloc(1, sizeof(*hv));
	if (!hv)
		return -ENOMEM;
	pthread_mutex_init(&hv->views.lock, NULL);
	if (!(hv->dir = strdup(dir))) {
		err = -ENOMEM;
		goto fail;
	}
	hv->views.dir = hv->dir;
	remove_state_files(dir);
	if ((err = sim_path(path, sizeof(path), dir, "domains")) ||
	    (err = sim_path(tmp, sizeof(tmp), dir, "domains.new")) ||
	    (err = sim_map_file(tmp, sizeof(*hv->domains), true, true, &m)))
		goto fail;
	hv->domains = m;
	hv->domains->magic = SIM_MAGIC;
	hv->domains->version = SIM_VERSION;
	if (rename(tmp, path) < 0) {
		err = -errno;
		unlink(tmp);
		goto fail;
	}
	if ((err = sim_hv_domain_add(hv, 0, "Domain-0")))
		goto fail;
	*out = hv;
	return 0;
fail:
	sim_hv_destroy(hv);
	return err;
}

void sim_hv_destroy(struct sim_hv *hv)
{
	if (!hv)
		return;
	sim_views_free(&hv->views);
	if (hv->domains)
		munmap(hv->domains, sizeof(*hv->domains));
	if (hv->dir)
		remove_state_files(hv->dir);
	pthread_mutex_destroy(&hv->views.lock);
	free(hv->dir);
	free(hv);
}

int sim_hv_domain_add(struct sim_hv *hv, uint16_t domid, const char *name)
{
	struct sim_dom_slot *slot = NULL;
	struct sim_view *v;
	unsigned i;
	int err;

	if (domid > XBD_SIM_MAX_DOMID || strlen(name) > XBD_SIM_NAME_MAX)
		return -EINVAL;
	if (domains_find(hv->domains, domid) >= 0 || views_find(&hv->views, domid))
		return -EEXIST;
	for (i = 0; i < XBD_SIM_MAX_DOMAINS && !slot; i++)
		if (atomic_load_explicit(&hv->domains->slot[i].word,
					 memory_order_relaxed) >> 16 == DS_FREE)
			slot = &hv->domains->slot[i];
	if (!slot)
		return -ENOSPC;
	if ((err = view_open(hv->dir, domid, true, &v)))
		return err;
	views_publish(&hv->views, v);
	snprintf(slot->name, sizeof(slot->name), "%s", name);
	/* release: the domain's files and name exist before it is alive */
	atomic_store_explicit(&slot->word, (uint32_t)DS_ALIVE << 16 | domid,
			      memory_order_release);
	return 0;
}
void sim_hv_domain_kill(struct sim_hv *hv, uint16_t domid)
{
	int i = domains_find(hv->domains, domid);
	struct sim_view *v = views_find(&hv->views, domid), *o;
	uint32_t port, ref;

	if (i < 0 || !v)
		return;
	/* release: nothing below happens before peers can see it dying */
	atomic_store_explicit(&hv->domains->slot[i].word,
			      (uint32_t)DS_DYING << 16 | domid, memory_order_release);
	/* seq_cst: dead before its ports and grant entries are torn down */
	atomic_store(&v->shm->dead, 1);

	/* Its ports close; the peers' ends become unbound. */
	for (port = 1; port < SIM_NR_PORTS; port++)
		if (atomic_load_explicit(&v->shm->ports[port].word,
					 memory_order_relaxed))
			sim_port_close(&hv->views, v, port);

	for (o = atomic_load_explicit(&hv->views.head, memory_order_relaxed); o;
	     o = o->next) {
		if (o == v || sim_view_dead(o))
			continue;
		/* A bind that raced with the kill is undone too. */
		for (port = 1; port < SIM_NR_PORTS; port++)
			sim_port_unbind_peer(o, port, domid, UINT32_MAX);
		/* Its mappings of others' grants died with it. */
		for (ref = SIM_FIRST_GRANT; ref < SIM_NR_GRANTS; ref++)
			sim_grant_drop_maps(o, ref, domid);
	}
}

void sim_hv_domain_remove(struct sim_hv *hv, uint16_t domid)
{
	struct sim_view *prev, *v;
	char path[4096];
	int i = domains_find(hv->domains, domid);

	if (!sim_path(path, sizeof(path), hv->dir, "dom-%u", domid))
		unlink(path);
	if (!sim_path(path, sizeof(path), hv->dir, "mem-%u", domid))
		unlink(path);
	/* Only the daemon's single thread uses hv's views. */
	v = atomic_load_explicit(&hv->views.head, memory_order_relaxed);
	if (v && v->domid == domid) {
		atomic_store_explicit(&hv->views.head, v->next, memory_order_relaxed);
		view_free(v);
	} else {
		for (prev = v; prev && (v = prev->next); prev = v) {
			if (v->domid == domid) {
				prev->next = v->next;
				view_free(v);
				break;
			}
		}
	}
	if (i >= 0)
		/* release: peers see the slot free after the files went */
		atomic_store_explicit(&hv->domains->slot[i].word, 0,
				      memory_order_release);
}

bool sim_pid_gone(uint32_t pid)
{
	char path[64], buf[512], *p;
	ssize_t n;
	int fd;

	if (!pid || pid > INT_MAX)
		return false;
	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return errno == ENOENT;
	n = read(fd, buf, sizeof(buf) - 1);
	close(fd);
	if (n <= 0)
		return false;
	buf[n] = 0;
	/* "pid (comm) S ...": the state follows the last ')' */
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && (p[2] == 'Z' || p[2] == 'X');
}

/* Liveness of the few processes one reap pass asks about, each asked
 * once per pass. */
struct pid_cache {
	unsigned n;
	struct { uint32_t pid; bool gone; } e[64];
};

static bool cached_gone(struct pid_cache *c, uint32_t pid)
{
	unsigned i;
	bool gone;

	for (i = 0; i < c->n; i++)
		if (c->e[i].pid == pid)
			return c->e[i].gone;
	gone = sim_pid_gone(pid);
	if (c->n < XBD_ARRAY_SIZE(c->e)) {
		c->e[c->n].pid = pid;
		c->e[c->n++].gone = gone;
	}
	return gone;
}

/* The event FIFOs (ev-PID-SEQ) of processes that are gone. */
static unsigned reap_fifos(struct sim_hv *hv, struct pid_cache *c)
{
	char path[4096];
	struct dirent *de;
	unsigned pid, seq, n = 0;
	DIR *d = opendir(hv->dir);

	if (!d)
		return 0;
	while ((de = readdir(d))) {
		if (sscanf(de->d_name, "ev-%u-%u", &pid, &seq) != 2 ||
		    !cached_gone(c, pid))
			continue;
		if (!sim_path(path, sizeof(path), hv->dir, "%s", de->d_name) &&
		    !unlink(path))
			n++;
	}
	closedir(d);
	return n;
}

/*
 * A process that is gone cannot be racing with us over what it held,
 * so each step below is the one its own clean-up would have done.  A
 * pid reused by a new process between the check and the step would be
 * mistaken for the old one; pids wrap far too slowly for that.
 */
unsigned sim_hv_reap(struct sim_hv *hv)
{
	struct pid_cache c = { 0 };
	struct sim_view *v;
	unsigned n = 0;
	uint32_t i, pid;

	for (v = atomic_load_explicit(&hv->views.head, memory_order_acquire); v;
	     v = v->next) {
		if (sim_view_dead(v))
			continue;
		for (i = 1; i < SIM_NR_PORTS; i++) {
			pid = (uint32_t)(atomic_load_explicit(&v->shm->ports[i].owner,
							      memory_order_relaxed) >> 32);
			if (pid && cached_gone(&c, pid)) {
				sim_port_close(&hv->views, v, i);
				n++;
			}
		}
		for (i = SIM_FIRST_GRANT; i < SIM_NR_GRANTS; i++) {
			struct sim_grant *g = &v->shm->grants[i];

			if (!(atomic_load_explicit(&g->word, memory_order_relaxed) &
			      G_INUSE))
				continue;
			pid = atomic_load_explicit(&g->mapper, memory_order_relaxed);
			if (pid && pid != SIM_MAPPER_SHARED && cached_gone(&c, pid))
				n += sim_grant_reap_maps(v, i, pid);
			pid = atomic_load_explicit(&g->owner, memory_order_relaxed);
			if (pid && cached_gone(&c, pid))
				n += sim_grant_reap_end(v, i);
		}
	}
	return n + reap_fifos(hv, &c);
}

int sim_hv_alloc_unbound(struct sim_hv *hv, uint16_t domid, uint16_t remote,
			 uint32_t *port)
{
	struct sim_view *v = views_find(&hv->views, domid);
	int err;

	if (!v)
		return -ESRCH;
	if ((err = sim_port_alloc(v->shm, 0, port)))
		return err;
	/* release: the port is complete when it shows as unbound */
	atomic_store_explicit(&v->shm->ports[*port].word,
			      sim_port_word(PS_UNBOUND, remote, 0),
			      memory_order_release);
	return 0;
}

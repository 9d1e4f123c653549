/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `xbd sim status`: a read-only look at what the simulated hypervisor
 * holds (grants, frames, event channel ports per domain, and the event
 * FIFOs of the processes using it), so that a test can tell whether
 * something was left behind.  Reads the shared state files as they are
 * at this moment; never changes them.
 */
#include "sim_hv.h"
#include "xbd/common.h"

#include <dirent.h>
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

static const char *const port_states[] = {
	[PS_FREE] = "free", [PS_RESERVED] = "reserved",
	[PS_UNBOUND] = "unbound", [PS_INTERDOMAIN] = "interdomain",
};

static void domain_status(const struct sim_dom_shm *s, uint16_t domid,
			  const char *name, bool verbose, FILE *out)
{
	unsigned grants = 0, mapped = 0, ending = 0, frames = 0, ports = 0,
		 bound = 0, gone = 0;
	uint32_t i;

	for (i = 0; i < SIM_NR_FRAMES / 64; i++)
		frames += (unsigned)__builtin_popcountll(
			atomic_load_explicit(&s->frame_used[i], memory_order_relaxed));
	for (i = SIM_FIRST_GRANT; i < SIM_NR_GRANTS; i++) {
		const struct sim_grant *g = &s->grants[i];
		uint64_t w = atomic_load_explicit(&g->word, memory_order_relaxed);
		uint32_t owner = atomic_load_explicit(&g->owner, memory_order_relaxed);

		if (!(w & (G_INUSE | G_RESERVED)))
			continue;
		grants++;
		mapped += !!(w & G_MAPS);
		ending += !!(w & G_ENDING);
		gone += sim_pid_gone(owner);
		if (verbose)
			fprintf(out, "  grant %u to dom%u maps %u%s%s owner %u mapper %u\n",
				i, (unsigned)(w & G_GRANTEE),
				(unsigned)((w & G_MAPS) >> 16),
				w & G_READONLY ? " ro" : "", w & G_ENDING ? " ending" : "",
				owner, atomic_load_explicit(&g->mapper, memory_order_relaxed));
	}
	for (i = 1; i < SIM_NR_PORTS; i++) {
		uint64_t w = atomic_load_explicit(&s->ports[i].word, memory_order_relaxed);
		uint64_t owner = atomic_load_explicit(&s->ports[i].owner,
						      memory_order_relaxed);
		unsigned st = (unsigned)(w >> P_STATE_SHIFT) & 7u;

		if (!w)
			continue;
		ports++;
		bound += st == PS_INTERDOMAIN;
		gone += sim_pid_gone((uint32_t)(owner >> 32));
		if (verbose)
			fprintf(out, "  port %u %s dom%u port %u owner %u\n", i,
				st < XBD_ARRAY_SIZE(port_states) ? port_states[st] : "?",
				(unsigned)((w >> P_RDOM_SHIFT) & 0xffff),
				(unsigned)(w & P_RPORT), (unsigned)(owner >> 32));
	}
	fprintf(out, "dom%u %s grants=%u mapped=%u ending=%u frames=%u ports=%u "
		"bound=%u of-exited=%u\n", domid, name, grants, mapped, ending,
		frames, ports, bound, gone);
}

/* The event FIFOs (one per open event channel handle). */
static void fifo_status(const char *dir, bool verbose, FILE *out)
{
	unsigned pid, seq, n = 0, gone = 0;
	struct dirent *de;
	DIR *d = opendir(dir);

	if (!d)
		return;
	while ((de = readdir(d))) {
		if (sscanf(de->d_name, "ev-%u-%u", &pid, &seq) != 2)
			continue;
		n++;
		gone += sim_pid_gone(pid);
		if (verbose)
			fprintf(out, "  %s\n", de->d_name);
	}
	closedir(d);
	fprintf(out, "evtchn-handles=%u of-exited=%u\n", n, gone);
}

int xbd_sim_status(const char *dir, bool verbose, FILE *out)
{
	struct sim_domains *doms;
	char path[4096];
	unsigned i;
	void *m;
	int err;

	if ((err = sim_path(path, sizeof(path), dir, "domains")))
		return err;
	if ((err = sim_map_file(path, sizeof(*doms), false, false, &m))) {
		xbd_err("no simulated Xen at %s", dir);
		return err == -ESRCH ? -ENOENT : err;
	}
	doms = m;
	if (doms->magic != SIM_MAGIC || doms->version != SIM_VERSION) {
		xbd_err("%s: a simulated Xen of another version", dir);
		munmap(doms, sizeof(*doms));
		return -EPROTO;
	}
	for (i = 0; i < XBD_SIM_MAX_DOMAINS; i++) {
		/* acquire: the slot's name and files exist once it is published */
		uint32_t w = atomic_load_explicit(&doms->slot[i].word,
						  memory_order_acquire);
		uint16_t domid = (uint16_t)(w & 0xffff);
		char name[XBD_SIM_NAME_MAX + 1];

		if ((w >> 16) != DS_ALIVE)
			continue;
		memcpy(name, doms->slot[i].name, sizeof(name));
		name[XBD_SIM_NAME_MAX] = 0;
		/* a domain destroyed meanwhile has no files any more: skipped */
		if (sim_path(path, sizeof(path), dir, "dom-%u", domid) ||
		    sim_map_file(path, sizeof(struct sim_dom_shm), false, false, &m))
			continue;
		domain_status(m, domid, name, verbose, out);
		munmap(m, sizeof(struct sim_dom_shm));
	}
	munmap(doms, sizeof(*doms));
	fifo_status(dir, verbose, out);
	return 0;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * --pause for `xbd image` and `xbd attach`: the VM paused (platform
 * seam), then a wait until no request of its is in flight on any ring
 * of its disks, read as xbdsh reads them (a read-only look at the ring
 * indices, src/blkback_sysfs.c), so that what is read afterwards is one
 * moment of the disk.  The pause is recorded in xenstore beside the
 * instance that made it, so that the cleanup of a killed process undoes
 * that pause and never somebody else's.
 */
#include "xbd/blkback_sysfs.h"
#include "xbd/common.h"
#include "xbd/imaging.h"
#include "xbd/util.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define PAUSE_POLL_US 2000

static void utc(char *buf, size_t len)
{
	time_t t = time(NULL);
	struct tm tm;

	gmtime_r(&t, &tm);
	strftime(buf, len, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static void note(char *buf, size_t len, const char *fmt, const char *vdev,
		 const char *why)
{
	size_t l = strlen(buf);

	if (l + 1 < len)
		snprintf(buf + l, len - l, "%s", l ? "; " : "");
	l = strlen(buf);
	if (l + 1 < len)
		snprintf(buf + l, len - l, fmt, vdev, why);
}

/* 1 when no ring of the VM's disks that we can see has a request in
 * flight, 0 when one has (busy says which), or -errno.  unchecked gets
 * the disks whose rings cannot be seen, and why. */
static int rings_idle(struct xbd_platform *p, uint16_t domid, struct xbd_vm_pause *ps,
		      char *busy, size_t busy_len)
{
	uint16_t self = xbd_platform_self_domid(p);
	struct xbd_ring_peek *pk = malloc(sizeof(*pk));
	struct xbd_vbd *v = NULL;
	unsigned n = 0, i, q;
	int err, idle = 1;

	if (!pk)
		return -ENOMEM;
	err = xbd_vbd_list(p, domid, &v, &n);
	if (err) {
		free(pk);
		return err;
	}
	ps->unchecked[0] = busy[0] = '\0';
	ps->rings_checked = 0;
	for (i = 0; i < n; i++) {
		if (!v[i].nr_ring_refs)
			continue; /* not connected: nothing can be in flight */
		if (v[i].backend_inconsistent) {
			note(ps->unchecked, sizeof(ps->unchecked), "%s (%s)", v[i].vdev,
			     "its backend node is not its backend's");
			continue;
		}
		if (v[i].backend_domid != self) {
			/* another domain's backend: its grants are not ours */
			note(ps->unchecked, sizeof(ps->unchecked), "%s (%s)", v[i].vdev,
			     "backend in another domain");
			continue;
		}
		for (q = 0; q < v[i].nr_queues; q++) {
			char why[64];

			err = xbd_vbd_select_queue(p, &v[i], q);
			if (!err)
				err = xbd_vbd_ring_peek(p, &v[i], pk);
			if (err == -ENODATA)
				continue;
			if (err) {
				snprintf(why, sizeof(why), "ring %u: %s", q, xbd_strerror(err));
				note(ps->unchecked, sizeof(ps->unchecked), "%s (%s)",
				     v[i].vdev, why);
				continue;
			}
			ps->rings_checked++;
			if (pk->inconsistent) {
				/* the backend shuts such a ring down: nothing
				 * moves on it, but nothing proves it idle */
				snprintf(why, sizeof(why), "ring %u: indices make no sense", q);
				note(ps->unchecked, sizeof(ps->unchecked), "%s (%s)",
				     v[i].vdev, why);
			} else if (pk->used) {
				snprintf(why, sizeof(why), "%u requests on ring %u", pk->used, q);
				note(busy, busy_len, "%s: %s", v[i].vdev, why);
				idle = 0;
			}
		}
	}
	free(v);
	free(pk);
	return idle;
}

int xbd_vm_pause(struct xbd_platform *p, const char *vm, uint16_t domid,
		 const char *record_dir, unsigned timeout_ms,
		 int (*stop)(void *arg), void *arg, struct xbd_vm_pause *ps)
{
	unsigned long long deadline;
	char busy[256] = "";
	int err, r;

	memset(ps, 0, sizeof(*ps));
	ps->domid = domid;
	r = xbd_domain_paused(p, domid);
	ps->was_paused = r == 1;
	err = xbd_domain_pause(p, domid);
	if (err) {
		xbd_err("%s: cannot pause it: %s", vm, err == -EOPNOTSUPP ?
			"the platform cannot pause domains" : xbd_strerror(err));
		return err;
	}
	ps->paused = true;
	/* before anything slow: a kill -9 from here on leaves a record */
	if (record_dir && !xbd_vm_pause_record(p, record_dir, vm, domid))
		snprintf(ps->record_dir, sizeof(ps->record_dir), "%s", record_dir);
	ps->pause_ns = xbd_now_ns();
	utc(ps->paused_utc, sizeof(ps->paused_utc));
	deadline = ps->pause_ns + (unsigned long long)timeout_ms * 1000000ull;
	for (;;) {
		r = rings_idle(p, domid, ps, busy, sizeof(busy));
		if (r == 1)
			break;
		if (r < 0) {
			xbd_err("%s: paused, but its disks cannot be listed: %s", vm,
				xbd_strerror(r));
			err = r;
			goto fail;
		}
		if (stop && stop(arg)) {
			err = -EINTR;
			goto fail;
		}
		if (xbd_now_ns() >= deadline) {
			xbd_err("%s: paused, but requests are still in flight after %u ms (%s); unpaused again",
				vm, timeout_ms, busy);
			err = -ETIMEDOUT;
			goto fail;
		}
		usleep(PAUSE_POLL_US);
	}
	ps->idle_ns = xbd_now_ns();
	if (ps->unchecked[0])
		xbd_err("%s: warning: paused, but cannot see whether these disks are idle: %s",
			vm, ps->unchecked);
	return 0;
fail:
	xbd_vm_unpause(p, vm, ps);
	return err;
}

int xbd_vm_unpause(struct xbd_platform *p, const char *vm, struct xbd_vm_pause *ps)
{
	int err;

	if (!ps->paused)
		return 0;
	ps->paused = false;
	if (ps->record_dir[0])
		xbd_vm_pause_unrecord(p, ps->record_dir);
	ps->record_dir[0] = '\0';
	ps->unpause_ns = xbd_now_ns();
	utc(ps->unpaused_utc, sizeof(ps->unpaused_utc));
	err = xbd_domain_unpause(p, ps->domid);
	if (err == -ESRCH)
		return 0; /* gone meanwhile: nothing to run again */
	if (err)
		xbd_err("%s: cannot unpause it: %s; `xl unpause %s` does", vm,
			xbd_strerror(err), vm);
	return err;
}

int xbd_vm_pause_record(struct xbd_platform *p, const char *dir, const char *vm,
			uint16_t domid)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/" XBD_PAUSED_NODE, dir);
	return xbd_xs_printf(p, XBD_XS_NO_TXN, path, "%u %s", domid, vm);
}

void xbd_vm_pause_unrecord(struct xbd_platform *p, const char *dir)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/" XBD_PAUSED_NODE, dir);
	xbd_xs_rm(p, XBD_XS_NO_TXN, path);
}

int xbd_vm_pause_undo_recorded(struct xbd_platform *p, const char *dir)
{
	char path[256], *v = NULL, *name;
	unsigned long long domid;
	uint16_t now;
	int err;

	snprintf(path, sizeof(path), "%s/" XBD_PAUSED_NODE, dir);
	err = xbd_xs_read_str(p, path, &v);
	if (err)
		return err == -ENOENT ? 0 : err;
	/* the record goes first: a second cleanup never unpauses twice */
	xbd_xs_rm(p, XBD_XS_NO_TXN, path);
	/* "DOMID NAME" */
	name = strchr(v, ' ');
	if (name)
		*name++ = '\0';
	if (!name || !*name || xbd_parse_uint(v, XBD_DOMID_SELF - 1, &domid)) {
		free(v);
		return -EINVAL;
	}
	/* the same domain still (a domid or a name may have been reused) */
	if (xbd_domain_lookup(p, name, &now) || now != domid) {
		free(v);
		return 0;
	}
	err = xbd_domain_unpause(p, (uint16_t)domid);
	if (!err)
		xbd_err("%s: unpaused: the pause of a killed xbd process is undone", name);
	else if (err != -ESRCH)
		xbd_err("%s: cannot unpause it: %s", name, xbd_strerror(err));
	free(v);
	return err == -ESRCH ? 0 : err ? err : 1;
}

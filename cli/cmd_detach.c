/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xbd detach, both forms, in one place:
 *  - DIR: stops the `xbd attach` whose records (cli/cmd_attach.c) name
 *    DIR, waits for it, removes what a killed one left, unmounts DIR;
 *    like umount it refuses while DIR is in use (--lazy, --force), and
 *    it unmounts only the mount the records name (by device number);
 *  - VM VDEV: unplugs a disk `xbd serve` serves, as a toolstack does
 *    (online = 0, state Closing), waits for the serving process to
 *    remove its nodes, and removes them itself when it was killed.
 */
#include "xbd/backend.h"
#include "xbd/cli.h"
#include "xbd/common.h"
#include "xbd/mounts.h"
#include "xbd/toolstack.h"
#include "xbd/xenbus.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define DETACH_WAIT_MS 30000    /* for an attach process to finish */
#define DETACH_MARGIN_MS 5000   /* beyond the server's close timeout */
#define DETACH_POLL_MS 50
#define DETACH_DEAD_FE_MS 5000 /* for a guest to close a dead server's disk */
#define DETACH_LAZY_GRACE_MS 2000 /* --lazy: for an unused mount to go */
#define BE_PATH_MAX 160

static void detach_usage(void)
{
	printf("usage: xbd detach DIR [--lazy | --force]\n"
	       "       xbd detach VM VDEV [--timeout SECS]\n"
	       "With DIR: stops the `xbd attach` that shows disks in DIR and unmounts it.\n"
	       "Like umount, it refuses while a process has a file in DIR open, works\n"
	       "in DIR, or a loop device is backed by one of its files, and names them:\n"
	       "  -l, --lazy    take DIR off now; the disks go when the last user is done\n"
	       "  --force       end it now: the users' I/O fails with EIO\n"
	       "With VM VDEV: unplugs disk VDEV that `xbd serve` serves to VM; the VM\n"
	       "gets -t, --timeout SECS (default %u) to let go of it.\n",
	       XBD_BACKEND_DEFAULT_CLOSE_TIMEOUT_MS / 1000);
}

enum detach_mode {
	DETACH_UNLESS_BUSY, /* as umount */
	DETACH_LAZY,        /* as umount -l; SIGTERM to the attach process */
	DETACH_FORCE,       /* SIGUSR1: the users' I/O fails */
};

/* The mount on top of dir is still the one the records name. */
static bool records_mount_on_top(const char *dir, const struct xbd_attach_record *e,
				 unsigned n)
{
	struct xbd_mount m;
	char dev[24];
	unsigned i;

	if (xbd_mount_at(dir, &m) || !xbd_mount_is_xbd(&m))
		return false;
	xbd_mount_dev_str(&m, dev, sizeof(dev));
	for (i = 0; i < n; i++)
		if (!strcmp(e[i].mount_dev, dev))
			return true;
	return false;
}

/* DIR has no record of an attach: only a dead xbd mount is taken off
 * (nobody serves it); anything else is said and left alone. */
static int detach_unrecorded(const char *dir)
{
	struct xbd_mount m;
	int err;

	if (xbd_mount_at(dir, &m)) {
		xbd_err("%s: nothing is attached there", dir);
		return 1;
	}
	if (xbd_mount_dead(dir)) {
		err = xbd_umount_lazy(dir);
		if (err) {
			xbd_err("%s: cannot unmount the dead xbd mount: %s", dir,
				xbd_strerror(err));
			return 1;
		}
		xbd_err("%s: removed a dead xbd mount that no record named", dir);
		return 0;
	}
	if (xbd_mount_is_xbd(&m))
		xbd_err("%s: not an xbd attach (%s is xbd serve's: `xbd detach VM VDEV` unplugs it); nothing done",
			dir, m.source);
	else
		xbd_err("%s: nothing is attached there (the %s mount from %s is not xbd's; left alone)",
			dir, m.fstype, m.source);
	return 1;
}

/* `xbd detach DIR`: the attach process takes everything away itself;
 * what a killed one left behind is removed here. */
static int detach_dir(const char *arg, enum detach_mode mode)
{
	unsigned long long deadline;
	struct xbd_attach_record *e = NULL;
	struct xbd_platform *p;
	char dir[PATH_MAX], users[1024];
	pid_t pids[64];
	unsigned n = 0, i, npids = 0, nusers;
	unsigned long long off_since;
	bool any_alive, off_dir, detaching = false;
	int err, rc = 1;

	if (!realpath(arg, dir)) {
		xbd_err("%s: %s", arg, strerror(errno));
		return 1;
	}
	if (xbd_cli_open_platform(&p))
		return 1;
	err = xbd_attach_records(p, dir, &e, &n);
	if (err) {
		xbd_err("cannot read %s: %s", XBD_ATTACH_FE_DIR, xbd_strerror(err));
		goto out_platform;
	}
	if (n == 0) {
		rc = detach_unrecorded(dir);
		goto out;
	}
	for (i = 0; i < n; i++) {
		if (!xbd_proc_alive(&e[i].proc))
			continue;
		detaching |= e[i].detaching;
		if (npids < XBD_ARRAY_SIZE(pids) &&
		    (!npids || pids[npids - 1] != e[i].proc.pid))
			pids[npids++] = e[i].proc.pid;
	}
	nusers = xbd_dir_users(dir, pids, npids, users, sizeof(users));
	if (npids && detaching && mode != DETACH_FORCE) {
		xbd_err("%s: already detaching: xbd attach (pid %ld) goes when its last user closes; --force ends it now",
			dir, (long)pids[0]);
		rc = mode == DETACH_LAZY ? 0 : 1;
		goto out;
	}
	if (npids && nusers && mode == DETACH_UNLESS_BUSY) {
		xbd_err("%s: busy: %s (--lazy detaches once they are done, --force makes their I/O fail)",
			dir, users);
		goto out;
	}
	if (npids && nusers && mode == DETACH_FORCE)
		xbd_err("%s: forced: the I/O of what used it fails from now on: %s", dir,
			users);
	/* the attach process takes everything away itself */
	for (i = 0; i < npids; i++)
		kill(pids[i], mode == DETACH_FORCE ? SIGUSR1 : SIGTERM);
	/* lazily, the command is done once the mount is off DIR (and the
	 * process had a moment to finish when nothing holds it) */
	deadline = xbd_now_ns() + DETACH_WAIT_MS * 1000000ull;
	off_since = 0;
	for (;;) {
		unsigned long long now = xbd_now_ns();

		any_alive = false;
		for (i = 0; i < n; i++)
			any_alive |= xbd_proc_alive(&e[i].proc);
		off_dir = !records_mount_on_top(dir, e, n);
		if (off_dir && !off_since)
			off_since = now;
		if (!any_alive || now >= deadline ||
		    (mode == DETACH_LAZY && off_since &&
		     now - off_since >= DETACH_LAZY_GRACE_MS * 1000000ull))
			break;
		usleep(20000);
	}
	if (any_alive && off_dir && mode != DETACH_FORCE) {
		/* someone still uses it (for the default mode, a user came
		 * after the check above): nothing is lost, the disks stay
		 * until it is done */
		if (mode == DETACH_LAZY)
			xbd_err("%s: detached lazily; xbd attach (pid %ld) goes when its last user closes",
				dir, (long)pids[0]);
		else
			xbd_err("%s: became busy while detaching; detached lazily, xbd attach (pid %ld) goes when its last user closes",
				dir, (long)pids[0]);
		rc = mode == DETACH_LAZY ? 0 : 1;
		goto out;
	}
	if (any_alive) {
		xbd_err("%s: the attach process did not finish in %d s", dir,
			DETACH_WAIT_MS / 1000);
		goto out;
	}
	/* a killed attach leaves its nodes and its mount behind */
	err = xbd_attach_remove_dead(p, dir, e, n);
	if (err < 0) {
		xbd_err("%s: cannot unmount: %s", dir, xbd_strerror(err));
		goto out;
	}
	if (!npids)
		xbd_err("%s: removed what xbd attach (pid %ld), which was killed, left: its device nodes%s",
			dir, (long)e[0].proc.pid, err ? " and its dead mount" : "");
	rc = 0;
out:
	free(e);
out_platform:
	xbd_platform_close(p);
	return rc;
}

int xbd_detach_dir(const char *dir)
{
	return detach_dir(dir, DETACH_UNLESS_BUSY);
}

/* Whether the process serving be_path still runs; a directory that
 * names none is not ours to judge, so it is left to close itself. */
static bool serving_process_alive(struct xbd_platform *p, const char *be_path)
{
	struct xbd_proc proc;

	if (xbd_xs_read_proc(p, be_path, &proc))
		return true;
	return xbd_proc_alive(&proc);
}

static int request_close_txn(struct xbd_platform *p, xbd_xs_txn t, void *arg);

/* A killed server walks no handshake: it is walked here, as a toolstack
 * unplugs a disk (Closing, then the guest's blkfront lets go: Closed,
 * for at most DETACH_DEAD_FE_MS, since a guest may never answer), and
 * its nodes, and the frontend's they name, are removed.  Removing them
 * under a frontend still connected would have it close later, onto the
 * nodes of the next serve of the same disk. */
static int remove_dead_backend(struct xbd_platform *p, const char *be_path,
			       uint16_t fe_domid)
{
	char path[BE_PATH_MAX + 16], *fe_path = NULL;
	int err;

	snprintf(path, sizeof(path), "%s/frontend", be_path);
	if (!xbd_xs_read_str(p, path, &fe_path)) {
		if (!strncmp(fe_path, "/local/domain/", 14)) {
			uint64_t deadline = xbd_now_ns() + DETACH_DEAD_FE_MS * 1000000ull;
			enum xenbus_state st;

			if (xbd_xs_transaction(p, request_close_txn, (void *)be_path) == 0)
				while (!xbd_xenbus_read_state(p, fe_path, &st) &&
				       st != XenbusStateClosed && st != XenbusStateInitialising &&
				       xbd_now_ns() < deadline)
					usleep(DETACH_POLL_MS * 1000);
			xbd_xs_rm(p, XBD_XS_NO_TXN, fe_path);
		}
		free(fe_path);
	}
	err = xbd_xs_rm(p, XBD_XS_NO_TXN, be_path);
	snprintf(path, sizeof(path), "/local/domain/%u/backend/%s/%u",
		 xbd_platform_self_domid(p), XBD_BACKEND_TYPE, fe_domid);
	xbd_xs_rm_if_empty(p, path);
	snprintf(path, sizeof(path), "/local/domain/%u/backend/%s",
		 xbd_platform_self_domid(p), XBD_BACKEND_TYPE);
	xbd_xs_rm_if_empty(p, path);
	return err == -ENOENT ? 0 : err;
}

int xbd_serve_remove_dead(struct xbd_platform *p, uint16_t fe_domid, uint32_t devid,
			  struct xbd_proc *was)
{
	char be_path[BE_PATH_MAX];
	int err;

	xbd_backend_path(be_path, sizeof(be_path), xbd_platform_self_domid(p),
			 XBD_BACKEND_TYPE, fe_domid, devid);
	/* a directory naming no process is not known to be dead */
	if (xbd_xs_read_proc(p, be_path, was) || xbd_proc_alive(was))
		return 0;
	err = remove_dead_backend(p, be_path, fe_domid);
	return err ? err : 1;
}

/* online = 0 and state Closing, as a toolstack unplugs a disk; 1 when
 * the device went away meanwhile. */
static int request_close_txn(struct xbd_platform *p, xbd_xs_txn t, void *arg)
{
	const char *be_path = arg;
	char path[BE_PATH_MAX + 16];
	int err;

	if (!xbd_xs_exists(p, t, be_path))
		return 1;
	snprintf(path, sizeof(path), "%s/online", be_path);
	err = xbd_xs_write(p, t, path, "0", 1);
	if (err)
		return err;
	snprintf(path, sizeof(path), "%s/state", be_path);
	return xbd_xs_printf(p, t, path, "%d", XenbusStateClosing);
}

/* Asks the process serving backend/xbd/<fe>/<devid> to close it and
 * waits up to timeout_ms for its nodes to go; -ENOENT: no such device,
 * -ETIMEDOUT: still there. */
static int detach_backend(struct xbd_platform *p, uint16_t fe_domid,
			  uint32_t devid, unsigned timeout_ms)
{
	uint64_t deadline = xbd_now_ns() + (uint64_t)timeout_ms * 1000000u;
	char be_path[BE_PATH_MAX];
	int err;

	xbd_backend_path(be_path, sizeof(be_path), xbd_platform_self_domid(p),
			 XBD_BACKEND_TYPE, fe_domid, devid);
	if (!xbd_xs_exists(p, XBD_XS_NO_TXN, be_path))
		return -ENOENT;
	if (!serving_process_alive(p, be_path))
		return remove_dead_backend(p, be_path, fe_domid);
	err = xbd_xs_transaction(p, request_close_txn, be_path);
	if (err)
		return err > 0 ? 0 : err;
	/* the serving process removes the nodes once closed */
	while (xbd_now_ns() < deadline) {
		if (!xbd_xs_exists(p, XBD_XS_NO_TXN, be_path))
			return 0;
		if (!serving_process_alive(p, be_path))
			return remove_dead_backend(p, be_path, fe_domid);
		usleep(DETACH_POLL_MS * 1000);
	}
	return -ETIMEDOUT;
}

int xbd_detach_all_served(struct xbd_platform *p)
{
	unsigned timeout_ms = XBD_BACKEND_DEFAULT_CLOSE_TIMEOUT_MS + DETACH_MARGIN_MS;
	uint32_t *fes = NULL, *devids;
	unsigned nfe = 0, ndev, i, j;
	char dir[BE_PATH_MAX];
	int rc = 0, err;

	snprintf(dir, sizeof(dir), "/local/domain/%u/backend/%s",
		 xbd_platform_self_domid(p), XBD_BACKEND_TYPE);
	if (xbd_xs_directory_ids(p, dir, 0x7fef, &fes, &nfe))
		return 0; /* nothing served */
	for (i = 0; i < nfe; i++) {
		snprintf(dir, sizeof(dir), "/local/domain/%u/backend/%s/%u",
			 xbd_platform_self_domid(p), XBD_BACKEND_TYPE, fes[i]);
		if (xbd_xs_directory_ids(p, dir, UINT32_MAX, &devids, &ndev))
			continue;
		for (j = 0; j < ndev; j++) {
			err = detach_backend(p, (uint16_t)fes[i], devids[j], timeout_ms);
			if (err && err != -ENOENT) {
				xbd_err("%s/%u: the disk xbd serve serves could not be unplugged: %s",
					dir, devids[j], xbd_strerror(err));
				rc = 1;
			}
		}
		free(devids);
	}
	free(fes);
	return rc;
}

/* `xbd detach VM VDEV` */
static int detach_served(const char *vm, const char *vdev, unsigned timeout_s)
{
	struct xbd_platform *p;
	uint32_t devid;
	uint16_t domid;
	int err;

	if (xbd_vdev_to_devid(vdev, &devid)) {
		xbd_err("detach: VDEV: expected a disk name such as xvdb, got '%s'",
			vdev);
		return XBD_EXIT_USAGE;
	}
	if (xbd_cli_open_platform(&p))
		return 1;
	err = xbd_domain_lookup(p, vm, &domid);
	if (err) {
		xbd_err("%s: no such domain", vm);
		xbd_platform_close(p);
		return 1;
	}
	/* the server waits close_timeout for the guest; we wait a bit more */
	err = detach_backend(p, domid, devid, timeout_s * 1000 + DETACH_MARGIN_MS);
	if (err == -ENOENT)
		xbd_err("%s: %s: no disk served by xbd", vm, vdev);
	else if (err == -ETIMEDOUT)
		xbd_err("%s: %s: still attached after %u s (is the serving process stuck?)",
			vm, vdev, timeout_s + DETACH_MARGIN_MS / 1000);
	else if (err)
		xbd_err("%s: %s: %s", vm, vdev, xbd_strerror(err));
	xbd_platform_close(p);
	return err ? 1 : 0;
}

/* `xbd detach DIR` or `xbd detach VM VDEV`: told apart by the number
 * of arguments. */
static int cmd_detach_run(int argc, char **argv)
{
	enum { O_FORCE = 256 };
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "lazy", no_argument, NULL, 'l' },
		{ "force", no_argument, NULL, O_FORCE },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	unsigned timeout_s = XBD_BACKEND_DEFAULT_CLOSE_TIMEOUT_MS / 1000;
	enum detach_mode mode = DETACH_UNLESS_BUSY;
	bool have_timeout = false, have_mode = false;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hlt:", opts, NULL)) != -1) {
		switch (c) {
		case 'l':
		case O_FORCE:
			if (have_mode && mode != (c == 'l' ? DETACH_LAZY : DETACH_FORCE)) {
				xbd_err("detach: --lazy and --force exclude each other");
				return XBD_EXIT_USAGE;
			}
			mode = c == 'l' ? DETACH_LAZY : DETACH_FORCE;
			have_mode = true;
			break;
		case 't':
			if (xbd_cli_parse_uint_opt("detach", "--timeout", optarg, 1, 3600,
					   &timeout_s))
				return XBD_EXIT_USAGE;
			have_timeout = true;
			break;
		case 'h':
			detach_usage();
			return 0;
		default:
			xbd_opt_err("detach", c, argv, opts);
			return XBD_EXIT_USAGE;
		}
	}
	switch (argc - optind) {
	case 0:
		xbd_usage_err("detach", "missing DIR or VM VDEV");
		return XBD_EXIT_USAGE;
	case 1:
		if (have_timeout) {
			xbd_err("detach: --timeout is for detach VM VDEV");
			return XBD_EXIT_USAGE;
		}
		return detach_dir(argv[optind], mode);
	case 2:
		if (have_mode) {
			xbd_err("detach: --lazy and --force are for detach DIR");
			return XBD_EXIT_USAGE;
		}
		return detach_served(argv[optind], argv[optind + 1], timeout_s);
	default:
		xbd_usage_err("detach", "unexpected argument '%s'", argv[optind + 2]);
		return XBD_EXIT_USAGE;
	}
}

const struct xbd_cmd xbd_cmd_detach = {
	.name = "detach",
	.usage = "detach DIR [--lazy|--force] | VM VDEV",
	.summary = "undo `xbd attach` (DIR), or unplug a disk xbd serves (VM VDEV)",
	.run = cmd_detach_run,
};

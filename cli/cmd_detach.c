/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xbd detach, both forms, in one place:
 *  - DIR: stops the `xbd attach` whose records (cli/cmd_attach.c) name
 *    DIR, waits for it, removes what a killed one left, unmounts DIR;
 *  - VM VDEV: unplugs a disk `xbd serve` serves, as a toolstack does
 *    (online = 0, state Closing), waits for the serving process to
 *    remove its nodes, and removes them itself when it was killed.
 */
#include "xbd/backend.h"
#include "xbd/cli.h"
#include "xbd/common.h"
#include "xbd/toolstack.h"
#include "xbd/xenbus.h"

#include <errno.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/wait.h>
#include <unistd.h>

#define DETACH_WAIT_MS 30000    /* for an attach process to finish */
#define DETACH_MARGIN_MS 5000   /* beyond the server's close timeout */
#define DETACH_POLL_MS 50
#define BE_PATH_MAX 160

static void detach_usage(void)
{
	printf("usage: xbd detach DIR\n"
	       "       xbd detach VM VDEV [--timeout SECS]\n"
	       "With DIR: stops the `xbd attach` that shows disks in DIR and unmounts it.\n"
	       "With VM VDEV: unplugs disk VDEV that `xbd serve` serves to VM; the VM\n"
	       "gets -t, --timeout SECS (default %u) to let go of it.\n",
	       XBD_BACKEND_DEFAULT_CLOSE_TIMEOUT_MS / 1000);
}

static bool is_mountpoint(const char *dir)
{
	char line[4096];
	bool found = false;
	FILE *f = fopen("/proc/self/mountinfo", "re");

	if (!f)
		return false;
	while (!found && fgets(line, sizeof(line), f)) {
		char mnt[PATH_MAX];

		/* id parent major:minor root mountpoint ... (octal escapes
		 * in names; our directories have none worth decoding) */
		if (sscanf(line, "%*s %*s %*s %*s %4095s", mnt) == 1 && !strcmp(mnt, dir))
			found = true;
	}
	fclose(f);
	return found;
}

/* `xbd detach DIR`: the attach process takes everything away itself;
 * what a killed one left behind is removed here. */
static int detach_dir(const char *arg)
{
	unsigned long long deadline;
	struct xbd_attach_record *e = NULL;
	struct xbd_platform *p;
	char dir[PATH_MAX];
	unsigned n = 0, i;
	bool any_alive;
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
	if (n == 0 && !is_mountpoint(dir)) {
		xbd_err("%s: nothing is attached there", dir);
		goto out;
	}
	/* the attach process takes everything away itself */
	for (i = 0; i < n; i++)
		if (xbd_proc_alive(&e[i].proc))
			kill(e[i].proc.pid, SIGTERM);
	deadline = xbd_now_ns() + DETACH_WAIT_MS * 1000000ull;
	do {
		any_alive = false;
		for (i = 0; i < n; i++)
			any_alive |= xbd_proc_alive(&e[i].proc);
		if (any_alive)
			usleep(20000);
	} while (any_alive && xbd_now_ns() < deadline);
	if (any_alive) {
		xbd_err("%s: the attach process did not finish in %d s", dir,
			DETACH_WAIT_MS / 1000);
		goto out;
	}
	/* a killed attach leaves its nodes and its mount behind */
	for (i = 0; i < n; i++)
		if (xbd_xs_exists(p, XBD_XS_NO_TXN, e[i].fe_path))
			xbd_attach_remove_record(p, e[i].fe_path);
	xbd_xs_rm_if_empty(p, "/local/domain/0/device");
	if (is_mountpoint(dir) && umount2(dir, MNT_DETACH)) {
		pid_t pid = fork();
		int status = 1;

		/* not root: the FUSE helper may unmount what we mounted */
		if (pid == 0) {
			execlp("fusermount3", "fusermount3", "-u", "-z", dir, (char *)NULL);
			_exit(127);
		}
		if (pid > 0)
			waitpid(pid, &status, 0);
		if (status) {
			xbd_err("%s: cannot unmount", dir);
			goto out;
		}
	}
	rc = 0;
out:
	free(e);
out_platform:
	xbd_platform_close(p);
	return rc;
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

/* A killed server walks no handshake: its nodes, and the frontend's
 * they name, are removed here. */
static int remove_dead_backend(struct xbd_platform *p, const char *be_path,
			       uint16_t fe_domid)
{
	const struct xbd_platform_ops *ops = xbd_platform_ops_of(p);
	char path[BE_PATH_MAX + 16], *fe_path = NULL;
	int err;

	snprintf(path, sizeof(path), "%s/frontend", be_path);
	if (!xbd_xs_read_str(p, path, &fe_path)) {
		if (!strncmp(fe_path, "/local/domain/", 14))
			ops->xs_rm(p, XBD_XS_NO_TXN, fe_path);
		free(fe_path);
	}
	err = ops->xs_rm(p, XBD_XS_NO_TXN, be_path);
	snprintf(path, sizeof(path), "/local/domain/%u/backend/%s/%u",
		 ops->self_domid(p), XBD_BACKEND_TYPE, fe_domid);
	xbd_xs_rm_if_empty(p, path);
	snprintf(path, sizeof(path), "/local/domain/%u/backend/%s",
		 ops->self_domid(p), XBD_BACKEND_TYPE);
	xbd_xs_rm_if_empty(p, path);
	return err == -ENOENT ? 0 : err;
}

/* online = 0 and state Closing, as a toolstack unplugs a disk; 1 when
 * the device went away meanwhile. */
static int request_close_txn(struct xbd_platform *p, xbd_xs_txn t, void *arg)
{
	const struct xbd_platform_ops *ops = xbd_platform_ops_of(p);
	const char *be_path = arg;
	char path[BE_PATH_MAX + 16];
	int err;

	if (!xbd_xs_exists(p, t, be_path))
		return 1;
	snprintf(path, sizeof(path), "%s/online", be_path);
	err = ops->xs_write(p, t, path, "0", 1);
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
	const struct xbd_platform_ops *ops = xbd_platform_ops_of(p);
	uint64_t deadline = xbd_now_ns() + (uint64_t)timeout_ms * 1000000u;
	char be_path[BE_PATH_MAX];
	int err;

	xbd_backend_path(be_path, sizeof(be_path), ops->self_domid(p),
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
	err = xbd_platform_ops_of(p)->domain_lookup(p, vm, &domid);
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
	static const struct option opts[] = {
		{ "timeout", required_argument, NULL, 't' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	unsigned timeout_s = XBD_BACKEND_DEFAULT_CLOSE_TIMEOUT_MS / 1000;
	bool have_timeout = false;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":ht:", opts, NULL)) != -1) {
		switch (c) {
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
		return detach_dir(argv[optind]);
	case 2:
		return detach_served(argv[optind], argv[optind + 1], timeout_s);
	default:
		xbd_usage_err("detach", "unexpected argument '%s'", argv[optind + 2]);
		return XBD_EXIT_USAGE;
	}
}

const struct xbd_cmd xbd_cmd_detach = {
	.name = "detach",
	.usage = "detach DIR | VM VDEV",
	.summary = "undo `xbd attach` (DIR), or unplug a disk xbd serves (VM VDEV)",
	.run = cmd_detach_run,
};

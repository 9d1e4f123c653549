/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xbd serve: a user-space backend that hot-plugs a disk into a running
 * VM (src/backend.c does the work); `xbd list` and `xbd detach` show and
 * end what it serves (cli/cmd_list.c, cli/cmd_detach.c).  Also `xbd sim
 * blkback`, the sim's stand-in for Linux blkback, reached through
 * xbd_cmd_sim_blkback.
 *
 * `xbd serve` goes to the background before doing anything
 * (cli/daemon.c): the parent exits 0 once the child reports the disk
 * connected, or with the child's status when it fails (its error line
 * is already printed).
 * With --foreground there is one process, which tells systemd (when
 * $NOTIFY_SOCKET is set) READY=1 once the VM has connected the disk and
 * STOPPING=1 when the disk starts going away.
 */
#include "cli/daemon.h"
#include "xbd/backend.h"
#include "xbd/cli.h"
#include "xbd/common.h"
#include "xbd/ctl.h"
#include "xbd/disk_users.h"
#include "xbd/fuse_export.h"
#include "xbd/image.h"
#include "xbd/mounts.h"
#include "xbd/stats.h"
#include "xbd/util.h"
#include "xbd/xenbus.h"
#include "src/sim/sim.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_CONNECT_TIMEOUT_S 30

static struct xbd_backend *signal_backend;
static volatile sig_atomic_t told_stopping;

/* systemd hears once that the disk is going (a signal, a detach, the VM
 * gone); async-signal-safe */
static void notify_stopping(void)
{
	if (!told_stopping) {
		told_stopping = 1;
		xbd_cli_notify("STOPPING=1");
	}
}

static void on_stop_signal(int sig)
{
	(void)sig;
	notify_stopping();
	if (signal_backend)
		xbd_backend_stop(signal_backend);
}

static void install_signals(struct xbd_backend *be)
{
	struct sigaction sa;

	memset(&sa, 0, sizeof(sa));
	signal_backend = be;
	sa.sa_handler = on_stop_signal;
	sigemptyset(&sa.sa_mask);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL); /* the terminal went away: clean up */
	signal(SIGPIPE, SIG_IGN);
}

/* Starts the control socket if it can; serving does not depend on it. */
static struct xbd_ctl *start_ctl(void)
{
	struct xbd_ctl *ctl = NULL;
	int err = xbd_ctl_start(&ctl);

	if (err) {
		xbd_debug("control socket in %s: %s (statistics unavailable)",
			  xbd_ctl_run_dir(), xbd_strerror(err));
		return NULL;
	}
	return ctl;
}

/* ------------------------------------------------------------------ */
/* xbd serve                                                          */
/* ------------------------------------------------------------------ */

struct serve_opts {
	const char *vm;
	const char *image;
	const char *vdev;
	const char *backend;
	const char *overlay;
	const char *mount;
	int log_fd;            /* --log, until the daemon takes it; -1: none */
	const char *errinject;
	bool read_only;
	bool share_rw;         /* --share-rw: another writer is allowed */
	bool nonempty;         /* --nonempty: mount over files in DIR */
	bool foreground;
	unsigned sector_size;
	unsigned timeout_s;
	uint32_t devid;
	struct xbd_backend_params params;
};

struct serve_state {
	const struct serve_opts *o;
	struct xbd_daemon *daemon; /* says ready once connected */
	bool connected;
	bool failed;
	struct xbd_fuse *fuse;
	bool fuse_disk;
};

static void serve_usage(void)
{
	printf("usage: xbd serve VM --image FILE [--vdev xvdb] [--backend raw|cow|null]\n"
	       "                 [--overlay FILE] [--read-only] [--sector-size 512|4096]\n"
	       "                 [--mount DIR] [--foreground | [--timeout SECS] [--log FILE]]\n"
	       "                 [--max-queues N] [--max-ring-order N] [--indirect-segments N]\n"
	       "                 [--no-persistent] [--persistent-grants N] [--workers N]\n"
	       "                 [--inject-errors SECTORS] [--no-stats] [--share-rw]\n"
	       "                 [--nonempty]\n"
	       "Hot-plugs FILE into VM as a disk (backend type xbd) and serves it.\n"
	       "Returns once the VM's blkfront has connected it (within --timeout,\n"
	       "default 30 s) and serves on in the background, its messages going to\n"
	       "--log FILE; --foreground serves in this process (for systemd, which\n"
	       "it tells when the disk is connected).  Short options: -i --image,\n"
	       "-b --backend, -r --read-only, -m --mount, -f --foreground.\n"
	       "With --backend null, --image gives the disk's size (e.g. 1G).\n"
	       "--inject-errors 100-199,300-300 fails I/O on those sectors (for tests).\n"
	       "--no-stats turns latency timing off (as XBD_STATS=off does); the\n"
	       "request and error counters are kept.\n"
	       "A writable image that another process, a loop device or any VM's\n"
	       "backend uses is refused; --share-rw serves it anyway.\n"
	       "--mount DIR must be an empty directory that is not a mount point\n"
	       "(--nonempty mounts over its files, hiding them).\n");
}

/* Connected: the parent may return to the shell, systemd hears READY
 * (with what we serve for systemctl status); we carry on alone. */
static void serve_ready(struct serve_state *st)
{
	char status[160];

	snprintf(status, sizeof(status), "serving %s to %s", st->o->vdev,
		 st->o->vm);
	xbd_daemon_ready(st->daemon, status);
}

/* For systemctl status, until then. */
static void notify_waiting(const struct serve_opts *o)
{
	char msg[160];

	snprintf(msg, sizeof(msg), "STATUS=waiting for %s to connect %s",
		 o->vm, o->vdev);
	xbd_cli_notify(msg);
}

static void serve_event(void *opaque, struct xbd_backend_dev *dev,
			enum xbd_backend_event ev, const char *msg)
{
	struct serve_state *st = opaque;

	switch (ev) {
	case XBD_BACKEND_CONNECTED:
		if (!st->connected) {
			st->connected = true;
			serve_ready(st);
		}
		break;
	case XBD_BACKEND_FAILED:
		/* before the first connection, a failure ends `xbd serve` */
		if (!st->connected) {
			st->failed = true;
			xbd_err("%s: %s: %s", xbd_backend_dev_vm(dev),
				xbd_backend_dev_vdev(dev), msg);
			xbd_backend_stop(signal_backend);
		}
		break;
	case XBD_BACKEND_REMOVED:
		notify_stopping();
		/* the image is closed after this: the export lets go first */
		if (st->fuse_disk) {
			xbd_fuse_remove_disk(st->fuse, xbd_backend_dev_vdev(dev));
			st->fuse_disk = false;
		}
		break;
	case XBD_BACKEND_CLOSED:
		/* detached, or the VM went: the disk goes now */
		notify_stopping();
		break;
	}
}

static int open_image(const struct serve_opts *o, char **abs_path,
		      struct xbd_image **img)
{
	struct xbd_image *base;
	int err;

	*abs_path = NULL;
	if (strcmp(o->backend, "null")) {
		*abs_path = realpath(o->image, NULL);
		if (!*abs_path) {
			err = -errno;
			xbd_err("%s: %s", o->image, xbd_strerror(err));
			return err;
		}
	} else if (!(*abs_path = strdup(o->image))) {
		return -ENOMEM;
	}
	err = xbd_image_open_by_name(o->backend, *abs_path, o->overlay,
				     o->read_only, o->share_rw ?
				     XBD_IMAGE_LOCK_SHARE_RW : XBD_IMAGE_LOCK_EXCL,
				     img);
	if (err)
		goto fail;
	if (o->errinject) {
		base = *img;
		err = xbd_image_open_errinject(base, o->errinject, img);
		if (err)
			goto fail;
	}
	if (o->sector_size == 4096) {
		if ((*img)->size % 4096) {
			xbd_err("%s: size %llu is not a multiple of 4096 bytes",
				o->image, (unsigned long long)(*img)->size);
			xbd_image_close(*img);
			err = -EINVAL;
			goto fail;
		}
		(*img)->sector_size = 4096;
	}
	return 0;
fail:
	free(*abs_path);
	*abs_path = NULL;
	return err;
}

/* Two writers of one disk corrupt it silently: a raw image served
 * writable must not be in use by any VM's backend (the VM's own running
 * disk too) nor back a loop device, unless --share-rw.  The image lock
 * cannot see these: the kernel's blkback and loop devices take none.
 * abs_path is the image's, as open_image resolved it. */
static int check_other_users(struct xbd_platform *p, const struct serve_opts *o,
			     const char *abs_path)
{
	char who[256];
	int r;

	if (o->read_only || o->share_rw || strcmp(o->backend, "raw"))
		return 0;
	r = xbd_disk_find_user(p, abs_path, who, sizeof(who));
	if (r < 0) {
		xbd_err("%s: cannot check who else uses it: %s; --share-rw to serve anyway",
			o->image, xbd_strerror(r));
		return r;
	}
	if (r > 0) {
		xbd_err("%s: in use by %s; --share-rw to serve anyway", o->image,
			who);
		return -EBUSY;
	}
	return 0;
}

/* The serving process (the child, or the only one with --foreground). */
static int serve_main(const struct serve_opts *o, struct xbd_daemon *daemon)
{
	struct serve_state st = { .o = o, .daemon = daemon };
	struct xbd_platform *p = NULL;
	struct xbd_backend *be = NULL;
	struct xbd_ctl *ctl = NULL;
	struct xbd_image *img = NULL;
	struct xbd_backend_disk disk;
	struct xbd_proc dead;
	char *abs_path = NULL;
	uint64_t deadline = 0;
	uint16_t domid;
	int err, rc = 1;

	/* --timeout covers the whole operation, the hot-plug included */
	if (!o->foreground)
		deadline = xbd_now_ns() + (uint64_t)o->timeout_s * 1000000000ull;
	if (xbd_cli_open_platform(&p))
		goto out;
	err = xbd_domain_lookup(p, o->vm, &domid);
	if (err) {
		if (err == -ENOENT)
			xbd_err("%s: no such domain", o->vm);
		else
			xbd_err("%s: cannot look the domain up: %s", o->vm,
				xbd_strerror(err));
		goto out;
	}
	/* a killed serve of the same disk left its nodes: ours, and dead */
	err = xbd_serve_remove_dead(p, domid, o->devid, &dead);
	if (err < 0) {
		xbd_err("%s: %s: cannot remove what a killed xbd serve left: %s", o->vm,
			o->vdev, xbd_strerror(err));
		goto out;
	}
	if (err)
		xbd_err("%s: %s: removed what xbd serve (pid %ld), which was killed, left",
			o->vm, o->vdev, (long)dead.pid);
	if (open_image(o, &abs_path, &img))
		goto out;
	if (check_other_users(p, o, abs_path)) {
		xbd_image_close(img);
		goto out;
	}
	if (o->mount) {
		char fsname[96];
		struct xbd_fuse_opts fo = { .read_only = true, .fsname = fsname };

		/* "xbd:VM:VDEV", which `xbd detach DIR` tells from an attach's */
		snprintf(fsname, sizeof(fsname), "%s:%s", o->vm, o->vdev);

		err = xbd_fuse_start(o->mount, &fo, &st.fuse);
		if (err) {
			xbd_err("%s: cannot mount: %s", o->mount, xbd_strerror(err));
			xbd_image_close(img);
			goto out;
		}
		err = xbd_fuse_add_disk(st.fuse, o->vdev, img,
					XBD_FUSE_DISK_READ_ONLY);
		if (err) {
			xbd_err("%s/%s: cannot export: %s", o->mount, o->vdev,
				xbd_strerror(err));
			xbd_image_close(img);
			goto out;
		}
		st.fuse_disk = true;
	}
	err = xbd_backend_create(p, &o->params, &be);
	if (err) {
		xbd_err("cannot start the backend: %s", xbd_strerror(err));
		if (st.fuse_disk)
			xbd_fuse_remove_disk(st.fuse, o->vdev);
		st.fuse_disk = false;
		xbd_image_close(img);
		goto out;
	}
	install_signals(be);
	ctl = start_ctl();
	xbd_backend_set_ctl(be, ctl);
	xbd_backend_set_event_fn(be, serve_event, &st);
	disk = (struct xbd_backend_disk){
		.vm_name = o->vm,
		.fe_domid = domid,
		.devid = o->devid,
		.image = img,
		.image_path = abs_path,
		.image_format = o->backend,
		.read_only = o->read_only,
		.mount = o->mount,
	};
	err = xbd_backend_hotplug(be, &disk, NULL);
	if (err) {
		if (st.fuse_disk)
			xbd_fuse_remove_disk(st.fuse, o->vdev);
		st.fuse_disk = false;
		goto out; /* the backend closes the image */
	}
	notify_waiting(o);
	err = xbd_backend_run(be, deadline);
	if (err)
		xbd_err("%s: %s: %s", o->vm, o->vdev, xbd_strerror(err));
	else if (!st.failed && (st.connected || o->foreground))
		rc = 0;
	if (!st.connected && !st.failed && !o->foreground)
		xbd_err("%s: %s: the disk went away before the VM connected it",
			o->vm, o->vdev);
out:
	xbd_backend_destroy(be);
	signal_backend = NULL;
	xbd_fuse_stop(st.fuse);
	xbd_ctl_stop(ctl);
	xbd_platform_close(p);
	free(abs_path);
	xbd_daemon_close(daemon);
	return rc;
}

/* The log of the background process, opened before the fork: a relative
 * name is the caller's, and a mistake is reported at once. */
static int open_serve_log(struct serve_opts *o, const char *log)
{
	if (!log)
		return 0;
	o->log_fd = open(log, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0600);
	if (o->log_fd < 0) {
		xbd_err("%s: %s", log, strerror(errno));
		return 1;
	}
	return 0;
}

/* 0: go on; -1: done (help printed); else the exit status. */
static int parse_serve(int argc, char **argv, struct serve_opts *o)
{
	enum { O_VDEV = 256, O_OVERLAY, O_SECTOR, O_TIMEOUT, O_LOG, O_QUEUES,
	       O_ORDER, O_INDIRECT, O_NOPERSIST, O_PGRANTS, O_WORKERS, O_ERRINJ,
	       O_NOSTATS, O_SHARE_RW, O_NONEMPTY };
	static const struct option opts[] = {
		{ "image", required_argument, NULL, 'i' },
		{ "vdev", required_argument, NULL, O_VDEV },
		{ "backend", required_argument, NULL, 'b' },
		{ "overlay", required_argument, NULL, O_OVERLAY },
		{ "read-only", no_argument, NULL, 'r' },
		{ "sector-size", required_argument, NULL, O_SECTOR },
		{ "mount", required_argument, NULL, 'm' },
		{ "foreground", no_argument, NULL, 'f' },
		{ "timeout", required_argument, NULL, O_TIMEOUT },
		{ "log", required_argument, NULL, O_LOG },
		{ "max-queues", required_argument, NULL, O_QUEUES },
		{ "max-ring-order", required_argument, NULL, O_ORDER },
		{ "indirect-segments", required_argument, NULL, O_INDIRECT },
		{ "no-persistent", no_argument, NULL, O_NOPERSIST },
		{ "persistent-grants", required_argument, NULL, O_PGRANTS },
		{ "workers", required_argument, NULL, O_WORKERS },
		{ "inject-errors", required_argument, NULL, O_ERRINJ },
		{ "no-stats", no_argument, NULL, O_NOSTATS },
		{ "share-rw", no_argument, NULL, O_SHARE_RW },
		{ "nonempty", no_argument, NULL, O_NONEMPTY },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	/* the numeric options: where each goes and its range */
	const struct {
		int opt;
		const char *name;
		unsigned min, max, *v;
	} nums[] = {
		{ O_TIMEOUT, "--timeout", 1, 86400, &o->timeout_s },
		{ O_QUEUES, "--max-queues", 1, 64, &o->params.max_queues },
		{ O_ORDER, "--max-ring-order", 0, 4, &o->params.max_ring_order },
		{ O_INDIRECT, "--indirect-segments", 0, 4096,
		  &o->params.max_indirect_segs },
		{ O_PGRANTS, "--persistent-grants", 0, 65536,
		  &o->params.persistent_max },
		{ O_WORKERS, "--workers", 1, 256, &o->params.workers },
	};
	const char *log = NULL;
	uint64_t null_size;
	bool have_timeout = false;
	char cwd[PATH_MAX], abs_mount[2 * PATH_MAX];
	const char *mount_abs;
	struct stat sb;
	size_t i;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:b:rm:fh", opts, NULL)) != -1) {
		for (i = 0; i < XBD_ARRAY_SIZE(nums); i++)
			if (c == nums[i].opt)
				break;
		if (i < XBD_ARRAY_SIZE(nums)) {
			if (xbd_cli_parse_uint_opt("serve", nums[i].name, optarg, nums[i].min,
					   nums[i].max, nums[i].v))
				return XBD_EXIT_USAGE;
			have_timeout |= c == O_TIMEOUT;
			continue;
		}
		switch (c) {
		case 'i': o->image = optarg; break;
		case O_VDEV: o->vdev = optarg; break;
		case 'b': o->backend = optarg; break;
		case O_OVERLAY: o->overlay = optarg; break;
		case 'r': o->read_only = true; break;
		case 'm': o->mount = optarg; break;
		case 'f': o->foreground = true; break;
		case O_LOG: log = optarg; break;
		case O_ERRINJ: o->errinject = optarg; break;
		case O_NOPERSIST: o->params.no_persistent = true; break;
		case O_NOSTATS: xbd_stats_default_off(); break;
		case O_SHARE_RW: o->share_rw = true; break;
		case O_NONEMPTY: o->nonempty = true; break;
		case O_SECTOR:
			if (strcmp(optarg, "512") && strcmp(optarg, "4096")) {
				xbd_usage_err("serve", "--sector-size: expected 512 or "
					      "4096, got '%s'", optarg);
				return XBD_EXIT_USAGE;
			}
			o->sector_size = (unsigned)atoi(optarg);
			break;
		case 'h':
			serve_usage();
			return -1;
		default:
			xbd_opt_err("serve", c, argv, opts);
			return XBD_EXIT_USAGE;
		}
	}
	if (optind == argc) {
		xbd_usage_err("serve", "missing VM");
		return XBD_EXIT_USAGE;
	}
	if (optind + 1 != argc) {
		xbd_usage_err("serve", "unexpected argument '%s'", argv[optind + 1]);
		return XBD_EXIT_USAGE;
	}
	o->vm = argv[optind];
	if (!o->image) {
		xbd_err("serve: --image FILE is required");
		return XBD_EXIT_USAGE;
	}
	if (strcmp(o->backend, "raw") && strcmp(o->backend, "cow") &&
	    strcmp(o->backend, "null")) {
		xbd_err("serve: --backend: expected raw, cow or null, got '%s'",
			o->backend);
		return XBD_EXIT_USAGE;
	}
	/* null's --image is its size: a bad one is a bad argument */
	if (!strcmp(o->backend, "null") &&
	    xbd_cli_parse_size_opt("serve", "--image", o->image, 512,
				   UINT64_MAX, &null_size))
		return XBD_EXIT_USAGE;
	if (o->overlay && strcmp(o->backend, "cow")) {
		xbd_err("serve: --overlay is for --backend cow");
		return XBD_EXIT_USAGE;
	}
	if (o->foreground && (log || have_timeout)) {
		xbd_err("serve: %s is for the background process (--foreground %s)",
			log ? "--log" : "--timeout",
			log ? "writes to stderr" : "waits as long as it takes");
		return XBD_EXIT_USAGE;
	}
	if (xbd_vdev_to_devid(o->vdev, &o->devid) || o->vdev[0] < 'a' ||
	    strlen(o->vdev) > 8) {
		xbd_err("serve: --vdev: expected a disk name such as xvdb, got '%s'",
			o->vdev);
		return XBD_EXIT_USAGE;
	}
	if (strcmp(o->backend, "null") && stat(o->image, &sb)) {
		xbd_err("%s: %s", o->image, strerror(errno));
		return 1;
	}
	/* DIR as mountinfo names it, absolute (realpath would fail on a
	 * dead mount there, which a killed serve --mount leaves) */
	mount_abs = o->mount;
	if (o->mount && o->mount[0] != '/' && getcwd(cwd, sizeof(cwd)) &&
	    snprintf(abs_mount, sizeof(abs_mount), "%s/%s", cwd, o->mount) <
		    (int)sizeof(abs_mount))
		mount_abs = abs_mount;
	if (o->mount && xbd_cli_mount_dir_usable(mount_abs, "serve --mount", o->nonempty))
		return 1;
	return open_serve_log(o, log);
}

static int cmd_serve_run(int argc, char **argv)
{
	struct serve_opts o = {
		.vdev = "xvdb",
		.backend = "raw",
		.log_fd = -1,
		.sector_size = 512,
		.timeout_s = DEFAULT_CONNECT_TIMEOUT_S,
	};
	struct xbd_daemon daemon;
	int err, status;

	xbd_backend_params_defaults(&o.params);
	err = parse_serve(argc, argv, &o);
	if (err)
		return err < 0 ? 0 : err;
	/* the log is the daemon's from here on */
	err = xbd_daemon_start(&daemon, "serve", o.foreground, o.log_fd, &status);
	o.log_fd = -1;
	if (err)
		return err > 0 ? status : 1;
	return serve_main(&o, &daemon);
}

const struct xbd_cmd xbd_cmd_serve = {
	.name = "serve",
	.usage = "serve VM --image FILE [--vdev xvdb] ...",
	.summary = "hot-plug a disk into a VM and serve it (user-space blkback)",
	.run = cmd_serve_run,
};

/* ------------------------------------------------------------------ */
/* xbd sim blkback                                                    */
/* ------------------------------------------------------------------ */

static int cmd_sim_blkback_run(int argc, char **argv)
{
	enum { O_DIR = 256, O_TYPE };
	static const struct option opts[] = {
		{ "dir", required_argument, NULL, O_DIR },
		{ "type", required_argument, NULL, O_TYPE },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	struct xbd_platform_config cfg = { .kind = XBD_PLATFORM_SIM };
	const char *type = "vbd";
	struct xbd_backend_params params;
	struct xbd_platform *p = NULL;
	struct xbd_backend *be = NULL;
	struct xbd_ctl *ctl;
	int c, err;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case O_DIR:
			cfg.sim_dir = optarg;
			break;
		case O_TYPE:
			/* tests serve a type of their own, beside the sim's */
			type = optarg;
			break;
		case 'h':
			printf("usage: xbd sim blkback [--dir DIR]\n"
			       "Serves every disk a toolstack creates under backend/vbd of the\n"
			       "simulated dom0, as Linux blkback does, until SIGTERM.\n");
			return 0;
		default:
			xbd_opt_err("sim blkback", c, argv, opts);
			return XBD_EXIT_USAGE;
		}
	}
	if (optind != argc) {
		xbd_usage_err("sim blkback", "takes no arguments");
		return XBD_EXIT_USAGE;
	}
	err = xbd_platform_open(&cfg, &p);
	if (err) {
		xbd_err("simulated Xen at %s: %s", cfg.sim_dir ? cfg.sim_dir
							    : xbd_sim_default_dir(),
			xbd_strerror(err));
		return 1;
	}
	xbd_backend_params_defaults(&params);
	err = xbd_backend_create(p, &params, &be);
	if (err) {
		xbd_err("sim blkback: %s", xbd_strerror(err));
		xbd_platform_close(p);
		return 1;
	}
	install_signals(be);
	ctl = start_ctl();
	xbd_backend_set_ctl(be, ctl);
	err = xbd_backend_watch_type(be, type);
	if (!err)
		err = xbd_backend_run(be, 0);
	xbd_backend_destroy(be);
	signal_backend = NULL;
	xbd_ctl_stop(ctl);
	xbd_platform_close(p);
	return err ? 1 : 0;
}

const struct xbd_cmd xbd_cmd_sim_blkback = {
	.name = "blkback",
	.usage = "sim blkback [--dir DIR]",
	.summary = "serve the sim's backend/vbd devices as Linux blkback does",
	.run = cmd_sim_blkback_run,
};

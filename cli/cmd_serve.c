/*
 * xbd serve, list, detach: a user-space backend that hot-plugs a disk into
 * a running VM (src/backend.c does the work), and the commands that show
 * and end what runs.  Also `xbd sim blkback`, the sim's stand-in for
 * Linux blkback, reached through xbd_cmd_sim_blkback.
 *
 * `xbd serve` forks before doing anything: the child serves, the parent
 * waits and exits 0 once the child reports the disk connected (or with
 * the child's status when it fails; its error line is already printed).
 * With --foreground there is one process, which tells systemd (when
 * $NOTIFY_SOCKET is set) READY=1 once the VM has connected the disk and
 * STOPPING=1 when the disk starts going away.
 */
#include "xbd/backend.h"
#include "xbd/cli.h"
#include "xbd/common.h"
#include "xbd/ctl.h"
#include "xbd/disk_users.h"
#include "xbd/fuse_export.h"
#include "xbd/image.h"
#include "xbd/stats.h"
#include "xbd/xenbus.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <json.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define DEFAULT_CONNECT_TIMEOUT_S 30
#define DETACH_MARGIN_MS 5000

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

/* "xbd: CMD: --opt: expected a number from MIN to MAX, got 'x'" */
static int parse_uint_opt(const char *cmd, const char *opt, const char *s,
			  unsigned min, unsigned max, unsigned *v)
{
	char *end;
	unsigned long n;

	errno = 0;
	n = strtoul(s, &end, 10);
	if (!*s || *end || errno || n < min || n > max || s[0] == '-') {
		xbd_err("%s: %s: expected a number from %u to %u, got '%s'", cmd,
			opt, min, max, s);
		return -EINVAL;
	}
	*v = (unsigned)n;
	return 0;
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
	int log_fd;            /* the daemon's stderr; -1: /dev/null */
	const char *errinject;
	bool read_only;
	bool share_rw;         /* --share-rw: another writer is allowed */
	bool foreground;
	unsigned sector_size;
	unsigned timeout_s;
	uint32_t devid;
	struct xbd_backend_params params;
};

struct serve_state {
	const struct serve_opts *o;
	int notify_fd;        /* to the waiting parent; -1 when none */
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
	       "backend uses is refused; --share-rw serves it anyway.\n");
}

static void tell_parent(struct serve_state *st, char c)
{
	if (st->notify_fd < 0)
		return;
	if (write(st->notify_fd, &c, 1) != 1)
		xbd_debug("cannot reach the waiting parent");
	close(st->notify_fd);
	st->notify_fd = -1;
}

/* Connected: the parent may return to the shell; we carry on alone. */
static void daemonize(struct serve_state *st)
{
	int fd;

	if (st->notify_fd < 0)
		return;
	setsid();
	/* the log was opened by the parent: a relative path is the caller's */
	fd = st->o->log_fd >= 0 ? st->o->log_fd : open("/dev/null", O_WRONLY | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 2);
		close(fd);
	}
	if (chdir("/"))
		xbd_debug("chdir /: %s", strerror(errno));
	fd = open("/dev/null", O_RDWR | O_CLOEXEC);
	if (fd >= 0) {
		dup2(fd, 0);
		dup2(fd, 1);
		close(fd);
	}
	tell_parent(st, 'C');
}

/* For systemctl status: waiting for the VM, or serving it (READY). */
static void notify_status(const struct serve_opts *o, bool ready)
{
	char msg[160];

	if (ready)
		snprintf(msg, sizeof(msg), "READY=1\nSTATUS=serving %s to %s",
			 o->vdev, o->vm);
	else
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
			daemonize(st);
			notify_status(st->o, true);
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
 * cannot see these: the kernel's blkback and loop devices take none. */
static int check_other_users(struct xbd_platform *p, const struct serve_opts *o)
{
	char who[256];
	int r;

	if (o->read_only || o->share_rw || strcmp(o->backend, "raw"))
		return 0;
	r = xbd_disk_find_user(p, o->image, who, sizeof(who));
	if (r < 0)
		xbd_err("%s: cannot check who else uses it: %s; --share-rw to serve anyway",
			o->image, xbd_strerror(r));
	else if (r > 0)
		xbd_err("%s: in use by %s; --share-rw to serve anyway", o->image,
			who);
	return r ? -EBUSY : 0;
}

/* The serving process (the child, or the only one with --foreground). */
static int serve_main(const struct serve_opts *o, int notify_fd)
{
	struct serve_state st = { .o = o, .notify_fd = notify_fd };
	struct xbd_platform *p = NULL;
	struct xbd_backend *be = NULL;
	struct xbd_ctl *ctl = NULL;
	struct xbd_image *img = NULL;
	struct xbd_backend_disk disk;
	char *abs_path = NULL;
	uint64_t deadline = 0;
	uint16_t domid;
	int err, rc = 1;

	if (xbd_cli_open_platform(&p))
		goto out;
	err = xbd_platform_ops_of(p)->domain_lookup(p, o->vm, &domid);
	if (err) {
		if (err == -ENOENT)
			xbd_err("%s: no such domain", o->vm);
		else
			xbd_err("%s: cannot look the domain up: %s", o->vm,
				xbd_strerror(err));
		goto out;
	}
	if (open_image(o, &abs_path, &img))
		goto out;
	if (check_other_users(p, o)) {
		xbd_image_close(img);
		goto out;
	}
	if (o->mount) {
		struct xbd_fuse_opts fo = { .read_only = true };

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
	if (!o->foreground)
		deadline = xbd_now_ns() + (uint64_t)o->timeout_s * 1000000000ull;
	notify_status(o, false);
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
	if (st.notify_fd >= 0)
		close(st.notify_fd);
	return rc;
}

/* Waits for the child to say "connected" or to exit. */
static int wait_for_child(pid_t pid, int fd)
{
	char c = 0;
	ssize_t n;
	int status;

	do
		n = read(fd, &c, 1);
	while (n < 0 && errno == EINTR);
	close(fd);
	if (n == 1 && c == 'C')
		return 0;
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return 1;
	if (WIFEXITED(status))
		return WEXITSTATUS(status) ? WEXITSTATUS(status) : 1;
	xbd_err("serving process died (signal %d)", WTERMSIG(status));
	return 1;
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
	       O_NOSTATS, O_SHARE_RW };
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
	bool have_timeout = false;
	struct stat sb;
	size_t i;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":i:b:rm:fh", opts, NULL)) != -1) {
		for (i = 0; i < XBD_ARRAY_SIZE(nums); i++)
			if (c == nums[i].opt)
				break;
		if (i < XBD_ARRAY_SIZE(nums)) {
			if (parse_uint_opt("serve", nums[i].name, optarg, nums[i].min,
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
		case O_SECTOR:
			if (strcmp(optarg, "512") && strcmp(optarg, "4096")) {
				xbd_err("serve: --sector-size: expected 512 or 4096, got '%s'",
					optarg);
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
	if (o->mount && (stat(o->mount, &sb) || !S_ISDIR(sb.st_mode))) {
		xbd_err("%s: not a directory", o->mount);
		return 1;
	}
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
	int err, fds[2];
	pid_t pid;

	xbd_backend_params_defaults(&o.params);
	err = parse_serve(argc, argv, &o);
	if (err)
		return err < 0 ? 0 : err;

	if (o.foreground) {
		xbd_cli_notify_init();
		return serve_main(&o, -1);
	}
	if (pipe2(fds, O_CLOEXEC)) {
		xbd_err("pipe: %s", strerror(errno));
		if (o.log_fd >= 0)
			close(o.log_fd);
		return 1;
	}
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		xbd_err("fork: %s", strerror(errno));
		return 1;
	}
	if (pid == 0) {
		close(fds[0]);
		exit(serve_main(&o, fds[1])); /* exit: leak checks run */
	}
	close(fds[1]);
	if (o.log_fd >= 0)
		close(o.log_fd);
	return wait_for_child(pid, fds[0]);
}

const struct xbd_cmd xbd_cmd_serve = {
	.name = "serve",
	.usage = "serve VM --image FILE [--vdev xvdb] ...",
	.summary = "hot-plug a disk into a VM and serve it (user-space blkback)",
	.run = cmd_serve_run,
};

/* ------------------------------------------------------------------ */
/* xbd list                                                           */
/* ------------------------------------------------------------------ */

/* Requests served so far, from the control socket of the process
 * serving backend_path (-1 when it does not answer). */
static long long ctl_requests(struct xbd_ctl_reply *replies, unsigned n,
			      const char *backend_path)
{
	unsigned i;

	for (i = 0; i < n; i++) {
		struct json_object *devs, *dev, *v, *reqs;
		size_t j;

		if (replies[i].err ||
		    !json_object_object_get_ex(replies[i].doc, "devices", &devs))
			continue;
		for (j = 0; j < json_object_array_length(devs); j++) {
			long long total = 0;

			dev = json_object_array_get_idx(devs, j);
			if (!json_object_object_get_ex(dev, "backend_path", &v) ||
			    strcmp(json_object_get_string(v), backend_path) ||
			    !json_object_object_get_ex(dev, "requests", &reqs))
				continue;
			json_object_object_foreach(reqs, key, val)
				if (strcmp(key, "indirect"))
					total += json_object_get_int64(val);
			return total;
		}
	}
	return -1;
}

/* dir/node (dir alone when node is NULL), or a copy of dflt. */
static char *read_or(struct xbd_platform *p, const char *dir, const char *node,
		     const char *dflt)
{
	char path[256], *v = NULL;

	snprintf(path, sizeof(path), "%s%s%s", dir, node ? "/" : "", node ? node : "");
	if (xbd_xs_read_str(p, path, &v))
		v = strdup(dflt);
	return v;
}

/* One disk of `xbd list`, as xenstore and its process tell it. */
struct list_row {
	char *vm, *state, *mode, *fmt, *pid, *params;
	const char *domid;
	char vdev[16];
	long long requests; /* -1: unknown */
};

static void list_print_text(const struct list_row *r, bool header)
{
	char reqs[24] = "-";
	unsigned long st = strtoul(r->state, NULL, 10);

	if (header)
		printf("%-12s %5s %-6s %-12s %-4s %-6s %7s %10s  %s\n", "VM",
		       "DOMID", "VDEV", "STATE", "MODE", "FORMAT", "PID",
		       "REQUESTS", "IMAGE");
	if (r->requests >= 0)
		snprintf(reqs, sizeof(reqs), "%lld", r->requests);
	printf("%-12s %5s %-6s %-12s %-4s %-6s %7s %10s  %s\n", r->vm, r->domid,
	       r->vdev, xbd_xenbus_state_name((enum xenbus_state)st), r->mode,
	       r->fmt, r->pid, reqs, r->params);
}

/* A number, or null when the node held none. */
static struct json_object *json_number_or_null(const char *s)
{
	char *end;
	long long v;

	errno = 0;
	v = strtoll(s, &end, 10);
	return *s && !*end && !errno ? json_object_new_int64(v) : NULL;
}

static struct json_object *json_string_or_null(const char *s)
{
	return strcmp(s, "-") ? json_object_new_string(s) : NULL;
}

static void list_add_json(struct json_object *arr, const struct list_row *r)
{
	struct json_object *o = json_object_new_object();
	unsigned long st = strtoul(r->state, NULL, 10);

	json_object_object_add(o, "vm", json_string_or_null(r->vm));
	json_object_object_add(o, "domid", json_number_or_null(r->domid));
	json_object_object_add(o, "vdev", json_object_new_string(r->vdev));
	json_object_object_add(o, "state", json_object_new_string(
		xbd_xenbus_state_name((enum xenbus_state)st)));
	json_object_object_add(o, "mode", json_string_or_null(r->mode));
	json_object_object_add(o, "format", json_string_or_null(r->fmt));
	json_object_object_add(o, "pid", json_number_or_null(r->pid));
	json_object_object_add(o, "requests", r->requests >= 0 ?
			       json_object_new_int64(r->requests) : NULL);
	json_object_object_add(o, "image", json_string_or_null(r->params));
	json_object_array_add(arr, o);
}

static int parse_list(int argc, char **argv, bool *json)
{
	static const struct option opts[] = {
		{ "json", no_argument, NULL, 'j' },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":h", opts, NULL)) != -1) {
		switch (c) {
		case 'j':
			*json = true;
			break;
		case 'h':
			printf("usage: xbd list [--json]\n"
			       "Shows the disks that `xbd serve` serves on this host, one per line\n"
			       "under a header (nothing at all when there are none); --json prints\n"
			       "one JSON array of objects instead.\n");
			return -1;
		default:
			xbd_opt_err("list", c, argv, opts);
			return XBD_EXIT_USAGE;
		}
	}
	if (optind < argc) {
		xbd_usage_err("list", "takes no arguments");
		return XBD_EXIT_USAGE;
	}
	return 0;
}

static int cmd_list_run(int argc, char **argv)
{
	const struct xbd_platform_ops *ops;
	struct xbd_platform *p;
	struct xbd_ctl_reply *replies = NULL;
	struct json_object *arr = NULL;
	unsigned nreplies = 0, nfe = 0, i, j, shown = 0;
	char type_dir[96], **fes = NULL;
	bool json = false;
	int err;

	err = parse_list(argc, argv, &json);
	if (err)
		return err < 0 ? 0 : err;
	if (xbd_cli_open_platform(&p))
		return 1;
	ops = xbd_platform_ops_of(p);
	snprintf(type_dir, sizeof(type_dir), "/local/domain/%u/backend/%s",
		 ops->self_domid(p), XBD_BACKEND_TYPE);
	err = ops->xs_directory(p, XBD_XS_NO_TXN, type_dir, &fes, &nfe);
	if (err == -ENOENT) {
		err = 0; /* nothing served yet */
	} else if (err) {
		xbd_err("%s: %s", type_dir, xbd_strerror(err));
		xbd_platform_close(p);
		return 1;
	}
	if (nfe && xbd_ctl_query_all(NULL, "stats", XBD_CTL_TIMEOUT_MS, &replies,
				     &nreplies))
		nreplies = 0;
	if (json && !(arr = json_object_new_array())) {
		xbd_err("list: out of memory");
		err = -ENOMEM;
	}
	for (i = 0; !err && i < nfe; i++) {
		char dir[128], **ids = NULL;
		unsigned nid = 0;

		snprintf(dir, sizeof(dir), "%s/%s", type_dir, fes[i]);
		if (ops->xs_directory(p, XBD_XS_NO_TXN, dir, &ids, &nid))
			continue;
		for (j = 0; j < nid; j++) {
			struct list_row r = { .domid = fes[i] };
			char be[192], name_path[64];

			snprintf(be, sizeof(be), "%s/%s", dir, ids[j]);
			snprintf(name_path, sizeof(name_path),
				 "/local/domain/%s/name", fes[i]);
			r.vm = read_or(p, name_path, NULL, "-");
			if (xbd_devid_to_vdev((uint32_t)strtoul(ids[j], NULL, 10),
					      r.vdev, sizeof(r.vdev)))
				snprintf(r.vdev, sizeof(r.vdev), "%s", ids[j]);
			r.state = read_or(p, be, "state", "0");
			r.mode = read_or(p, be, "mode", "-");
			r.fmt = read_or(p, be, "xbd-format", "-");
			r.pid = read_or(p, be, "xbd-pid", "-");
			r.params = read_or(p, be, "params", "-");
			r.requests = ctl_requests(replies, nreplies, be);
			if (!r.vm || !r.state || !r.mode || !r.fmt || !r.pid ||
			    !r.params) {
				xbd_err("list: out of memory");
				err = -ENOMEM;
			} else if (json) {
				list_add_json(arr, &r);
			} else {
				list_print_text(&r, shown == 0);
			}
			free(r.vm);
			free(r.state);
			free(r.mode);
			free(r.fmt);
			free(r.pid);
			free(r.params);
			shown++;
		}
		free(ids);
	}
	if (arr && !err)
		printf("%s\n", json_object_to_json_string_ext(arr, JSON_C_TO_STRING_PLAIN |
							    JSON_C_TO_STRING_NOSLASHESCAPE));
	json_object_put(arr);
	free(fes);
	xbd_ctl_replies_free(replies, nreplies);
	xbd_platform_close(p);
	return err ? 1 : 0;
}

const struct xbd_cmd xbd_cmd_list = {
	.name = "list",
	.usage = "list [--json]",
	.summary = "show the disks xbd serves",
	.run = cmd_list_run,
};

/* ------------------------------------------------------------------ */
/* xbd detach                                                         */
/* ------------------------------------------------------------------ */

static void detach_usage(void)
{
	printf("usage: xbd detach DIR\n"
	       "       xbd detach VM VDEV [--timeout SECS]\n"
	       "With DIR: stops the `xbd attach` that shows disks in DIR and unmounts it.\n"
	       "With VM VDEV: unplugs disk VDEV that `xbd serve` serves to VM; the VM\n"
	       "gets -t, --timeout SECS (default %u) to let go of it.\n",
	       XBD_BACKEND_DEFAULT_CLOSE_TIMEOUT_MS / 1000);
}

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
	err = xbd_backend_detach(p, domid, devid,
				 timeout_s * 1000 + DETACH_MARGIN_MS);
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

/* `xbd detach DIR` (cli/cmd_attach.c) or `xbd detach VM VDEV`: told
 * apart by the number of arguments. */
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
			if (parse_uint_opt("detach", "--timeout", optarg, 1, 3600,
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
		return xbd_cli_detach_dir(argv[optind]);
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

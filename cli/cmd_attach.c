/*
 * xbd attach: a VM's disks in dom0, through a user-space blkfront and a
 * FUSE export.
 *
 * For each chosen disk, attach plays the toolstack: it creates a second
 * backend instance of the same storage with dom0 as the frontend (kernel
 * blkback, or the sim's), puts its own frontend directory under
 * /local/domain/0/device/xbd/ where dom0's kernel blkfront never looks,
 * connects a struct xbd_frontend to it, and shows the disk and its
 * partitions in DIR.  Read-only at every layer unless --rw; --cow keeps
 * writes in dom0.  The command returns once DIR is ready (the work goes
 * on in a daemon, unless --foreground).  SIGTERM, SIGINT or `xbd detach
 * DIR` (cli/cmd_detach.c, which reads the records kept here) takes
 * everything away again.
 */
#include "cli/daemon.h"
#include "xbd/cli.h"
#include "xbd/common.h"
#include "xbd/ctl.h"
#include "xbd/frontend.h"
#include "xbd/fuse_export.h"
#include "xbd/image.h"
#include "xbd/util.h"
#include "xbd/xenbus.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ATTACH_MAX_DISKS 32
#define ATTACH_GRANT_BUDGET 960u   /* of gntalloc's 1024, all disks */

struct att_disk {
	struct xbd_vm_disk vm;        /* the VM's disk */
	struct xbd_attach_instance inst; /* our backend instance of it */
	struct xbd_frontend *fe;
	struct xbd_image *img;        /* shown in DIR */
	bool in_fuse;
	struct xbd_ctl_dev *ctl;
	char file[PATH_MAX + 16];     /* DIR/<vdev> */
};

struct attach {
	const char *vm_name;
	char dir[PATH_MAX];
	bool cow, rw, foreground;
	bool force;                   /* --rw although the VM runs */
	int log_fd;                   /* the daemon's stderr; -1: /dev/null */
	const char *wanted[ATTACH_MAX_DISKS];
	unsigned nwanted;

	struct xbd_platform *p;
	struct xbd_proc self;         /* recorded in each frontend directory */
	bool sim;
	uint16_t domid;
	struct att_disk disks[ATTACH_MAX_DISKS];
	unsigned ndisks;
	struct xbd_fuse *fuse;
	struct xbd_ctl *ctl;
};

static void attach_usage(void)
{
	printf("usage: xbd attach VM --mount DIR [--disk VDEV]... [--cow | --rw [--force]]\n"
	       "                  [--foreground | --log FILE]\n"
	       "Shows VM's disks (all of them, or the --disk ones) as DIR/<vdev> and\n"
	       "their partitions as DIR/<vdev>1, ..., read-only.\n"
	       "  -m, --mount DIR    where the disks appear (required)\n"
	       "  --disk VDEV        only this disk (xvda, ...); repeatable\n"
	       "  --cow              writable; writes are kept in dom0\n"
	       "  --rw               writable; writes reach the VM's disk (refused\n"
	       "                     while the VM runs with it writable)\n"
	       "  --force            --rw all the same: two writers of one disk\n"
	       "  -f, --foreground   serve DIR from this process until SIGTERM\n"
	       "  --log FILE         append the background process's messages to FILE\n"
	       "                     (default $XBD_ATTACH_LOG, else none)\n"
	       "Returns once DIR is ready; `xbd detach DIR` undoes it.\n");
}

/* ------------------------------------------------------------------ */
/* Choosing the backend for each disk                                 */
/* ------------------------------------------------------------------ */

/* A frontend directory of ours whose process died: its nodes are
 * leftovers that nobody else will remove. */
static bool stale_attach_dir(struct xbd_platform *p, const char *fe_path)
{
	struct xbd_proc proc;

	return xbd_xs_read_proc(p, fe_path, &proc) == 0 && !xbd_proc_alive(&proc);
}

void xbd_attach_remove_record(struct xbd_platform *p, const char *fe_path)
{
	char path[160], *be = NULL;

	snprintf(path, sizeof(path), "%s/backend", fe_path);
	xbd_xs_read_str(p, path, &be);
	xbd_vbd_destroy(p, fe_path, be && !strncmp(be, "/local/domain/", 14) ? be : NULL);
	free(be);
}

/* A frontend directory of ours in the way of a new instance. */
static void clear_if_stale(struct xbd_platform *p, const char *fe_path)
{
	if (stale_attach_dir(p, fe_path))
		xbd_attach_remove_record(p, fe_path);
}

/* Creates our backend instance of the VM's disk (src/toolstack.c). */
static int create_instance(struct attach *a, struct att_disk *d)
{
	char pid[24], start[24];
	const char *fe_extra[] = { XBD_XS_PID_NODE, pid, XBD_XS_PID_START_NODE, start,
				   "xbd-mount", a->dir, NULL };
	struct xbd_attach_instance_opts o = {
		.vm_name = a->vm_name, .rw = a->rw, .sim = a->sim,
		.fe_extra = fe_extra, .clear_stale = clear_if_stale,
	};

	/* what xbd_xs_read_proc() reads back */
	snprintf(pid, sizeof(pid), "%ld", (long)a->self.pid);
	snprintf(start, sizeof(start), "%llu", a->self.start);
	return xbd_attach_instance_create(a->p, &d->vm, &o, &d->inst);
}

/* ------------------------------------------------------------------ */
/* Attach and detach                                                  */
/* ------------------------------------------------------------------ */

static int choose_disks(struct attach *a)
{
	struct xbd_vm_disk *all;
	unsigned n, i, j;
	int err = xbd_vm_disks(a->p, a->domid, &all, &n);

	if (err) {
		xbd_err("%s: cannot list its disks: %s", a->vm_name, xbd_strerror(err));
		return err;
	}
	for (i = 0; i < n && !err; i++) {
		bool want = a->nwanted == 0 &&
			    !(all[i].device_type && !strcmp(all[i].device_type, "cdrom"));

		for (j = 0; j < a->nwanted; j++) {
			uint32_t id;

			if (!xbd_vdev_to_devid(a->wanted[j], &id) && id == all[i].devid)
				want = true;
		}
		if (!want)
			continue;
		if (a->ndisks == ATTACH_MAX_DISKS) {
			xbd_err("%s: more than %d disks", a->vm_name, ATTACH_MAX_DISKS);
			err = -E2BIG;
			break;
		}
		a->disks[a->ndisks].vm = all[i];
		xbd_attach_instance_init(&a->disks[a->ndisks].inst);
		memset(&all[i], 0, sizeof(all[i])); /* strings moved */
		a->ndisks++;
	}
	/* every --disk must exist */
	for (j = 0; j < a->nwanted && !err; j++) {
		uint32_t id;
		bool found = false;

		if (xbd_vdev_to_devid(a->wanted[j], &id)) {
			xbd_err("%s: not a virtual disk name (xvda, xvdb, ...)", a->wanted[j]);
			err = -EINVAL;
			break;
		}
		for (i = 0; i < a->ndisks; i++)
			found |= a->disks[i].vm.devid == id;
		if (!found) {
			char names[256] = "";

			for (i = 0; i < n; i++) {
				size_t l = strlen(names);

				snprintf(names + l, sizeof(names) - l, "%s%s",
					 l ? ", " : "", all[i].vdev);
			}
			xbd_err("%s: no disk %s (it has: %s)", a->vm_name, a->wanted[j],
				n ? names : "none");
			err = -ENOENT;
		}
	}
	xbd_vm_disks_free(all, n);
	if (!err && a->ndisks == 0) {
		xbd_err("%s: has no disks", a->vm_name);
		err = -ENOENT;
	}
	return err;
}

static void register_ctl(struct attach *a, struct att_disk *d)
{
	struct xbd_frontend_info info;
	struct xbd_ctl_device desc = {
		.vm = a->vm_name, .domid = a->domid, .vdev = d->vm.vdev,
		.devid = d->vm.devid, .role = XBD_CTL_ATTACH,
		.backend = d->inst.backend_kind, .frontend_path = d->inst.fe_path,
		.backend_path = d->inst.be_path, .mount = d->file,
		.stats = xbd_frontend_stats(d->fe),
		.query = xbd_frontend_ctl_query, .opaque = d->fe,
	};

	if (!a->ctl)
		return;
	xbd_frontend_get_info(d->fe, &info);
	desc.read_only = !(a->rw || a->cow);
	desc.sectors = info.sectors;
	desc.sector_size = info.sector_size;
	desc.features.ring_pages = info.ring_pages;
	desc.features.persistent = info.persistent;
	desc.features.max_indirect_segments =
		info.max_segments > 11 ? info.max_segments : 0;
	desc.features.flush = info.flush;
	desc.features.barrier = info.barrier;
	desc.features.discard = info.discard;
	snprintf(desc.features.protocol, sizeof(desc.features.protocol), "x86_64-abi");
	if (xbd_ctl_add_device(a->ctl, &desc, &d->ctl))
		d->ctl = NULL;
}

static int attach_disk(struct attach *a, struct att_disk *d, unsigned grants)
{
	struct xbd_frontend_config cfg = { .max_ring_order = -1 };
	struct xbd_image *img;
	char name[96];
	int err;

	err = create_instance(a, d);
	if (err)
		return err;
	snprintf(name, sizeof(name), "%s/%s", a->vm_name, d->vm.vdev);
	cfg.frontend_path = d->inst.fe_path;
	cfg.backend_path = d->inst.be_path;
	cfg.backend_domid = d->inst.be_domid;
	cfg.name = name;
	cfg.need_write = a->rw;
	cfg.max_grants = grants;
	err = xbd_frontend_connect(a->p, &cfg, &d->fe);
	if (err)
		return err;
	err = xbd_frontend_open_image(d->fe, !a->rw, &img);
	if (err) {
		xbd_err("%s: %s", name, xbd_strerror(err));
		return err;
	}
	if (a->cow) {
		/* writes go to an unlinked overlay in dom0, never to the VM */
		err = xbd_image_open_cow(img, NULL, &img);
		if (err)
			return err;
	}
	d->img = img;
	{
		char file[sizeof(d->file)];

		/* through a copy: d lies inside a, which -Wrestrict minds */
		snprintf(file, sizeof(file), "%s/%s", a->dir, d->vm.vdev);
		memcpy(d->file, file, sizeof(file));
	}
	err = xbd_fuse_add_disk(a->fuse, d->vm.vdev, d->img,
				(a->rw || a->cow) ? 0 : XBD_FUSE_DISK_READ_ONLY);
	if (err) {
		xbd_err("%s: cannot show it in %s: %s", name, a->dir, xbd_strerror(err));
		return err;
	}
	d->in_fuse = true;
	register_ctl(a, d);
	return 0;
}

int xbd_attach_records(struct xbd_platform *p, const char *dir,
		       struct xbd_attach_record **out, unsigned *count)
{
	char **ids = NULL;
	unsigned n = 0, i, m = 0;
	struct xbd_attach_record *e;
	int err = xbd_platform_ops_of(p)->xs_directory(p, XBD_XS_NO_TXN,
						       XBD_ATTACH_FE_DIR, &ids, &n);

	if (err == -ENOENT)
		n = 0;
	else if (err)
		return err;
	e = calloc(n ? n : 1, sizeof(*e));
	if (!e) {
		free(ids);
		return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		char path[160], *mount = NULL;

		snprintf(e[m].fe_path, sizeof(e[m].fe_path), XBD_ATTACH_FE_DIR "/%s", ids[i]);
		snprintf(path, sizeof(path), "%s/xbd-mount", e[m].fe_path);
		if (xbd_xs_read_str(p, path, &mount))
			continue;
		if (!strcmp(mount, dir)) {
			if (xbd_xs_read_proc(p, e[m].fe_path, &e[m].proc))
				e[m].proc = (struct xbd_proc){ .pid = 0 };
			m++;
		}
		free(mount);
	}
	free(ids);
	*out = e;
	*count = m;
	return 0;
}

/* DIR must not be in use by another attach; leftovers of a killed one
 * are cleared. */
static int check_dir_free(struct attach *a)
{
	struct xbd_attach_record *e;
	unsigned n, i;
	int err = xbd_attach_records(a->p, a->dir, &e, &n);

	if (err)
		return 0; /* nothing readable: nothing of ours there */
	for (i = 0; i < n && !err; i++) {
		if (xbd_proc_alive(&e[i].proc)) {
			xbd_err("%s: already in use by xbd attach (pid %ld); `xbd detach %s` first",
				a->dir, (long)e[i].proc.pid, a->dir);
			err = -EBUSY;
		}
	}
	for (i = 0; i < n && !err; i++)
		xbd_attach_remove_record(a->p, e[i].fe_path);
	free(e);
	return err;
}

/* Everything attach made, in reverse: safe on a half-done attach. */
static void teardown(struct attach *a)
{
	unsigned i;

	for (i = 0; i < a->ndisks; i++) {
		struct att_disk *d = &a->disks[i];

		if (d->in_fuse)
			xbd_fuse_remove_disk(a->fuse, d->vm.vdev);
		d->in_fuse = false;
		xbd_ctl_remove_device(a->ctl, d->ctl);
		d->ctl = NULL;
	}
	xbd_fuse_stop(a->fuse);
	a->fuse = NULL;
	xbd_ctl_stop(a->ctl);
	a->ctl = NULL;
	for (i = 0; i < a->ndisks; i++) {
		struct att_disk *d = &a->disks[i];

		if (d->img)
			xbd_image_close(d->img);
		d->img = NULL;
		xbd_frontend_close(d->fe);
		d->fe = NULL;
		xbd_attach_instance_destroy(a->p, &d->inst);
		free(d->vm.params);
		free(d->vm.type);
		free(d->vm.mode);
		free(d->vm.physical_device);
		free(d->vm.device_type);
		memset(&d->vm, 0, sizeof(d->vm));
	}
	a->ndisks = 0;
	if (a->p)
		xbd_xs_rm_if_empty(a->p, "/local/domain/0/device");
	xbd_platform_close(a->p);
	a->p = NULL;
}

/* --rw on a disk its own running guest has writable makes two writers
 * that know nothing of each other's caches: the file system is
 * corrupted.  Refused unless the VM cannot run (paused, shut down) or
 * --force. */
static int check_second_writer(struct attach *a)
{
	unsigned i;
	int paused = 0;
	bool asked = false;

	if (!a->rw || a->force)
		return 0;
	for (i = 0; i < a->ndisks; i++) {
		const struct xbd_vm_disk *d = &a->disks[i].vm;

		if (!d->mode || !strchr(d->mode, 'w'))
			continue; /* the guest cannot write it */
		if (!asked) {
			paused = xbd_domain_paused(a->p, a->domid);
			asked = true;
		}
		if (paused == 1)
			return 0;
		if (paused == 0)
			xbd_err("%s: %s: the VM is running with this disk writable; pause it (xl pause %s) or shut it down first, or --force",
				a->vm_name, d->vdev, a->vm_name);
		else
			xbd_err("%s: %s: the VM has this disk writable and whether it is paused is unknown (%s); shut it down first, or --force",
				a->vm_name, d->vdev, paused == -EOPNOTSUPP ?
				"the simulated platform has no pause" :
				xbd_strerror(paused));
		return -EBUSY;
	}
	return 0;
}

static int setup(struct attach *a)
{
	struct xbd_fuse_opts fo = { .read_only = !(a->rw || a->cow) };
	unsigned i, grants;
	int err;

	err = xbd_cli_open_platform(&a->p);
	if (err)
		return err;
	a->sim = !strcmp(xbd_platform_ops_of(a->p)->name, "sim");
	err = xbd_platform_ops_of(a->p)->domain_lookup(a->p, a->vm_name, &a->domid);
	if (err) {
		xbd_err("%s: no such domain", a->vm_name);
		return err;
	}
	if (a->domid == xbd_platform_ops_of(a->p)->self_domid(a->p)) {
		xbd_err("%s: that is this domain; its disks are already here", a->vm_name);
		return -EINVAL;
	}
	err = check_dir_free(a);
	if (err)
		return err;
	err = choose_disks(a);
	if (err)
		return err;
	err = check_second_writer(a);
	if (err)
		return err;
	err = xbd_fuse_start(a->dir, &fo, &a->fuse);
	if (err) {
		xbd_err("%s: cannot mount the FUSE export: %s", a->dir, xbd_strerror(err));
		return err;
	}
	if (xbd_ctl_start(&a->ctl))
		a->ctl = NULL; /* statistics are a nicety: attach anyway */
	/* the frontend shares fewer when the platform refuses (another
	 * process holds grants too) */
	grants = ATTACH_GRANT_BUDGET / a->ndisks;
	for (i = 0; i < a->ndisks; i++) {
		err = attach_disk(a, &a->disks[i], grants);
		if (err)
			return err;
	}
	return 0;
}

/* Until SIGTERM/SIGINT, or the export is unmounted under us. */
static void serve_until_stopped(struct attach *a)
{
	struct timespec tick = { 0, 500 * 1000000L };
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	for (;;) {
		int sig = sigtimedwait(&set, NULL, &tick);

		if (sig == SIGTERM || sig == SIGINT)
			return;
		if (!xbd_fuse_mounted(a->fuse))
			return;
	}
}

/* The daemon's log: --log FILE (an error when it cannot be opened), or
 * $XBD_ATTACH_LOG (quietly none then); opened before the fork, so that
 * a relative name is the caller's and a mistake is reported at once. */
static int open_log(struct attach *a, const char *log)
{
	bool from_env = !log;

	if (a->foreground)
		return 0;
	if (from_env)
		log = getenv("XBD_ATTACH_LOG");
	if (!log || !*log)
		return 0;
	a->log_fd = open(log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0600);
	if (a->log_fd >= 0 || from_env)
		return 0;
	xbd_err("%s: %s", log, strerror(errno));
	return 1;
}

/* 0: go on; -1: done (help printed); else the exit status. */
static int parse_attach(int argc, char **argv, struct attach *a)
{
	enum { O_DISK = 256, O_COW, O_RW, O_LOG, O_FORCE };
	static const struct option opts[] = {
		{ "mount", required_argument, NULL, 'm' },
		{ "disk", required_argument, NULL, O_DISK },
		{ "cow", no_argument, NULL, O_COW },
		{ "rw", no_argument, NULL, O_RW },
		{ "force", no_argument, NULL, O_FORCE },
		{ "foreground", no_argument, NULL, 'f' },
		{ "log", required_argument, NULL, O_LOG },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *mount = NULL, *log = NULL;
	struct stat stb;
	uint32_t devid;
	int c;

	opterr = 0;
	while ((c = getopt_long(argc, argv, ":hm:f", opts, NULL)) != -1) {
		switch (c) {
		case 'm':
			mount = optarg;
			break;
		case O_DISK:
			if (xbd_vdev_to_devid(optarg, &devid)) {
				xbd_err("attach: --disk: expected a disk name such as xvda, got '%s'",
					optarg);
				return XBD_EXIT_USAGE;
			}
			if (a->nwanted == ATTACH_MAX_DISKS) {
				xbd_err("attach: --disk: at most %d disks",
					ATTACH_MAX_DISKS);
				return XBD_EXIT_USAGE;
			}
			a->wanted[a->nwanted++] = optarg;
			break;
		case O_COW:
			a->cow = true;
			break;
		case O_RW:
			a->rw = true;
			break;
		case O_FORCE:
			a->force = true;
			break;
		case 'f':
			a->foreground = true;
			break;
		case O_LOG:
			log = optarg;
			break;
		case 'h':
			attach_usage();
			return -1;
		default:
			xbd_opt_err("attach", c, argv, opts);
			return XBD_EXIT_USAGE;
		}
	}
	if (optind == argc) {
		xbd_usage_err("attach", "missing VM");
		return XBD_EXIT_USAGE;
	}
	if (optind + 1 != argc) {
		xbd_usage_err("attach", "unexpected argument '%s'", argv[optind + 1]);
		return XBD_EXIT_USAGE;
	}
	a->vm_name = argv[optind];
	if (!mount) {
		xbd_err("attach: --mount DIR is required");
		return XBD_EXIT_USAGE;
	}
	if (a->cow && a->rw) {
		xbd_err("attach: --cow and --rw exclude each other");
		return XBD_EXIT_USAGE;
	}
	if (log && a->foreground) {
		xbd_err("attach: --log is for the background process (--foreground writes to stderr)");
		return XBD_EXIT_USAGE;
	}
	if (!realpath(mount, a->dir) || stat(a->dir, &stb)) {
		xbd_err("%s: %s", mount, strerror(errno));
		return 1;
	}
	if (!S_ISDIR(stb.st_mode)) {
		xbd_err("%s: not a directory", mount);
		return 1;
	}
	return open_log(a, log);
}

static int attach_run(int argc, char **argv)
{
	static struct attach a; /* big; one per process */
	struct xbd_daemon dmn;
	int err, status;
	sigset_t set;

	memset(&a, 0, sizeof(a));
	a.log_fd = -1;
	err = parse_attach(argc, argv, &a);
	if (err) {
		if (a.log_fd >= 0)
			close(a.log_fd);
		return err < 0 ? 0 : err;
	}
	/* the log is the daemon's from here on */
	err = xbd_daemon_start(&dmn, "attach", a.foreground, a.log_fd, &status);
	a.log_fd = -1;
	if (err)
		return err > 0 ? status : 1;
	if (!a.foreground)
		signal(SIGHUP, SIG_IGN); /* the terminal may go: DIR stays */
	/* every thread inherits the mask; the main thread takes the signals */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	/* after the fork: the daemon is what the records name */
	if (xbd_proc_self(&a.self))
		a.self = (struct xbd_proc){ .pid = getpid() }; /* no /proc */
	err = setup(&a);
	if (err) {
		teardown(&a);
		xbd_daemon_close(&dmn);
		return 1;
	}
	xbd_info("%s: %u disk%s in %s", a.vm_name, a.ndisks, a.ndisks == 1 ? "" : "s",
		 a.dir);
	xbd_daemon_ready(&dmn, NULL);
	serve_until_stopped(&a);
	xbd_cli_notify("STOPPING=1");
	teardown(&a);
	return 0;
}

const struct xbd_cmd xbd_cmd_attach = {
	.name = "attach",
	.usage = "attach VM --mount DIR [--disk VDEV]... [--cow|--rw]",
	.summary = "show a VM's disks as files in DIR (read-only by default)",
	.run = attach_run,
};

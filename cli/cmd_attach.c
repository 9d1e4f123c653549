/* SPDX-License-Identifier: GPL-2.0-or-later */
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
#include "xbd/imaging.h"
#include "xbd/mounts.h"
#include "xbd/util.h"
#include "xbd/xenbus.h"

#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <dirent.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define ATTACH_MAX_DISKS 32
#define ATTACH_GRANT_BUDGET 960u   /* of gntalloc's 1024, all disks */
#define ATTACH_FORCE_GRACE_MS 2000 /* --force: for users to see EIO and close */
/* a killed attach's device: for its backend to close it before the
 * nodes go (a dead backend never does) */
#define ATTACH_DEAD_CLOSE_MS 5000
#define ATTACH_PAUSE_TIMEOUT_MS 30000 /* --pause: for requests in flight */

struct att_disk {
	struct xbd_vm_disk vm;        /* the VM's disk */
	struct xbd_attach_instance inst; /* our backend instance of it */
	struct xbd_frontend *fe;
	struct xbd_image *img;        /* shown in DIR */
	bool in_fuse;
	bool skipped;                 /* could not be attached; the others were */
	struct xbd_ctl_dev *ctl;
	char file[PATH_MAX + 16];     /* DIR/<vdev> */
};

struct attach {
	const char *vm_name;
	char dir[PATH_MAX];
	bool cow, rw, foreground;
	bool files;               /* --files: DIR/files/NAME trees */
	bool force;                   /* --rw although the VM runs */
	bool pause;                   /* --pause: paused while attached */
	struct xbd_vm_pause pst;
	char pause_dir[96];           /* its record (record_pause_dir) */
	bool nonempty;                /* mount over files in DIR */
	int log_fd;                   /* the daemon's stderr; -1: /dev/null */
	const char *wanted[ATTACH_MAX_DISKS];
	unsigned nwanted;

	struct xbd_platform *p;
	struct xbd_proc self;         /* recorded in each frontend directory */
	bool sim;
	uint16_t domid;
	struct att_disk disks[ATTACH_MAX_DISKS];
	unsigned ndisks;
	unsigned nskipped;            /* disks[] marked skipped */
	struct xbd_fuse *fuse;
	struct xbd_ctl *ctl;
};

static void attach_usage(void)
{
	printf("usage: xbd attach VM --mount DIR [--disk VDEV]... [--cow | --rw [--force]]\n"
	       "                  [--pause] [--nonempty] [--files] [--foreground | --log FILE]\n"
	       "Shows VM's disks (all of them, or the --disk ones) as DIR/<vdev> and\n"
	       "their partitions as DIR/<vdev>1, ..., read-only.\n"
	       "  -m, --mount DIR    where the disks appear (required)\n"
	       "  --disk VDEV        only this disk (xvda, ...); repeatable\n"
	       "  --cow              writable; writes are kept in dom0\n"
	       "  --rw               writable; writes reach the VM's disk (refused\n"
	       "                     while the VM runs with it writable)\n"
	       "  --force            --rw all the same: two writers of one disk\n"
	       "  --pause            pause the VM while attached (one moment of its\n"
	       "                     disks; --rw is then no second writer)\n"
	       "  --files            each file system also as a read-only tree\n"
	       "                     DIR/files/NAME, parsed in a sandbox\n"
	       "  --nonempty         mount over a DIR that holds files (they are hidden\n"
	       "                     until detach)\n"
	       "  -f, --foreground   serve DIR from this process until SIGTERM\n"
	       "  --log FILE         append the background process's messages to FILE\n"
	       "                     (default $XBD_ATTACH_LOG, else none)\n"
	       "Returns once DIR is ready; `xbd detach DIR` undoes it.  Exit status 3:\n"
	       "some of the VM's disks could not be attached (each is named on stderr).\n");
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

	/* a pause the dead process made (--pause) ends with it */
	xbd_vm_pause_undo_recorded(p, fe_path);
	snprintf(path, sizeof(path), "%s/backend", fe_path);
	xbd_xs_read_str(p, path, &be);
	xbd_vbd_destroy_dead(p, fe_path,
			     be && !strncmp(be, "/local/domain/", 14) ? be : NULL,
			     ATTACH_DEAD_CLOSE_MS);
	free(be);
}

void xbd_attach_clear_stale(struct xbd_platform *p, const char *fe_path)
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
		.fe_extra = fe_extra, .clear_stale = xbd_attach_clear_stale,
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

/* What `xbd list` and `xbd detach DIR` read beside create_instance's
 * records: the VM and its disk (our instance's nodes name neither), and
 * our mount by its device number, the one thing that tells it from a
 * mount someone else made on DIR. */
static int record_disk(struct attach *a, struct att_disk *d)
{
	char domid[8];
	const char *nodes[][2] = {
		{ XBD_ATTACH_VM_NODE, a->vm_name },
		{ XBD_ATTACH_DOMID_NODE, domid },
		{ XBD_ATTACH_VDEV_NODE, d->vm.vdev },
		{ XBD_ATTACH_MOUNT_DEV_NODE, xbd_fuse_dev(a->fuse) },
	};
	size_t i;
	int err = 0;

	snprintf(domid, sizeof(domid), "%u", a->domid);
	for (i = 0; i < XBD_ARRAY_SIZE(nodes) && !err; i++) {
		char path[160];

		snprintf(path, sizeof(path), "%s/%s", d->inst.fe_path, nodes[i][0]);
		err = xbd_xs_write(a->p, XBD_XS_NO_TXN, path, nodes[i][1],
				   strlen(nodes[i][1]));
	}
	if (err)
		xbd_err("%s: %s: cannot record the attachment in %s: %s", a->vm_name,
			d->vm.vdev, d->inst.fe_path, xbd_strerror(err));
	return err;
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
	err = record_disk(a, d);
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
				((a->rw || a->cow) ? 0 : XBD_FUSE_DISK_READ_ONLY) |
				(a->files ? XBD_FUSE_FILES : 0));
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
	int err = xbd_xs_directory(p, XBD_XS_NO_TXN,
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
		if (!dir || !strcmp(mount, dir)) {
			char *dev = NULL;

			if (xbd_xs_read_proc(p, e[m].fe_path, &e[m].proc))
				e[m].proc = (struct xbd_proc){ .pid = 0 };
			snprintf(e[m].mount, sizeof(e[m].mount), "%s", mount);
			e[m].pause_only = !strncmp(ids[i], XBD_ATTACH_PAUSE_PREFIX,
						   strlen(XBD_ATTACH_PAUSE_PREFIX));
			snprintf(path, sizeof(path), "%s/" XBD_ATTACH_MOUNT_DEV_NODE,
				 e[m].fe_path);
			if (!xbd_xs_read_str(p, path, &dev))
				snprintf(e[m].mount_dev, sizeof(e[m].mount_dev), "%s", dev);
			free(dev);
			snprintf(path, sizeof(path), "%s/" XBD_ATTACH_DETACHING_NODE,
				 e[m].fe_path);
			e[m].detaching = xbd_xs_exists(p, XBD_XS_NO_TXN, path);
			m++;
		}
		free(mount);
	}
	free(ids);
	*out = e;
	*count = m;
	return 0;
}

int xbd_attach_remove_dead(struct xbd_platform *p, const char *dir,
			   const struct xbd_attach_record *e, unsigned n)
{
	struct xbd_mount m;
	char dev[24];
	bool ours = false;
	unsigned i;
	int err;

	for (i = 0; i < n; i++)
		if (xbd_xs_exists(p, XBD_XS_NO_TXN, e[i].fe_path))
			xbd_attach_remove_record(p, e[i].fe_path);
	xbd_xs_rm_if_empty(p, "/local/domain/0/device");
	if (xbd_mount_at(dir, &m))
		return 0;
	/* ours: a dead xbd mount (the recorded processes are gone, so a
	 * live one is someone else's: the kernel hands a freed device
	 * number to the next FUSE mount) with the device number recorded,
	 * or any dead xbd mount for a record that kept none (a pause
	 * record keeps none until the mount is made) */
	if (!xbd_mount_dead(dir))
		return 0;
	xbd_mount_dev_str(&m, dev, sizeof(dev));
	for (i = 0; i < n; i++)
		ours |= !e[i].mount_dev[0] || !strcmp(e[i].mount_dev, dev);
	if (!ours)
		return 0;
	err = xbd_umount_lazy(dir);
	return err ? err : 1;
}

/* DIR must not be in use by another attach; what a killed one left
 * there is removed (and said). */
static int check_dir_free(struct attach *a)
{
	struct xbd_attach_record *e;
	unsigned n, i;
	int err = xbd_attach_records(a->p, a->dir, &e, &n);

	if (err)
		return 0; /* nothing readable: nothing of ours there */
	for (i = 0; i < n && !err; i++) {
		if (!xbd_proc_alive(&e[i].proc))
			continue;
		if (e[i].detaching)
			xbd_err("%s: xbd attach (pid %ld) is still detaching, waiting for its last user; `xbd detach --force %s` ends it",
				a->dir, (long)e[i].proc.pid, a->dir);
		else
			xbd_err("%s: already in use by xbd attach (pid %ld); `xbd detach %s` first",
				a->dir, (long)e[i].proc.pid, a->dir);
		err = -EBUSY;
	}
	if (!err && n) {
		err = xbd_attach_remove_dead(a->p, a->dir, e, n);
		if (err < 0)
			xbd_err("%s: cannot unmount the dead mount of xbd attach (pid %ld): %s",
				a->dir, (long)e[0].proc.pid, xbd_strerror(err));
		else
			xbd_err("%s: removed what xbd attach (pid %ld), which was killed, left: its device nodes%s",
				a->dir, (long)e[0].proc.pid, err ? " and its dead mount" : "");
		err = err < 0 ? err : 0;
	}
	free(e);
	return err;
}

/* DIR must be a directory of its own (cli/common.c). */
static int check_dir_usable(struct attach *a)
{
	return xbd_cli_mount_dir_usable(a->dir, "attach", a->nonempty);
}

/* One disk's file, control registration, image, frontend and
 * instance, in reverse; safe on a half-done disk. */
static void release_disk(struct attach *a, struct att_disk *d)
{
	if (d->in_fuse)
		xbd_fuse_remove_disk(a->fuse, d->vm.vdev);
	d->in_fuse = false;
	xbd_ctl_remove_device(a->ctl, d->ctl);
	d->ctl = NULL;
	if (d->img)
		xbd_image_close(d->img);
	d->img = NULL;
	xbd_frontend_close(d->fe);
	d->fe = NULL;
	xbd_attach_instance_destroy(a->p, &d->inst);
}

/* The disks' files out of the export: open ones fail with EIO from
 * here on, and no request reaches the images any more. */
static void remove_files(struct attach *a)
{
	unsigned i;

	for (i = 0; i < a->ndisks; i++) {
		struct att_disk *d = &a->disks[i];

		if (d->in_fuse)
			xbd_fuse_remove_disk(a->fuse, d->vm.vdev);
		d->in_fuse = false;
	}
}

/*
 * --pause is recorded in a directory of its own beside the disks'
 * (XBD_ATTACH_PAUSE_PREFIX + our pid), written before the pause and so
 * before any disk instance exists: the pause is recorded from the
 * moment it is made, and a kill -9 anywhere in the slow part of the
 * attach (ring drain, partition scan, LVM, trees) leaves a record that
 * `xbd detach DIR` and a new attach on DIR (xbd_attach_remove_dead)
 * find like a disk's, by xbd-mount and the process.  One record, so
 * one unpause; it holds no instance, so no disk's failure removes it.
 */
static int record_pause_dir(struct attach *a)
{
	char pid[24], start[24];
	const char *nodes[][2] = {
		{ "xbd-mount", a->dir },
		{ XBD_XS_PID_NODE, pid },
		{ XBD_XS_PID_START_NODE, start },
	};
	size_t i;
	int err = 0;

	snprintf(a->pause_dir, sizeof(a->pause_dir),
		 XBD_ATTACH_FE_DIR "/" XBD_ATTACH_PAUSE_PREFIX "%ld", (long)a->self.pid);
	snprintf(pid, sizeof(pid), "%ld", (long)a->self.pid);
	snprintf(start, sizeof(start), "%llu", a->self.start);
	for (i = 0; i < XBD_ARRAY_SIZE(nodes) && !err; i++) {
		char path[PATH_MAX + 64];

		snprintf(path, sizeof(path), "%s/%s", a->pause_dir, nodes[i][0]);
		err = xbd_xs_write(a->p, XBD_XS_NO_TXN, path, nodes[i][1],
				   strlen(nodes[i][1]));
	}
	if (err) {
		xbd_err("%s: cannot record the pause in %s: %s; not paused", a->vm_name,
			a->pause_dir, xbd_strerror(err));
		xbd_xs_rm(a->p, XBD_XS_NO_TXN, a->pause_dir);
		a->pause_dir[0] = '\0';
	}
	return err;
}

/* Our mount by its device number in the pause record too: a kill -9
 * after it was made leaves a mount that detach knows as ours. */
static void record_pause_mount(struct attach *a)
{
	char path[PATH_MAX + 64];
	const char *dev = xbd_fuse_dev(a->fuse);

	if (!a->pause_dir[0])
		return;
	snprintf(path, sizeof(path), "%s/" XBD_ATTACH_MOUNT_DEV_NODE, a->pause_dir);
	xbd_xs_write(a->p, XBD_XS_NO_TXN, path, dev, strlen(dev));
}

/* The VM runs again; the record goes first (xbd_vm_unpause), so that a
 * crash in between leaves it paused rather than undo a pause that is
 * not ours; its directory after. */
static void unpause_vm(struct attach *a)
{
	xbd_vm_unpause(a->p, a->vm_name, &a->pst);
	if (a->pause_dir[0])
		xbd_xs_rm(a->p, XBD_XS_NO_TXN, a->pause_dir);
	a->pause_dir[0] = '\0';
}

/* Everything attach made, in reverse: safe on a half-done attach. */
static void teardown(struct attach *a)
{
	unsigned i;

	remove_files(a);
	for (i = 0; i < a->ndisks; i++) {
		xbd_ctl_remove_device(a->ctl, a->disks[i].ctl);
		a->disks[i].ctl = NULL;
	}
	xbd_fuse_stop(a->fuse);
	a->fuse = NULL;
	xbd_ctl_stop(a->ctl);
	a->ctl = NULL;
	unpause_vm(a);
	for (i = 0; i < a->ndisks; i++) {
		struct att_disk *d = &a->disks[i];

		release_disk(a, d);
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

/* Whether the user named d with --disk: then its failure is the
 * command's, not a disk to skip. */
static bool disk_named(const struct attach *a, const struct att_disk *d)
{
	unsigned j;

	for (j = 0; j < a->nwanted; j++) {
		uint32_t id;

		if (!xbd_vdev_to_devid(a->wanted[j], &id) && id == d->vm.devid)
			return true;
	}
	return false;
}

/* "xvda, xvdb": the disks whose skipped flag is `skipped`. */
static void disk_names(const struct attach *a, bool skipped, char *buf, size_t size)
{
	size_t used = 0;
	unsigned i;

	buf[0] = '\0';
	for (i = 0; i < a->ndisks && used < size; i++)
		if (a->disks[i].skipped == skipped)
			used += (size_t)snprintf(buf + used, size - used, "%s%s",
						 used ? ", " : "", a->disks[i].vm.vdev);
}

/* Attaches every chosen disk.  One that fails (create_instance or the
 * connection said why on stderr) is taken away again and skipped, so
 * that one bad disk does not cost the good ones; a disk named with
 * --disk, or none at all attached, is an error.  One line sums up what
 * was skipped. */
static int attach_disks(struct attach *a)
{
	char skipped[256], attached[256];
	unsigned i, grants;
	int err;

	/* the frontend shares fewer when the platform refuses (another
	 * process holds grants too) */
	grants = ATTACH_GRANT_BUDGET / a->ndisks;
	for (i = 0; i < a->ndisks; i++) {
		struct att_disk *d = &a->disks[i];

		err = attach_disk(a, d, grants);
		if (!err)
			continue;
		release_disk(a, d);
		if (disk_named(a, d))
			return err;
		d->skipped = true;
		a->nskipped++;
	}
	if (a->nskipped == a->ndisks) {
		/* one disk: its own error line says it all */
		if (a->ndisks > 1)
			xbd_err("%s: none of its %u disks could be attached", a->vm_name,
				a->ndisks);
		return -ENODEV;
	}
	if (a->nskipped) {
		disk_names(a, true, skipped, sizeof(skipped));
		disk_names(a, false, attached, sizeof(attached));
		xbd_err("%s: skipped %s (see above); attached %s in %s", a->vm_name,
			skipped, attached, a->dir);
	}
	return 0;
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

	if (!a->rw || a->force || a->pause)
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
				"the platform cannot tell" :
				xbd_strerror(paused));
		return -EBUSY;
	}
	return 0;
}

static int setup(struct attach *a)
{
	struct xbd_fuse_opts fo = { .read_only = !(a->rw || a->cow),
				    .fsname = a->vm_name, .files = a->files };
	int err;

	err = xbd_cli_open_platform(&a->p);
	if (err)
		return err;
	a->sim = !strcmp(xbd_platform_name(a->p), "sim");
	err = xbd_domain_lookup(a->p, a->vm_name, &a->domid);
	if (err) {
		xbd_err("%s: no such domain", a->vm_name);
		return err;
	}
	if (a->domid == xbd_platform_self_domid(a->p)) {
		xbd_err("%s: that is this domain; its disks are already here", a->vm_name);
		return -EINVAL;
	}
	err = check_dir_free(a);
	if (!err)
		err = check_dir_usable(a);
	if (err)
		return err;
	err = choose_disks(a);
	if (err)
		return err;
	err = check_second_writer(a);
	if (err)
		return err;
	/* before any disk is read, even its partition table */
	if (a->pause) {
		err = record_pause_dir(a);
		if (err)
			return err;
		err = xbd_vm_pause(a->p, a->vm_name, a->domid, a->pause_dir,
				   ATTACH_PAUSE_TIMEOUT_MS, NULL, NULL, &a->pst);
		if (err)
			return err;
	}
	err = xbd_fuse_start(a->dir, &fo, &a->fuse);
	if (err) {
		xbd_err("%s: cannot mount the FUSE export: %s", a->dir, xbd_strerror(err));
		return err;
	}
	record_pause_mount(a);
	if (xbd_ctl_start(&a->ctl))
		a->ctl = NULL; /* statistics are a nicety: attach anyway */
	return attach_disks(a);
}

/* Marks our records: the mount is off DIR, the process waits for the
 * last user (what `xbd list` shows, and a new attach on DIR is told). */
static void record_detaching(struct attach *a)
{
	unsigned i;

	for (i = 0; i < a->ndisks; i++) {
		char path[160];

		if (a->disks[i].skipped)
			continue;
		snprintf(path, sizeof(path), "%s/" XBD_ATTACH_DETACHING_NODE,
			 a->disks[i].inst.fe_path);
		xbd_xs_write(a->p, XBD_XS_NO_TXN, path, "1", 1);
	}
}

/*
 * Until the export's last user is gone.  SIGTERM and SIGINT detach
 * lazily, as umount -l: the mount leaves DIR at once (nothing new can
 * be opened) and the disks stay served while a file is open or a
 * process works inside (a dd, a loop device over a partition); when
 * the kernel drops the mount, the connection ends and teardown
 * follows.  SIGUSR1 (`xbd detach --force`), or a second SIGTERM or
 * SIGINT, ends everything now: the users' I/O fails with EIO; true is
 * returned then.  A mount unmounted from outside ends it too.
 */
static bool serve_until_stopped(struct attach *a)
{
	struct timespec tick = { 0, 200 * 1000000L };
	bool detached = false;
	sigset_t set;

	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
	for (;;) {
		int sig = sigtimedwait(&set, NULL, &tick);

		if (sig == SIGHUP)
			sig = SIGTERM; /* --foreground's terminal went */

		if (sig == SIGUSR1)
			return true;
		/* a second one: the user will not wait for the last user */
		if ((sig == SIGTERM || sig == SIGINT) && detached)
			return true;
		if ((sig == SIGTERM || sig == SIGINT) && !detached) {
			int err = xbd_fuse_detach(a->fuse);

			if (err) {
				/* not ours on top of DIR any more: end it all */
				xbd_err("%s: cannot detach lazily (%s); stopping now",
					a->dir, xbd_strerror(err));
				return false;
			}
			detached = true;
			record_detaching(a);
		}
		if (!xbd_fuse_mounted(a->fuse))
			return false;
	}
}

/* --force: the files go first, so that their users' next I/O fails
 * with EIO (rather than a dead connection's ENOTCONN), and the mount
 * leaves DIR; they get a moment to see it and close before the
 * connection is ended under whatever still holds a file. */
static void force_stop(struct attach *a)
{
	uint64_t deadline = xbd_now_ns() + ATTACH_FORCE_GRACE_MS * 1000000ull;

	remove_files(a);
	if (xbd_fuse_detach(a->fuse))
		return;
	while (xbd_fuse_mounted(a->fuse) && xbd_now_ns() < deadline)
		usleep(20000);
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
	enum { O_DISK = 256, O_COW, O_RW, O_LOG, O_FORCE, O_NONEMPTY, O_PAUSE, O_FILES };
	static const struct option opts[] = {
		{ "mount", required_argument, NULL, 'm' },
		{ "disk", required_argument, NULL, O_DISK },
		{ "cow", no_argument, NULL, O_COW },
		{ "rw", no_argument, NULL, O_RW },
		{ "force", no_argument, NULL, O_FORCE },
		{ "foreground", no_argument, NULL, 'f' },
		{ "log", required_argument, NULL, O_LOG },
		{ "nonempty", no_argument, NULL, O_NONEMPTY },
		{ "pause", no_argument, NULL, O_PAUSE },
		{ "files", no_argument, NULL, O_FILES },
		{ "help", no_argument, NULL, 'h' },
		{ 0, 0, 0, 0 },
	};
	const char *mount = NULL, *log = NULL;
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
		case O_FILES:
			a->files = true;
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
		case O_NONEMPTY:
			a->nonempty = true;
			break;
		case O_PAUSE:
			a->pause = true;
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
	/* whether DIR can be used is setup()'s, after it has removed what a
	 * killed attach left there (a dead mount fails every stat) */
	if (!realpath(mount, a->dir)) {
		xbd_err("%s: %s", mount, strerror(errno));
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
	/* every thread inherits the mask; the main thread takes the signals
	 * (SIGHUP in the foreground as SIGTERM: a closed terminal detaches,
	 * and a --pause is undone, rather than kill us without teardown) */
	sigemptyset(&set);
	sigaddset(&set, SIGHUP);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGUSR1);
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
	xbd_info("%s: %u disk%s in %s", a.vm_name, a.ndisks - a.nskipped,
		 a.ndisks - a.nskipped == 1 ? "" : "s", a.dir);
	status = a.nskipped ? XBD_EXIT_PARTIAL : 0;
	dmn.ready_exit = status;
	xbd_daemon_ready(&dmn, NULL);
	if (serve_until_stopped(&a))
		force_stop(&a);
	xbd_cli_notify("STOPPING=1");
	teardown(&a);
	return status;
}

const struct xbd_cmd xbd_cmd_attach = {
	.name = "attach",
	.usage = "attach VM --mount DIR [--disk VDEV]... [--cow|--rw]",
	.summary = "show a VM's disks as files in DIR (read-only by default)",
	.run = attach_run,
};

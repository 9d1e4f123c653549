/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The toolstack's part of a block device (include/xbd/toolstack.h):
 * finding a VM's disks in xenstore, and writing or removing a vbd device
 * pair (backend and frontend directories) the way libxl does, so that a
 * backend driver (kernel blkback, `xbd sim blkback`, xbd's own backend)
 * adopts it: for `xbd attach`'s second instance, `xbd serve`'s hot-plug
 * and the sim's `vm create --disk`.
 */
#include "xbd/toolstack.h"
#include "xbd/frontend.h"
#include "xbd/common.h"
#include "xbd/xenbus.h"
#include "xbd/util.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/loop.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* dir/key, or NULL when absent. */
static char *read_key(struct xbd_platform *p, const char *dir, const char *key)
{
	char path[256], *v = NULL;

	snprintf(path, sizeof(path), "%s/%s", dir, key);
	if (xbd_xs_read_str(p, path, &v))
		return NULL;
	return v;
}

static void disk_free_strings(struct xbd_vm_disk *d)
{
	free(d->params);
	free(d->type);
	free(d->mode);
	free(d->physical_device);
	free(d->device_type);
}

void xbd_vm_disks_free(struct xbd_vm_disk *disks, unsigned count)
{
	unsigned i;

	for (i = 0; disks && i < count; i++)
		disk_free_strings(&disks[i]);
	free(disks);
}

static int cmp_devid(const void *a, const void *b)
{
	const struct xbd_vm_disk *x = a, *y = b;

	return x->devid < y->devid ? -1 : x->devid > y->devid;
}

/* Fills one disk from its frontend directory; -ENOENT when it is not a
 * complete device (being created or removed). */
static int read_disk(struct xbd_platform *p, uint16_t domid, uint32_t devid,
		     struct xbd_vm_disk *d)
{
	unsigned long long be_id;
	char *be = NULL, path[256];
	uint16_t be_dom, fe_dom;
	uint32_t be_devid;
	enum xenbus_state st;

	memset(d, 0, sizeof(*d));
	if (devid == 0)
		return -ENOENT;
	d->devid = devid;
	if (xbd_devid_to_vdev(d->devid, d->vdev, sizeof(d->vdev)))
		snprintf(d->vdev, sizeof(d->vdev), "%u", d->devid);
	xbd_frontend_path(d->fe_path, sizeof(d->fe_path), domid, d->devid);
	be = read_key(p, d->fe_path, "backend");
	snprintf(path, sizeof(path), "%s/backend-id", d->fe_path);
	if (!be || xbd_xs_read_uint(p, path, &be_id) || be_id >= XBD_DOMID_SELF ||
	    strlen(be) >= sizeof(d->be_path)) {
		free(be);
		return -ENOENT;
	}
	snprintf(d->be_path, sizeof(d->be_path), "%s", be);
	free(be);
	d->be_domid = (uint16_t)be_id;
	/* the guest wrote both nodes: the backend must be this device's,
	 * in the domain backend-id names */
	if (xbd_vbd_backend_check(p, domid, d->devid, d->be_path) ||
	    xbd_backend_path_parse(d->be_path, &be_dom, d->be_type,
				   sizeof(d->be_type), &fe_dom, &be_devid) ||
	    be_dom != be_id)
		return -ENOENT;
	d->params = read_key(p, d->be_path, "params");
	d->type = read_key(p, d->be_path, "type");
	d->mode = read_key(p, d->be_path, "mode");
	d->physical_device = read_key(p, d->be_path, "physical-device");
	d->device_type = read_key(p, d->be_path, "device-type");
	if (!xbd_xenbus_read_state(p, d->be_path, &st))
		d->be_state = st;
	return 0;
}

int xbd_vm_disks(struct xbd_platform *p, uint16_t domid,
		 struct xbd_vm_disk **disks, unsigned *count)
{
	struct xbd_vm_disk *out;
	char dir[64];
	uint32_t *ids = NULL;
	unsigned n = 0, i, m = 0;
	int err;

	snprintf(dir, sizeof(dir), "/local/domain/%u/device/vbd", domid);
	err = xbd_xs_directory_ids(p, dir, UINT32_MAX, &ids, &n);
	if (err == -ENOENT) {
		n = 0;
		err = 0;
	}
	if (err)
		return err;
	out = calloc(n ? n : 1, sizeof(*out));
	for (i = 0; out && i < n; i++)
		if (!read_disk(p, domid, ids[i], &out[m]))
			m++;
	free(ids);
	if (!out)
		return -ENOMEM;
	qsort(out, m, sizeof(*out), cmp_devid);
	*disks = out;
	*count = m;
	return 0;
}

static int write_key(struct xbd_platform *p, xbd_xs_txn t, const char *dir,
		     const char *key, const char *value)
{
	char path[256];

	if (!value)
		return 0;
	snprintf(path, sizeof(path), "%s/%s", dir, key);
	return xbd_xs_write(p, t, path, value, strlen(value));
}

/* owner has full rights; reader may read; nobody else anything */
static int mkdir_owned(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		       uint16_t owner, uint16_t reader)
{
	struct xbd_xs_perm perms[2] = {
		{ .domid = owner, .perms = XBD_XS_PERM_NONE },
		{ .domid = reader, .perms = XBD_XS_PERM_READ },
	};
	int err = xbd_xs_mkdir(p, t, path);

	if (!err)
		err = xbd_xs_set_perms(p, t, path, perms,
					      owner == reader ? 1 : 2);
	return err;
}

struct create_args {
	const struct xbd_vbd_spec *s;
	const char *fe, *be, *vdev;
};

/* A missing parent of a frontend directory becomes the frontend
 * domain's (the guest may write below it), as libxl leaves it. */
static int mkdir_parent_owned(struct xbd_platform *p, xbd_xs_txn t,
			      const char *path, const struct xbd_vbd_spec *s,
			      bool *made)
{
	*made = !xbd_xs_exists(p, t, path);
	return *made ? mkdir_owned(p, t, path, s->fe_domid, s->be_domid) : 0;
}

static int create_txn(struct xbd_platform *p, xbd_xs_txn t, void *arg)
{
	const struct create_args *c = arg;
	const struct xbd_vbd_spec *s = c->s;
	const char *fe = c->fe, *be = c->be, *vdev = c->vdev;
	struct xbd_vbd_made made = { 0 };
	char num[32], dir[160];
	const char *const *kv;
	int err;

	if (xbd_xs_exists(p, t, be) || xbd_xs_exists(p, t, fe))
		return -EEXIST;
	snprintf(dir, sizeof(dir), "/local/domain/%u/backend", s->be_domid);
	made.be_root = !xbd_xs_exists(p, t, dir);
	err = mkdir_owned(p, t, be, s->be_domid, s->fe_domid);
	err = err ? err : write_key(p, t, be, "frontend", fe);
	snprintf(num, sizeof(num), "%u", s->fe_domid);
	err = err ? err : write_key(p, t, be, "frontend-id", num);
	err = err ? err : write_key(p, t, be, "online", "1");
	err = err ? err : write_key(p, t, be, "removable", "0");
	err = err ? err : write_key(p, t, be, "bootable", "1");
	err = err ? err : write_key(p, t, be, "dev", vdev);
	err = err ? err : write_key(p, t, be, "type", s->type);
	err = err ? err : write_key(p, t, be, "params", s->params);
	err = err ? err : write_key(p, t, be, "mode", s->mode);
	err = err ? err : write_key(p, t, be, "physical-device", s->physical_device);
	err = err ? err : write_key(p, t, be, "device-type", "disk");
	for (kv = s->be_extra; !err && kv && kv[0]; kv += 2)
		err = write_key(p, t, be, kv[0], kv[1]);
	snprintf(num, sizeof(num), "%d", XenbusStateInitialising);
	err = err ? err : write_key(p, t, be, "state", num);
	if (!err && s->be_fill)
		err = s->be_fill(p, t, be, s->be_fill_arg);

	if (!s->fe_path) {
		bool made_dev;

		snprintf(dir, sizeof(dir), "/local/domain/%u/device", s->fe_domid);
		err = err ? err : mkdir_parent_owned(p, t, dir, s, &made_dev);
		snprintf(dir, sizeof(dir), "/local/domain/%u/device/vbd", s->fe_domid);
		err = err ? err : mkdir_parent_owned(p, t, dir, s, &made.fe_vbd);
	}
	err = err ? err : mkdir_owned(p, t, fe, s->fe_domid, s->be_domid);
	err = err ? err : write_key(p, t, fe, "backend", be);
	snprintf(num, sizeof(num), "%u", s->be_domid);
	err = err ? err : write_key(p, t, fe, "backend-id", num);
	snprintf(num, sizeof(num), "%u", s->devid);
	err = err ? err : write_key(p, t, fe, "virtual-device", num);
	err = err ? err : write_key(p, t, fe, "device-type", "disk");
	snprintf(num, sizeof(num), "%d", XenbusStateInitialising);
	err = err ? err : write_key(p, t, fe, "state", num);
	for (kv = s->fe_extra; !err && kv && kv[0]; kv += 2)
		err = write_key(p, t, fe, kv[0], kv[1]);
	/* a retried transaction decides again */
	if (!err && s->made)
		*s->made = made;
	return err;
}

int xbd_vbd_create(struct xbd_platform *p, const struct xbd_vbd_spec *s,
		   char *be_path_out, size_t be_path_len)
{
	char fe[128], be[160], vdev[16];
	struct create_args c = { .s = s, .fe = fe, .be = be, .vdev = vdev };
	int err;

	if (s->fe_path)
		snprintf(fe, sizeof(fe), "%s", s->fe_path);
	else
		xbd_frontend_path(fe, sizeof(fe), s->fe_domid, s->devid);
	xbd_backend_path(be, sizeof(be), s->be_domid, s->be_type, s->fe_domid,
			 s->devid);
	if (s->vdev)
		snprintf(vdev, sizeof(vdev), "%s", s->vdev);
	else if (xbd_devid_to_vdev(s->devid, vdev, sizeof(vdev)))
		snprintf(vdev, sizeof(vdev), "%u", s->devid);
	err = xbd_xs_transaction(p, create_txn, &c);
	if (!err && be_path_out)
		snprintf(be_path_out, be_path_len, "%s", be);
	return err;
}

/* 1 (stop, nothing to do) when path is gone or has children. */
static int rm_if_empty_txn(struct xbd_platform *p, xbd_xs_txn t, void *arg)
{
	const char *path = arg;
	char **names = NULL;
	unsigned n = 0;
	int err = xbd_xs_directory(p, t, path, &names, &n);

	free(names);
	if (err == -ENOENT || (!err && n))
		return 1;
	return err ? err : xbd_xs_rm(p, t, path);
}

int xbd_xs_rm_if_empty(struct xbd_platform *p, const char *path)
{
	int err = xbd_xs_transaction(p, rm_if_empty_txn, (void *)path);

	return err > 0 ? 0 : err;
}

/* The directory holding path (path must have a parent). */
static void parent_of(const char *path, char *out, size_t len)
{
	const char *slash = strrchr(path, '/');

	snprintf(out, len, "%.*s", slash ? (int)(slash - path) : 0, path);
}

void xbd_vbd_destroy(struct xbd_platform *p, const char *fe_path,
		     const char *be_path)
{
	char path[256];

	if (be_path && xbd_xs_exists(p, XBD_XS_NO_TXN, be_path)) {
		snprintf(path, sizeof(path), "%s/online", be_path);
		xbd_xs_write(p, XBD_XS_NO_TXN, path, "0", 1);
		xbd_xs_rm(p, XBD_XS_NO_TXN, be_path);
	}
	if (fe_path)
		xbd_xs_rm(p, XBD_XS_NO_TXN, fe_path);
	/* backend/<type>/<fe> and the frontend's device/<class>, once
	 * empty, as libxl leaves nothing behind either */
	if (be_path) {
		parent_of(be_path, path, sizeof(path));
		xbd_xs_rm_if_empty(p, path);
	}
	if (fe_path) {
		parent_of(fe_path, path, sizeof(path));
		xbd_xs_rm_if_empty(p, path);
	}
}

void xbd_vbd_destroy_dead(struct xbd_platform *p, const char *fe_path,
			  const char *be_path, unsigned timeout_ms)
{
	unsigned long long deadline = xbd_now_ns() + timeout_ms * 1000000ull;
	enum xenbus_state bs;
	char path[256];

	if (be_path && xbd_xs_exists(p, XBD_XS_NO_TXN, be_path)) {
		snprintf(path, sizeof(path), "%s/online", be_path);
		xbd_xs_write(p, XBD_XS_NO_TXN, path, "0", 1);
		if (fe_path && xbd_xs_exists(p, XBD_XS_NO_TXN, fe_path))
			xbd_xenbus_switch_state(p, fe_path, XenbusStateClosed);
		while (!xbd_xenbus_read_state(p, be_path, &bs) &&
		       bs != XenbusStateClosed && bs != XenbusStateUnknown &&
		       xbd_now_ns() < deadline)
			usleep(20000);
	}
	xbd_vbd_destroy(p, fe_path, be_path);
}

/* First xvdX whose device is free in the VM. */
static int pick_vdev(struct xbd_platform *p, uint16_t domid, char *vdev,
		     size_t len)
{
	struct xbd_vm_disk *disks;
	unsigned n, i, k;
	int err = xbd_vm_disks(p, domid, &disks, &n);

	if (err)
		return err;
	for (k = 0; k < 26; k++) {
		char name[8], fe[96];
		uint32_t devid;
		bool taken = false;

		snprintf(name, sizeof(name), "xvd%c", 'a' + k);
		xbd_vdev_to_devid(name, &devid);
		for (i = 0; i < n; i++)
			taken |= disks[i].devid == devid;
		xbd_frontend_path(fe, sizeof(fe), domid, devid);
		if (!taken && !xbd_xs_exists(p, XBD_XS_NO_TXN, fe)) {
			snprintf(vdev, len, "%s", name);
			xbd_vm_disks_free(disks, n);
			return 0;
		}
	}
	xbd_vm_disks_free(disks, n);
	return -ENOSPC;
}

int xbd_sim_vm_add_disk(struct xbd_platform *p, uint16_t domid,
			const char *spec)
{
	struct xbd_vbd_spec s = { .fe_domid = domid, .be_domid = 0,
				  .be_type = "vbd", .type = "file", .mode = "w" };
	char file[PATH_MAX], vdev[16] = "", abs[PATH_MAX];
	const char *comma = strrchr(spec, ',');
	struct stat stb;
	uint32_t devid;
	int err;

	if (comma && strlen(comma + 1) < sizeof(vdev) && comma != spec) {
		snprintf(vdev, sizeof(vdev), "%s", comma + 1);
		snprintf(file, sizeof(file), "%.*s", (int)(comma - spec), spec);
	} else {
		snprintf(file, sizeof(file), "%s", spec);
	}
	if (!realpath(file, abs) || stat(abs, &stb)) {
		xbd_err("--disk %s: %s", file, strerror(errno));
		return -errno;
	}
	if (!S_ISREG(stb.st_mode)) {
		xbd_err("--disk %s: not a regular file", file);
		return -EINVAL;
	}
	if (access(abs, R_OK | W_OK)) {
		xbd_err("--disk %s: %s", file, strerror(errno));
		return -errno;
	}
	if (stb.st_size == 0 || stb.st_size % 512) {
		xbd_err("--disk %s: size %lld is not a non-zero multiple of 512 bytes",
			file, (long long)stb.st_size);
		return -EINVAL;
	}
	if (!vdev[0]) {
		err = pick_vdev(p, domid, vdev, sizeof(vdev));
		if (err) {
			xbd_err("--disk %s: no free device name in domain %u", file,
				domid);
			return err;
		}
	}
	if (xbd_vdev_to_devid(vdev, &devid)) {
		xbd_err("--disk %s: invalid device name '%s' (expected xvda, xvdb, ...)",
			file, vdev);
		return -EINVAL;
	}
	s.devid = devid;
	s.vdev = vdev;
	s.params = abs;
	err = xbd_vbd_create(p, &s, NULL, 0);
	if (err == -EEXIST)
		xbd_err("--disk %s: domain %u already has a device %s", file, domid,
			vdev);
	else if (err)
		xbd_err("--disk %s: cannot write the device nodes: %s", file,
			xbd_strerror(err));
	return err;
}

int xbd_loop_attach(const char *file, bool read_only, char *dev, size_t dev_len,
		    char *majmin, size_t majmin_len, int *fd)
{
	int ctl, file_fd, loop_fd = -1, n, tries, err = 0;
	struct loop_info64 info;
	struct stat stb;

	file_fd = open(file, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
	if (file_fd < 0)
		return -errno;
	ctl = open("/dev/loop-control", O_RDWR | O_CLOEXEC);
	if (ctl < 0) {
		err = -errno;
		close(file_fd);
		return err;
	}
	/* another process may take the free device between the two calls */
	for (tries = 0; tries < 10; tries++) {
		n = ioctl(ctl, LOOP_CTL_GET_FREE);
		if (n < 0) {
			err = -errno;
			break;
		}
		snprintf(dev, dev_len, "/dev/loop%d", n);
		loop_fd = open(dev, (read_only ? O_RDONLY : O_RDWR) | O_CLOEXEC);
		if (loop_fd < 0) {
			err = -errno;
			break;
		}
		if (ioctl(loop_fd, LOOP_SET_FD, file_fd) == 0) {
			err = 0;
			break;
		}
		err = -errno;
		close(loop_fd);
		loop_fd = -1;
		if (err != -EBUSY)
			break;
	}
	close(ctl);
	close(file_fd);
	if (loop_fd < 0)
		return err ? err : -EBUSY;
	memset(&info, 0, sizeof(info));
	info.lo_flags = LO_FLAGS_AUTOCLEAR | (read_only ? LO_FLAGS_READ_ONLY : 0);
	snprintf((char *)info.lo_file_name, sizeof(info.lo_file_name), "%s", file);
	if (ioctl(loop_fd, LOOP_SET_STATUS64, &info) || fstat(loop_fd, &stb)) {
		err = -errno;
		ioctl(loop_fd, LOOP_CLR_FD, 0);
		close(loop_fd);
		return err;
	}
	snprintf(majmin, majmin_len, "%x:%x", major(stb.st_rdev), minor(stb.st_rdev));
	*fd = loop_fd;
	return 0;
}

/* ------------------------------------------------------------------ */
/* `xbd attach`'s second backend instance                              */
/* ------------------------------------------------------------------ */

void xbd_attach_instance_init(struct xbd_attach_instance *inst)
{
	memset(inst, 0, sizeof(*inst));
	inst->loop_fd = -1;
}

/* The device id of the instance: the VM's own if free in dom0, else
 * another one (ids beyond xvdzz's range are not used by anyone). */
static int pick_devid(struct xbd_platform *p, const struct xbd_vm_disk *vm,
		      const struct xbd_attach_instance_opts *o,
		      const char *be_type, struct xbd_attach_instance *inst)
{
	unsigned k;

	for (k = 0; k < 1000; k++) {
		uint32_t devid = k == 0 ? vm->devid : (1u << 28) | ((702u + k) << 8);
		char be[160];

		snprintf(inst->fe_path, sizeof(inst->fe_path), XBD_ATTACH_FE_DIR "/%u",
			 devid);
		xbd_backend_path(be, sizeof(be), inst->be_domid, be_type, 0, devid);
		if (o->clear_stale && xbd_xs_exists(p, XBD_XS_NO_TXN, inst->fe_path)) {
			o->clear_stale(p, inst->fe_path);
			/* its backend may still be closing the dead
			 * instance (and write its state again): another id */
			continue;
		}
		if (!xbd_xs_exists(p, XBD_XS_NO_TXN, inst->fe_path) &&
		    !xbd_xs_exists(p, XBD_XS_NO_TXN, be)) {
			inst->devid = devid;
			return 0;
		}
	}
	return -ENOSPC;
}

/* "FORMAT:PATH" of qdisk/tapdisk params: raw files can go through a
 * loop device; other formats cannot be read by kernel blkback. */
static int qdisk_raw_path(const struct xbd_vm_disk *vm,
			  const struct xbd_attach_instance_opts *o,
			  const char **path)
{
	static const char *const raw[] = { "raw", "aio", "file" };
	const char *params = vm->params, *colon;
	size_t i;

	if (!params || !*params) {
		xbd_err("%s: %s: its %s backend names no file (no params)", o->vm_name,
			vm->vdev, vm->be_type);
		return -EINVAL;
	}
	colon = strchr(params, ':');
	*path = params;
	if (colon && params[0] != '/') {
		size_t n = (size_t)(colon - params);

		*path = colon + 1;
		for (i = 0; i < XBD_ARRAY_SIZE(raw); i++)
			if (strlen(raw[i]) == n && !strncmp(params, raw[i], n))
				return 0;
		xbd_err("%s: %s: disk format %.*s cannot be attached (kernel blkback reads raw images only)",
			o->vm_name, vm->vdev, (int)n, params);
		return -EMEDIUMTYPE;
	}
	return 0;
}

/* The spec of the second vbd, from what serves the VM's. */
static int instance_spec(const struct xbd_vm_disk *vm,
			 const struct xbd_attach_instance_opts *o,
			 struct xbd_vbd_spec *s, char *majmin, size_t majmin_len,
			 struct xbd_attach_instance *inst)
{
	const char *path;
	int err;

	if (!strcmp(vm->be_type, "vbd")) {
		/* kernel blkback (the sim's blkback on the sim): the same
		 * storage, in the backend's domain, read-only unless rw */
		if (!vm->params && !vm->physical_device) {
			xbd_err("%s: %s: its backend names no storage (no params)",
				o->vm_name, vm->vdev);
			return -EINVAL;
		}
		if (o->rw && vm->mode && !strchr(vm->mode, 'w')) {
			xbd_err("%s: %s: the disk is read-only (backend mode %s); --rw refused",
				o->vm_name, vm->vdev, vm->mode);
			return -EROFS;
		}
		s->be_domid = vm->be_domid;
		s->params = vm->params;
		s->type = vm->type;
		s->physical_device = vm->physical_device;
		inst->backend_kind = o->sim ? "sim-blkback" : "blkback";
		return 0;
	}
	if (!strcmp(vm->be_type, "qdisk") || !strcmp(vm->be_type, "vbd3")) {
		err = qdisk_raw_path(vm, o, &path);
		if (err)
			return err;
		if (o->sim) {
			xbd_err("%s: %s: served from a file by %s; attaching it needs a loop device and kernel blkback, which the simulated platform does not have",
				o->vm_name, vm->vdev,
				strcmp(vm->be_type, "qdisk") ? "tapdisk" : "QEMU (qdisk)");
			return -EOPNOTSUPP;
		}
		if (vm->be_domid != 0) {
			xbd_err("%s: %s: its file is in domain %u, not in dom0; cannot make a loop device of it",
				o->vm_name, vm->vdev, vm->be_domid);
			return -EOPNOTSUPP;
		}
		err = xbd_loop_attach(path, !o->rw, inst->loop_dev, sizeof(inst->loop_dev),
				      majmin, majmin_len, &inst->loop_fd);
		if (err) {
			xbd_err("%s: %s: cannot make a loop device of %s: %s", o->vm_name,
				vm->vdev, path, xbd_strerror(err));
			return err;
		}
		s->be_domid = 0;
		s->params = inst->loop_dev;
		s->type = "phy";
		s->physical_device = majmin;
		inst->backend_kind = "blkback";
		return 0;
	}
	if (!strcmp(vm->be_type, "xbd")) {
		xbd_err("%s: %s: served by `xbd serve`, which shows it in its own FUSE mount (xbd serve --mount)",
			o->vm_name, vm->vdev);
		return -EOPNOTSUPP;
	}
	xbd_err("%s: %s: backend type '%s' is not supported (vbd, qdisk and vbd3 are)",
		o->vm_name, vm->vdev, vm->be_type);
	return -EOPNOTSUPP;
}

int xbd_attach_instance_create(struct xbd_platform *p,
			       const struct xbd_vm_disk *vm,
			       const struct xbd_attach_instance_opts *o,
			       struct xbd_attach_instance *inst)
{
	struct xbd_vbd_spec s = { .fe_domid = 0, .be_type = "vbd", .vdev = vm->vdev,
				  .fe_extra = o->fe_extra, .mode = o->rw ? "w" : "r" };
	char majmin[24];
	int err;

	err = instance_spec(vm, o, &s, majmin, sizeof(majmin), inst);
	if (err)
		return err;
	inst->be_domid = s.be_domid;
	err = pick_devid(p, vm, o, s.be_type, inst);
	if (err) {
		xbd_err("%s: %s: no free device id in dom0", o->vm_name, vm->vdev);
		return err;
	}
	s.devid = inst->devid;
	s.fe_path = inst->fe_path;
	err = xbd_vbd_create(p, &s, inst->be_path, sizeof(inst->be_path));
	if (err) {
		xbd_err("%s: %s: cannot create the device nodes: %s", o->vm_name,
			vm->vdev, xbd_strerror(err));
		return err;
	}
	inst->nodes = true;
	return 0;
}

void xbd_attach_instance_destroy(struct xbd_platform *p,
				 struct xbd_attach_instance *inst)
{
	if (inst->nodes)
		xbd_vbd_destroy(p, inst->fe_path, inst->be_path);
	inst->nodes = false;
	if (inst->loop_fd >= 0)
		close(inst->loop_fd); /* autoclear frees the loop device */
	inst->loop_fd = -1;
}

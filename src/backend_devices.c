/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * How devices come to the backend: hot-plugged by `xbd serve` (the
 * device pair written through the toolstack module, then served at
 * once), or adopted from a toolstack's backend/<type> directory when
 * xbd plays blkback (`xbd sim blkback`: the directory is watched, each
 * new device is opened and handed to the xenbus half in src/backend.c).
 */
#include "backend_priv.h"
#include "xbd/common.h"
#include "xbd/ctl.h"
#include "xbd/toolstack.h"
#include "xbd/util.h"
#include "xbd/xenbus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ------------------------------------------------------------------ */
/* xbd serve: hot-plugging                                             */
/* ------------------------------------------------------------------ */

/* What the toolstack module writes after a hot-plugged device's
 * standard nodes, in the same transaction: the serving process, the
 * features, and InitWait (this backend is ready at once). */
static int hotplug_fill(struct xbd_platform *p, xbd_xs_txn t,
			const char *be_path XBD_UNUSED, void *arg)
{
	struct be_dev *d = arg;
	int err = xbd_xs_write_proc(p, t, d->be_path, &d->be->proc);

	err = err ? err : xbd_be_write_features(d, t);
	return err ? err : xbd_be_write_node(d->be, t, d->be_path, "state", "%d",
				      XenbusStateInitWait);
}

/* Both directories, as a toolstack writes them (src/toolstack.c). */
static int hotplug_nodes(struct be_dev *d)
{
	const char *be_extra[] = { "xbd-format", d->image_format,
				   "hotplug-status", "connected", NULL };
	struct xbd_vbd_made made = { 0 };
	struct xbd_vbd_spec s = {
		.fe_domid = d->fe_domid, .be_domid = d->be->self,
		.be_type = d->type, .devid = d->devid, .vdev = d->vdev,
		.params = d->image_path,
		.type = strcmp(d->image_format, "null") ? "file" : "null",
		.mode = d->lim.read_only ? "r" : "w",
		.be_extra = be_extra, .be_fill = hotplug_fill, .be_fill_arg = d,
		.made = &made,
	};
	int err = xbd_vbd_create(d->be->p, &s, NULL, 0);

	d->made_be_root = made.be_root;
	d->made_fe_vbd = made.fe_vbd;
	return err;
}

int xbd_backend_hotplug(struct xbd_backend *be,
			const struct xbd_backend_disk *disk,
			struct xbd_backend_dev **out)
{
	struct be_dev *d;
	int err, alive;

	if (be->stopping) {
		xbd_image_close(disk->image);
		return -ESHUTDOWN;
	}
	alive = xbd_domain_alive(be->p, disk->fe_domid);
	if (alive <= 0) {
		xbd_err("%s: no such domain", disk->vm_name);
		xbd_image_close(disk->image);
		return alive < 0 ? alive : -ESRCH;
	}
	d = xbd_be_dev_new(be, XBD_BACKEND_TYPE, disk->fe_domid, disk->devid);
	if (!d) {
		xbd_err("%s: out of memory", disk->vm_name);
		xbd_image_close(disk->image);
		return -ENOMEM;
	}
	d->hotplugged = true;
	d->image = disk->image;
	d->read_only = disk->read_only;
	d->vm_name = strdup(disk->vm_name);
	d->image_path = strdup(disk->image_path ? disk->image_path : "");
	d->image_format = strdup(disk->image_format ? disk->image_format
						    : xbd_image_name(disk->image));
	d->mount = disk->mount ? strdup(disk->mount) : NULL;
	if (!d->vm_name || !d->image_path || !d->image_format ||
	    (disk->mount && !d->mount)) {
		err = -ENOMEM;
		xbd_err("%s: out of memory", disk->vm_name);
		goto fail;
	}
	xbd_be_set_limits(be, d);

	err = hotplug_nodes(d);
	if (err == -EEXIST) {
		xbd_err("%s: %s: the VM already has this disk", d->vm_name,
			d->vdev);
		goto fail;
	}
	if (err == -EAGAIN) {
		/* xbd_xs_transaction gave up: something kept writing there */
		xbd_err("%s: %s: cannot write the device's xenstore nodes: they "
			"kept changing (is the guest rewriting its device/ nodes?)",
			d->vm_name, d->vdev);
		goto fail;
	}
	if (err) {
		xbd_err("%s: %s: cannot write the device's xenstore nodes: %s",
			d->vm_name, d->vdev, xbd_strerror(err));
		goto fail;
	}
	d->state = XenbusStateInitWait;
	err = xbd_be_watch_dev(d);
	if (err) {
		xbd_err("%s: %s: cannot watch xenstore: %s", d->vm_name, d->vdev,
			xbd_strerror(err));
		xbd_be_dev_finish(d, "watch failed");
		return err;
	}
	xbd_be_ctl_register(d);
	xbd_debug("%s: %s: hot-plugged at %s", d->vm_name, d->vdev, d->be_path);
	if (out)
		*out = (struct xbd_backend_dev *)d;
	return 0;
fail:
	d->removed = true; /* nothing was written: freed by the loop */
	return err;
}

/* ------------------------------------------------------------------ */
/* blkback: adopting a toolstack's devices                             */
/* ------------------------------------------------------------------ */

/* params: "PATH" (raw), or "raw:PATH", "cow:PATH", "null:SIZE". */
static int open_params(const char *params, bool ro, struct xbd_image **img,
		       char **format)
{
	static const char *const kinds[] = { "raw", "cow", "null" };
	const char *kind = "raw", *path = params;
	size_t i;

	for (i = 0; i < XBD_ARRAY_SIZE(kinds); i++) {
		size_t n = strlen(kinds[i]);

		if (!strncmp(params, kinds[i], n) && params[n] == ':') {
			kind = kinds[i];
			path = params + n + 1;
		}
	}
	*format = strdup(kind);
	if (!*format)
		return -ENOMEM;
	/* as the kernel's blkback, which takes no image locks: the
	 * toolstack and `xbd serve`'s xenstore check keep writers apart */
	return xbd_image_open_by_name(kind, path, NULL, ro, XBD_IMAGE_LOCK_NONE,
				      img);
}

static void try_adopt(struct xbd_backend *be, uint16_t fe, uint32_t devid)
{
	char dir[BE_PATH_MAX], *fe_path = NULL, *params = NULL, *mode = NULL;
	unsigned long long online = 0, fe_id, state = XenbusStateInitialising;
	struct be_dev *d;
	int err;

	if (be->stopping || xbd_be_find_dev(be, be->watch_type, fe, devid))
		return;
	xbd_backend_path(dir, sizeof(dir), be->self, be->watch_type, fe, devid);
	/* a toolstack writes these in one transaction; until they are all
	 * there, the next watch event tries again */
	if (xbd_be_read_uint_node(be, dir, "online", &online) || online != 1 ||
	    xbd_be_read_uint_node(be, dir, "frontend-id", &fe_id) || fe_id != fe ||
	    xbd_be_read_node(be, dir, "frontend", &fe_path) ||
	    xbd_be_read_node(be, dir, "params", &params) ||
	    xbd_be_read_node(be, dir, "mode", &mode))
		goto out;
	err = xbd_be_read_uint_node(be, dir, "state", &state);
	if ((err && err != -ENOENT) || state > XenbusStateInitialising)
		goto out; /* not a fresh device (closed, or another server's) */
	if (strncmp(fe_path, "/local/domain/", 14) || strlen(fe_path) >= BE_PATH_MAX)
		goto out;

	d = xbd_be_dev_new(be, be->watch_type, fe, devid);
	if (!d)
		goto out;
	snprintf(d->fe_path, sizeof(d->fe_path), "%s", fe_path);
	xbd_be_read_vm_name(d);
	d->read_only = !strchr(mode, 'w');
	d->image_path = strdup(params);
	err = open_params(params, d->read_only, &d->image, &d->image_format);
	if (!err) {
		xbd_be_set_limits(be, d);
		xbd_be_ctl_register(d);
	}
	if (xbd_be_watch_dev(d)) {
		xbd_be_dev_finish(d, "watch failed");
		goto out;
	}
	if (err) {
		xbd_be_dev_fatal(d, "cannot open the image", err);
		goto out;
	}
	err = xbd_xs_transaction(be->p, xbd_be_publish_features_txn, d);
	if (err) {
		xbd_be_dev_finish(d, "cannot publish features");
		goto out;
	}
	d->state = XenbusStateInitWait;
	xbd_info("%s: %s: serving %s%s", xbd_be_dev_label(d), d->vdev, params,
		 d->read_only ? " (read-only)" : "");
	xbd_be_dev_evaluate(d);
out:
	free(fe_path);
	free(params);
	free(mode);
}

/* Every device under the type directory: adopt the new ones, bring the
 * known ones up to date. */
static void scan_type_dir(struct xbd_backend *be)
{
	char **fes = NULL;
	unsigned nfe = 0, i, j;
	struct be_dev *d;

	for (d = be->devs; d; d = d->next)
		if (!strcmp(d->type, be->watch_type))
			xbd_be_dev_evaluate(d);
	if (xbd_xs_directory(be->p, XBD_XS_NO_TXN, be->type_dir, &fes, &nfe))
		return;
	for (i = 0; i < nfe; i++) {
		char dir[BE_PATH_MAX + 16];
		char **ids = NULL;
		unsigned nid = 0;
		unsigned long long fe, id;

		if (xbd_parse_uint(fes[i], XBD_BE_MAX_GUEST_DOMID, &fe))
			continue;
		snprintf(dir, sizeof(dir), "%s/%s", be->type_dir, fes[i]);
		if (xbd_xs_directory(be->p, XBD_XS_NO_TXN, dir, &ids, &nid))
			continue;
		for (j = 0; j < nid; j++)
			if (!xbd_parse_uint(ids[j], UINT32_MAX, &id))
				try_adopt(be, (uint16_t)fe, (uint32_t)id);
		free(ids);
	}
	free(fes);
}

/* A type watch event: path is the type dir or below. */
void xbd_be_type_event(struct xbd_backend *be, const char *path)
{
	size_t n = strlen(be->type_dir);
	char fe_s[16], id_s[16];
	unsigned long long fe, id;
	struct be_dev *d;

	if (strncmp(path, be->type_dir, n) || (path[n] && path[n] != '/'))
		return;
	if (path[n] && sscanf(path + n, "/%15[^/]/%15[^/]", fe_s, id_s) == 2 &&
	    !xbd_parse_uint(fe_s, XBD_BE_MAX_GUEST_DOMID, &fe) &&
	    !xbd_parse_uint(id_s, UINT32_MAX, &id)) {
		d = xbd_be_find_dev(be, be->watch_type, (uint16_t)fe, (uint32_t)id);
		if (d)
			xbd_be_dev_evaluate(d);
		else
			try_adopt(be, (uint16_t)fe, (uint32_t)id);
		return;
	}
	scan_type_dir(be);
}

int xbd_backend_watch_type(struct xbd_backend *be, const char *type)
{
	int err;

	if (be->type_dir[0] || strlen(type) >= sizeof(be->watch_type))
		return -EINVAL;
	snprintf(be->watch_type, sizeof(be->watch_type), "%s", type);
	snprintf(be->type_dir, sizeof(be->type_dir), "/local/domain/%u/backend/%s",
		 be->self, type);
	err = xbd_xs_watch(be->p, be->type_dir, XBD_BE_TOKEN_TYPE);
	if (err) {
		xbd_err("cannot watch %s: %s", be->type_dir, xbd_strerror(err));
		be->type_dir[0] = '\0';
	}
	return err;
}

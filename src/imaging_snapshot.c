/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * --snapshot for `xbd image`: the disk's store cloned in an instant, so
 * that the VM is paused only for the clone and the copy is read from
 * the clone.  Supported stores: a raw file (blkback's params, qdisk's
 * raw:/aio:, or the file behind a loop device) on a file system with
 * reflinks (XFS made with reflink=1, btrfs), cloned with FICLONE into an
 * unnamed file (O_TMPFILE) beside it, which vanishes with its last
 * descriptor, even after a kill -9.  LVM logical volumes are refused:
 * their snapshot needs device-mapper, which xbd does not drive.
 */
#include "xbd/common.h"
#include "xbd/imaging.h"
#include "xbd/toolstack.h"
#include "xbd/util.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/fs.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* The file behind loop device dev, or -ENOENT when dev is no loop. */
static int loop_backing_file(dev_t dev, char *out, size_t len)
{
	char path[96];
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/loop/backing_file",
		 major(dev), minor(dev));
	f = fopen(path, "re");
	if (!f)
		return -ENOENT;
	n = fread(out, 1, len - 1, f);
	fclose(f);
	out[n] = '\0';
	out[strcspn(out, "\n")] = '\0';
	/* "(deleted)": the loop device holds a file nobody can clone */
	return n && out[0] == '/' && !strstr(out, " (deleted)") ? 0 : -ENOENT;
}

static bool is_dm(dev_t dev)
{
	char path[96];

	snprintf(path, sizeof(path), "/sys/dev/block/%u:%u/dm", major(dev), minor(dev));
	return !access(path, F_OK);
}

int xbd_snapshot_store(const struct xbd_vm_disk *d, uint16_t self_domid,
		       const char *what, char *store, size_t len)
{
	const char *path = d->params;
	struct stat st;

	if (d->be_domid != self_domid) {
		xbd_err("%s: --snapshot: its store is in domain %u (a driver domain), not here; use --pause",
			what, d->be_domid);
		return -EOPNOTSUPP;
	}
	if (!path || !*path) {
		xbd_err("%s: --snapshot: its backend names no store (params); use --pause", what);
		return -EOPNOTSUPP;
	}
	if (!strcmp(d->be_type, "qdisk")) {
		const char *colon = strchr(path, ':');

		if (colon && strncmp(path, "raw:", 4) && strncmp(path, "aio:", 4)) {
			xbd_err("%s: --snapshot: its store %s is not a raw file (only raw files can be cloned); use --pause",
				what, path);
			return -EOPNOTSUPP;
		}
		if (colon)
			path = colon + 1;
	} else if (strcmp(d->be_type, "vbd")) {
		xbd_err("%s: --snapshot: a %s backend's store cannot be cloned (only blkback's and qdisk's raw files); use --pause",
			what, d->be_type);
		return -EOPNOTSUPP;
	}
	if (stat(path, &st)) {
		int err = -errno;

		xbd_err("%s: --snapshot: its store %s: %s", what, path, xbd_strerror(err));
		return err;
	}
	if (S_ISBLK(st.st_mode)) {
		if (!loop_backing_file(st.st_rdev, store, len))
			return 0;
		if (is_dm(st.st_rdev))
			xbd_err("%s: --snapshot: its store %s is a device-mapper volume (LVM); an LVM snapshot needs device-mapper snapshot targets, which xbd does not drive; use --pause",
				what, path);
		else
			xbd_err("%s: --snapshot: its store %s is a block device that cannot snapshot (only a raw file on XFS/btrfs, or a loop device over one); use --pause",
				what, path);
		return -EOPNOTSUPP;
	}
	if (!S_ISREG(st.st_mode)) {
		xbd_err("%s: --snapshot: its store %s is neither a file nor a block device", what, path);
		return -EOPNOTSUPP;
	}
	if ((size_t)snprintf(store, len, "%s", path) >= len)
		return -ENAMETOOLONG;
	return 0;
}

int xbd_snapshot_prepare(const char *store, const char *what, int *fd)
{
	char dir[4096];
	char *slash;
	int err;

	if ((size_t)snprintf(dir, sizeof(dir), "%s", store) >= sizeof(dir))
		return -ENAMETOOLONG;
	slash = strrchr(dir, '/');
	if (slash == dir)
		dir[1] = '\0';
	else if (slash)
		*slash = '\0';
	else
		snprintf(dir, sizeof(dir), ".");
	/* the clone must be on the store's file system; unnamed, so that
	 * nothing of it outlives us */
	*fd = open(dir, O_TMPFILE | O_RDWR | O_CLOEXEC, 0600);
	if (*fd >= 0)
		return 0;
	err = -errno;
	xbd_err("%s: --snapshot: cannot make the clone's file in %s: %s", what, dir,
		xbd_strerror(err));
	return err;
}

int xbd_snapshot_clone(const char *store, int fd, const char *what)
{
	int src = open(store, O_RDONLY | O_CLOEXEC);
	int err = 0;

	if (src < 0) {
		err = -errno;
		xbd_err("%s: --snapshot: %s: %s", what, store, xbd_strerror(err));
		return err;
	}
	/* FICLONE writes back the store's dirty pages first: what the
	 * backend completed before the pause is in the clone */
	if (ioctl(fd, FICLONE, src))
		err = -errno;
	close(src);
	if (err == -EOPNOTSUPP || err == -EINVAL || err == -EXDEV || err == -ENOTTY)
		xbd_err("%s: --snapshot: the file system of %s has no reflinks (FICLONE: %s); it takes XFS made with reflink=1 or btrfs; use --pause",
			what, store, xbd_strerror(err));
	else if (err)
		xbd_err("%s: --snapshot: cloning %s failed: %s", what, store, xbd_strerror(err));
	return err;
}

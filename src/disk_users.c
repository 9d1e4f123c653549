/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Who else uses a disk's storage (include/xbd/disk_users.h): a walk of
 * every backend directory of every domain in xenstore, and of the loop
 * devices in sysfs.  Files are compared by device and inode, never by
 * name: one file has many names (symlinks, hard links, bind mounts,
 * "aio:" prefixes), and a name can be reused for another file.
 */
#include "xbd/disk_users.h"
#include "xbd/common.h"
#include "xbd/util.h"
#include "xbd/xenbus.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

/* The backend types of every toolstack: the kernel's blkback, QEMU,
 * tapdisk and xbd itself. */
static const char *const be_types[] = { "vbd", "qdisk", "vbd3", "xbd" };

struct target {
	bool is_blk;
	dev_t dev, rdev;   /* a file's device, or a block device's number */
	ino_t ino;
	dev_t loops[XBD_DISK_USERS_MAX_LOOPS]; /* loop devices backing it */
	unsigned nloops;
	char loop_name[32];                     /* the first of them */
	unsigned devices;                       /* backend devices seen */
};

static bool same_storage(const struct target *t, const struct stat *st)
{
	unsigned i;

	if (!S_ISBLK(st->st_mode))
		return !t->is_blk && st->st_dev == t->dev && st->st_ino == t->ino;
	if (t->is_blk)
		return st->st_rdev == t->rdev;
	for (i = 0; i < t->nloops; i++)
		if (st->st_rdev == t->loops[i])
			return true;
	return false;
}

static bool same_device(const struct target *t, dev_t dev)
{
	struct stat st = { .st_mode = S_IFBLK, .st_rdev = dev };

	return same_storage(t, &st);
}

/* A small sysfs file's first line, without its newline. */
static int read_line(const char *path, char *buf, size_t len)
{
	ssize_t n;
	int fd = open(path, O_RDONLY | O_CLOEXEC);

	if (fd < 0)
		return -errno;
	n = read(fd, buf, len - 1);
	close(fd);
	if (n < 0)
		return -errno;
	buf[n] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

/* The loop devices whose backing file is the target file.  -E2BIG
 * when more bound loop devices exist than are looked at: the check
 * then fails closed rather than miss one. */
static int find_loops(struct target *t)
{
	char path[300], line[4096];
	unsigned seen = 0, maj, min;
	struct dirent *e;
	struct stat st;
	DIR *d;

	if (t->is_blk || !(d = opendir("/sys/block")))
		return 0;
	while ((e = readdir(d))) {
		if (strncmp(e->d_name, "loop", 4))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file",
			 e->d_name);
		if (read_line(path, line, sizeof(line)))
			continue; /* not bound to a file */
		if (++seen > XBD_DISK_USERS_MAX_LOOPS) {
			closedir(d);
			return -E2BIG;
		}
		if (stat(line, &st) || S_ISBLK(st.st_mode) || st.st_dev != t->dev ||
		    st.st_ino != t->ino)
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/dev", e->d_name);
		if (read_line(path, line, sizeof(line)) ||
		    sscanf(line, "%u:%u", &maj, &min) != 2)
			continue;
		if (!t->nloops)
			snprintf(t->loop_name, sizeof(t->loop_name), "/dev/%.20s",
				 e->d_name);
		t->loops[t->nloops++] = makedev(maj, min);
	}
	closedir(d);
	return 0;
}

static int xs_dir(struct xbd_platform *p, const char *path, char ***names,
		  unsigned *n)
{
	int err = xbd_xs_directory(p, XBD_XS_NO_TXN, path, names, n);

	if (err == -ENOENT) {
		*names = NULL;
		*n = 0;
		return 0;
	}
	return err;
}

/* "MAJOR:MINOR" in hex, as blkback's hotplug script writes it. */
static bool parse_physical_device(const char *s, dev_t *dev)
{
	unsigned long maj, min;
	char *end;

	if (!isxdigit((unsigned char)s[0]))
		return false;
	maj = strtoul(s, &end, 16);
	if (*end != ':' || !isxdigit((unsigned char)end[1]))
		return false;
	min = strtoul(end + 1, &end, 16);
	if (*end || maj > 0xfff || min > 0xfffff)
		return false;
	*dev = makedev(maj, min);
	return true;
}

/* Whether params names the target: "PATH", or PATH after prefixes
 * such as "aio:", "raw:", "tapdisk:aio:", "phy:". */
static bool params_match(const struct target *t, const char *params)
{
	const char *s = params, *colon;
	struct stat st;

	while (*s != '/' && (colon = strchr(s, ':')))
		s = colon + 1;
	return *s == '/' && !stat(s, &st) && same_storage(t, &st);
}

/* A printable copy of a node someone else wrote, for one error line. */
static void printable(char *out, size_t len, const char *in)
{
	size_t i;

	for (i = 0; in[i] && i + 1 < len && i < 64; i++)
		out[i] = isprint((unsigned char)in[i]) ? in[i] : '?';
	out[i] = 0;
}

static void describe(struct xbd_platform *p, const char *dir,
		     const char *type, unsigned long long be,
		     unsigned long long fe, unsigned long long devid,
		     char *desc, size_t len)
{
	char path[300], name[80] = "", vdev[80] = "", *v = NULL;

	snprintf(path, sizeof(path), "/local/domain/%llu/name", fe);
	if (!xbd_xs_read_str(p, path, &v))
		printable(name, sizeof(name), v);
	free(v);
	v = NULL;
	snprintf(path, sizeof(path), "%s/dev", dir);
	if (!xbd_xs_read_str(p, path, &v))
		printable(vdev, sizeof(vdev), v);
	free(v);
	if (!vdev[0] && xbd_devid_to_vdev((uint32_t)devid, vdev, sizeof(vdev)))
		snprintf(vdev, sizeof(vdev), "device %llu", devid);
	if (!name[0])
		snprintf(name, sizeof(name), "domain %llu", fe);
	snprintf(desc, len, "%s's %s (%s backend in domain %llu)", name, vdev,
		 type, be);
}

/* 1 if the device at dir uses the target. */
static int device_uses(struct xbd_platform *p, const struct target *t,
		       const char *dir)
{
	char path[300], *v = NULL;
	bool match = false;
	dev_t dev;

	snprintf(path, sizeof(path), "%s/params", dir);
	if (!xbd_xs_read_str(p, path, &v))
		match = params_match(t, v);
	free(v);
	v = NULL;
	snprintf(path, sizeof(path), "%s/physical-device", dir);
	if (!match && !xbd_xs_read_str(p, path, &v))
		match = parse_physical_device(v, &dev) && same_device(t, dev);
	free(v);
	return match;
}

/* The devices of one backend type in domain be. */
static int scan_type(struct xbd_platform *p, struct target *t,
		     unsigned long long be, const char *type, char *desc,
		     size_t len)
{
	char dir[200], **fes = NULL, **ids = NULL;
	unsigned nfe, nid, i, j;
	unsigned long long fe, devid;
	int err, found = 0;

	snprintf(dir, sizeof(dir), "/local/domain/%llu/backend/%s", be, type);
	err = xs_dir(p, dir, &fes, &nfe);
	for (i = 0; !err && !found && i < nfe; i++) {
		if (xbd_parse_uint(fes[i], 0xffff, &fe))
			continue;
		snprintf(dir, sizeof(dir), "/local/domain/%llu/backend/%s/%llu",
			 be, type, fe);
		err = xs_dir(p, dir, &ids, &nid);
		if (!err && (nid > XBD_DISK_USERS_MAX_DEVICES - t->devices))
			err = -E2BIG;
		for (j = 0; !err && !found && j < nid; j++) {
			t->devices++;
			if (xbd_parse_uint(ids[j], UINT32_MAX, &devid))
				continue;
			snprintf(dir, sizeof(dir),
				 "/local/domain/%llu/backend/%s/%llu/%llu", be, type,
				 fe, devid);
			if (device_uses(p, t, dir)) {
				describe(p, dir, type, be, fe, devid, desc, len);
				found = 1;
			}
		}
		free(ids);
		ids = NULL;
	}
	free(fes);
	return err ? err : found;
}

int xbd_disk_find_user(struct xbd_platform *p, const char *path, char *desc,
		       size_t len)
{
	struct target *t;
	struct stat st;
	char **doms = NULL;
	unsigned ndom, i, k;
	unsigned long long be;
	int err = 0, found = 0;

	if (stat(path, &st))
		return -errno;
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->is_blk = S_ISBLK(st.st_mode);
	t->dev = st.st_dev;
	t->ino = st.st_ino;
	t->rdev = st.st_rdev;
	err = find_loops(t);
	if (!err)
		err = xs_dir(p, "/local/domain", &doms, &ndom);
	if (!err && ndom > XBD_DISK_USERS_MAX_DOMAINS)
		err = -E2BIG;
	for (i = 0; !err && !found && i < ndom; i++) {
		if (xbd_parse_uint(doms[i], 0xffff, &be))
			continue;
		for (k = 0; !err && !found && k < XBD_ARRAY_SIZE(be_types); k++) {
			err = scan_type(p, t, be, be_types[k], desc, len);
			if (err > 0) {
				found = 1;
				err = 0;
			}
		}
	}
	free(doms);
	if (!err && !found && t->nloops) {
		snprintf(desc, len, "%s (a loop device backing it)", t->loop_name);
		found = 1;
	}
	free(t);
	return err ? err : found;
}

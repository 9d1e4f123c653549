/* SPDX-License-Identifier: GPL-2.0-or-later */
/* xbd image --snapshot's choice of store (src/imaging_snapshot.c): which
 * backends' params name a file that can be cloned, the file behind a
 * loop device (as root, with losetup), and the refusals; and a clone on
 * a file system without reflinks failing as -EOPNOTSUPP-like errors. */
#include "tests/lib/check.h"
#include "xbd/imaging.h"
#include "xbd/toolstack.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int store_of(const char *be_type, const char *params, uint16_t be_domid,
		    char *out, size_t len)
{
	struct xbd_vm_disk d;

	memset(&d, 0, sizeof(d));
	snprintf(d.be_type, sizeof(d.be_type), "%s", be_type);
	d.params = (char *)params;
	d.be_domid = be_domid;
	return xbd_snapshot_store(&d, 0, "vm1/xvda", out, len);
}

/* A loop device over file (as root with losetup): its backing file is
 * the store. */
static void test_loop(const char *file)
{
	char cmd[PATH_MAX + 64], dev[64] = "", store[PATH_MAX], real[PATH_MAX];
	FILE *p;

	if (geteuid() != 0 || system("command -v losetup >/dev/null 2>&1")) {
		printf("test_imaging_snapshot: loop device part skipped (needs root and losetup)\n");
		return;
	}
	snprintf(cmd, sizeof(cmd), "losetup -f --show '%s' 2>/dev/null", file);
	p = popen(cmd, "r");
	if (!p || !fgets(dev, sizeof(dev), p) || dev[0] != '/') {
		if (p)
			pclose(p);
		printf("test_imaging_snapshot: loop device part skipped (losetup failed)\n");
		return;
	}
	pclose(p);
	dev[strcspn(dev, "\n")] = '\0';
	CHECK_EQ(store_of("vbd", dev, 0, store, sizeof(store)), 0);
	CHECK(realpath(file, real) && !strcmp(store, real));
	snprintf(cmd, sizeof(cmd), "losetup -d '%s'", dev);
	CHECK_EQ(system(cmd), 0);
}

int main(void)
{
	char dir[] = "/tmp/xbd-snap.XXXXXX", file[PATH_MAX], raw[PATH_MAX + 8];
	char store[PATH_MAX];
	int fd;

	CHECK(mkdtemp(dir) != NULL);
	snprintf(file, sizeof(file), "%s/disk.img", dir);
	fd = open(file, O_CREAT | O_RDWR, 0600);
	CHECK(fd >= 0 && ftruncate(fd, 1 << 20) == 0);
	close(fd);

	/* blkback with a file; qdisk raw: and aio: */
	CHECK_EQ(store_of("vbd", file, 0, store, sizeof(store)), 0);
	CHECK(!strcmp(store, file));
	snprintf(raw, sizeof(raw), "raw:%s", file);
	CHECK_EQ(store_of("qdisk", raw, 0, store, sizeof(store)), 0);
	CHECK(!strcmp(store, file));
	snprintf(raw, sizeof(raw), "aio:%s", file);
	CHECK_EQ(store_of("qdisk", raw, 0, store, sizeof(store)), 0);
	CHECK(!strcmp(store, file));

	/* refused: another format, a driver domain, other backends, no
	 * params, a missing file, something that is no file */
	snprintf(raw, sizeof(raw), "qcow2:%s", file);
	CHECK_EQ(store_of("qdisk", raw, 0, store, sizeof(store)), -EOPNOTSUPP);
	CHECK_EQ(store_of("vbd", file, 3, store, sizeof(store)), -EOPNOTSUPP);
	CHECK_EQ(store_of("vbd3", file, 0, store, sizeof(store)), -EOPNOTSUPP);
	CHECK_EQ(store_of("vbd", "", 0, store, sizeof(store)), -EOPNOTSUPP);
	CHECK_EQ(store_of("vbd", NULL, 0, store, sizeof(store)), -EOPNOTSUPP);
	CHECK_EQ(store_of("vbd", "/nonexistent/disk.img", 0, store, sizeof(store)), -ENOENT);
	CHECK_EQ(store_of("vbd", "/dev/null", 0, store, sizeof(store)), -EOPNOTSUPP);
	CHECK_EQ(store_of("vbd", dir, 0, store, sizeof(store)), -EOPNOTSUPP);

	/* the clone file is unnamed: the directory stays as it was */
	CHECK_EQ(xbd_snapshot_prepare(file, "vm1/xvda", &fd), 0);
	if (fd >= 0) {
		int err = xbd_snapshot_clone(file, fd, "vm1/xvda");
		struct stat st;

		/* 0 where the file system has reflinks, an error else */
		CHECK(err == 0 || err == -EOPNOTSUPP || err == -EINVAL || err == -EXDEV ||
		      err == -ENOTTY);
		CHECK(fstat(fd, &st) == 0 && st.st_nlink == 0);
		close(fd);
	}
	CHECK_EQ(xbd_snapshot_clone("/nonexistent/disk.img", 0, "vm1/xvda"), -ENOENT);

	test_loop(file);
	unlink(file);
	rmdir(dir);
	return check_report("test_imaging_snapshot");
}

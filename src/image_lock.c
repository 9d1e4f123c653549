/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Image locks: open file description locks on the image file, in QEMU's
 * lock bytes, so that two writers of one image refuse each other, and
 * QEMU and xbd see each other.
 *
 * QEMU (block/file-posix.c) describes a user of an image with shared
 * (F_RDLCK) locks on single bytes: byte 100+i says "I use permission i",
 * byte 200+i says "I let nobody else have permission i", for i = 0
 * consistent read, 1 write, 2 write-unchanged, 3 resize.  Two users
 * conflict when one holds 100+i and the other 200+i; a test lock
 * (F_OFD_GETLK, F_WRLCK) on a byte sees another description's lock but
 * never our own.  Taking our bytes first and testing after, as QEMU
 * does, leaves no window in which two openers both miss each other.
 *
 * xbd read-only: uses read; shares no write, no resize.  xbd writable:
 * uses read and write; shares no write (unless share_rw), no resize.
 * So two readers share, a reader and a writer refuse each other, and a
 * QEMU guest disk (write, sharing no write) or qemu-io refuses xbd and
 * is refused by it.  Closing the fd drops the locks: a killed xbd
 * leaves nothing behind.
 */
#include "image_priv.h"
#include "xbd/common.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#define LOCK_PERM_BASE 100   /* QEMU's RAW_LOCK_PERM_BASE */
#define LOCK_SHARED_BASE 200 /* QEMU's RAW_LOCK_SHARED_BASE */
enum { PERM_READ = 0, PERM_WRITE = 1, PERM_RESIZE = 3 };

/* Bounds the search for a lock's holder in /proc (a busy host). */
#define HOLDER_MAX_FDS 200000

static int lock_byte(int fd, off_t byte)
{
	struct flock fl = { .l_type = F_RDLCK, .l_whence = SEEK_SET,
			    .l_start = byte, .l_len = 1 };

	return fcntl(fd, F_OFD_SETLK, &fl) ? -errno : 0;
}

/* 1 if another open file description holds a lock on byte, else 0 or
 * -errno. */
static int byte_taken(int fd, off_t byte)
{
	struct flock fl = { .l_type = F_WRLCK, .l_whence = SEEK_SET,
			    .l_start = byte, .l_len = 1 };

	if (fcntl(fd, F_OFD_GETLK, &fl))
		return -errno;
	return fl.l_type != F_UNLCK;
}

/* "xbd serve" for an xbd (its subcommand tells which), else the
 * program's name: what a user recognises in ps. */
static void proc_name(const char *pid, char *out, size_t len)
{
	char path[64], buf[512] = "";
	const char *arg0, *base;
	ssize_t n = -1;
	int fd;

	snprintf(path, sizeof(path), "/proc/%.20s/cmdline", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd >= 0) {
		n = read(fd, buf, sizeof(buf) - 1);
		close(fd);
	}
	if (n <= 0) {
		snprintf(out, len, "a process");
		return;
	}
	buf[n] = 0;
	arg0 = buf;
	base = strrchr(arg0, '/');
	base = base ? base + 1 : arg0;
	if (!strcmp(base, "xbd") && (size_t)n > strlen(arg0) + 1)
		snprintf(out, len, "xbd %.32s", arg0 + strlen(arg0) + 1);
	else
		snprintf(out, len, "%.64s", base);
	for (char *c = out; *c; c++)
		if (!isprint((unsigned char)*c))
			*c = '?';
}

/* Whether fdinfo text has a lock on (dev, ino) covering byte. */
static bool fdinfo_locks(const char *text, dev_t dev, ino_t ino, off_t byte)
{
	const char *l = text;

	while ((l = strstr(l, "lock:"))) {
		unsigned maj, min;
		unsigned long long i, start;
		char end[24];

		l += 5;
		/* "1: OFDLCK ADVISORY  READ -1 fe:00:10952706 100 100" */
		if (sscanf(l, "%*s %*s %*s %*s %*s %x:%x:%llu %llu %23s", &maj,
			   &min, &i, &start, end) != 5)
			continue;
		if (maj != major(dev) || min != minor(dev) || i != (unsigned long long)ino)
			continue;
		if ((unsigned long long)byte >= start &&
		    (!strcmp(end, "EOF") ||
		     (unsigned long long)byte <= strtoull(end, NULL, 10)))
			return true;
	}
	return false;
}

/* Names the process whose lock covers byte of the file (not our own fd,
 * whose locks never conflict with ours): "xbd serve, pid 1234".  OFD
 * locks belong to no PID (F_OFD_GETLK answers -1), so this looks where
 * the kernel lists them, in every process's fdinfo.  false: not found
 * (another user's process we may not read, or a lock passed on). */
static bool find_holder(int own_fd, const struct stat *st, off_t byte,
			char *out, size_t len)
{
	unsigned budget = HOLDER_MAX_FDS;
	char self[16], path[300], text[4096];
	struct dirent *p, *f;
	bool found = false;
	DIR *proc, *fds;

	snprintf(self, sizeof(self), "%d", (int)getpid());
	proc = opendir("/proc");
	if (!proc)
		return false;
	while (!found && budget && (p = readdir(proc))) {
		if (!isdigit((unsigned char)p->d_name[0]))
			continue;
		snprintf(path, sizeof(path), "/proc/%.20s/fdinfo", p->d_name);
		fds = opendir(path);
		if (!fds)
			continue;
		while (!found && budget && (f = readdir(fds))) {
			ssize_t n;
			int fd;

			if (!isdigit((unsigned char)f->d_name[0]))
				continue;
			budget--;
			if (!strcmp(p->d_name, self) && atoi(f->d_name) == own_fd)
				continue;
			snprintf(path, sizeof(path), "/proc/%.20s/fdinfo/%.20s",
				 p->d_name, f->d_name);
			fd = open(path, O_RDONLY | O_CLOEXEC);
			if (fd < 0)
				continue;
			n = read(fd, text, sizeof(text) - 1);
			close(fd);
			if (n <= 0)
				continue;
			text[n] = 0;
			if (fdinfo_locks(text, st->st_dev, st->st_ino, byte)) {
				char name[80];

				proc_name(p->d_name, name, sizeof(name));
				snprintf(out, len, "%s, pid %.20s", name, p->d_name);
				found = true;
			}
		}
		closedir(fds);
	}
	closedir(proc);
	return found;
}

/* One line saying who is in the way: the byte found taken tells what
 * the other user does. */
static void report(int fd, const char *path, off_t byte, bool warn_only)
{
	char who[128] = "locked by another process";
	const char *what = "in use by another process";
	struct stat st;

	/* one that refuses writers and writes itself is "another writer" */
	if (byte == LOCK_SHARED_BASE + PERM_WRITE &&
	    byte_taken(fd, LOCK_PERM_BASE + PERM_WRITE) == 1)
		byte = LOCK_PERM_BASE + PERM_WRITE;
	if (byte == LOCK_PERM_BASE + PERM_WRITE)
		what = "in use by another writer";
	else if (byte == LOCK_SHARED_BASE + PERM_WRITE)
		what = "in use by another process that allows no writer";
	if (!fstat(fd, &st))
		find_holder(fd, &st, byte, who, sizeof(who));
	if (warn_only) /* said all the same: the user should know */
		xbd_err("%s: %s (%s); sharing it anyway (--share-rw)", path,
			what, who);
	else
		xbd_err("%s: %s (%s)", path, what, who);
}

int xbd_image_lock_fd(int fd, const char *path, bool write,
		      enum xbd_image_lock how)
{
	struct lock_pair { off_t mine, theirs; } bytes[4];
	unsigned n = 0, i;
	int err;

	if (how == XBD_IMAGE_LOCK_NONE)
		return 0;
	/* what we refuse: the others must not be using it (tested first:
	 * "another writer" says more than "refuses writers") */
	if (how != XBD_IMAGE_LOCK_SHARE_RW)
		bytes[n++] = (struct lock_pair){ LOCK_SHARED_BASE + PERM_WRITE,
						 LOCK_PERM_BASE + PERM_WRITE };
	bytes[n++] = (struct lock_pair){ LOCK_SHARED_BASE + PERM_RESIZE,
					 LOCK_PERM_BASE + PERM_RESIZE };
	/* what we use: the others must not have refused it */
	bytes[n++] = (struct lock_pair){ LOCK_PERM_BASE + PERM_READ,
					 LOCK_SHARED_BASE + PERM_READ };
	if (write)
		bytes[n++] = (struct lock_pair){ LOCK_PERM_BASE + PERM_WRITE,
						 LOCK_SHARED_BASE + PERM_WRITE };

	for (i = 0; i < n; i++) {
		err = lock_byte(fd, bytes[i].mine);
		if (err == -EAGAIN || err == -EACCES) {
			/* someone holds it exclusively: not QEMU's way, but
			 * just as much in the way */
			report(fd, path, bytes[i].mine, false);
			return -EBUSY;
		}
		if (err == -EINVAL || err == -ENOLCK || err == -EOPNOTSUPP) {
			/* a file system without byte-range locks: QEMU goes
			 * on without them too */
			xbd_debug("%s: cannot lock the image: %s", path,
				  xbd_strerror(err));
			return 0;
		}
		if (err) {
			xbd_err("%s: cannot lock the image: %s", path,
				xbd_strerror(err));
			return err;
		}
	}
	for (i = 0; i < n; i++) {
		err = byte_taken(fd, bytes[i].theirs);
		if (err < 0) {
			xbd_err("%s: cannot test the image's lock: %s", path,
				xbd_strerror(err));
			return err;
		}
		if (!err)
			continue;
		if (how == XBD_IMAGE_LOCK_SHARE_RW &&
		    bytes[i].theirs == LOCK_SHARED_BASE + PERM_WRITE) {
			report(fd, path, bytes[i].theirs, true);
			continue;
		}
		report(fd, path, bytes[i].theirs, false);
		return -EBUSY;
	}
	return 0;
}

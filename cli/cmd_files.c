/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `xbd ls|cat|cp VM:[FS:]PATH`: one file of a VM's file system in one
 * command, for scripts that pull a log from many VMs.  Each attaches the
 * VM read-only with --files in a private directory, works on
 * DIR/files/FS/PATH (the user-space, sandboxed trees of fuse/fsview.c)
 * and detaches again, whatever happens (a signal only cuts the work
 * short).  FS names the tree (xvda1, VG-LV, xvda); without it, the one
 * file system there is, or else the one holding /etc.
 *
 * Every path is the guest's: it is resolved with openat2(RESOLVE_IN_ROOT)
 * below the tree's root, so a guest symlink (absolute or with "..")
 * keeps its meaning inside the guest and never reaches dom0's files.
 */
#include "xbd/cli.h"
#include "xbd/common.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <linux/openat2.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#define FS_NAME_BUF 72 /* a tree's name: an export file name */

static volatile sig_atomic_t stop_sig;

static void on_signal(int sig)
{
	stop_sig = sig;
}

struct spec {
	char vm[256];
	char fs[FS_NAME_BUF];
	const char *path;         /* inside the file system, from '/' */
};

/* VM:PATH or VM:FS:PATH, PATH absolute. */
static int parse_spec(const char *cmd, const char *s, struct spec *sp)
{
	const char *c = strchr(s, ':'), *p;

	memset(sp, 0, sizeof(*sp));
	if (!c || c == s || (size_t)(c - s) >= sizeof(sp->vm)) {
		xbd_usage_err(cmd, "expected VM:PATH or VM:FS:PATH, got '%s'", s);
		return -EINVAL;
	}
	memcpy(sp->vm, s, (size_t)(c - s));
	p = c + 1;
	if (*p != '/') {
		const char *c2 = strchr(p, ':');

		if (!c2 || c2 == p || (size_t)(c2 - p) >= sizeof(sp->fs) ||
		    memchr(p, '/', (size_t)(c2 - p)) || c2[1] != '/') {
			xbd_usage_err(cmd, "expected VM:/PATH or VM:FS:/PATH, got '%s'", s);
			return -EINVAL;
		}
		memcpy(sp->fs, p, (size_t)(c2 - p));
		p = c2 + 1;
	}
	sp->path = p;
	return 0;
}

/* Opens PATH (absolute, the guest's) below the tree root ROOT; the
 * guest's symlinks are followed as the guest would, never out of it. */
static int open_in(int root, const char *path, int flags)
{
	struct open_how how = {
		.flags = (unsigned)(flags | O_CLOEXEC),
		.resolve = RESOLVE_IN_ROOT | RESOLVE_NO_MAGICLINKS | RESOLVE_NO_XDEV,
	};
	const char *rel = path + strspn(path, "/");
	long fd = syscall(SYS_openat2, root, *rel ? rel : ".", &how, sizeof(how));

	return fd < 0 ? -errno : (int)fd;
}

/* The tree to use when none is named. */
static int default_fs(const char *files, const char *vm, char *out, size_t len)
{
	char names[8][FS_NAME_BUF], list[512] = "";
	unsigned n = 0, with_etc = 0, pick = 0;
	DIR *d = opendir(files);
	struct dirent *e;
	int dirfd_files;

	if (!d) {
		xbd_err("%s: no file system found", vm);
		return -ENOENT;
	}
	dirfd_files = dirfd(d);
	while ((e = readdir(d)) && n < 8) {
		if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(names[0]))
			continue;
		memcpy(names[n++], e->d_name, strlen(e->d_name) + 1);
	}
	for (unsigned i = 0; i < n; i++) {
		struct stat st;
		int fd = openat(dirfd_files, names[i],
				O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC);

		/* /etc itself, not where a guest link to it points */
		if (fd >= 0 && !fstatat(fd, "etc", &st, AT_SYMLINK_NOFOLLOW) &&
		    S_ISDIR(st.st_mode)) {
			with_etc++;
			pick = i;
		}
		if (fd >= 0)
			close(fd);
		if (strlen(list) + strlen(names[i]) + 3 < sizeof(list)) {
			strcat(list, i ? ", " : "");
			strcat(list, names[i]);
		}
	}
	closedir(d);
	if (n == 1 || with_etc == 1) {
		return snprintf(out, len, "%s", names[n == 1 ? 0 : pick]) < (int)len ?
		       0 : -ENAMETOOLONG;
	}
	if (!n)
		xbd_err("%s: no file system found", vm);
	else
		xbd_err("%s: %u file systems (%s): name one, as %s:%s:/PATH", vm, n,
			list, vm, names[0]);
	return -ENOENT;
}

static void mode_str(mode_t m, char *s)
{
	static const char *rwx = "rwxrwxrwx";

	s[0] = S_ISDIR(m) ? 'd' : S_ISLNK(m) ? 'l' : S_ISCHR(m) ? 'c' :
	       S_ISBLK(m) ? 'b' : S_ISFIFO(m) ? 'p' : S_ISSOCK(m) ? 's' : '-';
	for (int i = 0; i < 9; i++)
		s[i + 1] = m & (1u << (8 - i)) ? rwx[i] : '-';
	/* set-id and sticky bits as ls shows them */
	if (m & S_ISUID)
		s[3] = m & S_IXUSR ? 's' : 'S';
	if (m & S_ISGID)
		s[6] = m & S_IXGRP ? 's' : 'S';
	if (m & S_ISVTX)
		s[9] = m & S_IXOTH ? 't' : 'T';
	s[10] = 0;
}

/* Writes a guest-controlled string with its control, non-ASCII and
 * backslash bytes as \ooo (as ls -b), so it cannot drive the terminal. */
static void put_escaped(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];

		if (c < 0x20 || c >= 0x7f || c == '\\')
			printf("\\%03o", c);
		else
			putchar(c);
	}
}

/* One line for NAME in the directory DFD (the entry itself, not where
 * a link points). */
static int ls_one(int dfd, const char *name)
{
	struct stat st;
	char mode[11], when[32], target[PATH_MAX];
	struct tm tm;

	if (fstatat(dfd, name, &st, AT_SYMLINK_NOFOLLOW))
		return -errno;
	mode_str(st.st_mode, mode);
	gmtime_r(&st.st_mtime, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	printf("%s %3lu %5u %5u %12lld %s ", mode, (unsigned long)st.st_nlink,
	       (unsigned)st.st_uid, (unsigned)st.st_gid, (long long)st.st_size, when);
	put_escaped(name, strlen(name));
	if (S_ISLNK(st.st_mode)) {
		ssize_t n = readlinkat(dfd, name, target, sizeof(target));

		if (n >= 0) {
			fputs(" -> ", stdout);
			put_escaped(target, (size_t)n);
		}
	}
	putchar('\n');
	return 0;
}

static int ls_dir(int root, const char *path)
{
	struct dirent **ents;
	int dfd = open_in(root, path, O_RDONLY | O_DIRECTORY), n, err = 0;

	if (dfd < 0)
		return dfd;
	n = scandirat(dfd, ".", &ents, NULL, alphasort);
	if (n < 0) {
		err = -errno;
		close(dfd);
		return err;
	}
	for (int i = 0; i < n; i++) {
		if (!err && strcmp(ents[i]->d_name, ".") && strcmp(ents[i]->d_name, ".."))
			err = ls_one(dfd, ents[i]->d_name);
		free(ents[i]);
	}
	free(ents);
	close(dfd);
	return err;
}

/* PATH's entries when it is a directory, else PATH itself (a link as
 * the link). */
static int do_ls(int root, const char *path)
{
	char parent[PATH_MAX];
	const char *last = strrchr(path, '/') + 1;
	struct stat st;
	int pfd, err;

	/* "/", "DIR/", "." and "..": a directory, resolved in the root */
	if (!*last || !strcmp(last, ".") || !strcmp(last, ".."))
		return ls_dir(root, path);
	if ((size_t)(last - path) >= sizeof(parent))
		return -ENAMETOOLONG;
	memcpy(parent, path, (size_t)(last - path));
	parent[last - path] = 0;
	pfd = open_in(root, parent, O_PATH | O_DIRECTORY);
	if (pfd < 0)
		return pfd;
	if (fstatat(pfd, last, &st, AT_SYMLINK_NOFOLLOW))
		err = -errno;
	else
		err = S_ISDIR(st.st_mode) ? ls_dir(root, path) : ls_one(pfd, last);
	close(pfd);
	return err;
}

/* Copies in to out; -EINTR when a signal came. */
static int copy_fd(int in, int out)
{
	static char buf[1 << 20];

	for (;;) {
		ssize_t n = read(in, buf, sizeof(buf)), w = 0;

		if (stop_sig)
			return -EINTR;
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : 0;
		while (w < n) {
			ssize_t k = write(out, buf + w, (size_t)(n - w));

			if (k < 0 && errno == EINTR && !stop_sig)
				continue;
			if (k < 0)
				return -errno;
			w += k;
		}
	}
}

/* Opens the regular file PATH of the tree for reading; *st gets its
 * status.  O_NONBLOCK so a guest FIFO cannot hang the open. */
static int open_file(int root, const char *path, struct stat *st)
{
	int fd = open_in(root, path, O_RDONLY | O_NONBLOCK), err;

	if (fd < 0)
		return fd;
	if (fstat(fd, st))
		err = -errno;
	else if (!S_ISREG(st->st_mode))
		err = S_ISDIR(st->st_mode) ? -EISDIR : -EINVAL;
	else if (fcntl(fd, F_SETFL, 0))
		err = -errno;
	else
		return fd;
	close(fd);
	return err;
}

static int do_cat(int root, const char *path)
{
	struct stat st;
	int fd = open_file(root, path, &st), err;

	if (fd < 0)
		return fd;
	err = copy_fd(fd, 1);
	close(fd);
	return err;
}

/* The error was reported already, naming DEST. */
#define CP_REPORTED (-ECANCELED)

/* Copies the file, with its permission bits (less the umask, never
 * set-id or sticky: the guest chose them) and times; DEST may be a
 * directory. */
static int do_cp(int root, const char *path, const char *dest)
{
	char target[PATH_MAX];
	struct stat st, dst;
	mode_t mask = umask(0), mode;
	int in, out, err;

	umask(mask);
	in = open_file(root, path, &st);
	if (in < 0)
		return in;
	mode = st.st_mode & 0777 & ~mask;
	if (!stat(dest, &dst) && S_ISDIR(dst.st_mode))
		snprintf(target, sizeof(target), "%s/%s", dest, strrchr(path, '/') + 1);
	else
		snprintf(target, sizeof(target), "%s", dest);
	out = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	if (out < 0) {
		err = -errno;
		close(in);
		xbd_err("%s: %s", target, xbd_strerror(err));
		return CP_REPORTED;
	}
	err = copy_fd(in, out);
	if (!err) {
		struct timespec t[2] = { st.st_atim, st.st_mtim };

		if (futimens(out, t) || fchmod(out, mode))
			err = -errno;
	}
	if (close(out) && !err)
		err = -errno;
	close(in);
	return err;
}

static int files_usage(const char *cmd)
{
	printf("usage: xbd %s VM:[FS:]PATH%s\n"
	       "Attaches VM read-only with --files, %s and detaches again.\n"
	       "FS names the file system as under DIR/files of `xbd attach --files`\n"
	       "(xvda1, VG-LV, xvda); without it, the VM's only file system, or\n"
	       "the one holding /etc.  PATH starts with '/'.\n",
	       cmd, !strcmp(cmd, "cp") ? " DEST" : "",
	       !strcmp(cmd, "ls") ? "lists PATH (a directory's entries, or the file)" :
	       !strcmp(cmd, "cat") ? "writes the file PATH to standard output" :
	       "copies the file PATH to DEST (a file or a directory), keeping its\n"
	       "permission bits (less the umask) and times,");
	return 0;
}

static int files_run(int argc, char **argv)
{
	const char *cmd = argv[0];
	int want = !strcmp(cmd, "cp") ? 3 : 2;
	char dir[] = "/tmp/xbd-files.XXXXXX", files[PATH_MAX], fs[FS_NAME_BUF];
	char top[PATH_MAX];
	struct sigaction sa = { .sa_handler = on_signal };
	struct spec sp;
	pid_t me = getpid();
	int r, err, status = 0, root = -1;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		return files_usage(cmd);
	if (argc != want) {
		xbd_usage_err(cmd, "expected %s", want == 3 ? "VM:[FS:]PATH DEST" : "VM:[FS:]PATH");
		return XBD_EXIT_USAGE;
	}
	if (parse_spec(cmd, argv[1], &sp))
		return XBD_EXIT_USAGE;
	/* from before the attach: a signal during it (Ctrl-C while the
	 * daemon starts) must not end us with the daemon left attached.
	 * The attach waits for its daemon through EINTR; we detach after.
	 * The daemon inherits these handlers but takes the signals with
	 * sigtimedwait (cmd_attach.c), so they change nothing there. */
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	if (!mkdtemp(dir)) {
		xbd_err("%s: %s", dir, strerror(errno));
		return 1;
	}
	{
		char *av[] = { "attach", sp.vm, "--mount", dir, "--files", NULL };

		optind = 0;
		r = xbd_cmd_attach.run(5, av);
		if (getpid() != me)
			exit(r); /* the attach daemon, at its end */
	}
	if (r && r != XBD_EXIT_PARTIAL) {
		rmdir(dir);
		if (stop_sig) {
			xbd_err("%s: stopped by signal %d", argv[1], (int)stop_sig);
			return 128 + stop_sig; /* as a shell reports it */
		}
		return r;
	}
	signal(SIGPIPE, SIG_IGN);
	snprintf(files, sizeof(files), "%s/files", dir);
	err = stop_sig ? -EINTR : 0;
	if (err)
		xbd_err("%s: stopped by signal %d", argv[1], (int)stop_sig);
	else if (!sp.fs[0])
		err = default_fs(files, sp.vm, sp.fs, sizeof(sp.fs));
	if (!err) {
		snprintf(fs, sizeof(fs), "%s", sp.fs);
		if (snprintf(top, sizeof(top), "%s/%s", files, fs) >= (int)sizeof(top) ||
		    (root = open(top, O_PATH | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC)) < 0)
			err = -ENODEV;
		if (!err)
			err = !strcmp(cmd, "ls") ? do_ls(root, sp.path) :
			      !strcmp(cmd, "cat") ? do_cat(root, sp.path) :
			      do_cp(root, sp.path, argv[2]);
		if (root >= 0)
			close(root);
		if (err == -ENODEV)
			xbd_err("%s: no file system %s (see `xbd ls %s:/`)", sp.vm, fs, sp.vm);
		else if (err == -EINTR)
			xbd_err("%s: stopped by signal %d", argv[1], (int)stop_sig);
		else if (err == -EPIPE)
			err = 0; /* the reader had enough */
		else if (err && err != CP_REPORTED)
			xbd_err("%s: %s", argv[1], xbd_strerror(err));
	}
	if (err)
		status = stop_sig ? 128 + stop_sig : 1;
	fflush(stdout);
	if (xbd_detach_dir(dir))
		status = 1;
	rmdir(dir);
	return status;
}

const struct xbd_cmd xbd_cmd_ls = {
	.name = "ls",
	.usage = "ls VM:[FS:]PATH",
	.summary = "list a directory of a VM's file system (attach, read, detach)",
	.run = files_run,
};

const struct xbd_cmd xbd_cmd_cat = {
	.name = "cat",
	.usage = "cat VM:[FS:]PATH",
	.summary = "write a file of a VM's file system to standard output",
	.run = files_run,
};

const struct xbd_cmd xbd_cmd_cp = {
	.name = "cp",
	.usage = "cp VM:[FS:]PATH DEST",
	.summary = "copy a file out of a VM's file system, keeping its times",
	.run = files_run,
};

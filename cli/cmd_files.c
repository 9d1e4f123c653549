/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * `xbd ls|cat|cp VM:[FS:]PATH`: one file of a VM's file system in one
 * command, for scripts that pull a log from many VMs.  Each attaches the
 * VM read-only with --files in a private directory, works on
 * DIR/files/FS/PATH (the user-space, sandboxed trees of fuse/fsview.c)
 * and detaches again, whatever happens (a signal only cuts the work
 * short).  FS names the tree (xvda1, VG-LV, xvda); without it, the one
 * file system there is, or else the one holding /etc.
 */
#include "xbd/cli.h"
#include "xbd/common.h"

#include <dirent.h>
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

/* The tree to use when none is named. */
static int default_fs(const char *files, const char *vm, char *out, size_t len)
{
	char names[8][FS_NAME_BUF], path[PATH_MAX], list[512] = "";
	unsigned n = 0, with_etc = 0, pick = 0;
	DIR *d = opendir(files);
	struct dirent *e;

	if (!d) {
		xbd_err("%s: no file system found", vm);
		return -ENOENT;
	}
	while ((e = readdir(d)) && n < 8) {
		if (e->d_name[0] == '.' || strlen(e->d_name) >= sizeof(names[0]))
			continue;
		memcpy(names[n++], e->d_name, strlen(e->d_name) + 1);
	}
	closedir(d);
	for (unsigned i = 0; i < n; i++) {
		struct stat st;

		if (snprintf(path, sizeof(path), "%s/%s/etc", files, names[i]) <
		    (int)sizeof(path) && !stat(path, &st) && S_ISDIR(st.st_mode)) {
			with_etc++;
			pick = i;
		}
		if (strlen(list) + strlen(names[i]) + 3 < sizeof(list)) {
			strcat(list, i ? ", " : "");
			strcat(list, names[i]);
		}
	}
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
	s[10] = 0;
}

static int ls_one(const char *path, const char *name)
{
	struct stat st;
	char mode[11], when[32], target[PATH_MAX];
	struct tm tm;

	if (lstat(path, &st))
		return -errno;
	mode_str(st.st_mode, mode);
	gmtime_r(&st.st_mtime, &tm);
	strftime(when, sizeof(when), "%Y-%m-%d %H:%M:%S", &tm);
	printf("%s %3lu %5u %5u %12lld %s %s", mode, (unsigned long)st.st_nlink,
	       (unsigned)st.st_uid, (unsigned)st.st_gid, (long long)st.st_size, when, name);
	if (S_ISLNK(st.st_mode)) {
		ssize_t n = readlink(path, target, sizeof(target) - 1);

		if (n >= 0) {
			target[n] = 0;
			printf(" -> %s", target);
		}
	}
	putchar('\n');
	return 0;
}

static int do_ls(const char *path)
{
	struct stat st;
	struct dirent **ents;
	int n, err = 0;

	if (lstat(path, &st))
		return -errno;
	if (!S_ISDIR(st.st_mode))
		return ls_one(path, strrchr(path, '/') + 1);
	n = scandir(path, &ents, NULL, alphasort);
	if (n < 0)
		return -errno;
	for (int i = 0; i < n; i++) {
		char p[PATH_MAX];

		if (!err && strcmp(ents[i]->d_name, ".") && strcmp(ents[i]->d_name, "..") &&
		    snprintf(p, sizeof(p), "%s/%s", path, ents[i]->d_name) < (int)sizeof(p))
			err = ls_one(p, ents[i]->d_name);
		free(ents[i]);
	}
	free(ents);
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

static int do_cat(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC), err;

	if (fd < 0)
		return -errno;
	err = copy_fd(fd, 1);
	close(fd);
	return err;
}

/* Copies the file, with its mode bits and times; DEST may be a
 * directory. */
static int do_cp(const char *path, const char *dest)
{
	char target[PATH_MAX];
	struct stat st, dst;
	int in, out, err;

	in = open(path, O_RDONLY | O_CLOEXEC);
	if (in < 0)
		return -errno;
	if (fstat(in, &st) || !S_ISREG(st.st_mode)) {
		err = S_ISDIR(st.st_mode) ? -EISDIR : -EINVAL;
		close(in);
		return err;
	}
	if (!stat(dest, &dst) && S_ISDIR(dst.st_mode))
		snprintf(target, sizeof(target), "%s/%s", dest, strrchr(path, '/') + 1);
	else
		snprintf(target, sizeof(target), "%s", dest);
	out = open(target, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, st.st_mode & 0777);
	if (out < 0) {
		err = -errno;
		close(in);
		xbd_err("%s: %s", target, xbd_strerror(err));
		return 1;
	}
	err = copy_fd(in, out);
	if (!err) {
		struct timespec t[2] = { st.st_atim, st.st_mtim };

		if (futimens(out, t) || fchmod(out, st.st_mode & 0777))
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
	       "mode bits and times,");
	return 0;
}

static int files_run(int argc, char **argv)
{
	const char *cmd = argv[0];
	int want = !strcmp(cmd, "cp") ? 3 : 2;
	char dir[] = "/tmp/xbd-files.XXXXXX", files[PATH_MAX], fs[FS_NAME_BUF];
	char path[PATH_MAX];
	struct sigaction sa = { .sa_handler = on_signal };
	struct spec sp;
	pid_t me = getpid();
	int r, err, status = 0;

	if (argc == 2 && (!strcmp(argv[1], "-h") || !strcmp(argv[1], "--help")))
		return files_usage(cmd);
	if (argc != want) {
		xbd_usage_err(cmd, "expected %s", want == 3 ? "VM:[FS:]PATH DEST" : "VM:[FS:]PATH");
		return XBD_EXIT_USAGE;
	}
	if (parse_spec(cmd, argv[1], &sp))
		return XBD_EXIT_USAGE;
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
		return r;
	}
	sigaction(SIGINT, &sa, NULL);
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGHUP, &sa, NULL);
	signal(SIGPIPE, SIG_IGN);
	snprintf(files, sizeof(files), "%s/files", dir);
	err = sp.fs[0] ? 0 : default_fs(files, sp.vm, sp.fs, sizeof(sp.fs));
	if (!err) {
		snprintf(fs, sizeof(fs), "%s", sp.fs);
		if (snprintf(path, sizeof(path), "%s/%s%s", files, fs, sp.path) >=
		    (int)sizeof(path)) {
			err = -ENAMETOOLONG;
		} else if (access(path, F_OK) && errno == ENOENT) {
			char top[PATH_MAX];

			err = snprintf(top, sizeof(top), "%s/%s", files, fs) >=
			      (int)sizeof(top) || access(top, F_OK) ? -ENODEV : -ENOENT;
		}
		if (!err)
			err = !strcmp(cmd, "ls") ? do_ls(path) :
			      !strcmp(cmd, "cat") ? do_cat(path) : do_cp(path, argv[2]);
		if (err == -ENODEV)
			xbd_err("%s: no file system %s (see `xbd ls %s:/`)", sp.vm, fs, sp.vm);
		else if (err == -EINTR)
			xbd_err("%s: stopped by signal %d", argv[1], (int)stop_sig);
		else if (err == -EPIPE)
			err = 0; /* the reader had enough */
		else if (err)
			xbd_err("%s: %s", argv[1], xbd_strerror(err));
	}
	if (err)
		status = 1;
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

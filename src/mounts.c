/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The mount on top of a directory and the users of its files
 * (xbd/mounts.h). */
#include "xbd/mounts.h"

#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#define MOUNTS_STACK_MAX 64 /* mounts stacked on one directory we follow */

/* mountinfo writes blank, tab, newline and backslash as \ooo. */
static void decode_octal(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '\\' && s[1] >= '0' && s[1] <= '3' && s[2] >= '0' &&
		    s[2] <= '7' && s[3] >= '0' && s[3] <= '7') {
			*out++ = (char)(((s[1] - '0') << 6) | ((s[2] - '0') << 3) |
					(s[3] - '0'));
			s += 3;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
}

/* The next blank-separated field of *line (NULL when there is none). */
static char *next_field(char **line)
{
	char *f = *line, *end;

	while (*f == ' ')
		f++;
	if (!*f || *f == '\n')
		return NULL;
	end = f + strcspn(f, " \n");
	if (*end)
		*end++ = '\0';
	*line = end;
	return f;
}

struct mi_entry {
	unsigned id, parent;
	struct xbd_mount m;
};

/* One line of mountinfo: "ID PARENT MAJ:MIN ROOT POINT OPTS [TAGS...] -
 * FSTYPE SOURCE SUPEROPTS"; 1 when it is a mount on dir. */
static int parse_line(char *line, const char *dir, struct mi_entry *e)
{
	char *f[5], *point, *sep, *fstype, *source;
	unsigned i;

	for (i = 0; i < 5; i++)
		if (!(f[i] = next_field(&line)))
			return 0;
	point = f[4];
	decode_octal(point);
	if (strcmp(point, dir))
		return 0;
	do
		sep = next_field(&line);
	while (sep && strcmp(sep, "-"));
	fstype = sep ? next_field(&line) : NULL;
	source = fstype ? next_field(&line) : NULL;
	if (!source)
		return 0;
	if (sscanf(f[0], "%u", &e->id) != 1 || sscanf(f[1], "%u", &e->parent) != 1 ||
	    sscanf(f[2], "%u:%u", &e->m.major, &e->m.minor) != 2)
		return 0;
	decode_octal(fstype);
	decode_octal(source);
	snprintf(e->m.fstype, sizeof(e->m.fstype), "%s", fstype);
	snprintf(e->m.source, sizeof(e->m.source), "%s", source);
	return 1;
}

int xbd_mount_at(const char *dir, struct xbd_mount *out)
{
	struct mi_entry *e;
	unsigned n = 0, i, j;
	char *line = NULL;
	size_t cap = 0;
	int err = -ENOENT;
	FILE *f;

	e = calloc(MOUNTS_STACK_MAX, sizeof(*e));
	if (!e)
		return -ENOMEM;
	f = fopen("/proc/self/mountinfo", "re");
	if (!f) {
		err = -errno;
		free(e);
		return err;
	}
	while (n < MOUNTS_STACK_MAX && getline(&line, &cap, f) > 0)
		n += (unsigned)parse_line(line, dir, &e[n]);
	free(line);
	fclose(f);
	/* the top of a stack is the mount no other one at dir sits on */
	for (i = 0; i < n && err; i++) {
		bool covered = false;

		for (j = 0; j < n; j++)
			covered |= j != i && e[j].parent == e[i].id;
		if (!covered) {
			*out = e[i].m;
			err = 0;
		}
	}
	free(e);
	return err;
}

bool xbd_mount_is_xbd(const struct xbd_mount *m)
{
	return !strcmp(m->fstype, XBD_FUSE_FSTYPE) &&
	       !strncmp(m->source, XBD_FUSE_SOURCE_PREFIX,
			strlen(XBD_FUSE_SOURCE_PREFIX));
}

void xbd_mount_dev_str(const struct xbd_mount *m, char *buf, size_t size)
{
	snprintf(buf, size, "%u:%u", m->major, m->minor);
}

/* By path, as umount(8) does: callers check what is on dir just before,
 * and the window between that check and this call cannot be closed from
 * user space (umount2 takes no mount id). */
int xbd_umount_lazy(const char *dir)
{
	int status = 1;
	pid_t pid;

	if (umount2(dir, MNT_DETACH) == 0)
		return 0;
	/* not root: the FUSE helper may unmount what we mounted */
	pid = fork();
	if (pid < 0)
		return -errno;
	if (pid == 0) {
		execlp("fusermount3", "fusermount3", "-u", "-z", "-q", dir, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -errno;
	return status ? -EPERM : 0;
}

bool xbd_mount_dead(const char *dir)
{
	struct xbd_mount m;
	struct stat st;

	return !xbd_mount_at(dir, &m) && xbd_mount_is_xbd(&m) && stat(dir, &st) &&
	       errno == ENOTCONN;
}

/* ---- users ---- */

struct users {
	const char *dir;
	size_t dirlen;
	char *buf;
	size_t size, used;
	unsigned count;
};

/* The part of path under u->dir ("xvda", "." for dir itself), or NULL. */
static const char *under(const struct users *u, const char *path)
{
	if (strncmp(path, u->dir, u->dirlen))
		return NULL;
	if (path[u->dirlen] == '\0')
		return ".";
	return path[u->dirlen] == '/' ? path + u->dirlen + 1 : NULL;
}

static void add_user(struct users *u, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void add_user(struct users *u, const char *fmt, ...)
{
	char phrase[PATH_MAX + 64];
	va_list ap;
	int len;

	va_start(ap, fmt);
	vsnprintf(phrase, sizeof(phrase), fmt, ap);
	va_end(ap);
	u->count++;
	if (u->used + 4 >= u->size)
		return;
	len = snprintf(u->buf + u->used, u->size - u->used, "%s%s",
		       u->used ? ", " : "", phrase);
	if (len < 0 || (size_t)len >= u->size - u->used) {
		/* short buffer: end with "..." where it was cut */
		u->used = u->size - 4;
		memcpy(u->buf + u->used, "...", 4);
		u->used = u->size;
		return;
	}
	u->used += (size_t)len;
}

static void proc_comm(const char *pid, char *comm, size_t size)
{
	char path[64];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%s/comm", pid);
	snprintf(comm, size, "?");
	f = fopen(path, "re");
	if (!f)
		return;
	if (fgets(comm, (int)size, f))
		comm[strcspn(comm, "\n")] = '\0';
	fclose(f);
}

/* path's target, when it lies under dir. */
static const char *link_under(const struct users *u, const char *path,
			      char *target, size_t size)
{
	ssize_t n = readlink(path, target, size - 1);

	if (n <= 0)
		return NULL;
	target[n] = '\0';
	return under(u, target);
}

static void scan_process(struct users *u, const char *pid)
{
	char path[96], target[PATH_MAX], comm[64];
	const char *rel;
	struct dirent *de;
	DIR *fds;

	proc_comm(pid, comm, sizeof(comm));
	snprintf(path, sizeof(path), "/proc/%s/cwd", pid);
	if ((rel = link_under(u, path, target, sizeof(target))))
		add_user(u, "pid %s (%s) works in %s", pid, comm,
			 strcmp(rel, ".") ? rel : u->dir);
	snprintf(path, sizeof(path), "/proc/%s/fd", pid);
	fds = opendir(path);
	if (!fds)
		return;
	while ((de = readdir(fds))) {
		if (de->d_name[0] == '.')
			continue;
		snprintf(path, sizeof(path), "/proc/%.20s/fd/%.20s", pid, de->d_name);
		if ((rel = link_under(u, path, target, sizeof(target))))
			add_user(u, "pid %s (%s) has %s open", pid, comm,
				 strcmp(rel, ".") ? rel : u->dir);
	}
	closedir(fds);
}

static void scan_loops(struct users *u)
{
	char path[300], target[PATH_MAX];
	struct dirent *de;
	const char *rel;
	DIR *d = opendir("/sys/block");

	if (!d)
		return;
	while ((de = readdir(d))) {
		FILE *f;

		if (strncmp(de->d_name, "loop", 4))
			continue;
		snprintf(path, sizeof(path), "/sys/block/%s/loop/backing_file", de->d_name);
		f = fopen(path, "re");
		if (!f)
			continue; /* not bound to a file */
		if (fgets(target, sizeof(target), f)) {
			target[strcspn(target, "\n")] = '\0';
			if ((rel = under(u, target)))
				add_user(u, "/dev/%s is backed by %s", de->d_name, rel);
		}
		fclose(f);
	}
	closedir(d);
}

unsigned xbd_dir_users(const char *dir, const pid_t *skip, unsigned nskip,
		       char *buf, size_t size)
{
	struct users u = { .dir = dir, .dirlen = strlen(dir), .buf = buf,
			   .size = size };
	struct dirent *de;
	DIR *proc;

	if (size)
		buf[0] = '\0';
	while (u.dirlen > 1 && dir[u.dirlen - 1] == '/')
		u.dirlen--;
	proc = opendir("/proc");
	while (proc && (de = readdir(proc))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);
		unsigned i;
		bool ours = pid == (long)getpid();

		if (*end || pid <= 0)
			continue;
		for (i = 0; i < nskip; i++)
			ours |= pid == (long)skip[i];
		if (!ours)
			scan_process(&u, de->d_name);
	}
	if (proc)
		closedir(proc);
	scan_loops(&u);
	return u.count;
}

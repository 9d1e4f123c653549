/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The sim daemon: the simulated hypervisor's toolstack.  `xbd sim start`
 * forks it; it runs the sim xenstored (in its own thread), keeps the
 * shared state files through sim_hv_*, writes to xenstore what libxl
 * writes for each domain, and answers one request per connection on
 * DIR/ctl.sock, fields separated by tabs:
 *
 *   create NAME [ARGV...]   ok DOMID   (ARGV: the domain's guest process)
 *   destroy NAME|ID         ok
 *   list                    ok, then one "DOMID NAME" line per domain
 *   stop                    ok, then end of file once the daemon is gone
 *   (any error)             err ERRNO MESSAGE
 *
 * The client side (xbd_sim_*) is in sim_client.c.
 */
#include "sim_daemon.h"
#include "sim_hv.h"
#include "xbd/platform.h"
#include "src/platform_priv.h"
#include "xbd/common.h"
#include "xbd/util.h"

#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/random.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>
#include <xenstore.h>

/* Where an HVM guest's xenstore page sits (the toolstack writes it as
 * store/ring-ref); nothing maps it in the sim. */
#define SIM_STORE_GFN 0xfeffcu
#define SIM_GUEST_MEMORY_KB "131072"
/* How often what exited processes left in the hypervisor is reclaimed
 * (the kernel does it at once; a poll period is close enough). */
#define SIM_REAP_MS 500u

extern char **environ;

struct sim_vm {
	uint16_t domid;
	char name[XBD_SIM_NAME_MAX + 1];
	char uuid[37];
	pid_t guest; /* guest process (and its group), 0 if none */
	bool guest_running; /* not yet reaped */
};

struct sim_daemon {
	const char *dir;
	struct sim_hv *hv;
	struct sim_xenstored *xsd;
	struct xs_handle *xs;
	int listen_fd, sig_fd;
	int owner_fd; /* pidfd of the process whose exit stops us, or -1 */
	unsigned next_domid;
	struct sim_vm vms[XBD_SIM_MAX_DOMAINS]; /* vms[0] is Domain-0 */
	unsigned nvms;
	bool stopping;
};

int sim_dir_path(char *buf, size_t len, const char *dir, const char *name)
{
	int n = snprintf(buf, len, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= len ? -ENAMETOOLONG : 0;
}

int sim_unix_addr(struct sockaddr_un *sa, const char *dir, const char *name)
{
	memset(sa, 0, sizeof(*sa));
	sa->sun_family = AF_UNIX;
	return sim_dir_path(sa->sun_path, sizeof(sa->sun_path), dir, name);
}

int sim_write_all(int fd, const void *buf, size_t len)
{
	const char *p = buf;

	while (len) {
		ssize_t n = send(fd, p, len, MSG_NOSIGNAL);

		if (n < 0 && errno == ENOTSOCK)
			n = write(fd, p, len);
		if (n < 0) {
			if (errno == EINTR)
				continue;
			return -errno;
		}
		p += n;
		len -= (size_t)n;
	}
	return 0;
}

static void reply(int fd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void reply(int fd, const char *fmt, ...)
{
	char buf[1024];
	va_list ap;
	int n;

	va_start(ap, fmt);
	n = vsnprintf(buf, sizeof(buf) - 1, fmt, ap);
	va_end(ap);
	if (n < 0)
		return;
	if ((size_t)n > sizeof(buf) - 2)
		n = (int)sizeof(buf) - 2;
	buf[n++] = '\n';
	sim_write_all(fd, buf, (size_t)n);
}

static void reply_err(int fd, int err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static void reply_err(int fd, int err, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	xbd_info("%s", msg);
	reply(fd, "err\t%d\t%s", err < 0 ? -err : err, msg);
}

/* ------------------------------------------------------------------ */
/* xenstore, as the toolstack in dom0                                  */

static int xs_fail(void)
{
	return errno ? -errno : -EIO;
}

/* Writes (or with value NULL, creates) path with the given permissions. */
static int xs_node(struct xs_handle *xs, xs_transaction_t t, const char *path,
		   const char *value, struct xs_permissions *perms,
		   unsigned nperms)
{
	bool ok = value ? xs_write(xs, t, path, value, strlen(value))
			: xs_mkdir(xs, t, path);

	if (!ok || !xs_set_permissions(xs, t, path, perms, nperms))
		return xs_fail();
	return 0;
}

/* What libxl writes for a new domain (libxl__domain_make and
 * libxl__build_post): a dom0-owned home the guest can read, and
 * the subdirectories the guest owns. */
static int write_domain_nodes(struct xs_handle *xs, xs_transaction_t t,
			      const struct sim_vm *vm, uint32_t store_port)
{
	static const char *const guest_owned[] = {
		"device", "device/suspend", "device/suspend/event-channel",
		"control/shutdown", "control/feature-poweroff",
		"control/feature-reboot", "control/feature-suspend",
		"control/sysrq", "data", "drivers", "feature", "attr", "error",
	};
	struct xs_permissions ro[2] = {
		{ .id = 0, .perms = XS_PERM_NONE },
		{ .id = vm->domid, .perms = XS_PERM_READ },
	};
	struct xs_permissions rw[1] = { { .id = vm->domid, .perms = XS_PERM_NONE } };
	struct {
		const char *key;
		char value[64];
	} ro_values[] = {
		{ "name", "" }, { "domid", "" }, { "vm", "" },
		{ "memory/static-max", SIM_GUEST_MEMORY_KB },
		{ "memory/target", SIM_GUEST_MEMORY_KB },
		{ "store/port", "" }, { "store/ring-ref", "" },
		{ "control/platform-feature-multiprocessor-suspend", "1" },
		{ "control/platform-feature-xs_reset_watches", "1" },
	};
	char base[64], vmpath[64], path[192];
	size_t i;
	int err;

	snprintf(base, sizeof(base), "/local/domain/%u", vm->domid);
	snprintf(vmpath, sizeof(vmpath), "/vm/%s", vm->uuid);
	snprintf(ro_values[0].value, sizeof(ro_values[0].value), "%s", vm->name);
	snprintf(ro_values[1].value, sizeof(ro_values[1].value), "%u", vm->domid);
	snprintf(ro_values[2].value, sizeof(ro_values[2].value), "%s", vmpath);
	snprintf(ro_values[5].value, sizeof(ro_values[5].value), "%u", store_port);
	snprintf(ro_values[6].value, sizeof(ro_values[6].value), "%u", SIM_STORE_GFN);

	xs_rm(xs, t, base);
	if ((err = xs_node(xs, t, base, NULL, ro, 2)) ||
	    (err = xs_node(xs, t, vmpath, NULL, ro, 2)))
		return err;
	snprintf(path, sizeof(path), "%s/uuid", vmpath);
	if ((err = xs_node(xs, t, path, vm->uuid, ro, 2)))
		return err;
	snprintf(path, sizeof(path), "%s/name", vmpath);
	if ((err = xs_node(xs, t, path, vm->name, ro, 2)))
		return err;
	for (i = 0; i < XBD_ARRAY_SIZE(ro_values); i++) {
		snprintf(path, sizeof(path), "%s/%s", base, ro_values[i].key);
		if ((err = xs_node(xs, t, path, ro_values[i].value, ro, 2)))
			return err;
	}
	snprintf(path, sizeof(path), "%s/control", base);
	if ((err = xs_node(xs, t, path, NULL, ro, 2)))
		return err;
	for (i = 0; i < XBD_ARRAY_SIZE(guest_owned); i++) {
		snprintf(path, sizeof(path), "%s/%s", base, guest_owned[i]);
		if ((err = xs_node(xs, t, path, NULL, rw, 1)))
			return err;
	}
	return 0;
}

static int write_dom0_nodes(struct xs_handle *xs, xs_transaction_t t,
			    const struct sim_vm *vm, uint32_t unused)
{
	struct xs_permissions own[1] = { { .id = 0, .perms = XS_PERM_NONE } };
	char path[96];
	int err;

	(void)unused;
	if ((err = xs_node(xs, t, "/local/domain/0", NULL, own, 1)))
		return err;
	if (!xs_write(xs, t, "/local/domain/0/name", vm->name, strlen(vm->name)) ||
	    !xs_write(xs, t, "/local/domain/0/domid", "0", 1))
		return xs_fail();
	snprintf(path, sizeof(path), "/vm/%s/name", vm->uuid);
	if (!xs_write(xs, t, path, vm->name, strlen(vm->name)))
		return xs_fail();
	snprintf(path, sizeof(path), "/vm/%s", vm->uuid);
	if (!xs_write(xs, t, "/local/domain/0/vm", path, strlen(path)))
		return xs_fail();
	return 0;
}

static int remove_domain_nodes(struct xs_handle *xs, xs_transaction_t t,
			       const struct sim_vm *vm, uint32_t unused)
{
	char path[64];

	(void)unused;
	snprintf(path, sizeof(path), "/local/domain/%u", vm->domid);
	if (!xs_rm(xs, t, path) && errno != ENOENT)
		return xs_fail();
	snprintf(path, sizeof(path), "/vm/%s", vm->uuid);
	if (!xs_rm(xs, t, path) && errno != ENOENT)
		return xs_fail();
	return 0;
}

/* Runs fn in a transaction, retrying when the commit conflicts. */
static int xs_in_transaction(struct xs_handle *xs,
			     int (*fn)(struct xs_handle *, xs_transaction_t,
				       const struct sim_vm *, uint32_t),
			     const struct sim_vm *vm, uint32_t arg)
{
	int tries, err = -EAGAIN;

	for (tries = 0; tries < 20 && err == -EAGAIN; tries++) {
		xs_transaction_t t = xs_transaction_start(xs);

		if (t == XBT_NULL)
			return xs_fail();
		err = fn(xs, t, vm, arg);
		if (err) {
			xs_transaction_end(xs, t, true);
			return err;
		}
		err = xs_transaction_end(xs, t, false) ? 0 : xs_fail();
	}
	return err;
}

/* ------------------------------------------------------------------ */
/* Domains                                                             */

static void make_uuid(char *out, size_t len)
{
	unsigned char b[16];
	size_t got = 0;

	while (got < sizeof(b)) {
		ssize_t n = getrandom(b + got, sizeof(b) - got, 0);

		if (n <= 0) { /* not fatal: a uuid just has to be unique-ish */
			unsigned long long t = xbd_now_ns() ^ (unsigned long long)getpid();

			memcpy(b + got, &t, sizeof(b) - got < sizeof(t) ?
					    sizeof(b) - got : sizeof(t));
			got += sizeof(b) - got < sizeof(t) ? sizeof(b) - got : sizeof(t);
			continue;
		}
		got += (size_t)n;
	}
	b[6] = (b[6] & 0x0f) | 0x40;
	b[8] = (b[8] & 0x3f) | 0x80;
	snprintf(out, len,
		 "%02x%02x%02x%02x-%02x%02x-%02x%02x-%02x%02x-%02x%02x%02x%02x%02x%02x",
		 b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7], b[8], b[9],
		 b[10], b[11], b[12], b[13], b[14], b[15]);
}

static bool valid_name(const char *name)
{
	size_t i, len = strlen(name);
	bool digits_only = true;

	if (len == 0 || len > XBD_SIM_NAME_MAX)
		return false;
	for (i = 0; i < len; i++) {
		unsigned char c = (unsigned char)name[i];

		if (!isalnum(c) && !strchr("-_.+:@", c))
			return false;
		digits_only &= isdigit(c) != 0;
	}
	return !digits_only; /* a number names a domain by id */
}

/* The domain called name, or with that id. */
static struct sim_vm *find_vm(struct sim_daemon *d, const char *name)
{
	unsigned long long id;
	unsigned i;

	for (i = 0; i < d->nvms; i++)
		if (!strcmp(d->vms[i].name, name))
			return &d->vms[i];
	if (!xbd_parse_uint(name, UINT16_MAX, &id))
		for (i = 0; i < d->nvms; i++)
			if (d->vms[i].domid == id)
				return &d->vms[i];
	return NULL;
}

/* Starts argv as vm's guest process, in its own process group. */
static int spawn_guest(struct sim_daemon *d, struct sim_vm *vm, char **argv)
{
	char dir_env[4200], domid_env[64];
	char **envp;
	size_t n = 0, i, k = 0;
	int pfd[2], child_err = 0, err = 0;
	ssize_t got;
	sigset_t none;
	pid_t pid;

	snprintf(dir_env, sizeof(dir_env), "%s=%s", XBD_SIM_DIR_ENV, d->dir);
	snprintf(domid_env, sizeof(domid_env), "%s=%u", XBD_SIM_DOMID_ENV, vm->domid);
	while (environ[n])
		n++;
	/* Built before fork: the child of a threaded process must not malloc. */
	envp = calloc(n + 4, sizeof(*envp));
	if (!envp)
		return -ENOMEM;
	for (i = 0; i < n; i++)
		if (strncmp(environ[i], "XBD_SIM_DIR=", 12) &&
		    strncmp(environ[i], "XBD_SIM_DOMID=", 14) &&
		    strncmp(environ[i], "XBD_PLATFORM=", 13))
			envp[k++] = environ[i];
	envp[k++] = dir_env;
	envp[k++] = domid_env;
	envp[k++] = (char *)"XBD_PLATFORM=sim";
	if (pipe2(pfd, O_CLOEXEC) < 0) {
		err = -errno;
		goto out;
	}
	sigemptyset(&none);
	pid = fork();
	if (pid < 0) {
		err = -errno;
		close(pfd[0]);
		close(pfd[1]);
		goto out;
	}
	if (pid == 0) {
		int nul = open("/dev/null", O_RDONLY);

		close(pfd[0]);
		setpgid(0, 0);
		signal(SIGPIPE, SIG_DFL);
		sigprocmask(SIG_SETMASK, &none, NULL);
		if (nul >= 0)
			dup2(nul, 0);
		dup2(2, 1); /* the guest's output goes to the sim's log */
		execvpe(argv[0], argv, envp);
		child_err = errno;
		if (write(pfd[1], &child_err, sizeof(child_err)) < 0)
			_exit(127);
		_exit(127);
	}
	close(pfd[1]);
	/* The child's copy closes on exec: nothing read means it started. */
	do
		got = read(pfd[0], &child_err, sizeof(child_err));
	while (got < 0 && errno == EINTR);
	close(pfd[0]);
	if (got == (ssize_t)sizeof(child_err)) {
		waitpid(pid, NULL, 0);
		err = -child_err;
		goto out;
	}
	setpgid(pid, pid); /* also here: no race with a kill of the group */
	vm->guest = pid;
	vm->guest_running = true;
out:
	free(envp);
	return err;
}

static void kill_guest(struct sim_vm *vm)
{
	if (!vm->guest)
		return;
	kill(-vm->guest, SIGKILL);
	if (vm->guest_running)
		waitpid(vm->guest, NULL, 0);
	vm->guest = 0;
	vm->guest_running = false;
}

/* Everything a dead domain leaves behind goes, in the order Xen and
 * libxl do it: the guest stops, the hypervisor tears the domain down,
 * the toolstack removes its nodes, xenstored fires @releaseDomain. */
static void teardown_vm(struct sim_daemon *d, struct sim_vm *vm, bool introduced)
{
	char guest_sock[64], sock[4200];
	int err;

	snprintf(guest_sock, sizeof(guest_sock), XBD_SIM_GUEST_SOCKET, vm->domid);

	kill_guest(vm);
	/* a killed guest cannot remove its own workload socket */
	if (!sim_dir_path(sock, sizeof(sock), d->dir, guest_sock))
		unlink(sock);
	sim_hv_domain_kill(d->hv, vm->domid);
	if ((err = xs_in_transaction(d->xs, remove_domain_nodes, vm, 0)))
		xbd_err("%s: removing xenstore nodes: %s", vm->name,
			xbd_strerror(err));
	if (introduced && !xs_release_domain(d->xs, vm->domid))
		xbd_err("%s: xenstore RELEASE of domain %u: %s", vm->name,
			vm->domid, strerror(errno));
	sim_hv_domain_remove(d->hv, vm->domid);
}

static void cmd_create(struct sim_daemon *d, int fd, char **args, unsigned n)
{
	struct sim_vm *vm;
	const char *name = args[1];
	uint32_t store_port;
	bool added = false, introduced = false;
	int err;

	if (n < 2) {
		reply_err(fd, EINVAL, "create: no domain name given");
		return;
	}
	if (!valid_name(name)) {
		reply_err(fd, EINVAL, "%s: invalid domain name (up to %d letters, digits or -_.+:@, not only digits)",
			  name, XBD_SIM_NAME_MAX);
		return;
	}
	if (find_vm(d, name)) {
		reply_err(fd, EEXIST, "%s: domain already exists", name);
		return;
	}
	if (d->nvms >= XBD_SIM_MAX_DOMAINS || d->next_domid > XBD_SIM_MAX_DOMID) {
		reply_err(fd, ENOSPC, "%s: too many domains", name);
		return;
	}
	vm = &d->vms[d->nvms];
	memset(vm, 0, sizeof(*vm));
	vm->domid = (uint16_t)d->next_domid++;
	snprintf(vm->name, sizeof(vm->name), "%s", name);
	make_uuid(vm->uuid, sizeof(vm->uuid));

	if ((err = sim_hv_domain_add(d->hv, vm->domid, vm->name)))
		goto fail;
	added = true;
	/* Its xenstore event channel, unbound for dom0 as the toolstack
	 * makes it (nothing signals it: the sim's xenstore is a socket). */
	if ((err = sim_hv_alloc_unbound(d->hv, vm->domid, 0, &store_port)) ||
	    (err = xs_in_transaction(d->xs, write_domain_nodes, vm, store_port)))
		goto fail;
	if (!xs_introduce_domain(d->xs, vm->domid, SIM_STORE_GFN, store_port)) {
		err = xs_fail();
		goto fail;
	}
	introduced = true;
	if (n > 2 && (err = spawn_guest(d, vm, &args[2]))) {
		reply_err(fd, err, "%s: cannot start guest '%s': %s", name,
			  args[2], xbd_strerror(err));
		teardown_vm(d, vm, introduced);
		return;
	}
	d->nvms++;
	if (vm->guest)
		xbd_info("%s: created domain %u, guest '%s' pid %d", vm->name,
			 vm->domid, args[2], (int)vm->guest);
	else
		xbd_info("%s: created domain %u", vm->name, vm->domid);
	reply(fd, "ok\t%u", vm->domid);
	return;
fail:
	reply_err(fd, err, "%s: cannot create domain: %s", name, xbd_strerror(err));
	if (added)
		teardown_vm(d, vm, introduced);
}

static void cmd_destroy(struct sim_daemon *d, int fd, char **args, unsigned n)
{
	struct sim_vm *vm;

	if (n != 2) {
		reply_err(fd, EINVAL, "destroy: give one domain name");
		return;
	}
	vm = find_vm(d, args[1]);
	if (!vm) {
		reply_err(fd, ENOENT, "%s: no such domain", args[1]);
		return;
	}
	if (vm == &d->vms[0]) {
		reply_err(fd, EPERM, "%s: dom0 cannot be destroyed", args[1]);
		return;
	}
	xbd_info("%s: destroying domain %u", vm->name, vm->domid);
	teardown_vm(d, vm, true);
	*vm = d->vms[--d->nvms];
	reply(fd, "ok");
}

static void cmd_list(struct sim_daemon *d, int fd)
{
	unsigned i;

	reply(fd, "ok");
	for (i = 0; i < d->nvms; i++)
		reply(fd, "%u\t%s", d->vms[i].domid, d->vms[i].name);
}

/* Reaps guests that exited on their own; their domains stay, as with
 * on_poweroff="preserve". */
static void reap_guests(struct sim_daemon *d)
{
	int status;
	pid_t pid;
	unsigned i;

	while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
		for (i = 0; i < d->nvms; i++) {
			if (d->vms[i].guest == pid) {
				d->vms[i].guest_running = false;
				xbd_info("%s: guest process %d exited (status %d)",
					 d->vms[i].name, (int)pid, status);
			}
		}
	}
}

/* Reads one request line (without the newline) into buf. */
static int read_request(int fd, char *buf, size_t len)
{
	size_t used = 0;

	while (used < len - 1) {
		struct pollfd pfd = { .fd = fd, .events = POLLIN };
		ssize_t n;
		char *nl;

		if (poll(&pfd, 1, CTL_IO_TIMEOUT_MS) <= 0)
			return -ETIMEDOUT;
		n = read(fd, buf + used, len - 1 - used);
		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
			return n < 0 ? -errno : -EPIPE;
		used += (size_t)n;
		buf[used] = '\0';
		if ((nl = strchr(buf, '\n'))) {
			*nl = '\0';
			return 0;
		}
	}
	return -E2BIG;
}

/* Serves one connection; returns the fd to keep open until exit (stop),
 * or -1. */
static int serve_client(struct sim_daemon *d, int fd)
{
	char *buf = malloc(CTL_MAX_REQUEST), **args = NULL, *p;
	unsigned n = 0, cap;
	int err, keep = -1;

	if (!buf)
		return -1;
	if ((err = read_request(fd, buf, CTL_MAX_REQUEST))) {
		xbd_info("control connection: %s", xbd_strerror(err));
		goto out;
	}
	cap = 2;
	for (p = buf; *p; p++)
		cap += *p == '\t';
	args = calloc(cap, sizeof(*args));
	if (!args)
		goto out;
	for (p = buf; p; n++) {
		args[n] = p;
		p = strchr(p, '\t');
		if (p)
			*p++ = '\0';
	}
	if (!strcmp(args[0], "create")) {
		cmd_create(d, fd, args, n);
	} else if (!strcmp(args[0], "destroy")) {
		cmd_destroy(d, fd, args, n);
	} else if (!strcmp(args[0], "list")) {
		cmd_list(d, fd);
	} else if (!strcmp(args[0], "stop")) {
		reply(fd, "ok");
		d->stopping = true;
		keep = fd;
	} else {
		reply_err(fd, EINVAL, "unknown request '%s'", args[0]);
	}
out:
	free(args);
	free(buf);
	return keep;
}

/* ------------------------------------------------------------------ */
/* The daemon process                                                  */

/* Removes what a sim that died without stopping left in dir. */
static void remove_stale_sockets(const char *dir)
{
	char path[4096];
	struct dirent *de;
	DIR *dh = opendir(dir);

	if (!dh)
		return;
	while ((de = readdir(dh))) {
		const char *s = de->d_name;
		size_t len = strlen(s);

		if (len > 5 && !strcmp(s + len - 5, ".sock") &&
		    (!strcmp(s, XBD_SIM_CTL_SOCKET) || !strcmp(s, XBD_SIM_XS_SOCKET) ||
		     !strncmp(s, "xs-dom", 6)) &&
		    !sim_dir_path(path, sizeof(path), dir, s))
			unlink(path);
	}
	closedir(dh);
}

/* A daemon keeps no fd of whoever started it (a caller waiting for EOF
 * on a pipe would hang). */
static void close_inherited_fds(int keep1, int keep2)
{
	DIR *dh = opendir("/proc/self/fd");
	struct dirent *de;
	int fds[256], n = 0, i;

	if (!dh)
		return;
	while ((de = readdir(dh)) && n < (int)XBD_ARRAY_SIZE(fds)) {
		int fd = atoi(de->d_name);

		if (fd > 2 && fd != keep1 && fd != keep2 && fd != dirfd(dh))
			fds[n++] = fd;
	}
	closedir(dh);
	for (i = 0; i < n; i++)
		close(fds[i]);
}

static int setup_stdio(const char *dir)
{
	char path[4096];
	int nul, log, err;

	if ((err = sim_dir_path(path, sizeof(path), dir, "sim.log")))
		return err;
	nul = open("/dev/null", O_RDWR);
	log = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_APPEND, 0644);
	if (nul < 0 || log < 0) {
		err = -errno;
		goto out;
	}
	if (dup2(nul, 0) < 0 || dup2(nul, 1) < 0 || dup2(log, 2) < 0)
		err = -errno;
out:
	if (nul > 2)
		close(nul);
	if (log > 2)
		close(log);
	return err;
}

static int listen_ctl(const char *dir, int *out)
{
	struct sockaddr_un sa;
	int fd, err;

	if ((err = sim_unix_addr(&sa, dir, XBD_SIM_CTL_SOCKET)))
		return err;
	fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	unlink(sa.sun_path);
	if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
	    listen(fd, 16) < 0) {
		err = -errno;
		close(fd);
		return err;
	}
	*out = fd;
	return 0;
}

static char dom0_blkback_exe[4096];
static const char *dom0_blkback_argv[] = {
	dom0_blkback_exe, "sim", "blkback", NULL,
};

static int daemon_setup(struct sim_daemon *d, char *msg, size_t msglen)
{
	char path[4096];
	sigset_t sigs;
	int err;

	sigemptyset(&sigs);
	sigaddset(&sigs, SIGTERM);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGHUP);
	sigaddset(&sigs, SIGCHLD);
	/* Before any thread starts, so that all of them block these. */
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	signal(SIGPIPE, SIG_IGN);
	d->sig_fd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (d->sig_fd < 0) {
		err = -errno;
		snprintf(msg, msglen, "signalfd: %s", xbd_strerror(err));
		return err;
	}
	remove_stale_sockets(d->dir);
	if ((err = sim_hv_create(d->dir, &d->hv))) {
		snprintf(msg, msglen, "%s: cannot create the sim's state files: %s",
			 d->dir, xbd_strerror(err));
		return err;
	}
	d->vms[0].domid = 0;
	snprintf(d->vms[0].name, sizeof(d->vms[0].name), "Domain-0");
	snprintf(d->vms[0].uuid, sizeof(d->vms[0].uuid),
		 "00000000-0000-0000-0000-000000000000");
	d->nvms = 1;
	d->next_domid = 1;
	if ((err = sim_xenstored_start(d->dir, &d->xsd))) {
		snprintf(msg, msglen, "%s: cannot start xenstored: %s", d->dir,
			 xbd_strerror(err));
		return err;
	}
	if ((err = sim_dir_path(path, sizeof(path), d->dir, XBD_SIM_XS_SOCKET)) ||
	    (err = xbd_xs_connect(path, &d->xs))) {
		snprintf(msg, msglen, "%s: cannot connect to its xenstored: %s",
			 d->dir, xbd_strerror(err));
		return err;
	}
	if ((err = xs_in_transaction(d->xs, write_dom0_nodes, &d->vms[0], 0))) {
		snprintf(msg, msglen, "%s: writing Domain-0's xenstore nodes: %s",
			 d->dir, xbd_strerror(err));
		return err;
	}
	if ((err = listen_ctl(d->dir, &d->listen_fd))) {
		snprintf(msg, msglen, "%s/%s: %s", d->dir, XBD_SIM_CTL_SOCKET,
			 xbd_strerror(err));
		return err;
	}
	/* A Linux dom0 has kernel blkback serving backend/vbd; the sim's
	 * stand-in runs as Domain-0's own "guest" process. */
	if ((err = spawn_guest(d, &d->vms[0], (char **)dom0_blkback_argv))) {
		snprintf(msg, msglen, "%s: cannot start the sim's blkback: %s",
			 d->dir, xbd_strerror(err));
		return err;
	}
	return 0;
}

/* Stops dom0's blkback politely first, so it can close its devices and
 * remove its nodes while xenstored still runs. */
static void stop_dom0_blkback(struct sim_daemon *d)
{
	struct sim_vm *dom0 = &d->vms[0];
	int i;

	if (!dom0->guest || !dom0->guest_running) {
		kill_guest(dom0);
		return;
	}
	kill(-dom0->guest, SIGTERM);
	for (i = 0; i < 100; i++) {
		if (waitpid(dom0->guest, NULL, WNOHANG) == dom0->guest) {
			dom0->guest_running = false;
			break;
		}
		usleep(50 * 1000);
	}
	kill_guest(dom0);
}

static void daemon_teardown(struct sim_daemon *d)
{
	char path[4096];

	if (d->listen_fd >= 0) {
		close(d->listen_fd);
		if (!sim_dir_path(path, sizeof(path), d->dir, XBD_SIM_CTL_SOCKET))
			unlink(path);
	}
	if (d->xs) {
		while (d->nvms > 1) {
			teardown_vm(d, &d->vms[d->nvms - 1], true);
			d->nvms--;
		}
		stop_dom0_blkback(d);
		xs_close(d->xs);
	}
	if (d->xsd)
		sim_xenstored_stop(d->xsd);
	sim_hv_destroy(d->hv);
	/* the run directory of its processes, now that they are gone;
	 * kept while anything (an xbd serve still running) is in it */
	if (!sim_dir_path(path, sizeof(path), d->dir, XBD_SIM_RUN_SUBDIR))
		rmdir(path);
	if (d->sig_fd >= 0)
		close(d->sig_fd);
	if (d->owner_fd >= 0)
		close(d->owner_fd);
}

static void daemon_loop(struct sim_daemon *d)
{
	unsigned long long last_reap = 0;

	while (!d->stopping) {
		struct pollfd pfd[3] = {
			{ .fd = d->listen_fd, .events = POLLIN },
			{ .fd = d->sig_fd, .events = POLLIN },
			{ .fd = d->owner_fd, .events = POLLIN },
		};
		struct signalfd_siginfo si;
		unsigned long long now;
		unsigned reaped;
		int n;

		n = poll(pfd, 3, SIM_REAP_MS);
		if (n < 0 && errno != EINTR) {
			xbd_err("poll: %s", strerror(errno));
			break;
		}
		now = xbd_now_ns();
		if (now - last_reap >= SIM_REAP_MS * 1000000ull) {
			last_reap = now;
			reaped = sim_hv_reap(d->hv);
			if (reaped)
				xbd_info("reclaimed %u port(s), grant(s), map(s) and "
					 "event FIFO(s) of exited processes", reaped);
		}
		if (n < 0)
			continue;
		while (read(d->sig_fd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			if (si.ssi_signo == SIGCHLD) {
				reap_guests(d);
			} else {
				xbd_info("signal %u: stopping", si.ssi_signo);
				d->stopping = true;
			}
		}
		if (pfd[2].revents) {
			xbd_info("owner process exited: stopping");
			d->stopping = true;
		}
		if (pfd[0].revents & POLLIN && !d->stopping) {
			int fd = accept4(d->listen_fd, NULL, NULL, SOCK_CLOEXEC);

			if (fd >= 0 && serve_client(d, fd) != fd)
				close(fd);
			/* a stop request's fd stays open: EOF tells its
			 * client that we are gone */
		}
	}
}

/* The forked daemon: returns its exit status. */
int sim_daemon_main(const char *dir, int owner_pid, int lock_fd,
		    int ready_fd)
{
	struct sim_daemon d = { .dir = dir, .listen_fd = -1, .sig_fd = -1,
				.owner_fd = -1 };
	char msg[4200] = "", pidbuf[32];
	int err, n;

	close_inherited_fds(lock_fd, ready_fd);
	setsid();
	if (chdir("/") < 0) /* dir is absolute; hold no caller's directory */
		xbd_debug("chdir /: %s", strerror(errno));
	if ((err = setup_stdio(dir))) {
		snprintf(msg, sizeof(msg), "%s/sim.log: %s", dir, xbd_strerror(err));
		goto fail;
	}
	if (xbd_verbosity < 1)
		xbd_verbosity = 1; /* the log says what happened */
	xbd_progname = "xbd-sim";
	n = snprintf(pidbuf, sizeof(pidbuf), "%d\n", (int)getpid());
	if (ftruncate(lock_fd, 0) < 0 || pwrite(lock_fd, pidbuf, (size_t)n, 0) != n) {
		err = -errno;
		snprintf(msg, sizeof(msg), "%s/pid: %s", dir, xbd_strerror(err));
		goto fail;
	}
	if (owner_pid > 0 &&
	    (d.owner_fd = (int)syscall(SYS_pidfd_open, owner_pid, 0)) < 0) {
		err = -errno;
		snprintf(msg, sizeof(msg), "owner process %d: %s", owner_pid,
			 xbd_strerror(err));
		goto fail;
	}
	n = (int)readlink("/proc/self/exe", dom0_blkback_exe,
			  sizeof(dom0_blkback_exe) - 1);
	if (n <= 0) {
		err = -errno;
		snprintf(msg, sizeof(msg), "/proc/self/exe: %s", xbd_strerror(err));
		goto fail;
	}
	dom0_blkback_exe[n] = 0;
	if ((err = daemon_setup(&d, msg, sizeof(msg))))
		goto fail;
	xbd_info("simulated Xen running in %s (pid %d)", dir, (int)getpid());
	sim_write_all(ready_fd, "ok", 2);
	close(ready_fd);
	daemon_loop(&d);
	daemon_teardown(&d);
	xbd_info("stopped");
	if (!sim_dir_path(msg, sizeof(msg), dir, "pid"))
		unlink(msg);
	close(lock_fd);
	return 0;
fail:
	xbd_err("%s", msg);
	sim_write_all(ready_fd, msg, strlen(msg));
	close(ready_fd);
	daemon_teardown(&d);
	if (!sim_dir_path(msg, sizeof(msg), dir, "pid"))
		unlink(msg);
	close(lock_fd);
	return 1;
}

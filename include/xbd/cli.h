/* SPDX-License-Identifier: GPL-2.0-or-later */
/* The xbd command table: each cli/cmd_*.c file provides commands. */
#ifndef XBD_CLI_H
#define XBD_CLI_H

#include "xbd/platform.h"
#include "xbd/toolstack.h"
#include "xbd/util.h"

#include <limits.h>
#include <stdbool.h>

struct xbd_cmd {
	const char *name;
	const char *usage;   /* one line, after "xbd " */
	const char *summary; /* one line */
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
};

/* cli/common.c, for xbd and xbdsh alike.  First thing in main(): sets
 * xbd_progname, hooks the sim platform in, and reads $XBD_DEBUG. */
void xbd_cli_init(const char *progname);
/* The global options both share, c as getopt_long returned it:
 * --platform (into *kind), -v, -h (usage()), -V; any other c is a usage
 * error, reported.  -1 when parsing goes on, else the exit status. */
struct option;
int xbd_cli_global_opt(int c, char **argv, const struct option *opts,
		       void (*usage)(void), enum xbd_platform_kind *kind);

/* -v / --verbose given after the command's name (`xbd attach vm1 -v`),
 * as xl takes it: each one found before a "--" raises the verbosity
 * and is taken out of argv.  Returns the new argc. */
int xbd_cli_take_verbose(int argc, char **argv);

/* After the global options: on the sim, and unless $XBD_RUN_DIR says
 * otherwise, the control sockets live in the sim's own directory
 * ($XBD_SIM_DIR/run), so that each simulator instance sees only its
 * own xbd processes; on Xen they stay in /run/xbd.  Sets $XBD_RUN_DIR,
 * which the processes this one starts inherit. */
void xbd_cli_choose_run_dir(enum xbd_platform_kind kind);

/* Global options given before the command. */
extern enum xbd_platform_kind xbd_cli_platform;

/* Opens the platform chosen by --platform / $XBD_PLATFORM / auto-detect;
 * prints one clear error line on failure. */
int xbd_cli_open_platform(struct xbd_platform **p);
/* cli/common.c, for xbd and xbdsh: opens the platform of that
 * kind (AUTO: resolved); on failure prints one line, which is
 * "PROG: needs root (...)" when not being root is why (on Xen, also
 * when a device xbd would need later is root's). */
int xbd_cli_open_platform_kind(enum xbd_platform_kind kind,
			       struct xbd_platform **p);

/* Exit codes: 0 ok, 1 failure, 2 usage, 3 `xbd attach` attached some
 * of the VM's disks and skipped others. */
#define XBD_EXIT_USAGE 2
#define XBD_EXIT_PARTIAL 3

/* An option's number in [min, max]; otherwise one usage line
 * "xbd: CMD: OPT: expected a number from MIN to MAX, got 'S' (see ...)"
 * and -EINVAL (the caller exits XBD_EXIT_USAGE). */
/* A DIR for xbd's FUSE mount (attach, serve --mount), absolute: 0, or
 * one error line and a negative errno (a dead xbd mount there, a mount
 * point already, files in it unless nonempty). */
int xbd_cli_mount_dir_usable(const char *dir, const char *cmd, bool nonempty);
int xbd_cli_parse_uint_opt(const char *cmd, const char *opt, const char *s,
			   unsigned min, unsigned max, unsigned *v);
/* An option's byte size ("4096", "64K", "1G": xbd_parse_byte_size),
 * not 0, a multiple of align and at most max; otherwise one usage line
 * "xbd: CMD: OPT: expected a size such as 64M, ..., got 'S' (see ...)"
 * and -EINVAL (the caller exits XBD_EXIT_USAGE). */
int xbd_cli_parse_size_opt(const char *cmd, const char *opt, const char *s,
			   uint64_t align, uint64_t max, uint64_t *v);

extern const struct xbd_cmd xbd_cmd_sim;
extern const struct xbd_cmd xbd_cmd_selftest;
/* cli/cmd_serve.c */
extern const struct xbd_cmd xbd_cmd_serve;
/* `xbd sim blkback` (hidden): cmd_sim.c hands it argv from "blkback" on */
extern const struct xbd_cmd xbd_cmd_sim_blkback;
/* cli/cmd_list.c, cli/cmd_detach.c */
extern const struct xbd_cmd xbd_cmd_list;
extern const struct xbd_cmd xbd_cmd_detach;
/* cli/cmd_detach.c: `xbd detach DIR` (refused while DIR is in use);
 * the exit status. */
int xbd_detach_dir(const char *dir);
/* cli/cmd_detach.c: every disk `xbd serve` serves from this domain,
 * unplugged as `xbd detach VM VDEV` does; 0, or 1 when one of them is
 * still there (each named on stderr). */
int xbd_detach_all_served(struct xbd_platform *p);
/* cli/cmd_detach.c: removes the nodes of disk devid that a killed
 * `xbd serve` left for domain fe_domid (*was: the process they named).
 * 1 when removed, 0 when there is nothing, or its process lives,
 * negative errno. */
int xbd_serve_remove_dead(struct xbd_platform *p, uint16_t fe_domid, uint32_t devid,
			  struct xbd_proc *was);

/* A frontend directory under XBD_ATTACH_FE_DIR in the way of a new
 * instance (struct xbd_attach_instance_opts.clear_stale): removed with
 * its backend instance when the process it records is gone. */
void xbd_attach_clear_stale(struct xbd_platform *p, const char *fe_path);
/* Exit status of `xbd image --skip-errors` when sectors could not be
 * read and were written as zeros. */
#define XBD_EXIT_READ_ERRORS 4
/* cli/cmd_image.c */
extern const struct xbd_cmd xbd_cmd_image;
/* cli/cmd_files.c: attach --files, read one path, detach */
extern const struct xbd_cmd xbd_cmd_ls, xbd_cmd_cat, xbd_cmd_cp;

/* cli/cmd_attach.c: `xbd attach`, and the records it keeps of itself
 * for `xbd detach DIR`: its frontend directories under
 * XBD_ATTACH_FE_DIR, each with xbd-mount (the DIR) and the process
 * (xbd_xs_read_proc()). */
extern const struct xbd_cmd xbd_cmd_attach;
/* Beside xbd-mount and the process, each record names the VM, its
 * domid and disk, the mount's "MAJOR:MINOR" (xbd_fuse_dev()), and holds
 * xbd-detaching once the mount was taken off DIR lazily. */
#define XBD_ATTACH_VM_NODE "xbd-vm"
#define XBD_ATTACH_DOMID_NODE "xbd-domid"
#define XBD_ATTACH_VDEV_NODE "xbd-vdev"
#define XBD_ATTACH_MOUNT_DEV_NODE "xbd-mount-dev"
#define XBD_ATTACH_DETACHING_NODE "xbd-detaching"
/* attach --pause's own record, XBD_ATTACH_FE_DIR/pause-PID: xbd-mount,
 * the process, xbd-mount-dev once mounted, and XBD_PAUSED_NODE; no
 * disk, no backend instance. */
#define XBD_ATTACH_PAUSE_PREFIX "pause-"
struct xbd_attach_record {
	char fe_path[96];
	struct xbd_proc proc;         /* pid 0: none recorded */
	char mount[PATH_MAX];         /* xbd-mount */
	char mount_dev[24];           /* "" when none was recorded */
	bool detaching;
	bool pause_only;              /* XBD_ATTACH_PAUSE_PREFIX: no disk */
};
/* The records whose xbd-mount is dir, or every record when dir is NULL
 * (*out freed by the caller). */
int xbd_attach_records(struct xbd_platform *p, const char *dir,
		       struct xbd_attach_record **out, unsigned *count);
/* Removes a record's nodes and its backend instance's (a killed
 * attach's leftovers). */
void xbd_attach_remove_record(struct xbd_platform *p, const char *fe_path);
/* Removes what dead attaches left for dir: the nodes of records e[0..n)
 * and the mount on top of dir when it is the one they recorded (by
 * device number; for a record without one, an xbd mount that nobody
 * serves).  1 when a mount was taken off, 0 when none, negative errno
 * when it could not be. */
int xbd_attach_remove_dead(struct xbd_platform *p, const char *dir,
			   const struct xbd_attach_record *e, unsigned n);
/* cli/cmd_guest.c: `xbd sim guest` and `xbd sim vm io` (hidden): cmd_sim.c
 * hands them argv from "guest" / "io" on */
extern const struct xbd_cmd xbd_cmd_sim_guest;
extern const struct xbd_cmd xbd_cmd_sim_vm_io;

#endif

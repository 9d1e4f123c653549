/* The xbd command table: each cli/cmd_*.c file provides commands. */
#ifndef XBD_CLI_H
#define XBD_CLI_H

#include "xbd/platform.h"
#include "xbd/toolstack.h"
#include "xbd/util.h"

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

/* Global options given before the command. */
extern enum xbd_platform_kind xbd_cli_platform;

/* Opens the platform chosen by --platform / $XBD_PLATFORM / auto-detect;
 * prints one clear error line on failure. */
int xbd_cli_open_platform(struct xbd_platform **p);

/* Exit codes: 0 ok, 1 failure, 2 usage. */
#define XBD_EXIT_USAGE 2

/* An option's number in [min, max]; otherwise one line
 * "xbd: CMD: OPT: expected a number from MIN to MAX, got 'S'" and
 * -EINVAL (the caller exits XBD_EXIT_USAGE). */
int xbd_cli_parse_uint_opt(const char *cmd, const char *opt, const char *s,
			   unsigned min, unsigned max, unsigned *v);

extern const struct xbd_cmd xbd_cmd_sim;
extern const struct xbd_cmd xbd_cmd_selftest;
/* cli/cmd_serve.c */
extern const struct xbd_cmd xbd_cmd_serve;
/* `xbd sim blkback` (hidden): cmd_sim.c hands it argv from "blkback" on */
extern const struct xbd_cmd xbd_cmd_sim_blkback;
/* cli/cmd_list.c, cli/cmd_detach.c */
extern const struct xbd_cmd xbd_cmd_list;
extern const struct xbd_cmd xbd_cmd_detach;

/* cli/cmd_attach.c: `xbd attach`, and the records it keeps of itself
 * for `xbd detach DIR`: its frontend directories under
 * XBD_ATTACH_FE_DIR, each with xbd-mount (the DIR) and the process
 * (xbd_xs_read_proc()). */
extern const struct xbd_cmd xbd_cmd_attach;
struct xbd_attach_record {
	char fe_path[96];
	struct xbd_proc proc;         /* pid 0: none recorded */
};
/* The records whose xbd-mount is dir (*out freed by the caller). */
int xbd_attach_records(struct xbd_platform *p, const char *dir,
		       struct xbd_attach_record **out, unsigned *count);
/* Removes a record's nodes and its backend instance's (a killed
 * attach's leftovers). */
void xbd_attach_remove_record(struct xbd_platform *p, const char *fe_path);
/* cli/cmd_guest.c: `xbd sim guest` and `xbd sim vm io` (hidden): cmd_sim.c
 * hands them argv from "guest" / "io" on */
extern const struct xbd_cmd xbd_cmd_sim_guest;
extern const struct xbd_cmd xbd_cmd_sim_vm_io;

#endif

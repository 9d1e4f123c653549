/* The xbd command table: each cli/cmd_*.c file provides commands. */
#ifndef XBD_CLI_H
#define XBD_CLI_H

#include "xbd/platform.h"

struct xbd_cmd {
	const char *name;
	const char *usage;   /* one line, after "xbd " */
	const char *summary; /* one line */
	int (*run)(int argc, char **argv); /* argv[0] is the command name */
};

/* Global options given before the command. */
extern enum xbd_platform_kind xbd_cli_platform;

/* Opens the platform chosen by --platform / $XBD_PLATFORM / auto-detect;
 * prints one clear error line on failure. */
int xbd_cli_open_platform(struct xbd_platform **p);

/* Exit codes: 0 ok, 1 failure, 2 usage. */
#define XBD_EXIT_USAGE 2

extern const struct xbd_cmd xbd_cmd_sim;
extern const struct xbd_cmd xbd_cmd_selftest;
/* cli/cmd_serve.c */
extern const struct xbd_cmd xbd_cmd_serve;
extern const struct xbd_cmd xbd_cmd_list;
extern const struct xbd_cmd xbd_cmd_detach;
/* `xbd sim blkback` (hidden): cmd_sim.c hands it argv from "blkback" on */
extern const struct xbd_cmd xbd_cmd_sim_blkback;
/* cli/cmd_attach.c: `xbd attach`, and `xbd detach DIR` (which
 * xbd_cmd_detach runs for one argument); returns the exit status */
extern const struct xbd_cmd xbd_cmd_attach;
int xbd_cli_detach_dir(const char *dir);
/* cli/cmd_guest.c: `xbd sim guest` and `xbd sim vm io` (hidden): cmd_sim.c
 * hands them argv from "guest" / "io" on */
extern const struct xbd_cmd xbd_cmd_sim_guest;
extern const struct xbd_cmd xbd_cmd_sim_vm_io;

#endif

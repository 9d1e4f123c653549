/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the control socket's server (src/ctl.c) and client
 * (src/ctl_client.c) agree on beyond include/xbd/ctl.h.
 */
#ifndef XBD_CTL_PRIV_H
#define XBD_CTL_PRIV_H

#define CTL_MAX_REQUEST 64            /* a request line, with its \n */
#define CTL_MAX_REPLY (16u << 20)     /* a document larger than this is bad */

#include "xbd/util.h"

#include <sys/types.h>

/* The pid in a control socket's name "xbd-<pid>.sock"; 0 when the name
 * does not have that form. */
pid_t xbd_ctl_socket_name_pid(const char *name);
/* The process that made xbd-<pid>.sock in the directory dir_fd (start
 * 0: unknown, as an older xbd left no .start file). */
void xbd_ctl_socket_proc(int dir_fd, pid_t pid, struct xbd_proc *proc);

#endif

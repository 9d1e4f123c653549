/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to the sim daemon (sim_daemon.c) and its clients
 * (sim_client.c): the control socket's limits and what they share.
 */
#ifndef XBD_SIM_DAEMON_H
#define XBD_SIM_DAEMON_H

#include "src/sim/sim.h"

#include <stddef.h>
#include <sys/un.h>

#define CTL_MAX_REQUEST 65536
#define CTL_IO_TIMEOUT_MS 5000
#define CTL_REPLY_TIMEOUT_MS 60000
#define STOP_WAIT_MS 30000

/* --- sim_daemon.c --- */
int sim_dir_path(char *buf, size_t len, const char *dir, const char *name);
int sim_unix_addr(struct sockaddr_un *sa, const char *dir, const char *name);
int sim_write_all(int fd, const void *buf, size_t len);
int sim_daemon_main(const char *dir, int owner_pid, int lock_fd,
		    int ready_fd);

/* --- sim_client.c --- */

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/* Helpers shared by the backend tests (tests/lib/backend_util.c):
 * running xbd commands, killing whatever they left running at exit,
 * waiting on xenstore nodes, files of known bytes. */
#ifndef XBD_TEST_BACKEND_UTIL_H
#define XBD_TEST_BACKEND_UTIL_H

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "xbd/common.h"
#include "xbd/platform.h"
#include "tests/lib/testlib.h"

/* Kills pid at exit, unless it is gone by then.  The first call also
 * registers the handler, which runs before the sim is stopped when
 * called after xbd_test_sim_start(). */
void bt_track(pid_t pid);
/* Starts `xbd ARGS...` (NULL-terminated); its output goes to ours. */
pid_t bt_spawnv(const char *const *args);
pid_t bt_spawn(const char *arg, ...);
/* The exit status of our child pid within ms (128+signal when killed);
 * -1 on timeout, after which it is killed. */
int bt_wait(pid_t pid, int ms);
/* Runs `xbd ARGS...` to completion (at most ms); its exit status. */
int bt_run(int ms, const char *arg, ...);
/* True while a process (not a zombie) has this pid. */
bool bt_pid_alive(pid_t pid);
/* Waits up to ms until no process (but a zombie) has this pid. */
bool bt_wait_pid_gone(pid_t pid, int ms);
/* The xenstore node exists. */
bool bt_exists(struct xbd_platform *p, const char *path);
/* Waits until path reads `want` (NULL: until it exists). */
bool bt_wait_value(struct xbd_platform *p, const char *path,
		   const char *want, int ms);
/* Waits until path is gone. */
bool bt_wait_gone(struct xbd_platform *p, const char *path, int ms);
/* The node as a number; -1 when it cannot be read. */
long long bt_read_ll(struct xbd_platform *p, const char *path);
/* Deterministic bytes: the same (seed, offset) always gives the same. */
void bt_pattern(void *buf, size_t len, uint64_t seed, uint64_t off);
/* A file of len pattern bytes. */
void bt_make_file(const char *path, size_t len, uint64_t seed);
/* The whole file, malloc'd; *len its size. */
char *bt_read_file(const char *path, size_t *len);

#endif

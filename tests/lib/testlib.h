/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Helpers shared by the unit tests (tests/lib/testlib.c, linked into every
 * test): a simulated Xen of the test's own, platforms acting as one of
 * its domains, and a tiny message channel between forked processes.
 */
#ifndef XBD_TESTLIB_H
#define XBD_TESTLIB_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "xbd/platform.h"

/* Starts a sim in a fresh temporary directory by running
 * "$XBD_BUILD/xbd sim start", and sets $XBD_SIM_DIR to it.  At exit of
 * the calling process (and, through --owner-pid, even if it crashes) the
 * sim is stopped and its log copied to stderr, where the test runner
 * looks for sanitizer reports.  Returns the directory; on failure prints
 * why and exits 1. */
const char *xbd_test_sim_start(void);
/* Stops the sim now (idempotent); 0 when it stopped cleanly. */
int xbd_test_sim_stop(void);
/* The xbd binary under test ($XBD_BUILD/xbd, or next to tests/). */
const char *xbd_test_xbd_path(void);
/* Creates a domain in the test's sim; exits 1 on failure. */
uint16_t xbd_test_sim_vm_create(const char *name);
/* Opens the test's sim as domain domid; exits 1 on failure. */
struct xbd_platform *xbd_test_sim_open(uint16_t domid);

/* fork() after flushing stdout and stderr (so that nothing buffered is
 * printed twice); exits 1 when it fails. */
pid_t xbd_test_fork(void);
/* Forks a process that plays guest domain `self` (and knows domain
 * `other`): guest(fd, self, other) runs in the child, its return value
 * the child's exit status; fd is the child's end of a socketpair whose
 * other end goes to *peer_fd.  Returns the child's pid; exits 1 on
 * failure. */
pid_t xbd_test_fork_guest(int (*guest)(int fd, uint16_t self, uint16_t other),
			  uint16_t self, uint16_t other, int *peer_fd);

/* A test of two domains talking, on the test's sim (started with
 * xbd_test_sim_start()): creates domains "guest" and "other", forks
 * guest() as "guest" (see xbd_test_fork_guest), sets *dom0 to a platform
 * open as dom0 and runs host(fd, guest_id, other) here; then waits for
 * the guest and closes *dom0.  Returns 0 when the guest exited 0. */
int xbd_test_guest_and_host(int (*guest)(int fd, uint16_t self, uint16_t other),
			    void (*host)(int fd, uint16_t guest_id, uint16_t other),
			    struct xbd_platform **dom0);

/* Whole messages over a socketpair between a test's processes; a peer
 * that does not answer within 10 s, or hangs up, fails the test (exit 1). */
void xbd_test_send(int fd, const void *msg, size_t len);
void xbd_test_recv(int fd, void *msg, size_t len);

#endif

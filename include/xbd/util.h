/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * One helper per job: the number parsers every command and every reader
 * of xenstore uses, and the one answer to "is that process still
 * running?", and the one bounded wait for a readable fd.  Keeping a single copy keeps them from drifting apart (one
 * size parser took "4KiB", another refused it).
 */
#ifndef XBD_UTIL_H
#define XBD_UTIL_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

/* A byte count: "4096", "4K", "4k", "1M", "4KiB", "10GB", "2Ti"; K, M,
 * G and T are powers of 1024, "i", "B" or "iB" may follow them.
 * Digits only before the suffix (no sign, blank or base prefix).
 * -EINVAL for junk, -ERANGE when it does not fit in 64 bits. */
int xbd_parse_byte_size(const char *s, uint64_t *out);

/* A strict decimal in [0, max]: digits only, no sign, blank or junk.
 * -EINVAL for junk, -ERANGE above max. */
int xbd_parse_uint(const char *s, unsigned long long max,
		   unsigned long long *out);

/*
 * A process as a record names it: the PID and its start time (field 22
 * of /proc/PID/stat, clock ticks since boot), which together never name
 * two processes, where a PID alone is reused.  start 0 means unknown
 * (a record written before start times were kept).
 */
struct xbd_proc {
	pid_t pid;
	unsigned long long start;
};

/* This process, or process pid now (0 or negative errno; -ESRCH when
 * there is none). */
int xbd_proc_self(struct xbd_proc *out);
int xbd_proc_of(pid_t pid, struct xbd_proc *out);

/* Whether the recorded process still runs.  Gone: no such PID, a zombie
 * (it has exited; only its parent has not reaped it), or a PID now held
 * by a process that started at another time.  An unknown start time
 * (an older xbd's record) cannot tell a reused PID apart: such a record
 * counts as running only while its PID is an xbd process, so that
 * nothing live of xbd's is cleaned up and nobody else is signalled. */
bool xbd_proc_alive(const struct xbd_proc *p);

/* 1 when fd is readable (or hung up) within ms, 0 on timeout, negative
 * errno; an interrupted wait resumes for the time that is left. */
int xbd_wait_readable(int fd, int ms);

#endif

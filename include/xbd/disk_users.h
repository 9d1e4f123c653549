/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Who else uses a disk's storage: every backend of every domain in
 * xenstore (blkback, QEMU, tapdisk, xbd) and the loop devices that back
 * a file.  `xbd serve` asks before serving an image writable, so that a
 * VM's own running disk, or a disk another VM uses, never gets a second
 * writer that does not know of the first (src/disk_users.c).
 */
#ifndef XBD_DISK_USERS_H
#define XBD_DISK_USERS_H

#include <stddef.h>

#include "xbd/platform.h"

/* Bounds on what the walk reads, whoever wrote xenstore. */
#define XBD_DISK_USERS_MAX_DOMAINS 4096
#define XBD_DISK_USERS_MAX_DEVICES 8192
#define XBD_DISK_USERS_MAX_LOOPS 1024

/*
 * Looks for a user of the file or block device at path, compared by
 * device and inode (by st_rdev for a block device), never by name:
 *  - a backend whose params names it, after any "format:" prefixes
 *    ("aio:", "raw:", "tapdisk:vhd:" ...);
 *  - a backend whose physical-device ("MAJOR:MINOR", hex, as blkback's
 *    hotplug script writes it) is that device, or a loop device
 *    backing that file;
 *  - a loop device backing that file, even with no backend.
 * 1: found, and desc holds who, as "vm1's xvda (vbd backend in domain
 * 0)" or "/dev/loop3 (a loop device backing it)"; 0: nobody; -errno
 * when the check could not be made (-E2BIG: more devices than the
 * bounds above).
 */
int xbd_disk_find_user(struct xbd_platform *p, const char *path, char *desc,
		       size_t len);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Block statistics of a QEMU that serves qdisk disks (src/qmp.c): one
 * `query-blockstats` over the QMP socket libxl gave the domain's device
 * model, bounded in time and in size (QEMU's reply is another process's
 * word).
 */
#ifndef XBD_QMP_H
#define XBD_QMP_H

#include <stddef.h>
#include <stdint.h>

#include "xbd/blkback_sysfs.h"

struct json_object;

/* Where libxl puts a domain's QMP sockets (`xentop`'s, then its own). */
#define XBD_QMP_DEFAULT_DIR "/run/xen"

/* One block device of QEMU, as query-blockstats gives it. */
struct xbd_qmp_blockstats {
	char node_name[64]; /* "xvda-raw" for qdisk's xvda (QEMU's xen-block) */
	char qdev[128];
	uint64_t rd_bytes, wr_bytes;
	uint64_t rd_ops, wr_ops, flush_ops, unmap_ops;
	uint64_t rd_total_ns, wr_total_ns, flush_total_ns;
};

#define XBD_QMP_MAX_DEVICES 64

/* query-blockstats on the QMP socket at path, everything done within
 * timeout_ms: *out (malloc'd, *n entries; free() it).  -ETIMEDOUT when
 * QEMU does not answer in time (another client holds the socket),
 * -EPROTO for a reply that is not QMP or too big, -EREMOTEIO when QEMU
 * answers with an error, else a negative errno of the connection. */
int xbd_qmp_query_blockstats(const char *path, int timeout_ms,
			     struct xbd_qmp_blockstats **out, unsigned *n);

/* The same over an already connected stream fd (not closed here; the
 * fuzzer's way in). */
int xbd_qmp_blockstats_fd(int fd, int timeout_ms,
			  struct xbd_qmp_blockstats **out, unsigned *n);

/* The same for domain domid's device model: its sockets under dir (NULL:
 * $XBD_QMP_DIR or XBD_QMP_DEFAULT_DIR), qmp-libxenstat-DOMID first
 * (meant for statistics readers), then qmp-libxl-DOMID. */
int xbd_qmp_domain_blockstats(const char *dir, uint16_t domid, int timeout_ms,
			      struct xbd_qmp_blockstats **out, unsigned *n);

/* Parses a query-blockstats "return" array (at most XBD_QMP_MAX_DEVICES
 * entries; fields missing or of the wrong type read as 0). */
int xbd_qmp_parse_blockstats(struct json_object *ret,
			     struct xbd_qmp_blockstats **out, unsigned *n);

/* The entry of a qdisk disk: QEMU names its node "VDEV-DRIVER". */
const struct xbd_qmp_blockstats *
xbd_qmp_find_vdev(const struct xbd_qmp_blockstats *s, unsigned n,
		  const char *vdev);

/* One qdisk disk of domain domid (vdev: its backend's "dev"), in the
 * terms of blkback's counters (requests, 512-byte sectors; QEMU has no
 * out-of-requests count), and QEMU's own entry in *raw unless NULL.
 * -ENODEV when QEMU has no such disk; else as above. */
int xbd_qmp_disk_counters(const char *dir, uint16_t domid, const char *vdev,
			  int timeout_ms, struct xbd_blkback_counters *c,
			  struct xbd_qmp_blockstats *raw);

#endif

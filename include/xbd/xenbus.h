/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * xenbus conventions shared by the frontend and the backend: device
 * states, paths, and virtual-device names (xvda <-> devid).
 */
#ifndef XBD_XENBUS_H
#define XBD_XENBUS_H

#include <stddef.h>
#include <stdint.h>
#include <xen/io/xenbus.h>

#include "xbd/platform.h"

/* DIR/state as a XenbusState; a missing node reads as
 * XenbusStateUnknown (0) with return 0; -errno on other failures or a
 * malformed value. */
int xbd_xenbus_read_state(struct xbd_platform *p, const char *dir,
			  enum xenbus_state *state);
int xbd_xenbus_switch_state(struct xbd_platform *p, const char *dir,
			    enum xenbus_state state);
const char *xbd_xenbus_state_name(enum xenbus_state state);

/* xvda..xvdp: 202<<8 | disk<<4 | part; beyond (xvdq.., up to xvdzz):
 * 1<<28 | disk<<8 | part (docs/man/xen-vbd-interface).  Also accepts a
 * plain number. */
int xbd_vdev_to_devid(const char *vdev, uint32_t *devid);
/* Inverse, for whole disks and partitions; -EINVAL for other majors. */
int xbd_devid_to_vdev(uint32_t devid, char *buf, size_t len);

/* /local/domain/<be>/backend/<type>/<fe>/<devid> */
void xbd_backend_path(char *buf, size_t len, uint16_t be_domid,
		      const char *type, uint16_t fe_domid, uint32_t devid);
/* /local/domain/<fe>/device/vbd/<devid> */
void xbd_frontend_path(char *buf, size_t len, uint16_t fe_domid,
		       uint32_t devid);
/* The parts of a backend path, spelt exactly as xbd_backend_path spells
 * it (type: at most type_len - 1 characters); -EINVAL otherwise. */
int xbd_backend_path_parse(const char *path, uint16_t *be_domid, char *type,
			   size_t type_len, uint16_t *fe_domid, uint32_t *devid);
/* Whether be_path, which the `backend` node of domain domid's device
 * devid names, is that device's backend.  The guest writes that node
 * and can point it at another VM's disk: the path must be
 * /local/domain/<be>/backend/<type>/<domid>/<devid>, and the backend's
 * frontend-id and frontend nodes (which only its toolstack writes) must
 * name this frontend back.  0, or -EINVAL when it is not. */
int xbd_vbd_backend_check(struct xbd_platform *p, uint16_t domid,
			  uint32_t devid, const char *be_path);

#endif

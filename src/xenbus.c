/* SPDX-License-Identifier: GPL-2.0-or-later */
/* xenbus conventions shared by both roles: states, paths, vdev names. */
#include "xbd/xenbus.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int xbd_xenbus_read_state(struct xbd_platform *p, const char *dir,
			  enum xenbus_state *state)
{
	char path[256];
	unsigned long long v;
	int err;

	snprintf(path, sizeof(path), "%s/state", dir);
	err = xbd_xs_read_uint(p, path, &v);
	if (err == -ENOENT) {
		*state = XenbusStateUnknown;
		return 0;
	}
	if (err)
		return err;
	if (v > XenbusStateReconfigured)
		return -EINVAL;
	*state = (enum xenbus_state)v;
	return 0;
}

int xbd_xenbus_switch_state(struct xbd_platform *p, const char *dir,
			    enum xenbus_state state)
{
	char path[256];

	snprintf(path, sizeof(path), "%s/state", dir);
	return xbd_xs_printf(p, XBD_XS_NO_TXN, path, "%d", (int)state);
}

const char *xbd_xenbus_state_name(enum xenbus_state state)
{
	static const char *const names[] = {
		"Unknown", "Initialising", "InitWait", "Initialised",
		"Connected", "Closing", "Closed", "Reconfiguring",
		"Reconfigured",
	};

	if ((unsigned)state < sizeof(names) / sizeof(names[0]))
		return names[state];
	return "Invalid";
}

/* "a".."z" -> 0..25, "aa".."zz" -> 26..701, as xen-vbd-interface counts */
static int parse_disk_letters(const char *s, const char **end, unsigned *disk)
{
	unsigned n = 0, len = 0;

	while (s[len] >= 'a' && s[len] <= 'z')
		len++;
	if (len == 0 || len > 2)
		return -EINVAL;
	if (len == 1)
		n = (unsigned)(s[0] - 'a');
	else
		n = 26 * (unsigned)(s[0] - 'a' + 1) + (unsigned)(s[1] - 'a');
	*disk = n;
	*end = s + len;
	return 0;
}

int xbd_vdev_to_devid(const char *vdev, uint32_t *devid)
{
	const char *rest;
	unsigned disk, part = 0;
	char *end;

	if (vdev[0] >= '0' && vdev[0] <= '9') {
		unsigned long v;

		errno = 0;
		v = strtoul(vdev, &end, 10);
		if (*end || errno || v > UINT32_MAX || v == 0)
			return -EINVAL;
		*devid = (uint32_t)v;
		return 0;
	}
	if (strncmp(vdev, "xvd", 3) || parse_disk_letters(vdev + 3, &rest, &disk))
		return -EINVAL;
	if (*rest) {
		unsigned long v;

		if (*rest < '1' || *rest > '9')
			return -EINVAL;
		v = strtoul(rest, &end, 10);
		if (*end || v > 255)
			return -EINVAL;
		part = (unsigned)v;
	}
	if (disk < 16 && part < 16)
		*devid = (202u << 8) | (disk << 4) | part;
	else
		*devid = (1u << 28) | (disk << 8) | part;
	return 0;
}

static void format_disk_letters(char *buf, size_t len, unsigned disk)
{
	if (disk < 26)
		snprintf(buf, len, "xvd%c", 'a' + disk);
	else
		snprintf(buf, len, "xvd%c%c", 'a' + disk / 26 - 1, 'a' + disk % 26);
}

int xbd_devid_to_vdev(uint32_t devid, char *buf, size_t len)
{
	unsigned disk, part;
	char name[16];

	if ((devid >> 8) == 202) {
		disk = (devid >> 4) & 15;
		part = devid & 15;
	} else if ((devid >> 28) == 1) {
		/* bits 29..31 are not part of the scheme: 0x3000000a is not
		 * another spelling of xvda10's 0x1000000a */
		disk = (devid >> 8) & 0xfffff;
		part = devid & 0xff;
		if (disk >= 702)
			return -EINVAL;
	} else {
		return -EINVAL;
	}
	format_disk_letters(name, sizeof(name), disk);
	if (part)
		snprintf(buf, len, "%s%u", name, part);
	else
		snprintf(buf, len, "%s", name);
	return 0;
}

void xbd_backend_path(char *buf, size_t len, uint16_t be_domid,
		      const char *type, uint16_t fe_domid, uint32_t devid)
{
	snprintf(buf, len, "/local/domain/%u/backend/%s/%u/%u", be_domid, type,
		 fe_domid, devid);
}

void xbd_frontend_path(char *buf, size_t len, uint16_t fe_domid,
		       uint32_t devid)
{
	snprintf(buf, len, "/local/domain/%u/device/vbd/%u", fe_domid, devid);
}

int xbd_backend_path_parse(const char *path, uint16_t *be_domid, char *type,
			   size_t type_len, uint16_t *fe_domid, uint32_t *devid)
{
	char t[32], canon[256];
	unsigned be, fe, dev;
	int used = 0;

	if (sscanf(path, "/local/domain/%u/backend/%31[^/]/%u/%u%n", &be, t,
		   &fe, &dev, &used) != 4 || path[used] ||
	    be >= XBD_DOMID_SELF || fe >= XBD_DOMID_SELF)
		return -EINVAL;
	/* sscanf takes "+1", " 1" and "-1" for numbers: only the one
	 * spelling a toolstack writes names a device */
	xbd_backend_path(canon, sizeof(canon), (uint16_t)be, t, (uint16_t)fe, dev);
	if (strcmp(canon, path) || strlen(t) >= type_len)
		return -EINVAL;
	*be_domid = (uint16_t)be;
	*fe_domid = (uint16_t)fe;
	*devid = dev;
	snprintf(type, type_len, "%s", t);
	return 0;
}

int xbd_vbd_backend_check(struct xbd_platform *p, uint16_t domid,
			  uint32_t devid, const char *be_path)
{
	char path[320], want[64], type[32], *fe_path = NULL;
	unsigned long long fe_id;
	uint16_t be, fe;
	uint32_t dev;
	int err;

	if (xbd_backend_path_parse(be_path, &be, type, sizeof(type), &fe, &dev) ||
	    fe != domid || dev != devid)
		return -EINVAL;
	/* the backend's own nodes, which only its toolstack writes, must
	 * name this frontend back */
	snprintf(path, sizeof(path), "%s/frontend-id", be_path);
	if (xbd_xs_read_uint(p, path, &fe_id) || fe_id != domid)
		return -EINVAL;
	snprintf(path, sizeof(path), "%s/frontend", be_path);
	xbd_frontend_path(want, sizeof(want), domid, devid);
	err = xbd_xs_read_str(p, path, &fe_path) || strcmp(fe_path, want) ?
	      -EINVAL : 0;
	free(fe_path);
	return err;
}

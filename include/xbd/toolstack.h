/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The toolstack's part of a block device, as libxl plays it: finding a
 * VM's disks in xenstore, writing and removing vbd device pairs (for
 * `xbd attach`'s second backend instance, `xbd serve`'s hot-plug and
 * the sim's `vm create --disk`), and loop devices for file-backed disks.
 * One module, so that every device xbd creates is written the same way.
 */
#ifndef XBD_TOOLSTACK_H
#define XBD_TOOLSTACK_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "xbd/platform.h"


/* One of a VM's disks, as xenstore describes it.  Strings are NULL
 * when the node is absent. */
struct xbd_vm_disk {
	uint32_t devid;
	char vdev[16];
	char fe_path[96];
	char be_path[160];
	uint16_t be_domid;
	char be_type[16];       /* "vbd" (blkback), "qdisk", "vbd3", "xbd" */
	char *params;           /* blkback: a path; qdisk: "FORMAT:PATH" */
	char *type;             /* "phy", "file", ... */
	char *mode;             /* "r" or "w" */
	char *physical_device;  /* "MAJOR:MINOR" in hex */
	char *device_type;      /* "disk", "cdrom" */
	int be_state;           /* XenbusState; 0 when absent */
};

/* The disks under /local/domain/<domid>/device/vbd, by devid; free with
 * xbd_vm_disks_free.  A VM without disks is 0 disks, not an error. */
int xbd_vm_disks(struct xbd_platform *p, uint16_t domid,
		 struct xbd_vm_disk **disks, unsigned *count);
void xbd_vm_disks_free(struct xbd_vm_disk *disks, unsigned count);

/* A vbd device pair, as a toolstack creates it. */
struct xbd_vbd_spec {
	uint16_t fe_domid, be_domid;
	const char *be_type;     /* "vbd" */
	uint32_t devid;
	const char *fe_path;     /* NULL: /local/domain/<fe>/device/vbd/<devid> */
	const char *vdev;        /* the backend's "dev" node; NULL: from devid */
	const char *params;      /* NULL: not written (also below) */
	const char *type;
	const char *mode;        /* "r" or "w" */
	const char *physical_device;
	/* more nodes: NULL-terminated key, value pairs */
	const char *const *fe_extra;
	const char *const *be_extra;
	/* more backend nodes written in the same transaction after the
	 * others (features, a state other than Initialising); may be NULL */
	int (*be_fill)(struct xbd_platform *p, xbd_xs_txn t,
		       const char *be_path, void *arg);
	void *be_fill_arg;
	/* NULL, or told which parents the transaction created, so that the
	 * creator removes them again when they are left empty */
	struct xbd_vbd_made *made;
};

/* Parent directories a hot-plug had to create. */
struct xbd_vbd_made {
	bool be_root;            /* /local/domain/<be>/backend */
	bool fe_vbd;             /* /local/domain/<fe>/device/vbd */
};

/* Writes both directories in one transaction (backend owned by the
 * backend domain and readable by the frontend's, frontend the other way
 * round, states Initialising, online 1); a missing device/ or
 * device/vbd parent of the frontend is made the frontend domain's, as
 * libxl leaves them.  -EEXIST, writing nothing, if
 * either exists.  be_path_out (may be NULL) gets the backend path. */
int xbd_vbd_create(struct xbd_platform *p, const struct xbd_vbd_spec *s,
		   char *be_path_out, size_t be_path_len);
/* Takes a device pair away as a toolstack does: online 0, then both
 * directories removed, and their parents if that left them empty.
 * Missing nodes are fine. */
void xbd_vbd_destroy(struct xbd_platform *p, const char *fe_path,
		     const char *be_path);
/* The same for a device whose frontend died (kill -9): online 0 and
 * the frontend Closed on its behalf first, then up to timeout_ms for
 * the backend to say Closed, as libxl waits before removing.  Nodes
 * removed under a backend still tearing the device down would take its
 * late "Closed" into the next device made at the same path. */
void xbd_vbd_destroy_dead(struct xbd_platform *p, const char *fe_path,
			  const char *be_path, unsigned timeout_ms);
/* Removes path if it has no children (in a transaction: a child added
 * meanwhile keeps it).  0 also when path is missing or not empty. */
int xbd_xs_rm_if_empty(struct xbd_platform *p, const char *path);

/* A loop device over `file` (read-only unless asked), for a raw file
 * that kernel blkback must serve: it stays while *fd is open and goes
 * by itself once the last user (blkback) lets it go (autoclear).
 * dev gets "/dev/loopN", majmin "MAJOR:MINOR" in hex as blkback's
 * physical-device node wants.  Real Xen only (needs /dev/loop-control). */
int xbd_loop_attach(const char *file, bool read_only, char *dev, size_t dev_len,
		    char *majmin, size_t majmin_len, int *fd);

/*
 * `xbd sim vm create NAME --disk FILE[,VDEV]`: gives sim domain `domid`
 * a disk served by the sim's blkback (`xbd sim blkback` watches
 * backend/vbd): backend/vbd/<domid>/<devid> with params = FILE's
 * absolute path, mode w (FILE must be a readable, writable regular
 * file), and the guest's device/vbd/<devid>.  VDEV NULL or omitted: the
 * first free of xvda, xvdb, ...  Prints one error line on failure.
 */
int xbd_sim_vm_add_disk(struct xbd_platform *p, uint16_t domid,
			const char *spec);


/* Where `xbd attach` keeps its frontend directories in dom0. */
#define XBD_ATTACH_FE_DIR "/local/domain/0/device/xbd"

/*
 * `xbd attach`'s second backend instance of one of a VM's disks, with
 * dom0 as its frontend under XBD_ATTACH_FE_DIR (where dom0's kernel
 * blkfront never looks): the same storage, served by the same kind of
 * backend (kernel blkback for vbd; a loop device and kernel blkback for
 * a raw qdisk/vbd3 file), read-only unless rw.  Prints one error line
 * naming the VM and disk on failure.  Undo with xbd_attach_instance_destroy.
 */
struct xbd_attach_instance {
	uint32_t devid;               /* the instance's, in dom0 */
	uint16_t be_domid;
	char fe_path[96];
	char be_path[160];
	const char *backend_kind;     /* "blkback", "sim-blkback" */
	bool nodes;                   /* fe_path and be_path are ours */
	int loop_fd;                  /* -1: no loop device */
	char loop_dev[32];
};
struct xbd_attach_instance_opts {
	const char *vm_name;
	bool rw;
	bool sim;                     /* the sim has no loop devices */
	const char *const *fe_extra;  /* records kept in the frontend dir */
	/* a frontend directory of ours in the way: remove it if its owner
	 * is gone (NULL: never) */
	void (*clear_stale)(struct xbd_platform *p, const char *fe_path);
};
void xbd_attach_instance_init(struct xbd_attach_instance *inst);
int xbd_attach_instance_create(struct xbd_platform *p,
			       const struct xbd_vm_disk *vm,
			       const struct xbd_attach_instance_opts *o,
			       struct xbd_attach_instance *inst);
void xbd_attach_instance_destroy(struct xbd_platform *p,
				 struct xbd_attach_instance *inst);

#endif

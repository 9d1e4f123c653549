/*
 * The xenstore half of both platforms.  The sim's xenstored speaks the
 * real wire protocol, so the "xen" and "sim" platforms share this one
 * libxenstore-based implementation and differ only in how they connect.
 */
#ifndef XBD_PLATFORM_XS_H
#define XBD_PLATFORM_XS_H

#include "xbd/platform.h"

struct xs_handle;

/* Connects with xs_open(); socket_path NULL means libxenstore's default
 * (xenstored socket or /dev/xen/xenbus), otherwise that Unix socket. */
int xbd_xs_connect(const char *socket_path, struct xs_handle **out);

/* The xenstore entries of an ops table.  Each platform's handle must
 * answer xbd_xs_handle_of(): the implementations fetch it through the
 * function pointer below, set by the platform at open time. */
struct xs_handle *xbd_platform_xs_handle(struct xbd_platform *p);

int xbd_xs_op_read(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		   char **value, size_t *len);
int xbd_xs_op_write(struct xbd_platform *p, xbd_xs_txn t, const char *path,
		    const void *value, size_t len);
int xbd_xs_op_mkdir(struct xbd_platform *p, xbd_xs_txn t, const char *path);
int xbd_xs_op_rm(struct xbd_platform *p, xbd_xs_txn t, const char *path);
int xbd_xs_op_directory(struct xbd_platform *p, xbd_xs_txn t,
			const char *path, char ***names, unsigned *count);
int xbd_xs_op_get_perms(struct xbd_platform *p, xbd_xs_txn t,
			const char *path, struct xbd_xs_perm **perms,
			unsigned *count);
int xbd_xs_op_set_perms(struct xbd_platform *p, xbd_xs_txn t,
			const char *path, const struct xbd_xs_perm *perms,
			unsigned count);
int xbd_xs_op_watch(struct xbd_platform *p, const char *path,
		    const char *token);
int xbd_xs_op_unwatch(struct xbd_platform *p, const char *path,
		      const char *token);
int xbd_xs_op_watch_fd(struct xbd_platform *p);
int xbd_xs_op_read_watch(struct xbd_platform *p, char **path, char **token);
int xbd_xs_op_transaction_start(struct xbd_platform *p, xbd_xs_txn *t);
int xbd_xs_op_transaction_end(struct xbd_platform *p, xbd_xs_txn t,
			      bool abort);
/* Domain lookup by /local/domain/<id>/name, as xl does. */
int xbd_xs_op_domain_lookup(struct xbd_platform *p, const char *name,
			    uint16_t *domid);
int xbd_xs_op_domain_list(struct xbd_platform *p,
			  struct xbd_domain_info **list, unsigned *count);

/* Fills the xenstore and domain-lookup entries of an ops table. */
#define XBD_PLATFORM_XS_OPS                                   \
	.xs_read = xbd_xs_op_read,                            \
	.xs_write = xbd_xs_op_write,                          \
	.xs_mkdir = xbd_xs_op_mkdir,                          \
	.xs_rm = xbd_xs_op_rm,                                \
	.xs_directory = xbd_xs_op_directory,                  \
	.xs_get_perms = xbd_xs_op_get_perms,                  \
	.xs_set_perms = xbd_xs_op_set_perms,                  \
	.xs_watch = xbd_xs_op_watch,                          \
	.xs_unwatch = xbd_xs_op_unwatch,                      \
	.xs_watch_fd = xbd_xs_op_watch_fd,                    \
	.xs_read_watch = xbd_xs_op_read_watch,                \
	.xs_transaction_start = xbd_xs_op_transaction_start,  \
	.xs_transaction_end = xbd_xs_op_transaction_end,      \
	.domain_lookup = xbd_xs_op_domain_lookup,             \
	.domain_list = xbd_xs_op_domain_list

#endif

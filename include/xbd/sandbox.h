/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Confined child processes for parsing what a guest wrote (its LVM
 * metadata, its file systems).  The child is forked (no exec), then
 * loses everything before it touches a guest byte: its own unused uid,
 * no capabilities, no_new_privs, a deleted empty directory as its root,
 * no fds but one socket to the parent, and a seccomp filter that allows
 * reading and writing that socket and managing its own memory.  It gets
 * disk bytes by asking the parent over the socket (XBD_SB_READ): the
 * parent checks each range, so the child can see only the volumes it
 * was given, and no fd of the parent's (a FUSE file of our own mount,
 * an image) is ever in a process we do not trust.
 *
 * Wire format, both ways: struct xbd_sb_hdr then len bytes, len at
 * most XBD_SB_MAX.  The parent treats every reply as hostile.
 */
#ifndef XBD_SANDBOX_H
#define XBD_SANDBOX_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#define XBD_SB_MAX (1u << 20)          /* payload bytes of one message */
#define XBD_SB_TIMEOUT_MS 10000        /* one request, all its reads included */
#define XBD_SB_DATA_MAX (1ul << 30)     /* a child's heap (RLIMIT_DATA) */

struct xbd_sb_hdr {
	uint32_t op;
	uint32_t len;
};

/* Child -> parent: read bytes of source `src` (a volume the parent
 * numbered); the parent answers XBD_SB_DATA or XBD_SB_ERR. */
#define XBD_SB_READ 1u
struct xbd_sb_read {
	uint32_t src;
	uint32_t len;
	uint64_t off;
};
#define XBD_SB_DATA 2u
#define XBD_SB_ERR 3u                   /* payload: int32 negative errno */
/* Child -> parent: the answer to the current request. */
#define XBD_SB_REPLY 4u
/* Ops from 16 up are the caller's requests. */

struct xbd_sandbox;

/* Runs in the confined child; fd is its socket to the parent.  Its
 * return value is the child's exit status. */
typedef int xbd_sandbox_main_fn(int fd, void *arg);

/* Serves the child's XBD_SB_READ in the parent: 0 or negative errno. */
typedef int xbd_sandbox_read_fn(void *ctx, uint32_t src, void *buf,
				size_t len, uint64_t off);

/* Starts fn in a confined child.  `what` names it in log lines. */
int xbd_sandbox_start(const char *what, xbd_sandbox_main_fn *fn, void *arg,
		      xbd_sandbox_read_fn *rd, void *rd_ctx,
		      struct xbd_sandbox **out);

/*
 * Sends request (op, req) and waits for XBD_SB_REPLY, serving the
 * child's reads meanwhile, for at most XBD_SB_TIMEOUT_MS.  On success
 * *reply (malloc'd, freed by the caller) holds *len bytes.  A child
 * that breaks the protocol, dies or is too slow is killed and logged;
 * this and every later call then fail with -EIO.  One call at a time
 * (the caller serialises).  op 0 sends nothing and only waits.
 */
int xbd_sandbox_call(struct xbd_sandbox *sb, uint32_t op, const void *req,
		     size_t req_len, void **reply, size_t *len);

/* Another bound than XBD_SB_TIMEOUT_MS per request (tests). */
void xbd_sandbox_set_timeout(struct xbd_sandbox *sb, unsigned ms);

/* Kills and reaps the child; frees sb. */
void xbd_sandbox_stop(struct xbd_sandbox *sb);

/* ---- the child's side ---- */
/* Reads len bytes of source src through the parent: 0 or negative errno. */
int xbd_sb_child_read(int fd, uint32_t src, void *buf, size_t len, uint64_t off);
/* Receives one request: its op and payload (at most cap bytes, else
 * -EMSGSIZE); 0, or negative errno when the parent is gone. */
int xbd_sb_recv(int fd, uint32_t *op, void *buf, size_t cap, size_t *len);
int xbd_sb_send(int fd, uint32_t op, const void *buf, size_t len);

#endif

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Private to the FUSE export (the files in fuse/): the export's state, its disks
 * and files, and the functions its parts call in one another.  The
 * public API is include/xbd/fuse_export.h.
 *
 *   fuse_export.c  the export core: the FUSE operations (attributes,
 *                  reads and writes to the images) and the public API
 *   nodes.c        disks and the table of files (disks, partitions)
 *   workers.c      the reader thread and the worker pool
 *   partitions.c   a disk's partitions, shown as files (the table is
 *                  the guest's: hostile)
 *   ptable.c       MBR and GPT, read as Linux reads them
 *   fsview.c       attach --files: file systems as trees under DIR/files
 *                  (fsview_ext.c parses them in a confined child)
 *   lvm.c          a guest's LVM2 volumes, shown as files (lvm_meta.c
 *                  reads their metadata in a confined child)
 */
#ifndef XBD_FUSE_PRIVATE_H
#define XBD_FUSE_PRIVATE_H

#define FUSE_USE_VERSION 312
#include "xbd/fuse_export.h"
#include "xbd/image.h"

#include <fuse_lowlevel.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#define FX_MAX_IO (1u << 20)      /* max_read / max_write */
/* The kernel's readahead window on cached opens: a few FX_MAX_IO
 * requests in flight for one sequential reader, few enough that all
 * the readers of one export stay within the memory the export may use
 * (the kernel sends at most max_background reads at once). */
#define FX_READAHEAD (4u << 20)
/* The buffers of reads in flight, at most (a new read waits): what
 * keeps an attach process within its memory budget however many
 * readers (readahead, 1 MiB direct reads at queue depth 32) there are.
 * Enough for 32 reads of FX_MAX_IO. */
#define FX_READ_BYTES_MAX (32u << 20)
#define FX_DEFAULT_THREADS 16
#define FX_TIMEOUT 1.0            /* seconds the kernel may cache names/attrs */
#define FX_INIT_WAIT_S 10

/* What the files of one disk share: the image and the gate that lets
 * remove wait for the requests still using it. */
struct fx_disk {
	struct xbd_image *img;
	bool read_only;
	unsigned align;           /* I/O granularity towards the image */
	pthread_mutex_t lock;
	pthread_cond_t idle;
	unsigned active;          /* requests inside the image */
	bool gone;                /* removed: no new requests */
	pthread_mutex_t rmw_lock; /* serialises unaligned writes */
	atomic_uint refs;         /* one per node */
	atomic_bool try_nowait;   /* xbd_image_try_preadv_nowait works */
	atomic_bool try_lent;     /* xbd_image_read_lent works */
};

/* One file: a disk or one of its partitions. */
struct fx_node {
	struct fx_node *next;
	struct fx_disk *disk;
	fuse_ino_t ino;
	uint64_t start, size;     /* byte range of the disk */
	bool is_partition;        /* or an LVM volume: goes with a rescan */
	struct fx_lvmap *map;     /* an LVM volume's segments (lvm.c), or NULL */
	atomic_uint refs;         /* the table's or the retired list's + open files */
	char name[XBD_FUSE_NAME_MAX + 1];
};

struct xbd_fuse {
	struct fuse_session *se;
	char *mountpoint;         /* absolute */
	bool read_only;
	uid_t uid;
	gid_t gid;
	struct timespec born;
	char dev[24];             /* "MAJOR:MINOR" of our mount */
	bool detached;            /* taken off its directory (xbd_fuse_detach) */

	pthread_rwlock_t lock;    /* nodes, retired, next_ino, root_mtime */
	struct fx_node *nodes;    /* what readdir shows, in order */
	struct fx_node *retired;  /* removed but still held by open files */
	fuse_ino_t next_ino;      /* never reused: stale handles stay stale */
	struct timespec root_mtime;

	int stop_fd;              /* eventfd: the reader leaves when readable */
	pthread_t reader;
	bool reader_started;
	pthread_t *workers;
	unsigned nworkers;

	pthread_mutex_t pool_lock; /* the fields below */
	pthread_cond_t pool_work;
	struct fx_job *queue_head, *queue_tail; /* for the workers, FIFO */
	struct fx_job *job_free;  /* kept for reuse, with their buffers */
	unsigned job_nfree;
	bool pool_stop;           /* workers leave once the queue is empty */
	atomic_bool unmounted;

	pthread_mutex_t init_lock;
	pthread_cond_t init_cond;
	bool initialised;

	pthread_mutex_t read_lock; /* the fields below */
	pthread_cond_t reads_idle;
	unsigned reads_active;    /* reads started and not yet replied */
	size_t reads_bytes;       /* their buffers, at most FX_READ_BYTES_MAX */
	struct fx_read *read_free; /* contexts kept for reuse */
	unsigned read_nfree;

	struct fx_fsview *fsv;    /* the file system trees (fsview.c), or NULL */
	bool files;               /* xbd_fuse_opts.files */
};

struct fx_read;

/* Each worker keeps its I/O buffer between requests (fuse_export.c);
 * a thread frees its own when it ends (workers.c). */
extern __thread char *worker_buf;
extern __thread size_t worker_buf_len;

/* ---- fuse_export.c ---- */
/* A worker's part of a read that could not start without waiting. */
void read_blocking(struct fx_read *r);

/* ---- nodes.c ---- */
struct fx_disk *disk_new(struct xbd_image *img, bool read_only);
/* Enters the image; false once the disk was removed. */
bool disk_enter(struct fx_disk *d);
void disk_leave(struct fx_disk *d);
bool disk_gone(struct fx_disk *d);
/* After this, no request touches the image again. */
void disk_retire(struct fx_disk *d);
struct fx_node *node_new(struct xbd_fuse *fx, struct fx_disk *d,
			 const char *name, uint64_t start, uint64_t size,
			 bool is_partition);
void node_free(struct fx_node *n);
void node_get(struct fx_node *n);
/* Drops a reference; a retired node goes with its last one. */
void node_put(struct xbd_fuse *fx, struct fx_node *n);
/* Caller holds fx->lock. */
struct fx_node *find_name(struct xbd_fuse *fx, const char *name);
/* The node of inode `ino`, with a reference, or NULL. */
struct fx_node *node_by_ino(struct xbd_fuse *fx, fuse_ino_t ino);
/* Appends the chain `list` (ended by a NULL next) in one walk.  Caller
 * holds fx->lock for writing. */
void append_nodes(struct xbd_fuse *fx, struct fx_node *list);
/* Moves the nodes matching (disk, partitions_only) from the table to
 * `out` (a private list).  Caller holds fx->lock for writing. */
void unlink_nodes(struct xbd_fuse *fx, struct fx_disk *d,
		  bool partitions_only, struct fx_node **out);
/* Drops the table's reference on unlinked nodes; open files keep them
 * on the retired list until they close.  Tells the kernel the names
 * are gone (outside fx->lock: the kernel may need a worker meanwhile). */
void release_unlinked(struct xbd_fuse *fx, struct fx_node *list);

/* ---- workers.c ---- */
/* Hands r to a worker; false (nothing queued) without memory for it,
 * or when called on a worker already (it may as well wait itself). */
bool queue_read(struct xbd_fuse *fx, struct fx_read *r);
int start_threads(struct xbd_fuse *fx, unsigned nworkers);
/* The reader first (no new work), then the workers once they have done
 * what was queued. */
void stop_threads(struct xbd_fuse *fx);

/* ---- partitions.c ---- */
/*
 * Finds the partitions (MBR and GPT with ptable.c, other tables with
 * libblkid) and shows them as files.  Both read the disk's own file in
 * our mount, which the workers are already serving: the simplest fd
 * that shows the disk exactly as the export does.
 */
int probe_partitions(struct xbd_fuse *fx, struct fx_node *dn);
struct fx_part;
/* What of partition p a disk of disk_size bytes shows, as Linux's
 * blk_add_partition decides: -ERANGE when nothing (empty, or starting
 * past the end), else 0 with *size cut at the end of the disk.  Not
 * static so that tests/fuzz/ checks the rule the export applies. */
int partition_fit(const struct fx_part *p, uint64_t disk_size, uint64_t *size);

/* ---- lvm.c ---- */
struct fx_lvmap;
/* Shows the LVM volumes on the disk of dn and its partitions. */
int probe_lvm(struct xbd_fuse *fx, struct fx_node *dn);
void lvm_map_free(struct fx_lvmap *m);
/* One segment on one stripe: the node's start says where it lies. */
bool lvm_map_linear(const struct fx_lvmap *m);
/* Reads a volume that is not linear (replies to req). */
void lvm_read(struct xbd_fuse *fx, fuse_req_t req, struct fx_node *n,
	      size_t size, off_t off);
/* Reads len bytes at abs of the disk, whatever their alignment; the
 * caller is inside the disk (disk_enter). */
int fx_disk_read(struct fx_disk *d, void *buf, size_t len, uint64_t abs);

/* Reads len bytes at off of node n (a volume through its map); the
 * caller is inside the disk. */
int node_pread(struct fx_node *n, void *buf, size_t len, uint64_t off);

/* ---- fsview.c ---- */
#define FSV_DIR_NAME "files"
#define FSV_DIR_INO (1ull << 62) /* DIR/files; its trees' inodes have this bit */
struct fx_fsview;
/* Whether ino is one of DIR/files and below. */
bool fsview_ino(fuse_ino_t ino);
/* Looks for file systems on disk `name`, its partitions and volumes. */
int fsview_add_disk(struct xbd_fuse *fx, const char *name);
void fsview_remove_disk(struct xbd_fuse *fx, struct fx_disk *d);
/* Answers what is queued and ends the tree threads: after the reader
 * stopped, before the session goes. */
void fsview_stop_threads(struct xbd_fuse *fx);
/* Replies when `name` in the root is DIR/files; false otherwise. */
bool fsview_root_lookup(struct xbd_fuse *fx, fuse_req_t req, const char *name);
void fsview_lookup(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t parent,
		   const char *name);
void fsview_getattr(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t ino);
void fsview_readlink(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t ino);
void fsview_opendir(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t ino,
		    struct fuse_file_info *fi);
/* plus: READDIRPLUS, each entry with its attributes (no lookup to follow) */
void fsview_readdir(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t ino,
		    size_t size, off_t off, struct fuse_file_info *fi, bool plus);
void fsview_releasedir(fuse_req_t req, struct fuse_file_info *fi);
void fsview_open(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t ino,
		 struct fuse_file_info *fi);
void fsview_read(struct xbd_fuse *fx, fuse_req_t req, fuse_ino_t ino,
		 size_t size, off_t off);

/* ---- ptable.c ---- */
/* Linux's DISK_MAX_PARTS: a disk's partitions are numbered below it. */
#define FX_DISK_MAX_PARTS 256

/* One partition as the table gives it, in bytes; whether it fits the
 * disk is for the caller to check. */
struct fx_part {
	uint64_t start, size;
	unsigned partno;
};

/* Reads len bytes of the disk at off; 0 or negative errno. */
typedef int fx_pread_fn(void *ctx, void *buf, size_t len, uint64_t off);

/* Reads an MBR or GPT as Linux would: 1 when the disk has one (parts[]
 * holds *n partitions, maybe none, numbered below FX_DISK_MAX_PARTS),
 * 0 when it has neither, negative errno when the disk cannot be read.
 * Its work is bounded whatever the table says. */
int ptable_parse(fx_pread_fn *rd, void *ctx, uint64_t disk_size,
		 unsigned sector_size, struct fx_part parts[FX_DISK_MAX_PARTS],
		 unsigned *n);

#endif

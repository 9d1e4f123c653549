/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The FUSE export's disks and its table of files: a disk is an image
 * and the gate that lets remove wait for the requests still using it;
 * a node is one file (a disk or one of its partitions), counted by
 * references so that open files outlive a removal.
 */
#include "fuse/private.h"
#include "xbd/common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ---- disks and nodes ---- */

struct fx_disk *disk_new(struct xbd_image *img, bool read_only)
{
	struct fx_disk *d = calloc(1, sizeof(*d));

	if (!d)
		return NULL;
	d->img = img;
	d->read_only = read_only || img->read_only;
	/* the image wants 512-byte units; whole logical sectors where the
	 * size allows, so a 4 KiB-sector disk never sees partial sectors */
	d->align = img->sector_size >= 512 && img->size % img->sector_size == 0 ?
		   img->sector_size : 512;
	pthread_mutex_init(&d->lock, NULL);
	pthread_cond_init(&d->idle, NULL);
	pthread_mutex_init(&d->rmw_lock, NULL);
	atomic_init(&d->refs, 0);
	atomic_init(&d->try_nowait, xbd_image_can_read_nowait(img));
	atomic_init(&d->try_lent, xbd_image_can_lend(img));
	return d;
}

static void disk_put(struct fx_disk *d)
{
	if (atomic_fetch_sub(&d->refs, 1) != 1)
		return;
	pthread_mutex_destroy(&d->lock);
	pthread_cond_destroy(&d->idle);
	pthread_mutex_destroy(&d->rmw_lock);
	free(d);
}

/* Enters the image; false once the disk was removed. */
bool disk_enter(struct fx_disk *d)
{
	bool ok;

	pthread_mutex_lock(&d->lock);
	ok = !d->gone;
	if (ok)
		d->active++;
	pthread_mutex_unlock(&d->lock);
	return ok;
}

void disk_leave(struct fx_disk *d)
{
	pthread_mutex_lock(&d->lock);
	if (--d->active == 0 && d->gone)
		pthread_cond_broadcast(&d->idle);
	pthread_mutex_unlock(&d->lock);
}

bool disk_gone(struct fx_disk *d)
{
	bool gone;

	pthread_mutex_lock(&d->lock);
	gone = d->gone;
	pthread_mutex_unlock(&d->lock);
	return gone;
}

/* After this, no request touches the image again. */
void disk_retire(struct fx_disk *d)
{
	pthread_mutex_lock(&d->lock);
	d->gone = true;
	while (d->active)
		pthread_cond_wait(&d->idle, &d->lock);
	pthread_mutex_unlock(&d->lock);
}

struct fx_node *node_new(struct xbd_fuse *fx, struct fx_disk *d,
			 const char *name, uint64_t start, uint64_t size,
			 bool is_partition)
{
	struct fx_node *n = calloc(1, sizeof(*n));

	if (!n)
		return NULL;
	snprintf(n->name, sizeof(n->name), "%s", name);
	n->disk = d;
	atomic_fetch_add(&d->refs, 1);
	n->start = start;
	n->size = size;
	n->is_partition = is_partition;
	atomic_init(&n->refs, 1);
	pthread_rwlock_wrlock(&fx->lock);
	n->ino = fx->next_ino++;
	pthread_rwlock_unlock(&fx->lock);
	return n;
}

void node_free(struct fx_node *n)
{
	if (n->map)
		lvm_map_free(n->map);
	disk_put(n->disk);
	free(n);
}

void node_get(struct fx_node *n)
{
	atomic_fetch_add(&n->refs, 1);
}

/* Drops a reference; a retired node goes with its last one. */
void node_put(struct xbd_fuse *fx, struct fx_node *n)
{
	if (atomic_fetch_sub(&n->refs, 1) != 1)
		return;
	pthread_rwlock_wrlock(&fx->lock);
	for (struct fx_node **p = &fx->retired; *p; p = &(*p)->next) {
		if (*p == n) {
			*p = n->next;
			break;
		}
	}
	pthread_rwlock_unlock(&fx->lock);
	node_free(n);
}

/* Caller holds fx->lock. */
struct fx_node *find_name(struct xbd_fuse *fx, const char *name)
{
	for (struct fx_node *n = fx->nodes; n; n = n->next)
		if (!strcmp(n->name, name))
			return n;
	return NULL;
}

/* The node of inode `ino`, with a reference, or NULL. */
struct fx_node *node_by_ino(struct xbd_fuse *fx, fuse_ino_t ino)
{
	struct fx_node *n;

	pthread_rwlock_rdlock(&fx->lock);
	for (n = fx->nodes; n && n->ino != ino; n = n->next)
		;
	if (n)
		node_get(n);
	pthread_rwlock_unlock(&fx->lock);
	return n;
}

/* Appends the chain `list` (ended by a NULL next) in one walk: a disk's
 * partitions go in together, whatever their number.  Caller holds
 * fx->lock for writing. */
void append_nodes(struct xbd_fuse *fx, struct fx_node *list)
{
	struct fx_node **p = &fx->nodes;

	while (*p)
		p = &(*p)->next;
	*p = list;
	clock_gettime(CLOCK_REALTIME, &fx->root_mtime);
}

/* Moves the nodes matching (disk, partitions_only) from the table to
 * `out` (a private list).  Caller holds fx->lock for writing. */
void unlink_nodes(struct xbd_fuse *fx, struct fx_disk *d,
		  bool partitions_only, struct fx_node **out)
{
	for (struct fx_node **p = &fx->nodes; *p; ) {
		struct fx_node *n = *p;

		if (n->disk == d && (n->is_partition || !partitions_only)) {
			*p = n->next;
			n->next = *out;
			*out = n;
		} else {
			p = &n->next;
		}
	}
	clock_gettime(CLOCK_REALTIME, &fx->root_mtime);
}

/* Drops the table's reference on unlinked nodes; open files keep them
 * on the retired list until they close.  Tells the kernel the names
 * are gone (outside fx->lock: the kernel may need a worker meanwhile). */
void release_unlinked(struct xbd_fuse *fx, struct fx_node *list)
{
	while (list) {
		struct fx_node *n = list;

		list = n->next;
		fuse_lowlevel_notify_inval_entry(fx->se, FUSE_ROOT_ID, n->name,
						 strlen(n->name));
		pthread_rwlock_wrlock(&fx->lock);
		n->next = fx->retired;
		fx->retired = n;
		pthread_rwlock_unlock(&fx->lock);
		node_put(fx, n);
	}
}

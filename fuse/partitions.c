/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The partitions of an exported disk, shown as files beside it.  The
 * table is the guest's: ptable.c reads MBR and GPT as Linux does, and
 * libblkid the rarer tables; either way nothing beyond what Linux would
 * show and nothing outside the disk is believed, and a disk's partitions
 * go into the export's table in one step, whatever their number.
 */
#include "fuse/private.h"
#include "xbd/common.h"

#include <blkid.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* Linux's largest logical block: a larger sector size is a backend's
 * lie, and would only make the probe read more. */
#define FX_MAX_SECTOR (64u << 10)

/* Partition number `partno` of disk `disk`: xvda1, or nvme0n1p1 when the
 * disk name ends in a digit (as Linux names them). */
static int partition_name(char *out, size_t size, const char *disk, int partno)
{
	size_t len = strlen(disk);
	int n = snprintf(out, size, "%s%s%d", disk,
			 isdigit((unsigned char)disk[len - 1]) ? "p" : "", partno);

	return n > 0 && (size_t)n < size && n <= XBD_FUSE_NAME_MAX ? 0 : -ENAMETOOLONG;
}

/* The partition number that `name` spells for disk `disk` (the inverse
 * of partition_name), or 0 when it is no partition name of that disk. */
static unsigned partition_number(const char *disk, const char *name)
{
	size_t len = strlen(disk);
	unsigned v = 0;

	if (strncmp(name, disk, len))
		return 0;
	name += len;
	if (isdigit((unsigned char)disk[len - 1]) && *name++ != 'p')
		return 0;
	if (*name < '1' || *name > '9')
		return 0;
	for (; isdigit((unsigned char)*name); name++) {
		v = v * 10 + (unsigned)(*name - '0');
		if (v >= FX_DISK_MAX_PARTS)
			return 0;
	}
	return *name ? 0 : v;
}

static int fd_pread(void *ctx, void *buf, size_t len, uint64_t off)
{
	int fd = *(int *)ctx;
	size_t done = 0;

	while (done < len) {
		ssize_t r = pread(fd, (char *)buf + done, len - done,
				  (off_t)(off + done));

		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return r < 0 ? -errno : -EIO;
		done += (size_t)r;
	}
	return 0;
}

/* Tables other than MBR and GPT, with libblkid, whose parsers of those
 * read fixed, small tables.  Its MBR and GPT parsers, which follow
 * whatever the guest wrote, are the ones ptable.c stands in for: they
 * are left out. */
static int blkid_partitions(int fd, unsigned sector_size,
			    struct fx_part parts[FX_DISK_MAX_PARTS], unsigned *n)
{
	static char *ours[] = { "dos", "gpt", "PMBR", NULL };
	blkid_probe pr = blkid_new_probe();
	blkid_partlist ls;
	int count;

	*n = 0;
	if (!pr || blkid_probe_set_device(pr, fd, 0, 0) ||
	    blkid_probe_filter_partitions_type(pr, BLKID_FLTR_NOTIN, ours)) {
		if (pr)
			blkid_free_probe(pr);
		return -ENOMEM;
	}
	blkid_probe_set_sectorsize(pr, sector_size);
	ls = blkid_probe_get_partitions(pr);
	count = ls ? blkid_partlist_numof_partitions(ls) : 0;
	for (int i = 0; i < count && *n < FX_DISK_MAX_PARTS - 1; i++) {
		blkid_partition par = blkid_partlist_get_partition(ls, i);
		long long start = blkid_partition_get_start(par);  /* 512 B units */
		long long size = blkid_partition_get_size(par);
		int partno = blkid_partition_get_partno(par);

		if (start < 0 || size <= 0 || partno <= 0 ||
		    partno >= FX_DISK_MAX_PARTS ||
		    (uint64_t)start > UINT64_MAX / 512 ||
		    (uint64_t)size > UINT64_MAX / 512)
			continue;
		parts[(*n)++] = (struct fx_part){ .start = (uint64_t)start * 512,
			.size = (uint64_t)size * 512, .partno = (unsigned)partno };
	}
	blkid_free_probe(pr);
	return 0;
}

int partition_fit(const struct fx_part *p, uint64_t disk_size, uint64_t *size)
{
	if (!p->size || p->start >= disk_size)
		return -ERANGE;
	*size = p->size > disk_size - p->start ? disk_size - p->start : p->size;
	return 0;
}

/*
 * Makes the files, then puts them into the export's table under one
 * lock with one walk of it (which also finds the names already taken):
 * the cost grows with the partitions, not with their square.  As in
 * Linux's blk_add_partition, a partition that starts past the end of
 * the disk is skipped and one that runs past it is cut there;
 * overlapping partitions are all shown, as Linux shows them.
 */
static int show_partitions(struct xbd_fuse *fx, struct fx_node *dn,
			   const struct fx_part *parts, unsigned n)
{
	struct fx_node *made[FX_DISK_MAX_PARTS], *list = NULL, **tail = &list;
	unsigned partno[FX_DISK_MAX_PARTS], nmade = 0;
	bool taken[FX_DISK_MAX_PARTS] = { false };
	struct fx_disk *d = dn->disk;
	uint64_t disk_size = dn->size;
	bool gone;
	int err = 0;

	for (unsigned i = 0; i < n && nmade < FX_DISK_MAX_PARTS; i++) {
		const struct fx_part *p = &parts[i];
		char name[XBD_FUSE_NAME_MAX + 1];
		uint64_t size;

		if (partition_fit(p, disk_size, &size) < 0) {
			xbd_info("%s: ignoring partition %u outside the disk",
				 dn->name, p->partno);
			continue;
		}
		if (size != p->size)
			xbd_info("%s: partition %u cut at the end of the disk",
				 dn->name, p->partno);
		if (partition_name(name, sizeof(name), dn->name, (int)p->partno))
			continue;
		made[nmade] = node_new(fx, d, name, p->start, size, true);
		if (!made[nmade]) {
			err = -ENOMEM;
			break;
		}
		partno[nmade++] = p->partno;
	}

	pthread_rwlock_wrlock(&fx->lock);
	/* the disk may have gone meanwhile; names must stay unique */
	gone = disk_gone(d);
	if (!gone) {
		for (struct fx_node *x = fx->nodes; x; x = x->next)
			taken[partition_number(dn->name, x->name)] = true;
		for (unsigned i = 0; i < nmade; i++) {
			if (taken[partno[i]])
				continue;
			taken[partno[i]] = true;
			*tail = made[i];
			tail = &made[i]->next;
			made[i] = NULL;
		}
		if (list)
			append_nodes(fx, list);
	}
	pthread_rwlock_unlock(&fx->lock);

	for (struct fx_node *x = list; x; x = x->next)
		fuse_lowlevel_notify_inval_entry(fx->se, FUSE_ROOT_ID, x->name,
						 strlen(x->name));
	for (unsigned i = 0; i < nmade; i++) {
		if (!made[i])
			continue;
		if (!gone)
			xbd_info("%s: partition name %s is taken", dn->name,
				 made[i]->name);
		node_free(made[i]);
	}
	return err;
}

int probe_partitions(struct xbd_fuse *fx, struct fx_node *dn)
{
	unsigned sector_size = dn->disk->img->sector_size, n = 0;
	struct fx_part *parts;
	char path[PATH_MAX];
	int fd, err;

	if (sector_size < 512 || sector_size > FX_MAX_SECTOR)
		return -EINVAL;
	if (snprintf(path, sizeof(path), "%s/%s", fx->mountpoint, dn->name) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	parts = calloc(FX_DISK_MAX_PARTS, sizeof(*parts));
	if (!parts)
		return -ENOMEM;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0) {
		err = -errno;
		goto out;
	}
	err = ptable_parse(fd_pread, &fd, dn->size, sector_size, parts, &n);
	if (err == 0)
		err = blkid_partitions(fd, sector_size, parts, &n);
	if (err >= 0)
		err = show_partitions(fx, dn, parts, n);
	if (err >= 0)
		probe_lvm(fx, dn); /* logs its own trouble; the disk stays */
	close(fd);
out:
	free(parts);
	return err;
}

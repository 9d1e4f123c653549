/*
 * The partitions of an exported disk, read with libblkid from the
 * disk's own file in the mount, and shown as files beside it.  The
 * table is the guest's: nothing in it is believed outside the disk.
 */
#include "fuse/private.h"
#include "xbd/common.h"

#include <blkid.h>
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

/* Partition number `partno` of disk `disk`: xvda1, or nvme0n1p1 when the
 * disk name ends in a digit (as Linux names them). */
static int partition_name(char *out, size_t size, const char *disk, int partno)
{
	size_t len = strlen(disk);
	int n = snprintf(out, size, "%s%s%d", disk,
			 isdigit((unsigned char)disk[len - 1]) ? "p" : "", partno);

	return n > 0 && (size_t)n < size && n <= XBD_FUSE_NAME_MAX ? 0 : -ENAMETOOLONG;
}

/*
 * Finds the partitions with libblkid.  blkid wants an fd, and the
 * simplest fd that shows the disk exactly as the export does is the
 * disk's own file in our mount, which the workers are already serving.
 */
int probe_partitions(struct xbd_fuse *fx, struct fx_node *dn)
{
	struct fx_disk *d = dn->disk;
	uint64_t disk_size = dn->size;
	char path[PATH_MAX];
	blkid_probe pr = NULL;
	blkid_partlist parts;
	int fd, n, err = 0;

	if (snprintf(path, sizeof(path), "%s/%s", fx->mountpoint, dn->name) >=
	    (int)sizeof(path))
		return -ENAMETOOLONG;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	pr = blkid_new_probe();
	if (!pr || blkid_probe_set_device(pr, fd, 0, 0)) {
		err = -ENOMEM;
		goto out;
	}
	blkid_probe_set_sectorsize(pr, d->img->sector_size);
	parts = blkid_probe_get_partitions(pr);
	n = parts ? blkid_partlist_numof_partitions(parts) : 0;
	for (int i = 0; i < n; i++) {
		blkid_partition par = blkid_partlist_get_partition(parts, i);
		long long start = blkid_partition_get_start(par);  /* 512 B units */
		long long size = blkid_partition_get_size(par);
		int partno = blkid_partition_get_partno(par);
		char name[XBD_FUSE_NAME_MAX + 1];
		struct fx_node *pn;

		/* the table is the guest's: believe nothing outside the disk */
		if (start < 0 || size <= 0 || partno <= 0 ||
		    (uint64_t)start >= disk_size / 512) {
			xbd_info("%s: ignoring partition %d outside the disk",
				 dn->name, partno);
			continue;
		}
		uint64_t b_start = (uint64_t)start * 512;
		uint64_t b_size = (uint64_t)size > (disk_size - b_start) / 512 ?
				  disk_size - b_start : (uint64_t)size * 512;
		if (b_size != (uint64_t)size * 512)
			xbd_info("%s: partition %d cut at the end of the disk",
				 dn->name, partno);
		if (partition_name(name, sizeof(name), dn->name, partno))
			continue;
		pn = node_new(fx, d, name, b_start, b_size, true);
		if (!pn) {
			err = -ENOMEM;
			break;
		}
		pthread_rwlock_wrlock(&fx->lock);
		/* the disk may have gone meanwhile; names must stay unique */
		bool ok = !disk_gone(d) && !find_name(fx, name);
		if (ok)
			append_node(fx, pn);
		pthread_rwlock_unlock(&fx->lock);
		if (ok) {
			fuse_lowlevel_notify_inval_entry(fx->se, FUSE_ROOT_ID, name,
							 strlen(name));
		} else {
			xbd_info("%s: partition name %s is taken", dn->name, name);
			node_free(pn);
		}
	}
out:
	if (pr)
		blkid_free_probe(pr);
	close(fd);
	return err;
}

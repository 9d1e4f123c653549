/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The two partition tables a Xen disk almost always has, MBR (with its
 * extended chain) and GPT, read as Linux reads them (block/partitions/
 * msdos.c and efi.c), so that a disk shows the partitions, and the
 * partition numbers, its own guest's kernel shows.  Written here rather
 * than left to libblkid because the table is the guest's and libblkid
 * follows an extended chain as far as it goes (with a scan of what it
 * found at each link) and reads a GPT entry array of nearly any size:
 * a guest could make an attach take hours.  Every count the
 * table gives is bounded here as Linux bounds it: partition numbers
 * below DISK_MAX_PARTS, links without a data partition, the size of a
 * GPT entry array.
 */
#include "fuse/private.h"

#include <endian.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#define MBR_TABLE 446            /* offset of the four entries */
#define MBR_ENTRY 16
#define MBR_MAX_EMPTY_LINKS 100  /* Linux's loopct */
/* Linux follows up to MBR_MAX_EMPTY_LINKS empty records before each
 * data one: a guest could make a probe read that many sectors, one by
 * one, for every partition.  Real chains have a partition in every
 * record; past this many records we stop, showing what was found. */
#define MBR_MAX_LINKS (2 * FX_DISK_MAX_PARTS)
#define MBR_EXTENDED_LINUX_SECTORS 2 /* what Linux shows of an extended partition */
#define MBR_TYPE_GPT 0xee
#define GPT_HEADER_MIN 92
#define GPT_ENTRY_SIZE 128
/* Linux refuses an entry array larger than KMALLOC_MAX_SIZE (x86-64) */
#define GPT_TABLE_MAX (4u << 20)

struct pt {
	fx_pread_fn *rd;
	void *ctx;
	uint64_t disk_size;
	unsigned ssz;            /* logical sector size, bytes */
	struct fx_part *parts;
	unsigned n;
};

static uint32_t le32_at(const unsigned char *p)
{
	uint32_t v;

	memcpy(&v, p, sizeof(v));
	return le32toh(v);
}

static uint64_t le64_at(const unsigned char *p)
{
	uint64_t v;

	memcpy(&v, p, sizeof(v));
	return le64toh(v);
}

/* The one place a read leaves this file: nothing outside the disk. */
static int read_at(struct pt *t, void *buf, size_t len, uint64_t off)
{
	if (off > t->disk_size || len > t->disk_size - off)
		return -ERANGE;
	return t->rd(t->ctx, buf, len, off);
}

/* Partition `partno` at [start, start + size) in 512-byte units; the
 * caller keeps partno below FX_DISK_MAX_PARTS.  Whether it fits the
 * disk is probe_partitions' business, as it is blk_add_partition's. */
static void put_partition(struct pt *t, unsigned partno, uint64_t start,
			  uint64_t size)
{
	if (!size)
		return;
	t->parts[t->n++] = (struct fx_part){ .partno = partno,
		.start = start * 512, .size = size * 512 };
}

/* ---- MBR ---- */

static bool is_extended(unsigned char type)
{
	return type == 0x05 || type == 0x0f || type == 0x85;
}

static bool mbr_magic(const unsigned char *sect)
{
	return sect[510] == 0x55 && sect[511] == 0xaa;
}

/* Follows the chain of extended boot records from the extended
 * partition [first, first + first_size) (512-byte units).  Each link
 * either adds a partition, which ends at partition number
 * FX_DISK_MAX_PARTS - 1, or counts as empty, which ends after
 * MBR_MAX_EMPTY_LINKS in a row: a chain that loops back on itself ends
 * too; and no chain goes past MBR_MAX_LINKS records.  A loop whose links hold data partitions shows them again under
 * new numbers until the limit, as Linux does: the numbers stay those
 * the guest sees. */
static void mbr_extended(struct pt *t, uint64_t first, uint64_t first_size,
			 unsigned *next)
{
	uint64_t f = t->ssz / 512, this = first, this_size = first_size;
	unsigned char sect[512];
	unsigned empty = 0, links = 0;

	while (++empty <= MBR_MAX_EMPTY_LINKS && *next < FX_DISK_MAX_PARTS &&
	       ++links <= MBR_MAX_LINKS) {
		const unsigned char *p = sect + MBR_TABLE;
		int i;

		if (read_at(t, sect, sizeof(sect), this * 512) || !mbr_magic(sect))
			return;
		for (i = 0; i < 4; i++, p += MBR_ENTRY) {
			uint64_t offs = le32_at(p + 8) * f, size = le32_at(p + 12) * f;
			uint64_t at = this + offs;

			if (!size || is_extended(p[4]))
				continue;
			/* the third and fourth entries are often garbage:
			 * only believed inside this link and the partition */
			if (i >= 2 && (offs + size > this_size || at < first ||
				       at + size > first + first_size))
				continue;
			put_partition(t, (*next)++, at, size);
			empty = 0;
			if (*next == FX_DISK_MAX_PARTS)
				return;
		}
		/* the first extended entry is the link to the next record */
		for (i = 0, p = sect + MBR_TABLE; i < 4; i++, p += MBR_ENTRY)
			if (le32_at(p + 12) && is_extended(p[4]))
				break;
		if (i == 4)
			return;
		this = first + le32_at(p + 8) * f;
		this_size = le32_at(p + 12) * f;
	}
}

/* 1 when sector 0 is an MBR (its partitions added), 0 when not. */
static int mbr_parse(struct pt *t, const unsigned char *sect)
{
	uint64_t f = t->ssz / 512;
	const unsigned char *p;
	unsigned next = 5;     /* logical partitions are numbered from 5 */
	int slot;

	if (!memcmp(sect, "\xc9\xc2\xd4\xc1", 4)) /* AIX */
		return 0;
	/* a boot indicator other than these: a FAT boot sector, say */
	for (slot = 0, p = sect + MBR_TABLE; slot < 4; slot++, p += MBR_ENTRY)
		if (p[0] != 0 && p[0] != 0x80)
			return 0;
	/* a protective MBR whose GPT was not valid: no partitions, as in
	 * Linux (its msdos parser leaves such a disk to the GPT one) */
	for (slot = 0, p = sect + MBR_TABLE; slot < 4; slot++, p += MBR_ENTRY)
		if (p[4] == MBR_TYPE_GPT)
			return 1;
	for (slot = 1, p = sect + MBR_TABLE; slot <= 4; slot++, p += MBR_ENTRY) {
		uint64_t start = le32_at(p + 8) * f, size = le32_at(p + 12) * f;

		if (!size)
			continue;
		if (is_extended(p[4])) {
			/* shown, but only its first sectors: nobody should
			 * mkfs over the logical partitions */
			uint64_t shown = f > MBR_EXTENDED_LINUX_SECTORS ? f :
					 MBR_EXTENDED_LINUX_SECTORS;

			put_partition(t, (unsigned)slot, start,
				      size < shown ? size : shown);
			mbr_extended(t, start, size, &next);
			continue;
		}
		put_partition(t, (unsigned)slot, start, size);
	}
	return 1;
}

/* ---- GPT ---- */

static uint32_t crc_table[256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_table_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;

		for (int k = 0; k < 8; k++)
			c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
		crc_table[i] = c;
	}
}

/* CRC-32 as EFI uses it (that of zlib and Ethernet).  The table is made
 * once: building it per call cost more than the header's CRC. */
static uint32_t crc32_efi(const unsigned char *p, size_t len)
{
	uint32_t crc = 0xffffffffu;

	pthread_once(&crc_once, crc_table_init);
	while (len--)
		crc = crc_table[(crc ^ *p++) & 0xff] ^ (crc >> 8);
	return crc ^ 0xffffffffu;
}

/* Linux's is_pmbr_valid: an MBR with a GPT entry that starts at LBA 1. */
static bool pmbr_valid(const unsigned char *sect)
{
	const unsigned char *p = sect + MBR_TABLE;

	if (!mbr_magic(sect))
		return false;
	for (int i = 0; i < 4; i++, p += MBR_ENTRY)
		if (p[4] == MBR_TYPE_GPT && le32_at(p + 8) == 1)
			return true;
	return false;
}

/* 1 when the primary GPT is valid (its partitions added), 0 when not,
 * negative errno when it could not be read.  Linux does not look at
 * the backup header when the primary is bad (unless told to on its
 * command line), so neither do we. */
static int gpt_parse(struct pt *t)
{
	uint64_t last_lba = t->disk_size / t->ssz - 1, first, last, table_lba;
	unsigned char *hdr, *ents = NULL;
	uint32_t hsize, crc, count, table_size;
	int err;

	hdr = malloc(t->ssz);
	if (!hdr)
		return -ENOMEM;
	err = read_at(t, hdr, t->ssz, t->ssz);
	if (err)
		goto out;
	err = 0;
	hsize = le32_at(hdr + 12);
	if (memcmp(hdr, "EFI PART", 8) || hsize > t->ssz || hsize < GPT_HEADER_MIN)
		goto out;
	crc = le32_at(hdr + 16);
	memset(hdr + 16, 0, 4);
	if (crc32_efi(hdr, hsize) != crc || le64_at(hdr + 24) != 1)
		goto out;
	first = le64_at(hdr + 40);
	last = le64_at(hdr + 48);
	table_lba = le64_at(hdr + 72);
	count = le32_at(hdr + 80);
	if (first > last_lba || last > last_lba || last < first ||
	    le32_at(hdr + 84) != GPT_ENTRY_SIZE ||
	    (uint64_t)count * GPT_ENTRY_SIZE > GPT_TABLE_MAX ||
	    table_lba > last_lba)
		goto out;
	table_size = count * GPT_ENTRY_SIZE;
	ents = malloc(table_size ? table_size : 1);
	if (!ents) {
		err = -ENOMEM;
		goto out;
	}
	err = read_at(t, ents, table_size, table_lba * t->ssz);
	if (err == -ERANGE)
		err = 0; /* an array past the end: not a valid GPT */
	if (err || crc32_efi(ents, table_size) != le32_at(hdr + 88))
		goto out;
	/* entry i is partition i + 1; the numbers stop where Linux's do */
	for (uint32_t i = 0; i < count && i < FX_DISK_MAX_PARTS - 1; i++) {
		const unsigned char *e = ents + (size_t)i * GPT_ENTRY_SIZE;
		static const unsigned char unused[16];
		uint64_t s = le64_at(e + 32), end = le64_at(e + 40);

		/* Linux skips entries that reach past the last LBA; an end
		 * before the start it takes for a wrapped size and cuts at
		 * the end of the disk: not a partition, skipped here */
		if (!memcmp(e, unused, sizeof(unused)) || s > last_lba ||
		    end > last_lba || end < s)
			continue;
		put_partition(t, i + 1, s * (t->ssz / 512),
			      (end - s + 1) * (t->ssz / 512));
	}
	err = 1;
out:
	free(ents);
	free(hdr);
	return err;
}

int ptable_parse(fx_pread_fn *rd, void *ctx, uint64_t disk_size,
		 unsigned sector_size, struct fx_part parts[FX_DISK_MAX_PARTS],
		 unsigned *n)
{
	struct pt t = { .rd = rd, .ctx = ctx, .disk_size = disk_size,
			.ssz = sector_size, .parts = parts };
	unsigned char sect[512];
	int err;

	*n = 0;
	if (sector_size < 512 || sector_size % 512 || disk_size / sector_size < 2)
		return 0;
	err = read_at(&t, sect, sizeof(sect), 0);
	if (err)
		return err;
	/* Linux tries GPT first, and only behind a protective MBR */
	if (pmbr_valid(sect)) {
		err = gpt_parse(&t);
		if (err) {
			*n = t.n;
			return err;
		}
	}
	if (!mbr_magic(sect))
		return 0;
	err = mbr_parse(&t, sect);
	*n = t.n;
	return err;
}

/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * Partition probing (fuse/ptable.c, and partitions.c's rule for what
 * the export shows of each partition): the disk's bytes are the guest's.
 * The input is a small header (sector size, how far the disk extends
 * past the bytes given, as zeros) and then the disk's first bytes, so a
 * GPT or an extended chain can point anywhere on a large disk while the
 * input stays small.  Checks what the export relies on: every partition
 * shown lies inside the disk, numbers stay below 256, nothing is read
 * outside the disk, and the work is bounded whatever the table says.
 * A flag in the header has the harness put right CRCs into a GPT first:
 * the fuzzer would rarely get past them, and a guest simply writes them.
 * A GPT entry array may be 4 MiB, which costs milliseconds to read and
 * check: inputs with one larger than GPT_KEEP_MAX still run but are not
 * kept in the corpus (libFuzzer's -1), or the fuzzer dwells on them.
 */
#include "tests/fuzz/fuzz.h"
#include "fuse/private.h"

#include <errno.h>
#include <stdbool.h>

#define GPT_KEEP_MAX (256u << 10)

struct mem_disk {
	uint8_t *data;
	size_t len;
	uint64_t size;
	unsigned reads;
	uint64_t bytes;
};

static int mem_pread(void *ctx, void *buf, size_t len, uint64_t off)
{
	struct mem_disk *d = ctx;

	FUZZ_CHECK(off <= d->size && len <= d->size - off);
	d->reads++;
	d->bytes += len;
	memset(buf, 0, len);
	if (off < d->len)
		memcpy(buf, d->data + off, len < d->len - off ? len : d->len - off);
	return 0;
}

static uint32_t crc32_step(uint32_t crc, uint8_t b)
{
	static uint32_t table[256];

	if (!table[1])
		for (uint32_t i = 0; i < 256; i++) {
			uint32_t c = i;

			for (int k = 0; k < 8; k++)
				c = c & 1 ? 0xedb88320u ^ (c >> 1) : c >> 1;
			table[i] = c;
		}
	return table[(crc ^ b) & 0xff] ^ (crc >> 8);
}

/* CRC-32 of the disk's bytes [off, off + len), zeros past the data. */
static uint32_t disk_crc(const struct mem_disk *d, uint64_t off, uint64_t len)
{
	uint32_t crc = 0xffffffffu;

	for (uint64_t i = off; i < off + len; i++)
		crc = crc32_step(crc, i < d->len ? d->data[i] : 0);
	return crc ^ 0xffffffffu;
}

static void put32(uint8_t *p, uint32_t v)
{
	memcpy(p, &v, sizeof(v));
}

/* Makes the GPT header at LBA 1 (when the input holds it) carry the
 * right CRCs for its entry array and itself. */
/* The entry count of the GPT header at LBA 1, 0 when there is none. */
static uint32_t gpt_count(const struct mem_disk *d, unsigned ssz)
{
	uint32_t count = 0;

	if (d->len >= (size_t)ssz + 84 && !memcmp(d->data + ssz, "EFI PART", 8))
		memcpy(&count, d->data + ssz + 80, 4);
	return count;
}

static void fix_gpt_crcs(struct mem_disk *d, unsigned ssz)
{
	uint8_t *hdr = d->data + ssz;
	uint32_t hsize, count;
	uint64_t table_lba;

	if (d->len < 2 * (size_t)ssz)
		return;
	memcpy(&hsize, hdr + 12, 4);
	memcpy(&count, hdr + 80, 4);
	memcpy(&table_lba, hdr + 72, 8);
	if (hsize < 92 || hsize > ssz || count > GPT_KEEP_MAX / 128 ||
	    table_lba > d->size / ssz)
		return;
	if (table_lba * ssz + (uint64_t)count * 128 <= d->size)
		put32(hdr + 88, disk_crc(d, table_lba * ssz, (uint64_t)count * 128));
	put32(hdr + 16, 0);
	put32(hdr + 16, disk_crc(d, ssz, hsize));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned sector_sizes[8] = { 512, 512, 512, 4096,
						  1024, 2048, 65536, 1000 };
	struct fz in = { data, size };
	struct fx_part parts[FX_DISK_MAX_PARTS];
	struct mem_disk d;
	unsigned ssz, n = 0, i;
	uint32_t extra;
	uint8_t flags;
	bool keep;
	int r;

	flags = fz_u8(&in);
	ssz = sector_sizes[flags & 7];
	/* up to 16 M sectors past the bytes given: 8 GiB */
	extra = fz_u32(&in) & 0xffffff;
	d = (struct mem_disk){ .data = malloc(in.n ? in.n : 1), .len = in.n,
			       .size = in.n + (uint64_t)extra * 512 };
	FUZZ_CHECK(d.data);
	memcpy(d.data, in.p, in.n);
	if (flags & 8)
		fix_gpt_crcs(&d, ssz);
	r = ptable_parse(mem_pread, &d, d.size, ssz, parts, &n);
	FUZZ_CHECK(r <= 1);
	FUZZ_CHECK(n <= FX_DISK_MAX_PARTS);
	/* an MBR with 4 extended entries, each chain MBR_MAX_LINKS long,
	 * plus sector 0 and a GPT header and entry array (4 MiB at most) */
	FUZZ_CHECK(d.reads <= 3 + 4 * 2 * FX_DISK_MAX_PARTS);
	FUZZ_CHECK(d.bytes <= (5u << 20) + 4 * 2 * FX_DISK_MAX_PARTS * 512);
	for (i = 0; i < n; i++) {
		uint64_t shown;

		FUZZ_CHECK(parts[i].partno >= 1 && parts[i].partno < FX_DISK_MAX_PARTS);
		if (partition_fit(&parts[i], d.size, &shown) < 0)
			continue;
		FUZZ_CHECK(shown > 0 && shown <= parts[i].size);
		FUZZ_CHECK(parts[i].start < d.size && shown <= d.size - parts[i].start);
	}
	keep = (uint64_t)gpt_count(&d, ssz) * 128 <= GPT_KEEP_MAX;
	free(d.data);
	return keep ? 0 : -1;
}

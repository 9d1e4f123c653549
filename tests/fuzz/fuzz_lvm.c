/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * LVM2 metadata (fuse/lvm_meta.c, run in the confined child) and the
 * parent's check of the child's answer (lvm_reply_check).  The first
 * input byte picks which: even, the rest is a physical volume's first
 * bytes (zeros follow up to 4 MiB) and lvm_parse must read only inside
 * it, stay bounded, and produce an answer the parent's check accepts;
 * odd, the rest is a reply of a hostile child, which the check must
 * refuse or accept without reading outside it, and what it accepts
 * must map every volume byte inside the physical volume.
 */
#include "tests/fuzz/fuzz.h"
#include "fuse/lvm.h"

#include <errno.h>

#define PV_SIZE (4u << 20)

struct mem_pv {
	const uint8_t *data;
	size_t len;
	unsigned reads;
};

static int mem_read(void *ctx, uint32_t src, void *buf, size_t len, uint64_t off)
{
	struct mem_pv *d = ctx;

	FUZZ_CHECK(src == 0);
	FUZZ_CHECK(off <= PV_SIZE && len <= PV_SIZE - off);
	FUZZ_CHECK(++d->reads < 64);
	memset(buf, 0, len);
	if (off < d->len)
		memcpy(buf, d->data + off, len < d->len - off ? len : d->len - off);
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const uint64_t pv_size = PV_SIZE;

	if (!size)
		return 0;
	if (data[0] & 1) {
		void *copy = malloc(size - 1 ? size - 1 : 1);

		memcpy(copy, data + 1, size - 1);
		if (lvm_reply_check(copy, size - 1, 1, &pv_size) == 0) {
			struct lvm_reply_hdr h;
			const struct lvm_seg *seg;

			memcpy(&h, copy, sizeof(h));
			seg = (const void *)((const char *)copy + sizeof(h) +
					     h.nlv * sizeof(struct lvm_lv));
			for (uint32_t i = 0; i < h.nseg; i++)
				for (uint32_t k = 0; k < seg[i].nstripes; k++)
					FUZZ_CHECK(seg[i].stripe[k].off + seg[i].len /
						   seg[i].nstripes <= pv_size);
		}
		free(copy);
	} else {
		struct mem_pv d = { .data = data + 1, .len = size - 1 };
		void *reply = NULL;
		size_t len = 0;

		if (lvm_parse(mem_read, &d, 1, &pv_size, &reply, &len) == 0)
			FUZZ_CHECK(lvm_reply_check(reply, len, 1, &pv_size) == 0);
		free(reply);
	}
	return 0;
}

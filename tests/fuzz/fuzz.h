/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * What the harnesses in tests/fuzz/ share: the libFuzzer entry point's
 * prototype (the gcc build warns about a definition without one), a
 * check that survives NDEBUG, quiet logs, and a reader that turns the fuzzer's bytes
 * into numbers without ever failing (past the end it reads zeros), so a
 * harness spends no input on framing.
 */
#ifndef XBD_FUZZ_H
#define XBD_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FUZZ_CHECK(c)                                                        \
	do {                                                                 \
		if (!(c)) {                                                  \
			dprintf(2, "%s:%d: check failed: %s\n",             \
				__FILE__, __LINE__, #c);                     \
			abort();                                             \
		}                                                            \
	} while (0)

/* The code under test logs what a hostile peer did, once per input:
 * millions of lines.  Its stdio stream goes to /dev/null; the
 * sanitizers and FUZZ_CHECK write to fd 2 themselves. */
static inline void fuzz_quiet_logs(void)
{
	FILE *null = fopen("/dev/null", "w");

	if (null)
		stderr = null;
}

struct fz {
	const uint8_t *p;
	size_t n;
};

static inline void fz_bytes(struct fz *f, void *out, size_t len)
{
	size_t k = len < f->n ? len : f->n;

	memcpy(out, f->p, k);
	memset((uint8_t *)out + k, 0, len - k);
	f->p += k;
	f->n -= k;
}

static inline uint8_t fz_u8(struct fz *f)
{
	uint8_t v;

	fz_bytes(f, &v, sizeof(v));
	return v;
}

static inline uint16_t fz_u16(struct fz *f)
{
	uint16_t v;

	fz_bytes(f, &v, sizeof(v));
	return v;
}

static inline uint32_t fz_u32(struct fz *f)
{
	uint32_t v;

	fz_bytes(f, &v, sizeof(v));
	return v;
}

static inline uint64_t fz_u64(struct fz *f)
{
	uint64_t v;

	fz_bytes(f, &v, sizeof(v));
	return v;
}

#endif

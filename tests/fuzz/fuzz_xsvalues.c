/* SPDX-License-Identifier: GPL-2.0-or-later */
/*
 * The values xbd reads from xenstore nodes a guest may write (numbers,
 * sizes, virtual-device names, backend paths, the ring protocol), each
 * through the parser xbd uses (src/util.c, src/xenbus.c, ring/).  The
 * input is one value; every parser sees it.
 *
 * Checks, besides ASan and UBSan, that each parser accepts only the
 * spelling it documents and means by it what it says: numbers agree
 * with strtoull and stay within the maximum, a device name or a
 * backend path accepted is the one its formatter writes for the parsed
 * value, and a devid shown as a name maps back to the same devid.
 */
#include "tests/fuzz/fuzz.h"
#include "xbd/ring.h"
#include "xbd/util.h"
#include "xbd/xenbus.h"

#include <errno.h>
#include <stdbool.h>

static bool all_digits(const char *s)
{
	if (!*s)
		return false;
	for (; *s; s++)
		if (*s < '0' || *s > '9')
			return false;
	return true;
}

static void check_uint(const char *s, unsigned long long max)
{
	unsigned long long v = 0;
	int r = xbd_parse_uint(s, max, &v);

	if (r == 0) {
		FUZZ_CHECK(all_digits(s) && v <= max);
		errno = 0;
		FUZZ_CHECK(strtoull(s, NULL, 10) == v && !errno);
	} else {
		/* a number too large is refused before what follows it
		 * is looked at: ERANGE needs only a digit first */
		FUZZ_CHECK(r == -EINVAL || r == -ERANGE);
		if (r == -ERANGE)
			FUZZ_CHECK(*s >= '0' && *s <= '9');
		else
			FUZZ_CHECK(!all_digits(s));
	}
}

static void check_size(const char *s)
{
	uint64_t v;
	char *end;
	unsigned long long digits;

	if (xbd_parse_byte_size(s, &v))
		return;
	errno = 0;
	digits = strtoull(s, &end, 10);
	FUZZ_CHECK(!errno && end != s && *s >= '0' && *s <= '9');
	if (!*end) {
		FUZZ_CHECK(v == digits);
		return;
	}
	unsigned shift = strchr("Kk", *end) ? 10 : strchr("Mm", *end) ? 20 :
			 strchr("Gg", *end) ? 30 : 40;
	FUZZ_CHECK(strchr("KkMmGgTt", *end));
	FUZZ_CHECK(digits <= UINT64_MAX >> shift && v == digits << shift);
}

static void check_vdev(const char *s)
{
	char name[32];
	uint32_t devid, again;

	if (xbd_vdev_to_devid(s, &devid))
		return;
	if (s[0] >= '0' && s[0] <= '9') {
		FUZZ_CHECK(devid != 0);
		return;
	}
	/* a name is accepted only as the formatter spells it */
	FUZZ_CHECK(xbd_devid_to_vdev(devid, name, sizeof(name)) == 0);
	FUZZ_CHECK(!strcmp(name, s));
	FUZZ_CHECK(xbd_vdev_to_devid(name, &again) == 0 && again == devid);
}

static void check_devid(uint32_t devid)
{
	char name[32];
	uint32_t again;

	if (xbd_devid_to_vdev(devid, name, sizeof(name)))
		return;
	FUZZ_CHECK(!strncmp(name, "xvd", 3));
	FUZZ_CHECK(xbd_vdev_to_devid(name, &again) == 0);
	/* the short form for the first 16 disks and partitions; the same
	 * disk in the long form names the same device */
	if (again != devid)
		FUZZ_CHECK((devid >> 28) == 1 && ((devid >> 8) & 0xfffff) < 16 &&
			   (devid & 0xff) < 16 &&
			   again == (202u << 8 | ((devid >> 8) & 0xfffff) << 4 |
				     (devid & 0xff)));
}

static void check_backend_path(const char *s)
{
	char type[16], canon[300];
	uint16_t be, fe;
	uint32_t devid;

	if (xbd_backend_path_parse(s, &be, type, sizeof(type), &fe, &devid))
		return;
	FUZZ_CHECK(strlen(type) < sizeof(type) && !strchr(type, '/'));
	xbd_backend_path(canon, sizeof(canon), be, type, fe, devid);
	FUZZ_CHECK(!strcmp(canon, s));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	enum xbd_blkif_abi abi;
	uint32_t devid = 0;
	char *s;

	if (size > 4096)
		return 0;
	/* a node's value as xenstore hands it: up to the first NUL */
	s = malloc(size + 1);
	FUZZ_CHECK(s);
	memcpy(s, data, size);
	s[size] = '\0';

	check_uint(s, UINT64_MAX);
	check_uint(s, UINT32_MAX);
	check_uint(s, 65534);
	check_uint(s, 0);
	check_size(s);
	check_vdev(s);
	check_backend_path(s);
	if (!xbd_blkif_abi_from_protocol(s, &abi))
		FUZZ_CHECK(!*s || !strcmp(xbd_blkif_abi_protocol(abi), s));
	memcpy(&devid, data, size < 4 ? size : 4);
	check_devid(devid);
	FUZZ_CHECK(xbd_xenbus_state_name((enum xenbus_state)devid));
	free(s);
	return 0;
}

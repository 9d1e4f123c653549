/* SPDX-License-Identifier: GPL-2.0-or-later */
/* vdev names <-> devids, as docs/man/xen-vbd-interface defines them. */
#include "xbd/xenbus.h"
#include "tests/lib/check.h"

#include <string.h>

static void roundtrip(const char *vdev, uint32_t expect)
{
	uint32_t devid = 0;
	char back[32];

	CHECK_EQ(xbd_vdev_to_devid(vdev, &devid), 0);
	CHECK_EQ(devid, expect);
	CHECK_EQ(xbd_devid_to_vdev(devid, back, sizeof(back)), 0);
	CHECK(!strcmp(back, vdev));
}

int main(void)
{
	uint32_t d;

	roundtrip("xvda", 51712);
	roundtrip("xvdb", 51728);
	roundtrip("xvda1", 51713);
	roundtrip("xvdp15", (202u << 8) | (15 << 4) | 15);
	roundtrip("xvdq", (1u << 28) | (16 << 8));
	roundtrip("xvdaa", (1u << 28) | (26 << 8));
	roundtrip("xvda16", (1u << 28) | 16);
	CHECK_EQ(xbd_vdev_to_devid("51728", &d), 0);
	CHECK_EQ(d, 51728);
	CHECK(xbd_vdev_to_devid("sda", &d) < 0);
	CHECK(xbd_vdev_to_devid("xvd", &d) < 0);
	CHECK(xbd_vdev_to_devid("xvda0", &d) < 0);
	CHECK(xbd_vdev_to_devid("xvdaaa", &d) < 0);
	CHECK(xbd_vdev_to_devid("xvda1x", &d) < 0);
	{
		char name[32];

		/* found by tests/fuzz/fuzz_xsvalues: bits above 28 are no
		 * other name for xvda10 */
		CHECK(xbd_devid_to_vdev(0x3000000au, name, sizeof(name)) < 0);
		CHECK(xbd_devid_to_vdev(0x1000000au, name, sizeof(name)) == 0);
	}
	CHECK(!strcmp(xbd_xenbus_state_name(XenbusStateConnected), "Connected"));
	return check_report("test_xenbus_names");
}

/* TEMPORARY placeholder, replaced by the real xen platform. */
#include "xbd/platform.h"
#include <errno.h>
int xbd_platform_xen_open(const struct xbd_platform_config *cfg, struct xbd_platform **out)
{
	(void)cfg; (void)out;
	return -ENOSYS;
}

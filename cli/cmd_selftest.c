/* TEMPORARY placeholder for xbd selftest. */
#include "xbd/cli.h"
#include "xbd/common.h"
static int cmd_selftest_run(int argc, char **argv)
{
	(void)argc; (void)argv;
	xbd_err("selftest: not implemented yet");
	return 1;
}
const struct xbd_cmd xbd_cmd_selftest = { "selftest", "selftest ...", "(not implemented yet)", cmd_selftest_run };

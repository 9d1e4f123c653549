/* TEMPORARY placeholder for xbd sim. */
#include "xbd/cli.h"
#include "xbd/common.h"
static int cmd_sim_run(int argc, char **argv)
{
	(void)argc; (void)argv;
	xbd_err("sim: not implemented yet");
	return 1;
}
const struct xbd_cmd xbd_cmd_sim = { "sim", "sim ...", "(not implemented yet)", cmd_sim_run };

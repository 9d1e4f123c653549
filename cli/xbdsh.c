/* TEMPORARY placeholder for xbdsh. */
#include "xbd/common.h"
int main(void)
{
	xbd_progname = "xbdsh";
	xbd_err("not implemented yet");
	return 1;
}

/* `mmstorm lava collect`: run.json per kernel from the LAVA logs of all its shards. */
#include <stdio.h>

#include "core/core.h"
#include "report/lava_int.h"

int ms_lava_collect_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	return MS_EXIT_USAGE;
}

#include "sim/explore_main.h"

#include <stdio.h>

int explore_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fputs("swarmsim: `explore` is not built yet\n", stderr);
	return 2;
}

int shrink_main(int argc, char **argv)
{
	(void)argc;
	(void)argv;
	fputs("swarmsim: `shrink` is not built yet\n", stderr);
	return 2;
}

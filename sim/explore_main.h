/* explore_main: the `swarmsim explore` and `swarmsim shrink` commands. Like
 * swarmsim.c, this file talks to the world (worker processes, the wall
 * clock for progress), so it is not part of libsim. */
#ifndef SIM_EXPLORE_MAIN_H
#define SIM_EXPLORE_MAIN_H

/* Each takes the arguments after the command name; returns the exit status
 * (0 no failure, 1 failures found, 2 bad input). */
int explore_main(int argc, char **argv);
int shrink_main(int argc, char **argv);
/* merge: combines the --out directories of explore shards (see
 * explore_main.c's usage). */
int merge_main(int argc, char **argv);

#endif

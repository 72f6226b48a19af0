/* bench_simspeed: how many times faster than real time the simulator runs a
 * whole cluster (managers with Raft, dispatcher, orchestrators, scheduler;
 * agents on every worker) for one simulated hour with light faults: a few
 * worker machines crash and come back, a daemon restarts, a short partition
 * cuts two workers off. Targets: 1,800x for 3 managers, 100 workers and
 * 1,000 tasks; 180x for 3 managers, 1,000 workers and 10,000 tasks. The
 * scenario goes through the runner, invariants checked after every event,
 * as `swarmsim run` would. */
#define _POSIX_C_SOURCE 200809L
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/runner.h"
#include "sim/scenario.h"

static double simspeed_wall(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* Writes the hour's scenario for the shape into buf. The faults hit
 * workers spread over the cluster; every one is over well before the end,
 * which checks convergence. */
static void simspeed_text(char *buf, size_t size, unsigned workers, unsigned tasks)
{
	unsigned a = workers / 7 + 1, b = workers / 3 + 1, c = workers / 2 + 1,
		 d = workers - 1, e = workers - 2;
	snprintf(buf, size,
		 "cluster managers=3 workers=%u\n"
		 "service create web replicas=%u\n"
		 "run 10m\n"
		 "kill w%u\n"
		 "run 5m\n"
		 "restart w%u\n"
		 "kill w%u process\n"
		 "run 2m\n"
		 "restart w%u\n"
		 "partition w%u w%u | *\n"
		 "run 1m\n"
		 "heal\n"
		 "run 10m\n"
		 "kill w%u\n"
		 "run 3m\n"
		 "restart w%u\n"
		 "run 29m\n"
		 "expect converged\n",
		 workers, tasks, a, a, b, b, d, e, c, c);
}

/* Runs the hour once; prints the speed. Returns 0, or 1 when the run
 * failed (the figure would mean nothing). */
static int simspeed_run(unsigned workers, unsigned tasks, double target)
{
	char text[2048], err[512];
	struct scn_script s;
	struct runner_opts opts = {0};
	struct runner_result res;
	double t0, wall;
	int rv;

	simspeed_text(text, sizeof text, workers, tasks);
	if (scn_parse("simspeed.scn", text, strlen(text), &s, err, sizeof err)) {
		fprintf(stderr, "bench_simspeed: %s\n", err);
		return 1;
	}
	t0 = simspeed_wall();
	rv = runner_run(&s, 1, &opts, &res);
	wall = simspeed_wall() - t0;
	scn_free(&s);
	if (rv || !res.passed) {
		fprintf(stderr, "bench_simspeed: the run failed: %s\n",
			rv ? "out of memory" : res.message);
		return 1;
	}
	printf("sim-speed: %.0f times real time (3 managers, %u workers, %u tasks, 1h)"
	       " [target %.0f%s; %" PRIu64 " events, %.0f events/s, wall %.2fs]\n",
	       (double)res.sim_us / 1e6 / wall, workers, tasks, target,
	       (double)res.sim_us / 1e6 / wall >= target ? ", met" : ", MISSED",
	       res.events, (double)res.events / wall, wall);
	return 0;
}

int main(int argc, char **argv)
{
	int failed = 0;
	bool small_only = argc > 1 && strcmp(argv[1], "--small") == 0;

	(void)argv;
	failed |= simspeed_run(100, 1000, 1800);
	if (!small_only)
		failed |= simspeed_run(1000, 10000, 180);
	return failed;
}

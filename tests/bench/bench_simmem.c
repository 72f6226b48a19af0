/* bench_simmem: the simulator's memory per node (issue 18). Runs, each in
 * a child process of its own, a cluster of 3 managers and W workers, all
 * READY, holding their sessions for a simulated minute of heartbeats (no
 * service: what is measured is the nodes, not the tasks), once with
 * SIMMEM_BASE_WORKERS workers and once with W (10,000 by default), and
 * prints
 *   sim-memory: N KiB/node
 * where N = (peak RSS at W - peak RSS at the base) / (W - base). The
 * difference leaves out what does not grow with nodes (the binary, sqlite's
 * and libraft's globals, the runner, the scenario); what it includes, per
 * node: the world's node (its timers, queues, links and message buffers),
 * its simulated disk (the agent's task database, and a manager's Raft
 * database) and the sqlite connection with its page cache, the agent's
 * state and session, and the managers' share (a node record in every
 * manager's store, a session in the leader's dispatcher). Peak RSS is the
 * child's ru_maxrss from wait4. The run goes through the runner, invariants
 * checked after every event, as `swarmsim run` would.
 *
 * Usage: bench_simmem [WORKERS] */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include "sim/runner.h"
#include "sim/scenario.h"

#define SIMMEM_BASE_WORKERS 100u
#define SIMMEM_WORKERS	    10000u

/* Runs the cluster of `workers` workers in this process; returns the exit
 * status for the child: 0 when the run passed. */
static int simmem_child(unsigned workers)
{
	char text[512], err[512];
	struct scn_script s;
	struct runner_opts opts = {0};
	struct runner_result res;
	int rv;

	snprintf(text, sizeof text,
		 "cluster managers=3 workers=%u\n"
		 "expect leader within 30s\n"
		 "expect nodes ready == %u within 2m\n"
		 "run 1m\n"
		 "expect nodes ready == %u\n",
		 workers, workers + 3, workers + 3);
	if (scn_parse("simmem.scn", text, strlen(text), &s, err, sizeof err)) {
		fprintf(stderr, "bench_simmem: %s\n", err);
		return 1;
	}
	rv = runner_run(&s, 1, &opts, &res);
	scn_free(&s);
	if (rv || !res.passed) {
		fprintf(stderr, "bench_simmem: the run of %u workers failed: %s\n",
			workers, rv ? "out of memory" : res.message);
		return 1;
	}
	return 0;
}

/* Runs simmem_child(workers) in a child; *kib is its peak RSS. Returns 0,
 * or 1 when the child failed. */
static int simmem_measure(unsigned workers, long *kib)
{
	struct rusage ru;
	int status;
	pid_t pid;

	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0) {
		perror("bench_simmem: fork");
		return 1;
	}
	if (pid == 0)
		_exit(simmem_child(workers));
	if (wait4(pid, &status, 0, &ru) != pid) {
		perror("bench_simmem: wait4");
		return 1;
	}
	if (!WIFEXITED(status) || WEXITSTATUS(status) != 0)
		return 1;
	*kib = ru.ru_maxrss; /* KiB on Linux */
	return 0;
}

int main(int argc, char **argv)
{
	unsigned workers = SIMMEM_WORKERS;
	long base = 0, peak = 0;

	if (argc > 1) {
		char *end;
		unsigned long v = strtoul(argv[1], &end, 10);
		if (*end || v <= SIMMEM_BASE_WORKERS || v > 100000) {
			fprintf(stderr, "usage: bench_simmem [WORKERS > %u]\n",
				SIMMEM_BASE_WORKERS);
			return 2;
		}
		workers = (unsigned)v;
	}
	if (simmem_measure(SIMMEM_BASE_WORKERS, &base) || simmem_measure(workers, &peak))
		return 1;
	printf("sim-memory: %.1f KiB/node (3 managers; peak RSS %ld KiB at %u workers"
	       " minus %ld KiB at %u, over the %u nodes between; nodes ready, 1 min of"
	       " heartbeats, no tasks)\n",
	       (double)(peak - base) / (double)(workers - SIMMEM_BASE_WORKERS), peak,
	       workers, base, SIMMEM_BASE_WORKERS, workers - SIMMEM_BASE_WORKERS);
	return 0;
}

/* runner: replays one parsed scenario on a fresh world, deterministically.
 * It creates the cluster's nodes, applies every command at its virtual time,
 * checks `expect` and `always` conditions and the invariants after every
 * event, and returns the result (pass, or where and why it failed) with the
 * trace hash. A command or condition whose part is not built yet fails the
 * run and says so by name; nothing is skipped silently. Called by swarmsim
 * and by tests. */
#ifndef SIM_RUNNER_H
#define SIM_RUNNER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "core/env.h"
#include "sim/scenario.h"
#include "sim/world.h"

struct simcluster;

/* What an observer sees (borrowed for the call only). The observer reads
 * and never changes the world or the cluster: the trace and its hash stay
 * what they are without it. */
struct runner_view {
	struct world *w;
	const struct simcluster *cluster;
	const struct scn_cmd *cmd; /* the command being run (NULL before the first) */
	bool final;		   /* the run is over: the last call */
};
typedef void (*runner_observe_fn)(void *ctx, const struct runner_view *v);

/* What runs on the cluster's nodes. NULL programs: the nodes run nothing
 * (the kernel alone, for tests of the simulator itself). */
struct runner_opts {
	const struct env_program_ops *manager_prog;
	const void *manager_cfg;
	const struct env_program_ops *worker_prog;
	const void *worker_cfg;
	bool record;	      /* keep per-event records (determinism check) */
	world_trace_fn trace; /* every traced event, or NULL */
	void *trace_ctx;
	world_log_fn log; /* program log lines, or NULL */
	void *log_ctx;
	/* Called after every event and every command, and once more with
	 * final set when the run ends (reports, timelines, metrics). NULL:
	 * nothing. */
	runner_observe_fn observe;
	void *observe_ctx;
	/* The caller exits right after this run: the world (its nodes'
	 * stores, the runtime's containers) is left to the process's end
	 * instead of freed object by object (a twentieth of a 100,000-task
	 * run), as compilers do with their trees. Only a plain build may
	 * ask it: a leak check would report the world. */
	bool exit_after;
};

struct runner_result {
	bool passed;
	uint64_t seed;
	us_t sim_us;
	uint64_t events;
	uint64_t hash;
	uint32_t fail_line;	    /* 0 when passed */
	char message[512];	    /* "line 14: expect ...: got 6" when failed */
	struct sim_trace_rec *recs; /* with opts.record: owned, runner_result_free */
	size_t rec_count;
};

/* runner_seed returns the seed a run uses: flag_seed when has_flag, else the
 * script's `seed N`, else 1. */
uint64_t runner_seed(const struct scn_script *script, bool has_flag, uint64_t flag_seed);

/* runner_run replays script with seed. Returns 0 with *res filled (passed
 * or not), or CS_ENOMEM when the world could not be built. Borrows script
 * and opts. */
int runner_run(const struct scn_script *script, uint64_t seed,
	       const struct runner_opts *opts, struct runner_result *res);

/* runner_result_free frees the records of a result. */
void runner_result_free(struct runner_result *res);

/* runner_diverge compares the records of two runs of the same scenario and
 * seed. Returns -1 when identical, else the index of the first event that
 * differs (== the shorter count when one run is a prefix of the other). */
int64_t runner_diverge(const struct runner_result *a, const struct runner_result *b);

/* The rule for `leader` named again on one line, shared by both backends
 * (this runner and sim/realworld.c's real daemons): the parser refuses a
 * node named twice, but `leader` names one only when the line runs. */

/* runner_partition_put puts node (an index below node_count, from a name
 * or from `leader`) in group (1-based) of a partition line: group_of[node]
 * = group. Named again in its own group it is that node once (0: the
 * author wanted those nodes on one side, and they are); named again in
 * another group it returns CS_EINVAL with "the leader is NAME, which
 * another group names: a node can be on one side only" in err (NAME is
 * node_name): the cut the author meant cannot be. Borrows every pointer. */
int runner_partition_put(uint32_t *group_of, size_t node_count, uint32_t node,
			 uint32_t group, const char *node_name, char *err,
			 size_t err_size);

/* runner_link_check returns 0 when a link's two nodes a and b (indexes)
 * differ, else CS_EINVAL with "the leader is NAME, the link's other node:
 * a link needs two different nodes" in err (NAME is node_name, a's).
 * Borrows every pointer. */
int runner_link_check(uint32_t a, uint32_t b, const char *node_name, char *err,
		      size_t err_size);

#endif

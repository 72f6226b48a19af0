/* bench_quality: how well the brain does its job, measured in the
 * simulator with default timings (virtual time, so the figures do not
 * depend on this machine): time from service create to all tasks running,
 * time to replace the tasks of a dead worker (target: 17 s), and spread
 * balance (max minus min tasks of the service per eligible node). Three
 * seeds per figure; prints the worst. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/node.h"
#include "sim/cluster.h"
#include "sim/clusterops.h"
#include "sim/scenario.h"
#include "sim/simexec.h"
#include "sim/world.h"

enum {
	QUALITY_MANAGERS = 3,
	QUALITY_WORKERS = 20,
	QUALITY_TASKS = 100,
	QUALITY_SEEDS = 3
};

#define SEC 1000000ull

struct quality {
	struct world *w;
	struct simcluster *c;
	struct clops *o;
	bool done;
	int status;
};

static void quality_done(void *data, int status)
{
	struct quality *q = data;
	q->done = true;
	q->status = status;
}

static struct manager *quality_leader(struct quality *q)
{
	int64_t l = simcluster_leader(q->c);
	return l < 0 ? NULL : simcluster_manager(q->c, (uint32_t)l);
}

/* Steps until cond holds (checked after each event) or limit passes. */
static bool quality_until(struct quality *q, us_t limit, const struct scn_cond *cond)
{
	us_t end = world_now_us(q->w) + limit;
	char got[256];
	for (;;) {
		if (cond &&
		    clops_cond(q->o, quality_leader(q), cond, got, sizeof got) == 1)
			return true;
		if (!cond && quality_leader(q))
			return true;
		if (!world_step(q->w, end))
			return false;
	}
}

static int quality_add(struct quality *q, const char *name, uint32_t manager)
{
	const struct node_cfg *cfg =
		simcluster_node_cfg(q->c, name, manager, manager ? QUALITY_MANAGERS : 0,
				    QUALITY_MANAGERS, 4000, 8ull << 30);
	uint32_t idx;
	if (!cfg || world_node_add(q->w, name, &node_program, cfg, &idx) ||
	    simcluster_track(q->c, idx, manager) || world_node_start(q->w, idx))
		return -1;
	return 0;
}

/* One run: returns the three figures in seconds / tasks. */
static int quality_run(uint64_t seed, const struct scn_script *s, double *create_s,
		       double *replace_s, uint64_t *balance)
{
	struct quality q = {0};
	struct scn_cond converged = {.kind = SCN_COND_CONVERGED};
	struct scn_cond all_running = {.kind = SCN_COND_RUNNING,
				       .op = SCN_OP_EQ,
				       .count = QUALITY_TASKS,
				       .service = "web"};
	char name[16], err[256];
	uint64_t min = UINT64_MAX, max = 0;
	us_t t0;
	int rv = -1;

	q.w = world_new(seed);
	q.c = simcluster_new(q.w, NULL);
	q.o = clops_new(q.w, q.c);
	if (!q.w || !q.c || !q.o)
		goto out;
	simcluster_node_programs(q.c, true);
	for (uint32_t i = 1; i <= QUALITY_MANAGERS; i++) {
		snprintf(name, sizeof name, "m%" PRIu32, i);
		if (quality_add(&q, name, i))
			goto out;
	}
	for (uint32_t i = 1; i <= QUALITY_WORKERS; i++) {
		snprintf(name, sizeof name, "w%" PRIu32, i);
		if (quality_add(&q, name, 0))
			goto out;
	}
	/* a leader, every node registered */
	{
		struct scn_cond ready = {.kind = SCN_COND_NODES_READY,
					 .op = SCN_OP_EQ,
					 .count = QUALITY_MANAGERS + QUALITY_WORKERS};
		if (!quality_until(&q, 120 * SEC, NULL) ||
		    !quality_until(&q, 120 * SEC, &ready))
			goto out;
	}
	t0 = world_now_us(q.w);
	if (clops_service(q.o, quality_leader(&q), &s->cmds[1], err, sizeof err,
			  quality_done, &q)) {
		fprintf(stderr, "bench_quality: %s\n", err);
		goto out;
	}
	while (!q.done && world_step(q.w, UINT64_MAX))
		; /* the create committed */
	if (q.status || !quality_until(&q, 300 * SEC, &converged))
		goto out;
	*create_s = (double)(world_now_us(q.w) - t0) / 1e6;
	for (uint32_t i = 1; i <= QUALITY_WORKERS; i++) {
		snprintf(name, sizeof name, "w%" PRIu32, i);
		size_t n = simexec_running(world_exec(q.w), "web",
					   world_node_find(q.w, name));
		min = n < min ? n : min;
		max = n > max ? n : max;
	}
	*balance = max - min;
	/* a worker's machine dies; its tasks must run elsewhere */
	world_node_kill(q.w, (uint32_t)world_node_find(q.w, "w1"), true, false);
	t0 = world_now_us(q.w);
	if (!quality_until(&q, 300 * SEC, &all_running))
		goto out;
	*replace_s = (double)(world_now_us(q.w) - t0) / 1e6;
	rv = 0;
out:
	world_free(q.w);
	clops_free(q.o);
	simcluster_free(q.c);
	return rv;
}

int main(void)
{
	static const char text[] =
		"cluster managers=3 workers=20\n"
		"service create web replicas=100 constraint=node.role==worker\n";
	struct scn_script s;
	char err[256];
	double create_max = 0, replace_max = 0;
	uint64_t balance_max = 0;

	if (scn_parse("bench", text, strlen(text), &s, err, sizeof err)) {
		fprintf(stderr, "%s\n", err);
		return 1;
	}
	for (uint64_t seed = 1; seed <= QUALITY_SEEDS; seed++) {
		double c = 0, r = 0;
		uint64_t b = 0;
		if (quality_run(seed, &s, &c, &r, &b)) {
			fprintf(stderr,
				"bench_quality: seed %" PRIu64 " did not converge\n",
				seed);
			scn_free(&s);
			return 1;
		}
		create_max = c > create_max ? c : create_max;
		replace_max = r > replace_max ? r : replace_max;
		balance_max = b > balance_max ? b : balance_max;
	}
	scn_free(&s);
	printf("quality: create to running: %.1f s for %d tasks on %d workers (worst of %d seeds)\n",
	       create_max, QUALITY_TASKS, QUALITY_WORKERS, QUALITY_SEEDS);
	printf("quality: dead worker replaced: %.1f s after its death (target 17 s)\n",
	       replace_max);
	printf("quality: spread balance: %" PRIu64 " (max - min tasks per worker)\n",
	       balance_max);
	return 0;
}

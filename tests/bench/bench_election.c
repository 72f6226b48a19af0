/* bench_election: how long three managers take to elect their first leader
 * when the links between them lose messages (issue 14, "Raft liveness under
 * loss"). In the simulator, virtual time, default timings (tick 1 s,
 * election after 10 ticks): for each seed, three managers start at once
 * with every manager-to-manager link (both ways) losing LOSS of its
 * messages, and the time to the first leader is measured, a leader as
 * swarmsim sees one (simcluster_leader: a majority of the voters, itself
 * included, in its term and naming it: a follower has heard it). Prints
 *
 *   election-under-loss: p50 A s, p90 B s, p99 C s (30% loss, ...)
 *
 * and, for each loss rate given, the same line. Usage:
 *   bench_election [SEEDS [LOSS_PERCENT...]]   (1000 seeds, 30% by default)
 * Figures do not depend on the machine. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/manager.h"
#include "sim/cluster.h"
#include "sim/world.h"

enum { ELECT_MANAGERS = 3, ELECT_SEEDS = 1000 };

#define SEC	    1000000ull
#define ELECT_LIMIT (120 * SEC) /* a seed not done by then counts as this */

/* One seed: the virtual time from start to the first leader, or
 * ELECT_LIMIT; -1 when the cluster could not be built. */
static int64_t elect_one(uint64_t seed, uint32_t loss_ppm)
{
	struct world *w = world_new(seed);
	struct simcluster *c = w ? simcluster_new(w, NULL) : NULL;
	uint32_t idx[ELECT_MANAGERS];
	int64_t took = -1;
	us_t t0;

	if (!c)
		goto out;
	for (uint32_t i = 0; i < ELECT_MANAGERS; i++) {
		char name[8];
		const struct manager_cfg *cfg =
			simcluster_manager_cfg(c, i + 1, ELECT_MANAGERS);
		snprintf(name, sizeof name, "m%" PRIu32, i + 1);
		if (!cfg || world_node_add(w, name, &manager_program, cfg, &idx[i]) ||
		    simcluster_track(c, idx[i], i + 1))
			goto out;
	}
	for (uint32_t a = 0; a < ELECT_MANAGERS; a++)
		for (uint32_t b = 0; b < ELECT_MANAGERS; b++) {
			struct sim_link_rule rule;
			if (a == b)
				continue;
			memset(&rule, 0, sizeof rule);
			rule.src = idx[a];
			rule.dst = idx[b];
			rule.loss_ppm = loss_ppm;
			if (world_net_link(w, &rule))
				goto out;
		}
	t0 = world_now_us(w);
	for (uint32_t i = 0; i < ELECT_MANAGERS; i++)
		if (world_node_start(w, idx[i]))
			goto out;
	took = (int64_t)ELECT_LIMIT;
	while (simcluster_leader(c) < 0)
		if (!world_step(w, t0 + ELECT_LIMIT))
			goto out;
	took = (int64_t)(world_now_us(w) - t0);
out:
	world_free(w);
	simcluster_free(c);
	return took;
}

static int elect_cmp(const void *a, const void *b)
{
	int64_t x = *(const int64_t *)a, y = *(const int64_t *)b;
	return (x > y) - (x < y);
}

/* The p-th percentile (nearest rank) of sorted v[n], in seconds. */
static double elect_pct(const int64_t *v, size_t n, unsigned p)
{
	size_t rank = (n * p + 99) / 100;
	return (double)v[rank ? rank - 1 : 0] / (double)SEC;
}

static int elect_run(size_t seeds, unsigned loss_pct)
{
	int64_t *t = calloc(seeds, sizeof *t);
	size_t late = 0, over20 = 0;

	if (!t)
		return 1;
	for (size_t s = 0; s < seeds; s++) {
		t[s] = elect_one(s + 1, loss_pct * 10000u);
		if (t[s] < 0) {
			fprintf(stderr, "bench_election: seed %zu: could not build\n",
				s + 1);
			free(t);
			return 1;
		}
		late += t[s] >= (int64_t)ELECT_LIMIT;
		over20 += t[s] > (int64_t)(20 * SEC);
	}
	qsort(t, seeds, sizeof *t, elect_cmp);
	printf("election-under-loss: p50 %.1f s, p90 %.1f s, p99 %.1f s (%u%% loss between "
	       "%d managers, first leader from start, %zu seeds; %zu over 20 s, %zu not "
	       "within %llu s)\n",
	       elect_pct(t, seeds, 50), elect_pct(t, seeds, 90), elect_pct(t, seeds, 99),
	       loss_pct, ELECT_MANAGERS, seeds, over20, late,
	       (unsigned long long)(ELECT_LIMIT / SEC));
	free(t);
	return 0;
}

int main(int argc, char **argv)
{
	size_t seeds = argc > 1 ? (size_t)strtoul(argv[1], NULL, 10) : ELECT_SEEDS;

	if (seeds == 0) {
		fprintf(stderr, "usage: bench_election [SEEDS [LOSS_PERCENT...]]\n");
		return 2;
	}
	if (argc <= 2)
		return elect_run(seeds, 30);
	for (int i = 2; i < argc; i++) {
		unsigned long p = strtoul(argv[i], NULL, 10);
		if (p >= 100 || elect_run(seeds, (unsigned)p))
			return 1;
	}
	return 0;
}

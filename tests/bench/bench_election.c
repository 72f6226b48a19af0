/* bench_election: how long three managers take to elect a leader when the
 * links between them lose messages (issue 14, "Raft liveness under loss").
 * In the simulator, virtual time, default timings (tick 1 s, election after
 * 10 ticks): for each seed, three managers start at once with every
 * manager-to-manager link (both ways) losing LOSS of its messages. Two
 * figures: the time from start to the first leader, and, 5 s after that
 * one, the leader's machine dies: the time from its death to the next
 * leader. A leader is one as swarmsim sees it (simcluster_leader: a
 * majority of the voters, itself included, in its term and naming it: a
 * follower has heard it). Prints
 *
 *   election-under-loss: p50 A s, p90 B s, p99 C s (30% loss, ...)
 *   failover-under-loss: p50 A s, p90 B s, p99 C s (30% loss, ...)
 *
 * and, for each loss rate given, the same lines. Usage:
 *   bench_election [SEEDS [LOSS_PERCENT...]]   (1000 seeds, 30% by default)
 * Figures do not depend on the machine. */
#include <inttypes.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/errors.h"
#include "core/manager.h"
#include "sim/cluster.h"
#include "sim/world.h"

enum { ELECT_MANAGERS = 3, ELECT_SEEDS = 1000 };

#define SEC	     1000000ull
#define ELECT_LIMIT  (120 * SEC) /* a seed not done by then counts as this */
#define ELECT_SETTLE (5 * SEC)	 /* from the first leader to its death */

/* Steps w until a leader or `until`; returns whether there is one. */
static bool elect_wait(struct world *w, struct simcluster *c, us_t until)
{
	while (simcluster_leader(c) < 0)
		if (!world_step(w, until))
			return false;
	return true;
}

/* One seed: the virtual times from start to the first leader (*first) and
 * from that leader's death to the next (*failover), each ELECT_LIMIT when
 * not done by then. Returns 0, or -1 when the cluster could not be built. */
static int elect_one(uint64_t seed, uint32_t loss_ppm, us_t *first, us_t *failover)
{
	struct world *w = world_new(seed);
	struct simcluster *c = w ? simcluster_new(w, NULL) : NULL;
	uint32_t idx[ELECT_MANAGERS];
	int rv = -1;
	int64_t l;
	us_t t0;

	*first = *failover = ELECT_LIMIT;
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
	rv = 0;
	if (!elect_wait(w, c, t0 + ELECT_LIMIT))
		goto out;
	*first = world_now_us(w) - t0;
	t0 = world_now_us(w) + ELECT_SETTLE;
	while (world_step(w, t0))
		;
	world_advance(w, t0);
	if ((l = simcluster_leader(c)) < 0)
		goto out; /* lost it again: no failover figure (counted late) */
	if (world_node_kill(w, (uint32_t)l, true, false)) {
		rv = -1;
		goto out;
	}
	if (elect_wait(w, c, t0 + ELECT_LIMIT))
		*failover = world_now_us(w) - t0;
out:
	world_free(w);
	simcluster_free(c);
	return rv;
}

static int elect_cmp(const void *a, const void *b)
{
	us_t x = *(const us_t *)a, y = *(const us_t *)b;
	return (x > y) - (x < y);
}

/* The p-th percentile (nearest rank) of sorted v[n], in seconds. */
static double elect_pct(const us_t *v, size_t n, unsigned p)
{
	size_t rank = (n * p + 99) / 100;
	return (double)v[rank ? rank - 1 : 0] / (double)SEC;
}

/* Prints one figure's line: what (its name), t[seeds] (sorted here). */
static void elect_print(const char *what, const char *from, us_t *t, size_t seeds,
			unsigned loss_pct)
{
	size_t late = 0, over20 = 0;

	qsort(t, seeds, sizeof *t, elect_cmp);
	for (size_t s = 0; s < seeds; s++) {
		late += t[s] >= ELECT_LIMIT;
		over20 += t[s] > 20 * SEC;
	}
	printf("%s: p50 %.1f s, p90 %.1f s, p99 %.1f s (%u%% loss between %d managers, "
	       "%s, %zu seeds; %zu over 20 s, %zu not within %llu s)\n",
	       what, elect_pct(t, seeds, 50), elect_pct(t, seeds, 90),
	       elect_pct(t, seeds, 99), loss_pct, ELECT_MANAGERS, from, seeds, over20,
	       late, (unsigned long long)(ELECT_LIMIT / SEC));
}

static int elect_run(size_t seeds, unsigned loss_pct)
{
	us_t *first = calloc(seeds, sizeof *first);
	us_t *failover = calloc(seeds, sizeof *failover);
	int rv = 1;

	if (!first || !failover)
		goto out;
	for (size_t s = 0; s < seeds; s++)
		if (elect_one(s + 1, loss_pct * 10000u, &first[s], &failover[s])) {
			fprintf(stderr, "bench_election: seed %zu: could not build\n",
				s + 1);
			goto out;
		}
	elect_print("election-under-loss", "first leader from start", first, seeds,
		    loss_pct);
	elect_print("failover-under-loss", "leader killed 5 s after, to the next",
		    failover, seeds, loss_pct);
	rv = 0;
out:
	free(first);
	free(failover);
	return rv;
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

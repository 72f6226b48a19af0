/* bench_agents: one simulated manager and 10,000 simulated agents
 * heartbeating for 10 simulated minutes (the dispatcher's load). Prints
 * `dispatcher-sim: N heartbeats/s` (wall clock, one core) and memory per
 * node. Method: with no tasks, the only frames agents send the manager in
 * steady state are heartbeats, so heartbeats = messages delivered to m1
 * from another node during the window (counted by a trace callback). Memory
 * is the heap growth (mallinfo2) from an empty world to all 10,000 agents
 * ready, divided by the agents: it covers the whole simulated node (agent,
 * its env and disk) plus the manager's share (Node object, session). The
 * run also checks that no node is ever marked down. */
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/node.h"
#include "core/store.h"
#include "sim/cluster.h"
#include "sim/world.h"

enum { AGENTS = 10000 };
#define SEC 1000000ull

struct counter {
	uint32_t manager_node;
	uint64_t heartbeats;
	bool on;
};

static void count_frames(void *ctx, const struct world *w, us_t at_us, uint32_t node,
			 enum sim_ev_kind kind, uint64_t a, uint64_t b)
{
	struct counter *c = ctx;
	if (c->on && kind == SIM_EV_MSG && node == c->manager_node &&
	    a != c->manager_node)
		c->heartbeats++;
}

static double now_s(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static size_t ready_nodes(struct simcluster *c)
{
	int64_t l = simcluster_leader(c);
	const struct store *st;
	size_t n = 0;
	if (l < 0)
		return 0;
	st = manager_store(simcluster_manager(c, (uint32_t)l));
	for (const Cs__Node *node = store_node_next(st, NULL); node;
	     node = store_node_next(st, node))
		n += node->state == CS__NODE_STATE__NODE_STATE_READY;
	return n;
}

int main(void)
{
	struct world *w = world_new(1);
	struct simcluster *c = simcluster_new(w, NULL);
	struct counter cnt = {0};
	size_t mem0, mem1, ready;
	double t0, t1;
	uint32_t idx;
	us_t end;

	if (!w || !c)
		return 1;
	simcluster_node_programs(c, true);
	if (world_node_add(w, "m1", &node_program,
			   simcluster_node_cfg(c, "m1", 1, 1, 1, 4000, 8ull << 30),
			   &idx) ||
	    simcluster_track(c, idx, 1) || world_node_start(w, idx))
		return 1;
	cnt.manager_node = idx;
	while (ready_nodes(c) < 1 && world_step(w, 60 * SEC))
		;
	mem0 = mallinfo2().uordblks;
	for (uint32_t i = 1; i <= AGENTS; i++) {
		char name[16];
		snprintf(name, sizeof name, "w%" PRIu32, i);
		if (world_node_add(
			    w, name, &node_program,
			    simcluster_node_cfg(c, name, 0, 0, 1, 4000, 8ull << 30),
			    &idx) ||
		    simcluster_track(c, idx, 0) || world_node_start(w, idx))
			return 1;
	}
	/* until every agent is ready, looking once a virtual second */
	for (us_t until = world_now_us(w) + SEC; (ready = ready_nodes(c)) < AGENTS + 1;
	     until += SEC) {
		while (world_step(w, until))
			;
		if (world_now_us(w) > 600 * SEC) {
			fprintf(stderr, "bench_agents: only %zu nodes ready\n", ready);
			return 1;
		}
	}
	mem1 = mallinfo2().uordblks;
	world_set_trace(w, count_frames, &cnt);
	cnt.on = true;
	t0 = now_s();
	end = world_now_us(w) + 600 * SEC;
	for (us_t until = world_now_us(w) + 30 * SEC; until <= end; until += 30 * SEC) {
		while (world_step(w, until))
			;
		if (ready_nodes(c) != AGENTS + 1) {
			fprintf(stderr,
				"bench_agents: a node was marked down at %.0f s\n",
				(double)world_now_us(w) / 1e6);
			return 1;
		}
	}
	t1 = now_s();
	printf("dispatcher-sim: %.0f heartbeats/s (%d agents, 600 s virtual in %.2f s wall; "
	       "%" PRIu64 " heartbeats; no node ever down)\n",
	       (double)cnt.heartbeats / (t1 - t0), AGENTS, t1 - t0, cnt.heartbeats);
	printf("dispatcher-sim: %zu bytes/node for a whole simulated node (heap growth: agent, "
	       "env, sqlite disk, and the manager's share)\n",
	       (mem1 - mem0) / AGENTS);
	/* the manager's own share: its store's Node objects (measured by
	 * restoring the leader's snapshot into an empty store) */
	{
		const struct store *st =
			manager_store(simcluster_manager(c, cnt.manager_node));
		struct store *copy = store_new();
		uint8_t *buf;
		size_t len, before;
		if (!copy || store_snapshot(st, &buf, &len))
			return 1;
		before = mallinfo2().uordblks;
		if (store_restore(copy, buf, len, 0))
			return 1;
		printf("dispatcher-sim: %zu bytes/node in the manager's store (Node objects and "
		       "index), plus one dispatcher session each\n",
		       (mallinfo2().uordblks - before) / (AGENTS + 1));
		free(buf);
		store_free(copy);
	}
	world_free(w);
	simcluster_free(c);
	return 0;
}

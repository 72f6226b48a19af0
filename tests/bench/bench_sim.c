/* bench_sim: the simulator kernel's speed. 1,000 simulated nodes pass
 * messages to random peers (each delivery is answered by a send to another
 * random peer, so the load stays constant) for a fixed number of deliveries;
 * prints `sim-kernel: N events/s`, counting events delivered from the queue
 * (message deliveries), on one core. Timing lives here, never in tests. */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "sim/world.h"

enum { BENCH_NODES = 1000, BENCH_INFLIGHT_PER_NODE = 8 };

struct potato_cfg {
	char (*names)[16];
	size_t count;
};

struct potato {
	struct env *env;
	const struct potato_cfg *cfg;
	uint64_t received;
};

static void potato_pass(struct potato *p)
{
	const char *to = p->cfg->names[p->env->ops->random_u64(p->env) % p->cfg->count];
	uint64_t payload[4] = {p->received, 1, 2, 3};
	p->env->ops->send(p->env, to, (const uint8_t *)payload, sizeof payload);
}

static void potato_recv(struct env *env, const char *from, const uint8_t *buf, size_t len,
			void *data)
{
	struct potato *p = data;
	p->received++;
	potato_pass(p);
}

static void potato_kick(struct env *env, env_timer_id id, void *data)
{
	for (int i = 0; i < BENCH_INFLIGHT_PER_NODE; i++)
		potato_pass(data);
}

static int potato_start(const void *cfg, struct env *env, void **state)
{
	struct potato *p = calloc(1, sizeof *p);
	env_timer_id id;
	if (!p)
		return -1;
	p->env = env;
	p->cfg = cfg;
	env->ops->listen(env, potato_recv, NULL, p);
	env->ops->timer_start(env, 1, 0, potato_kick, p, &id);
	*state = p;
	return 0;
}

static void potato_stop(void *state)
{
	free(state);
}

static const struct env_program_ops potato_ops = {potato_start, potato_stop};

static double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	uint64_t target = argc > 1 ? strtoull(argv[1], NULL, 10) : 20000000;
	static char names[BENCH_NODES][16];
	struct potato_cfg cfg = {names, BENCH_NODES};
	struct sim_net_stats st;
	struct world *w = world_new(1);
	double t0, t1;
	uint64_t popped = 0;

	if (!w)
		return 1;
	for (uint32_t i = 0; i < BENCH_NODES; i++) {
		uint32_t idx;
		snprintf(names[i], sizeof names[i], "n%" PRIu32, i);
		if (world_node_add(w, names[i], &potato_ops, &cfg, &idx) ||
		    world_node_start(w, idx))
			return 1;
	}
	t0 = bench_now();
	while (popped < target && world_step(w, UINT64_MAX))
		popped++;
	t1 = bench_now();
	world_net_stats(w, &st);
	printf("sim-kernel: %.0f events/s (%" PRIu64 " events delivered from the queue "
	       "in %.2fs wall, %d nodes, %" PRIu64
	       " messages, %.1fs virtual, trace %016" PRIx64 ")\n",
	       (double)popped / (t1 - t0), popped, t1 - t0, BENCH_NODES, st.delivered,
	       (double)world_now_us(w) / 1e6, world_hash(w));
	world_free(w);
	return 0;
}

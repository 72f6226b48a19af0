/* bench_raft: committed writes per second through 3 simulated managers
 * (libraft over raftio over the simulated network and disks), 64 writes in
 * flight; prints `raft-sim: N commits/s` (wall clock, one core). */
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "core/errors.h"
#include "core/manager.h"
#include "core/store.h"
#include "sim/cluster.h"
#include "sim/world.h"

enum { BENCH_WRITES = 20000, BENCH_INFLIGHT = 64 };

struct bench {
	struct world *w;
	struct simcluster *c;
	uint64_t next_id;
	uint64_t done, failed;
	int inflight;
};

static double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void bench_issue(struct bench *b);

static void bench_done(void *data, int status)
{
	struct bench *b = data;
	b->inflight--;
	if (status == 0)
		b->done++;
	else
		b->failed++;
}

static void bench_issue(struct bench *b)
{
	int64_t l = simcluster_leader(b->c);
	struct store_batch batch;
	Cs__Node n = CS__NODE__INIT;
	uint8_t *buf;
	size_t len;

	if (l < 0)
		return;
	/* a Node record in state UNKNOWN: no leader component touches it, so
	 * Raft and the store are what is measured */
	n.id = ++b->next_id;
	n.hostname = "bench";
	store_batch_init(&batch);
	store_batch_node(&batch, CS__STORE_ACTION__KIND__KIND_CREATE, &n);
	store_batch_encode(&batch, 0, 0, &buf, &len);
	store_batch_free(&batch);
	if (manager_write(simcluster_manager(b->c, (uint32_t)l), buf, len, bench_done,
			  b) == 0)
		b->inflight++;
	free(buf);
}

int main(void)
{
	struct bench b = {0};
	double t0, t1;
	us_t v0;

	b.w = world_new(1);
	b.c = simcluster_new(b.w, NULL);
	for (uint32_t i = 1; i <= 3; i++) {
		char name[8];
		uint32_t idx;
		snprintf(name, sizeof name, "m%" PRIu32, i);
		world_node_add(b.w, name, &manager_program,
			       simcluster_manager_cfg(b.c, i, 3), &idx);
		simcluster_track(b.c, idx, i);
		world_node_start(b.w, idx);
	}
	while (simcluster_leader(b.c) < 0 && world_step(b.w, UINT64_MAX))
		;
	t0 = bench_now();
	v0 = world_now_us(b.w);
	while (b.done + b.failed < BENCH_WRITES) {
		while (b.inflight < BENCH_INFLIGHT && b.next_id < BENCH_WRITES)
			bench_issue(&b);
		if (!world_step(b.w, UINT64_MAX))
			break;
	}
	t1 = bench_now();
	printf("raft-sim: %.0f commits/s (%" PRIu64
	       " writes committed through 3 managers in "
	       "%.2fs wall, %.1fs virtual, %" PRIu64 " failed, %d in flight)\n",
	       (double)b.done / (t1 - t0), b.done, t1 - t0,
	       (double)(world_now_us(b.w) - v0) / 1e6, b.failed, BENCH_INFLIGHT);
	world_free(b.w);
	simcluster_free(b.c);
	return 0;
}

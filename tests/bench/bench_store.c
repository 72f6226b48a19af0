/* bench_store: memory of the store per task at 1,000,000 tasks (mallinfo2
 * before and after), and apply speed; prints `store: N bytes/task`. */
#include <inttypes.h>
#include <malloc.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "core/store.h"

enum { BENCH_TASKS = 1000000, BENCH_BATCH = 1000 };

static double bench_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(void)
{
	struct store *s = store_new();
	size_t before, after;
	double t0, t1;
	uint64_t index = 0;

	if (!s)
		return 1;
	before = mallinfo2().uordblks;
	t0 = bench_now();
	for (uint64_t base = 0; base < BENCH_TASKS; base += BENCH_BATCH) {
		struct store_batch b;
		uint8_t *buf;
		size_t len;
		store_batch_init(&b);
		for (uint64_t i = 0; i < BENCH_BATCH; i++) {
			Cs__Task t = CS__TASK__INIT;
			Cs__TaskStatus st = CS__TASK_STATUS__INIT;
			uint64_t id = base + i;
			/* ids as the leader draws them: random 64-bit */
			t.id = (id + 1) * 0x9e3779b97f4a7c15ull;
			t.service_id = 1 + id % 100;
			t.slot = 1 + id / 100;
			t.node_id = 1 + id % 1000;
			t.desired_state = CS__TASK_STATE__TASK_STATE_RUNNING;
			st.state = CS__TASK_STATE__TASK_STATE_RUNNING;
			st.timestamp_ms = id;
			t.status = &st;
			t.spec_version = 1;
			if (store_batch_task(&b, CS__STORE_ACTION__KIND__KIND_CREATE, &t))
				return 1;
		}
		if (store_batch_encode(&b, 1, 1, &buf, &len) ||
		    store_apply(s, buf, len, ++index, NULL, NULL))
			return 1;
		free(buf);
		store_batch_free(&b);
	}
	t1 = bench_now();
	after = mallinfo2().uordblks;
	printf("store: %.0f bytes/task (%d tasks, 4 indexes; %.0f tasks applied/s)\n",
	       (double)(after - before) / BENCH_TASKS, BENCH_TASKS,
	       BENCH_TASKS / (t1 - t0));
	store_free(s);
	return 0;
}
